// What a click can ask for: a new state (and so a new search), a filter added to the query.
// app.js owns the search and fills in `runner`; the views reach it through here, so no view
// imports app.js (which imports them all).

import { withFilter } from "./kql.js";
import { state } from "./state.js";

/** Set by app.js: run(push) searches for the state; restart() also reconnects the live tail. */
export const runner = { run: null, restart: null };

/** The state with changes, then a search for it (a new history entry when push). */
export function setState(changes, push = true) {
  Object.assign(state, changes);
  runner.run(push);
}

/** The query with field:value added (see kql.withFilter), back on the logs view; nothing when q says it already. */
export function addFilter(field, value, negate, replace) {
  const q = withFilter(state.q, field, value, negate, replace);
  if (q !== null) setState({ q, view: "logs", event: "" });
}

// Errors: a query's parse error in place under the query box, a missing read token as a form
// in the banner, the rest as a line in the banner.

import { ApiError, setToken } from "./api.js";
import { runner } from "./actions.js";
import { $, h } from "./dom.js";
import { errorSpot } from "./kql.js";
import { state } from "./state.js";

export function showBanner(text) {
  const b = $("banner");
  b.replaceChildren(h("span", null, text), h("button", { type: "button", class: "x", "aria-label": "Dismiss", onclick: () => { b.hidden = true; } }, "×"));
  b.hidden = false;
}

/** Hide the errors of the last search (a token form stays until it is answered). */
export function clearErrors() {
  if (!$("banner").querySelector("form")) $("banner").hidden = true;
  $("qwarn").hidden = true;
  $("qerr").hidden = true;
  $("q").classList.remove("invalid");
  $("q").removeAttribute("aria-invalid");
}

/** The search's warnings (e.g. a field no event has) in the notice above the results, as
 *  text (the field's name is the user's, never HTML); none: the notice hides. */
export function showWarnings(warnings) {
  const box = $("qwarn");
  const list = Array.isArray(warnings) ? warnings.filter((w) => typeof w === "string") : [];
  box.replaceChildren(...list.map((w) => h("div", null, w)));
  box.hidden = list.length === 0;
}

/** The query with the character at position marked, and the message. */
export function showQueryError(query, message, position) {
  const spot = errorSpot(query, message, position);
  const box = $("qerr");
  box.replaceChildren(
    h("code", null, spot.before, h("mark", null, spot.at), spot.after),
    h("div", { class: "msg" }, spot.message));
  box.hidden = false;
  const input = $("q");
  input.classList.add("invalid");
  input.setAttribute("aria-invalid", "true");
  if (document.activeElement === input) input.setSelectionRange(spot.pos, Math.min(spot.pos + spot.at.length, query.length));
}

/** Show what went wrong with `what` (e.g. "Search"); an aborted request is no error. */
export function handleError(e, what) {
  if (e.name === "AbortError") return;
  if (e instanceof ApiError && e.status === 401) {
    askToken();
  } else if (e instanceof ApiError && e.status === 400 && e.body.position != null) {
    showQueryError(state.q, e.body.error || "cannot parse the query", e.body.position);
  } else if (e instanceof ApiError && e.status === 404 && !e.body.error) {
    showBanner(`${what}: this logs service has no ${e.path} (404); is it an older version?`);
  } else {
    showBanner(`${what}: ${e.message}`);
  }
}

/** Ask for a read token (the logs service answered 401), once, then search again with it. */
export function askToken() {
  const b = $("banner");
  if (!b.hidden && b.querySelector("form")) return;
  const input = h("input", { type: "password", placeholder: "read token", "aria-label": "Read token", autocomplete: "off" });
  b.replaceChildren(h("form", { class: "token", onsubmit: (e) => {
    e.preventDefault();
    setToken(input.value);
    b.hidden = true;
    runner.restart();
  } }, h("span", null, "This logs service needs a read token (--token or --read-token). Kept for this tab only: "),
  input, h("button", { type: "submit" }, "Use")));
  b.hidden = false;
  input.focus();
}

#!/usr/bin/env python3
"""The web UI in the browser: time from Search to rows on screen over a 1 h range of 600k events.

    .venv/bin/python bench/ui.py                       # 600,000 events in the last hour
    .venv/bin/python bench/ui.py --events 100000 --rounds 5

1. Generates the events with bench/query.py's generator (gateway access logs and the
   services' request logs, as the logs service stores them), over the hour before now,
   compacts them to Parquet as the service would, and starts ``logmesh logs`` on that store.
2. Opens the page in Debian's chromium (Playwright) on the last hour and, in paired,
   alternating rounds over a few queries, measures in the page:
   - **ui**: a click on Search (the query typed) to the first rows in the table, painted
     (the next animation frame after they are added); the page's histogram, fields and
     top values are asked for at the same moment, as on every search;
   - **api**: its peer, a ``fetch`` of the same /api/v1/search page from the same page,
     to its JSON parsed: what the server and the network take, without the UI.
   Each search starts once the page has no request in flight (the previous search's
   histogram, fields and top values done). It prints the medians, the median of the
   per-search ratios ui/api, and the goal (ui under 300 ms). The machine may be shared:
   the ratio is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import query as query_bench  # noqa: E402  (bench/query.py: the generator)

from logmesh.logs.store import layout  # noqa: E402
from logmesh.logs.store.compact import compact_segment, new_connection  # noqa: E402
from logmesh.logs.store.reader import list_segments  # noqa: E402
from tests.logs.web.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.support.procs import HOST, Procs  # noqa: E402

GOAL_MS = 300
QUERIES = ["", "service.name:goods", "log.level:error", "url.path:/members and http.request.method:GET"]

# In the page: the UI's Search (rows painted) and the API alone, each resolving to ms.
MEASURE_JS = """
async ([kind, q]) => {
  const rows = document.getElementById("rows");
  const t0 = performance.now();
  if (kind === "api") {
    const u = new URL("/api/v1/search", location.href);
    if (q) u.searchParams.set("q", q);
    u.searchParams.set("from", "now-1h"); u.searchParams.set("to", "now"); u.searchParams.set("limit", "100");
    const r = await (await fetch(u)).json();
    if (!r.events.length) throw new Error("no events for " + q);
    return performance.now() - t0;
  }
  return await new Promise((resolve) => {
    const seen = () => rows.querySelector("tr.ev");
    const obs = new MutationObserver(() => {
      if (!seen()) return;
      obs.disconnect();
      requestAnimationFrame(() => resolve(performance.now() - t0));
    });
    obs.observe(rows, { childList: true });
    document.getElementById("q").value = q;
    document.querySelector("#search button.primary").click();  // clears the rows, then searches
  });
}
"""


def build_store(root: Path, events: int) -> Path:
    """``events`` over the hour before now, compacted into root/store as the service does."""
    now = int(time.time() * 1000)
    query_bench.START = now - query_bench.HOUR  # the generator's first hour: the last one
    raw, store = root / "raw", root / "store"
    t0 = time.perf_counter()
    query_bench.generate(raw, events, workers=2, hours=1)
    con = new_connection(threads=2, memory_limit="4GB")
    for seg in list_segments(raw):
        compact_segment(con, seg, store / layout.PARQUET_DIR, layout.PARQUET_ROW_GROUP_ROWS)
    con.close()
    print(f"store: {events:,} events over the last hour, made in {time.perf_counter() - t0:.1f} s")
    return store


def measure(url: str, rounds: int) -> dict:
    from playwright.sync_api import sync_playwright

    runs: list[dict] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 860})
        pending: set = set()  # requests of the page in flight: each search starts on a quiet page
        page.on("request", lambda r: pending.add(r))
        page.on("requestfinished", lambda r: pending.discard(r))
        page.on("requestfailed", lambda r: pending.discard(r))

        def settle() -> None:
            quiet = 0
            while quiet < 3:
                page.wait_for_timeout(50)
                quiet = quiet + 1 if not pending else 0
        page.goto(f"{url}/?from=now-1h")
        page.wait_for_selector("#rows tr.ev")
        for q in QUERIES:  # warm: the page's modules, the engine's files in the page cache
            settle()
            page.evaluate(MEASURE_JS, ["ui", q])
        for r in range(rounds):
            for q in QUERIES:
                order = ["ui", "api"] if r % 2 == 0 else ["api", "ui"]
                got = {}
                for kind in order:
                    settle()  # the last search's histogram, fields and top values are done
                    got[kind] = page.evaluate(MEASURE_JS, [kind, q])
                runs.append({"round": r, "q": q, **got})
        browser.close()
    ui = [x["ui"] for x in runs]
    api = [x["api"] for x in runs]
    ratios = [x["ui"] / x["api"] for x in runs if x["api"] > 0]
    return {"runs": runs, "ui_median_ms": round(statistics.median(ui), 1),
            "ui_p90_ms": round(sorted(ui)[int(0.9 * (len(ui) - 1))], 1),
            "api_median_ms": round(statistics.median(api), 1),
            "ratio_median": round(statistics.median(ratios), 2), "goal_ms": GOAL_MS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=600_000)
    ap.add_argument("--rounds", type=int, default=6, help="rounds of every query, ui and api alternating")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="logmesh-bench-ui-") as tmp:
        root = Path(tmp)
        store = build_store(root, args.events)
        procs = Procs(root)
        try:
            _, _, http_port = procs.logs(store, "--no-compact")
            result = measure(f"http://{HOST}:{http_port}", args.rounds)
        finally:
            procs.close()
    result["events"] = args.events
    print(f"Search to rows on screen, 1 h range over {args.events:,} events, {len(result['runs'])} searches "
          f"({len(QUERIES)} queries x {args.rounds} rounds, ui and api alternating):")
    print(f"  ui  (click to rows painted)   median {result['ui_median_ms']} ms, p90 {result['ui_p90_ms']} ms"
          f"  (goal < {GOAL_MS} ms: {'met' if result['ui_median_ms'] < GOAL_MS else 'NOT met'})")
    print(f"  api (fetch + JSON, same page) median {result['api_median_ms']} ms")
    print(f"  ui / api, median of the per-search ratios: {result['ratio_median']}")
    for q in QUERIES:
        ui = statistics.median(x["ui"] for x in result["runs"] if x["q"] == q)
        api = statistics.median(x["api"] for x in result["runs"] if x["q"] == q)
        print(f"    {q or '(every event)':<48} ui {ui:7.1f} ms   api {api:7.1f} ms")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""bench/run_all.py writes docs/benchmarks.md: a run of some steps keeps the rest of the page."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("run_all", ROOT / "bench" / "run_all.py")
run_all = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_all)


def test_a_partial_run_replaces_its_sections_and_keeps_the_others():
    """`--only mesh` rewrote the whole page with the mesh section alone, and a full run
    dropped every analysis written by hand under a heading of its own."""
    page = ("# Benchmarks\n\nMade by ...\n\n## ingest\n\nold ingest\n\n"
            "## ingest, paired across the re-cut\n\nby hand\n\n## query\n\nold query\n")
    fresh = ["## query\n\nnew query", "## mesh\n\nnew mesh"]
    assert run_all.merge_sections(page, fresh) == [
        "## ingest\n\nold ingest", "## ingest, paired across the re-cut\n\nby hand",
        "## query\n\nnew query", "## mesh\n\nnew mesh"]


def test_the_first_run_writes_the_fresh_sections():
    assert run_all.merge_sections("", ["## a\n\nx", "## b\n\ny"]) == ["## a\n\nx", "## b\n\ny"]


def test_every_section_of_the_real_page_survives_a_run_of_nothing():
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    headings = [line for line in page.splitlines() if line.startswith("## ")]
    kept = run_all.merge_sections(page, [])
    assert [s.splitlines()[0] for s in kept] == headings


def test_a_steps_subsections_written_by_hand_survive_its_run():
    """A step's `## query` replaced whole took every `### ...` analysis written under it (six
    rare-word passes, the token index) with it; the fresh text replaces only the step's own
    part above its first subsection."""
    page = ("## query\n\nold table\n\n### Token index (by hand)\n\nanalysis\n\n"
            "### Rare word, pass 2\n\nmore\n\n## sustained\n\nold sustained\n")
    fresh = ["## query\n\nnew table", "## sustained\n\nnew sustained"]
    assert run_all.merge_sections(page, fresh) == [
        "## query\n\nnew table\n\n### Token index (by hand)\n\nanalysis\n\n"
        "### Rare word, pass 2\n\nmore",
        "## sustained\n\nnew sustained"]

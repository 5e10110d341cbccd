"""The CLI reference (docs/cli.md) is generated from --help and can't drift.

Regenerate it with:  .venv/bin/python tests/test_docs.py --write
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from logmesh.cli import cli  # noqa: E402

DOC = ROOT / "docs" / "cli.md"


def render() -> str:
    runner = CliRunner()
    out = ["# `logmesh` command reference", "",
           "Generated from `--help` by `tests/test_docs.py --write`; every option also reads",
           "`LOGMESH_<COMMAND>_<OPTION>` from the environment (`LOGMESH_LOGS_RETENTION=7d`),",
           "the options shared by several commands the name `--help` shows (`LOGMESH_TOKEN`).", ""]
    help_text = runner.invoke(cli, ["--help"], prog_name="logmesh", terminal_width=100).output
    out += ["```", help_text.rstrip(), "```", ""]
    for name in sorted(cli.commands):
        cmd = cli.commands[name]
        if cmd.hidden:
            continue
        text = runner.invoke(cli, [name, "--help"], prog_name="logmesh", terminal_width=100).output
        out += [f"## logmesh {name}", "", "```", text.rstrip(), "```", ""]
    return "\n".join(out)


def test_every_command_has_help() -> None:
    for name, cmd in cli.commands.items():
        assert cmd.help, f"logmesh {name} has no help text"
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"logmesh {name} {param.opts[0]} has no help text"


def test_cli_reference_is_current() -> None:
    assert DOC.exists(), "docs/cli.md is missing; run: .venv/bin/python tests/test_docs.py --write"
    assert DOC.read_text() == render(), \
        "docs/cli.md is out of date; run: .venv/bin/python tests/test_docs.py --write"


if __name__ == "__main__" and "--write" in sys.argv:
    DOC.write_text(render())
    print(f"wrote {DOC.relative_to(ROOT)}")

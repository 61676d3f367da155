"""Start-up (issue 17): each command imports what it uses and nothing heavy
besides; ``stockup --version`` and ``--help`` import no command at all.

Module lists, not timings: a timed test would fail on a busy machine and pass
on a fast one. ``bench/compare.py`` prints the times."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stockup.cli.commands import COMMANDS

PROBE = """
import sys
from stockup.cli.app import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("MODULES", " ".join(sorted(sys.modules)))
"""

# Heavy to import and used by none of the commands listed against them below.
UPLOADING = ("stockup.engine", "stockup.session", "asyncssh")
EDITING = ("pyexiv2", "PIL", "imagehash")
SERVING = ("stockup.web", "starlette", "uvicorn")
WATCHING = ("watchfiles", "psutil", "desktop_notifier")
DEMO = ("stockup.demo", "pyftpdlib")
EVERYTHING = (*UPLOADING, *EDITING, *SERVING, *WATCHING, *DEMO)

UNUSED: dict[tuple[str, ...], tuple[str, ...]] = {
    ("init", "--help"): EVERYTHING,
    ("account", "--help"): EVERYTHING,
    ("proxy", "--help"): EVERYTHING,
    ("agencies", "--help"): (*EVERYTHING, "stockup.vault", "cryptography", "argon2"),
    ("history", "--help"): EVERYTHING,
    ("meta", "--help"): (*UPLOADING, *SERVING, *WATCHING, *DEMO, "stockup.vault"),
    ("check", "--help"): (*UPLOADING, *SERVING, *WATCHING, *DEMO),
    ("ui", "--help"): (*UPLOADING, *EDITING, *SERVING, *WATCHING, *DEMO),
    ("upload", "--help"): (*EDITING, *SERVING, *WATCHING, *DEMO, "asyncssh"),
    ("watch", "--help"): (*EDITING, *SERVING, *WATCHING, *DEMO, "asyncssh"),
    ("demo", "--help"): (*EDITING, *SERVING, *WATCHING, "asyncssh"),
}


def loaded(*argv: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("MODULES "))
    return set(line.split()[1:])


def found(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if any(m == n or m.startswith(n + ".") for m in modules))


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help_import_no_command(flag: str) -> None:
    modules = loaded(flag)
    ours = {m for m in modules if m.startswith("stockup")}
    assert ours == {"stockup", "stockup.cli", "stockup.cli.app", "stockup.cli.commands"}
    assert not found(modules, ("rich", "asyncio", "ssl", "logging", "msgspec", *EVERYTHING))


@pytest.mark.parametrize("argv", list(UNUSED), ids=" ".join)
def test_a_command_imports_nothing_heavy_it_does_not_use(argv: tuple[str, ...]) -> None:
    modules = loaded(*argv)
    assert not found(modules, UNUSED[argv])
    assert not found(modules, ("rich",))  # help lays nothing out with it
    commands = {m.rpartition(".")[2] for m in modules if m.startswith("stockup.cli.commands.")}
    own = {COMMANDS[argv[0]].module, "_shared"} | ({"upload"} if argv[0] == "watch" else set())
    assert commands <= own


GC_PROBE = """
import gc, sys
from stockup.cli import app

build_parser = app.build_parser
while_loading = []

def counting_build_parser(argv=None):
    before = sum(generation["collections"] for generation in gc.get_stats())
    parser = build_parser(argv)
    while_loading.append(sum(g["collections"] for g in gc.get_stats()) - before)
    return parser

app.build_parser = counting_build_parser
code = app.main(sys.argv[1:])
print("GC", code, while_loading[0], gc.isenabled(), len(gc.get_objects()), gc.get_freeze_count())
"""


def test_the_collector_leaves_alone_what_the_process_keeps() -> None:
    """No collection while the command loads (about 45,000 objects that live
    as long as the process), the collector on while it runs, and at exit
    everything frozen, so the interpreter's last collection walks nothing."""
    out = subprocess.run(
        [sys.executable, "-c", GC_PROBE, "agencies"], capture_output=True, text=True, check=True
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("GC "))
    code, collections, enabled, tracked, frozen = line.split()[1:]
    assert (code, collections, enabled) == ("0", "0", "True")
    assert int(tracked) < 100 < 10_000 < int(frozen)

"""`stockup demo` (what `make demo` runs) works end to end and cleans up."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.support.cli import Cli


def test_demo_runs_the_main_job_and_cleans_up(cli: Cli) -> None:
    before = set(Path(tempfile.gettempdir()).glob("stockup-demo-*"))
    result = cli.ok("demo", "--no-progress")
    out = result.stdout
    assert "Shutterstock would reject sunset_over_dunes.jpg" in out
    assert "12 uploaded, 0 skipped, 0 rejected, 0 failed" in out
    assert "0 uploaded, 12 skipped, 0 rejected, 0 failed" in out
    assert out.count("6 files in uploads/: all identical") == 2
    assert "Traceback" not in result.output
    assert set(Path(tempfile.gettempdir()).glob("stockup-demo-*")) == before
    assert not cli.home.exists(), "the demo must not touch the user's own stockup home"

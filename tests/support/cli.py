"""Run the real `stockup` entry point in a subprocess and keep every output,
so a test can scan all of them for secrets at the end."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TESTS_DIR = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


MEASURE_PEAK_RSS = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


@dataclass
class Cli:
    home: Path
    env: dict[str, str] = field(default_factory=dict)
    history: list[Result] = field(default_factory=list)

    def base_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("STOCKUP_") and k != "PYTHON_KEYRING_BACKEND"
        }
        env["STOCKUP_HOME"] = str(self.home)
        env["PYTHONPATH"] = str(TESTS_DIR)
        env["COLUMNS"] = "200"
        env.update(self.env)
        return env

    def __call__(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> Result:
        full_env = self.base_env()
        full_env.update(env or {})
        proc = subprocess.run(
            [sys.executable, "-m", "stockup", *args],
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            env=full_env,
            timeout=120,
            check=False,
        )
        result = Result(list(args), proc.returncode, proc.stdout, proc.stderr)
        self.history.append(result)
        return result

    def spawn(
        self, *args: str, peak_rss_to: Path | None = None, **popen: Any
    ) -> subprocess.Popen[Any]:
        """The CLI running in the background, for tests that signal or time it.
        ``peak_rss_to``: a file that gets the CLI's peak memory (KiB) when it ends."""
        popen.setdefault("stdout", subprocess.DEVNULL)
        popen.setdefault("stderr", subprocess.DEVNULL)
        env = {**self.base_env(), **popen.pop("env", {})}
        command = [sys.executable, "-m", "stockup", *args]
        if peak_rss_to is not None:
            # The kernel counts a child's peak from before its exec, when it
            # was a copy of this (large) pytest process: a small parent
            # measures it instead.
            command = [sys.executable, "-c", MEASURE_PEAK_RSS, str(peak_rss_to), *command]
        return subprocess.Popen(command, env=env, **popen)

    def ok(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        result = self(*args, input=input, env=env)
        assert result.returncode == 0, f"{args} exited {result.returncode}: {result.output}"
        return result

"""Where the vault passphrase comes from; never from the command line itself.

First found wins: a command (``--passphrase-command`` or
``STOCKUP_PASSPHRASE_COMMAND``, run without a shell), a file
(``--passphrase-file``), the ``STOCKUP_PASSPHRASE`` variable, then a prompt,
only when stdin is a terminal (``getpass`` would echo otherwise).
"""

from __future__ import annotations

import getpass
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stockup.errors import PassphraseUnavailable
from stockup.secret import Secret

COMMAND_TIMEOUT_SECONDS = 120


@dataclass
class PassphraseSource:
    """The user's choice of source; :meth:`get` resolves it once and caches."""

    command: str | None = None
    file: Path | None = None
    env_prefix: str = "STOCKUP_PASSPHRASE"
    prompt: str = "Vault passphrase: "
    confirm: bool = False
    interactive: bool = True
    """Prompt on the terminal as a last resort; off in a server (the web UI)."""
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    _cached: Secret | None = field(default=None, init=False, repr=False)

    @classmethod
    def given(cls, secret: Secret) -> PassphraseSource:
        """A passphrase already in hand, such as one typed into the web UI."""
        source = cls(environ={}, interactive=False)
        source._cached = _non_empty(secret, "the passphrase must not be empty")
        return source

    def get(self) -> Secret:
        if self._cached is None:
            self._cached = self._resolve()
        return self._cached

    def _resolve(self) -> Secret:
        command = self.command or self.environ.get(f"{self.env_prefix}_COMMAND")
        if command:
            return _non_empty(_run_command(command), "the passphrase command printed nothing")
        if self.file is not None:
            return _non_empty(_read_file(self.file), f"the passphrase file {self.file} is empty")
        if self.env_prefix in self.environ:
            return _non_empty(
                Secret(self.environ[self.env_prefix]), f"{self.env_prefix} is set but empty"
            )
        if self.interactive and sys.stdin is not None and sys.stdin.isatty():
            return self._prompt()
        option = (
            "--new-passphrase" if self.env_prefix.endswith("NEW_PASSPHRASE") else "--passphrase"
        )
        raise PassphraseUnavailable(
            f"no passphrase available: use {option}-command CMD, {option}-file FILE, "
            f"{self.env_prefix}_COMMAND or {self.env_prefix}, or run in a terminal"
        )

    def _prompt(self) -> Secret:
        first = Secret(getpass.getpass(self.prompt))
        if not first:
            raise PassphraseUnavailable("the passphrase must not be empty")
        if self.confirm and Secret(getpass.getpass("Repeat to confirm: ")) != first:
            raise PassphraseUnavailable("the two passphrases differ; nothing was changed")
        return first


def _strip_newline(text: str) -> str:
    return text.removesuffix("\n").removesuffix("\r")


def _non_empty(secret: Secret, message: str) -> Secret:
    if not secret:
        raise PassphraseUnavailable(message)
    return secret


def _run_command(command: str) -> Secret:
    argv = shlex.split(command)
    if not argv:
        raise PassphraseUnavailable("the passphrase command is empty")
    try:
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        raise PassphraseUnavailable(f"passphrase command not found: {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise PassphraseUnavailable(
            f"the passphrase command did not finish in {COMMAND_TIMEOUT_SECONDS}s"
        ) from None
    except OSError as exc:
        raise PassphraseUnavailable(f"cannot run passphrase command: {exc.strerror}") from None
    if result.returncode != 0:
        raise PassphraseUnavailable(
            f"the passphrase command exited with status {result.returncode}"
        )
    try:
        return Secret(_strip_newline(result.stdout.decode("utf-8")))
    except UnicodeDecodeError:
        raise PassphraseUnavailable("the passphrase command printed non-UTF-8 output") from None


def _read_file(path: Path) -> Secret:
    """The file's first line, as ``--passphrase-file``'s help says."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        return Secret(lines[0] if lines else "")
    except OSError as exc:
        raise PassphraseUnavailable(f"cannot read passphrase file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise PassphraseUnavailable(f"the passphrase file {path} is not UTF-8") from None


STRONG_ENOUGH = 3
"""zxcvbn's score (0-4) from which a passphrase is not warned about."""


def weakness(passphrase: Secret) -> str | None:
    """Why ``passphrase`` is weak, in a sentence, or None. Estimated by zxcvbn
    (Dropbox's estimator: dictionaries, keyboard patterns, dates, l33t), not a
    home-made rule; a warning only, since the vault's Argon2id slows guessing."""
    from zxcvbn import zxcvbn  # loads its dictionaries: only when asked

    result = zxcvbn(passphrase.reveal()[:100])  # its cost grows with the length
    if result["score"] >= STRONG_ENOUGH:
        return None
    feedback = result["feedback"]
    why = feedback.get("warning") or "it is short or predictable"
    tip = " ".join(feedback.get("suggestions") or []) or "Use several unrelated words."
    return f"this passphrase is weak: {why.rstrip('.')}. {tip}"

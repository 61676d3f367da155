"""Crash-safe file writes and the lock that serialises writers."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from stockup.errors import StateError, VaultLocked
from stockup.paths import ensure_private_dir

LOCK_TIMEOUT_SECONDS = 60.0
LOCK_POLL_SECONDS = 0.05


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or
    the new file, never a mix: temp file in the same directory, fsync,
    ``os.replace``, then fsync the directory so the rename itself is durable.
    A ``path`` that is a symbolic link is written through to its target (a
    vault kept on another disk stays there), never replaced by a plain file."""
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    directory = ensure_private_dir(path.parent)
    tmp = directory / f".{path.name}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# The locks are fcntl.flock by hand, not the filelock package: filelock 4
# imports platform, decimal and secrets, 13 ms of every command's start-up
# (issue 17, where the margin is 0.15 s), for one flock call. stockup needs a
# POSIX system already (O_NOFOLLOW, fsync of a directory), and its locks live
# in its own private directories.
def _lock(path: Path, timeout: float) -> int | None:
    """Take the exclusive lock on ``path`` (created 0600 if missing), waiting
    at most ``timeout`` seconds: the descriptor that holds it, or None if
    another process still holds it. Closing the descriptor releases it; so
    does the OS when the process dies, even by ``kill -9``."""
    ensure_private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return None
                time.sleep(LOCK_POLL_SECONDS)
            except OSError as exc:  # ENOLCK, ENOSYS ...: a file system without locks
                raise StateError(
                    f"cannot lock {path}: {exc.strerror or exc}; keep stockup's folders on a "
                    "local file system (STOCKUP_HOME names where they are)"
                ) from None
    except BaseException:
        os.close(fd)
        raise


@contextlib.contextmanager
def held_locks(paths: list[Path], busy: Callable[[Path], Exception]) -> Iterator[None]:
    """Hold every lock in ``paths`` or none: a lock another process holds
    raises ``busy(path)`` at once, and the ones taken so far are released."""
    with contextlib.ExitStack() as stack:
        for path in paths:
            fd = _lock(path, timeout=0)
            if fd is None:
                raise busy(path)
            stack.callback(os.close, fd)
        yield


@contextlib.contextmanager
def exclusive_lock(lock_path: Path, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
    """Hold the inter-process lock for one read-modify-write of vault and config."""
    fd = _lock(lock_path, timeout)
    if fd is None:
        raise VaultLocked(
            f"another stockup process has held {lock_path} for {timeout:.0f}s; try again"
        )
    try:
        yield
    finally:
        os.close(fd)

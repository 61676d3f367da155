"""Crash-safe file writes and the lock that serialises writers."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import filelock

from stockup.errors import VaultLocked
from stockup.paths import ensure_private_dir

LOCK_TIMEOUT_SECONDS = 60.0


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


@contextlib.contextmanager
def held_locks(paths: list[Path], busy: Callable[[Path], Exception]) -> Iterator[None]:
    """Hold every lock in ``paths`` or none: a lock another process holds
    raises ``busy(path)`` at once, and the ones taken so far are released.
    The OS releases them if the process dies, even by ``kill -9``."""
    with contextlib.ExitStack() as stack:
        for path in paths:
            ensure_private_dir(path.parent)
            lock = filelock.FileLock(str(path), timeout=0, mode=0o600)
            try:
                lock.acquire()
            except filelock.Timeout:
                raise busy(path) from None
            stack.callback(lock.release)
        yield


@contextlib.contextmanager
def exclusive_lock(lock_path: Path, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
    """Hold the inter-process lock for one read-modify-write of vault and config."""
    ensure_private_dir(lock_path.parent)
    lock = filelock.FileLock(str(lock_path), timeout=timeout, mode=0o600)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise VaultLocked(
            f"another stockup process has held {lock_path} for {timeout:.0f}s; try again"
        ) from None
    try:
        yield
    finally:
        lock.release()

"""Sending one file safely, and testing an account's connection.

A file is written under a temporary name in its target folder
(``.NAME.stockup-part``), resumed from whatever size that has, checked for
size, and only then renamed: no half-written file ever carries its final name.
Accounts whose server forbids rename write in place and are still resumed and
verified. Retrying is the engine's job, not this module's.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stockup.config import Account
from stockup.credentials import Credentials
from stockup.errors import ConnectionLost, FileChanged
from stockup.paths import Paths
from stockup.transports import open_transport
from stockup.transports.base import (
    ConnectionInfo,
    ProgressCallback,
    Transport,
    TransportOptions,
    join_remote,
)

PART_SUFFIX = ".stockup-part"
CHECK_ATTEMPTS = 3
"""Connections `account test` tries when one is lost on the way."""
CHECK_RETRY_DELAY = 0.5
MAX_NAME_BYTES = 255


class VerificationFailed(ConnectionLost):
    """The remote size differs from the local size after an upload (retryable)."""


def part_name(name: str) -> str:
    """The temporary name beside ``name``. Names are limited to 255 bytes on
    most file systems and servers, so a name too long for ``.NAME.stockup-part``
    gets a digest of itself instead: the same every run, so resuming still
    finds it."""
    part = f".{name}{PART_SUFFIX}"
    if len(part.encode("utf-8")) <= MAX_NAME_BYTES:
        return part
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:32]
    return f".{digest}{PART_SUFFIX}"


async def send_file(
    transport: Transport,
    local: Path,
    remote_dir: str,
    name: str,
    *,
    use_rename: bool = True,
    resume: bool = True,
    progress: ProgressCallback | None = None,
    position: ProgressCallback | None = None,
    unchanged: Callable[[], bool] | None = None,
) -> str:
    """Upload ``local`` as ``remote_dir/name``; returns the final remote path.

    ``resume`` says the journal saw an unfinished attempt with this content:
    continue its partial file, or accept the final file when only the journal
    entry after the rename was lost. ``position`` hears where sending starts
    (the bytes below it are on the server already), ``progress`` each block sent.
    ``unchanged`` says whether the file still holds what was planned; asked
    once the bytes are sent, before the rename (:class:`FileChanged`)."""
    final = join_remote(remote_dir, name)
    target = join_remote(remote_dir, part_name(name)) if use_rename else final
    local_size = local.stat().st_size
    await transport.ensure_dir(remote_dir)
    existing = await transport.size(target) if resume else None
    if resume and use_rename and existing is None and await transport.size(final) == local_size:
        # Interrupted after the rename but before the journal heard of it.
        if position is not None:
            position(local_size)
        return final
    if existing is not None and existing > local_size:
        await transport.remove(target)
        existing = None
    offset = transport.resume_offset(existing) if existing else 0
    if position is not None:
        position(offset)
    if existing is None or offset < local_size:
        await transport.upload(local, target, offset, progress)
    if unchanged is not None and not unchanged():
        raise FileChanged(f"{local.name} changed while it was being sent (written to meanwhile)")
    if use_rename:
        remote_size = await transport.commit(target, final, local_size)
    else:
        remote_size = await transport.size(target)
    if remote_size != local_size:
        raise VerificationFailed(
            f"{final}: the server holds {remote_size} bytes after upload, expected {local_size}"
        )
    return final


@dataclass
class AccountCheck:
    info: ConnectionInfo
    remote_dir: str
    entries: list[str]


async def check_account(
    account: Account,
    credentials: Credentials,
    paths: Paths,
    *,
    trust_unknown_host_key: bool = False,
    trust_fingerprint: str | None = None,
) -> AccountCheck:
    """Connect, log in and list the account's remote folder."""
    options = TransportOptions(
        known_hosts=paths.known_hosts_file,
        trust_unknown_host_key=trust_unknown_host_key,
        trust_fingerprint=trust_fingerprint,
    )
    # A connection lost mid-way (an FTPS data channel closed during its
    # handshake, seen now and then with pyftpdlib on a loaded machine) says
    # nothing about the account: tried again on a new connection, as uploads
    # are, up to CHECK_ATTEMPTS in all. Refusals and timeouts are not.
    for _ in range(CHECK_ATTEMPTS - 1):
        try:
            return await _check_once(account, credentials, options)
        except ConnectionLost:
            await asyncio.sleep(CHECK_RETRY_DELAY)
    return await _check_once(account, credentials, options)


async def _check_once(
    account: Account, credentials: Credentials, options: TransportOptions
) -> AccountCheck:
    transport = open_transport(account.server, credentials, options)
    try:
        info = await transport.connect()
        entries = await transport.list_dir(account.remote_dir)
    finally:
        await transport.close()
    return AccountCheck(info, account.remote_dir or ".", entries)

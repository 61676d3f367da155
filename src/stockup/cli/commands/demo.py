"""`stockup demo`: the main job on an embedded default, all on loopback.

Sample artworks, a CA made for the run, in-process FTPS and SFTP servers, a
throwaway vault with two accounts, an upload with live progress, a second run
that skips what is already there, the history, and what landed where.
Everything is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

from stockup.catalogue import get_agency
from stockup.checks import check_files
from stockup.cli import output
from stockup.cli.commands import summary
from stockup.cli.progress import PlainRenderer, RichRenderer
from stockup.credentials import Credentials
from stockup.journal import Journal
from stockup.passphrase import PassphraseSource
from stockup.paths import Paths
from stockup.secret import Secret
from stockup.session import UploadRequest, UploadSession, UploadSettings
from stockup.store import AccountOptions, Store, build_account
from stockup.transfer import check_account

DEMO_RATE = 12 * 1024 * 1024  # slow enough for the progress bars to be seen


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("demo", help=summary("demo"))
    parser.add_argument("--no-progress", action="store_true", help="plain lines, no bars")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        from stockup.demo.pki import LocalPKI
        from stockup.demo.samples import make_samples
        from stockup.demo.servers import asyncssh_sftpd, pyftpd
    except ImportError as exc:
        output.error(f"the demo needs the 'demo' extra ({exc.name}): pip install 'stockup[demo]'")
        return 2
    with (
        tempfile.TemporaryDirectory(prefix="stockup-demo-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        root = Path(tmp)
        store = Store(Paths(root / "home", root / "home", root / "home" / "state"))
        output.info("[1/7] Sample artworks: JPEG photos with title and keywords, an EPS + JPG pair")
        samples = make_samples(root / "artworks")
        for path in samples:
            output.info(f"      {path.name:24} {path.stat().st_size:>10,} bytes")

        output.info("[2/7] Pre-upload checks against Shutterstock's and Adobe Stock's rules")
        targets = [(a, get_agency(a)) for a in ("shutterstock", "adobestock")]
        verdicts = check_files(samples, targets)
        for verdict in verdicts:
            for message in verdict.errors:
                output.info(
                    f"      {verdict.judge} would reject {verdict.facts.path.name}: {message}"
                )
        passing = sum(not v.errors for v in verdicts)
        output.info(f"      {passing} of {len(verdicts)} file/agency pairs pass")

        output.info("[3/7] Local servers on 127.0.0.1: FTPS (certificate from a CA made now), SFTP")
        pki = LocalPKI(root / "pki")
        cert = pki.issue("server")
        ftps = stack.enter_context(
            pyftpd(root / "ftps-server", tls=(cert.cert_file, cert.key_file))
        )
        sftp = stack.enter_context(asyncssh_sftpd(root / "sftp-server"))
        for server in (ftps, sftp):
            (server.root / "uploads").mkdir()

        output.info("[4/7] A throwaway vault (Argon2id + AES-256-GCM) with two accounts")
        passphrase = PassphraseSource(environ={"STOCKUP_PASSPHRASE": secrets.token_urlsafe(16)})
        store.init_vault(passphrase)
        login = Credentials(ftps.user, Secret(ftps.password))
        accounts = [
            build_account(
                "demo-ftps",
                AccountOptions(
                    agency="custom",
                    host=ftps.host,
                    port=ftps.port,
                    protocol="ftps",
                    ca_file=str(pki.ca_file),
                    remote_dir="uploads",
                ),
            ),
            build_account(
                "demo-sftp",
                AccountOptions(
                    agency="custom",
                    host=sftp.host,
                    port=sftp.port,
                    protocol="sftp",
                    remote_dir="uploads",
                ),
            ),
        ]
        for account in accounts:
            store.add_account(account, login, passphrase)
            output.info(f"      {account.name:10} {account.endpoint:28} {account.security}")
        check = asyncio.run(
            check_account(accounts[1], login, store.paths, trust_unknown_host_key=True)
        )
        output.info(f"      trusted the SFTP host key {check.info.host_key_fingerprint}")

        output.info("[5/7] Upload to both accounts at once")
        request = UploadRequest(
            (root / "artworks",),
            tuple(a.name for a in accounts),
            UploadSettings(limit_rate=DEMO_RATE),
        )
        for attempt in ("first run", "second run: unchanged files are skipped"):
            if attempt.startswith("second"):
                output.info(f"[6/7] Upload again ({attempt})")
            session = UploadSession(store, request)
            interactive = sys.stderr.isatty() and not args.no_progress
            session.accounting.listeners.append(
                RichRenderer(output.console(stderr=True), session.accounting)
                if interactive
                else PlainRenderer()
            )
            summary = asyncio.run(session.run(passphrase))
            output.info(f"      {summary.line()}")
            if not summary.ok:
                return 1

        output.info("[7/7] History, and the files on the servers checked byte for byte")
        with contextlib.closing(Journal(store.paths.journal_file)) as journal:
            for row in journal.history(limit=4, status="uploaded"):
                output.info(
                    f"      {row['at']} {row['account']:10} {row['status']:8} {row['remote_path']}"
                )
        for server in (ftps, sftp):
            landed = sorted((server.root / "uploads").iterdir())
            same = all(
                hashlib.sha256(p.read_bytes()).digest()
                == hashlib.sha256((root / "artworks" / p.name).read_bytes()).digest()
                for p in landed
            )
            state = "all identical" if same else "MISMATCH"
            output.info(f"      {server.kind:9} {len(landed)} files in uploads/: {state}")
            if not same:
                return 1
    output.info("Demo finished: servers stopped, vault and files deleted.")
    return 0

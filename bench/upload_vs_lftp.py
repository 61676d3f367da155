"""Benchmark: stockup against lftp, same files, same servers, same run.

Starts Debian's vsftpd (explicit FTPS, require_ssl_reuse=YES) and OpenSSH
sshd (SFTP) on loopback with a throwaway user, then uploads generated sets
with `stockup upload` and with `lftp mirror -R`, both with 4 parallel
transfers, and prints each time, the ratio stockup / lftp (<= 1.0 means
stockup is as fast or faster) and stockup's peak memory.

Needs root, vsftpd, openssh-server and lftp. Run: `make bench`.
Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import real

from stockup.demo.pki import LocalPKI

SCENARIOS = {"40x8MB": (40, 8 * 1024 * 1024), "300x200KB": (300, 200 * 1024)}
PARALLEL = 4


def make_set(folder: Path, count: int, size: int) -> Path:
    folder.mkdir(parents=True)
    block = os.urandom(1024 * 1024)
    for index in range(count):
        with (folder / f"img_{index:03d}.jpg").open("wb") as handle:
            left = size
            while left:
                handle.write(block[: min(left, len(block))])
                left -= min(left, len(block))
    return folder


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, int, int]:
    """Seconds, peak RSS (KiB) so far and exit code of a child process."""
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, text=True, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        print(f"{argv[0]} exited {proc.returncode}: {proc.stderr[-500:]}", file=sys.stderr)
    return elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, proc.returncode


def clear(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    for tool in ("lftp",):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed (apt-get install {tool})")
    if os.geteuid() != 0:
        raise SystemExit("the benchmark starts vsftpd and sshd with a throwaway user: run as root")
    figures = []
    with tempfile.TemporaryDirectory(prefix="stockup-bench-") as tmp, contextlib.ExitStack() as st:
        root = Path(tmp)
        root.chmod(0o755)
        user = st.enter_context(real.system_user(root / "users"))
        pki = LocalPKI(root / "pki")
        cert = pki.issue("server")
        ftps = st.enter_context(
            real.vsftpd(root / "vsftpd", user, cert=(cert.cert_file, cert.key_file))
        )
        sftp = st.enter_context(real.sshd(root / "sshd", user))
        home = root / "stockup-home"
        env = {**os.environ, "STOCKUP_HOME": str(home), "STOCKUP_PASSPHRASE": "bench passphrase"}
        stockup = [sys.executable, "-m", "stockup"]
        subprocess.run([*stockup, "init"], env=env, check=True, capture_output=True)
        for name, server, extra in (
            ("bench-ftps", ftps, ["--ca-file", str(pki.ca_file)]),
            ("bench-sftp", sftp, []),
        ):
            subprocess.run(
                [*stockup, "account", "add", name, "--agency", "custom", "--host", "127.0.0.1",
                 "--port", str(server.port), "--protocol", server.protocol, "--user", user.name,
                 "--password-stdin", "--remote-dir", "stockup", *extra],
                env=env, input=user.password + "\n", text=True, check=True, capture_output=True,
            )  # fmt: skip
        for folder in ("stockup", "lftp"):
            (user.home / folder).mkdir()
            shutil.chown(user.home / folder, user.name, user.name)
        subprocess.run([*stockup, "account", "test", "bench-sftp", "--trust-host-key"],
                       env=env, check=True, capture_output=True)  # fmt: skip
        lftp_settings = (
            f"set ssl:ca-file {pki.ca_file}; set ftp:ssl-force true; "
            "set ftp:ssl-protect-data true; set sftp:auto-confirm yes; "
            "set cmd:fail-exit true; "
        )
        for label, (count, size) in SCENARIOS.items():
            source = make_set(root / "sets" / label, count, size)
            for protocol, server, account in (
                ("FTPS", ftps, "bench-ftps"),
                ("SFTP", sftp, "bench-sftp"),
            ):
                for folder in ("stockup", "lftp"):
                    clear(user.home / folder)
                    (user.home / folder).mkdir()
                    shutil.chown(user.home / folder, user.name, user.name)
                ours, rss, our_rc = timed(
                    [*stockup, "upload", str(source), "--to", account, "--no-progress",
                     "--connections", str(PARALLEL), "--force", "--skip-checks"], env,
                )  # fmt: skip
                scheme = "sftp" if protocol == "SFTP" else "ftp"
                theirs, _, their_rc = timed(
                    ["lftp", "-u", f"{user.name},{user.password}", "-e",
                     f"{lftp_settings} mirror -R --parallel={PARALLEL} {source} lftp; quit",
                     f"{scheme}://127.0.0.1:{server.port}"], env,
                )  # fmt: skip
                landed = len(list((user.home / "stockup").iterdir()))
                peer_landed = sum(
                    1 for p in (user.home / "lftp").iterdir() if p.stat().st_size == size
                )
                figures.append({
                    "scenario": f"{label} {protocol}", "stockup_s": round(ours, 2),
                    "lftp_s": round(theirs, 2), "ratio": round(ours / theirs, 2),
                    "files": landed, "stockup_exit": our_rc, "lftp_exit": their_rc,
                    "lftp_complete_files": peer_landed,
                    "stockup_peak_rss_mib": round(rss / 1024, 1),
                })  # fmt: skip
                assert landed == count, f"stockup left {landed} of {count} files"
    print(f"{'scenario':18} {'stockup s':>10} {'lftp s':>8} {'ratio':>6} {'peak RSS MiB':>13}"
          f" {'lftp complete':>14}")  # fmt: skip
    for row in figures:
        print(f"{row['scenario']:18} {row['stockup_s']:>10} {row['lftp_s']:>8} {row['ratio']:>6} "
              f"{row['stockup_peak_rss_mib']:>13} {row['lftp_complete_files']:>14}")  # fmt: skip
    print("ratio = stockup time / lftp time; peak RSS is the largest child process so far")
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

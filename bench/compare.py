"""Benchmark: stockup against lftp and rclone, same files, same servers, same run.

Creates its own network namespace (so traffic shaping touches nothing else),
starts Debian's vsftpd (explicit FTPS, require_ssl_reuse=YES) and OpenSSH
sshd in it with a throwaway user, and runs each workload with every tool:

  a) 40 x 8 MB, FTPS and SFTP, loopback;
  b) 300 x 200 KB, FTPS and SFTP, loopback, plus FTPS commands per file;
  c) 50 ms round trip through the delay proxy: 1 x 50 MB over SFTP,
     40 x 1 MB over FTPS;
  d) 100 MB to three servers at once under a 100 Mbit/s cap, without
     and with 50 ms round trip: time against the link limit;
  e) a contributor's evening: 5 accounts x 200 photos of 5-15 MB at 100 ms
     round trip under a 50 Mbit/s cap (--photos scales it down: the full
     row moves 10 GB and takes about an hour and a half for the three tools);
  s) start-up: one 1 KB file, FTPS, loopback: the whole command.

stockup's vault is in keychain mode, its key in a real GNOME Keyring
(gnome-keyring's Secret Service on a D-Bus session bus of the bench's own,
as tests/support/secret_service.py starts it): the Argon2id unlock a
passphrase vault pays on every run (about 0.15 s here) is not in these
figures; what the keychain costs is.

Prints each tool's time, the ratio stockup / best peer, stockup's peak
memory, and any peer that failed or left incomplete files. Needs root,
iproute2, vsftpd, openssh-server, lftp, rclone, time, dbus-daemon and
gnome-keyring. Run: `make bench`. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import real  # noqa: E402
from tests.servers.faultproxy import FaultProxy  # noqa: E402
from tests.support.secret_service import secret_service  # noqa: E402

from stockup.demo.pki import LocalPKI  # noqa: E402
from stockup.demo.servers import ServerInfo  # noqa: E402

NAMESPACE = "stockup-bench"
PROXY = "127.0.0.2"
PARALLEL = 4
LINK_MBIT = 100
EVENING_MBIT = 50
ONE_WAY_DELAY = 0.025
TOOLS = ("stockup", "lftp", "rclone")
STARTUP_ROUNDS = 15


@dataclass
class Target:
    """One server as a tool reaches it: directly or through the delay proxy."""

    name: str
    info: ServerInfo
    host: str = "127.0.0.1"

    @property
    def scheme(self) -> str:
        return "sftp" if self.info.protocol == "sftp" else "ftp"


@dataclass
class Outcome:
    seconds: float
    complete: int
    expected: int
    failed: bool
    finished: list[float] = field(default_factory=list)
    """Per target: seconds from the start until its last file was complete
    (its ctime: stockup renames a finished file, the peers set its mtime)."""
    peak_mib: float | None = None
    """The tool's peak resident memory (stockup's only: one process)."""

    @property
    def ok(self) -> bool:
        return not self.failed and self.complete == self.expected


@dataclass
class Bench:
    user: real.SystemUser
    pki: LocalPKI
    env: dict[str, str]
    proxy: FaultProxy
    tools: tuple[str, ...] = TOOLS
    rows: list[dict[str, object]] = field(default_factory=list)

    def peer_command(self, tool: str, source: Path, target: Target, folder: str) -> list[str]:
        """The argv that uploads ``source`` into ``folder`` on ``target`` with a peer tool."""
        if tool == "lftp":
            settings = (
                f"set ssl:ca-file {self.pki.ca_file}; set ftp:ssl-force true; "
                "set ftp:ssl-protect-data true; set sftp:auto-confirm yes; "
                "set cmd:fail-exit true;"
            )
            return ["lftp", "-u", f"{self.user.name},{self.user.password}", "-e",
                    f"{settings} mirror -R --parallel={PARALLEL} {source} {folder}; quit",
                    f"{target.scheme}://{target.host}:{target.info.port}"]  # fmt: skip
        return ["rclone", "copy", str(source), f"{target.name.replace('-', '')}:{folder}",
                "--transfers", str(PARALLEL), "--ca-cert", str(self.pki.ca_file),
                "-q"]  # fmt: skip

    def rclone_env(self, targets: list[Target]) -> dict[str, str]:
        """rclone remotes named after the targets, configured through the environment."""
        obscured = subprocess.run(
            ["rclone", "obscure", self.user.password], capture_output=True, text=True, check=True
        ).stdout.strip()
        env: dict[str, str] = {}
        for target in targets:
            prefix = f"RCLONE_CONFIG_{target.name.replace('-', '').upper()}_"
            env |= {
                f"{prefix}TYPE": target.scheme, f"{prefix}HOST": target.host,
                f"{prefix}PORT": str(target.info.port), f"{prefix}USER": self.user.name,
                f"{prefix}PASS": obscured,
            }  # fmt: skip
            if target.scheme == "ftp":
                # rclone 1.60 cannot do TLS 1.3 with vsftpd, and its FTP backend
                # ignores --ca-cert: it runs unverified here (loopback, our own CA).
                env |= {
                    f"{prefix}EXPLICIT_TLS": "true",
                    f"{prefix}DISABLE_TLS13": "true",
                    f"{prefix}NO_CHECK_CERTIFICATE": "true",
                }
        return env

    def folder(self, name: str) -> Path:
        path = self.user.home / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir()
        shutil.chown(path, self.user.name, self.user.name)
        return path

    def run(self, tool: str, source: Path, targets: list[Target]) -> Outcome:
        """Upload ``source`` to every target at once with ``tool`` (one process each
        for the peers, one stockup run for all) and count complete files."""
        folders = [self.folder(f"{tool}-{t.name}") for t in targets]
        env = {**self.env, **self.rclone_env(targets)}
        start, wall_start = time.perf_counter(), time.time()
        rss_file = self.user.home.parent / "peak-rss"
        if tool == "stockup":  # one run for every target: that is the point
            argvs = [["/usr/bin/time", "-f", "%M", "-o", str(rss_file),
                      sys.executable, "-m", "stockup", "upload", "--skip-checks", "--no-progress",
                      "--force", "--connections", str(PARALLEL), str(source), "--to",
                      ",".join(t.name for t in targets)]]  # fmt: skip
        else:  # one process per target, all at once
            argvs = [
                self.peer_command(tool, source, t, f.name)
                for t, f in zip(targets, folders, strict=True)
            ]
        procs = [
            subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
            for argv in argvs
        ]  # fmt: skip
        failed = False
        for proc in procs:
            _, err = proc.communicate()
            if proc.returncode != 0:
                failed = True
                print(f"  {tool} exited {proc.returncode}: {err.strip()[-300:]}", file=sys.stderr)
        seconds = time.perf_counter() - start
        sizes = {p.name: p.stat().st_size for p in source.iterdir()}
        landed = [[p.stat() for p in folder.iterdir() if p.name in sizes] for folder in folders]
        complete = sum(
            1
            for folder in folders
            for p in folder.iterdir()
            if p.name in sizes and p.stat().st_size == sizes[p.name]
        )
        finished = [max((s.st_ctime for s in stats), default=wall_start) - wall_start
                    for stats in landed]  # fmt: skip
        peak_mib = int(rss_file.read_text().split()[-1]) / 1024 if tool == "stockup" else None
        return Outcome(seconds, complete, len(sizes) * len(folders), failed, finished, peak_mib)

    def over_link(
        self, label: str, source: Path, targets: list[Target], mbit: int, one_way_delay: float
    ) -> None:
        """Compare under a rate cap, against the link: the time its bytes need
        at the nominal rate, and at the rate plain TCP reaches on it (the
        headers of each 1,448 bytes take the rest)."""
        self.proxy.delay_seconds = one_way_delay
        payload = sum(p.stat().st_size for p in source.iterdir())
        # A byte sent through the delay proxy crosses the shaped loopback twice
        # (client to proxy, proxy to server): it counts twice.
        crossings = sum(2 if t.host == PROXY else 1 for t in targets)
        limit = crossings * payload * 8 / (mbit * 1e6)
        with shaped(mbit):
            ceiling = tcp_goodput(64 * 1024**2) / (mbit * 1e6 / 8)
            results = self.compare(label, source, targets)
        self.proxy.delay_seconds = 0.0
        row = self.rows[-1]
        row["link_limit_s"] = round(limit, 2)
        row["tcp_pct_of_link"] = round(100 * ceiling, 1)
        for tool, result in results.items():
            row[f"{tool}_pct_of_link"] = round(100 * limit / result.seconds, 1)
            row[f"{tool}_pct_of_tcp"] = round(100 * limit / ceiling / result.seconds, 1)
            if len(targets) > 1:
                first, last = min(result.finished), max(result.finished)
                row[f"{tool}_accounts_spread_pct"] = round(100 * (last - first) / last, 1)
                row[f"{tool}_accounts_done_s"] = [round(s, 1) for s in result.finished]
        print(json.dumps(row), flush=True)

    def compare(self, label: str, source: Path, targets: list[Target]) -> dict[str, Outcome]:
        results = {tool: self.run(tool, source, targets) for tool in self.tools}
        peers = [r.seconds for tool, r in results.items() if tool != "stockup" and r.ok]
        row: dict[str, object] = {"scenario": label}
        for tool, result in results.items():
            row[f"{tool}_s"] = round(result.seconds, 2)
            if not result.ok:
                row[f"{tool}_problem"] = (
                    f"{'exited non-zero, ' if result.failed else ''}"
                    f"{result.complete}/{result.expected} files complete"
                )
        row["ratio_vs_best_peer"] = (
            round(results["stockup"].seconds / min(peers), 2) if peers else None
        )
        row["stockup_peak_rss_mib"] = round(results["stockup"].peak_mib or 0)
        self.rows.append(row)
        print(json.dumps(row), flush=True)
        return results


def without_bytecode_switch() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def make_set(folder: Path, count: int, size: int | list[int]) -> Path:
    folder.mkdir(parents=True)
    block = os.urandom(1024 * 1024)
    sizes = size if isinstance(size, list) else [size] * count
    for index, left in enumerate(sizes):
        with (folder / f"img_{index:03d}.jpg").open("wb") as handle:
            while left:
                handle.write(block[: min(left, len(block))])
                left -= min(left, len(block))
    return folder


@contextlib.contextmanager
def shaped(mbit: int) -> Iterator[None]:
    """A rate cap on the namespace's loopback (MTU 1500) for the packets that
    carry data. Packets under 256 bytes (ACKs, commands, replies) pass beside
    it: on a contributor's line the ACKs of an upload come back on the
    downlink, not through the uplink's cap. (Until 2026-12-07 one tbf capped
    both directions, and the ACKs took 2 % of the link from every tool.)
    htb, as this kernel has no prio qdisc."""
    for command in (
        ["qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "20"],
        ["class", "add", "dev", "lo", "parent", "1:", "classid", "1:20", "htb", "rate",
         f"{mbit}mbit", "ceil", f"{mbit}mbit", "burst", "32kb"],
        ["class", "add", "dev", "lo", "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit"],
        # IPv4 total length below 256: the high byte of bytes 2-3 is zero.
        ["filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
         "match", "u16", "0x0000", "0xff00", "at", "2", "flowid", "1:10"],
    ):  # fmt: skip
        subprocess.run(["tc", *command], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], check=True)


def tcp_goodput(size: int) -> float:
    """Bytes per second one plain TCP connection carries over the loopback:
    the most any tool can reach on the shaped link."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        received = 0

        def receive() -> None:
            nonlocal received
            conn, _ = server.accept()
            with conn:
                while data := conn.recv(1024 * 1024):
                    received += len(data)

        reader = threading.Thread(target=receive)
        reader.start()
        start = time.perf_counter()
        with socket.create_connection(server.getsockname()) as sender:
            sender.sendall(bytes(size))
        reader.join()
        return received / (time.perf_counter() - start)


def log_lines(log: Path) -> list[str]:
    return log.read_text(errors="replace").splitlines() if log.exists() else []


def inside(scenarios: str, photos: int, tools: tuple[str, ...]) -> int:
    with tempfile.TemporaryDirectory(prefix="stockup-bench-") as tmp, contextlib.ExitStack() as st:
        root = Path(tmp)
        root.chmod(0o755)
        # A user of its own: the test suite (tests/servers/real.py) removes its own
        # user, with its home, when it starts.
        user = st.enter_context(real.system_user(root / "users", "stockupbench"))
        pki = LocalPKI(root / "pki")
        cert = pki.issue("server", hosts=("localhost", "127.0.0.1", PROXY))
        near_ports, far_ports = real.free_port_range(20), real.free_port_range(20)
        tls = (cert.cert_file, cert.key_file)
        ftps = st.enter_context(
            real.vsftpd(root / "near", user, cert=tls, passive_ports=near_ports, log_protocol=True)
        )
        ftps_far = st.enter_context(
            real.vsftpd(root / "far", user, cert=tls, passive_ports=far_ports, pasv_address=PROXY)
        )
        sftp = st.enter_context(real.sshd(root / "sshd", user))
        proxy = st.enter_context(
            FaultProxy(PROXY, "127.0.0.1", [ftps_far.port, *far_ports, sftp.port])
        )
        keychain = st.enter_context(secret_service(root / "keychain"))
        # stockup as installed: with its bytecode compiled (pip compiles a
        # package when it installs it). Where PYTHONDONTWRITEBYTECODE is set,
        # as in the sandbox these figures come from, every run compiled about
        # 50 ms of source that no installed copy compiles.
        compiled = [str(ROOT / "src"), str(ROOT / "tests"), sysconfig.get_paths()["purelib"]]
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j0", *compiled],
                       env=without_bytecode_switch(), check=True, capture_output=True)  # fmt: skip
        # stockup from this tree (a checkout of an older commit measures that
        # commit), with the keychain above.
        env = {**without_bytecode_switch(), "STOCKUP_HOME": str(root / "home"),
               "PYTHONPATH": os.pathsep.join(str(ROOT / d) for d in ("src", "tests")),
               **keychain}  # fmt: skip
        bench = Bench(user, pki, env, proxy, tools)
        targets = {
            t.name: t
            for t in (
                Target("ftps", ftps), Target("ftps2", ftps_far), Target("sftp", sftp),
                Target("ftpsfar", ftps_far, PROXY), Target("sftpfar", sftp, PROXY),
                # row e: five accounts far away, FTPS and SFTP as agencies have them
                *(Target(f"evening{n}", (ftps_far, sftp)[n % 2], PROXY) for n in range(5)),
            )
        }  # fmt: skip
        stockup = [sys.executable, "-m", "stockup"]
        subprocess.run([*stockup, "init", "--keychain"], env=env, check=True, capture_output=True)
        for target in targets.values():
            extra = ["--ca-file", str(pki.ca_file)] if target.scheme == "ftp" else []
            subprocess.run(
                [*stockup, "account", "add", target.name, "--agency", "custom", "--host",
                 target.host, "--port", str(target.info.port), "--protocol",
                 target.info.protocol, "--user", user.name, "--password-stdin",
                 "--remote-dir", f"stockup-{target.name}", *extra],
                env=env, input=user.password + "\n", text=True, check=True, capture_output=True,
            )  # fmt: skip
            bench.folder(f"stockup-{target.name}")
            if target.scheme == "sftp":
                subprocess.run([*stockup, "account", "test", target.name, "--trust-host-key"],
                               env=env, check=True, capture_output=True)  # fmt: skip

        sets = root / "sets"
        if "s" in scenarios:
            tiny = make_set(sets / "1x1KB", 1, 1024)
            # The tools take turns, round after round: this machine's speed
            # drifts by some 10 % over a minute, which would otherwise land on
            # whichever tool ran its rounds then.
            runs: dict[str, list[float]] = {tool: [] for tool in bench.tools}
            for _ in range(STARTUP_ROUNDS):
                for tool in bench.tools:
                    runs[tool].append(bench.run(tool, tiny, [targets["ftps"]]).seconds)
            times = {tool: statistics.median(seconds) for tool, seconds in runs.items()}
            row = {"scenario": f"s) start-up: 1 x 1 KB, FTPS (median of {STARTUP_ROUNDS})",
                   **{f"{tool}_s": round(s, 3) for tool, s in times.items()}}  # fmt: skip
            if "lftp" in times:
                row["stockup_minus_lftp_s"] = round(times["stockup"] - times["lftp"], 3)
            bench.rows.append(row)
            print(json.dumps(row), flush=True)
        if "a" in scenarios:
            big = make_set(sets / "40x8MB", 40, 8 * 1024**2)
            bench.compare("a) 40 x 8 MB, FTPS", big, [targets["ftps"]])
            bench.compare("a) 40 x 8 MB, SFTP", big, [targets["sftp"]])
        if "b" in scenarios:
            small = make_set(sets / "300x200KB", 300, 200 * 1024)
            log = root / "near" / "vsftpd.log"
            mark = len(log_lines(log))
            bench.run("stockup", small, [targets["ftps"]])
            commands = [line for line in log_lines(log)[mark:] if "FTP command:" in line]
            per_file = len(commands) / 300
            bench.rows.append({"scenario": "b) FTPS commands (round trips) per small file",
                               "stockup": round(per_file, 2)})  # fmt: skip
            print(f"FTPS commands per small file, stockup: {per_file:.2f}", flush=True)
            bench.compare("b) 300 x 200 KB, FTPS", small, [targets["ftps"]])
            bench.compare("b) 300 x 200 KB, SFTP", small, [targets["sftp"]])
        if "c" in scenarios:
            proxy.delay_seconds = ONE_WAY_DELAY
            one = make_set(sets / "1x50MB", 1, 50 * 1024**2)
            bench.compare("c) 1 x 50 MB, SFTP, 50 ms RTT", one, [targets["sftpfar"]])
            forty = make_set(sets / "40x1MB", 40, 1024**2)
            bench.compare("c) 40 x 1 MB, FTPS, 50 ms RTT", forty, [targets["ftpsfar"]])
            proxy.delay_seconds = 0.0
        if "d" in scenarios:
            hundred = make_set(sets / "1x100MB", 1, 100 * 1024**2)
            bench.over_link(
                "d) 3 x 100 MB fan-out, 100 Mbit/s",
                hundred,
                [targets[n] for n in ("ftps", "ftps2", "sftp")],
                LINK_MBIT,
                0.0,
            )
            bench.over_link("d) 3 x 100 MB fan-out, 100 Mbit/s, 50 ms RTT", hundred,
                            [targets[n] for n in ("ftps", "ftpsfar", "sftpfar")], LINK_MBIT,
                            ONE_WAY_DELAY)  # fmt: skip
        if "e" in scenarios:
            sizes = [random.Random(index).randint(5, 15) * 1024**2 for index in range(photos)]
            evening = make_set(sets / "evening", photos, sizes)
            bench.over_link(
                f"e) 5 accounts x {photos} photos of 5-15 MB, 100 ms RTT, 50 Mbit/s", evening,
                [t for name, t in targets.items() if name.startswith("evening")], EVENING_MBIT,
                0.05,
            )  # fmt: skip
    print("\nFIGURES " + json.dumps(bench.rows), flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="sabcde", help="which of s a b c d e to run")
    parser.add_argument("--photos", type=int, default=200, help="photos per account in row e")
    parser.add_argument("--tools", default=",".join(TOOLS), help="which of the tools to run")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        return inside(args.scenarios, args.photos, tuple(args.tools.split(",")))
    for tool in ("ip", "tc", "lftp", "rclone", "/usr/bin/time"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed (apt-get install iproute2 lftp rclone time)")
    if os.geteuid() != 0:
        raise SystemExit("the benchmark makes a network namespace and a system user: run as root")
    subprocess.run(["ip", "netns", "delete", NAMESPACE], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "add", NAMESPACE], check=True)
    try:
        for setting in (["mtu", "1500"], ["up"]):
            subprocess.run(
                ["ip", "netns", "exec", NAMESPACE, "ip", "link", "set", "lo", *setting], check=True
            )
        return subprocess.run(
            ["ip", "netns", "exec", NAMESPACE, sys.executable, __file__, "--inside",
             "--scenarios", args.scenarios, "--photos", str(args.photos), "--tools", args.tools],
            check=False,
        ).returncode  # fmt: skip
    finally:
        subprocess.run(["ip", "netns", "delete", NAMESPACE], check=False)


if __name__ == "__main__":
    raise SystemExit(main())

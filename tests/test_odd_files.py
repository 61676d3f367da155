"""Files that are odd, hostile or huge: each fails or is skipped alone, with
its reason, and never hangs a check or an upload."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from stockup.checks.facts import read_facts
from stockup.transfer import PART_SUFFIX
from tests.servers.fixtures import ServerFactory
from tests.support.accounts import add_account
from tests.support.artworks import photo
from tests.support.cli import Cli
from tests.support.files import make_batch, make_file, sha


def test_a_name_with_a_newline_fails_alone(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    good = make_batch(tmp_path / "batch", [2000, 3000])
    odd = make_file(tmp_path / "batch" / "two\nlines.jpg", 1000)
    with start_server("asyncssh-sftp") as server:
        cli.ok("init")
        add_account(cli, server)
        result = cli("upload", "--skip-checks", str(tmp_path / "batch"), "--to", "srv", "--json")
        assert result.returncode == 1, result.output
        report = json.loads(result.stdout)
        statuses = {Path(r["file"]).name: (r["status"], r["error"]) for r in report["results"]}
        assert statuses[odd.name][0] == "rejected" and "line break" in statuses[odd.name][1]
        for path in good:
            assert statuses[path.name] == ("uploaded", None)
            assert sha(server.upload_root / path.name) == sha(path)
        renamed = cli.ok(
            "upload", "--skip-checks", "--safe-names", str(odd), "--to", "srv", "--json"
        )
        assert json.loads(renamed.stdout)["results"][0]["remote_path"].endswith("two_lines.jpg")
        assert sha(server.upload_root / "two_lines.jpg") == sha(odd)
    checked = cli("check", str(tmp_path / "batch"), "--agency", "adobestock", "--json")
    verdicts = {Path(v["file"]).name: v for v in json.loads(checked.stdout)}
    assert "line break" in verdicts[odd.name]["findings"][0]["message"]


def test_a_name_that_is_not_utf8_fails_alone(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    """A file named on a system with another encoding (Latin-1 here): it is
    refused with the reason, the others go, and --safe-names sends it under a
    name the server takes. Every output stays UTF-8 a strict terminal prints
    (the bytes as ``\\xNN``), and the journal keeps the name."""
    good = make_batch(tmp_path / "batch", [2000, 3000])
    odd = photo(tmp_path / "batch" / "cafe.jpg", 40, 30).rename(
        tmp_path / "batch" / os.fsdecode(b"caf\xe9.jpg")
    )
    shown = "caf\\xe9.jpg"
    strict = {"PYTHONIOENCODING": "utf-8:strict"}  # as in a UTF-8 locale, not C
    with start_server("asyncssh-sftp") as server:
        cli.ok("init")
        add_account(cli, server)
        batch = str(tmp_path / "batch")
        result = cli("upload", "--skip-checks", batch, "--to", "srv", env=strict)
        assert result.returncode == 1, result.output
        assert shown in result.stdout and "the file name is not UTF-8" in result.stdout
        for path in good:
            assert sha(server.upload_root / path.name) == sha(path)
        renamed = cli.ok(
            "upload", "--skip-checks", "--safe-names", str(odd), "--to", "srv", "--json", env=strict
        )
        assert json.loads(renamed.stdout)["results"][0]["remote_path"].endswith("/caf_.jpg")
        assert sha(server.upload_root / "caf_.jpg") == sha(odd)
    assert shown in cli.ok("history", env=strict).stdout
    checked = cli("check", batch, "--agency", "adobestock", "--json", env=strict)
    verdicts = {Path(v["file"]).name: v for v in json.loads(checked.stdout)}
    assert "not UTF-8" in verdicts[odd.name]["findings"][0]["message"]
    written = cli.ok("meta", "set", str(odd), "--title", "Café", env=strict)
    assert f"changed  {shown}" in written.stdout
    assert read_facts(odd).metadata.title == "Café"
    folder = tmp_path / os.fsdecode(b"d\xe9cor")
    folder.mkdir()
    inside = photo(folder / "inside.jpg", 40, 30)
    refused = cli("meta", "set", str(inside), "--title", "Décor", env=strict)
    assert "exiv2 cannot open a file in a folder whose name is not UTF-8" in refused.stdout
    csv_file = tmp_path / "adobe.csv"
    exported = cli.ok("meta", "export", "--format", "adobestock", str(odd), "-o", str(csv_file),
                      env=strict)  # fmt: skip
    assert f"{shown}: its name is not UTF-8; listed as caf_.jpg" in exported.stderr
    assert csv_file.read_text(encoding="utf-8").splitlines()[1].startswith("caf_.jpg,Café,")


@pytest.mark.parametrize("kind", ["pyftpdlib-ftps", "asyncssh-sftp"])
def test_a_name_of_250_bytes_uploads(
    kind: str, cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    (tmp_path / "batch").mkdir()
    long = make_file(tmp_path / "batch" / ("é" * 123 + ".jpg"), 5000)
    assert len(long.name.encode()) == 250
    with start_server(kind) as server:
        cli.ok("init")
        add_account(cli, server)
        cli.ok("upload", "--skip-checks", str(long), "--to", "srv")
        assert sha(server.upload_root / long.name) == sha(long)
        assert not list(server.upload_root.glob(f"*{PART_SUFFIX}"))


def test_links_pipes_and_devices_are_skipped_never_opened(
    cli: Cli, tmp_path: Path, start_server: ServerFactory
) -> None:
    batch = tmp_path / "batch"
    (good,) = make_batch(batch, [4000])
    outside = make_file(tmp_path / "elsewhere.jpg", 3000)
    (batch / "outside.jpg").symlink_to(outside)
    os.mkfifo(tmp_path / "pipe")
    (batch / "to-pipe.jpg").symlink_to(tmp_path / "pipe")
    (batch / "zero.jpg").symlink_to("/dev/zero")
    os.mkfifo(batch / "fifo.jpg")
    with start_server("asyncssh-sftp") as server:
        cli.ok("init")
        add_account(cli, server)
        result = cli.ok("upload", "--skip-checks", str(batch), "--to", "srv", "--no-progress")
        assert "skipped 3 link(s) to files outside the folders given" in result.stderr
        assert "a named pipe (FIFO), not files: fifo.jpg" in result.stderr
        assert sorted(p.name for p in server.upload_root.iterdir()) == [good.name]

        followed = cli.ok("upload", "--skip-checks", "--follow-links", str(batch), "--to", "srv")
        assert "a character device, not files: zero.jpg" in followed.stderr
        assert "to-pipe.jpg" in followed.stderr
        assert sha(server.upload_root / "outside.jpg") == sha(outside)
        assert not (server.upload_root / "zero.jpg").exists()
    checked = cli("check", str(batch), "--agency", "adobestock", "--follow-links")
    assert "zero.jpg" in checked.stderr and "Traceback" not in checked.output
    named = cli("check", str(tmp_path / "pipe"), "--agency", "adobestock")
    assert named.returncode == 2 and "named pipe" in named.stderr


def test_reading_facts_is_linear_and_bounded(tmp_path: Path) -> None:
    """A JPEG crafted with many unclosed XMP packets, and a 1 GiB SVG: each
    file's facts in well under a second, without reading it whole."""
    import io
    import time
    import tracemalloc

    from PIL import Image

    from stockup.checks.facts import read_facts

    small = io.BytesIO()
    Image.new("RGB", (16, 16)).save(small, "JPEG")
    crafted = tmp_path / "crafted.jpg"
    crafted.write_bytes(small.getvalue()[:-2] + b"<x:xmpmeta " * 800_000 + b"\xff\xd9")
    huge = tmp_path / "huge.svg"
    with huge.open("wb") as handle:
        handle.write(b'<svg xmlns="http://www.w3.org/2000/svg" version="1.1">')
        handle.truncate(1 << 30)  # sparse: 1 GiB on paper
    for path in (crafted, huge):
        tracemalloc.start()
        began = time.monotonic()
        facts = read_facts(path)
        elapsed = time.monotonic() - began
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert elapsed < 1.0, f"{path.name}: {elapsed:.2f} s"
        assert peak < 64 * 1024 * 1024, f"{path.name}: {peak:,} bytes"
        assert facts.metadata.keywords == []
    assert read_facts(huge).svg_version == "1.1"

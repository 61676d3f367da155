"""The vault file: known answers, round trips, tampering, crashes, concurrency."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import textwrap
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockup.credentials import Credentials
from stockup.errors import (
    EndpointChanged,
    VaultCorrupt,
    VaultError,
    VaultVersionError,
    WrongPassphrase,
)
from stockup.secret import Secret
from stockup.vault import KdfParams, Vault, derive_key

DATA = Path(__file__).parent / "data"
CHEAP = KdfParams(memory_kib=64, iterations=1, lanes=1)
ENDPOINT = "sftp://sftp.example.invalid:22"


def no_keychain(vault_id: str) -> bytes:
    raise AssertionError("a passphrase vault must not touch the keychain")


def load(path: Path, passphrase: str) -> Vault:
    return Vault.load(path, lambda: Secret(passphrase), no_keychain)


def make_vault(path: Path, passphrase: str = "pass phrase") -> Vault:
    vault = Vault.create(path, passphrase=Secret(passphrase), kdf=CHEAP)
    vault.put("ss", ENDPOINT, Credentials("alice", Secret("pw-alice-123")))
    vault.put("adobe", "ftps://ftps.example.invalid:21", Credentials("bob", Secret("pw-bob-456")))
    vault.save()
    return vault


def test_rfc9106_argon2id_vector_through_our_wrapper() -> None:
    # RFC 9106 section 5.3: Argon2id, m=32 KiB, t=3, p=4, with secret and ad.
    tag = derive_key(
        Secret("\x01" * 32),
        KdfParams(memory_kib=32, iterations=3, lanes=4, salt=b"\x02" * 16),
        secret=b"\x03" * 8,
        ad=b"\x04" * 12,
    )
    assert tag.hex() == "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"


def test_committed_sample_vault_keeps_opening() -> None:
    vault = load(DATA / "sample-vault.json", "sample passphrase")
    creds = vault.get("sample", "sftp://sftp.example.invalid:22")
    assert creds.username == "alice"
    assert creds.password.reveal() == "s3cret-sample-password"
    assert vault.get("other", "ftps://ftps.example.invalid:21").username == "bob"


def test_default_kdf_parameters_are_the_documented_ones(tmp_path: Path) -> None:
    vault = Vault.create(tmp_path / "v.json", passphrase=Secret("x"))
    header = json.loads(vault.to_bytes())["header"]
    assert header["kdf"]["memory_kib"] == 65536
    assert header["kdf"]["iterations"] == 3
    assert header["kdf"]["lanes"] == 4
    assert len(base64.b64decode(header["kdf"]["salt"])) == 16


def test_file_modes(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "vault.json"
    make_vault(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_no_password_hash_or_plaintext_in_file(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    make_vault(path, "pass phrase")
    raw = path.read_bytes()
    for needle in (b"pw-alice-123", b"alice", b"pass phrase"):
        assert needle not in raw


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    passphrase=st.text(min_size=1, max_size=40).filter(lambda s: s.strip("\x00") != ""),
    password=st.text(min_size=1, max_size=3000),
    username=st.text(min_size=1, max_size=100),
)
def test_round_trip_unicode_nfc_nfd(
    tmp_path: Path, passphrase: str, password: str, username: str
) -> None:
    path = tmp_path / "rt.json"
    path.unlink(missing_ok=True)
    vault = Vault.create(
        path, passphrase=Secret(unicodedata.normalize("NFD", passphrase)), kdf=CHEAP
    )
    vault.put("acct", ENDPOINT, Credentials(username, Secret(password)))
    vault.save()
    reopened = load(path, unicodedata.normalize("NFC", passphrase))
    creds = reopened.get("acct", ENDPOINT)
    assert creds.username == username
    assert creds.password.reveal() == password


def test_padding_hides_password_length(tmp_path: Path) -> None:
    vault = Vault.create(tmp_path / "v.json", passphrase=Secret("p"), kdf=CHEAP)
    vault.put("a", ENDPOINT, Credentials("u", Secret("x")))
    vault.put("b", ENDPOINT, Credentials("u", Secret("x" * 150)))
    records = json.loads(vault.to_bytes())["records"]
    assert len(records["a"]["ciphertext"]) == len(records["b"]["ciphertext"])


def test_fresh_nonce_on_every_write(tmp_path: Path) -> None:
    vault = Vault.create(tmp_path / "v.json", passphrase=Secret("p"), kdf=CHEAP)
    creds = Credentials("u", Secret("same"))
    vault.put("a", ENDPOINT, creds)
    first = json.loads(vault.to_bytes())["records"]["a"]
    vault.put("a", ENDPOINT, creds)
    second = json.loads(vault.to_bytes())["records"]["a"]
    assert first["nonce"] != second["nonce"]
    assert first["ciphertext"] != second["ciphertext"]


def test_wrong_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    make_vault(path)
    before = path.read_bytes()
    with pytest.raises(WrongPassphrase):
        load(path, "not it")
    assert path.read_bytes() == before


def test_every_single_bit_flip_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    make_vault(path)
    original = path.read_bytes()
    target = tmp_path / "flipped.json"
    for index in range(len(original)):
        for bit in range(8):
            damaged = bytearray(original)
            damaged[index] ^= 1 << bit
            target.write_bytes(bytes(damaged))
            with pytest.raises(VaultError):
                load(target, "pass phrase")
    assert path.read_bytes() == original


def _edit(path: Path, change: object) -> None:
    document = json.loads(path.read_bytes())
    change(document)  # type: ignore[operator]
    path.write_bytes((json.dumps(document, indent=2, sort_keys=True) + "\n").encode())


def test_records_swapped_between_accounts_rejected(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    make_vault(path)

    def swap(doc: dict) -> None:  # type: ignore[type-arg]
        r = doc["records"]
        r["ss"]["ciphertext"], r["adobe"]["ciphertext"] = (
            r["adobe"]["ciphertext"],
            r["ss"]["ciphertext"],
        )
        r["ss"]["nonce"], r["adobe"]["nonce"] = r["adobe"]["nonce"], r["ss"]["nonce"]
        r["ss"]["endpoint"], r["adobe"]["endpoint"] = r["adobe"]["endpoint"], r["ss"]["endpoint"]

    _edit(path, swap)
    with pytest.raises(VaultCorrupt, match="moved from another"):
        load(path, "pass phrase")


def test_record_moved_in_from_another_vault_rejected(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    make_vault(first)
    make_vault(second)
    foreign = json.loads(second.read_bytes())["records"]["ss"]
    _edit(first, lambda doc: doc["records"].__setitem__("ss", foreign))
    with pytest.raises(VaultCorrupt):
        load(first, "pass phrase")


def test_endpoint_edited_in_record_rejected(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    make_vault(path)
    _edit(path, lambda doc: doc["records"]["ss"].__setitem__("endpoint", "sftp://evil.example:22"))
    with pytest.raises(VaultCorrupt):
        load(path, "pass phrase")


def test_password_never_released_for_another_endpoint(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    make_vault(path)
    vault = load(path, "pass phrase")
    with pytest.raises(EndpointChanged, match="enter the password again"):
        vault.get("ss", "sftp://evil.example:22")


@pytest.mark.parametrize(
    "field,value",
    [("memory_kib", 65), ("iterations", 2), ("lanes", 2)],
)
def test_kdf_parameters_edited_rejected(tmp_path: Path, field: str, value: int) -> None:
    path = tmp_path / "v.json"
    make_vault(path)
    _edit(path, lambda doc: doc["header"]["kdf"].__setitem__(field, value))
    with pytest.raises(WrongPassphrase):
        load(path, "pass phrase")


@pytest.mark.parametrize(
    "field,value",
    [("memory_kib", 1024 * 1024 + 1), ("iterations", 11), ("lanes", 17), ("lanes", 0)],
)
def test_oversized_kdf_parameters_refused_before_deriving(
    tmp_path: Path, field: str, value: int
) -> None:
    path = tmp_path / "v.json"
    make_vault(path)
    _edit(path, lambda doc: doc["header"]["kdf"].__setitem__(field, value))
    with pytest.raises(VaultCorrupt, match="out of bounds"):
        Vault.load(path, lambda: pytest.fail("must not ask for a passphrase"), no_keychain)


def test_unknown_version_says_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    make_vault(path)
    _edit(path, lambda doc: doc["header"].__setitem__("version", 2))
    with pytest.raises(VaultVersionError, match="upgrade stockup"):
        load(path, "pass phrase")


@pytest.mark.parametrize("keep", [0, 1, 10, 100, -2, -1])
def test_truncated_vault_rejected(tmp_path: Path, keep: int) -> None:
    path = tmp_path / "v.json"
    make_vault(path)
    raw = path.read_bytes()
    path.write_bytes(raw[:keep] if keep >= 0 else raw[: len(raw) + keep])
    with pytest.raises(VaultCorrupt):
        load(path, "pass phrase")


def test_passphrase_change_rewraps_same_records(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    make_vault(path)
    records_before = json.loads(path.read_bytes())["records"]
    vault = load(path, "pass phrase")
    vault.set_passphrase(Secret("new phrase"), CHEAP)
    vault.save()
    assert json.loads(path.read_bytes())["records"] == records_before
    with pytest.raises(WrongPassphrase):
        load(path, "pass phrase")
    assert load(path, "new phrase").get("ss", ENDPOINT).password.reveal() == "pw-alice-123"


def test_crash_between_temp_write_and_replace_keeps_old_vault(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    make_vault(path)
    before = path.read_bytes()
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from stockup.secret import Secret
        from stockup.vault import Vault, Credentials

        vault = Vault.load(Path({str(path)!r}), lambda: Secret("pass phrase"), None)
        vault.put("new", "ftp://h:21", Credentials("u", Secret("p")))
        os.replace = lambda *a: os._exit(9)   # the crash: after fsync of the temp file
        vault.save()
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == 9
    assert path.read_bytes() == before
    assert list(tmp_path.glob(".v.json.*.tmp")), "the crash left its temp file behind"
    vault = load(path, "pass phrase")
    assert vault.accounts() == ["adobe", "ss"]
    vault.put("new", "ftp://h:21", Credentials("u", Secret("p")))
    vault.save()
    assert load(path, "pass phrase").accounts() == ["adobe", "new", "ss"]


def test_other_format_is_refused(tmp_path: Path) -> None:
    shutil.copy(DATA / "sample-vault.json", tmp_path / "copy.json")
    _edit(tmp_path / "copy.json", lambda doc: doc["header"].__setitem__("format", "other"))
    with pytest.raises(VaultCorrupt, match="not a stockup vault"):
        load(tmp_path / "copy.json", "sample passphrase")
    assert os.path.exists(DATA / "sample-vault.json")


@pytest.mark.timeout(60)
def test_concurrent_unlocks_in_one_process_both_finish(tmp_path: Path) -> None:
    """The web UI may open the vault for a new upload while another opening
    is still deriving; concurrent Argon2id derivations once hung forever."""
    params = KdfParams().with_fresh_salt()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        keys = list(pool.map(lambda _: derive_key(Secret("same words"), params), range(4)))
    assert len(set(keys)) == 1


def test_a_deeply_nested_file_is_a_damaged_vault(tmp_path: Path) -> None:
    path = tmp_path / "vault.json"
    path.write_text('{"header": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(VaultCorrupt, match="not valid JSON"):
        load(path, "pass phrase")


def test_a_vault_that_is_a_link_is_written_through_to_its_target(tmp_path: Path) -> None:
    (tmp_path / "disk").mkdir()
    real = tmp_path / "disk" / "vault.json"
    make_vault(real)
    link = tmp_path / "vault.json"
    link.symlink_to(real)
    vault = load(link, "pass phrase")
    vault.put("acct", "sftp://h:22", Credentials("user", Secret("new secret")))
    vault.save()
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert load(real, "pass phrase").get("acct", "sftp://h:22").password == Secret("new secret")

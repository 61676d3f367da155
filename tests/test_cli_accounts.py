"""The real `stockup` entry point in subprocesses: init, accounts, passphrases, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stockup.errors import EndpointChanged
from stockup.passphrase import PassphraseSource
from stockup.paths import Paths
from stockup.store import Store
from tests.conftest import PASSPHRASE
from tests.servers.fixtures import ServerFactory
from tests.support.accounts import add_account
from tests.support.cli import Cli, Result
from tests.support.secret_service import secret_service
from tests.support.secrets_scan import files_under, find_secret

PASSWORD = "Sup3r-Secret-Agency-Pw!"


def assert_one_line_error(result: Result, code: int, text: str) -> None:
    assert result.returncode == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    assert text in lines[0]


def add_sftp(
    cli: Cli, name: str = "adobe", password: str = PASSWORD, env: dict[str, str] | None = None
) -> Result:
    return cli.ok(
        "account",
        "add",
        name,
        "--agency",
        "adobestock",
        "--user",
        "me",
        "--password-stdin",
        input=password + "\n",
        env=env,
    )


def test_init_creates_private_vault_and_refuses_second(cli: Cli, home: Path) -> None:
    cli.ok("init")
    vault = home / "vault.json"
    assert vault.stat().st_mode & 0o777 == 0o600
    assert home.stat().st_mode & 0o777 == 0o700
    before = vault.read_bytes()
    assert_one_line_error(cli("init"), 3, "already exists")
    assert vault.read_bytes() == before


def test_account_lifecycle_and_security_column(cli: Cli, home: Path) -> None:
    cli.ok("init")
    add_sftp(cli)
    plain = cli(
        "account",
        "add",
        "dt",
        "--agency",
        "dreamstime",
        "--user",
        "123",
        "--password-stdin",
        input="dt-password\n",
    )
    assert_one_line_error(plain, 2, "--allow-plaintext")
    opted = cli.ok(
        "account",
        "add",
        "dt",
        "--agency",
        "dreamstime",
        "--user",
        "123",
        "--password-stdin",
        "--allow-plaintext",
        input="dt-password\n",
    )
    assert "clear text" in opted.stderr and "upload.dreamstime.com" in opted.stderr

    listing = cli.ok("account", "list").stdout
    assert "SFTP (encrypted)" in listing
    assert "plain FTP: password sent in clear" in listing
    shown = cli.ok("account", "show", "adobe").stdout
    assert "sftp://sftp.contributor.adobestock.com:22" in shown

    import json

    data = json.loads(cli.ok("account", "list", "--json").stdout)
    assert {a["name"] for a in data} == {"adobe", "dt"}
    assert {a["protocol"] for a in data} == {"sftp", "ftp"}

    cli.ok("account", "remove", "dt")
    assert "dt" not in cli.ok("account", "list").stdout
    assert_one_line_error(cli("account", "remove", "dt"), 2, "no account named 'dt'")


def test_custom_agency_needs_host_and_protocol(cli: Cli) -> None:
    cli.ok("init")
    result = cli("account", "add", "x", "--agency", "custom", "--user", "u", "--password-stdin")
    assert_one_line_error(result, 2, "needs its host and protocol (--host)")
    assert_one_line_error(
        cli("account", "add", "x", "--agency", "nope", "--user", "u", "--password-stdin"),
        2,
        "unknown agency 'nope'",
    )
    assert_one_line_error(
        cli("account", "add", "g", "--agency", "getty", "--user", "u", "--password-stdin"),
        2,
        "Getty Images has no upload server to send to",
    )


def test_wrong_passphrase_changes_nothing(cli: Cli, home: Path) -> None:
    cli.ok("init")
    add_sftp(cli)
    snapshot = {p: p.read_bytes() for p in home.rglob("*") if p.is_file()}
    result = cli(
        "account",
        "add",
        "ss",
        "--agency",
        "shutterstock",
        "--user",
        "u",
        "--password-stdin",
        input="pw\n",
        env={"STOCKUP_PASSPHRASE": "not-the-passphrase"},
    )
    assert_one_line_error(result, 3, "wrong passphrase")
    assert {p: p.read_bytes() for p in home.rglob("*") if p.is_file()} == snapshot


def test_no_passphrase_source_names_the_options(home: Path) -> None:
    result = Cli(home=home)("init")
    assert_one_line_error(result, 3, "--passphrase-command")
    assert "--passphrase-file" in result.stderr and "STOCKUP_PASSPHRASE" in result.stderr


def test_passphrase_file_and_command(home: Path, tmp_path: Path) -> None:
    secret_file = tmp_path / "pp"
    secret_file.write_text("file passphrase\n")
    cli = Cli(home=home)
    cli.ok("init", "--passphrase-file", str(secret_file))
    command = f"{sys.executable} -c \"print('file passphrase')\""
    add = cli(
        "account",
        "add",
        "a",
        "--agency",
        "adobestock",
        "--user",
        "u",
        "--password-stdin",
        "--passphrase-command",
        command,
        input="pw\n",
    )
    assert add.returncode == 0, add.output
    failing = cli("account", "remove", "a", "--passphrase-command", "false")
    assert_one_line_error(failing, 3, "exited with status 1")
    empty = cli("account", "remove", "a", "--passphrase-command", "true")
    assert_one_line_error(empty, 3, "printed nothing")
    via_env = cli("account", "remove", "a", env={"STOCKUP_PASSPHRASE_COMMAND": command})
    assert via_env.returncode == 0, via_env.output


def test_passphrase_change(cli: Cli) -> None:
    cli.ok("init")
    add_sftp(cli)
    cli.ok("passphrase", "change", env={"STOCKUP_NEW_PASSPHRASE": "brand new"})
    assert_one_line_error(cli("account", "remove", "adobe"), 3, "wrong passphrase")
    cli.ok("account", "remove", "adobe", env={"STOCKUP_PASSPHRASE": "brand new"})


def test_damaged_vault_and_config_errors(cli: Cli, home: Path) -> None:
    cli.ok("init")
    add_sftp(cli)
    vault = home / "vault.json"
    vault.write_bytes(vault.read_bytes()[:-40])
    assert_one_line_error(cli("account", "remove", "adobe"), 3, "damaged or truncated")
    config = home / "config.toml"
    config.write_text("[accounts\n")
    assert_one_line_error(cli("account", "list"), 2, "not valid TOML")
    config.write_text("")
    config.chmod(0o000)
    if subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0":
        assert_one_line_error(cli("account", "list"), 2, "cannot read config")


@pytest.mark.parametrize(
    "setting,error",
    [
        ('port = "22"', "account 'adobe' in config: port: Expected `int`, got `str`"),
        ('rename = "no"', "account 'adobe' in config: rename: Expected `bool`, got `str`"),
        ("remote_dir = 5", "account 'adobe' in config: remote_dir: Expected `str`, got `int`"),
        ("passive = 1", "account 'adobe' in config: passive: Expected `bool`, got `int`"),
    ],
)
def test_a_hand_edited_setting_of_the_wrong_type_is_named(
    cli: Cli, home: Path, setting: str, error: str
) -> None:
    """Before, 'rename = "no"' was taken for yes (a non-empty string),
    'remote_dir = 5' ended an upload in an internal error, and 'port = "22"'
    read "incomplete settings"."""
    cli.ok("init")
    add_sftp(cli)
    config = home / "config.toml"
    key = setting.split(" = ")[0]
    kept = [line for line in config.read_text().splitlines() if not line.startswith(f"{key} =")]
    at = kept.index("[accounts.adobe]") + 1
    config.write_text("\n".join([*kept[:at], setting, *kept[at:]]) + "\n")
    assert_one_line_error(cli("account", "show", "adobe"), 2, error)


def test_missing_vault_and_account(cli: Cli) -> None:
    assert_one_line_error(cli("account", "remove", "x"), 3, "run `stockup init` first")
    assert_one_line_error(cli("account", "show", "x"), 2, "no account named 'x'")


def test_password_needs_stdin_or_terminal(cli: Cli) -> None:
    cli.ok("init")
    result = cli("account", "add", "a", "--agency", "adobestock", "--user", "u")
    assert_one_line_error(result, 2, "--password-stdin")


def test_edited_host_needs_password_again(cli: Cli, home: Path) -> None:
    cli.ok("init")
    add_sftp(cli)
    config = home / "config.toml"
    config.write_text(config.read_text().replace("sftp.contributor.adobestock.com", "evil.example"))
    store = Store(Paths(home, home, home / "state"))
    source = PassphraseSource(environ={"STOCKUP_PASSPHRASE": PASSPHRASE})
    with pytest.raises(EndpointChanged, match="enter the password again"):
        store.credentials("adobe", source)
    cli.ok("account", "password", "adobe", "--user", "me", "--password-stdin", input="newpw\n")
    assert store.credentials("adobe", source)[1].password.reveal() == "newpw"


def test_two_processes_adding_at_once_keep_both(cli: Cli, home: Path) -> None:
    cli.ok("init")
    env = cli.base_env()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stockup",
                "account",
                "add",
                f"acct{i}",
                "--agency",
                "adobestock",
                "--user",
                "u",
                "--password-stdin",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for i in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(b"pw\n", timeout=120)
        assert proc.returncode == 0, err
    listing = cli.ok("account", "list").stdout
    for i in range(4):
        assert f"acct{i}" in listing
    store = Store(Paths(home, home, home / "state"))
    vault = store.open_vault(PassphraseSource(environ={"STOCKUP_PASSPHRASE": PASSPHRASE}))
    assert vault.accounts() == [f"acct{i}" for i in range(4)]


KEYRING_FILE_BACKEND = "support.keyring_file.FileKeyring"


def test_keychain_mode_round_trip(home: Path, tmp_path: Path) -> None:
    cli = Cli(
        home=home,
        env={
            "PYTHON_KEYRING_BACKEND": KEYRING_FILE_BACKEND,
            "STOCKUP_TEST_KEYRING": str(tmp_path / "keyring.json"),
        },
    )
    cli.ok("init", "--keychain")
    add_sftp(cli)  # no passphrase anywhere in the environment
    assert "adobe" in cli.ok("account", "list").stdout
    assert_one_line_error(
        cli("passphrase", "change", env={"STOCKUP_NEW_PASSPHRASE": "x"}), 3, "OS keychain"
    )
    (tmp_path / "keyring.json").write_text("{}")
    assert_one_line_error(cli("account", "remove", "adobe"), 3, "holds no key")


def imported(result: Result) -> set[str]:
    """The modules a run imported (``PYTHONPROFILEIMPORTTIME`` lists them on stderr)."""
    return {
        line.rpartition("|")[2].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }


def names(cli: Cli) -> list[str]:
    return [account["name"] for account in json.loads(cli.ok("account", "list", "--json").stdout)]


def test_keychain_mode_with_gnome_keyring(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OS keychain of most Linux desktops, for real: GNOME Keyring's
    Secret Service. The key goes into it, and later runs ask it directly:
    keyring's search for a backend, which loads and probes every backend it
    knows (75-125 ms), runs only for a vault that has no note of its keychain."""

    def add(name: str, **env: str) -> Result:
        return cli("account", "add", name, "--agency", "adobestock", "--user", "me",
                   "--password-stdin", input=PASSWORD + "\n", env=env)  # fmt: skip

    # Only keyring's search imports the macOS backend's ctypes bindings on Linux.
    searching = {"keyring.backends.macOS.api"}
    with secret_service(tmp_path / "keyring") as env:
        cli = Cli(home=home, env=env)
        cli.ok("init", "--keychain")
        note = home / "vault.keychain"
        assert note.read_text() == "keyring.backends.SecretService.Keyring\n"
        direct = imported(add("first", PYTHONPROFILEIMPORTTIME="1"))
        assert "keyring.backends.SecretService" in direct and not searching & direct
        # A vault made before the note was kept (or whose note is lost):
        # keyring finds the keychain, as it did.
        note.unlink()
        assert searching <= imported(add("second", PYTHONPROFILEIMPORTTIME="1"))
        assert names(cli) == ["first", "second"]
        # The key is in GNOME Keyring: without it the vault does not open.
        note.write_text("keyring.backends.SecretService.Keyring\n")
        no_bus = f"unix:path={tmp_path / 'no-bus'}"
        assert_one_line_error(
            add("third", DBUS_SESSION_BUS_ADDRESS=no_bus), 3, "the OS keychain cannot be used"
        )
        assert names(cli) == ["first", "second"]
        # Neither the vault's key (as GNOME Keyring holds it) nor the
        # password shows in any output or any file of stockup's.
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", env["DBUS_SESSION_BUS_ADDRESS"])
        vault_id = json.loads((home / "vault.json").read_text())["header"]["vault_id"]
        from keyring.core import load_keyring

        data_key = load_keyring(note.read_text().strip()).get_password("stockup-vault", vault_id)
        assert data_key
    outputs = {f"run {i} {r.args}": r.output.encode() for i, r in enumerate(cli.history)}
    secrets = [PASSWORD, data_key]
    assert find_secret(secrets, outputs) == []
    assert find_secret(secrets, files_under(home)) == []  # the vault file too


def test_the_keychain_note_loads_only_keyrings_own_keychains(home: Path, tmp_path: Path) -> None:
    """Anyone with the user's rights can edit vault.keychain: a name in it is
    loaded only if it is one of keyring's OS keychains, never another module,
    and the user's own keyring setting wins over it."""
    sprung = tmp_path / "sprung"
    keyring_file = {"STOCKUP_TEST_KEYRING": str(tmp_path / "keyring.json")}
    cli = Cli(home=home, env={"PYTHON_KEYRING_BACKEND": KEYRING_FILE_BACKEND, **keyring_file})
    cli.ok("init", "--keychain")
    note = home / "vault.keychain"
    assert note.read_text() == f"{KEYRING_FILE_BACKEND}\n"
    for garbage in (b"\xff\xfe" * 5_000_000, b"keyring." * 5_000_000):  # read a line at most
        note.write_bytes(garbage)
        add_sftp(cli)
        cli.ok("account", "remove", "adobe")
    note.write_text("support.keyring_trap.Keyring\n")
    add_sftp(cli, env={"STOCKUP_TRAP": str(sprung)})  # PYTHON_KEYRING_BACKEND wins
    # Without that setting, keyring searches (and finds no keychain to use here).
    alone = Cli(home=home, env={"STOCKUP_TRAP": str(sprung), **keyring_file})
    assert alone("account", "remove", "adobe").returncode == 3
    assert not sprung.exists()


@pytest.mark.parametrize(
    "backend,message",
    [
        ("keyring.backends.fail.Keyring", "no OS keychain is available"),
        ("keyrings.alt.file.PlaintextKeyring", "does not encrypt"),
    ],
)
def test_keychain_refuses_missing_or_plaintext_backend(
    home: Path, backend: str, message: str
) -> None:
    result = Cli(home=home, env={"PYTHON_KEYRING_BACKEND": backend})("init", "--keychain")
    assert_one_line_error(result, 3, message)
    assert not (home / "vault.json").exists()


def test_secret_scan_over_a_whole_session(cli: Cli, home: Path) -> None:
    new_passphrase = "second passphrase ÿ"
    cli.ok("init")
    add_sftp(cli)
    cli.ok("account", "list")
    cli.ok("account", "list", "--json")
    cli.ok("account", "show", "adobe")
    cli.ok("account", "show", "adobe", "--json")
    cli(
        "account",
        "add",
        "adobe",
        "--agency",
        "adobestock",
        "--user",
        "me",
        "--password-stdin",
        input=PASSWORD + "\n",
    )  # duplicate: an error path
    cli("account", "remove", "adobe", env={"STOCKUP_PASSPHRASE": "not-the-passphrase"})  # another
    cli.ok("passphrase", "change", env={"STOCKUP_NEW_PASSPHRASE": new_passphrase})
    cli.ok("-v", "account", "remove", "adobe", env={"STOCKUP_PASSPHRASE": new_passphrase})
    secrets = [PASSWORD, PASSPHRASE, new_passphrase]
    outputs = {
        f"run {i} {r.args}": (r.stdout + r.stderr).encode() for i, r in enumerate(cli.history)
    }
    assert find_secret(secrets, outputs) == []
    assert find_secret(secrets, files_under(home, exclude=[home / "vault.json"])) == []
    assert find_secret(secrets, {"vault": (home / "vault.json").read_bytes()}) == []


def test_dropping_a_pin_or_swapping_the_ca_in_config_releases_no_password(
    cli: Cli, home: Path, tmp_path: Path, start_server: ServerFactory
) -> None:
    """The vault binds the password to the server and to how it is trusted."""
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_text("-----BEGIN CERTIFICATE-----\nnot ours\n-----END CERTIFICATE-----\n")
    with start_server("pyftpdlib-ftps") as server:
        cli.ok("init")
        add_account(cli, server, name="shop")
        cli.ok("account", "test", "shop")
        config = home / "config.toml"
        original = config.read_text()
        ca_file = str(server.info.ca_file)
        config.write_text(original.replace(ca_file, str(other_ca)))
        swapped = cli("account", "test", "shop")
        assert swapped.returncode == 3, swapped.output
        assert "way it is trusted" in swapped.stderr
        assert "stockup account password shop" in swapped.stderr
        config.write_text(original)
        pin = "ab" * 32
        cli.ok("account", "edit", "shop", "--pin-sha256", pin)  # through stockup: no password
        config.write_text(config.read_text().replace(f'pin_sha256 = "{pin}"\n', ""))
        dropped = cli("account", "test", "shop")
        assert dropped.returncode == 3 and "way it is trusted" in dropped.stderr
        cli.ok("account", "edit", "shop", "--pin-sha256", "", "--user", server.info.user,
               "--password-stdin", input=server.info.password + "\n")  # fmt: skip
        cli.ok("account", "test", "shop")


def test_init_warns_about_a_weak_passphrase(home: Path, tmp_path: Path) -> None:
    weak = Cli(home=tmp_path / "weak", env={"STOCKUP_PASSPHRASE": "password123"})
    result = weak.ok("init")
    assert "warning: this passphrase is weak" in result.stderr
    assert "password123" not in result.output
    strong = Cli(home=home, env={"STOCKUP_PASSPHRASE": PASSPHRASE})
    assert "weak" not in strong.ok("init").stderr
    changed = strong.ok("passphrase", "change", env={"STOCKUP_NEW_PASSPHRASE": "qwerty"})
    assert "this passphrase is weak" in changed.stderr


def test_a_passphrase_file_gives_its_first_line_only(home: Path, tmp_path: Path) -> None:
    secret_file = tmp_path / "pp"
    secret_file.write_text("first line is the passphrase\nsecond line is a note\n")
    cli = Cli(home=home)
    cli.ok("init", "--passphrase-file", str(secret_file))
    add = cli("account", "add", "a", "--agency", "adobestock", "--user", "u", "--password-stdin",
              input="pw\n", env={"STOCKUP_PASSPHRASE": "first line is the passphrase"})  # fmt: skip
    assert add.returncode == 0, add.output

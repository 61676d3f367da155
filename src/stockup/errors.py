"""One exception tree for the whole of stockup.

Every error a user can cause or meet derives from :class:`StockupError`; its
message is one line meant for the user, and never contains a secret. The CLI
prints that line and exits with the error's :attr:`exit_code`.

    StockupError
    ├── UsageError                bad arguments or input (exit 2)
    │   ├── ConfigError           unreadable or invalid config file
    │   ├── UnknownAgency
    │   ├── UnknownAccount
    │   ├── AccountExists
    │   ├── PlaintextRefused      plain FTP without --allow-plaintext
    │   └── EndpointNeedsLogin    an edit changes the server but gives no login
    ├── StateError                journal or local files unusable (exit 1)
    │   ├── JournalDamaged / JournalBusy
    │   ├── UploadBusy            another upload to the same account runs
    │   └── FileChanged           a file changed while it was being sent
    ├── PassphraseUnavailable     no passphrase source (exit 3)
    ├── VaultError                (exit 3)
    │   ├── VaultMissing / VaultExists
    │   ├── WrongPassphrase
    │   ├── VaultCorrupt          damaged, truncated or tampered file
    │   ├── VaultVersionError     written by a newer stockup
    │   ├── VaultLocked           another stockup holds the lock
    │   ├── EndpointChanged       account host/port/protocol edited since saved
    │   └── KeychainError         no usable OS keychain
    └── TransportError            talking to a server (exit 4); ``retryable``
        ├── retryable: ConnectFailed, TransferTimeout, ConnectionLost,
        │              TemporaryServerError,
        │              ProxyCannotReach (a ConnectFailed: the proxy's way on)
        └── final:     NameNotResolved, AuthenticationFailed,
                       ProxyAuthFailed (an AuthenticationFailed: the proxy's),
                       ProxyRefused (the proxy's rules forbid the server),
                       CertificateError, HostKeyUnknown, HostKeyChanged,
                       InsecureServer,
                       PermissionDenied, QuotaExceeded, ServerError
"""

from __future__ import annotations

from enum import IntEnum

from stockup.secret import redact


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    VAULT = 3
    TRANSPORT = 4
    INTERRUPTED = 130


class StockupError(Exception):
    exit_code: ExitCode = ExitCode.FAILURE


class UsageError(StockupError):
    """``setting`` names the account or upload setting the message is about
    (``host``, ``allow_plaintext`` ...), so that each front end can say how to
    give it: the CLI names its option, the web UI its form field."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class ConfigError(UsageError):
    pass


class UnknownAgency(UsageError):
    pass


class UnknownAccount(UsageError):
    pass


class AccountExists(UsageError):
    pass


class PlaintextRefused(UsageError):
    pass


class EndpointNeedsLogin(UsageError):
    """An edit moves an account to another server: its login must come too."""


class PassphraseUnavailable(StockupError):
    exit_code = ExitCode.VAULT


class VaultError(StockupError):
    exit_code = ExitCode.VAULT


class VaultMissing(VaultError):
    pass


class VaultExists(VaultError):
    pass


class WrongPassphrase(VaultError):
    pass


class VaultCorrupt(VaultError):
    pass


class VaultVersionError(VaultError):
    pass


class VaultLocked(VaultError):
    pass


class EndpointChanged(VaultError):
    pass


class KeychainError(VaultError):
    pass


class StateError(StockupError):
    """stockup's own files (the journal, its folders) cannot be used: damaged,
    a full disk, an OS error. The message says how to recover (exit 1)."""


class JournalDamaged(StateError):
    pass


class JournalBusy(StateError):
    pass


class UploadBusy(StateError):
    """Another stockup is uploading to the same account now."""


class FileChanged(StateError):
    """The local file changed while it was being sent (written in place by
    an editor): what the server got mixes old and new bytes, so it is not
    renamed into place; the engine sends the file again from its start."""


class TransportError(StockupError):
    """A failure talking to a server. ``retryable`` tells the engine whether
    trying again (resuming from the remote partial size) can help. The
    message is redacted when the error is made: it may quote a server's
    reply, and a server may echo a password back."""

    exit_code = ExitCode.TRANSPORT
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class ConnectFailed(TransportError):
    retryable = True


class TransferTimeout(TransportError):
    retryable = True


class ConnectionLost(TransportError):
    retryable = True


class TemporaryServerError(TransportError):
    retryable = True


class NameNotResolved(TransportError):
    pass


class AuthenticationFailed(TransportError):
    pass


class ProxyAuthFailed(AuthenticationFailed):
    """The proxy refused the proxy login (not the agency's)."""


class ProxyRefused(TransportError):
    """The proxy's own rules forbid connecting to the server."""


class ProxyCannotReach(ConnectFailed):
    """The proxy answered but could not reach the server (down, no route,
    a name the proxy cannot resolve)."""


class CertificateError(TransportError):
    pass


class HostKeyUnknown(TransportError):
    """``fingerprint`` is the key offered, for a front end to show before trusting it."""

    def __init__(self, message: str, fingerprint: str) -> None:
        super().__init__(message)
        self.fingerprint = fingerprint


class HostKeyChanged(TransportError):
    pass


class InsecureServer(TransportError):
    """The server offers only algorithms stockup refuses (SHA-1 in SSH)."""


class PermissionDenied(TransportError):
    pass


class QuotaExceeded(TransportError):
    pass


class ServerError(TransportError):
    pass

"""TLS settings and certificate facts shared by the FTPS code paths."""

from __future__ import annotations

import hashlib
import hmac
import socket
import ssl

from stockup.errors import CertificateError
from stockup.transports.base import ConnectionInfo, Endpoint

HOSTNAME_MISMATCH = {62, 64}  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH


def client_context(endpoint: Endpoint) -> ssl.SSLContext:
    """Verify against the system CAs (or the account's own CA file) with
    hostname checks, always; a pinned fingerprint replaces chain checks with
    an exact match on the leaf certificate, done by :func:`check_pin`."""
    if endpoint.pin_sha256:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=endpoint.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Key exchange on P-256, the group every TLS 1.3 server must implement
    # (RFC 8446, 9.1). OpenSSL's client offers an X25519 key share first, and
    # vsftpd, which sets P-256 alone, answers that with a HelloRetryRequest: a
    # round trip more on every connection, data connections included. Python
    # cannot set a list of groups before 3.13 (SSLContext.set_groups).
    context.set_ecdh_curve("prime256v1")
    return context


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def pretty_fingerprint(hex_digest: str) -> str:
    return ":".join(hex_digest[i : i + 2] for i in range(0, len(hex_digest), 2)).upper()


def check_pin(endpoint: Endpoint, sock: ssl.SSLSocket) -> None:
    if not endpoint.pin_sha256:
        return
    der = sock.getpeercert(binary_form=True) or b""
    actual = fingerprint(der)
    if not hmac.compare_digest(actual, endpoint.pin_sha256):
        raise CertificateError(
            f"{endpoint.host}: certificate SHA-256 {pretty_fingerprint(actual)} does not match "
            f"the pinned {pretty_fingerprint(endpoint.pin_sha256)}; refusing to log in"
        )


def describe(sock: ssl.SSLSocket, info: ConnectionInfo) -> None:
    """What ``info`` says about the TLS connection ``sock``."""
    der = sock.getpeercert(binary_form=True)
    cipher = sock.cipher()
    info.tls_version = sock.version()
    info.cipher = cipher[0] if cipher else None
    info.certificate_der = der or None
    info.certificate_sha256 = pretty_fingerprint(fingerprint(der)) if der else None


def verification_error(
    endpoint: Endpoint, exc: ssl.SSLCertVerificationError, der: bytes | None
) -> CertificateError:
    seen = f" (certificate SHA-256 {pretty_fingerprint(fingerprint(der))})" if der else ""
    if exc.verify_code in HOSTNAME_MISMATCH:
        return CertificateError(
            f"{endpoint.host}: hostname mismatch, the server's certificate is not valid for "
            f"{endpoint.host}{seen}; refusing to log in"
        )
    reason = exc.verify_message or exc.reason or "verification failed"
    return CertificateError(
        f"{endpoint.host}: certificate not trusted ({reason}){seen}; refusing to log in. "
        "For a private server, give the account its CA file, or pin this certificate's SHA-256"
    )


def peek_certificate(sock: socket.socket, host: str) -> bytes | None:
    """The server's leaf certificate without verifying it, only to show its
    fingerprint in an error message. Nothing is sent after the handshake."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            return tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None

"""TLS test helpers: real handshakes against a proxyd HTTPS listener (with SNI and ALPN) and
polling the certificate API until a condition holds."""

from __future__ import annotations

import socket
import ssl
import time

import attrs
import trio
from cryptography import x509
from cryptography.x509.oid import NameOID


@attrs.frozen
class Handshake:
    names: list[str]
    issuer_cn: str
    subject_cn: str
    fingerprint: str
    alpn: str | None
    cert: x509.Certificate


def handshake(
    port: int, server_name: str | None, *, alpn: list[str] | None = None, cadata: str | None = None
) -> Handshake:
    """Open a TLS connection to 127.0.0.1:port with SNI server_name; with cadata, verify the
    chain and the hostname against it (raises ssl.SSLCertVerificationError otherwise)."""
    context = ssl.create_default_context()
    if cadata is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cadata=cadata)
    context.set_alpn_protocols(alpn or ["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        selected = tls.selected_alpn_protocol()
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = sorted(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = []

    def cn(name: x509.Name) -> str:
        attrs_ = name.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(attrs_[0].value) if attrs_ else ""

    return Handshake(
        names=names,
        issuer_cn=cn(cert.issuer),
        subject_cn=cn(cert.subject),
        fingerprint=cert.fingerprint(cert.signature_hash_algorithm or _sha256()).hex(),
        alpn=selected,
        cert=cert,
    )


def _sha256():
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


def https_request(
    port: int, server_name: str, host: str, path: str = "/", cadata: str | None = None
) -> tuple[int, bytes]:
    """One HTTP/1.1 request over TLS (SNI server_name, Host host): (status, body)."""
    context = ssl.create_default_context()
    if cadata is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cadata=cadata)
    context.set_alpn_protocols(["http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        body = _unchunk(body)
    return status, body


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out


async def wait_until(check, timeout: float = 30, interval: float = 0.2, what: str = "condition"):
    """Await check() (sync or async) until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if hasattr(last, "__await__"):
            last = await last
        if last:
            return last
        await trio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")

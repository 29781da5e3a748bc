"""The certificate store behind the HTTPS listener: one SSL context whose SNI callback picks, per
server name, the context of the certificate to serve (all in memory, so a new, renewed or deleted
certificate takes effect at the next handshake).

Selection for a server name: a pending TLS-ALPN-01 challenge certificate (only when the client
offers `acme-tls/1`), the certificate named by the proxy's cert_name, a certificate whose domains
cover the name (exact, then wildcard), a self-signed certificate for a proxy with HTTPS enabled
(made on first use, ECDSA, cheap), and finally the default self-signed one (SELF_SIGNED_CN).

Two details hypercorn does not offer, solved here without touching its internals:
- The client's ALPN offer is not visible in Python's SNI callback, and the certificate is chosen
  there. `PeekingSSLObject` copies the ClientHello bytes out of the incoming memory BIO (and puts
  them straight back) before OpenSSL reads them, so the callback knows whether `acme-tls/1` was
  offered. Ordinary clients therefore never see a challenge certificate.
- The ASGI scope carries no TLS information. The SNI callback runs inside the connection's trio
  task, and hypercorn spawns each request's app task from that task, which inherits a copy of its
  context variables: `CONNECTION` therefore tells the dispatcher which certificate this connection
  was served (for 421 Misdirected Request).
"""

from __future__ import annotations

import contextvars
import logging
import os
import ssl
import struct
import tempfile
from collections.abc import Callable
from typing import Any

import attrs

from proxyd.tls.certificate import Certificate, covers, inspect_pem, self_signed

log = logging.getLogger("proxyd.tls")

HTTP_ALPN = ["h2", "http/1.1"]
HTTP1_ALPN = ["http/1.1"]  # EDGE_HTTP2=false
ACME_TLS_ALPN = "acme-tls/1"


@attrs.frozen
class Served:
    """A certificate ready to serve: its SSL context and the names it covers."""

    label: str
    names: frozenset[str]
    context: ssl.SSLContext
    fingerprint: str = ""


@attrs.frozen
class TlsConnection:
    server_name: str | None
    served: Served


CONNECTION: contextvars.ContextVar[TlsConnection | None] = contextvars.ContextVar(
    "proxyd_tls_connection", default=None
)


def server_context(cert_pem: str, key_pem: str, alpn: list[str] | None = None) -> ssl.SSLContext:
    """An SSL server context for one certificate chain and key (the key never touches disk when
    memfd is available)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.set_alpn_protocols(alpn or HTTP_ALPN)
    with _pem_file(cert_pem + "\n" + key_pem) as path:
        context.load_cert_chain(path)
    return context


class _pem_file:
    """A path holding data for the duration of a `with`: an anonymous memfd, else a 0600 file."""

    def __init__(self, data: str) -> None:
        self.data = data.encode()
        self.fd = -1
        self.path = ""

    def __enter__(self) -> str:
        if hasattr(os, "memfd_create"):
            self.fd = os.memfd_create("proxyd-pem", 0)
            os.write(self.fd, self.data)
            self.path = f"/proc/self/fd/{self.fd}"
        else:  # pragma: no cover - non-Linux
            self.fd, self.path = tempfile.mkstemp()
            os.write(self.fd, self.data)
        return self.path

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)
        if not self.path.startswith("/proc/"):  # pragma: no cover
            os.unlink(self.path)


def served_from_pem(
    label: str, cert_pem: str, key_pem: str, alpn: list[str] | None = None
) -> Served:
    info = inspect_pem(cert_pem)
    return Served(
        label=label,
        names=frozenset(info.names),
        context=server_context(cert_pem, key_pem, alpn),
        fingerprint=info.fingerprint,
    )


# -- ClientHello ALPN peeking ------------------------------------------------------------------------
def offered_alpn(hello: bytes) -> list[str] | None:
    """ALPN protocols in a TLS ClientHello (records concatenated); None while it is incomplete."""
    body = b""
    pos = 0
    while pos + 5 <= len(hello):
        kind, _, length = struct.unpack("!BHH", hello[pos : pos + 5])
        if kind != 22:
            return []
        body += hello[pos + 5 : pos + 5 + length]
        pos += 5 + length
        if len(body) >= 4:
            needed = 4 + int.from_bytes(body[1:4], "big")
            if len(body) >= needed:
                return _alpn_from_handshake(body[:needed])
    return None


def _alpn_from_handshake(msg: bytes) -> list[str]:
    try:
        if msg[0] != 1:
            return []
        p = 4 + 2 + 32
        p += 1 + msg[p]  # session id
        p += 2 + int.from_bytes(msg[p : p + 2], "big")  # cipher suites
        p += 1 + msg[p]  # compression methods
        end = p + 2 + int.from_bytes(msg[p : p + 2], "big")
        p += 2
        while p + 4 <= end:
            ext, size = struct.unpack("!HH", msg[p : p + 4])
            data = msg[p + 4 : p + 4 + size]
            p += 4 + size
            if ext == 16:  # application_layer_protocol_negotiation
                out, q = [], 2
                while q < len(data):
                    n = data[q]
                    out.append(data[q + 1 : q + 1 + n].decode("latin-1"))
                    q += 1 + n
                return out
    except IndexError:
        return []
    return []


class PeekingSSLObject(ssl.SSLObject):
    """An SSLObject that reads the client's ALPN offer before OpenSSL parses the ClientHello."""

    proxyd_incoming: ssl.MemoryBIO | None = None
    proxyd_hello: bytes = b""
    proxyd_alpn: list[str] | None = None

    def do_handshake(self) -> None:
        incoming = self.proxyd_incoming
        if incoming is not None and self.proxyd_alpn is None:
            data = incoming.read()
            incoming.write(data)  # hand every byte back, in order, before OpenSSL reads it
            self.proxyd_hello += data
            found = offered_alpn(self.proxyd_hello)
            if found is not None or len(self.proxyd_hello) > 65536:
                self.proxyd_alpn = found or []
                self.proxyd_incoming = None
                self.proxyd_hello = b""
        super().do_handshake()


class ListenerContext(ssl.SSLContext):
    """The listener's SSL context: hands every connection a PeekingSSLObject."""

    sslobject_class = PeekingSSLObject

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | None = None,
        session: Any = None,
    ) -> ssl.SSLObject:
        sslobj = super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)
        sslobj.proxyd_incoming = incoming
        return sslobj


class CertificateStore:
    """Certificates held in memory for SNI; filled and updated by the certificate manager."""

    def __init__(
        self,
        self_signed_cn: str = "localhost",
        self_signed_days: int = 365,
        proxy_lookup: Callable[[str], Any] = lambda _host: None,
        http2: bool = True,
    ) -> None:
        self.alpn = HTTP_ALPN if http2 else HTTP1_ALPN  # offered to clients on every certificate
        self.self_signed_cn = self_signed_cn
        self.self_signed_days = self_signed_days
        self.proxy_lookup = proxy_lookup
        self.certs: dict[str, Served] = {}  # cert name -> served
        self.domains: dict[str, str] = {}  # domain (or *.parent) -> cert name
        self.fallbacks: dict[str, Served] = {}  # hostname -> self-signed
        self.alpn_challenges: dict[str, Served] = {}  # domain -> acme-tls/1 challenge cert
        cert_pem, key_pem = self_signed([self_signed_cn], self_signed_cn, self_signed_days)
        self.default = served_from_pem("self-signed", cert_pem, key_pem, self.alpn)
        self.listener_context = self._listener_context(cert_pem, key_pem)

    def _listener_context(self, cert_pem: str, key_pem: str) -> ssl.SSLContext:
        context = ListenerContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
        context.set_alpn_protocols([*self.alpn, ACME_TLS_ALPN])
        with _pem_file(cert_pem + "\n" + key_pem) as path:
            context.load_cert_chain(path)
        context.sni_callback = self._sni
        return context

    # -- updates (from the certificate manager) ----------------------------------------------------
    def put(self, cert: Certificate) -> bool:
        """Serve cert (when it has PEMs); True when it is now served."""
        if not cert.fullchain_pem or not cert.private_key_pem:
            self.remove(cert.cert_name)
            return False
        current = self.certs.get(cert.cert_name)
        if current is not None and current.fingerprint == cert.fingerprint:
            return True
        served = served_from_pem(
            cert.cert_name, cert.fullchain_pem, cert.private_key_pem, self.alpn
        )
        self._unmap(cert.cert_name)
        self.certs[cert.cert_name] = served
        for name in served.names:
            self.domains[name] = cert.cert_name
            self.fallbacks.pop(name, None)
        log.info(
            "serving certificate %s for %s (sha256 %s)",
            cert.cert_name,
            ", ".join(sorted(served.names)),
            served.fingerprint[:16],
        )
        return True

    def remove(self, cert_name: str) -> None:
        if self.certs.pop(cert_name, None) is not None:
            log.info("certificate %s is no longer served", cert_name)
        self._unmap(cert_name)

    def _unmap(self, cert_name: str) -> None:
        for domain in [d for d, n in self.domains.items() if n == cert_name]:
            del self.domains[domain]

    def set_alpn_challenge(self, domain: str, cert_pem: str, key_pem: str) -> None:
        context = server_context(cert_pem, key_pem, alpn=[ACME_TLS_ALPN])
        self.alpn_challenges[domain] = Served(f"acme-tls/1:{domain}", frozenset(), context)

    def clear_alpn_challenge(self, domain: str) -> None:
        self.alpn_challenges.pop(domain, None)

    # -- selection (handshake path: dict lookups only) -------------------------------------------
    def select(self, server_name: str | None, alpn: list[str] | None = None) -> Served:
        if not server_name:
            return self.default
        host = server_name.lower().rstrip(".")
        if alpn and ACME_TLS_ALPN in alpn:
            challenge = self.alpn_challenges.get(host)
            if challenge is not None:
                return challenge
        proxy = self.proxy_lookup(host)
        if proxy is not None and proxy.cert_name:
            served = self.certs.get(proxy.cert_name)
            if served is not None and covers(served.names, host):
                return served
        name = self.domains.get(host)
        if name is None:
            _, dot, parent = host.partition(".")
            name = self.domains.get(f"*.{parent}") if dot else None
        if name is not None and name in self.certs:
            return self.certs[name]
        if proxy is not None and proxy.enable_https:
            return self.fallback(host)
        return self.default

    def fallback(self, host: str) -> Served:
        """The self-signed certificate for host (made once, ECDSA P-256: about a millisecond)."""
        served = self.fallbacks.get(host)
        if served is None:
            cert_pem, key_pem = self_signed(
                [host, self.self_signed_cn], self.self_signed_cn, self.self_signed_days
            )
            served = served_from_pem(f"self-signed:{host}", cert_pem, key_pem, self.alpn)
            self.fallbacks[host] = served
        return served

    def _sni(self, sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        try:
            served = self.select(server_name, getattr(sslobj, "proxyd_alpn", None))
            if served is not self.default:
                sslobj.context = served.context
            CONNECTION.set(TlsConnection(server_name, served))
        except Exception:  # a failing callback would abort the handshake without a trace
            log.exception("choosing a certificate for %r failed", server_name)
            CONNECTION.set(TlsConnection(server_name, self.default))

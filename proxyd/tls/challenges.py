"""ACME challenge responders.

- HTTP-01: `Http01Responder` answers GET /.well-known/acme-challenge/{token} on the public
  listeners for every hostname, ahead of routes and auth (the dispatcher calls it first). Tokens
  live in this process's memory and in Redis (acme:http01:{token}, short TTL), so whichever proxyd
  process the CA reaches can answer.
- TLS-ALPN-01 (RFC 8737): `tls_alpn_certificate` builds the self-signed validation certificate
  with the critical acmeIdentifier extension; the certificate store serves it only to clients
  that offer the `acme-tls/1` protocol. It is shared through acme:tlsalpn:{domain} and an
  `acme_challenge` event so every process serves it.
"""

from __future__ import annotations

import hashlib
import json
import re

import coredis
from cryptography import x509

from proxyd.tls.certificate import self_signed

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22,128}$")
CHALLENGE_TTL = 900
ACME_IDENTIFIER_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")


def http01_key(token: str) -> str:
    return f"acme:http01:{token}"


def tls_alpn_key(domain: str) -> str:
    return f"acme:tlsalpn:{domain}"


def tls_alpn_certificate(domain: str, key_authorization: str) -> tuple[str, str]:
    """The RFC 8737 validation certificate for domain: (cert PEM, key PEM)."""
    digest = hashlib.sha256(key_authorization.encode()).digest()
    extension = x509.UnrecognizedExtension(ACME_IDENTIFIER_OID, b"\x04\x20" + digest)
    return self_signed([domain], domain, 1, extensions=[(extension, True)])


class Http01Responder:
    """HTTP-01 key authorizations by token: this process's, else any process's (Redis)."""

    def __init__(self, redis: coredis.Redis) -> None:
        self.redis = redis
        self.local: dict[str, str] = {}

    async def provide(self, token: str, key_authorization: str) -> None:
        self.local[token] = key_authorization
        await self.redis.set(http01_key(token), key_authorization, ex=CHALLENGE_TTL)

    async def withdraw(self, token: str) -> None:
        self.local.pop(token, None)
        await self.redis.delete([http01_key(token)])

    async def answer(self, scope: dict, send) -> None:
        """Answer one request under /.well-known/acme-challenge/ (200 with the key
        authorization, or 404)."""
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        token = scope["path"][len(CHALLENGE_PREFIX) :]
        value = self.local.get(token)
        if value is None and _TOKEN.match(token):
            # Another instance may have started the order: one Redis read, for well-formed
            # tokens only (ACME tokens are base64url, at least 128 bits).
            raw = await self.redis.get(http01_key(token))
            value = raw.decode() if isinstance(raw, bytes) else raw
        if value is None or scope.get("method") not in ("GET", "HEAD"):
            await _plain(scope, send, 404, b"404 Not Found: no such ACME challenge.\n")
            return
        await _plain(scope, send, 200, value.encode())


async def _plain(scope: dict, send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


def tls_alpn_record(cert_pem: str, key_pem: str) -> str:
    return json.dumps({"cert": cert_pem, "key": key_pem})

"""Client ID Metadata Documents: a client_id that is an https URL names a JSON document
describing the client, fetched here with SSRF protection.

The host is resolved first and every address must be public (no loopback, private, link-local,
multicast or reserved ranges) unless OAUTH_CIMD_ALLOW_PRIVATE is set for local development (then
plain http on loopback is accepted too). The request then goes to the vetted address itself (Host
header and TLS SNI keep the name), so a second DNS answer cannot redirect it. No redirects, 5 s,
64 KiB at most; the document's client_id must equal the URL exactly; Cache-Control max-age is
honoured (default 5 minutes, at most a day; no-store is not cached). Only the fields a document may
set are used (client_from_document); its redirect_uris follow proxyd.oauth.redirects.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import trio

from proxyd.oauth.registration import validate_metadata
from proxyd.oauth.server import OAuthFailure

MAX_BYTES = 64 * 1024
MAX_CACHED = 1000
DOCUMENT_GRANTS = ("authorization_code", "refresh_token")
DOCUMENT_FIELDS = (
    "redirect_uris",
    "response_types",
    "client_name",
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "software_id",
    "software_version",
    "contacts",
)
TIMEOUT = 5.0
_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def is_cimd(client_id: str) -> bool:
    return client_id.startswith(("https://", "http://"))


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved)


def _fail(message: str) -> OAuthFailure:
    return OAuthFailure("invalid_client", f"client metadata document: {message}")


async def fetch(url: str, allow_private: bool) -> dict[str, Any]:
    cached = _cache.get(url)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    parts = urlsplit(url)
    loopback_http = allow_private and parts.scheme == "http"
    if (parts.scheme != "https" and not loopback_http) or not parts.hostname:
        raise _fail("the client_id URL must be https.")
    if parts.path in ("", "/") or parts.fragment or parts.username or parts.password:
        raise _fail("the client_id URL needs a path and no fragment or credentials.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await trio.socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError:
        raise _fail(f"{parts.hostname} does not resolve.") from None
    addresses = [info[4][0] for info in infos]
    if not allow_private and not all(_public(a) for a in addresses):
        raise _fail(f"{parts.hostname} resolves to a private or local address; refused.")
    address = addresses[0]
    host = f"[{address}]" if ":" in address else address
    target = f"{parts.scheme}://{host}:{port}{parts.path}" + (
        f"?{parts.query}" if parts.query else ""
    )
    import httpx  # loaded on the first fetch: most processes never need an HTTP client

    try:
        async with (
            httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client,
            client.stream(
                "GET",
                target,
                headers={"Host": parts.netloc, "Accept": "application/json"},
                extensions={"sni_hostname": parts.hostname},
            ) as response,
        ):
            if response.status_code != 200:
                raise _fail(f"fetching it answered HTTP {response.status_code}.")
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_BYTES:
                    raise _fail("it is larger than 64 KiB.")
            cache_control = response.headers.get("cache-control", "")
    except httpx.HTTPError as exc:
        raise _fail(f"it could not be fetched ({type(exc).__name__}).") from None
    try:
        doc = json.loads(body)
    except ValueError:
        raise _fail("it is not JSON.") from None
    if not isinstance(doc, dict) or doc.get("client_id") != url:
        raise _fail("its client_id does not equal its URL.")
    client = client_from_document(doc)
    if "no-store" not in cache_control:
        match = re.search(r"max-age=(\d+)", cache_control)
        max_age = min(int(match.group(1)), 86400) if match else 300
        if len(_cache) >= MAX_CACHED:
            _cache.pop(next(iter(_cache)))
        _cache[url] = (time.monotonic() + max_age, client)
    return client


def client_from_document(doc: dict[str, Any]) -> dict[str, Any]:
    """The client a document describes, built only from the fields a document may set; its
    redirect_uris pass the same rules as dynamic registration. Anything else it says (secrets,
    proxyd-internal fields such as proxy_callback_host) is ignored."""
    uris = doc.get("redirect_uris")
    if not isinstance(uris, list) or not uris:
        raise _fail("it lists no redirect_uris.")
    if doc.get("client_secret") or doc.get("token_endpoint_auth_method", "none") != "none":
        raise _fail("only public clients (token_endpoint_auth_method none) are supported.")
    grants = doc.get("grant_types") or ["authorization_code", "refresh_token"]
    if not isinstance(grants, list) or any(g not in DOCUMENT_GRANTS for g in grants):
        raise _fail(f"grant_types must be among {', '.join(DOCUMENT_GRANTS)}.")
    entitled = {k: doc[k] for k in DOCUMENT_FIELDS if k in doc}
    try:
        client = validate_metadata(
            {**entitled, "grant_types": grants, "token_endpoint_auth_method": "none"}
        )
    except OAuthFailure as exc:
        raise _fail(exc.description) from None
    client["client_id"] = doc["client_id"]
    return client

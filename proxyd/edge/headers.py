"""Header handling at the edge: who the client really is, which headers may cross the proxy,
and the X-Forwarded-* set proxyd adds.

Client-sent identity headers are never believed from untrusted peers: X-Forwarded-*, Forwarded and
X-Real-IP are removed unless the TCP peer is in TRUSTED_PROXIES, and X-Auth-* (the identity headers
proxyd itself sets for backends) are removed from every request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache

Headers = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Client-address headers that backends and frameworks believe: stripped from untrusted peers.
FORWARDED_HEADERS = frozenset(
    {
        b"forwarded",
        b"x-real-ip",
        b"true-client-ip",
        b"cf-connecting-ip",
        b"x-client-ip",
        b"x-cluster-client-ip",
    }
)
FORWARDED_PREFIX = b"x-forwarded-"
FRAMING = frozenset({b"content-length", b"transfer-encoding"})
_DROP_UPSTREAM = HOP_BY_HOP | FRAMING
AUTH_PREFIX = b"x-auth-"


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The header names a Connection header lists (removed as hop-by-hop too)."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b","))
    return frozenset(tokens)


def _dropped(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Hop-by-hop names to remove: the fixed set, plus what Connection lists (rare)."""
    for name, value in headers:
        if name == b"connection" and value.lower() not in _PLAIN_CONNECTION:
            return HOP_BY_HOP | _connection_tokens(headers)
    return HOP_BY_HOP


# Connection values that name no other header (the usual ones): nothing to add to the drop set.
_PLAIN_CONNECTION = frozenset({b"keep-alive", b"close", b"upgrade"})


@lru_cache(maxsize=4096)
def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def is_trusted(peer: str | None, trusted: Sequence) -> bool:
    if not peer or not trusted:
        return False
    ip = _parse_ip(peer)
    return ip is not None and any(ip in net for net in trusted)


def client_ip(peer: str | None, headers: Headers, trusted: Sequence) -> str:
    """The real client address: the TCP peer, or from a trusted peer the right-most address in
    X-Forwarded-For that is not itself a trusted proxy."""
    peer = peer or ""
    if not is_trusted(peer, trusted):
        return peer
    chain = [
        part.strip()
        for name, value in headers
        if name == b"x-forwarded-for"
        for part in value.decode("latin-1").split(",")
    ]
    for address in reversed(chain):
        if _parse_ip(address) is not None and not is_trusted(address, trusted):
            return address
    return peer


def upstream_request_headers(
    headers: Headers,
    *,
    peer: str | None,
    client: str,
    scheme: str,
    host: str,
    trusted: Sequence,
    auth_prefix: bytes = AUTH_PREFIX,
    preserve_host: bool,
    upstream_host: bytes,
    extra: dict[str, str] | None = None,
    allow_underscores: bool = False,
) -> Headers:
    """The request headers to send upstream.

    Hop-by-hop headers, framing headers (Content-Length, Transfer-Encoding: the forwarder
    computes the framing of what it sends) and Host are removed, names with an underscore are
    dropped unless allow_underscores, and every comparison below folds case and `_` to `-`, so
    `X_Auth_User` is X-Auth-User for the identity and forwarding rules (CGI, WSGI and PHP
    backends read both spellings as the same variable).
    """
    from_trusted = is_trusted(peer, trusted)
    drop = _dropped(headers)
    drop = _DROP_UPSTREAM if drop is HOP_BY_HOP else drop | FRAMING
    auth_prefix = auth_prefix.lower().replace(b"_", b"-")
    out: Headers = []
    prior_xff = b""
    prior_proto = prior_host = None
    for original, value in headers:
        name = original
        if b"_" in name:
            if not allow_underscores:
                continue
            name = name.replace(b"_", b"-")
        if name in drop or name == b"host":
            continue
        if name.startswith((AUTH_PREFIX, auth_prefix)):
            continue
        if name.startswith(FORWARDED_PREFIX) or name in FORWARDED_HEADERS:
            if original is not name:
                continue  # an underscore spelling of a forwarding header: never believed
            if from_trusted:
                if name == b"x-forwarded-for":
                    prior_xff = prior_xff + b", " + value if prior_xff else value
                elif name == b"x-forwarded-proto":
                    prior_proto = value
                elif name == b"x-forwarded-host":
                    prior_host = value
                elif name not in (b"x-real-ip",):
                    out.append((name, value))
            continue
        out.append((original, value))
    peer_bytes = (peer or "").encode("latin-1")
    xff = prior_xff + b", " + peer_bytes if prior_xff else peer_bytes
    out.append((b"host", host.encode("latin-1") if preserve_host else upstream_host))
    out.append((b"x-forwarded-for", xff))
    out.append((b"x-forwarded-proto", prior_proto or scheme.encode("latin-1")))
    out.append((b"x-forwarded-host", prior_host or host.encode("latin-1")))
    out.append((b"x-real-ip", client.encode("latin-1")))
    if extra:
        out = _with_extra(out, extra)
    return out


# extra headers (as given) -> their encoded fields: the same few sets (a proxy's custom headers,
# a user's identity headers) come with every request. Read only; bounded.
_EXTRA_FIELDS: dict[tuple[tuple[str, str], ...], dict[bytes, bytes]] = {}


def _with_extra(headers: Headers, extra: dict[str, str]) -> Headers:
    """headers with each extra header set: every field of its lower-cased name replaced by one
    with the extra value; a name given twice takes its last value, in the place of its last
    mention. One pass over headers, whatever the number of extras."""
    memo = tuple(extra.items())
    final = _EXTRA_FIELDS.get(memo)
    if final is None:
        final = {}
        for key, val in extra.items():
            lowered = key.lower().encode("latin-1")
            final.pop(lowered, None)  # as if set again: it moves to the end
            final[lowered] = val.encode("latin-1")
        if len(_EXTRA_FIELDS) >= 512:
            _EXTRA_FIELDS.clear()
        _EXTRA_FIELDS[memo] = final
    out = [(n, v) for n, v in headers if n not in final]
    out.extend(final.items())
    return out


def downstream_response_headers(
    headers: Iterable[tuple[bytes, bytes]], extra: dict[str, str] | None = None
) -> Headers:
    """Upstream response headers fit to send to the client (hop-by-hop removed, extras set)."""
    # Names arrive lower-cased from proxyd's upstream client.
    drop = _dropped(headers)
    out = [(n, v) for n, v in headers if n not in drop]
    if extra:
        out = _with_extra(out, extra)
    return out


def header_value(headers: Headers, name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def request_host(headers: Headers) -> str:
    """The Host header, lower-cased and without its port ('' when missing)."""
    raw = header_value(headers, b"host")
    if not raw:
        return ""
    host = _HOSTS.get(raw)
    if host is None:
        host = raw.decode("latin-1").strip().lower()
        if host.startswith("["):
            host = host.split("]", 1)[0] + "]"
        else:
            host = (host.rsplit(":", 1)[0] if ":" in host else host).rstrip(".")
        if len(raw) <= 300:  # bounded memory: at most 1024 short entries
            if len(_HOSTS) >= 1024:
                _HOSTS.clear()
            _HOSTS[raw] = host
    return host


_HOSTS: dict[bytes, str] = {}  # Host header -> request_host(): the same few on every request

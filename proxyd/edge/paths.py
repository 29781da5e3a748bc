"""Request paths: the one normalised form that auth, routes and the upstream all see.

Policy (README, "The edge"): proxyd normalises and forwards.
- Percent-escapes of unreserved characters are decoded (RFC 3986 §6.2.2.2: `%2e` is `.`,
  `%7E` is `~`); every other escape is kept, with upper-case hex.
- Dot segments are then removed (RFC 3986 §5.2.4), so `/public/../secret` and
  `/public/%2e%2e/secret` are both `/secret`, for the auth check, the route match and the upstream.
- On auth-enabled proxies an encoded slash or backslash (`%2F`, `%5C`) or a literal backslash is
  refused with 400: backends disagree on whether it separates segments, so no single decision
  about it could be right. Elsewhere those pass unchanged.
- NUL (`%00`) and malformed escapes are refused everywhere.

`decision_path` is the percent-decoded form (UTF-8, undecodable bytes kept as surrogates) that
route prefixes, regexes and excluded auth paths are compared with.
"""

from __future__ import annotations

from functools import lru_cache

_HEX = b"0123456789abcdefABCDEF"
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_AMBIGUOUS = (b"%2F", b"%5C")


class PathError(ValueError):
    """The path cannot be accepted; the message is the sentence for the 400 answer."""


def _normalise_escapes(raw: bytes) -> bytes:
    out = bytearray()
    i = 0
    n = len(raw)
    while i < n:
        c = raw[i]
        if c != 0x25:  # '%'
            out.append(c)
            i += 1
            continue
        pair = raw[i + 1 : i + 3]
        if len(pair) != 2 or pair[0] not in _HEX or pair[1] not in _HEX:
            raise PathError("the path has a malformed percent-escape.")
        value = int(pair, 16)
        if value == 0:
            raise PathError("the path contains an encoded NUL byte.")
        if value in _UNRESERVED:
            out.append(value)
        else:
            out += b"%" + pair.upper()
        i += 3
    return bytes(out)


def _remove_dot_segments(path: bytes) -> bytes:
    segments = path.split(b"/")
    out: list[bytes] = []
    for index, segment in enumerate(segments[1:], 1):
        last = index == len(segments) - 1
        if segment == b".":
            if last:
                out.append(b"")
            continue
        if segment == b"..":
            if out:
                out.pop()
            if last:
                out.append(b"")
            continue
        out.append(segment)
    return b"/" + b"/".join(out)


def _decode(raw: bytes) -> str:
    if b"%" not in raw:
        return raw.decode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x25:
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", "surrogateescape")


@lru_cache(maxsize=8192)
def normalise(raw: bytes, strict: bool) -> tuple[bytes, str]:
    """(the path to forward, the decoded path for decisions), or PathError.

    raw is the path part of an origin-form target (starting with "/", no query). strict is true
    on auth-enabled proxies (ambiguous slashes refused).
    """
    if strict and (b"\\" in raw or b"%" in raw and any(a in raw.upper() for a in _AMBIGUOUS)):
        raise PathError(
            "encoded slashes and backslashes are not accepted in paths on this proxy "
            "(write / as a plain slash)."
        )
    path = _normalise_escapes(raw) if b"%" in raw else raw
    if b"/." in path:
        path = _remove_dot_segments(path)
    return path, _decode(path)

"""The HTTP/1.1 wire pieces the edge's h1 server shares between its connection loop
(proxyd.edge.h1) and its request/response exchange (proxyd.edge.h1_exchange): limits, the
refusal type, the error answer, the parsed head, absolute-form request targets, status reasons
and the Date header.
"""

from __future__ import annotations

import re
import time
from email.utils import formatdate
from typing import Any

import attrs

HEAD_READ_SIZE = 64 * 1024  # request heads (and small bodies)
BODY_READ_SIZE = 1024 * 1024  # a large body arrives in few reads; nothing is held between reads
Headers = list[tuple[bytes, bytes]]

END = None  # queue marker: the request's body is complete
HOST = re.compile(rb"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::[0-9]{1,5})?$")
BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
REASONS = {
    100: b"Continue",
    101: b"Switching Protocols",
    200: b"OK",
    201: b"Created",
    204: b"No Content",
    206: b"Partial Content",
    301: b"Moved Permanently",
    302: b"Found",
    303: b"See Other",
    304: b"Not Modified",
    307: b"Temporary Redirect",
    308: b"Permanent Redirect",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    413: b"Content Too Large",
    414: b"URI Too Long",
    421: b"Misdirected Request",
    429: b"Too Many Requests",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
    505: b"HTTP Version Not Supported",
    508: b"Loop Detected",
}
SKIP_RESPONSE = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"date", b"upgrade"}
)
NO_BODY = frozenset({204, 304})


@attrs.frozen
class EdgeLimits:
    """The h1 server's limits and timeouts (settings EDGE_*)."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 15.0
    send_timeout: float = 60.0
    max_requests: int = 1000
    max_request_line: int = 8192
    max_header_bytes: int = 32768
    max_headers: int = 100
    max_connections: int = 10000
    pass_server_header: bool = False

    @classmethod
    def from_settings(cls, settings: Any) -> EdgeLimits:
        return cls(
            header_timeout=settings.edge_header_timeout,
            body_timeout=settings.edge_body_timeout,
            keepalive_timeout=settings.edge_keepalive_timeout,
            send_timeout=settings.edge_send_timeout,
            max_requests=settings.edge_max_requests_per_connection,
            max_request_line=settings.edge_max_request_line,
            max_header_bytes=settings.edge_max_header_bytes,
            max_headers=settings.edge_max_headers,
            max_connections=settings.edge_max_connections,
            pass_server_header=settings.edge_pass_server_header,
        )


class Refusal(Exception):
    """A request proxyd will not read any further: status and one sentence, then close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Date:
    """The Date header value, formatted at most once per second."""

    second = -1
    value = b""

    @classmethod
    def now(cls) -> bytes:
        second = int(time.time())
        if second != cls.second:
            cls.second = second
            cls.value = formatdate(second, usegmt=True).encode()
        return cls.value


def reason(status: int) -> bytes:
    return REASONS.get(status, b"Unknown")


def status_line(status: int) -> bytes:
    """b"HTTP/1.1 200 OK" for status (made once per status)."""
    line = _STATUS_LINES.get(status)
    if line is None:
        line = b"HTTP/1.1 %d %s" % (status, reason(status))
        if len(_STATUS_LINES) < 1000:
            _STATUS_LINES[status] = line
    return line


_STATUS_LINES: dict[int, bytes] = {}


def valid_host(value: bytes) -> bool:
    """HOST.match(value), remembered for the few Host values a server sees."""
    ok = _VALID_HOSTS.get(value)
    if ok is None:
        ok = HOST.match(value) is not None
        if len(value) <= 300:  # bounded memory: at most 1024 short entries
            if len(_VALID_HOSTS) >= 1024:
                _VALID_HOSTS.clear()
            _VALID_HOSTS[value] = ok
    return ok


_VALID_HOSTS: dict[bytes, bool] = {}


# Refusals both protocols give in the same words.
BODY_STALLED = "408 Request Timeout: the request body stalled and was not completed."
CONNECT_REFUSED = "405 Method Not Allowed: CONNECT is not supported by this proxy."


def error_response(status: int, message: str) -> bytes:
    """A complete plain-text response that closes the connection."""
    body = (message.rstrip("\n") + "\n").encode()
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
        b"cache-control: no-store\r\nx-content-type-options: nosniff\r\ndate: %s\r\n"
        b"connection: close\r\n\r\n%s" % (status, reason(status), len(body), Date.now(), body)
    )


class Head:
    """What the parser collected for one request head."""

    __slots__ = ("expect", "headers", "keep_alive", "method", "target", "upgrade", "version")

    def __init__(self) -> None:
        self.target = bytearray()
        self.headers: Headers = []
        self.method = b""
        self.version = ""
        self.upgrade: bytes | None = None
        self.keep_alive = True
        self.expect = False


_ABSOLUTE = re.compile(rb"^[Hh][Tt][Tt][Pp][Ss]?://([^/?#@\\\s]+)(/[^?#]*)?(?:\?([^#]*))?$")


def absolute_form(target: bytes) -> tuple[bytes, bytes, bytes]:
    """(authority, path, query) of an absolute-form target (RFC 9112 §3.2.2)."""
    match = _ABSOLUTE.match(target)
    if match is None or not HOST.match(match.group(1)):
        raise Refusal(
            400, "400 Bad Request: the request target is neither a path nor an http(s) URL."
        )
    return match.group(1).lower(), match.group(2) or b"/", match.group(3) or b""

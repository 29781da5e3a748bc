"""A raw HTTP/1.1 client for conformance tests: send exact bytes, read whole responses (1xx,
HEAD, 204 and 304 without a body; Content-Length, chunked or until-close framing) and tell whether
the server closed the connection. Every read is bounded by a timeout.
"""

from __future__ import annotations

import re
import socket
import time
from typing import Self


class Response:
    def __init__(self, version: bytes, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.version = version
        self.status = status
        self.headers = headers
        self.body = b""
        self.trailers: list[bytes] = []  # trailer lines of a chunked body, as sent

    def header(self, name: str) -> list[bytes]:
        wanted = name.lower().encode()
        return [v for n, v in self.headers if n.lower() == wanted]

    def __repr__(self) -> str:
        return f"<{self.status} {self.headers} {self.body[:200]!r}>"


class Raw:
    """One client connection: send exact bytes, read whole responses, see whether the server
    closed. Every read is bounded by `timeout` seconds (socket.timeout -> the test fails)."""

    def __init__(self, port: int, timeout: float = 2.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.buffer = bytearray()
        self.eof = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        """Read more into the buffer; False on EOF or reset. Raises TimeoutError at deadline."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete response in time")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        except TimeoutError:
            raise TimeoutError("no complete response in time") from None
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def response(self, method: str = "GET", timeout: float | None = None) -> Response | None:
        """The next response (1xx included), or None if the server closed before any byte."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            if not self._fill(deadline):
                if not self.buffer:
                    return None
                raise AssertionError(f"connection closed mid-head: {bytes(self.buffer)!r}")
        head = bytes(self.buffer[:end]).split(b"\r\n")
        del self.buffer[: end + 4]
        match = re.fullmatch(rb"(HTTP/\d\.\d) (\d{3})(?: .*)?", head[0])
        assert match, f"not a status line: {head[0]!r}"
        headers = []
        for line in head[1:]:
            name, sep, value = line.partition(b":")
            assert sep and name and name.strip() == name, f"malformed header line {line!r}"
            headers.append((name, value.strip(b" \t")))
        response = Response(match[1], int(match[2]), headers)
        status = response.status
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return response
        if any(b"chunked" in v.lower() for v in response.header("transfer-encoding")):
            response.body = self._chunked(response, deadline)
        elif lengths := response.header("content-length"):
            assert len(lengths) == 1, f"several Content-Length headers: {lengths}"
            size = int(lengths[0])
            while len(self.buffer) < size:
                if not self._fill(deadline):
                    raise AssertionError("connection closed mid-body")
            response.body = bytes(self.buffer[:size])
            del self.buffer[:size]
        else:
            while self._fill(deadline):
                pass
            response.body = bytes(self.buffer)
            self.buffer.clear()
        return response

    def _line(self, deadline: float) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if not self._fill(deadline):
                raise AssertionError("connection closed mid-chunk")
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    def _chunked(self, response: Response, deadline: float) -> bytes:
        body = b""
        while size := int(self._line(deadline).split(b";")[0], 16):
            while len(self.buffer) < size + 2:
                if not self._fill(deadline):
                    raise AssertionError("connection closed mid-chunk")
            body += bytes(self.buffer[:size])
            del self.buffer[: size + 2]
        while line := self._line(deadline):
            response.trailers.append(line)
        return body

    def closed(self, within: float = 2.0) -> bool:
        """Whether the server closes the connection within `within` seconds (reading and
        keeping whatever else arrives first)."""
        deadline = time.monotonic() + within
        try:
            while self._fill(deadline):
                pass
        except TimeoutError:
            return False
        return True


def request(
    host: str = "open.test",
    path: str = "/",
    method: str = "GET",
    headers: list[str] = (),
    body: bytes = b"",
    version: str = "1.1",
) -> bytes:
    lines = [f"{method} {path} HTTP/{version}", f"Host: {host}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data)

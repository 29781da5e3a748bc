"""Large bodies over real loopback sockets: a raw HTTP/1.1 backend (in the test's trio loop) that
serves deterministic pseudo-random bodies, hashes uploads, cuts or stalls responses on request
and records when proxyd closes a connection on it; and a raw trio client that reads whole
responses (hashing the body, never keeping it) and tells whether the server closed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from functools import cache

import attrs
import trio

READ = 256 * 1024


@cache
def blob(size: int, seed: int = 1) -> bytes:
    """The body /blob, /short and /drip serve: `size` pseudo-random bytes."""
    return random.Random(seed).randbytes(size)


class Reader:
    """Buffered reads from a trio stream."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.eof = False

    async def fill(self) -> bool:
        try:
            data = await self.stream.receive_some(READ)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    async def until(self, sep: bytes, limit: int = 64 * 1024) -> bytes | None:
        while (end := self.buf.find(sep)) < 0:
            if len(self.buf) > limit or not await self.fill():
                return None
        line = bytes(self.buf[:end])
        del self.buf[: end + len(sep)]
        return line

    async def body(self, size: int, digest) -> int:
        """Read up to `size` bytes into digest; returns how many arrived before EOF."""
        got = 0
        while got < size:
            if not self.buf and not await self.fill():
                break
            take = bytes(self.buf[: size - got])
            del self.buf[: len(take)]
            digest.update(take)
            got += len(take)
        return got


def _head(raw: bytes) -> tuple[list[bytes], dict[bytes, bytes]]:
    lines = raw.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return lines[0].split(b" "), headers


@attrs.define
class BulkBackend:
    port: int = 0
    events: list[str] = attrs.Factory(list)
    uploads: list[dict] = attrs.Factory(list)
    targets: list[bytes] = attrs.Factory(list)  # every request target parsed, in order
    heads: list[dict[bytes, bytes]] = attrs.Factory(list)  # their headers, in the same order

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_for(self, event: str, timeout: float = 5.0) -> None:
        with trio.fail_after(timeout):
            while event not in self.events:
                await trio.sleep(0.02)

    async def connection(self, stream: trio.SocketStream) -> None:
        reader = Reader(stream)
        try:
            while True:
                raw = await reader.until(b"\r\n\r\n")
                if raw is None:
                    return
                (method, target, _), headers = _head(raw)
                self.targets.append(target)
                self.heads.append(headers)
                path, _, query = target.partition(b"?")
                args = dict(p.split(b"=", 1) for p in query.split(b"&") if b"=" in p)
                size = int(args.get(b"bytes", b"0"))
                send = int(args.get(b"send", b"0"))
                if path == b"/hash":
                    length = int(headers.get(b"content-length", b"0"))
                    digest = hashlib.sha256()
                    got = await reader.body(length, digest)
                    if got < length:
                        self.events.append("upload-cut")
                        return
                    result = {"bytes": got, "sha256": digest.hexdigest()}
                    self.uploads.append(result)
                    body = json.dumps(result).encode()
                    await stream.send_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                        b"content-length: %d\r\n\r\n%s" % (len(body), body)
                    )
                    continue
                head = b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n"
                head += b"x-served: %s\r\ncontent-length: %d\r\n\r\n" % (path[1:], size)
                if method == b"HEAD":
                    await stream.send_all(head)
                    continue
                if path == b"/blob":
                    await stream.send_all(head + blob(size))
                    continue
                # blob(n) is the start of blob(m) for n a multiple of 4 (random 32-bit words
                # in order): no need to make all `size` bytes (over 256 MiB it cannot).
                start = blob(send) if send % 4 == 0 else blob(size)[:send]
                await stream.send_all(head + start)
                if path == b"/short":
                    return  # closes with the body cut short
                # /drip: stall after `send` bytes until proxyd closes the connection
                while await reader.fill():
                    pass
                self.events.append("drip-closed")
                return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.events.append("broken")
        finally:
            await stream.aclose()


async def start_bulk_backend(nursery: trio.Nursery) -> BulkBackend:
    backend = BulkBackend()
    listeners = await nursery.start(
        functools.partial(trio.serve_tcp, backend.connection, 0, host="127.0.0.1")
    )
    backend.port = listeners[0].socket.getsockname()[1]
    return backend


@attrs.define
class Answer:
    status: int
    headers: dict[bytes, bytes]
    length: int  # body bytes received
    sha256: str


class Client:
    """One raw client connection to proxyd's plain listener."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.reader = Reader(stream)

    @classmethod
    async def connect(cls, port: int) -> Client:
        return cls(await trio.open_tcp_stream("127.0.0.1", port))

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def head(self) -> tuple[int, dict[bytes, bytes]]:
        raw = await self.reader.until(b"\r\n\r\n")
        assert raw is not None, "the connection ended before a response head"
        (_, status, *_), headers = _head(raw)
        return int(status), headers

    async def answer(self, limit: int | None = None) -> Answer:
        """The next response (after any 100 Continue); its body up to Content-Length (or limit)
        or to the connection's end."""
        status, headers = await self.head()
        while status == 100:
            status, headers = await self.head()
        digest = hashlib.sha256()
        size = int(headers.get(b"content-length", b"-1"))
        want = size if size >= 0 else 1 << 40
        got = await self.reader.body(min(want, limit or want), digest)
        return Answer(status, headers, got, digest.hexdigest())

    async def closed(self, timeout: float = 5.0) -> bool:
        """True once the server closes the connection (False if it sends more instead)."""
        with trio.fail_after(timeout):
            return not self.reader.buf and not await self.reader.fill()

    async def aclose(self) -> None:
        await self.stream.aclose()

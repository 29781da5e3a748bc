"""FastStream: a plain TCP stream for the hot path, with the trio.SocketStream interface the edge
uses (receive_some, send_all, send_eof, aclose, socket).

trio's SocketStream runs every operation through a conflict detector and yields to the scheduler
both before and after each system call, even when the call succeeds at once. On a proxied
request that is four extra scheduler rounds, measured here as a good part of proxyd's CPU. This
stream tries the non-blocking system call first and waits for readiness (a real, cancellable
wait) only when the kernel says it would block.

It is safe because every connection loop of the edge blocks regularly: each proxied request
waits for its upstream's answer in trio.lowlevel.wait_readable, which always yields.
"""

from __future__ import annotations

import trio


def address(sock_address: object) -> tuple[str, int] | None:
    """(host, port) of a getpeername()/getsockname() result; None for other families."""
    if isinstance(sock_address, tuple) and len(sock_address) >= 2:
        return (sock_address[0], sock_address[1])
    return None


class SendTimeout(trio.BrokenResourceError):
    """The peer took no byte for the send timeout."""


async def wait_writable(sock: trio.socket.SocketType, timeout: float | None) -> None:
    """Wait until sock can take data; SendTimeout when it takes none for timeout s."""
    if timeout is None:
        await trio.lowlevel.wait_writable(sock)
        return
    with trio.move_on_after(timeout):
        await trio.lowlevel.wait_writable(sock)
        return
    raise SendTimeout(f"the peer took no data for {timeout:g} s")


def stream_error(exc: OSError, fileno: int) -> trio.BrokenResourceError | trio.ClosedResourceError:
    """The trio error for a failed socket call: ClosedResourceError when our side closed the
    socket (its descriptor is gone), BrokenResourceError otherwise (reset, broken pipe...)."""
    if fileno == -1:
        return trio.ClosedResourceError("the stream was closed")
    return trio.BrokenResourceError(str(exc))


class FastStream(trio.abc.HalfCloseableStream):
    """Wraps a connected trio.SocketStream; the socket stays owned by that stream."""

    __slots__ = ("_raw", "send_timeout", "socket", "stream")

    def __init__(self, stream: trio.SocketStream, send_timeout: float | None = None) -> None:
        self.stream = stream
        self.socket = stream.socket
        self._raw = stream.socket._sock  # the stdlib socket (non-blocking)
        # A peer that takes no byte for this long is given up (BrokenResourceError): a client
        # that stops reading must not hold its connection and its upstream request for good.
        self.send_timeout = send_timeout

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        raw = self._raw
        size = max_bytes or 65536
        while True:
            try:
                return raw.recv(size)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self.socket)
            except OSError as exc:
                raise stream_error(exc, raw.fileno()) from exc

    def try_receive(self, max_bytes: int = 65536) -> bytes | None:
        """What the socket has right now (b"" at EOF), or None when a read would block.

        Errors surface as None too: the awaited receive_some that follows reports them.
        """
        try:
            return self._raw.recv(max_bytes)
        except OSError:
            return None

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        raw = self._raw
        view = memoryview(data)
        sent = 0
        total = len(view)
        while sent < total:
            try:
                sent += raw.send(view[sent:])
            except BlockingIOError:
                await wait_writable(self.socket, self.send_timeout)
            except OSError as exc:
                raise stream_error(exc, raw.fileno()) from exc

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.stream.send_eof()

    async def aclose(self) -> None:
        await self.stream.aclose()

"""Zero-copy relaying of large plain-TCP bodies with Linux splice(2).

A large body with a known length (Content-Length) moves between two TCP sockets through a pipe
the kernel fills and drains (socket -> pipe -> socket) without ever entering Python: proxyd's
worker then spends its CPU on the per-wakeup bookkeeping only, not on copying every byte twice.

Used by the h1 server (proxyd.edge.h1_exchange) and the upstream client (proxyd.edge.http1) for:
- downloads: the rest of an upstream response with Content-Length framing, to a plain-TCP client;
- uploads: the rest of a request body with Content-Length from a plain-TCP client, to a plain-TCP
  upstream.
Everything else (TLS on either side, chunked bodies, small bodies, HTTP/2) takes the generic path.
On systems without splice (anything but Linux, or Python without os.splice) AVAILABLE is False and
nothing here is used.

relay() moves exactly `count` bytes or raises: SourceEnded (the source closed or failed first),
SourceTimeout (the source sent nothing for `idle_timeout` seconds), trio.BrokenResourceError (the
destination is gone). It waits for readiness with trio, so it is cancellable at every wait; the
caller then closes both connections (a half-relayed body leaves neither reusable).
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Awaitable, Callable

import trio

from proxyd.edge.fastsock import stream_error, wait_writable

AVAILABLE = sys.platform.startswith("linux") and hasattr(os, "splice")
MIN_BYTES = 256 * 1024  # smaller bodies: a pipe and its wake-ups cost more than they save
PIPE_SIZE = 1024 * 1024  # asked for with F_SETPIPE_SZ; the default (64 KiB) is kept on refusal
FAIR_BYTES = 4 * 1024 * 1024  # yield to other tasks at least this often
_FLAGS = getattr(os, "SPLICE_F_NONBLOCK", 0) | getattr(os, "SPLICE_F_MOVE", 0)


class SourceEnded(Exception):
    """The source closed (or failed) before all the promised bytes arrived."""


class SourceTimeout(Exception):
    """The source sent nothing within the idle timeout."""


class SplicedBody:
    """A request body for proxyd.edge.http1's pool that is spliced rather than iterated.

    The pool sets `upstream` to its connection (a plain-TCP one) once the request head is sent;
    iterating then yields nothing and sends the whole body by calling send(stream, socket) with
    that connection's stream and trio socket.
    """

    __slots__ = ("send", "upstream")

    def __init__(self, send: Callable[[trio.abc.Stream, trio.socket.SocketType], Awaitable]):
        self.send = send
        self.upstream = None

    async def __aiter__(self):
        conn = self.upstream
        if conn is None or conn.stream is not conn.tcp:
            raise RuntimeError("a spliced body needs a plain-TCP upstream connection")
        await self.send(conn.stream, conn.socket)
        return
        yield  # an async generator that yields nothing


def _open_pipe() -> tuple[int, int]:
    read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsize is not None:
        try:
            fcntl.fcntl(write_end, setsize, PIPE_SIZE)
        except OSError:
            pass  # over /proc/sys/fs/pipe-max-size or the user's pipe quota: keep the default
    return read_end, write_end


async def relay(
    src: trio.socket.SocketType,
    dst: trio.socket.SocketType,
    count: int,
    *,
    idle_timeout: float | None,
    send_timeout: float | None = None,
) -> None:
    """Move exactly count bytes from the socket src to the socket dst through a pipe
    (send_timeout: dst taking no byte that long raises trio.BrokenResourceError)."""
    if count <= 0:
        return
    src_fd, dst_fd = src.fileno(), dst.fileno()
    if src_fd < 0 or dst_fd < 0:
        raise trio.ClosedResourceError("a socket was closed")
    try:
        read_end, write_end = _open_pipe()
    except OSError:  # out of descriptors: copy instead, the body still arrives whole
        await _copy(src, dst, count, idle_timeout)
        return
    try:
        left = count  # still to take from src
        held = 0  # in the pipe, not yet given to dst
        unfair = 0
        ended = ""  # why src ended early: what it sent is still passed on, then SourceEnded
        while left or held:
            moved = False
            if left:
                try:
                    got = os.splice(src_fd, write_end, left, flags=_FLAGS)
                except BlockingIOError:
                    got = -1  # src empty, or the pipe full
                except OSError as exc:
                    got, ended = 0, f"reading failed: {exc}"
                if got == 0:
                    ended = ended or f"the source closed with {left} of {count} bytes missing"
                    left = 0
                elif got > 0:
                    left -= got
                    held += got
                    moved = True
            if held:
                try:
                    put = os.splice(read_end, dst_fd, held, flags=_FLAGS)
                except BlockingIOError:
                    put = 0
                except OSError as exc:
                    raise stream_error(exc, dst.fileno()) from exc
                if put > 0:
                    held -= put
                    unfair += put
                    moved = True
            if moved:
                if unfair >= FAIR_BYTES:
                    unfair = 0
                    await trio.lowlevel.checkpoint()  # a long transfer must not starve the rest
                continue
            if held:
                # Bytes wait in the pipe (it may also be full): dst must take them first.
                await wait_writable(dst, send_timeout)
                continue
            if idle_timeout is None:
                await trio.lowlevel.wait_readable(src)
                continue
            with trio.move_on_after(idle_timeout) as waiting:
                await trio.lowlevel.wait_readable(src)
            if waiting.cancelled_caught:
                raise SourceTimeout(f"no data for {idle_timeout:g} s")
        if ended:
            raise SourceEnded(ended)
    finally:
        os.close(read_end)
        os.close(write_end)


async def _copy(
    src: trio.socket.SocketType, dst: trio.socket.SocketType, count: int, idle_timeout: float | None
) -> None:
    """relay() through user space, with the same outcomes (when no pipe can be had)."""
    left = count
    while left:
        try:
            with trio.fail_after(idle_timeout if idle_timeout is not None else float("inf")):
                data = await src.recv(min(left, 256 * 1024))
        except trio.TooSlowError:
            raise SourceTimeout(f"no data for {idle_timeout:g} s") from None
        except OSError as exc:
            raise SourceEnded(f"reading failed: {exc}") from None
        if not data:
            raise SourceEnded(f"the source closed with {left} of {count} bytes missing")
        left -= len(data)
        view = memoryview(data)
        try:
            while view:
                view = view[await dst.send(view) :]
        except OSError as exc:
            raise stream_error(exc, dst.fileno()) from exc

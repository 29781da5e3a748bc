"""TLSStream: server-side TLS for the public HTTPS listener, over a FastStream.

It works like trio.SSLStream (an ssl.SSLObject between two memory BIOs, made by the listener's
SSL context, so its SNI callback and ClientHello peeking apply unchanged), without the parts
that cost a proxy most: trio.SSLStream yields to the scheduler around every operation, takes an
inner lock (another yield) for every transport read and write, and runs conflict detectors. Here
an operation touches the scheduler only when the socket would block or another task is sending.

What it supports is what the edge uses: one handshake (do_handshake, bounded by the caller), then
one reader and one writer at a time, possibly concurrently (the h1 server's disconnect watch,
tunnels, hypercorn's HTTP/2 reader and sender tasks). Every encrypted byte leaves through
_send_out under a FIFO lock, in the order the SSL object produced it, including anything a read
produces (a TLS 1.3 KeyUpdate answer). Renegotiation is refused by the SSL context
(OP_NO_RENEGOTIATION), so a write never needs a read.

Semantics kept from trio.SSLStream with https_compatible=True: a peer that closes the TCP
connection without close_notify ends the stream (receive_some returns b""), aclose does not
send close_notify, and a TLS 1.3 server's session tickets wait for the first write (OpenSSL
sends them right after the handshake, which some clients do not expect; trio issue 819).
Any TLS or transport error leaves the stream broken: later calls raise BrokenResourceError.
"""

from __future__ import annotations

import ssl

import trio

from proxyd.edge.fastsock import FastStream

READ_SIZE = 64 * 1024
FAIR_READS = 4  # transport reads without plaintext before a yield (receive_some) or giving up


class TLSStream(trio.abc.Stream):
    __slots__ = (
        "_broken",
        "_closed",
        "_delayed",
        "_handshaken",
        "_incoming",
        "_outgoing",
        "_reading",
        "_send_lock",
        "_ssl",
        "transport_stream",
    )

    def __init__(self, transport: FastStream, context: ssl.SSLContext) -> None:
        self.transport_stream = transport
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._send_lock = trio.StrictFIFOLock()
        self._delayed = b""
        self._handshaken = False
        self._reading = False
        self._broken = False
        self._closed = False

    # -- helpers ------------------------------------------------------------------------------
    def _check(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the TLS stream is closed")
        if self._broken:
            raise trio.BrokenResourceError("the TLS stream is broken")

    def _fail(self, exc: BaseException) -> trio.BrokenResourceError:
        """Mark the stream broken; the error to raise `from exc`."""
        self._broken = True
        return trio.BrokenResourceError(str(exc) or type(exc).__name__)

    async def _send_out(self) -> None:
        """Send what the SSL object has produced so far, in the order it produced it."""
        data = self._outgoing.read()
        if self._delayed and self._handshaken:
            data, self._delayed = self._delayed + data, b""
        if not data:
            return
        lock = self._send_lock
        try:
            lock.acquire_nowait()  # the usual case: nobody else is sending, no yield
        except trio.WouldBlock:
            await lock.acquire()  # FIFO: bytes taken earlier are sent earlier
        try:
            await self.transport_stream.send_all(data)
        except BaseException:
            self._broken = True  # a record may be half sent: nothing can follow it
            raise
        finally:
            lock.release()

    async def _receive_more(self) -> None:
        data = await self.transport_stream.receive_some(READ_SIZE)
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()

    # -- the handshake ----------------------------------------------------------------------------
    async def do_handshake(self) -> None:
        """Complete the TLS handshake (once; later calls return at once)."""
        if self._handshaken:
            return
        self._check()
        try:
            while True:
                try:
                    self._ssl.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    await self._send_out()
                    await self._receive_more()
        except (ssl.SSLError, ssl.CertificateError, trio.BrokenResourceError, OSError) as exc:
            raise self._fail(exc) from exc
        except BaseException:
            self._broken = True  # cancelled mid-handshake: the session is unusable
            raise
        if self._ssl.version() == "TLSv1.3":
            self._delayed = self._outgoing.read()  # session tickets: sent with the first write
            self._handshaken = True
        else:
            self._handshaken = True
            await self._send_out()

    def selected_alpn_protocol(self) -> str | None:
        return self._ssl.selected_alpn_protocol()

    # -- the stream -----------------------------------------------------------------------------
    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        self._check()
        if not self._handshaken:
            raise trio.BrokenResourceError("the TLS handshake has not completed")
        if self._reading:
            raise trio.BusyResourceError("another task is reading from this TLS stream")
        self._reading = True
        size = max_bytes or READ_SIZE
        try:
            reads = 0
            while True:
                try:
                    data = self._ssl.read(size)
                except ssl.SSLWantReadError:
                    if self._outgoing.pending:
                        await self._send_out()
                    reads += 1
                    if not reads % FAIR_READS:
                        # Records without application data (a KeyUpdate flood, say) must not
                        # keep this task from yielding: FastStream does not yield by itself.
                        await trio.lowlevel.checkpoint()
                    await self._receive_more()
                    continue
                except (ssl.SSLEOFError, ssl.SSLSyscallError):
                    return b""  # the peer closed without close_notify: the end, as for HTTPS
                except ssl.SSLError as exc:
                    if "UNEXPECTED_EOF" in str(exc):
                        return b""
                    raise self._fail(exc) from exc
                if self._outgoing.pending:
                    await self._send_out()  # e.g. the answer to a KeyUpdate
                return data
        except (trio.BrokenResourceError, OSError) as exc:
            raise self._fail(exc) from exc
        finally:
            self._reading = False

    def try_receive(self, max_bytes: int = READ_SIZE) -> bytes | None:
        """Plaintext available without waiting (b"" at the end), or None when a read would block.

        Bytes of an incomplete record stay buffered for the next read. Anything the read makes
        the SSL object want to send (a KeyUpdate answer) goes out ahead of the next write, as
        TLS 1.3 requires. Errors surface as None: the awaited receive_some reports them.
        """
        if not self._handshaken or self._reading or self._broken or self._closed:
            return None
        for _ in range(FAIR_READS):
            try:
                return self._ssl.read(max_bytes)
            except ssl.SSLWantReadError:
                if self._outgoing.pending:
                    return None  # something to send first: the awaited receive_some does it
                data = self.transport_stream.try_receive(READ_SIZE)
                if data is None:
                    return None
                if data:
                    self._incoming.write(data)
                else:
                    self._incoming.write_eof()
            except (ssl.SSLEOFError, ssl.SSLSyscallError):
                return b""
            except ssl.SSLError:
                return None
        return None  # no plaintext after a few reads: leave the rest to the awaited path

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self._check()
        if not self._handshaken:
            raise trio.BrokenResourceError("the TLS handshake has not completed")
        view = memoryview(data)
        try:
            while view:
                written = self._ssl.write(view)
                view = view[written:]
        except ssl.SSLError as exc:
            raise self._fail(exc) from exc
        await self._send_out()

    async def wait_send_all_might_not_block(self) -> None:
        await self.transport_stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        """Close the connection (no close_notify, like trio.SSLStream's https_compatible)."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        await self.transport_stream.aclose()

"""A tripwire backend: a threaded HTTP/1.1 server on a free loopback port that parses every byte
proxyd sends it with httptools (llhttp, strict) and records what it parsed.

Tests assert on what reached it: no second (smuggled) request, no unchecked path, no forged
identity header. Each request is recorded with its method, exact target, HTTP version, headers as
raw (name, value) pairs in the order received, body bytes, the connection it came on and its
index there. A message cut off by a closed connection is recorded too (complete=False), and so are
parse errors with the bytes that caused them: a request proxyd frames wrongly shows up here.

Answers (200 unless the path says otherwise), all with Content-Length, `Server: tripwire/1`, a Date
and `X-Tripwire-Seq` (the request's number):
- `/status/NNN`: that status (no body for 1xx, 204 and 304);
- `/slow` (`?ms=N` sets the wait, else SLOW seconds): waits first, watching the connection: if
  proxyd closes it (the
  client went away and the upstream request was cancelled) the request is marked `cancelled`,
  as is a request whose connection closed before its message was complete;
- `/chunked`: a chunked body with a trailer (`X-Tripwire-Trailer: secret`);
- HEAD: the head of the 200 answer (with its Content-Length), no body.
A request with `Expect: 100-continue` gets `100 Continue` as soon as its head is parsed, as a real
server reading the body would send it. CONNECT and Upgrade requests are recorded, then noted in
`errors` and the connection is closed (nothing is tunnelled here).
"""

from __future__ import annotations

import contextlib
import email.utils
import select
import socket
import threading
import time
from collections.abc import Callable

import attrs
import httptools

SLOW = 3.0
BODY = b"tripwire saw %s %s\n"


@attrs.define(eq=False)
class Recorded:
    """One request as the tripwire parsed it."""

    method: str = ""
    target: bytes = b""
    version: str = ""
    headers: list[tuple[bytes, bytes]] = attrs.Factory(list)
    body: bytes = b""
    complete: bool = False
    cancelled: bool = False  # the connection closed before the answer (cut off or given up)
    connection: int = 0
    index: int = 0  # 0 for the first request on its connection, 1 for the second, ...

    def header(self, name: str) -> list[bytes]:
        """All values of a header (name compared case-insensitively, exactly otherwise)."""
        wanted = name.lower().encode()
        return [v for n, v in self.headers if n.lower() == wanted]

    @property
    def path(self) -> bytes:
        return self.target.split(b"?", 1)[0]


class _Parsing:
    """httptools callbacks for one connection: builds Recorded objects as bytes arrive."""

    def __init__(self, tripwire: Tripwire, connection: int, sock: socket.socket) -> None:
        self.tripwire = tripwire
        self.sock = sock
        self.connection = connection
        self.current: Recorded | None = None
        self.done: list[Recorded] = []
        self.count = 0
        self.parser = httptools.HttpRequestParser(self)

    def on_message_begin(self) -> None:
        self.current = Recorded(connection=self.connection, index=self.count)
        self.count += 1

    def on_url(self, url: bytes) -> None:
        assert self.current is not None
        self.current.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None
        self.current.headers.append((bytes(name), bytes(value)))

    def on_headers_complete(self) -> None:
        assert self.current is not None
        self.current.method = self.parser.get_method().decode("latin-1")
        self.current.version = self.parser.get_http_version()
        self.tripwire._add(self.current)  # visible as soon as the head is in (complete=False)
        if [v.lower() for v in self.current.header("expect")] == [b"100-continue"]:
            with contextlib.suppress(OSError):
                self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        assert self.current is not None
        self.current.body += body

    def on_message_complete(self) -> None:
        assert self.current is not None
        with self.tripwire._cond:
            self.current.complete = True
            self.tripwire._cond.notify_all()
        self.done.append(self.current)
        self.current = None


class Tripwire:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.errors: list[tuple[str, bytes]] = []  # (parser error, the bytes fed)
        self.connections = 0
        self.closed_connections = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._open: set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Tripwire:
        thread = threading.Thread(target=self._accept, name="tripwire-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            for conn in list(self._open):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(5)
        self._sock.close()

    def reset(self) -> None:
        """Forget what was recorded (call at the start of each test)."""
        with self._cond:
            self.requests.clear()
            self.errors.clear()

    # -- what tests read ---------------------------------------------------------------------------
    def snapshot(self) -> list[Recorded]:
        with self._cond:
            return list(self.requests)

    def wait_for(self, predicate: Callable[[list[Recorded]], bool], timeout: float = 5.0) -> bool:
        """Wait (bounded) until predicate(requests) holds; returns whether it did."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.requests):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def describe(self) -> str:
        """What arrived, for assertion messages."""
        lines = [
            f"#{i} conn {r.connection}.{r.index} {r.method} {r.target!r} HTTP/{r.version} "
            f"complete={r.complete} cancelled={r.cancelled} body={r.body[:80]!r} "
            f"headers={r.headers}"
            for i, r in enumerate(self.snapshot())
        ]
        lines += [f"parse error {e}: {data[:200]!r}" for e, data in self.errors]
        return "\n".join(lines) or "(nothing)"

    # -- serving ---------------------------------------------------------------------------------
    def _add(self, request: Recorded) -> None:
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.01)  # e.g. a connection reset before it was accepted
                continue
            with self._cond:
                self.connections += 1
                number = self.connections
                self._open.add(conn)
            thread = threading.Thread(
                target=self._serve, args=(conn, number), name=f"tripwire-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket, number: int) -> None:
        parsing = _Parsing(self, number, conn)
        conn.settimeout(0.5)
        try:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                try:
                    parsing.parser.feed_data(data)
                except httptools.HttpParserUpgrade:
                    # An upgrade request: answered like any other (never with 101), then closed.
                    done, parsing.done = parsing.done, []
                    if not done:
                        self._note_error("upgrade/CONNECT", data)
                    for request in done:
                        self._answer(conn, request)
                    break
                except httptools.HttpParserError as exc:
                    self._note_error(f"{type(exc).__name__}: {exc}", data)
                    break
                finally:
                    done, parsing.done = parsing.done, []
                if not all(self._answer(conn, request) for request in done):
                    break
        finally:
            with self._cond:
                if parsing.current is not None and parsing.current.method:
                    parsing.current.cancelled = True  # cut off mid-request
                self._open.discard(conn)
                self.closed_connections += 1
                self._cond.notify_all()
            with contextlib.suppress(OSError):
                conn.close()

    def _note_error(self, error: str, data: bytes) -> None:
        with self._cond:
            self.errors.append((error, data))
            self._cond.notify_all()

    def _answer(self, conn: socket.socket, request: Recorded) -> bool:
        """Send the answer; False when the peer went away (the connection is then closed)."""
        with self._cond:
            seq = self.requests.index(request) if request in self.requests else -1
        path = request.path.decode("latin-1")
        status, body, extra = 200, BODY % (request.method.encode(), request.target), b""
        chunked = False
        if path.startswith("/status/"):
            status = int(path.split("/")[2])
        elif path == "/slow":
            query = request.target.partition(b"?")[2]
            wait = int(query[3:]) / 1000 if query.startswith(b"ms=") else SLOW
            if not self._wait_watching(conn, wait):
                with self._cond:
                    request.cancelled = True
                    self._cond.notify_all()
                return False
        elif path == "/chunked":
            chunked = True
        head = [
            b"HTTP/1.1 %d Tripwire" % status,
            b"Server: tripwire/1",
            b"Date: " + email.utils.formatdate(usegmt=True).encode(),
            b"X-Tripwire-Seq: %d" % seq,
            b"Content-Type: text/plain",
        ]
        no_body = status in (204, 304) or status < 200
        if no_body:
            body = b""
        elif chunked:
            head += [b"Transfer-Encoding: chunked", b"Trailer: X-Tripwire-Trailer"]
            extra = b"%x\r\n%s\r\n0\r\nX-Tripwire-Trailer: secret\r\n\r\n" % (len(body), body)
        else:
            head.append(b"Content-Length: %d" % len(body))
            extra = b"" if request.method == "HEAD" else body
        try:
            conn.sendall(b"\r\n".join(head) + b"\r\n\r\n" + extra)
        except OSError:
            return False
        return True

    def _wait_watching(self, conn: socket.socket, seconds: float) -> bool:
        """Sleep up to seconds; False as soon as the peer closes the connection."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and not self._stop.is_set():
            readable, _, _ = select.select([conn], [], [], min(left, 0.1))
            if readable:
                try:
                    if not conn.recv(1, socket.MSG_PEEK):
                        return False
                except OSError:
                    return False
                time.sleep(min(left, 0.05))  # pipelined bytes wait their turn
        return True

"""A raw HTTP/2 client for the edge's tests: h2c with prior knowledge over a blocking socket
(drive it from a thread: trio.to_thread.run_sync), recording every event the server sends. Tests
use it to send what real clients never would (rapid resets, shut flow-control windows, invalid
fields with `lenient()`) and to see exactly how proxyd answers."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

Events = list[h2.events.Event]


def lenient() -> h2.config.H2Configuration:
    """A client configuration that validates and normalises nothing it sends."""
    return h2.config.H2Configuration(
        client_side=True, validate_outbound_headers=False, normalize_outbound_headers=False
    )


class H2Client:
    """One connection. `window`: the initial flow-control window this client offers the server
    (1 byte: the server can send next to nothing until the client opens it)."""

    def __init__(
        self,
        port: int,
        *,
        config: h2.config.H2Configuration | None = None,
        window: int | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.conn = h2.connection.H2Connection(
            config or h2.config.H2Configuration(client_side=True)
        )
        if window is not None:
            self.conn.local_settings = h2.settings.Settings(
                client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window}
            )
        self.conn.initiate_connection()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.sendall(self.conn.data_to_send())
        self.timeout = timeout
        self.events: Events = []
        self.closed = False

    def send(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def read(self, until: Callable[[Events], bool], timeout: float | None = None) -> None:
        """Read events until until(events) holds, the server closes, or the timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not until(self.events) and time.monotonic() < deadline and not self.closed:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                break
            except OSError:
                data = b""
            if not data:
                self.closed = True
                break
            try:
                self.events += self.conn.receive_data(data)
                self.send()
            except (h2.exceptions.ProtocolError, OSError):  # our side after the server's GOAWAY
                pass

    def read_settings(self) -> None:
        """Wait for the server's SETTINGS (before a request that depends on them)."""
        self.read(
            lambda events: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in events)
        )

    def response(self, stream_id: int = 1) -> dict[bytes, bytes] | None:
        """The response head of a stream (pseudo-headers included), once it arrived."""
        for event in self.events:
            if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                return dict(event.headers)
        return None

    def data(self, stream_id: int = 1) -> bytes:
        return b"".join(
            e.data
            for e in self.events
            if isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id
        )

    def goaways(self) -> list[h2.events.ConnectionTerminated]:
        return [e for e in self.events if isinstance(e, h2.events.ConnectionTerminated)]

    def close(self) -> None:
        self.sock.close()


def stream_ended(stream_id: int = 1, *, or_goaway: bool = True) -> Callable[[Events], bool]:
    """until() for: the stream ended or was reset (or, with or_goaway, the connection is going
    away)."""

    def ended(events: Events) -> bool:
        return any(
            (
                isinstance(e, h2.events.StreamEnded | h2.events.StreamReset)
                and e.stream_id == stream_id
            )
            or (or_goaway and isinstance(e, h2.events.ConnectionTerminated))
            for e in events
        )

    return ended

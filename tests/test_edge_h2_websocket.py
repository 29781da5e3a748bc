"""WebSocket over HTTP/2 (RFC 8441 extended CONNECT, which browsers use once a server advertises
SETTINGS_ENABLE_CONNECT_PROTOCOL): the same request path as HTTP/1.1 upgrades. Messages and the
subprotocol pass; on an OAuth-protected proxy a handshake without a valid token gets the real
401 with its WWW-Authenticate challenge (not a bare 403), and never reaches the backend.
Raw h2 frames and wsproto framing against a real proxyd and backend."""

from __future__ import annotations

import socket
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import trio
from wsproto.frame_protocol import FrameProtocol, Opcode

from tests.support.graphql import CREATE_PROXY


def _handshake(port: int, host: str, token: str | None = None) -> tuple[dict, list]:
    """Extended CONNECT for /ws; once accepted, send "hi" and collect the frames that come back.
    Returns (response headers, frames or stream events)."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(conn.data_to_send())
    events: list = []
    while not any(isinstance(e, h2.events.RemoteSettingsChanged) for e in events):
        events += conn.receive_data(sock.recv(65536))
        sock.sendall(conn.data_to_send())
    headers = [
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":scheme", "http"),
        (":path", "/ws"),
        (":authority", host),
        ("sec-websocket-version", "13"),
        ("sec-websocket-protocol", "chat.v2"),
    ]
    if token:
        headers.append(("authorization", f"Bearer {token}"))
    conn.send_headers(1, headers)
    sock.sendall(conn.data_to_send())
    frames = FrameProtocol(client=True, extensions=[])
    response: dict = {}
    got: list = []
    deadline = time.monotonic() + 5
    with sock:
        while time.monotonic() < deadline and not any(g == "end" for g in got):
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    response = dict(event.headers)
                    if response.get(b":status") == b"200":
                        conn.send_data(1, frames.send_data("hi", fin=True))
                elif isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, 1)
                    if response.get(b":status") == b"200":
                        frames.receive_bytes(event.data)
                        got += [(f.opcode, f.payload) for f in frames.received_frames()]
                    else:
                        got.append(("body", event.data))
                elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                    got.append("end")
            sock.sendall(conn.data_to_send())
            if any(isinstance(g, tuple) and g[0] == Opcode.TEXT for g in got):
                break
    return response, got


async def _ready(proxyd, host: str) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=5) as client:
        with trio.fail_after(5):
            while (await client.get(proxyd.http_url, headers={"Host": host})).status_code == 404:
                await trio.sleep(0.02)


async def test_websocket_over_http2_echoes_with_its_subprotocol(proxyd, gql, backend):
    await gql(CREATE_PROXY, {"input": {"hostname": "ws2.test", "targetUrl": backend.url}})
    await _ready(proxyd, "ws2.test")
    response, got = await trio.to_thread.run_sync(_handshake, proxyd.http_port, "ws2.test")
    assert response[b":status"] == b"200"
    assert response[b"sec-websocket-protocol"] == b"chat.v2"
    assert (Opcode.TEXT, "echo:hi") in got
    assert backend.websockets == 1


async def test_websocket_over_http2_without_a_token_gets_the_401_challenge(proxyd, gql, backend):
    await gql(
        CREATE_PROXY,
        {"input": {"hostname": "ws2a.test", "targetUrl": backend.url, "authEnabled": True}},
    )
    await _ready(proxyd, "ws2a.test")
    before = backend.websockets
    for token in (None, "forged.token.value"):
        response, got = await trio.to_thread.run_sync(
            _handshake, proxyd.http_port, "ws2a.test", token
        )
        assert response[b":status"] == b"401", response
        challenge = response[b"www-authenticate"]
        assert challenge.startswith(b"Bearer ") and b"resource_metadata=" in challenge
        assert "end" in got
    assert backend.websockets == before


async def test_websocket_over_http2_to_a_dead_upstream_gets_502(proxyd, gql):
    from tests.support.processes import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    await gql(CREATE_PROXY, {"input": {"hostname": "ws2d.test", "targetUrl": dead}})
    await _ready(proxyd, "ws2d.test")
    response, got = await trio.to_thread.run_sync(_handshake, proxyd.http_port, "ws2d.test")
    assert response[b":status"] == b"502", response
    body = b"".join(g[1] for g in got if isinstance(g, tuple) and g[0] == "body")
    assert body.startswith(b"502 Bad Gateway: the upstream for ws2d.test could not be reached")


def _echo_into_a_shut_window(port: int, host: str) -> list:
    """Open a WebSocket over h2 with a 1-byte receive window, send one 512 KiB message (echoed
    back by the backend), never open the window, and collect what the server does."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.local_settings = h2.settings.Settings(
        client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1}
    )
    conn.initiate_connection()
    sock = socket.create_connection(("127.0.0.1", port), timeout=8)
    sock.sendall(conn.data_to_send())
    events: list = []
    while not any(isinstance(e, h2.events.RemoteSettingsChanged) for e in events):
        events += conn.receive_data(sock.recv(65536))
        sock.sendall(conn.data_to_send())
    conn.send_headers(
        1,
        [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "http"),
            (":path", "/ws"),
            (":authority", host),
            ("sec-websocket-version", "13"),
        ],
    )
    sock.sendall(conn.data_to_send())
    frames = FrameProtocol(client=True, extensions=[])
    view = memoryview(frames.send_data(b"x" * (512 * 1024), fin=True))
    accepted = False
    deadline = time.monotonic() + 8
    with sock:
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            for event in conn.receive_data(data):
                events.append(event)
                accepted = accepted or isinstance(event, h2.events.ResponseReceived)
            while accepted and view:  # as much as the server's window takes
                size = min(len(view), conn.local_flow_control_window(1), 16384)
                if size <= 0:
                    break
                conn.send_data(1, bytes(view[:size]))
                view = view[size:]
            sock.sendall(conn.data_to_send())
            if any(isinstance(e, h2.events.StreamReset) for e in events):
                break
    return events


async def test_websocket_over_http2_to_a_client_that_stops_reading_is_reset(start_proxyd, backend):
    proc = start_proxyd("ws2-slow", EDGE_SEND_TIMEOUT="1")
    from tests.support.graphql import GraphQLClient

    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    await gql(CREATE_PROXY, {"input": {"hostname": "ws2s.test", "targetUrl": backend.url}})
    await _ready(proc, "ws2s.test")
    events = await trio.to_thread.run_sync(_echo_into_a_shut_window, proc.http_port, "ws2s.test")
    assert any(isinstance(e, h2.events.StreamReset) for e in events), events[-5:]
    assert "Traceback" not in proc.log()

"""WebSocket over HTTP/2 (RFC 8441 extended CONNECT, which browsers use once a server advertises
SETTINGS_ENABLE_CONNECT_PROTOCOL): the same request path as HTTP/1.1 upgrades. Messages and the
subprotocol pass; on an OAuth-protected proxy a handshake without a valid token gets the real
401 with its WWW-Authenticate challenge (not a bare 403), and never reaches the backend.
Raw h2 frames and wsproto framing against a real proxyd and backend."""

from __future__ import annotations

import time

import h2.events
import trio
from wsproto.frame_protocol import FrameProtocol, Opcode

from tests.support.graphql import CREATE_PROXY
from tests.support.h2client import H2Client, stream_ended


def _connect_headers(host: str, *extra: tuple[str, str]) -> list[tuple[str, str]]:
    """An extended CONNECT for a WebSocket on /ws."""
    return [
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":scheme", "http"),
        (":path", "/ws"),
        (":authority", host),
        ("sec-websocket-version", "13"),
        *extra,
    ]


def _frames(client: H2Client) -> list[tuple[Opcode, object]]:
    """The WebSocket frames received so far on stream 1."""
    frames = FrameProtocol(client=True, extensions=[])
    frames.receive_bytes(client.data(1))
    return [(f.opcode, f.payload) for f in frames.received_frames()]


def _handshake(port: int, host: str, token: str | None = None) -> tuple[dict, list]:
    """Extended CONNECT for /ws; once accepted, send "hi" and collect the frames that come back.
    Returns (response headers, frames; or ("body", bytes) and "end" for a refusal)."""
    client = H2Client(port)
    client.read_settings()
    extra = [("sec-websocket-protocol", "chat.v2")]
    if token:
        extra.append(("authorization", f"Bearer {token}"))
    client.conn.send_headers(1, _connect_headers(host, *extra))
    client.send()
    ended = stream_ended(1, or_goaway=False)
    client.read(lambda events: client.response(1) is not None or ended(events))
    response = client.response(1) or {}
    if response.get(b":status") != b"200":
        client.read(ended)
        client.close()
        return response, [("body", client.data(1))] + (["end"] if ended(client.events) else [])
    client.conn.send_data(1, FrameProtocol(client=True, extensions=[]).send_data("hi", fin=True))
    client.send()
    client.read(lambda _: any(op == Opcode.TEXT for op, _ in _frames(client)) or client.closed)
    client.close()
    return response, _frames(client)


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
    client = H2Client(port, window=1, timeout=8)
    client.read_settings()
    client.conn.send_headers(1, _connect_headers(host))
    client.send()
    view = memoryview(
        FrameProtocol(client=True, extensions=[]).send_data(b"x" * 512 * 1024, fin=True)
    )
    reset = stream_ended(1, or_goaway=False)
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and not reset(client.events) and not client.closed:
        seen = len(client.events)
        client.read(lambda events, seen=seen: len(events) > seen, deadline - time.monotonic())
        while client.response(1) is not None and view:  # as much as the server's window takes
            size = min(len(view), client.conn.local_flow_control_window(1), 16384)
            if size <= 0:
                break
            client.conn.send_data(1, bytes(view[:size]))
            view = view[size:]
        client.send()
    client.close()
    return client.events


async def test_websocket_over_http2_to_a_client_that_stops_reading_is_reset(start_proxyd, backend):
    proc = start_proxyd("ws2-slow", EDGE_SEND_TIMEOUT="1")
    from tests.support.graphql import GraphQLClient

    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    await gql(CREATE_PROXY, {"input": {"hostname": "ws2s.test", "targetUrl": backend.url}})
    await _ready(proc, "ws2s.test")
    events = await trio.to_thread.run_sync(_echo_into_a_shut_window, proc.http_port, "ws2s.test")
    assert any(isinstance(e, h2.events.StreamReset) for e in events), events[-5:]
    assert "Traceback" not in proc.log()

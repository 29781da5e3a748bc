"""HTTP/2 clients that abuse the protocol, over raw sockets against a real proxyd and a tripwire
backend that records every request it parses:

- rapid reset (CVE-2023-44487): streams opened and cancelled at once, never waiting for an
  answer, must not turn into an unbounded flood of backend requests; the connection gets
  GOAWAY ENHANCE_YOUR_CALM and closes;
- a client that ignores GOAWAY after EDGE_MAX_REQUESTS_PER_CONNECTION must get its further
  streams refused (REFUSED_STREAM), never served, and one GOAWAY, not one per stream.
"""

from __future__ import annotations

import time

import h2.errors
import h2.events
import pytest
import trio

from tests.support.graphql import CREATE_PROXY, GraphQLClient
from tests.support.h2client import H2Client, lenient, stream_ended
from tests.support.tripwire import Tripwire

HOST = "abuse.test"
MAX_RESETS = 100  # proxyd.edge.h2_server.MAX_PREMATURE_RESETS


@pytest.fixture
def tripwire():
    server = Tripwire().start()
    yield server
    server.stop()


async def _proxied(proc, tripwire) -> None:
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    await gql(CREATE_PROXY, {"input": {"hostname": HOST, "targetUrl": tripwire.url}})
    import httpx

    async with httpx.AsyncClient(timeout=5) as client:
        with trio.fail_after(5):
            while (await client.get(proc.http_url, headers={"Host": HOST})).status_code == 404:
                await trio.sleep(0.02)


def _request(path: str) -> list[tuple[str, str]]:
    return [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", HOST)]


def _rapid_reset(port: int, streams: int, pause: float) -> H2Client:
    client = H2Client(port)
    try:
        for _ in range(streams):
            stream_id = client.conn.get_next_available_stream_id()
            client.conn.send_headers(stream_id, _request("/slow?ms=300"), end_stream=True)
            if pause:  # the reset in a later read: proxyd has started the stream by then
                client.send()
                time.sleep(pause)
            client.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
            client.send()
    except (OSError, h2.exceptions.ProtocolError):
        pass  # the server hung up on us: what the test wants
    client.read(lambda events: False, timeout=3)
    return client


@pytest.mark.parametrize("pause", [0.0, 0.002], ids=["same-read", "later-read"])
async def test_rapid_reset_is_cut_off(start_proxyd, tripwire, pause):
    proc = start_proxyd("rapid-reset")
    await _proxied(proc, tripwire)
    before = len(tripwire.snapshot())
    client = await trio.to_thread.run_sync(_rapid_reset, proc.http_port, 3000, pause)
    await trio.sleep(1)  # let anything still in flight reach the backend
    reached = len(tripwire.snapshot()) - before
    goaways = client.goaways()
    assert goaways and goaways[0].error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert len(goaways) == 1
    assert client.closed
    # Without the guard, 3,000 cancelled streams put about 2,700 requests on the backend; a
    # stream cancelled in the same read as its HEADERS is never started at all.
    assert reached <= (0 if not pause else MAX_RESETS + 1), reached
    # proxyd still serves everyone else.
    async with trio.open_nursery():
        import httpx

        async with httpx.AsyncClient(http1=False, http2=True, timeout=5) as h2client:
            r = await h2client.get(proc.http_url + "/after", headers={"Host": HOST})
    assert r.status_code == 200
    assert "Traceback" not in proc.log()


def _sequential(port: int, requests: int) -> tuple[H2Client, list[int], list[int]]:
    """Send requests one after another, each once the previous one ended, ignoring GOAWAY."""
    client = H2Client(port)
    answered, refused = [], []
    for i in range(requests):
        stream_id = client.conn.get_next_available_stream_id()
        try:
            client.conn.send_headers(stream_id, _request(f"/n{i}"), end_stream=True)
            client.send()
        except (OSError, h2.exceptions.ProtocolError):
            break

        client.read(stream_ended(stream_id, or_goaway=False))
        for event in client.events:
            if getattr(event, "stream_id", None) != stream_id:
                continue
            if isinstance(event, h2.events.StreamEnded):
                answered.append(i)
            elif isinstance(event, h2.events.StreamReset):
                assert event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
                refused.append(i)
        if client.closed:
            break
    return client, answered, refused


async def test_max_requests_per_connection_holds_for_http2(start_proxyd, tripwire):
    proc = start_proxyd("h2-max", EDGE_MAX_REQUESTS_PER_CONNECTION="5")
    await _proxied(proc, tripwire)
    tripwire.reset()
    client, answered, refused = await trio.to_thread.run_sync(_sequential, proc.http_port, 12)
    assert answered == [0, 1, 2, 3, 4]
    assert refused and refused[0] == 5
    assert [r.target for r in tripwire.snapshot()] == [b"/n0", b"/n1", b"/n2", b"/n3", b"/n4"]
    assert len(client.goaways()) == 1
    assert client.goaways()[0].error_code == h2.errors.ErrorCodes.NO_ERROR


def _stalled_upload(port: int) -> tuple[H2Client, int]:
    client = H2Client(port)
    stream_id = client.conn.get_next_available_stream_id()
    headers = [
        (":method", "POST"),
        (":path", "/upload"),
        (":scheme", "http"),
        (":authority", HOST),
        ("content-length", "100000"),
    ]
    client.conn.send_headers(stream_id, headers)
    client.conn.send_data(stream_id, b"x" * 10)
    client.send()
    client.read(stream_ended(stream_id), timeout=4)
    return client, stream_id


async def test_stalled_http2_upload_gets_408_and_cancels_the_upstream(start_proxyd, tripwire):
    proc = start_proxyd("h2-stall", EDGE_BODY_TIMEOUT="1")
    await _proxied(proc, tripwire)
    tripwire.reset()
    began = time.monotonic()
    client, stream_id = await trio.to_thread.run_sync(_stalled_upload, proc.http_port)
    statuses = [
        dict(e.headers).get(b":status")
        for e in client.events
        if isinstance(e, h2.events.ResponseReceived) and e.stream_id == stream_id
    ]
    assert statuses == [b"408"], client.events
    assert time.monotonic() - began < 3.5

    def upload_cut(requests: list) -> bool:
        uploads = [r for r in requests if r.path == b"/upload"]
        return bool(uploads) and all(r.cancelled and not r.complete for r in uploads)

    assert await trio.to_thread.run_sync(tripwire.wait_for, upload_cut, 3), tripwire.describe()


def _connect_request(port: int) -> list:
    """A plain HTTP/2 CONNECT (authority only, no :protocol): a tunnel request."""
    client = H2Client(port)
    client.conn.send_headers(1, [(":method", "CONNECT"), (":authority", f"{HOST}:443")])
    client.send()
    client.read(stream_ended(1), timeout=3)
    return client.events


async def test_http2_connect_is_refused_with_405(start_proxyd, tripwire):
    proc = start_proxyd("h2-connect")
    await _proxied(proc, tripwire)
    tripwire.reset()
    events = await trio.to_thread.run_sync(_connect_request, proc.http_port)
    statuses = [
        dict(e.headers)[b":status"] for e in events if isinstance(e, h2.events.ResponseReceived)
    ]
    assert statuses == [b"405"], events
    body = b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
    assert body.startswith(b"405 Method Not Allowed: CONNECT is not supported")
    assert tripwire.snapshot() == []
    assert "Traceback" not in proc.log()  # hypercorn alone crashed on it (no :path)


def _with_method(port: int, method: str) -> list:
    client = H2Client(port, config=lenient())  # a client that sends anything
    headers = [
        (":method", method),
        (":scheme", "http"),
        (":path", "/public/ok"),
        (":authority", HOST),
    ]
    client.conn.send_headers(1, headers, end_stream=True)
    client.send()
    client.read(stream_ended(1), timeout=3)
    return client.events


async def test_http2_method_must_be_a_token(start_proxyd, tripwire):
    """The method goes into the upstream request line: a space in it would split that line (the
    backend could read a target that was never checked), so it must be an RFC 9110 token."""
    proc = start_proxyd("h2-method")
    await _proxied(proc, tripwire)
    for method in ("GET /secret", "G ET", "GET\t/x", "GET\r\nX-Auth-User: admin"):
        tripwire.reset()
        events = await trio.to_thread.run_sync(_with_method, proc.http_port, method)
        statuses = [
            dict(e.headers)[b":status"] for e in events if isinstance(e, h2.events.ResponseReceived)
        ]
        refused = any(
            isinstance(e, h2.events.StreamReset | h2.events.ConnectionTerminated) for e in events
        )
        assert statuses == [b"400"] or (refused and not statuses), (method, events)
        assert tripwire.snapshot() == [], method
    assert "Traceback" not in proc.log()

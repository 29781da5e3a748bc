"""The edge beyond single HTTP/1.1 exchanges: HTTP/2 (h2c prior knowledge and ALPN h2 over TLS)
served by the same request path, its header validation, upgrades that are refused upstream,
encoded slashes on protected proxies, and the drain on SIGTERM (idle keep-alive connections close
at once, requests in flight finish)."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time

import h2.events
import httpx
import pytest
import trio

from tests.support.graphql import CREATE_PROXY, GraphQLClient
from tests.support.h2client import H2Client, lenient, stream_ended
from tests.support.processes import free_port
from tests.support.tripwire import Tripwire


@pytest.fixture
def tripwire():
    server = Tripwire().start()
    yield server
    server.stop()


async def _serving(base: str, host: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        for _ in range(100):
            r = await client.get("/", headers={"Host": host})
            if r.status_code != 404:
                return
            await trio.sleep(0.05)
    raise AssertionError(f"{host} never served")


async def test_h2c_prior_knowledge_uses_the_same_request_path(proxyd, gql, tripwire):
    await gql(CREATE_PROXY, {"input": {"hostname": "h2.test", "targetUrl": tripwire.url}})
    await _serving(proxyd.http_url, "h2.test")
    async with httpx.AsyncClient(http1=False, http2=True, timeout=5) as client:
        r = await client.get(
            proxyd.http_url + "/a/./b/../c",
            headers={"Host": "h2.test", "X-Auth-User": "admin", "True-Client-IP": "1.2.3.4"},
        )
    assert r.http_version == "HTTP/2" and r.status_code == 200
    seen = tripwire.snapshot()[-1]
    assert seen.path == b"/a/c"  # normalised by the shared request path
    assert not seen.header("x-auth-user") and not seen.header("true-client-ip")


async def _tls_proxyd(start_proxyd, tripwire, name: str, **env: str):
    """A proxyd with an HTTPS listener (its self-signed certificate) and tls.test proxied to the
    tripwire; returns (proxyd, https port)."""
    https_port = free_port()
    proc = start_proxyd(name, HTTPS_PORT=str(https_port), SELF_SIGNED_CN="proxyd.invalid", **env)
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    await gql(CREATE_PROXY, {"input": {"hostname": "tls.test", "targetUrl": tripwire.url}})
    await _serving(proc.http_url, "tls.test")
    return proc, https_port


async def _get_tls(https_port: int, path: str) -> httpx.Response:
    """GET path from tls.test over HTTPS with a client that offers HTTP/2."""
    async with httpx.AsyncClient(http2=True, verify=False, timeout=5) as client:
        return await client.get(
            f"https://127.0.0.1:{https_port}{path}",
            headers={"Host": "tls.test"},
            extensions={"sni_hostname": "tls.test"},
        )


async def test_h2_over_tls_with_alpn(start_proxyd, tripwire):
    _, https_port = await _tls_proxyd(start_proxyd, tripwire, "tls")
    r = await _get_tls(https_port, "/x?y=1")
    assert r.http_version == "HTTP/2" and r.status_code == 200
    seen = tripwire.snapshot()[-1]
    assert seen.target == b"/x?y=1"
    assert seen.header("x-forwarded-proto") == [b"https"]


async def test_http2_can_be_turned_off(start_proxyd, tripwire):
    """EDGE_HTTP2=false: TLS clients offering h2 get HTTP/1.1 (the fast path), and an h2c
    preface gets 505 with a sentence, never hypercorn's HTTP/2 protocol."""
    proc, https_port = await _tls_proxyd(start_proxyd, tripwire, "noh2", EDGE_HTTP2="false")
    r = await _get_tls(https_port, "/x")
    assert r.http_version == "HTTP/1.1" and r.status_code == 200
    assert tripwire.snapshot()[-1].target == b"/x"
    before = len(tripwire.snapshot())
    with socket.create_connection(("127.0.0.1", proc.http_port), timeout=3) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 505 ")
    assert b"HTTP/2 is turned off" in answer
    assert len(tripwire.snapshot()) == before


_GOAWAY = h2.events.ConnectionTerminated


def _h2_request(port: int, headers: list[tuple[bytes, bytes]], body: bytes) -> list:
    """Send one HTTP/2 request without client-side validation; return the server's events."""
    client = H2Client(port, config=lenient(), timeout=3)
    client.conn.send_headers(1, headers, end_stream=not body)
    if body:
        client.conn.send_data(1, body, end_stream=True)
    client.send()
    client.read(stream_ended(1))
    client.close()
    return client.events


@pytest.mark.parametrize(
    "extra, body",
    [
        ([(b"x-a", b"b\r\nx-auth-user: admin")], b""),  # CR/LF in a value
        ([(b"connection", b"keep-alive")], b""),  # connection-specific field
        ([(b"content-length", b"10")], b"short"),  # Content-Length disagrees with DATA
    ],
    ids=["crlf-in-value", "connection-header", "content-length-mismatch"],
)
async def test_h2_invalid_requests_never_reach_the_backend(proxyd, gql, tripwire, extra, body):
    await gql(CREATE_PROXY, {"input": {"hostname": "h2v.test", "targetUrl": tripwire.url}})
    await _serving(proxyd.http_url, "h2v.test")
    tripwire.reset()
    headers = [
        (b":method", b"POST" if body else b"GET"),
        (b":path", b"/v"),
        (b":scheme", b"http"),
        (b":authority", b"h2v.test"),
        *extra,
    ]
    events = await trio.to_thread.run_sync(_h2_request, proxyd.http_port, headers, body)
    statuses = [
        int(dict(e.headers)[b":status"])
        for e in events
        if isinstance(e, h2.events.ResponseReceived)
    ]
    refused = any(isinstance(e, h2.events.StreamReset | _GOAWAY) for e in events) or statuses == [
        400
    ]
    assert refused, events
    complete = [r for r in tripwire.snapshot() if r.complete]
    assert not complete, tripwire.describe()


async def test_encoded_slash_is_refused_on_protected_proxies(proxyd, gql, tripwire):
    await gql(
        CREATE_PROXY,
        {
            "input": {
                "hostname": "slash.test",
                "targetUrl": tripwire.url,
                "authEnabled": True,
                "authExcludedPaths": ["/public/"],
            }
        },
    )
    async with httpx.AsyncClient(base_url=proxyd.http_url, timeout=5) as client:
        for _ in range(100):
            if (await client.get("/public/x", headers={"Host": "slash.test"})).status_code == 200:
                break
            await trio.sleep(0.05)
        tripwire.reset()
        for path in ("/public%2F..%2Fsecret", "/public/%5c..%5csecret", "/public\\..\\secret"):
            r = await client.get(path, headers={"Host": "slash.test"})
            assert r.status_code == 400, (path, r.text)
            assert "encoded slashes" in r.text
    assert not tripwire.snapshot()


async def test_upgrade_refused_upstream_is_relayed_not_tunnelled(proxyd, gql, tripwire):
    await gql(CREATE_PROXY, {"input": {"hostname": "up.test", "targetUrl": tripwire.url}})
    await _serving(proxyd.http_url, "up.test")
    with socket.create_connection(("127.0.0.1", proxyd.http_port), timeout=3) as sock:
        sock.sendall(
            b"GET /status/403 HTTP/1.1\r\nHost: up.test\r\nConnection: Upgrade\r\n"
            b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 403 ")
    assert b"101" not in data.split(b"\r\n", 1)[0]
    seen = tripwire.snapshot()[-1]
    assert seen.header("upgrade") == [b"websocket"]


async def test_sigterm_closes_idle_connections_at_once_and_drains_in_flight(start_proxyd, tripwire):
    proc = start_proxyd("drain", SHUTDOWN_TIMEOUT="5")
    gql = GraphQLClient(proc.api_url, proc.token("admin"), proc.http_url)
    await gql(CREATE_PROXY, {"input": {"hostname": "drain.test", "targetUrl": tripwire.url}})
    await _serving(proc.http_url, "drain.test")

    idle = socket.create_connection(("127.0.0.1", proc.http_port), timeout=3)
    idle.sendall(b"GET /x HTTP/1.1\r\nHost: drain.test\r\n\r\n")
    assert idle.recv(65536).startswith(b"HTTP/1.1 200")
    busy = socket.create_connection(("127.0.0.1", proc.http_port), timeout=6)
    busy.sendall(b"GET /slow HTTP/1.1\r\nHost: drain.test\r\n\r\n")
    assert tripwire.wait_for(lambda seen: any(r.path == b"/slow" for r in seen))

    proc.process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    assert idle.recv(65536) == b""  # closed at once, not after the keep-alive timeout
    assert time.monotonic() - started < 1.5
    answer = b""
    while chunk := busy.recv(65536):
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer  # the request in flight finished
    assert b"connection: close" in answer.lower()
    idle.close()
    busy.close()
    assert proc.process.wait(10) == 0


async def test_excluded_paths_match_whole_segments(proxyd, gql, tripwire):
    await gql(
        CREATE_PROXY,
        {
            "input": {
                "hostname": "seg.test",
                "targetUrl": tripwire.url,
                "authEnabled": True,
                "authExcludedPaths": ["/public"],
            }
        },
    )
    async with httpx.AsyncClient(base_url=proxyd.http_url, timeout=5) as client:
        for _ in range(100):
            if (await client.get("/public", headers={"Host": "seg.test"})).status_code == 200:
                break
            await trio.sleep(0.05)
        assert (await client.get("/public/x", headers={"Host": "seg.test"})).status_code == 200
        tripwire.reset()
        for path in ("/publicity", "/public-secret", "/publicx/y"):
            r = await client.get(path, headers={"Host": "seg.test"})
            assert r.status_code == 401, path
    assert not tripwire.snapshot()


class _RawBackend:
    """A backend that answers every request with the exact bytes it was given (one per
    connection), to send responses whose framing is hostile."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                data = b""
                with contextlib.suppress(OSError):
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    conn.sendall(self.answer)

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize(
    "answer, body",
    [
        (
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n0\r\n\r\n"
            ),
            b"hello",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello!!", None),
    ],
    ids=["te-and-cl", "conflicting-cl"],
)
async def test_hostile_upstream_framing_never_reaches_the_client(proxyd, gql, answer, body):
    backend = _RawBackend(answer)
    try:
        await gql(CREATE_PROXY, {"input": {"hostname": "evil.test", "targetUrl": backend.url}})
        await _serving(proxyd.http_url, "evil.test")
        async with httpx.AsyncClient(timeout=5) as client:
            r = await client.get(proxyd.http_url + "/x", headers={"Host": "evil.test"})
        if body is None:
            assert r.status_code == 502, r.text  # conflicting lengths: refused
        else:
            assert r.status_code == 200 and r.content == body
            assert r.headers.get("content-length") in (None, str(len(body)))
    finally:
        backend.close()


async def test_management_app_refuses_remote_clients_relayed_by_a_trusted_proxy(start_proxyd):
    # A local reverse proxy (trusted) relays a client from the internet: that client is remote.
    proc = start_proxyd("mgmt", TRUSTED_PROXIES="127.0.0.1/32")
    async with httpx.AsyncClient(base_url=proc.http_url, timeout=5) as client:
        remote = {"Host": "localhost", "X-Forwarded-For": "203.0.113.9"}
        r = await client.post("/graphql", json={"query": "{ health { status } }"}, headers=remote)
        assert r.status_code == 403 and "only local clients" in r.text
        # The OAuth endpoints stay reachable for that client; a local client reaches GraphQL.
        meta = await client.get("/.well-known/oauth-authorization-server", headers=remote)
        assert meta.status_code == 200
        local = {"Host": "localhost", "X-Forwarded-For": "127.0.0.1"}
        r = await client.post("/graphql", json={"query": "{ health { status } }"}, headers=local)
        assert r.status_code != 403
        r = await client.post(
            "/graphql", json={"query": "{ health { status } }"}, headers={"Host": "localhost"}
        )
        assert r.status_code != 403

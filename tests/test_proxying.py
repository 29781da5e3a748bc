"""Proxying through a real proxyd process to a real backend: lifecycle without restart, streaming,
SSE, WebSocket, upstream failures and header hygiene."""

from __future__ import annotations

import gzip
import itertools
import time

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, wrap_client_stream

from tests.support.backend import GZIPPED
from tests.support.graphql import CREATE_PROXY
from tests.support.processes import free_port


async def create(gql, hostname: str, target: str, **extra) -> None:
    """Create a proxy and wait until this proxyd serves it (the snapshot updates within ms)."""
    await gql(CREATE_PROXY, {"input": {"hostname": hostname, "targetUrl": target, **extra}})
    async with httpx.AsyncClient(timeout=5) as client:
        with trio.fail_after(5):
            while True:
                response = await client.get(gql.http_url, headers={"Host": hostname})
                if "no proxy is configured" not in response.text:
                    return
                await trio.sleep(0.01)


async def get(proxyd, host: str, path: str = "/", **kw) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.get(
            proxyd.http_url + path, headers={"Host": host, **kw.pop("headers", {})}, **kw
        )


async def test_new_proxy_serves_within_100ms_without_restart(proxyd, gql, backend):
    async with httpx.AsyncClient(timeout=5) as client:
        await gql(CREATE_PROXY, {"input": {"hostname": "fresh.test", "targetUrl": backend.url}})
        started = time.monotonic()
        while True:
            response = await client.get(proxyd.http_url + "/hello", headers={"Host": "fresh.test"})
            if response.status_code == 200:
                break
            assert time.monotonic() - started < 0.1, "proxy did not serve within 100 ms"
        assert response.json()["path"] == "/hello"
        assert time.monotonic() - started < 0.1


async def test_update_and_delete_take_effect(proxyd, gql, backend, nursery):
    from tests.support.backend import start_backend

    other = await start_backend(nursery)
    await create(gql, "app.test", backend.url)
    assert (await get(proxyd, "app.test")).json()["backend"] == backend.port

    await gql(
        f'mutation {{ updateProxy(hostname: "app.test", input: {{targetUrl: "{other.url}"}}) '
        "{ targetUrl } }"
    )
    with trio.fail_after(2):
        while (await get(proxyd, "app.test")).json()["backend"] != other.port:
            await trio.sleep(0.01)

    await gql('mutation { deleteProxy(hostname: "app.test") }')
    with trio.fail_after(2):
        while (response := await get(proxyd, "app.test")).status_code != 404:
            await trio.sleep(0.01)
    assert "no proxy is configured for host app.test" in response.text
    other.shutdown.set()


async def test_unknown_host_gets_clear_404(proxyd):
    response = await get(proxyd, "nobody.test")
    assert response.status_code == 404
    assert response.text == "404 Not Found: no proxy is configured for host nobody.test.\n"


async def test_forwarded_headers_set_and_client_identity_headers_stripped(proxyd, gql, backend):
    await create(
        gql,
        "hdr.test",
        backend.url,
        customHeaders={"X-Custom": "yes"},
        customResponseHeaders={"X-Served-By": "proxyd"},
    )
    response = await get(
        proxyd,
        "hdr.test",
        "/echo?a=1",
        headers={
            "X-Forwarded-For": "6.6.6.6",
            "X-Forwarded-Host": "evil.test",
            "X-Real-IP": "6.6.6.6",
            "X-Forwarded-Proto": "https",
            "Forwarded": "for=6.6.6.6",
            "X-Auth-User": "root",
            "X-Auth-Scopes": "admin",
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "1",
        },
    )
    assert response.status_code == 200
    headers = dict(response.json()["headers"])
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-real-ip"] == "127.0.0.1"
    assert headers["x-forwarded-host"] == "hdr.test"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["host"] == "hdr.test"  # preserve_host_header defaults to true
    assert headers["x-custom"] == "yes"
    for forged in ("x-auth-user", "x-auth-scopes", "forwarded", "x-secret-hop"):
        assert forged not in headers
    assert response.json()["query"] == "a=1"
    # Response side: hop-by-hop headers named in Connection are removed, custom ones added.
    assert "x-hop" not in response.headers
    assert response.headers["x-served-by"] == "proxyd"
    assert response.headers["x-backend"] == "yes"


async def test_preserve_host_off_sends_the_target_host(proxyd, gql, backend):
    await create(gql, "nohost.test", backend.url, preserveHostHeader=False)
    headers = dict((await get(proxyd, "nohost.test")).json()["headers"])
    assert headers["host"] == f"127.0.0.1:{backend.port}"


async def test_trusted_proxy_forwarded_for_is_kept(start_proxyd, backend):
    proxyd = start_proxyd("trusting", TRUSTED_PROXIES="127.0.0.1/32")
    from tests.support.graphql import GraphQLClient

    gql = GraphQLClient(proxyd.api_url, proxyd.token("admin"), proxyd.http_url)
    await create(gql, "lb.test", backend.url)
    response = await get(
        proxyd,
        "lb.test",
        headers={
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Proto": "https",
            "X-Auth-User": "root",
        },
    )
    headers = dict(response.json()["headers"])
    assert headers["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert headers["x-real-ip"] == "203.0.113.7"
    assert headers["x-forwarded-proto"] == "https"
    assert "x-auth-user" not in headers  # identity headers never cross, trusted or not


async def test_content_encoding_passes_through_untouched(proxyd, gql, backend):
    await create(gql, "gz.test", backend.url)
    async with (
        httpx.AsyncClient() as client,
        client.stream(
            "GET", proxyd.http_url + "/gzip", headers={"Host": "gz.test", "Accept-Encoding": "gzip"}
        ) as resp,
    ):
        raw = b"".join([chunk async for chunk in resp.aiter_raw()])
    assert resp.headers["content-encoding"] == "gzip"
    assert raw == GZIPPED
    assert gzip.decompress(raw).startswith(b"hello compressed world")


async def test_sse_events_arrive_as_sent(proxyd, gql, backend):
    await create(gql, "sse.test", backend.url)
    arrivals = []
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream(
            "GET", proxyd.http_url + "/sse?count=3&interval=0.4", headers={"Host": "sse.test"}
        ) as resp,
    ):
        assert resp.headers["content-type"] == "text/event-stream"
        async for line in resp.aiter_lines():
            if line.startswith("data:"):
                arrivals.append((line, time.monotonic()))
    assert [a[0] for a in arrivals] == ["data: event 0", "data: event 1", "data: event 2"]
    gaps = [b[1] - a[1] for a, b in itertools.pairwise(arrivals)]
    assert all(gap > 0.25 for gap in gaps), f"events were buffered: gaps {gaps}"


async def test_websocket_text_binary_subprotocol_and_close_code(proxyd, gql, backend):
    await create(gql, "ws.test", backend.url)
    async with trio.open_nursery() as nursery:
        stream = await trio.open_tcp_stream("127.0.0.1", proxyd.http_port)
        ws = await wrap_client_stream(
            nursery, stream, "ws.test", "/ws", subprotocols=["chat.v2", "chat.v1"]
        )
        assert ws.subprotocol == "chat.v2"
        await ws.send_message("hi")
        assert await ws.get_message() == "echo:hi"
        await ws.send_message(b"\x00\x01")
        assert await ws.get_message() == b"echo:\x00\x01"
        await ws.send_message("close:4321")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
    assert closed.value.reason.code == 4321


async def test_upstream_refused_is_502_and_timeout_is_504(start_proxyd, backend):
    proxyd = start_proxyd("timeouts", PROXY_REQUEST_TIMEOUT="1")
    from tests.support.graphql import GraphQLClient

    gql = GraphQLClient(proxyd.api_url, proxyd.token("admin"), proxyd.http_url)
    await create(gql, "down.test", f"http://127.0.0.1:{free_port()}")
    await create(gql, "slow.test", backend.url)
    refused = await get(proxyd, "down.test")
    assert refused.status_code == 502
    assert refused.text.startswith(
        "502 Bad Gateway: the upstream for down.test could not be reached"
    )
    started = time.monotonic()
    slow = await get(proxyd, "slow.test", "/slow?seconds=3")
    assert slow.status_code == 504
    assert "did not answer in time" in slow.text
    assert time.monotonic() - started < 2.5


async def test_client_going_away_cancels_the_upstream_request(proxyd, gql, backend):
    await create(gql, "hang.test", backend.url)
    async with (
        httpx.AsyncClient() as client,
        client.stream("GET", proxyd.http_url + "/hang", headers={"Host": "hang.test"}) as r,
    ):
        async for _ in r.aiter_raw():
            break
    with trio.fail_after(5):
        while "/hang" not in backend.disconnects:
            await trio.sleep(0.05)


def _rss_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(field)


@pytest.mark.slow
async def test_512_mib_each_way_streams_with_flat_memory(proxyd, gql, backend):
    await create(gql, "big.test", backend.url)
    size = 512 * 1024 * 1024
    pid = proxyd.process.pid
    before = _rss_kib(pid, "VmRSS")

    async def upload_body():
        chunk = b"u" * (1024 * 1024)
        for _ in range(size // len(chunk)):
            yield chunk

    async with httpx.AsyncClient(timeout=120) as client:
        up = await client.post(
            proxyd.http_url + "/upload",
            content=upload_body(),
            headers={"Host": "big.test", "Content-Length": str(size)},
        )
        assert up.json() == {"received": size}
        received = 0
        async with client.stream(
            "GET", proxyd.http_url + f"/download?bytes={size}", headers={"Host": "big.test"}
        ) as down:
            async for chunk in down.aiter_raw():
                received += len(chunk)
    assert received == size
    peak_growth_mib = (_rss_kib(pid, "VmHWM") - before) / 1024
    assert peak_growth_mib < 64, f"proxyd memory grew by {peak_growth_mib:.0f} MiB"


async def test_graphql_validation_errors_are_coded(gql):
    errors = await gql.errors(CREATE_PROXY, {"input": {"hostname": "bad host", "targetUrl": "x"}})
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "not a valid DNS name" in errors[0]["message"]
    errors = await gql.errors(
        CREATE_PROXY, {"input": {"hostname": "ok.test", "targetUrl": "ftp://x"}}
    )
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    await create(gql, "dup.test", "http://127.0.0.1:9")
    errors = await gql.errors(
        CREATE_PROXY, {"input": {"hostname": "dup.test", "targetUrl": "http://127.0.0.1:9"}}
    )
    assert errors[0]["extensions"]["code"] == "CONFLICT"
    errors = await gql.errors('mutation { deleteProxy(hostname: "missing.test") }')
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"
    data = await gql("{ proxies { hostname } }")
    assert sorted(p["hostname"] for p in data["proxies"]) == ["dup.test", "localhost"]


async def test_chunked_request_body_streams_through(proxyd, gql, backend):
    await create(gql, "chunk.test", backend.url)

    async def body():
        for _ in range(64):
            yield b"c" * 10000

    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            proxyd.http_url + "/upload", content=body(), headers={"Host": "chunk.test"}
        )
    assert response.json() == {"received": 640000}

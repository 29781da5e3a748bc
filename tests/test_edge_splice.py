"""Large bodies relayed socket to socket with splice(2) (proxyd.edge.splice): through a real
proxyd to a real backend over loopback, bodies arrive byte-exact with the right framing, a
connection stays usable after a spliced download or upload (and a request pipelined behind an upload is checked as its own), hang-ups, stalls and early closes on either
side end the exchange (and proxyd keeps serving), and TLS clients still get the generic path.
The relay itself is also driven directly over real TCP sockets."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import socket

import httpx
import pytest
import trio

from proxyd.edge import splice
from tests.support.bulk import Client, blob, start_bulk_backend
from tests.support.graphql import CREATE_PROXY, GraphQLClient
from tests.support.logs import wait_for_logs
from tests.support.processes import free_port

pytestmark = pytest.mark.skipif(not splice.AVAILABLE, reason="splice(2) is Linux-only")

MIB = 1024 * 1024
HOST = b"bulk.test"


async def _proxied(start_proxyd, backend, **env: str):
    proc = start_proxyd("bulk", **env)
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    await gql(CREATE_PROXY, {"input": {"hostname": "bulk.test", "targetUrl": backend.url}})
    async with httpx.AsyncClient(timeout=5) as client:
        with trio.fail_after(5):
            url = proc.http_url + "/blob?bytes=1"
            while (await client.get(url, headers={"Host": "bulk.test"})).status_code == 404:
                await trio.sleep(0.02)
    return proc


def _get(path: str, method: bytes = b"GET") -> bytes:
    return b"%s %s HTTP/1.1\r\nHost: bulk.test\r\n\r\n" % (method, path.encode())


def _post(length: int, *extra: bytes) -> bytes:
    head = b"POST /hash HTTP/1.1\r\nHost: bulk.test\r\ncontent-length: %d\r\n" % length
    return head + b"".join(line + b"\r\n" for line in extra) + b"\r\n"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
async def bulk(nursery):
    return await start_bulk_backend(nursery)


async def test_download_is_byte_exact_and_the_connection_stays_usable(start_proxyd, bulk):
    proc = await _proxied(start_proxyd, bulk)
    client = await Client.connect(proc.http_port)
    for size in (8 * MIB, 3 * MIB + 17):
        await client.send(_get(f"/blob?bytes={size}"))
        answer = await client.answer()
        assert answer.status == 200
        assert answer.headers[b"content-length"] == b"%d" % size
        assert b"transfer-encoding" not in answer.headers
        assert b"connection" not in answer.headers  # kept alive
        assert answer.headers[b"x-served"] == b"blob"
        assert (answer.length, answer.sha256) == (size, _sha(blob(size)))
    # HEAD carries the length and no body: the next answer on the connection is intact.
    await client.send(_get(f"/blob?bytes={8 * MIB}", b"HEAD") + _get("/blob?bytes=5"))
    status, headers = await client.head()
    assert (status, headers[b"content-length"]) == (200, b"%d" % (8 * MIB))
    small = await client.answer()
    assert (small.status, small.sha256) == (200, _sha(blob(5)))
    await client.aclose()


async def test_upload_is_byte_exact_with_and_without_100_continue(start_proxyd, bulk):
    proc = await _proxied(start_proxyd, bulk)
    body = blob(6 * MIB + 3, seed=7)
    client = await Client.connect(proc.http_port)
    await client.send(_post(len(body)) + body)
    answer = await client.answer()
    assert answer.status == 200
    assert bulk.uploads[-1] == {"bytes": len(body), "sha256": _sha(body)}
    # The relay moved exactly the body: the connection stays usable for the next request.
    assert b"connection" not in answer.headers
    await client.send(_get("/blob?bytes=7"))
    assert (await client.answer()).sha256 == _sha(blob(7))
    await client.aclose()

    client = await Client.connect(proc.http_port)
    await client.send(_post(len(body), b"Expect: 100-continue"))
    with trio.fail_after(5):
        status, _ = await client.head()
    assert status == 100  # sent once auth and routing passed, before any body byte
    await client.send(body)
    answer = await client.answer()
    assert answer.status == 200
    assert bulk.uploads[-1] == {"bytes": len(body), "sha256": _sha(body)}
    await client.aclose()

    # A request pipelined right behind a spliced body is never spliced along with it (the
    # backend would parse it unchecked): it is parsed and checked as a request of its own, so
    # its forged identity header is stripped like anyone's.
    bulk.targets.clear()
    bulk.heads.clear()
    client = await Client.connect(proc.http_port)
    forged = b"GET /blob?bytes=5 HTTP/1.1\r\nHost: bulk.test\r\nX-Auth-User: admin\r\n\r\n"
    await client.send(_post(len(body)) + body + forged)
    answer = await client.answer()
    assert answer.status == 200
    assert bulk.uploads[-1] == {"bytes": len(body), "sha256": _sha(body)}
    second = await client.answer()
    assert (second.status, second.sha256) == (200, _sha(blob(5)))
    assert bulk.targets == [b"/hash", b"/blob?bytes=5"]
    assert b"x-auth-user" not in bulk.heads[1]
    # Bytes inside a body are never parsed as a request, even when the client hangs up before
    # the promised length: the upload is cut, and nothing else reaches the backend.
    bulk.targets.clear()
    client = await Client.connect(proc.http_port)
    await client.send(_post(len(body) + len(forged) + 10) + body + forged)
    await client.aclose()
    await bulk.wait_for("upload-cut")
    assert bulk.targets == [b"/hash"]

    # A small upload takes the generic path and keeps its connection.
    client = await Client.connect(proc.http_port)
    small = blob(1000, seed=3)
    await client.send(_post(len(small)) + small + _get("/blob?bytes=9"))
    assert (await client.answer()).status == 200
    assert bulk.uploads[-1] == {"bytes": 1000, "sha256": _sha(small)}
    assert (await client.answer()).sha256 == _sha(blob(9))
    await client.aclose()


async def test_request_log_counts_spliced_bytes(start_proxyd, bulk):
    proc = await _proxied(start_proxyd, bulk)
    client = await Client.connect(proc.http_port)
    await client.send(_get(f"/blob?bytes={4 * MIB}"))
    assert (await client.answer()).length == 4 * MIB
    body = blob(3 * MIB, seed=4)
    await client.send(_post(len(body)) + body)
    assert (await client.answer()).status == 200
    await client.aclose()
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    records = await wait_for_logs(gql, 1, {"hostname": "bulk.test", "path": "/hash"})
    assert (records[0]["bytesIn"], records[0]["status"]) == (len(body), 200)
    records = await wait_for_logs(gql, 2, {"hostname": "bulk.test", "path": "/blob"})
    assert max(r["bytesOut"] for r in records) == 4 * MIB


async def test_client_hanging_up_mid_download_cancels_the_upstream(start_proxyd, bulk):
    proc = await _proxied(start_proxyd, bulk, PROXY_REQUEST_TIMEOUT="60")
    client = await Client.connect(proc.http_port)
    await client.send(_get(f"/drip?bytes={64 * MIB}&send={2 * MIB}"))
    with trio.fail_after(5):
        answer = await client.answer(limit=MIB)
    assert (answer.status, answer.length) == (200, MIB)
    await client.aclose()
    await bulk.wait_for("drip-closed", timeout=5)  # long before the 60 s read timeout
    again = await Client.connect(proc.http_port)
    await again.send(_get(f"/blob?bytes={MIB}"))
    assert (await again.answer()).sha256 == _sha(blob(MIB))
    await again.aclose()


async def test_upstream_stalling_or_closing_early_cuts_the_response(start_proxyd, bulk):
    proc = await _proxied(start_proxyd, bulk, PROXY_REQUEST_TIMEOUT="1")
    for path, sent in (
        (f"/short?bytes={8 * MIB}&send={2 * MIB}", 2 * MIB),
        (f"/drip?bytes={8 * MIB}&send={MIB}", MIB),
    ):
        client = await Client.connect(proc.http_port)
        await client.send(_get(path))
        with trio.fail_after(10):
            answer = await client.answer()
        # Everything the upstream sent arrived, then the connection ended (no hang, no padding).
        assert (answer.status, answer.length) == (200, sent)
        assert answer.sha256 == _sha(blob(8 * MIB)[:sent])
        assert client.reader.eof
        await client.aclose()
    await bulk.wait_for("drip-closed")
    assert "upstream for bulk.test broke mid-response" in proc.log()
    again = await Client.connect(proc.http_port)
    await again.send(_get(f"/blob?bytes={MIB}"))
    assert (await again.answer()).sha256 == _sha(blob(MIB))
    await again.aclose()


async def test_stalled_or_abandoned_upload_ends_the_upstream_request(start_proxyd, bulk):
    proc = await _proxied(start_proxyd, bulk, EDGE_BODY_TIMEOUT="1")
    body = blob(4 * MIB, seed=5)
    client = await Client.connect(proc.http_port)
    await client.send(_post(len(body)) + body[:MIB])
    with trio.fail_after(5):
        answer = await client.answer()
    assert answer.status == 408
    assert await client.closed()
    await bulk.wait_for("upload-cut")

    bulk.events.clear()
    client = await Client.connect(proc.http_port)
    await client.send(_post(len(body)) + body[:MIB])
    await trio.sleep(0.2)
    await client.aclose()
    await bulk.wait_for("upload-cut")
    assert not bulk.uploads
    again = await Client.connect(proc.http_port)
    await again.send(_get("/blob?bytes=7"))
    assert (await again.answer()).sha256 == _sha(blob(7))
    await again.aclose()


async def test_tls_clients_use_the_generic_path(start_proxyd, bulk):
    https_port = free_port()
    await _proxied(start_proxyd, bulk, HTTPS_PORT=str(https_port), SELF_SIGNED_CN="proxyd.invalid")
    body = blob(5 * MIB, seed=11)
    async with httpx.AsyncClient(verify=False, timeout=30) as client:
        url = f"https://127.0.0.1:{https_port}"
        ext = {"sni_hostname": "bulk.test"}
        down = await client.get(
            f"{url}/blob?bytes={6 * MIB}", headers={"Host": "bulk.test"}, extensions=ext
        )
        up = await client.post(
            f"{url}/hash", content=body, headers={"Host": "bulk.test"}, extensions=ext
        )
    assert down.status_code == 200 and _sha(down.content) == _sha(blob(6 * MIB))
    assert json.loads(up.content) == {"bytes": len(body), "sha256": _sha(body)}


# -- the relay on its own, over real TCP sockets ------------------------------------------------


async def _tcp_pair() -> tuple[trio.socket.SocketType, trio.socket.SocketType]:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    near = trio.socket.socket()
    await near.connect(listener.getsockname())
    far, _ = await listener.accept()
    listener.close()
    return near, far


async def _send_all(sock: trio.socket.SocketType, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[await sock.send(view) :]


async def test_relay_moves_exactly_count_bytes(nursery):
    src_in, src = await _tcp_pair()
    dst, dst_out = await _tcp_pair()
    data = blob(5 * MIB + 1, seed=2)
    extra = b"NEXT REQUEST"
    received = bytearray()

    async def feed():
        await _send_all(src_in, data + extra)

    async def drain():
        while len(received) < len(data):
            received.extend(await dst_out.recv(MIB))

    nursery.start_soon(feed)
    async with trio.open_nursery() as inner:
        inner.start_soon(drain)
        await splice.relay(src, dst, len(data), idle_timeout=5)
    assert bytes(received) == data
    assert await src.recv(100) == extra  # nothing past count was taken
    for sock in (src_in, src, dst, dst_out):
        sock.close()


async def test_relay_reports_early_close_stall_and_gone_destination(nursery):
    src_in, src = await _tcp_pair()
    dst, dst_out = await _tcp_pair()
    await src_in.send(b"x" * 1000)
    src_in.shutdown(socket.SHUT_WR)
    with pytest.raises(splice.SourceEnded):
        await splice.relay(src, dst, 5000, idle_timeout=5)
    assert len(await dst_out.recv(5000)) == 1000  # what came before the close was passed on

    src_in2, src2 = await _tcp_pair()
    with trio.fail_after(3), pytest.raises(splice.SourceTimeout):
        await splice.relay(src2, dst, 10, idle_timeout=0.3)

    dst_out.close()

    async def flood():
        with contextlib.suppress(OSError, trio.ClosedResourceError):
            await _send_all(src_in2, b"y" * (4 * MIB))

    nursery.start_soon(flood)
    with trio.fail_after(5), pytest.raises(trio.BrokenResourceError):
        await splice.relay(src2, dst, 4 * MIB, idle_timeout=5)
    for sock in (src_in, src, dst, src_in2, src2):
        sock.close()


@contextlib.contextmanager
def _no_free_descriptors():
    """Every descriptor number below the soft RLIMIT_NOFILE in use: pipe2() fails (EMFILE)."""
    top = max(int(fd) for fd in os.listdir("/proc/self/fd"))
    fillers = []
    while (fd := os.open(os.devnull, os.O_RDONLY)) < top:
        fillers.append(fd)
    os.close(fd)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (top + 1, hard))
    try:
        with pytest.raises(OSError):
            os.pipe2(0)
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        for fd in fillers:
            os.close(fd)


async def test_relay_without_a_free_descriptor_copies_instead(nursery):
    src_in, src = await _tcp_pair()
    dst, dst_out = await _tcp_pair()
    data = blob(3 * MIB, seed=9)
    received = bytearray()

    async def drain():
        while len(received) < len(data):
            received.extend(await dst_out.recv(MIB))

    nursery.start_soon(_send_all, src_in, data)
    with _no_free_descriptors():
        async with trio.open_nursery() as inner:
            inner.start_soon(drain)
            await splice.relay(src, dst, len(data), idle_timeout=5)
    assert bytes(received) == data
    for sock in (src_in, src, dst, dst_out):
        sock.close()

"""Clients that stop reading their answer (slow-read attacks): each would otherwise hold a client
connection, an upstream connection and the backend's request for good. After EDGE_SEND_TIMEOUT
seconds in which the client took no byte, proxyd closes the client connection (HTTP/2: resets the
stream) and the upstream request ends; everyone else is still served.

Covered: a spliced download (plain HTTP/1.1), the generic path (HTTPS), and an HTTP/2 client that
never opens its flow-control window (which also shows that proxyd does not buffer the answer for
it: the backend is cut off while it is still sending). Real proxyd, real bulk backend, raw
sockets.
"""

from __future__ import annotations

import socket
import ssl

import httpx
import pytest
import trio

from tests.support.bulk import Client, start_bulk_backend
from tests.support.graphql import CREATE_PROXY, GraphQLClient
from tests.support.h2client import H2Client
from tests.support.processes import free_port

MIB = 1024 * 1024
HOST = "bulk.test"
BIG = 512 * MIB  # the declared length
# The backend sends this much, far more than all the socket buffers on the way hold, then waits
# for proxyd to close its connection.
PATH = f"/drip?bytes={BIG}&send={32 * MIB}"


@pytest.fixture
async def bulk(nursery):
    return await start_bulk_backend(nursery)


async def _proxied(start_proxyd, backend, **env: str):
    proc = start_proxyd("slow", EDGE_SEND_TIMEOUT="1", PROXY_REQUEST_TIMEOUT="60", **env)
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    await gql(CREATE_PROXY, {"input": {"hostname": HOST, "targetUrl": backend.url}})
    async with httpx.AsyncClient(timeout=5) as client:
        with trio.fail_after(5):
            url = proc.http_url + "/blob?bytes=1"
            while (await client.get(url, headers={"Host": HOST})).status_code == 404:
                await trio.sleep(0.02)
    return proc


async def _upstream_closed(bulk) -> None:
    """proxyd closed the backend's connection: the backend was still sending ("broken"), or
    had sent everything and was waiting ("drip-closed")."""
    with trio.fail_after(8):  # long before the 60 s upstream read timeout
        while not {"broken", "drip-closed"} & set(bulk.events):
            await trio.sleep(0.05)


async def _still_serving(proc) -> None:
    client = await Client.connect(proc.http_port)
    await client.send(b"GET /blob?bytes=9 HTTP/1.1\r\nHost: bulk.test\r\n\r\n")
    answer = await client.answer()
    assert answer.status == 200 and answer.length == 9
    await client.aclose()


def _small_receive_buffer() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    return sock


def _ask_then_stop_reading(sock: socket.socket, port: int, wrap=None) -> socket.socket:
    """Connect, send the request, read the start of the answer, then read nothing more (in a
    thread: the backend runs in the test's own event loop)."""
    sock.connect(("127.0.0.1", port))
    if wrap is not None:
        sock = wrap(sock)
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: bulk.test\r\n\r\n" % PATH.encode())
    head = sock.recv(1024)
    assert head.startswith(b"HTTP/1.1 200 "), head
    return sock


async def test_spliced_download_to_a_client_that_stopped_reading(start_proxyd, bulk):
    proc = await _proxied(start_proxyd, bulk)
    sock = await trio.to_thread.run_sync(
        _ask_then_stop_reading, _small_receive_buffer(), proc.http_port
    )
    await _upstream_closed(bulk)
    await _still_serving(proc)
    sock.close()
    assert "Traceback" not in proc.log()


async def test_tls_download_to_a_client_that_stopped_reading(start_proxyd, bulk):
    https_port = free_port()
    proc = await _proxied(
        start_proxyd, bulk, HTTPS_PORT=str(https_port), SELF_SIGNED_CN="proxyd.invalid"
    )
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    tls = await trio.to_thread.run_sync(
        _ask_then_stop_reading,
        _small_receive_buffer(),
        https_port,
        lambda raw: context.wrap_socket(raw, server_hostname=HOST),
    )
    await _upstream_closed(bulk)
    await _still_serving(proc)
    tls.close()
    assert "Traceback" not in proc.log()


def _h2_stalled_window(port: int) -> H2Client:
    """Ask for a big body over h2c with a 1-byte initial window, and never open it."""
    client = H2Client(port, window=1, timeout=10)
    request = [(":method", "GET"), (":path", PATH), (":scheme", "http"), (":authority", HOST)]
    client.conn.send_headers(1, request, end_stream=True)
    client.send()
    return client


async def test_http2_client_that_never_opens_its_window(start_proxyd, bulk):
    proc = await _proxied(start_proxyd, bulk)
    client = await trio.to_thread.run_sync(_h2_stalled_window, proc.http_port)
    await _upstream_closed(bulk)
    await _still_serving(proc)
    client.close()
    assert "Traceback" not in proc.log()  # a slow client is no error of proxyd's

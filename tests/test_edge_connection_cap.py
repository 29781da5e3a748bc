"""EDGE_MAX_CONNECTIONS: each serving process holds at most that many client connections. Past
the cap it stops accepting (new connections wait in the kernel's backlog, as with nginx's
worker_connections), so a flood of idle connections cannot exhaust memory or descriptors; each
waiting client is served as soon as a slot frees. Raw sockets against a real proxyd."""

from __future__ import annotations

import socket

import httpx
import trio

from tests.support.graphql import CREATE_PROXY, GraphQLClient

CAP = 3


def _request(port: int, timeout: float) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: cap.test\r\nConnection: close\r\n\r\n")
        try:
            return sock.recv(4096)
        except TimeoutError:
            return b""


async def test_connections_past_the_cap_wait_for_a_free_slot(start_proxyd, backend):
    proc = start_proxyd("cap", EDGE_MAX_CONNECTIONS=str(CAP), WORKERS="1")
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    await gql(CREATE_PROXY, {"input": {"hostname": "cap.test", "targetUrl": backend.url}})
    async with httpx.AsyncClient(timeout=5) as client:
        with trio.fail_after(5):
            while (
                await client.get(proc.http_url, headers={"Host": "cap.test"})
            ).status_code == 404:
                await trio.sleep(0.02)
    # The cap's worth of idle connections (each waits for a request head, up to 10 s).
    idle = [socket.create_connection(("127.0.0.1", proc.http_port)) for _ in range(CAP)]
    await trio.sleep(0.3)
    # One more client connects (the kernel queues it) but is not served while all slots are taken.
    answer = await trio.to_thread.run_sync(_request, proc.http_port, 1.0)
    assert answer == b""
    # A slot frees: the next client is served at once.
    idle.pop().close()
    answer = await trio.to_thread.run_sync(_request, proc.http_port, 3.0)
    assert answer.startswith(b"HTTP/1.1 200 ")
    for sock in idle:
        sock.close()

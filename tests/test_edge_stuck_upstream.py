"""An upstream that accepts the connection and then never reads the request body (a hung or
hostile backend). proxyd gives up after PROXY_REQUEST_TIMEOUT without a byte taken, answers 504,
and closes both connections, for a spliced Content-Length upload and for a chunked one (the
generic path). Without that bound, the client's connection and the upstream's were held for good.
Raw sockets against a real proxyd."""

from __future__ import annotations

import socket
import time

import httpx
import trio

from tests.support.graphql import CREATE_PROXY, GraphQLClient

MIB = 1024 * 1024
HOST = "stuck.test"


async def _never_reads(task_status=trio.TASK_STATUS_IGNORED) -> None:
    """A listener whose connections are accepted and then left alone until they close."""
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    listener.listen(16)
    task_status.started(listener.getsockname()[1])
    held = []
    try:
        while True:
            conn, _ = await listener.accept()
            held.append(conn)  # never read
    finally:
        for conn in held:
            conn.close()
        listener.close()


def _upload(port: int, head: bytes, body_chunks) -> tuple[bytes, float]:
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except OSError:
            pass  # proxyd stopped reading and closed: the answer is what counts
        sock.settimeout(10)
        answer = b""
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except OSError:
            pass
    return answer, time.monotonic() - began


async def test_upstream_that_never_reads_the_body_gets_504(start_proxyd, nursery):
    port = await nursery.start(_never_reads)
    proc = start_proxyd("stuck", PROXY_REQUEST_TIMEOUT="1")
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    await gql(CREATE_PROXY, {"input": {"hostname": HOST, "targetUrl": f"http://127.0.0.1:{port}"}})
    async with httpx.AsyncClient(timeout=5) as client:
        with trio.fail_after(10):
            while (await client.get(proc.http_url, headers={"Host": HOST})).status_code == 404:
                await trio.sleep(0.05)
    size = 64 * MIB
    spliced = b"POST /up HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n" % (HOST.encode(), size)
    chunked = b"POST /up HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n" % HOST.encode()
    piece = b"x" * MIB
    cases = {
        "spliced": (spliced, [piece] * 64),
        "chunked": (chunked, [b"%x\r\n%s\r\n" % (len(piece), piece)] * 64 + [b"0\r\n\r\n"]),
    }
    for name, (head, chunks) in cases.items():
        answer, took = await trio.to_thread.run_sync(_upload, proc.http_port, head, chunks)
        assert answer.startswith(b"HTTP/1.1 504 "), (name, answer[:200])
        assert took < 8, (name, took)
    assert "Traceback" not in proc.log()

"""The HTTPS listener's own TLS stream (proxyd.edge.tls_stream), attacked and exercised with real
TLS clients (Python's ssl and the openssl command line): pipelined requests decrypted from one
read, large bodies both ways on one keep-alive connection, a TLS 1.3 KeyUpdate in the middle of
a connection, a refused TLS 1.2 renegotiation, junk instead of a ClientHello, and a client that
vanishes mid-handshake. After each attack the listener keeps serving and logs no traceback."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest
import trio

from tests.support.graphql import CREATE_PROXY, GraphQLClient
from tests.support.processes import free_port
from tests.support.tls import https_request

HOST = "tls.example.test"


@pytest.fixture
async def tls_site(start_proxyd, backend):
    proc = start_proxyd(
        "tlsstream",
        HTTPS_PORT=str(free_port()),
        SELF_SIGNED_CN="proxyd.invalid",
        EDGE_HEADER_TIMEOUT="2",  # also bounds the TLS handshake
    )
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    await gql(CREATE_PROXY, {"input": {"hostname": HOST, "targetUrl": backend.url}})
    return proc, int(proc.env["HTTPS_PORT"])


def _client(port: int, version: ssl.TLSVersion | None = None) -> ssl.SSLSocket:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    if version is not None:
        context.minimum_version = context.maximum_version = version
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    return context.wrap_socket(raw, server_hostname=HOST)


def _read_response(tls: ssl.SSLSocket, buffer: bytearray) -> tuple[int, bytes]:
    """One Content-Length framed response from tls (leftover bytes stay in buffer)."""
    while b"\r\n\r\n" not in buffer:
        chunk = tls.recv(65536)
        assert chunk, "the connection ended before a response head"
        buffer += chunk
    end = buffer.index(b"\r\n\r\n")
    head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    del buffer[: end + 4]
    status = int(head[0].split(" ")[1])
    fields = dict(line.lower().split(": ", 1) for line in head[1:])
    length = int(fields["content-length"])
    while len(buffer) < length:
        chunk = tls.recv(1 << 20)
        assert chunk, "the connection ended mid-body"
        buffer += chunk
    body = bytes(buffer[:length])
    del buffer[:length]
    return status, body


def _pipelined_and_large(port: int) -> list[tuple[int, bytes]]:
    upload = bytes(range(256)) * 8192  # 2 MiB
    with _client(port) as tls:
        # Three requests in one TLS write: the server decrypts them from one read.
        tls.sendall(
            f"GET /first HTTP/1.1\r\nHost: {HOST}\r\n\r\n"
            f"GET /download?bytes=3145728 HTTP/1.1\r\nHost: {HOST}\r\n\r\n"
            f"POST /upload HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len(upload)}\r\n\r\n".encode()
            + upload
        )
        buffer = bytearray()
        answers = [_read_response(tls, buffer) for _ in range(3)]
        # The same connection still serves, after 5 MiB went through it.
        tls.sendall(f"GET /last HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        answers.append(_read_response(tls, buffer))
    return answers


async def test_pipelined_requests_and_large_bodies_on_one_tls_connection(tls_site, backend):
    proc, port = tls_site
    answers = await trio.to_thread.run_sync(_pipelined_and_large, port)
    assert [status for status, _ in answers] == [200, 200, 200, 200]
    assert json.loads(answers[0][1])["path"] == "/first"
    assert hashlib.sha256(answers[1][1]).digest() == hashlib.sha256(b"x" * 3145728).digest()
    assert json.loads(answers[2][1]) == {"received": 2 * 1024 * 1024}
    assert json.loads(answers[3][1])["path"] == "/last"
    assert backend.uploads == [2 * 1024 * 1024]
    assert "Traceback" not in proc.log()


class _SClient:
    """openssl s_client driven line by line (its interactive commands: K = KeyUpdate asking
    the server to update too, R = renegotiate)."""

    def __init__(self, port: int, version_flag: str) -> None:
        self.process = subprocess.Popen(
            [
                "openssl",
                "s_client",
                "-brief",
                version_flag,
                "-connect",
                f"127.0.0.1:{port}",
                "-servername",
                HOST,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.chunks: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.output = b""  # everything read so far
        self.ended = False
        self._checked = 0

    def _pump(self) -> None:
        fd = self.process.stdout.fileno()
        while chunk := os.read(fd, 65536):
            self.chunks.put(chunk)
        self.chunks.put(b"")

    def send(self, data: bytes) -> None:
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def wait_for(self, marker: bytes, timeout: float = 15) -> bool:
        """Whether marker appears in output not yet matched, before the output ends or time runs
        out (later waits look only past the previous match)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.output.find(marker, self._checked)
            if found >= 0:
                self._checked = found + len(marker)
                return True
            if self.ended or time.monotonic() >= deadline:
                return False
            try:
                chunk = self.chunks.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                return False
            if not chunk:
                self.ended = True
            self.output += chunk

    def close(self) -> int:
        try:
            self.process.stdin.close()
        except BrokenPipeError:
            pass
        try:
            return self.process.wait(timeout=15)
        finally:
            if self.process.poll() is None:
                self.process.kill()


def _request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()


def _key_update(port: int) -> bytes:
    client = _SClient(port, "-tls1_3")
    try:
        assert client.wait_for(b"Protocol version: TLSv1.3"), client.output
        client.send(_request("/before"))
        assert client.wait_for(b'"/before"'), client.output
        client.send(b"K\n")  # KeyUpdate, update_requested: the server must update its keys too
        assert client.wait_for(b"KEYUPDATE"), client.output
        client.send(_request("/after"))
        assert client.wait_for(b'"/after"'), client.output
    finally:
        client.close()
    return client.output


needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@needs_openssl
async def test_tls13_key_update_in_the_middle_of_a_connection(tls_site):
    proc, port = tls_site
    output = await trio.to_thread.run_sync(_key_update, port)
    assert output.count(b"HTTP/1.1 200 OK") == 2
    assert "Traceback" not in proc.log()


def _renegotiate(port: int) -> tuple[bool, int]:
    client = _SClient(port, "-tls1_2")
    try:
        assert client.wait_for(b"Protocol version: TLSv1.2"), client.output
        client.send(_request("/before"))
        assert client.wait_for(b'"/before"'), client.output
        client.send(b"R\n")
        client.wait_for(b"RENEGOTIATING")
        client.send(_request("/after"))
        answered = client.wait_for(b'"/after"', timeout=5)
    finally:
        code = client.close()
    return answered, code


@needs_openssl
async def test_tls12_renegotiation_is_refused_and_the_listener_keeps_serving(tls_site):
    proc, port = tls_site
    answered, _ = await trio.to_thread.run_sync(_renegotiate, port)
    assert not answered  # the server refused to renegotiate: that connection is over
    status, body = await trio.to_thread.run_sync(lambda: https_request(port, HOST, HOST, "/ok"))
    assert status == 200 and json.loads(body)["path"] == "/ok"
    assert "Traceback" not in proc.log()


def _junk_then_vanish(port: int) -> tuple[bytes, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as junk:
        junk.sendall(b"GET / HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n\r\n")
        junk_answer = b""
        while chunk := junk.recv(65536):
            junk_answer += chunk
    with socket.create_connection(("127.0.0.1", port), timeout=20) as half:
        # The first bytes of a TLS record header, then gone.
        half.sendall(b"\x16\x03\x01\x02")
    with socket.create_connection(("127.0.0.1", port), timeout=20) as stalled:
        # A ClientHello record that never completes: the server's handshake timer ends it.
        stalled.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc")
        stalled.settimeout(20)
        rest = b""
        while chunk := stalled.recv(65536):
            rest += chunk
    return junk_answer, rest


async def test_junk_and_broken_handshakes_end_quietly(tls_site):
    proc, port = tls_site
    junk_answer, rest = await trio.to_thread.run_sync(_junk_then_vanish, port)
    # Plain HTTP on the TLS port is not TLS: at most an alert, never an HTTP answer.
    assert not junk_answer.startswith(b"HTTP/")
    assert not rest.startswith(b"HTTP/")
    status, _ = await trio.to_thread.run_sync(lambda: https_request(port, HOST, HOST, "/ok"))
    assert status == 200
    assert "Traceback" not in proc.log()

"""The lean HTTP/1.1 upstream client against real sockets: framing (content-length, chunked,
until-close, no body), 1xx responses, keep-alive reuse, stale connections, timeouts and errors."""

from __future__ import annotations

import functools

import pytest
import trio

from proxyd.edge.http1 import (
    UpstreamConnectError,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from proxyd.edge.upstream import new_pool
from tests.support.processes import free_port


async def scripted_server(nursery, replies: list[bytes], *, close_after: bool = False):
    """A raw TCP server: for each request head it reads, it writes the next scripted reply."""
    connections = []
    requests: list[bytes] = []

    async def handler(stream):
        connections.append(stream)
        try:
            await serve(stream)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return  # the test closed this connection from the server side

    async def serve(stream):
        buffer = b""
        while replies:
            while b"\r\n\r\n" not in buffer:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buffer += data
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            requests.append(head)
            await stream.send_all(replies.pop(0))
            if close_after:
                await stream.aclose()
                return

        await trio.sleep_forever()  # keep the connection open, answering nothing more

    listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    return port, connections, requests


def pool(read_timeout: float = 5.0):
    return new_pool(connect_timeout=2, request_timeout=read_timeout, keepalive=8)


async def read_all(response) -> bytes:
    whole = response.complete_body()
    if whole is not None:
        return whole
    return b"".join([chunk async for chunk in response.body()])


async def test_framings_and_keep_alive_reuse(nursery):
    replies = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nX-Trailer: 1\r\n\r\n"
        ),
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
    ]
    port, connections, requests = await scripted_server(nursery, replies)
    upstream = pool()
    key = ("http", "127.0.0.1", port)
    bodies = []
    for method in ("GET", "GET", "GET", "GET"):
        response = await upstream.request(method, key, b"/x", [(b"host", b"h")], None, False)
        bodies.append((response.status, await read_all(response)))
        await response.aclose()
    assert bodies == [(200, b"hello"), (200, b"abcdefg"), (204, b""), (304, b"")]
    assert len(connections) == 1, "keep-alive connection was not reused"
    assert requests[0].startswith(b"GET /x HTTP/1.1\r\nhost: h")
    await upstream.aclose()


async def test_until_close_framing_and_head(nursery):
    port, _, _ = await scripted_server(
        nursery, [b"HTTP/1.0 200 OK\r\n\r\nstreamed until close"], close_after=True
    )
    upstream = pool()
    response = await upstream.request("GET", ("http", "127.0.0.1", port), b"/", [], None, False)
    assert await read_all(response) == b"streamed until close"
    await response.aclose()
    port2, _, _ = await scripted_server(
        nursery, [b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"]
    )
    response = await upstream.request("HEAD", ("http", "127.0.0.1", port2), b"/", [], None, False)
    assert response.status == 200 and await read_all(response) == b""
    await response.aclose()


async def test_stale_idle_connection_is_replaced(nursery):
    port, connections, _ = await scripted_server(
        nursery, [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"] * 2
    )
    upstream = pool()
    key = ("http", "127.0.0.1", port)
    first = await upstream.request("GET", key, b"/", [], None, False)
    assert await read_all(first) == b"ok"
    await first.aclose()
    await connections[0].aclose()  # the upstream drops the idle keep-alive connection
    await trio.sleep(0.05)
    second = await upstream.request("GET", key, b"/", [], None, False)
    assert await read_all(second) == b"ok"
    await second.aclose()
    assert len(connections) == 2


async def test_chunked_request_body_is_encoded(nursery):
    port, _, requests = await scripted_server(
        nursery, [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]
    )

    async def body():
        yield b"abc"
        yield b"defgh"

    upstream = pool()
    response = await upstream.request(
        "POST",
        ("http", "127.0.0.1", port),
        b"/up",
        [(b"transfer-encoding", b"chunked")],
        body(),
        True,
    )
    assert response.status == 200
    await response.aclose()
    assert requests[0].startswith(b"POST /up HTTP/1.1")


async def test_errors_are_classified(nursery):
    upstream = pool(read_timeout=0.3)
    with pytest.raises(UpstreamConnectError):
        await upstream.request("GET", ("http", "127.0.0.1", free_port()), b"/", [], None, False)
    silent_port, _, _ = await scripted_server(nursery, [])  # accepts, never answers
    with pytest.raises(UpstreamTimeout):
        await upstream.request("GET", ("http", "127.0.0.1", silent_port), b"/", [], None, False)
    garbage_port, _, _ = await scripted_server(nursery, [b"SSH-2.0-OpenSSH\r\n\r\n"])
    with pytest.raises(UpstreamProtocolError):
        await upstream.request("GET", ("http", "127.0.0.1", garbage_port), b"/", [], None, False)
    short_port, _, _ = await scripted_server(
        nursery, [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"], close_after=True
    )
    response = await upstream.request(
        "GET", ("http", "127.0.0.1", short_port), b"/", [], None, False
    )
    with pytest.raises(UpstreamProtocolError):
        await read_all(response)
    await response.aclose()


def _tls_files(tmp_path):
    """A CA certificate file, and a server context for 127.0.0.1 signed by that CA."""
    import datetime as dt
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def cert(subject, issuer, public_key, signing_key, *, ca: bool):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca_cert = cert("test upstream CA", "test upstream CA", ca_key.public_key(), ca_key, ca=True)
    server_cert = cert("127.0.0.1", "test upstream CA", server_key.public_key(), ca_key, ca=False)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    chain = tmp_path / "server.pem"
    chain.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + server_cert.public_bytes(serialization.Encoding.PEM)
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(chain)
    return ca_file, server


async def test_https_upstream_is_verified_against_the_system_trust_store(
    nursery, tmp_path, monkeypatch
):
    """An https target is connected over TLS and its certificate verified with the default
    trust store (SSL_CERT_FILE here): an untrusted certificate is refused, a trusted one works."""
    from proxyd.edge.upstream import shared_ssl_context

    ca_file, server_context = _tls_files(tmp_path)

    async def handler(stream):
        buffer = b""
        try:
            while b"\r\n\r\n" not in buffer:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buffer += data
            await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret")
            await trio.sleep_forever()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return

    listeners = await nursery.start(
        functools.partial(trio.serve_ssl_over_tcp, handler, 0, server_context, host="127.0.0.1")
    )
    key = ("https", "127.0.0.1", listeners[0].transport_listener.socket.getsockname()[1])
    shared_ssl_context.cache_clear()
    try:
        upstream = pool()
        with pytest.raises(
            UpstreamConnectError,
            match=r"^TLS with 127\.0\.0\.1:\d+ failed: .*CERTIFICATE_VERIFY_FAILED",
        ):
            await upstream.request("GET", key, b"/", [(b"host", b"127.0.0.1")], None, False)
        await upstream.aclose()

        shared_ssl_context.cache_clear()
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        upstream = pool()
        response = await upstream.request("GET", key, b"/", [(b"host", b"127.0.0.1")], None, False)
        assert (response.status, await read_all(response)) == (200, b"secret")
        await response.aclose()
        await upstream.aclose()
    finally:
        shared_ssl_context.cache_clear()  # later tests get a context built without our CA

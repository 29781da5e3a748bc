"""Certificates from a real ACME CA: Pebble and pebble-challtestsrv (Debian package `pebble`)
validate real HTTP-01 and TLS-ALPN-01 answers from real proxyd processes, and the served
certificates are checked by real TLS handshakes against Pebble's root."""

from __future__ import annotations

import json
import re

import pytest
import trio
from trio_websocket import open_websocket_url

from tests.support.graphql import GraphQLClient
from tests.support.pebble import Pebble
from tests.support.processes import free_port
from tests.support.tls import handshake, https_request, wait_until

pytestmark = pytest.mark.slow

CREATE = """
mutation($input: CreateCertificateInput!) {
  createCertificate(input: $input) { certName domains status challenge keyType }
}
"""
STATUS = """
query($name: String!) {
  certificate(name: $name) {
    certName status domains issuer fingerprint expiresAt lastError
    orderStatus { stage message reason instance }
  }
}
"""


@pytest.fixture(scope="module")
def pebble(tmp_path_factory):
    server = Pebble(tmp_path_factory.mktemp("pebble"), free_port(), free_port())
    yield server
    server.stop()


@pytest.fixture
def acme_proxyd(start_proxyd, pebble):
    """A proxyd on the ports Pebble validates against."""
    return start_proxyd("acme", **pebble.env())


def _client(proc) -> GraphQLClient:
    return GraphQLClient(proc.api_url, proc.token("admin"))


async def _wait_cert(gql: GraphQLClient, name: str, stage: str = "ready", timeout: float = 60):
    async def done():
        cert = (await gql(STATUS, {"name": name}))["certificate"]
        status = cert and cert["orderStatus"]
        if status and status["stage"] in ("ready", "failed"):
            assert status["stage"] == stage, cert
            return cert
        return None

    return await wait_until(done, timeout=timeout, what=f"certificate {name} {stage}")


def _served(port: int, name: str, pebble: Pebble | None = None):
    return handshake(port, name, cadata=pebble.root_pem if pebble else None)


async def test_http01_certificate_is_issued_served_and_renewed(acme_proxyd, pebble, backend):
    gql = _client(acme_proxyd)
    await gql(
        CREATE, {"input": {"name": "site", "domains": ["site.example.test"], "keyType": "ecdsa"}}
    )
    cert = await _wait_cert(gql, "site")
    assert cert["status"] == "active" and "Pebble" in cert["issuer"]
    seconds = float(re.search(r"in ([\d.]+)s", cert["orderStatus"]["message"]).group(1))
    print(f"HTTP-01 issuance against Pebble took {seconds:.1f}s")

    # A real handshake, verified against Pebble's root and the hostname.
    first = await trio.to_thread.run_sync(_served, pebble.tls_port, "site.example.test", pebble)
    assert first.names == ["site.example.test"]
    assert "Pebble" in first.issuer_cn
    assert first.alpn == "h2"

    renewed = await gql('mutation { renewCertificate(name: "site") { certName } }')
    assert renewed["renewCertificate"]["certName"] == "site"
    await _wait_cert(gql, "site")
    second = await trio.to_thread.run_sync(_served, pebble.tls_port, "site.example.test", pebble)
    assert second.fingerprint != first.fingerprint  # swapped at the next handshake, no restart


async def test_tls_alpn01_multi_domain_certificate(acme_proxyd, pebble):
    gql = _client(acme_proxyd)
    domains = ["m1.example.test", "m2.example.test", "m3.example.test"]
    created = await gql(
        CREATE, {"input": {"name": "multi", "domains": domains, "challenge": "tls-alpn-01"}}
    )
    assert created["createCertificate"]["challenge"] == "tls-alpn-01"
    cert = await _wait_cert(gql, "multi")
    assert sorted(cert["domains"]) == domains
    for name in domains:
        served = await trio.to_thread.run_sync(_served, pebble.tls_port, name, pebble)
        assert served.names == domains
    assert "tls-alpn-01" in acme_proxyd.log()


async def test_proxy_with_https_gets_self_signed_then_pebble_certificate(
    acme_proxyd, pebble, backend
):
    gql = _client(acme_proxyd)
    host = "app.example.test"
    await gql(
        "mutation($i: CreateProxyInput!) { createProxy(input: $i) { hostname } }",
        {"i": {"hostname": host, "targetUrl": backend.url, "certEmail": "ops@example.test"}},
    )

    def self_signed_now():
        served = handshake(pebble.tls_port, host)
        return served if served.issuer_cn == "localhost" else None

    first = await wait_until(lambda: trio.to_thread.run_sync(self_signed_now), what="self-signed")
    assert host in first.names  # answers at once, with a self-signed certificate for the name

    def pebble_now():
        served = handshake(pebble.tls_port, host)
        return served if "Pebble" in served.issuer_cn else None

    issued = await wait_until(lambda: trio.to_thread.run_sync(pebble_now), timeout=60, what="CA")
    assert issued.names == [host]
    status, body = await trio.to_thread.run_sync(
        lambda: https_request(pebble.tls_port, host, host, "/hello", cadata=pebble.root_pem)
    )
    assert status == 200 and b'"path": "/hello"' in body
    proxy = await gql(
        'query { proxy(hostname: "app.example.test") '
        "{ certName certEmail certificate { status email } } }"
    )
    assert proxy["proxy"] == {
        "certName": "proxy-app-example-test",
        "certEmail": "ops@example.test",  # the email from the request, not ADMIN_EMAIL
        "certificate": {"status": "active", "email": "ops@example.test"},
    }


async def test_renewal_loop_replaces_the_served_certificate(start_proxyd, pebble):
    proc = start_proxyd(
        "renewing", RENEWAL_CHECK_INTERVAL="1", RENEWAL_THRESHOLD_DAYS="100000", **pebble.env()
    )
    gql = _client(proc)
    await gql(CREATE, {"input": {"name": "loop", "domains": ["loop.example.test"]}})
    await _wait_cert(gql, "loop")
    first = await trio.to_thread.run_sync(_served, pebble.tls_port, "loop.example.test", pebble)

    def changed():
        served = _served(pebble.tls_port, "loop.example.test", pebble)
        return served if served.fingerprint != first.fingerprint else None

    await wait_until(lambda: trio.to_thread.run_sync(changed), timeout=60, what="renewal")
    assert "expires" in proc.log() and "renewing" in proc.log()


async def test_failing_challenge_ends_in_failed_status(acme_proxyd, pebble):
    pebble.resolve("unreachable.example.test", "127.0.0.2")  # nothing listens there
    gql = _client(acme_proxyd)
    await gql(CREATE, {"input": {"name": "bad", "domains": ["unreachable.example.test"]}})
    cert = await _wait_cert(gql, "bad", stage="failed")
    reason = cert["orderStatus"]["reason"]
    assert reason.startswith("challenge validation failed: unreachable.example.test:"), reason
    assert cert["status"] == "failed" and cert["lastError"] == reason
    health = await gql("query { health { status } }")
    assert health["health"]["status"] == "ok"


async def test_two_processes_order_a_certificate_once(start_proxyd, pebble, backend):
    a = start_proxyd("a", **pebble.env())
    b = start_proxyd("b", **{**pebble.env(), "HTTP_PORT": "0", "HTTPS_PORT": str(free_port())})
    gql = _client(a)
    host = "shared.example.test"
    await gql(
        "mutation($i: CreateProxyInput!) { createProxy(input: $i) { hostname } }",
        {"i": {"hostname": host, "targetUrl": backend.url}},
    )
    await _wait_cert(gql, "proxy-shared-example-test")
    ordered = [p.log().count("ordering certificate proxy-shared-example-test for ") for p in (a, b)]
    assert sorted(ordered) == [0, 1], ordered
    # Both processes serve the issued certificate.
    b_port = int(b.env["HTTPS_PORT"])

    def served_by_b():
        served = handshake(b_port, host)
        return served if "Pebble" in served.issuer_cn else None

    await wait_until(lambda: trio.to_thread.run_sync(served_by_b), what="b serves it")


async def test_certificate_status_subscription_streams_the_stages(acme_proxyd, pebble):
    gql = _client(acme_proxyd)
    await gql(CREATE, {"input": {"name": "watched", "domains": ["watched.example.test"]}})
    url = f"ws://127.0.0.1:{acme_proxyd.api_port}/graphql"
    stages = []
    async with open_websocket_url(url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send_message(
            json.dumps(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {gql.token}"}}
            )
        )
        assert json.loads(await ws.get_message())["type"] == "connection_ack"
        await ws.send_message(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {
                        "query": 'subscription { certificateStatus(name: "watched") '
                        "{ stage message } }"
                    },
                }
            )
        )
        with trio.fail_after(60):
            while True:
                message = json.loads(await ws.get_message())
                if message["type"] == "complete":
                    break
                assert message["type"] == "next", message
                assert "errors" not in message["payload"], message
                stages.append(message["payload"]["data"]["certificateStatus"]["stage"])
    order = ["queued", "ordering", "validating", "finalizing", "ready"]
    assert stages[-1] == "ready"
    assert stages == sorted(stages, key=order.index)  # in order, as they happened

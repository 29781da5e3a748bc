"""HTTPS without a CA: the HTTPS listener, SNI selection and self-signed fallback, 421 for a Host
the connection's certificate does not cover, enable_http/enable_https, the HTTP -> HTTPS
redirect, HTTP-01 answers for every hostname, and the certificate API's errors and CLI."""

from __future__ import annotations

import json

import httpx
import pytest
import trio

from tests.support.graphql import CREATE_PROXY, GraphQLClient
from tests.support.processes import free_port, redis_command
from tests.support.tls import handshake, https_request, wait_until


def _https_port(proc) -> int:
    return int(proc.env["HTTPS_PORT"])


@pytest.fixture
def tls_proxyd(start_proxyd):
    return start_proxyd("tls", HTTPS_PORT=str(free_port()), SELF_SIGNED_CN="proxyd.invalid")


@pytest.fixture
def tls_gql(tls_proxyd) -> GraphQLClient:
    return GraphQLClient(tls_proxyd.api_url, tls_proxyd.token("admin"))


async def _proxy(gql: GraphQLClient, host: str, target: str, **fields) -> None:
    await gql(CREATE_PROXY, {"input": {"hostname": host, "targetUrl": target, **fields}})


async def test_sni_serves_self_signed_certificate_per_proxy_with_h2(tls_proxyd, tls_gql, backend):
    port = _https_port(tls_proxyd)
    # No ACME directory is reachable from here: the proxy keeps its self-signed certificate.
    await _proxy(tls_gql, "one.example.test", backend.url)
    served = await trio.to_thread.run_sync(handshake, port, "one.example.test")
    assert served.names == ["one.example.test", "proxyd.invalid"]
    assert served.issuer_cn == "proxyd.invalid" and served.alpn == "h2"
    unknown = await trio.to_thread.run_sync(handshake, port, "nobody.example.test")
    assert unknown.names == ["proxyd.invalid"]  # no per-name certificates for unknown names
    status, body = await trio.to_thread.run_sync(
        lambda: https_request(port, "one.example.test", "one.example.test", "/x")
    )
    assert status == 200 and json.loads(body)["path"] == "/x"
    forwarded = dict(json.loads(body)["headers"])
    assert forwarded["x-forwarded-proto"] == "https"


async def test_host_not_covered_by_the_connection_certificate_gets_421(
    tls_proxyd, tls_gql, backend
):
    port = _https_port(tls_proxyd)
    await _proxy(tls_gql, "a.example.test", backend.url)
    await _proxy(tls_gql, "b.example.test", backend.url)
    status, body = await trio.to_thread.run_sync(
        lambda: https_request(port, "a.example.test", "b.example.test")
    )
    assert status == 421 and b"does not cover b.example.test" in body
    status, _ = await trio.to_thread.run_sync(
        lambda: https_request(port, "b.example.test", "b.example.test")
    )
    assert status == 200


async def test_enable_http_https_and_redirect(tls_proxyd, tls_gql, backend):
    port = _https_port(tls_proxyd)
    await _proxy(tls_gql, "redir.example.test", backend.url, redirectToHttps=True)
    await _proxy(tls_gql, "tlsonly.example.test", backend.url, enableHttp=False)
    await _proxy(tls_gql, "plain.example.test", backend.url, enableHttps=False)
    async with httpx.AsyncClient(base_url=tls_proxyd.http_url) as client:
        r = await client.get("/p/q?x=1", headers={"Host": "redir.example.test"})
        assert r.status_code == 308
        assert r.headers["location"] == f"https://redir.example.test:{port}/p/q?x=1"
        r = await client.get("/", headers={"Host": "tlsonly.example.test"})
        assert r.status_code == 404 and "HTTPS only" in r.text
        r = await client.get("/", headers={"Host": "plain.example.test"})
        assert r.status_code == 200
    status, _ = await trio.to_thread.run_sync(
        lambda: https_request(port, "tlsonly.example.test", "tlsonly.example.test")
    )
    assert status == 200
    status, _ = await trio.to_thread.run_sync(
        lambda: https_request(port, "plain.example.test", "plain.example.test")
    )
    assert status in (404, 421)
    proxy = await tls_gql('query { proxy(hostname: "redir.example.test") { redirectToHttps } }')
    assert proxy["proxy"]["redirectToHttps"] is True


async def test_http01_answers_for_any_hostname_ahead_of_redirects(
    tls_proxyd, tls_gql, backend, redis_url
):
    await _proxy(tls_gql, "redir2.example.test", backend.url, redirectToHttps=True)
    redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    token = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"  # ACME tokens: base64url, 256 bits
    redis_command(redis_port, "SET", f"acme:http01:{token}", f"{token}.thumb")
    async with httpx.AsyncClient(base_url=tls_proxyd.http_url) as client:
        for host in ("redir2.example.test", "unknown.example.test"):
            r = await client.get(f"/.well-known/acme-challenge/{token}", headers={"Host": host})
            assert (r.status_code, r.text) == (200, f"{token}.thumb")
        r = await client.get("/.well-known/acme-challenge/nope", headers={"Host": "x.test"})
        assert r.status_code == 404


CREATE = """
mutation($input: CreateCertificateInput!) { createCertificate(input: $input) { certName status } }
"""


@pytest.mark.parametrize(
    ("input_", "words"),
    [
        ({"name": "Bad Name", "domains": ["a.test"]}, "certificate name"),
        ({"name": "ok", "domains": ["not a domain"]}, "not a valid DNS name"),
        ({"name": "ok", "domains": []}, "at least one domain"),
        ({"name": "ok", "domains": [f"d{i}.test" for i in range(101)]}, "at most 100"),
        ({"name": "ok", "domains": ["a.test"], "keyType": "dsa"}, "keyType"),
        ({"name": "ok", "domains": ["a.test"], "challenge": "dns-01"}, "challenge"),
        ({"name": "ok", "domains": ["a.test"], "email": "nope"}, "not an email"),
    ],
)
async def test_create_certificate_rejects_bad_input(tls_gql, input_, words):
    errors = await tls_gql.errors(CREATE, {"input": input_})
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert words in errors[0]["message"]


async def test_unreachable_directory_fails_cleanly_and_errors_are_coded(tls_proxyd, tls_gql):
    dead = f"https://127.0.0.1:{free_port()}/dir"
    data = {"name": "dead", "domains": ["dead.example.test"], "directoryUrl": dead}
    assert (await tls_gql(CREATE, {"input": data}))["createCertificate"]["status"] == "pending"
    errors = await tls_gql.errors(CREATE, {"input": data})
    assert errors[0]["extensions"]["code"] == "CONFLICT"

    async def failed():
        cert = (
            await tls_gql(
                'query { certificate(name: "dead") { status orderStatus { stage reason } } }'
            )
        )["certificate"]
        return cert if cert["orderStatus"]["stage"] == "failed" else None

    cert = await wait_until(failed, what="failed status")
    assert cert["status"] == "failed"
    assert cert["orderStatus"]["reason"].startswith(f"cannot reach the ACME directory {dead}")
    assert (await tls_gql("query { health { status } }"))["health"]["status"] == "ok"

    # Private keys only through the explicit field, and only for admin.
    user = GraphQLClient(tls_proxyd.api_url, tls_proxyd.token("user"))
    errors = await user.errors('query { certificate(name: "dead") { privateKeyPem } }')
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    errors = await tls_gql.errors('mutation { renewCertificate(name: "missing") { certName } }')
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"
    await _proxy(tls_gql, "other.example.test", "http://127.0.0.1:9", enableHttps=False)
    errors = await tls_gql.errors(
        'mutation { attachCertificate(hostname: "other.example.test", certName: "dead") '
        "{ hostname } }"
    )
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "does not cover other.example.test" in errors[0]["message"]
    assert await tls_gql('mutation { deleteCertificate(name: "dead") }') == {
        "deleteCertificate": True
    }
    assert "PRIVATE KEY" not in tls_proxyd.log()


async def test_cli_shows_progress_and_the_failure(tls_proxyd):
    token = tls_proxyd.token("admin")
    env = {"PROXYD_TOKEN": token, "PROXYD_API_URL": tls_proxyd.api_url}
    dead = f"https://127.0.0.1:{free_port()}/dir"
    result = await trio.to_thread.run_sync(
        lambda: tls_proxyd.cli(
            "cert", "create", "clicert", "cli.example.test", "--directory-url", dead, env=env
        )
    )
    assert result.returncode == 1
    assert "clicert: queued" in result.stderr or "clicert: ordering" in result.stderr
    assert "certificate clicert failed: cannot reach the ACME directory" in result.stderr
    listed = await trio.to_thread.run_sync(lambda: tls_proxyd.cli("cert", "list", env=env))
    assert listed.returncode == 0 and "clicert" in listed.stdout and "failed" in listed.stdout
    shown = await trio.to_thread.run_sync(
        lambda: tls_proxyd.cli("cert", "show", "clicert", "--json", env=env)
    )
    assert json.loads(shown.stdout)["certificate"]["domains"] == ["cli.example.test"]
    deleted = await trio.to_thread.run_sync(
        lambda: tls_proxyd.cli("cert", "delete", "clicert", "--yes", env=env)
    )
    assert deleted.returncode == 0, deleted.stderr

"""Protection at the proxy: 401 with WWW-Authenticate and RFC 9728 metadata, tokens checked
locally (audience, expiry, scopes, allowlists), identity headers for the backend, forged X-Auth-*
headers removed, and a revocation that takes effect at once in every process."""

from __future__ import annotations

import json
import sys

import httpx
import pytest
import trio

from tests.support.fake_github import FakeGitHub
from tests.support.graphql import GraphQLClient
from tests.support.oauth import Browser, authorize_url, exchange, pkce, register, start_oauth_proxyd
from tests.support.processes import ROOT

CREATE = "mutation($i: CreateProxyInput!) { createProxy(input: $i) { hostname } }"
UPDATE = "mutation($h: String!, $i: UpdateProxyInput!) { updateProxy(hostname: $h, input: $i) { hostname } }"


@pytest.fixture
def github():
    fake = FakeGitHub().start()
    yield fake
    fake.stop()


async def wait_serving(http: httpx.AsyncClient, host: str) -> None:
    with trio.fail_after(10):
        while (await http.get("/", headers={"Host": host})).status_code in (404, 421):
            await trio.sleep(0.1)


def token_for(issuer: str, resource: str, scope: str = "mcp") -> dict:
    client = register(issuer)
    verifier, challenge = pkce()
    result = Browser().run(
        authorize_url(issuer, client["client_id"], challenge, resource=resource, scope=scope)
    )
    assert "code" in result, result
    response = exchange(issuer, client["client_id"], result["code"], verifier)
    assert response.status_code == 200, response.text
    return response.json()


async def test_protected_proxy_end_to_end(start_proxyd, github, backend):
    proc = start_oauth_proxyd(
        start_proxyd, github, OAUTH_ALLOWED_GITHUB_USERS="alice,carol", OAUTH_USER_USERS="alice"
    )
    issuer = proc.api_url
    other = start_oauth_proxyd(start_proxyd, github, name="second", issuer=issuer)
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    port = proc.http_port
    for host in ("app.test", "other.test"):
        await gql(
            CREATE,
            {
                "i": {
                    "hostname": host,
                    "targetUrl": backend.url,
                    "enableHttps": False,
                    "authEnabled": True,
                    "authAllowedScopes": ["mcp"],
                    "resourceEndpoint": "/mcp",
                }
            },
        )
    app = {"Host": f"app.test:{port}"}
    async with httpx.AsyncClient(base_url=proc.http_url, timeout=10) as http:
        await wait_serving(http, "app.test")
        # 401 with the RFC 9728 pointer and the needed scope
        r = await http.get("/mcp", headers=app)
        assert r.status_code == 401
        challenge = r.headers["www-authenticate"]
        assert (
            f'resource_metadata="http://app.test:{port}/.well-known/oauth-protected-resource/mcp"'
            in challenge
        )
        assert 'scope="mcp"' in challenge
        prm = (await http.get("/.well-known/oauth-protected-resource/mcp", headers=app)).json()
        assert prm["resource"] == f"http://app.test:{port}/mcp"
        assert prm["authorization_servers"] == [issuer]
        root = (await http.get("/.well-known/oauth-protected-resource", headers=app)).json()
        assert root["resource"] == f"http://app.test:{port}"

        tokens = token_for(issuer, f"http://app.test:{port}/mcp", "mcp user")
        bearer = {**app, "Authorization": f"Bearer {tokens['access_token']}"}
        # the backend gets the identity, never the forged headers nor the token
        r = await http.get(
            "/hello", headers={**bearer, "X-Auth-User": "mallory", "x-auth-scopes": "admin"}
        )
        assert r.status_code == 200, r.text
        seen = {}
        for k, v in r.json()["headers"]:
            seen.setdefault(k.lower(), []).append(v)
        assert seen["x-auth-user"] == ["alice"]
        assert seen["x-auth-email"] == ["alice@example.com"]
        assert seen["x-auth-scopes"] == ["mcp user"]
        assert "authorization" not in seen

        # a token in the query string is not accepted
        r = await http.get(f"/hello?access_token={tokens['access_token']}", headers=app)
        assert r.status_code == 401 and 'error="invalid_request"' in r.headers["www-authenticate"]
        # a token for another resource
        r = await http.get("/hello", headers={**bearer, "Host": f"other.test:{port}"})
        assert r.status_code == 401 and "another resource" in r.headers["www-authenticate"]
        # an expired token (minted by proxyd itself with a 1 s lifetime)
        minted = await trio.run_process(
            [sys.executable, "-m", "proxyd", "token", "issue", "--scope", "mcp", "--ttl", "1"],
            env=proc.env,
            cwd=ROOT,
            capture_stdout=True,
        )
        expired = minted.stdout.decode().strip()
        await trio.sleep(1.5)
        r = await http.get("/hello", headers={**app, "Authorization": f"Bearer {expired}"})
        assert r.status_code == 401 and "expired" in r.headers["www-authenticate"]
        # missing scope: 403 insufficient_scope naming the scope needed (step-up)
        user_only = token_for(issuer, f"http://app.test:{port}", "user")
        r = await http.get(
            "/hello", headers={**app, "Authorization": f"Bearer {user_only['access_token']}"}
        )
        assert r.status_code == 403
        assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
        assert 'scope="mcp"' in r.headers["www-authenticate"]
        # allowlist checked on every request
        await gql(UPDATE, {"h": "app.test", "i": {"authRequiredUsers": ["carol"]}})
        with trio.fail_after(5):
            while (await http.get("/hello", headers=bearer)).status_code != 403:
                await trio.sleep(0.1)
        await gql(UPDATE, {"h": "app.test", "i": {"authRequiredUsers": None}})
        with trio.fail_after(5):
            while (await http.get("/hello", headers=bearer)).status_code != 200:
                await trio.sleep(0.1)

    # revocation takes effect at once, in this process and in the second one
    async with httpx.AsyncClient(base_url=other.http_url, timeout=10) as http2:
        second = {**bearer, "Host": f"app.test:{other.http_port}"}
        await wait_serving(http2, "app.test")
        assert (await http2.get("/hello", headers=second)).status_code == 200
        r = await http2.post(
            f"{issuer}/revoke",
            data={"token": tokens["access_token"], "client_id": _client_of(tokens)},
        )
        assert r.status_code == 200
        with trio.fail_after(3):
            while (await http2.get("/hello", headers=second)).status_code != 401:
                await trio.sleep(0.05)
    async with httpx.AsyncClient(base_url=proc.http_url, timeout=10) as http:
        r = await http.get("/hello", headers=bearer)
        assert r.status_code == 401 and "revoked" in r.headers["www-authenticate"]


def _client_of(tokens: dict) -> str:
    import base64

    payload = tokens["access_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["client_id"]


async def test_redirect_passthrough_and_excluded_paths(start_proxyd, github, backend):
    proc = start_oauth_proxyd(start_proxyd, github)
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    port = proc.http_port
    common = {"targetUrl": backend.url, "enableHttps": False, "authEnabled": True}
    await gql(CREATE, {"i": {"hostname": "web.test", "authMode": "redirect", **common}})
    await gql(CREATE, {"i": {"hostname": "open.test", "authMode": "passthrough", **common}})
    await gql(CREATE, {"i": {"hostname": "part.test", "authExcludedPaths": ["/public/"], **common}})
    async with httpx.AsyncClient(base_url=proc.http_url, timeout=10) as http:
        await wait_serving(http, "part.test")
        # passthrough: no token, no identity, forged headers still removed
        r = await http.get("/x", headers={"Host": "open.test", "X-Auth-User": "mallory"})
        assert r.status_code == 200
        assert not [k for k, _ in r.json()["headers"] if k.lower().startswith("x-auth-")]
        # excluded paths skip the check; others do not
        assert (await http.get("/public/a", headers={"Host": "part.test"})).status_code == 200
        assert (await http.get("/private", headers={"Host": "part.test"})).status_code == 401
        # redirect mode: an API client still gets 401
        r = await http.get("/page", headers={"Host": "web.test", "Accept": "application/json"})
        assert r.status_code == 401

    # redirect mode: a browser signs in and comes back to the page it asked for
    browser = Browser({"web.test": port})
    result = await trio.to_thread.run_sync(
        lambda: browser.run(f"http://web.test:{port}/page?x=1", stop_prefix="never:")
    )
    assert result["_status"] == "200", result
    seen = json.loads(result["_body"])
    assert seen["path"] == "/page" and seen["query"] == "x=1"
    assert ["x-auth-user", "alice"] in [[k.lower(), v] for k, v in seen["headers"]]
    assert browser.client.cookies.get("unified_auth_token")
    again = await trio.to_thread.run_sync(
        lambda: browser.client.get(f"http://web.test:{port}/next")
    )
    assert again.status_code == 200 and again.json()["path"] == "/next"
    # a forged callback is refused
    forged = await trio.to_thread.run_sync(
        lambda: browser.client.get(f"http://web.test:{port}/.proxyd/callback?code=x&state=y")
    )
    assert forged.status_code == 400

"""Who gets which scope (issue 10, findings 1, 5, 8 and 9): scopes decided per resource and the
management policy for the management API, consent remembered per client, resources and scopes,
the device flow always asking, introspection limited to the caller's own access tokens, and the
management scopes granted to nobody by default."""

from __future__ import annotations

import time

import httpx
import pytest
import trio

from tests.support.fake_github import FakeGitHub
from tests.support.graphql import GraphQLClient
from tests.support.oauth import (
    REDIRECT,
    Browser,
    consent_form,
    exchange,
    pkce,
    register,
    start_oauth_proxyd,
)

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
CREATE = "mutation($i: CreateProxyInput!) { createProxy(input: $i) { hostname } }"
UPDATE = "mutation($h: String!, $i: UpdateProxyInput!) { updateProxy(hostname: $h, input: $i) { hostname } }"
CREATE_PROXY = {
    "query": CREATE,
    "variables": {"i": {"hostname": "evil.test", "targetUrl": "http://127.0.0.1:9"}},
}


@pytest.fixture
def github():
    fake = FakeGitHub().start()
    yield fake
    fake.stop()


def authorize(issuer: str, client_id: str, challenge: str, resources: list[str], scope: str) -> str:
    params = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("state", "st-1"),
        ("scope", scope),
        *[("resource", r) for r in resources],
    ]
    return f"{issuer}/authorize?" + str(httpx.QueryParams(params))


def sign_in(
    issuer: str, client_id: str, resources: list[str], scope: str, browser: Browser | None = None
) -> tuple[dict, bool]:
    """(token response or the error redirect's query, whether a consent page was shown)."""
    browser = browser or Browser()
    before = len(browser.pages)
    verifier, challenge = pkce()
    result = browser.run(authorize(issuer, client_id, challenge, resources, scope))
    asked = any(consent_form(p.text) for p in browser.pages[before:] if p.status_code == 200)
    if "code" not in result:
        return result, asked
    response = exchange(issuer, client_id, result["code"], verifier)
    assert response.status_code == 200, response.text
    return response.json(), asked


async def protected_proxy(proc, hostname: str, **fields) -> str:
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    await gql(
        CREATE,
        {
            "i": {
                "hostname": hostname,
                "targetUrl": "http://127.0.0.1:9",
                "enableHttps": False,
                "authEnabled": True,
                **fields,
            }
        },
    )
    return f"http://{hostname}:{proc.http_port}"


def graphql(issuer: str, token: str, body: dict) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.post(f"{issuer}/graphql", headers=headers, json=body).json()


async def test_scopes_are_decided_per_resource_and_the_api_uses_its_own_policy(
    start_proxyd, github
):
    # alice is admin of app.test only; management: user for alice, admin for nobody
    proc = start_oauth_proxyd(start_proxyd, github, OAUTH_USER_USERS="alice")
    issuer = proc.api_url
    app = await protected_proxy(proc, "app.test", oauthAdminUsers=["alice"])
    client = register(issuer)["client_id"]
    # the attack: both resources in one request, admin asked
    tokens, _ = await trio.to_thread.run_sync(
        lambda: sign_in(issuer, client, [issuer, app], "admin user")
    )
    assert tokens["scope"] == "user", tokens
    answer = graphql(issuer, tokens["access_token"], CREATE_PROXY)
    assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN", answer
    # a per-proxy admin list on the localhost proxy does not grant the management API
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    await gql(UPDATE, {"h": "localhost", "i": {"oauthAdminUsers": ["alice"]}})
    tokens, _ = await trio.to_thread.run_sync(lambda: sign_in(issuer, client, [issuer], "admin"))
    assert tokens.get("error") == "access_denied", tokens
    # the legitimate cases: admin for the proxy itself, user for both together
    tokens, _ = await trio.to_thread.run_sync(lambda: sign_in(issuer, client, [app], "admin mcp"))
    assert tokens["scope"] == "admin mcp"
    tokens, _ = await trio.to_thread.run_sync(
        lambda: sign_in(issuer, client, [issuer, app], "user")
    )
    assert tokens["scope"] == "user"
    query = graphql(issuer, tokens["access_token"], {"query": "{ proxies { hostname } }"})
    assert "errors" not in query, query


async def test_management_admin_when_granted_and_allowlists_of_every_resource(start_proxyd, github):
    proc = start_oauth_proxyd(start_proxyd, github, OAUTH_ADMIN_USERS="alice")
    issuer = proc.api_url
    app = await protected_proxy(proc, "app.test", oauthAdminUsers=[])
    closed = await protected_proxy(proc, "closed.test", authRequiredUsers=["carol"])
    client = register(issuer)["client_id"]
    tokens, _ = await trio.to_thread.run_sync(lambda: sign_in(issuer, client, [issuer], "admin"))
    assert tokens["scope"] == "admin"
    answer = graphql(issuer, tokens["access_token"], CREATE_PROXY)
    assert "errors" not in answer, answer
    # admin granted by the management API but not by app.test: not in a token for both
    tokens, _ = await trio.to_thread.run_sync(
        lambda: sign_in(issuer, client, [issuer, app], "admin mcp")
    )
    assert tokens["scope"] == "mcp", tokens
    # a resource whose allowlist refuses alice refuses the whole request
    result, _ = await trio.to_thread.run_sync(lambda: sign_in(issuer, client, [app, closed], "mcp"))
    assert result["error"] == "access_denied"


async def test_consent_is_remembered_per_client_resources_and_scopes(start_proxyd, github):
    proc = start_oauth_proxyd(start_proxyd, github, OAUTH_USER_USERS="alice")
    issuer = proc.api_url
    app = await protected_proxy(proc, "app.test")
    client = register(issuer)["client_id"]
    browser = Browser()

    def run(resources: list[str], scope: str) -> tuple[dict, bool]:
        return sign_in(issuer, client, resources, scope, browser)

    tokens, asked = await trio.to_thread.run_sync(lambda: run([app], "mcp"))
    assert asked and tokens["scope"] == "mcp"
    tokens, asked = await trio.to_thread.run_sync(lambda: run([app], "mcp"))
    assert not asked and tokens["scope"] == "mcp"  # the same grant: no second page
    # approved for mcp at app.test is not approval for the management API, nor for more scopes
    tokens, asked = await trio.to_thread.run_sync(lambda: run([issuer], "user"))
    assert asked and tokens["scope"] == "user"
    tokens, asked = await trio.to_thread.run_sync(lambda: run([app], "mcp user"))
    assert asked


def test_device_flow_always_asks_and_names_the_code(start_proxyd, github):
    proc = start_oauth_proxyd(start_proxyd, github)
    issuer = proc.api_url
    client = httpx.post(
        f"{issuer}/register",
        json={
            "client_name": "Smart TV",
            "grant_types": [DEVICE],
            "token_endpoint_auth_method": "none",
        },
    ).json()
    browser = Browser()
    for _ in range(2):  # the second time the browser has a session and an approval
        device = httpx.post(
            f"{issuer}/device/code", data={"client_id": client["client_id"], "scope": "mcp"}
        ).json()
        page = browser.client.post(f"{issuer}/device", data={"user_code": device["user_code"]})
        form = consent_form(page.text)
        assert form is not None, page.text
        assert device["user_code"] in page.text and "Smart TV" in page.text
        action, fields = form
        result = browser.client.post(action, data={**fields, "action": "approve"})
        while result.is_redirect:
            result = browser.client.get(str(result.url.join(result.headers["location"])))
        assert "Device approved" in result.text
        time.sleep(1.1)
        poll = {
            "grant_type": DEVICE,
            "device_code": device["device_code"],
            "client_id": client["client_id"],
        }
        tokens = httpx.post(f"{issuer}/token", data=poll).json()
        assert tokens["scope"] == "mcp", tokens


def test_introspection_only_of_the_callers_own_access_tokens(start_proxyd, github):
    proc = start_oauth_proxyd(start_proxyd, github)
    issuer = proc.api_url
    mine = register(issuer, token_endpoint_auth_method="client_secret_basic")
    other = register(issuer, token_endpoint_auth_method="client_secret_basic")
    verifier, challenge = pkce()
    result = Browser().run(authorize(issuer, mine["client_id"], challenge, [], "mcp"))
    tokens = httpx.post(
        f"{issuer}/token",
        auth=(mine["client_id"], mine["client_secret"]),
        data={
            "grant_type": "authorization_code",
            "code": result["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
    ).json()
    own = (mine["client_id"], mine["client_secret"])
    foreign = (other["client_id"], other["client_secret"])

    def introspect(auth, token) -> dict:
        return httpx.post(f"{issuer}/introspect", auth=auth, data={"token": token}).json()

    assert introspect(foreign, tokens["access_token"]) == {"active": False}
    assert introspect(foreign, tokens["refresh_token"]) == {"active": False}
    assert introspect(own, tokens["refresh_token"]) == {"active": False}
    live = introspect(own, tokens["access_token"])
    assert live["active"] is True and live["client_id"] == mine["client_id"]


def test_management_scopes_default_to_nobody_and_the_log_says_how(start_proxyd, github):
    proc = start_oauth_proxyd(start_proxyd, github)
    issuer = proc.api_url
    assert "OAUTH_ADMIN_USERS" in proc.log() and "nobody can get" in proc.log()
    client = register(issuer)["client_id"]
    for scope in ("admin", "user", "admin user"):
        result, _ = sign_in(issuer, client, [issuer], scope)
        assert result.get("error") == "access_denied", (scope, result)
    # per-proxy access keeps its default: mcp for everyone who passes the allowlists
    tokens, _ = sign_in(issuer, client, [], "mcp user")
    assert tokens["scope"] == "mcp"
    granted = start_oauth_proxyd(start_proxyd, github, name="granted", OAUTH_USER_USERS="alice")
    assert "nobody can get" not in granted.log()
    client = register(granted.api_url)["client_id"]
    tokens, _ = sign_in(granted.api_url, client, [granted.api_url], "user")
    assert tokens["scope"] == "user"


async def test_a_refresh_applies_the_policy_of_today(start_proxyd, github):
    proc = start_oauth_proxyd(start_proxyd, github)
    issuer = proc.api_url
    app = await protected_proxy(proc, "app.test", oauthAdminUsers=["alice"])
    client = register(issuer)["client_id"]
    tokens, _ = await trio.to_thread.run_sync(lambda: sign_in(issuer, client, [app], "admin mcp"))
    assert tokens["scope"] == "admin mcp"

    def refresh(token: str) -> httpx.Response:
        form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": client}
        return httpx.post(f"{issuer}/token", data=form)

    again = await trio.to_thread.run_sync(lambda: refresh(tokens["refresh_token"]))
    assert again.status_code == 200 and again.json()["scope"] == "admin mcp"
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    await gql(UPDATE, {"h": "app.test", "i": {"oauthAdminUsers": []}})
    current = again.json()["refresh_token"]
    with trio.fail_after(10):
        while True:  # every process applies the change within moments
            answer = await trio.to_thread.run_sync(refresh, current)
            assert answer.status_code == 200, answer.text
            current = answer.json()["refresh_token"]
            if answer.json()["scope"] == "mcp":
                break
            await trio.sleep(0.1)

"""Device flow (RFC 8628) with the verification page, the management API accepting OAuth tokens
(user for queries, admin for mutations), OAuth management over GraphQL, and Client ID Metadata
Documents refused when they point at a private address."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.fake_github import FakeGitHub
from tests.support.oauth import Browser, authorize_url, consent_form, pkce, start_oauth_proxyd

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture
def github():
    fake = FakeGitHub().start()
    yield fake
    fake.stop()


def device_login(issuer: str, scope: str) -> dict:
    client = httpx.post(
        f"{issuer}/register",
        json={
            "client_name": "cli",
            "grant_types": [DEVICE, "refresh_token"],
            "token_endpoint_auth_method": "none",
        },
    ).json()
    device = httpx.post(
        f"{issuer}/device/code",
        data={"client_id": client["client_id"], "scope": scope, "resource": issuer},
    ).json()
    poll = {
        "grant_type": DEVICE,
        "device_code": device["device_code"],
        "client_id": client["client_id"],
    }
    assert httpx.post(f"{issuer}/token", data=poll).json()["error"] == "authorization_pending"
    browser = Browser()
    page = browser.client.get(device["verification_uri_complete"])
    assert page.status_code == 200 and page.headers["x-frame-options"] == "DENY"
    response = browser.client.post(f"{issuer}/device", data={"user_code": device["user_code"]})
    action, fields = consent_form(response.text)
    result = browser.client.post(action, data={**fields, "action": "approve"})
    while result.is_redirect:
        result = browser.client.get(str(result.url.join(result.headers["location"])))
    assert "Device approved" in result.text
    time.sleep(1.1)
    tokens = httpx.post(f"{issuer}/token", data=poll).json()
    assert "access_token" in tokens, tokens
    return tokens


def test_device_flow_and_management_api(start_proxyd, github):
    proc = start_oauth_proxyd(
        start_proxyd, github, OAUTH_ADMIN_USERS="alice", OAUTH_USER_USERS="alice,carol"
    )
    issuer = proc.api_url
    tokens = device_login(issuer, "admin user")
    assert tokens["scope"] == "admin user"
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    gql = f"{issuer}/graphql"
    data = httpx.post(
        gql,
        headers=headers,
        json={
            "query": "{ oauthClients { clientId clientName } oauthTokens { jti subject scope revoked } oauthMetrics { clients activeTokens counters } }"
        },
    ).json()
    assert "errors" not in data, data
    assert data["data"]["oauthClients"][0]["clientName"] == "cli"
    token = data["data"]["oauthTokens"][0]
    assert token["subject"] == "alice" and not token["revoked"]
    assert data["data"]["oauthMetrics"]["counters"]["tokens_issued"] >= 1
    # a GitHub app per proxy: the secret is write-only
    set_app = 'mutation($c: String!, $s: String!) { setGitHubApp(hostname: "localhost", clientId: $c, clientSecret: $s) { clientId hasSecret } }'
    variables = {"c": github.client_id, "s": github.client_secret}
    answer = httpx.post(gql, headers=headers, json={"query": set_app, "variables": variables})
    assert answer.json()["data"]["setGitHubApp"] == {
        "clientId": github.client_id,
        "hasSecret": True,
    }
    assert (
        "s3cret"
        not in httpx.post(
            gql,
            headers=headers,
            json={"query": '{ proxy(hostname: "localhost") { githubApp { clientId hasSecret } } }'},
        ).text
    )
    # a user-only token may read but not change
    github.login = "carol"
    user_tokens = device_login(issuer, "user")
    user_headers = {"Authorization": f"Bearer {user_tokens['access_token']}"}
    assert (
        "errors"
        not in httpx.post(
            gql, headers=user_headers, json={"query": "{ oauthClients { clientId } }"}
        ).json()
    )
    denied = httpx.post(
        gql,
        headers=user_headers,
        json={"query": 'mutation { deleteGitHubApp(hostname: "localhost") }'},
    ).json()
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # carol cannot get admin: the scope is not granted
    assert device_login(issuer, "admin user")["scope"] == "user"
    # revoking over GraphQL takes effect at once
    revoke = httpx.post(
        gql, headers=headers, json={"query": 'mutation { revokeUserTokens(user: "carol") }'}
    ).json()
    assert revoke["data"]["revokeUserTokens"] == 2
    for _ in range(50):
        if (
            httpx.post(
                gql, headers=user_headers, json={"query": "{ oauthClients { clientId } }"}
            ).status_code
            == 401
        ):
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the revoked token still works")


def test_cimd_private_address_is_refused(start_proxyd, github):
    proc = start_oauth_proxyd(start_proxyd, github)
    issuer = proc.api_url
    _, challenge = pkce()
    for client_id in (
        "https://127.0.0.1/client.json",
        "https://10.1.2.3/c",
        "https://localhost:9/c.json",
    ):
        url = authorize_url(issuer, client_id, challenge)
        result = Browser().run(url)
        assert result["_status"] == "400"
        assert "private or local address" in result["_body"]


def test_cli_login_logout_and_oauth_commands(start_proxyd, github, tmp_path):
    import os
    import stat
    import subprocess
    import sys

    proc = start_oauth_proxyd(
        start_proxyd, github, OAUTH_ADMIN_USERS="alice", OAUTH_USER_USERS="alice"
    )
    env = {**proc.env, "XDG_CONFIG_HOME": str(tmp_path / "config"), "PROXYD_TOKEN": ""}
    login = subprocess.Popen(
        [sys.executable, "-m", "proxyd", "login", "--api-url", proc.api_url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = login.stdout.readline()
    assert first.startswith("Open "), first + login.stderr.read()
    url = first.split()[1]
    browser = Browser()
    result = browser.run(url, stop_prefix="never:")  # entry page with the code filled in
    assert result["_status"] == "200"
    user_code = url.rsplit("=", 1)[1]
    response = browser.client.post(f"{proc.api_url}/device", data={"user_code": user_code})
    action, fields = consent_form(response.text)
    page = browser.client.post(action, data={**fields, "action": "approve"})
    while page.is_redirect:
        page = browser.client.get(str(page.url.join(page.headers["location"])))
    assert "Device approved" in page.text
    out, err = login.communicate(timeout=30)
    assert login.returncode == 0, err
    assert "signed in with scopes admin user" in out
    stored = tmp_path / "config" / "proxyd" / "login.json"
    assert stat.S_IMODE(os.stat(stored).st_mode) == 0o600
    token = __import__("json").loads(stored.read_text())["access_token"]
    # later commands use the stored login, and never print it
    listing = proc.cli("oauth", "client", "list", env=env)
    assert listing.returncode == 0, listing.stderr
    assert "proxyd CLI" in listing.stdout and token not in listing.stdout
    tokens = proc.cli("oauth", "token", "list", "--json", env=env)
    assert tokens.returncode == 0 and '"subject": "alice"' in tokens.stdout
    assert proc.cli("proxy", "list", env=env).returncode == 0
    revoke = proc.cli("oauth", "token", "revoke", "--user", "alice", env=env)
    assert revoke.returncode == 0 and "revoked 1 token(s)" in revoke.stdout
    refused = proc.cli("proxy", "list", env=env)
    assert refused.returncode != 0 and "revoked" in refused.stderr
    assert "signed out" in proc.cli("logout", env=env).stdout
    assert not stored.exists()


def test_cimd_document_on_loopback_when_allowed(start_proxyd, github):
    from tests.support.oauth import metadata_documents

    with metadata_documents("max-age=60") as (base, documents):
        good, bad = f"{base}/client.json", f"{base}/wrong.json"
        documents["/client.json"] = {
            "client_id": good,
            "client_name": "Metadata client",
            "redirect_uris": ["http://127.0.0.1:8976/callback"],
        }
        documents["/wrong.json"] = {"client_id": good, "redirect_uris": ["http://127.0.0.1:1/cb"]}
        proc = start_oauth_proxyd(start_proxyd, github, OAUTH_CIMD_ALLOW_PRIVATE="true")
        issuer = proc.api_url
        verifier, challenge = pkce()
        result = Browser().run(authorize_url(issuer, good, challenge))
        assert "code" in result, result
        from tests.support.oauth import exchange

        tokens = exchange(issuer, good, result["code"], verifier)
        assert tokens.status_code == 200, tokens.text
        # the document's client_id must equal its URL; redirect_uri must be listed
        assert (
            "client_id does not equal"
            in Browser().run(authorize_url(issuer, bad, challenge))["_body"]
        )
        other = authorize_url(issuer, good, challenge, redirect_uri="http://evil.example/cb")
        assert Browser().run(other)["_status"] == "400"


def test_sessions_list_and_revoke(start_proxyd, github):
    from tests.support.oauth import register

    proc = start_oauth_proxyd(
        start_proxyd, github, OAUTH_ADMIN_USERS="alice", OAUTH_USER_USERS="alice,carol"
    )
    issuer = proc.api_url
    admin = {"Authorization": f"Bearer {device_login(issuer, 'admin user')['access_token']}"}
    gql = f"{issuer}/graphql"

    def graphql(query: str, variables: dict | None = None, headers: dict = admin) -> dict:
        return httpx.post(
            gql, headers=headers, json={"query": query, "variables": variables}
        ).json()

    client = register(issuer)
    browser = Browser()

    def sign_in() -> bool:
        """One authorization; True when the consent page was shown."""
        before = len(browser.pages)
        _, challenge = pkce()
        result = browser.run(authorize_url(issuer, client["client_id"], challenge))
        assert "code" in result, result
        return any(consent_form(p.text) for p in browser.pages[before:] if p.status_code == 200)

    assert sign_in()  # first time: consent
    assert not sign_in()  # the session remembers the approval
    cookie = browser.client.cookies.get("proxyd_session")
    assert cookie
    listing = graphql(
        "query($u: String) { oauthSessions(user: $u) { id user clientId createdAt expiresAt } }",
        {"u": "alice"},
    )
    assert "errors" not in listing, listing
    sessions = listing["data"]["oauthSessions"]
    mine = [s for s in sessions if s["clientId"] == client["client_id"]]
    assert len(mine) == 1 and len(sessions) == 2  # a new login replaced the browser's session
    assert all(s["user"] == "alice" for s in sessions)
    assert all(s["expiresAt"] - s["createdAt"] == 300 for s in sessions)
    assert cookie not in str(listing)  # ids are hashes, never the cookie
    assert graphql('{ oauthSessions(user: "nobody") { id } }')["data"]["oauthSessions"] == []
    # the CLI lists and revokes
    session_id = mine[0]["id"]
    env = {"PROXYD_TOKEN": admin["Authorization"].split()[1]}
    table = proc.cli("oauth", "session", "list", "--user", "alice", env=env)
    assert table.returncode == 0, table.stderr
    assert session_id in table.stdout and cookie not in table.stdout
    revoked = proc.cli("oauth", "session", "revoke", session_id, env=env)
    assert revoked.returncode == 0 and f"revoked session {session_id}" in revoked.stdout
    assert sign_in()  # the revoked session is no longer accepted: consent and login again
    missing = proc.cli("oauth", "session", "revoke", session_id, env=env)
    assert missing.returncode != 0
    # GraphQL revocation; an unknown id is NOT_FOUND
    newest = graphql("{ oauthSessions { id clientId } }")["data"]["oauthSessions"]
    session_id = next(s["id"] for s in newest if s["clientId"] == client["client_id"])
    answer = graphql("mutation($i: String!) { revokeOAuthSession(id: $i) }", {"i": session_id})
    assert answer["data"]["revokeOAuthSession"] is True
    assert sign_in()
    unknown = graphql('mutation { revokeOAuthSession(id: "nope") }')
    assert unknown["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    remaining = {s["id"] for s in graphql("{ oauthSessions { id } }")["data"]["oauthSessions"]}
    # a user-scope token may list but not revoke
    github.login = "carol"
    user = {"Authorization": f"Bearer {device_login(issuer, 'user')['access_token']}"}
    assert "errors" not in graphql("{ oauthSessions { id } }", headers=user)
    denied = graphql(
        "mutation($i: String!) { revokeOAuthSession(id: $i) }",
        {"i": next(iter(remaining))},
        headers=user,
    )
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"

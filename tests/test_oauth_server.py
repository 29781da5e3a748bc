"""The authorization server against a real proxyd and the GitHub stand-in: metadata, dynamic
registration, authorize + PKCE + consent + GitHub, token, refresh rotation and reuse detection,
jwks, userinfo, revoke, introspect, and the negative cases."""

from __future__ import annotations

import httpx
import pytest

from tests.support.fake_github import FakeGitHub
from tests.support.oauth import (
    REDIRECT,
    Browser,
    authorize_url,
    exchange,
    pkce,
    register,
    start_oauth_proxyd,
)


@pytest.fixture
def github():
    fake = FakeGitHub().start()
    yield fake
    fake.stop()


@pytest.fixture
def server(start_proxyd, github):
    return start_oauth_proxyd(
        start_proxyd, github, OAUTH_ALLOWED_GITHUB_USERS="alice,carol", OAUTH_USER_USERS="alice"
    )


def login(issuer: str, client_id: str, **extra: str) -> tuple[dict, str]:
    verifier, challenge = pkce()
    result = Browser().run(authorize_url(issuer, client_id, challenge, **extra))
    return result, verifier


def test_metadata_is_served_in_every_form_with_one_issuer(server):
    issuer = server.api_url
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        response = httpx.get(issuer + path)
        assert response.status_code == 200
        doc = response.json()
        assert doc["issuer"] == issuer
        assert doc["code_challenge_methods_supported"] == ["S256"]
        assert "none" in doc["token_endpoint_auth_methods_supported"]
        assert doc["client_id_metadata_document_supported"] is True
        assert doc["authorization_response_iss_parameter_supported"] is True
        assert doc["registration_endpoint"] == issuer + "/register"
        assert doc["device_authorization_endpoint"] == issuer + "/device/code"
    # Path-suffixed forms the server does not serve: 404, never 5xx.
    assert httpx.get(issuer + "/.well-known/oauth-authorization-server/other").status_code == 404
    assert httpx.get(issuer + "/.well-known/openid-configuration/x/y").status_code == 404
    keys = httpx.get(issuer + "/jwks").json()["keys"]
    assert keys and all("d" not in k and k["alg"] == "RS256" for k in keys)


def test_code_flow_refresh_rotation_and_reuse_detection(server, github):
    issuer = server.api_url
    client = register(issuer)
    result, verifier = login(issuer, client["client_id"], scope="mcp user")
    assert result["iss"] == issuer and result["state"].startswith("st-")
    code = result["code"]
    response = exchange(issuer, client["client_id"], code, verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert tokens["token_type"] == "Bearer" and tokens["scope"] == "mcp user"
    # userinfo with the access token
    info = httpx.get(
        issuer + "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert info.json()["sub"] == "alice" and info.json()["email"] == "alice@example.com"
    # the code is single-use; its reuse also revokes what it produced
    again = exchange(issuer, client["client_id"], code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    # a new login for the refresh tests (the first grant was revoked by the reuse)
    result, verifier = login(issuer, client["client_id"])
    tokens = exchange(issuer, client["client_id"], result["code"], verifier).json()
    first = tokens["refresh_token"]
    rotated = httpx.post(
        issuer + "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first,
            "client_id": client["client_id"],
        },
    )
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["refresh_token"]
    assert second != first
    # reusing the spent refresh token revokes the whole family, including the new one
    reuse = httpx.post(
        issuer + "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first,
            "client_id": client["client_id"],
        },
    )
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    after = httpx.post(
        issuer + "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": second,
            "client_id": client["client_id"],
        },
    )
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant"
    revoked_access = rotated.json()["access_token"]
    info = httpx.get(issuer + "/userinfo", headers={"Authorization": f"Bearer {revoked_access}"})
    assert info.status_code == 401


def test_pkce_redirect_and_client_errors(server):
    issuer = server.api_url
    client = register(issuer)
    cid = client["client_id"]
    # wrong verifier
    result, _ = login(issuer, cid)
    bad = exchange(issuer, cid, result["code"], "x" * 50)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    # plain or missing PKCE is refused, with iss on the error redirect
    browser = Browser()
    _, challenge = pkce()
    url = authorize_url(issuer, cid, challenge, code_challenge_method="plain")
    result = browser.run(url)
    assert result["error"] == "invalid_request" and result["iss"] == issuer
    url = authorize_url(issuer, cid, challenge).replace("code_challenge=", "x=")
    assert Browser().run(url)["error"] == "invalid_request"
    # an unregistered redirect URI is never redirected to
    url = authorize_url(issuer, cid, challenge, redirect_uri="http://127.0.0.1:8976/other")
    result = Browser().run(url)
    assert result["_status"] == "400" and "redirect_uri" in result["_body"]
    url = authorize_url(issuer, cid, challenge, redirect_uri="http://evil.example:8976/callback")
    assert Browser().run(url)["_status"] == "400"
    # RFC 8252: a loopback redirect URI may use any port
    url = authorize_url(issuer, cid, challenge, redirect_uri="http://127.0.0.1:5555/callback")
    result = Browser().run(url, stop_prefix="http://127.0.0.1:5555/callback")
    assert "code" in result
    # unknown resource -> invalid_target
    result = Browser().run(authorize_url(issuer, cid, challenge, resource="https://nope.example/"))
    assert result["error"] == "invalid_target"
    # unknown client, bad grant, unsupported grant
    assert (
        httpx.post(
            issuer + "/token", data={"grant_type": "authorization_code", "client_id": "nope"}
        ).json()["error"]
        == "invalid_client"
    )
    odd = httpx.post(issuer + "/token", data={"grant_type": "password", "client_id": cid})
    assert odd.status_code == 400 and odd.json()["error"] == "unsupported_grant_type"
    # registration errors
    bad_reg = httpx.post(issuer + "/register", json={"redirect_uris": ["http://evil.example/cb"]})
    assert bad_reg.status_code == 400 and bad_reg.json()["error"] == "invalid_redirect_uri"
    assert (
        httpx.post(issuer + "/register", content=b"{").json()["error"] == "invalid_client_metadata"
    )


def test_consent_page_is_protected(server):
    issuer = server.api_url
    client = register(issuer)
    _, challenge = pkce()
    browser = Browser()
    page = browser.client.get(authorize_url(issuer, client["client_id"], challenge))
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "Test client" in page.text and "127.0.0.1:8976" in page.text
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    from tests.support.oauth import consent_form

    action, fields = consent_form(page.text)
    forged = httpx.post(action, data={**fields, "action": "approve"})  # no CSRF cookie
    assert forged.status_code == 403
    # the transaction was consumed by the failed attempt: the real browser cannot replay it
    replay = browser.client.post(action, data={**fields, "action": "approve"})
    assert replay.status_code == 400


def test_allowlist_denies_at_callback(server, github):
    issuer = server.api_url
    client = register(issuer)
    github.login = "bob"
    result, _ = login(issuer, client["client_id"])
    assert result["error"] == "access_denied" and result["iss"] == issuer


def test_confidential_client_revoke_and_introspect(server):
    issuer = server.api_url
    client = register(issuer, token_endpoint_auth_method="client_secret_basic")
    assert client["client_secret"] and client["registration_access_token"]
    auth = (client["client_id"], client["client_secret"])
    verifier, challenge = pkce()
    result = Browser().run(authorize_url(issuer, client["client_id"], challenge))
    response = httpx.post(
        issuer + "/token",
        auth=auth,
        data={
            "grant_type": "authorization_code",
            "code": result["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
    )
    tokens = response.json()
    access = tokens["access_token"]
    live = httpx.post(issuer + "/introspect", auth=auth, data={"token": access}).json()
    assert live["active"] is True and live["sub"] == "alice"
    assert httpx.post(issuer + "/introspect", data={"token": access}).status_code == 401
    assert httpx.post(issuer + "/revoke", auth=auth, data={"token": access}).status_code == 200
    assert httpx.post(issuer + "/introspect", auth=auth, data={"token": access}).json() == {
        "active": False
    }
    # RFC 7592: read, update, delete with the registration access token
    reg = {"Authorization": f"Bearer {client['registration_access_token']}"}
    uri = client["registration_client_uri"]
    assert httpx.get(uri, headers=reg).json()["client_id"] == client["client_id"]
    assert "client_secret" not in httpx.get(uri, headers=reg).json()
    assert httpx.get(uri, headers={"Authorization": "Bearer wrong"}).status_code == 401
    updated = httpx.put(
        uri,
        headers=reg,
        json={
            "redirect_uris": [REDIRECT],
            "client_name": "New",
            "token_endpoint_auth_method": "client_secret_basic",
        },
    )
    assert updated.status_code == 200 and updated.json()["client_name"] == "New"
    assert httpx.delete(uri, headers=reg).status_code == 204
    assert httpx.get(uri, headers=reg).status_code == 401


def test_configured_signing_key_rotation_keeps_old_keys(start_proxyd, github, tmp_path):
    import base64
    import subprocess

    first = start_oauth_proxyd(start_proxyd, github)
    old_token = first.token("user")
    old_kids = {k["kid"] for k in httpx.get(first.api_url + "/jwks").json()["keys"]}
    pem = tmp_path / "key.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(pem), "2048"], check=True, capture_output=True)
    key = base64.b64encode(pem.read_bytes()).decode()
    second = start_oauth_proxyd(
        start_proxyd,
        github,
        name="rotated",
        issuer=first.api_url,
        OAUTH_JWT_PRIVATE_KEY_B64=key,
        OAUTH_JWT_RETAINED_KIDS=",".join(old_kids),  # only kept keys are published and accepted
    )
    new_token = second.token("user")
    kids = {k["kid"] for k in httpx.get(second.api_url + "/jwks").json()["keys"]}
    assert old_kids < kids and len(kids) == len(old_kids) + 1
    for token in (old_token, new_token):  # both verify, on either process
        for proc in (first, second):
            query = {"query": "{ proxies { hostname } }"}
            answer = httpx.post(
                proc.api_url + "/graphql", json=query, headers={"Authorization": f"Bearer {token}"}
            )
            assert answer.status_code == 200, answer.text

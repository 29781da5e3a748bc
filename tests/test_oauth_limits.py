"""Rate limits and the CLI login (issue 10, finding 13): /register and failed token attempts per
client answer 429 with one sentence and Retry-After; `proxyd login` tokens are refreshed by the
CLI with the stored refresh token; `proxyd oauth status` shows the user, scopes and expiry."""

from __future__ import annotations

import json
import os
import stat
import time

import httpx
import pytest

from tests.support.fake_github import FakeGitHub
from tests.support.oauth import (
    Browser,
    authorize_url,
    consent_form,
    exchange,
    pkce,
    register,
    start_oauth_proxyd,
)

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture
def github():
    fake = FakeGitHub().start()
    yield fake
    fake.stop()


def test_registration_is_rate_limited_per_address(start_proxyd, github):
    proc = start_oauth_proxyd(start_proxyd, github, OAUTH_REGISTER_RATE_LIMIT="3")
    issuer = proc.api_url
    for _ in range(3):
        register(issuer)
    refused = httpx.post(f"{issuer}/register", json={"redirect_uris": ["http://127.0.0.1/cb"]})
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    body = refused.json()
    assert (
        body["error_description"].count(".") == 1 and "registrations" in body["error_description"]
    )
    # other endpoints are not affected
    assert httpx.get(f"{issuer}/.well-known/oauth-authorization-server").status_code == 200


def test_failed_token_attempts_are_rate_limited_per_client(start_proxyd, github):
    proc = start_oauth_proxyd(start_proxyd, github, OAUTH_TOKEN_FAILURE_LIMIT="3")
    issuer = proc.api_url
    guessed = register(issuer, token_endpoint_auth_method="client_secret_basic")
    bystander = register(issuer)

    def attempt(auth=None, **form) -> httpx.Response:
        data = {"grant_type": "authorization_code", "code": "guess", "code_verifier": "v" * 43}
        return httpx.post(f"{issuer}/token", auth=auth, data={**data, **form})

    for _ in range(3):  # wrong secrets
        wrong = attempt(auth=(guessed["client_id"], "wrong-secret"))
        assert wrong.status_code == 401
    blocked = attempt(auth=(guessed["client_id"], guessed["client_secret"]))
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
    assert "too many failed token requests" in blocked.json()["error_description"]
    # another client is not blocked: its failure is an ordinary invalid_grant
    other = attempt(client_id=bystander["client_id"])
    assert other.status_code == 400 and other.json()["error"] == "invalid_grant"
    # a device flow polling before approval is not a failure
    device_client = httpx.post(
        f"{issuer}/register",
        json={"grant_types": [DEVICE], "token_endpoint_auth_method": "none"},
    ).json()
    device = httpx.post(
        f"{issuer}/device/code", data={"client_id": device_client["client_id"]}
    ).json()
    poll = {
        "grant_type": DEVICE,
        "device_code": device["device_code"],
        "client_id": device_client["client_id"],
    }
    for _ in range(5):
        answer = httpx.post(f"{issuer}/token", data=poll)
        assert answer.json()["error"] in ("authorization_pending", "slow_down"), answer.text
        time.sleep(1.05)


def device_tokens(issuer: str) -> tuple[str, dict]:
    """(client_id, token response) of a device-flow login as alice with scope user."""
    client = httpx.post(
        f"{issuer}/register",
        json={
            "client_name": "proxyd CLI",
            "grant_types": [DEVICE, "refresh_token"],
            "token_endpoint_auth_method": "none",
        },
    ).json()
    device = httpx.post(
        f"{issuer}/device/code",
        data={"client_id": client["client_id"], "scope": "user", "resource": issuer},
    ).json()
    browser = Browser()
    page = browser.client.post(f"{issuer}/device", data={"user_code": device["user_code"]})
    action, fields = consent_form(page.text)
    result = browser.client.post(action, data={**fields, "action": "approve"})
    while result.is_redirect:
        result = browser.client.get(str(result.url.join(result.headers["location"])))
    time.sleep(1.1)
    tokens = httpx.post(
        f"{issuer}/token",
        data={
            "grant_type": DEVICE,
            "device_code": device["device_code"],
            "client_id": client["client_id"],
        },
    ).json()
    assert "refresh_token" in tokens, tokens
    return client["client_id"], tokens


def test_cli_refreshes_a_stored_login_and_shows_its_status(start_proxyd, github, tmp_path):
    proc = start_oauth_proxyd(start_proxyd, github, OAUTH_USER_USERS="alice")
    issuer = proc.api_url
    client_id, tokens = device_tokens(issuer)
    stored = tmp_path / "config" / "proxyd" / "login.json"
    stored.parent.mkdir(parents=True)
    # what `proxyd login` stored half an hour ago: the access token has expired since
    stored.write_text(
        json.dumps(
            {
                "api_url": issuer,
                "client_id": client_id,
                "access_token": tokens["access_token"],
                "refresh_token": tokens["refresh_token"],
                "scope": tokens["scope"],
                "expires_at": time.time() - 5,
            }
        )
    )
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "PROXYD_TOKEN": ""}
    listing = proc.cli("proxy", "list", "--api-url", issuer, env=env)
    assert listing.returncode == 0, listing.stderr
    saved = json.loads(stored.read_text())
    assert saved["access_token"] != tokens["access_token"]
    assert saved["refresh_token"] != tokens["refresh_token"]  # rotated, and stored again
    assert saved["expires_at"] > time.time() + 600
    assert stat.S_IMODE(os.stat(stored).st_mode) == 0o600
    status = proc.cli("oauth", "status", env=env)
    assert status.returncode == 0, status.stderr
    assert "alice" in status.stdout and "user" in status.stdout
    assert time.strftime("%Y-%m-%d", time.gmtime(saved["expires_at"])) in status.stdout
    assert saved["access_token"] not in status.stdout
    as_json = json.loads(proc.cli("oauth", "status", "--json", env=env).stdout)
    assert as_json["user"] == "alice" and as_json["scopes"] == "user"
    # a login whose refresh token is gone: a sentence and a non-zero exit, never a traceback
    stored.write_text(json.dumps({**saved, "expires_at": time.time() - 5, "refresh_token": "x"}))
    dead = proc.cli("oauth", "status", env=env)
    assert dead.returncode != 0 and "proxyd login" in dead.stderr
    assert "Traceback" not in dead.stderr
    assert proc.cli("logout", env=env).returncode == 0
    gone = proc.cli("oauth", "status", env=env)
    assert gone.returncode != 0 and "not signed in" in gone.stderr


def test_pkce_verifier_guessing_locks_out_only_the_guessed_client(start_proxyd, github):
    """A public client's codes cannot be brute-forced: after the limit even the right verifier
    waits for the window; a fresh client is unaffected."""
    proc = start_oauth_proxyd(start_proxyd, github, OAUTH_TOKEN_FAILURE_LIMIT="2")
    issuer = proc.api_url
    client = register(issuer)
    verifier, challenge = pkce()
    result = Browser().run(authorize_url(issuer, client["client_id"], challenge))
    for _ in range(2):
        assert exchange(issuer, client["client_id"], "not-the-code", verifier).status_code == 400
    assert exchange(issuer, client["client_id"], result["code"], verifier).status_code == 429

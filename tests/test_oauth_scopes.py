"""Scope grants and allowlists (pure rules; the end-to-end tests cover where they are applied)."""

from __future__ import annotations

from proxyd.config import load_settings
from proxyd.oauth.redirects import matches as redirect_allowed
from proxyd.oauth.scopes import denial, grant
from proxyd.store.models import Proxy

SETTINGS = load_settings(
    {"OAUTH_ADMIN_USERS": "root", "OAUTH_LOCALHOST_ADMIN_USERS": "ops", "OAUTH_MCP_USERS": "*"},
    env_file=None,
)


def proxy(**fields) -> Proxy:
    return Proxy(hostname=fields.pop("hostname", "app.test"), target_url="http://x", **fields)


def test_scopes_by_login_global_localhost_and_per_proxy():
    assert grant(SETTINGS, proxy(), "root", ["admin", "mcp"]) == ["admin", "mcp"]
    assert grant(SETTINGS, proxy(), "alice", ["admin", "mcp"]) == ["mcp"]
    local = proxy(hostname="localhost")
    assert grant(SETTINGS, local, "ops", ["admin"]) == ["admin"]
    assert grant(SETTINGS, local, "root", ["admin"]) == []
    own = proxy(oauth_admin_users=["alice"], oauth_mcp_users=[])
    assert grant(SETTINGS, own, "alice", ["admin", "mcp", "mcp:read"]) == ["admin", "mcp:read"]


def test_allowlists_users_emails_and_organizations():
    alice = {"login": "Alice", "emails": ["a@example.com", "alice@corp.test"], "orgs": ["acme"]}
    assert denial(SETTINGS, proxy(), alice) is None
    assert denial(SETTINGS, proxy(auth_required_users=["bob"]), alice)
    assert denial(SETTINGS, proxy(auth_required_users=["alice"]), alice) is None
    assert denial(SETTINGS, proxy(auth_required_emails=["*@corp.test"]), alice) is None
    assert denial(SETTINGS, proxy(auth_required_emails=["*@other.test"]), alice)
    assert denial(SETTINGS, proxy(auth_required_groups=["ACME"]), alice) is None
    assert denial(SETTINGS, proxy(auth_required_groups=["other"]), alice)
    strict = load_settings({"OAUTH_ALLOWED_GITHUB_USERS": "carol"}, env_file=None)
    assert denial(strict, proxy(), alice)
    assert denial(strict, proxy(auth_required_users=["*"]), alice) is None


def test_redirect_uri_matching():
    registered = ["http://127.0.0.1:8976/callback", "https://app.example/cb"]
    assert redirect_allowed(registered, "https://app.example/cb")
    assert not redirect_allowed(registered, "https://app.example/cb/")
    assert not redirect_allowed(registered, "https://app.example/cb?x=1")
    assert redirect_allowed(registered, "http://127.0.0.1:1234/callback")  # RFC 8252
    assert not redirect_allowed(registered, "http://127.0.0.1:1234/other")
    assert not redirect_allowed(registered, "http://localhost:1234/callback")
    assert not redirect_allowed(["https://app.example:8443/cb"], "https://app.example:9443/cb")

"""The official MCP SDK client runs the full MCP authorization flow against proxyd's own /mcp
(401 -> RFC 9728 metadata -> authorization server metadata -> dynamic registration -> authorize
with resource=<the /mcp URL> -> consent -> GitHub stand-in -> token), then lists tools, creates a
proxy through create_proxy, sends traffic through it and finds the requests with
search_request_logs. A GitHub user granted only `user` can list but not create."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest
import trio
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata

from tests.support.fake_github import FakeGitHub
from tests.support.graphql import GraphQLClient
from tests.support.mcp_client import mcp_session, mcp_token, tool_text
from tests.support.oauth import register, start_oauth_proxyd
from tests.test_oauth_mcp import REDIRECT, HeadlessBrowser, Memory


@pytest.fixture
def github():
    fake = FakeGitHub().start()
    yield fake
    fake.stop()


def _provider(url: str, browser: HeadlessBrowser, storage: Memory) -> OAuthClientProvider:
    return OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="proxyd MCP e2e",
            redirect_uris=[REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=browser.redirect,
        callback_handler=browser.callback,
    )


async def test_sdk_client_full_oauth_flow_creates_a_proxy_that_serves(
    start_proxyd, github, backend
):
    proc = start_oauth_proxyd(
        start_proxyd,
        github,
        OAUTH_ADMIN_USERS="alice",
        OAUTH_USER_USERS="*",
        OAUTH_ALLOWED_GITHUB_USERS="alice,bob",
    )
    url = f"{proc.api_url}/mcp"
    browser = HeadlessBrowser(proc.http_port)
    storage = Memory()
    http = httpx2.AsyncClient(auth=_provider(url, browser, storage), timeout=30)
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"list_proxies", "create_proxy", "search_request_logs", "health"} <= names
        created = await client.call_tool(
            "create_proxy",
            {"hostname": "grafana.mcp.test", "target_url": backend.url, "https": False},
        )
        assert not created.is_error, tool_text(created)
        async with httpx.AsyncClient() as web:
            with trio.fail_after(10):
                while True:
                    r = await web.get(
                        f"{proc.http_url}/echo/oauth-made", headers={"Host": "grafana.mcp.test"}
                    )
                    if r.status_code == 200:
                        break
                    await trio.sleep(0.05)
        with trio.fail_after(10):
            while True:
                page = await client.call_tool("search_request_logs", {"path": "/echo/oauth-made"})
                items = page.structured_content["items"]
                if items:
                    break
                await trio.sleep(0.2)
        assert items[0]["hostname"] == "grafana.mcp.test" and items[0]["status"] == 200

    # The flow really went through registration, consent and GitHub, for this resource.
    assert storage.client is not None and storage.tokens.refresh_token
    assert any(h.startswith(github.url + "/login/oauth/authorize") for h in browser.hops)
    authorize = next(h for h in browser.hops if "/authorize?" in h and h.startswith(proc.api_url))
    assert parse_qs(urlsplit(authorize).query)["resource"] == [url]
    assert set(storage.tokens.scope.split()) == {"user", "admin"}

    # No secret in a tool result: a confidential client's secret (and its hash) stay hidden.
    secret = register(proc.api_url, token_endpoint_auth_method="client_secret_basic")
    admin = mcp_token(proc, "admin", url)
    async with mcp_session(url, admin) as client:
        clients = await client.call_tool("list_oauth_clients", {})
        ids = [c["client_id"] for c in clients.structured_content["clients"]]
        assert secret["client_id"] in ids and storage.client.client_id in ids
        dumped = json.dumps(clients.structured_content) + tool_text(clients)
        assert secret["client_secret"] not in dumped and "hash" not in dumped

    # Revoking the user's tokens takes effect on /mcp at once.
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    assert (await gql('mutation { revokeUserTokens(user: "alice") }'))["revokeUserTokens"] >= 1
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {
        "Authorization": f"Bearer {storage.tokens.access_token}",
        "Accept": "application/json, text/event-stream",
    }
    async with httpx.AsyncClient() as web:
        with trio.fail_after(5):
            while True:
                r = await web.post(url, json=body, headers=headers)
                if r.status_code == 401:
                    break
                await trio.sleep(0.05)
    assert "revoked" in r.headers["www-authenticate"]


async def test_oauth_user_without_admin_can_list_not_create(start_proxyd, github, backend):
    proc = start_oauth_proxyd(
        start_proxyd, github, OAUTH_ADMIN_USERS="alice", OAUTH_USER_USERS="alice,bob"
    )
    github.login = "bob"  # scope user, not admin
    url = f"{proc.api_url}/mcp"
    browser = HeadlessBrowser(proc.http_port)
    storage = Memory()
    http = httpx2.AsyncClient(auth=_provider(url, browser, storage), timeout=30)
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        listed = await client.call_tool("list_proxies", {})
        assert not listed.is_error, tool_text(listed)
        refused = await client.call_tool(
            "create_proxy", {"hostname": "no.mcp.test", "target_url": backend.url}
        )
        assert refused.is_error and tool_text(refused).startswith("FORBIDDEN: ")
        refused = await client.call_tool("delete_proxy", {"hostname": "localhost"})
        assert refused.is_error and tool_text(refused).startswith("FORBIDDEN: ")
    assert storage.tokens.scope.split() == ["user"]

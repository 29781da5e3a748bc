"""/mcp on the issuer's own public hostname (a proxy whose target is the management app), reached
through the public edge: the official SDK client discovers, registers, signs in and gets a token
whose audience is that URL under the management policy."""

from __future__ import annotations

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support.fake_github import FakeGitHub
from tests.support.graphql import CREATE_PROXY, GraphQLClient
from tests.support.oauth import start_oauth_proxyd
from tests.support.processes import free_port
from tests.test_mcp_oauth import _provider
from tests.test_oauth_mcp import HeadlessBrowser, Memory


@pytest.fixture
def github():
    fake = FakeGitHub().start()
    yield fake
    fake.stop()


async def test_sdk_client_on_the_issuer_host_through_the_edge(start_proxyd, github):
    http_port = free_port()
    issuer = f"http://127.0.0.1:{http_port}"
    proc = start_oauth_proxyd(
        start_proxyd,
        github,
        issuer=issuer,
        HTTP_PORT=str(http_port),
        OAUTH_ADMIN_USERS="alice",
        OAUTH_ALLOWED_GITHUB_USERS="alice",
    )
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    await gql(
        CREATE_PROXY,
        {"input": {"hostname": "127.0.0.1", "targetUrl": "internal://api", "enableHttps": False}},
    )
    url = f"{issuer}/mcp"
    browser = HeadlessBrowser(proc.http_port)
    storage = Memory()
    http = httpx2.AsyncClient(auth=_provider(url, browser, storage), timeout=30)
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "create_proxy" in names
        listed = await client.call_tool("list_proxies", {})
        assert not listed.is_error
    assert set(storage.tokens.scope.split()) >= {"admin"}

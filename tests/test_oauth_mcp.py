"""The official MCP Python SDK client (OAuthClientProvider with a headless redirect handler)
against the SDK's MCPServer behind a protected proxyd proxy: 401 -> protected resource metadata
-> authorization server metadata -> registration -> authorize -> consent -> GitHub stand-in ->
token -> tool call -> refresh."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
import trio
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

from tests.support.fake_github import FakeGitHub
from tests.support.graphql import GraphQLClient
from tests.support.oauth import consent_form
from tests.support.processes import ROOT, free_port

REDIRECT = "http://localhost:3030/callback"


class HostMap(httpx2.AsyncHTTPTransport):
    """Connects *.test names to proxyd's HTTP port on loopback, keeping the Host header."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    async def handle_async_request(self, request):
        original = request.url
        if original.host.endswith(".test"):
            request.url = original.copy_with(host="127.0.0.1", port=self.port)
        try:
            return await super().handle_async_request(request)
        finally:
            request.url = original  # cookies are stored for the name, not for 127.0.0.1


class Memory:
    def __init__(self) -> None:
        self.tokens = None
        self.client = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens) -> None:
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, info) -> None:
        self.client = info


class HeadlessBrowser:
    """Follows the authorization redirects hop by hop and submits the consent form."""

    def __init__(self, port: int) -> None:
        self.http = httpx2.AsyncClient(transport=HostMap(port), timeout=15)
        self.result: AuthorizationCodeResult | None = None
        self.hops: list[str] = []

    async def redirect(self, url: str) -> None:
        method, data = "GET", None
        for _ in range(20):
            self.hops.append(url)
            response = await self.http.request(method, url, data=data)
            method, data = "GET", None
            if response.is_redirect:
                url = str(response.url.join(response.headers["location"]))
                if url.startswith(REDIRECT):
                    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
                    self.result = AuthorizationCodeResult(
                        code=query["code"], state=query.get("state"), iss=query.get("iss")
                    )
                    return
                continue
            form = consent_form(response.text)
            assert form is not None, (
                f"unexpected page {response.status_code}: {response.text[:300]}"
            )
            url, data = form
            data["action"] = "approve"
            method = "POST"
        raise AssertionError("too many hops")

    async def callback(self) -> AuthorizationCodeResult:
        assert self.result is not None
        result, self.result = self.result, None
        return result


@pytest.fixture
def github():
    fake = FakeGitHub().start()
    yield fake
    fake.stop()


@pytest.fixture
def mcp_backend():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.mcp_server", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield port
    proc.terminate()
    proc.wait(10)


async def test_mcp_sdk_client_through_protected_proxy(start_proxyd, github, mcp_backend):
    http_port = free_port()
    issuer = f"http://auth.test:{http_port}"
    proc = start_proxyd(HTTP_PORT=str(http_port), OAUTH_ISSUER=issuer, **github.env())
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    create = "mutation($i: CreateProxyInput!) { createProxy(input: $i) { hostname } }"
    await gql(
        create,
        {"i": {"hostname": "auth.test", "targetUrl": "internal://api", "enableHttps": False}},
    )
    await gql(
        create,
        {
            "i": {
                "hostname": "mcp.test",
                "targetUrl": f"http://127.0.0.1:{mcp_backend}",
                "enableHttps": False,
                "preserveHostHeader": False,
                "authEnabled": True,
                "authAllowedScopes": ["mcp"],
            }
        },
    )
    server_url = f"http://mcp.test:{http_port}/mcp"
    browser = HeadlessBrowser(http_port)
    with trio.fail_after(15):  # the proxies and the MCP server are up
        while True:
            try:
                r = await browser.http.get(server_url)
                if r.status_code == 401:
                    r2 = await browser.http.get(f"{issuer}/.well-known/oauth-authorization-server")
                    if r2.status_code == 200:
                        break
            except httpx2.HTTPError:
                pass
            await trio.sleep(0.2)
    assert 'resource_metadata="' in r.headers["www-authenticate"]

    storage = Memory()
    provider = OAuthClientProvider(
        server_url=server_url,
        client_metadata=OAuthClientMetadata(
            client_name="MCP e2e",
            redirect_uris=[REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=browser.redirect,
        callback_handler=browser.callback,
    )
    http = httpx2.AsyncClient(transport=HostMap(http_port), auth=provider, timeout=30)
    async with http, Client(streamable_http_client(server_url, http_client=http)) as client:
        result = await client.call_tool("add", {"a": 2, "b": 3})
        assert "5" in str(result.content[0])
        first = storage.tokens
        assert first is not None and first.refresh_token
        assert storage.client is not None  # registered dynamically
        assert any(h.startswith(github.url + "/login/oauth/authorize") for h in browser.hops)
        assert any("/authorize/consent" in h for h in browser.hops)
        # Force a refresh: the SDK rotates its refresh token against /token.
        provider.context.token_expiry_time = time.time() - 1
        result = await client.call_tool("add", {"a": 20, "b": 22})
        assert "42" in str(result.content[0])
        assert storage.tokens.refresh_token != first.refresh_token
        assert storage.tokens.access_token != first.access_token
    assert re.match(r"^[\w-]+\.[\w-]+\.[\w-]+$", first.access_token)

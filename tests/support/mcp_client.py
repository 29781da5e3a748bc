"""Helpers for the /mcp tests: the official MCP SDK client with a bearer token."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


class LocalhostToIPv4(httpx2.AsyncHTTPTransport):
    """Connects `localhost` to 127.0.0.1 (proxyd's IPv4 listener), keeping the Host header."""

    async def handle_async_request(self, request):
        original = request.url
        if original.host == "localhost":
            request.url = original.copy_with(host="127.0.0.1")
        try:
            return await super().handle_async_request(request)
        finally:
            request.url = original


@contextlib.asynccontextmanager
async def mcp_session(
    url: str, token: str, keepalive: bool = True, mode: str = "auto"
) -> AsyncIterator[Client]:
    limits = httpx2.Limits(max_keepalive_connections=None if keepalive else 0)
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
        transport=LocalhostToIPv4(limits=limits),
    )
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        yield client


def mcp_token(proc, scope: str, audience: str, subject: str = "tester") -> str:
    """`proxyd token issue --scope S --audience URL` (the documented interface for scripts)."""
    result = proc.cli(
        "token", "issue", "--scope", scope, "--audience", audience, "--subject", subject
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def tool_text(result) -> str:
    """The text parts of a tool result, joined (what an MCP client shows)."""
    return " ".join(getattr(c, "text", "") for c in result.content)


async def call(client, name: str, args: dict) -> dict:
    """Call a tool that must succeed; its structured result."""
    result = await client.call_tool(name, args)
    assert not result.is_error, tool_text(result)
    return result.structured_content


async def error_of(client, name: str, args: dict) -> str:
    """Call a tool that must fail; its error text."""
    result = await client.call_tool(name, args)
    assert result.is_error, result.structured_content
    return tool_text(result)

"""A tiny GraphQL-over-HTTP client for tests (real HTTP to the running proxyd)."""

from __future__ import annotations

from typing import Any

import httpx


class GraphQLClient:
    def __init__(self, api_url: str, token: str | None, http_url: str | None = None) -> None:
        self.url = f"{api_url}/graphql"
        self.token = token
        self.http_url = http_url  # the public listener of the same proxyd, when known

    async def raw(self, query: str, variables: dict | None = None, token: str | None = None):
        token = token if token is not None else self.token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.post(
                self.url, json={"query": query, "variables": variables or {}}, headers=headers
            )

    async def __call__(self, query: str, variables: dict | None = None, **kw: Any) -> dict:
        """Run query; return its data, raising AssertionError on GraphQL errors."""
        response = await self.raw(query, variables, **kw)
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    async def errors(self, query: str, variables: dict | None = None, **kw: Any) -> list[dict]:
        response = await self.raw(query, variables, **kw)
        body = response.json()
        assert body.get("errors"), body
        return body["errors"]


CREATE_PROXY = """
mutation($input: CreateProxyInput!) { createProxy(input: $input) { hostname targetUrl } }
"""

"""MCP tools for request logs, request statistics and OAuth administration."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from proxyd.manage import logs, oauth
from proxyd.mcp.schemas import (
    Done,
    OAuthClientInfo,
    OAuthClientList,
    RequestLogEntry,
    RequestLogPage,
    RequestStats,
    SessionInfo,
    SessionList,
)


def register(tools: Any) -> None:
    @tools.tool(scope="user", title="Search request logs", read_only=True, idempotent=True)
    async def search_request_logs(
        ctx: Context,
        hostname: str | None = None,
        status: Annotated[int | None, Field(ge=100, le=599)] = None,
        errors_only: Annotated[bool, Field(description="Status >= 400 or not completed")] = False,
        slow_only: bool = False,
        ip: str | None = None,
        user: str | None = None,
        client_id: str | None = None,
        path: Annotated[str | None, Field(description="Exact request path")] = None,
        method: str | None = None,
        text: Annotated[str | None, Field(description="Case-insensitive substring")] = None,
        since: Annotated[str | None, Field(description="ISO 8601 time or epoch seconds")] = None,
        until: Annotated[str | None, Field(description="ISO 8601 time or epoch seconds")] = None,
        limit: Annotated[int, Field(ge=1, le=500)] = 50,
        after: Annotated[str | None, Field(description="end_cursor of the previous page")] = None,
    ) -> RequestLogPage:
        """Request logs, newest first, with the same filters as the GraphQL requestLogs query."""
        criteria = {
            "hostname": hostname,
            "status": status,
            "errors_only": errors_only,
            "slow_only": slow_only,
            "ip": ip,
            "user": user,
            "client_id": client_id,
            "path": path,
            "method": method,
            "text": text,
            "since": since,
            "until": until,
        }
        page = await logs.search_request_logs(tools.caller(ctx), criteria, limit, after)
        return RequestLogPage(
            items=[RequestLogEntry.of(r) for r in page["items"]],
            end_cursor=page["end_cursor"],
            has_more=page["has_more"],
        )

    @tools.tool(scope="user", title="Request statistics", read_only=True, idempotent=True)
    async def request_stats(
        ctx: Context, hostname: str | None = None, hours: Annotated[int, Field(ge=1)] = 24
    ) -> RequestStats:
        """Requests, errors, unique visitors and latency percentiles, per hour."""
        return RequestStats(**await logs.stats(tools.caller(ctx), hostname, hours))

    @tools.tool(scope="user", title="List OAuth clients", read_only=True, idempotent=True)
    async def list_oauth_clients(ctx: Context) -> OAuthClientList:
        """Registered OAuth clients (their secrets are never shown)."""
        found = await oauth.list_clients(tools.caller(ctx))
        return OAuthClientList(clients=[OAuthClientInfo(**c) for c in found])

    @tools.tool(scope="user", title="List login sessions", read_only=True, idempotent=True)
    async def list_sessions(ctx: Context, user: str | None = None) -> SessionList:
        """Browser login sessions at proxyd's authorization server, optionally of one user."""
        found = await oauth.list_sessions(tools.caller(ctx), user)
        return SessionList(sessions=[SessionInfo(**s) for s in found])

    @tools.tool(scope="admin", title="Revoke a login session", destructive=True, idempotent=True)
    async def revoke_session(ctx: Context, id: str) -> Done:
        """End a browser login session (by the id list_sessions shows)."""
        await oauth.revoke_session(tools.caller(ctx), id)
        return Done(ok=True, message=f"session {id} revoked.")

"""The MCPServer and its tool registry.

`ToolRegistry.tool(scope=..., read_only=..., ...)` registers a tool with its annotations
(readOnlyHint, destructiveHint, idempotentHint) and wraps it so that:
- the caller's identity (put in the ASGI scope by proxyd.mcp.auth) has the scope the tool needs
  (`user` for read-only tools, `admin` for the others), else the tool answers with an MCP tool
  error naming the scope;
- a proxyd.manage.ManageError becomes an MCP tool error "CODE: sentence", with the same code and
  sentence GraphQL gives; a call is bounded in time (TIMEOUT) and a Redis failure is a coded
  error without details.
Tools get the management context (the API context with the caller's identity) from `caller(ctx)`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import attrs
import coredis
import trio
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations

from proxyd import __version__
from proxyd.manage import ManageError
from proxyd.manage.errors import REDIS_UNAVAILABLE
from proxyd.mcp.auth import IDENTITY_KEY
from proxyd.oauth.tokens import Identity

TOOL_TIMEOUT = 10  # seconds; certificate tools add the time they follow an order
log = logging.getLogger("proxyd.mcp")

INSTRUCTIONS = (
    "Manage this proxyd instance: proxies (hostname -> backend, HTTPS, GitHub login), routes, "
    "certificates, services (Docker containers and named URLs), request logs and OAuth sessions. "
    "Read-only tools need scope user, the others scope admin. Errors start with a code such as "
    "NOT_FOUND, BAD_USER_INPUT or DOCKER_UNAVAILABLE."
)


def identity_of(ctx: Context) -> Identity | None:
    request = ctx.request_context.request
    scope = getattr(request, "scope", None) or {}
    identity = scope.get(IDENTITY_KEY)
    return identity if isinstance(identity, Identity) else None


def tool_error(code: str, message: str) -> CallToolResult:
    """An MCP tool error: "CODE: sentence" (the GraphQL extensions.code and message)."""
    return CallToolResult(
        content=[TextContent(type="text", text=f"{code}: {message}")],
        is_error=True,
        _meta={"proxyd/code": code},
    )


class ToolRegistry:
    def __init__(self, server: MCPServer, base: Any) -> None:
        self.server = server
        self.base = base  # proxyd.api.context.ApiContext without identity

    def caller(self, ctx: Context) -> Any:
        """The management context for this call (the API context with the caller's identity)."""
        return attrs.evolve(self.base, identity=identity_of(ctx), auth_error=None)

    def tool(
        self,
        *,
        scope: str,
        title: str,
        read_only: bool = False,
        destructive: bool = False,
        idempotent: bool = False,
        timeout: float = TOOL_TIMEOUT,
    ) -> Callable:
        annotations = ToolAnnotations(
            title=title,
            read_only_hint=read_only,
            destructive_hint=destructive,
            idempotent_hint=idempotent,
            open_world_hint=False,
        )

        def decorate(fn: Callable) -> Callable:
            @functools.wraps(fn)
            async def guarded(**kwargs: Any) -> Any:
                identity = identity_of(kwargs["ctx"])
                if identity is None:
                    return tool_error("UNAUTHENTICATED", "this tool needs a bearer token.")
                if not identity.has(scope):
                    granted = " ".join(sorted(identity.scopes)) or "none"
                    return tool_error(
                        "FORBIDDEN",
                        f"{fn.__name__} needs a token with scope {scope!r}; this one has {granted}.",
                    )
                try:
                    with trio.fail_after(timeout):
                        return await fn(**kwargs)
                except ManageError as exc:
                    return tool_error(exc.code, exc.message)
                except trio.TooSlowError:
                    return tool_error(
                        "TIMEOUT", f"{fn.__name__} did not finish within {timeout} seconds."
                    )
                except (OSError, coredis.exceptions.RedisError) as exc:
                    log.warning("tool %s: Redis failed (%s)", fn.__name__, type(exc).__name__)
                    return tool_error("SERVICE_UNAVAILABLE", REDIS_UNAVAILABLE)

            self.server.add_tool(
                guarded,
                name=fn.__name__,
                title=title,
                description=(fn.__doc__ or "").strip() + f"\n\nNeeds scope {scope}.",
                annotations=annotations,
                structured_output=True,
            )
            return fn

        return decorate


def build_server(base: Any) -> MCPServer:
    from proxyd.mcp import (
        resources,
        tools_certs,
        tools_config,
        tools_docker,
        tools_docker_changes,
        tools_logs,
    )

    server = MCPServer(
        name="proxyd",
        title="proxyd",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level="WARNING",
    )
    registry = ToolRegistry(server, base)
    for module in (tools_config, tools_docker, tools_docker_changes, tools_certs, tools_logs):
        module.register(registry)
    resources.register(server, registry)
    return server

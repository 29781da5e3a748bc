"""McpEndpoint: /mcp in front of the management app.

`wrap(app)` returns an ASGI app that answers /mcp (after proxyd.mcp.auth) with the SDK's
streamable-HTTP app and the protected resource metadata for /mcp, and hands everything else to
the management app. `run` holds the SDK session manager's lifetime (its task group); it runs in
the API server's nursery. Stateless mode: no session state in memory, so a client whose
requests land on different worker processes keeps working. (No tool uses the 2026-07-28
multi-round-trip "input required" flow, whose request state the SDK seals with per-process keys.)
"""

from __future__ import annotations

import json
from typing import Any

import trio

from proxyd.mcp.auth import IDENTITY_KEY, MCP_PATH, PRM_PATH, McpAuth
from proxyd.oauth.tokens import Identity

MAX_BODY = 1024 * 1024


class McpEndpoint:
    """The SDK (and its dependencies, tens of MB) is loaded, and its session manager started in
    the API server's nursery, on the first authenticated request to /mcp: a process whose /mcp
    is never used does not carry it."""

    def __init__(self, base: Any) -> None:
        self.base = base
        self.auth = McpAuth(
            base.settings, base.verifier, lambda jti: base.manager.auth.is_revoked(jti)
        )
        self.app: Any = None
        self.nursery: trio.Nursery | None = None
        self._starting = trio.Lock()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the nursery the SDK's session manager will run in once /mcp is first used."""
        async with trio.open_nursery() as self.nursery:
            task_status.started()
            await trio.sleep_forever()

    async def _ensure_started(self) -> bool:
        async with self._starting:
            if self.app is not None:
                return True
            if self.nursery is None:
                return False
            from mcp.server.transport_security import TransportSecuritySettings

            from proxyd.mcp.server import build_server

            server = build_server(self.base)
            # Host/Origin checks: the bearer token (never a cookie) is what authorizes a request,
            # and the resource URL is derived from the Host by proxyd.mcp.auth.
            app = server.streamable_http_app(
                streamable_http_path=MCP_PATH,
                stateless_http=True,
                json_response=False,
                max_request_body_size=MAX_BODY,
                transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
            )
            await self.nursery.start(_hold_session_manager, server)
            self.app = app
            return True

    def wrap(self, inner: Any) -> Any:
        async def asgi(scope: dict, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                path = scope["path"]
                if path in (PRM_PATH, PRM_PATH + MCP_PATH):
                    await self._metadata(scope, send)
                    return
                if path == MCP_PATH:
                    await self._mcp(scope, receive, send)
                    return
            await inner(scope, receive, send)

        return asgi

    async def _metadata(self, scope: dict, send: Any) -> None:
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            await _send(send, 405, b'{"error": "method_not_allowed"}', [(b"allow", b"GET")])
            return
        body = json.dumps(self.auth.metadata(scope)).encode()
        headers = [(b"cache-control", b"max-age=300"), (b"access-control-allow-origin", b"*")]
        await _send(send, 200, b"" if scope["method"] == "HEAD" else body, headers)

    async def _mcp(self, scope: dict, receive: Any, send: Any) -> None:
        result = await self.auth.authenticate(scope)
        if not isinstance(result, Identity):
            status, headers, body = self.auth.challenge(scope, result)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if self.app is None and not await self._ensure_started():
            await _send(send, 503, b'{"error": "the MCP endpoint is starting"}', [])
            return
        await self.app(dict(scope, **{IDENTITY_KEY: result}), receive, send)


async def _send(send: Any, status: int, body: bytes, extra: list) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _hold_session_manager(
    server: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    async with server.session_manager.run():
        task_status.started()
        await trio.sleep_forever()

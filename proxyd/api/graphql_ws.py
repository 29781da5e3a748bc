"""Server side of the ``graphql-transport-ws`` protocol over a quart-trio websocket.

Owns the connection lifecycle (subprotocol check, ``connection_init`` timeout, authentication,
``connection_ack``), ping/pong, and running each operation (subscriptions, queries, mutations)
in its own trio cancel scope inside one nursery per socket. Protocol reference:
https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from graphql import GraphQLError, GraphQLSchema, OperationType, get_operation_ast, parse

from proxyd.api.execution import FORBIDDEN, UNAUTHENTICATED, error_to_dict, execute, subscribe
from proxyd.api.limits import RATE_LIMITED, rate_key

__all__ = ["SUBPROTOCOL", "serve_graphql_ws"]

logger = logging.getLogger("proxyd.api")

SUBPROTOCOL = "graphql-transport-ws"

# How long a finished or cancelled subscription may spend closing its source stream.
_CLEANUP_TIMEOUT = 5.0
# Close frame reasons are limited to 123 bytes of UTF-8 (RFC 6455, section 5.5).
_MAX_REASON_BYTES = 123

_SERVER_ONLY_TYPES = frozenset({"connection_ack", "next", "error"})


class _Close(Exception):
    """Raised inside the connection to close the socket with a protocol close code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


async def serve_graphql_ws(
    ws: Any,
    schema: GraphQLSchema,
    authenticate: Callable[[dict[str, Any]], Awaitable[Any]],
    connection_init_timeout: float = 10.0,
) -> None:
    """Speak graphql-transport-ws on ``ws`` (quart's ``websocket``) until the socket closes.

    ``authenticate`` receives the ``connection_init`` payload (``{}`` if absent) and returns the
    GraphQL context value for every operation on this socket; raising an exception whose
    ``code`` (attribute or ``extensions["code"]``) is UNAUTHENTICATED or FORBIDDEN closes the
    socket with 4403, any other exception with 4500.
    """
    # Resolve quart's context-local proxy once; operations run in child tasks.
    get_current = getattr(ws, "_get_current_object", None)
    if get_current is not None:
        ws = get_current()

    if SUBPROTOCOL not in ws.requested_subprotocols:
        # Accept first so that the client sees the close code rather than a failed handshake.
        await ws.accept()
        await ws.close(4406, "Subprotocol not acceptable")
        return
    await ws.accept(subprotocol=SUBPROTOCOL)
    await _Connection(ws, schema, authenticate).serve(connection_init_timeout)


class _Connection:
    """State of one socket: the authenticated context and the active operations."""

    def __init__(
        self,
        ws: Any,
        schema: GraphQLSchema,
        authenticate: Callable[[dict[str, Any]], Awaitable[Any]],
    ) -> None:
        self._ws = ws
        self._schema = schema
        self._authenticate = authenticate
        self._context: Any = None
        self._send_lock = trio.Lock()
        self._closed = False
        self._operations: dict[str, trio.CancelScope] = {}
        self._cancel_scope = trio.CancelScope()

    async def serve(self, connection_init_timeout: float) -> None:
        async with trio.open_nursery() as nursery:
            self._cancel_scope = nursery.cancel_scope
            try:
                await self._initialise(connection_init_timeout)
                await self._receive_operations(nursery)
            except _Close as close:
                await self._close(close.code, close.reason)
            # Only reached once the socket is closed by us: stop every operation.
            nursery.cancel_scope.cancel()

    # ------------------------------------------------------------------ connection phase

    async def _initialise(self, timeout: float) -> None:
        payload: dict[str, Any] | None = None
        with trio.move_on_after(timeout):
            while payload is None:
                message = await self._receive()
                kind = message["type"]
                if kind == "connection_init":
                    payload = message.get("payload") or {}
                elif kind == "ping":
                    await self._pong(message)
                elif kind == "subscribe":
                    raise _Close(4401, "Unauthorized")
                # "pong" and "complete" carry nothing to act on before the ack.
        if payload is None:
            raise _Close(4408, "Connection initialisation timeout")

        try:
            self._context = await self._authenticate(payload)
        except Exception as exc:
            if _error_code(exc) in (UNAUTHENTICATED, FORBIDDEN):
                raise _Close(4403, "Forbidden") from None
            logger.exception("graphql-ws connection_init authentication failed")
            raise _Close(4500, "Internal server error") from None
        await self._send({"type": "connection_ack"})

    async def _receive_operations(self, nursery: trio.Nursery) -> None:
        while True:
            message = await self._receive()
            kind = message["type"]
            if kind == "subscribe":
                self._start_operation(nursery, message["id"], message["payload"])
            elif kind == "complete":
                scope = self._operations.pop(message["id"], None)
                if scope is not None:
                    scope.cancel()
            elif kind == "ping":
                await self._pong(message)
            elif kind == "connection_init":
                raise _Close(4429, "Too many initialisation requests")
            # "pong" needs no reply.

    # ------------------------------------------------------------------ operations

    def _start_operation(self, nursery: trio.Nursery, op_id: str, payload: dict[str, Any]) -> None:
        if op_id in self._operations:
            raise _Close(4409, f"Subscriber for {op_id} already exists")
        scope = trio.CancelScope()
        self._operations[op_id] = scope
        nursery.start_soon(self._run_operation, op_id, payload, scope)

    def _release(self, op_id: str, scope: trio.CancelScope) -> bool:
        """Forget ``op_id`` if it still belongs to ``scope``; False once the client completed it.

        Done before the final message so that the client may reuse the id straight away.
        """
        if self._operations.get(op_id) is scope:
            del self._operations[op_id]
            return True
        return False

    async def _run_operation(
        self, op_id: str, payload: dict[str, Any], scope: trio.CancelScope
    ) -> None:
        with scope:
            try:
                await self._execute_operation(op_id, payload, scope)
            except Exception as exc:  # noqa: BLE001 - reported to the client as an error
                error = error_to_dict(exc)
                if self._release(op_id, scope):
                    await self._send({"id": op_id, "type": "error", "payload": [error]})
            finally:
                self._release(op_id, scope)

    async def _execute_operation(
        self, op_id: str, payload: dict[str, Any], scope: trio.CancelScope
    ) -> None:
        query = payload["query"]
        variables = payload.get("variables")
        operation_name = payload.get("operationName")
        rate = getattr(self._context, "rate_limiter", None)
        identity = getattr(self._context, "identity", None)
        if rate is not None and identity is not None and rate.take(rate_key(identity)):
            if self._release(op_id, scope):
                error = {
                    "message": "too many operations with this token (GRAPHQL_RATE_LIMIT).",
                    "extensions": {"code": RATE_LIMITED},
                }
                await self._send({"id": op_id, "type": "error", "payload": [error]})
            return

        if not _is_subscription(query, operation_name):
            result = await execute(self._schema, query, variables, operation_name, self._context)
            if "data" not in result:
                if self._release(op_id, scope):
                    await self._send({"id": op_id, "type": "error", "payload": result["errors"]})
                return
            await self._send({"id": op_id, "type": "next", "payload": result})
        else:
            stream = await subscribe(self._schema, query, variables, operation_name, self._context)
            if isinstance(stream, dict):
                if self._release(op_id, scope):
                    await self._send({"id": op_id, "type": "error", "payload": stream["errors"]})
                return
            try:
                async for result in stream:
                    await self._send({"id": op_id, "type": "next", "payload": result})
            finally:
                with trio.move_on_after(_CLEANUP_TIMEOUT, shield=True):
                    await stream.aclose()

        if self._release(op_id, scope):
            await self._send({"id": op_id, "type": "complete"})

    # ------------------------------------------------------------------ transport

    async def _receive(self) -> dict[str, Any]:
        """Receive and validate one client message; protocol violations close with 4400."""
        raw = await self._ws.receive()
        try:
            message = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise _Close(4400, "Invalid message received: not JSON") from None
        return _validate_message(message)

    async def _pong(self, ping: dict[str, Any]) -> None:
        pong: dict[str, Any] = {"type": "pong"}
        if ping.get("payload") is not None:
            pong["payload"] = ping["payload"]
        await self._send(pong)

    async def _send(self, message: dict[str, Any]) -> None:
        text = json.dumps(message)
        async with self._send_lock:
            if self._closed:
                return
            try:
                await self._ws.send(text)
            except Exception:  # the socket is gone; nothing left to serve
                logger.debug("graphql-ws send failed; dropping the connection", exc_info=True)
                self._closed = True
                self._cancel_scope.cancel()

    async def _close(self, code: int, reason: str) -> None:
        async with self._send_lock:
            if self._closed:
                return
            self._closed = True
            encoded = reason.encode()
            if len(encoded) > _MAX_REASON_BYTES:
                reason = encoded[:_MAX_REASON_BYTES].decode(errors="ignore")
            await self._ws.close(code, reason)


def _validate_message(message: Any) -> dict[str, Any]:
    """Check the shape of a client message (type, id, payload) or raise ``_Close(4400)``."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise _Close(4400, "Invalid message received: missing type")
    kind = message["type"]
    if kind in ("connection_init", "ping", "pong"):
        if message.get("payload") is not None and not isinstance(message["payload"], dict):
            raise _Close(4400, f"Invalid message received: {kind} payload must be an object")
        return message
    if kind not in ("subscribe", "complete"):
        if kind in _SERVER_ONLY_TYPES:
            raise _Close(4400, f"Invalid message received: {kind} is sent by the server")
        raise _Close(4400, "Invalid message received: unknown type")
    op_id = message.get("id")
    if not isinstance(op_id, str) or not op_id:
        raise _Close(4400, f"Invalid message received: {kind} requires a string id")
    if kind == "subscribe":
        payload = message.get("payload")
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("query"), str)
            or not isinstance(payload.get("variables") or {}, dict)
            or not isinstance(payload.get("operationName") or "", str)
        ):
            raise _Close(4400, "Invalid message received: malformed subscribe payload")
    return message


def _is_subscription(query: str, operation_name: str | None) -> bool:
    """Whether ``query`` selects a subscription operation; unparsable queries are not."""
    try:
        document = parse(query)
    except GraphQLError:
        return False
    operation = get_operation_ast(document, operation_name)
    return operation is not None and operation.operation is OperationType.SUBSCRIPTION


def _error_code(exc: Exception) -> Any:
    code = getattr(exc, "code", None)
    if code is None:
        extensions = getattr(exc, "extensions", None)
        if isinstance(extensions, dict):
            code = extensions.get("code")
    return code

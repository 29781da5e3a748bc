"""Tests for trio GraphQL execution (proxyd.api.execution) and graphql-transport-ws serving."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import pytest
import trio
import trio.lowlevel
from ariadne import MutationType, ObjectType, QueryType, SubscriptionType, make_executable_schema
from graphql import GraphQLSchema
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import websocket
from quart_trio import QuartTrio
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_client_stream

from proxyd.api.execution import api_error, execute, gather, subscribe
from proxyd.api.graphql_ws import SUBPROTOCOL, serve_graphql_ws

TYPE_DEFS = """
    type Query {
        slow(i: Int!): Int!
        numbers(n: Int!): [Int!]!
        items: [Item!]!
        streamedItems: [Item!]!
        missing: String
        boom: String
        requiredBoom: String!
        whoami: String
    }

    type Mutation {
        rename(name: String!): String!
    }

    type Item {
        id: Int!
        label: String!
    }

    type Subscription {
        counter(limit: Int!): Int!
        forever: Int!
    }
"""


class State:
    """Observations made by the resolvers, shared with the tests."""

    def __init__(self) -> None:
        self.counter_closed = trio.Event()
        self.forever_closed = trio.Event()
        self.forever_started = trio.Event()


class AuthError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def build_schema(state: State) -> GraphQLSchema:
    query = QueryType()
    mutation = MutationType()
    item = ObjectType("Item")
    subscription = SubscriptionType()

    @query.field("slow")
    async def resolve_slow(*_: Any, i: int) -> int:
        await trio.sleep(0.05)
        return i * 2

    @query.field("numbers")
    def resolve_numbers(*_: Any, n: int) -> list[Any]:
        async def number(i: int) -> int:
            await trio.sleep(0.01 * (n - i))  # later items finish first
            return i

        return [number(i) for i in range(n)]

    @query.field("items")
    async def resolve_items(*_: Any) -> list[dict[str, int]]:
        await trio.lowlevel.checkpoint()
        return [{"id": i} for i in range(5)]

    @query.field("streamedItems")
    def resolve_streamed_items(*_: Any) -> AsyncIterator[dict[str, int]]:
        async def generate() -> AsyncIterator[dict[str, int]]:
            for i in range(3):
                await trio.lowlevel.checkpoint()
                yield {"id": i}

        return generate()

    @item.field("label")
    async def resolve_label(obj: dict[str, int], *_: Any) -> str:
        await trio.sleep(0.01 * (5 - obj["id"]))
        return f"item-{obj['id']}"

    @query.field("missing")
    async def resolve_missing(*_: Any) -> str:
        raise api_error("No such thing", "NOT_FOUND")

    @query.field("boom")
    async def resolve_boom(*_: Any) -> str:
        raise RuntimeError("database password is hunter2")

    @query.field("requiredBoom")
    async def resolve_required_boom(*_: Any) -> str:
        await trio.sleep(0.01)
        raise RuntimeError("kaboom")

    @query.field("whoami")
    def resolve_whoami(_: Any, info: Any) -> str:
        return info.context["user"]

    @mutation.field("rename")
    async def resolve_rename(*_: Any, name: str) -> str:
        await trio.lowlevel.checkpoint()
        return name.upper()

    @subscription.source("counter")
    async def counter_source(*_: Any, limit: int) -> AsyncIterator[int]:
        try:
            for i in range(limit):
                await trio.lowlevel.checkpoint()
                yield i
        finally:
            state.counter_closed.set()

    @subscription.field("counter")
    async def resolve_counter(event: int, *_: Any, limit: int) -> int:
        await trio.lowlevel.checkpoint()
        return event * 10

    @subscription.source("forever")
    async def forever_source(*_: Any) -> AsyncIterator[int]:
        state.forever_started.set()
        i = 0
        try:
            while True:
                yield i
                i += 1
                await trio.sleep(0.01)
        finally:
            state.forever_closed.set()

    @subscription.field("forever")
    def resolve_forever(event: int, *_: Any) -> int:
        return event

    return make_executable_schema(TYPE_DEFS, query, mutation, item, subscription)


@pytest.fixture
def state() -> State:
    return State()


@pytest.fixture
def schema(state: State) -> GraphQLSchema:
    return build_schema(state)


# --------------------------------------------------------------------------- gather


async def test_gather_preserves_order_and_raises_first_error_unwrapped() -> None:
    cancelled: list[int] = []

    async def value(i: int, delay: float) -> int:
        await trio.sleep(delay)
        return i

    async def fail() -> None:
        await trio.sleep(0.01)
        raise KeyError("first")

    async def straggler() -> None:
        try:
            await trio.sleep(10)
        except trio.Cancelled:
            cancelled.append(1)
            raise

    assert await gather(value(0, 0.03), value(1, 0.01), value(2, 0.02)) == [0, 1, 2]
    assert await gather() == []
    with trio.fail_after(1), pytest.raises(KeyError, match="first"):
        await gather(straggler(), fail())
    assert cancelled == [1]


# --------------------------------------------------------------------------- execute


async def test_sibling_async_fields_run_concurrently(
    schema: GraphQLSchema, autojump_clock: trio.abc.Clock
) -> None:
    fields = " ".join(f"f{i}: slow(i: {i})" for i in range(50))
    start = trio.current_time()
    result = await execute(schema, f"{{ {fields} }}", None, None, {})
    elapsed = trio.current_time() - start
    assert result == {"data": {f"f{i}": i * 2 for i in range(50)}}
    assert elapsed < 0.1  # serially this would take 50 * 0.05 = 2.5 s


async def test_async_list_items_keep_their_order(schema: GraphQLSchema) -> None:
    result = await execute(schema, "{ numbers(n: 5) items { id label } }", None, None, {})
    assert result == {
        "data": {
            "numbers": [0, 1, 2, 3, 4],
            "items": [{"id": i, "label": f"item-{i}"} for i in range(5)],
        }
    }


async def test_async_iterable_list_with_async_fields(schema: GraphQLSchema) -> None:
    # graphql-core 3.2.8 itself returns an un-awaited coroutine as data for this query.
    result = await execute(schema, "{ streamedItems { id label } }", None, None, {})
    assert result == {
        "data": {"streamedItems": [{"id": i, "label": f"item-{i}"} for i in range(3)]}
    }


async def test_variables_operation_name_and_mutation(schema: GraphQLSchema) -> None:
    query = """
        query Q($i: Int!) { slow(i: $i) }
        mutation M($name: String!) { rename(name: $name) }
    """
    assert await execute(schema, query, {"i": 4}, "Q", {}) == {"data": {"slow": 8}}
    assert await execute(schema, query, {"name": "ab"}, "M", {}) == {"data": {"rename": "AB"}}


async def test_api_error_code_is_kept(schema: GraphQLSchema) -> None:
    result = await execute(schema, "{ missing slow(i: 1) }", None, None, {})
    assert result["data"] == {"missing": None, "slow": 2}
    [error] = result["errors"]
    assert error["message"] == "No such thing"
    assert error["path"] == ["missing"]
    assert error["extensions"] == {"code": "NOT_FOUND"}


async def test_unexpected_exception_is_masked_and_logged(
    schema: GraphQLSchema, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="proxyd.api"):
        result = await execute(schema, "{ boom }", None, None, {})
    assert result["data"] == {"boom": None}
    [error] = result["errors"]
    assert error["message"] == "Internal server error"
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert error["path"] == ["boom"]
    assert "hunter2" not in json.dumps(result)
    logged = [r for r in caplog.records if r.name == "proxyd.api" and r.exc_info]
    assert logged and "hunter2" in str(logged[0].exc_info[1])


async def test_non_null_error_bubbles_to_root(schema: GraphQLSchema) -> None:
    result = await execute(schema, "{ slow(i: 1) requiredBoom }", None, None, {})
    assert result["data"] is None
    [error] = result["errors"]
    assert error["path"] == ["requiredBoom"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}


async def test_syntax_and_validation_errors_have_no_data(schema: GraphQLSchema) -> None:
    syntax = await execute(schema, "{ slow(i: ", None, None, {})
    assert "data" not in syntax
    assert syntax["errors"][0]["message"].startswith("Syntax Error")

    invalid = await execute(schema, "{ nope }", None, None, {})
    assert "data" not in invalid
    assert "nope" in invalid["errors"][0]["message"]

    sub = await execute(schema, "subscription { forever }", None, None, {})
    assert "data" not in sub


# --------------------------------------------------------------------------- subscribe


async def test_subscribe_yields_events_in_order(schema: GraphQLSchema, state: State) -> None:
    stream = await subscribe(schema, "subscription { counter(limit: 3) }", None, None, {})
    assert not isinstance(stream, dict)
    results = [result async for result in stream]
    assert results == [{"data": {"counter": n}} for n in (0, 10, 20)]
    assert state.counter_closed.is_set()


async def test_subscribe_aclose_closes_source(schema: GraphQLSchema, state: State) -> None:
    stream = await subscribe(schema, "subscription { forever }", None, None, {})
    assert not isinstance(stream, dict)
    assert await anext(stream) == {"data": {"forever": 0}}
    assert await anext(stream) == {"data": {"forever": 1}}
    assert not state.forever_closed.is_set()
    await stream.aclose()
    assert state.forever_closed.is_set()


async def test_subscribe_errors_are_returned_as_dict(schema: GraphQLSchema) -> None:
    invalid = await subscribe(schema, "subscription { nope }", None, None, {})
    assert isinstance(invalid, dict) and "data" not in invalid
    assert invalid["errors"]

    not_subscription = await subscribe(schema, "{ slow(i: 1) }", None, None, {})
    assert isinstance(not_subscription, dict)
    assert "not a subscription" in not_subscription["errors"][0]["message"]


# --------------------------------------------------------------------------- graphql-ws


async def authenticate(state: State, payload: dict[str, Any]) -> dict[str, Any]:
    if payload.get("token") == "good":
        return {"user": "alice", "state": state}
    raise AuthError("UNAUTHENTICATED")


@pytest.fixture
async def ws_url(nursery: trio.Nursery, schema: GraphQLSchema, state: State) -> AsyncIterator[str]:
    app = QuartTrio(__name__)

    @app.websocket("/graphql")
    async def graphql_ws() -> None:
        timeout = float(websocket.args.get("init_timeout", "10"))
        await serve_graphql_ws(websocket, schema, partial(authenticate, state), timeout)

    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.graceful_timeout = 0.1
    shutdown = trio.Event()
    binds = await nursery.start(partial(serve, app, config, shutdown_trigger=shutdown.wait))
    yield binds[0].replace("http://", "ws://") + "/graphql"
    shutdown.set()


@asynccontextmanager
async def connect(
    url: str, subprotocols: list[str] | None = None
) -> AsyncIterator[WebSocketConnection]:
    """Like trio_websocket.open_websocket_url, but we own (and always close) the TCP stream.

    trio-websocket 0.12 never closes a client's stream when the server closes the websocket
    first, leaving an unclosed-socket ResourceWarning for the garbage collector.
    """
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    resource = f"{parts.path}?{parts.query}" if parts.query else parts.path
    async with trio.open_nursery() as nursery:
        stream = await trio.open_tcp_stream(parts.hostname, parts.port)
        async with stream:
            conn = await wrap_client_stream(
                nursery, stream, parts.hostname, resource, subprotocols=subprotocols
            )
            try:
                yield conn
            finally:
                await conn.aclose()


async def send(conn: WebSocketConnection, message: dict[str, Any]) -> None:
    await conn.send_message(json.dumps(message))


async def receive(conn: WebSocketConnection) -> dict[str, Any]:
    with trio.fail_after(2):
        return json.loads(await conn.get_message())


async def expect_close(conn: WebSocketConnection) -> tuple[int, str | None]:
    with trio.fail_after(2), pytest.raises(ConnectionClosed) as closed:
        while True:
            await conn.get_message()
    return closed.value.reason.code, closed.value.reason.reason


INIT = {"type": "connection_init", "payload": {"token": "good"}}


async def connect_and_ack(conn: WebSocketConnection) -> None:
    await send(conn, INIT)
    assert await receive(conn) == {"type": "connection_ack"}


def subscribe_message(op_id: str, query: str, **extra: Any) -> dict[str, Any]:
    return {"id": op_id, "type": "subscribe", "payload": {"query": query, **extra}}


async def test_ws_subscription_streams_then_completes(ws_url: str, state: State) -> None:
    async with connect(ws_url, subprotocols=[SUBPROTOCOL]) as conn:
        assert conn.subprotocol == SUBPROTOCOL
        await connect_and_ack(conn)
        await send(conn, subscribe_message("1", "subscription { counter(limit: 3) }"))
        for n in (0, 10, 20):
            assert await receive(conn) == {
                "id": "1",
                "type": "next",
                "payload": {"data": {"counter": n}},
            }
        assert await receive(conn) == {"id": "1", "type": "complete"}
        assert state.counter_closed.is_set()


async def test_ws_client_complete_stops_subscription(ws_url: str, state: State) -> None:
    async with connect(ws_url, subprotocols=[SUBPROTOCOL]) as conn:
        await connect_and_ack(conn)
        await send(conn, subscribe_message("s", "subscription { forever }"))
        assert (await receive(conn))["payload"] == {"data": {"forever": 0}}
        await send(conn, {"id": "s", "type": "complete"})
        with trio.fail_after(2):
            await state.forever_closed.wait()
        # Anything still in flight precedes the pong; nothing (not even complete) follows it.
        await send(conn, {"type": "ping"})
        while (message := await receive(conn))["type"] != "pong":
            assert message["type"] == "next"
        with trio.move_on_after(0.1) as quiet:
            await conn.get_message()
        assert quiet.cancelled_caught
        # The id may be reused once completed.
        await send(conn, subscribe_message("s", "{ whoami }"))
        assert (await receive(conn))["payload"] == {"data": {"whoami": "alice"}}


async def test_ws_ping_pong(ws_url: str) -> None:
    async with connect(ws_url, subprotocols=[SUBPROTOCOL]) as conn:
        await send(conn, {"type": "ping"})  # allowed before connection_init
        assert await receive(conn) == {"type": "pong"}
        await connect_and_ack(conn)
        await send(conn, {"type": "ping", "payload": {"n": 1}})
        assert await receive(conn) == {"type": "pong", "payload": {"n": 1}}
        await send(conn, {"type": "pong"})  # unsolicited pongs are ignored
        await send(conn, {"type": "ping"})
        assert await receive(conn) == {"type": "pong"}


async def test_ws_query_and_errors_over_socket(ws_url: str) -> None:
    async with connect(ws_url, subprotocols=[SUBPROTOCOL]) as conn:
        await connect_and_ack(conn)
        await send(conn, subscribe_message("q", "query Me { whoami slow(i: 2) }"))
        assert await receive(conn) == {
            "id": "q",
            "type": "next",
            "payload": {"data": {"whoami": "alice", "slow": 4}},
        }
        assert await receive(conn) == {"id": "q", "type": "complete"}

        await send(conn, subscribe_message("m", 'mutation { rename(name: "x") }'))
        assert (await receive(conn))["payload"] == {"data": {"rename": "X"}}
        assert await receive(conn) == {"id": "m", "type": "complete"}

        await send(conn, subscribe_message("e", "subscription { nope }"))
        error = await receive(conn)
        assert error["id"] == "e" and error["type"] == "error"
        assert "nope" in error["payload"][0]["message"]

        await send(conn, subscribe_message("n", "{ missing }"))
        result = await receive(conn)
        assert result["type"] == "next"
        assert result["payload"]["errors"][0]["extensions"] == {"code": "NOT_FOUND"}
        assert await receive(conn) == {"id": "n", "type": "complete"}


async def test_ws_init_timeout(ws_url: str) -> None:
    async with connect(ws_url + "?init_timeout=0.1", subprotocols=[SUBPROTOCOL]) as conn:
        assert await expect_close(conn) == (4408, "Connection initialisation timeout")


async def test_ws_authentication_failure(ws_url: str) -> None:
    async with connect(ws_url, subprotocols=[SUBPROTOCOL]) as conn:
        await send(conn, {"type": "connection_init", "payload": {"token": "bad"}})
        assert await expect_close(conn) == (4403, "Forbidden")


async def test_ws_duplicate_subscription_id(ws_url: str, state: State) -> None:
    async with connect(ws_url, subprotocols=[SUBPROTOCOL]) as conn:
        await connect_and_ack(conn)
        await send(conn, subscribe_message("dup", "subscription { forever }"))
        assert (await receive(conn))["type"] == "next"
        await send(conn, subscribe_message("dup", "subscription { forever }"))
        assert await expect_close(conn) == (4409, "Subscriber for dup already exists")
    with trio.fail_after(2):
        await state.forever_closed.wait()


async def test_ws_socket_close_cancels_operations(ws_url: str, state: State) -> None:
    async with connect(ws_url, subprotocols=[SUBPROTOCOL]) as conn:
        await connect_and_ack(conn)
        await send(conn, subscribe_message("s", "subscription { forever }"))
        assert (await receive(conn))["type"] == "next"
    with trio.fail_after(2):
        await state.forever_closed.wait()


@pytest.mark.parametrize(
    ("messages", "code", "reason"),
    [
        ([subscribe_message("1", "{ whoami }")], 4401, "Unauthorized"),
        (
            [INIT, INIT],
            4429,
            "Too many initialisation requests",
        ),
        ([INIT, {"type": "bogus"}], 4400, None),
        ([INIT, {"type": "subscribe", "id": "1"}], 4400, None),
        (["not json"], 4400, None),
    ],
)
async def test_ws_protocol_violations(
    ws_url: str, messages: list[Any], code: int, reason: str | None
) -> None:
    async with connect(ws_url, subprotocols=[SUBPROTOCOL]) as conn:
        for message in messages:
            if isinstance(message, str):
                await conn.send_message(message)
            else:
                await send(conn, message)
        closed_code, closed_reason = await expect_close(conn)
    assert closed_code == code
    if reason is not None:
        assert closed_reason == reason


async def test_ws_requires_subprotocol(ws_url: str) -> None:
    async with connect(ws_url, subprotocols=["graphql-ws"]) as conn:
        assert await expect_close(conn) == (4406, "Subprotocol not acceptable")

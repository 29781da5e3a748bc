"""GraphQL cost limits (issue 10, finding 10): over-limit operations get a coded error before
anything runs, tokens are rate limited, and the edge in the same process keeps serving."""

from __future__ import annotations

import json
import time

import httpx
import trio
from trio_websocket import open_websocket_url

from tests.support.graphql import GraphQLClient


def aliases(field: str, count: int) -> str:
    return "{ " + " ".join(f"a{n}: {field}" for n in range(count)) + " }"


async def post(gql: GraphQLClient, query: str, token: str | None = None) -> httpx.Response:
    return await gql.raw(query, token=token)


async def test_alias_bombs_and_over_budget_operations_are_refused_before_running(
    proxyd, user_token
):
    gql = GraphQLClient(proxyd.api_url, user_token)
    for query in (
        aliases("requestStats(hours: 744) { requests p95Ms }", 300),
        aliases("health { status redis }", 10_000),
    ):
        started = time.monotonic()
        response = await post(gql, query)
        body = response.json()
        assert response.status_code == 400, body
        assert "data" not in body
        assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TOO_COMPLEX"]
        assert time.monotonic() - started < 5  # not a timing claim: it must not run for 16 s
    # Without aliases: over the cost budget (7 x 744 hours > 5000), and too deep.
    fragments = " ".join(
        f'f{n}: requestStats(hostname: "h{n}", hours: 744) {{ requests }}' for n in range(7)
    )
    errors = await gql.errors("{ " + fragments + " }")
    assert errors[0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "budget" in errors[0]["message"]
    deep = "{ __schema { types { fields { type { " + "ofType { " * 12 + "name" + " }" * 17
    errors = await gql.errors(deep)
    assert errors[0]["extensions"]["code"] == "QUERY_TOO_COMPLEX" and "deep" in errors[0]["message"]
    data = await gql("{ __schema { types { fields { type { ofType { name } } } } } }")
    assert data["__schema"]["types"]
    # Cost counts fragments as executed, and variables as sent.
    spread = (
        "query($h: Int) { ...A ...B } fragment A on Query { a: requestStats(hours: $h) "
        "{ requests } b: requestStats(hours: $h) { requests } c: requestStats(hours: $h) "
        "{ requests } } fragment B on Query { d: requestStats(hours: $h) { requests } "
        "e: requestStats(hours: $h) { requests } f: requestStats(hours: $h) { requests } "
        "g: requestStats(hours: $h) { requests } }"
    )
    errors = await gql.errors(spread, {"h": 744})
    assert errors[0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    # The legitimate cases still work: one long-range statistic, a handful of aliases.
    data = await gql("{ requestStats(hours: 744) { hours requests } }")
    assert data["requestStats"]["hours"] == 744
    data = await gql(aliases("health { status }", 20))
    assert data["a19"]["status"] == "ok"
    data = await gql(spread, {"h": 24})
    assert data["g"]["requests"] == 0


async def test_each_token_is_rate_limited_on_its_own(start_proxyd):
    proc = start_proxyd(GRAPHQL_RATE_LIMIT="5")
    busy, other = proc.token("user", subject="busy"), proc.token("user", subject="other")
    gql = GraphQLClient(proc.api_url, busy)
    answers = [await post(gql, "{ health { status } }") for _ in range(6)]
    assert [a.status_code for a in answers[:5]] == [200] * 5
    limited = answers[5]
    assert limited.status_code == 429
    assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert int(limited.headers["retry-after"]) >= 1
    assert (await post(gql, "{ health { status } }", token=other)).status_code == 200
    await trio.sleep(12.5)  # 5 a minute: one more after 12 s
    assert (await post(gql, "{ health { status } }")).status_code == 200


async def test_the_edge_keeps_serving_while_the_budget_is_spent(proxyd, user_token, backend):
    admin = GraphQLClient(proxyd.api_url, proxyd.token("admin"))
    await admin(
        "mutation($i: CreateProxyInput!) { createProxy(input: $i) { hostname } }",
        {"i": {"hostname": "app.test", "targetUrl": backend.url, "enableHttps": False}},
    )
    heavy = aliases("requestStats(hours: 744) { requests p95Ms }", 6)  # just inside the budget
    gql = GraphQLClient(proxyd.api_url, user_token)
    served: list[int] = []
    async with httpx.AsyncClient(base_url=proxyd.http_url, timeout=10) as http:
        with trio.fail_after(10):
            while (await http.get("/", headers={"Host": "app.test"})).status_code != 200:
                await trio.sleep(0.05)

        async def heavy_load() -> None:
            for _ in range(3):
                response = await post(gql, heavy)
                # Runs, or (on a busy machine) is cut at GRAPHQL_TIMEOUT with a coded error.
                if response.status_code != 200:
                    assert response.json()["errors"][0]["extensions"]["code"] == "TIMEOUT"

        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(heavy_load)
            for _ in range(20):
                r = await http.get("/echo", headers={"Host": "app.test"})
                served.append(r.status_code)
                health = await http.get(proxyd.api_url + "/health")
                served.append(health.status_code)
    assert served == [200] * 40


async def test_websocket_operations_share_the_limits(start_proxyd):
    proc = start_proxyd(GRAPHQL_RATE_LIMIT="3")
    token = proc.token("user")
    url = f"ws://127.0.0.1:{proc.api_port}/graphql"
    async with open_websocket_url(url, subprotocols=["graphql-transport-ws"]) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send_message(json.dumps(init))
        assert json.loads(await ws.get_message())["type"] == "connection_ack"

        async def run(op_id: str, query: str) -> dict:
            message = {"id": op_id, "type": "subscribe", "payload": {"query": query}}
            await ws.send_message(json.dumps(message))
            with trio.fail_after(10):
                return json.loads(await ws.get_message())

        answer = await run("1", aliases("health { status }", 60))
        assert answer["type"] == "error"
        assert answer["payload"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        for op_id in ("2", "3"):
            answer = await run(op_id, "{ health { status } }")
            assert answer["type"] == "next", answer
            assert json.loads(await ws.get_message())["type"] == "complete"
        answer = await run("4", "{ health { status } }")
        assert answer["type"] == "error"
        assert answer["payload"][0]["extensions"]["code"] == "RATE_LIMITED"

"""Live request logs and resilience against real Redis and real proxyd processes: the
subscription delivers records in order (also from another process on the same Redis), retention
expiry, Redis stopped mid-load, request logging turned off."""

from __future__ import annotations

import json

import httpx
import trio
from trio_websocket import open_websocket_url

from tests.support.graphql import CREATE_PROXY, GraphQLClient
from tests.support.logs import logs, redis_client, restart_redis, send, wait_for_logs
from tests.support.processes import RedisServer, redis_command

FOLLOW = """
subscription($filter: RequestLogFilter) {
  requestLogs(filter: $filter) { path hostname status clientIp instance }
}
"""


async def _subscribe(ws, token: str, criteria: dict) -> None:
    await ws.send_message(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    )
    assert json.loads(await ws.get_message())["type"] == "connection_ack"
    await ws.send_message(
        json.dumps(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": FOLLOW, "variables": {"filter": criteria}},
            }
        )
    )


async def _next(ws) -> dict:
    message = json.loads(await ws.get_message())
    assert message["type"] == "next" and message["payload"].get("data"), message
    return message["payload"]["data"]["requestLogs"]


async def test_live_subscription_delivers_records_in_order(start_proxyd, backend):
    a = start_proxyd("a")
    b = start_proxyd("b")  # a second process on the same Redis
    token = a.token("user")
    admin = GraphQLClient(a.api_url, a.token("admin"))
    await admin(CREATE_PROXY, {"input": {"hostname": "live.test", "targetUrl": backend.url}})
    await admin(CREATE_PROXY, {"input": {"hostname": "other.test", "targetUrl": backend.url}})
    url = f"ws://127.0.0.1:{a.api_port}/graphql"
    async with (
        httpx.AsyncClient(timeout=10) as client,
        open_websocket_url(url, subprotocols=["graphql-transport-ws"]) as ws,
    ):
        await _subscribe(ws, token, {"hostname": "live.test"})
        # Until the subscription is reading the stream, send warm-up requests.
        with trio.fail_after(10):
            while True:
                await send(client, a, "live.test", "/warmup")
                with trio.move_on_after(0.5):
                    assert (await _next(ws))["path"] == "/warmup"
                    break
        with trio.fail_after(5):  # drain warm-ups still in flight
            while True:
                with trio.move_on_after(0.5) as idle:
                    await _next(ws)
                if idle.cancelled_caught:
                    break
        for i in range(30):
            await send(client, a, "live.test", f"/seq/{i}")
            await send(client, a, "other.test", f"/filtered-out/{i}")
        with trio.fail_after(10):
            got = [await _next(ws) for _ in range(30)]
        assert [r["path"] for r in got] == [f"/seq/{i}" for i in range(30)]
        assert {r["hostname"] for r in got} == {"live.test"}

        # Records written by the other process arrive on this subscription too, in order.
        for i in range(10):
            await send(client, b, "live.test", f"/from-b/{i}")
        with trio.fail_after(10):
            got = [await _next(ws) for _ in range(10)]
        assert [r["path"] for r in got] == [f"/from-b/{i}" for i in range(10)]
        assert {r["instance"] for r in got} != {""}


async def test_records_indexes_and_stats_expire_after_retention(start_proxyd, backend, redis_url):
    proxyd = start_proxyd(LOG_RETENTION_HOURS="0.0005")  # 1.8 seconds
    gql = GraphQLClient(proxyd.api_url, proxyd.token("admin"))
    await gql(CREATE_PROXY, {"input": {"hostname": "r.test", "targetUrl": backend.url}})
    async with httpx.AsyncClient(timeout=10) as client:
        for i in range(3):
            await send(client, proxyd, "r.test", f"/{i}?status=500")
    await wait_for_logs(gql, 3)
    patterns = ("req:*", "idx:req:*", "stats:*", "stream:requests")
    redis = redis_client(redis_url)
    async with redis:
        present = [k for p in patterns async for k in redis.scan_iter(match=p)]
        assert any(k.startswith("idx:req:") for k in present)
        assert any(k.startswith("stats:unique_ips:") for k in present)
        for key in present:
            assert 0 < await redis.pttl(key) <= 1800, key
        with trio.fail_after(6):
            while [k for p in patterns async for k in redis.scan_iter(match=p)]:
                await trio.sleep(0.2)
    assert (await logs(gql))["items"] == []


async def test_redis_stopped_mid_load_proxying_goes_on(tmp_path, start_proxyd, backend):
    own = RedisServer(tmp_path / "own-redis")
    try:
        proxyd = start_proxyd("own", redis=own.url, LOG_BUFFER_SIZE="50", RECONCILE_INTERVAL="300")
        gql = GraphQLClient(proxyd.api_url, proxyd.token("admin"))
        await gql(CREATE_PROXY, {"input": {"hostname": "d.test", "targetUrl": backend.url}})
        async with httpx.AsyncClient(timeout=10) as client:
            for i in range(20):
                assert (await send(client, proxyd, "d.test", f"/before/{i}")).status_code == 200
            await wait_for_logs(gql, 20)
            assert redis_command(own.port, "SAVE").startswith(b"+OK")
            own.stop()

            statuses = []
            with trio.fail_after(30):
                for i in range(300):
                    response = await send(client, proxyd, "d.test", f"/during/{i}")
                    statuses.append(response.status_code)
            assert statuses == [200] * 300  # no request waited for Redis or failed
            health = (await client.get(f"{proxyd.api_url}/health")).json()
            assert health["redis"] == "unreachable"
            assert health["log_records_dropped"] > 0
            metrics = (await client.get(f"{proxyd.api_url}/metrics")).text
            dropped = _sample(metrics, "proxyd_log_records_dropped_total")
            # The buffer holds 50 and the writer may hold one batch in flight; the rest were
            # dropped and counted.
            assert dropped >= 300 - 2 * 50

            restart_redis(own)
            with trio.fail_after(20):
                while True:
                    await send(client, proxyd, "d.test", "/after")
                    page = await logs(gql, {"path": "/after"})
                    if page["items"]:
                        break
                    await trio.sleep(0.3)
            metrics = (await client.get(f"{proxyd.api_url}/metrics")).text
            assert _sample(metrics, "proxyd_log_records_written_total") >= 21
            health = (await client.get(f"{proxyd.api_url}/health")).json()
            assert health["status"] == "ok" and health["log_records_dropped"] >= dropped
        assert "Redis answers again" in proxyd.log()
    finally:
        own.stop()


def _sample(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith((name + " ", name + "{")):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics:\n{metrics}")


async def test_request_logging_off_records_nothing(start_proxyd, backend, redis_url):
    proxyd = start_proxyd(REQUEST_LOGGING="false")
    gql = GraphQLClient(proxyd.api_url, proxyd.token("admin"))
    await gql(CREATE_PROXY, {"input": {"hostname": "off.test", "targetUrl": backend.url}})
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(5):
            assert (await send(client, proxyd, "off.test", "/")).status_code == 200
    await trio.sleep(0.5)
    redis = redis_client(redis_url)
    async with redis:
        assert [k async for k in redis.scan_iter(match="req:*")] == []
    assert (await logs(gql))["items"] == []

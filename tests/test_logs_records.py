"""Request records in real Redis through a real proxyd: every index returns exactly the matching
records, pagination, statistics and unique visitors, bad filters, and masking of secrets."""

from __future__ import annotations

import datetime
import time

import httpx
import pytest
import trio

from proxyd.config import load_settings
from proxyd.logs import layout
from proxyd.logs.masking import mask_query, mask_url
from proxyd.logs.record import RequestRecord
from proxyd.logs.writer import RequestLog, to_row
from tests.support.graphql import CREATE_PROXY, GraphQLClient
from tests.support.logs import (
    REQUEST_STATS,
    dump_everything,
    logs,
    redis_client,
    send,
    stored_batches,
    wait_for_logs,
)

# (host, method, path + query, client ip) -> the status the backend answers
TRAFFIC = [
    ("a.test", "GET", "/x", "10.0.0.1"),
    ("a.test", "GET", "/y?status=404", "10.0.0.2"),
    ("b.test", "POST", "/x", "10.0.0.1"),
    ("b.test", "GET", "/slow?seconds=0.4", "10.0.0.3"),
    ("b.test", "GET", "/x?status=500", "10.0.0.2"),
]


@pytest.fixture
def logged(start_proxyd):
    return start_proxyd(TRUSTED_PROXIES="127.0.0.1", LOG_SLOW_SECONDS="0.3")


@pytest.fixture
def lgql(logged) -> GraphQLClient:
    return GraphQLClient(logged.api_url, logged.token("admin"))


async def _traffic(logged, lgql, backend) -> list[dict]:
    for host in ("a.test", "b.test"):
        await lgql(CREATE_PROXY, {"input": {"hostname": host, "targetUrl": backend.url}})
    async with httpx.AsyncClient(timeout=10) as client:
        for host, method, path, ip in TRAFFIC:
            await send(client, logged, host, path, ip=ip, method=method, content=b"abc")
    return await wait_for_logs(lgql, len(TRAFFIC))


def _paths(items: list[dict]) -> list[str]:
    return sorted(f"{r['hostname']} {r['method']} {r['path']} {r['clientIp']}" for r in items)


def _expected(pred) -> list[str]:
    return sorted(f"{h} {m} {p.split('?')[0]} {ip}" for h, m, p, ip in TRAFFIC if pred(h, m, p, ip))


async def test_each_index_returns_exactly_the_matching_records(logged, lgql, backend, redis_url):
    items = await _traffic(logged, lgql, backend)
    assert len(items) == len(TRAFFIC)
    # Newest first, with every field of the record.
    assert [r["path"] for r in items] == ["/x", "/slow", "/x", "/y", "/x"]
    first = items[-1]
    assert first["status"] == 200 and first["method"] == "GET" and first["hostname"] == "a.test"
    assert first["bytesIn"] == 3 and first["bytesOut"] > 0 and first["protocol"] == "http"
    assert first["durationMs"] > 0 and first["upstreamMs"] is not None
    assert first["userAgent"].startswith("python-httpx")
    assert first["user"] == "" and first["clientId"] == "" and first["authOutcome"] == ""

    cases = [
        ({"ip": "10.0.0.1"}, lambda h, m, p, ip: ip == "10.0.0.1"),
        ({"ip": "10.0.0.9"}, lambda h, m, p, ip: False),
        ({"hostname": "b.test"}, lambda h, m, p, ip: h == "b.test"),
        ({"status": 404}, lambda h, m, p, ip: "404" in p),
        ({"status": 200}, lambda h, m, p, ip: "status" not in p),
        ({"errorsOnly": True}, lambda h, m, p, ip: "status" in p),
        ({"slowOnly": True}, lambda h, m, p, ip: p.startswith("/slow")),
        (
            {"method": "GET", "path": "/x"},
            lambda h, m, p, ip: m == "GET" and p.split("?")[0] == "/x",
        ),
        ({"method": "POST"}, lambda h, m, p, ip: m == "POST"),
        ({"path": "/x"}, lambda h, m, p, ip: p.split("?")[0] == "/x"),
        ({"text": "SECONDS"}, lambda h, m, p, ip: "seconds" in p),
        (
            {"hostname": "a.test", "ip": "10.0.0.2"},
            lambda h, m, p, ip: h == "a.test" and ip == "10.0.0.2",
        ),
    ]
    for criteria, pred in cases:
        page = await logs(lgql, criteria)
        assert _paths(page["items"]) == _expected(pred), criteria
        assert page["hasMore"] is False

    # The Redis indexes name exactly the batches that hold a matching record.
    redis = redis_client(redis_url)
    async with redis:
        by_id = {r["id"]: r for r in items}
        batch_of = {i: i.rsplit("/", 1)[0] for i in by_id}
        expected_sets = {
            layout.idx_ip("10.0.0.1"): {i for i, r in by_id.items() if r["clientIp"] == "10.0.0.1"},
            layout.idx_host("a.test"): {i for i, r in by_id.items() if r["hostname"] == "a.test"},
            layout.idx_status(500): {i for i, r in by_id.items() if r["status"] == 500},
            layout.IDX_ERRORS: {i for i, r in by_id.items() if r["status"] >= 400},
            layout.IDX_SLOW: {i for i, r in by_id.items() if r["path"] == "/slow"},
            layout.idx_path("GET", "/x"): {
                i for i, r in by_id.items() if (r["method"], r["path"]) == ("GET", "/x")
            },
            layout.IDX_ALL: set(by_id),
        }
        for key, members in expected_sets.items():
            batches = await stored_batches(redis, key)
            assert set(batches) == {batch_of[i] for i in members}, key
            assert members <= {r["id"] for records in batches.values() for r in records}, key
            assert 0 < await redis.pttl(key) <= 24 * 3600 * 1000
        assert not await redis.exists([layout.idx_ip("10.0.0.9"), layout.idx_status(201)])
        for batch in set(batch_of.values()):
            assert 0 < await redis.pttl(batch) <= 24 * 3600 * 1000

    # Time range (epoch seconds between two requests; ISO 8601 is accepted too).
    ts = [_ts(r) for r in items]
    page = await logs(lgql, {"since": str((ts[1] + ts[2]) / 2)})
    assert [r["id"] for r in page["items"]] == [r["id"] for r in items[:2]]
    page = await logs(lgql, {"until": str((ts[3] + ts[2]) / 2)})
    assert [r["id"] for r in page["items"]] == [r["id"] for r in items[3:]]
    page = await logs(lgql, {"since": "2000-01-01T00:00:00Z", "until": "2000-01-02T00:00:00"})
    assert page["items"] == []

    # Cursor pagination: pages of two, no gaps or repeats, same order.
    seen, after = [], None
    for _ in range(5):
        page = await logs(lgql, {}, limit=2, after=after)
        seen += [r["id"] for r in page["items"]]
        after = page["endCursor"]
        if not page["hasMore"]:
            break
    assert seen == [r["id"] for r in items]


async def test_user_and_client_indexes(logged, lgql, redis_url):
    """Records with an authenticated user and client_id (as the edge sets them) go through a real
    log-writer process (RequestLog.submit -> channel -> writer -> Redis) and are found by the
    requestLogs user and client filters and the idx:req:user / idx:req:client indexes."""
    settings = load_settings(environ={"REDIS_URL": redis_url}, env_file=None)
    request_log = RequestLog(settings, redis_url)
    now = time.time()

    def record(user: str, client_id: str, path: str, offset: float) -> RequestRecord:
        return RequestRecord(
            ts=now - offset,
            client_ip="192.0.2.7",
            hostname="c.test",
            method="GET",
            path=path,
            query="",
            status=200,
            bytes_in=0,
            bytes_out=10,
            duration_ms=1.5,
            upstream_ms=1.0,
            user_agent="ua",
            referer="",
            user=user,
            client_id=client_id,
            auth_outcome="allowed",
        )

    async with trio.open_nursery() as nursery:
        await nursery.start(request_log.run)
        assert request_log.writer_pid is not None
        request_log.submit(to_row(record("alice", "cli-1", "/1", 3)))
        request_log.submit(to_row(record("bob", "cli-1", "/2", 2)))
        request_log.submit(to_row(record("alice", "cli-2", "/3", 1)))
        with trio.fail_after(10):
            while request_log.written < 3:
                await trio.sleep(0.02)
        assert request_log.dropped == 0 and request_log.queued == 0
        nursery.cancel_scope.cancel()
    alice = await logs(lgql, {"user": "alice"})
    assert [r["path"] for r in alice["items"]] == ["/3", "/1"]
    assert {r["authOutcome"] for r in alice["items"]} == {"allowed"}
    assert {r["instance"] for r in alice["items"]} == {settings.instance}
    cli1 = await logs(lgql, {"clientId": "cli-1"})
    assert [r["path"] for r in cli1["items"]] == ["/2", "/1"]
    assert [r["user"] for r in cli1["items"]] == ["bob", "alice"]
    both = await logs(lgql, {"clientId": "cli-2", "user": "alice"})
    assert [r["path"] for r in both["items"]] == ["/3"]
    assert (await logs(lgql, {"user": "carol"}))["items"] == []
    assert (await logs(lgql, {"clientId": "cli-9"}))["items"] == []
    redis = redis_client(redis_url)
    async with redis:
        alice_batches = await stored_batches(redis, layout.idx_user("alice"))
        cli1_batches = await stored_batches(redis, layout.idx_client("cli-1"))
    for batches, field, value in (
        (alice_batches, "user", "alice"),
        (cli1_batches, "client_id", "cli-1"),
    ):
        assert batches and all(any(r[field] == value for r in rs) for rs in batches.values())
        assert sum(r[field] == value for rs in batches.values() for r in rs) == 2


async def test_stats_and_unique_visitors(logged, lgql, backend):
    for host in ("a.test", "b.test"):
        await lgql(CREATE_PROXY, {"input": {"hostname": host, "targetUrl": backend.url}})
    async with httpx.AsyncClient(timeout=10) as client:
        for i in range(60):
            # 40 distinct visitors on a.test (some twice), 10 on b.test of which 5 overlap.
            await send(client, logged, "a.test", "/", ip=f"10.1.0.{i % 40}")
        for i in range(10):
            await send(client, logged, "b.test", "/?status=503", ip=f"10.1.0.{35 + i}")
    await wait_for_logs(lgql, 70)
    stats_a = (await lgql(REQUEST_STATS, {"hostname": "a.test", "hours": 1}))["requestStats"]
    assert stats_a["requests"] == 60 and stats_a["errors"] == 0
    assert stats_a["uniqueVisitors"] == 40
    assert 0 < stats_a["p50Ms"] <= stats_a["p95Ms"] <= stats_a["p99Ms"]
    stats_b = (await lgql(REQUEST_STATS, {"hostname": "b.test"}))["requestStats"]
    assert (stats_b["requests"], stats_b["errors"], stats_b["uniqueVisitors"]) == (10, 10, 10)
    assert stats_b["hours"] == 24 and len(stats_b["hourly"]) == 24
    total = (await lgql(REQUEST_STATS, {}))["requestStats"]
    assert (total["requests"], total["errors"], total["uniqueVisitors"]) == (70, 10, 45)
    assert total["hostname"] is None


async def test_bad_input_gets_coded_errors(logged, lgql):
    bad = [
        ({"filter": {"status": 700}}, "status"),
        ({"filter": {"ip": "not-an-ip"}}, "filter.ip"),
        ({"filter": {"since": "yesterday"}}, "filter.since"),
        ({"filter": {"path": "no-slash"}}, "filter.path"),
        ({"limit": 0}, "limit"),
        ({"after": "garbage!"}, "cursor"),
    ]
    from tests.support.logs import REQUEST_LOGS

    for variables, words in bad:
        errors = await lgql.errors(REQUEST_LOGS, variables)
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", variables
        assert words in errors[0]["message"], errors
    errors = await lgql.errors(REQUEST_STATS, {"hours": 0})
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    user = GraphQLClient(logged.api_url, logged.token("user"))
    errors = await user.errors("{ applicationLogs { message } }")
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert (await user(REQUEST_STATS, {}))["requestStats"]["requests"] == 0


def test_masking_functions():
    assert mask_query("a=1&token=abc&Access_Token=x&code=c&page=2") == (
        "a=1&token=***&Access_Token=***&code=***&page=2"
    )
    assert mask_query("api-key=k&client_secret=s&sig=z&q=token") == (
        "api-key=***&client_secret=***&sig=***&q=token"
    )
    assert mask_url("https://u:pw@h.test/p?x=1&password=p#frag") == (
        "https://***@h.test/p?x=1&password=***#frag"
    )


async def test_secrets_are_masked_everywhere(logged, lgql, backend, redis_url):
    await lgql(CREATE_PROXY, {"input": {"hostname": "a.test", "targetUrl": backend.url}})
    secrets = ["SECRETBEARER1", "SECRETCOOKIE2", "SECRETQUERY3", "SECRETREFERER4", "SECRETPW5"]
    async with httpx.AsyncClient(timeout=10) as client:
        response = await send(
            client,
            logged,
            "a.test",
            f"/login?user=me&access_token={secrets[2]}&password={secrets[4]}",
            headers={
                "Authorization": f"Bearer {secrets[0]}",
                "Cookie": f"session={secrets[1]}",
                "Referer": f"https://other.test/cb?token={secrets[3]}&ok=1",
            },
        )
        assert response.status_code == 200
    [record] = await wait_for_logs(lgql, 1)
    assert record["query"] == "user=me&access_token=***&password=***"
    assert record["referer"] == "https://other.test/cb?token=***&ok=1"
    redis = redis_client(redis_url)
    async with redis:
        everything = await dump_everything(redis)
    assert "access_token=***" in everything
    page_text = str(await logs(lgql, {"text": "login"}))
    for secret in secrets:
        assert secret not in everything
        assert secret not in page_text
        assert secret not in logged.log()


def _ts(record: dict) -> float:
    return datetime.datetime.fromisoformat(record["timestamp"]).timestamp()

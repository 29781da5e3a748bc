"""/metrics in Prometheus text format, the dropped-record count in health, application logs over
GraphQL, and the `proxyd logs` CLI (list, stats, follow) against a real proxyd."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import trio

from tests.support.graphql import CREATE_PROXY
from tests.support.logs import redis_client, send, wait_for_logs


async def test_metrics_health_and_application_logs(proxyd, gql, backend, redis_url):
    await gql(CREATE_PROXY, {"input": {"hostname": "m.test", "targetUrl": backend.url}})
    redis = redis_client(redis_url)
    async with redis:
        # What the TLS capability stores; one certificate without an expiry gives no sample.
        await redis.set("cert:good", json.dumps({"expires_at": "2030-01-01T00:00:00Z"}))
        await redis.set("cert:unknown", json.dumps({"domains": ["x.test"]}))
    async with httpx.AsyncClient(timeout=10) as client:
        for path in ("/", "/", "/?status=404", "/?status=502"):
            await send(client, proxyd, "m.test", path)
        await wait_for_logs(gql, 4)
        response = await client.get(f"{proxyd.api_url}/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = response.text
        # Not served through the public listener (the `localhost` proxy reaches the same app).
        public = await send(client, proxyd, "localhost", "/metrics")
        assert public.status_code == 404
        health = (await client.get(f"{proxyd.api_url}/health")).json()
    lines = set(text.splitlines())
    assert 'proxyd_requests_total{proxy="m.test",status_class="2xx"} 2' in lines
    assert 'proxyd_requests_total{proxy="m.test",status_class="4xx"} 1' in lines
    assert 'proxyd_requests_total{proxy="m.test",status_class="5xx"} 1' in lines
    assert 'proxyd_request_duration_seconds_count{proxy="m.test"} 4' in lines
    assert 'proxyd_request_duration_seconds_bucket{proxy="m.test",le="+Inf"} 4' in lines
    assert 'proxyd_upstream_errors_total{proxy="m.test"} 1' in lines
    assert "# TYPE proxyd_upstream_timeouts_total counter" in lines
    assert "proxyd_active_requests 0" in lines and "proxyd_active_websockets 0" in lines
    assert "proxyd_log_records_dropped_total 0" in lines
    assert any(line.startswith("proxyd_event_consumer_lag{") for line in lines)
    assert 'proxyd_certificate_expiry_timestamp_seconds{cert="good"} 1893456000' in lines
    assert not any('cert="unknown"' in line for line in lines)
    for line in lines:
        assert line.startswith("#") or line.count(" ") >= 1, line
    assert health["log_records_dropped"] == 0
    data = await gql("{ health { logRecordsDropped } }")
    assert data["health"]["logRecordsDropped"] == 0

    entries = (
        await gql(
            '{ applicationLogs(component: "edge", limit: 50) { timestamp level component message fields } }'
        )
    )["applicationLogs"]
    assert any("m.test" in e["message"] for e in entries)
    assert all(e["component"].startswith("edge") for e in entries)
    warnings = (await gql('{ applicationLogs(level: "WARNING") { level } }'))["applicationLogs"]
    assert all(e["level"] in ("WARNING", "ERROR", "CRITICAL") for e in warnings)
    errors = await gql.errors('{ applicationLogs(level: "LOUD") { level } }')
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    # Structured stderr lines: time, level, component, message.
    assert any(" INFO edge.manager: proxy m.test" in line for line in proxyd.log().splitlines())


async def test_logs_cli_list_stats_and_follow(proxyd, gql, backend, admin_token):
    await gql(CREATE_PROXY, {"input": {"hostname": "cli.test", "targetUrl": backend.url}})
    async with httpx.AsyncClient(timeout=10) as client:
        await send(client, proxyd, "cli.test", "/ok")
        await send(client, proxyd, "cli.test", "/missing?status=404")
    await wait_for_logs(gql, 2)
    env = {"PROXYD_TOKEN": admin_token, "PROXYD_API_URL": proxyd.api_url}

    table = proxyd.cli("logs", "--host", "cli.test", env=env)
    assert table.returncode == 0, table.stderr
    assert "STATUS" in table.stdout and "/missing?status=404" in table.stdout
    assert "\x1b[" not in table.stdout  # no colours when stdout is not a terminal
    only = proxyd.cli("logs", "--status", "404", "--hours", "1", "--json", env=env)
    items = json.loads(only.stdout)["requestLogs"]["items"]
    assert [r["path"] for r in items] == ["/missing"]
    errors = proxyd.cli("logs", "--errors", "--ip", "127.0.0.1", "--json", env=env)
    assert [r["status"] for r in json.loads(errors.stdout)["requestLogs"]["items"]] == [404]
    stats = proxyd.cli("logs", "stats", "--host", "cli.test", env=env)
    assert stats.returncode == 0 and "requests:" in stats.stdout and "2" in stats.stdout
    bad = proxyd.cli("logs", "--status", "999", env=env)
    assert bad.returncode == 2 and "status" in bad.stderr
    bad_ip = proxyd.cli("logs", "--ip", "nope", env=env)
    assert bad_ip.returncode == 1 and "BAD_USER_INPUT" in bad_ip.stderr

    follower = await trio.lowlevel.open_process(
        [sys.executable, "-m", "proxyd", "logs", "follow", "--host", "cli.test", "--json"],
        env={**proxyd.env, **env},
        stdout=subprocess.PIPE,
    )
    try:
        buffer = b""
        async with httpx.AsyncClient(timeout=10) as client:
            with trio.fail_after(20):
                while b"\n" not in buffer:
                    await send(client, proxyd, "cli.test", "/live")
                    with trio.move_on_after(0.5):
                        buffer += await follower.stdout.receive_some()
        record = json.loads(buffer.split(b"\n", 1)[0])
        assert record["path"] == "/live" and record["hostname"] == "cli.test"
    finally:
        follower.terminate()
        await follower.wait()

"""When Redis hangs or is down (issue 10, finding 11): /health answers within a second with 503,
every GraphQL operation answers in bounded time with SERVICE_UNAVAILABLE and one sentence, the CLI
prints it and exits non-zero, proxying goes on, and everything recovers by itself.

Each test runs its own redis-server (append-only, so a restart keeps the data), never the
session one, because it is stopped and killed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest
import trio

from tests.support.graphql import CREATE_PROXY, GraphQLClient
from tests.support.processes import RedisServer

QUERY = "{ proxies { hostname } }"


class OwnRedis(RedisServer):
    """A redis-server on a fixed port that can be paused, killed and started again."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, appendonly=True)

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.resume()
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path / "own-redis")
    yield server
    server.stop()


async def timed(coro) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await coro
    return response, time.monotonic() - started


async def get_health(api_url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(api_url + "/health")


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    errors = response.json()["errors"]
    assert len(errors) == 1 and errors[0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert errors[0]["message"].startswith("Redis is not answering")


async def check_outage(proc, gql: GraphQLClient, backend_host: str) -> None:
    """What users see while Redis is out: fast, coded answers; proxying goes on."""
    health, seconds = await timed(get_health(proc.api_url))
    assert seconds < 1.0 and health.status_code == 503
    assert health.json()["redis"] == "unreachable"
    for query, variables in (
        (QUERY, None),
        (CREATE_PROXY, {"input": {"hostname": "new.test", "targetUrl": "http://127.0.0.1:9"}}),
    ):
        response, seconds = await timed(gql.raw(query, variables))
        assert seconds < 5, seconds  # GRAPHQL_TIMEOUT is 3 s
        assert_unavailable(response)
    result = await trio.to_thread.run_sync(lambda: proc.cli("proxy", "list", timeout=20))
    assert result.returncode != 0
    assert "Redis is not answering" in result.stderr and "SERVICE_UNAVAILABLE" in result.stderr
    async with httpx.AsyncClient(base_url=proc.http_url, timeout=10) as http:
        r = await http.get("/echo", headers={"Host": backend_host})
        assert r.status_code == 200


async def check_recovered(proc, gql: GraphQLClient) -> None:
    with trio.fail_after(15):
        while (await get_health(proc.api_url)).status_code != 200:
            await trio.sleep(0.2)
        while "errors" in (response := await gql.raw(QUERY)).json():
            await trio.sleep(0.2)
    assert "app.test" in [p["hostname"] for p in response.json()["data"]["proxies"]]
    result = await trio.to_thread.run_sync(lambda: proc.cli("proxy", "list"))
    assert result.returncode == 0 and "app.test" in result.stdout


async def start_with(start_proxyd, own_redis: OwnRedis, backend):
    proc = start_proxyd(redis=own_redis.url)
    token = proc.token("admin")
    gql = GraphQLClient(proc.api_url, token)
    await gql(CREATE_PROXY, {"input": {"hostname": "app.test", "targetUrl": backend.url}})
    async with httpx.AsyncClient(base_url=proc.http_url, timeout=10) as http:
        with trio.fail_after(10):
            while (await http.get("/echo", headers={"Host": "app.test"})).status_code != 200:
                await trio.sleep(0.05)
    proc.env["PROXYD_TOKEN"] = token  # for the CLI
    return proc, gql


async def check_oauth_outage(proc) -> None:
    """The authorization server's endpoints that need Redis answer 503 temporarily_unavailable
    in bounded time (JSON, one sentence), instead of holding the client."""
    registration = {
        "redirect_uris": ["http://127.0.0.1:7777/callback"],
        "client_name": "while redis hangs",
        "token_endpoint_auth_method": "none",
    }
    async with httpx.AsyncClient(base_url=proc.api_url, timeout=20) as http:
        for method, path, kwargs in (
            ("POST", "/register", {"json": registration}),
            (
                "POST",
                "/token",
                {
                    "data": {
                        "grant_type": "refresh_token",
                        "refresh_token": "x" * 43,
                        "client_id": "nobody",
                    }
                },
            ),
        ):
            response, seconds = await timed(http.request(method, path, **kwargs))
            assert seconds < 5, (path, seconds)
            assert response.status_code == 503, (path, response.text)
            body = response.json()
            assert body["error"] == "temporarily_unavailable", body
            assert body["error_description"].startswith("Redis is not answering"), body


async def test_hung_redis_gives_fast_coded_answers_and_recovers(start_proxyd, own_redis, backend):
    proc, gql = await start_with(start_proxyd, own_redis, backend)
    own_redis.pause()
    try:
        await check_outage(proc, gql, "app.test")
        await check_oauth_outage(proc)
    finally:
        own_redis.resume()
    await check_recovered(proc, gql)


async def test_redis_down_gives_coded_answers_never_html_and_recovers(
    start_proxyd, own_redis, backend
):
    proc, gql = await start_with(start_proxyd, own_redis, backend)
    own_redis.kill()
    await check_outage(proc, gql, "app.test")
    # The OAuth routes of the same app answer JSON with one sentence too, never an HTML 500.
    async with httpx.AsyncClient(timeout=10) as http:
        jwks = await http.get(proc.api_url + "/jwks")
    assert jwks.status_code == 503 and jwks.json()["error"] == "temporarily_unavailable"
    assert jwks.json()["error_description"].startswith("Redis is not answering")
    own_redis.start()
    await check_recovered(proc, gql)

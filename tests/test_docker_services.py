"""Docker services against a real dockerd: create with limits, auto-proxy, stop/start with the
503 sentence, logs (tail and live follow), stats, delete with deleteProxy, and the interfaces
checks rely on (createService, service { status }, serviceLogs, DOCKER_HOST)."""

from __future__ import annotations

import json

import httpx
import pytest
import trio

from tests.support.docker import INDEX_HTML, TEST_IMAGE
from tests.support.graphql import GraphQLClient

CREATE = """
mutation($input: CreateServiceInput!) {
  createService(input: $input) {
    name status containerName memoryLimit proxyHostname targetUrl
    ports { name containerPort hostPort bindAddress publishedBy }
  }
}
"""


@pytest.fixture
def docker_proxyd(start_proxyd, docker_daemon):
    return start_proxyd(DOCKER_HOST=docker_daemon.host, DOCKER_STOP_TIMEOUT="1")


@pytest.fixture
def dgql(docker_proxyd) -> GraphQLClient:
    return GraphQLClient(
        docker_proxyd.api_url, docker_proxyd.token("admin"), docker_proxyd.http_url
    )


async def get_page(proxyd, host: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(f"{proxyd.http_url}/", headers={"Host": host})


async def wait_for(predicate, timeout: float = 10.0, interval: float = 0.1):
    with trio.fail_after(timeout):
        while True:
            result = await predicate()
            if result:
                return result
            await trio.sleep(interval)


async def test_service_lifecycle_through_its_auto_proxy(docker_proxyd, dgql, docker_daemon):
    query = (
        'mutation { createService(input: {name: "web", image: "' + TEST_IMAGE + '", '
        'command: "/bin/busybox httpd -f -v -p 8080 -h /www", ports: [{containerPort: 8080}], '
        'memoryLimit: "64m", autoProxy: true, hostname: "web.localhost"}) { name status } }'
    )
    data = await dgql(query)
    assert data["createService"] == {"name": "web", "status": "running"}

    inspect = json.loads(docker_daemon.cli("inspect", "proxyd-web"))[0]
    assert inspect["HostConfig"]["Memory"] == 64 * 1024 * 1024
    assert inspect["Config"]["Labels"]["proxyd.service"] == "web"
    assert inspect["Config"]["Labels"]["proxyd.managed"] == "true"
    binding = inspect["HostConfig"]["PortBindings"]["8080/tcp"][0]
    assert binding["HostIp"] == "127.0.0.1"

    response = await get_page(docker_proxyd, "web.localhost")
    assert response.status_code == 200
    assert response.text == INDEX_HTML

    # logs: busybox httpd -v logs each request
    async def logged():
        data = await dgql(
            'query { service(name: "web") { status } serviceLogs(name: "web", tail: 20) }'
        )
        return data if any("response:200" in line for line in data["serviceLogs"]) else None

    data = await wait_for(logged)
    assert data["service"]["status"] == "running"

    data = await dgql('mutation { stopService(name: "web") { name status } }')
    assert data["stopService"]["status"] == "exited"
    response = await get_page(docker_proxyd, "web.localhost")
    assert response.status_code == 503
    assert "service web is stopped" in response.text

    data = await dgql('mutation { startService(name: "web") { status } }')
    assert data["startService"]["status"] == "running"
    response = await get_page(docker_proxyd, "web.localhost")
    assert response.status_code == 200

    data = await dgql('mutation { deleteService(name: "web", deleteProxy: true) }')
    assert data["deleteService"] is True
    assert await dgql('query { proxy(hostname: "web.localhost") { hostname } }') == {"proxy": None}
    assert docker_daemon.cli("ps", "-aq", "--filter", "name=proxyd-web").strip() == ""
    assert (await dgql("query { ports { port } }"))["ports"] == []

"""Docker services against a real dockerd: create with limits, auto-proxy, stop/start with the
503 sentence, logs (tail and live follow), stats, delete with deleteProxy, and the interfaces
checks rely on (createService, service { status }, serviceLogs, DOCKER_HOST)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from tests.support.docker import INDEX_HTML, TEST_IMAGE
from tests.support.docker import create_service_query as create_query
from tests.support.graphql import CREATE_PROXY, GraphQLClient

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

    # A `service` route target resolves the Docker service too.
    await dgql(
        'mutation { createRoute(input: {routeId: "to-web", pathPattern: "/index.html", '
        'targetType: "service", targetValue: "web", priority: 90}) { routeId } }'
    )
    await dgql(
        CREATE_PROXY, {"input": {"hostname": "front.test", "targetUrl": "http://127.0.0.1:9"}}
    )
    async with httpx.AsyncClient(timeout=10) as client:
        routed = await client.get(
            f"{docker_proxyd.http_url}/index.html", headers={"Host": "front.test"}
        )
    assert routed.status_code == 200 and routed.text == INDEX_HTML
    await dgql('mutation { deleteRoute(routeId: "to-web") }')

    # Status follows Docker's events: a stop behind proxyd's back shows, with the exit code.
    docker_daemon.cli("stop", "-t", "1", "proxyd-web")

    async def exited():
        data = await dgql('query { service(name: "web") { status exitCode } }')
        return data["service"] if data["service"]["status"] == "exited" else None

    assert (await wait_for(exited))["exitCode"] == 137
    assert inspect["HostConfig"]["PidsLimit"] == 4096
    assert (await get_page(docker_proxyd, "web.localhost")).status_code == 503
    await dgql('mutation { restartService(name: "web") { status } }')

    data = await dgql('mutation { deleteService(name: "web", deleteProxy: true) }')
    assert data["deleteService"] is True
    assert await dgql('query { proxy(hostname: "web.localhost") { hostname } }') == {"proxy": None}
    assert docker_daemon.cli("ps", "-aq", "--filter", "name=proxyd-web").strip() == ""
    assert (await dgql("query { ports { port } }"))["ports"] == []


async def _ws_subscribe(ws, token: str, query: str, variables: dict) -> None:
    await ws.send_message(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    )
    assert json.loads(await ws.get_message())["type"] == "connection_ack"
    await ws.send_message(
        json.dumps(
            {"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}}
        )
    )


async def test_logs_follow_live_and_stats(docker_proxyd, dgql):
    talker = 'i=0; while true; do echo "line $i"; i=$((i+1)); /bin/busybox sleep 0.2; done'
    await dgql(
        create_query("talker"),
        {
            "input": {
                "name": "talker",
                "image": TEST_IMAGE,
                "command": ["/bin/sh", "-c", talker],
                "memoryLimit": "32m",
            }
        },
    )
    url = f"ws://127.0.0.1:{docker_proxyd.api_port}/graphql"
    follow = "subscription($name: String!) { serviceLogs(name: $name, tail: 1) }"
    async with open_websocket_url(url, subprotocols=["graphql-transport-ws"]) as ws:
        await _ws_subscribe(ws, dgql.token, follow, {"name": "talker"})
        seen = []
        with trio.fail_after(10):
            while len(seen) < 5:
                message = json.loads(await ws.get_message())
                assert message["type"] == "next", message
                seen.append(message["payload"]["data"]["serviceLogs"])
    numbers = [int(line.split()[1]) for line in seen]
    assert numbers == sorted(numbers) and len(set(numbers)) == 5  # new lines, live, in order

    data = await dgql(
        'query { serviceStats(name: "talker") { cpuPercent memoryUsage memoryLimit '
        "networkRx blockRead pids } }"
    )
    stats = data["serviceStats"]
    assert stats["memoryLimit"] == 32 * 1024 * 1024
    assert 0 < stats["memoryUsage"] < stats["memoryLimit"]
    assert stats["cpuPercent"] >= 0 and stats["pids"] >= 1
    await dgql('mutation { deleteService(name: "talker") }')


async def test_missing_image_is_named_and_nothing_is_left(dgql):
    errors = await dgql.errors(
        create_query("ghost"), {"input": {"name": "ghost", "image": "nosuch/image:9"}}
    )
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "nosuch/image:9" in errors[0]["message"]
    assert (await dgql('query { service(name: "ghost") { name } }'))["service"] is None


async def test_mutations_need_admin(docker_proxyd, dgql):
    user = docker_proxyd.token("user")
    errors = await dgql.errors(
        create_query("nope"), {"input": {"name": "nope", "image": TEST_IMAGE}}, token=user
    )
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    data = await dgql('query { services(type: "internal") { name type status } }', token=user)
    assert data["services"] == [{"name": "api", "type": "internal", "status": "running"}]


async def test_docker_unreachable_is_a_coded_error_and_proxying_goes_on(
    start_proxyd, tmp_path, backend
):
    missing = tmp_path / "no-docker.sock"
    proxyd = start_proxyd("nodocker", DOCKER_HOST=f"unix://{missing}")
    gql = GraphQLClient(proxyd.api_url, proxyd.token("admin"), proxyd.http_url)
    errors = await gql.errors(create_query("web"), {"input": {"name": "web", "image": TEST_IMAGE}})
    assert errors[0]["extensions"]["code"] == "DOCKER_UNAVAILABLE"
    assert errors[0]["message"].startswith(f"Docker is not reachable at unix://{missing}")
    # Everything else works: a proxy to a plain backend serves.
    await gql(CREATE_PROXY, {"input": {"hostname": "plain.test", "targetUrl": backend.url}})
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{proxyd.http_url}/", headers={"Host": "plain.test"})
    assert response.status_code == 200
    assert proxyd.process.poll() is None


async def test_reconcile_shows_a_removed_container_as_missing_and_cleanup_removes_orphans(
    start_proxyd, docker_daemon
):
    proxyd = start_proxyd("r1", DOCKER_HOST=docker_daemon.host, DOCKER_STOP_TIMEOUT="1")
    gql = GraphQLClient(proxyd.api_url, proxyd.token("admin"))
    await gql(create_query("keep"), {"input": {"name": "keep", "image": TEST_IMAGE}})
    proxyd.stop()
    docker_daemon.cli("rm", "-f", "proxyd-keep")
    docker_daemon.cli(
        "run",
        "-d",
        "--name",
        "proxyd-stray",
        "--label",
        "proxyd.managed=true",
        "--label",
        "proxyd.service=stray",
        TEST_IMAGE,
    )
    # Someone else's container wearing proxyd's labels: reported, but never removed.
    docker_daemon.cli(
        "run",
        "-d",
        "--name",
        "impostor",
        "--label",
        "proxyd.managed=true",
        "--label",
        "proxyd.service=keep",
        TEST_IMAGE,
    )
    proxyd.start()
    gql = GraphQLClient(proxyd.api_url, proxyd.token("admin"))

    async def status():
        data = await gql('query { service(name: "keep") { status } }')
        return data["service"]["status"] if data["service"]["status"] != "unknown" else None

    assert await wait_for(status) == "missing"
    assert "missing" in proxyd.log() and "stray" in proxyd.log()
    assert docker_daemon.cli("ps", "-aq", "--filter", "name=proxyd-keep").strip() == ""

    data = await gql("mutation { cleanupServices }")
    assert data["cleanupServices"] == ["proxyd-stray"]
    assert docker_daemon.cli("ps", "-aq", "--filter", "name=proxyd-stray").strip() == ""
    assert docker_daemon.cli("ps", "-q", "--filter", "name=impostor").strip() != ""
    # The impostor does not make the missing service look alive.
    assert (await gql('query { service(name: "keep") { status } }'))["service"]["status"] == (
        "missing"
    )
    docker_daemon.cli("rm", "-f", "impostor")
    await gql('mutation { deleteService(name: "keep") }')


async def test_hostile_service_input_is_refused_before_docker_is_asked(start_proxyd, tmp_path):
    proxyd = start_proxyd("strict", DOCKER_HOST=f"unix://{tmp_path}/none.sock")
    gql = GraphQLClient(proxyd.api_url, proxyd.token("admin"))
    base = {"name": "svc", "image": TEST_IMAGE}
    cases = [
        ({"name": "../etc"}, "service name"),
        ({"name": "Upper"}, "service name"),
        ({"labels": {"proxyd.managed": "false"}}, "reserved for proxyd"),
        ({"environment": {"A=B": "x"}}, "environment"),
        ({"memoryLimit": "1t"}, "memoryLimit"),
        ({"memoryLimit": "1k"}, "at least 6m"),
        ({"restartPolicy": "sometimes"}, "restartPolicy"),
        ({"networks": ["host"]}, "not allowed"),
        ({"labels": {"a": 1}}, "string values"),
        ({"image": "bad image;rm"}, "not a valid image"),
        ({"image": None}, "exactly one of image or dockerfilePath"),
        ({"ports": [{"containerPort": 8080, "bindAddress": "10.1.2.3"}]}, "bindAddress"),
        ({"ports": [{"containerPort": 8080, "protocol": "sctp"}]}, "protocol"),
        ({"ports": [{"containerPort": 70000}]}, "containerPort"),
        ({"ports": [{"containerPort": 8080, "token": "short"}]}, "at least 16"),
        (
            {"ports": [{"containerPort": 53, "protocol": "udp", "token": "x" * 20}]},
            "must be tcp",
        ),
        (
            {"ports": [{"containerPort": 1, "name": "a"}, {"containerPort": 2, "name": "a"}]},
            "unique",
        ),
    ]
    for change, words in cases:
        errors = await gql.errors(create_query("svc"), {"input": {**base, **change}})
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", (change, errors)
        assert words in errors[0]["message"], (change, errors)


async def test_build_from_a_dockerfile_and_update_recreates(dgql, docker_daemon, tmp_path):
    context = tmp_path / "ctx"
    (context / "www").mkdir(parents=True)
    (context / "www" / "index.html").write_text("built here\n")
    (context / "busybox").write_bytes(Path("/bin/busybox").read_bytes())
    (context / "busybox").chmod(0o755)
    (context / "Dockerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n"
        'CMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n'
    )
    data = await dgql(
        create_query("built", "status image dockerfilePath targetUrl"),
        {
            "input": {
                "name": "built",
                "dockerfilePath": str(context / "Dockerfile"),
                "ports": [{"containerPort": 8080}],
            }
        },
    )
    assert data["createService"]["status"] == "running"
    async with httpx.AsyncClient(timeout=10) as client:
        page = await client.get(data["createService"]["targetUrl"] + "/")
    assert page.text == "built here\n"

    data = await dgql(
        'mutation { updateService(name: "built", input: {memoryLimit: "40m"}) '
        "{ status memoryLimit notice } }"
    )
    assert data["updateService"]["status"] == "running"
    assert "restarted" in data["updateService"]["notice"]
    inspect = json.loads(docker_daemon.cli("inspect", "proxyd-built"))[0]
    assert inspect["HostConfig"]["Memory"] == 40 * 1024 * 1024
    await dgql('mutation { deleteService(name: "built") }')


async def test_status_subscription_and_all_service_types(docker_proxyd, dgql, docker_daemon):
    await dgql(create_query("st"), {"input": {"name": "st", "image": TEST_IMAGE}})
    inspect = json.loads(docker_daemon.cli("inspect", "proxyd-st"))[0]
    assert inspect["HostConfig"]["Memory"] == 512 * 1024 * 1024  # DOCKER_DEFAULT_MEMORY
    await dgql(
        'mutation { registerExternalService(input: {serviceName: "ext", '
        'targetUrl: "http://127.0.0.1:9"}) { serviceName } }'
    )
    errors = await dgql.errors(create_query("ext"), {"input": {"name": "ext", "image": TEST_IMAGE}})
    assert errors[0]["extensions"]["code"] == "CONFLICT"
    data = await dgql("query { services { name type status } }")
    assert data["services"] == [
        {"name": "st", "type": "docker", "status": "running"},
        {"name": "ext", "type": "external", "status": "registered"},
        {"name": "api", "type": "internal", "status": "running"},
    ]
    url = f"ws://127.0.0.1:{docker_proxyd.api_port}/graphql"
    watch = 'subscription { serviceStatus(name: "st") { name status exitCode } }'
    async with open_websocket_url(url, subprotocols=["graphql-transport-ws"]) as ws:
        await _ws_subscribe(ws, dgql.token, watch, {})
        await trio.sleep(0.5)  # let the subscription start listening
        await trio.to_thread.run_sync(docker_daemon.cli, "kill", "proxyd-st")
        with trio.fail_after(10):
            while True:
                message = json.loads(await ws.get_message())
                status = message["payload"]["data"]["serviceStatus"]
                if status["status"] == "exited":
                    break
    assert status == {"name": "st", "status": "exited", "exitCode": 137}
    await dgql('mutation { deleteService(name: "st") }')


async def test_docker_that_comes_later_is_picked_up(start_proxyd, docker_daemon, tmp_path):
    link = tmp_path / "later.sock"
    proxyd = start_proxyd("later", DOCKER_HOST=f"unix://{link}", DOCKER_STOP_TIMEOUT="1")
    gql = GraphQLClient(proxyd.api_url, proxyd.token("admin"))
    create = (create_query("late"), {"input": {"name": "late", "image": TEST_IMAGE}})
    errors = await gql.errors(*create)
    assert errors[0]["extensions"]["code"] == "DOCKER_UNAVAILABLE"

    link.symlink_to(docker_daemon.socket)  # Docker appears at DOCKER_HOST
    data = await gql(*create)
    assert data["createService"]["status"] == "running"

    async def follows_events():  # the background loop connected: stops show up live
        return f"(API 1.41) at unix://{link}" in proxyd.log()

    await wait_for(follows_events)
    docker_daemon.cli("kill", "proxyd-late")

    async def exited():
        status = (await gql('query { service(name: "late") { status } }'))["service"]["status"]
        return status == "exited"

    await wait_for(exited, timeout=20)
    await gql('mutation { deleteService(name: "late") }')


async def test_a_failing_build_says_why(dgql, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY nothing-here /x\n")
    errors = await dgql.errors(
        create_query("broken"),
        {"input": {"name": "broken", "dockerfilePath": str(tmp_path / "Dockerfile")}},
    )
    assert errors[0]["extensions"]["code"] == "DOCKER_ERROR"
    assert errors[0]["message"].startswith("the image build failed:")
    assert "nothing-here" in errors[0]["message"]
    assert (await dgql('query { service(name: "broken") { name } }'))["service"] is None

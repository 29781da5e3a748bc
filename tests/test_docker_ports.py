"""Host ports for Docker services against a real dockerd: atomic allocation across two proxyd
processes, ranges and restricted ports, a port something else listens on, release on delete,
queries, ports added to and removed from a running service, and tokened ports that proxyd
publishes and guards."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
import trio

from tests.support.docker import INDEX_HTML, TEST_IMAGE
from tests.support.docker import create_service_query as create_query
from tests.support.graphql import GraphQLClient
from tests.support.processes import free_port

FIELDS = "name status ports { name containerPort hostPort bindAddress publishedBy requireToken }"


@pytest.fixture
def pair(start_proxyd, docker_daemon):
    """Two proxyd processes on one Redis and one Docker."""
    procs = [
        start_proxyd(name, DOCKER_HOST=docker_daemon.host, DOCKER_STOP_TIMEOUT="1")
        for name in ("a", "b")
    ]
    return [GraphQLClient(p.api_url, p.token("admin"), p.http_url) for p in procs], procs


def service_input(name: str, **port) -> dict:
    return {"name": name, "image": TEST_IMAGE, "ports": [{"containerPort": 8080, **port}]}


async def test_two_processes_cannot_both_take_one_port(pair, docker_daemon):
    (a, b), _ = pair
    port = free_port()
    results: dict[str, object] = {}

    async def create(client, name):
        response = await client.raw(
            create_query(name, FIELDS), {"input": service_input(name, hostPort=port)}
        )
        results[name] = response.json()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(create, a, "first")
        nursery.start_soon(create, b, "second")
    ok = [n for n, r in results.items() if "errors" not in r]
    failed = [r for r in results.values() if "errors" in r]
    assert len(ok) == 1 and len(failed) == 1, results
    error = failed[0]["errors"][0]
    assert error["extensions"]["code"] == "CONFLICT"
    assert f"port {port}" in error["message"]
    data = await a("query { ports { port serviceName portName } }")
    assert data["ports"] == [{"port": port, "serviceName": ok[0], "portName": "http"}]
    # The loser left nothing behind: no record, no container.
    loser = "second" if ok[0] == "first" else "first"
    assert (await a(f'query {{ service(name: "{loser}") {{ name }} }}'))["service"] is None
    assert docker_daemon.cli("ps", "-aq", "--filter", f"name=proxyd-{loser}").strip() == ""

    # Two concurrent creates without a host port get different ports from the range.
    async def auto(client, name):
        data = await client(create_query(name, FIELDS), {"input": service_input(name)})
        results[name] = data["createService"]["ports"][0]["hostPort"]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(auto, a, "auto1")
        nursery.start_soon(auto, b, "auto2")
    assert results["auto1"] != results["auto2"]
    assert all(11000 <= results[n] <= 65535 for n in ("auto1", "auto2"))

    # Release on delete.
    for name in (ok[0], "auto1", "auto2"):
        await a(f'mutation {{ deleteService(name: "{name}") }}')
    assert (await a("query { ports { port } }"))["ports"] == []


async def test_restricted_out_of_range_and_busy_host_ports_are_refused(pair):
    (a, _), _ = pair
    for port, reason in ((22, "restricted"), (8081, "outside the service port range")):
        errors = await a.errors(create_query("x"), {"input": service_input("x", hostPort=port)})
        assert reason in errors[0]["message"]
        assert errors[0]["extensions"]["code"] == "CONFLICT"

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        errors = await a.errors(create_query("x"), {"input": service_input("x", hostPort=port)})
        assert "something else on this host already uses tcp port" in errors[0]["message"]
        check = await a(f"query {{ checkPort(port: {port}) {{ available reason }} }}")
        assert check["checkPort"]["available"] is False
        assert "already uses" in check["checkPort"]["reason"]
    check = await a(
        f'query {{ checkPort(port: {port}, bindAddress: "127.0.0.1") {{ available }} }}'
    )
    assert check["checkPort"]["available"] is True
    assert (await a("query { ports { port } }"))["ports"] == []


async def test_ports_added_and_removed_recreate_the_container(pair, docker_daemon):
    (a, _), _ = pair
    await a(create_query("multi", FIELDS), {"input": service_input("multi")})
    extra = free_port()
    data = await a(
        'mutation($p: Int!) { addServicePort(name: "multi", input: '
        '{name: "admin", containerPort: 9090, hostPort: $p}) { status notice ports { name hostPort } } }',
        {"p": extra},
    )
    result = data["addServicePort"]
    assert "restarted" in result["notice"]
    assert result["status"] == "running"
    assert {p["name"]: p["hostPort"] for p in result["ports"]}["admin"] == extra
    inspect = json.loads(docker_daemon.cli("inspect", "proxyd-multi"))[0]
    assert inspect["HostConfig"]["PortBindings"]["9090/tcp"][0]["HostPort"] == str(extra)
    owners = (await a("query { ports { port serviceName portName } }"))["ports"]
    assert {"port": extra, "serviceName": "multi", "portName": "admin"} in owners
    ranges = (await a("query { availablePortRanges { start end } }"))["availablePortRanges"]
    assert not any(r["start"] <= extra <= r["end"] for r in ranges)

    moved = free_port()
    data = await a(
        'mutation($p: Int!) { updateServicePort(name: "multi", portName: "admin", '
        "input: {hostPort: $p}) { notice ports { name hostPort } } }",
        {"p": moved},
    )
    assert {p["name"]: p["hostPort"] for p in data["updateServicePort"]["ports"]}["admin"] == moved
    owners = [o["port"] for o in (await a("query { ports { port } }"))["ports"]]
    assert moved in owners and extra not in owners  # the old port was released
    inspect = json.loads(docker_daemon.cli("inspect", "proxyd-multi"))[0]
    assert inspect["HostConfig"]["PortBindings"]["9090/tcp"][0]["HostPort"] == str(moved)
    extra = moved

    # Only the bind address changes: the port stays, its allocation follows.
    await a(
        'mutation { updateServicePort(name: "multi", portName: "admin", '
        'input: {bindAddress: "0.0.0.0"}) { notice } }'
    )
    owners = (await a("query { ports { port bindAddress } }"))["ports"]
    assert {"port": moved, "bindAddress": "0.0.0.0"} in owners
    inspect = json.loads(docker_daemon.cli("inspect", "proxyd-multi"))[0]
    assert inspect["HostConfig"]["PortBindings"]["9090/tcp"][0] == {
        "HostIp": "0.0.0.0",
        "HostPort": str(moved),
    }

    data = await a(
        'mutation { removeServicePort(name: "multi", portName: "admin") { ports { name } } }'
    )
    assert [p["name"] for p in data["removeServicePort"]["ports"]] == ["http"]
    owners = (await a("query { ports { port } }"))["ports"]
    assert extra not in [o["port"] for o in owners]
    await a('mutation { deleteService(name: "multi") }')


async def test_a_tokened_port_is_published_by_proxyd_and_needs_the_token(pair, docker_daemon):
    (a, b), procs = pair
    port = free_port()
    token = "port-token-0123456789"
    data = await a(
        create_query("guarded", FIELDS),
        {"input": service_input("guarded", hostPort=port, token=token)},
    )
    assert data["createService"]["ports"][0]["publishedBy"] == "proxyd"
    assert data["createService"]["ports"][0]["requireToken"] is True
    inspect = json.loads(docker_daemon.cli("inspect", "proxyd-guarded"))[0]
    assert not inspect["HostConfig"]["PortBindings"]  # Docker publishes nothing

    url = f"http://127.0.0.1:{port}/"
    async with httpx.AsyncClient(timeout=5) as client:
        with trio.fail_after(15):  # one of the two processes serves the gateway
            while True:
                try:
                    response = await client.get(url)
                    break
                except httpx.TransportError:
                    await trio.sleep(0.1)
        assert response.status_code == 401
        assert "access token" in response.text
        wrong = await client.get(url, headers={"Authorization": "Bearer wrong-token-0123456789"})
        assert wrong.status_code == 401
        query_param = await client.get(url, params={"token": token})
        assert query_param.status_code == 401  # only the Authorization header counts
        good = await client.get(url, headers={"Authorization": f"Bearer {token}"})
        assert good.status_code == 200 and good.text == INDEX_HTML

        await a('mutation { stopService(name: "guarded") { status } }')
        stopped = await client.get(url, headers={"Authorization": f"Bearer {token}"})
        assert stopped.status_code == 503 and "service guarded is" in stopped.text
    assert all(token not in p.log() for p in procs)

    # Both processes want the port; when the one serving it stops, the other takes over.
    await b('mutation { startService(name: "guarded") { status } }')
    served_by_a = "token gateway listening on port" in procs[0].log()
    procs[0 if served_by_a else 1].stop()
    survivor = b if served_by_a else a
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=5) as client:
        with trio.fail_after(20):
            while True:
                try:
                    response = await client.get(url, headers=auth)
                    if response.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await trio.sleep(0.2)
    assert response.text == INDEX_HTML
    await survivor('mutation { deleteService(name: "guarded") }')
    with pytest.raises(httpx.TransportError):
        with trio.fail_after(10):
            while True:  # the gateway goes away with the service
                async with httpx.AsyncClient(timeout=2) as client:
                    await client.get(url)
                await trio.sleep(0.1)

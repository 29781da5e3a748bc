"""MCP tools that change an existing Docker service (update_service, add_service_port,
update_service_port, remove_service_port) against a real dockerd and a real proxyd, driven by the
official MCP SDK client with tokens from `proxyd token issue --audience <the /mcp URL>`: a port
added to a running service answers on its host port, moves when updated and is gone when
removed; update_service's new memory limit and environment show in get_service and in Docker;
errors carry GraphQL's codes and sentences; a user-scope token is refused; with Docker
unreachable the tools answer DOCKER_UNAVAILABLE.
"""

from __future__ import annotations

import json
import socket

import httpx
import pytest
import trio

from tests.support.docker import INDEX_HTML, TEST_IMAGE
from tests.support.docker import create_service_query as create_query
from tests.support.graphql import GraphQLClient
from tests.support.mcp_client import call, error_of, mcp_session, mcp_token
from tests.support.processes import free_port

CHANGE_TOOLS = ("update_service", "add_service_port", "update_service_port", "remove_service_port")
# Two busybox web servers in one container: 8080 (the first port) and 9090 (the added one).
TWO_HTTPDS = "/bin/busybox httpd -p 9090 -h /www && exec /bin/busybox httpd -f -p 8080 -h /www"


@pytest.fixture
def docker_proxyd(start_proxyd, docker_daemon):
    return start_proxyd(DOCKER_HOST=docker_daemon.host, DOCKER_STOP_TIMEOUT="1")


async def answers(port: int) -> str | None:
    """The page on 127.0.0.1:port, or None when nothing answers there."""
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            response = await http.get(f"http://127.0.0.1:{port}/")
    except httpx.TransportError:
        return None
    return response.text if response.status_code == 200 else None


async def wait_until(predicate, timeout: float = 15.0) -> None:
    with trio.fail_after(timeout):
        while not await predicate():
            await trio.sleep(0.1)


def host_ports(service: dict) -> dict[str, int]:
    return {p["name"]: p["host_port"] for p in service["ports"]}


async def test_ports_and_settings_of_a_running_service_change_through_mcp(
    docker_proxyd, docker_daemon
):
    url = f"{docker_proxyd.api_url}/mcp"
    gql = GraphQLClient(docker_proxyd.api_url, docker_proxyd.token("admin"))
    async with mcp_session(url, mcp_token(docker_proxyd, "admin", url)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        for name in CHANGE_TOOLS:
            tool = tools[name]
            assert tool.input_schema["type"] == "object" and tool.output_schema is not None
            assert "ctx" not in tool.input_schema.get("properties", {}), name
            hints = tool.annotations
            assert hints.read_only_hint is False and hints.destructive_hint is True, name
            assert "recreated" in tool.description and "restarts" in tool.description, name
            assert "Needs scope admin." in tool.description, name
        assert tools["add_service_port"].annotations.idempotent_hint is False
        assert tools["remove_service_port"].annotations.idempotent_hint is True

        created = await call(
            client,
            "create_service",
            {
                "name": "mcpports",
                "image": TEST_IMAGE,
                "command": ["/bin/busybox", "sh", "-c", TWO_HTTPDS],
                "ports": [{"container_port": 8080}],
            },
        )
        assert created["status"] == "running"
        first = host_ports(created)["http"]

        # Add a port: the service is recreated, and the new host port serves the page.
        extra = free_port()
        added = await call(
            client,
            "add_service_port",
            {
                "name": "mcpports",
                "port": {"name": "admin", "container_port": 9090, "host_port": extra},
            },
        )
        assert added["status"] == "running" and "restarted" in added["notice"]
        assert host_ports(added) == {"http": first, "admin": extra}
        await wait_until(lambda: _is_page(extra))
        shown = (await call(client, "get_service", {"name": "mcpports"}))["service"]
        assert host_ports(shown) == {"http": first, "admin": extra}
        owners = (await gql("query { ports { port serviceName portName } }"))["ports"]
        assert {"port": extra, "serviceName": "mcpports", "portName": "admin"} in owners

        # Port conflicts: one this service already holds, and one something else listens on.
        taken = await error_of(
            client,
            "add_service_port",
            {"name": "mcpports", "port": {"name": "dup", "container_port": 80, "host_port": first}},
        )
        assert taken == f"CONFLICT: port {first} is already allocated to service mcpports."
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            busy_port = busy.getsockname()[1]
            args = {"name": "mcpports", "port": {"container_port": 81, "host_port": busy_port}}
            refused = await error_of(client, "add_service_port", args)
            errors = await gql.errors(
                'mutation($p: Int!) { addServicePort(name: "mcpports", '
                "input: {containerPort: 81, hostPort: $p}) { name } }",
                {"p": busy_port},
            )
        assert errors[0]["extensions"]["code"] == "CONFLICT"
        assert refused == f"CONFLICT: {errors[0]['message']}"
        args = {"name": "mcpports", "port": {"name": "admin", "container_port": 9091}}
        named = await error_of(client, "add_service_port", args)
        assert named == "CONFLICT: service mcpports already has a port named admin."

        # Move the added port: the old host port goes quiet and is released.
        moved = free_port()
        updated = await call(
            client,
            "update_service_port",
            {"name": "mcpports", "port_name": "admin", "host_port": moved},
        )
        assert host_ports(updated) == {"http": first, "admin": moved}
        assert "restarted" in updated["notice"]
        await wait_until(lambda: _is_page(moved))
        assert await answers(extra) is None
        owners = [o["port"] for o in (await gql("query { ports { port } }"))["ports"]]
        assert moved in owners and extra not in owners

        # update_service: a new memory limit and environment, seen by get_service and Docker;
        # the ports stay.
        changed = await call(
            client,
            "update_service",
            {"name": "mcpports", "memory_limit": "48m", "environment": {"GREETING": "hi"}},
        )
        assert changed["status"] == "running" and "restarted" in changed["notice"]
        shown = (await call(client, "get_service", {"name": "mcpports"}))["service"]
        assert shown["memory_limit"] == "48m" and shown["environment_keys"] == ["GREETING"]
        assert host_ports(shown) == {"http": first, "admin": moved}
        inspect = json.loads(docker_daemon.cli("inspect", "proxyd-mcpports"))[0]
        assert inspect["HostConfig"]["Memory"] == 48 * 1024 * 1024
        assert "GREETING=hi" in inspect["Config"]["Env"]
        await wait_until(lambda: _is_page(moved))
        bad = await error_of(client, "update_service", {"name": "mcpports", "memory_limit": "lots"})
        assert bad.startswith("BAD_USER_INPUT: ")

        # Remove the port: it is gone from the service, from Docker and from the registry.
        removed = await call(
            client, "remove_service_port", {"name": "mcpports", "port_name": "admin"}
        )
        assert host_ports(removed) == {"http": first} and "restarted" in removed["notice"]
        shown = (await call(client, "get_service", {"name": "mcpports"}))["service"]
        assert host_ports(shown) == {"http": first}
        inspect = json.loads(docker_daemon.cli("inspect", "proxyd-mcpports"))[0]
        assert "9090/tcp" not in (inspect["HostConfig"]["PortBindings"] or {})
        owners = [o["port"] for o in (await gql("query { ports { port } }"))["ports"]]
        assert moved not in owners and first in owners
        await wait_until(lambda: _is_page(first))
        assert await answers(moved) is None

        # Unknown service or port: NOT_FOUND with GraphQL's sentence.
        for name, args, mutation in (
            ("update_service", {"name": "nosuch", "cpu_limit": 0.5},
             'updateService(name: "nosuch", input: {cpuLimit: 0.5})'),
            ("add_service_port", {"name": "nosuch", "port": {"container_port": 80}},
             'addServicePort(name: "nosuch", input: {containerPort: 80})'),
            ("update_service_port", {"name": "nosuch", "port_name": "http", "host_port": moved},
             f'updateServicePort(name: "nosuch", portName: "http", input: {{hostPort: {moved}}})'),
            ("remove_service_port", {"name": "nosuch", "port_name": "http"},
             'removeServicePort(name: "nosuch", portName: "http")'),
            ("remove_service_port", {"name": "mcpports", "port_name": "admin"},
             'removeServicePort(name: "mcpports", portName: "admin")'),
        ):  # fmt: skip
            text = await error_of(client, name, args)
            errors = await gql.errors(f"mutation {{ {mutation} {{ name }} }}")
            assert errors[0]["extensions"]["code"] == "NOT_FOUND", mutation
            assert text == f"NOT_FOUND: {errors[0]['message']}", name
        assert text == "NOT_FOUND: service mcpports has no port named admin."

    # A user-scope token reads the service but cannot change it.
    async with mcp_session(url, mcp_token(docker_proxyd, "user", url, "reader")) as reader:
        for name, args in (
            ("update_service", {"name": "mcpports", "memory_limit": "32m"}),
            ("add_service_port", {"name": "mcpports", "port": {"container_port": 9090}}),
            ("update_service_port", {"name": "mcpports", "port_name": "http", "host_port": 1}),
            ("remove_service_port", {"name": "mcpports", "port_name": "http"}),
        ):
            text = await error_of(reader, name, args)
            assert text.startswith(f"FORBIDDEN: {name} needs a token with scope 'admin'"), text
        shown = (await call(reader, "get_service", {"name": "mcpports"}))["service"]
        assert shown["memory_limit"] == "48m" and host_ports(shown) == {"http": first}
    inspect = json.loads(docker_daemon.cli("inspect", "proxyd-mcpports"))[0]
    assert inspect["HostConfig"]["Memory"] == 48 * 1024 * 1024
    await gql('mutation { deleteService(name: "mcpports") }')


async def _is_page(port: int) -> bool:
    return await answers(port) == INDEX_HTML


async def test_change_tools_say_docker_is_unreachable(start_proxyd, docker_proxyd, tmp_path):
    # A service made through a proxyd that reaches Docker...
    gql = GraphQLClient(docker_proxyd.api_url, docker_proxyd.token("admin"))
    await gql(
        create_query("faraway"),
        {"input": {"name": "faraway", "image": TEST_IMAGE, "ports": [{"containerPort": 8080}]}},
    )
    # ...changed through a proxyd (same Redis) whose DOCKER_HOST is a socket that does not exist.
    missing = tmp_path / "no-docker.sock"
    blind = start_proxyd("nodocker", DOCKER_HOST=f"unix://{missing}")
    url = f"{blind.api_url}/mcp"
    blind_gql = GraphQLClient(blind.api_url, blind.token("admin"))
    errors = await blind_gql.errors(
        'mutation { updateService(name: "faraway", input: {cpuLimit: 0.5}) { name } }'
    )
    assert errors[0]["extensions"]["code"] == "DOCKER_UNAVAILABLE"
    sentence = errors[0]["message"]
    assert sentence.startswith(f"Docker is not reachable at unix://{missing}")
    extra = free_port()
    async with mcp_session(url, mcp_token(blind, "admin", url)) as client:
        for name, args in (
            ("update_service", {"name": "faraway", "cpu_limit": 0.5}),
            ("add_service_port", {"name": "faraway", "port": {"container_port": 9090, "host_port": extra}}),
            ("update_service_port", {"name": "faraway", "port_name": "http", "host_port": extra}),
            ("remove_service_port", {"name": "faraway", "port_name": "http"}),
        ):  # fmt: skip
            text = await error_of(client, name, args)
            assert text == f"DOCKER_UNAVAILABLE: {sentence}", name
    assert blind.process.poll() is None
    # Nothing changed, and the host port claimed on the way was released.
    shown = await gql('query { service(name: "faraway") { cpuLimit ports { name } } }')
    assert shown["service"] == {"cpuLimit": None, "ports": [{"name": "http"}]}
    owners = [o["port"] for o in (await gql("query { ports { port } }"))["ports"]]
    assert extra not in owners
    await gql('mutation { deleteService(name: "faraway") }')

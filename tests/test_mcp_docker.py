"""MCP tools for Docker services against a real dockerd (the session fixture), driven by the
official MCP SDK client with tokens from `proxyd token issue --audience <the /mcp URL>`:
create_service with an auto-proxy serves the container's page, stop_service makes the proxy
answer 503, service_logs and service_stats read the container, delete_service removes it and its
proxy; a user-scope token lists but cannot change; with Docker unreachable the tools answer
DOCKER_UNAVAILABLE with GraphQL's sentence; no output carries a token or an environment value.
"""

from __future__ import annotations

import json

import httpx
import pytest
import trio

from tests.support.docker import HTTPD_VERBOSE, INDEX_HTML, TEST_IMAGE
from tests.support.docker import create_service_query as create_query
from tests.support.graphql import GraphQLClient
from tests.support.mcp_client import call, error_of, mcp_session, mcp_token, tool_text

DOCKER_TOOLS = {
    # name: (readOnlyHint, destructiveHint, idempotentHint)
    "list_services": (True, False, True),
    "get_service": (True, False, True),
    "create_service": (False, False, False),
    "start_service": (False, False, True),
    "stop_service": (False, True, True),
    "restart_service": (False, True, True),
    "delete_service": (False, True, False),
    "create_service_proxy": (False, False, False),
    "service_logs": (True, False, True),
    "service_stats": (True, False, True),
}


@pytest.fixture
def docker_proxyd(start_proxyd, docker_daemon):
    return start_proxyd(DOCKER_HOST=docker_daemon.host, DOCKER_STOP_TIMEOUT="1")


async def get_page(proxyd, host: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(f"{proxyd.http_url}/", headers={"Host": host})


async def wait_for(predicate, timeout: float = 10.0):
    with trio.fail_after(timeout):
        while True:
            result = await predicate()
            if result:
                return result
            await trio.sleep(0.1)


async def test_service_lifecycle_through_mcp(docker_proxyd, docker_daemon):
    url = f"{docker_proxyd.api_url}/mcp"
    async with mcp_session(url, mcp_token(docker_proxyd, "admin", url)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        for name, (read_only, destructive, idempotent) in DOCKER_TOOLS.items():
            tool = tools[name]
            assert tool.input_schema["type"] == "object" and tool.output_schema is not None, name
            assert "ctx" not in tool.input_schema.get("properties", {}), name
            hints = tool.annotations
            assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint) == (
                read_only,
                destructive,
                idempotent,
            ), name

        created = await call(
            client,
            "create_service",
            {
                "name": "mcpweb",
                "image": TEST_IMAGE,
                "command": HTTPD_VERBOSE,
                "memory_limit": "64m",
                "ports": [{"container_port": 8080}],
                "auto_proxy": True,
                "hostname": "mcpweb.localhost",
            },
        )
        assert created["kind"] == "docker" and created["status"] == "running"
        assert created["memory_limit"] == "64m"
        assert created["proxy_hostname"] == "mcpweb.localhost"
        port = created["ports"][0]
        assert port["container_port"] == 8080 and port["bind_address"] == "127.0.0.1"
        assert port["host_port"] and port["require_token"] is False
        inspect = json.loads(docker_daemon.cli("inspect", "proxyd-mcpweb"))[0]
        assert inspect["HostConfig"]["Memory"] == 64 * 1024 * 1024

        # The auto-proxy serves the container's page at once.
        page = await get_page(docker_proxyd, "mcpweb.localhost")
        assert page.status_code == 200 and page.text == INDEX_HTML

        listed = (await call(client, "list_services", {}))["services"]
        kinds = {(s["name"], s["kind"]): s["status"] for s in listed}
        assert kinds[("mcpweb", "docker")] == "running"
        assert kinds[("api", "internal")] == "running"
        only = (await call(client, "list_services", {"kind": "docker"}))["services"]
        assert [s["name"] for s in only] == ["mcpweb"]
        shown = (await call(client, "get_service", {"name": "mcpweb"}))["service"]
        assert shown["container_name"] == "proxyd-mcpweb" and shown["image"] == TEST_IMAGE
        assert (await call(client, "get_service", {"name": "nosuch"}))["service"] is None

        # busybox httpd -v logs each request it answered.
        async def logged():
            logs = await call(client, "service_logs", {"name": "mcpweb", "tail": 20})
            return logs["lines"] if any("response:200" in x for x in logs["lines"]) else None

        lines = await wait_for(logged)
        assert len(lines) <= 20
        stats = await call(client, "service_stats", {"name": "mcpweb"})
        assert stats["name"] == "mcpweb" and stats["pids"] >= 1
        assert stats["memory_limit"] == 64 * 1024 * 1024 and stats["cpu_percent"] >= 0

        # Stop: the proxy answers 503 with the sentence; start: it serves again.
        stopped = await call(client, "stop_service", {"name": "mcpweb"})
        assert stopped["status"] == "exited"
        page = await get_page(docker_proxyd, "mcpweb.localhost")
        assert page.status_code == 503 and "service mcpweb is stopped" in page.text
        assert (await call(client, "start_service", {"name": "mcpweb"}))["status"] == "running"
        assert (await get_page(docker_proxyd, "mcpweb.localhost")).status_code == 200
        restarted = await call(client, "restart_service", {"name": "mcpweb"})
        assert restarted["status"] == "running"

        # Errors: the same codes and sentences as GraphQL.
        again = await error_of(client, "create_service", {"name": "mcpweb", "image": TEST_IMAGE})
        assert again.startswith("CONFLICT: ")
        ghost = await error_of(client, "create_service", {"name": "ghost", "image": "nosuch:9"})
        assert ghost.startswith("BAD_USER_INPUT: ") and "nosuch:9" in ghost
        bad = await error_of(client, "service_logs", {"name": "bad name!"})
        assert bad.startswith("BAD_USER_INPUT: ")
        missing = await error_of(client, "stop_service", {"name": "nosuch"})
        assert missing.startswith("NOT_FOUND: ")
        gql = GraphQLClient(docker_proxyd.api_url, docker_proxyd.token("admin"))
        errors = await gql.errors('mutation { stopService(name: "nosuch") { name } }')
        assert missing == f"NOT_FOUND: {errors[0]['message']}"

        # Delete with delete_proxy: container, ports and proxy are gone.
        done = await call(client, "delete_service", {"name": "mcpweb", "delete_proxy": True})
        assert done["ok"] is True
        assert (await call(client, "get_proxy", {"hostname": "mcpweb.localhost"}))["proxy"] is None
        assert docker_daemon.cli("ps", "-aq", "--filter", "name=proxyd-mcpweb").strip() == ""
        assert (await call(client, "list_services", {"kind": "docker"}))["services"] == []
        gone = await error_of(client, "delete_service", {"name": "mcpweb"})
        assert gone.startswith("NOT_FOUND: ")
    assert (await get_page(docker_proxyd, "mcpweb.localhost")).status_code != 200


async def test_no_token_or_environment_value_is_returned(docker_proxyd):
    url = f"{docker_proxyd.api_url}/mcp"
    port_token = "mcp-port-token-0123456789abcdef"
    env_value = "hunter2-env-value-never-shown"
    async with mcp_session(url, mcp_token(docker_proxyd, "admin", url)) as client:
        short = await error_of(
            client,
            "create_service",
            {
                "name": "shorttok",
                "image": TEST_IMAGE,
                "ports": [{"container_port": 1, "token": "x"}],
            },
        )
        assert short == "BAD_USER_INPUT: a port access token must be at least 16 characters."
        outputs = [
            await client.call_tool(
                "create_service",
                {
                    "name": "secretive",
                    "image": TEST_IMAGE,
                    "environment": {"API_KEY": env_value},
                    "ports": [{"container_port": 8080, "token": port_token}],
                },
            )
        ]
        assert not outputs[0].is_error, tool_text(outputs[0])
        service = outputs[0].structured_content
        assert service["environment_keys"] == ["API_KEY"]
        assert service["ports"][0]["require_token"] is True
        assert service["ports"][0]["published_by"] == "proxyd"
        for name, args in (
            ("get_service", {"name": "secretive"}),
            ("list_services", {}),
            ("service_logs", {"name": "secretive"}),
        ):
            outputs.append(await client.call_tool(name, args))
        for result in outputs:
            assert not result.is_error, tool_text(result)
            dumped = json.dumps(result.structured_content) + tool_text(result)
            assert port_token not in dumped and env_value not in dumped
        await call(client, "delete_service", {"name": "secretive"})


async def test_user_scope_lists_but_cannot_change(docker_proxyd):
    url = f"{docker_proxyd.api_url}/mcp"
    async with mcp_session(url, mcp_token(docker_proxyd, "admin", url)) as admin:
        await call(
            admin,
            "create_service",
            {"name": "kept", "image": TEST_IMAGE, "ports": [{"container_port": 8080}]},
        )
        await call(
            admin,
            "register_external_service",
            {"name": "ext", "target_url": "http://127.0.0.1:9", "description": "named URL"},
        )
    user = mcp_token(docker_proxyd, "user", url, subject="reader")
    async with mcp_session(url, user) as client:
        listed = (await call(client, "list_services", {"kind": "docker"}))["services"]
        assert [(s["name"], s["status"]) for s in listed] == [("kept", "running")]
        every = (await call(client, "list_services", {}))["services"]
        assert [(s["kind"], s["name"], s["status"]) for s in every] == [
            ("docker", "kept", "running"),
            ("external", "ext", "registered"),
            ("internal", "api", "running"),
        ]
        assert every[1]["description"] == "named URL"
        ext = (await call(client, "get_service", {"name": "ext"}))["service"]
        assert ext["kind"] == "external" and ext["target_url"] == "http://127.0.0.1:9"
        assert (await call(client, "get_service", {"name": "kept"}))["service"]["name"] == "kept"
        assert isinstance((await call(client, "service_logs", {"name": "kept"}))["lines"], list)
        assert "FORBIDDEN: " in await error_of(
            client, "create_service_proxy", {"name": "kept", "hostname": "kept.localhost"}
        )
        for name, args in (
            ("create_service", {"name": "other", "image": TEST_IMAGE}),
            ("stop_service", {"name": "kept"}),
            ("restart_service", {"name": "kept"}),
            ("start_service", {"name": "kept"}),
            ("delete_service", {"name": "kept"}),
        ):
            text = await error_of(client, name, args)
            assert text.startswith("FORBIDDEN: ") and "'admin'" in text, text
    async with mcp_session(url, mcp_token(docker_proxyd, "admin", url)) as admin:
        kept = (await call(admin, "get_service", {"name": "kept"}))["service"]
        assert kept["status"] == "running"
        # A proxy put in front of the service afterwards serves its page.
        proxy = await call(
            admin, "create_service_proxy", {"name": "kept", "hostname": "kept.localhost"}
        )
        assert proxy["hostname"] == "kept.localhost" and proxy["target_url"] == "service://kept"
        page = await get_page(docker_proxyd, "kept.localhost")
        assert page.status_code == 200 and page.text == INDEX_HTML
        assert (await call(admin, "get_service", {"name": "other"}))["service"] is None
        await call(admin, "delete_service", {"name": "kept", "delete_proxy": True})
        assert (await call(admin, "get_proxy", {"hostname": "kept.localhost"}))["proxy"] is None


async def test_docker_unreachable_gives_docker_unavailable(start_proxyd, docker_proxyd, tmp_path):
    # A service made through a proxyd that reaches Docker...
    url = f"{docker_proxyd.api_url}/mcp"
    async with mcp_session(url, mcp_token(docker_proxyd, "admin", url)) as client:
        await call(client, "create_service", {"name": "faraway", "image": TEST_IMAGE})
    # ...seen from a proxyd (same Redis) whose DOCKER_HOST is a socket that does not exist.
    missing = tmp_path / "no-docker.sock"
    blind = start_proxyd("nodocker", DOCKER_HOST=f"unix://{missing}")
    url = f"{blind.api_url}/mcp"
    gql = GraphQLClient(blind.api_url, blind.token("admin"))
    errors = await gql.errors(create_query("web"), {"input": {"name": "web", "image": TEST_IMAGE}})
    assert errors[0]["extensions"]["code"] == "DOCKER_UNAVAILABLE"
    sentence = errors[0]["message"]
    assert sentence.startswith(f"Docker is not reachable at unix://{missing}")
    async with mcp_session(url, mcp_token(blind, "admin", url)) as client:
        # Listing reads proxyd's records: it works, with the status unknown.
        listed = (await call(client, "list_services", {"kind": "docker"}))["services"]
        assert [(s["name"], s["status"]) for s in listed] == [("faraway", "unknown")]
        created = await error_of(client, "create_service", {"name": "web", "image": TEST_IMAGE})
        assert created == f"DOCKER_UNAVAILABLE: {sentence}"
        for name in ("start_service", "stop_service", "restart_service", "service_logs"):
            text = await error_of(client, name, {"name": "faraway"})
            assert text == f"DOCKER_UNAVAILABLE: {sentence}", name
        for name in ("service_stats", "delete_service"):
            text = await error_of(client, name, {"name": "faraway"})
            assert text.startswith("DOCKER_UNAVAILABLE: Docker is not reachable at "), name
        # The rest of proxyd goes on working.
        assert (await call(client, "health", {}))["redis"]
    assert blind.process.poll() is None
    async with mcp_session(
        f"{docker_proxyd.api_url}/mcp",
        mcp_token(docker_proxyd, "admin", f"{docker_proxyd.api_url}/mcp"),
    ) as client:
        await call(client, "delete_service", {"name": "faraway"})

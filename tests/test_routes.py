"""Routes: priority order, prefix and regex paths, method filters, global and per-proxy scope, and
the four target types (port, service, hostname, url), all through a real proxyd."""

from __future__ import annotations

import httpx
import trio

from tests.support.backend import start_backend
from tests.support.graphql import CREATE_PROXY

CREATE_ROUTE = """
mutation($input: CreateRouteInput!) { createRoute(input: $input) { routeId priority } }
"""


async def which_backend(proxyd, host: str, path: str, method: str = "GET") -> int | None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.request(method, proxyd.http_url + path, headers={"Host": host})
    if response.headers.get("content-type") != "application/json":
        return None
    return response.json().get("backend")


async def until(check, timeout: float = 2.0) -> None:
    with trio.fail_after(timeout):
        while not await check():
            await trio.sleep(0.01)


async def test_priority_regex_methods_and_scope(proxyd, gql, backend, nursery):
    main, api, admin, other = backend, *[await start_backend(nursery) for _ in range(3)]
    for host in ("site.test", "other.test"):
        await gql(CREATE_PROXY, {"input": {"hostname": host, "targetUrl": main.url}})
    routes = [
        {
            "routeId": "api-low",
            "pathPattern": "/api/",
            "targetType": "url",
            "targetValue": other.url,
            "priority": 10,
        },
        {
            "routeId": "api-high",
            "pathPattern": "/api/",
            "targetType": "url",
            "targetValue": api.url,
            "priority": 80,
        },
        {
            "routeId": "admin-post",
            "pathPattern": r"^/admin/\d+$",
            "isRegex": True,
            "targetType": "url",
            "targetValue": admin.url,
            "priority": 70,
            "methods": ["POST"],
        },
        {
            "routeId": "site-only",
            "pathPattern": "/only",
            "targetType": "url",
            "targetValue": other.url,
            "priority": 60,
            "scope": "proxy",
            "proxyHostnames": ["site.test"],
        },
    ]
    for route in routes:
        await gql(CREATE_ROUTE, {"input": route})

    async def applied():
        return await which_backend(proxyd, "site.test", "/only") == other.port

    await until(applied)
    # priority: the higher route wins for the same prefix
    assert await which_backend(proxyd, "site.test", "/api/users") == api.port
    # prefix "/api/" does not take "/apiary"
    assert await which_backend(proxyd, "site.test", "/apiary") == main.port
    # regex + method filter
    assert await which_backend(proxyd, "site.test", "/admin/42", "POST") == admin.port
    assert await which_backend(proxyd, "site.test", "/admin/42", "GET") == main.port
    assert await which_backend(proxyd, "site.test", "/admin/x", "POST") == main.port
    # proxy scope: applies to site.test only
    assert await which_backend(proxyd, "other.test", "/only") == main.port
    # global routes apply to every proxy
    assert await which_backend(proxyd, "other.test", "/api/x") == api.port

    data = await gql("{ routes { routeId } }")
    ids = [r["routeId"] for r in data["routes"]]
    assert (
        ids.index("api-high")
        < ids.index("admin-post")
        < ids.index("site-only")
        < ids.index("api-low")
    )

    # disabling and deleting routes take effect without restart
    await gql('mutation { updateRoute(routeId: "api-high", input: {enabled: false}) { enabled } }')

    async def fell_back():
        return await which_backend(proxyd, "site.test", "/api/users") == other.port

    await until(fell_back)
    await gql('mutation { deleteRoute(routeId: "api-low") }')

    async def gone():
        return await which_backend(proxyd, "site.test", "/api/users") == main.port

    await until(gone)


async def test_target_types_port_service_hostname(proxyd, gql, backend, nursery):
    other = await start_backend(nursery)
    third = await start_backend(nursery)
    await gql(CREATE_PROXY, {"input": {"hostname": "front.test", "targetUrl": backend.url}})
    await gql(CREATE_PROXY, {"input": {"hostname": "inner.test", "targetUrl": third.url}})
    await gql(
        "mutation($i: ExternalServiceInput!) { registerExternalService(input: $i) "
        "{ serviceName } }",
        {"i": {"serviceName": "billing", "targetUrl": other.url}},
    )
    for route in (
        {
            "routeId": "by-port",
            "pathPattern": "/port/",
            "targetType": "port",
            "targetValue": str(other.port),
        },
        {
            "routeId": "by-service",
            "pathPattern": "/svc/",
            "targetType": "service",
            "targetValue": "billing",
        },
        {
            "routeId": "by-host",
            "pathPattern": "/inner/",
            "targetType": "hostname",
            "targetValue": "inner.test",
        },
        {
            "routeId": "to-api",
            "pathPattern": "/internal-health",
            "targetType": "service",
            "targetValue": "api",
        },
    ):
        await gql(CREATE_ROUTE, {"input": route})

    async def ready():
        return await which_backend(proxyd, "front.test", "/inner/x") == third.port

    await until(ready)
    assert await which_backend(proxyd, "front.test", "/port/x") == other.port
    assert await which_backend(proxyd, "front.test", "/svc/x") == other.port
    async with httpx.AsyncClient() as client:
        response = await client.get(
            proxyd.http_url + "/internal-health", headers={"Host": "front.test"}
        )
    assert response.status_code == 404  # the API app answered (no such API path)
    services = await gql("{ externalServices { serviceName targetUrl } }")
    assert services["externalServices"] == [{"serviceName": "billing", "targetUrl": other.url}]

    await gql('mutation { deleteExternalService(name: "billing") }')

    async def unknown_service():
        async with httpx.AsyncClient() as client:
            r = await client.get(proxyd.http_url + "/svc/x", headers={"Host": "front.test"})
        return r.status_code == 502

    await until(unknown_service)


async def test_default_routes_and_localhost_proxy_exist(proxyd, gql):
    data = await gql(
        "{ proxies { hostname targetUrl enableHttps } routes { routeId targetType "
        "targetValue pathPattern } }"
    )
    assert {"hostname": "localhost", "targetUrl": "internal://api", "enableHttps": False} in data[
        "proxies"
    ]
    ids = {r["routeId"]: r for r in data["routes"]}
    assert ids["acme-challenge"]["pathPattern"] == "/.well-known/acme-challenge/"
    assert ids["oauth-authorization-server"]["targetValue"] == "api"
    async with httpx.AsyncClient() as client:
        health = await client.get(proxyd.http_url + "/health", headers={"Host": "localhost"})
    assert health.status_code == 200 and health.json()["status"] == "ok"


async def test_route_validation(gql):
    errors = await gql.errors(
        CREATE_ROUTE,
        {
            "input": {
                "pathPattern": "([",
                "isRegex": True,
                "targetType": "url",
                "targetValue": "http://x",
            }
        },
    )
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    errors = await gql.errors(
        CREATE_ROUTE, {"input": {"pathPattern": "/x", "targetType": "teleport", "targetValue": "x"}}
    )
    assert "targetType must be one of" in errors[0]["message"]
    errors = await gql.errors(
        CREATE_ROUTE, {"input": {"pathPattern": "/x", "targetType": "port", "targetValue": "99999"}}
    )
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    await gql(
        CREATE_ROUTE,
        {
            "input": {
                "pathPattern": "/dup",
                "targetType": "port",
                "targetValue": "8080",
                "priority": 5,
            }
        },
    )
    errors = await gql.errors(
        CREATE_ROUTE,
        {
            "input": {
                "routeId": "another",
                "pathPattern": "/dup",
                "targetType": "port",
                "targetValue": "8081",
                "priority": 5,
            }
        },
    )
    assert errors[0]["extensions"]["code"] == "CONFLICT"

"""The `matchRoute` and `viewer` queries the web UI uses: matchRoute must name the route the edge
really takes (it decides with the edge's RouteTable), explain why, and refuse hostile input."""

from __future__ import annotations

from tests.support.backend import start_backend
from tests.support.graphql import CREATE_PROXY
from tests.test_routes import CREATE_ROUTE, until, which_backend

MATCH = """
query ($hostname: String!, $method: String, $path: String!) {
  matchRoute(hostname: $hostname, method: $method, path: $path) {
    target reason proxy { hostname } route { routeId }
    candidates { matched reason route { routeId } }
  }
}
"""


async def test_match_route_agrees_with_the_edge(proxyd, gql, backend, nursery):
    main, api, admin, other = backend, *[await start_backend(nursery) for _ in range(3)]
    for host in ("site.test", "other.test"):
        await gql(CREATE_PROXY, {"input": {"hostname": host, "targetUrl": main.url}})
    routes = [
        ("api-low", "/api/", False, other, 10, None, None),
        ("api-high", "/api/", False, api, 80, None, None),
        ("admin-post", r"^/admin/\d+$", True, admin, 70, ["POST"], None),
        ("site-only", "/only", False, other, 60, None, ["site.test"]),
    ]
    for route_id, pattern, regex, target, priority, methods, hosts in routes:
        route = {
            "routeId": route_id,
            "pathPattern": pattern,
            "isRegex": regex,
            "targetType": "url",
            "targetValue": target.url,
            "priority": priority,
            "methods": methods,
        }
        if hosts:
            route.update(scope="proxy", proxyHostnames=hosts)
        await gql(CREATE_ROUTE, {"input": route})

    async def applied():
        return await which_backend(proxyd, "site.test", "/only") == other.port

    await until(applied)
    by_port = {main.port: None, api.port: "api-high", admin.port: "admin-post"}
    cases = [
        ("site.test", "GET", "/api/users"),
        ("site.test", "GET", "/apix"),
        ("site.test", "POST", "/admin/12"),
        ("site.test", "GET", "/admin/12"),
        ("site.test", "POST", "/admin/12x"),
        ("site.test", "GET", "/only"),
        ("other.test", "GET", "/only"),
        ("site.test", "GET", "/"),
    ]
    for host, method, path in cases:
        answer = (await gql(MATCH, {"hostname": host, "method": method, "path": path}))[
            "matchRoute"
        ]
        edge = await which_backend(proxyd, host, path, method)
        chosen = answer["route"]["routeId"] if answer["route"] else None
        expected = "site-only" if edge == other.port else by_port[edge]
        assert chosen == expected, (host, method, path, answer)
        assert answer["reason"]
        if chosen is None:
            assert answer["target"] == main.url
    # the reasons say why routes were skipped
    answer = (await gql(MATCH, {"hostname": "site.test", "method": "GET", "path": "/admin/1"}))[
        "matchRoute"
    ]
    skipped = {c["route"]["routeId"]: c["reason"] for c in answer["candidates"]}
    assert "method GET is not one of POST" in skipped["admin-post"]
    assert "does not match" in skipped["api-high"]


async def test_match_route_without_a_proxy_and_with_hostile_input(proxyd, gql):
    answer = (await gql(MATCH, {"hostname": "nobody.test", "path": "/"}))["matchRoute"]
    assert answer["proxy"] is None and answer["route"] is None and "404" in answer["reason"]
    for variables in (
        {"hostname": "localhost", "path": "no-slash"},
        {"hostname": "localhost", "path": "/" + "a" * 9000},
        {"hostname": "localhost", "path": "/", "method": "GET /x HTTP/1.1\r\nX: y"},
        {"hostname": "localhost", "path": "/", "method": "G" * 40},
    ):
        errors = await gql.errors(MATCH, variables)
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", variables


async def test_viewer_says_who_and_which_scopes(proxyd, gql):
    user = proxyd.token("user", subject="watcher")
    data = await gql(
        "{ viewer { subject scopes clientId expiresAt } health { workers } }", token=user
    )
    viewer = data["viewer"]
    assert data["health"]["workers"] == 1  # the test processes run WORKERS=1
    assert viewer["subject"] == "watcher" and viewer["scopes"] == ["user"]
    assert viewer["expiresAt"] > 0
    errors = await gql.errors(MATCH, {"hostname": "localhost", "path": "/"}, token="not-a-token")
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"

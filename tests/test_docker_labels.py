"""Label discovery (DOCKER_LABELS=true) against a real dockerd: a labelled container gets a proxy
while it runs, labels never take a hostname another proxy already has, an API override wins and
revertProxyToLabels undoes it."""

from __future__ import annotations

import httpx
import trio

from tests.support.docker import INDEX_HTML, TEST_IMAGE
from tests.support.graphql import CREATE_PROXY, GraphQLClient

SOURCE = "query($h: String!) { proxy(hostname: $h) { hostname targetUrl authEnabled source } }"


async def wait_for(predicate, timeout: float = 15.0):
    with trio.fail_after(timeout):
        while True:
            result = await predicate()
            if result:
                return result
            await trio.sleep(0.1)


async def test_labelled_container_gets_a_proxy_while_it_runs(start_proxyd, docker_daemon, backend):
    proxyd = start_proxyd(
        DOCKER_HOST=docker_daemon.host,
        DOCKER_LABELS="true",
        OAUTH_ISSUER="http://auth.localhost",  # a login host that has no proxy record
    )
    gql = GraphQLClient(proxyd.api_url, proxyd.token("admin"))
    # A hostname that already has a proxy is not taken by labels (not even with auth off).
    await gql(CREATE_PROXY, {"input": {"hostname": "taken.localhost", "targetUrl": backend.url}})
    # Nor is proxyd's own login hostname (the issuer's), even though no proxy record names it.
    docker_daemon.cli(
        "run",
        "-d",
        "--name",
        "usurper",
        "--label",
        "proxyd.hostname=auth.localhost",
        "--label",
        "proxyd.port=8080",
        TEST_IMAGE,
    )
    docker_daemon.cli(
        "run",
        "-d",
        "--name",
        "labelled",
        "--label",
        "proxyd.hostname=lbl.localhost",
        "--label",
        "proxyd.port=8080",
        TEST_IMAGE,
    )
    docker_daemon.cli(
        "run",
        "-d",
        "--name",
        "thief",
        "--label",
        "proxyd.hostname=taken.localhost",
        "--label",
        "proxyd.port=8080",
        "--label",
        "proxyd.auth=false",
        TEST_IMAGE,
    )
    try:

        async def proxy(host):
            return (await gql(SOURCE, {"h": host}))["proxy"]

        found = await wait_for(lambda: proxy("lbl.localhost"))
        assert found["source"] == "labels"
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"{proxyd.http_url}/", headers={"Host": "lbl.localhost"})
        assert response.status_code == 200 and response.text == INDEX_HTML

        assert await proxy("auth.localhost") is None
        assert "is proxyd's own hostname" in proxyd.log()
        taken = await proxy("taken.localhost")
        assert taken["targetUrl"] == backend.url and taken["source"] == "api"
        assert "already has a proxy not made from labels" in proxyd.log()

        # An override through the API wins; revert goes back to what the labels say.
        await gql(
            'mutation { updateProxy(hostname: "lbl.localhost", input: {authEnabled: true}) '
            "{ hostname } }"
        )
        assert (await proxy("lbl.localhost"))["source"] == "labels-overridden"
        data = await gql(
            'mutation { revertProxyToLabels(hostname: "lbl.localhost") { authEnabled source } }'
        )
        assert data["revertProxyToLabels"] == {"authEnabled": False, "source": "labels"}

        docker_daemon.cli("stop", "-t", "1", "labelled")

        async def gone():
            return await proxy("lbl.localhost") is None

        await wait_for(gone)
    finally:
        docker_daemon.cli("rm", "-f", "labelled", "thief", "usurper")

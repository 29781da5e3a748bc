"""The web UI's static serving (proxyd.api.webui) over real HTTP: security headers, caching,
history fallback, the playground at GET /graphql for browsers, and hostile paths."""

from __future__ import annotations

import re

import httpx
import pytest

from proxyd.api.webui import DIST

pytestmark = pytest.mark.skipif(
    not (DIST / "index.html").is_file(), reason="the web UI is not built (npm run build in web/)"
)
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_index_deep_links_and_assets(proxyd):
    base = proxyd.api_url
    index = httpx.get(base + "/", headers=HTML)
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert index.headers["cache-control"] == "no-cache"
    assert index.headers["x-frame-options"] == "DENY"
    csp = index.headers["content-security-policy"]
    assert csp.startswith("default-src 'self';")
    assert f"ws://127.0.0.1:{proxyd.api_port}" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    # a deep link gets the same app (history fallback)
    deep = httpx.get(base + "/proxies/app.example.com", headers=HTML)
    assert deep.status_code == 200 and deep.text == index.text
    # hashed assets are cached for a year, with their real type
    scripts = re.findall(r'src="(/assets/[^"]+\.js)"', index.text)
    assert scripts
    asset = httpx.get(base + scripts[0])
    assert asset.status_code == 200
    assert asset.headers["content-type"].startswith("text/javascript")
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    # nothing in the page points to another origin
    assert not re.search(r'(src|href)="(https?:)?//', index.text)


def test_missing_assets_and_api_clients_get_404_not_the_app(proxyd):
    base = proxyd.api_url
    assert httpx.get(base + "/assets/nope-123.js", headers=HTML).status_code == 404
    typo = httpx.get(base + "/graphq", headers={"Accept": "application/json"})
    assert typo.status_code == 404 and "<html" not in typo.text


TRAVERSALS = [
    "/assets/../../webui.py",
    "/assets/..%2f..%2fwebui.py",
    "/assets/%2e%2e/%2e%2e/webui.py",
    "/..%2fwebui.py",
    "/assets/.hidden",
    "/assets/x%00.js",
    "/assets/..\\..\\webui.py",
    "/%2e%2e/%2e%2e/api/webui.py",
]


def test_paths_outside_the_build_are_never_served(proxyd):
    app = httpx.get(proxyd.api_url + "/", headers=HTML).text
    for path in TRAVERSALS:
        response = httpx.get(proxyd.api_url + path, headers=HTML)
        assert "import re" not in response.text, path  # the source of proxyd/api/webui.py
        assert response.status_code in (200, 400, 404), path
        if response.status_code == 200:  # only ever the app itself (history fallback)
            assert response.text == app, path


def test_playground_for_browsers_and_a_sentence_for_json_clients(proxyd):
    page = httpx.get(proxyd.api_url + "/graphql", headers=HTML)
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    assert page.headers["content-security-policy"].startswith("default-src 'self';")
    assert "cdn" not in page.text.lower() and "unpkg" not in page.text.lower()
    json_client = httpx.get(proxyd.api_url + "/graphql", headers={"Accept": "application/json"})
    assert json_client.status_code == 405
    assert json_client.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_the_localhost_proxy_serves_the_same_app(proxyd):
    """Through the public listener, the `localhost` proxy reaches the management app in-process."""
    html = {**HTML, "Host": "localhost"}
    index = httpx.get(proxyd.http_url + "/", headers=html)
    assert index.status_code == 200
    assert index.text == httpx.get(proxyd.api_url + "/", headers=HTML).text
    csp = index.headers["content-security-policy"]
    assert "ws://localhost wss://localhost" in csp
    deep = httpx.get(proxyd.http_url + "/logs", headers=html)
    assert deep.status_code == 200 and deep.text == index.text


def test_a_hostile_host_header_adds_nothing_to_the_policy(proxyd):
    evil = "evil.example; script-src *"
    response = httpx.get(proxyd.api_url + "/", headers={**HTML, "Host": evil})
    csp = response.headers.get("content-security-policy", "")
    assert "script-src" not in csp and "evil" not in csp

"""The web UI in real headless Chromium (Playwright for Python, Debian's chromium) against a real
proxyd and Redis: sign-in with a pasted token, creating, editing and deleting a proxy with a
validation error shown next to its field, requests appearing in the live log view, the route
matcher, a read-only session, GraphiQL with a query and a subscription, no request to any other
origin, no console errors, and axe-core finding no serious or critical violations.

Set UPDATE_SCREENSHOTS=1 to refresh the README's screenshots in docs/screenshots/.
"""

from __future__ import annotations

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from proxyd.api.webui import DIST
from tests.support.fake_github import FakeGitHub
from tests.support.oauth import start_oauth_proxyd
from tests.support.pebble import Pebble
from tests.support.processes import free_port
from tests.test_oauth_browser import CHROMIUM_ARGS, chromium_binary

sync_api = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parents[1]
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "screenshots"

pytestmark = pytest.mark.skipif(
    not (DIST / "index.html").is_file(), reason="the web UI is not built (npm run build in web/)"
)


@pytest.fixture
def backend_url():
    """A plain HTTP backend on loopback that answers every GET with 200."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"hello from the backend\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class Session:
    """One browser context that may only reach proxyd, collecting console errors."""

    def __init__(self, browser, origin: str, tmp: Path, also: list[str] = ()) -> None:
        self.origin = origin
        self.allowed = [origin + "/", *(url + "/" for url in also)]
        self.tmp = tmp
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1200, "height": 800})
        self.context.route("**/*", self._only_proxyd)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        self.page.on("dialog", lambda dialog: dialog.accept())

    def _only_proxyd(self, route) -> None:
        if route.request.url.startswith(tuple(self.allowed)):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def _console(self, message) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def sign_in(self, token: str) -> None:
        page = self.page
        page.goto(self.origin + "/", wait_until="load")
        page.get_by_label("Management token", exact=True).fill(token)
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.get_by_role("button", name="Sign out").wait_for(timeout=5000)

    def go(self, path: str, heading: str) -> None:
        self.page.get_by_role("navigation", name="Main").get_by_role("link", name=heading).click()
        self.page.get_by_role("heading", level=1, name=heading).wait_for(timeout=5000)

    def axe(self) -> list[str]:
        if not AXE.is_file():
            raise AssertionError("axe-core is missing: run npm ci in web/")
        page = self.page
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.evaluate(AXE.read_text())  # through the devtools protocol: CSP stays enforced
        results = page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".filter(v => ['serious', 'critical'].includes(v.impact))"
            ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"
        )
        return results

    def shot(self, name: str) -> None:
        folder = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") else self.tmp
        folder.mkdir(parents=True, exist_ok=True)
        self.page.evaluate("() => window.scrollTo(0, 0)")
        self.page.wait_for_timeout(100)
        self.page.screenshot(path=str(folder / f"{name}.png"), type="png")


@pytest.fixture
def browser():
    binary = chromium_binary()
    if binary is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=binary, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def test_admin_manages_a_proxy_and_sees_its_requests_live(proxyd, browser, backend_url, tmp_path):
    ui = Session(browser, proxyd.api_url, tmp_path)
    page = ui.page
    ui.sign_in(proxyd.token("admin", subject="octo-admin"))
    who = page.get_by_label("Signed in", exact=True)
    assert "octo-admin" in who.inner_text() and "admin" in who.inner_text()
    page.get_by_role("heading", level=1, name="Dashboard").wait_for()
    assert ui.axe() == []

    # create a proxy: first with a bad target (error next to its field), then a good one
    ui.go("/proxies", "Proxies")
    page.get_by_role("button", name="New proxy").click()
    form = page.locator("#create-proxy")
    form.get_by_label("Hostname", exact=True).fill("app.test")
    form.get_by_label("Target URL", exact=True).fill("ftp://nowhere")
    form.get_by_role("button", name="Create proxy").click()
    error = form.locator("[data-field=targetUrl] .field-error")
    error.wait_for(timeout=5000)
    assert "targetUrl" in error.inner_text()
    assert form.get_by_label("Target URL", exact=True).get_attribute("aria-invalid") == "true"
    form.get_by_label("Target URL", exact=True).fill(backend_url)
    form.get_by_role("button", name="Create proxy").click()
    row = page.get_by_role("row").filter(has_text="app.test")
    row.wait_for(timeout=5000)
    page.keyboard.press("/")  # jumps to the search box
    page.keyboard.type("app.")
    assert page.get_by_role("link", name="localhost").count() == 0
    assert row.is_visible()
    assert "enabled" in row.inner_text() and backend_url in row.inner_text()
    assert ui.axe() == []
    ui.shot("proxies")

    # the live tail shows requests sent through the proxy within 2 s
    ui.go("/logs", "Request logs")
    page.get_by_text("live", exact=True).wait_for(timeout=5000)
    time.sleep(0.3)  # let the subscription reach the server
    for n in range(3):
        answer = httpx.get(f"{proxyd.http_url}/hello/{n}", headers={"Host": "app.test"})
        assert answer.status_code == 200
    started = time.monotonic()
    live = page.get_by_role("table", name="Live requests")
    live.get_by_text("/hello/2").wait_for(timeout=2000)
    assert time.monotonic() - started < 2.0
    assert live.get_by_text("/hello/0").is_visible()
    live.get_by_text("/hello/1").click()
    assert "/hello/1" in page.get_by_label("Request detail", exact=True).inner_text()
    assert ui.axe() == []
    ui.shot("logs")

    # edit the proxy on its own page, then delete it
    ui.go("/proxies", "Proxies")
    page.get_by_role("link", name="app.test").click()
    page.get_by_role("heading", level=1, name="app.test").wait_for()
    edit = page.locator("#edit-proxy")
    edit.get_by_label("Allowed GitHub users", exact=True).fill("octocat\nhubot")
    edit.get_by_label("Preserve Host header", exact=True).check()
    edit.get_by_role("button", name="Save changes").click()
    page.get_by_role("status").filter(has_text="Saved.").wait_for(timeout=5000)
    stored = proxyd_proxy(proxyd, "app.test")
    assert stored["authRequiredUsers"] == ["octocat", "hubot"]
    assert stored["preserveHostHeader"] is True
    assert ui.axe() == []
    ui.shot("proxy")
    page.get_by_role("button", name="Delete", exact=True).first.click()
    page.get_by_role("heading", level=1, name="Proxies").wait_for(timeout=5000)
    page.get_by_role("link", name="localhost").wait_for(timeout=5000)
    page.get_by_role("link", name="app.test").wait_for(state="detached", timeout=5000)
    assert proxyd_proxy(proxyd, "app.test") is None

    # the route matcher answers with the edge's decision
    gql(
        proxyd,
        'mutation ($t: String!) { createProxy(input: {hostname: "m.test", targetUrl: $t}) '
        "{ hostname } }",
        t=backend_url,
    )
    gql(
        proxyd,
        'mutation { createRoute(input: {routeId: "api", pathPattern: "/api", '
        'targetType: "url", targetValue: "http://127.0.0.1:9", priority: 80}) { routeId } }',
    )
    ui.go("/routes", "Routes")
    page.get_by_label("Hostname", exact=True).fill("m.test")
    page.get_by_label("Path", exact=True).fill("/api/users")
    page.get_by_role("button", name="Match").click()
    answer = page.locator(".match-answer")
    answer.wait_for(timeout=5000)
    assert "Route api" in answer.inner_text() and "route api wins" in answer.inner_text()
    page.get_by_label("Path", exact=True).fill("/apix")
    page.get_by_role("button", name="Match").click()
    page.get_by_text("The proxy's own target").wait_for(timeout=5000)
    assert ui.axe() == []
    ui.shot("routes")
    # create a route in the UI (a fractional priority first), then delete it
    page.get_by_role("button", name="New route").click()
    form = page.locator("#route-form")
    form.get_by_label("Path (prefix, or regex)", exact=True).fill("/docs")
    form.get_by_label("Target", exact=True).fill("http://127.0.0.1:9")
    form.get_by_label("Priority (higher first)", exact=True).fill("1.5")
    form.get_by_role("button", name="Create route").click()
    assert "whole number" in form.locator("[data-field=priority] .field-error").inner_text()
    form.get_by_label("Priority (higher first)", exact=True).fill("95")
    form.get_by_role("button", name="Create route").click()
    row = page.get_by_role("row").filter(has_text="/docs")
    row.wait_for(timeout=5000)
    assert row.locator("td").first.inner_text() == "95"  # sorted by priority, highest first
    table = page.get_by_role("table", name="Routes, highest priority first")
    priorities = [int(t) for t in table.locator("tbody tr td:first-child").all_inner_texts()]
    assert priorities == sorted(priorities, reverse=True) and 95 in priorities
    row.get_by_role("button", name="Delete").click()
    row.wait_for(state="detached", timeout=5000)

    for heading in ("Certificates", "OAuth", "Services", "Application logs", "Dashboard"):
        ui.go("/", heading)
        assert ui.axe() == [], heading
    page.wait_for_timeout(500)  # the dashboard's charts
    ui.shot("dashboard")

    assert ui.blocked == [], "the UI asked for something outside proxyd"
    assert ui.errors == []


def gql(proxyd, query: str, **variables: str) -> dict:
    answer = httpx.post(
        proxyd.api_url + "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {proxyd.token('admin')}"},
    ).json()
    assert "errors" not in answer, answer
    return answer["data"]


def proxyd_proxy(proxyd, hostname: str) -> dict | None:
    return gql(
        proxyd,
        "query ($h: String!) { proxy(hostname: $h) { hostname authRequiredUsers preserveHostHeader } }",
        h=hostname,
    )["proxy"]


def test_user_scope_is_read_only(proxyd, browser, tmp_path):
    gql(
        proxyd,
        'mutation { createProxy(input: {hostname: "ro.test", targetUrl: "http://127.0.0.1:9"}) { hostname } }',
    )
    ui = Session(browser, proxyd.api_url, tmp_path)
    page = ui.page
    ui.sign_in(proxyd.token("user", subject="viewer"))
    assert "read-only" in page.get_by_label("Signed in", exact=True).inner_text()
    ui.go("/proxies", "Proxies")
    page.get_by_role("row").filter(has_text="ro.test").wait_for(timeout=5000)
    for name in ("New proxy", "Disable", "Delete ro.test"):
        button = page.get_by_role("button", name=name, exact=True).first
        assert button.is_disabled(), name
        assert "scope admin" in button.get_attribute("title")
    # a mutation forced from the page's own context is refused by proxyd
    answer = page.evaluate(
        """async () => {
            const token = JSON.parse(sessionStorage.getItem('proxyd.session')).token;
            const r = await fetch('/graphql', {method: 'POST', headers: {
                'Content-Type': 'application/json', Authorization: 'Bearer ' + token},
                body: JSON.stringify({query: 'mutation { deleteProxy(hostname: "ro.test") }'})});
            return await r.json();
        }"""
    )
    assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert gql(proxyd, '{ proxy(hostname: "ro.test") { hostname } }')["proxy"] is not None
    # every page opens read-only, without console errors
    disabled = 0
    for heading in ("Dashboard", "Routes", "Certificates", "Request logs", "OAuth", "Services"):
        ui.go("/", heading)
        buttons = page.locator("main button.primary, main button.danger")
        for i in range(buttons.count()):
            if buttons.nth(i).inner_text() not in ("Match", "Apply filters"):
                assert buttons.nth(i).is_disabled(), (heading, buttons.nth(i).inner_text())
                disabled += 1
    assert disabled >= 5  # New route, New certificate, Register service, revoke buttons...
    ui.go("/", "Application logs")
    page.get_by_text("needs a token with scope 'admin'").wait_for(timeout=5000)
    assert ui.blocked == [] and ui.errors == []


EDITOR = "document.querySelector('.graphiql-query-editor .CodeMirror')?.CodeMirror"


def test_graphiql_runs_a_query_and_a_subscription(proxyd, browser, tmp_path):
    """GraphiQL picks up the UI's token, runs a query, shows the docs, runs a subscription."""
    gql(
        proxyd,
        'mutation { createProxy(input: {hostname: "gq.test", targetUrl: "http://127.0.0.1:9"}) { hostname } }',
    )
    ui = Session(browser, proxyd.api_url, tmp_path)
    page = ui.page
    ui.sign_in(proxyd.token("admin", subject="playground-user"))
    page.goto(proxyd.api_url + "/graphql", wait_until="load")
    page.wait_for_function(f"() => ({EDITOR}?.getValue() ?? '').includes('viewer')", timeout=10000)
    page.locator(".graphiql-execute-button").click()
    result = page.locator(".graphiql-response")
    page.wait_for_function(
        "() => document.querySelector('.graphiql-response').innerText.includes('playground-user')",
        timeout=10000,
    )
    assert '"status": "ok"' in result.inner_text()
    ui.shot("graphiql")
    # the schema docs are browsable
    page.get_by_role("button", name="Show Documentation Explorer").click()
    page.get_by_text("Query", exact=True).first.wait_for(timeout=5000)
    # a subscription over graphql-transport-ws
    page.goto(
        proxyd.api_url
        + "/graphql?query="
        + quote("subscription { events { eventType hostname } }"),
        wait_until="load",
    )
    page.wait_for_function(
        f"() => ({EDITOR}?.getValue() ?? '').startsWith('subscription')", timeout=10000
    )
    page.wait_for_timeout(300)
    page.locator(".graphiql-execute-button").click()
    # events reach the open subscription (retried: the socket may still be connecting)
    has_event = "() => document.querySelector('.graphiql-response').innerText.includes('{}')"
    response = page.locator(".graphiql-response")
    for attempt in range(10):
        gql(
            proxyd,
            "mutation ($h: String!) { createProxy(input: {hostname: $h, "
            'targetUrl: "http://127.0.0.1:9"}) { hostname } }',
            h=f"gq{attempt}.test",
        )
        try:
            page.wait_for_function(has_event.format(f"gq{attempt}.test"), timeout=1000)
            break
        except sync_api.TimeoutError:
            continue
    else:
        page.screenshot(path=str(tmp_path / "graphiql-failed.png"))
        raise AssertionError(
            "the subscription in GraphiQL never showed an event: " + response.inner_text()[:300]
        )
    assert '"eventType": "' in response.inner_text().replace("\xa0", " ")
    assert ui.blocked == [] and ui.errors == []


@pytest.fixture
def github():
    fake = FakeGitHub().start()
    yield fake
    fake.stop()


def test_sign_in_with_github_through_proxyds_authorization_server(
    start_proxyd, github, browser, tmp_path
):
    """Authorization code + PKCE as the built-in client proxyd-web; tokens refreshed before expiry."""
    proxyd = start_oauth_proxyd(
        start_proxyd, github, OAUTH_ADMIN_USERS="alice", OAUTH_ACCESS_TOKEN_LIFETIME="8"
    )
    ui = Session(browser, proxyd.api_url, tmp_path, also=[github.url])
    page = ui.page
    page.goto(proxyd.api_url + "/", wait_until="load")
    page.get_by_role("button", name="Sign in with GitHub").click()
    # proxyd's consent page names the UI's client; approving goes to GitHub (the stand-in)
    page.get_by_text("proxyd web UI").first.wait_for(timeout=5000)
    page.locator("button[value=approve]").click()
    page.get_by_role("button", name="Sign out").wait_for(timeout=10000)
    assert page.url == proxyd.api_url + "/"
    who = page.get_by_label("Signed in").inner_text()
    assert "alice" in who and "admin" in who
    stored = page.evaluate("() => JSON.parse(sessionStorage.getItem('proxyd.session'))")
    assert stored["via"] == "github" and stored["refreshToken"]
    assert page.evaluate("() => localStorage.length") == 0  # never localStorage
    # the access token is replaced before it expires, and the new one works
    page.wait_for_function(
        "(old) => JSON.parse(sessionStorage.getItem('proxyd.session')).token !== old",
        arg=stored["token"],
        timeout=15000,
    )
    ui.go("/proxies", "Proxies")
    page.get_by_role("link", name="localhost").wait_for(timeout=5000)
    # the built-in client allows exactly the UI's callback and nothing else
    evil = httpx.get(
        proxyd.api_url + "/authorize",
        params={
            "response_type": "code",
            "client_id": "proxyd-web",
            "redirect_uri": "https://evil.example/signin/callback",
            "code_challenge": "a" * 43,
            "code_challenge_method": "S256",
        },
    )
    assert evil.status_code == 400 and "evil.example" not in evil.headers.get("location", "")
    # the built-in client is listed on the OAuth page, with its one exact redirect URI
    ui.go("/oauth", "OAuth")
    page.get_by_role("button", name="proxyd web UI").click()
    detail = page.get_by_role("region", name="Client proxyd web UI")
    assert f"{proxyd.api_url}/signin/callback" in detail.inner_text()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in with GitHub").wait_for(timeout=5000)
    assert page.evaluate("() => sessionStorage.getItem('proxyd.session')") is None
    assert ui.errors == []
    assert [u for u in ui.blocked if not u.startswith(github.url)] == []


@pytest.fixture
def pebble(tmp_path_factory):
    server = Pebble(tmp_path_factory.mktemp("pebble"), free_port(), free_port())
    yield server
    server.stop()


def test_certificate_order_stages_appear_live(start_proxyd, pebble, browser, tmp_path):
    proxyd = start_proxyd("acme", **pebble.env())
    ui = Session(browser, proxyd.api_url, tmp_path)
    page = ui.page
    ui.sign_in(proxyd.token("admin"))
    ui.go("/certificates", "Certificates")
    page.get_by_role("button", name="New certificate").click()
    form = page.locator("#create-certificate")
    form.get_by_label("Name", exact=True).fill("ui-cert")
    form.get_by_label("Domains", exact=True).fill("ui.example.test")
    form.get_by_role("button", name="Order certificate").click()
    stages = page.locator("ol.stages li[data-stage]")
    page.locator("ol.stages li[data-stage=ready]").wait_for(timeout=60000)
    seen = [stages.nth(i).get_attribute("data-stage") for i in range(stages.count())]
    assert seen[-1] == "ready" and len(seen) >= 2, seen  # stages arrived one by one
    page.get_by_role("row").filter(has_text="ui.example.test").get_by_text("active").wait_for(
        timeout=5000
    )
    assert "Pebble" in page.get_by_role("row").filter(has_text="ui.example.test").inner_text()
    assert ui.axe() == []
    ui.shot("certificates")
    assert ui.blocked == [] and ui.errors == []

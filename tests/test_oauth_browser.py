"""The consent page in a real browser (headless Chromium driven by Playwright): a page on another
origin that frames it gets nothing rendered (X-Frame-Options DENY, CSP frame-ancestors 'none'),
while the same URL opened top-level shows the consent form."""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.fake_github import FakeGitHub
from tests.support.oauth import authorize_url, pkce, register, start_oauth_proxyd

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_binary() -> str | None:
    for candidate in ("/usr/bin/chromium", "/usr/lib/chromium/chromium"):
        if Path(candidate).exists():
            return candidate
    return shutil.which("chromium")


@pytest.fixture
def github():
    fake = FakeGitHub().start()
    yield fake
    fake.stop()


@pytest.fixture
def framing_server():
    """Serves one page that frames the URL in `pages["frame"]`, from another loopback port."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = (
                "<!doctype html><title>framer</title><h1>outer page</h1>"
                f"<iframe id=consent src='{pages['frame']}' width=800 height=600></iframe>"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", pages
    finally:
        httpd.shutdown()


def test_consent_page_cannot_be_framed(start_proxyd, github, framing_server):
    binary = chromium_binary()
    if binary is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    proc = start_oauth_proxyd(start_proxyd, github)
    issuer = proc.api_url
    client = register(issuer, client_name="Framed client")
    _, challenge = pkce()
    consent_url = authorize_url(issuer, client["client_id"], challenge)
    outer_url, pages = framing_server
    pages["frame"] = consent_url

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=binary, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            answers = []
            page.on("response", lambda r: answers.append(r) if r.url.startswith(issuer) else None)
            page.goto(outer_url, wait_until="load")
            page.wait_for_timeout(500)
            assert page.locator("h1").inner_text() == "outer page"
            # proxyd did answer the framed request with the consent page and its headers...
            framed = [r for r in answers if "/authorize" in r.url]
            assert framed, "the frame never requested the consent page"
            headers = framed[0].headers
            assert framed[0].status == 200
            assert headers["x-frame-options"] == "DENY"
            assert "frame-ancestors 'none'" in headers["content-security-policy"]
            # ...but the browser refused to render it inside the frame
            children = [f for f in page.frames if f != page.main_frame]
            assert len(children) == 1
            frame = children[0]
            assert not frame.url.startswith(issuer), frame.url
            assert frame.query_selector("button[value=approve]") is None
            assert "Framed client" not in frame.content()

            # the same URL opened top-level renders the consent form
            top = browser.new_page()
            response = top.goto(consent_url, wait_until="load")
            assert response is not None and response.status == 200
            assert "Framed client" in top.content()
            assert top.locator("button[value=approve]").is_visible()
        finally:
            browser.close()

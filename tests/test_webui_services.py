"""The web UI's Services page in real headless Chromium against a real proxyd, Redis and a private
dockerd (the session fixture, with the local busybox image): create a Docker service through the
form (a validation error first, next to its field), see it running, its log lines (the last lines,
then a new one live), its stats, stop it and see the status change live (also when Docker changes
it behind proxyd's back), a read-only session's disabled controls, then delete it with its proxy.
axe-core finds no serious or critical violation; nothing is loaded from another origin.

Set UPDATE_SCREENSHOTS=1 to refresh docs/screenshots/services.png.
"""

from __future__ import annotations

import httpx
import pytest

from proxyd.api.webui import DIST
from tests.support.docker import TEST_IMAGE
from tests.test_webui_browser import Session, browser, gql  # noqa: F401 - the browser fixture

pytestmark = pytest.mark.skipif(
    not (DIST / "index.html").is_file(), reason="the web UI is not built (npm run build in web/)"
)

COMMAND = '/bin/sh -c "echo ui-started-marker; exec /bin/busybox httpd -f -v -p 8080 -h /www"'


@pytest.fixture
def docker_proxyd(start_proxyd, docker_daemon):
    return start_proxyd(DOCKER_HOST=docker_daemon.host, DOCKER_STOP_TIMEOUT="1")


def status_badge(row):
    return row.locator("[data-status]").first


def test_docker_service_from_the_form_to_delete(docker_proxyd, docker_daemon, browser, tmp_path):  # noqa: F811
    proxyd = docker_proxyd
    gql(
        proxyd,
        'mutation { registerExternalService(input: {serviceName: "billing", '
        'targetUrl: "http://127.0.0.1:9", description: "payments backend"}) { serviceName } }',
    )
    ui = Session(browser, proxyd.api_url, tmp_path)
    page = ui.page
    ui.sign_in(proxyd.token("admin", subject="ops"))
    ui.go("/services", "Services")
    table = page.get_by_role("table", name="Services")
    # all three types in one table, with a type filter
    for name, kind in (("billing", "external"), ("api", "internal")):
        assert kind in table.get_by_role("row").filter(has_text=name).inner_text()
    page.get_by_label("Type", exact=True).select_option("external")
    table.get_by_role("row").filter(has_text="api").wait_for(state="detached", timeout=5000)
    assert table.get_by_role("row").filter(has_text="billing").is_visible()
    page.get_by_label("Type", exact=True).select_option("")
    assert ui.axe() == []

    # the form: a validation error from proxyd appears next to its field, then a good create
    page.get_by_role("button", name="New Docker service").click()
    form = page.locator("#create-service")
    form.get_by_label("Name", exact=True).fill("uiweb")
    form.get_by_label("Image", exact=True).fill(TEST_IMAGE)
    form.get_by_label("Command", exact=True).fill(COMMAND)
    form.get_by_label("Memory limit", exact=True).fill("lots")
    form.get_by_label("Container port", exact=True).fill("8080")
    form.get_by_label("Make a proxy for it (NAME.BASE_DOMAIN, or the hostname below)").check()
    form.get_by_label("Proxy hostname", exact=True).fill("uiweb.localhost")
    form.get_by_role("button", name="Create service").click()
    error = form.locator("[data-field=memoryLimit] .field-error")
    error.wait_for(timeout=5000)
    assert "memoryLimit must look like 512m" in error.inner_text()
    assert form.get_by_label("Memory limit", exact=True).get_attribute("aria-invalid") == "true"
    assert ui.axe() == []  # the form, with its error
    form.get_by_label("Memory limit", exact=True).fill("64m")
    # a port error goes next to the port row it names
    form.get_by_role("button", name="Add port").click()
    form.get_by_label("Container port", exact=True).nth(1).fill("9000")
    form.get_by_label("Host port", exact=True).nth(1).fill("80")
    form.get_by_role("button", name="Create service").click()
    error = form.locator("[data-field='ports.1'] .field-error")
    error.wait_for(timeout=5000)
    assert "port 80" in error.inner_text()
    assert form.locator("[data-field=memoryLimit] .field-error").count() == 0
    assert form.get_by_label("Host port", exact=True).nth(1).get_attribute("aria-invalid") == "true"
    form.get_by_role("button", name="Remove port row 2").click()
    form.get_by_role("button", name="Create service").click()

    # its panel: running, with the memory limit, its port and its proxy
    panel = page.get_by_role("region", name="uiweb", exact=True)
    panel.get_by_role("heading", name="uiweb").wait_for(timeout=20000)
    assert page.url.endswith("/services/uiweb")
    row = table.get_by_role("row").filter(has_text="uiweb")
    assert status_badge(row).get_attribute("data-status") == "running"
    assert "64m" in panel.inner_text()
    ports = panel.get_by_role("table", name="Ports of uiweb")
    assert "8080/tcp" in ports.inner_text() and "127.0.0.1" in ports.inner_text()
    assert panel.get_by_role("link", name="uiweb.localhost").is_visible()

    # logs: the last lines, then a line written now appears live
    log = panel.get_by_role("log", name="Log of uiweb")
    log.get_by_text("ui-started-marker").wait_for(timeout=10000)
    page.get_by_role("status", name="Log follow").filter(has_text="live").wait_for(timeout=5000)
    page.wait_for_timeout(300)  # the follow subscription reaches Docker
    assert "response:404" not in log.inner_text()
    answer = httpx.get(f"{proxyd.http_url}/nothing-here", headers={"Host": "uiweb.localhost"})
    assert answer.status_code == 404  # busybox httpd answers through the proxy, and logs it
    docker_daemon.cli(
        "exec", "proxyd-uiweb", "/bin/sh", "-c", "echo live-line-marker >/proc/1/fd/1"
    )
    for text in ("response:404", "live-line-marker"):
        page.wait_for_function(
            "(text) => document.querySelector('pre.log').innerText.includes(text)",
            arg=text,
            timeout=5000,
        )

    # stats from Docker's stats API: memory against the 64 MiB limit, network and block I/O
    memory = panel.locator("[data-stat=memory]")
    memory.wait_for(timeout=15000)
    assert "of 64.0 MiB" in memory.inner_text()
    assert "in," in panel.locator("[data-stat=network]").inner_text()
    assert "read," in panel.locator("[data-stat=block]").inner_text()
    assert "%" in panel.locator("[data-stat=cpu]").inner_text()
    panel.get_by_role("img", name="CPU and memory (%) of uiweb").wait_for(timeout=10000)
    assert ui.axe() == []
    ui.shot("services")

    # a read-only session sees the service but cannot touch it
    viewer = Session(browser, proxyd.api_url, tmp_path)
    viewer.sign_in(proxyd.token("user", subject="viewer"))
    viewer.page.goto(proxyd.api_url + "/services/uiweb", wait_until="load")
    viewer_panel = viewer.page.get_by_role("region", name="uiweb", exact=True)
    viewer_panel.get_by_role("heading", name="uiweb").wait_for(timeout=5000)
    for name in ("Stop", "Restart", "Edit", "Delete", "Add port", "Edit port http"):
        button = viewer_panel.get_by_role("button", name=name, exact=True)
        assert button.is_disabled(), name
        assert "scope admin" in button.get_attribute("title"), name
    assert viewer.page.get_by_role("button", name="New Docker service").is_disabled()
    assert viewer.blocked == [] and viewer.errors == []
    viewer.context.close()

    # stop in the UI: the badge changes, the follow ends, the stats stop
    panel.get_by_role("button", name="Stop", exact=True).click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('table [data-status]')]"
        ".some(b => b.closest('tr').innerText.includes('uiweb') && b.dataset.status === 'exited')",
        timeout=10000,
    )
    panel.get_by_text("the container is not running").wait_for(timeout=5000)
    # (Docker's event can reach the page before stopService answers: wait for the button)
    panel.locator("button:text-is('Start'):enabled").wait_for(timeout=5000)
    # a change made behind proxyd's back reaches the page live (serviceStatus), no reload
    page.evaluate("() => { window.__samePage = true; }")
    docker_daemon.cli("start", "proxyd-uiweb")
    page.wait_for_function(
        "() => [...document.querySelectorAll('table [data-status]')]"
        ".some(b => b.closest('tr').innerText.includes('uiweb') && b.dataset.status === 'running')",
        timeout=10000,
    )
    assert page.evaluate("() => window.__samePage") is True

    # delete, with its proxy (the checkbox is on when the service has one)
    panel.get_by_role("button", name="Delete", exact=True).click()
    confirm = page.get_by_role("alertdialog", name="Delete the service uiweb?")
    assert confirm.get_by_label("Also delete its proxy uiweb.localhost").is_checked()
    confirm.get_by_role("button", name="Delete uiweb").click()
    row.wait_for(state="detached", timeout=15000)
    assert page.url.endswith("/services")
    data = gql(
        proxyd,
        '{ service(name: "uiweb") { name } proxy(hostname: "uiweb.localhost") { hostname } }',
    )
    assert data == {"service": None, "proxy": None}
    assert docker_daemon.cli("ps", "-aq", "--filter", "name=proxyd-uiweb").strip() == ""
    assert ui.blocked == [], "the UI asked for something outside proxyd"
    assert ui.errors == []

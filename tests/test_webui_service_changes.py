"""Changing a running Docker service from its panel in the web UI, in real headless Chromium against
a real proxyd, Redis and a private dockerd: add a port (a refused host port first, its error shown
in the form), see it listed and published by Docker, edit it, remove it, and edit the service's
memory limit and environment through the Edit form. Every change asks for confirmation, says the
container restarts, and shows proxyd's notice that it was recreated.

Set UPDATE_SCREENSHOTS=1 to refresh docs/screenshots/service-ports.png.
"""

from __future__ import annotations

import json

import pytest

from proxyd.api.webui import DIST
from tests.support.docker import TEST_IMAGE
from tests.test_webui_browser import Session, browser, gql  # noqa: F401 - the browser fixture
from tests.test_webui_services import COMMAND, docker_proxyd  # noqa: F401 - the proxyd fixture

pytestmark = pytest.mark.skipif(
    not (DIST / "index.html").is_file(), reason="the web UI is not built (npm run build in web/)"
)

NAME = "uichange"


def inspect(docker_daemon) -> dict:
    return json.loads(docker_daemon.cli("inspect", f"proxyd-{NAME}"))[0]


def test_ports_and_settings_of_a_running_service_change_in_the_ui(
    docker_proxyd,  # noqa: F811
    docker_daemon,
    browser,  # noqa: F811
    tmp_path,
):
    proxyd = docker_proxyd
    created = gql(
        proxyd,
        "mutation($input: CreateServiceInput!) { createService(input: $input) { name status } }",
        input={
            "name": NAME,
            "image": TEST_IMAGE,
            "command": [COMMAND],
            "memoryLimit": "64m",
            "ports": [{"containerPort": 8080}],
        },
    )
    assert created["createService"] == {"name": NAME, "status": "running"}

    ui = Session(browser, proxyd.api_url, tmp_path)
    page = ui.page
    ui.sign_in(proxyd.token("admin", subject="ops"))
    page.goto(f"{proxyd.api_url}/services/{NAME}", wait_until="load")
    panel = page.get_by_role("region", name=NAME, exact=True)
    ports = panel.get_by_role("table", name=f"Ports of {NAME}")
    ports.wait_for(timeout=10000)
    assert "8080/tcp" in ports.inner_text()
    notice = panel.locator("p.notice")

    # add a port: a restricted host port is refused with proxyd's sentence, in the form
    panel.get_by_role("button", name="Add port", exact=True).click()
    add = panel.get_by_role("region", name=f"Add a port to {NAME}")
    add.get_by_label("Port name", exact=True).fill("admin")
    add.get_by_label("Container port", exact=True).fill("9090")
    add.get_by_label("Host port", exact=True).fill("80")
    add.get_by_role("button", name="Add port", exact=True).click()
    confirm = panel.get_by_role("alertdialog", name=f"Add the port and recreate {NAME}?")
    assert "restarts" in confirm.inner_text()
    assert ui.axe() == []  # the form with its confirmation
    confirm.get_by_role("button", name="Add and restart").click()
    refused = add.locator("[data-field=hostPort] .field-error")  # next to its field
    refused.wait_for(timeout=10000)
    assert "port 80 is restricted" in refused.inner_text()
    assert add.get_by_label("Host port", exact=True).get_attribute("aria-invalid") == "true"
    assert "admin" not in ports.inner_text()
    # without a host port, one is allocated; cancelling the confirmation sends nothing
    add.get_by_label("Host port", exact=True).fill("")
    add.get_by_role("button", name="Add port", exact=True).click()
    confirm.get_by_role("button", name="Cancel").click()
    confirm.wait_for(state="detached", timeout=2000)
    add.get_by_role("button", name="Add port", exact=True).click()
    confirm.get_by_role("button", name="Add and restart").click()
    row = ports.locator("tr[data-port=admin]")
    row.wait_for(timeout=20000)
    assert "9090/tcp" in row.inner_text() and "127.0.0.1" in row.inner_text()
    assert "recreated" in notice.inner_text() and "restarted" in notice.inner_text()
    host_port = int(row.locator("td").nth(2).inner_text())
    binding = inspect(docker_daemon)["HostConfig"]["PortBindings"]["9090/tcp"][0]
    assert (binding["HostIp"], int(binding["HostPort"])) == ("127.0.0.1", host_port)
    assert inspect(docker_daemon)["State"]["Running"] is True

    # edit it: another container port, same host port
    panel.get_by_role("button", name="Edit port admin").click()
    edit = panel.get_by_role("region", name="Edit port admin")
    assert edit.get_by_label("Host port", exact=True).input_value() == str(host_port)
    ui.shot("service-ports")  # the notice of the last change, two ports, one being edited
    edit.get_by_label("Container port", exact=True).fill("9091")
    edit.get_by_role("button", name="Save port").click()
    panel.get_by_role("alertdialog", name=f"Change port admin and recreate {NAME}?").get_by_role(
        "button", name="Save and restart"
    ).click()
    row.filter(has_text="9091/tcp").wait_for(timeout=20000)
    assert str(host_port) in row.inner_text()
    assert "9091/tcp" in inspect(docker_daemon)["HostConfig"]["PortBindings"]

    # remove it, confirmed
    panel.get_by_role("button", name="Remove port admin").click()
    remove = panel.get_by_role("alertdialog", name=f"Remove port admin of {NAME}?")
    assert "restarts" in remove.inner_text()
    remove.get_by_role("button", name="Remove admin and restart").click()
    row.wait_for(state="detached", timeout=20000)
    assert "9091/tcp" not in inspect(docker_daemon)["HostConfig"]["PortBindings"]
    ports_left = gql(proxyd, "{ ports { serviceName portName } }")["ports"]
    assert {"serviceName": NAME, "portName": "admin"} not in ports_left

    # edit the service: memory limit and environment; a bad value first, next to its field
    panel.get_by_role("button", name="Edit", exact=True).click()
    form = panel.locator("#edit-service")
    assert form.get_by_label("Memory limit", exact=True).input_value() == "64m"
    assert ui.axe() == []  # the Edit form
    form.get_by_label("Memory limit", exact=True).fill("lots")
    form.get_by_role("button", name="Save and recreate").click()
    panel.get_by_role("alertdialog", name=f"Recreate {NAME}?").get_by_role(
        "button", name="Save and restart"
    ).click()
    error = form.locator("[data-field=memoryLimit] .field-error")
    error.wait_for(timeout=10000)
    assert "memoryLimit must look like 512m" in error.inner_text()
    form.get_by_label("Memory limit", exact=True).fill("96m")
    form.get_by_label("Environment", exact=True).fill('{"GREETING": "hello-from-ui"}')
    form.get_by_role("button", name="Save and recreate").click()
    panel.get_by_role("alertdialog", name=f"Recreate {NAME}?").get_by_role(
        "button", name="Save and restart"
    ).click()
    form.wait_for(state="detached", timeout=20000)
    panel.get_by_text("96m", exact=True).wait_for(timeout=10000)
    panel.get_by_text("GREETING", exact=True).wait_for(timeout=10000)
    assert "recreated" in notice.inner_text()
    state = inspect(docker_daemon)
    assert state["HostConfig"]["Memory"] == 96 * 1024 * 1024
    assert "GREETING=hello-from-ui" in state["Config"]["Env"]
    assert state["State"]["Running"] is True
    assert "hello-from-ui" not in page.content()  # environment values are never shown

    gql(proxyd, f'mutation {{ deleteService(name: "{NAME}") }}')
    assert ui.blocked == [], "the UI asked for something outside proxyd"
    assert ui.errors == []

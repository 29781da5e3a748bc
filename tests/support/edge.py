"""Helpers for the edge conformance tests: a handle on a proxyd under test (raw connections to
its public listener, its log), proxyd processes started in the background, GraphQL set-up calls,
and the assertions on what reached the tripwire backend.
"""

from __future__ import annotations

import threading
import time

import httpx

from tests.support.processes import ProxydProcess
from tests.support.rawhttp import Raw, Response
from tests.support.tripwire import Tripwire

CREATE = "mutation($i: CreateProxyInput!) { createProxy(input: $i) { hostname } }"


class Edge:
    """One proxyd under test, the tripwire behind its proxies and a valid bearer token."""

    def __init__(
        self, proc: ProxydProcess, tripwire: Tripwire, token: str, others: dict | None = None
    ) -> None:
        self.proc = proc
        self.tripwire = tripwire
        self.token = token  # a valid bearer token for part.test and locked.test
        self.others = others or {}  # name -> Starting: more proxyd processes on the same Redis

    @property
    def port(self) -> int:
        return self.proc.http_port

    def raw(self, timeout: float = 2.0) -> Raw:
        return Raw(self.port, timeout)

    def exchange(self, data: bytes, method: str = "GET") -> Response | None:
        """Send data on a new connection and read the first response."""
        with self.raw() as conn:
            conn.send(data)
            return conn.response(method)

    def log_from(self, offset: int) -> str:
        return self.proc.log()[offset:]


def graphql(proc: ProxydProcess, token: str, query: str, variables: dict) -> dict:
    response = httpx.post(
        f"{proc.api_url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def wait_serving(port: int, host: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        response = httpx.get(f"http://127.0.0.1:{port}/", headers={"Host": host}, timeout=5)
        if response.status_code != 404:
            return
        time.sleep(0.05)
    raise AssertionError(f"{host} is not served")


class Starting:
    """A proxyd started in a background thread, so that its start-up overlaps the first tests."""

    def __init__(self, proc: ProxydProcess) -> None:
        self.proc = proc
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.proc.start()
        except BaseException as exc:  # noqa: BLE001 - handed to the test that waits for it
            self.error = exc

    def wait(self) -> ProxydProcess:
        self.thread.join(60)
        if self.error is not None:
            raise self.error
        assert not self.thread.is_alive(), "proxyd did not start within 60 s"
        return self.proc


def assert_nothing_reached(tripwire: Tripwire, settle: float = 0.15) -> None:
    """No request (not even a partial one) reached the backend."""
    tripwire.wait_for(lambda requests: bool(requests), settle)
    assert not tripwire.snapshot() and not tripwire.errors, (
        "reached the backend:\n" + tripwire.describe()
    )


def assert_no_smuggled(tripwire: Tripwire, settle: float = 0.15) -> None:
    tripwire.wait_for(lambda rs: any(r.path == b"/smuggled" for r in rs), settle)
    smuggled = [r for r in tripwire.snapshot() if r.path == b"/smuggled"]
    assert not smuggled, "a smuggled request reached the backend:\n" + tripwire.describe()


def assert_only_cut_off(tripwire: Tripwire) -> None:
    """Whatever reached the backend is a request head whose body was cut off (a streaming edge
    may forward the head before it meets a bad chunk): never a complete request."""
    tripwire.wait_for(lambda rs: all(r.cancelled or r.complete for r in rs), 2)
    requests = tripwire.snapshot()
    assert not tripwire.errors, tripwire.describe()
    assert all(not r.complete and r.cancelled for r in requests), tripwire.describe()


def assert_refused(
    edge: Edge, data: bytes, statuses: tuple[int, ...] = (400,), *, mid_body: bool = False
) -> Response:
    """data gets one of statuses, the connection closes, and nothing reaches the backend (with
    mid_body, at most a request head that is then cut off)."""
    with edge.raw() as conn:
        conn.send(data)
        response = conn.response()
        edge.tripwire.wait_for(lambda requests: bool(requests), 0.15)  # one settle for both
        assert_no_smuggled(edge.tripwire, settle=0)
        if mid_body:
            assert_only_cut_off(edge.tripwire)
        else:
            assert_nothing_reached(edge.tripwire, settle=0)
        assert response is not None, "the connection closed without an answer"
        assert response.status in statuses, response
        assert conn.closed(), "the connection stayed open after the refusal"
    return response

"""Conformance of proxyd's public HTTP/1.1 edge (issue 9, parts A and B), with raw sockets.

Every test sends exact bytes to a real proxyd process and reads the exact answer; a tripwire
backend (tests/support/tripwire.py) parses with httptools whatever proxyd forwards, so each test can
also assert what did NOT reach the backend: no smuggled second request, no unchecked path, no
forged identity header.

Most of these failed against the edge proxyd had before its rebuild (hypercorn + h11): they were
written first, as the attacks, and kept failing until the strict h1 server refused them.

Settings the new edge reads (EDGE_*) are passed with small values so that timeouts take about a
second; today's edge ignores them.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import NamedTuple

import pytest

from tests.support.edge import (
    CREATE,
    Edge,
    Starting,
    assert_nothing_reached,
    assert_refused,
    graphql,
    wait_serving,
)
from tests.support.processes import ProxydProcess, RedisServer
from tests.support.rawhttp import chunked, request
from tests.support.tripwire import Tripwire

MAX_REQUEST_LINE = 4096
MAX_HEADER_BYTES = 8192
MAX_HEADERS = 40
MAX_REQUESTS = 5
EDGE_ENV = {
    "EDGE_HEADER_TIMEOUT": "1",
    "EDGE_BODY_TIMEOUT": "1",
    "EDGE_KEEPALIVE_TIMEOUT": "1",
    "EDGE_MAX_REQUESTS_PER_CONNECTION": str(MAX_REQUESTS),
    "EDGE_MAX_REQUEST_LINE": str(MAX_REQUEST_LINE),
    "EDGE_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
    "EDGE_MAX_HEADERS": str(MAX_HEADERS),
    "EDGE_ALLOW_UNDERSCORES_IN_HEADERS": "false",
    "EDGE_PASS_SERVER_HEADER": "false",
}
OPEN, PART, LOCKED = "open.test", "part.test", "locked.test"  # auth off / /public/ excluded / all
FORGED = "203.0.113.66"  # the value of every forged header: it must never reach the backend
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: open.test\r\nX-Auth-User: admin\r\n\r\n"


# -- fixtures: one proxyd (and one tripwire) for the whole module --------------------------------------
@pytest.fixture(scope="module")
def tripwire():
    wire = Tripwire().start()
    yield wire
    wire.stop()


@pytest.fixture(scope="module")
def edge(redis_server: RedisServer, tmp_path_factory, tripwire: Tripwire):
    """The proxyd under test (EDGE_ENV), with the three proxies; two more proxyd processes on the
    same Redis (so serving the same proxies) start in the background for the tests that need
    other settings or stop their process."""
    redis_server.flush()
    proc = ProxydProcess(tmp_path_factory.mktemp("edge"), redis_server.url, **EDGE_ENV)
    others: dict[str, Starting] = {}
    try:
        proc.start()
        admin = proc.token("admin")
        common = {"targetUrl": tripwire.url, "enableHttps": False}
        graphql(proc, admin, CREATE, {"i": {"hostname": OPEN, **common}})
        auth = {**common, "authEnabled": True}
        graphql(proc, admin, CREATE, {"i": {"hostname": LOCKED, **auth}})
        excluded = {**auth, "authExcludedPaths": ["/public/"]}
        graphql(proc, admin, CREATE, {"i": {"hostname": PART, **excluded}})
        for host in (OPEN, LOCKED, PART):
            wait_serving(proc.http_port, host)
        lenient = {
            **EDGE_ENV,
            "EDGE_ALLOW_UNDERSCORES_IN_HEADERS": "true",
            "EDGE_PASS_SERVER_HEADER": "true",
        }
        for name, env in (("lenient", lenient), ("draining", EDGE_ENV)):
            data_dir = tmp_path_factory.mktemp(name)
            others[name] = Starting(ProxydProcess(data_dir, redis_server.url, **env))
        issued = proc.cli(
            "token", "issue", "--scope", "mcp", "--subject", "tester",
            "--audience", f"http://{PART}", "--audience", f"http://{LOCKED}",
        )  # fmt: skip
        assert issued.returncode == 0, issued.stderr
        yield Edge(proc, tripwire, issued.stdout.strip(), others)
    finally:
        for other in others.values():
            other.thread.join(60)
        stopping = [
            threading.Thread(target=p.stop) for p in (proc, *(o.proc for o in others.values()))
        ]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join(30)


def _other(edge: Edge, name: str) -> Edge:
    proc = edge.others[name].wait()
    wait_serving(proc.http_port, OPEN)
    return Edge(proc, edge.tripwire, edge.token)


@pytest.fixture(scope="module")
def lenient_edge(edge: Edge) -> Edge:
    """A second proxyd with underscores in header names allowed and the backend's Server header
    passed."""
    return _other(edge, "lenient")


@pytest.fixture(scope="module")
def draining_edge(edge: Edge) -> Edge:
    """A third proxyd (EDGE_ENV), for the test that stops it."""
    return _other(edge, "draining")


@pytest.fixture(autouse=True)
def fresh_tripwire(tripwire: Tripwire, request: pytest.FixtureRequest):
    """A clean record for each test; afterwards, the proxyd processes it used still run (a
    request that kills or stops the edge is an error, whatever the test asserted)."""
    tripwire.reset()
    yield
    for name in ("edge", "lenient_edge"):
        if name in request.fixturenames:
            proc = request.getfixturevalue(name).proc
            log = proc.log()
            assert proc.process.poll() is None and "received SIGTERM" not in log, (
                f"proxyd stopped (exit {proc.process.poll()}); was it signalled from outside "
                f"this test?\n{log[-2000:]}"
            )


# == A.1: CL + TE smuggling ===========================================================================
def _cl_te(path: str, host: str, version: str = "1.1", te: str = "Transfer-Encoding: chunked",
           extra: tuple[str, ...] = (), te_first: bool = False) -> bytes:  # fmt: skip
    # Decoded as chunked, the body is "AAAA" + a whole second request; Content-Length says 4.
    framing = [te, "Content-Length: 4"] if te_first else ["Content-Length: 4", te]
    return request(host, path, "POST", [*extra, *framing], chunked(b"AAAA" + SMUGGLED), version)


CL_TE_CASES = {
    "auth-off": lambda e: _cl_te("/x", OPEN),
    "http-1.0": lambda e: _cl_te("/x", OPEN, version="1.0"),
    "excluded-path": lambda e: _cl_te("/public/x", PART),
    "valid-token": lambda e: _cl_te("/x", LOCKED, extra=(f"Authorization: Bearer {e.token}",)),
    "te-obs-fold": lambda e: _cl_te("/x", OPEN, te="Transfer-Encoding:\r\n chunked"),
    "te-before-cl": lambda e: _cl_te("/x", OPEN, te_first=True),
}


@pytest.mark.parametrize("case", CL_TE_CASES)
def test_cl_plus_te_is_refused_and_nothing_is_smuggled(edge: Edge, case: str) -> None:
    assert_refused(edge, CL_TE_CASES[case](edge))


def test_upstream_framing_is_computed_by_proxyd(edge: Edge) -> None:
    """A chunked upload with extensions and a trailer, then a Content-Length one: the backend
    parses each body exactly, and the client's trailer does not cross."""
    body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: " + FORGED.encode() + b"\r\n\r\n"
    with edge.raw() as conn:
        conn.send(request(OPEN, "/up1", "POST", ["Transfer-Encoding: chunked"], body))
        assert conn.response().status == 200
        conn.send(request(OPEN, "/up2", "POST", ["Content-Length: 3"], b"abc"))
        assert conn.response().status == 200
    seen = {r.path: r for r in edge.tripwire.snapshot()}
    assert seen[b"/up1"].body == b"hello world" and seen[b"/up1"].complete
    assert seen[b"/up2"].body == b"abc" and seen[b"/up2"].complete
    assert FORGED.encode() not in repr(seen[b"/up1"].headers).encode()
    assert not edge.tripwire.errors, edge.tripwire.describe()


# == A.2: early hang-up ==============================================================================
def _hang_up_while_upstream_works(edge: Edge) -> None:
    with edge.raw() as conn:
        conn.send(request(OPEN, "/slow"))
        assert edge.tripwire.wait_for(lambda rs: any(r.path == b"/slow" for r in rs), 3)


def test_early_hang_up_cancels_the_upstream_request(edge: Edge) -> None:
    _hang_up_while_upstream_works(edge)
    cancelled = edge.tripwire.wait_for(lambda rs: any(r.cancelled for r in rs), 2.5)
    assert cancelled, (
        "the upstream request ran on after the client left:\n" + edge.tripwire.describe()
    )


def test_early_hang_up_logs_no_traceback(edge: Edge) -> None:
    offset = len(edge.proc.log())
    _hang_up_while_upstream_works(edge)
    assert edge.tripwire.wait_for(lambda rs: any(r.cancelled for r in rs), 2.5)
    time.sleep(0.3)
    log = edge.log_from(offset)
    assert "Traceback" not in log and "UnboundLocalError" not in log, log[-3000:]


# == B.1: strict parsing ==============================================================================
def _raw(*lines: str, body: bytes = b"", end: str = "\r\n") -> bytes:
    return (end.join(lines) + end + end).encode("latin-1") + body


def _post(*framing: str, body: bytes) -> bytes:
    return request(OPEN, "/x", "POST", list(framing), body)


_LONG_HEADER = "X-Long: " + "a" * (MAX_HEADER_BYTES + 100)
_MANY_HEADERS = [f"X-H{i}: {'b' * 500}" for i in range(MAX_HEADER_BYTES // 500 + 2)]  # < count
_COUNT_HEADERS = [f"X-C{i}: c" for i in range(MAX_HEADERS + 10)]


class Case(NamedTuple):
    data: bytes
    statuses: tuple[int, ...] = (400,)
    refused_today: bool = False  # already refused by the edge before its rebuild
    mid_body: bool = False  # found in the body: the head may have been forwarded, then cut off


def _chunks(body: bytes, refused_today: bool = False) -> Case:
    return Case(_post("Transfer-Encoding: chunked", body=body), (400,), refused_today, True)


REFUSALS: dict[str, Case] = {
    # Transfer-Encoding other than a final chunked (RFC 9112 §6.1: 400 and close; h11 says 501)
    "te-chunked-not-final": Case(_post("Transfer-Encoding: chunked, identity", body=b"0\r\n\r\n")),
    "te-gzip": Case(_post("Transfer-Encoding: gzip", body=b"abc")),
    "te-two-headers": Case(_post("Transfer-Encoding: chunked", "Transfer-Encoding: identity", body=b"0\r\n\r\n")),
    "te-xchunked": Case(_post("Transfer-Encoding: xchunked", body=b"0\r\n\r\n")),
    "te-in-http-1.0": Case(request(OPEN, "/x", "POST", ["Transfer-Encoding: chunked"], chunked(b"a"), "1.0")),
    # Content-Length: duplicates and invalid values
    "cl-duplicate-same": Case(_post("Content-Length: 3", "Content-Length: 3", body=b"abc")),
    "cl-comma-list": Case(_post("Content-Length: 3, 3", body=b"abc")),
    "cl-conflicting": Case(_post("Content-Length: 3", "Content-Length: 4", body=b"abcd"), refused_today=True),
    "cl-plus": Case(_post("Content-Length: +3", body=b"abc"), refused_today=True),
    "cl-hex": Case(_post("Content-Length: 0x3", body=b"abc"), refused_today=True),
    "cl-negative": Case(_post("Content-Length: -3", body=b"abc"), refused_today=True),
    "cl-inner-space": Case(_post("Content-Length: 3 3", body=b"abc"), refused_today=True),
    "cl-empty": Case(_post("Content-Length: ", body=b""), refused_today=True),
    # chunk sizes and chunk framing
    "chunk-size-trailing-space": _chunks(b"3 \r\nabc\r\n0\r\n\r\n"),
    "chunk-size-0x": _chunks(b"0x3\r\nabc\r\n0\r\n\r\n", refused_today=True),
    "chunk-size-negative": _chunks(b"-3\r\nabc\r\n0\r\n\r\n", refused_today=True),
    "chunk-size-junk": _chunks(b"3g\r\nabc\r\n0\r\n\r\n", refused_today=True),
    "chunk-size-overflow": _chunks(b"1" + b"0" * 16 + b"3\r\nabc\r\n0\r\n\r\n"),
    "chunk-data-no-crlf": _chunks(b"3\r\nabcXX0\r\n\r\n", refused_today=True),
    "chunk-size-bare-lf": _chunks(b"3\nabc\r\n0\r\n\r\n", refused_today=True),
    # line structure, names and values
    "obs-fold": Case(request(headers=["X-Folded: a", " b"])),
    "bare-lf-line-ends": Case(_raw("GET / HTTP/1.1", f"Host: {OPEN}", end="\n")),
    "bare-lf-one-header": Case(f"GET / HTTP/1.1\r\nHost: {OPEN}\nX-A: b\r\n\r\n".encode()),
    "bare-cr-in-value": Case(request(headers=["X-Cr: a\rb"]), refused_today=True),
    "space-before-colon": Case(request(headers=["X-Space : a"]), refused_today=True),
    "space-in-name": Case(request(headers=["X Space: a"]), refused_today=True),
    "nul-in-value": Case(request(headers=["X-Nul: a\x00b"]), refused_today=True),
    "nul-in-name": Case(request(headers=["X-N\x00ul: a"]), refused_today=True),
    "cr-in-name": Case(request(headers=["X-C\rr: a"]), refused_today=True),
    "lf-in-value": Case(request(headers=["X-Lf: a\nX-Auth-User: admin"])),
    "lf-in-name": Case(request(headers=["X-L\nf: a"]), refused_today=True),
    "ctl-in-value": Case(request(headers=["X-Ctl: a\x01b"])),
    "missing-host": Case(_raw("GET / HTTP/1.1", "X-A: b"), refused_today=True),
    "two-hosts": Case(request(headers=[f"Host: {LOCKED}"]), refused_today=True),
    # HTTP versions other than 1.0 and 1.1
    "version-1.2": Case(request(version="1.2"), (400, 505)),
    "version-2.0": Case(request(version="2.0"), (400, 505)),
    "version-0.9": Case(request(version="0.9"), (400, 505)),
    "version-3.0": Case(request(version="3.0"), (400, 505)),
    "version-lowercase": Case(_raw("GET / http/1.1", f"Host: {OPEN}"), (400, 505), True),
    "version-11": Case(_raw("GET / HTTP/11", f"Host: {OPEN}"), (400, 505), True),
    # limits
    "request-line-over-limit": Case(request(path="/" + "a" * MAX_REQUEST_LINE), (414,)),
    "header-over-size-limit": Case(request(headers=[_LONG_HEADER]), (431,)),
    "header-block-over-size-limit": Case(request(headers=_MANY_HEADERS), (431,)),
    "header-count-over-limit": Case(request(headers=_COUNT_HEADERS), (431,)),
    # target forms
    "connect": Case(_raw("CONNECT open.test:80 HTTP/1.1", "Host: open.test:80"), (405, 501)),
    "asterisk-get": Case(request(path="*")),
    "asterisk-post": Case(request(method="POST", path="*", headers=["Content-Length: 0"])),
}  # fmt: skip


@pytest.mark.parametrize(
    "case",
    list(REFUSALS),
)
def test_malformed_request_is_refused_and_closed(edge: Edge, case: str) -> None:
    data, statuses, _, mid_body = REFUSALS[case]
    assert_refused(edge, data, statuses, mid_body=mid_body)


@pytest.mark.parametrize("case", ["bare-cr-in-value", "cl-conflicting", "nul-in-value"])
def test_refusal_says_why_in_one_plain_text_sentence(edge: Edge, case: str) -> None:
    response = assert_refused(edge, REFUSALS[case].data, REFUSALS[case].statuses)
    assert b"".join(response.header("content-type")).startswith(b"text/plain"), response
    assert 0 < len(response.body) < 300 and response.body.count(b"\n") == 1, response


# == B.2: absolute-form targets ======================================================================
def test_absolute_form_authority_decides_auth(edge: Edge) -> None:
    """The target names the protected host; Host names the open one: 401, nothing forwarded."""
    response = edge.exchange(request(OPEN, f"http://{LOCKED}/x"))
    assert_nothing_reached(edge.tripwire)
    assert response is not None and response.status == 401, response


def test_absolute_form_is_forwarded_in_origin_form_with_matching_host(edge: Edge) -> None:
    response = edge.exchange(request("nobody.test", f"http://{OPEN}/x?q=1"))
    assert response is not None and response.status == 200, response
    (seen,) = edge.tripwire.snapshot()
    assert seen.target == b"/x?q=1"
    assert seen.header("host") == [OPEN.encode()]


# == B.3: paths ======================================================================================
TRAVERSALS = [
    "/public/../secret",
    "/public/%2e%2e/secret",
    "/public/%2E%2E/secret",
    "/public%2F..%2Fsecret",
    "/public/%2e%2e%2Fsecret",
    "/public/./../secret",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_dot_segments_do_not_escape_an_excluded_path(edge: Edge, path: str) -> None:
    """Normalised, these are /secret: without a token they get 401 (or 400 if the edge refuses
    ambiguous encodings) and nothing reaches the backend."""
    response = edge.exchange(request(PART, path))
    assert_nothing_reached(edge.tripwire)
    assert response is not None and response.status in (400, 401), response


@pytest.mark.parametrize(
    ("path", "checked", "token"),
    [
        ("/public/a/./b/../c", b"/public/a/c", False),
        ("/secret/../public/x", b"/public/x", False),
        ("/public/%2e%2e/secret?q=1", b"/secret?q=1", True),
    ],
)
def test_backend_receives_exactly_the_checked_path(
    edge: Edge, path: str, checked: bytes, token: bool
) -> None:
    auth = [f"Authorization: Bearer {edge.token}"] if token else []
    response = edge.exchange(request(PART, path, headers=auth))
    assert response is not None
    if response.status == 400:  # the edge refuses dot segments instead of normalising: fine
        assert_nothing_reached(edge.tripwire)
        return
    assert response.status == 200, response
    assert [r.target for r in edge.tripwire.snapshot()] == [checked]


def test_other_encodings_pass_unchanged(edge: Edge) -> None:
    """Normalisation touches dot segments only: other escapes and the query reach the backend as
    the client wrote them (no decoding, no re-encoding)."""
    target = "/public/a%20b/c%3Bd?x=%2F&y=%2e%2e"
    response = edge.exchange(request(PART, target))
    assert response is not None and response.status == 200, response
    assert [r.target for r in edge.tripwire.snapshot()] == [target.encode()]


# == B.4: header hygiene =============================================================================
IDENTITY_HEADERS = [
    ("X-Auth-User", True),
    ("x-auth-user", True),
    ("X-AUTH-EMAIL", True),
    ("X_Auth_User", False),
    ("X-Auth_User", False),
    ("X-Forwarded-For", True),
    ("X_Forwarded_For", False),
    ("X-Forwarded-Host", True),
    ("X-Real-IP", True),
    ("X_Real_IP", False),
    ("Forwarded", True),
    ("True-Client-IP", False),
    ("CF-Connecting-IP", False),
    ("X-Client-IP", False),
    ("X-Cluster-Client-IP", False),
]


@pytest.mark.parametrize("name", [n for n, _ in IDENTITY_HEADERS])
def test_forged_identity_header_never_reaches_the_backend(edge: Edge, name: str) -> None:
    value = f"for={FORGED}" if name == "Forwarded" else FORGED
    response = edge.exchange(request(OPEN, "/who", headers=[f"{name}: {value}"]))
    assert response is not None and response.status == 200, response
    (seen,) = edge.tripwire.snapshot()
    assert FORGED.encode() not in b"".join(v for _, v in seen.headers), seen.headers


def test_forged_identity_header_stripped_on_protected_proxy(edge: Edge) -> None:
    forged = [f"{n}: {FORGED}" for n in ("X_Auth_User", "True-Client-IP", "X-Client-IP")]
    auth = f"Authorization: Bearer {edge.token}"
    response = edge.exchange(request(LOCKED, "/who", headers=[auth, *forged]))
    assert response is not None and response.status == 200, response
    (seen,) = edge.tripwire.snapshot()
    assert seen.header("x-auth-user") == [b"tester"]
    assert FORGED.encode() not in b"".join(v for _, v in seen.headers), seen.headers


def test_underscored_header_names_are_dropped_by_default(edge: Edge) -> None:
    response = edge.exchange(request(OPEN, "/u", headers=["X_Custom_Thing: 1", "X-Dash: 2"]))
    assert response is not None and response.status == 200, response
    (seen,) = edge.tripwire.snapshot()
    assert seen.header("x-dash") == [b"2"]
    assert not seen.header("x_custom_thing"), seen.headers


def test_underscored_header_names_pass_when_allowed(lenient_edge: Edge) -> None:
    response = lenient_edge.exchange(request(OPEN, "/u", headers=["X_Custom_Thing: 1"]))
    assert response is not None and response.status == 200, response
    (seen,) = lenient_edge.tripwire.snapshot()
    assert seen.header("x_custom_thing") == [b"1"]


def test_underscored_identity_names_are_dropped_even_when_underscores_allowed(
    lenient_edge: Edge,
) -> None:
    forged = [f"{n}: {FORGED}" for n in ("X_Auth_User", "X_Forwarded_For", "X_Real_IP")]
    response = lenient_edge.exchange(request(OPEN, "/u", headers=forged))
    assert response is not None and response.status == 200, response
    (seen,) = lenient_edge.tripwire.snapshot()
    assert FORGED.encode() not in b"".join(v for _, v in seen.headers), seen.headers


def test_response_carries_one_date(edge: Edge) -> None:
    response = edge.exchange(request(OPEN, "/d"))
    assert response is not None and response.status == 200, response
    assert len(response.header("date")) == 1, response.headers


def test_backend_server_header_is_hidden_when_not_passed(edge: Edge) -> None:
    response = edge.exchange(request(OPEN, "/s"))
    assert response is not None and response.status == 200, response
    assert b"tripwire/1" not in response.header("server"), response.headers


def test_backend_server_header_passes_when_enabled(lenient_edge: Edge) -> None:
    response = lenient_edge.exchange(request(OPEN, "/s"))
    assert response is not None and response.status == 200, response
    assert response.header("server") == [b"tripwire/1"], response.headers


# == B.5: connection lifetimes =======================================================================
def test_slowloris_headers_time_out(edge: Edge) -> None:
    """Headers dripped a byte every 0.2 s: the header timeout (1 s) closes the connection while
    the client is still sending (with 408, or without an answer)."""
    with edge.raw() as conn:
        conn.send(b"GET /slowloris HTTP/1.1\r\nHost: " + OPEN.encode() + b"\r\n")
        closed = False
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline and not closed:
            try:
                conn.send(b"X")
            except OSError:
                closed = True
                break
            closed = conn.closed(0.2)
        assert closed, "the server kept waiting for headers"
        if conn.buffer:
            response = conn.response()
            assert response is not None and response.status == 408, response
    assert_nothing_reached(edge.tripwire)


def test_stalled_upload_gets_408_closes_and_cancels_the_upstream(edge: Edge) -> None:
    with edge.raw(timeout=2.5) as conn:
        conn.send(request(OPEN, "/upload", "POST", ["Content-Length: 100000"], b"x" * 10))
        response = conn.response()
        assert response is not None and response.status == 408, response
        assert conn.closed()

    def upload_cut(requests: list) -> bool:
        return all(r.cancelled and not r.complete for r in requests if r.path == b"/upload")

    assert edge.tripwire.wait_for(upload_cut, 2), edge.tripwire.describe()


@pytest.mark.parametrize(
    "path_host", [("/idle", OPEN), ("/", "nobody.test")], ids=["proxied", "local-404"]
)
def test_idle_keep_alive_connection_closes(edge: Edge, path_host: tuple[str, str]) -> None:
    path, host = path_host
    with edge.raw() as conn:
        conn.send(request(host, path))
        assert conn.response() is not None
        assert conn.closed(within=2), "an idle keep-alive connection stayed open"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(request(OPEN, "/c", headers=["Connection: close"]), id="connection-close"),
        pytest.param(request(OPEN, "/c", version="1.0"), id="http-1.0"),
    ],
)
def test_connection_closes_after_the_response(edge: Edge, data: bytes) -> None:
    with edge.raw() as conn:
        conn.send(data)
        response = conn.response()
        assert response is not None and response.status == 200, response
        assert conn.closed(within=1.5), "the connection stayed open"


def test_max_requests_per_connection(edge: Edge) -> None:
    answered = 0
    with edge.raw() as conn:
        for i in range(MAX_REQUESTS + 2):
            try:
                conn.send(request(OPEN, f"/n{i}"))
            except OSError:
                break
            if conn.response() is None:
                break
            answered += 1
        assert answered == MAX_REQUESTS
        assert conn.closed()


def test_sigterm_closes_idle_connections_at_once_and_drains_in_flight(draining_edge: Edge) -> None:
    edge = draining_edge
    with edge.raw() as idle, edge.raw(timeout=5) as busy:
        idle.send(request(OPEN, "/before"))
        assert idle.response().status == 200
        busy.send(request(OPEN, "/slow?ms=1500"))
        assert edge.tripwire.wait_for(lambda rs: any(r.path == b"/slow" for r in rs), 3)
        edge.proc.process.send_signal(signal.SIGTERM)
        assert idle.closed(within=1), "an idle keep-alive connection stayed open after SIGTERM"
        response = busy.response()
        assert response is not None and response.status == 200, response
        assert response.body == b"tripwire saw GET /slow?ms=1500\n"
        assert busy.closed()
    assert edge.proc.process.wait(10) == 0


def test_pipelined_requests_are_answered_in_order(edge: Edge) -> None:
    pipeline = request(OPEN, "/p1") + request(OPEN, "/p2", "POST", ["Content-Length: 2"], b"hi")
    pipeline += request(OPEN, "/p3", "HEAD") + request(OPEN, "/p4")
    with edge.raw() as conn:
        conn.send(pipeline)
        bodies = [conn.response(m).body for m in ("GET", "POST", "HEAD", "GET")]
    assert bodies == [
        b"tripwire saw GET /p1\n",
        b"tripwire saw POST /p2\n",
        b"",
        b"tripwire saw GET /p4\n",
    ]
    assert [r.path for r in edge.tripwire.snapshot()] == [b"/p1", b"/p2", b"/p3", b"/p4"]


# == B.6: bodies =====================================================================================
def test_expect_100_continue_without_token_gets_401_not_100(edge: Edge) -> None:
    with edge.raw() as conn:
        conn.send(request(LOCKED, "/e", "POST", ["Content-Length: 5", "Expect: 100-continue"]))
        response = conn.response()
        assert response is not None and response.status == 401, response
    assert_nothing_reached(edge.tripwire)


def test_expect_100_continue_after_auth(edge: Edge) -> None:
    headers = ["Content-Length: 5", "Expect: 100-continue", f"Authorization: Bearer {edge.token}"]
    with edge.raw() as conn:
        conn.send(request(LOCKED, "/e", "POST", headers))
        interim = conn.response()
        assert interim is not None and interim.status == 100, interim
        conn.send(b"hello")
        final = conn.response()
        assert final is not None and final.status == 200, final
    (seen,) = edge.tripwire.snapshot()
    assert seen.body == b"hello"


@pytest.mark.parametrize(
    ("method", "path"), [("HEAD", "/h"), ("GET", "/status/204"), ("GET", "/status/304")]
)
def test_no_body_on_head_204_304(edge: Edge, method: str, path: str) -> None:
    """The next pipelined response starts right after the head: not a byte of body between."""
    with edge.raw() as conn:
        conn.send(request(OPEN, path, method) + request(OPEN, "/after"))
        first = conn.response(method)
        assert first is not None and first.status in (200, 204, 304), first
        assert b"HTTP/".startswith(bytes(conn.buffer[:5])), f"body bytes: {bytes(conn.buffer)!r}"
        second = conn.response()
        assert second is not None and second.body == b"tripwire saw GET /after\n", second


def test_chunked_response_is_relayed_and_trailers_dropped(edge: Edge) -> None:
    with edge.raw() as conn:
        conn.send(request(OPEN, "/chunked"))
        response = conn.response()
        assert response is not None and response.status == 200, response
        assert response.body == b"tripwire saw GET /chunked\n"
        conn.send(request(OPEN, "/after"))
        assert conn.response().body == b"tripwire saw GET /after\n"
    assert not response.trailers and b"secret" not in repr(response.headers).encode(), response


# == B.7: upgrades ===================================================================================
def test_websocket_upgrade_is_checked_for_auth_before_the_backend(edge: Edge) -> None:
    upgrade = [
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    response = edge.exchange(request(LOCKED, "/ws", headers=upgrade))
    assert_nothing_reached(edge.tripwire)
    assert response is not None and response.status in (401, 403), response


def test_h2c_upgrade_is_never_passed_on(edge: Edge) -> None:
    """h2c smuggling: a proxy that forwards `Upgrade: h2c` to a backend that speaks h2c, then
    tunnels, lets the client talk to the backend directly, past every check. Only `websocket` is
    an allowed upgrade: an h2c request is an ordinary request, its upgrade headers removed."""
    smuggle = [
        "Upgrade: h2c",
        "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
        "Connection: Upgrade, HTTP2-Settings",
    ]
    response = edge.exchange(request(OPEN, "/h2c", headers=smuggle))
    assert response is not None and response.status == 200, response
    (seen,) = edge.tripwire.snapshot()
    names = {name.lower() for name, _ in seen.headers}
    assert not names & {b"upgrade", b"http2-settings"}, seen.headers
    assert all(b"upgrade" not in v.lower() for v in seen.header("connection")), seen.headers

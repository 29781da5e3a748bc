"""CPU cost of proxyd's request path alone, without the kernel: a profiling tool, not a benchmark.

The real h1 server (H1Connection), Dispatcher, ProxyManager, ProxyApp, OAuth protection,
forwarder and upstream client serve requests from in-memory sockets: each client always has its
next `GET /` ready and each upstream connection answers with nginx's response at once. No
syscall for the traffic (trio's scheduler still polls epoll), so what is left is proxyd's own
Python work per request: the part that changes when proxyd's code changes.

    python -m bench.request_path_cost plain oauth            # us per request, min of rounds
    python -m bench.request_path_cost plain --logging        # with request logging (meter)

On a shared machine wall-clock numbers vary by 10-20 %. Instruction counts do not (about 0.2 %):
run under valgrind twice with different --requests and divide the difference, e.g.

    for n in 500 2500; do valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python -m bench.request_path_cost plain --requests $n --rounds 1 \\
        --redis-url redis://127.0.0.1:PORT/15; done

(an already running redis-server, run once before so that it holds the token signing key:
starting redis-server or generating an RSA key inside the run makes the setup's instruction
count vary). The tool adds its two proxies there if missing. Without --redis-url a throwaway
redis-server is started.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

import attrs
import trio

from bench.proxyd_target import start_redis
from proxyd.config.settings import load_settings
from proxyd.edge.dispatcher import Dispatcher
from proxyd.edge.fastsock import FastStream
from proxyd.edge.h1 import H1Connection, Registry
from proxyd.edge.h1_wire import EdgeLimits
from proxyd.edge.http1_response import Connection
from proxyd.edge.manager import ProxyManager
from proxyd.events.bus import EventBus
from proxyd.logs.writer import RequestLog
from proxyd.oauth.tokens import mint
from proxyd.runtime.defaults import install_defaults
from proxyd.store.models import Proxy
from proxyd.store.redis import connect
from proxyd.store.repository import Store

HOSTS = {"plain": "bench.local", "oauth": "oauth.local"}
UPSTREAM = ("http", "127.0.0.1", 9)  # never connected: the pool holds in-memory connections
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 01 Dec 2026 20:19:06 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 11\r\nConnection: keep-alive\r\n\r\n"
    b"hello world"
)
CONNECTIONS = 10  # like wrk -c10: the scheduler runs them in batches


class _NoSocket:
    def fileno(self) -> int:
        return -1

    def is_readable(self) -> bool:
        return False


class _Client(FastStream):
    """A client connection that has its next request ready `left` times, then closes."""

    def __init__(self, request: bytes, left: int) -> None:
        self.request = request
        self.left = left
        self.socket = _NoSocket()
        self.answers = 0
        self.first = b""

    def try_receive(self, max_bytes: int = 65536) -> bytes | None:
        if self.left <= 0:
            return b""
        self.left -= 1
        return self.request

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return self.try_receive() or b""

    async def send_all(self, data) -> None:
        if not self.answers:
            self.first = bytes(data)
        self.answers += 1

    async def aclose(self) -> None:
        pass


class _Upstream(FastStream):
    """An upstream connection that answers every request at once."""

    def __init__(self) -> None:
        self.socket = _NoSocket()
        self.asked = 0

    async def send_all(self, data) -> None:
        self.asked += 1

    def try_receive(self, max_bytes: int = 65536) -> bytes | None:
        if self.asked:
            self.asked -= 1
            return RESPONSE
        return None

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return self.try_receive() or b""

    async def aclose(self) -> None:
        pass


async def _setup(redis, redis_url: str, logging_on: bool):
    settings = load_settings({"REDIS_URL": redis_url}, env_file=None)
    store = Store(redis, settings.event_stream_maxlen)
    await install_defaults(store)
    target = "http://127.0.0.1:9"
    await store.ensure_proxy(Proxy(hostname=HOSTS["plain"], target_url=target, enable_https=False))
    await store.ensure_proxy(
        Proxy(hostname=HOSTS["oauth"], target_url=target, enable_https=False, auth_enabled=True)
    )
    token = await mint(
        redis,
        issuer=settings.issuer,
        subject="bench",
        scopes=["user"],
        audience=[f"http://{HOSTS['oauth']}"],
        private_key_b64=settings.oauth_jwt_private_key_b64,
    )
    manager = ProxyManager(settings, store, api_app=None, bus=EventBus())
    if logging_on:
        request_log = RequestLog(attrs.evolve(settings, request_logging=True), redis_url)
        request_log._limit = 1 << 62  # no writer here: keep every record (nothing is dropped)
        manager.request_log = request_log
    return manager, token


async def _measure(redis_url: str, kinds: list[str], requests: int, rounds: int, logging_on: bool):
    redis = connect(redis_url)
    async with redis, trio.open_nursery() as nursery:
        manager, token = await _setup(redis, redis_url, logging_on)
        await nursery.start(manager.run)
        dispatcher = Dispatcher(manager)
        limits = EdgeLimits(max_requests=1 << 62)
        for kind in kinds:
            host = HOSTS[kind].encode()
            auth = b"Authorization: Bearer " + token.encode() + b"\r\n" if kind == "oauth" else b""
            request = b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n" + auth + b"\r\n"
            app = manager.proxies[HOSTS[kind]]
            best = float("inf")
            for _ in range(rounds):
                for _ in range(CONNECTIONS):
                    upstream = _Upstream()
                    app.pool.release(Connection(upstream, _NoSocket(), UPSTREAM, upstream))
                clients = [_Client(request, requests // CONNECTIONS) for _ in range(CONNECTIONS)]
                registry = Registry()
                gc.collect()
                began = time.process_time()
                async with trio.open_nursery() as serving:
                    for client in clients:
                        connection = H1Connection(
                            client,
                            dispatcher,
                            limits,
                            scheme="http",
                            client=("127.0.0.1", 50000),
                            server=("127.0.0.1", 80),
                            registry=registry,
                        )
                        serving.start_soon(connection.serve)
                spent = time.process_time() - began
                served = sum(c.answers for c in clients)
                if served != CONNECTIONS * (requests // CONNECTIONS):
                    raise RuntimeError(f"{kind}: {served} answers for {requests} requests")
                if not clients[0].first.startswith(b"HTTP/1.1 200 "):
                    raise RuntimeError(f"{kind}: answered {clients[0].first[:300]!r}")
                best = min(best, spent / served * 1e6)
            print(f"{kind}: {best:.2f} us of CPU per request (min of {rounds} rounds)", flush=True)
        nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kinds", nargs="*", choices=sorted(HOSTS), default=["plain", "oauth"])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--logging", action="store_true", help="request logging on (meter)")
    parser.add_argument("--redis-url", help="a running redis (two proxies are added)")
    args = parser.parse_args()
    if args.redis_url:
        trio.run(_measure, args.redis_url, args.kinds, args.requests, args.rounds, args.logging)
        return
    with tempfile.TemporaryDirectory(prefix="proxyd-path-cost-") as tmp:
        redis_proc, port = start_redis(Path(tmp) / "redis")
        try:
            trio.run(
                _measure,
                f"redis://127.0.0.1:{port}/0",
                args.kinds,
                args.requests,
                args.rounds,
                args.logging,
            )
        finally:
            redis_proc.stop()


if __name__ == "__main__":
    main()

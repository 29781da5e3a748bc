"""DockerClient: the only place proxyd talks to Docker (aiodocker, run through trio-asyncio).

aiodocker is asyncio-only. `DockerClient.run()` opens one trio-asyncio loop inside proxyd's trio
tree and keeps it open; every call from any trio task goes through `loop.run_aio_coroutine`, and
streams (events, log follow) are relayed into bounded trio memory channels. Nothing outside
proxyd.docker imports aiodocker.

Every failure becomes a DockerUnavailable (the daemon cannot be reached: "Docker is not reachable
at ...") or a DockerFailure (the daemon answered with an error), each with one sentence.

aiodocker, aiohttp and trio-asyncio (about 10 MB per process) are loaded, and the asyncio loop is
opened, only once Docker first accepts a connection: until then every call first tries a plain
trio connection to DOCKER_HOST (a unix socket or tcp://host:port), and a refusal becomes the same
DockerUnavailable sentence. A proxyd on a machine without Docker never loads them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import trio

if TYPE_CHECKING:
    import aiodocker

log = logging.getLogger("proxyd.docker")

CALL_TIMEOUT = 60.0  # seconds for one Docker API call (create, stop, inspect, ...)
PROBE_TIMEOUT = 5.0  # seconds for the plain connection tried before the session is opened


class DockerError(Exception):
    """A Docker problem, with a GraphQL/CLI error code."""

    code = "DOCKER_ERROR"


class DockerUnavailable(DockerError):
    code = "DOCKER_UNAVAILABLE"


class DockerFailure(DockerError):
    """The daemon answered with an error (status kept: 404 means no such object)."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.status = status


class DockerClient:
    def __init__(self, url: str, api_version: str = "1.41") -> None:
        self.url = url
        self.api_version = api_version
        self._loop: Any = None
        self._docker: aiodocker.Docker | None = None
        self._nursery: trio.Nursery | None = None
        self._opening = trio.Lock()
        self.ready = trio.Event()

    # -- lifecycle -------------------------------------------------------------------------------
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Host the aiodocker session (opened by the first call Docker accepts) until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    async def _session(self) -> tuple[Any, aiodocker.Docker]:
        """The (asyncio loop, aiodocker session), opened once Docker accepts a connection."""
        if self._docker is None or self._loop is None:
            await self._probe()
            async with self._opening:
                if self._docker is None or self._loop is None:
                    if self._nursery is None:
                        raise self.unreachable("the Docker client is not running")
                    try:
                        await self._nursery.start(self._hold_session)
                    except ValueError as exc:  # aiodocker refuses the URL
                        raise self.unreachable(str(exc)) from None
        if self._docker is None or self._loop is None:
            raise self.unreachable("the Docker client is not running")
        return self._loop, self._docker

    async def _probe(self) -> None:
        """Connect to DOCKER_HOST with plain trio (no asyncio, no aiodocker) and hang up."""
        parts = urlsplit(self.url)
        try:
            with trio.fail_after(PROBE_TIMEOUT):
                if parts.scheme == "unix":
                    stream = await trio.open_unix_socket(parts.path)
                elif parts.scheme in ("tcp", "http", "https") and parts.hostname:
                    default = 443 if parts.scheme == "https" else 2375
                    stream = await trio.open_tcp_stream(parts.hostname, parts.port or default)
                else:
                    return  # anything else: let aiodocker judge the URL
                await stream.aclose()
        except trio.TooSlowError:
            raise self.unreachable(f"no answer within {PROBE_TIMEOUT:.0f}s") from None
        except ValueError as exc:  # e.g. a port out of range
            raise self.unreachable(str(exc)) from None
        except OSError as exc:
            raise self.unreachable(exc.strerror or f"{type(exc).__name__}: {exc}") from None

    async def _hold_session(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Own the asyncio loop and the aiodocker session until the client stops."""
        import trio_asyncio

        async with trio_asyncio.open_loop() as loop:
            self._loop = loop
            try:
                self._docker = await loop.run_aio_coroutine(self._open())
                self.ready.set()
                task_status.started()
                await trio.sleep_forever()
            finally:
                docker, self._docker = self._docker, None
                self._loop = None
                if docker is not None:
                    with trio.CancelScope(shield=True), trio.move_on_after(5):
                        await loop.run_aio_coroutine(docker.close())

    async def _open(self) -> aiodocker.Docker:
        import aiodocker

        version = (self.api_version or "auto").lstrip("v")
        return aiodocker.Docker(
            url=self.url, api_version="auto" if version == "auto" else f"v{version}"
        )

    def unreachable(self, reason: str) -> DockerUnavailable:
        return DockerUnavailable(f"Docker is not reachable at {self.url} ({reason}).")

    async def call(
        self, make: Callable[[aiodocker.Docker], Awaitable[Any]], timeout: float = CALL_TIMEOUT
    ) -> Any:
        """Run one aiodocker coroutine (built by make(docker)) and return its result."""
        loop, docker = await self._session()
        import aiodocker
        import aiohttp

        try:
            with trio.fail_after(timeout):
                return await loop.run_aio_coroutine(make(docker))
        except trio.TooSlowError:
            raise self.unreachable(f"no answer within {timeout:.0f}s") from None
        except aiodocker.DockerError as exc:
            message = exc.message if isinstance(exc.message, str) else json.dumps(exc.message)
            if exc.status == 900:  # aiodocker's code for "cannot connect"
                raise self.unreachable(_connect_reason(message)) from None
            raise DockerFailure(message.strip(), exc.status) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise self.unreachable(f"{type(exc).__name__}: {exc}") from None
        except ValueError as exc:  # aiodocker raises it for a bad or missing socket
            raise self.unreachable(str(exc)) from None

    # -- calls -----------------------------------------------------------------------------------
    async def ping(self) -> dict:
        return await self.call(lambda d: d.version(), timeout=5)

    async def inspect_container(self, ref: str) -> dict | None:
        async def go(d: aiodocker.Docker):
            container = await d.containers.get(ref)
            return container._container

        try:
            return await self.call(go)
        except DockerFailure as exc:
            if exc.status == 404:
                return None
            raise

    async def image_exists(self, image: str) -> bool:
        try:
            await self.call(lambda d: d.images.inspect(image))
        except DockerFailure as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def list_containers(self, labels: list[str]) -> list[dict]:
        filters = json.dumps({"label": labels})

        async def go(d: aiodocker.Docker):
            found = await d.containers.list(all=True, filters=filters)
            return [c._container for c in found]

        return await self.call(go)

    async def create_container(self, name: str, config: dict) -> str:
        async def go(d: aiodocker.Docker):
            container = await d.containers.create(config, name=name)
            return container.id

        return await self.call(go)

    async def connect_network(self, network: str, container_id: str) -> None:
        async def go(d: aiodocker.Docker):
            net = await d.networks.get(network)
            await net.connect({"Container": container_id})

        await self.call(go)

    async def start(self, ref: str) -> None:
        await self.call(lambda d: d.containers.container(ref).start())

    async def stop(self, ref: str, grace: int = 10) -> None:
        await self.call(lambda d: d.containers.container(ref).stop(t=grace), grace + 30)

    async def restart(self, ref: str, grace: int = 10) -> None:
        await self.call(lambda d: d.containers.container(ref).restart(t=grace), grace + 30)

    async def remove(self, ref: str) -> bool:
        try:
            await self.call(lambda d: d.containers.container(ref).delete(force=True, v=True))
        except DockerFailure as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def logs(self, ref: str, tail: int) -> list[str]:
        async def go(d: aiodocker.Docker):
            return await d.containers.container(ref).log(stdout=True, stderr=True, tail=tail)

        return await self.call(go)

    async def stats(self, ref: str) -> dict:
        async def go(d: aiodocker.Docker):
            result = await d.containers.container(ref).stats(stream=False)
            return result[0] if isinstance(result, list) else result

        return await self.call(go)

    async def build_image(self, context_tar: bytes, dockerfile: str, tag: str) -> None:
        import io

        async def go(d: aiodocker.Docker):
            return await d.images.build(
                fileobj=io.BytesIO(context_tar),
                encoding="application/x-tar",
                path_dockerfile=dockerfile,
                tag=tag,
                rm=True,
            )

        try:
            output = await self.call(go, timeout=600)
        except DockerFailure as exc:
            raise DockerFailure(f"the image build failed: {exc}", exc.status) from None
        for item in output if isinstance(output, list) else [output]:
            if isinstance(item, dict) and item.get("error"):
                raise DockerFailure(f"the image build failed: {str(item['error']).strip()}", 400)

    # -- streams ---------------------------------------------------------------------------------
    @asynccontextmanager
    async def _stream(
        self, produce: Callable[[aiodocker.Docker, Callable], Awaitable[None]], size: int
    ) -> AsyncIterator[trio.MemoryReceiveChannel]:
        """Run produce(docker, push) on the asyncio side; yield a channel of what it pushes.

        When the consumer is slower than the stream the channel closes (the consumer sees the
        end of the stream) instead of buffering without bound."""
        loop, docker = await self._session()
        import aiodocker
        import aiohttp

        send, receive = trio.open_memory_channel(size)

        def push(item: Any) -> None:
            try:
                send.send_nowait(item)
            except (trio.WouldBlock, trio.ClosedResourceError):
                send.close()
                raise _Overflow() from None

        async def pump() -> None:
            try:
                await loop.run_aio_coroutine(produce(docker, push))
            except _Overflow:
                log.warning("a Docker stream consumer was too slow; stream closed")
            except (aiodocker.DockerError, aiohttp.ClientError, OSError, ValueError) as exc:
                log.info("Docker stream ended: %s", exc)
            finally:
                send.close()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump)
            try:
                yield receive
            finally:
                nursery.cancel_scope.cancel()

    def events(self, filters: dict) -> Any:
        """Context manager: a channel of Docker event dicts matching filters."""

        async def produce(d: aiodocker.Docker, push) -> None:
            params = {"filters": json.dumps(filters)}
            async with d._query("events", method="GET", params=params, timeout=None) as response:
                async for line in response.content:
                    if line.strip():
                        push(json.loads(line))

        return self._stream(produce, 1000)

    def follow_logs(self, ref: str, tail: int) -> Any:
        """Context manager: a channel of log lines (the last `tail`, then new ones live)."""

        async def produce(d: aiodocker.Docker, push) -> None:
            stream = d.containers.container(ref).log(
                stdout=True, stderr=True, follow=True, tail=tail
            )
            async for line in stream:
                push(line)

        return self._stream(produce, 1000)


def _connect_reason(message: str) -> str:
    """The innermost reason of aiodocker's connection error ("No such file or directory")."""
    if "[" in message:
        return message.rsplit("[", 1)[1].strip("[] ") or message
    return message


class _Overflow(Exception):
    pass

"""The workflow event stream against a real Redis: every consumer group sees every event, pending
entries of a crashed consumer are re-applied at start, and the reconcile loop repairs the snapshot
when an event was never published."""

from __future__ import annotations

import httpx
import trio

from proxyd.events.consumer import consume_events, ensure_group, group_name
from proxyd.store import keys
from proxyd.store.models import Proxy, to_json
from proxyd.store.redis import connect
from proxyd.store.repository import Store


async def test_each_instance_sees_every_event(redis_url):
    async with connect(redis_url) as redis:
        store = Store(redis)
        seen: dict[str, list[str]] = {"a": [], "b": []}
        async with trio.open_nursery() as nursery:
            for name, events in seen.items():

                async def handle(event, events=events):
                    events.append(event.hostname)

                await nursery.start(consume_events, redis, name, handle)
            for host in ("one.test", "two.test"):
                await store.create_proxy(Proxy(hostname=host, target_url="http://127.0.0.1:1"))
            with trio.fail_after(3):
                while any(len(v) < 2 for v in seen.values()):
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    assert seen == {"a": ["one.test", "two.test"], "b": ["one.test", "two.test"]}


async def test_pending_entries_are_recovered_at_start(redis_url):
    async with connect(redis_url) as redis:
        store = Store(redis)
        await ensure_group(redis, group_name("crashy"))
        await store.create_proxy(Proxy(hostname="pending.test", target_url="http://127.0.0.1:1"))
        # A consumer read the entry and died before acknowledging it.
        delivered = await redis.xreadgroup(
            group_name("crashy"), "crashy", streams={keys.EVENTS_STREAM: ">"}, count=10
        )
        assert delivered[keys.EVENTS_STREAM][0].field_values["hostname"] == "pending.test"
        applied = []

        async def handle(event):
            applied.append(event.hostname)

        async with trio.open_nursery() as nursery:
            await nursery.start(consume_events, redis, "crashy", handle)
            nursery.cancel_scope.cancel()
        assert applied == ["pending.test"]
        pending = await redis.xpending(keys.EVENTS_STREAM, group_name("crashy"))
        assert pending.pending == 0


async def test_reconcile_repairs_a_missed_event(start_proxyd, backend):
    proc = start_proxyd("reconcile", RECONCILE_INTERVAL="0.3")
    async with connect(proc.env["REDIS_URL"]) as redis:
        # Written behind proxyd's back: no event is published for it.
        proxy = Proxy(hostname="sneaky.test", target_url=backend.url)
        await redis.set(keys.proxy(proxy.hostname), to_json(proxy))
        await redis.sadd(keys.PROXY_INDEX, [proxy.hostname])
    async with httpx.AsyncClient() as client:
        with trio.fail_after(5):
            while True:
                response = await client.get(proc.http_url, headers={"Host": "sneaky.test"})
                if response.status_code == 200:
                    break
                await trio.sleep(0.05)
    assert response.json()["backend"] == backend.port

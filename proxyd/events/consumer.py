"""The workflow-event consumer: every proxyd process reads every event on events:workflow.

Each process has its own consumer group (`proxyd:{instance}`), so every process sees every event,
and a restarted process first re-applies what it had read but not acknowledged (pending entries),
then whatever arrived while it was down. Applying an event is idempotent (the handler re-reads the
object from Redis), so replays are harmless.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

import coredis
import trio

from proxyd.events.bus import Event
from proxyd.store import keys

log = logging.getLogger("proxyd.events")

Handler = Callable[[Event], Awaitable[None]]


def group_name(instance: str) -> str:
    return f"proxyd:{instance}"


def parse_entry(entry) -> Event:
    fields = entry.field_values
    try:
        data = json.loads(fields.get("data") or "{}")
    except ValueError:
        data = {}
    return Event(
        id=entry.identifier,
        event_type=fields.get("event_type", ""),
        hostname=fields.get("hostname") or None,
        data=data,
        timestamp=fields.get("timestamp", ""),
    )


async def ensure_group(redis: coredis.Redis, group: str) -> None:
    try:
        await redis.xgroup_create(keys.EVENTS_STREAM, group, "$", mkstream=True)
    except coredis.exceptions.StreamDuplicateConsumerGroupError:
        pass  # we ran before: keep our position, and our pending entries to recover


async def consume_events(
    redis: coredis.Redis,
    instance: str,
    handle: Handler,
    *,
    block_ms: int = 5000,
    task_status=trio.TASK_STATUS_IGNORED,
) -> None:
    """Apply events to handle() forever; pending entries are recovered first."""
    group = group_name(instance)
    await ensure_group(redis, group)
    started = False
    cursor = "0"  # first drain what was delivered to us before but never acknowledged
    while True:
        if not started and cursor == ">":
            task_status.started()
            started = True
        response = await redis.xreadgroup(
            group,
            instance,
            streams={keys.EVENTS_STREAM: cursor},
            count=100,
            block=None if cursor == "0" else block_ms,
        )
        entries = (response or {}).get(keys.EVENTS_STREAM, ())
        if cursor == "0" and not entries:
            cursor = ">"
            continue
        for entry in entries:
            if not entry.field_values:  # pending entry trimmed from the stream meanwhile
                await redis.xack(keys.EVENTS_STREAM, group, [entry.identifier])
                continue
            event = parse_entry(entry)
            try:
                await handle(event)
            except Exception:
                log.exception("applying event %s (%s) failed", event.id, event.event_type)
            await redis.xack(keys.EVENTS_STREAM, group, [entry.identifier])

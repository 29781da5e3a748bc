"""EventBus: fan-out of applied events to in-process listeners (GraphQL subscriptions).

A listener that falls too far behind is disconnected rather than slowing the consumer down.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import trio


@attrs.frozen
class Event:
    id: str
    event_type: str
    hostname: str | None
    data: dict[str, Any]
    timestamp: str


class EventBus:
    def __init__(self, buffer: int = 256) -> None:
        self._buffer = buffer
        self._listeners: set[trio.MemorySendChannel] = set()

    @contextmanager
    def listen(self) -> Iterator[trio.MemoryReceiveChannel]:
        send, receive = trio.open_memory_channel(self._buffer)
        self._listeners.add(send)
        try:
            yield receive
        finally:
            self._listeners.discard(send)
            send.close()

    def publish(self, event: Event) -> None:
        for send in list(self._listeners):
            try:
                send.send_nowait(event)
            except (trio.WouldBlock, trio.ClosedResourceError):
                self._listeners.discard(send)
                send.close()

    @property
    def listener_count(self) -> int:
        return len(self._listeners)

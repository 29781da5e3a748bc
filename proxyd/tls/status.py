"""Order status: the stages of one certificate order (queued, ordering, validating, finalizing,
ready, failed + reason) kept in cert:status:{name} and published as `certificate_status` events,
so a GraphQL subscription on any proxyd process sees every stage as it happens.

A finished order's status (ready or failed) is kept for CERT_STATUS_RETENTION_SECONDS; one still
running is kept for an hour at most, so a process that died mid-order leaves nothing stale.
"""

from __future__ import annotations

import json
from typing import Any

from proxyd.store.models import now_iso
from proxyd.store.repository import Store
from proxyd.tls.certificate import status_key

STAGES = ("queued", "ordering", "validating", "finalizing", "ready", "failed")
FINISHED = ("ready", "failed")
RUNNING_TTL = 3600
STATUS_EVENT = "certificate_status"


async def set_status(
    store: Store,
    name: str,
    stage: str,
    message: str = "",
    *,
    reason: str | None = None,
    domains: list[str] | None = None,
    instance: str = "",
    retention: int = 300,
) -> dict[str, Any]:
    status = {
        "cert_name": name,
        "stage": stage,
        "message": message,
        "reason": reason,
        "domains": domains,
        "instance": instance,
        "updated_at": now_iso(),
    }
    ttl = retention if stage in FINISHED else RUNNING_TTL
    await store.redis.set(status_key(name), json.dumps(status), ex=ttl)
    await store.publish_event(STATUS_EVENT, domains[0] if domains else None, **status)
    return status


async def get_status(store: Store, name: str) -> dict[str, Any] | None:
    raw = await store.redis.get(status_key(name))
    return json.loads(raw) if raw else None

"""Certificates: list, show, create, renew, delete, attach and detach, the proxies using one, and
the stages of an order as they happen (for the GraphQL subscription and MCP progress).

`public_certificate` is the only shape the MCP tools return: never the private key (GraphQL
returns it only through its explicit admin-only `privateKeyPem` field).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import trio

from proxyd.manage.errors import ManageContext, ManageError, hostname_key, translated
from proxyd.store.models import Proxy
from proxyd.tls.certificate import Certificate
from proxyd.tls.status import FINISHED, STATUS_EVENT, get_status

PUBLIC_FIELDS = (
    "cert_name",
    "domains",
    "email",
    "acme_directory_url",
    "staging",
    "key_type",
    "challenge",
    "status",
    "expires_at",
    "issued_at",
    "issuer",
    "fingerprint",
    "created_by",
    "created_at",
    "updated_at",
    "last_error",
)


def _certs(ctx: ManageContext) -> Any:
    if ctx.certs is None:
        raise ManageError("certificates are not available in this process.", "NOT_FOUND")
    return ctx.certs


def public_certificate(cert: Certificate) -> dict[str, Any]:
    return {name: getattr(cert, name) for name in PUBLIC_FIELDS}


async def list_certificates(ctx: ManageContext) -> list[Certificate]:
    return sorted(await _certs(ctx).list(), key=lambda c: c.cert_name)


async def get_certificate(ctx: ManageContext, name: str) -> Certificate | None:
    return await _certs(ctx).get(hostname_key(name))


async def order_status(ctx: ManageContext, name: str) -> dict[str, Any] | None:
    return await get_status(ctx.store, name)


def proxies_using(ctx: ManageContext, cert: Certificate) -> list[str]:
    apps = ctx.manager.proxies.values()
    return sorted(app.proxy.hostname for app in apps if app.proxy.cert_name == cert.cert_name)


async def certificate_of_proxy(ctx: ManageContext, proxy: Proxy) -> Certificate | None:
    certs = ctx.certs
    if certs is None or not proxy.enable_https:
        return None
    if proxy.cert_name:
        cert = await certs.get(proxy.cert_name)
        if cert is not None:
            return cert
    return await certs.find_covering(proxy.hostname)


async def create_certificate(ctx: ManageContext, fields: dict[str, Any]) -> Certificate:
    """fields: name, domains, and optionally email, staging, directory_url, key_type, challenge.
    The order runs in the background; follow it with `follow_status`."""
    certs = _certs(ctx)
    with translated():
        return await certs.create(
            fields["name"],
            fields["domains"],
            email=fields.get("email"),
            staging=bool(fields.get("staging")),
            directory_url=fields.get("directory_url"),
            key_type=fields.get("key_type"),
            challenge=fields.get("challenge"),
            actor=ctx.actor,
        )


async def renew_certificate(ctx: ManageContext, name: str) -> Certificate:
    certs = _certs(ctx)
    with translated():
        return await certs.renew(hostname_key(name))


async def delete_certificate(ctx: ManageContext, name: str, force: bool = False) -> bool:
    certs = _certs(ctx)
    with translated():
        await certs.delete(hostname_key(name), force=bool(force))
    return True


async def attach_certificate(ctx: ManageContext, hostname: str, cert_name: str | None) -> Proxy:
    certs = _certs(ctx)
    with translated():
        return await certs.attach(hostname, hostname_key(cert_name) if cert_name else None)


async def follow_status(
    ctx: ManageContext, name: str, events: trio.MemoryReceiveChannel
) -> AsyncIterator[dict[str, Any]]:
    """The order's stages from now until ready or failed. `events` is a listener opened on the
    event bus *before* the order was started, so no stage is missed."""
    current = await get_status(ctx.store, name)
    if current is not None:
        yield current
        if current["stage"] in FINISHED:
            return
    elif await _certs(ctx).get(name) is None:
        raise ManageError(f"no certificate named {name}.", "NOT_FOUND")
    async for event in events:
        if event.event_type == STATUS_EVENT and event.data.get("cert_name") == name:
            if current is not None and event.data == current:
                continue
            yield event.data
            if event.data.get("stage") in FINISHED:
                return

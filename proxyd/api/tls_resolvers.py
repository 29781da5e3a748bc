"""GraphQL resolvers for certificates (the TLS capability): queries, mutations, the
certificateStatus subscription, and the Proxy.certificate field.

Queries need scope user, mutations admin. A certificate's private key is returned only through
the explicit `privateKeyPem` field, which needs admin.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ariadne import MutationType, ObjectType, QueryType, SubscriptionType

from proxyd.api.context import ApiContext
from proxyd.api.execution import api_error
from proxyd.api.resolvers import guarded
from proxyd.store.models import Proxy
from proxyd.tls.certificate import Certificate
from proxyd.tls.status import FINISHED, STATUS_EVENT, get_status

query = QueryType()
mutation = MutationType()
subscription = SubscriptionType()
certificate_type = ObjectType("Certificate")
proxy_type = ObjectType("Proxy")


def _certs(info):
    certs = info.context.certs
    if certs is None:
        raise api_error("certificates are not available in this process.", "NOT_FOUND")
    return certs


# -- queries ---------------------------------------------------------------------------------------
@query.field("certificates")
@guarded("user")
async def resolve_certificates(_, info) -> list[Certificate]:
    return sorted(await _certs(info).list(), key=lambda c: c.cert_name)


@query.field("certificate")
@guarded("user")
async def resolve_certificate(_, info, name: str) -> Certificate | None:
    return await _certs(info).get(name.strip().lower())


@certificate_type.field("privateKeyPem")
async def resolve_private_key(cert: Certificate, info) -> str | None:
    info.context.require("admin")
    return cert.private_key_pem


@certificate_type.field("orderStatus")
async def resolve_order_status(cert: Certificate, info) -> dict[str, Any] | None:
    return await get_status(info.context.store, cert.cert_name)


@certificate_type.field("proxies")
async def resolve_certificate_proxies(cert: Certificate, info) -> list[str]:
    apps = info.context.manager.proxies.values()
    return sorted(app.proxy.hostname for app in apps if app.proxy.cert_name == cert.cert_name)


@proxy_type.field("certificate")
async def resolve_proxy_certificate(proxy: Proxy, info) -> Certificate | None:
    certs = info.context.certs
    if certs is None or not proxy.enable_https:
        return None
    if proxy.cert_name:
        cert = await certs.get(proxy.cert_name)
        if cert is not None:
            return cert
    return await certs.find_covering(proxy.hostname)


# -- mutations -------------------------------------------------------------------------------------
@mutation.field("createCertificate")
@guarded("admin")
async def resolve_create_certificate(_, info, input: dict) -> Certificate:
    context: ApiContext = info.context
    return await _certs(info).create(
        input["name"],
        input["domains"],
        email=input.get("email"),
        staging=bool(input.get("staging")),
        directory_url=input.get("directory_url"),
        key_type=input.get("key_type"),
        challenge=input.get("challenge"),
        actor=context.actor,
    )


@mutation.field("renewCertificate")
@guarded("admin")
async def resolve_renew_certificate(_, info, name: str) -> Certificate:
    return await _certs(info).renew(name.strip().lower())


@mutation.field("deleteCertificate")
@guarded("admin")
async def resolve_delete_certificate(_, info, name: str, force: bool | None = False) -> bool:
    await _certs(info).delete(name.strip().lower(), force=bool(force))
    return True


@mutation.field("attachCertificate")
@guarded("admin")
async def resolve_attach_certificate(_, info, hostname: str, cert_name: str) -> Proxy:
    return await _certs(info).attach(hostname, cert_name.strip().lower())


@mutation.field("detachCertificate")
@guarded("admin")
async def resolve_detach_certificate(_, info, hostname: str) -> Proxy:
    return await _certs(info).attach(hostname, None)


# -- subscription ------------------------------------------------------------------------------------
@subscription.source("certificateStatus")
async def source_certificate_status(_, info, name: str) -> AsyncIterator[dict[str, Any]]:
    context: ApiContext = info.context
    context.require("user")
    name = name.strip().lower()
    with context.manager.bus.listen() as events:
        current = await get_status(context.store, name)
        if current is not None:
            yield current
            if current["stage"] in FINISHED:
                return
        elif await _certs(info).get(name) is None:
            raise api_error(f"no certificate named {name}.", "NOT_FOUND")
        async for event in events:
            if event.event_type == STATUS_EVENT and event.data.get("cert_name") == name:
                yield event.data
                if event.data.get("stage") in FINISHED:
                    return


@subscription.field("certificateStatus")
def resolve_certificate_status(status, info, **_args):
    return status


bindables = [query, mutation, subscription, certificate_type, proxy_type]

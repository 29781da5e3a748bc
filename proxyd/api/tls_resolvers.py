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
from proxyd.manage import ManageError, certificates
from proxyd.store.models import Proxy
from proxyd.tls.certificate import Certificate

query = QueryType()
mutation = MutationType()
subscription = SubscriptionType()
certificate_type = ObjectType("Certificate")
proxy_type = ObjectType("Proxy")


# -- queries ---------------------------------------------------------------------------------------
@query.field("certificates")
@guarded("user")
async def resolve_certificates(_, info) -> list[Certificate]:
    return await certificates.list_certificates(info.context)


@query.field("certificate")
@guarded("user")
async def resolve_certificate(_, info, name: str) -> Certificate | None:
    return await certificates.get_certificate(info.context, name)


@certificate_type.field("privateKeyPem")
async def resolve_private_key(cert: Certificate, info) -> str | None:
    info.context.require("admin")
    return cert.private_key_pem


@certificate_type.field("orderStatus")
async def resolve_order_status(cert: Certificate, info) -> dict[str, Any] | None:
    return await certificates.order_status(info.context, cert.cert_name)


@certificate_type.field("proxies")
async def resolve_certificate_proxies(cert: Certificate, info) -> list[str]:
    return certificates.proxies_using(info.context, cert)


@proxy_type.field("certificate")
async def resolve_proxy_certificate(proxy: Proxy, info) -> Certificate | None:
    return await certificates.certificate_of_proxy(info.context, proxy)


# -- mutations -------------------------------------------------------------------------------------
@mutation.field("createCertificate")
@guarded("admin")
async def resolve_create_certificate(_, info, input: dict) -> Certificate:
    return await certificates.create_certificate(info.context, input)


@mutation.field("renewCertificate")
@guarded("admin")
async def resolve_renew_certificate(_, info, name: str) -> Certificate:
    return await certificates.renew_certificate(info.context, name)


@mutation.field("deleteCertificate")
@guarded("admin")
async def resolve_delete_certificate(_, info, name: str, force: bool | None = False) -> bool:
    return await certificates.delete_certificate(info.context, name, force=bool(force))


@mutation.field("attachCertificate")
@guarded("admin")
async def resolve_attach_certificate(_, info, hostname: str, cert_name: str) -> Proxy:
    return await certificates.attach_certificate(info.context, hostname, cert_name)


@mutation.field("detachCertificate")
@guarded("admin")
async def resolve_detach_certificate(_, info, hostname: str) -> Proxy:
    return await certificates.attach_certificate(info.context, hostname, None)


# -- subscription ------------------------------------------------------------------------------------
@subscription.source("certificateStatus")
async def source_certificate_status(_, info, name: str) -> AsyncIterator[dict[str, Any]]:
    context: ApiContext = info.context
    context.require("user")
    with context.manager.bus.listen() as events:
        try:
            async for status in certificates.follow_status(context, name.strip().lower(), events):
                yield status
        except ManageError as exc:
            raise api_error(exc.message, exc.code) from None


@subscription.field("certificateStatus")
def resolve_certificate_status(status, info, **_args):
    return status


bindables = [query, mutation, subscription, certificate_type, proxy_type]

"""Services that routes can target: external services (a name for an upstream URL).

Docker services (proxyd.docker) add their operations here as `list_docker_services` etc.;
`list_services` is the union both GraphQL and MCP show.
"""

from __future__ import annotations

from typing import Any

from proxyd.manage.errors import ManageContext, translated
from proxyd.store.models import ExternalService


async def list_external_services(ctx: ManageContext) -> list[ExternalService]:
    return await ctx.store.list_external_services()


async def register_external_service(ctx: ManageContext, fields: dict[str, Any]) -> ExternalService:
    data = {k: v for k, v in fields.items() if v is not None}
    with translated():
        return await ctx.store.register_external_service(ExternalService(**data), actor=ctx.actor)


async def delete_external_service(ctx: ManageContext, name: str) -> bool:
    with translated():
        await ctx.store.delete_external_service(name)
    return True

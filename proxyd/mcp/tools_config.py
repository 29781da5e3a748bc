"""MCP tools for proxies, routes, external services and health (all through proxyd.manage)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from pydantic import Field

from proxyd.manage import ManageError, proxies, routes, services
from proxyd.manage.health import health_report
from proxyd.mcp.schemas import (
    Done,
    Health,
    ProxyInfo,
    ProxyList,
    ProxyResult,
    RouteInfo,
    RouteList,
    RouteMatch,
    ServiceInfo,
    ServiceResult,
)

AuthChoice = Literal["none", "forward", "redirect", "passthrough"]
Hostname = Annotated[str, Field(description="The public hostname, e.g. grafana.example.com.")]
Names = Annotated[list[str] | None, Field(description="Omit to leave unchanged.")]


def _auth_fields(
    auth: AuthChoice | None,
    allowed_users: list[str] | None,
    allowed_orgs: list[str] | None,
    allowed_emails: list[str] | None,
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if auth is not None:
        fields["auth_enabled"] = auth != "none"
        if auth != "none":
            fields["auth_mode"] = auth
    if allowed_users is not None:
        fields["auth_required_users"] = allowed_users or None
    if allowed_orgs is not None:
        fields["auth_required_groups"] = allowed_orgs or None
    if allowed_emails is not None:
        fields["auth_required_emails"] = allowed_emails or None
    return fields


def register(tools: Any) -> None:
    # -- proxies -----------------------------------------------------------------------------------
    @tools.tool(scope="user", title="List proxies", read_only=True, idempotent=True)
    async def list_proxies(ctx: Context) -> ProxyList:
        """Every proxy: hostname, backend target, HTTPS and authentication settings."""
        found = await proxies.list_proxies(tools.caller(ctx))
        return ProxyList(proxies=[ProxyInfo.of(p) for p in found])

    @tools.tool(scope="user", title="Show a proxy", read_only=True, idempotent=True)
    async def get_proxy(ctx: Context, hostname: Hostname) -> ProxyResult:
        """One proxy by hostname (proxy is null when there is none)."""
        found = await proxies.get_proxy(tools.caller(ctx), hostname)
        return ProxyResult(proxy=ProxyInfo.of(found) if found else None)

    @tools.tool(scope="admin", title="Create a proxy")
    async def create_proxy(
        ctx: Context,
        hostname: Hostname,
        target_url: Annotated[str, Field(description="The backend, e.g. http://127.0.0.1:3000")],
        https: Annotated[
            bool, Field(description="Serve HTTPS with an automatic certificate.")
        ] = True,
        auth: Annotated[
            AuthChoice,
            Field(
                description="none; forward (bearer tokens, 401 for APIs and MCP servers); "
                "redirect (browsers are sent to GitHub login); passthrough (identity if present)."
            ),
        ] = "none",
        allowed_users: Annotated[list[str] | None, Field(description="GitHub logins")] = None,
        allowed_orgs: Annotated[list[str] | None, Field(description="GitHub orgs")] = None,
        allowed_emails: Annotated[list[str] | None, Field(description="e.g. *@example.com")] = None,
        preserve_host: Annotated[bool, Field(description="Send the client's Host upstream")] = True,
    ) -> ProxyInfo:
        """Put a hostname in front of a backend. Traffic flows as soon as the call returns."""
        fields = {
            "hostname": hostname,
            "target_url": target_url,
            "enable_https": https,
            "preserve_host_header": preserve_host,
            **_auth_fields(auth, allowed_users, allowed_orgs, allowed_emails),
        }
        return ProxyInfo.of(await proxies.create_proxy(tools.caller(ctx), fields))

    @tools.tool(scope="admin", title="Change a proxy", idempotent=True)
    async def update_proxy(
        ctx: Context,
        hostname: Hostname,
        target_url: Annotated[str | None, Field(description="Omit to leave unchanged.")] = None,
        https: bool | None = None,
        redirect_to_https: bool | None = None,
        enabled: bool | None = None,
        auth: AuthChoice | None = None,
        allowed_users: Names = None,
        allowed_orgs: Names = None,
        allowed_emails: Names = None,
        preserve_host: bool | None = None,
    ) -> ProxyInfo:
        """Change the given settings of a proxy; omitted ones stay as they are."""
        changes: dict[str, Any] = {
            "target_url": target_url,
            "enable_https": https,
            "redirect_to_https": redirect_to_https,
            "enabled": enabled,
            "preserve_host_header": preserve_host,
        }
        changes = {k: v for k, v in changes.items() if v is not None}
        changes.update(_auth_fields(auth, allowed_users, allowed_orgs, allowed_emails))
        if not changes:
            raise ManageError("give at least one setting to change.", "BAD_USER_INPUT")
        return ProxyInfo.of(await proxies.update_proxy(tools.caller(ctx), hostname, changes))

    @tools.tool(scope="admin", title="Delete a proxy", destructive=True, idempotent=False)
    async def delete_proxy(ctx: Context, hostname: Hostname) -> Done:
        """Stop serving a hostname and delete its configuration."""
        await proxies.delete_proxy(tools.caller(ctx), hostname)
        return Done(ok=True, message=f"proxy {hostname.strip().lower()} deleted.")

    # -- routes ------------------------------------------------------------------------------------
    @tools.tool(scope="user", title="List routes", read_only=True, idempotent=True)
    async def list_routes(ctx: Context) -> RouteList:
        """Every route (path-based forwarding rules), highest priority first."""
        found = await routes.list_routes(tools.caller(ctx))
        return RouteList(routes=[RouteInfo.of(r) for r in found])

    @tools.tool(scope="admin", title="Create a route")
    async def create_route(
        ctx: Context,
        path_pattern: Annotated[str, Field(description="A path prefix such as /api, or a regex")],
        target_type: Literal["port", "service", "hostname", "url"],
        target_value: Annotated[str, Field(description="Port, service name, hostname or URL")],
        priority: Annotated[int, Field(ge=-1000, le=1000)] = 50,
        is_regex: bool = False,
        methods: list[str] | None = None,
        proxy_hostnames: Annotated[
            list[str] | None, Field(description="Only for these proxies (else: all proxies)")
        ] = None,
        description: str | None = None,
        route_id: str | None = None,
    ) -> RouteInfo:
        """Forward matching request paths somewhere else than the proxy's target."""
        fields = {
            "route_id": route_id,
            "path_pattern": path_pattern,
            "target_type": target_type,
            "target_value": target_value,
            "priority": priority,
            "is_regex": is_regex,
            "methods": methods,
            "scope": "proxy" if proxy_hostnames else "global",
            "proxy_hostnames": proxy_hostnames or [],
            "description": description,
        }
        return RouteInfo.of(await routes.create_route(tools.caller(ctx), fields))

    @tools.tool(scope="admin", title="Delete a route", destructive=True)
    async def delete_route(ctx: Context, route_id: str) -> Done:
        """Delete a route by its id."""
        await routes.delete_route(tools.caller(ctx), route_id)
        return Done(ok=True, message=f"route {route_id} deleted.")

    @tools.tool(scope="user", title="Which route a request takes", read_only=True, idempotent=True)
    async def match_route(
        ctx: Context, hostname: Hostname, path: str, method: str = "GET"
    ) -> RouteMatch:
        """The route a request would take (route null: the proxy's own target_url)."""
        found = await routes.match_route(tools.caller(ctx), hostname, path, method)
        return RouteMatch(
            hostname=hostname.strip().lower(),
            method=method.upper(),
            path=path,
            route=RouteInfo.of(found) if found else None,
        )

    # -- external services (list_services and the Docker tools: proxyd.mcp.tools_docker) ----------
    @tools.tool(scope="admin", title="Register an external service", idempotent=True)
    async def register_external_service(
        ctx: Context, name: str, target_url: str, description: str | None = None
    ) -> ServiceResult:
        """Give an upstream URL a name that routes can target (target_type service)."""
        service = await services.register_external_service(
            tools.caller(ctx),
            {"service_name": name, "target_url": target_url, "description": description},
        )
        return ServiceResult(service=ServiceInfo.of_external(service))

    @tools.tool(scope="admin", title="Delete an external service", destructive=True)
    async def delete_external_service(ctx: Context, name: str) -> Done:
        """Delete an external service by name."""
        await services.delete_external_service(tools.caller(ctx), name)
        return Done(ok=True, message=f"service {name} deleted.")

    # -- health ------------------------------------------------------------------------------------
    @tools.tool(scope="user", title="Health", read_only=True, idempotent=True)
    async def health(ctx: Context) -> Health:
        """Is proxyd healthy: Redis reachable, version, number of proxies."""
        return Health(**await health_report(tools.caller(ctx)))

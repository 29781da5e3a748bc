"""MCP resources: the GraphQL schema, a proxy's current configuration as JSON (a resource
template), and the settings table. Every /mcp request already carries a token with scope user
or admin (proxyd.mcp.auth), which is what reading needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError

from proxyd.config.settings import settings_fields
from proxyd.manage import proxies
from proxyd.mcp.schemas import ProxyInfo

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "api" / "schema.graphql"


def settings_table() -> str:
    """Markdown: every setting, its default and meaning (the same source as .env.example)."""
    lines = ["| setting | default | meaning |", "|---|---|---|"]
    for field in settings_fields():
        meta = field.metadata
        default = meta["raw_default"] or "empty"
        doc = " ".join(str(meta["doc"]).split()).replace("|", "\\|")
        lines.append(f"| `{meta['env']}` | `{default}` | {doc} |")
    return "\n".join(lines) + "\n"


def register(server: MCPServer, tools: Any) -> None:
    @server.resource(
        "proxyd://schema.graphql",
        name="schema.graphql",
        title="proxyd GraphQL schema",
        description="The management API's GraphQL schema (queries, mutations, subscriptions).",
        mime_type="application/graphql",
    )
    def graphql_schema() -> str:
        return SCHEMA_PATH.read_text()

    @server.resource(
        "proxyd://settings",
        name="settings",
        title="proxyd settings",
        description="Every setting (environment variable), its default and what it does.",
        mime_type="text/markdown",
    )
    def settings() -> str:
        return settings_table()

    @server.resource(
        "proxyd://proxies/{hostname}",
        name="proxy",
        title="A proxy's configuration",
        description="The current configuration of one proxy as JSON (header values left out).",
        mime_type="application/json",
    )
    async def proxy_config(hostname: str, ctx: Context) -> str:
        found = await proxies.get_proxy(tools.caller(ctx), hostname)
        if found is None:
            raise ResourceError(f"NOT_FOUND: no proxy {hostname.strip().lower()!r}.")
        return json.dumps(ProxyInfo.of(found).model_dump(), indent=2)

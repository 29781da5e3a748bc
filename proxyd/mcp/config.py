"""Ready configuration snippets for MCP clients (`proxyd mcp config`)."""

from __future__ import annotations

import json
import shlex
from urllib.parse import urlsplit

CLIENTS = ("claude", "vscode", "mcp-remote")


def mcp_url(issuer: str) -> str:
    """This instance's /mcp URL: on the issuer's host (where its OAuth server is)."""
    return issuer.rstrip("/") + "/mcp"


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path != "/mcp":
        raise ValueError(f"--url must be an http(s) URL ending in /mcp, not {url!r}.")
    return url


def snippet(client: str, url: str, name: str = "proxyd") -> str:
    if client == "vscode":  # .vscode/mcp.json (VS Code speaks streamable HTTP and OAuth itself)
        return json.dumps({"servers": {name: {"type": "http", "url": url}}}, indent=2)
    if (
        client == "claude"
    ):  # claude_desktop_config.json, bridged by mcp-remote (OAuth in the browser)
        server = {"command": "npx", "args": ["-y", "mcp-remote", url]}
        return json.dumps({"mcpServers": {name: server}}, indent=2)
    if client == "mcp-remote":
        return shlex.join(["npx", "-y", "mcp-remote", url])
    raise ValueError(f"--client must be one of {', '.join(CLIENTS)}, not {client!r}.")

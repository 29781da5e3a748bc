"""An MCP server for the end-to-end test: the official SDK's MCPServer over Streamable HTTP,
run as `python -m tests.support.mcp_server PORT` (uvicorn, its own process)."""

from __future__ import annotations

import sys

import anyio
from mcp.server.mcpserver import MCPServer

server = MCPServer("proxyd-e2e")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


if __name__ == "__main__":
    anyio.run(lambda: server.run_streamable_http_async(host="127.0.0.1", port=int(sys.argv[1])))

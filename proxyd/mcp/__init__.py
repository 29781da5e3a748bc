"""proxyd's own MCP endpoint: /mcp on the management app, built on the official MCP Python SDK
server (MCPServer, streamable HTTP in stateless mode, so any worker answers any request).

Modules: `auth` (the MCP authorization spec: RFC 9728 metadata for /mcp, 401 challenges,
audience bound to the /mcp resource URL), `endpoint` (the ASGI wrapper mounted in front of the
management app and the session manager's lifetime), `server` (the MCPServer and the tool
registry: scopes, annotations, coded errors), `tools_*` (the tools, one module per area; each
calls proxyd.manage or proxyd.docker.services, never a second implementation), `resources`
(schema, proxy configuration, settings table), `schemas` (the tools' structured outputs),
`config` (client snippets for `proxyd mcp config`).
"""

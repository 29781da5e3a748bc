"""proxyd: a self-hosted OAuth-protected HTTPS reverse proxy, the front door for MCP servers."""

__version__ = "0.1.0"

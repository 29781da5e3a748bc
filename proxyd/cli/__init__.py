"""CLI: `proxyd serve`, `proxyd token issue`, and management commands over the GraphQL API."""

"""Store: Redis access (coredis), the embedded redis-server, and the configuration models."""

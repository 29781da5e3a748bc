"""Host ports for services: the registry in Redis (atomic allocation, release, queries), the
check against the host (is something else already listening?), and the per-port server proxyd
runs for ports that require an access token.
"""

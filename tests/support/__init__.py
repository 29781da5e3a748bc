"""Test support: real processes (redis-server, proxyd) and small real backends on loopback."""

"""Benchmark harness: nginx backend and reverse proxy vs proxyd on loopback (`nox -s bench`)."""

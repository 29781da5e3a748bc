"""Request logging and analytics (records in Redis, indexes, stats, live stream), Prometheus
metrics and the in-memory ring buffer of recent application logs.

Modules: record (the record model), masking (secrets out of logged values), layout (Redis keys),
writer (bounded channel + batch writer), hotpath (the per-request meter), query (searches and the
live tail), stats (hourly counts, unique visitors, percentiles), applog (structured application
logs), metrics (Prometheus text).
"""

"""Request logging and analytics (records in Redis, indexes, stats, live stream), Prometheus
metrics and the in-memory ring buffer of recent application logs.

Modules: record (the record model), masking (secrets out of logged values), layout (Redis keys),
hotpath (the per-request meter), writer (RequestLog: the serving process's bounded buffer and
shipping task), wire (the socketpair channel and its frames), spawn (starting and restarting the
log-writer process), sink (the log-writer process), batch (one batch into Redis in one round
trip), query (searches and the live tail), stats (hourly counts, unique visitors, percentiles),
applog (structured application logs), metrics (Prometheus text).

Nothing here imports the API or the edge: they hand in plain values.
"""

"""Settings of the public edge (listeners, upstreams, forwarding headers) and of request
logging."""

from __future__ import annotations

import attrs

import proxyd.config.parsers as p


@attrs.frozen(slots=False)
class EdgeSettings:
    """The public listeners and forwarding (proxyd.edge)."""

    proxy_request_timeout: float = p.setting(
        "PROXY_REQUEST_TIMEOUT",
        "120",
        p.positive_float,
        "Seconds to wait for an upstream response (and between body chunks), or for an upstream "
        "to take any of the request body, before answering 504.",
    )
    proxy_connect_timeout: float = p.setting(
        "PROXY_CONNECT_TIMEOUT",
        "30",
        p.positive_float,
        "Seconds to wait for an upstream TCP/TLS connection before answering 504.",
    )
    trusted_proxies: tuple = p.setting(
        "TRUSTED_PROXIES",
        "",
        p.networks,
        "Comma-separated IPs/CIDRs of load balancers whose X-Forwarded-* headers are believed. "
        "From any other peer these headers are removed.",
    )
    upstream_keepalive: int = p.setting(
        "UPSTREAM_KEEPALIVE",
        "64",
        p.positive_int,
        "Idle keep-alive connections kept per proxy and upstream host:port for reuse.",
    )
    edge_header_timeout: float = p.setting(
        "EDGE_HEADER_TIMEOUT",
        "10",
        p.positive_float,
        "Seconds a client has to send a whole request head once it started one (slowloris "
        "guard); then 408 and the connection closes.",
    )
    edge_body_timeout: float = p.setting(
        "EDGE_BODY_TIMEOUT",
        "30",
        p.positive_float,
        "Seconds a request body may stall between two reads; then 408, the connection closes "
        "and the upstream request is cancelled.",
    )
    edge_keepalive_timeout: float = p.setting(
        "EDGE_KEEPALIVE_TIMEOUT",
        "15",
        p.positive_float,
        "Seconds an idle keep-alive connection is kept open after a response.",
    )
    edge_max_requests_per_connection: int = p.setting(
        "EDGE_MAX_REQUESTS_PER_CONNECTION",
        "1000",
        p.positive_int,
        "Requests served on one client connection before proxyd closes it.",
    )
    edge_max_request_line: int = p.setting(
        "EDGE_MAX_REQUEST_LINE",
        "8192",
        p.positive_int,
        "Longest request target in bytes; a longer one gets 414.",
    )
    edge_max_header_bytes: int = p.setting(
        "EDGE_MAX_HEADER_BYTES",
        "32768",
        p.positive_int,
        "Largest request head (request line and headers) in bytes; a larger one gets 431.",
    )
    edge_max_connections: int = p.setting(
        "EDGE_MAX_CONNECTIONS",
        "10000",
        p.positive_int,
        "Most client connections each serving process holds (idle, active, WebSocket tunnels); "
        "past it new connections wait in the kernel's listen queue until one closes.",
    )
    edge_max_headers: int = p.setting(
        "EDGE_MAX_HEADERS",
        "100",
        p.positive_int,
        "Most header fields in one request; more get 431.",
    )
    edge_allow_underscores_in_headers: bool = p.setting(
        "EDGE_ALLOW_UNDERSCORES_IN_HEADERS",
        "false",
        p.boolean,
        "Pass request headers whose names contain an underscore (dropped by default, like "
        "nginx's underscores_in_headers off). Identity and forwarding headers are stripped in "
        "every spelling either way.",
    )
    edge_pass_server_header: bool = p.setting(
        "EDGE_PASS_SERVER_HEADER",
        "false",
        p.boolean,
        "Pass the backend's Server response header to clients (dropped by default).",
    )
    edge_send_timeout: float = p.setting(
        "EDGE_SEND_TIMEOUT",
        "60",
        p.positive_float,
        "Seconds a client may take no byte of its response (or WebSocket data) before proxyd "
        "closes its connection (HTTP/2: resets the stream) and ends the upstream request.",
    )
    edge_http2: bool = p.setting(
        "EDGE_HTTP2",
        "true",
        p.boolean,
        "Serve HTTP/2 on the public listeners (ALPN h2 over TLS, h2c prior knowledge). HTTP/2 "
        "takes hypercorn's slower path; false offers TLS clients HTTP/1.1 only.",
    )


@attrs.frozen(slots=False)
class LogSettings:
    """Request logging (proxyd.logs)."""

    request_logging: bool = p.setting(
        "REQUEST_LOGGING",
        "true",
        p.boolean,
        "Record every proxied request in Redis (indexes, stats, live stream) and count it in "
        "/metrics. false: no per-request instrumentation at all.",
    )
    log_retention_hours: float = p.setting(
        "LOG_RETENTION_HOURS",
        "24",
        p.positive_float,
        "Hours request records, their indexes and hourly stats are kept in Redis (fractions "
        "allowed).",
    )
    log_slow_seconds: float = p.setting(
        "LOG_SLOW_SECONDS",
        "1",
        p.positive_float,
        "Requests taking at least this many seconds go into the slow-request index.",
    )
    log_buffer_size: int = p.setting(
        "LOG_BUFFER_SIZE",
        "10000",
        p.positive_int,
        "Request records held in memory while Redis is slow; beyond this they are dropped and "
        "counted (requests never wait).",
    )
    log_batch_interval: float = p.setting(
        "LOG_BATCH_INTERVAL",
        "0.1",
        p.positive_float,
        "Seconds the request-log writer gathers records before writing them in one pipeline.",
    )
    log_stream_maxlen: int = p.setting(
        "LOG_STREAM_MAXLEN",
        "10000",
        p.positive_int,
        "Approximate number of records kept in the live stream stream:requests.",
    )

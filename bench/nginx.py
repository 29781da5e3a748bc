"""Debian's nginx as the fixed fast backend and as the reference reverse proxy."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bench.procs import LOOPBACK, ManagedProcess, wait_for_port

NGINX = "/usr/sbin/nginx"
BIG_FILE_BYTES = 1024 * 1024
HELLO_BODY = "hello\n"


def nginx_binary() -> str:
    """Path of the nginx binary (Debian package nginx-light); raise if it is missing."""
    path = NGINX if os.path.exists(NGINX) else shutil.which("nginx")
    if not path:
        raise RuntimeError("nginx not found: apt-get install -y nginx-light")
    return path


def _main_conf(prefix: Path, http_body: str) -> str:
    # Running as root, nginx would switch its worker to `nobody`, which cannot read the 0700
    # temporary prefix; keep the worker as root then (loopback-only benchmark daemon).
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = prefix / "temp"
    return f"""{user}daemon off;
master_process on;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
{http_body}
}}
"""


def backend_conf(prefix: Path, port: int, h2c_port: int | None = None) -> str:
    """nginx.conf for the backend: `/` returns a small body, `/big` is a 1 MiB static file.

    `/files/NAME` serves `html/files/NAME` (bench/extras.py puts its 512 MiB body there)."""
    h2c = f"        listen {LOOPBACK}:{h2c_port} http2;\n" if h2c_port else ""
    body = f"""    server {{
        listen {LOOPBACK}:{port} default_server;
{h2c}        server_name _;
        root {prefix}/html;
        location / {{
            default_type text/plain;
            return 200 "hello\\n";
        }}
        location = /big {{
            default_type application/octet-stream;
        }}
        location /files/ {{
            default_type application/octet-stream;
        }}
    }}"""
    return _main_conf(prefix, body)


def proxy_conf(
    prefix: Path,
    port: int,
    backend_port: int,
    h2c_port: int | None = None,
    tls: tuple[int, Path, Path] | None = None,
) -> str:
    """nginx.conf for nginx as a reverse proxy with a keep-alive upstream pool to the backend;
    tls = (port, certificate, key) adds an HTTPS listener."""
    h2c = f"        listen {LOOPBACK}:{h2c_port} http2;\n" if h2c_port else ""
    if tls:
        h2c += (
            f"        listen {LOOPBACK}:{tls[0]} ssl;\n"
            f"        ssl_certificate {tls[1]};\n        ssl_certificate_key {tls[2]};\n"
        )
    body = f"""    upstream bench_backend {{
        server {LOOPBACK}:{backend_port};
        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen {LOOPBACK}:{port} default_server;
{h2c}        server_name _;
        location / {{
            proxy_pass http://bench_backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering on;
        }}
    }}"""
    return _main_conf(prefix, body)


def _prepare_prefix(prefix: Path) -> None:
    for sub in ("temp", "html", "logs"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)


def start_nginx(name: str, prefix: Path, conf_text: str, port: int) -> ManagedProcess:
    """Write `conf_text` under `prefix`, check it with `nginx -t`, start nginx, wait for `port`."""
    _prepare_prefix(prefix)
    conf = prefix / "nginx.conf"
    conf.write_text(conf_text)
    binary = nginx_binary()
    argv = [binary, "-c", str(conf), "-p", str(prefix), "-e", str(prefix / "error.log")]
    proc = ManagedProcess(name, argv, log_dir=prefix)
    try:
        wait_for_port(port, proc)
    except BaseException:
        error_log = prefix / "error.log"
        if error_log.exists():
            print(f"{name} error.log:\n{error_log.read_text(errors='replace')[-4000:]}")
        proc.stop()
        raise
    return proc


def start_backend(prefix: Path, port: int, h2c_port: int | None = None) -> ManagedProcess:
    """Start the backend nginx on 127.0.0.1:`port` (and cleartext HTTP/2 on `h2c_port`)."""
    _prepare_prefix(prefix)
    (prefix / "html" / "big").write_bytes(os.urandom(BIG_FILE_BYTES))
    return start_nginx("nginx-backend", prefix, backend_conf(prefix, port, h2c_port), port)


def start_proxy(
    prefix: Path,
    port: int,
    backend_port: int,
    h2c_port: int | None = None,
    tls: tuple[int, Path, Path] | None = None,
) -> ManagedProcess:
    """Start nginx as a reverse proxy on 127.0.0.1:`port` (h2c on `h2c_port`, HTTPS per tls)."""
    conf = proxy_conf(prefix, port, backend_port, h2c_port, tls)
    return start_nginx("nginx-proxy", prefix, conf, port)

"""Is a host port free on this machine? Answered by trying to bind it (and letting it go)."""

from __future__ import annotations

import errno
import socket


def host_port_problem(port: int, bind_address: str, protocol: str = "tcp") -> str | None:
    """None when port can be bound on bind_address now; else the reason it cannot."""
    family = socket.AF_INET6 if ":" in bind_address else socket.AF_INET
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    with socket.socket(family, kind) as sock:
        try:
            sock.bind((bind_address, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"something else on this host already uses {protocol} port {port}"
            if exc.errno == errno.EACCES:
                return f"binding port {port} needs privileges proxyd does not have"
            return f"port {port} cannot be bound on {bind_address}: {exc.strerror}"
    return None

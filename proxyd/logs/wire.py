"""The channel between a serving process and the log-writer process: an AF_UNIX SOCK_SEQPACKET
socketpair per serving process, so every frame arrives whole and a serving process that dies
mid-send cannot corrupt the framing for the one restarted in its place.

Serving process -> writer: `R` + marshal((instance, rows)), a row being the RequestRecord's fields
as a plain tuple (ROW_FIELDS order). marshal is the cheapest serialiser in CPython (about 0.5 us
a record); it is safe here because only proxyd's own processes hold these sockets (inherited
descriptors, never a path or a port) and marshal never runs code while loading.
Writer -> serving process: `S` + marshal((written, dropped, queued)), counts since the last
report for that channel (queued: the writer's in-memory queue now).

This module is imported by the worker supervisor too: it must stay light (no coredis, no attrs).
"""

from __future__ import annotations

import marshal
import os
import socket
from typing import Any

# Times are integer microseconds (`ts_us`: wall-clock start since the epoch): the log writer
# encodes integers to JSON in half the time of floats.
ROW_FIELDS = (
    "ts_us",
    "client_ip",
    "hostname",
    "method",
    "path",
    "query",
    "status",
    "bytes_in",
    "bytes_out",
    "duration_us",
    "upstream_us",
    "user_agent",
    "referer",
    "protocol",
    "user",
    "client_id",
    "auth_outcome",
    "error",
)
RECORDS = 0x52  # b"R"
STATS = 0x53  # b"S"
# A frame must fit in the socket's send buffer (a SEQPACKET message is never split).
MAX_FRAME = 96 * 1024
BUFFER_BYTES = 1024 * 1024
# A single record too big for a frame (megabyte paths, say) has its text fields cut to this.
FIELD_LIMIT = 4096
# Descriptor of this serving process's channel end, set by the worker supervisor.
FD_ENV = "PROXYD_LOG_FD"


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """(serving end, writer end) of a new channel; both blocking-mode stdlib sockets."""
    serving, writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for sock in (serving, writer):
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, BUFFER_BYTES)
            except OSError:  # pragma: no cover - the kernel caps it; the default still works
                pass
    return serving, writer


def inherited_channel() -> socket.socket | None:
    """In a worker: the channel end the supervisor passed down (None: start a writer here)."""
    fd = os.environ.get(FD_ENV, "")
    if not fd.isdigit():
        return None
    try:
        return socket.socket(fileno=int(fd))
    except OSError:
        return None


def pack_records(instance: str, rows: list[tuple]) -> list[tuple[bytes, int]]:
    """(frame, number of rows) pairs, each frame at most MAX_FRAME bytes (split as needed)."""
    try:
        payload = bytes((RECORDS,)) + marshal.dumps((instance, rows))
    except ValueError:  # a value marshal cannot carry: send its text instead
        rows = [tuple(_plain(v) for v in row) for row in rows]
        payload = bytes((RECORDS,)) + marshal.dumps((instance, rows))
    if len(payload) <= MAX_FRAME:
        return [(payload, len(rows))]
    if len(rows) == 1:
        row = tuple(v[:FIELD_LIMIT] if isinstance(v, str) else v for v in rows[0])
        return [(bytes((RECORDS,)) + marshal.dumps((instance, [row])), 1)]
    half = len(rows) // 2
    return pack_records(instance, rows[:half]) + pack_records(instance, rows[half:])


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def unpack_records(frame: bytes) -> tuple[str, list[tuple]]:
    """(instance, rows) from a records frame; ValueError when it is not one."""
    if not frame or frame[0] != RECORDS:
        raise ValueError("not a records frame")
    try:
        instance, rows = marshal.loads(frame[1:])
    except (EOFError, TypeError, ValueError) as exc:
        raise ValueError(f"undecodable records frame ({exc})") from None
    if isinstance(instance, str) and isinstance(rows, list):
        return instance, rows
    raise ValueError("records frame of the wrong shape")


_ROW_TYPES = tuple(
    {
        "ts_us": (int,),
        "status": (int,),
        "bytes_in": (int,),
        "bytes_out": (int,),
        "duration_us": (int,),
        "upstream_us": (int, type(None)),
    }.get(name, (str,))
    for name in ROW_FIELDS
)


def valid_row(row: Any) -> bool:
    """Whether a row has every field with the type the writer expects."""
    if not isinstance(row, tuple) or len(row) != len(ROW_FIELDS):
        return False
    return all(map(isinstance, row, _ROW_TYPES))  # lengths checked above


def pack_stats(written: int, dropped: int, queued: int) -> bytes:
    return bytes((STATS,)) + marshal.dumps((written, dropped, queued))


def unpack_stats(frame: bytes) -> tuple[int, int, int] | None:
    if not frame or frame[0] != STATS:
        return None
    try:
        written, dropped, queued = marshal.loads(frame[1:])
    except (EOFError, TypeError, ValueError):
        return None
    if not all(isinstance(v, int) for v in (written, dropped, queued)):
        return None
    return written, dropped, queued

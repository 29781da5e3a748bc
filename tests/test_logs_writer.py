"""The log-writer process against real Redis and real proxyd processes: a clean stop writes every
record (WORKERS=1 and 2), a killed writer is replaced and records sent meanwhile still arrive,
one writer serves all workers, a full channel drops and counts (never blocks), malformed frames
are skipped, and the logs package imports neither the API nor the edge."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time

import attrs
import httpx
import trio

from proxyd.config import load_settings
from proxyd.logs import wire
from proxyd.logs.record import RequestRecord
from proxyd.logs.spawn import run_writer_process, writer_config
from proxyd.logs.writer import RequestLog, to_row
from tests.support.graphql import CREATE_PROXY, GraphQLClient
from tests.support.logs import send, stored_records

SINK = "proxyd.logs.sink"


def _descendants(root: int) -> list[int]:
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        for task in _listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _writers(root: int) -> list[int]:
    return [pid for pid in _descendants(root) if SINK in _cmdline(pid)]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def _new_writer(root: int, old: int) -> int:
    with trio.fail_after(15):
        while True:
            pids = [p for p in _writers(root) if p != old]
            if pids:
                return pids[0]
            await trio.sleep(0.05)


async def _stored_paths(redis_url: str) -> list[str]:
    return [record["path"] for record in await stored_records(redis_url)]


async def test_killed_writer_is_replaced_and_a_clean_stop_writes_every_record(
    start_proxyd, backend, redis_url
):
    # Batches every 30 s: at the stop, every record is still waiting in the writer.
    proxyd = start_proxyd(LOG_BATCH_INTERVAL="30")
    gql = GraphQLClient(proxyd.api_url, proxyd.token("admin"))
    await gql(CREATE_PROXY, {"input": {"hostname": "w.test", "targetUrl": backend.url}})
    [writer] = _writers(proxyd.process.pid)
    os.kill(writer, signal.SIGKILL)
    async with httpx.AsyncClient(timeout=10) as client:
        # Sent while no writer runs: they wait in the channel for the next one.
        for i in range(10):
            assert (await send(client, proxyd, "w.test", f"/dead/{i}")).status_code == 200
        replacement = await _new_writer(proxyd.process.pid, writer)
        for i in range(25):
            assert (await send(client, proxyd, "w.test", f"/stop/{i}")).status_code == 200
    # A service manager signalling every process of the service (systemd's default) must not
    # make the writer quit before proxyd has drained into it.
    with trio.fail_after(15):
        while proxyd.log().count("request-log writer started") < 2:
            await trio.sleep(0.05)
    os.kill(replacement, signal.SIGTERM)
    assert proxyd.stop() == 0
    assert "request-log writer exited with code -9; restarting" in proxyd.log()
    expected = [f"/dead/{i}" for i in range(10)] + [f"/stop/{i}" for i in range(25)]
    assert sorted(await _stored_paths(redis_url)) == sorted(expected)
    assert not _alive(replacement)


async def test_workers_share_one_writer_and_a_clean_stop_writes_every_record(
    start_proxyd, backend, redis_url
):
    proc = start_proxyd("workers", WORKERS="2", LOG_BATCH_INTERVAL="30")
    gql = GraphQLClient(proc.api_url, proc.token("admin"))
    await gql(CREATE_PROXY, {"input": {"hostname": "many.test", "targetUrl": backend.url}})
    [writer] = _writers(proc.process.pid)  # one for both workers, run by the supervisor
    os.kill(writer, signal.SIGKILL)
    replacement = await _new_writer(proc.process.pid, writer)
    for i in range(40):
        # New connections each time, so the kernel hands them to either worker.
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await send(client, proc, "many.test", f"/r/{i}")).status_code == 200
    assert len(_writers(proc.process.pid)) == 1
    assert proc.stop() == 0
    assert sorted(await _stored_paths(redis_url)) == sorted(f"/r/{i}" for i in range(40))
    instances = {record["instance"] for record in await stored_records(redis_url)}
    assert instances and all(name.endswith(("-w0", "-w1")) for name in instances), instances
    assert not _alive(replacement)


def _record(i: int, **fields) -> RequestRecord:
    values = {
        "ts": time.time(),
        "client_ip": "192.0.2.1",
        "hostname": "full.test",
        "method": "GET",
        "path": f"/{i}",
        "query": "a=1",
        "status": 200,
        "bytes_in": 0,
        "bytes_out": 5,
        "duration_ms": 0.5,
        "upstream_ms": None,
        "user_agent": "ua",
        "referer": "",
        **fields,
    }
    return RequestRecord(**values)


async def test_a_full_channel_drops_and_counts_and_never_blocks():
    """Nobody reads the channel: it fills, then the LOG_BUFFER_SIZE buffer; every further record
    is dropped and counted at once. Each record is either delivered whole or counted dropped."""
    settings = load_settings(environ={"LOG_BUFFER_SIZE": "100"}, env_file=None)
    request_log = RequestLog(settings, "redis://127.0.0.1:9/0")
    serving, far = wire.channel_pair()
    total = 20_000
    with serving, far:
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(request_log.run, channel=serving))
            with trio.fail_after(10):
                for chunk in range(total // 500):
                    for i in range(500):
                        request_log.submit(
                            to_row(_record(chunk * 500 + i, user="u", client_id="c"))
                        )
                    await trio.sleep(0.03)
            assert request_log.dropped > 0
            assert request_log.queued <= 2 * 100
            # Now drain the channel as the writer would.
            reader = trio.socket.from_stdlib_socket(far)
            rows = []
            while True:
                with trio.move_on_after(0.5) as idle:
                    frame = await reader.recv(wire.MAX_FRAME + 1)
                if idle.cancelled_caught:
                    break
                instance, got = wire.unpack_records(frame)
                assert instance == settings.instance
                rows += got
            nursery.cancel_scope.cancel()
    assert len(rows) + request_log.dropped == total
    assert request_log.queued == 0
    assert all(wire.valid_row(row) for row in rows)
    # A row carries every field of the record, in the record's own order.
    names = [f.name for f in attrs.fields(RequestRecord)][: len(wire.ROW_FIELDS)]
    units = {"ts": "ts_us", "duration_ms": "duration_us", "upstream_ms": "upstream_us"}
    assert list(wire.ROW_FIELDS) == [units.get(name, name) for name in names]
    first = dict(zip(wire.ROW_FIELDS, rows[0], strict=True))
    assert (first["path"], first["user"], first["client_id"], first["query"]) == (
        "/0",
        "u",
        "c",
        "a=1",
    )


async def test_writer_skips_malformed_frames_and_bad_rows(redis_url):
    settings = load_settings(environ={"LOG_BATCH_INTERVAL": "0.05"}, env_file=None)
    serving, far = wire.channel_pair()
    good = _record(1, user="alice", client_id="cli")
    row = to_row(good)
    bad_row = (*row[:6], "200", *row[7:])  # status as text
    with serving, far:
        sock = trio.socket.from_stdlib_socket(serving)
        async with trio.open_nursery() as nursery:
            await nursery.start(
                functools.partial(
                    run_writer_process, writer_config(settings), redis_url, [far], grace=5
                )
            )
            await sock.send(b"Rnot marshal")
            await sock.send(b"?" + b"x" * 10)
            [(frame, _)] = wire.pack_records("test-instance", [bad_row, row])
            await sock.send(frame)
            written = dropped = 0
            with trio.fail_after(10):
                while (written, dropped) != (1, 1):
                    report = wire.unpack_stats(await sock.recv(256))
                    assert report is not None
                    written, dropped = written + report[0], dropped + report[1]
            sock.close()  # end-of-file: the writer exits 0, run_writer_process returns
    paths = await _stored_paths(redis_url)
    assert paths == ["/1"]


def test_logs_imports_neither_the_api_nor_the_edge():
    code = (
        "import importlib, pkgutil, sys, proxyd.logs\n"
        "for m in pkgutil.iter_modules(proxyd.logs.__path__):\n"
        "    importlib.import_module('proxyd.logs.' + m.name)\n"
        "bad = [k for k in sys.modules if k.startswith(('proxyd.api', 'proxyd.edge', "
        "'proxyd.runtime', 'proxyd.oauth', 'proxyd.tls', 'proxyd.cli'))]\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""

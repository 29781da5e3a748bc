"""Unit checks for the harness's parsers and BENCHMARKS.md writer (`pytest bench/test_bench.py`).

Not collected by the project's default `pytest` run (testpaths = tests); no daemons started.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.report import END_MARKER, NOT_BUILT, Row, ratios, render_table, write_benchmarks
from bench.wrk import LoadResult, parse_h2load, parse_wrk, to_ms

# Real output of `wrk -t1 -c10 -d2s --latency` against the nginx backend on this machine.
WRK_OUTPUT = """Running 2s test @ http://127.0.0.1:56595/
  1 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   320.44us  359.57us   8.18ms   96.40%
    Req/Sec    33.42k     8.70k   47.78k    57.14%
  Latency Distribution
     50%  257.00us
     75%  341.00us
     90%  424.00us
     99%    2.24ms
  69750 requests in 2.10s, 10.18MB read
Requests/sec:  33211.41
Transfer/sec:      4.85MB
"""

WRK_ERRORS = """Running 1s test @ http://127.0.0.1:1/
  1 threads and 10 connections
  Latency Distribution
     50%    1.50s
     75%    1.60s
     90%    1.70s
     99%    1.90s
  12 requests in 1.00s, 1.00KB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:     12.00
Transfer/sec:      1.00KB
"""

H2LOAD_OUTPUT = """finished in 2.00s, 34370.50 req/s, 2.36MB/s
requests: 68741 total, 68751 started, 68741 done, 68741 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 68741 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 4.72MB (4949842) total, 3.15MB (3299568) headers (space savings 51.02%), 402.78KB
                     min         max         mean         sd        +/- sd
time for request:       63us      7.18ms       201us       160us    97.98%
"""


def test_parse_wrk_real_output() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result.requests_per_sec == pytest.approx(33211.41)
    assert result.p50_ms == pytest.approx(0.257)
    assert result.p99_ms == pytest.approx(2.24)
    assert result.total_requests == 69750
    assert result.error_count == 0


def test_parse_wrk_seconds_and_errors() -> None:
    result = parse_wrk(WRK_ERRORS)
    assert result.p50_ms == pytest.approx(1500.0)
    assert result.p99_ms == pytest.approx(1900.0)
    assert result.non_2xx == 7
    assert result.socket_errors == {"connect": 0, "read": 3, "write": 0, "timeout": 2}
    assert result.error_count == 12


def test_parse_wrk_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


def test_units() -> None:
    assert to_ms(250, "us") == pytest.approx(0.25)
    assert to_ms(2, "ms") == 2
    assert to_ms(1.5, "s") == 1500
    assert to_ms(1, "m") == 60_000


def test_parse_h2load() -> None:
    result = parse_h2load(H2LOAD_OUTPUT)
    assert result.requests_per_sec == pytest.approx(34370.5)
    assert result.p50_ms == pytest.approx(0.201)  # h2load's mean
    assert result.p99_ms is None
    assert result.error_count == 0


def _rows() -> list[Row]:
    return [
        Row("direct", "direct", LoadResult(40000, 0.2, 1.0)),
        Row("nginx", "nginx", LoadResult(20000, 0.4, 2.0)),
        Row("proxyd", "proxyd", LoadResult(5000, 1.2, 9.0)),
        Row("proxyd_oauth", "oauth", note=NOT_BUILT),
    ]


def test_ratios_and_table() -> None:
    values = ratios(_rows())
    assert values["proxyd"]["vs_nginx"] == pytest.approx(0.25)
    assert values["proxyd"]["vs_direct"] == pytest.approx(0.125)
    assert values["proxyd"]["added_p50_ms"] == pytest.approx(1.0)
    assert "proxyd_oauth" not in values
    table = render_table(_rows())
    assert "| proxyd | 5,000 | 1.200 ms | 9.000 ms | 0.25× | 0.12× | +1.000 ms |  |" in table
    assert f"| oauth | – | – | – | – | – | – | {NOT_BUILT} |" in table


def test_writer_keeps_text_below_marker(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    write_benchmarks(path, "# first\n")
    assert path.read_text().startswith("# first\n\n" + END_MARKER)
    notes = path.read_text().replace("## Notes", "## Notes\n\nprofile: 30% in h11")
    path.write_text(notes)
    write_benchmarks(path, "# second\n")
    text = path.read_text()
    assert text.startswith("# second\n\n" + END_MARKER)
    assert "# first" not in text
    assert "profile: 30% in h11" in text

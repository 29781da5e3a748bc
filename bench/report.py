"""Turn measured rows into the Markdown table and rewrite BENCHMARKS.md, keeping notes below the marker."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.wrk import LoadResult

END_MARKER = "<!-- bench:end -->"
DEFAULT_NOTES = """
## Notes

Hand-written notes (profiling results, explanations) go here, below the marker line above:
`nox -s bench` rewrites everything above it and keeps everything below it.
"""

NOT_BUILT = "not measured: feature not built yet"


@dataclass
class Row:
    """One table row: a measured result, or a note saying why there is none."""

    key: str
    label: str
    result: LoadResult | None = None
    note: str = ""
    warnings: list[str] = field(default_factory=list)


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 10:
        return f"{value:.3f} ms"
    return f"{value:.1f} ms"


def _fmt_ratio(num: LoadResult | None, den: LoadResult | None) -> str:
    if not num or not den or den.requests_per_sec <= 0:
        return "–"
    return f"{num.requests_per_sec / den.requests_per_sec:.2f}×"


def _fmt_added(row: LoadResult | None, direct: LoadResult | None) -> str:
    if not row or not direct or row.p50_ms is None or direct.p50_ms is None:
        return "–"
    return f"{row.p50_ms - direct.p50_ms:+.3f} ms"


def ratios(rows: list[Row]) -> dict[str, dict[str, float]]:
    """For each measured row: req/s relative to `direct` and `nginx`, and added p50 in ms."""
    by_key = {r.key: r.result for r in rows if r.result}
    direct, nginx = by_key.get("direct"), by_key.get("nginx")
    out: dict[str, dict[str, float]] = {}
    for row in rows:
        res = row.result
        if not res:
            continue
        values: dict[str, float] = {}
        if direct and direct.requests_per_sec > 0:
            values["vs_direct"] = res.requests_per_sec / direct.requests_per_sec
        if nginx and nginx.requests_per_sec > 0:
            values["vs_nginx"] = res.requests_per_sec / nginx.requests_per_sec
        if direct and direct.p50_ms is not None and res.p50_ms is not None:
            values["added_p50_ms"] = res.p50_ms - direct.p50_ms
        out[row.key] = values
    return out


def render_table(rows: list[Row]) -> str:
    """The Markdown table: target | req/s | p50 | p99 | vs nginx proxy | vs direct | ..."""
    by_key = {r.key: r.result for r in rows if r.result}
    direct, nginx = by_key.get("direct"), by_key.get("nginx")
    lines = [
        "| target | req/s | p50 | p99 | vs nginx proxy | vs direct | p50 over direct | notes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        res = row.result
        notes = "; ".join(filter(None, [row.note, *row.warnings]))
        if res is None:
            cells = [row.label, "–", "–", "–", "–", "–", "–", notes]
        else:
            cells = [
                row.label,
                f"{res.requests_per_sec:,.0f}",
                _fmt_ms(res.p50_ms),
                _fmt_ms(res.p99_ms),
                _fmt_ratio(res, nginx),
                _fmt_ratio(res, direct),
                _fmt_added(res, direct),
                notes,
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_h2_table(rows: list[Row]) -> str:
    """A smaller table for h2load runs (h2load prints a mean, not percentiles)."""
    lines = [
        "| target | req/s | mean latency | vs direct | notes |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    direct = next((r.result for r in rows if r.key == "direct" and r.result), None)
    for row in rows:
        res = row.result
        notes = "; ".join(filter(None, [row.note, *row.warnings]))
        if res is None:
            cells = [row.label, "–", "–", "–", notes]
        else:
            cells = [
                row.label,
                f"{res.requests_per_sec:,.0f}",
                _fmt_ms(res.p50_ms),
                _fmt_ratio(res, direct),
                notes,
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def preserved_tail(existing: str) -> str:
    """Everything from the end marker on (the hand-written part), or a default notes section."""
    index = existing.find(END_MARKER)
    if index < 0:
        return END_MARKER + "\n" + DEFAULT_NOTES
    return existing[index:]


def write_benchmarks(path: Path, generated: str) -> None:
    """Replace the generated part of `path` with `generated`, keeping the part below the marker."""
    existing = path.read_text() if path.exists() else ""
    tail = preserved_tail(existing)
    if not tail.endswith("\n"):
        tail += "\n"
    path.write_text(generated.rstrip("\n") + "\n\n" + tail)

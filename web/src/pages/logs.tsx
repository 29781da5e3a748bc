/** Request logs: a live tail (requestLogs subscription) with pause and resume, searches with
 * every filter and cursor pagination, a detail panel per request, and per-host statistics. */
import { useEffect, useRef, useState } from "preact/hooks";
import { hourlySeries, TimeChart } from "../chart";
import { request, subscribe } from "../client";
import type { ResultOf, VariablesOf } from "../graphql";
import { readFragment } from "../graphql";
import { RequestLogFields, RequestLogsQuery, RequestLogsSubscription, RequestStatsQuery } from "../ops";
import { Badge, ErrorText, formatTime, Loading, ms, useLoad } from "../ui";

export type LogRow = ResultOf<typeof RequestLogFields>;
type Filter = NonNullable<VariablesOf<typeof RequestLogsQuery>["filter"]>;

const MAX_LIVE = 500;

function statusTone(status: number): "ok" | "warn" | "bad" | "info" {
  return status >= 500 || status === 0 ? "bad" : status >= 400 ? "warn" : status >= 300 ? "info" : "ok";
}

export function LogTable(props: { rows: LogRow[]; onSelect?: (row: LogRow) => void; selected?: string | null; label: string }) {
  return (
    <div class="scroll" tabIndex={0} role="region" aria-label={`${props.label} (scrollable)`}>
      <table class="logs" aria-label={props.label}>
        <thead>
          <tr>
            <th scope="col">Time</th><th scope="col">Status</th><th scope="col">Method</th>
            <th scope="col">Host</th><th scope="col">Path</th><th scope="col">Duration</th>
            <th scope="col">Client</th><th scope="col">User</th>
          </tr>
        </thead>
        <tbody>
          {props.rows.length === 0 ? (
            <tr><td colSpan={8} class="muted">No requests.</td></tr>
          ) : (
            props.rows.map((r) => (
              <tr key={r.id} class={`clickable ${props.selected === r.id ? "selected" : ""}`} data-log-id={r.id} onClick={() => props.onSelect?.(r)}>
                <td>{formatTime(r.timestamp)}</td>
                <td><Badge tone={statusTone(r.status)}>{r.status}</Badge></td>
                <td>{r.method}</td>
                <td>{r.hostname}</td>
                <td class="path">{r.path}{r.query ? `?${r.query}` : ""}</td>
                <td>{ms(r.durationMs)}</td>
                <td>{r.clientIp}</td>
                <td>{r.user ?? "—"}</td>
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
  );
}

function Detail({ row, onClose }: { row: LogRow; onClose: () => void }) {
  return (
    <aside class="card detail" aria-label="Request detail">
      <div class="page-head">
        <h2>Request {row.id}</h2>
        <button type="button" onClick={onClose}>Close</button>
      </div>
      <dl class="stats">
        {Object.entries(row).flatMap(([key, value]) => [
          <dt key={`${key}-k`}>{key}</dt>,
          <dd key={`${key}-v`}>{value === null || value === undefined || value === "" ? "—" : String(value)}</dd>,
        ])}
      </dl>
    </aside>
  );
}

/** The newest requests of one host (proxy page). */
export function RecentRequests({ hostname }: { hostname: string }) {
  const { data, error } = useLoad(() => request(RequestLogsQuery, { filter: { hostname }, limit: 10 }), [hostname]);
  if (!data) return <Loading error={error} />;
  return <LogTable label={`Recent requests to ${hostname}`} rows={data.requestLogs.items.map((r) => readFragment(RequestLogFields, r))} />;
}

const FILTER_FIELDS: { name: keyof Filter; label: string; type: string }[] = [
  { name: "hostname", label: "Host", type: "text" },
  { name: "ip", label: "IP", type: "text" },
  { name: "status", label: "Status", type: "number" },
  { name: "user", label: "User", type: "text" },
  { name: "clientId", label: "Client", type: "text" },
  { name: "path", label: "Path", type: "text" },
  { name: "method", label: "Method", type: "text" },
  { name: "text", label: "Text", type: "search" },
  { name: "since", label: "Since", type: "datetime-local" },
  { name: "until", label: "Until", type: "datetime-local" },
];

function toFilter(texts: Record<string, string>, flags: { errorsOnly: boolean; slowOnly: boolean }): Filter {
  const filter: Record<string, unknown> = {};
  for (const f of FILTER_FIELDS) {
    const value = (texts[f.name] ?? "").trim();
    if (!value) continue;
    if (f.type === "number") filter[f.name] = Number(value);
    else if (f.type === "datetime-local") filter[f.name] = new Date(value).toISOString();
    else filter[f.name] = f.name === "method" ? value.toUpperCase() : value;
  }
  if (flags.errorsOnly) filter.errorsOnly = true;
  if (flags.slowOnly) filter.slowOnly = true;
  return filter as Filter;
}

export function LogsPage() {
  const [texts, setTexts] = useState<Record<string, string>>({});
  const [flags, setFlags] = useState({ errorsOnly: false, slowOnly: false });
  const [filter, setFilter] = useState<Filter>({});
  const [live, setLive] = useState<LogRow[]>([]);
  const [paused, setPaused] = useState(false);
  const pausedRef = useRef(false);
  const buffered = useRef<LogRow[]>([]);
  const [liveError, setLiveError] = useState<string | null>(null);
  const [search, setSearch] = useState<{ items: LogRow[]; endCursor: string | null; hasMore: boolean } | null>(null);
  const [searchError, setSearchError] = useState<string | null>(null);
  const [selected, setSelected] = useState<LogRow | null>(null);
  const [liveState, setLiveState] = useState("connecting");

  useEffect(() => {
    setLive([]);
    buffered.current = [];
    setLiveState("live");
    const stop = subscribe(
      RequestLogsSubscription,
      { filter },
      (data) => {
        const row = readFragment(RequestLogFields, data.requestLogs);
        if (pausedRef.current) buffered.current = [row, ...buffered.current].slice(0, MAX_LIVE);
        else setLive((rows) => [row, ...rows].slice(0, MAX_LIVE));
      },
      (err) => (setLiveError(err.message), setLiveState("stopped")),
    );
    return stop;
  }, [filter]);

  function togglePause() {
    const next = !paused;
    pausedRef.current = next;
    setPaused(next);
    if (!next) {
      const held = buffered.current;
      buffered.current = [];
      setLive((rows) => [...held, ...rows].slice(0, MAX_LIVE));
    }
  }

  async function runSearch(after?: string | null) {
    setSearchError(null);
    try {
      const data = await request(RequestLogsQuery, { filter, limit: 50, after: after ?? null });
      const items = data.requestLogs.items.map((r) => readFragment(RequestLogFields, r));
      setSearch({
        items: after && search ? [...search.items, ...items] : items,
        endCursor: data.requestLogs.endCursor ?? null,
        hasMore: data.requestLogs.hasMore,
      });
    } catch (err) {
      setSearchError((err as Error).message);
    }
  }

  useEffect(() => {
    void runSearch();
  }, [filter]);

  return (
    <section>
      <h1>Request logs</h1>
      <form
        class="filters card"
        aria-label="Request log filters"
        onSubmit={(e) => {
          e.preventDefault();
          setFilter(toFilter(texts, flags));
        }}
      >
        {FILTER_FIELDS.map((f) => (
          <div class="field" key={f.name}>
            <label for={`filter-${f.name}`}>{f.label}</label>
            <input id={`filter-${f.name}`} type={f.type} value={texts[f.name] ?? ""} onInput={(e) => setTexts({ ...texts, [f.name]: e.currentTarget.value })} />
          </div>
        ))}
        <div class="field check">
          <input id="filter-errors" type="checkbox" checked={flags.errorsOnly} onChange={(e) => setFlags({ ...flags, errorsOnly: e.currentTarget.checked })} />
          <label for="filter-errors">Errors only</label>
        </div>
        <div class="field check">
          <input id="filter-slow" type="checkbox" checked={flags.slowOnly} onChange={(e) => setFlags({ ...flags, slowOnly: e.currentTarget.checked })} />
          <label for="filter-slow">Slow only</label>
        </div>
        <div class="form-actions">
          <button type="submit" class="primary">Apply filters</button>
          <button type="button" onClick={() => (setTexts({}), setFlags({ errorsOnly: false, slowOnly: false }), setFilter({}))}>Clear</button>
        </div>
      </form>
      <div class="split">
        <div>
          <div class="card">
            <div class="page-head">
              <h2>Live tail</h2>
              <span class={`live-dot ${paused ? "paused" : liveState}`} role="status">
                {paused ? `paused (${buffered.current.length} held)` : liveState}
              </span>
              <button type="button" onClick={togglePause} aria-pressed={paused}>
                {paused ? "Resume" : "Pause"}
              </button>
            </div>
            <ErrorText error={liveError} />
            <LogTable label="Live requests" rows={live} selected={selected?.id} onSelect={setSelected} />
          </div>
          <div class="card">
            <h2>Search results</h2>
            <ErrorText error={searchError} />
            {search ? (
              <>
                <LogTable label="Matching requests" rows={search.items} selected={selected?.id} onSelect={setSelected} />
                {search.hasMore ? (
                  <button type="button" onClick={() => runSearch(search.endCursor)}>Load older</button>
                ) : null}
              </>
            ) : (
              <p class="muted">Loading…</p>
            )}
          </div>
          <HostStats hostname={filter.hostname ?? null} />
        </div>
        {selected ? <Detail row={selected} onClose={() => setSelected(null)} /> : null}
      </div>
    </section>
  );
}

function HostStats({ hostname }: { hostname: string | null }) {
  const { data, error } = useLoad(() => request(RequestStatsQuery, { hostname, hours: 24 }), [hostname]);
  if (!data) return <Loading error={error} />;
  const s = data.requestStats;
  return (
    <div class="card">
      <h2>Statistics (24 h, {hostname ?? "every host"})</h2>
      <dl class="stats">
        <dt>Requests</dt><dd>{s.requests}</dd>
        <dt>Errors</dt><dd>{s.errors}</dd>
        <dt>Unique visitors</dt><dd>{s.uniqueVisitors}</dd>
        <dt>p50 / p95 / p99</dt><dd>{ms(s.p50Ms)} / {ms(s.p95Ms)} / {ms(s.p99Ms)}</dd>
      </dl>
      <TimeChart title="Requests and errors per hour" series={[{ label: "requests", color: "#1f6fb2" }, { label: "errors", color: "#b3261e" }]} data={hourlySeries(s.hourly)} />
    </div>
  );
}

/** Dashboard: proxies and their HTTPS/auth counts, certificates needing attention, the live
 * request and error rate (fed by the requestLogs subscription), latency percentiles, dropped
 * log records, Redis, the answering instance and the last errors. */
import { useEffect, useMemo, useState } from "preact/hooks";
import { hourlySeries, TimeChart } from "../chart";
import { request, subscribe } from "../client";
import { readFragment } from "../graphql";
import { DashboardQuery, RequestLogFields, RequestLogsSubscription } from "../ops";
import { Badge, formatTime, Loading, ms, useLoad } from "../ui";

const RENEW_WINDOW_DAYS = 30;
const BUCKET_SECONDS = 60;
const WINDOW_SECONDS = 3600;

/** Requests and errors per minute over the last hour, counted from the live subscription. */
function useLiveRate() {
  const [buckets, setBuckets] = useState<Map<number, [number, number]>>(new Map());
  useEffect(
    () =>
      subscribe(RequestLogsSubscription, { filter: {} }, (data) => {
        const t = Date.now() / 1000;
        const bucket = Math.floor(t / BUCKET_SECONDS) * BUCKET_SECONDS;
        const status = readFragment(RequestLogFields, data.requestLogs).status;
        setBuckets((old) => {
          const next = new Map(old);
          const [r, e] = next.get(bucket) ?? [0, 0];
          next.set(bucket, [r + 1, e + (status >= 400 || status === 0 ? 1 : 0)]);
          const oldest = Date.now() / 1000 - WINDOW_SECONDS;
          for (const key of next.keys()) if (key < oldest) next.delete(key);
          return next;
        });
      }),
    [],
  );
  return useMemo(() => {
    const now = Math.floor(Date.now() / 1000 / BUCKET_SECONDS) * BUCKET_SECONDS;
    const xs: number[] = [];
    const rs: number[] = [];
    const es: number[] = [];
    for (let t = now - WINDOW_SECONDS + BUCKET_SECONDS; t <= now; t += BUCKET_SECONDS) {
      const [r, e] = buckets.get(t) ?? [0, 0];
      xs.push(t);
      rs.push(r);
      es.push(e);
    }
    return [xs, rs, es] as [number[], number[], number[]];
  }, [buckets]);
}

export function DashboardPage() {
  const { data, error } = useLoad(() => request(DashboardQuery), []);
  const live = useLiveRate();
  if (!data) return <Loading error={error} />;
  const { health, proxies, certificates, requestStats: stats } = data;
  const soon = Date.now() + RENEW_WINDOW_DAYS * 86400_000;
  const attention = certificates.filter(
    (c) => c.status === "failed" || (c.expiresAt && Date.parse(c.expiresAt) < soon) || c.orderStatus?.stage === "failed",
  );
  return (
    <section>
      <h1>Dashboard</h1>
      <div class="tiles">
        <div class="tile"><span class="big">{proxies.length}</span> proxies</div>
        <div class="tile"><span class="big">{proxies.filter((p) => p.enableHttps).length}</span> with HTTPS</div>
        <div class="tile"><span class="big">{proxies.filter((p) => p.authEnabled).length}</span> auth-protected</div>
        <div class="tile"><span class="big">{stats.requests}</span> requests (24 h)</div>
        <div class="tile"><span class="big">{stats.errors}</span> errors (24 h)</div>
        <div class="tile"><span class="big">{health.logRecordsDropped}</span> log records dropped</div>
      </div>
      <div class="grid2">
        <div class="card">
          <h2>Live traffic (last hour, per minute)</h2>
          <TimeChart title="Live requests and errors per minute" series={[{ label: "requests", color: "#1f6fb2" }, { label: "errors", color: "#b3261e" }]} data={live} />
        </div>
        <div class="card">
          <h2>Requests per hour (24 h)</h2>
          <TimeChart title="Requests and errors per hour" series={[{ label: "requests", color: "#1f6fb2" }, { label: "errors", color: "#b3261e" }]} data={hourlySeries(stats.hourly)} />
          <p>Latency p50 {ms(stats.p50Ms)} · p95 {ms(stats.p95Ms)} · p99 {ms(stats.p99Ms)} · {stats.uniqueVisitors} unique visitors</p>
        </div>
        <div class="card">
          <h2>System</h2>
          <dl class="stats">
            <dt>Status</dt><dd><Badge tone={health.status === "ok" ? "ok" : "bad"}>{health.status}</Badge></dd>
            <dt>Redis</dt><dd><Badge tone={health.redis === "ok" ? "ok" : "bad"}>{health.redis}</Badge></dd>
            <dt>Instance (answering)</dt><dd>{health.instance}</dd>
            <dt>Workers</dt><dd>{health.workers}</dd>
            <dt>Version</dt><dd>{health.version}</dd>
            <dt>Proxies served here</dt><dd>{health.proxies}</dd>
          </dl>
        </div>
        <div class="card">
          <h2>Certificates needing attention</h2>
          {attention.length === 0 ? (
            <p class="muted">None expire within {RENEW_WINDOW_DAYS} days and no order failed.</p>
          ) : (
            <ul>
              {attention.map((c) => (
                <li key={c.certName}>
                  <a href="/certificates">{c.certName}</a> ({c.domains.join(", ")}): {c.status}, expires {formatTime(c.expiresAt)}
                  {c.lastError ? ` (${c.lastError})` : ""}
                </li>
              ))}
            </ul>
          )}
        </div>
      </div>
      <div class="card">
        <h2>Last errors</h2>
        {data.requestLogs.items.length === 0 ? (
          <p class="muted">No failed requests.</p>
        ) : (
          <ul class="plain">
            {data.requestLogs.items.map((r) => (
              <li key={r.id}>
                {formatTime(r.timestamp)} <Badge tone="bad">{r.status}</Badge> {r.method} {r.hostname}{r.path} {r.error ? `(${r.error})` : ""}
              </li>
            ))}
          </ul>
        )}
      </div>
    </section>
  );
}

/** One Docker service's panel: status, start/stop/restart/delete (read-only aware), its ports and
 * proxy, the last N log lines followed live (serviceLogs subscription) with pause, and stats
 * (CPU, memory and limit, network and block I/O) refreshed every few seconds. Editing the service
 * and its ports lives in service_edit.tsx. */
import { useEffect, useRef, useState } from "preact/hooks";
import { TimeChart } from "../chart";
import { request, subscribe } from "../client";
import type { ResultOf } from "../graphql";
import {
  CreateServiceProxy, DeleteDockerService, RestartService, ServiceFields, ServiceLogsQuery,
  ServiceLogsSubscription, ServiceStatsQuery, StartService, StopService,
} from "../ops";
import { READ_ONLY_REASON } from "../session";
import { ActionButton, Badge, ErrorText, formatTime, useWritable } from "../ui";
import { EditServiceForm, PortsSection, shellQuote } from "./service_edit";

export type ServiceRow = ResultOf<typeof ServiceFields>;
export interface LiveStatus {
  status: string;
  exitCode?: number | null;
}

const STATS_EVERY_MS = 3000;
const STATS_KEEP = 60;
const MAX_LOG_LINES = 2000;
const TAILS = [20, 100, 500, 2000];

export function statusTone(status: string): "ok" | "warn" | "bad" | "info" | "off" {
  if (status === "running" || status === "registered") return "ok";
  if (status === "restarting" || status === "created" || status === "paused") return "warn";
  if (status === "exited" || status === "dead" || status === "unhealthy" || status === "missing") return "bad";
  return "off";
}

export function StatusBadge({ status, exitCode }: { status: string; exitCode?: number | null }) {
  const code = status === "exited" && exitCode !== null && exitCode !== undefined ? ` (${exitCode})` : "";
  return (
    <span class={`badge ${statusTone(status)}`} data-status={status}>
      {status}
      {code}
    </span>
  );
}

export function bytes(value: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = value;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${i === 0 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`;
}

const isRunning = (status: string) => status === "running" || status === "unhealthy";

export function DockerServicePanel(props: { service: ServiceRow; onChanged: (status?: LiveStatus) => void; onDeleted: () => void }) {
  const s = props.service;
  const [message, setMessage] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [editing, setEditing] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);

  /** A change that recreated the container: say so, and reload the page's data. */
  function changed(result: ServiceRow) {
    setNotice(result.notice ?? null);
    props.onChanged({ status: result.status, exitCode: result.exitCode });
  }

  async function act(label: string, run: () => Promise<LiveStatus>) {
    setBusy(label);
    setMessage(null);
    setNotice(null);
    try {
      props.onChanged(await run());
    } catch (err) {
      setMessage((err as Error).message);
    } finally {
      setBusy(null);
    }
  }

  const running = isRunning(s.status);
  return (
    <section class="card service-panel" aria-labelledby="service-panel-title">
      <div class="page-head">
        <h2 id="service-panel-title">{s.name}</h2>
        <StatusBadge status={s.status} exitCode={s.exitCode} />
        {s.health ? <Badge tone={s.health === "healthy" ? "ok" : "warn"}>{s.health}</Badge> : null}
        <ActionButton disabled={busy !== null || running} onClick={() => act("start", async () => (await request(StartService, { name: s.name })).startService)}>
          {busy === "start" ? "Starting…" : "Start"}
        </ActionButton>
        <ActionButton disabled={busy !== null || !running} onClick={() => act("stop", async () => (await request(StopService, { name: s.name })).stopService)}>
          {busy === "stop" ? "Stopping…" : "Stop"}
        </ActionButton>
        <ActionButton disabled={busy !== null} onClick={() => act("restart", async () => (await request(RestartService, { name: s.name })).restartService)}>
          {busy === "restart" ? "Restarting…" : "Restart"}
        </ActionButton>
        <ActionButton disabled={busy !== null} aria-expanded={editing} onClick={() => setEditing(!editing)}>
          Edit
        </ActionButton>
        <ActionButton class="danger" disabled={busy !== null} onClick={() => setConfirming(true)}>
          Delete
        </ActionButton>
      </div>
      {confirming ? (
        <DeleteConfirm service={s} onCancel={() => setConfirming(false)} onDeleted={props.onDeleted} />
      ) : null}
      <ErrorText error={message} />
      {notice ?? s.notice ? <p class="notice" role="status">{notice ?? s.notice}</p> : null}
      {editing ? (
        <EditServiceForm service={s} onDone={(result) => (setEditing(false), changed(result))} onCancel={() => setEditing(false)} />
      ) : null}
      <div class="grid2">
        <div>
          <h3>Container</h3>
          <dl class="stats">
            <dt>Image</dt><dd>{s.image ?? s.dockerfilePath ?? "—"}</dd>
            <dt>Command</dt><dd><code>{s.command ? s.command.map(shellQuote).join(" ") : "(the image's)"}</code></dd>
            <dt>Memory limit</dt><dd>{s.memoryLimit ?? "none"}</dd>
            <dt>CPU limit</dt><dd>{s.cpuLimit ?? "none"}</dd>
            <dt>Restart policy</dt><dd>{s.restartPolicy ?? "—"}</dd>
            <dt>Container</dt><dd>{s.containerName ?? "—"} {s.containerId ? <span class="muted">{s.containerId.slice(0, 12)}</span> : null}</dd>
            <dt>Address</dt><dd>{s.ipAddress ?? "—"}</dd>
            <dt>Networks</dt><dd>{s.networks.length ? s.networks.join(", ") : "default"}</dd>
            <dt>Environment</dt><dd>{s.environmentKeys.length ? s.environmentKeys.join(", ") : "—"}</dd>
            <dt>Created</dt><dd>{formatTime(s.createdAt)} {s.createdBy ? `by ${s.createdBy}` : ""}</dd>
          </dl>
        </div>
        <div>
          <h3>Proxy</h3>
          <ProxyBox service={s} onChanged={() => props.onChanged()} />
          <h3>Ports</h3>
          <PortsSection service={s} onDone={changed} />
        </div>
      </div>
      <div class="grid2">
        <ServiceLogs name={s.name} running={running} />
        <ServiceStats name={s.name} running={running} />
      </div>
    </section>
  );
}

function DeleteConfirm(props: { service: ServiceRow; onCancel: () => void; onDeleted: () => void }) {
  const [withProxy, setWithProxy] = useState(Boolean(props.service.proxyHostname));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const dialog = useRef<HTMLDivElement>(null);
  useEffect(() => dialog.current?.focus(), []);
  const name = props.service.name;
  return (
    <div
      class="confirm"
      ref={dialog}
      tabIndex={-1}
      role="alertdialog"
      aria-labelledby="confirm-delete-title"
      aria-describedby="confirm-delete-text"
      onKeyDown={(e) => e.key === "Escape" && props.onCancel()}
    >
      <h3 id="confirm-delete-title">Delete the service {name}?</h3>
      <p id="confirm-delete-text">Its container is removed and its host ports are released. This cannot be undone.</p>
      <div class="field check">
        <input id="confirm-delete-proxy" type="checkbox" checked={withProxy} onChange={(e) => setWithProxy(e.currentTarget.checked)} />
        <label for="confirm-delete-proxy">
          Also delete its proxy{props.service.proxyHostname ? ` ${props.service.proxyHostname}` : " (any proxy that sends to it)"}
        </label>
      </div>
      <ErrorText error={error} />
      <div class="form-actions">
        <ActionButton
          class="danger"
          disabled={busy}
          onClick={async () => {
            setBusy(true);
            try {
              await request(DeleteDockerService, { name, deleteProxy: withProxy });
              props.onDeleted();
            } catch (err) {
              setError((err as Error).message);
              setBusy(false);
            }
          }}
        >
          {busy ? "Deleting…" : `Delete ${name}`}
        </ActionButton>
        <button type="button" onClick={props.onCancel}>Cancel</button>
      </div>
    </div>
  );
}

function ProxyBox({ service, onChanged }: { service: ServiceRow; onChanged: () => void }) {
  const writable = useWritable();
  const [hostname, setHostname] = useState("");
  const [error, setError] = useState<string | null>(null);
  if (service.proxyHostname) {
    return (
      <p>
        <a href={`/proxies/${encodeURIComponent(service.proxyHostname)}`}>{service.proxyHostname}</a>{" "}
        <span class="muted">→ {service.targetUrl ?? `service://${service.name}`}</span>
      </p>
    );
  }
  return (
    <form
      class="inline-form"
      aria-label={`Make a proxy for ${service.name}`}
      onSubmit={async (e) => {
        e.preventDefault();
        setError(null);
        try {
          await request(CreateServiceProxy, { name: service.name, hostname: hostname.trim() || null });
          onChanged();
        } catch (err) {
          setError((err as Error).message);
        }
      }}
    >
      <div class={`field ${error ? "invalid" : ""}`}>
        <label for="service-proxy-hostname">Proxy hostname</label>
        <input
          id="service-proxy-hostname"
          type="text"
          placeholder={`${service.name}.BASE_DOMAIN`}
          disabled={!writable}
          title={writable ? undefined : READ_ONLY_REASON}
          value={hostname}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? "service-proxy-hostname-error" : undefined}
          onInput={(e) => setHostname(e.currentTarget.value)}
        />
        {error ? <p class="field-error" id="service-proxy-hostname-error" role="alert">{error}</p> : null}
      </div>
      <span title={writable ? undefined : READ_ONLY_REASON}>
        <button type="submit" disabled={!writable}>Make proxy</button>
      </span>
    </form>
  );
}

/** The last N lines; while the container runs, followed live (a subscription that starts with
 * those N lines, so nothing is lost or repeated between the two). */
function ServiceLogs({ name, running }: { name: string; running: boolean }) {
  const [tail, setTail] = useState(100);
  const [lines, setLines] = useState<string[]>([]);
  const [state, setState] = useState("loading");
  const [error, setError] = useState<string | null>(null);
  const [paused, setPaused] = useState(false);
  const pausedRef = useRef(false);
  const held = useRef<string[]>([]);
  const box = useRef<HTMLPreElement>(null);

  useEffect(() => {
    let alive = true;
    setLines([]);
    setError(null);
    held.current = [];
    if (!running) {
      setState("loading");
      request(ServiceLogsQuery, { name, tail }).then(
        (data) => alive && (setLines(data.serviceLogs), setState("stopped")),
        (err: Error) => alive && (setError(err.message), setState("stopped")),
      );
      return () => {
        alive = false;
      };
    }
    setState("live");
    const stop = subscribe(
      ServiceLogsSubscription,
      { name, tail },
      (data) => {
        if (!alive) return;
        if (pausedRef.current) held.current = [...held.current, data.serviceLogs].slice(-MAX_LOG_LINES);
        else setLines((old) => [...old, data.serviceLogs].slice(-MAX_LOG_LINES));
      },
      (err) => alive && (setError(err.message), setState("stopped")),
      () => alive && setState("ended"),
    );
    return () => {
      alive = false;
      stop();
    };
  }, [name, tail, running]);

  useEffect(() => {
    const el = box.current;
    if (el && !paused) el.scrollTop = el.scrollHeight;
  }, [lines, paused]);

  function togglePause() {
    const next = !paused;
    pausedRef.current = next;
    setPaused(next);
    if (!next) {
      const more = held.current;
      held.current = [];
      setLines((old) => [...old, ...more].slice(-MAX_LOG_LINES));
    }
  }

  const label = paused ? `paused (${held.current.length} held)` : state === "live" ? "live" : state === "ended" ? "ended (the container stopped)" : state === "loading" ? "loading" : "not running";
  return (
    <div class="service-logs">
      <div class="page-head">
        <h3>Logs</h3>
        <span class={`live-dot ${paused ? "paused" : state}`} role="status" aria-label="Log follow">{label}</span>
        <label for="service-log-tail">Last</label>
        <select id="service-log-tail" value={String(tail)} onChange={(e) => setTail(Number(e.currentTarget.value))}>
          {TAILS.map((n) => <option key={n} value={n}>{n} lines</option>)}
        </select>
        {running ? (
          <button type="button" onClick={togglePause} aria-pressed={paused}>{paused ? "Resume" : "Pause"}</button>
        ) : null}
      </div>
      <ErrorText error={error} />
      <pre class="log" ref={box} tabIndex={0} role="log" aria-label={`Log of ${name}`}>
        {lines.length ? lines.join("\n") : <span class="muted">No log lines.</span>}
      </pre>
    </div>
  );
}

type Stats = ResultOf<typeof ServiceStatsQuery>["serviceStats"];

function ServiceStats({ name, running }: { name: string; running: boolean }) {
  const [stats, setStats] = useState<Stats | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [history, setHistory] = useState<[number[], number[], number[]]>([[], [], []]);

  useEffect(() => {
    setStats(null);
    setError(null);
    setHistory([[], [], []]);
    if (!running) return;
    let alive = true;
    let timer = 0;
    const poll = async () => {
      try {
        const data = await request(ServiceStatsQuery, { name });
        if (!alive) return;
        const s = data.serviceStats;
        setStats(s);
        setError(null);
        const t = Date.now() / 1000;
        setHistory(([ts, cpu, mem]) => [
          [...ts, t].slice(-STATS_KEEP),
          [...cpu, s.cpuPercent].slice(-STATS_KEEP),
          [...mem, s.memoryPercent].slice(-STATS_KEEP),
        ]);
      } catch (err) {
        if (alive) setError((err as Error).message);
      }
      if (alive) timer = window.setTimeout(poll, STATS_EVERY_MS);
    };
    void poll();
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }, [name, running]);

  return (
    <div class="service-stats" aria-label={`Stats of ${name}`} role="region">
      <div class="page-head">
        <h3>Stats</h3>
        <span class="muted">{running ? `every ${STATS_EVERY_MS / 1000} s` : "the container is not running"}</span>
      </div>
      <ErrorText error={error} />
      {stats ? (
        <>
          <dl class="stats">
            <dt>CPU</dt><dd data-stat="cpu">{stats.cpuPercent.toFixed(2)} %</dd>
            <dt>Memory</dt>
            <dd data-stat="memory">
              {bytes(stats.memoryUsage)} of {bytes(stats.memoryLimit)} ({stats.memoryPercent.toFixed(1)} %)
            </dd>
            <dt>Network</dt><dd data-stat="network">{bytes(stats.networkRx)} in, {bytes(stats.networkTx)} out</dd>
            <dt>Block I/O</dt><dd data-stat="block">{bytes(stats.blockRead)} read, {bytes(stats.blockWrite)} written</dd>
            <dt>Processes</dt><dd>{stats.pids}</dd>
          </dl>
          {history[0].length >= 2 ? (
          <TimeChart
            title={`CPU and memory (%) of ${name}`}
            series={[{ label: "CPU %", color: "#1f6fb2" }, { label: "memory %", color: "#7a4d00" }]}
            data={history}
            height={140}
          />
          ) : null}
        </>
      ) : running && !error ? (
        <p class="muted">Reading…</p>
      ) : null}
    </div>
  );
}

/** Routes: the priority-ordered table with create, edit and delete, and the "which route
 * matches?" box (the matchRoute query, decided by the edge's own matcher). */
import { useState } from "preact/hooks";
import { request } from "../client";
import { SpecForm, type FieldSpec } from "../forms";
import type { ResultOf, VariablesOf } from "../graphql";
import { readFragment } from "../graphql";
import { CreateRoute, DeleteRoute, MatchRouteQuery, RouteFields, RoutesQuery, UpdateRoute } from "../ops";
import { ActionButton, Badge, confirmed, DataTable, ErrorText, Loading, useLoad } from "../ui";

type RouteRow = ResultOf<typeof RouteFields>;

const ROUTE_FIELDS: FieldSpec[] = [
  { name: "routeId", label: "Route ID", kind: "text", createOnly: true, help: "generated from the path when empty" },
  { name: "pathPattern", label: "Path (prefix, or regex)", kind: "text", required: true },
  { name: "isRegex", label: "Regular expression", kind: "bool" },
  { name: "targetType", label: "Target type", kind: "select", options: ["port", "service", "hostname", "url"] },
  { name: "targetValue", label: "Target", kind: "text", required: true },
  { name: "priority", label: "Priority (higher first)", kind: "number" },
  { name: "methods", label: "Methods (empty: all)", kind: "list" },
  { name: "enabled", label: "Enabled", kind: "bool" },
  { name: "scope", label: "Scope", kind: "select", options: ["global", "proxy"] },
  { name: "proxyHostnames", label: "Proxies (scope proxy)", kind: "list" },
  { name: "description", label: "Description", kind: "text" },
];

function MatchBox({ hostnames }: { hostnames: string[] }) {
  const [hostname, setHostname] = useState(hostnames[0] ?? "");
  const [method, setMethod] = useState("GET");
  const [path, setPath] = useState("/");
  const [answer, setAnswer] = useState<ResultOf<typeof MatchRouteQuery>["matchRoute"] | null>(null);
  const [error, setError] = useState<string | null>(null);
  return (
    <div class="card" id="match-route">
      <h2>Which route matches?</h2>
      <form
        class="inline-form"
        onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          try {
            setAnswer((await request(MatchRouteQuery, { hostname, method, path })).matchRoute);
          } catch (err) {
            setAnswer(null);
            setError((err as Error).message);
          }
        }}
      >
        <div class="field">
          <label for="match-hostname">Hostname</label>
          <input id="match-hostname" list="match-hosts" value={hostname} onInput={(e) => setHostname(e.currentTarget.value)} />
          <datalist id="match-hosts">{hostnames.map((h) => <option key={h} value={h} />)}</datalist>
        </div>
        <div class="field">
          <label for="match-method">Method</label>
          <select id="match-method" value={method} onChange={(e) => setMethod(e.currentTarget.value)}>
            {["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].map((m) => <option key={m}>{m}</option>)}
          </select>
        </div>
        <div class="field">
          <label for="match-path">Path</label>
          <input id="match-path" value={path} onInput={(e) => setPath(e.currentTarget.value)} />
        </div>
        <button type="submit" class="primary">Match</button>
      </form>
      <ErrorText error={error} />
      {answer ? (
        <div class="match-answer" role="status">
          <p>
            <strong>{answer.route ? `Route ${answer.route.routeId}` : answer.proxy ? "The proxy's own target" : "No proxy"}</strong>
            {answer.target ? ` → ${answer.target}` : ""}
          </p>
          <p class="reason">{answer.reason}</p>
          {answer.candidates.length ? (
            <ol>
              {answer.candidates.map((c) => (
                <li key={c.route.routeId}>
                  <Badge tone={c.matched ? "ok" : "off"}>{c.matched ? "matches" : "skipped"}</Badge> {c.route.routeId}: {c.reason}
                </li>
              ))}
            </ol>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}

export function RoutesPage() {
  const { data, error, reload } = useLoad(() => request(RoutesQuery), []);
  const [editing, setEditing] = useState<RouteRow | "new" | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  if (!data) return <Loading error={error} />;
  const routes = data.routes.map((r) => readFragment(RouteFields, r));
  return (
    <section>
      <div class="page-head">
        <h1>Routes</h1>
        <ActionButton class="primary" onClick={() => setEditing(editing ? null : "new")}>
          {editing ? "Cancel" : "New route"}
        </ActionButton>
      </div>
      <MatchBox hostnames={data.proxies.map((p) => p.hostname)} />
      {editing ? (
        <div class="card">
          <h2>{editing === "new" ? "New route" : `Edit ${editing.routeId}`}</h2>
          <SpecForm
            key={editing === "new" ? "new" : editing.routeId}
            id="route-form"
            specs={ROUTE_FIELDS}
            initial={editing === "new" ? { enabled: true, priority: 50, targetType: "url", scope: "global" } : (editing as unknown as Record<string, unknown>)}
            mode={editing === "new" ? "create" : "edit"}
            submitLabel={editing === "new" ? "Create route" : "Save route"}
            onSubmit={(values) =>
              editing === "new"
                ? request(CreateRoute, { input: values as VariablesOf<typeof CreateRoute>["input"] })
                : request(UpdateRoute, { routeId: editing.routeId, input: values as VariablesOf<typeof UpdateRoute>["input"] })
            }
            onDone={() => (setEditing(null), reload())}
          />
        </div>
      ) : null}
      <ErrorText error={status} />
      <DataTable
        caption="Routes, highest priority first"
        rows={routes}
        rowKey={(r) => r.routeId}
        initialSort="priority"
        initialDir={-1}
        columns={[
          { key: "priority", label: "Priority", value: (r) => r.priority },
          { key: "routeId", label: "ID", value: (r) => r.routeId },
          { key: "path", label: "Path", value: (r) => `${r.pathPattern}${r.isRegex ? " (regex)" : ""}` },
          { key: "methods", label: "Methods", value: (r) => (r.methods?.length ? r.methods.join(" ") : "all") },
          { key: "target", label: "Target", value: (r) => `${r.targetType}:${r.targetValue}` },
          { key: "scope", label: "Scope", value: (r) => (r.scope === "proxy" ? `proxy: ${r.proxyHostnames.join(", ")}` : "global") },
          { key: "enabled", label: "Enabled", value: (r) => r.enabled, render: (r) => <Badge tone={r.enabled ? "ok" : "off"}>{r.enabled ? "yes" : "no"}</Badge> },
        ]}
        actions={(r) => (
          <>
            <ActionButton onClick={() => setEditing(r)}>Edit</ActionButton>
            <ActionButton
              class="danger"
              onClick={async () => {
                if (!confirmed(`Delete the route ${r.routeId}?`)) return;
                await request(DeleteRoute, { routeId: r.routeId }).catch((e: Error) => setStatus(e.message));
                reload();
              }}
            >
              Delete
            </ActionButton>
          </>
        )}
        empty="No routes: every request goes to its proxy's target."
      />
    </section>
  );
}

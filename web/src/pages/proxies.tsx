/** Proxies: the table with status badges, the create form, and one proxy's page (every field
 * of the Proxy type in sections, enable/disable, delete, its GitHub app, traffic and stats). */
import { useState } from "preact/hooks";
import { hourlySeries, TimeChart } from "../chart";
import { request } from "../client";
import { SpecForm, type FieldSpec, type Values } from "../forms";
import type { ResultOf, VariablesOf } from "../graphql";
import { readFragment } from "../graphql";
import { navigate } from "../router";
import {
  CreateProxy, DeleteGitHubApp, DeleteProxy, ProxiesQuery, ProxyFields, ProxyQuery, SetGitHubApp, UpdateProxy,
} from "../ops";
import { ActionButton, Badge, confirmed, DataTable, ErrorText, formatTime, Loading, ms, useLoad } from "../ui";
import { RecentRequests } from "./logs";

type ProxyRow = ResultOf<typeof ProxyFields>;

const TARGET = "Target and headers";
const HTTPS = "HTTPS and certificate";
const AUTH = "Auth";
const RESOURCE = "Protected resource metadata";
const ROUTES = "Route mode";

export const PROXY_FIELDS: FieldSpec[] = [
  { name: "hostname", label: "Hostname", kind: "text", section: TARGET, required: true, createOnly: true },
  { name: "targetUrl", label: "Target URL", kind: "url", section: TARGET, required: true, help: "http:// or https:// backend" },
  { name: "enabled", label: "Enabled", kind: "bool", section: TARGET },
  { name: "preserveHostHeader", label: "Preserve Host header", kind: "bool", section: TARGET },
  { name: "customHeaders", label: "Request headers added (JSON object)", kind: "json", section: TARGET },
  { name: "customResponseHeaders", label: "Response headers added (JSON object)", kind: "json", section: TARGET },
  { name: "enableHttp", label: "Serve HTTP", kind: "bool", section: HTTPS },
  { name: "enableHttps", label: "Serve HTTPS", kind: "bool", section: HTTPS },
  { name: "redirectToHttps", label: "Redirect HTTP to HTTPS", kind: "bool", section: HTTPS },
  { name: "certName", label: "Certificate name", kind: "text", section: HTTPS },
  { name: "certEmail", label: "ACME account email", kind: "email", section: HTTPS },
  { name: "authEnabled", label: "Require sign-in", kind: "bool", section: AUTH },
  { name: "authMode", label: "Auth mode", kind: "select", section: AUTH, options: ["forward", "redirect", "passthrough"] },
  { name: "authProxy", label: "Auth proxy (hostname of the authorization server)", kind: "text", section: AUTH },
  { name: "authRequiredUsers", label: "Allowed GitHub users", kind: "list", section: AUTH },
  { name: "authRequiredEmails", label: "Allowed emails", kind: "list", section: AUTH },
  { name: "authRequiredGroups", label: "Allowed organizations", kind: "list", section: AUTH },
  { name: "authAllowedScopes", label: "Allowed scopes", kind: "list", section: AUTH },
  { name: "authAllowedAudiences", label: "Allowed audiences", kind: "list", section: AUTH },
  { name: "authExcludedPaths", label: "Paths without sign-in", kind: "list", section: AUTH },
  { name: "authPassHeaders", label: "Pass identity headers upstream", kind: "bool", section: AUTH },
  { name: "authHeaderPrefix", label: "Identity header prefix", kind: "text", section: AUTH },
  { name: "authCookieName", label: "Auth cookie name", kind: "text", section: AUTH },
  { name: "oauthAdminUsers", label: "Users with scope admin here", kind: "list", section: AUTH },
  { name: "oauthUserUsers", label: "Users with scope user here", kind: "list", section: AUTH },
  { name: "oauthMcpUsers", label: "Users with scope mcp here", kind: "list", section: AUTH },
  { name: "resourceEndpoint", label: "Resource endpoint", kind: "text", section: RESOURCE },
  { name: "resourceScopes", label: "Resource scopes", kind: "list", section: RESOURCE },
  { name: "resourceStateful", label: "Stateful", kind: "bool", section: RESOURCE },
  { name: "resourceVersions", label: "Versions", kind: "list", section: RESOURCE },
  { name: "resourceServerInfo", label: "Server info (JSON)", kind: "json", section: RESOURCE },
  { name: "resourceOverrideBackend", label: "Override the backend's metadata", kind: "bool", section: RESOURCE },
  { name: "resourceBearerMethods", label: "Bearer methods", kind: "list", section: RESOURCE },
  { name: "resourceDocumentationSuffix", label: "Documentation suffix", kind: "text", section: RESOURCE },
  { name: "resourceCustomMetadata", label: "Custom metadata (JSON)", kind: "json", section: RESOURCE },
  { name: "routeMode", label: "Route mode", kind: "select", section: ROUTES, options: ["all", "selective", "none"] },
  { name: "enabledRoutes", label: "Enabled routes (selective)", kind: "list", section: ROUTES },
  { name: "disabledRoutes", label: "Disabled routes", kind: "list", section: ROUTES },
];

const CREATE_FIELDS = PROXY_FIELDS.filter((f) =>
  ["hostname", "targetUrl", "enableHttp", "enableHttps", "certEmail", "authEnabled", "preserveHostHeader"].includes(f.name),
);

export function ProxyBadges({ proxy }: { proxy: ProxyRow }) {
  const cert = proxy.certificate;
  return (
    <span class="badges">
      {proxy.enabled ? <Badge tone="ok">enabled</Badge> : <Badge tone="off">disabled</Badge>}
      {proxy.enableHttp ? <Badge tone="info">HTTP</Badge> : null}
      {proxy.enableHttps ? <Badge tone="info">HTTPS</Badge> : null}
      {proxy.enableHttps ? (
        cert ? (
          <Badge tone={cert.status === "active" ? "ok" : cert.status === "failed" ? "bad" : "warn"}>cert {cert.status}</Badge>
        ) : (
          <Badge tone="warn">no cert</Badge>
        )
      ) : null}
      {proxy.authEnabled ? <Badge tone="info">auth {proxy.authMode}</Badge> : <Badge tone="off">public</Badge>}
    </span>
  );
}

export function ProxiesPage() {
  const { data, error, reload } = useLoad(() => request(ProxiesQuery), []);
  const [creating, setCreating] = useState(false);
  const [status, setStatus] = useState<string | null>(null);
  if (!data) return <Loading error={error} />;
  const proxies = data.proxies.map((p) => readFragment(ProxyFields, p));
  return (
    <section>
      <div class="page-head">
        <h1>Proxies</h1>
        <ActionButton class="primary" onClick={() => setCreating(!creating)}>
          {creating ? "Cancel" : "New proxy"}
        </ActionButton>
      </div>
      {creating ? (
        <div class="card">
          <h2>New proxy</h2>
          <SpecForm
            id="create-proxy"
            specs={CREATE_FIELDS}
            initial={{ enableHttp: true, enableHttps: false, enabled: true }}
            mode="create"
            submitLabel="Create proxy"
            onSubmit={(values) => request(CreateProxy, { input: values as VariablesOf<typeof CreateProxy>["input"] })}
            onDone={() => {
              setCreating(false);
              reload();
            }}
          />
        </div>
      ) : null}
      <ErrorText error={status} />
      <DataTable
        caption="Proxies"
        rows={proxies}
        rowKey={(p) => p.hostname}
        onRowClick={(p) => navigate(`/proxies/${encodeURIComponent(p.hostname)}`)}
        columns={[
          {
            key: "hostname",
            label: "Hostname",
            value: (p) => p.hostname,
            render: (p) => <a href={`/proxies/${encodeURIComponent(p.hostname)}`}>{p.hostname}</a>,
          },
          { key: "target", label: "Target", value: (p) => p.targetUrl },
          { key: "status", label: "Status", value: (p) => `${p.enabled} ${p.enableHttps} ${p.authEnabled}`, render: (p) => <ProxyBadges proxy={p} /> },
          { key: "updated", label: "Updated", value: (p) => p.updatedAt ?? p.createdAt ?? "", render: (p) => formatTime(p.updatedAt ?? p.createdAt) },
        ]}
        actions={(p) => (
          <>
            <ActionButton
              onClick={async () => {
                try {
                  await request(UpdateProxy, { hostname: p.hostname, input: { enabled: !p.enabled } });
                  reload();
                } catch (err) {
                  setStatus((err as Error).message);
                }
              }}
            >
              {p.enabled ? "Disable" : "Enable"}
            </ActionButton>
            <ActionButton
              class="danger"
              aria-label={`Delete ${p.hostname}`}
              onClick={async () => {
                if (!confirmed(`Delete the proxy ${p.hostname}?`)) return;
                try {
                  await request(DeleteProxy, { hostname: p.hostname });
                  reload();
                } catch (err) {
                  setStatus((err as Error).message);
                }
              }}
            >
              Delete
            </ActionButton>
          </>
        )}
        empty="No proxies yet: create one with New proxy."
      />
    </section>
  );
}

export function ProxyPage({ hostname }: { hostname: string }) {
  const { data, error, reload } = useLoad(() => request(ProxyQuery, { hostname }), [hostname]);
  const [status, setStatus] = useState<string | null>(null);
  if (!data) return <Loading error={error} />;
  if (!data.proxy) return <p>No proxy serves {hostname}. <a href="/proxies">All proxies</a></p>;
  const proxy = readFragment(ProxyFields, data.proxy);
  const stats = data.requestStats;
  const initial = proxy as unknown as Values;
  return (
    <section>
      <div class="page-head">
        <h1>{proxy.hostname}</h1>
        <ProxyBadges proxy={proxy} />
        <ActionButton
          onClick={async () => {
            await request(UpdateProxy, { hostname, input: { enabled: !proxy.enabled } }).catch((e: Error) => setStatus(e.message));
            reload();
          }}
        >
          {proxy.enabled ? "Disable" : "Enable"}
        </ActionButton>
        <ActionButton
          class="danger"
          onClick={async () => {
            if (!confirmed(`Delete the proxy ${hostname}?`)) return;
            try {
              await request(DeleteProxy, { hostname });
              navigate("/proxies");
            } catch (err) {
              setStatus((err as Error).message);
            }
          }}
        >
          Delete
        </ActionButton>
      </div>
      <ErrorText error={status} />
      <div class="grid2">
        <div class="card">
          <h2>Traffic (24 h)</h2>
          <dl class="stats">
            <dt>Requests</dt><dd>{stats.requests}</dd>
            <dt>Errors</dt><dd>{stats.errors}</dd>
            <dt>Unique visitors</dt><dd>{stats.uniqueVisitors}</dd>
            <dt>p50 / p95 / p99</dt><dd>{ms(stats.p50Ms)} / {ms(stats.p95Ms)} / {ms(stats.p99Ms)}</dd>
          </dl>
          <TimeChart
            title={`Requests and errors per hour for ${hostname}`}
            series={[{ label: "requests", color: "#1f6fb2" }, { label: "errors", color: "#b3261e" }]}
            data={hourlySeries(stats.hourly)}
          />
        </div>
        <div class="card">
          <h2>Recent requests</h2>
          <RecentRequests hostname={hostname} />
        </div>
      </div>
      <div class="card">
        <h2>Settings</h2>
        <SpecForm
          key={hostname}
          id="edit-proxy"
          specs={PROXY_FIELDS}
          initial={initial}
          mode="edit"
          submitLabel="Save changes"
          onSubmit={(values) => request(UpdateProxy, { hostname, input: values as VariablesOf<typeof UpdateProxy>["input"] })}
          onDone={reload}
        />
      </div>
      <div class="card">
        <h2>Per-proxy GitHub app</h2>
        <p class="muted">
          {proxy.githubApp ? `Client ${proxy.githubApp.clientId} (secret ${proxy.githubApp.hasSecret ? "set" : "missing"}).` : "None: the global GitHub app signs users in."}
        </p>
        <SpecForm
          id="github-app"
          specs={[
            { name: "clientId", label: "GitHub client ID", kind: "text", required: true },
            { name: "clientSecret", label: "GitHub client secret (write-only)", kind: "password", required: true },
          ]}
          initial={{ clientId: proxy.githubApp?.clientId ?? "" }}
          mode="create"
          submitLabel="Save GitHub app"
          onSubmit={(v) => request(SetGitHubApp, { hostname, clientId: String(v.clientId ?? proxy.githubApp?.clientId ?? ""), clientSecret: String(v.clientSecret ?? "") })}
          onDone={reload}
        />
        {proxy.githubApp ? (
          <ActionButton class="danger" onClick={async () => { await request(DeleteGitHubApp, { hostname }); reload(); }}>
            Remove GitHub app
          </ActionButton>
        ) : null}
      </div>
    </section>
  );
}

/** Services: every service (docker, external, internal) in one table whose status badges follow
 * the serviceStatus subscription live; the "new Docker service" and "register external service"
 * forms; a service's panel (/services/NAME); and the host ports allocated to services. */
import { useEffect, useRef, useState } from "preact/hooks";
import { request, subscribe } from "../client";
import { SpecForm } from "../forms";
import type { ResultOf, VariablesOf } from "../graphql";
import { readFragment } from "../graphql";
import { DeleteService, RegisterService, ServiceFields, ServicesQuery, ServiceStatusSubscription } from "../ops";
import { navigate } from "../router";
import { ActionButton, Badge, confirmed, DataTable, ErrorText, formatTime, Loading, useLoad } from "../ui";
import { DockerServicePanel, StatusBadge, type LiveStatus, type ServiceRow } from "./docker_service";
import { CreateServiceForm } from "./service_form";

const TYPES = ["docker", "external", "internal"];
type Allocation = ResultOf<typeof ServicesQuery>["ports"][number];

const servicePath = (name: string) => `/services/${encodeURIComponent(name)}`;

function PortsCard({ ports, ranges }: { ports: Allocation[]; ranges: ResultOf<typeof ServicesQuery>["availablePortRanges"] }) {
  return (
    <details class="card">
      <summary>
        Host ports: {ports.length} allocated
        {ranges.length ? `; free ranges ${ranges.map((r) => `${r.start}-${r.end}`).join(", ")}` : ""}
      </summary>
      <DataTable
        caption="Allocated host ports"
        rows={ports}
        rowKey={(p) => `${p.port}/${p.protocol}`}
        columns={[
          { key: "port", label: "Host port", value: (p) => p.port },
          { key: "service", label: "Service", value: (p) => p.serviceName, render: (p) => <a href={servicePath(p.serviceName)}>{p.serviceName}</a> },
          { key: "name", label: "Port name", value: (p) => p.portName },
          { key: "container", label: "Container port", value: (p) => p.containerPort ?? "" },
          { key: "bind", label: "Bind address", value: (p) => p.bindAddress },
          { key: "protocol", label: "Protocol", value: (p) => p.protocol },
          { key: "token", label: "Token", value: (p) => (p.requireToken ? "required" : "no") },
          { key: "allocated", label: "Allocated", value: (p) => p.allocatedAt ?? "", render: (p) => formatTime(p.allocatedAt) },
        ]}
        empty="No host ports allocated."
      />
    </details>
  );
}

function OtherServicePanel({ service, onDeleted }: { service: ServiceRow; onDeleted: () => void }) {
  const [error, setError] = useState<string | null>(null);
  return (
    <section class="card service-panel" aria-labelledby="service-panel-title">
      <div class="page-head">
        <h2 id="service-panel-title">{service.name}</h2>
        <Badge tone="info">{service.type}</Badge>
        <StatusBadge status={service.status} />
        {service.type === "external" ? (
          <ActionButton
            class="danger"
            onClick={async () => {
              if (!confirmed(`Delete the external service ${service.name}?`)) return;
              try {
                await request(DeleteService, { name: service.name });
                onDeleted();
              } catch (err) {
                setError((err as Error).message);
              }
            }}
          >
            Delete
          </ActionButton>
        ) : null}
      </div>
      <ErrorText error={error} />
      <dl class="stats">
        <dt>Target</dt><dd>{service.targetUrl ?? "—"}</dd>
        <dt>Created</dt><dd>{formatTime(service.createdAt)} {service.createdBy ? `by ${service.createdBy}` : ""}</dd>
      </dl>
      {service.type === "internal" ? <p class="muted">Built into proxyd; routes can target it as service:{service.name}.</p> : null}
    </section>
  );
}

export function ServicesPage({ selected }: { selected?: string }) {
  const loadStarted = useRef(0);
  const { data, error, reload } = useLoad(() => {
    loadStarted.current = Date.now();
    return request(ServicesQuery);
  }, []);
  // Statuses newer than the list: from the serviceStatus subscription and from mutations.
  const [live, setLive] = useState<Record<string, LiveStatus & { at: number }>>({});
  const [created, setCreated] = useState<string | null>(null);
  const [liveError, setLiveError] = useState<string | null>(null);
  const [form, setForm] = useState<"docker" | "external" | null>(null);
  const [typeFilter, setTypeFilter] = useState("");
  const [statusFilter, setStatusFilter] = useState("");
  const known = useRef<Set<string>>(new Set());

  // Status badges follow Docker's event stream (through proxyd) without reloading the list.
  useEffect(() => {
    let alive = true;
    const stop = subscribe(
      ServiceStatusSubscription,
      {},
      (event) => {
        if (!alive) return;
        const { name, status, exitCode } = event.serviceStatus;
        setLive((old) => ({ ...old, [name]: { status, exitCode, at: Date.now() } }));
        if (!known.current.has(name)) reload(); // made elsewhere (CLI, another tab)
      },
      (err) => alive && setLiveError(`Live status stopped: ${err.message}`),
    );
    return () => {
      alive = false;
      stop();
    };
  }, []);

  // A fresh list is newer than the statuses received before it was asked for (not after).
  useEffect(() => {
    const since = loadStarted.current;
    setLive((old) => Object.fromEntries(Object.entries(old).filter(([, v]) => v.at >= since)));
    setCreated(null);
  }, [data]);

  if (!data) return <Loading error={error} />;
  const services: ServiceRow[] = data.services.map((row) => {
    const s = readFragment(ServiceFields, row);
    const override = live[s.name];
    return override && s.type === "docker" ? { ...s, status: override.status, exitCode: override.exitCode ?? null } : s;
  });
  known.current = new Set(services.map((s) => s.name));
  const statuses = [...new Set(services.map((s) => s.status))].sort();
  const rows = services.filter((s) => (!typeFilter || s.type === typeFilter) && (!statusFilter || s.status === statusFilter));
  const current = selected ? services.find((s) => s.name === selected) : undefined;
  const descriptions = new Map(data.externalServices.map((e) => [e.serviceName, e.description ?? ""]));

  return (
    <section>
      <div class="page-head">
        <h1>Services</h1>
        <ActionButton class="primary" onClick={() => setForm(form === "docker" ? null : "docker")}>
          {form === "docker" ? "Cancel" : "New Docker service"}
        </ActionButton>
        <ActionButton class="primary" onClick={() => setForm(form === "external" ? null : "external")}>
          {form === "external" ? "Cancel" : "Register service"}
        </ActionButton>
      </div>
      {form === "docker" ? (
        <div class="card">
          <h2>New Docker service</h2>
          <CreateServiceForm
            onCreated={(name) => {
              setForm(null);
              setCreated(name);
              reload();
              navigate(servicePath(name));
            }}
          />
        </div>
      ) : null}
      {form === "external" ? (
        <div class="card">
          <h2>Register an external service</h2>
          <SpecForm
            id="register-service"
            specs={[
              { name: "serviceName", label: "Name", kind: "text", required: true },
              { name: "targetUrl", label: "Target URL", kind: "url", required: true },
              { name: "description", label: "Description", kind: "text" },
              { name: "routingEnabled", label: "Routable (service:NAME targets)", kind: "bool" },
            ]}
            initial={{ routingEnabled: true }}
            mode="create"
            submitLabel="Register"
            onSubmit={(v) => request(RegisterService, { input: v as VariablesOf<typeof RegisterService>["input"] })}
            onDone={() => (setForm(null), reload())}
          />
        </div>
      ) : null}
      <ErrorText error={liveError} />
      <DataTable
        caption="Services"
        rows={rows}
        rowKey={(s) => `${s.type}:${s.name}`}
        onRowClick={(s) => navigate(servicePath(s.name))}
        filters={
          <>
            <label for="service-type-filter">Type</label>
            <select id="service-type-filter" value={typeFilter} onChange={(e) => setTypeFilter(e.currentTarget.value)}>
              <option value="">all</option>
              {TYPES.map((t) => <option key={t} value={t}>{t}</option>)}
            </select>
            <label for="service-status-filter">Status</label>
            <select id="service-status-filter" value={statusFilter} onChange={(e) => setStatusFilter(e.currentTarget.value)}>
              <option value="">all</option>
              {statuses.map((t) => <option key={t} value={t}>{t}</option>)}
            </select>
          </>
        }
        columns={[
          { key: "name", label: "Name", value: (s) => s.name, render: (s) => <a href={servicePath(s.name)}>{s.name}</a> },
          { key: "type", label: "Type", value: (s) => s.type, render: (s) => <Badge tone="info">{s.type}</Badge> },
          { key: "status", label: "Status", value: (s) => s.status, render: (s) => <StatusBadge status={s.status} exitCode={s.exitCode} /> },
          {
            key: "what",
            label: "Image or target",
            value: (s) => (s.type === "docker" ? s.image ?? s.dockerfilePath : s.targetUrl) ?? "",
            render: (s) => <span class="path">{(s.type === "docker" ? s.image ?? s.dockerfilePath : s.targetUrl) ?? "—"}</span>,
          },
          {
            key: "ports",
            label: "Ports",
            value: (s) => s.ports.map((p) => `${p.hostPort ?? ""}:${p.containerPort}`).join(" "),
            render: (s) => (s.ports.length ? s.ports.map((p) => `${p.bindAddress}:${p.hostPort ?? "?"} → ${p.containerPort}/${p.protocol}`).join(", ") : "—"),
          },
          {
            key: "proxy",
            label: "Proxy",
            value: (s) => s.proxyHostname ?? "",
            render: (s) => (s.proxyHostname ? <a href={`/proxies/${encodeURIComponent(s.proxyHostname)}`}>{s.proxyHostname}</a> : "—"),
          },
          { key: "description", label: "Description", value: (s) => descriptions.get(s.name) ?? "" },
          { key: "created", label: "Created", value: (s) => s.createdAt ?? "", render: (s) => formatTime(s.createdAt) },
        ]}
        empty="No services match."
      />
      {selected && !current && created !== selected ? (
        <p class="error" role="alert">There is no service named {selected}. <a href="/services">All services</a></p>
      ) : null}
      {current?.type === "docker" ? (
        <DockerServicePanel
          key={current.name}
          service={current}
          onChanged={(status) => {
            if (status) setLive((old) => ({ ...old, [current.name]: { ...status, at: Date.now() } }));
            reload();
          }}
          onDeleted={() => {
            navigate("/services");
            reload();
          }}
        />
      ) : current ? (
        <OtherServicePanel key={current.name} service={current} onDeleted={() => (navigate("/services"), reload())} />
      ) : null}
      <PortsCard ports={data.ports} ranges={data.availablePortRanges} />
    </section>
  );
}

/** Services: external services (and, once that capability lands, Docker services: the table is
 * keyed by service name and type, so more kinds of service fit into the same list). */
import { useState } from "preact/hooks";
import { request } from "../client";
import { SpecForm } from "../forms";
import type { VariablesOf } from "../graphql";
import { DeleteService, RegisterService, ServicesQuery } from "../ops";
import { ActionButton, Badge, confirmed, DataTable, ErrorText, formatTime, Loading, useLoad } from "../ui";

export function ServicesPage() {
  const { data, error, reload } = useLoad(() => request(ServicesQuery), []);
  const [creating, setCreating] = useState(false);
  const [status, setStatus] = useState<string | null>(null);
  if (!data) return <Loading error={error} />;
  return (
    <section>
      <div class="page-head">
        <h1>Services</h1>
        <ActionButton class="primary" onClick={() => setCreating(!creating)}>{creating ? "Cancel" : "Register service"}</ActionButton>
      </div>
      {creating ? (
        <div class="card">
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
            onDone={() => (setCreating(false), reload())}
          />
        </div>
      ) : null}
      <ErrorText error={status} />
      <DataTable
        caption="Services"
        rows={data.externalServices}
        rowKey={(s) => `${s.serviceType}:${s.serviceName}`}
        columns={[
          { key: "name", label: "Name", value: (s) => s.serviceName },
          { key: "type", label: "Type", value: (s) => s.serviceType, render: (s) => <Badge tone="info">{s.serviceType}</Badge> },
          { key: "target", label: "Target", value: (s) => s.targetUrl },
          { key: "routing", label: "Routable", value: (s) => s.routingEnabled, render: (s) => (s.routingEnabled ? "yes" : "no") },
          { key: "description", label: "Description", value: (s) => s.description ?? "" },
          { key: "created", label: "Created", value: (s) => s.createdAt ?? "", render: (s) => formatTime(s.createdAt) },
        ]}
        actions={(s) => (
          <ActionButton
            class="danger"
            onClick={async () => {
              if (!confirmed(`Delete the service ${s.serviceName}?`)) return;
              await request(DeleteService, { name: s.serviceName }).catch((e: Error) => setStatus(e.message));
              reload();
            }}
          >
            Delete
          </ActionButton>
        )}
        empty="No services registered."
      />
    </section>
  );
}

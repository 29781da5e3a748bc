/** Certificates: the list (domains, issuer, expiry, status), create, renew, delete, attach to a
 * proxy, and an order's stages live through the certificateStatus subscription. */
import { useEffect, useState } from "preact/hooks";
import { request, subscribe } from "../client";
import { SpecForm, type FieldSpec } from "../forms";
import type { ResultOf, VariablesOf } from "../graphql";
import { readFragment } from "../graphql";
import {
  AttachCertificate, CertificateFields, CertificatesQuery, CertificateStatusSubscription, CreateCertificate,
  DeleteCertificate, RenewCertificate,
} from "../ops";
import { ActionButton, Badge, confirmed, DataTable, ErrorText, formatTime, Loading, useLoad } from "../ui";

type Stage = ResultOf<typeof CertificateStatusSubscription>["certificateStatus"];

const CERT_FIELDS: FieldSpec[] = [
  { name: "name", label: "Name", kind: "text", required: true },
  { name: "domains", label: "Domains", kind: "list", required: true },
  { name: "email", label: "ACME account email", kind: "email" },
  { name: "staging", label: "Use the staging CA", kind: "bool" },
  { name: "directoryUrl", label: "Other ACME directory URL", kind: "url" },
  { name: "keyType", label: "Key type", kind: "select", options: ["rsa", "ecdsa"] },
  { name: "challenge", label: "Challenge", kind: "select", options: ["http-01", "tls-alpn-01"] },
];

/** The stages of one order as they arrive. */
export function OrderStages({ name, onEnd }: { name: string; onEnd: () => void }) {
  const [stages, setStages] = useState<Stage[]>([]);
  const [error, setError] = useState<string | null>(null);
  useEffect(
    () =>
      subscribe(
        CertificateStatusSubscription,
        { name },
        (data) => {
          setStages((old) => [...old, data.certificateStatus]);
          if (["ready", "failed"].includes(data.certificateStatus.stage)) onEnd();
        },
        (err) => setError(err.message),
      ),
    [name],
  );
  return (
    <div class="card" aria-live="polite">
      <h2>Order for {name}</h2>
      <ErrorText error={error} />
      <ol class="stages">
        {stages.map((s, i) => (
          <li key={i} data-stage={s.stage}>
            <Badge tone={s.stage === "ready" ? "ok" : s.stage === "failed" ? "bad" : "info"}>{s.stage}</Badge>{" "}
            {formatTime(s.updatedAt)} {s.message ?? ""} {s.reason ? `(${s.reason})` : ""}
          </li>
        ))}
        {stages.length === 0 ? <li class="muted">waiting for the first stage…</li> : null}
      </ol>
    </div>
  );
}

export function CertificatesPage() {
  const { data, error, reload } = useLoad(() => request(CertificatesQuery), []);
  const [creating, setCreating] = useState(false);
  const [watching, setWatching] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [attach, setAttach] = useState<Record<string, string>>({});
  if (!data) return <Loading error={error} />;
  const certs = data.certificates.map((c) => readFragment(CertificateFields, c));
  return (
    <section>
      <div class="page-head">
        <h1>Certificates</h1>
        <ActionButton class="primary" onClick={() => setCreating(!creating)}>{creating ? "Cancel" : "New certificate"}</ActionButton>
      </div>
      {creating ? (
        <div class="card">
          <h2>New certificate</h2>
          <SpecForm
            id="create-certificate"
            specs={CERT_FIELDS}
            initial={{}}
            mode="create"
            submitLabel="Order certificate"
            onSubmit={(values) => request(CreateCertificate, { input: values as VariablesOf<typeof CreateCertificate>["input"] })}
            onDone={(result) => {
              setCreating(false);
              const cert = readFragment(CertificateFields, (result as ResultOf<typeof CreateCertificate>).createCertificate);
              setWatching(cert.certName);
              reload();
            }}
          />
        </div>
      ) : null}
      {watching ? <OrderStages key={watching} name={watching} onEnd={reload} /> : null}
      <ErrorText error={status} />
      <DataTable
        caption="Certificates"
        rows={certs}
        rowKey={(c) => c.certName}
        columns={[
          { key: "name", label: "Name", value: (c) => c.certName },
          { key: "domains", label: "Domains", value: (c) => c.domains.join(", ") },
          { key: "issuer", label: "Issuer", value: (c) => c.issuer ?? "—" },
          { key: "expires", label: "Expires", value: (c) => c.expiresAt ?? "", render: (c) => formatTime(c.expiresAt) },
          {
            key: "status",
            label: "Status",
            value: (c) => c.status,
            render: (c) => (
              <>
                <Badge tone={c.status === "active" ? "ok" : c.status === "failed" ? "bad" : "warn"}>{c.status}</Badge>
                {c.orderStatus ? ` order: ${c.orderStatus.stage}` : ""}
                {c.lastError ? <small class="error-text"> {c.lastError}</small> : null}
              </>
            ),
          },
          { key: "proxies", label: "Proxies", value: (c) => c.proxies.join(", ") },
        ]}
        actions={(c) => (
          <>
            <ActionButton onClick={() => setWatching(c.certName)} title="Follow the current order live">Follow</ActionButton>
            <ActionButton
              onClick={async () => {
                setWatching(null);
                try {
                  await request(RenewCertificate, { name: c.certName });
                  setWatching(c.certName);
                } catch (err) {
                  setStatus((err as Error).message);
                }
              }}
            >
              Renew
            </ActionButton>
            <label class="sr-only" for={`attach-${c.certName}`}>Attach {c.certName} to proxy</label>
            <select id={`attach-${c.certName}`} value={attach[c.certName] ?? ""} onChange={(e) => setAttach({ ...attach, [c.certName]: e.currentTarget.value })}>
              <option value="">proxy…</option>
              {data.proxies.map((p) => <option key={p.hostname}>{p.hostname}</option>)}
            </select>
            <ActionButton
              disabled={!attach[c.certName]}
              onClick={async () => {
                try {
                  await request(AttachCertificate, { hostname: attach[c.certName], certName: c.certName });
                  reload();
                } catch (err) {
                  setStatus((err as Error).message);
                }
              }}
            >
              Attach
            </ActionButton>
            <ActionButton
              class="danger"
              onClick={async () => {
                if (!confirmed(`Delete the certificate ${c.certName}${c.proxies.length ? ` (detaching it from ${c.proxies.join(", ")})` : ""}?`)) return;
                await request(DeleteCertificate, { name: c.certName, force: true }).catch((e: Error) => setStatus(e.message));
                reload();
              }}
            >
              Delete
            </ActionButton>
          </>
        )}
        empty="No certificates yet."
      />
    </section>
  );
}

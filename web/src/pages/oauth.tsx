/** OAuth: registered clients, issued tokens and browser sessions (revocable), and metrics. */
import { useState } from "preact/hooks";
import { request } from "../client";
import type { ResultOf } from "../graphql";
import { DeleteOAuthClient, OAuthQuery, RevokeOAuthSession, RevokeOAuthToken } from "../ops";
import { ActionButton, Badge, confirmed, DataTable, ErrorText, formatTime, Loading, useLoad } from "../ui";

type Client = ResultOf<typeof OAuthQuery>["oauthClients"][number];

function ClientDetail({ client, onClose }: { client: Client; onClose: () => void }) {
  return (
    <div class="card" aria-label={`Client ${client.clientName ?? client.clientId}`} role="region">
      <div class="page-head">
        <h2>{client.clientName ?? client.clientId}</h2>
        <button type="button" onClick={onClose}>Close</button>
      </div>
      <dl class="stats">
        <dt>Client ID</dt><dd>{client.clientId}</dd>
        <dt>Redirect URIs</dt><dd>{client.redirectUris.join(" ") || "—"}</dd>
        <dt>Grant types</dt><dd>{client.grantTypes.join(" ")}</dd>
        <dt>Token endpoint auth</dt><dd>{client.tokenEndpointAuthMethod}</dd>
        <dt>Registered</dt><dd>{formatTime(client.clientIdIssuedAt)}</dd>
      </dl>
    </div>
  );
}

export function OAuthPage() {
  const { data, error, reload } = useLoad(() => request(OAuthQuery), []);
  const [status, setStatus] = useState<string | null>(null);
  const [selected, setSelected] = useState<Client | null>(null);
  if (!data) return <Loading error={error} />;
  const act = (run: () => Promise<unknown>) => async () => {
    try {
      await run();
      reload();
    } catch (err) {
      setStatus((err as Error).message);
    }
  };
  const m = data.oauthMetrics;
  return (
    <section>
      <h1>OAuth</h1>
      <ErrorText error={status} />
      <div class="tiles">
        <div class="tile"><span class="big">{m.clients}</span> clients</div>
        <div class="tile"><span class="big">{m.activeTokens}</span> active tokens</div>
        <div class="tile"><span class="big">{m.revokedInMemory}</span> revoked (in memory)</div>
        {Object.entries((m.counters ?? {}) as Record<string, number>).map(([k, v]) => (
          <div class="tile" key={k}><span class="big">{v}</span> {k.replace(/_/g, " ")}</div>
        ))}
      </div>
      <h2>Clients</h2>
      {selected ? <ClientDetail client={selected} onClose={() => setSelected(null)} /> : null}
      <DataTable
        caption="OAuth clients"
        rows={data.oauthClients}
        rowKey={(c) => c.clientId}
        onRowClick={setSelected}
        columns={[
          {
            key: "name",
            label: "Name",
            value: (c) => c.clientName ?? "—",
            render: (c) => (
              <button type="button" class="link" onClick={() => setSelected(c)}>
                {c.clientName ?? c.clientId}
              </button>
            ),
          },
          { key: "id", label: "Client ID", value: (c) => c.clientId },
          { key: "redirect", label: "Redirect URIs", value: (c) => c.redirectUris.join(" ") },
          { key: "grants", label: "Grants", value: (c) => c.grantTypes.join(" ") },
          { key: "auth", label: "Auth method", value: (c) => c.tokenEndpointAuthMethod },
          { key: "issued", label: "Registered", value: (c) => c.clientIdIssuedAt ?? 0, render: (c) => formatTime(c.clientIdIssuedAt) },
        ]}
        actions={(c) => (
          <ActionButton class="danger" onClick={act(async () => confirmed(`Delete the client ${c.clientName ?? c.clientId}?`) && request(DeleteOAuthClient, { clientId: c.clientId }))}>
            Delete
          </ActionButton>
        )}
      />
      <h2>Tokens</h2>
      <DataTable
        caption="Access tokens"
        rows={data.oauthTokens}
        rowKey={(t) => t.jti}
        initialSort="issued"
        initialDir={-1}
        columns={[
          { key: "subject", label: "User", value: (t) => t.subject },
          { key: "client", label: "Client", value: (t) => t.clientId ?? "—" },
          { key: "scope", label: "Scope", value: (t) => t.scope },
          { key: "audience", label: "Audience", value: (t) => t.audience.join(" ") },
          { key: "issued", label: "Issued", value: (t) => t.issuedAt, render: (t) => formatTime(t.issuedAt) },
          { key: "expires", label: "Expires", value: (t) => t.expiresAt, render: (t) => formatTime(t.expiresAt) },
          { key: "revoked", label: "State", value: (t) => t.revoked, render: (t) => (t.revoked ? <Badge tone="off">revoked</Badge> : <Badge tone="ok">active</Badge>) },
        ]}
        actions={(t) => (
          <ActionButton class="danger" disabled={t.revoked} onClick={act(async () => confirmed(`Revoke this token of ${t.subject}?`) && request(RevokeOAuthToken, { jti: t.jti }))}>
            Revoke
          </ActionButton>
        )}
      />
      <h2>Sessions</h2>
      <DataTable
        caption="Browser sessions"
        rows={data.oauthSessions}
        rowKey={(s) => s.id}
        columns={[
          { key: "user", label: "User", value: (s) => s.user },
          { key: "client", label: "Client", value: (s) => s.clientId ?? "—" },
          { key: "created", label: "Created", value: (s) => s.createdAt, render: (s) => formatTime(s.createdAt) },
          { key: "expires", label: "Expires", value: (s) => s.expiresAt, render: (s) => formatTime(s.expiresAt) },
        ]}
        actions={(s) => (
          <ActionButton class="danger" onClick={act(async () => confirmed(`End this session of ${s.user}?`) && request(RevokeOAuthSession, { id: s.id }))}>
            Revoke
          </ActionButton>
        )}
      />
    </section>
  );
}

/** The app shell: sign-in (a pasted management token), the header (who, scopes, sign-out), the
 * navigation and the pages. */
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { GqlError, request } from "./client";
import { ViewerQuery } from "./ops";
import { AppLogsPage } from "./pages/applogs";
import { CertificatesPage } from "./pages/certificates";
import { DashboardPage } from "./pages/dashboard";
import { LogsPage } from "./pages/logs";
import { OAuthPage } from "./pages/oauth";
import { ProxiesPage, ProxyPage } from "./pages/proxies";
import { RoutesPage } from "./pages/routes";
import { ServicesPage } from "./pages/services";
import { CALLBACK_PATH, finishGitHubSignIn, scheduleRefresh, signOut, startGitHubSignIn } from "./oauth";
import { navigate, onLinkClick, useLocation } from "./router";
import { session, setSession, type Session } from "./session";
import { signal, useSignal } from "./signal";
import "./style.css";

const NAV = [
  ["/", "Dashboard"],
  ["/proxies", "Proxies"],
  ["/routes", "Routes"],
  ["/certificates", "Certificates"],
  ["/logs", "Request logs"],
  ["/oauth", "OAuth"],
  ["/services", "Services"],
  ["/app-logs", "Application logs"],
] as const;

/** Check a token by asking proxyd who it belongs to; the session keeps what proxyd answered. */
export async function sessionFor(token: string, via: Session["via"], refreshToken?: string): Promise<Session> {
  const { viewer } = await request(ViewerQuery, undefined, token);
  return {
    token,
    refreshToken,
    via,
    subject: viewer.subject,
    scopes: viewer.scopes,
    expiresAt: viewer.expiresAt ?? undefined,
  };
}

/** Why the last session ended, shown on the sign-in page. */
const notice = signal<string | null>(null);

session.subscribe((value) => scheduleRefresh(value, (message) => notice.set(message)));
scheduleRefresh(session.get(), (message) => notice.set(message));

function GitHubCallback({ query }: { query: URLSearchParams }) {
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    finishGitHubSignIn(query)
      .then(async (answer) => {
        setSession(await sessionFor(answer.access_token, "github", answer.refresh_token));
        navigate("/", true);
      })
      .catch((err: Error) => setError(err.message));
    // the query of this one callback page never changes
  }, []);
  return (
    <main class="signin" id="main">
      <h1>Signing in…</h1>
      {error ? (
        <p class="error" role="alert">
          Sign-in failed: {error} <a href="/">Try again</a>
        </p>
      ) : (
        <p class="muted">Checking the answer of proxyd's authorization server.</p>
      )}
    </main>
  );
}

function SignIn() {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [githubError, setGithubError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const ended = useSignal(notice);
  return (
    <main class="signin" id="main">
      <h1>Sign in to proxyd</h1>
      {ended ? <p class="error" role="alert">{ended}</p> : null}
      <div class="card">
        <h2>With GitHub</h2>
        <p class="muted">Through proxyd's own authorization server; your GitHub login decides your scopes.</p>
        <button
          type="button"
          class="primary"
          onClick={() => startGitHubSignIn().catch((err: Error) => setGithubError(err.message))}
        >
          Sign in with GitHub
        </button>
        {githubError ? <p class="error" role="alert">{githubError}</p> : null}
      </div>
      <form
        class="card"
        aria-label="Sign in with a management token"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          try {
            setSession(await sessionFor(token.trim(), "token"));
          } catch (err) {
            setError(err instanceof GqlError && err.status === 401 ? `That token was refused: ${err.message}` : (err as Error).message);
          } finally {
            setBusy(false);
          }
        }}
      >
        <h2>Paste a management token</h2>
        <p class="muted">
          Make one on the server with <code>proxyd token issue --scope admin</code> (or <code>--scope user</code> for read-only).
        </p>
        <div class={`field ${error ? "invalid" : ""}`}>
          <label for="token">Management token</label>
          <input
            id="token"
            type="password"
            autocomplete="off"
            value={token}
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? "token-error" : undefined}
            onInput={(e) => setToken(e.currentTarget.value)}
          />
          {error ? <p class="field-error" id="token-error" role="alert">{error}</p> : null}
        </div>
        <button type="submit" class="primary" disabled={busy || !token.trim()}>
          {busy ? "Checking…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}

function Header({ current }: { current: Session }) {
  return (
    <header class="top">
      <a class="brand" href="/">proxyd</a>
      <nav aria-label="Main">
        <ul>
          {NAV.map(([href, label]) => (
            <li key={href}><a href={href}>{label}</a></li>
          ))}
          <li><a href="/graphql" data-external>GraphQL playground</a></li>
        </ul>
      </nav>
      <div class="who" aria-label="Signed in">
        <span class="user">{current.subject}</span>
        <span class="scopes">{current.scopes.join(" ")}</span>
        {current.scopes.includes("admin") ? null : <span class="badge warn">read-only</span>}
        <button type="button" onClick={() => void signOut()}>Sign out</button>
      </div>
    </header>
  );
}

function Page({ path }: { path: string }) {
  if (path === "/") return <DashboardPage />;
  if (path === "/proxies") return <ProxiesPage />;
  const proxy = /^\/proxies\/([^/]+)$/.exec(path);
  if (proxy) return <ProxyPage hostname={decodeURIComponent(proxy[1])} />;
  if (path === "/routes") return <RoutesPage />;
  if (path === "/certificates") return <CertificatesPage />;
  if (path === "/logs") return <LogsPage />;
  if (path === "/oauth") return <OAuthPage />;
  if (path === "/services") return <ServicesPage />;
  const service = /^\/services\/([^/]+)$/.exec(path);
  if (service) return <ServicesPage selected={decodeURIComponent(service[1])} />;
  if (path === "/app-logs") return <AppLogsPage />;
  return (
    <section>
      <h1>Not found</h1>
      <p>There is no page at {path}. <a href="/">Back to the dashboard</a></p>
    </section>
  );
}

function App() {
  const current = useSignal(session);
  const { path, query } = useLocation();
  if (path === CALLBACK_PATH) return <GitHubCallback query={query} />;
  if (!current) return <SignIn />;
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <Header current={current} />
      <main id="main">
        <Page key={path} path={path} />
      </main>
    </>
  );
}

document.addEventListener("click", onLinkClick);
// "/" jumps to the page's search box (as on GitHub), unless you are typing somewhere.
document.addEventListener("keydown", (event) => {
  const target = event.target as HTMLElement;
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  if (target.closest("input, textarea, select, [contenteditable]")) return;
  const box = document.querySelector<HTMLInputElement>("main input[type=search]");
  if (box) {
    event.preventDefault();
    box.focus();
  }
});
render(<App />, document.getElementById("app")!);

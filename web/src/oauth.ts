/** "Sign in with GitHub": authorization code + PKCE (S256) with proxyd's own authorization
 * server, as its built-in public client `proxyd-web`. The verifier and state live in
 * sessionStorage for the round trip only; tokens are refreshed a minute (or a fifth of
 * their lifetime, if shorter) before they expire. */
import { session, setSession, type Session } from "./session";

export const CLIENT_ID = "proxyd-web";
export const CALLBACK_PATH = "/signin/callback";
const PENDING = "proxyd.signin";
const REFRESH_MARGIN_SECONDS = 60;

function base64url(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomToken(bytes: number): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** Start: remember verifier and state, then let proxyd send the browser to /authorize. */
export async function startGitHubSignIn(): Promise<void> {
  if (!crypto.subtle) {
    throw new Error("Sign in with GitHub needs a secure context: open the UI over https (or on localhost).");
  }
  const verifier = randomToken(48);
  const state = randomToken(24);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state }));
  const query = new URLSearchParams({ code_challenge: base64url(new Uint8Array(digest)), state });
  location.assign(`/signin/github?${query}`);
}

interface TokenAnswer {
  access_token: string;
  refresh_token?: string;
  expires_in?: number;
  error?: string;
  error_description?: string;
}

async function tokenRequest(form: Record<string, string>): Promise<TokenAnswer> {
  const response = await fetch("/token", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
    body: new URLSearchParams(form),
  });
  let body: TokenAnswer;
  try {
    body = await response.json();
  } catch {
    throw new Error(`the token endpoint answered HTTP ${response.status}.`);
  }
  if (!response.ok || !body.access_token) {
    throw new Error(body.error_description || body.error || `the token endpoint answered HTTP ${response.status}.`);
  }
  return body;
}

/** The callback page: check state, exchange the code, and return the tokens. */
export async function finishGitHubSignIn(query: URLSearchParams): Promise<TokenAnswer> {
  const raw = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  if (query.get("error")) throw new Error(query.get("error_description") || query.get("error") || "sign-in failed.");
  if (!raw) throw new Error("no sign-in was started in this tab.");
  const pending = JSON.parse(raw) as { verifier: string; state: string };
  if (!query.get("state") || query.get("state") !== pending.state) {
    throw new Error("the sign-in answer does not belong to this tab (state mismatch).");
  }
  return tokenRequest({
    grant_type: "authorization_code",
    code: query.get("code") ?? "",
    redirect_uri: location.origin + CALLBACK_PATH,
    client_id: CLIENT_ID,
    code_verifier: pending.verifier,
    resource: location.origin + "/",
  });
}

let timer: ReturnType<typeof setTimeout> | undefined;

/** Keep a GitHub session's access token fresh (refresh tokens rotate). */
export function scheduleRefresh(current: Session | null, onExpired: (message: string) => void): void {
  clearTimeout(timer);
  if (!current || current.via !== "github" || !current.refreshToken || !current.expiresAt) return;
  const remaining = current.expiresAt - Date.now() / 1000;
  const margin = Math.min(REFRESH_MARGIN_SECONDS, remaining * 0.2);
  const delay = Math.max(0, (remaining - margin) * 1000);
  timer = setTimeout(async () => {
    try {
      const answer = await tokenRequest({
        grant_type: "refresh_token",
        refresh_token: current.refreshToken!,
        client_id: CLIENT_ID,
      });
      const expiresAt = answer.expires_in ? Math.floor(Date.now() / 1000) + answer.expires_in : current.expiresAt;
      setSession({ ...current, token: answer.access_token, refreshToken: answer.refresh_token ?? current.refreshToken, expiresAt });
    } catch (err) {
      setSession(null);
      onExpired(`Your session ended: ${(err as Error).message}`);
    }
  }, delay);
}

/** Sign out; a GitHub session's refresh token is revoked at proxyd (best effort). */
export async function signOut(): Promise<void> {
  const current = session.get();
  setSession(null);
  if (current?.via === "github" && current.refreshToken) {
    await fetch("/revoke", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: current.refreshToken, client_id: CLIENT_ID }),
    }).catch(() => undefined);
  }
}

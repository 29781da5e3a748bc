/** The signed-in session: the access token (and, after "Sign in with GitHub", its refresh token)
 * kept in sessionStorage only (never localStorage), who it belongs to and its scopes. */
import { signal } from "./signal";

export interface Session {
  token: string;
  refreshToken?: string;
  /** Epoch seconds. */
  expiresAt?: number;
  subject: string;
  scopes: string[];
  via: "token" | "github";
}

const KEY = "proxyd.session";

function load(): Session | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

export const session = signal<Session | null>(load());

export function setSession(value: Session | null): void {
  if (value) sessionStorage.setItem(KEY, JSON.stringify(value));
  else sessionStorage.removeItem(KEY);
  session.set(value);
}

export function canWrite(value: Session | null = session.get()): boolean {
  return !!value && value.scopes.includes("admin");
}

export const READ_ONLY_REASON =
  "Read-only: this needs scope admin, and you are signed in with scope user.";

/** GraphQL over HTTP (POST /graphql) and subscriptions over graphql-transport-ws (the npm
 * graphql-ws client), both on this origin and both with the session's bearer token. */
import type { TadaDocumentNode } from "gql.tada";
import { print } from "graphql";
import { createClient, type Client } from "graphql-ws";
import { session } from "./session";

export interface GqlErrorItem {
  message: string;
  path?: (string | number)[];
  extensions?: { code?: string; [key: string]: unknown };
}

export class GqlError extends Error {
  constructor(readonly errors: GqlErrorItem[], readonly status = 200) {
    super(errors.map((e) => e.message).join(" "));
  }
  get code(): string | undefined {
    return this.errors[0]?.extensions?.code;
  }
}

const printed = new WeakMap<object, string>();
function text(document: TadaDocumentNode<unknown, unknown>): string {
  let value = printed.get(document);
  if (value === undefined) {
    value = print(document);
    printed.set(document, value);
  }
  return value;
}

export async function rawRequest(
  query: string,
  variables: Record<string, unknown> | undefined,
  token: string | undefined,
): Promise<{ status: number; body: { data?: unknown; errors?: GqlErrorItem[] } }> {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json",
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  let body: { data?: unknown; errors?: GqlErrorItem[] };
  try {
    body = await response.json();
  } catch {
    body = { errors: [{ message: `proxyd answered HTTP ${response.status} without JSON.` }] };
  }
  return { status: response.status, body };
}

/** Run one operation; resolves with its data or rejects with a GqlError. */
export async function request<R, V>(
  document: TadaDocumentNode<R, V>,
  variables?: V,
  token: string | undefined = session.get()?.token,
): Promise<R> {
  const { status, body } = await rawRequest(
    text(document as TadaDocumentNode<unknown, unknown>),
    variables as Record<string, unknown> | undefined,
    token,
  );
  if (body.errors?.length) throw new GqlError(body.errors, status);
  if (body.data === undefined || body.data === null) {
    throw new GqlError([{ message: `proxyd answered HTTP ${status} without data.` }], status);
  }
  return body.data as R;
}

let ws: Client | null = null;
let wsToken: string | undefined;

function wsClient(): Client {
  const token = session.get()?.token;
  if (ws && wsToken === token) return ws;
  ws?.dispose();
  wsToken = token;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  ws = createClient({
    url: `${scheme}://${location.host}/graphql`,
    connectionParams: () => ({ Authorization: `Bearer ${session.get()?.token ?? ""}` }),
    lazy: true,
    retryAttempts: 5,
    shouldRetry: () => true,
  });
  return ws;
}

session.subscribe(() => {
  ws?.dispose();
  ws = null;
});

/** Subscribe; returns the function that ends the subscription. */
export function subscribe<R, V>(
  document: TadaDocumentNode<R, V>,
  variables: V,
  onData: (data: R) => void,
  onError?: (error: GqlError) => void,
  onComplete?: () => void,
): () => void {
  return wsClient().subscribe<R>(
    {
      query: text(document as TadaDocumentNode<unknown, unknown>),
      variables: variables as Record<string, unknown>,
    },
    {
      next: (result) => {
        if (result.errors?.length) onError?.(new GqlError(result.errors as unknown as GqlErrorItem[]));
        else if (result.data) onData(result.data as R);
      },
      error: (error) => {
        const message =
          error instanceof Error
            ? error.message
            : error instanceof CloseEvent
              ? `the live connection closed (${error.code} ${error.reason}).`
              : Array.isArray(error)
                ? (error as GqlErrorItem[]).map((e) => e.message).join(" ")
                : "the live connection failed.";
        onError?.(new GqlError([{ message }]));
      },
      complete: () => onComplete?.(),
    },
  );
}

/** GraphiQL, bundled (no CDN): queries over POST /graphql and subscriptions over
 * graphql-transport-ws (graphql-ws), both with the token the web UI signed in with. */
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { GraphiQL } from "graphiql";
import "graphiql/graphiql.css";
import "./playground.css";
import { createElement } from "react";
import { createRoot } from "react-dom/client";
import { session } from "./session";

const token = session.get()?.token;
const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
const scheme = location.protocol === "https:" ? "wss" : "ws";

const fetcher = createGraphiQLFetcher({
  url: `${location.origin}/graphql`,
  subscriptionUrl: `${scheme}://${location.host}/graphql`,
  headers,
  wsConnectionParams: token ? { Authorization: `Bearer ${token}` } : {},
});

const defaultQuery = token
  ? "# Signed in through the web UI: your token is sent with every request.\n{\n  viewer { subject scopes }\n  health { status version redis }\n}\n"
  : "# Not signed in: sign in at / first, or set an Authorization: Bearer <token> header below.\n{\n  health { status }\n}\n";

// /graphql?query=... opens the playground with that operation (shareable links).
const linked = new URLSearchParams(location.search).get("query") ?? undefined;

createRoot(document.getElementById("graphiql")!).render(
  createElement(GraphiQL, {
    fetcher,
    defaultQuery,
    query: linked,
    defaultHeaders: token ? undefined : '{"Authorization": "Bearer "}',
    shouldPersistHeaders: false,
    isHeadersEditorEnabled: true,
  }),
);

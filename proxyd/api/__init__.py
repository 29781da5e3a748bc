"""API: the management app (GraphQL over HTTP and WebSocket, /health) served on API_PORT and,
in-process, behind the localhost proxy."""

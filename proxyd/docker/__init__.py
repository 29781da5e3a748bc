"""Docker services: everything proxyd does with Docker lives here (aiodocker through
trio-asyncio; no other package imports aiodocker).

- client: DockerClient, the trio-facing wrapper around aiodocker (calls, event and log streams).
- containers: DockerService -> container configuration; inspect output -> ContainerState.
- runtime: DockerRuntime, live container state from Docker's event stream, reconcile at start,
  the token gateways, and `lookup(name)` for the edge.
- services: the operations (create, start, stop, restart, delete, logs, stats, cleanup) that
  GraphQL, the CLI and MCP tools share; changes: the ones that recreate the container (ports,
  updateService).
- labels: label discovery (DOCKER_LABELS=true).
"""

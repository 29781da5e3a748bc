"""The management operations: one implementation of every operation that GraphQL resolvers, the
CLI (through GraphQL) and the MCP tools offer. One module per area (proxies, routes,
certificates, services, logs, oauth, health).

Every function is a plain async function taking a `ManageContext` (the API context: settings,
store, proxy manager, certificate manager, request log, caller) and returning models or plain
dicts. Failures raise `ManageError(message, code)`; the code is the GraphQL `extensions.code`
(BAD_USER_INPUT, NOT_FOUND, CONFLICT, FORBIDDEN, ...). Authorization (which scope an operation
needs) is decided by the caller: GraphQL's `guarded`, the MCP tool registry.
No function here ever returns a secret (private keys, client secrets, tokens).
"""

from proxyd.manage.errors import ManageContext, ManageError, translated

__all__ = ["ManageContext", "ManageError", "translated"]

"""Settings of the authorization server and the management API: OAuth, GitHub, scopes, token
checks, GraphQL limits and who may reach the management app."""

from __future__ import annotations

import attrs

import proxyd.config.parsers as p


@attrs.frozen(slots=False)
class OAuthSettings:
    """The OAuth 2.1 authorization server and token checks (proxyd.oauth)."""

    oauth_issuer: str = p.setting(
        "OAUTH_ISSUER",
        "",
        p.text,
        "Issuer of proxyd's tokens (no trailing slash). Default: https://auth.BASE_DOMAIN, or "
        "http://localhost when BASE_DOMAIN is localhost.",
    )
    github_client_id: str = p.setting(
        "GITHUB_CLIENT_ID", "", p.text, "Client ID of the GitHub OAuth app used for login."
    )
    github_client_secret: str = p.setting(
        "GITHUB_CLIENT_SECRET", "", p.text, "Client secret of that GitHub OAuth app (never logged)."
    )
    github_base_url: str = p.setting(
        "GITHUB_BASE_URL",
        "https://github.com",
        p.text,
        "GitHub's web URL (login/oauth/authorize, access_token, device/code): GitHub Enterprise.",
    )
    github_api_url: str = p.setting(
        "GITHUB_API_URL",
        "https://api.github.com",
        p.text,
        "GitHub's REST API URL (/user, /user/emails, /user/orgs).",
    )
    oauth_access_token_lifetime: int = p.setting(
        "OAUTH_ACCESS_TOKEN_LIFETIME", "1800", p.positive_int, "Access token lifetime in seconds."
    )
    oauth_refresh_token_lifetime: int = p.setting(
        "OAUTH_REFRESH_TOKEN_LIFETIME",
        "31536000",
        p.positive_int,
        "Refresh token lifetime in seconds (a refresh token is single-use; each use rotates it).",
    )
    oauth_session_timeout: int = p.setting(
        "OAUTH_SESSION_TIMEOUT",
        "300",
        p.positive_int,
        "Seconds a login in progress may take (consent, GitHub round trip, device code), and "
        "the lifetime of the authorization server's browser login session.",
    )
    oauth_client_lifetime: int = p.setting(
        "OAUTH_CLIENT_LIFETIME",
        "7776000",
        p.positive_int,
        "Seconds a dynamically registered client is kept.",
    )
    oauth_jwt_private_key_b64: str = p.setting(
        "OAUTH_JWT_PRIVATE_KEY_B64",
        "",
        p.text,
        "Base64 of a PEM RSA private key to sign tokens with; empty: a key is generated once and "
        "kept in Redis.",
    )
    oauth_allowed_github_users: str = p.setting(
        "OAUTH_ALLOWED_GITHUB_USERS",
        "*",
        p.text,
        "Comma-separated GitHub logins allowed to sign in (* = everyone); a proxy's "
        "auth_required_users overrides it.",
    )
    oauth_admin_users: str = p.setting(
        "OAUTH_ADMIN_USERS", "", p.text, "GitHub logins granted scope admin (* = everyone)."
    )
    oauth_user_users: str = p.setting(
        "OAUTH_USER_USERS", "", p.text, "GitHub logins granted scope user (* = everyone)."
    )
    oauth_mcp_users: str = p.setting(
        "OAUTH_MCP_USERS", "*", p.text, "GitHub logins granted scope mcp (* = everyone)."
    )
    oauth_localhost_admin_users: str = p.setting(
        "OAUTH_LOCALHOST_ADMIN_USERS",
        "",
        p.text,
        "Scope admin for the localhost proxy (management API); empty: OAUTH_ADMIN_USERS.",
    )
    oauth_localhost_user_users: str = p.setting(
        "OAUTH_LOCALHOST_USER_USERS",
        "",
        p.text,
        "Scope user for the localhost proxy; empty: OAUTH_USER_USERS.",
    )
    oauth_localhost_mcp_users: str = p.setting(
        "OAUTH_LOCALHOST_MCP_USERS",
        "",
        p.text,
        "Scope mcp for the localhost proxy; empty: OAUTH_MCP_USERS.",
    )
    oauth_cimd_allow_private: bool = p.setting(
        "OAUTH_CIMD_ALLOW_PRIVATE",
        "false",
        p.boolean,
        "Let Client ID Metadata Document URLs resolve to loopback/private addresses (local "
        "development only).",
    )
    oauth_device_poll_interval: int = p.setting(
        "OAUTH_DEVICE_POLL_INTERVAL",
        "5",
        p.positive_int,
        "Seconds a device-flow client must wait between polls of the token endpoint.",
    )
    oauth_register_rate_limit: int = p.setting(
        "OAUTH_REGISTER_RATE_LIMIT",
        "20",
        p.positive_int,
        "Dynamic client registrations allowed per client address per minute (then 429).",
    )
    oauth_token_failure_limit: int = p.setting(
        "OAUTH_TOKEN_FAILURE_LIMIT",
        "10",
        p.positive_int,
        "Failed token-endpoint attempts allowed per client_id per minute (then 429).",
    )
    oauth_clock_skew: float = p.setting(
        "OAUTH_CLOCK_SKEW",
        "30",
        p.non_negative_float,
        "Seconds a token's nbf and iat may lie in the future (clocks of other machines).",
    )
    oauth_key_refresh_interval: float = p.setting(
        "OAUTH_KEY_REFRESH_INTERVAL",
        "10",
        p.positive_float,
        "At most one reload of the signing keys from Redis per this many seconds when a token "
        "names an unknown kid (keys are also reloaded on every reconcile).",
    )
    oauth_jwt_retained_kids: tuple = p.setting(
        "OAUTH_JWT_RETAINED_KIDS",
        "",
        p.names,
        "With OAUTH_JWT_PRIVATE_KEY_B64 set: comma-separated kids of older keys that /jwks "
        "still publishes and tokens may still be signed with (keys stay in Redis).",
    )


@attrs.frozen(slots=False)
class ApiSettings:
    """The management API: GraphQL limits and remote access (proxyd.api, proxyd.edge)."""

    management_remote_networks: tuple = p.setting(
        "MANAGEMENT_REMOTE_NETWORKS",
        "",
        p.networks,
        "Networks (comma-separated CIDRs) allowed to reach the management app (GraphQL, web UI) "
        "through the public listeners besides loopback (the real client, through TRUSTED_PROXIES). "
        "Empty: nobody else.",
    )
    management_remote_hosts: str = p.setting(
        "MANAGEMENT_REMOTE_HOSTS",
        "",
        p.text,
        "Hostnames (comma-separated) whose proxies to the management app answer every client "
        "(the management API still needs its own tokens). The OAuth endpoints and /mcp are "
        "always reachable on the issuer's host.",
    )
    graphql_timeout: float = p.setting(
        "GRAPHQL_TIMEOUT",
        "3",
        p.positive_float,
        "Seconds a GraphQL operation may run (Redis waits included) before it is answered with "
        "TIMEOUT, or SERVICE_UNAVAILABLE when Redis is not answering.",
    )
    graphql_max_aliases: int = p.setting(
        "GRAPHQL_MAX_ALIASES", "50", p.positive_int, "Aliased fields allowed in one operation."
    )
    graphql_max_fields: int = p.setting(
        "GRAPHQL_MAX_FIELDS",
        "1000",
        p.positive_int,
        "Field selections allowed in one operation, fragments expanded.",
    )
    graphql_max_depth: int = p.setting(
        "GRAPHQL_MAX_DEPTH", "15", p.positive_int, "Nesting depth allowed in one operation."
    )
    graphql_max_cost: int = p.setting(
        "GRAPHQL_MAX_COST",
        "5000",
        p.positive_int,
        "Cost budget of one operation: each field's cost times the list sizes and hours it asks "
        "for (requestStats(hours: 744) costs 744).",
    )
    graphql_rate_limit: int = p.setting(
        "GRAPHQL_RATE_LIMIT",
        "600",
        p.positive_int,
        "GraphQL operations per minute per token (and per process); bursts up to the same number.",
    )
    graphql_expensive_concurrency: int = p.setting(
        "GRAPHQL_EXPENSIVE_CONCURRENCY",
        "2",
        p.positive_int,
        "Expensive resolvers (request statistics and log queries) running at once per process.",
    )

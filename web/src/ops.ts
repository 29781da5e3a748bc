/** Every GraphQL operation of the UI, typed from ../schema.graphql by gql.tada. */
import { graphql } from "./graphql";

export const ViewerQuery = graphql(`
  query Viewer {
    viewer { subject scopes clientId expiresAt }
  }
`);

export const RouteFields = graphql(`
  fragment RouteFields on Route {
    routeId pathPattern isRegex targetType targetValue priority methods enabled scope
    proxyHostnames description createdAt
  }
`);

export const CertificateFields = graphql(`
  fragment CertificateFields on Certificate {
    certName domains email status expiresAt issuedAt issuer fingerprint lastError keyType
    challenge staging acmeDirectoryUrl proxies createdAt
    orderStatus { certName stage message reason updatedAt }
  }
`);

export const ProxyFields = graphql(`
  fragment ProxyFields on Proxy {
    hostname targetUrl certName certEmail createdBy createdAt updatedAt enabled enableHttp
    enableHttps redirectToHttps preserveHostHeader customHeaders customResponseHeaders
    authEnabled authProxy authMode authRequiredUsers authRequiredEmails authRequiredGroups
    authAllowedScopes authAllowedAudiences authPassHeaders authCookieName authHeaderPrefix
    authExcludedPaths routeMode enabledRoutes disabledRoutes resourceEndpoint resourceScopes
    resourceStateful resourceVersions resourceServerInfo resourceOverrideBackend
    resourceBearerMethods resourceDocumentationSuffix resourceCustomMetadata
    oauthAdminUsers oauthUserUsers oauthMcpUsers
    certificate { certName status expiresAt }
    githubApp { hostname clientId hasSecret }
  }
`);

export const ProxiesQuery = graphql(
  `
  query Proxies {
    proxies { ...ProxyFields }
  }
`,
  [ProxyFields],
);

export const ProxyQuery = graphql(
  `
  query Proxy($hostname: String!) {
    proxy(hostname: $hostname) { ...ProxyFields routes { ...RouteFields } }
    requestStats(hostname: $hostname, hours: 24) {
      requests errors uniqueVisitors p50Ms p95Ms p99Ms hourly { hour requests errors }
    }
  }
`,
  [ProxyFields, RouteFields],
);

export const CreateProxy = graphql(
  `
  mutation CreateProxy($input: CreateProxyInput!) {
    createProxy(input: $input) { ...ProxyFields }
  }
`,
  [ProxyFields],
);

export const UpdateProxy = graphql(
  `
  mutation UpdateProxy($hostname: String!, $input: UpdateProxyInput!) {
    updateProxy(hostname: $hostname, input: $input) { ...ProxyFields }
  }
`,
  [ProxyFields],
);

export const DeleteProxy = graphql(`
  mutation DeleteProxy($hostname: String!) { deleteProxy(hostname: $hostname) }
`);

export const SetGitHubApp = graphql(`
  mutation SetGitHubApp($hostname: String!, $clientId: String!, $clientSecret: String!) {
    setGitHubApp(hostname: $hostname, clientId: $clientId, clientSecret: $clientSecret) {
      hostname clientId hasSecret
    }
  }
`);

export const DeleteGitHubApp = graphql(`
  mutation DeleteGitHubApp($hostname: String!) { deleteGitHubApp(hostname: $hostname) }
`);

export const DashboardQuery = graphql(`
  query Dashboard {
    health { status version instance redis proxies logRecordsDropped workers }
    proxies { hostname enableHttps authEnabled enabled }
    certificates { certName domains status expiresAt lastError orderStatus { stage } }
    requestStats(hours: 24) {
      requests errors uniqueVisitors p50Ms p95Ms p99Ms hourly { hour requests errors }
    }
    requestLogs(filter: { errorsOnly: true }, limit: 8) {
      items { id timestamp hostname method path status error clientIp }
    }
  }
`);

export const RoutesQuery = graphql(
  `
  query Routes {
    routes { ...RouteFields }
    proxies { hostname }
  }
`,
  [RouteFields],
);

export const CreateRoute = graphql(
  `
  mutation CreateRoute($input: CreateRouteInput!) {
    createRoute(input: $input) { ...RouteFields }
  }
`,
  [RouteFields],
);

export const UpdateRoute = graphql(
  `
  mutation UpdateRoute($routeId: String!, $input: UpdateRouteInput!) {
    updateRoute(routeId: $routeId, input: $input) { ...RouteFields }
  }
`,
  [RouteFields],
);

export const DeleteRoute = graphql(`
  mutation DeleteRoute($routeId: String!) { deleteRoute(routeId: $routeId) }
`);

export const MatchRouteQuery = graphql(`
  query MatchRoute($hostname: String!, $method: String, $path: String!) {
    matchRoute(hostname: $hostname, method: $method, path: $path) {
      hostname method path target reason
      proxy { hostname targetUrl routeMode }
      route { routeId pathPattern priority }
      candidates { matched reason route { routeId pathPattern priority isRegex methods } }
    }
  }
`);

export const CertificatesQuery = graphql(
  `
  query Certificates {
    certificates { ...CertificateFields }
    proxies { hostname certName }
  }
`,
  [CertificateFields],
);

export const CreateCertificate = graphql(
  `
  mutation CreateCertificate($input: CreateCertificateInput!) {
    createCertificate(input: $input) { ...CertificateFields }
  }
`,
  [CertificateFields],
);

export const RenewCertificate = graphql(`
  mutation RenewCertificate($name: String!) { renewCertificate(name: $name) { certName status } }
`);

export const DeleteCertificate = graphql(`
  mutation DeleteCertificate($name: String!, $force: Boolean) {
    deleteCertificate(name: $name, force: $force)
  }
`);

export const AttachCertificate = graphql(`
  mutation AttachCertificate($hostname: String!, $certName: String!) {
    attachCertificate(hostname: $hostname, certName: $certName) { hostname certName }
  }
`);

export const CertificateStatusSubscription = graphql(`
  subscription CertificateStatus($name: String!) {
    certificateStatus(name: $name) { certName stage message reason instance updatedAt }
  }
`);

export const RequestLogFields = graphql(`
  fragment RequestLogFields on RequestLog {
    id timestamp clientIp hostname method path query status bytesIn bytesOut durationMs
    upstreamMs user clientId authOutcome userAgent referer error protocol instance
  }
`);

export const RequestLogsQuery = graphql(
  `
  query RequestLogs($filter: RequestLogFilter, $limit: Int, $after: String) {
    requestLogs(filter: $filter, limit: $limit, after: $after) {
      items { ...RequestLogFields }
      endCursor
      hasMore
    }
  }
`,
  [RequestLogFields],
);

export const RequestLogsSubscription = graphql(
  `
  subscription LiveRequestLogs($filter: RequestLogFilter) {
    requestLogs(filter: $filter) { ...RequestLogFields }
  }
`,
  [RequestLogFields],
);

export const RequestStatsQuery = graphql(`
  query RequestStats($hostname: String, $hours: Int) {
    requestStats(hostname: $hostname, hours: $hours) {
      hostname hours requests errors uniqueVisitors p50Ms p95Ms p99Ms
      hourly { hour requests errors }
    }
  }
`);

export const OAuthQuery = graphql(`
  query OAuth {
    oauthClients { clientId clientName redirectUris grantTypes tokenEndpointAuthMethod clientIdIssuedAt }
    oauthTokens { jti subject clientId scope audience issuedAt expiresAt revoked }
    oauthSessions { id user clientId createdAt expiresAt }
    oauthMetrics { counters clients activeTokens revokedInMemory }
  }
`);

export const DeleteOAuthClient = graphql(`
  mutation DeleteOAuthClient($clientId: String!) { deleteOAuthClient(clientId: $clientId) }
`);

export const RevokeOAuthToken = graphql(`
  mutation RevokeOAuthToken($jti: String!) { revokeOAuthToken(jti: $jti) }
`);

export const RevokeOAuthSession = graphql(`
  mutation RevokeOAuthSession($id: String!) { revokeOAuthSession(id: $id) }
`);

export const ServiceFields = graphql(`
  fragment ServiceFields on Service {
    name type status exitCode health image dockerfilePath command environmentKeys memoryLimit
    cpuLimit restartPolicy labels networks containerName containerId ipAddress targetUrl proxyHostname
    createdBy createdAt updatedAt notice
    ports { name containerPort hostPort bindAddress protocol requireToken publishedBy description }
  }
`);

export const ServicesQuery = graphql(
  `
  query Services {
    services { ...ServiceFields }
    externalServices { serviceName description routingEnabled }
    ports { port serviceName portName bindAddress protocol containerPort requireToken allocatedAt }
    availablePortRanges { start end purpose }
  }
`,
  [ServiceFields],
);

export const ServiceStatusSubscription = graphql(`
  subscription ServiceStatus { serviceStatus { name status exitCode } }
`);

export const CreateDockerService = graphql(`
  mutation CreateDockerService($input: CreateServiceInput!) {
    createService(input: $input) { name status }
  }
`);

export const StartService = graphql(`
  mutation StartService($name: String!) { startService(name: $name) { name status exitCode } }
`);

export const StopService = graphql(`
  mutation StopService($name: String!) { stopService(name: $name) { name status exitCode } }
`);

export const RestartService = graphql(`
  mutation RestartService($name: String!) { restartService(name: $name) { name status exitCode } }
`);

export const DeleteDockerService = graphql(`
  mutation DeleteDockerService($name: String!, $deleteProxy: Boolean) {
    deleteService(name: $name, deleteProxy: $deleteProxy)
  }
`);

export const CreateServiceProxy = graphql(`
  mutation CreateServiceProxy($name: String!, $hostname: String) {
    createServiceProxy(name: $name, hostname: $hostname) { hostname targetUrl }
  }
`);

export const UpdateDockerService = graphql(
  `
  mutation UpdateDockerService($name: String!, $input: UpdateServiceInput!) {
    updateService(name: $name, input: $input) { ...ServiceFields }
  }
`,
  [ServiceFields],
);

export const AddServicePort = graphql(
  `
  mutation AddServicePort($name: String!, $input: ServicePortInput!) {
    addServicePort(name: $name, input: $input) { ...ServiceFields }
  }
`,
  [ServiceFields],
);

export const UpdateServicePort = graphql(
  `
  mutation UpdateServicePort($name: String!, $portName: String!, $input: UpdateServicePortInput!) {
    updateServicePort(name: $name, portName: $portName, input: $input) { ...ServiceFields }
  }
`,
  [ServiceFields],
);

export const RemoveServicePort = graphql(
  `
  mutation RemoveServicePort($name: String!, $portName: String!) {
    removeServicePort(name: $name, portName: $portName) { ...ServiceFields }
  }
`,
  [ServiceFields],
);

export const ServiceLogsQuery = graphql(`
  query ServiceLogs($name: String!, $tail: Int) { serviceLogs(name: $name, tail: $tail) }
`);

export const ServiceLogsSubscription = graphql(`
  subscription FollowServiceLogs($name: String!, $tail: Int) {
    serviceLogs(name: $name, tail: $tail)
  }
`);

export const ServiceStatsQuery = graphql(`
  query ServiceStats($name: String!) {
    serviceStats(name: $name) {
      name cpuPercent memoryUsage memoryLimit memoryPercent networkRx networkTx blockRead
      blockWrite pids readAt
    }
  }
`);

export const RegisterService = graphql(`
  mutation RegisterService($input: ExternalServiceInput!) {
    registerExternalService(input: $input) { serviceName }
  }
`);

export const DeleteService = graphql(`
  mutation DeleteService($name: String!) { deleteExternalService(name: $name) }
`);

export const ApplicationLogsQuery = graphql(`
  query ApplicationLogs($level: String, $component: String, $limit: Int) {
    applicationLogs(level: $level, component: $component, limit: $limit) {
      timestamp level component message fields
    }
  }
`);

// gateway.networking.k8s.io: GatewayClass, Gateway, HTTPRoute (v1) and
// ReferenceGrant (v1beta1, as the upstream standard channel serves it).
// Gateway API is a set of CRDs with no protobuf encoding: the field numbers
// here are sequential in declaration order, only so the DSL's
// one-number-per-field rule holds; no client sends these kinds as protobuf.
// Fields and enums follow kubernetes-sigs/gateway-api apis/v1/*_types.go.

import { atomic, byType, req } from './common.ts'
import { definePackage, listOf, object, type } from './dsl.ts'

const meta = [1, 'meta.ObjectMeta', 'Standard object metadata.'] as const
const pathTypes = ['Exact', 'PathPrefix', 'RegularExpression']
const methods = ['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE']
const filterTypes = ['CORS', 'ExtensionRef', 'RequestHeaderModifier', 'RequestMirror', 'RequestRedirect', 'ResponseHeaderModifier', 'URLRewrite']

export const gateway = definePackage('gateway', 'io.k8s.networking.gateway.v1', {
  GatewayClass: object('A class of Gateways, implemented by one controller.', {
    metadata: meta,
    spec: [2, 'GatewayClassSpec', 'Desired state.', req],
    status: [3, 'GatewayClassStatus', 'Observed state.'],
  }),
  GatewayClassList: listOf('GatewayClass'),
  GatewayClassSpec: type('Desired state of a GatewayClass.', {
    controllerName: [1, 'string', 'The controller that manages Gateways of this class (domain-prefixed path). Immutable.', req],
    parametersRef: [2, '*ParametersReference', 'Controller-specific parameters.'],
    description: [3, '*string', 'What the class is for.'],
  }),
  ParametersReference: type('A reference to a parameters object.', {
    group: [1, 'string', 'API group.', req],
    kind: [2, 'string', 'Kind.', req],
    name: [3, 'string', 'Name.', req],
    namespace: [4, '*string', 'Namespace, for namespaced kinds.'],
  }),
  GatewayClassStatus: type('Observed state of a GatewayClass.', {
    conditions: [1, '[]meta.Condition', 'Accepted and SupportedVersion.', byType],
    supportedFeatures: [2, '[]SupportedFeature', 'Features the controller supports.', atomic],
  }),
  SupportedFeature: type('A supported feature.', {
    name: [1, 'string', 'Feature name.', req],
  }),

  Gateway: object('A load balancer: listeners that routes attach to.', {
    metadata: meta,
    spec: [2, 'GatewaySpec', 'Desired state.', req],
    status: [3, 'GatewayStatus', 'Observed state.'],
  }),
  GatewayList: listOf('Gateway'),
  GatewaySpec: type('Desired state of a Gateway.', {
    gatewayClassName: [1, 'string', 'The GatewayClass.', req],
    listeners: [2, '[]Listener', 'Logical endpoints: port, protocol, hostname.', { required: true, listType: 'map', listMapKeys: ['name'] }],
    addresses: [3, '[]GatewaySpecAddress', 'Requested addresses.', atomic],
    infrastructure: [4, '*GatewayInfrastructure', 'Labels and annotations for generated resources.'],
    backendTLS: [5, '*GatewayBackendTLS', 'TLS towards backends.'],
    allowedListeners: [6, '*AllowedListeners', 'ListenerSets that may attach.'],
  }),
  GatewaySpecAddress: type('A requested address.', {
    type: [1, '*string', 'IPAddress, Hostname or implementation-specific. Defaults to IPAddress.'],
    value: [2, 'string', 'The address.'],
  }),
  GatewayInfrastructure: type('Infrastructure settings.', {
    labels: [1, 'map[string]', 'Labels for generated resources.'],
    annotations: [2, 'map[string]', 'Annotations for generated resources.'],
    parametersRef: [3, '*LocalParametersReference', 'Implementation-specific parameters.'],
  }),
  LocalParametersReference: type('A reference to a parameters object in the same namespace.', {
    group: [1, 'string', 'API group.', req],
    kind: [2, 'string', 'Kind.', req],
    name: [3, 'string', 'Name.', req],
  }),
  GatewayBackendTLS: type('TLS towards backends.', {
    clientCertificateRef: [1, '*SecretObjectReference', 'Client certificate.'],
  }),
  AllowedListeners: type('ListenerSets that may attach.', {
    namespaces: [1, '*ListenerNamespaces', 'From which namespaces.'],
  }),
  ListenerNamespaces: type('Namespaces of ListenerSets.', {
    from: [1, '*string', 'None, Same, All or Selector.'],
    selector: [2, '*meta.LabelSelector', 'Namespaces for Selector.'],
  }),
  Listener: type('A port, protocol and optional hostname routes attach to.', {
    name: [1, 'string', 'Unique name in the Gateway (a parentRef sectionName).', req],
    hostname: [2, '*string', 'Host the listener serves; a leading *. is a wildcard. All hosts when empty.'],
    port: [3, 'int32', 'Network port.', req],
    protocol: [4, 'string', 'HTTP, HTTPS, TLS, TCP or UDP.', req],
    tls: [5, '*ListenerTLSConfig', 'TLS settings (HTTPS, TLS).'],
    allowedRoutes: [6, '*AllowedRoutes', 'Which routes may attach.'],
  }),
  ListenerTLSConfig: type('TLS settings of a listener.', {
    mode: [1, '*string', 'Terminate (default) or Passthrough.', { enum: ['Passthrough', 'Terminate'] }],
    certificateRefs: [2, '[]SecretObjectReference', 'Certificates (kubernetes.io/tls Secrets).', atomic],
    options: [3, 'map[string]', 'Implementation-specific options.'],
  }),
  SecretObjectReference: type('A reference to a Secret (by default).', {
    group: [1, '*string', 'API group; "" for core.'],
    kind: [2, '*string', 'Kind; defaults to Secret.'],
    name: [3, 'string', 'Name.', req],
    namespace: [4, '*string', 'Namespace; another one needs a ReferenceGrant.'],
  }),
  AllowedRoutes: type('Which routes may attach to a listener.', {
    namespaces: [1, '*RouteNamespaces', 'From which namespaces. Defaults to Same.'],
    kinds: [2, '[]RouteGroupKind', 'Which route kinds.', atomic],
  }),
  RouteNamespaces: type('Namespaces routes may attach from.', {
    from: [1, '*string', 'All, Selector or Same.', { enum: ['All', 'Selector', 'Same'] }],
    selector: [2, '*meta.LabelSelector', 'Namespaces for Selector.'],
  }),
  RouteGroupKind: type('A route kind.', {
    group: [1, '*string', 'API group; defaults to gateway.networking.k8s.io.'],
    kind: [2, 'string', 'Kind.', req],
  }),
  GatewayStatus: type('Observed state of a Gateway.', {
    addresses: [1, '[]GatewayStatusAddress', 'Addresses the Gateway is reachable at.', atomic],
    conditions: [2, '[]meta.Condition', 'Accepted and Programmed.', byType],
    listeners: [3, '[]ListenerStatus', 'Per-listener state.', { listType: 'map', listMapKeys: ['name'] }],
    attachedListenerSets: [4, '*int32', 'ListenerSets attached.'],
  }),
  GatewayStatusAddress: type('An address of a Gateway.', {
    type: [1, '*string', 'IPAddress or Hostname.'],
    value: [2, 'string', 'The address.'],
  }),
  ListenerStatus: type('Observed state of a listener.', {
    name: [1, 'string', 'Listener name.', req],
    supportedKinds: [2, '[]RouteGroupKind', 'Route kinds that may attach.', atomic],
    attachedRoutes: [3, 'int32', 'Routes attached.', req],
    conditions: [4, '[]meta.Condition', 'Accepted, Programmed, ResolvedRefs, Conflicted.', byType],
  }),

  HTTPRoute: object('HTTP routing rules attached to Gateways.', {
    metadata: meta,
    spec: [2, 'HTTPRouteSpec', 'Desired state.', req],
    status: [3, 'HTTPRouteStatus', 'Observed state.'],
  }),
  HTTPRouteList: listOf('HTTPRoute'),
  HTTPRouteSpec: type('Desired state of an HTTPRoute.', {
    parentRefs: [1, '[]ParentReference', 'Gateways (and listeners) to attach to.', atomic],
    hostnames: [2, '[]string', 'Hosts to match against the Host header.', atomic],
    rules: [3, '[]HTTPRouteRule', 'Matches, filters and backends.', atomic],
  }),
  ParentReference: type('A reference to a parent (a Gateway).', {
    group: [1, '*string', 'API group; defaults to gateway.networking.k8s.io.'],
    kind: [2, '*string', 'Kind; defaults to Gateway.'],
    namespace: [3, '*string', "Namespace; defaults to the route's."],
    name: [4, 'string', 'Name.', req],
    sectionName: [5, '*string', 'Listener name.'],
    port: [6, '*int32', 'Listener port.'],
  }),
  HTTPRouteRule: type('Matches, filters and backends of one rule.', {
    name: [1, '*string', 'Rule name.'],
    matches: [2, '[]HTTPRouteMatch', 'ORed matches; defaults to PathPrefix /.', atomic],
    filters: [3, '[]HTTPRouteFilter', 'Processing applied to matching requests.', atomic],
    backendRefs: [4, '[]HTTPBackendRef', 'Weighted backends.', atomic],
    timeouts: [5, '*HTTPRouteTimeouts', 'Timeouts.'],
    retry: [6, '*HTTPRouteRetry', 'Retries.'],
    sessionPersistence: [7, '*SessionPersistence', 'Session persistence.'],
  }),
  HTTPRouteTimeouts: type('Timeouts of a rule.', {
    request: [1, '*string', 'Whole-request timeout (a Gateway API Duration).'],
    backendRequest: [2, '*string', 'Timeout of one backend request.'],
  }),
  HTTPRouteRetry: type('Retries of a rule.', {
    codes: [1, '[]int32', 'Status codes to retry.', atomic],
    attempts: [2, '*int32', 'Maximum attempts.'],
    backoff: [3, '*string', 'Backoff between attempts.'],
  }),
  SessionPersistence: type('Session persistence.', {
    sessionName: [1, '*string', 'Session name.'],
    absoluteTimeout: [2, '*string', 'Absolute timeout.'],
    idleTimeout: [3, '*string', 'Idle timeout.'],
    type: [4, '*string', 'Cookie or Header.'],
    cookieConfig: [5, '*CookieConfig', 'Cookie settings.'],
  }),
  CookieConfig: type('Cookie settings.', {
    lifetimeType: [1, '*string', 'Permanent or Session.'],
  }),
  HTTPRouteMatch: type('Conditions that are ANDed.', {
    path: [1, '*HTTPPathMatch', 'Path match; defaults to PathPrefix /.'],
    headers: [2, '[]HTTPHeaderMatch', 'Header matches.', { listType: 'map', listMapKeys: ['name'] }],
    queryParams: [3, '[]HTTPQueryParamMatch', 'Query parameter matches.', { listType: 'map', listMapKeys: ['name'] }],
    method: [4, '*string', 'HTTP method.', { enum: methods }],
  }),
  HTTPPathMatch: type('A path match.', {
    type: [1, '*string', 'Exact, PathPrefix (default) or RegularExpression.', { enum: pathTypes }],
    value: [2, '*string', 'The path; defaults to /.'],
  }),
  HTTPHeaderMatch: type('A header match.', {
    type: [1, '*string', 'Exact (default) or RegularExpression.', { enum: ['Exact', 'RegularExpression'] }],
    name: [2, 'string', 'Header name (case-insensitive).', req],
    value: [3, 'string', 'Value.', req],
  }),
  HTTPQueryParamMatch: type('A query parameter match.', {
    type: [1, '*string', 'Exact (default) or RegularExpression.', { enum: ['Exact', 'RegularExpression'] }],
    name: [2, 'string', 'Parameter name (case-sensitive).', req],
    value: [3, 'string', 'Value.', req],
  }),
  HTTPRouteFilter: type('Processing of a request or response.', {
    type: [1, 'string', 'Filter type.', { required: true, enum: filterTypes }],
    requestHeaderModifier: [2, '*HTTPHeaderFilter', 'Request header changes.'],
    responseHeaderModifier: [3, '*HTTPHeaderFilter', 'Response header changes.'],
    requestMirror: [4, '*HTTPRequestMirrorFilter', 'Mirror requests to a backend.'],
    requestRedirect: [5, '*HTTPRequestRedirectFilter', 'Answer with a redirect.'],
    urlRewrite: [6, '*HTTPURLRewriteFilter', 'Rewrite host or path.'],
    cors: [7, '*HTTPCORSFilter', 'CORS.'],
    extensionRef: [8, '*LocalObjectReference', 'Implementation-specific filter.'],
  }),
  LocalObjectReference: type('A reference to an object in the same namespace.', {
    group: [1, 'string', 'API group.', req],
    kind: [2, 'string', 'Kind.', req],
    name: [3, 'string', 'Name.', req],
  }),
  HTTPHeaderFilter: type('Header changes: set, add, remove.', {
    set: [1, '[]HTTPHeader', 'Overwrite or add.', { listType: 'map', listMapKeys: ['name'] }],
    add: [2, '[]HTTPHeader', 'Append.', { listType: 'map', listMapKeys: ['name'] }],
    remove: [3, '[]string', 'Remove (names).', { listType: 'set' }],
  }),
  HTTPHeader: type('A header name and value.', {
    name: [1, 'string', 'Name.', req],
    value: [2, 'string', 'Value.', req],
  }),
  HTTPRequestMirrorFilter: type('Mirror requests.', {
    backendRef: [1, 'BackendObjectReference', 'The mirror backend.', req],
    percent: [2, '*int32', 'Share to mirror.'],
    fraction: [3, '*Fraction', 'Share to mirror.'],
  }),
  Fraction: type('A fraction.', {
    numerator: [1, 'int32', 'Numerator.', req],
    denominator: [2, '*int32', 'Denominator (default 100).'],
  }),
  HTTPRequestRedirectFilter: type('A redirect answer.', {
    scheme: [1, '*string', 'http or https.', { enum: ['http', 'https'] }],
    hostname: [2, '*string', 'Host of the Location.'],
    path: [3, '*HTTPPathModifier', 'Path of the Location.'],
    port: [4, '*int32', 'Port of the Location.'],
    statusCode: [5, '*int32', 'Status code: 301, 302 (default), 303, 307 or 308.'],
  }),
  HTTPURLRewriteFilter: type('Rewrite host or path before forwarding.', {
    hostname: [1, '*string', 'New Host.'],
    path: [2, '*HTTPPathModifier', 'New path.'],
  }),
  HTTPPathModifier: type('A path change.', {
    type: [1, 'string', 'ReplaceFullPath or ReplacePrefixMatch.', { required: true, enum: ['ReplaceFullPath', 'ReplacePrefixMatch'] }],
    replaceFullPath: [2, '*string', 'The new path.'],
    replacePrefixMatch: [3, '*string', 'Replacement of the matched prefix.'],
  }),
  HTTPCORSFilter: type('CORS settings.', {
    allowOrigins: [1, '[]string', 'Origins.', atomic],
    allowCredentials: [2, '*bool', 'Allow credentials.'],
    allowMethods: [3, '[]string', 'Methods.', atomic],
    allowHeaders: [4, '[]string', 'Headers.', atomic],
    exposeHeaders: [5, '[]string', 'Exposed headers.', atomic],
    maxAge: [6, 'int32', 'Preflight cache seconds.'],
  }),
  BackendObjectReference: type('A reference to a backend (a Service by default).', {
    group: [1, '*string', 'API group; "" for core.'],
    kind: [2, '*string', 'Kind; defaults to Service.'],
    name: [3, 'string', 'Name.', req],
    namespace: [4, '*string', 'Namespace; another one needs a ReferenceGrant.'],
    port: [5, '*int32', 'Port (required for Services).'],
  }),
  HTTPBackendRef: type('A weighted backend with filters.', {
    backendRef: [1, 'BackendRef', 'The backend.', { inline: true }],
    filters: [2, '[]HTTPRouteFilter', 'Filters for this backend only.', atomic],
  }),
  BackendRef: type('A backend and its weight.', {
    backendObjectReference: [1, 'BackendObjectReference', 'The backend.', { inline: true }],
    weight: [2, '*int32', 'Share of traffic, 0..1000000 (default 1).'],
  }),
  HTTPRouteStatus: type('Observed state of an HTTPRoute.', {
    parents: [1, '[]RouteParentStatus', 'Per-parent state.', atomic],
  }),
  RouteParentStatus: type('State of a route for one parent.', {
    parentRef: [1, 'ParentReference', 'The parent.', req],
    controllerName: [2, 'string', 'The controller that wrote this entry.', req],
    conditions: [3, '[]meta.Condition', 'Accepted, ResolvedRefs, PartiallyInvalid.', byType],
  }),
})

export const gatewayV1beta1 = definePackage('gatewayv1beta1', 'io.k8s.networking.gateway.v1beta1', {
  ReferenceGrant: object('Allows references from other namespaces to objects in this one.', {
    metadata: meta,
    spec: [2, 'ReferenceGrantSpec', 'Desired state.'],
  }),
  ReferenceGrantList: listOf('ReferenceGrant'),
  ReferenceGrantSpec: type('Who may refer to what.', {
    from: [1, '[]ReferenceGrantFrom', 'Referrers (group, kind, namespace).', { required: true, listType: 'atomic' }],
    to: [2, '[]ReferenceGrantTo', 'Referents (group, kind, optional name).', { required: true, listType: 'atomic' }],
  }),
  ReferenceGrantFrom: type('A referrer.', {
    group: [1, 'string', 'API group.', req],
    kind: [2, 'string', 'Kind.', req],
    namespace: [3, 'string', 'Namespace.', req],
  }),
  ReferenceGrantTo: type('A referent.', {
    group: [1, 'string', 'API group; "" for core.', req],
    kind: [2, 'string', 'Kind.', req],
    name: [3, '*string', 'Name; all of the kind when unset.'],
  }),
})

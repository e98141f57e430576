// networking.k8s.io/v1 Ingress, IngressClass and NetworkPolicy, discovery.k8s.io/v1
// EndpointSlice and coordination.k8s.io/v1 Lease. Field numbers follow
// k8s.io/api generated.proto.

import { atomic, byType, req } from './common.ts'
import { definePackage, listOf, object, type } from './dsl.ts'

const meta = [1, 'meta.ObjectMeta', 'Standard object metadata.'] as const

export const networking = definePackage('networking', 'io.k8s.api.networking.v1', {
  Ingress: object('HTTP(S) routing from outside the cluster to services.', {
    metadata: meta,
    spec: [2, 'IngressSpec', 'Desired routing.'],
    status: [3, 'IngressStatus', 'Observed state.'],
  }),
  IngressList: listOf('Ingress'),
  IngressSpec: type('Desired routing of an ingress.', {
    ingressClassName: [4, '*string', 'IngressClass that implements this ingress.'],
    defaultBackend: [1, '*IngressBackend', 'Backend for requests no rule matches.'],
    tls: [2, '[]IngressTLS', 'TLS settings per host set.', atomic],
    rules: [3, '[]IngressRule', 'Host and path rules.', atomic],
  }),
  IngressBackend: type('Where matching requests go; set service or resource.', {
    service: [4, '*IngressServiceBackend', 'A service port.'],
    resource: [3, '*core.TypedLocalObjectReference', 'Another object in the namespace.'],
  }),
  IngressServiceBackend: type('A service port as a backend.', {
    name: [1, 'string', 'Service name.', req],
    port: [2, 'ServiceBackendPort', 'Service port.'],
  }),
  ServiceBackendPort: type('A service port by name or number.', {
    name: [1, 'string', 'Port name.'],
    number: [2, 'int32', 'Port number.'],
  }, { structType: 'atomic' }),
  IngressTLS: type('TLS for a set of hosts.', {
    hosts: [1, '[]string', 'Hosts the certificate covers.', atomic],
    secretName: [2, 'string', 'Secret holding the certificate and key.'],
  }),
  IngressRule: type('Routing for one host (or all).', {
    host: [1, 'string', 'Host name, possibly with a leading *.; all hosts when empty.'],
    ingressRuleValue: [2, 'IngressRuleValue', 'The routing.', { inline: true }],
  }),
  IngressRuleValue: type('The routing of a rule.', {
    http: [1, '*HTTPIngressRuleValue', 'HTTP paths.'],
  }),
  HTTPIngressRuleValue: type('HTTP paths of a rule.', {
    paths: [1, '[]HTTPIngressPath', 'Paths and their backends.', { required: true, listType: 'atomic' }],
  }),
  HTTPIngressPath: type('One path and its backend.', {
    path: [1, 'string', 'Path to match; must start with /.'],
    pathType: [3, 'string', 'Exact, Prefix or ImplementationSpecific.', { required: true, enum: ['Exact', 'ImplementationSpecific', 'Prefix'] }],
    backend: [2, 'IngressBackend', 'Where matching requests go.', req],
  }),
  IngressStatus: type('Observed state of an ingress.', {
    loadBalancer: [1, 'IngressLoadBalancerStatus', 'Addresses of the load balancer.'],
    // Skiff's extension (not in Kubernetes' IngressStatus): the ingress controller's Accepted condition
    // (dataplane/ingress/status.ts). Field number outside Kubernetes' range; no client sends it as protobuf.
    conditions: [1000, '[]meta.Condition', 'Skiff: whether the ingress controller accepted this Ingress (type Accepted), and why not.', byType],
  }),
  IngressLoadBalancerStatus: type('Addresses of an ingress load balancer.', {
    ingress: [1, '[]IngressLoadBalancerIngress', 'Ingress points.', atomic],
  }),
  IngressLoadBalancerIngress: type('One ingress point.', {
    ip: [1, 'string', 'IP address.'],
    hostname: [2, 'string', 'DNS name.'],
    ports: [4, '[]IngressPortStatus', 'Status per port.', atomic],
  }),
  IngressPortStatus: type('Status of one port.', {
    port: [1, 'int32', 'Port number.', req],
    protocol: [2, 'string', 'TCP, UDP or SCTP.', req],
    error: [3, '*string', 'Problem with the port.'],
  }),
  IngressClass: object('A kind of ingress and the controller that implements it.', {
    metadata: meta,
    spec: [2, 'IngressClassSpec', 'Controller and parameters.'],
  }),
  IngressClassList: listOf('IngressClass'),
  IngressClassSpec: type('The controller of an ingress class.', {
    controller: [1, 'string', 'Controller name (domain-prefixed path).'],
    parameters: [2, '*IngressClassParametersReference', 'Controller-specific configuration object.'],
  }),
  IngressClassParametersReference: type('An object with controller configuration.', {
    apiGroup: [1, '*string', 'API group.'],
    kind: [2, 'string', 'Kind.', req],
    name: [3, 'string', 'Name.', req],
    scope: [4, '*string', 'Cluster or Namespace.'],
    namespace: [5, '*string', 'Namespace, with scope Namespace.'],
  }),
  NetworkPolicy: object('Which traffic the selected pods may receive and send.', {
    metadata: meta,
    spec: [2, 'NetworkPolicySpec', 'The selected pods and their allowed traffic.'],
  }),
  NetworkPolicyList: listOf('NetworkPolicy'),
  NetworkPolicySpec: type('Selected pods and allowed traffic of a network policy.', {
    podSelector: [1, 'meta.LabelSelector', 'Pods of the namespace this policy applies to; empty selects all.'],
    ingress: [2, '[]NetworkPolicyIngressRule', 'Allowed incoming traffic (a union).', atomic],
    egress: [3, '[]NetworkPolicyEgressRule', 'Allowed outgoing traffic (a union).', atomic],
    policyTypes: [4, '[]string', 'Directions this policy isolates: Ingress, Egress.', atomic],
  }),
  NetworkPolicyIngressRule: type('Traffic allowed in: matching ports and sources.', {
    ports: [1, '[]NetworkPolicyPort', 'Ports; empty or missing means all.', atomic],
    from: [2, '[]NetworkPolicyPeer', 'Sources; empty or missing means all.', atomic],
  }),
  NetworkPolicyEgressRule: type('Traffic allowed out: matching ports and destinations.', {
    ports: [1, '[]NetworkPolicyPort', 'Ports; empty or missing means all.', atomic],
    to: [2, '[]NetworkPolicyPeer', 'Destinations; empty or missing means all.', atomic],
  }),
  NetworkPolicyPeer: type('Pods (by pod and/or namespace selector) or an IP block.', {
    podSelector: [1, '*meta.LabelSelector', 'Pods, in the policy namespace or the selected namespaces.'],
    namespaceSelector: [2, '*meta.LabelSelector', 'Namespaces whose pods are peers.'],
    ipBlock: [3, '*IPBlock', 'An IP range; not with the selectors.'],
  }),
  NetworkPolicyPort: type('A protocol and a port (number or name) or port range.', {
    protocol: [1, '*string', 'TCP, UDP or SCTP; default TCP.'],
    port: [2, '*IntOrString', 'Port number or named container port; all ports when missing.'],
    endPort: [3, '*int32', 'Last port of a range starting at port.'],
  }),
  IPBlock: type('An IP range with holes.', {
    cidr: [1, 'string', 'The range.', req],
    except: [2, '[]string', 'Ranges inside cidr that are not included.', atomic],
  }),
})

export const discovery = definePackage('discovery', 'io.k8s.api.discovery.v1', {
  EndpointSlice: object('A subset of the endpoints of a service.', {
    metadata: meta,
    addressType: [4, 'string', 'IPv4, IPv6 or FQDN.', { required: true, enum: ['FQDN', 'IPv4', 'IPv6'] }],
    endpoints: [2, '[]Endpoint', 'The endpoints.', { required: true, listType: 'atomic' }],
    ports: [3, '[]EndpointPort', 'Ports every endpoint serves.', atomic],
  }),
  EndpointSliceList: listOf('EndpointSlice'),
  Endpoint: type('One backend of a service.', {
    addresses: [1, '[]string', 'Addresses of the backend.', { required: true, listType: 'set' }],
    conditions: [2, 'EndpointConditions', 'Readiness.'],
    hostname: [3, '*string', 'Host name.'],
    targetRef: [4, '*core.ObjectReference', 'Object behind the endpoint.'],
    deprecatedTopology: [5, 'map[string]', 'Deprecated topology labels.'],
    nodeName: [6, '*string', 'Node of the endpoint.'],
    zone: [7, '*string', 'Zone of the endpoint.'],
    hints: [8, '*EndpointHints', 'Topology hints.'],
  }),
  EndpointConditions: type('Readiness of an endpoint.', {
    ready: [1, '*bool', 'Ready to receive traffic.'],
    serving: [2, '*bool', 'Serving, even while terminating.'],
    terminating: [3, '*bool', 'Being deleted.'],
  }),
  EndpointHints: type('Topology hints of an endpoint.', {
    forZones: [1, '[]ForZone', 'Zones that should use it.', atomic],
    forNodes: [2, '[]ForNode', 'Nodes that should use it.', atomic],
  }),
  ForZone: type('A zone.', { name: [1, 'string', 'Zone name.', req] }),
  ForNode: type('A node.', { name: [1, 'string', 'Node name.', req] }),
  EndpointPort: type('A port of the endpoints.', {
    name: [1, '*string', 'Port name (matches the service port name).'],
    protocol: [2, '*string', 'TCP, UDP or SCTP.'],
    port: [3, '*int32', 'Port number.'],
    appProtocol: [4, '*string', 'Application protocol.'],
  }, { structType: 'atomic' }),
})

export const coordination = definePackage('coordination', 'io.k8s.api.coordination.v1', {
  Lease: object('A lease: leader election and node heartbeats.', {
    metadata: meta,
    spec: [2, 'LeaseSpec', 'Holder and timing.'],
  }),
  LeaseList: listOf('Lease'),
  LeaseSpec: type('Holder and timing of a lease.', {
    holderIdentity: [1, '*string', 'Current holder.'],
    leaseDurationSeconds: [2, '*int32', 'Seconds a holder waits for a renewal before taking over.'],
    acquireTime: [3, '*MicroTime', 'When the holder acquired it.'],
    renewTime: [4, '*MicroTime', 'When the holder last renewed it.'],
    leaseTransitions: [5, '*int32', 'Number of holder changes.'],
    strategy: [6, '*string', 'Coordinated leader election strategy.'],
    preferredHolder: [7, '*string', 'Holder that should take over.'],
  }),
})



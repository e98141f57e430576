// serviceUrls as a table: a Service, the nodes, Ingresses, HTTPRoutes and
// Gateways -> every URL that reaches it from outside (minikube service --url).

import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { formatServiceUrls, serviceUrls, type ServiceUrlInput } from '../../cli/service-urls.ts'

function svc(spec: Record<string, unknown>, status: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name: 'demo', namespace: 'demo' }, spec: { selector: { app: 'demo' }, ...spec }, status }
}

function node(name: string, addresses: Array<[string, string]>, ready = 'True'): KubeObject {
  return { metadata: { name }, spec: {}, status: { addresses: addresses.map(([type, address]) => ({ type, address })), conditions: [{ type: 'Ready', status: ready }] } }
}

const nodes = [node('n1', [['InternalIP', '10.0.0.11'], ['Hostname', 'n1']]), node('n2', [['InternalIP', '10.0.0.12'], ['ExternalIP', '203.0.113.12']]), node('n3', [['InternalIP', '10.0.0.13']], 'False')]
const http = { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }

function ingress(name: string, spec: Record<string, unknown>, ns = 'demo', lb: string[] = []): KubeObject {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name, namespace: ns }, spec, status: { loadBalancer: { ingress: lb.map((ip) => ({ ip })) } } }
}
const toDemo = (port: Record<string, unknown> = { number: 80 }) => ({ service: { name: 'demo', port } })

function gateway(name: string, listeners: unknown[], addresses: string[] = ['10.0.0.11']): KubeObject {
  return { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name, namespace: 'infra' }, spec: { gatewayClassName: 'external', listeners }, status: { addresses: addresses.map((value) => ({ type: 'IPAddress', value })) } }
}
function route(name: string, spec: Record<string, unknown>, ns = 'demo'): KubeObject {
  return { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name, namespace: ns }, spec }
}
const parent = { name: 'web', namespace: 'infra' }
const backend = { name: 'demo', port: 80 }

const cases: Array<{ name: string; input: Omit<ServiceUrlInput, 'nodes'> & { nodes?: KubeObject[] }; want: string[] }> = [
  { name: 'ClusterIP only: nothing', input: { service: svc({ type: 'ClusterIP', ports: [http] }) }, want: [] },
  {
    name: 'NodePort: on every address of every Ready node (InternalIP, ExternalIP)',
    input: { service: svc({ type: 'NodePort', ports: [{ ...http, nodePort: 30080 }] }) },
    want: ['NodePort http http://10.0.0.11:30080', 'NodePort http http://10.0.0.12:30080', 'NodePort http http://203.0.113.12:30080'],
  },
  {
    name: 'an https port and a UDP port keep their scheme; an unnamed port is labelled by number',
    input: { service: svc({ type: 'NodePort', ports: [{ name: 'https', port: 443, nodePort: 30443 }, { port: 53, protocol: 'UDP', nodePort: 30053 }] }), nodes: [nodes[0]!] },
    want: ['NodePort https https://10.0.0.11:30443', 'NodePort 53 udp://10.0.0.11:30053'],
  },
  {
    name: 'LoadBalancer: its NodePorts and its ingress IP with the service port (80 left out)',
    input: { service: svc({ type: 'LoadBalancer', ports: [{ ...http, nodePort: 30080 }, { name: 'admin', port: 9090, nodePort: 30090 }] }, { loadBalancer: { ingress: [{ ip: '192.168.50.10' }] } }), nodes: [nodes[0]!] },
    want: ['NodePort http http://10.0.0.11:30080', 'NodePort admin http://10.0.0.11:30090', 'LoadBalancer http http://192.168.50.10', 'LoadBalancer admin http://192.168.50.10:9090'],
  },
  {
    name: 'Ingress: rules that send to it, https when tls lists the host; other services, ports and namespaces ignored',
    input: {
      service: svc({ type: 'ClusterIP', ports: [http] }),
      ingresses: [
        ingress('demo', { tls: [{ hosts: ['secure.demo.test'], secretName: 's' }], rules: [
          { host: 'demo.skiff.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: toDemo() }, { path: '/other', pathType: 'Prefix', backend: { service: { name: 'other', port: { number: 80 } } } }] } },
          { host: 'secure.demo.test', http: { paths: [{ path: '/app', pathType: 'Prefix', backend: toDemo({ name: 'http' }) }] } },
          { host: 'wrong.port.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: toDemo({ number: 81 }) }] } },
        ] }),
        ingress('elsewhere', { rules: [{ host: 'x.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: toDemo() }] } }] }, 'other-ns'),
      ],
    },
    want: ['Ingress http http://demo.skiff.test/', 'Ingress http https://secure.demo.test/app'],
  },
  {
    name: 'Ingress without a host (or a defaultBackend): its status addresses',
    input: { service: svc({ ports: [http] }), ingresses: [ingress('bare', { defaultBackend: toDemo() }, 'demo', ['10.0.0.11', '10.0.0.12'])] },
    want: ['Ingress http http://10.0.0.11/', 'Ingress http http://10.0.0.12/'],
  },
  {
    name: 'Gateway: the route hostnames on each listener it attaches to, https on an HTTPS listener, a non-default port kept',
    input: {
      service: svc({ ports: [http] }),
      gateways: [gateway('web', [{ name: 'http', protocol: 'HTTP', port: 80 }, { name: 'https', protocol: 'HTTPS', port: 443, hostname: '*.example.com' }, { name: 'alt', protocol: 'HTTP', port: 8080 }])],
      httpRoutes: [route('shop', { parentRefs: [parent], hostnames: ['shop.example.com'], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/cart' } }], backendRefs: [backend] }] })],
    },
    want: ['Gateway http http://shop.example.com/cart', 'Gateway http https://shop.example.com/cart', 'Gateway http http://shop.example.com:8080/cart'],
  },
  {
    name: 'Gateway: sectionName picks one listener; no hostnames anywhere -> the Gateway addresses; another service is not listed',
    input: {
      service: svc({ ports: [http] }),
      gateways: [gateway('web', [{ name: 'http', protocol: 'HTTP', port: 80 }, { name: 'https', protocol: 'HTTPS', port: 443 }])],
      httpRoutes: [
        route('one', { parentRefs: [{ ...parent, sectionName: 'http' }], rules: [{ backendRefs: [backend] }] }),
        route('two', { parentRefs: [parent], rules: [{ backendRefs: [{ name: 'other', port: 80 }] }] }),
      ],
    },
    want: ['Gateway http http://10.0.0.11/'],
  },
  {
    name: 'Gateway: a route in another namespace names the Service with its namespace',
    input: {
      service: svc({ ports: [http] }),
      gateways: [gateway('web', [{ name: 'http', protocol: 'HTTP', port: 80, hostname: 'api.example.com' }])],
      httpRoutes: [route('x', { parentRefs: [parent], rules: [{ backendRefs: [{ ...backend, namespace: 'demo' }] }] }, 'infra'), route('y', { parentRefs: [parent], rules: [{ backendRefs: [backend] }] }, 'infra')],
    },
    want: ['Gateway http http://api.example.com/'],
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const got = serviceUrls({ nodes, ...c.input }).map((u) => `${u.via} ${u.port} ${u.url}`)
    t.same(got, c.want)
  })
}

t.test('the table names how each URL gets there; no URL says why', async (t) => {
  const s = svc({ type: 'NodePort', ports: [{ ...http, nodePort: 30080 }] })
  const lines = formatServiceUrls(s, serviceUrls({ service: s, nodes: [nodes[0]!], ingresses: [ingress('demo', { rules: [{ host: 'demo.skiff.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: toDemo() }] } }] })] }))
  t.same(lines, [
    'VIA       PORT  URL                      THROUGH',
    'NodePort  http  http://10.0.0.11:30080',
    'Ingress   http  http://demo.skiff.test/  Ingress demo/demo',
  ])
  t.match(formatServiceUrls(svc({ type: 'ClusterIP', ports: [http] }), [])[0], /has no URL outside the cluster/)
})

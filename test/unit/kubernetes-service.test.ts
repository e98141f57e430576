// The default/kubernetes endpoints from the apiservers' URLs, and the
// kubelet's service variables (pure).

import t from 'tap'
import { apiserverEndpoint, kubernetesEndpoints, kubernetesServiceIP } from '../../controlplane/apiserver/kubernetes-service.ts'
import { resolveEnv, serviceEnv } from '../../node/pods/env.ts'

t.test('the Service address is the first of the range', async (t) => {
  t.equal(kubernetesServiceIP('10.96.0.0/12'), '10.96.0.1')
  t.equal(kubernetesServiceIP('172.20.0.0/16'), '172.20.0.1')
})

t.test('endpoints: IPv4 apiservers grouped by port; loopback, names and IPv6 left out', async (t) => {
  t.same(apiserverEndpoint('https://10.1.0.5:6443'), { ip: '10.1.0.5', port: 6443 })
  t.same(apiserverEndpoint('https://10.1.0.5'), { ip: '10.1.0.5', port: 443 })
  for (const u of ['https://127.0.0.1:6443', 'https://api.example:6443', 'https://[fd00::1]:6443', 'not a url']) t.equal(apiserverEndpoint(u), undefined, u)
  const e = kubernetesEndpoints(['https://10.1.0.6:6443', 'https://10.1.0.5:6443', 'https://127.0.0.1:6443', 'https://10.1.0.7:7443'])
  t.same(e.subsets, [
    { addresses: [{ ip: '10.1.0.5' }, { ip: '10.1.0.6' }], ports: [{ name: 'https', port: 6443, protocol: 'TCP' }] },
    { addresses: [{ ip: '10.1.0.7' }], ports: [{ name: 'https', port: 7443, protocol: 'TCP' }] },
  ])
  t.same(e.slices.map((s) => [s.metadata.name, (s as any).endpoints.map((x: any) => x.addresses[0]), (s as any).ports[0].port]), [
    ['kubernetes', ['10.1.0.5', '10.1.0.6'], 6443],
    ['kubernetes-7443', ['10.1.0.7'], 7443],
  ])
  t.same(kubernetesEndpoints([]), { subsets: [], slices: [] })
})

const svc = (ns: string, name: string, spec: any) => ({ metadata: { namespace: ns, name }, spec })
const api = svc('default', 'kubernetes', { clusterIP: '10.96.0.1', ports: [{ name: 'https', port: 443, protocol: 'TCP' }] })
const web = svc('shop', 'web-api', { clusterIP: '10.96.0.20', ports: [{ name: 'http', port: 80 }, { name: 'dns-udp', port: 53, protocol: 'UDP' }] })

t.test('service variables as the kubelet writes them', async (t) => {
  const env = serviceEnv([api, web, svc('shop', 'headless', { clusterIP: 'None', ports: [{ port: 1 }] }), svc('shop', 'ext', { type: 'ExternalName', externalName: 'x.example' }), svc('other', 'x', { clusterIP: '10.96.0.9', ports: [{ port: 9 }] })], 'shop', true)
  t.same(Object.fromEntries(env), {
    KUBERNETES_SERVICE_HOST: '10.96.0.1',
    KUBERNETES_SERVICE_PORT: '443',
    KUBERNETES_SERVICE_PORT_HTTPS: '443',
    KUBERNETES_PORT: 'tcp://10.96.0.1:443',
    KUBERNETES_PORT_443_TCP: 'tcp://10.96.0.1:443',
    KUBERNETES_PORT_443_TCP_PROTO: 'tcp',
    KUBERNETES_PORT_443_TCP_PORT: '443',
    KUBERNETES_PORT_443_TCP_ADDR: '10.96.0.1',
    WEB_API_SERVICE_HOST: '10.96.0.20',
    WEB_API_SERVICE_PORT: '80',
    WEB_API_SERVICE_PORT_HTTP: '80',
    WEB_API_SERVICE_PORT_DNS_UDP: '53',
    WEB_API_PORT: 'tcp://10.96.0.20:80',
    WEB_API_PORT_80_TCP: 'tcp://10.96.0.20:80',
    WEB_API_PORT_80_TCP_PROTO: 'tcp',
    WEB_API_PORT_80_TCP_PORT: '80',
    WEB_API_PORT_80_TCP_ADDR: '10.96.0.20',
    WEB_API_PORT_53_UDP: 'udp://10.96.0.20:53',
    WEB_API_PORT_53_UDP_PROTO: 'udp',
    WEB_API_PORT_53_UDP_PORT: '53',
    WEB_API_PORT_53_UDP_ADDR: '10.96.0.20',
  })
  t.same([...serviceEnv([api, web], 'shop', false).keys()].filter((k) => !k.startsWith('KUBERNETES_')), [], 'enableServiceLinks: false keeps only the API')
  t.equal(serviceEnv([svc('shop', 'kubernetes', { clusterIP: '10.96.0.30', ports: [{ port: 1 }] }), api], 'shop', true).get('KUBERNETES_SERVICE_HOST'), '10.96.0.1', 'default/kubernetes wins')
})

t.test('the container sets its own first; $(VAR) sees service variables', async (t) => {
  const pod = { metadata: { namespace: 'shop', name: 'p' }, spec: {} }
  const container = { name: 'c', env: [{ name: 'KUBERNETES_SERVICE_PORT', value: '8443' }, { name: 'URL', value: 'http://$(WEB_API_SERVICE_HOST):$(WEB_API_SERVICE_PORT)/' }] }
  const env = resolveEnv(pod, container, { configMaps: new Map(), secrets: new Map(), hostIP: '10.0.0.1', allocatable: { cpu: 1, memory: 1 }, services: [api, web] })
  t.equal(env.get('KUBERNETES_SERVICE_PORT'), '8443')
  t.equal(env.get('URL'), 'http://10.96.0.20:80/')
  t.equal(env.get('KUBERNETES_SERVICE_HOST'), '10.96.0.1')
})

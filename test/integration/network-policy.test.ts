// NetworkPolicy with real traffic: a real control plane, two in-process
// agents on Docker (each enforcing in its own nft table), probe pods on
// node 1 connecting to target pods on node 2 with nc. Each step applies
// policies and waits until the whole truth table holds (policy programming
// is asynchronous); the first step proves the probes can see "open".

import t, { type Test } from 'tap'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { netpolTableName } from '../../dataplane/network-policy/render.ts'
import { removeNetpolTable } from '../../dataplane/network-policy/enforcer.ts'
import { runCommand } from '../../dataplane/service-proxy/nftables.ts'
import { eventually } from '../../lib/net.ts'
import { ensureImages } from '../../node/images/build.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames } from '../harness/node.ts'

const pods = lookupResource('', 'v1', 'pods')!
const namespaces = lookupResource('', 'v1', 'namespaces')!
const policies = lookupResource('networking.k8s.io', 'v1', 'networkpolicies')!

const ready = (p: KubeObject) => (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')

function pod(name: string, node: string, labels: Record<string, string>, env: Record<string, string> = {}) {
  return {
    metadata: { name, labels },
    spec: {
      nodeName: node,
      terminationGracePeriodSeconds: 1,
      containers: [{
        name: 'echo', image: 'skiff/echo:local',
        env: Object.entries(env).map(([name, value]) => ({ name, value })),
        ports: [{ name: 'http', containerPort: 8080 }, { name: 'echo', containerPort: 9000 }, { name: 'dns', containerPort: 53, protocol: 'UDP' }],
        readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1 },
      }],
    },
  }
}

t.test('NetworkPolicy enforced by real nodes', async (t) => {
  await ensureImages({ progress: null })
  const net = await pickClusterCIDR()
  const names = testNodeNames(2, 'np')
  const c = await startTestCluster(t, { identities: nodeIdentities(names), controllers: { clusterCIDR: net.clusterCIDR } })
  t.teardown(async () => { for (const n of names) await removeNetpolTable(n).catch(() => undefined) })
  const [n1, n2] = [await startTestNode(t, c, { name: names[0]!, clusterCIDR: net.clusterCIDR }), await startTestNode(t, c, { name: names[1]!, clusterCIDR: net.clusterCIDR })]
  for (const n of names) t.equal((await runCommand('nft', ['list', 'chain', 'inet', netpolTableName(n), 'forward'])).code, 0, `table ${netpolTableName(n)} of ${n} exists`)

  for (const [ns, labels] of [['np-a', { team: 'a' }], ['np-b', { team: 'b' }], ['np-c', {}]] as const) await c.client.create(namespaces, undefined, { metadata: { name: ns, labels } })
  const layout: Array<[string, string, string, Record<string, string>, Record<string, string>?]> = [
    ['np-a', 'target', n2.name, { app: 'target' }, { UDP_PORT: '53' }],
    ['np-b', 'client', n1.name, { role: 'client' }],
    ['np-b', 'other', n1.name, {}],
    ['np-c', 'client', n1.name, { role: 'client' }],
  ]
  for (const [ns, name, node, labels, env] of layout) await c.client.create(pods, ns, pod(name, node, labels, env))
  const ip: Record<string, string> = {}
  await eventually(async () => {
    for (const [ns, name] of layout) {
      const p = await c.client.get(pods, ns, name)
      if (!ready(p)) return false
      ip[`${ns}/${name}`] = p.status.podIP
    }
    return true
  }, { timeout: 120_000, what: 'all pods ready' })
  const target = ip['np-a/target']!

  /**
   * From a probe pod, every `proto:port` to the target at once (node in the echo image: busybox nc has no UDP):
   * TCP 'ok' when the connection is established, UDP 'ok' when the echo comes back; 'no' after 2 s.
   */
  const probe = async (from: string, cells: string[]): Promise<Record<string, string>> => {
    const [ns, name] = from.split('/')
    const js = `const net=require('net'),dgram=require('dgram');const cells=${JSON.stringify(cells)};const out={};let left=cells.length;
const done=(c,v)=>{if(c in out)return;out[c]=v;if(--left===0){console.log(JSON.stringify(out));process.exit(0)}};
for(const c of cells){const [proto,port]=c.split(':');setTimeout(()=>done(c,'no'),2000);
if(proto==='udp'){const s=dgram.createSocket('udp4');s.on('message',()=>{done(c,'ok');s.close()});s.on('error',()=>done(c,'no'));s.send('ping',Number(port),'${target}')}
else{const k=net.connect(Number(port),'${target}');k.on('connect',()=>{done(c,'ok');k.destroy()});k.on('error',()=>done(c,'no'))}}`
    const r = await c.kubectl(['exec', '-n', ns!, name!, '--', 'node', '-e', js], { allowFail: true, timeoutMs: 30_000 })
    try { return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') } catch { return {} }
  }
  /** Wait until every probe pod sees exactly `want` (probe → cell → ok/no). */
  const expect = async (t: Test, want: Record<string, Record<string, 'ok' | 'no'>>) => {
    let last: Record<string, Record<string, string>> = {}
    const holds = () => Object.entries(want).every(([f, cells]) => Object.entries(cells).every(([k, v]) => last[f]?.[k] === v))
    await eventually(async () => {
      last = Object.fromEntries(await Promise.all(Object.keys(want).map(async (from) => [from, await probe(from, Object.keys(want[from]!))] as const)))
      return holds()
    }, { timeout: 60_000, interval: 500, what: `truth table ${JSON.stringify(want)}` }).catch((e: Error) => t.fail(`${e.message}; last seen ${JSON.stringify(last)}`))
    t.same(last, want, JSON.stringify(want))
  }
  const setPolicies = async (list: Array<{ name: string; namespace?: string; spec: object }>) => {
    for (const ns of ['np-a', 'np-b']) for (const p of (await c.client.list(policies, ns)).items) await c.client.delete(policies, ns, p.metadata.name!)
    for (const p of list) await c.client.create(policies, p.namespace ?? 'np-a', { metadata: { name: p.name }, spec: p.spec })
  }
  const all = (v: 'ok' | 'no') => ({ 'tcp:9000': v })

  await t.test('no policy: every probe reaches the target', async (t) => {
    await expect(t, { 'np-b/client': { 'tcp:9000': 'ok', 'tcp:8080': 'ok', 'udp:53': 'ok' }, 'np-b/other': all('ok'), 'np-c/client': all('ok') })
  })

  await t.test('default deny ingress: nobody reaches the target; kubelet probes still do', async (t) => {
    await setPolicies([{ name: 'deny', spec: { podSelector: {} } }])
    await expect(t, { 'np-b/client': { 'tcp:9000': 'no', 'udp:53': 'no' }, 'np-b/other': all('no'), 'np-c/client': all('no') })
    t.ok(ready(await c.client.get(pods, 'np-a', 'target')), 'target stays Ready (probes come from its node)')
  })

  await t.test('allow from a namespace (namespaceSelector)', async (t) => {
    await setPolicies([{ name: 'deny', spec: { podSelector: {} } }, { name: 'from-b', spec: { podSelector: { matchLabels: { app: 'target' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'b' } } }] }] } }])
    await expect(t, { 'np-b/client': all('ok'), 'np-b/other': all('ok'), 'np-c/client': all('no') })
     const got = await c.kubectl(['get', 'netpol', '-n', 'np-a'])
    t.match(got.stdout, /^NAME\s+POD-SELECTOR\s+AGE\n/, 'kubectl get netpol columns')
    t.match(got.stdout, /\nfrom-b\s+app=target\s+\d+s\n/)
    const bad = await c.kubectl(['apply', '-n', 'np-a', '-f', '-'], { allowFail: true, stdin: 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: bad}\nspec:\n  podSelector: {}\n  ingress: [{ports: [{port: http, endPort: 90}]}]\n' })
    t.match(bad.stderr, 'spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric')
  })

  await t.test('allow from pods with a label in a namespace with a label; a label change flips it', async (t) => {
    await setPolicies([{ name: 'from-b-clients', spec: { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'b' } }, podSelector: { matchLabels: { role: 'client' } } }] }] } }])
    await expect(t, { 'np-b/client': all('ok'), 'np-b/other': all('no'), 'np-c/client': all('no') })
    await c.client.patch(pods, 'np-b', 'other', { metadata: { labels: { role: 'client' } } }, 'application/merge-patch+json')
    await expect(t, { 'np-b/other': all('ok') })
    await c.client.patch(pods, 'np-b', 'other', { metadata: { labels: { role: null } } }, 'application/merge-patch+json')
    await expect(t, { 'np-b/other': all('no') })
  })

  await t.test('named port and endPort range', async (t) => {
    await setPolicies([{ name: 'named', spec: { podSelector: {}, ingress: [{ ports: [{ port: 'echo' }] }] } }])
    await expect(t, { 'np-c/client': { 'tcp:9000': 'ok', 'tcp:8080': 'no', 'udp:53': 'no' } })
    await setPolicies([{ name: 'range', spec: { podSelector: {}, ingress: [{ ports: [{ port: 8000, endPort: 8100 }, { protocol: 'UDP', port: 53 }] }] } }])
    await expect(t, { 'np-c/client': { 'tcp:9000': 'no', 'tcp:8080': 'ok', 'udp:53': 'ok' } })
  })

  await t.test('ipBlock with except', async (t) => {
    await setPolicies([{ name: 'block', spec: { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: n1.podCIDR, except: [`${ip['np-b/client']}/32`] } }] }] } }])
    await expect(t, { 'np-b/client': all('no'), 'np-b/other': all('ok'), 'np-c/client': all('ok') })
  })

  await t.test('deny egress except DNS (UDP 53)', async (t) => {
    await setPolicies([{ name: 'dns-only', namespace: 'np-b', spec: { podSelector: { matchLabels: { role: 'client' } }, policyTypes: ['Egress'], egress: [{ ports: [{ protocol: 'UDP', port: 53 }] }] } }])
    await expect(t, { 'np-b/client': { 'tcp:9000': 'no', 'tcp:8080': 'no', 'udp:53': 'ok' }, 'np-b/other': all('ok'), 'np-c/client': all('ok') })
    const r = await c.kubectl(['exec', '-n', 'np-b', 'client', '--', 'nslookup', 'kubernetes.default.svc.cluster.local'], { allowFail: true, timeoutMs: 30_000 })
    t.equal(r.code, 0, `nslookup succeeded: ${r.stdout}${r.stderr}`)
    t.match(r.stdout, /Name:\s+kubernetes\.default\.svc\.cluster\.local/, 'cluster DNS answers through the egress policy')
  })

  await t.test('metrics: syncs, rules and programming latency', async (t) => {
    const text = await n2.agent.metrics.registry.metrics()
    t.match(text, /skiff_netpol_syncs_total \d+/)
    t.match(text, /skiff_netpol_network_programming_duration_seconds_count [1-9]/)
    t.match(text, /skiff_netpol_rules \d+/)
  })

  await t.test('stop with removePods removes the table', async (t) => {
    await n1.agent.stop({ removePods: true })
    t.not((await runCommand('nft', ['list', 'chain', 'inet', netpolTableName(n1.name), 'forward'])).code, 0)
  })
})

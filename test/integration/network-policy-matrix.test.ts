// The upstream NetworkPolicy e2e truth tables (kubernetes/kubernetes
// test/e2e/network/netpol/network_policy.go) on Skiff's real data plane: a
// real control plane, two in-process agents on Docker (each enforcing in
// its own nft table), namespaces x, y, z with pods a, b, c each. Every case
// creates its policies, then probes from each of the 9 pods to the other 8
// (one `kubectl exec` per pod, all targets and ports at once) until the
// observed table equals the expected one written by hand (upstream's
// Reachability: a default, then Expect* overrides), checks it once more and
// prints the tables on a mismatch. Policies are deleted after every case.
//
// Pods and nodes (both same-node and cross-node pairs in every namespace pair):
//   node 1: x/a x/c y/b z/a z/c        node 2: x/b y/a y/c z/b
// Each pod runs skiff/echo with HTTP on TCP 80 (serve-80-tcp), the TCP echo
// on 81 (serve-81-tcp) and the UDP echo on 80 (serve-80-udp). SCTP is not
// probed (the echo server has none); the SCTP case probes TCP, as upstream's.

import t, { type Test } from 'tap'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { netpolTableName } from '../../dataplane/network-policy/render.ts'
import { removeNetpolTable } from '../../dataplane/network-policy/enforcer.ts'
import { runCommand } from '../../dataplane/service-proxy/nftables.ts'
import { eventually } from '../../lib/net.ts'
import { ensureImages } from '../../node/images/build.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { compareReachability, describeMismatch, parseProbeOutput, probeScript, Reachability, type Observed, type ProbeCell } from '../harness/netpol-matrix.ts'
import { nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames } from '../harness/node.ts'

const podsInfo = lookupResource('', 'v1', 'pods')!
const namespacesInfo = lookupResource('', 'v1', 'namespaces')!
const servicesInfo = lookupResource('', 'v1', 'services')!
const policiesInfo = lookupResource('networking.k8s.io', 'v1', 'networkpolicies')!

const namespaces = ['x', 'y', 'z']
/** pod → node index (0 or 1). */
const placement: Record<string, 0 | 1> = {
  'x/a': 0, 'x/b': 1, 'x/c': 0,
  'y/a': 1, 'y/b': 0, 'y/c': 1,
  'z/a': 0, 'z/b': 1, 'z/c': 0,
}
const allPods = Object.keys(placement)
const merge = 'application/merge-patch+json'

const ready = (p: KubeObject) => (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')

function podManifest(name: string, node: string) {
  return {
    metadata: { name, labels: { pod: name } },
    spec: {
      nodeName: node,
      terminationGracePeriodSeconds: 1,
      containers: [{
        name: 'echo', image: 'skiff/echo:local',
        env: [{ name: 'PORT', value: '80' }, { name: 'TCP_PORT', value: '81' }, { name: 'UDP_PORT', value: '80' }],
        ports: [
          { name: 'serve-80-tcp', containerPort: 80 },
          { name: 'serve-81-tcp', containerPort: 81 },
          { name: 'serve-80-udp', containerPort: 80, protocol: 'UDP' },
        ],
        readinessProbe: { httpGet: { path: '/ready', port: 'serve-80-tcp' }, periodSeconds: 1 },
      }],
    },
  }
}

interface Policy { namespace: string; name: string; spec: object }
const reach = (def = true) => new Reachability(allPods, def)

t.test('NetworkPolicy truth tables (upstream netpol e2e) on the real data plane', async (t) => {
  const started = performance.now()
  await ensureImages({ progress: null })
  const net = await pickClusterCIDR()
  const names = testNodeNames(2, 'npm')
  const c = await startTestCluster(t, { identities: nodeIdentities(names), controllers: { clusterCIDR: net.clusterCIDR } })
  t.teardown(async () => { for (const n of names) await removeNetpolTable(n).catch(() => undefined) })
  const nodes = [await startTestNode(t, c, { name: names[0]!, clusterCIDR: net.clusterCIDR }), await startTestNode(t, c, { name: names[1]!, clusterCIDR: net.clusterCIDR })]

  for (const ns of namespaces) await c.client.create(namespacesInfo, undefined, { metadata: { name: ns, labels: { ns } } })
  // Namespaces and pods are not deleted at the end: the agents remove every container and the cluster's redis
  // goes (deleting a namespace while the agents stop would leave its pods marked, and the apiserver's stop waits for that).
  await Promise.all(allPods.map((k) => {
    const [ns, name] = k.split('/') as [string, string]
    return c.client.create(podsInfo, ns, podManifest(name, nodes[placement[k]!]!.name))
  }))
  const svc: Record<string, string> = {}
  for (const p of ['a', 'b']) {
    const s = await c.client.create(servicesInfo, 'y', { metadata: { name: `s-${p}` }, spec: { selector: { pod: p }, ports: [{ name: 'http', port: 80, targetPort: 80 }] } })
    svc[`s-${p}`] = s.spec.clusterIP
  }
  const ip: Record<string, string> = {}
  await eventually(async () => {
    for (const k of allPods) {
      const [ns, name] = k.split('/') as [string, string]
      const p = await c.client.get(podsInfo, ns, name)
      if (!ready(p)) return false
      ip[k] = p.status.podIP
    }
    return true
  }, { timeout: 120_000, interval: 500, what: 'all 9 pods ready' })
  t.comment(`pods ready after ${Math.round(performance.now() - started)} ms; ${JSON.stringify(ip)}`)

  /** From `from`, every target × cell at once; cell → target → reachable ({} when the exec failed). */
  const probeFrom = async (from: string, targets: Array<{ name: string; ip: string }>, cells: ProbeCell[], timeoutMs?: number) => {
    const [ns, name] = from.split('/') as [string, string]
    const r = await c.kubectl(['exec', '-n', ns, name, '--', 'node', '-e', probeScript(targets, cells, timeoutMs)], { allowFail: true, timeoutMs: 30_000 })
    return parseProbeOutput(r.stdout) ?? {}
  }
  /** One full matrix per cell: every pod to every other pod (loopback is not probed). */
  const probeMatrix = async (cells: ProbeCell[]): Promise<Record<string, Observed>> => {
    const out: Record<string, Observed> = Object.fromEntries(cells.map((cell) => [cell, {}]))
    await Promise.all(allPods.map(async (from) => {
      const seen = await probeFrom(from, allPods.filter((p) => p !== from).map((p) => ({ name: p, ip: ip[p]! })), cells)
      for (const cell of cells) out[cell]![from] = seen[cell] ?? {}
    }))
    return out
  }
  /**
   * Wait until every cell's observed matrix equals its expected one (programming is asynchronous),
   * then probe once more and assert; the tables are printed on a mismatch. Returns the ms waited.
   */
  const validate = async (t: Test, want: Partial<Record<ProbeCell, Reachability>>): Promise<number> => {
    const cells = Object.keys(want) as ProbeCell[]
    const t0 = performance.now()
    let last: Record<string, Observed> = {}
    const holds = () => cells.every((cell) => compareReachability(want[cell]!, last[cell] ?? {}).length === 0)
    const ok = await eventually(async () => {
      last = await probeMatrix(cells)
      return holds()
    }, { timeout: 60_000, interval: 0, what: `truth tables ${cells.join(', ')}` }).then(() => true, () => false)
    const waited = performance.now() - t0
    if (ok) {
      last = await probeMatrix(cells)
      // A pair that should connect but did not within the probe's 1 s may be this 2-core machine under load (CI runs
      // two files at once): those pairs alone are probed again, at most twice, with 5 s. A pair that connects where
      // it must not is never retried, and a pair that stays closed still fails.
      for (let retry = 0; retry < 2; retry++) {
        const missed = cells.flatMap((cell) => compareReachability(want[cell]!, last[cell] ?? {}).map((m) => ({ cell, ...m })))
        if (missed.length === 0 || missed.some((m) => m.expected !== true)) break
        t.comment(`probing again with 5 s: ${missed.map((m) => `${m.cell} ${m.from} -> ${m.to}`).join(', ')}`)
        await Promise.all([...new Set(missed.map((m) => m.from))].map(async (from) => {
          const mine = missed.filter((m) => m.from === from)
          const seen = await probeFrom(from, [...new Set(mine.map((m) => m.to))].map((to) => ({ name: to, ip: ip[to]! })), [...new Set(mine.map((m) => m.cell))], 5_000)
          for (const m of mine) {
            const got = seen[m.cell]?.[m.to]
            if (got !== undefined) last[m.cell]![from] = { ...last[m.cell]![from], [m.to]: got }
          }
        }))
      }
    }
    for (const cell of cells) {
      const wrong = compareReachability(want[cell]!, last[cell] ?? {})
      t.same(wrong, [], `${cell}: observed = expected${ok ? '' : ' (never held within 60 s)'}`)
      if (wrong.length) t.comment(describeMismatch(cell, want[cell]!, last[cell] ?? {}))
    }
    return waited
  }
  /** Wait until TCP 80 to the ClusterIPs of s-a (backend y/a) and s-b (backend y/b) from each pod is as `want` says, then assert it. */
  const expectServices = async (t: Test, want: Record<string, { 's-a': boolean; 's-b': boolean }>, message: string) => {
    const services = [{ name: 's-a', ip: svc['s-a']! }, { name: 's-b', ip: svc['s-b']! }]
    let seen: Record<string, Record<string, boolean>> = {}
    await eventually(async () => {
      seen = Object.fromEntries(await Promise.all(Object.keys(want).map(async (from) => [from, (await probeFrom(from, services, ['tcp:80']))['tcp:80'] ?? {}] as const)))
      return JSON.stringify(seen) === JSON.stringify(want)
    }, { timeout: 30_000, interval: 0 }).catch(() => undefined)
    t.same(seen, want, message)
  }
  const createPolicies = async (list: Policy[]) => {
    for (const p of list) await c.client.create(policiesInfo, p.namespace, { metadata: { name: p.name }, spec: p.spec })
  }
  /** Whether neither node's table has an isolated pod's chain left. */
  const tablesEmpty = async () => {
    for (const n of names) {
      const r = await runCommand('nft', ['list', 'table', 'inet', netpolTableName(n)])
      if (r.code !== 0 || /chain (in|eg)-[0-9a-f]{12} /.test(r.stdout)) return false
    }
    return true
  }
  /** Delete every policy (also after a failed case) and wait until both nodes dropped their rules. */
  const cleanPolicies = async () => {
    for (const ns of namespaces) for (const p of (await c.client.list(policiesInfo, ns)).items) await c.client.delete(policiesInfo, ns, p.metadata.name!).catch(() => undefined)
    await eventually(tablesEmpty, { timeout: 30_000, interval: 100, what: 'no isolated pod left in either node table' })
  }
  /** A case: its body, then the policies are removed whatever happened. */
  const netpolCase = (name: string, fn: (t: Test) => Promise<void>) =>
    t.test(name, async (t) => {
      try { await fn(t) } finally { await cleanPolicies() }
    })

  await netpolCase('no policy: every pod reaches every pod (the probes see "open")', async (t) => {
    t.ok(await tablesEmpty(), 'both tables hold no isolated pod')
    await validate(t, { 'tcp:80': reach(), 'tcp:81': reach(), 'udp:80': reach() })
  })

  await netpolCase("should support a 'default-deny-ingress' policy (TCP and UDP)", async (t) => {
    await createPolicies([{ namespace: 'x', name: 'deny-ingress', spec: { podSelector: {} } }])
    const r = reach().expectPeer({}, { namespace: 'x' }, false)
    await validate(t, { 'tcp:80': r, 'udp:80': r })
    t.notOk(await tablesEmpty(), 'the isolated pods have chains (so the clean-up wait between cases is not vacuous)')
  })

  await netpolCase("should support a 'default-deny-all' policy", async (t) => {
    await createPolicies([{ namespace: 'x', name: 'deny-all', spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] } }])
    const r = reach().expectPeer({}, { namespace: 'x' }, false).expectPeer({ namespace: 'x' }, {}, false)
    await validate(t, { 'tcp:80': r })
  })

  await netpolCase('should enforce multiple ingress policies with ingress allow-all policy taking precedence', async (t) => {
    await createPolicies([{ namespace: 'x', name: 'allow-ingress-port-80', spec: { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] } }])
    await validate(t, { 'tcp:81': reach().expectPeer({}, { namespace: 'x' }, false), 'tcp:80': reach() })
    await createPolicies([{ namespace: 'x', name: 'allow-ingress', spec: { podSelector: {}, ingress: [{}] } }])
    await validate(t, { 'tcp:81': reach() })
  })

  await netpolCase('should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector', async (t) => {
    await createPolicies([{ namespace: 'x', name: 'allow-client-a-via-ns-selector', spec: { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] } }])
    const r = reach().expectPeer({ namespace: 'x' }, { namespace: 'x', pod: 'a' }, false).expectPeer({ namespace: 'z' }, { namespace: 'x', pod: 'a' }, false)
    await validate(t, { 'tcp:80': r })
  })

  await netpolCase('should enforce policy based on PodSelector and NamespaceSelector', async (t) => {
    await createPolicies([{
      namespace: 'x', name: 'allow-ns-y-podselector-and-nsselector',
      spec: { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'NotIn', values: ['x'] }] }, podSelector: { matchLabels: { pod: 'b' } } }] }] },
    }])
    const r = reach().expectAllIngress('x/a', false).expect('y/b', 'x/a', true).expect('z/b', 'x/a', true)
    await validate(t, { 'tcp:80': r })
  })

  await netpolCase('should enforce policy based on PodSelector or NamespaceSelector', async (t) => {
    await createPolicies([{
      namespace: 'x', name: 'allow-ns-y-match-selector',
      spec: { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'NotIn', values: ['x'] }] } }, { podSelector: { matchLabels: { pod: 'b' } } }] }] },
    }])
    const r = reach().expect('x/a', 'x/a', false).expect('x/c', 'x/a', false)
    await validate(t, { 'tcp:80': r })
  })

  await netpolCase('should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector (TCP and UDP)', async (t) => {
    await createPolicies([{
      namespace: 'x', name: 'allow-ns-y-pod-a-via-namespace-pod-selector',
      spec: { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'a' } } }] }] },
    }])
    const r = reach().expectAllIngress('x/a', false).expect('y/a', 'x/a', true)
    await validate(t, { 'tcp:80': r, 'udp:80': r })
  })

  await netpolCase('should deny egress from all pods in a namespace, except DNS and an allowed Service backend', async (t) => {
    await createPolicies([{
      namespace: 'x', name: 'deny-egress-but-dns',
      spec: {
        podSelector: {}, policyTypes: ['Egress'],
        egress: [
          { ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] },
          { to: [{ namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'a' } } }], ports: [{ protocol: 'TCP', port: 80 }] },
        ],
      },
    }])
    await validate(t, {
      'tcp:80': reach().expectPeer({ namespace: 'x' }, {}, false).expectPeer({ namespace: 'x' }, { namespace: 'y', pod: 'a' }, true),
      'tcp:81': reach().expectPeer({ namespace: 'x' }, {}, false),
    })
    // Both nodes: x/a is on node 1, x/b on node 2 (each resolves through its own node's DNS).
    for (const from of ['x/a', 'x/b']) {
      const [ns, name] = from.split('/') as [string, string]
      const r = await c.kubectl(['exec', '-n', ns, name, '--', 'nslookup', 's-a.y.svc.cluster.local'], { allowFail: true, timeoutMs: 30_000 })
      t.equal(r.code, 0, `${from}: nslookup succeeded: ${r.stdout}${r.stderr}`)
      t.match(r.stdout, new RegExp(`Name:\\s+s-a\\.y\\.svc\\.cluster\\.local\\s+Address:\\s+${svc['s-a']!.replaceAll('.', '\\.')}`), `${from}: the Service's cluster DNS name resolves through the egress policy`)
    }
    await expectServices(t, { 'x/a': { 's-a': true, 's-b': false }, 'x/b': { 's-a': true, 's-b': false }, 'z/a': { 's-a': true, 's-b': true } },
      'ClusterIP s-a (backend y/a, allowed) works from x, s-b (backend y/b) does not; from z both work')
  })

  await netpolCase('Service traffic obeys the backend pod\'s ingress policy (ClusterIP from both nodes)', async (t) => {
    await createPolicies([{ namespace: 'y', name: 'deny-ingress-to-b', spec: { podSelector: { matchLabels: { pod: 'b' } } } }])
    await validate(t, { 'tcp:80': reach().expectAllIngress('y/b', false) })
    // x/a is on y/b's node, x/b and z/b on the other one.
    const open = { 's-a': true, 's-b': false }
    await expectServices(t, { 'x/a': open, 'x/b': open, 'z/b': open }, 'through its ClusterIP y/b is as closed as directly; s-a (y/a) stays open')
  })

  await netpolCase('should enforce except clause while egress access to server in CIDR block; should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed', async (t) => {
    const xb = ip['x/b']!
    const large = `${Number(xb.split('.')[0]) & 0xf0}.0.0.0/4` // upstream's makeLargeCIDRForIP
    const select = { matchLabels: { pod: 'a' } }
    await createPolicies([{ namespace: 'x', name: 'allow-client-a-via-cidr-egress-rule', spec: { podSelector: select, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: large, except: [`${xb}/32`] } }] }] } }])
    await validate(t, { 'tcp:80': reach().expect('x/a', 'x/b', false) })
    const current = await c.client.get(policiesInfo, 'x', 'allow-client-a-via-cidr-egress-rule')
    await c.client.update(policiesInfo, { ...current, spec: { podSelector: select, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: `${xb}/32` } }] }] } })
    await validate(t, { 'tcp:80': reach().expectAllEgress('x/a', false).expect('x/a', 'x/b', true) })
  })

  await netpolCase('should allow ingress access on one named port', async (t) => {
    await createPolicies([{ namespace: 'x', name: 'allow-all', spec: { podSelector: {}, ingress: [{ ports: [{ port: 'serve-81-tcp' }] }] } }])
    const closed = reach().expectPeer({}, { namespace: 'x' }, false)
    await validate(t, { 'tcp:81': reach(), 'tcp:80': closed, 'udp:80': closed })
  })

  await netpolCase('should allow egress access on one named port', async (t) => {
    await createPolicies([{ namespace: 'x', name: 'allow-egress', spec: { podSelector: {}, policyTypes: ['Egress'], egress: [{ ports: [{ port: 'serve-80-tcp' }] }] } }])
    const closed = reach().expectPeer({ namespace: 'x' }, {}, false)
    await validate(t, { 'tcp:80': reach(), 'tcp:81': closed, 'udp:80': closed })
  })

  await netpolCase('should enforce policy based on Ports, with an endPort range', async (t) => {
    await createPolicies([{
      namespace: 'x', name: 'allow-ns-y-ports-79-80',
      spec: { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], ports: [{ protocol: 'TCP', port: 79, endPort: 80 }] }] },
    }])
    await validate(t, {
      'tcp:80': reach().expectPeer({ namespace: 'x' }, { namespace: 'x', pod: 'a' }, false).expectPeer({ namespace: 'z' }, { namespace: 'x', pod: 'a' }, false),
      'tcp:81': reach().expectAllIngress('x/a', false),
    })
  })

  await netpolCase("should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP", async (t) => {
    await createPolicies([
      { namespace: 'x', name: 'deny-ingress', spec: { podSelector: {} } },
      { namespace: 'x', name: 'allow-only-sctp-ingress-on-port-81', spec: { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ ports: [{ port: 81, protocol: 'SCTP' }] }] } },
    ])
    await validate(t, { 'tcp:81': reach().expectPeer({}, { namespace: 'x' }, false) })
  })

  await netpolCase('should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)', async (t) => {
    const fromXA = { ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'x' } }, podSelector: { matchLabels: { pod: 'a' } } }] }] }
    await createPolicies([
      { namespace: 'x', name: 'allow-to-ns-y-pod-a', spec: { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'a' } } }] }] } },
      { namespace: 'y', name: 'allow-from-xa-on-ya-match-selector', spec: { podSelector: { matchLabels: { pod: 'a' } }, ...fromXA } },
      { namespace: 'y', name: 'allow-from-xa-on-yb-match-selector', spec: { podSelector: { matchLabels: { pod: 'b' } }, ...fromXA } },
    ])
    const r = reach()
      .expectPeer({ namespace: 'x', pod: 'a' }, {}, false)
      .expectPeer({}, { namespace: 'y', pod: 'a' }, false)
      .expectPeer({ namespace: 'x', pod: 'a' }, { namespace: 'y', pod: 'a' }, true)
      .expectPeer({}, { namespace: 'y', pod: 'b' }, false)
    await validate(t, { 'tcp:80': r })
  })

  await netpolCase('should allow ingress access from updated pod (a pod label change flips the table)', async (t) => {
    t.teardown(() => c.client.patch(podsInfo, 'x', 'b', { metadata: { labels: { pod2: null } } }, merge).then(() => undefined, () => undefined))
    await createPolicies([{ namespace: 'x', name: 'allow-client-a-via-pod-selector', spec: { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b', pod2: 'updated' } } }] }] } }])
    await validate(t, { 'tcp:80': reach().expectAllIngress('x/a', false) })
    await c.client.patch(podsInfo, 'x', 'b', { metadata: { labels: { pod2: 'updated' } } }, merge)
    const ms = await validate(t, { 'tcp:80': reach().expectAllIngress('x/a', false).expect('x/b', 'x/a', true) })
    t.comment(`pod label change → table observed flipped in ${Math.round(ms)} ms (probe rounds included)`)
  })

  await netpolCase('should allow ingress access from updated namespace (a namespace label change flips the table)', async (t) => {
    t.teardown(() => c.client.patch(namespacesInfo, undefined, 'y', { metadata: { labels: { ns2: null } } }, merge).then(() => undefined, () => undefined))
    await createPolicies([{ namespace: 'x', name: 'allow-client-a-via-ns-selector', spec: { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns2: 'updated' } } }] }] } }])
    await validate(t, { 'tcp:80': reach().expectAllIngress('x/a', false) })
    await c.client.patch(namespacesInfo, undefined, 'y', { metadata: { labels: { ns2: 'updated' } } }, merge)
    const ms = await validate(t, { 'tcp:80': reach().expectAllIngress('x/a', false).expectPeer({ namespace: 'y' }, { namespace: 'x', pod: 'a' }, true) })
    t.comment(`namespace label change → table observed flipped in ${Math.round(ms)} ms (probe rounds included)`)
  })

  await netpolCase('should stop enforcing policies after they are deleted', async (t) => {
    await createPolicies([{ namespace: 'x', name: 'deny-all', spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] } }])
    await validate(t, { 'tcp:80': reach().expectPeer({ namespace: 'x' }, {}, false).expectPeer({}, { namespace: 'x' }, false) })
    await c.client.delete(policiesInfo, 'x', 'deny-all')
    await validate(t, { 'tcp:80': reach(), 'udp:80': reach() })
  })

  t.comment(`file wall time ${Math.round((performance.now() - started) / 1000)} s`)
})

// The nftables backend: the rendered full transaction, the partial-sync
// planner and the UDP conntrack entries a change makes stale (pure, table
// tests); the full script is checked by the real nft in check mode, and
// partial transactions are applied to a real table of a unique test node
// (removed in teardown) and compared with a freshly replaced table.

import t from 'tap'
import { buildNftModel, chooseSyncMode, nftTableName, planNftSync, renderFull, renderNftables, servicePortHash } from '../../dataplane/service-proxy/nftables-render.ts'
import { NftablesBackend, NftShell, removeServiceProxyTable, runCommand, staleFlows } from '../../dataplane/service-proxy/nftables.ts'
import { buildRoutingTable } from '../../dataplane/service-proxy/table.ts'
import { eventually } from '../../lib/net.ts'
import { flows, node1, service, slice } from '../conformance/service-proxy.ts'

/** Every conformance flow's Services in one table, each with its own ClusterIP. */
function everything() {
  const services = flows.flatMap((f, i) => f.services.map((s) => ({ ...s, metadata: { ...s.metadata, name: `s${i}` }, spec: { ...s.spec, clusterIP: s.spec.clusterIP === 'None' ? 'None' : `10.96.1.${i}` } })))
  const slices = flows.flatMap((f, i) => f.slices.map((s) => ({ ...s, metadata: { ...s.metadata, name: `s${i}-${s.metadata.name}`, labels: { 'kubernetes.io/service-name': `s${i}` } } })))
  return buildRoutingTable(services, slices, node1, 3)
}

t.test('one transaction that replaces only our table', async (t) => {
  const name = nftTableName('n1')
  t.match(name, /^skiff-[0-9a-f]{9}$/)
  const { script, rules } = renderNftables(everything(), name)
  const lines = script.split('\n')
  t.same(lines.slice(0, 3), [`add table ip ${name}`, `delete table ip ${name}`, `table ip ${name} {`])
  t.notOk(lines.some((l) => /^(add|delete|flush|table)\b/.test(l) && !l.includes(name)), 'no other table is named')
  t.ok(rules > 50, `${rules} rules`)
  t.notMatch(script, /10\.96\.0\.10/, 'no DNS rule without a node DNS server')
})

t.test('the cluster DNS address goes to the node DNS server', async (t) => {
  const table = buildRoutingTable([], [], { ...node1, dns: { ip: '10.96.0.10', target: '10.244.1.1', port: 53 } }, 1)
  const { script } = renderNftables(table, 'skiff-dnscheck')
  const dnat = 'ip daddr 10.96.0.10 meta l4proto { tcp, udp } th dport 53 dnat to 10.244.1.1:53'
  t.match(script, `ip saddr ${node1.podCIDR} ${dnat}`, 'pods of this node')
  t.match(script, new RegExp(`chain nat-output \\{[^}]*${dnat.replace(/[.{}]/g, (c) => '\\' + c)}`), 'the host')
})

t.test('the real nft accepts the script (check mode)', async (t) => {
  const { script } = renderNftables(everything(), 'skiff-unitcheck')
  const r = await runCommand('nft', ['-c', '-f', '-'], script)
  t.equal(r.code, 0, r.stderr)
})

t.test('empty table', async (t) => {
  const { script } = renderNftables(buildRoutingTable([], [], node1, 1), 'skiff-empty')
  const r = await runCommand('nft', ['-c', '-f', '-'], script)
  t.equal(r.code, 0, r.stderr)
})

t.test('stale conntrack entries', async (t) => {
  const svc = service('dns', { clusterIP: '10.96.0.53', ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] })
  const udp = [{ name: 'dns', port: 5353, protocol: 'UDP' as const }]
  const two = buildRoutingTable([svc], [slice('dns', [{ ip: '10.244.1.5' }, { ip: '10.244.1.6' }], udp)], node1, 1)
  const one = buildRoutingTable([svc], [slice('dns', [{ ip: '10.244.1.6' }], udp)], node1, 2)
  const none = buildRoutingTable([svc], [slice('dns', [], udp)], node1, 3)
  t.same(staleFlows(undefined, two), [], 'first apply: nothing known')
  t.same(staleFlows(two, one), [{ protocol: 'udp', dst: '10.96.0.53', port: 53, endpoint: '10.244.1.5' }], 'UDP: a removed endpoint')
  t.same(staleFlows(one, none), [{ protocol: 'udp', dst: '10.96.0.53', port: 53, endpoint: '10.244.1.6' }], 'UDP: the last endpoint')
  t.same(staleFlows(none, one), [{ protocol: 'udp', dst: '10.96.0.53', port: 53 }], 'UDP: endpoints again, rejected entries go')
  t.same(staleFlows(one, one), [], 'no change')
  const web = (eps: string[], rev: number) => buildRoutingTable([service('web', { clusterIP: '10.96.0.20' })], [slice('web', eps.map((ip) => ({ ip })))], node1, rev)
  t.same(staleFlows(web(['10.244.1.5', '10.244.2.5'], 1), web(['10.244.2.5'], 2)), [{ protocol: 'tcp', dst: '10.96.0.20', port: 80, endpoint: '10.244.1.5', state: 'SYN_SENT' }],
    'TCP: only the unanswered connection attempts towards a removed endpoint')
  t.same(staleFlows(web([], 1), web(['10.244.1.5'], 2)), [], 'TCP: nothing when endpoints come')
})

// Partial syncs: the planner (pure) and real partial transactions.

const web = (eps: string[], spec: Record<string, unknown> = {}) => ({
  services: [service('web', { clusterIP: '10.96.0.20', ...spec }), service('db', { clusterIP: '10.96.0.30', type: 'NodePort', ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }] })],
  slices: [slice('web', eps.map((ip) => ({ ip, node: 'n1' }))), slice('db', [{ ip: '10.244.1.9', node: 'n1' }])],
})
const tableOf = (x: ReturnType<typeof web>, gen = 1) => buildRoutingTable(x.services, x.slices, node1, gen)
const modelOf = (x: ReturnType<typeof web>) => buildNftModel(tableOf(x))
const webPort = { namespace: 'default', service: 'web', portName: 'http', protocol: 'TCP' as const }
const dbPort = { ...webPort, service: 'db' }
const partial = (prev: ReturnType<typeof web>, next: ReturnType<typeof web>) => planNftSync({ prev: modelOf(prev), next: modelOf(next), tableName: 'skiff-t', mode: 'partial' })

t.test('chain names are stable: a hash of the ServicePort, the endpoint in hex', async (t) => {
  const h = servicePortHash(webPort)
  t.match(h, /^[0-9a-f]{10}$/)
  t.not(h, servicePortHash({ ...webPort, protocol: 'UDP' }), 'the protocol is part of the identity')
  const m = modelOf(web(['10.244.1.5', '10.244.1.6']))
  t.ok(m.chains.has(`svc-${h}`) && m.chains.has(`masq-${h}`))
  t.notOk([...m.chains.keys()].some((n) => n.startsWith('ep-')), 'no per-endpoint chain without affinity')
  const sticky = modelOf(web(['10.244.1.5', '10.244.1.6'], { sessionAffinity: 'ClientIP' }))
  t.ok(sticky.chains.has(`ep-${h}-0af40105-1f90`), 'with affinity: ep-<h>-<ip hex>-<port hex>')
  // A Service sorting before web appears: nothing of web or db is renamed.
  const more = web(['10.244.1.5', '10.244.1.6'])
  more.services.push(service('aaa', { clusterIP: '10.96.0.10' }))
  more.slices.push(slice('aaa', [{ ip: '10.244.1.7' }]))
  const m2 = modelOf(more)
  for (const [name, ch] of m.chains) t.same(m2.chains.get(name)?.rules, ch.rules, `${name} unchanged`)
})

t.test('the model cache: same result, unchanged ports reuse their chains', async (t) => {
  const cache = { fragments: new Map() }
  const a = buildNftModel(tableOf(web(['10.244.1.5'])), cache)
  const b = buildNftModel(tableOf(web(['10.244.1.5', '10.244.1.6'])), cache)
  t.same(renderFull(b, 'x'), renderFull(modelOf(web(['10.244.1.5', '10.244.1.6'])), 'x'), 'cached = uncached')
  t.equal(b.chains.get(`svc-${servicePortHash(dbPort)}`), a.chains.get(`svc-${servicePortHash(dbPort)}`), 'db: the same chain object')
  t.not(b.chains.get(`svc-${servicePortHash(webPort)}`), a.chains.get(`svc-${servicePortHash(webPort)}`), 'web: rebuilt')
  const moved = buildNftModel({ ...tableOf(web(['10.244.1.5'])), node: { ...node1, addresses: ['10.244.1.2'] } }, cache)
  t.match(renderFull(moved, 'x'), '10.244.1.2 . tcp . 30080', 'a node address change rebuilds the NodePort elements')
})

t.test('unchanged tables: an empty transaction', async (t) => {
  const x = web(['10.244.1.5'])
  t.same(partial(x, x), { mode: 'none', script: '', ops: 0 })
})

t.test('an endpoint added touches only that Service', async (t) => {
  const h = servicePortHash(webPort)
  const plan = partial(web(['10.244.1.5']), web(['10.244.1.5', '10.244.1.6']))
  t.equal(plan.mode, 'partial')
  const lines = plan.script.trim().split('\n')
  t.same(lines, [
    `flush chain ip skiff-t svc-${h}`,
    `add rule ip skiff-t svc-${h} meta l4proto tcp dnat to numgen random mod 2 map { 0 : 10.244.1.5 . 8080, 1 : 10.244.1.6 . 8080 }`,
    'add element ip skiff-t hairpin { 10.244.1.6 . 10.244.1.6 }',
  ])
  t.notMatch(plan.script, servicePortHash(dbPort), 'db is not touched')
})

t.test('an endpoint removed: the chooser is re-filled, its hairpin element goes', async (t) => {
  const h = servicePortHash(webPort)
  const lines = partial(web(['10.244.1.5', '10.244.1.6']), web(['10.244.1.5'])).script.trim().split('\n')
  t.same(lines, [
    'delete element ip skiff-t hairpin { 10.244.1.6 . 10.244.1.6 }',
    `flush chain ip skiff-t svc-${h}`,
    `add rule ip skiff-t svc-${h} meta l4proto tcp dnat to 10.244.1.5:8080`,
  ])
})

t.test('with ClientIP affinity: per-endpoint chains, the chooser first, then the chain goes', async (t) => {
  const h = servicePortHash(webPort)
  const sticky = { sessionAffinity: 'ClientIP' }
  const lines = partial(web(['10.244.1.5', '10.244.1.6'], sticky), web(['10.244.1.5'], sticky)).script.trim().split('\n')
  t.same(lines, [
    `flush chain ip skiff-t svc-${h}`,
    `add rule ip skiff-t svc-${h} ip saddr @aff-${h}-0af40105-1f90 goto ep-${h}-0af40105-1f90`,
    `add rule ip skiff-t svc-${h} goto ep-${h}-0af40105-1f90`,
    `flush chain ip skiff-t ep-${h}-0af40106-1f90`,
    `delete chain ip skiff-t ep-${h}-0af40106-1f90`,
    `delete set ip skiff-t aff-${h}-0af40106-1f90`,
  ])
  const m = modelOf(web(['10.244.1.5'], sticky))
  t.same(m.chains.get(`ep-${h}-0af40105-1f90`)?.rules, [
    'ip saddr 10.244.1.5 meta mark set meta mark | 0x4000',
    `update @aff-${h}-0af40105-1f90 { ip saddr }`,
    'meta l4proto tcp dnat to 10.244.1.5:8080',
  ], 'the endpoint chain marks hairpin traffic itself')
  t.notOk(m.sets.get('hairpin')!.elements!.has('10.244.1.5 . 10.244.1.5'), 'no hairpin element for it')
})

t.test('endpoints chosen through a DNAT map; hairpin masquerade from the set of endpoint pairs', async (t) => {
  const h = servicePortHash(webPort)
  const m = modelOf(web(['10.244.1.5', '10.244.1.6', '10.244.1.7']))
  t.same(m.chains.get(`svc-${h}`)?.rules, ['meta l4proto tcp dnat to numgen random mod 3 map { 0 : 10.244.1.5 . 8080, 1 : 10.244.1.6 . 8080, 2 : 10.244.1.7 . 8080 }'])
  t.same([...m.sets.get('hairpin')!.elements!.keys()].sort(), ['10.244.1.5 . 10.244.1.5', '10.244.1.6 . 10.244.1.6', '10.244.1.7 . 10.244.1.7', '10.244.1.9 . 10.244.1.9'])
  t.same(m.chains.get('nat-postrouting')?.rules, [
    'meta mark & 0x4000 == 0x4000 meta mark set meta mark ^ 0x4000 masquerade',
    'ct status dnat ip saddr . ip daddr @hairpin masquerade',
  ])
  // An address shared by two Services keeps its element while either uses it.
  const shared = web(['10.244.1.9'])
  const lines = planNftSync({ prev: modelOf(shared), next: modelOf(web([])), tableName: 'skiff-t', mode: 'partial' }).script
  t.notMatch(lines, /hairpin/, 'db still has 10.244.1.9')
  const udp = buildNftModel(buildRoutingTable([service('dns', { clusterIP: '10.96.0.53', ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] })], [slice('dns', [{ ip: '10.244.1.5' }], [{ name: 'dns', port: 5353, protocol: 'UDP' }])], node1, 1))
  t.same(udp.chains.get(`svc-${servicePortHash({ ...webPort, service: 'dns', portName: 'dns', protocol: 'UDP' })}`)?.rules, ['meta l4proto udp dnat to 10.244.1.5:5353'])
})

t.test('the last endpoint removed: map elements swap to the reject set, chains go after', async (t) => {
  const h = servicePortHash(webPort)
  const lines = partial(web(['10.244.1.5']), web([])).script.trim().split('\n')
  const at = (re: RegExp) => lines.findIndex((l) => re.test(l))
  t.ok(at(/^delete element ip skiff-t cluster-ips \{ 10\.96\.0\.20 \. tcp \. 80 \}$/) >= 0)
  t.ok(at(/^add element ip skiff-t no-endpoints-internal \{ 10\.96\.0\.20 \. tcp \. 80 \}$/) >= 0)
  t.ok(at(/^delete element ip skiff-t cluster-ips/) < at(new RegExp(`^delete chain .* svc-${h}$`)), 'elements before chains')
  t.ok(at(/^delete element ip skiff-t host-ips/) < at(new RegExp(`^delete chain .* masq-${h}$`)))
  t.ok(lines.filter((l) => l.startsWith('delete chain')).every((l) => l.includes(h)), 'only web chains go')
  const firstDelete = at(/^delete chain/)
  t.ok(lines.slice(firstDelete).every((l) => l.startsWith('delete chain')), 'every flush before every delete (chains that jump to each other)')
})

t.test('a Service removed deletes its chains after its map elements', async (t) => {
  const h = servicePortHash(dbPort)
  const before = web(['10.244.1.5'])
  const after = web(['10.244.1.5'])
  after.services.pop(); after.slices.pop()
  const lines = partial(before, after).script.trim().split('\n')
  t.same(lines.filter((l) => !l.includes(h) && !/10\.96\.0\.30|30080|10\.244\.1\.9 /.test(l)), [], 'only db is touched')
  const lastElement = Math.max(...lines.map((l, i) => (l.includes('element') ? i : -1)))
  const firstChain = lines.findIndex((l) => / chain /.test(l))
  t.ok(lastElement >= 0 && lastElement < firstChain, 'cluster-ips, host-ips and external elements go first')
  t.match(lines.join('\n'), 'delete element ip skiff-t external { 10.244.1.1 . tcp . 30080 }')
  t.same(lines.filter((l) => l.startsWith('delete chain')).sort(), [`delete chain ip skiff-t masq-${h}`, `delete chain ip skiff-t svc-${h}`])
  t.match(lines.join('\n'), 'delete element ip skiff-t hairpin { 10.244.1.9 . 10.244.1.9 }')
})

t.test('a changed verdict: the element is deleted and added again', async (t) => {
  const lines = partial(web(['10.244.1.5']), web(['10.244.1.5'], { internalTrafficPolicy: 'Local' })).script.trim().split('\n')
  const h = servicePortHash(webPort)
  t.ok(lines.indexOf('delete element ip skiff-t cluster-ips { 10.96.0.20 . tcp . 80 }') < lines.indexOf(`add element ip skiff-t cluster-ips { 10.96.0.20 . tcp . 80 : goto loc-${h} }`))
  t.ok(lines.indexOf(`add chain ip skiff-t loc-${h}`) === 0, 'the new chain exists before anything names it')
})

t.test('affinity sets: created with their declaration, never flushed, a timeout change is a full sync', async (t) => {
  const plan = partial(web(['10.244.1.5']), web(['10.244.1.5'], { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }))
  t.match(plan.script, /^add set ip skiff-t aff-\w+-0af40105-1f90 \{ type ipv4_addr; flags dynamic,timeout; timeout 60s; \}$/m)
  t.notMatch(plan.script, /element ip skiff-t aff-/)
  const longer = partial(web(['10.244.1.5'], { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }), web(['10.244.1.5'], { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 90 } } }))
  t.equal(longer.mode, 'full')
  const off = partial(web(['10.244.1.5'], { sessionAffinity: 'ClientIP' }), web(['10.244.1.5'])).script.trim().split('\n')
  t.equal(off.at(-1)!.startsWith('delete set ip skiff-t aff-'), true, 'the set goes last, after the rules that name it')
})

t.test('when the whole table is replaced', async (t) => {
  const base = { applied: true, lastFailed: false, lastFullAt: 1_000, now: 2_000, fullSyncIntervalMs: 60_000 }
  t.equal(chooseSyncMode(base), 'partial')
  t.equal(chooseSyncMode({ ...base, applied: false }), 'full', 'first sync')
  t.equal(chooseSyncMode({ ...base, lastFailed: true }), 'full', 'after an error')
  t.equal(chooseSyncMode({ ...base, now: 61_000 }), 'full', 'periodically')
  const x = modelOf(web(['10.244.1.5']))
  t.equal(planNftSync({ next: x, tableName: 'skiff-t', mode: 'partial' }).mode, 'full', 'nothing known applied')
  const full = planNftSync({ prev: x, next: x, tableName: 'skiff-t', mode: 'full' })
  t.equal(full.mode, 'full')
  t.same(full.script.split('\n').slice(0, 2), ['add table ip skiff-t', 'delete table ip skiff-t'])
})

/** The table as the kernel lists it, without handles and in a canonical order: comparable across tables. */
async function kernelTable(name: string): Promise<string[]> {
  const r = await runCommand('nft', ['-j', 'list', 'table', 'ip', name])
  if (r.code !== 0) throw new Error(r.stderr)
  const canon = (v: any): any => Array.isArray(v) ? v.map(canon) : v && typeof v === 'object'
    ? Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'handle' && k !== 'table' && k !== 'comment').map(([k, x]) => [k, k === 'elem' && Array.isArray(x) ? x.map((e) => JSON.stringify(canon(e))).sort() : canon(x)]))
    : v
  return (JSON.parse(r.stdout).nftables as any[]).filter((o) => !o.metainfo && !o.table).map((o) => JSON.stringify(canon(o))).sort()
}

t.test('real partial transactions against a real table', async (t) => {
  const node = `unit-partial-${process.pid}`
  const ref = `unit-partial-ref-${process.pid}`
  const logger = { warn: () => undefined } as any
  const backend = new NftablesBackend({ nodeName: node, logger })
  const refBackend = new NftablesBackend({ nodeName: ref, logger })
  t.teardown(async () => { backend.close(); refBackend.close(); await removeServiceProxyTable(node); await removeServiceProxyTable(ref) })
  const steps: Array<[string, ReturnType<typeof web>]> = [
    ['first', web(['10.244.1.5', '10.244.1.6'], { sessionAffinity: 'ClientIP' })],
    ['endpoint added', web(['10.244.1.5', '10.244.1.6', '10.244.1.7'], { sessionAffinity: 'ClientIP' })],
    ['endpoint removed', web(['10.244.1.6', '10.244.1.7'], { sessionAffinity: 'ClientIP' })],
    ['no endpoints', web([])],
    ['back, with a Local policy', web(['10.244.1.8'], { internalTrafficPolicy: 'Local' })],
  ]
  let gen = 0
  for (const [what, x] of steps) {
    const table = { ...tableOf(x, ++gen), node: { ...node1, name: node } }
    await backend.apply(table)
    t.equal(backend.lastSync?.mode, gen === 1 ? 'full' : 'partial', `${what}: ${gen === 1 ? 'full' : 'partial'}`)
    // The partially synced kernel table equals a freshly replaced one.
    await refBackend.cleanup()
    await refBackend.apply({ ...table, node: { ...table.node, name: ref } })
    t.same(await kernelTable(backend.tableName), await kernelTable(refBackend.tableName), `${what}: the kernel holds the full rendering`)
  }
  await backend.apply({ ...tableOf(steps.at(-1)![1], ++gen), node: { ...node1, name: node } })
  t.equal(backend.lastSync?.mode, 'none', 'unchanged: no nft transaction')

  // Affinity state (kernel-filled set elements) survives a partial sync of an unrelated change.
  const aff = web(['10.244.1.5'], { sessionAffinity: 'ClientIP' })
  await backend.apply({ ...tableOf(aff, ++gen), node: { ...node1, name: node } })
  const set = `aff-${servicePortHash(webPort)}-0af40105-1f90`
  t.equal((await runCommand('nft', ['add', 'element', 'ip', backend.tableName, set, '{ 10.244.1.77 }'])).code, 0)
  const affMore = web(['10.244.1.5'], { sessionAffinity: 'ClientIP' })
  affMore.slices[1] = slice('db', [{ ip: '10.244.1.9', node: 'n1' }, { ip: '10.244.1.10', node: 'n1' }])
  await backend.apply({ ...tableOf(affMore, ++gen), node: { ...node1, name: node } })
  t.equal(backend.lastSync?.mode, 'partial')
  t.match((await runCommand('nft', ['list', 'set', 'ip', backend.tableName, set])).stdout, '10.244.1.77', 'the client stays pinned')

  // Someone deleted our table: the partial transaction fails and the whole table is replaced at once.
  await removeServiceProxyTable(node)
  await backend.apply({ ...tableOf(web(['10.244.1.5']), ++gen), node: { ...node1, name: node } })
  t.equal(backend.lastSync?.mode, 'full', 'fell back to a full sync')
  t.equal((await runCommand('nft', ['list', 'table', 'ip', backend.tableName])).code, 0)
  // And an unchanged table that went missing is rebuilt too.
  await removeServiceProxyTable(node)
  await backend.apply({ ...tableOf(web(['10.244.1.5']), ++gen), node: { ...node1, name: node } })
  t.equal(backend.lastSync?.mode, 'full')
})

t.test('NftShell: one long-lived nft -i, a transaction per line, all or nothing', async (t) => {
  const table = `skiff-shell-${process.pid}`
  const shell = new NftShell()
  t.teardown(async () => { shell.close(); await runCommand('nft', ['delete', 'table', 'ip', table]) })
  t.equal((await runCommand('nft', ['-f', '-'], `table ip ${table} {\n  set s { type ipv4_addr; }\n  chain c { }\n}\n`)).code, 0)
  const elements = async () => (await runCommand('nft', ['list', 'set', 'ip', table, 's'])).stdout.match(/\d+\.\d+\.\d+\.\d+/g) ?? []
  t.match(await shell.run(`add element ip ${table} s { 10.0.0.1 }\nadd rule ip ${table} c meta l4proto tcp dnat to 10.0.0.1:80\n`), { code: 0, stderr: '' })
  t.same(await elements(), ['10.0.0.1'])
  const bad = await shell.run(`add element ip ${table} s { 10.0.0.2 }\nadd rule ip ${table} nosuchchain accept\n`)
  t.equal(bad.code, 1, 'a failed transaction says so')
  t.match(bad.stderr, /Error: .*No such file or directory/)
  t.same(await elements(), ['10.0.0.1'], 'and changed nothing')
  // Another process changes the table: the shell sees the new chain.
  t.equal((await runCommand('nft', ['add', 'chain', 'ip', table, 'other'])).code, 0)
  t.match(await shell.run(`add rule ip ${table} other accept\nadd element ip ${table} s { 10.0.0.3 }`), { code: 0 })
  // Many at once, in order: each answer belongs to its own transaction.
  const many = await Promise.all([4, 5, 6].map((k) => shell.run(k === 5 ? `add element ip ${table} nosuchset { 10.0.0.5 }` : `add element ip ${table} s { 10.0.0.${k} }`)))
  t.same(many.map((r) => r.code), [0, 1, 0])
  t.same(await elements(), ['10.0.0.1', '10.0.0.3', '10.0.0.4', '10.0.0.6'])
  // A long transaction is still one line.
  const long = Array.from({ length: 2000 }, (_, k) => `add element ip ${table} s { 10.1.${k >> 8}.${k & 255} }`).join('\n')
  t.equal((await shell.run(long)).code, 0)
  t.equal((await elements()).length, 2004)
  // The process dies: the next transaction starts a new one.
  const pids = async () => (await runCommand('pgrep', ['-P', String(process.pid), '-x', 'nft'])).stdout.trim().split('\n').filter(Boolean)
  const before = await pids()
  t.equal(before.length, 1, 'one nft -i child')
  process.kill(Number(before[0]), 'SIGKILL')
  await eventually(async () => !(await pids()).includes(before[0]!), { timeout: 5_000, interval: 50, what: 'the killed nft gone' })
  t.match(await shell.run(`add element ip ${table} s { 10.0.0.7 }`), { code: 0 })
  t.not((await pids())[0], before[0], 'a new process')
  shell.close()
  t.ok(await eventually(async () => (await pids()).length === 0, { timeout: 5_000, interval: 50, what: 'nft -i gone' }), 'close() ends it')
})

// The userspace backend with real sockets on this machine: echo servers on
// 127.0.0.1 are the endpoints, a random ClusterIP from 10.111.0.0/16 is put
// on skiff-svc0 by the backend, and traffic goes to it. No Docker needed.

import t from 'tap'
import dgram from 'node:dgram'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { eventually, freePort } from '../../lib/net.ts'
import { Registry } from '../../lib/metrics.ts'
import type { Endpoint, RoutingTable, ServicePort } from '../../dataplane/service-proxy/types.ts'
import { UserspaceBackend } from '../../dataplane/service-proxy/userspace.ts'

/** What the helpers need of a tap test. */
interface Teardown {
  teardown(fn: () => unknown): void
}

const stateDir = mkdtempSync(join(tmpdir(), 'skiff-svc-addrs-'))
t.teardown(() => rmSync(stateDir, { recursive: true, force: true }))

const rnd = (n: number) => 1 + Math.floor(Math.random() * n)
const uniqueIP = () => `10.111.${rnd(250)}.${rnd(250)}`

function ifaceAddresses(): string[] {
  try {
    const out = JSON.parse(execFileSync('ip', ['-j', 'addr', 'show', 'dev', 'skiff-svc0'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString())
    return out.flatMap((l: { addr_info?: { local: string }[] }) => (l.addr_info ?? []).map((a) => a.local))
  } catch {
    return []
  }
}

/** A TCP echo server that first says its name, and a UDP one that prefixes its name. */
async function echo(t: Teardown, name: string): Promise<Endpoint & { udpPort: number }> {
  const conns = new Set<net.Socket>()
  const srv = net.createServer((s) => {
    conns.add(s)
    s.on('close', () => conns.delete(s))
    s.on('error', () => {})
    s.write(`${name}\n`)
    s.on('data', (d) => s.write(d))
  })
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const udp = dgram.createSocket('udp4')
  udp.on('message', (m, r) => udp.send(Buffer.concat([Buffer.from(`${name}:`), m]), r.port, r.address))
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r))
  t.teardown(async () => {
    for (const s of conns) s.destroy()
    await new Promise((r) => srv.close(r))
    udp.close()
  })
  return { ip: '127.0.0.1', port: (srv.address() as net.AddressInfo).port, udpPort: udp.address().port, ready: true, serving: true, terminating: false }
}

function svcPort(o: { id: string; clusterIP: string; port: number; protocol?: 'TCP' | 'UDP'; endpoints: Endpoint[]; affinitySeconds?: number; nodePort?: number }): ServicePort {
  return {
    id: o.id, namespace: 'default', service: o.id, portName: '', protocol: o.protocol ?? 'TCP', clusterIP: o.clusterIP, port: o.port, nodePort: o.nodePort,
    loadBalancerIPs: [], externalIPs: [], clusterEndpoints: o.endpoints, localEndpoints: [], externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster',
    affinitySeconds: o.affinitySeconds ?? 0,
  }
}

let generation = 0
function table(owner: string, ports: ServicePort[], nodeAddresses = ['127.0.0.1']): RoutingTable {
  return { node: { name: owner, addresses: nodeAddresses, podCIDR: '10.244.250.0/24', clusterCIDR: '10.244.0.0/16' }, ports, generation: ++generation }
}

async function setup(t: Teardown) {
  const owner = `it-${process.pid}-${rnd(1e6)}`
  const registry = new Registry()
  const backend = new UserspaceBackend({ owner, stateDir, registry, udpIdleMs: 30_000 })
  t.teardown(() => backend.cleanup())
  const [a, b] = [await echo(t, 'a'), await echo(t, 'b')]
  return { owner, backend, registry, a, b, ip: uniqueIP() }
}

/** Connect, read the endpoint's name line; the socket stays open for more. */
async function connectName(ip: string, port: number): Promise<{ name: string; sock: net.Socket }> {
  return await new Promise((resolve, reject) => {
    const sock = net.connect({ host: ip, port })
    sock.setTimeout(10_000, () => sock.destroy(new Error('timeout')))
    sock.once('error', reject)
    sock.once('data', (d) => resolve({ name: String(d).split('\n')[0]!, sock }))
  })
}

async function names(ip: string, port: number, n: number): Promise<Set<string>> {
  const seen = new Set<string>()
  for (let i = 0; i < n; i++) {
    const { name, sock } = await connectName(ip, port)
    sock.destroy()
    seen.add(name)
  }
  return seen
}

async function udpAsk(ip: string, port: number, msg: string, sock?: dgram.Socket): Promise<string> {
  const s = sock ?? dgram.createSocket('udp4')
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('udp timeout')), 5000)
      s.once('message', (m) => (clearTimeout(timer), resolve(String(m))))
      s.send(msg, port, ip)
    })
  } finally {
    if (!sock) s.close()
  }
}

t.test('TCP reaches both endpoints; the address lives on skiff-svc0; NodePort answers; metrics count', async (t) => {
  const { owner, backend, registry, a, b, ip } = await setup(t)
  const nodePort = await freePort()
  await backend.apply(table(owner, [svcPort({ id: 'default/web:', clusterIP: ip, port: 80, endpoints: [a, b], nodePort })]))
  t.ok(ifaceAddresses().includes(ip), 'ClusterIP is on skiff-svc0')
  const seen = new Set<string>()
  await eventually(async () => {
    for (const n of await names(ip, 80, 5)) seen.add(n)
    return seen.size === 2
  }, { timeout: 30_000, what: 'both endpoints answered' })
  t.same([...seen].sort(), ['a', 'b'])
  t.ok((await names('127.0.0.1', nodePort, 1)).size === 1, 'NodePort on the node address answers')
  const { sock } = await connectName(ip, 80)
  const echoed = await new Promise<string>((r) => (sock.once('data', (d) => r(String(d))), sock.write('ping')))
  t.equal(echoed, 'ping', 'data flows both ways')
  const metrics = await registry.metrics()
  t.match(metrics, /skiff_userspace_proxy_active\{service="default\/web:",protocol="TCP"\} [1-9]/)
  t.match(metrics, /skiff_userspace_proxy_bytes_total\{service="default\/web:",direction="in"\} [1-9]/)
  sock.destroy()
})

t.test('UDP echo through the ClusterIP; sessions to a removed endpoint end', async (t) => {
  const { owner, backend, a, b, ip } = await setup(t)
  const ua = { ...a, port: a.udpPort }
  const ub = { ...b, port: b.udpPort }
  await backend.apply(table(owner, [svcPort({ id: 'default/dns:', clusterIP: ip, port: 53, protocol: 'UDP', endpoints: [ua] })]))
  const client = dgram.createSocket('udp4')
  t.teardown(() => client.close())
  t.equal(await udpAsk(ip, 53, 'hello', client), 'a:hello')
  t.equal(await udpAsk(ip, 53, 'again', client), 'a:again', 'same session')
  await backend.apply(table(owner, [svcPort({ id: 'default/dns:', clusterIP: ip, port: 53, protocol: 'UDP', endpoints: [ub] })]))
  t.equal(await udpAsk(ip, 53, 'moved', client), 'b:moved', 'the stale session was closed; the next datagram picks a live endpoint')
})

t.test('no endpoints: refused at once; endpoints back: traffic resumes', async (t) => {
  const { owner, backend, a, ip } = await setup(t)
  await backend.apply(table(owner, [svcPort({ id: 'default/web:', clusterIP: ip, port: 80, endpoints: [] })]))
  const err = await connectName(ip, 80).then(() => undefined, (e: NodeJS.ErrnoException) => e)
  t.equal(err?.code, 'ECONNREFUSED', 'TCP connection refused (reset), not a timeout')
  // A connected UDP socket reports the ICMP port unreachable as ECONNREFUSED.
  const udp = dgram.createSocket('udp4')
  t.teardown(() => udp.close())
  await new Promise<void>((r) => udp.connect(80, ip, r))
  const uerr = await new Promise<NodeJS.ErrnoException>((resolve) => {
    udp.once('error', resolve)
    udp.send('x')
  })
  t.equal(uerr.code, 'ECONNREFUSED', 'UDP: port unreachable at once')
  await backend.apply(table(owner, [svcPort({ id: 'default/web:', clusterIP: ip, port: 80, endpoints: [a] })]))
  t.same([...(await names(ip, 80, 2))], ['a'])
})

t.test('ClientIP affinity: 20 connections reach one endpoint', async (t) => {
  const { owner, backend, a, b, ip } = await setup(t)
  await backend.apply(table(owner, [svcPort({ id: 'default/web:', clusterIP: ip, port: 80, endpoints: [a, b], affinitySeconds: 60 })]))
  t.equal((await names(ip, 80, 20)).size, 1)
})

t.test('an endpoint change keeps an open connection flowing; new connections follow the change', async (t) => {
  const { owner, backend, a, b, ip } = await setup(t)
  await backend.apply(table(owner, [svcPort({ id: 'default/web:', clusterIP: ip, port: 80, endpoints: [a] })]))
  const { name, sock } = await connectName(ip, 80)
  t.teardown(() => sock.destroy())
  t.equal(name, 'a')
  await backend.apply(table(owner, [svcPort({ id: 'default/web:', clusterIP: ip, port: 80, endpoints: [b] })]))
  const echoed = await new Promise<string>((r) => (sock.once('data', (d) => r(String(d))), sock.write('still here')))
  t.equal(echoed, 'still here', 'the open connection to a still flows')
  t.same([...(await names(ip, 80, 3))], ['b'])
  await backend.apply(table(owner, []))
  const after = await new Promise<string>((r) => (sock.once('data', (d) => r(String(d))), sock.write('service gone')))
  t.equal(after, 'service gone', 'removing the Service closes the listener, not the open connection')
  t.ok(ifaceAddresses().includes(ip), 'the address stays while a connection to it is open')
  const closed = new Promise((r) => sock.once('close', r))
  sock.end()
  await closed
  await eventually(async () => {
    await backend.apply(table(owner, []))
    return !ifaceAddresses().includes(ip)
  }, { timeout: 30_000, what: 'the drained address to be released' })
})

t.test('a failing apply rolls back and throws; cleanup removes the addresses', async (t) => {
  const { owner, backend, a, ip } = await setup(t)
  const ip2 = uniqueIP()
  await backend.apply(table(owner, [svcPort({ id: 'default/web:', clusterIP: ip, port: 80, endpoints: [a] })]))
  const before = backend.debugTable()
  // 192.0.2.254 is not an address of this machine: the NodePort listener cannot open.
  const bad = table(owner, [svcPort({ id: 'default/web:', clusterIP: ip, port: 80, endpoints: [a] }), svcPort({ id: 'default/new:', clusterIP: ip2, port: 81, endpoints: [a], nodePort: 30999 })], ['192.0.2.254'])
  await t.rejects(backend.apply(bad), { code: 'SKIFF_ERR_SERVICE_PROXY_LISTEN' })
  t.same(backend.debugTable(), before, 'previous state kept')
  t.notOk(ifaceAddresses().includes(ip2), 'the address added by the failed apply is gone')
  t.same([...(await names(ip, 80, 1))], ['a'], 'old service still answers')
  await backend.cleanup()
  t.notOk(ifaceAddresses().includes(ip), 'cleanup removed the ClusterIP')
  t.same(backend.debugTable().listeners, [], 'no listener left')
})

t.test('two agents share one ClusterIP:port (reusePort); one leaving keeps the address for the other', async (t) => {
  const one = await setup(t)
  const two = new UserspaceBackend({ owner: `${one.owner}-2`, stateDir })
  t.teardown(() => two.cleanup())
  const sp = svcPort({ id: 'default/web:', clusterIP: one.ip, port: 80, endpoints: [one.a, one.b], affinitySeconds: 60 })
  await one.backend.apply(table(one.owner, [sp]))
  await two.apply(table(`${one.owner}-2`, [sp]))
  t.equal((await names(one.ip, 80, 20)).size, 1, 'affinity holds although the kernel spreads connections over both agents')
  await one.backend.cleanup()
  t.ok(ifaceAddresses().includes(one.ip), 'the address stays while the other agent claims it')
  t.equal((await names(one.ip, 80, 3)).size, 1, 'the other agent still answers')
  await two.cleanup()
  t.notOk(ifaceAddresses().includes(one.ip), 'the last agent removed it')
})

t.test('a refused connect fails over to another endpoint once; with none left the client is reset', async (t) => {
  const owner = `it-${process.pid}-${rnd(1e6)}`
  const registry = new Registry()
  // random() = 0: the first candidate (the dead endpoint) is always tried first.
  const backend = new UserspaceBackend({ owner, stateDir, registry, clock: { random: () => 0 } })
  t.teardown(() => backend.cleanup())
  const a = await echo(t, 'a')
  const dead: Endpoint = { ...a, port: await freePort() }
  const ip = uniqueIP()
  await backend.apply(table(owner, [svcPort({ id: 'default/web:', clusterIP: ip, port: 80, endpoints: [dead, a] })]))
  t.same([...(await names(ip, 80, 3))], ['a'], 'every connection ends at the live endpoint')
  t.match(await registry.metrics(), /skiff_userspace_proxy_connect_errors_total\{service="default\/web:"\} 3/)
  await backend.apply(table(owner, [svcPort({ id: 'default/web:', clusterIP: ip, port: 80, endpoints: [dead] })]))
  const err = await connectName(ip, 80).then(() => undefined, (e: NodeJS.ErrnoException) => e)
  t.equal(err?.code, 'ECONNRESET', 'reset, not a hang')
})

// What matching costs: Ingress rules against HTTPRoutes on the same ingress
// workers (issue 14). One WorkerPool, one upstream (nginx `return 200`), and
// one snapshot holding both APIs, each on its own host; the same wrk load
// (same path, query and headers) goes to each host in turn, rounds
// alternating, with nginx proxying the same request as the reference:
//   ingress             Ingress, host + Prefix /api
//   httproute           HTTPRoute, host + PathPrefix /api (the same match)
//   ingress, 100 paths  Ingress, 100 Prefix paths /api/t000 … /api/t099; the request takes the last
//   httproute, 100      100 HTTPRoutes on one host, each PathPrefix /api + method
//                       (GET or POST, alternating) + header x-group (g0…g9) +
//                       query tenant (t000…t099); the request matches only the
//                       last in precedence order, so 50 candidates check the
//                       method, 10 the header and the query, and one wins
//
//   node bench/ingress-routing.ts     (BENCH_SECONDS=10, BENCH_ROUNDS=3, BENCH_CONNECTIONS=32;
//                                      BENCH_TARGETS='100 routes' runs only the targets whose name has that text, and nginx)
//
// Needs wrk and nginx. Everything listens on 127.0.0.1 free ports and is stopped by its pid.

import { mkdtemp, rm } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../lib/net.ts'
import { silentLogger } from '../lib/log.ts'
import type { KubeObject } from '../controlplane/api/types.ts'
import type { GwRoute } from '../dataplane/ingress/gateway-build.ts'
import { WorkerPool } from '../dataplane/ingress/pool.ts'
import type { IngressSnapshot } from '../dataplane/ingress/snapshot.ts'
import { log, teardowns, type WrkResult } from './harness.ts'
import { daemon, listening, loadAverage, medians, need, nginxConf, wrk } from './proxies.ts'

const seconds = Number(process.env.BENCH_SECONDS ?? 10)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32)
const routes = 100
const last = routes - 1
const tenant = `t${String(last).padStart(3, '0')}`
/** The request every target gets: the path, query and header the 100-route table needs. */
const path = `/api/${tenant}/items?tenant=${tenant}`
const extraHeaders = [`x-group: g${last % 10}`, 'accept: */*', 'user-agent: wrk']

const upstream = { name: 'up', namespace: 'default' }
const backend = () => ({ weight: 1, namespace: upstream.namespace, service: upstream.name, port: 80, filters: [] })
const listenerKey = 'default/gw/http'

function ingress(name: string, host: string, paths: string[]): KubeObject {
  return {
    apiVersion: 'networking.k8s.io/v1', kind: 'Ingress',
    metadata: { name, namespace: 'default', uid: name, creationTimestamp: '2026-12-01T00:00:00Z' },
    spec: { ingressClassName: 'external', rules: [{ host, http: { paths: paths.map((p) => ({ path: p, pathType: 'Prefix', backend: { service: { name: upstream.name, port: { number: 80 } } } })) } }] },
  }
}

function httpRoute(name: string, host: string, match: { method?: string; headers?: Array<[string, string]>; query?: Array<[string, string]> }): GwRoute {
  const values = (xs: Array<[string, string]> = []) => xs.map(([n, value]) => ({ name: n, type: 'Exact' as const, value }))
  return {
    route: `default/${name}`, namespace: 'default', created: Date.parse('2026-12-01T00:00:00Z'), attachments: { [listenerKey]: [host] },
    rules: [{ ruleIndex: 0, filters: [], backends: [backend()], matches: [{ pathType: 'PathPrefix', path: '/api', ...(match.method ? { method: match.method } : {}), headers: values(match.headers), query: values(match.query) }] }],
  }
}

function snapshot(upstreamPort: number): IngressSnapshot {
  const many = Array.from({ length: routes }, (_, i) => httpRoute(`r${String(i).padStart(3, '0')}`, 'gw100.bench.test', {
    method: i % 2 ? 'GET' : 'POST', headers: [['x-group', `g${i % 10}`]], query: [['tenant', `t${String(i).padStart(3, '0')}`]],
  }))
  return {
    generation: 1, className: 'external', isDefaultClass: false,
    ingresses: [
      ingress('one', 'ing.bench.test', ['/api']),
      ingress('hundred', 'ing100.bench.test', Array.from({ length: routes }, (_, i) => `/api/t${String(i).padStart(3, '0')}`)),
    ],
    gateway: {
      listeners: [{ key: listenerKey, protocol: 'HTTP', port: 80, hostname: '', certificates: [] }],
      routes: [httpRoute('one', 'gw.bench.test', {}), ...many],
    },
    services: { 'default/up': { type: 'ClusterIP', ports: [{ name: '', port: 80, protocol: 'TCP' }] } },
    endpoints: { 'default/up': [{ ip: '127.0.0.1', ports: { '': upstreamPort }, ready: true, serving: true, terminating: false }] },
    certificates: {}, challenges: {}, settings: { trustedProxies: [] },
  }
}

async function main(): Promise<void> {
  await need('wrk', ['--version'], 'wrk')
  await need('nginx', ['-v'], 'nginx-light')
  const t = teardowns()
  const dir = await mkdtemp(join(tmpdir(), 'skiff-bench-routing-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  try {
    const [up, ng, sk, skHttps] = await Promise.all(Array.from({ length: 4 }, () => freePort()))
    daemon(t, 'nginx', ['-c', await nginxConf(dir, 'upstream', `server { listen 127.0.0.1:${up}; keepalive_requests 100000; location / { return 200 "ok\\n"; } }`)])
    daemon(t, 'nginx', ['-c', await nginxConf(dir, 'proxy', `upstream up { server 127.0.0.1:${up}; keepalive 64; }
  server { listen 127.0.0.1:${ng}; keepalive_requests 100000;
    location /api { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr; } }`)])
    const pool = new WorkerPool({ config: { className: 'external', addresses: ['127.0.0.1'], httpPort: sk, httpsPort: skHttps, nodeName: 'bench' }, workers: availableParallelism(), logger: silentLogger(), logLevel: 'warn' })
    t.teardown(() => pool.drain(2_000)) // a graceful exit, so NODE_OPTIONS=--cpu-prof writes the workers' profiles
    await pool.start()
    pool.apply(snapshot(up))
    await pool.waitForGeneration(1, 10_000)
    const only = process.env.BENCH_TARGETS?.split(',')
    const all: Array<{ name: string; url: string; host: string }> = [
      { name: 'nginx', url: `http://127.0.0.1:${ng}${path}`, host: 'ing.bench.test' },
      { name: 'ingress', url: `http://127.0.0.1:${sk}${path}`, host: 'ing.bench.test' },
      { name: 'httproute', url: `http://127.0.0.1:${sk}${path}`, host: 'gw.bench.test' },
      { name: 'ingress, 100 paths', url: `http://127.0.0.1:${sk}${path}`, host: 'ing100.bench.test' },
      { name: 'httproute, 100 routes (method + header + query)', url: `http://127.0.0.1:${sk}${path}`, host: 'gw100.bench.test' },
    ]
    const targets = all.filter((x) => !only || x.name === 'nginx' || only.some((o) => x.name.includes(o)))
    const headers = (host: string) => [`Host: ${host}`, ...extraHeaders]
    for (const x of targets) await listening(x.url, headers(x.host))
    for (const x of targets) await wrk(x.url, { connections: 4, seconds: 2, threads: 1, headers: headers(x.host) }) // warm-up
    const rows: Array<{ name: string; r: WrkResult }> = []
    for (let round = 1; round <= rounds; round++) {
      for (const x of targets) {
        const r = await wrk(x.url, { connections, seconds, headers: headers(x.host) })
        log(`round ${round} ${x.name}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, errors ${r.errors}`)
        rows.push({ name: x.name, r })
      }
    }
    const summary = medians(targets.map((x) => x.name), rows)
    const rpsOf = (name: string) => summary.find((s) => s.name === name)?.rps ?? NaN
    const load = await loadAverage()
    process.stdout.write(`Ingress rules against HTTPRoutes on the same workers, wrk -t2 -c${connections} -d${seconds}s, ${rounds} rounds (medians), ${availableParallelism()} cores, loopback, load average after: ${load}:\n\n`)
    process.stdout.write('| routed by | req/s | p50 ms | p99 ms | errors | vs nginx | HTTPRoute / Ingress |\n| --- | --- | --- | --- | --- | --- | --- |\n')
    for (const s of summary) {
      const base = s.name === 'httproute' ? rpsOf('ingress') : s.name.startsWith('httproute, ') ? rpsOf('ingress, 100 paths') : NaN
      process.stdout.write(`| ${s.name} | ${s.rps.toFixed(0)} | ${s.p50.toFixed(2)} | ${s.p99.toFixed(2)} | ${s.errors} | ${(s.rps / rpsOf('nginx')).toFixed(2)}x | ${Number.isNaN(base) ? '' : `${(s.rps / base).toFixed(2)}`} |\n`)
    }
    const perRound = (a: string, b: string) => rows.filter((x) => x.name === a).map((x, i) => (x.r.rps / (rows.filter((y) => y.name === b)[i]?.r.rps ?? NaN)).toFixed(2)).join(', ')
    process.stdout.write(`\nPer round, HTTPRoute / Ingress: ${perRound('httproute', 'ingress')}; 100 routes / 100 paths: ${perRound('httproute, 100 routes (method + header + query)', 'ingress, 100 paths')}\n`)
  } finally {
    await t.run()
  }
}

await main()

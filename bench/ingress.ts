// Ingress data path throughput: the same upstream behind Skiff's ingress
// workers, nginx and haproxy, all on loopback in the same run, and the
// direct path (wrk straight at the upstream) as the ceiling. The upstream is
// an nginx `return 200` so it is never the bottleneck of one proxy hop.
// A bare Node.js proxy (bench/bare-proxy.ts, one process per core) is the
// floor: the Node.js HTTP stack alone, without Skiff's routing and checks.
// Access logs are off everywhere (Skiff's workers at log level warn).
// A TLS round follows: the same three proxies terminating TLS (one
// self-signed certificate for all, wrk over keep-alive connections, so the
// bulk cipher and the HTTP work count, not handshakes).
// Each proxy keeps upstream connections alive (nginx `keepalive`, haproxy
// `http-reuse always`, Skiff's per-endpoint agents) and routes by Host + path.
//
//   node bench/ingress.ts            (BENCH_SECONDS=10, BENCH_ROUNDS=3, BENCH_CONNECTIONS=32;
//                                     BENCH_TARGETS=skiff,bare runs only those besides the references)
//
// Needs wrk, nginx and haproxy (Debian packages wrk, nginx-light, haproxy).
// Everything listens on 127.0.0.1 free ports and is stopped by its pid.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '../lib/net.ts'
import { silentLogger } from '../lib/log.ts'
import { selfSignedCert } from '../certs/ca.ts'
import { WorkerPool } from '../dataplane/ingress/pool.ts'
import type { IngressSnapshot } from '../dataplane/ingress/snapshot.ts'
import { log, teardowns, type WrkResult } from './harness.ts'
import { daemon, loadAverage, medians, need, nginxConf, run, listening as answering, wrk as wrkRun } from './proxies.ts'

const seconds = Number(process.env.BENCH_SECONDS ?? 10)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32)
const host = 'bench.example.test'

const listening = (url: string) => answering(url, [`Host: ${host}`])

function snapshot(upstreamPort: number, tls: { cert: string; key: string }): IngressSnapshot {
  return {
    defaultCertificate: tls,
    generation: 1, className: 'external', isDefaultClass: false,
    ingresses: [{
      apiVersion: 'networking.k8s.io/v1', kind: 'Ingress',
      metadata: { name: 'bench', namespace: 'default', uid: 'u', creationTimestamp: new Date().toISOString() },
      spec: { ingressClassName: 'external', rules: [{ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'up', port: { number: 80 } } } }] } }] },
    }],
    services: { 'default/up': { type: 'ClusterIP', ports: [{ name: '', port: 80, protocol: 'TCP' }] } },
    endpoints: { 'default/up': [{ ip: '127.0.0.1', ports: { '': upstreamPort }, ready: true, serving: true, terminating: false }] },
    certificates: {}, challenges: {}, settings: { trustedProxies: [] },
  }
}

const wrk = (url: string): Promise<WrkResult> => wrkRun(url, { connections, seconds, headers: [`Host: ${host}`] })

async function main(): Promise<void> {
  await need('wrk', ['--version'], 'wrk')
  await need('nginx', ['-v'], 'nginx-light')
  await need('haproxy', ['-v'], 'haproxy')
  const t = teardowns()
  const dir = await mkdtemp(join(tmpdir(), 'skiff-bench-ingress-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  try {
    const [up, ng, hp, sk, skHttps, bare, bareU, ngTls, hpTls] = await Promise.all(Array.from({ length: 9 }, () => freePort()))
    const tls = selfSignedCert({ commonName: host, dnsNames: [host] })
    await writeFile(join(dir, 'tls.crt'), tls.certPem)
    await writeFile(join(dir, 'tls.key'), tls.keyPem)
    await writeFile(join(dir, 'tls.pem'), tls.certPem + tls.keyPem)
    const bareProxy = fileURLToPath(new URL('./bare-proxy.ts', import.meta.url))
    for (let i = 0; i < availableParallelism(); i++) {
      daemon(t, process.execPath, [bareProxy, String(up), String(bare), 'http'])
      daemon(t, process.execPath, [bareProxy, String(up), String(bareU), 'undici'])
    }
    daemon(t, 'nginx', ['-c', await nginxConf(dir, 'upstream', `server { listen 127.0.0.1:${up}; keepalive_requests 100000; location / { return 200 "ok\\n"; } }`)])
    daemon(t, 'nginx', ['-c', await nginxConf(dir, 'proxy', `upstream up { server 127.0.0.1:${up}; keepalive 64; }
  server { listen 127.0.0.1:${ng}; listen 127.0.0.1:${ngTls} ssl; server_name ${host}; keepalive_requests 100000;
    ssl_certificate ${dir}/tls.crt; ssl_certificate_key ${dir}/tls.key;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr; } }`)])
    const hcfg = join(dir, 'haproxy.cfg')
    await writeFile(hcfg, `global
  nbthread ${availableParallelism()}
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option forwardfor
frontend fe
  bind 127.0.0.1:${hp}
  bind 127.0.0.1:${hpTls} ssl crt ${dir}/tls.pem
  acl h hdr(host) -i ${host}
  use_backend be if h
backend be
  http-reuse always
  server up 127.0.0.1:${up}
`)
    daemon(t, 'haproxy', ['-f', hcfg, '-db'])
    const pool = new WorkerPool({ config: { className: 'external', addresses: ['127.0.0.1'], httpPort: sk, httpsPort: skHttps, nodeName: 'bench' }, workers: availableParallelism(), logger: silentLogger(), logLevel: 'warn' })
    t.teardown(() => pool.drain(2_000)) // a graceful exit, so NODE_OPTIONS=--cpu-prof writes the workers' profiles
    await pool.start()
    pool.apply(snapshot(up, { cert: tls.certPem, key: tls.keyPem }))
    await pool.waitForGeneration(1, 10_000)
    const only = process.env.BENCH_TARGETS?.split(',')
    const plain = (port: number) => `http://127.0.0.1:${port}/`
    const secure = (port: number) => `https://127.0.0.1:${port}/`
    const all: Array<[string, string]> = [
      ['direct (upstream)', plain(up)], ['skiff ingress', plain(sk)], ['bare Node.js proxy (http.request)', plain(bare)], ['bare Node.js proxy (undici)', plain(bareU)], ['nginx', plain(ng)], ['haproxy', plain(hp)],
      ['TLS: skiff ingress', secure(skHttps)], ['TLS: nginx', secure(ngTls)], ['TLS: haproxy', secure(hpTls)],
    ]
    const references = new Set(['nginx', 'haproxy', 'TLS: nginx', 'TLS: haproxy'])
    const targets = all.filter(([name]) => !only || references.has(name) || only.some((o) => name.includes(o)))
    for (const [, url] of targets) await listening(url)
    for (const [, url] of targets) await run('wrk', ['-t1', '-c4', '-d2s', '-H', `Host: ${host}`, url]) // warm-up
    const rows: Array<{ name: string; r: WrkResult }> = []
    for (let round = 1; round <= rounds; round++) {
      for (const [name, url] of targets) {
        const r = await wrk(url)
        log(`round ${round} ${name}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, errors ${r.errors}`)
        rows.push({ name, r })
      }
    }
    const summary = medians(targets.map(([name]) => name), rows)
    const rpsOf = (name: string) => summary.find((s) => s.name === name)?.rps ?? NaN
    const load = await loadAverage()
    process.stdout.write(`Ingress data path, wrk -t2 -c${connections} -d${seconds}s, ${rounds} rounds (medians), ${availableParallelism()} cores, all on loopback, load average after: ${load}:\n\n`)
    process.stdout.write('| path | req/s | p50 ms | p99 ms | errors | vs nginx | vs haproxy |\n| --- | --- | --- | --- | --- | --- | --- |\n')
    for (const s of summary) {
      const tlsRow = s.name.startsWith('TLS: ')
      const [ngRps, hpRps] = tlsRow ? [rpsOf('TLS: nginx'), rpsOf('TLS: haproxy')] : [rpsOf('nginx'), rpsOf('haproxy')]
      process.stdout.write(`| ${s.name} | ${s.rps.toFixed(0)} | ${s.p50.toFixed(2)} | ${s.p99.toFixed(2)} | ${s.errors} | ${(s.rps / ngRps).toFixed(2)}x | ${(s.rps / hpRps).toFixed(2)}x |\n`)
    }
  } finally {
    await t.run()
  }
}

await main()

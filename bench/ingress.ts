// Ingress data path throughput: the same upstream behind Skiff's ingress
// workers, nginx and haproxy, all on loopback in the same run, and the
// direct path (wrk straight at the upstream) as the ceiling. The upstream is
// an nginx `return 200` so it is never the bottleneck of one proxy hop.
// A bare Node.js proxy (bench/bare-proxy.ts, one process per core) is the
// floor: the Node.js HTTP stack alone, without Skiff's routing and checks.
// Access logs are off everywhere (Skiff's workers at log level warn).
// Each proxy keeps upstream connections alive (nginx `keepalive`, haproxy
// `http-reuse always`, Skiff's per-endpoint agents) and routes by Host + path.
//
//   node bench/ingress.ts            (BENCH_SECONDS=10, BENCH_ROUNDS=3, BENCH_CONNECTIONS=32)
//
// Needs wrk, nginx and haproxy (Debian packages wrk, nginx-light, haproxy).
// Everything listens on 127.0.0.1 free ports and is stopped by its pid.

import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { eventually, freePort } from '../lib/net.ts'
import { silentLogger } from '../lib/log.ts'
import { WorkerPool } from '../dataplane/ingress/pool.ts'
import type { IngressSnapshot } from '../dataplane/ingress/snapshot.ts'
import { httpRequest } from '../test/harness/http.ts'
import { log, parseWrk, teardowns, type WrkResult } from './harness.ts'

const run = promisify(execFile)
const seconds = Number(process.env.BENCH_SECONDS ?? 10)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32)
const host = 'bench.example.test'

async function need(cmd: string, args: string[], pkg: string): Promise<void> {
  await run(cmd, args).catch((e: any) => {
    if (e.code === 'ENOENT') throw new Error(`${cmd} not found: apt-get install ${pkg}`)
  })
}

function daemon(t: ReturnType<typeof teardowns>, cmd: string, args: string[]): ChildProcess {
  const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] })
  t.teardown(() => {
    if (p.exitCode === null) p.kill('SIGTERM')
  })
  return p
}

async function listening(port: number): Promise<void> {
  const status = () => httpRequest({ ip: '127.0.0.1', port, host }).then((r) => r.status, () => 0)
  await eventually(async () => (await status()) === 200, { timeout: 15_000, what: `port ${port} answering 200 for Host ${host}` })
}

async function nginxConf(dir: string, name: string, body: string): Promise<string> {
  const file = join(dir, `${name}.conf`)
  await writeFile(file, `daemon off; worker_processes ${availableParallelism()}; pid ${dir}/${name}.pid; error_log stderr error;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path ${dir}/${name}-body; proxy_temp_path ${dir}/${name}-proxy;
  fastcgi_temp_path ${dir}/${name}-f; uwsgi_temp_path ${dir}/${name}-u; scgi_temp_path ${dir}/${name}-s;
  ${body} }
`)
  return file
}

function snapshot(upstreamPort: number): IngressSnapshot {
  return {
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

async function wrk(port: number): Promise<WrkResult> {
  const { stdout } = await run('wrk', ['-t2', `-c${connections}`, `-d${seconds}s`, '--latency', '-H', `Host: ${host}`, `http://127.0.0.1:${port}/`], { timeout: (seconds + 30) * 1000 })
  return parseWrk(stdout)
}

async function main(): Promise<void> {
  await need('wrk', ['--version'], 'wrk')
  await need('nginx', ['-v'], 'nginx-light')
  await need('haproxy', ['-v'], 'haproxy')
  const t = teardowns()
  const dir = await mkdtemp(join(tmpdir(), 'skiff-bench-ingress-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  try {
    const [up, ng, hp, sk, skHttps, bare] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()])
    const bareProxy = fileURLToPath(new URL('./bare-proxy.ts', import.meta.url))
    for (let i = 0; i < availableParallelism(); i++) daemon(t, process.execPath, [bareProxy, String(up), String(bare)])
    daemon(t, 'nginx', ['-c', await nginxConf(dir, 'upstream', `server { listen 127.0.0.1:${up}; keepalive_requests 100000; location / { return 200 "ok\\n"; } }`)])
    daemon(t, 'nginx', ['-c', await nginxConf(dir, 'proxy', `upstream up { server 127.0.0.1:${up}; keepalive 64; }
  server { listen 127.0.0.1:${ng}; server_name ${host}; keepalive_requests 100000;
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
  acl h hdr(host) -i ${host}
  use_backend be if h
backend be
  http-reuse always
  server up 127.0.0.1:${up}
`)
    daemon(t, 'haproxy', ['-f', hcfg, '-db'])
    const pool = new WorkerPool({ config: { className: 'external', addresses: ['127.0.0.1'], httpPort: sk, httpsPort: skHttps, nodeName: 'bench' }, workers: availableParallelism(), logger: silentLogger(), logLevel: 'warn' })
    t.teardown(() => pool.stop())
    await pool.start()
    pool.apply(snapshot(up))
    await pool.waitForGeneration(1, 10_000)
    const targets: Array<[string, number]> = [['direct (upstream)', up], ['skiff ingress', sk], ['bare Node.js proxy', bare], ['nginx', ng], ['haproxy', hp]]
    for (const [, port] of targets) await listening(port)
    for (const [, port] of targets) await run('wrk', ['-t1', '-c4', '-d2s', '-H', `Host: ${host}`, `http://127.0.0.1:${port}/`]) // warm-up
    const rows: Array<{ name: string; r: WrkResult }> = []
    for (let round = 1; round <= rounds; round++) {
      for (const [name, port] of targets) {
        const r = await wrk(port)
        log(`round ${round} ${name}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, errors ${r.errors}`)
        rows.push({ name, r })
      }
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    const summary = targets.map(([name]) => {
      const mine = rows.filter((x) => x.name === name).map((x) => x.r)
      return { name, rps: median(mine.map((r) => r.rps)), p50: median(mine.map((r) => r.p50)), p99: median(mine.map((r) => r.p99)), errors: mine.reduce((a, r) => a + r.errors, 0) }
    })
    const nginxRps = summary.find((s) => s.name === 'nginx')!.rps
    const haproxyRps = summary.find((s) => s.name === 'haproxy')!.rps
    process.stdout.write(`Ingress data path, wrk -t2 -c${connections} -d${seconds}s, ${rounds} rounds (medians), ${availableParallelism()} cores, all on loopback:\n\n`)
    process.stdout.write('| path | req/s | p50 ms | p99 ms | errors | vs nginx | vs haproxy |\n| --- | --- | --- | --- | --- | --- | --- |\n')
    for (const s of summary) {
      process.stdout.write(`| ${s.name} | ${s.rps.toFixed(0)} | ${s.p50.toFixed(2)} | ${s.p99.toFixed(2)} | ${s.errors} | ${(s.rps / nginxRps).toFixed(2)}x | ${(s.rps / haproxyRps).toFixed(2)}x |\n`)
    }
  } finally {
    await t.run()
  }
}

await main()

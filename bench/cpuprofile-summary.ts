// Where a .cpuprofile's time went (cpuprofile.ts or `node --cpu-prof`):
// idle, GC and busy shares; self time by function and by file; inclusive
// time by file (a file counts once per sample however often it is on the
// stack), so "the request handler", "the store", "the watch fan-out" read
// as phases. Markdown tables on stdout.
//
//   node bench/cpuprofile-summary.ts /tmp/prof/apiserver.cpuprofile [top=20] [FROM_US-TO_US]
//
// A window keeps only the samples taken in it (the profile's clock is
// CLOCK_MONOTONIC in microseconds, as process.hrtime.bigint() / 1000n):
// bench/pod-startup.ts prints the window of each pod phase.

import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

/** A short file name: the path from the repo's top folders, node: internals as they are, `(native)` for V8 builtins. */
export function fileOf(url: string): string {
  if (!url) return '(native)'
  const u = url.replace(/^file:\/\//, '')
  const m = /\/((?:controlplane|lib|bench|node|dataplane|cli)\/.*)$/.exec(u) ?? /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)
  return m ? m[1]! : u
}

/**
 * Phases of a Skiff process, by file: a sample belongs to the phase of the
 * innermost frame that names one (a native leaf such as a socket write goes
 * to whoever called it); HTTP is node's http, net, tls and stream code.
 */
const phases: Array<[string, RegExp]> = [
  ['store: Redis client, codec, change stream', /^(controlplane\/store\/|ioredis|standard-as-callback|redis-errors|denque)/],
  ['watch fan-out', /^controlplane\/apiserver\/watch\.ts|^controlplane\/client\/informer\.ts/],
  ['validation, defaults, schema', /^controlplane\/api\/(validation|defaults|schema)|^controlplane\/apiserver\/field-validation/],
  ['scheduling cycle', /^controlplane\/scheduler\/(cycle|plugins|cache|nodeinfo|resources)/],
  ['Docker client (dockerode, docker-modem)', /^(dockerode|docker-modem)$/],
  ['agent: pod sync and probes', /^node\/(pods\/|probes)/],
  ['agent: NetworkPolicy', /^dataplane\/network-policy\//],
  ['agent: service proxy', /^dataplane\/service-proxy\//],
  ['agent: DNS', /^dataplane\/dns\//],
  ['agent: ingress', /^dataplane\/ingress\//],
  ['agent: other', /^node\//],
  ['request handling (registry, handlers, authn/z, JSON)', /^controlplane\//],
  ['HTTP and TLS', /^node:(_http|https|net|tls|_tls|internal\/(streams|stream_base|tls|http))/],
]

function phaseOf(stack: string[]): string {
  for (const file of stack) for (const [name, re] of phases) if (re.test(file)) return name
  return 'other'
}

/** Only the samples taken in [fromUs, toUs] (the profile's clock: CLOCK_MONOTONIC microseconds, as process.hrtime). */
export interface Window { fromUs: number; toUs: number }

export function summarize(p: Profile, top = 20, window?: Window): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const selfFn = new Map<string, number>()
  const selfFile = new Map<string, number>()
  const inclFile = new Map<string, number>()
  const byPhase = new Map<string, number>()
  let total = 0
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v)
  let at = p.startTime
  for (let i = 0; i < p.samples.length; i++) {
    at += p.timeDeltas[i] ?? 0
    if (window && (at < window.fromUs || at > window.toUs)) continue
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000 // the time until the next sample belongs to this one
    const leaf = byId.get(p.samples[i]!)!
    total += dt
    const f = leaf.callFrame
    add(selfFn, `${f.functionName || '(anonymous)'} ${fileOf(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`, dt)
    add(selfFile, f.url ? fileOf(f.url) : f.functionName.startsWith('(') ? f.functionName : '(native)', dt)
    const seen = new Set<string>()
    const stack: string[] = []
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const fr = byId.get(id)!.callFrame
      if (fr.url) seen.add(fileOf(fr.url))
      if (fr.url) stack.push(fileOf(fr.url))
    }
    add(byPhase, f.url ? phaseOf(stack) : f.functionName.startsWith('(') && f.functionName !== '(anonymous)' ? f.functionName : phaseOf(stack), dt)
    for (const s of seen) add(inclFile, s, dt)
  }
  const pct = (v: number) => `${((100 * v) / total).toFixed(1)}%`
  const table = (title: string, m: Map<string, number>) =>
    [`| ${title} | ms | share |`, '| --- | --- | --- |', ...[...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => `| ${k} | ${v.toFixed(0)} | ${pct(v)} |`)].join('\n')
  const idle = selfFile.get('(idle)') ?? 0
  const gc = selfFile.get('(garbage collector)') ?? 0
  return [
    `Sampled ${total.toFixed(0)} ms: idle ${pct(idle)}, garbage collector ${pct(gc)}, busy ${pct(total - idle)}.`,
    '',
    table('phase', byPhase),
    '',
    table('self time by file', selfFile),
    '',
    table('inclusive time by file', inclFile),
    '',
    table('self time by function', selfFn),
    '',
  ].join('\n')
}

if (import.meta.main) {
  const [path, top, range] = process.argv.slice(2)
  if (!path) throw new Error('usage: node bench/cpuprofile-summary.ts FILE.cpuprofile [top] [FROM_US-TO_US]')
  const m = range ? /^(\d+)-(\d+)$/.exec(range) : undefined
  if (range && !m) throw new Error(`window ${range}: want FROM_US-TO_US (CLOCK_MONOTONIC microseconds, as the benchmark prints them)`)
  process.stdout.write(summarize(JSON.parse(readFileSync(path, 'utf8')) as Profile, Number(top ?? 20), m ? { fromUs: Number(m[1]), toUs: Number(m[2]) } : undefined))
}

// The upstream NetworkPolicy e2e truth tables (kubernetes/kubernetes
// test/e2e/network/netpol: reachability.go, truthtable.go), for
// test/integration/network-policy-matrix.test.ts. Pure, apart from the probe
// script's text, which runs inside a pod.
//
// A Reachability is the expected connectivity of every pod pair ("x/a" →
// "y/b"), written as upstream writes it: a default, then Expect/ExpectPeer/
// ExpectAllIngress/ExpectAllEgress overrides. It never looks at a
// NetworkPolicy: the expected tables are written by hand per case.

/** A set of pods by namespace and/or pod name; an empty field matches all (upstream's Peer). */
export interface Peer {
  namespace?: string
  pod?: string
}

/** "from → to → reachable"; a missing cell is "not probed". */
export type Observed = Record<string, Record<string, boolean | undefined>>

function split(pod: string): { namespace: string; pod: string } {
  const [namespace, name] = pod.split('/')
  return { namespace: namespace!, pod: name! }
}

export function peerMatches(peer: Peer, pod: string): boolean {
  const p = split(pod)
  return (peer.namespace === undefined || peer.namespace === p.namespace) && (peer.pod === undefined || peer.pod === p.pod)
}

export class Reachability {
  readonly pods: string[]
  #cells = new Map<string, boolean>()

  constructor(pods: string[], defaultExpectation: boolean) {
    this.pods = [...pods]
    for (const from of pods) for (const to of pods) this.#cells.set(`${from}>${to}`, defaultExpectation)
  }

  #set(from: string, to: string, v: boolean): void {
    const k = `${from}>${to}`
    if (!this.#cells.has(k)) throw new Error(`unknown pod pair ${from} → ${to}`)
    this.#cells.set(k, v)
  }

  get(from: string, to: string): boolean {
    const v = this.#cells.get(`${from}>${to}`)
    if (v === undefined) throw new Error(`unknown pod pair ${from} → ${to}`)
    return v
  }

  expect(from: string, to: string, v: boolean): this {
    this.#set(from, to, v)
    return this
  }

  /** Every pod matching `from` → every pod matching `to`. */
  expectPeer(from: Peer, to: Peer, v: boolean): this {
    for (const f of this.pods) for (const t of this.pods) if (peerMatches(from, f) && peerMatches(to, t)) this.#set(f, t, v)
    return this
  }

  /** Every pod → `to`. */
  expectAllIngress(to: string, v: boolean): this {
    for (const f of this.pods) this.#set(f, to, v)
    return this
  }

  /** `from` → every pod. */
  expectAllEgress(from: string, v: boolean): this {
    for (const t of this.pods) this.#set(from, t, v)
    return this
  }
}

export interface Mismatch {
  from: string
  to: string
  expected: boolean
  observed: boolean | undefined
}

/**
 * The cells where `observed` differs from `expected`. Loopback (a pod to
 * itself) is ignored, as upstream does (ignoreLoopback: CNIs differ, and
 * here it never leaves the pod's network namespace).
 */
export function compareReachability(expected: Reachability, observed: Observed): Mismatch[] {
  const out: Mismatch[] = []
  for (const from of expected.pods) {
    for (const to of expected.pods) {
      if (from === to) continue
      const want = expected.get(from, to)
      const got = observed[from]?.[to]
      if (got !== want) out.push({ from, to, expected: want, observed: got })
    }
  }
  return out
}

/** Upstream's truth table: a header row of destinations, one row per source, tab separated. */
export function truthTable(pods: string[], cell: (from: string, to: string) => string): string {
  const rows = [['-', ...pods].join('\t')]
  for (const from of pods) rows.push([from, ...pods.map((to) => cell(from, to))].join('\t'))
  return rows.join('\n')
}

const mark = (v: boolean | undefined) => (v === undefined ? '?' : v ? '.' : 'X')

/** Expected, observed and comparison tables as upstream prints them on failure ('.' reachable, 'X' blocked; comparison: '.' agrees, 'X' differs). */
export function describeMismatch(title: string, expected: Reachability, observed: Observed): string {
  const pods = expected.pods
  return [
    `${title}`,
    'expected:', truthTable(pods, (f, t) => mark(expected.get(f, t))),
    'observed:', truthTable(pods, (f, t) => mark(observed[f]?.[t])),
    'comparison:', truthTable(pods, (f, t) => (f === t ? '-' : observed[f]?.[t] === expected.get(f, t) ? '.' : 'X')),
  ].join('\n')
}

export type ProbeProtocol = 'tcp' | 'udp'
/** One probed service: "tcp:80", "udp:80". */
export type ProbeCell = `${ProbeProtocol}:${number}`

/**
 * The JavaScript a probe pod runs (`node -e`): every target × cell at once,
 * in parallel. TCP counts as reachable when the connection is established;
 * UDP when the echo server's answer comes back (the datagram is resent every
 * 250 ms); anything else after `timeoutMs` is unreachable. Prints one JSON
 * line {cell: {target: 0|1}}. A connection refused (RST) is unreachable too.
 */
export function probeScript(targets: Array<{ name: string; ip: string }>, cells: ProbeCell[], timeoutMs = 1000): string {
  return `const net=require('net'),dgram=require('dgram');const T=${JSON.stringify(targets)},C=${JSON.stringify(cells)};
const out={};let left=T.length*C.length;if(!left){console.log('{}');process.exit(0)}
const done=(c,n,v)=>{out[c]=out[c]||{};if(n in out[c])return;out[c][n]=v;if(--left===0){console.log(JSON.stringify(out));process.exit(0)}};
for(const c of C){const [p,port]=c.split(':');for(const t of T){setTimeout(()=>done(c,t.name,0),${timeoutMs});
if(p==='udp'){const s=dgram.createSocket('udp4');const send=()=>s.send('ping',Number(port),t.ip,()=>{});const iv=setInterval(send,250);send();
s.on('message',()=>{done(c,t.name,1);clearInterval(iv);s.close()});s.on('error',()=>{})}
else{const k=net.connect(Number(port),t.ip);k.on('connect',()=>{done(c,t.name,1);k.destroy()});k.on('error',()=>done(c,t.name,0))}}}`
}

/** The probe script's output → cell → target → reachable; undefined when the output is not the script's JSON. */
export function parseProbeOutput(stdout: string): Record<string, Record<string, boolean>> | undefined {
  const line = stdout.trim().split('\n').pop() ?? ''
  let raw: unknown
  try { raw = JSON.parse(line) } catch { return undefined }
  if (!raw || typeof raw !== 'object') return undefined
  const out: Record<string, Record<string, boolean>> = {}
  for (const [cell, row] of Object.entries(raw as Record<string, Record<string, number>>)) {
    out[cell] = Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v === 1]))
  }
  return out
}

// GET /portForward/{ns}/{pod}: connections to ports inside a pod's network
// namespace, as the kubelet serves them, over three transports:
//
//   WebSocket `SPDY/3.1+portforward.k8s.io`  kubectl 1.30+: the binary messages, concatenated,
//                                            are a SPDY/3.1 session (spdy.ts)
//   POST Upgrade: SPDY/3.1                   kubectl's fallback (X-Stream-Protocol-Version:
//                                            portforward.k8s.io): SPDY on the raw connection
//   WebSocket v4.channel.k8s.io (or v4.base64, or none offered)   client libraries:
//                                            ?port=P (repeated) opens one connection per port at once;
//                                            channel 2i is its data, 2i+1 its errors, and the first
//                                            message on each is the port, 2 bytes little-endian
//
// In SPDY the client opens, per connection, an `error` and a `data` stream
// carrying the headers `streamtype`, `port` and `requestid`; we reply to each
// at once (the client waits for that before opening the next), and once both
// of a request id are there, connect, pipe the data stream to
// the port, and write a failure as text on the error stream before closing
// it. A pair still incomplete after 30 s is reset.
//
// The connection is made inside the pod's network namespace, to
// 127.0.0.1:<port>, as the kubelet does (dockershim ran `nsenter -t <pid> -n
// socat`): here `nsenter --net=/proc/<sandbox pid>/ns/net busybox nc`, so a
// server bound only to the pod's loopback is reachable too. The agent runs as
// root; busybox-static is on every node (the local images need it).

import { spawn } from 'node:child_process'
import type Dockerode from 'dockerode'
import type { WebSocket } from 'ws'
import type { Logger } from '../lib/log.ts'
import { decodeChannel, encodeChannel, type ChannelProtocol } from './kubelet-channels.ts'
import { findBusybox } from './images/hostfacts.ts'
import { labels } from './kubelet-containers.ts'
import type { Parsed } from './kubelet-logs.ts'
import { rstStatus, type SpdySession, type SpdyStream } from './spdy.ts'

export const spdyTunnelProtocol = 'SPDY/3.1+portforward.k8s.io'
export const spdyPortForwardProtocol = 'portforward.k8s.io'
const pairTimeoutMs = 30_000

/** The pod a port-forward reaches: its sandbox's process (whose network namespace it is) and names for messages. */
export interface PodNetns {
  pid: number
  /** `<name>_<namespace>`, the kubelet's pod full name. */
  fullName: string
  uid: string
}

/** The running sandbox of a pod on this node, or a 404/400 message. */
export async function findPodNetns(docker: Dockerode, node: string, namespace: string, pod: string): Promise<{ ok: true; value: PodNetns } | { ok: false; status: number; message: string }> {
  const list = await docker.listContainers({ filters: { label: [`${labels.node}=${node}`, `${labels.namespace}=${namespace}`, `${labels.pod}=${pod}`, `${labels.role}=sandbox`] } })
  const sandbox = list.find((c) => c.State === 'running')
  if (!sandbox) return { ok: false, status: 404, message: `pod not found ("${pod}_${namespace}"): no running sandbox for it on node ${node}` }
  const info = await docker.getContainer(sandbox.Id).inspect()
  if (!info.State.Pid) return { ok: false, status: 400, message: `pod ${namespace}/${pod} has no running sandbox process` }
  return { ok: true, value: { pid: info.State.Pid, fullName: `${pod}_${namespace}`, uid: sandbox.Labels['skiff.pod.uid'] ?? '' } }
}

/** A port from a header or query value, as the kubelet parses it (1-65535). Pure. */
export function parsePort(v: string | undefined): Parsed<number> {
  if (v === undefined || v === '') return { ok: false, message: 'port is required' }
  const n = Number(v)
  if (!/^\d+$/.test(v) || !Number.isInteger(n) || n < 1 || n > 65535) return { ok: false, message: `unable to parse "${v}" as a port: must be 1-65535` }
  return { ok: true, value: n }
}

/** The `port` query of a WebSocket port-forward (repeated or comma-separated). Pure. */
export function parsePortQuery(q: URLSearchParams): Parsed<number[]> {
  const raw = q.getAll('port').flatMap((v) => v.split(','))
  if (raw.length === 0) return { ok: false, message: 'query parameter "port" is required' }
  const ports: number[] = []
  for (const v of raw) {
    const p = parsePort(v.trim())
    if (!p.ok) return p
    ports.push(p.value)
  }
  return { ok: true, value: ports }
}

interface Connection {
  stdin: NodeJS.WritableStream
  stdout: NodeJS.ReadableStream
  /** Resolves when the connection is over: undefined, or why it failed. */
  done: Promise<string | undefined>
  kill(): void
}

/** A TCP connection to 127.0.0.1:port inside the pod's network namespace, through nsenter and busybox nc. */
function connectInPod(pod: PodNetns, port: number): Connection {
  const child = spawn('nsenter', [`--net=/proc/${pod.pid}/ns/net`, '--', busybox(), 'nc', '127.0.0.1', String(port)], { stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString()
  })
  child.stdin.on('error', () => {})
  const done = new Promise<string | undefined>((resolve) => {
    child.once('error', (e) => resolve(e.message))
    child.once('close', (code) => resolve(code === 0 ? undefined : stderr.trim() || `exit code ${code}`))
  })
  const what = `error forwarding port ${port} to pod ${pod.fullName}, uid ${pod.uid}: failed to connect to localhost:${port} inside the pod's network namespace`
  return {
    stdin: child.stdin,
    stdout: child.stdout,
    done: done.then((why) => (why === undefined ? undefined : `${what}: ${why.replace(/^nc: /, '')}`)),
    kill: () => child.kill('SIGKILL'),
  }
}

let busyboxPath: string | undefined
function busybox(): string {
  busyboxPath ??= findBusybox()
  return busyboxPath
}

/** The SPDY port-forward protocol on a session (its streams from now on). */
export function serveSpdyPortForward(session: SpdySession, pod: PodNetns, log: Logger): void {
  const pairs = new Map<string, { data?: SpdyStream; error?: SpdyStream; timer: NodeJS.Timeout }>()
  const conns = new Set<Connection>()
  session.on('stream', (s) => {
    const type = s.headers.streamtype
    const port = parsePort(s.headers.port)
    if ((type !== 'data' && type !== 'error') || !port.ok) {
      log.info({ headers: s.headers }, `port-forward: stream rejected: ${type !== 'data' && type !== 'error' ? `invalid stream type "${type}"` : !port.ok && port.message}`)
      return s.reset(rstStatus.protocolError)
    }
    const key = `${s.headers.requestid ?? ''}/${port.value}`
    let pair = pairs.get(key)
    if (!pair) {
      pair = {
        timer: setTimeout(() => {
          pairs.delete(key)
          pair?.data?.reset()
          pair?.error?.reset()
        }, pairTimeoutMs),
      }
      pairs.set(key, pair)
    }
    if (pair[type]) return s.reset(rstStatus.protocolError)
    pair[type] = s
    s.on('error', () => {})
    // Accepted at once: the client waits for this reply before it opens the other stream of the pair.
    s.reply()
    if (!pair.data || !pair.error) return
    clearTimeout(pair.timer)
    pairs.delete(key)
    const { data, error } = pair
    error.resume() // the client writes nothing on it; drain its FIN
    const conn = connectInPod(pod, port.value)
    conns.add(conn)
    data.pipe(conn.stdin)
    conn.stdout.pipe(data)
    void conn.done.then((why) => {
      conns.delete(conn)
      if (why) {
        log.info({ pod: pod.fullName, port: port.value, err: why }, 'port-forward failed')
        error.write(why)
      }
      error.end()
    })
  })
  session.once('close', () => {
    for (const p of pairs.values()) clearTimeout(p.timer)
    for (const c of conns) c.kill()
  })
}

/** The client libraries' WebSocket port-forward: one connection per port, at once; the socket closes when all are over. */
export async function serveWebSocketPortForward(ws: WebSocket, protocol: ChannelProtocol, ports: number[], pod: PodNetns, log: Logger): Promise<void> {
  const send = (ch: number, data: Buffer | string) => {
    if (ws.readyState === ws.OPEN) ws.send(encodeChannel(protocol, ch, data))
  }
  const portBytes = (p: number) => Buffer.from([p & 0xff, p >> 8])
  const conns = ports.map((port, i) => {
    send(2 * i, portBytes(port))
    send(2 * i + 1, portBytes(port))
    const conn = connectInPod(pod, port)
    conn.stdout.on('data', (d: Buffer) => send(2 * i, d))
    return conn
  })
  ws.on('message', (msg: Buffer) => {
    const f = decodeChannel(protocol, msg)
    if (!f || f.ch % 2 !== 0 || f.data.length === 0) return
    conns[f.ch / 2]?.stdin.write(f.data)
  })
  ws.once('close', () => conns.forEach((c) => c.kill()))
  await Promise.all(conns.map(async (c, i) => {
    const why = await c.done
    if (why) {
      log.info({ pod: pod.fullName, port: ports[i], err: why }, 'port-forward failed')
      send(2 * i + 1, why)
    }
  }))
  if (ws.readyState === ws.OPEN) ws.close(1000)
}

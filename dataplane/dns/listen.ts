// The transport edge shared by the in-process server (server.ts) and the
// worker threads (worker.ts): one message through the handler chain, UDP and
// TCP listeners. With `reusePort` every thread binds its own sockets on the
// same address and port (SO_REUSEPORT) and the kernel spreads UDP queries
// and TCP connections across them.
//
// Bounded work: a UDP packet is handled in one bounded pass (wire.ts); TCP
// connections are capped in number, idle time, message size (64 KiB) and
// replies waiting to be written (a client that sends queries but never
// reads is cut once 1 MiB waits, instead of growing the process).

import { createSocket, type Socket } from 'node:dgram'
import { createServer, type Server, type Socket as TcpSocket } from 'node:net'
import { runChain } from './chain.ts'
import type { Handler, Reply } from './types.ts'
import { parseQuery, RCODE, rcodeReply } from './wire.ts'

export interface ListenAddress {
  host: string
  /** 0 picks a free port (the same one for UDP and TCP is not guaranteed then; tests pass a port). */
  port: number
}

export type Answer = (msg: Buffer, transport: 'udp' | 'tcp', client: string) => Reply | Promise<Reply>

const maxTcpConnections = 512
const tcpIdleMs = 10_000
export const maxTcpPendingBytes = 1 << 20

/** Answer one message with the chain; never throws (a handler that throws is SERVFAIL, reported to onError). */
export function answerWith(chain: Handler[], onError: (e: unknown) => void): Answer {
  return (msg, transport, client) => {
    const parsed = parseQuery(msg, transport, client)
    if ('drop' in parsed) return null
    if ('reply' in parsed) return parsed.reply
    const q = parsed.query
    const fail = (e: unknown): Reply => {
      onError(e)
      return rcodeReply(q, RCODE.SERVFAIL)
    }
    try {
      const r = runChain(chain, q)
      return r instanceof Promise ? r.catch(fail) : r
    } catch (e) {
      return fail(e)
    }
  }
}

// IP literals only (rinfo.address): skips dns.lookup and its extra tick per reply.
const literal = (address: string, _opts: unknown, cb: (err: Error | null, address: string, family: number) => void) => cb(null, address, 4)

export async function listenUdp(l: ListenAddress, answer: Answer, opts: { reusePort?: boolean; onError(e: Error): void }): Promise<Socket> {
  const sock = createSocket({ type: 'udp4', reusePort: opts.reusePort ?? false, lookup: literal as any })
  sock.on('message', (msg, rinfo) => {
    const r = answer(msg, 'udp', rinfo.address)
    if (r instanceof Promise) void r.then((b) => b && sock.send(b, rinfo.port, rinfo.address))
    else if (r) sock.send(r, rinfo.port, rinfo.address)
  })
  sock.on('error', opts.onError)
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject)
    sock.bind(l.port, l.host, () => {
      sock.off('error', reject)
      resolve()
    })
  }).catch((e) => {
    sock.close()
    throw e
  })
  try {
    sock.setRecvBufferSize(4 << 20)
  } catch {
    // best effort: bounded by net.core.rmem_max
  }
  return sock
}

export async function listenTcp(l: ListenAddress, answer: Answer, opts: { reusePort?: boolean; conns: Set<TcpSocket> }): Promise<Server> {
  const srv = createServer((c) => serveTcp(c, answer, opts.conns))
  srv.maxConnections = maxTcpConnections
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject)
    srv.listen({ port: l.port, host: l.host, reusePort: opts.reusePort ?? false }, () => {
      srv.off('error', reject)
      resolve()
    })
  })
  return srv
}

/** RFC 7766 framing (2-byte length); replies may come back out of order. */
function serveTcp(c: TcpSocket, answer: Answer, conns: Set<TcpSocket>): void {
  conns.add(c)
  c.setTimeout(tcpIdleMs, () => c.destroy())
  c.on('close', () => conns.delete(c))
  c.on('error', () => c.destroy())
  let buf = Buffer.alloc(0)
  const write = (b: Reply) => {
    if (!b || c.destroyed) return
    const len = Buffer.alloc(2)
    len.writeUInt16BE(b.length)
    c.write(Buffer.concat([len, b]))
    if (c.writableLength > maxTcpPendingBytes) c.destroy()
  }
  c.on('data', (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d
    while (!c.destroyed && buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      const msg = buf.subarray(2, 2 + buf.readUInt16BE(0))
      buf = buf.subarray(2 + msg.length)
      const r = answer(msg, 'tcp', c.remoteAddress ?? '')
      if (r instanceof Promise) void r.then(write)
      else write(r)
    }
  })
}

export async function closeListeners(udp: Socket[], tcp: Server[], conns: Set<TcpSocket>): Promise<void> {
  for (const s of udp) s.close()
  for (const c of conns) c.destroy()
  await Promise.all(tcp.map((s) => new Promise((r) => s.close(r))))
}

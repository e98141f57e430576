// SPDY/3.1, the server half that Kubernetes' port-forward needs (kubectl's
// SPDY client is Go's spdystream, through the apiserver). Frames:
//
//   control: [1|version 15 bits = 3][type 16][flags 8][length 24][payload]
//   data:    [0|stream id 31][flags 8][length 24][payload]          flags: FIN 0x01
//
//   SYN_STREAM (1)    stream id, associated id, priority, slot, header block   (the client opens a stream)
//   SYN_REPLY (2)     stream id, header block                                   (we accept it)
//   RST_STREAM (3)    stream id, status                                         (either side aborts one)
//   SETTINGS (4), WINDOW_UPDATE (9)   read and ignored: spdystream never sends WINDOW_UPDATE,
//                     so a sender that honoured the 64 KiB window would stall; we do not keep one
//   PING (6)          echoed
//   GOAWAY (7)        the peer is going: every stream ends
//   HEADERS (8)       inflated (to keep the shared zlib context in step) and ignored
//
// Header blocks are [count 32][len 32][name][len 32][value]... (names in
// lower case, several values joined by NUL), compressed with zlib using the
// SPDY/3 dictionary, one zlib stream per direction for the whole session,
// each block ending in a sync flush. Node's zlib is asynchronous, so frames
// are handled strictly in order through a promise chain on each side.

import { EventEmitter } from 'node:events'
import { Duplex } from 'node:stream'
import { constants, createDeflate, createInflate, type Deflate, type Inflate } from 'node:zlib'

const version = 3
export const frameType = { synStream: 1, synReply: 2, rstStream: 3, settings: 4, ping: 6, goaway: 7, headers: 8, windowUpdate: 9 } as const
export const flagFin = 0x01
/** RST_STREAM status codes used here. */
export const rstStatus = { protocolError: 1, refusedStream: 3, cancel: 5, internalError: 6 } as const
// A DATA frame's payload is at most 24 bits long; smaller frames keep latency even.
const maxDataFrame = 32 * 1024
// A frame longer than this is a protocol error (a header block has no business being this large).
const maxFrame = 16 * 1024 * 1024

/** The SPDY/3 header compression dictionary (SPDY Protocol draft 3, section 2.6.10.1; 1,423 bytes). */
export const spdy3Dictionary = Buffer.from([
  'AAAAB29wdGlvbnMAAAAEaGVhZAAAAARwb3N0AAAAA3B1dAAAAAZkZWxldGUAAAAFdHJhY2UAAAAGYWNjZXB0AAAADmFjY2VwdC1j',
  'aGFyc2V0AAAAD2FjY2VwdC1lbmNvZGluZwAAAA9hY2NlcHQtbGFuZ3VhZ2UAAAANYWNjZXB0LXJhbmdlcwAAAANhZ2UAAAAFYWxs',
  'b3cAAAANYXV0aG9yaXphdGlvbgAAAA1jYWNoZS1jb250cm9sAAAACmNvbm5lY3Rpb24AAAAMY29udGVudC1iYXNlAAAAEGNvbnRl',
  'bnQtZW5jb2RpbmcAAAAQY29udGVudC1sYW5ndWFnZQAAAA5jb250ZW50LWxlbmd0aAAAABBjb250ZW50LWxvY2F0aW9uAAAAC2Nv',
  'bnRlbnQtbWQ1AAAADWNvbnRlbnQtcmFuZ2UAAAAMY29udGVudC10eXBlAAAABGRhdGUAAAAEZXRhZwAAAAZleHBlY3QAAAAHZXhw',
  'aXJlcwAAAARmcm9tAAAABGhvc3QAAAAIaWYtbWF0Y2gAAAARaWYtbW9kaWZpZWQtc2luY2UAAAANaWYtbm9uZS1tYXRjaAAAAAhp',
  'Zi1yYW5nZQAAABNpZi11bm1vZGlmaWVkLXNpbmNlAAAADWxhc3QtbW9kaWZpZWQAAAAIbG9jYXRpb24AAAAMbWF4LWZvcndhcmRz',
  'AAAABnByYWdtYQAAABJwcm94eS1hdXRoZW50aWNhdGUAAAATcHJveHktYXV0aG9yaXphdGlvbgAAAAVyYW5nZQAAAAdyZWZlcmVy',
  'AAAAC3JldHJ5LWFmdGVyAAAABnNlcnZlcgAAAAJ0ZQAAAAd0cmFpbGVyAAAAEXRyYW5zZmVyLWVuY29kaW5nAAAAB3VwZ3JhZGUA',
  'AAAKdXNlci1hZ2VudAAAAAR2YXJ5AAAAA3ZpYQAAAAd3YXJuaW5nAAAAEHd3dy1hdXRoZW50aWNhdGUAAAAGbWV0aG9kAAAAA2dl',
  'dAAAAAZzdGF0dXMAAAAGMjAwIE9LAAAAB3ZlcnNpb24AAAAISFRUUC8xLjEAAAADdXJsAAAABnB1YmxpYwAAAApzZXQtY29va2ll',
  'AAAACmtlZXAtYWxpdmUAAAAGb3JpZ2luMTAwMTAxMjAxMjAyMjA1MjA2MzAwMzAyMzAzMzA0MzA1MzA2MzA3NDAyNDA1NDA2NDA3',
  'NDA4NDA5NDEwNDExNDEyNDEzNDE0NDE1NDE2NDE3NTAyNTA0NTA1MjAzIE5vbi1BdXRob3JpdGF0aXZlIEluZm9ybWF0aW9uMjA0',
  'IE5vIENvbnRlbnQzMDEgTW92ZWQgUGVybWFuZW50bHk0MDAgQmFkIFJlcXVlc3Q0MDEgVW5hdXRob3JpemVkNDAzIEZvcmJpZGRl',
  'bjQwNCBOb3QgRm91bmQ1MDAgSW50ZXJuYWwgU2VydmVyIEVycm9yNTAxIE5vdCBJbXBsZW1lbnRlZDUwMyBTZXJ2aWNlIFVuYXZh',
  'aWxhYmxlSmFuIEZlYiBNYXIgQXByIE1heSBKdW4gSnVsIEF1ZyBTZXB0IE9jdCBOb3YgRGVjIDAwOjAwOjAwIE1vbiwgVHVlLCBX',
  'ZWQsIFRodSwgRnJpLCBTYXQsIFN1biwgR01UY2h1bmtlZCx0ZXh0L2h0bWwsaW1hZ2UvcG5nLGltYWdlL2pwZyxpbWFnZS9naWYs',
  'YXBwbGljYXRpb24veG1sLGFwcGxpY2F0aW9uL3hodG1sK3htbCx0ZXh0L3BsYWluLHRleHQvamF2YXNjcmlwdCxwdWJsaWNwcml2',
  'YXRlbWF4LWFnZT1nemlwLGRlZmxhdGUsc2RjaGNoYXJzZXQ9dXRmLThjaGFyc2V0PWlzby04ODU5LTEsdXRmLSwqLGVucT0wLg==',
].join(''), 'base64')

export type Headers = Record<string, string>

/** The header block as name/value pairs (uncompressed). Pure. */
export function encodeHeaderBlock(h: Headers): Buffer {
  const parts: Buffer[] = [u32(Object.keys(h).length)]
  for (const [k, v] of Object.entries(h)) {
    const name = Buffer.from(k.toLowerCase())
    const value = Buffer.from(v)
    parts.push(u32(name.length), name, u32(value.length), value)
  }
  return Buffer.concat(parts)
}

/** An uncompressed header block back to headers (several values joined by NUL stay joined). Throws on a malformed block. Pure. */
export function decodeHeaderBlock(b: Buffer): Headers {
  const out: Headers = {}
  let off = 0
  const take = (): string => {
    if (off + 4 > b.length) throw new Error('truncated header block')
    const len = b.readUInt32BE(off)
    if (off + 4 + len > b.length) throw new Error('truncated header block')
    const s = b.subarray(off + 4, off + 4 + len).toString('utf8')
    off += 4 + len
    return s
  }
  if (b.length < 4) throw new Error('truncated header block')
  const n = b.readUInt32BE(0)
  off = 4
  for (let i = 0; i < n; i++) {
    const name = take()
    out[name.toLowerCase()] = take()
  }
  return out
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n >>> 0)
  return b
}

export function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8)
  h.writeUInt16BE(0x8000 | version, 0)
  h.writeUInt16BE(type, 2)
  h.writeUInt32BE(payload.length, 4)
  h[4] = flags
  return Buffer.concat([h, payload])
}

export function dataFrame(streamId: number, flags: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8)
  h.writeUInt32BE(streamId & 0x7fffffff, 0)
  h.writeUInt32BE(payload.length, 4)
  h[4] = flags
  return Buffer.concat([h, payload])
}

export type Frame =
  | { control: true; type: number; flags: number; payload: Buffer }
  | { control: false; streamId: number; flags: number; payload: Buffer }

/** Splits a byte stream into frames; keeps an incomplete frame for the next push. */
export class FrameReader {
  #buf: Buffer = Buffer.alloc(0)

  push(chunk: Buffer): Frame[] {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk
    const out: Frame[] = []
    while (this.#buf.length >= 8) {
      const len = this.#buf.readUInt32BE(4) & 0xffffff
      if (len > maxFrame) throw new Error(`SPDY frame of ${len} bytes`)
      if (this.#buf.length < 8 + len) break
      const flags = this.#buf[4]!
      const payload = this.#buf.subarray(8, 8 + len)
      if (this.#buf[0]! & 0x80) {
        const v = this.#buf.readUInt16BE(0) & 0x7fff
        if (v !== version) throw new Error(`SPDY version ${v}, not 3`)
        out.push({ control: true, type: this.#buf.readUInt16BE(2), flags, payload })
      } else {
        out.push({ control: false, streamId: this.#buf.readUInt32BE(0) & 0x7fffffff, flags, payload })
      }
      this.#buf = this.#buf.subarray(8 + len)
    }
    return out
  }
}

/** Runs `data` through a zlib stream and resolves with what a sync flush gives out. */
function zlibStep(z: Deflate | Inflate, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const onData = (c: Buffer) => chunks.push(c)
    const onError = (e: Error) => {
      z.off('data', onData)
      reject(e)
    }
    z.on('data', onData)
    z.once('error', onError)
    z.write(data)
    z.flush(constants.Z_SYNC_FLUSH, () => {
      z.off('data', onData)
      z.off('error', onError)
      resolve(Buffer.concat(chunks))
    })
  })
}

/**
 * A stream the client opened. Readable: the client's DATA; writable: our
 * DATA back (end() sends FIN). `reply()` accepts it (SYN_REPLY), `reset()`
 * aborts it (RST_STREAM).
 */
export class SpdyStream extends Duplex {
  readonly id: number
  readonly headers: Headers
  #session: SpdySession
  #replied = false
  #closedByUs = false

  constructor(session: SpdySession, id: number, headers: Headers) {
    super({ allowHalfOpen: true })
    this.#session = session
    this.id = id
    this.headers = headers
  }

  reply(): void {
    if (this.#replied) return
    this.#replied = true
    this.#session.sendHeaders(frameType.synReply, this.id, {})
  }

  reset(status: number = rstStatus.cancel): void {
    if (this.#closedByUs) return
    this.#closedByUs = true
    this.#session.send(controlFrame(frameType.rstStream, 0, Buffer.concat([u32(this.id), u32(status)])))
    this.#session.forget(this.id)
    this.destroy()
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.reply()
    for (let off = 0; off < chunk.length; off += maxDataFrame) this.#session.send(dataFrame(this.id, 0, chunk.subarray(off, off + maxDataFrame)))
    this.#session.whenDrained(cb)
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.reply()
    if (!this.#closedByUs) this.#session.send(dataFrame(this.id, flagFin, Buffer.alloc(0)))
    this.#session.whenDrained(cb)
  }
}

export interface SpdyTransport {
  /** Writes bytes to the peer; calls `done` once they left (for backpressure). */
  write(b: Buffer, done: () => void): void
  close(): void
}

/**
 * The server side of one SPDY/3.1 session over a byte transport. Emits
 * 'stream' for every SYN_STREAM (the listener replies or resets it), 'close'
 * once, and 'error' for a protocol error (after which it closes).
 */
export class SpdySession extends EventEmitter<{ stream: [SpdyStream]; close: []; error: [Error] }> {
  #transport: SpdyTransport
  #reader = new FrameReader()
  #inflate = createInflate({ dictionary: spdy3Dictionary })
  #deflate = createDeflate({ dictionary: spdy3Dictionary })
  #inChain: Promise<void> = Promise.resolve()
  #outChain: Promise<void> = Promise.resolve()
  #streams = new Map<number, SpdyStream>()
  #unsent = 0
  #drainWaiters: Array<() => void> = []
  #closed = false
  /** Output bytes in flight above which writers wait. */
  static highWater = 1024 * 1024

  constructor(transport: SpdyTransport) {
    super()
    this.#transport = transport
    this.#inflate.on('error', () => {})
    this.#deflate.on('error', () => {})
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Output bytes queued to the transport and not yet written out. */
  get unsent(): number {
    return this.#unsent
  }

  /** Closes once every frame queued so far has been handed to the transport. */
  closeWhenSent(): void {
    void this.#outChain.then(() => this.close())
  }

  /** Bytes from the peer. */
  push(chunk: Buffer): void {
    if (this.#closed) return
    let frames: Frame[]
    try {
      frames = this.#reader.push(chunk)
    } catch (e) {
      return this.#fail(e as Error)
    }
    for (const f of frames) this.#inChain = this.#inChain.then(() => this.#handle(f)).catch((e) => this.#fail(e as Error))
  }

  /** Queues a frame after every frame queued before it (header blocks are compressed in order). */
  send(frame: Buffer | Promise<Buffer>): void {
    if (this.#closed) return
    const p = Promise.resolve(frame)
    this.#outChain = this.#outChain.then(async () => {
      const b = await p
      if (this.#closed) return
      this.#unsent += b.length
      this.#transport.write(b, () => {
        this.#unsent -= b.length
        if (this.#unsent < SpdySession.highWater / 2) for (const w of this.#drainWaiters.splice(0)) w()
      })
    })
  }

  sendHeaders(type: number, streamId: number, headers: Headers, flags = 0): void {
    const block = encodeHeaderBlock(headers)
    // Compressing takes the deflate context in order: start it now, in send order.
    const compressed = (this.#deflateChain = this.#deflateChain.then(() => zlibStep(this.#deflate, block)))
    this.send(compressed.then((c) => controlFrame(type, flags, Buffer.concat([u32(streamId), c]))))
  }
  #deflateChain: Promise<Buffer> = Promise.resolve(Buffer.alloc(0))

  /** Calls `cb` once the output in flight is below the high-water mark. */
  whenDrained(cb: () => void): void {
    if (this.#closed || this.#unsent < SpdySession.highWater) cb()
    else this.#drainWaiters.push(cb)
  }

  forget(id: number): void {
    this.#streams.delete(id)
  }

  /** Ends the session: every stream is destroyed, the transport closed. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    for (const s of this.#streams.values()) s.destroy()
    this.#streams.clear()
    for (const w of this.#drainWaiters.splice(0)) w()
    this.#inflate.close()
    this.#deflate.close()
    this.#transport.close()
    this.emit('close')
  }

  #fail(e: Error): void {
    if (this.#closed) return
    this.emit('error', e)
    this.close()
  }

  async #handle(f: Frame): Promise<void> {
    if (this.#closed) return
    if (!f.control) {
      const s = this.#streams.get(f.streamId)
      if (!s) return // data for a stream already gone: dropped
      if (f.payload.length > 0) s.push(Buffer.from(f.payload))
      if (f.flags & flagFin) s.push(null)
      return
    }
    const p = f.payload
    switch (f.type) {
      case frameType.synStream: {
        if (p.length < 10) throw new Error('short SYN_STREAM')
        const id = p.readUInt32BE(0) & 0x7fffffff
        const headers = decodeHeaderBlock(await zlibStep(this.#inflate, p.subarray(10)))
        if (this.#closed) return
        const s = new SpdyStream(this, id, headers)
        this.#streams.set(id, s)
        s.once('close', () => this.#streams.delete(id))
        if (f.flags & flagFin) s.push(null)
        this.emit('stream', s)
        return
      }
      case frameType.synReply:
      case frameType.headers:
        if (p.length < 4) throw new Error('short header frame')
        await zlibStep(this.#inflate, p.subarray(4))
        return
      case frameType.rstStream: {
        const s = this.#streams.get(p.readUInt32BE(0) & 0x7fffffff)
        this.#streams.delete(p.readUInt32BE(0) & 0x7fffffff)
        s?.destroy()
        return
      }
      case frameType.ping:
        this.send(controlFrame(frameType.ping, 0, Buffer.from(p)))
        return
      case frameType.goaway:
        this.close()
        return
      default:
        return // SETTINGS, WINDOW_UPDATE, unknown types: ignored
    }
  }
}

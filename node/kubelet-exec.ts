// GET /exec/{ns}/{pod}/{container}?command=..&stdin=&stdout=&stderr=&tty=
// and GET /attach/{ns}/{pod}/{container}?stdin=&stdout=&stderr=&tty= over a
// WebSocket with one of the Kubernetes channel protocols (kubelet-channels.ts):
// 0 stdin (in), 1 stdout, 2 stderr, 3 status (then the socket closes),
// 4 resize (in, JSON {Width, Height}, with a TTY), 255 close (in, v5: [255, 0]
// is stdin EOF). exec runs the command as a Docker exec, attach attaches to
// the container's own stdio; both on a hijacked Docker connection.

import type { Duplex } from 'node:stream'
import type Dockerode from 'dockerode'
import type { Logger } from '../lib/log.ts'
import type { WebSocket } from 'ws'
import { channel, decodeChannel, encodeChannel, hasCloseSignal, hasResize, statusMessage, type ChannelProtocol } from './kubelet-channels.ts'
import { rstStatus, type SpdySession, type SpdyStream } from './spdy.ts'
import { FrameDecoder } from './kubelet-frames.ts'
import type { Parsed } from './kubelet-logs.ts'

export interface StreamOptions {
  stdin: boolean
  stdout: boolean
  stderr: boolean
  tty: boolean
}

export interface ExecOptions extends StreamOptions {
  command: string[]
}

const flag = (q: URLSearchParams, name: string) => q.get(name) === 'true' || q.get(name) === '1'

/** The attach query (and exec's stream flags), validated like the kubelet does. Pure. */
export function parseStreamOptions(q: URLSearchParams): Parsed<StreamOptions> {
  const o: StreamOptions = { stdin: flag(q, 'stdin'), stdout: flag(q, 'stdout'), stderr: flag(q, 'stderr'), tty: flag(q, 'tty') }
  if (!o.stdin && !o.stdout && !o.stderr) return { ok: false, message: 'you must specify at least 1 of stdin, stdout, stderr' }
  if (o.tty && o.stderr) return { ok: false, message: 'tty and stderr cannot both be true' }
  return { ok: true, value: o }
}

/** The exec query, validated like the kubelet does. Pure. */
export function parseExecOptions(q: URLSearchParams): Parsed<ExecOptions> {
  const command = q.getAll('command')
  if (command.length === 0) return { ok: false, message: 'you must specify at least 1 command' }
  const s = parseStreamOptions(q)
  return s.ok ? { ok: true, value: { command, ...s.value } } : s
}

/** The status-channel document for a finished command, as the kubelet writes it. Pure. */
export function execStatus(exitCode: number | null | undefined, command: string[]): Record<string, unknown> {
  if (exitCode === 0) return successStatus
  if (typeof exitCode !== 'number') return failureStatus(`error executing command ${fmtCommand(command)}: the exit code could not be determined`)
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command ${fmtCommand(command)}, exit code ${exitCode}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
  }
}

const successStatus = { metadata: {}, status: 'Success' }

export function failureStatus(message: string): Record<string, unknown> {
  return { metadata: {}, status: 'Failure', message, reason: 'InternalError', code: 500 }
}

const fmtCommand = (command: string[]) => `[${command.join(' ')}]`

// Past this much unsent output, stop reading from Docker until the client catches up.
const highWaterBytes = 4 * 1024 * 1024

/** A started Docker stream: the hijacked connection and what the session needs around it. */
interface Started {
  stream: Duplex
  /** Docker sends raw bytes with a TTY, its multiplexed frames without. */
  tty: boolean
  resize(w: number, h: number): Promise<unknown>
  /** The Status once the stream has ended. */
  status(): Promise<Record<string, unknown>>
}

/**
 * Where a session's streams go: a WebSocket with a channel protocol
 * (wsSessionIO) or SPDY streams (spdySessionIO). Input arrives as channel
 * and data: 0 stdin, 4 resize (one JSON object), 255 with [0] stdin EOF.
 */
export interface SessionIO {
  open(): boolean
  /** Output on stdout (1) or stderr (2); `done` once it left. */
  send(ch: 1 | 2, data: Buffer, done: () => void): void
  /** Output bytes not yet written out. */
  backlog(): number
  /** Writes the final status as the protocol wants it, then closes. */
  finish(status: Record<string, unknown>): void
  onInput(fn: (ch: number, data: Buffer) => void): void
  onClose(fn: () => void): void
}

export interface SessionOptions {
  docker: Dockerode
  containerId: string
  io: SessionIO
  logger: Logger
  /** Whether resize messages are honoured (the protocol has the channel). */
  resize: boolean
}

/** Runs one exec session; resolves when the client is gone. */
export function runExec(opts: SessionOptions & { exec: ExecOptions }): Promise<void> {
  const o = opts.exec
  return runSession(opts, o, `error executing command ${fmtCommand(o.command)}`, async () => {
    const exec = await opts.docker.getContainer(opts.containerId).exec({ Cmd: o.command, AttachStdin: o.stdin, AttachStdout: o.stdout, AttachStderr: o.stderr, Tty: o.tty })
    const stream = (await exec.start({ hijack: true, stdin: o.stdin, Tty: o.tty })) as Duplex
    return { stream, tty: o.tty, resize: (w, h) => exec.resize({ w, h }), status: async () => execStatus(await exitCodeOf(exec), o.command) }
  })
}

/**
 * Runs one attach session: the container's own stdin/stdout/stderr. It ends
 * (Success, as the kubelet answers a finished attach) when the container's
 * output ends, i.e. the container exits.
 */
export function runAttach(opts: SessionOptions & { containerTty: boolean; attach: StreamOptions }): Promise<void> {
  const o = opts.attach
  return runSession(opts, o, 'error attaching to container', async () => {
    const container = opts.docker.getContainer(opts.containerId)
    const stream = (await container.attach({ stream: true, hijack: true, stdin: o.stdin, stdout: o.stdout, stderr: o.stderr })) as unknown as Duplex
    return { stream, tty: opts.containerTty, resize: (w, h) => container.resize({ w, h }), status: async () => successStatus }
  })
}

async function runSession(opts: SessionOptions, o: StreamOptions, what: string, start: () => Promise<Started>): Promise<void> {
  const { io } = opts
  const input = new InputBuffer()
  io.onInput((ch, data) => input.receive(ch, data))
  const closed = new Promise<void>((resolve) => io.onClose(resolve))
  let started: Started
  try {
    started = await start()
  } catch (e) {
    opts.logger.info({ err: (e as Error).message }, 'stream session failed to start')
    if (io.open()) io.finish(failureStatus(`${what}: ${(e as Error).message}`))
    return await closed
  }
  const { stream } = started
  io.onClose(() => stream.destroy())
  input.attach({ stream, stdin: o.stdin, resize: o.tty && opts.resize ? (w, h) => void started.resize(w, h).catch(() => {}) : undefined })
  pipeOutput(stream, io, o, started.tty)
  await new Promise<void>((resolve) => {
    stream.once('close', () => resolve())
    stream.once('end', () => resolve())
    stream.once('error', () => resolve())
  })
  const status = await started.status()
  if (io.open()) io.finish(status)
  await closed
}

/** A session over a WebSocket with one of the channel protocols. */
export function wsSessionIO(ws: WebSocket, protocol: ChannelProtocol, o: StreamOptions): SessionIO {
  const send = (ch: number, data: Buffer | string, cb?: () => void) => ws.send(encodeChannel(protocol, ch, data), cb)
  // The kubelet's first message: an empty one on the lowest writable channel, saying the streams are set up.
  send(o.stdout ? channel.stdout : o.stderr ? channel.stderr : channel.status, Buffer.alloc(0))
  return {
    open: () => ws.readyState === ws.OPEN,
    send: (ch, data, done) => send(ch, data, done),
    backlog: () => ws.bufferedAmount,
    finish: (status) => {
      const text = statusMessage(protocol, status)
      if (text !== undefined) send(channel.status, text)
      ws.close(1000)
    },
    onInput: (fn) => ws.on('message', (msg: Buffer) => {
      const f = decodeChannel(protocol, msg)
      if (!f) return
      if (f.ch === channel.close && !hasCloseSignal(protocol)) return
      fn(f.ch, f.data)
    }),
    onClose: (fn) => ws.once('close', fn),
  }
}

/** The remote-command protocols over SPDY (X-Stream-Protocol-Version), the client's first supported one wins. */
export const spdyRemoteCommandProtocols = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io']

/**
 * A session over SPDY (kubectl's KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false):
 * the client opens one stream per channel, `streamtype` error, stdin,
 * stdout, stderr and (with a TTY, from v3) resize; each is answered at once,
 * and the session starts when all the request asks for are there (30 s at
 * most). stdin EOF is the stdin stream's FIN; resize is a sequence of JSON
 * objects on its stream; the status goes on the error stream as the
 * WebSocket protocols write it, then everything closes.
 */
export function spdySessionIO(session: SpdySession, protocol: ChannelProtocol, o: StreamOptions, timeoutMs = 30_000): Promise<SessionIO> {
  const want = ['error', ...(o.stdin ? ['stdin'] : []), ...(o.stdout ? ['stdout'] : []), ...(o.stderr ? ['stderr'] : []), ...(o.tty && hasResize(protocol) && protocol.version >= 3 ? ['resize'] : [])]
  const got = new Map<string, SpdyStream>()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`timed out waiting for the client's streams (have ${[...got.keys()].join(', ') || 'none'} of ${want.join(', ')})`))
      session.close()
    }, timeoutMs)
    session.once('close', () => {
      clearTimeout(timer)
      reject(new Error('the client went away before opening its streams'))
    })
    session.on('stream', (s) => {
      const type = s.headers.streamtype ?? ''
      if (!want.includes(type) || got.has(type)) return s.reset(rstStatus.protocolError)
      s.on('error', () => {})
      s.reply()
      got.set(type, s)
      if (got.size < want.length) return
      clearTimeout(timer)
      const out = { 1: got.get('stdout'), 2: got.get('stderr') }
      const error = got.get('error')!
      error.resume()
      resolve({
        open: () => !session.closed,
        send: (ch, data, done) => (out[ch] ? out[ch].write(data, () => done()) : done()),
        backlog: () => session.unsent,
        finish: (status) => {
          out[1]?.end()
          out[2]?.end()
          const text = statusMessage(protocol, status)
          if (text !== undefined) error.write(text)
          error.end()
          session.closeWhenSent()
        },
        onInput: (fn) => {
          const stdin = got.get('stdin')
          stdin?.on('data', (d: Buffer) => fn(channel.stdin, d))
          stdin?.once('end', () => fn(channel.close, Buffer.from([channel.stdin])))
          let pending = ''
          got.get('resize')?.on('data', (d: Buffer) => {
            pending += d.toString()
            const lines = pending.split('\n')
            pending = lines.pop() ?? ''
            for (const l of lines) if (l.trim()) fn(channel.resize, Buffer.from(l))
          })
        },
        onClose: (fn) => session.once('close', fn),
      })
    })
  })
}

function pipeOutput(stream: Duplex, io: SessionIO, o: StreamOptions, tty: boolean): void {
  const decoder = tty ? undefined : new FrameDecoder()
  const send = (ch: 1 | 2, data: Buffer) => {
    if (!io.open() || data.length === 0) return
    io.send(ch, data, () => {
      if (stream.isPaused() && io.backlog() < highWaterBytes / 4) stream.resume()
    })
    if (io.backlog() > highWaterBytes) stream.pause()
  }
  stream.on('data', (chunk: Buffer) => {
    if (!decoder) return o.stdout && send(channel.stdout, chunk)
    for (const f of decoder.push(chunk)) {
      if (f.stream === 1 && o.stdout) send(channel.stdout, f.payload)
      else if (f.stream === 2 && o.stderr) send(channel.stderr, f.payload)
    }
  })
}

// The process has exited when its stream ends, but Docker may record the
// exit code a moment later: ask a bounded number of times.
async function exitCodeOf(exec: Dockerode.Exec): Promise<number | null> {
  for (let i = 0; i < 100; i++) {
    try {
      const info = await exec.inspect()
      if (!info.Running) return info.ExitCode
    } catch {
      return null
    }
    await new Promise((r) => setTimeout(r, 20))
  }
  return null
}

interface InputTarget {
  stream: Duplex
  stdin: boolean
  /** Absent without a TTY: resize messages are then ignored. */
  resize?: (w: number, h: number) => void
}

/**
 * Client input (stdin, resize, stdin EOF) that arrives before the Docker
 * stream has started is kept, then replayed in order once it has.
 */
class InputBuffer {
  #pending: Array<[number, Buffer]> = []
  #target?: InputTarget

  receive(ch: number, data: Buffer): void {
    if (!this.#target) {
      this.#pending.push([ch, data])
      return
    }
    this.#handle(ch, data)
  }

  attach(target: InputTarget): void {
    this.#target = target
    for (const [ch, data] of this.#pending.splice(0)) this.#handle(ch, data)
  }

  #handle(ch: number, data: Buffer): void {
    const t = this.#target!
    if (ch === channel.stdin && t.stdin && data.length > 0 && !t.stream.writableEnded) t.stream.write(data)
    else if (ch === channel.resize && t.resize) {
      try {
        const size = JSON.parse(data.toString('utf8')) as { Width?: number; Height?: number }
        if (size.Width && size.Height) t.resize(size.Width, size.Height)
      } catch {
        /* a malformed resize is ignored, as the kubelet does */
      }
    } else if (ch === channel.close && data[0] === channel.stdin && t.stdin && !t.stream.writableEnded) {
      // stdin EOF: half-close the hijacked connection so the process reads EOF.
      t.stream.end()
    }
  }
}

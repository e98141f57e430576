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

/** Runs one exec session on an open WebSocket; resolves when the socket is closed. */
export function runExec(opts: { docker: Dockerode; containerId: string; ws: WebSocket; protocol: ChannelProtocol; exec: ExecOptions; logger: Logger }): Promise<void> {
  const o = opts.exec
  return runSession(opts.ws, opts.protocol, o, opts.logger, `error executing command ${fmtCommand(o.command)}`, async () => {
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
export function runAttach(opts: { docker: Dockerode; containerId: string; containerTty: boolean; ws: WebSocket; protocol: ChannelProtocol; attach: StreamOptions; logger: Logger }): Promise<void> {
  const o = opts.attach
  return runSession(opts.ws, opts.protocol, o, opts.logger, 'error attaching to container', async () => {
    const container = opts.docker.getContainer(opts.containerId)
    const stream = (await container.attach({ stream: true, hijack: true, stdin: o.stdin, stdout: o.stdout, stderr: o.stderr })) as unknown as Duplex
    return { stream, tty: opts.containerTty, resize: (w, h) => container.resize({ w, h }), status: async () => successStatus }
  })
}

async function runSession(ws: WebSocket, protocol: ChannelProtocol, o: StreamOptions, log: Logger, what: string, start: () => Promise<Started>): Promise<void> {
  const input = new InputBuffer(protocol)
  ws.on('message', (data: Buffer) => input.receive(data))
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()))
  const send = (ch: number, data: Buffer | string, cb?: () => void) => ws.send(encodeChannel(protocol, ch, data), cb)
  // The kubelet's first message: an empty one on the lowest writable channel, saying the streams are set up.
  send(o.stdout ? channel.stdout : o.stderr ? channel.stderr : channel.status, Buffer.alloc(0))
  const sendStatus = (status: Record<string, unknown>) => {
    if (ws.readyState !== ws.OPEN) return
    const text = statusMessage(protocol, status)
    if (text !== undefined) send(channel.status, text)
    ws.close(1000)
  }
  let started: Started
  try {
    started = await start()
  } catch (e) {
    log.info({ err: (e as Error).message }, 'stream session failed to start')
    sendStatus(failureStatus(`${what}: ${(e as Error).message}`))
    return await closed
  }
  const { stream } = started
  ws.once('close', () => stream.destroy())
  input.attach({ stream, stdin: o.stdin, resize: o.tty ? (w, h) => void started.resize(w, h).catch(() => {}) : undefined })
  pipeOutput(stream, ws, o, started.tty, send)
  await new Promise<void>((resolve) => {
    stream.once('close', () => resolve())
    stream.once('end', () => resolve())
    stream.once('error', () => resolve())
  })
  sendStatus(await started.status())
  await closed
}

function pipeOutput(stream: Duplex, ws: WebSocket, o: StreamOptions, tty: boolean, sendRaw: (ch: number, data: Buffer, cb: () => void) => void): void {
  const decoder = tty ? undefined : new FrameDecoder()
  const send = (ch: number, data: Buffer) => {
    if (ws.readyState !== ws.OPEN || data.length === 0) return
    sendRaw(ch, data, () => {
      if (stream.isPaused() && ws.bufferedAmount < highWaterBytes / 4) stream.resume()
    })
    if (ws.bufferedAmount > highWaterBytes) stream.pause()
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
 * Client messages (stdin, resize, close) that arrive before the Docker stream
 * has started are kept, then replayed in order once it has.
 */
class InputBuffer {
  #protocol: ChannelProtocol
  #pending: Buffer[] = []
  #target?: InputTarget

  constructor(protocol: ChannelProtocol) {
    this.#protocol = protocol
  }

  receive(msg: Buffer): void {
    if (!this.#target) {
      this.#pending.push(msg)
      return
    }
    this.#handle(msg)
  }

  attach(target: InputTarget): void {
    this.#target = target
    for (const m of this.#pending.splice(0)) this.#handle(m)
  }

  #handle(msg: Buffer): void {
    const t = this.#target!
    const frame = decodeChannel(this.#protocol, msg)
    if (!frame) return
    const { ch, data } = frame
    if (ch === channel.stdin && t.stdin && data.length > 0 && !t.stream.writableEnded) t.stream.write(data)
    else if (ch === channel.resize && t.resize && hasResize(this.#protocol)) {
      try {
        const size = JSON.parse(data.toString('utf8')) as { Width?: number; Height?: number }
        if (size.Width && size.Height) t.resize(size.Width, size.Height)
      } catch {
        /* a malformed resize is ignored, as the kubelet does */
      }
    } else if (ch === channel.close && hasCloseSignal(this.#protocol) && data[0] === channel.stdin && t.stdin && !t.stream.writableEnded) {
      // stdin EOF: half-close the hijacked connection so the process reads EOF.
      t.stream.end()
    }
  }
}

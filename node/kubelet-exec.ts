// GET /exec/{ns}/{pod}/{container}?command=..&stdin=&stdout=&stderr=&tty=
// over a WebSocket with the Kubernetes channel protocol (v5.channel.k8s.io,
// also v4): every binary message starts with a channel byte. 0 stdin (in),
// 1 stdout, 2 stderr, 3 status (one JSON Status, then the socket closes),
// 4 resize (in, JSON {Width, Height}), 255 close (in, v5 only: [255, 0] is
// stdin EOF). The command runs as a Docker exec on a hijacked connection.

import type { Duplex } from 'node:stream'
import type Dockerode from 'dockerode'
import type { Logger } from '../lib/log.ts'
import type { WebSocket } from 'ws'
import { FrameDecoder } from './kubelet-frames.ts'
import type { Parsed } from './kubelet-logs.ts'

export const execProtocols = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const
export const channel = { stdin: 0, stdout: 1, stderr: 2, status: 3, resize: 4, close: 255 } as const

export interface ExecOptions {
  command: string[]
  stdin: boolean
  stdout: boolean
  stderr: boolean
  tty: boolean
}

const flag = (q: URLSearchParams, name: string) => q.get(name) === 'true' || q.get(name) === '1'

/** The exec query, validated like the kubelet does. Pure. */
export function parseExecOptions(q: URLSearchParams): Parsed<ExecOptions> {
  const o: ExecOptions = { command: q.getAll('command'), stdin: flag(q, 'stdin'), stdout: flag(q, 'stdout'), stderr: flag(q, 'stderr'), tty: flag(q, 'tty') }
  if (o.command.length === 0) return { ok: false, message: 'you must specify at least 1 command' }
  if (!o.stdin && !o.stdout && !o.stderr) return { ok: false, message: 'you must specify at least 1 of stdin, stdout, stderr' }
  if (o.tty && o.stderr) return { ok: false, message: 'tty and stderr cannot both be true' }
  return { ok: true, value: o }
}

/** The first protocol we speak from a Sec-WebSocket-Protocol list, in our order of preference. */
export function pickProtocol(offered: Iterable<string>): string | undefined {
  const set = new Set([...offered].map((p) => p.trim()))
  return execProtocols.find((p) => set.has(p))
}

/** The status-channel document for a finished command, as the kubelet writes it. Pure. */
export function execStatus(exitCode: number | null | undefined, command: string[]): Record<string, unknown> {
  if (exitCode === 0) return { metadata: {}, status: 'Success' }
  if (typeof exitCode !== 'number') return failureStatus(`error executing command ${fmtCommand(command)}: the exit code could not be determined`)
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command ${fmtCommand(command)}, exit code ${exitCode}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
  }
}

export function failureStatus(message: string): Record<string, unknown> {
  return { metadata: {}, status: 'Failure', message, reason: 'InternalError', code: 500 }
}

const fmtCommand = (command: string[]) => `[${command.join(' ')}]`

export function encodeMessage(ch: number, data: Buffer | string): Buffer {
  return Buffer.concat([Buffer.from([ch]), Buffer.isBuffer(data) ? data : Buffer.from(data)])
}

// Past this much unsent output, stop reading from Docker until the client catches up.
const highWaterBytes = 4 * 1024 * 1024

/** Runs one exec session on an open WebSocket; resolves when the socket is closed. */
export async function runExec(opts: { docker: Dockerode; containerId: string; ws: WebSocket; protocol: string; exec: ExecOptions; logger: Logger }): Promise<void> {
  const { ws, exec: o } = opts
  const input = new InputBuffer(opts.protocol === 'v5.channel.k8s.io')
  ws.on('message', (data: Buffer, isBinary: boolean) => input.receive(isBinary ? data : Buffer.from(data)))
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()))
  const sendStatus = (status: Record<string, unknown>) => {
    if (ws.readyState !== ws.OPEN) return
    ws.send(encodeMessage(channel.status, JSON.stringify(status)))
    ws.close(1000)
  }
  let dockerExec: Dockerode.Exec
  let stream: Duplex
  try {
    dockerExec = await opts.docker.getContainer(opts.containerId).exec({ Cmd: o.command, AttachStdin: o.stdin, AttachStdout: o.stdout, AttachStderr: o.stderr, Tty: o.tty })
    stream = (await dockerExec.start({ hijack: true, stdin: o.stdin, Tty: o.tty })) as Duplex
  } catch (e) {
    opts.logger.info({ err: (e as Error).message, container: opts.containerId }, 'exec failed to start')
    sendStatus(failureStatus(`error executing command ${fmtCommand(o.command)}: ${(e as Error).message}`))
    return await closed
  }
  ws.once('close', () => stream.destroy())
  input.attach({ stream, stdin: o.stdin, resize: (w, h) => void dockerExec.resize({ w, h }).catch(() => {}) })
  pipeOutput(stream, ws, o)
  await new Promise<void>((resolve) => {
    stream.once('close', () => resolve())
    stream.once('end', () => resolve())
    stream.once('error', () => resolve())
  })
  sendStatus(execStatus(await exitCodeOf(dockerExec), o.command))
  await closed
}

function pipeOutput(stream: Duplex, ws: WebSocket, o: ExecOptions): void {
  const decoder = o.tty ? undefined : new FrameDecoder()
  const send = (ch: number, data: Buffer) => {
    if (ws.readyState !== ws.OPEN || data.length === 0) return
    ws.send(encodeMessage(ch, data), () => {
      if (stream.isPaused() && ws.bufferedAmount < highWaterBytes / 4) stream.resume()
    })
    if (ws.bufferedAmount > highWaterBytes) stream.pause()
  }
  stream.on('data', (chunk: Buffer) => {
    if (!decoder) return send(channel.stdout, chunk)
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

/**
 * Client messages (stdin, resize, close) that arrive before the Docker exec
 * has started are kept, then replayed in order once it has.
 */
class InputBuffer {
  #v5: boolean
  #pending: Buffer[] = []
  #target?: { stream: Duplex; stdin: boolean; resize: (w: number, h: number) => void }

  constructor(v5: boolean) {
    this.#v5 = v5
  }

  receive(msg: Buffer): void {
    if (!this.#target) {
      this.#pending.push(msg)
      return
    }
    this.#handle(msg)
  }

  attach(target: { stream: Duplex; stdin: boolean; resize: (w: number, h: number) => void }): void {
    this.#target = target
    for (const m of this.#pending.splice(0)) this.#handle(m)
  }

  #handle(msg: Buffer): void {
    const t = this.#target!
    const ch = msg[0]
    const data = msg.subarray(1)
    if (ch === channel.stdin && t.stdin && data.length > 0 && !t.stream.writableEnded) t.stream.write(data)
    else if (ch === channel.resize) {
      try {
        const size = JSON.parse(data.toString('utf8')) as { Width?: number; Height?: number }
        if (size.Width && size.Height) t.resize(size.Width, size.Height)
      } catch {
        /* a malformed resize is ignored, as the kubelet does */
      }
    } else if (ch === channel.close && this.#v5 && data[0] === channel.stdin && t.stdin) {
      // stdin EOF: half-close the hijacked connection so the process reads EOF.
      t.stream.end()
    }
  }
}

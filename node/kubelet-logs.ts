// GET /containerLogs/{ns}/{pod}/{container}: a container's Docker log as
// text/plain, streamed; with follow=true the response stays open until the
// container stops or the client goes. Query parameters are the kubelet's
// (and pods/log's): follow, tailLines, timestamps, previous, sinceSeconds,
// sinceTime, limitBytes.

import type { ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import type Dockerode from 'dockerode'
import { FrameDecoder } from './kubelet-frames.ts'

export interface LogOptions {
  follow: boolean
  previous: boolean
  timestamps: boolean
  tailLines?: number
  /** Unix seconds: only lines written at or after this time. */
  since?: number
  limitBytes?: number
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string }

function flag(q: URLSearchParams, name: string): boolean {
  const v = q.get(name)
  return v === 'true' || v === '1'
}

function count(q: URLSearchParams, name: string, min: number): number | undefined | Error {
  const v = q.get(name)
  if (v === null || v === '') return undefined
  const n = Number(v)
  if (!Number.isInteger(n) || n < min) return new Error(`${name} must be an integer >= ${min}, not ${JSON.stringify(v)}`)
  return n
}

/** The kubelet's log query, validated. Pure (`nowMs` for sinceSeconds). */
export function parseLogOptions(q: URLSearchParams, nowMs: number): Parsed<LogOptions> {
  const tailLines = count(q, 'tailLines', 0)
  const sinceSeconds = count(q, 'sinceSeconds', 1)
  const limitBytes = count(q, 'limitBytes', 1)
  for (const v of [tailLines, sinceSeconds, limitBytes]) if (v instanceof Error) return { ok: false, message: v.message }
  const sinceTime = q.get('sinceTime')
  if (sinceSeconds !== undefined && sinceTime) return { ok: false, message: 'at most one of sinceTime or sinceSeconds may be specified' }
  let since: number | undefined
  if (sinceSeconds !== undefined) since = Math.floor(nowMs / 1000) - (sinceSeconds as number)
  if (sinceTime) {
    const t = Date.parse(sinceTime)
    if (Number.isNaN(t)) return { ok: false, message: `sinceTime must be an RFC 3339 time, not ${JSON.stringify(sinceTime)}` }
    since = Math.floor(t / 1000)
  }
  return {
    ok: true,
    value: {
      follow: flag(q, 'follow'),
      previous: flag(q, 'previous'),
      timestamps: flag(q, 'timestamps'),
      tailLines: tailLines as number | undefined,
      since,
      limitBytes: limitBytes as number | undefined,
    },
  }
}

/** Docker's /containers/{id}/logs query for the options. Pure. */
export function dockerLogQuery(o: LogOptions): Record<string, string | number | boolean> {
  return {
    stdout: true,
    stderr: true,
    follow: o.follow,
    timestamps: o.timestamps,
    tail: o.tailLines === undefined ? 'all' : o.tailLines,
    ...(o.since !== undefined ? { since: o.since } : {}),
  }
}

/** Docker's log stream of container `id` (multiplexed unless the container has a TTY). */
export function openLogStream(docker: Dockerode, id: string, o: LogOptions): Promise<Readable> {
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      {
        path: `/containers/${encodeURIComponent(id)}/logs?`,
        method: 'GET',
        isStream: true,
        statusCodes: { 200: true, 404: 'no such container', 500: 'server error' },
        options: dockerLogQuery(o),
      },
      (err, stream) => (err ? reject(err) : resolve(stream as Readable)),
    )
  })
}

/**
 * Streams the log of container `id` into `res` (headers not yet sent).
 * Resolves when the response is finished or the client went away.
 */
export async function serveLogs(opts: { docker: Dockerode; id: string; res: ServerResponse; log: LogOptions }): Promise<void> {
  const { docker, id, res, log } = opts
  const info = await docker.getContainer(id).inspect()
  const stream = await openLogStream(docker, id, log)
  // Headers go out at once so a following client (and the apiserver's proxy)
  // sees the response start even while the container prints nothing.
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-cache, private', 'X-Content-Type-Options': 'nosniff' })
  res.flushHeaders()
  const decoder = info.Config?.Tty ? undefined : new FrameDecoder()
  let left = log.limitBytes ?? Infinity
  let paused = false
  await new Promise<void>((resolve) => {
    const finish = () => {
      stream.destroy()
      if (!res.writableEnded) res.end()
      resolve()
    }
    const write = (data: Buffer) => {
      if (left <= 0) return
      const part = data.length > left ? data.subarray(0, left) : data
      left -= part.length
      // Backpressure: a slow client pauses the Docker stream instead of
      // buffering the whole log in memory.
      if (!res.write(part) && !paused) {
        paused = true
        stream.pause()
        res.once('drain', () => {
          paused = false
          stream.resume()
        })
      }
      if (left <= 0) finish()
    }
    stream.on('data', (chunk: Buffer) => {
      if (!decoder) return write(chunk)
      for (const f of decoder.push(chunk)) if (f.stream === 1 || f.stream === 2) write(f.payload)
    })
    stream.on('end', finish)
    stream.on('error', finish)
    res.on('close', finish)
  })
}

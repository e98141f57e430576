// The thin Docker layer of the pod sync: read a pod's containers back from
// their labels (toActual is the pure mapping), create/start/stop/remove, make
// sure an image is there (present locally: never pulled), and run a command
// in a container (exec probes, preStop hooks).

import { PassThrough } from 'node:stream'
import type Dockerode from 'dockerode'
import type { Logger } from '../../lib/log.ts'
import { labels, type ContainerRole } from '../labels.ts'
import type { ActualContainer } from './types.ts'

export class ImagePullError extends Error {
  override name = 'ImagePullError'
}

/** Docker timestamps have nanoseconds and use year 1 for "never". */
export function dockerTime(s: string | undefined): string | undefined {
  if (!s || s.startsWith('0001-')) return undefined
  return s.replace(/(\.\d{3})\d*Z$/, '$1Z')
}

/** What the pod sync needs from `docker inspect`; undefined for containers without Skiff's labels. */
export function toActual(info: Dockerode.ContainerInspectInfo, network: string): ActualContainer | undefined {
  const l = info.Config?.Labels ?? {}
  const role = l[labels.role] as ContainerRole | undefined
  if (!l[labels.podUid] || !l[labels.containerName] || !role) return undefined
  const st = info.State
  const status = st.Status
  const failedStart = status === 'created' && !!st.Error
  const state: ActualContainer['state'] = ['running', 'paused', 'restarting'].includes(status) ? 'running' : status === 'created' && !failedStart ? 'created' : 'exited'
  const net = String(info.HostConfig?.NetworkMode ?? '')
  const created = dockerTime(info.Created) ?? new Date(0).toISOString()
  return {
    id: info.Id,
    name: l[labels.containerName]!,
    role,
    attempt: Number(l[labels.attempt] ?? 0) || 0,
    hash: l[labels.hash] ?? '',
    backoffStep: Number(l[labels.backoff] ?? 0) || 0,
    podUid: l[labels.podUid]!,
    sandboxId: net.startsWith('container:') ? net.slice('container:'.length) : undefined,
    state,
    exitCode: state === 'exited' ? (failedStart ? st.ExitCode || 128 : st.ExitCode) : undefined,
    oomKilled: st.OOMKilled || undefined,
    startedAt: dockerTime(st.StartedAt),
    finishedAt: state === 'exited' ? (dockerTime(st.FinishedAt) ?? created) : undefined,
    createdAt: created,
    image: info.Config?.Image ?? '',
    imageID: info.Image,
    ip: info.NetworkSettings?.Networks?.[network]?.IPAddress || undefined,
    error: st.Error || undefined,
  }
}

export interface ListedContainer {
  id: string
  namespace: string
  name: string
  uid: string
  running: boolean
}

export class DockerRuntime {
  readonly docker: Dockerode
  #node: string
  #network: string
  #log: Logger
  /** Inspect results of exited containers, which no longer change. */
  #exited = new Map<string, ActualContainer>()
  /** Runs before a container is removed (the pod log archive copies its log); must not throw. */
  #beforeRemove?: (id: string) => Promise<void>

  constructor(opts: { docker: Dockerode; nodeName: string; network: string; logger: Logger; beforeRemove?: (id: string) => Promise<void> }) {
    this.docker = opts.docker
    this.#node = opts.nodeName
    this.#network = opts.network
    this.#log = opts.logger
    this.#beforeRemove = opts.beforeRemove
  }

  /** Every Skiff container of this node (for adoption and clean-up). */
  async listAll(): Promise<ListedContainer[]> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [`${labels.node}=${this.#node}`] } })
    return list.map((c) => ({
      id: c.Id,
      namespace: c.Labels[labels.podNamespace] ?? '',
      name: c.Labels[labels.podName] ?? '',
      uid: c.Labels[labels.podUid] ?? '',
      running: c.State === 'running',
    }))
  }

  /** The containers of pod namespace/name on this node (every UID), read back from Docker. */
  async listPod(namespace: string, name: string): Promise<ActualContainer[]> {
    const filters = { label: [`${labels.node}=${this.#node}`, `${labels.podNamespace}=${namespace}`, `${labels.podName}=${name}`] }
    const list = await this.docker.listContainers({ all: true, filters })
    const out: ActualContainer[] = []
    for (const c of list) {
      const cached = this.#exited.get(c.Id)
      if (cached && c.State !== 'running') {
        out.push(cached)
        continue
      }
      try {
        const a = toActual(await this.docker.getContainer(c.Id).inspect(), this.#network)
        if (!a) continue
        if (a.state === 'exited') this.#exited.set(a.id, a)
        out.push(a)
      } catch (e) {
        if ((e as { statusCode?: number }).statusCode !== 404) throw e
      }
    }
    return out
  }

  /** Create and start; a container that fails to start is left for the planner to see (ContainerCannotRun). */
  async run(opts: Dockerode.ContainerCreateOptions): Promise<{ id: string; startError?: string }> {
    const c = await this.docker.createContainer(opts)
    try {
      await c.start()
      return { id: c.id }
    } catch (e) {
      this.#log.warn({ container: opts.name, err: (e as Error).message }, 'container failed to start')
      return { id: c.id, startError: (e as Error).message }
    }
  }

  /** SIGTERM, then SIGKILL after graceSeconds (docker stop). */
  async stop(id: string, graceSeconds: number): Promise<void> {
    try {
      await this.docker.getContainer(id).stop({ t: Math.max(0, Math.ceil(graceSeconds)) })
    } catch (e) {
      const code = (e as { statusCode?: number }).statusCode
      if (code !== 304 && code !== 404) throw e // 304: already stopped
    }
  }

  /** Removes the container; its log goes to the archive first unless `archive: false` (the node itself is going). */
  async remove(id: string, opts: { archive?: boolean } = {}): Promise<void> {
    if (opts.archive !== false) await this.#beforeRemove?.(id)
    this.#exited.delete(id)
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true })
    } catch (e) {
      const code = (e as { statusCode?: number }).statusCode
      if (code !== 404 && code !== 409) throw e // 409: removal already in progress
    }
  }

  async imagePresent(image: string): Promise<boolean> {
    try {
      await this.docker.getImage(image).inspect()
      return true
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return false
      throw e
    }
  }

  /** One pull attempt (no retry here: the planner backs off). Throws ImagePullError. */
  async pull(image: string, timeoutMs = 60_000): Promise<void> {
    const ref = /:[^/]+$|@/.test(image) ? image : `${image}:latest`
    try {
      const stream = await this.docker.pull(ref)
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`pull timed out after ${timeoutMs} ms`)), timeoutMs)
        this.docker.modem.followProgress(stream, (err: Error | null, out: any[]) => {
          clearTimeout(timer)
          const failed = err?.message ?? out?.find((o) => o?.error)?.error
          if (failed) reject(new Error(failed))
          else resolve()
        })
      })
    } catch (e) {
      throw new ImagePullError(`failed to pull image "${image}": ${(e as Error).message}`)
    }
  }

  /** Run cmd in a running container; exitCode -1 when it timed out. */
  async exec(id: string, cmd: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }> {
    const exec = await this.docker.getContainer(id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true })
    const stream = await exec.start({ hijack: true, stdin: false })
    const sink = new PassThrough()
    let output = ''
    sink.on('data', (c: Buffer) => {
      if (output.length < 4096) output += c.toString('utf8')
    })
    this.docker.modem.demuxStream(stream, sink, sink)
    const done = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        stream.destroy()
        resolve(false)
      }, timeoutMs)
      stream.on('end', () => (clearTimeout(timer), resolve(true)))
      stream.on('close', () => (clearTimeout(timer), resolve(true)))
      stream.on('error', () => (clearTimeout(timer), resolve(true)))
    })
    if (!done) return { exitCode: -1, output: `command timed out after ${timeoutMs} ms` }
    // The stream can end a moment before Docker records the exit code.
    let info = await exec.inspect()
    for (let i = 0; i < 20 && info.Running; i++) {
      await new Promise((r) => setTimeout(r, 25))
      info = await exec.inspect()
    }
    return { exitCode: info.ExitCode ?? -1, output }
  }
}

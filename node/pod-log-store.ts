// The logs of deleted and replaced pods, the effects (pure half:
// pod-log-archive.ts). Before the pod sync removes a container (its pod was
// deleted, or it is a run older than the one `logs --previous` shows), the
// runtime calls archive(id): the container's Docker log (stdout and stderr,
// with timestamps, at most the rotation size: the newest part) is copied to
// <stateDir>/pod-logs/... with a meta file. The sandbox is never archived.
// Runs older than the retention are pruned at start and periodically. The
// kubelet server answers GET /podLogs/ and /podLogs/<ns>/<pod>/<uid>/<container>
// from here (answer()).

import { mkdir, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type Dockerode from 'dockerode'
import type { Logger } from '../lib/log.ts'
import { FrameDecoder } from './kubelet-frames.ts'
import { openLogStream, parseLogOptions } from './kubelet-logs.ts'
import { labels as containerLabels } from './labels.ts'
import {
  archiveFolder, containerArchiveDir, filterArchivedLog, parseMeta, parsePodLogsPath, planPrune, safeComponent, summarizeArchive, TailBuffer,
  type ArchiveEntry, type ArchiveMeta, type ArchiveRef,
} from './pod-log-archive.ts'
import { dockerTime } from './pods/runtime.ts'

export interface PodLogStoreOptions {
  docker: Dockerode
  /** The agent's state dir; the archive is its pod-logs/ folder. */
  stateDir: string
  nodeName: string
  /** How long a run stays readable after it was archived. */
  retentionMs: number
  /** At most this much of each run is kept (its newest part): the container log rotation size. */
  maxBytes: number
  /** How often runs past the retention are removed (default: a tenth of the retention, between 1 s and 10 min). */
  pruneIntervalMs?: number
  /** The labels of the pod with this UID, when the agent knows them (the pod sync's last view). */
  labelsOf?: (uid: string) => Record<string, string> | undefined
  logger: Logger
}

/** An answer of the kubelet's /podLogs/ paths. */
export interface PodLogsAnswer {
  status: number
  contentType: string
  body: string
}

// A log read from the Engine that takes longer is cut there (the container is about to go anyway).
const readTimeoutMs = 15_000

interface StoredRun {
  /** Path without the .log/.json suffix. */
  base: string
  archivedAtMs: number
  meta?: ArchiveMeta
}

export class PodLogStore {
  readonly root: string
  #o: PodLogStoreOptions
  #log: Logger
  #timer?: NodeJS.Timeout

  constructor(opts: PodLogStoreOptions) {
    this.#o = opts
    this.root = join(opts.stateDir, archiveFolder)
    this.#log = opts.logger.child({ component: 'pod-log-archive' })
  }

  async start(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 })
    await this.prune()
    const every = this.#o.pruneIntervalMs ?? Math.min(600_000, Math.max(1_000, Math.round(this.#o.retentionMs / 10)))
    this.#timer = setInterval(() => void this.prune().catch((e) => this.#log.warn({ err: (e as Error).message }, 'pruning archived pod logs failed')), every)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** Copy container `id`'s log into the archive (never throws: a failed copy must not keep a container from being removed). */
  async archive(id: string): Promise<void> {
    try {
      await this.#archive(id)
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return
      this.#log.warn({ container: id, err: (e as Error).message }, 'could not archive the log of a container being removed')
    }
  }

  async #archive(id: string): Promise<void> {
    const info = await this.#o.docker.getContainer(id).inspect()
    const l = info.Config?.Labels ?? {}
    const ref = { namespace: l[containerLabels.podNamespace], pod: l[containerLabels.podName], uid: l[containerLabels.podUid], container: l[containerLabels.containerName] }
    if (l[containerLabels.role] === 'sandbox' || !ref.namespace || !ref.pod || !ref.uid || !ref.container) return
    const { data, truncated } = await this.#readLog(id, !!info.Config?.Tty)
    const restartCount = Number(l[containerLabels.attempt] ?? 0) || 0
    const meta: ArchiveMeta = {
      ...(ref as ArchiveRef), node: this.#o.nodeName, labels: this.#o.labelsOf?.(ref.uid!) ?? {}, restartCount, containerId: id,
      startedAt: dockerTime(info.State?.StartedAt), finishedAt: dockerTime(info.State?.FinishedAt),
      exitCode: info.State?.Running ? undefined : info.State?.ExitCode,
      archivedAt: new Date().toISOString(), bytes: data.length, truncated,
    }
    const dir = containerArchiveDir(this.root, meta)
    await mkdir(dir, { recursive: true, mode: 0o700 })
    const base = join(dir, String(restartCount))
    // The log first, then the meta: a run is listed only once both are whole.
    await writeFile(`${base}.log.tmp`, data, { mode: 0o600 })
    await rename(`${base}.log.tmp`, `${base}.log`)
    await writeFile(`${base}.json.tmp`, JSON.stringify(meta), { mode: 0o600 })
    await rename(`${base}.json.tmp`, `${base}.json`)
    this.#log.debug({ pod: `${meta.namespace}/${meta.pod}`, container: meta.container, restartCount, bytes: data.length, truncated }, 'archived a container log')
  }

  /** The container's whole Docker log with timestamps, demultiplexed, its newest maxBytes kept. */
  async #readLog(id: string, tty: boolean): Promise<{ data: Buffer; truncated: boolean }> {
    const stream = await openLogStream(this.#o.docker, id, { follow: false, previous: false, timestamps: true })
    const tail = new TailBuffer(this.#o.maxBytes)
    const decoder = tty ? undefined : new FrameDecoder()
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => stream.destroy(), readTimeoutMs)
      stream.on('data', (chunk: Buffer) => {
        if (!decoder) return tail.push(chunk)
        for (const f of decoder.push(chunk)) if (f.stream === 1 || f.stream === 2) tail.push(f.payload)
      })
      const done = () => (clearTimeout(timer), resolve())
      stream.on('end', done)
      stream.on('close', done)
      stream.on('error', done)
    })
    return tail.result()
  }

  /** Every stored run (meta parsed where readable; a log without meta is dated by its mtime). */
  async #runs(namespace?: string): Promise<StoredRun[]> {
    const out: StoredRun[] = []
    const dirs = async (p: string) => (await readdir(p, { withFileTypes: true }).catch(() => [])).filter((d) => d.isDirectory()).map((d) => join(p, d.name))
    const namespaces = namespace === undefined ? await dirs(this.root) : [join(this.root, safeComponent(namespace))]
    for (const ns of namespaces) {
      for (const pod of await dirs(ns)) {
        for (const container of await dirs(pod)) {
          const files = await readdir(container).catch(() => [] as string[])
          const bases = new Set(files.filter((f) => /^\d+\.(log|json)$/.test(f)).map((f) => f.replace(/\.(log|json)$/, '')))
          for (const b of bases) {
            const base = join(container, b)
            const meta = files.includes(`${b}.json`) ? parseMeta(await readFile(`${base}.json`, 'utf8').catch(() => '')) : undefined
            const archivedAtMs = meta ? Date.parse(meta.archivedAt) : ((await stat(`${base}.log`).catch(() => undefined))?.mtimeMs ?? 0)
            out.push({ base, archivedAtMs: Number.isNaN(archivedAtMs) ? 0 : archivedAtMs, meta })
          }
        }
      }
    }
    return out
  }

  /** Archived containers, newest first; only those of `namespace` when given. */
  async list(namespace?: string): Promise<ArchiveEntry[]> {
    const runs = await this.#runs(namespace)
    return summarizeArchive(runs.flatMap((r) => (r.meta ? [r.meta] : [])))
  }

  /** The archived runs of one container, oldest first, concatenated; undefined when none is kept. */
  async read(ref: ArchiveRef): Promise<string | undefined> {
    const dir = containerArchiveDir(this.root, ref)
    const files = await readdir(dir).catch(() => [] as string[])
    const runs = files.filter((f) => /^\d+\.json$/.test(f)).map((f) => Number(f.slice(0, -5))).sort((a, b) => a - b)
    if (!runs.length) return undefined
    const parts: string[] = []
    for (const n of runs) parts.push(await readFile(join(dir, `${n}.log`), 'utf8').catch(() => ''))
    return parts.join('')
  }

  /** Remove runs archived longer ago than the retention, and folders left empty. Returns how many runs went. */
  async prune(nowMs = Date.now()): Promise<number> {
    const old = planPrune(await this.#runs(), nowMs, this.#o.retentionMs)
    for (const r of old) {
      await rm(`${r.base}.json`, { force: true })
      await rm(`${r.base}.log`, { force: true })
      // Container, pod and namespace folders, each only when empty now.
      let dir = r.base.slice(0, r.base.lastIndexOf('/'))
      for (let i = 0; i < 3 && dir.startsWith(this.root + '/'); i++) {
        if (!(await rmdir(dir).then(() => true, () => false))) break
        dir = dir.slice(0, dir.lastIndexOf('/'))
      }
    }
    if (old.length) this.#log.info({ runs: old.length }, 'removed archived pod logs past their retention')
    return old.length
  }

  /** GET /podLogs/[?namespace=] (JSON list) and /podLogs/<ns>/<pod>/<uid>/<container> (text); undefined for other paths. */
  async answer(url: URL): Promise<PodLogsAnswer | undefined> {
    const p = parsePodLogsPath(url.pathname)
    if (!p) return undefined
    if (p.list) {
      const ns = url.searchParams.get('namespace') || undefined
      const items = await this.list(ns)
      return { status: 200, contentType: 'application/json', body: JSON.stringify({ kind: 'ArchivedPodLogList', node: this.#o.nodeName, retentionSeconds: Math.round(this.#o.retentionMs / 1000), items }) }
    }
    const parsed = parseLogOptions(url.searchParams, Date.now())
    if (!parsed.ok) return { status: 400, contentType: 'text/plain', body: parsed.message }
    const text = await this.read(p.ref)
    const r = p.ref
    if (text === undefined) return { status: 404, contentType: 'text/plain', body: `no archived log of container "${r.container}" of pod ${r.namespace}/${r.pod} (uid ${r.uid}) on node ${this.#o.nodeName}: never archived, or older than the retention` }
    return { status: 200, contentType: 'text/plain', body: filterArchivedLog(text, parsed.value) }
  }
}

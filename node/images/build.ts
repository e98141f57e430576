// Builds Skiff's local images (skiff/pause, skiff/echo, skiff/demo :local)
// on the local Docker Engine with no registry: plan (spec.ts) -> content hash
// -> skip when the tagged image carries the same `skiff.image.hash` label ->
// otherwise assemble the context in a temp folder and `docker build` it
// through dockerode (classic builder, FROM scratch, nothing pulled).
//
// `ensureImages()` is what `skiff up` and test harnesses call: it builds only
// what is missing or outdated and stays quiet when everything is current.

import Docker from 'dockerode'
import type { Logger } from '../../lib/log.ts'
import { silentLogger } from '../../lib/log.ts'
import { assembleContext } from './context.ts'
import { ImageBuildError } from './errors.ts'
import { gatherHostFacts, hashFiles } from './hostfacts.ts'
import { withBuildLock } from './lock.ts'
import { hashLabel, hashPlan, nameLabel, planImage, selectImages, type ImageName, type ImagePlan } from './spec.ts'

export { ImageBuildError } from './errors.ts'
export { imageNames, imageTag, type ImageName } from './spec.ts'

export interface BuildImagesOptions {
  /** Image names (`echo`) or tags (`skiff/echo:local`); all when absent. */
  only?: string[]
  /** Rebuild even when the image is current, without Docker's build cache. */
  force?: boolean
  /** Structured logs (pino); silent by default. */
  logger?: Logger
  /** One human line per step; stderr by default, null for none. */
  progress?: ((line: string) => void) | null
  docker?: Docker
}

export interface ImageResult {
  name: ImageName
  tag: string
  id: string
  /** False when the existing image already had this content hash. */
  built: boolean
  hash: string
}

const stderrProgress = (line: string) => process.stderr.write(`[images] ${line}\n`)

/** Builds the selected images, skipping those already built from the same content. */
export async function buildImages(opts: BuildImagesOptions = {}): Promise<ImageResult[]> {
  return await run(opts, { quietWhenCurrent: false })
}

/** Builds only the images that are missing or outdated; says nothing when all are current. */
export async function ensureImages(opts: Omit<BuildImagesOptions, 'force'> = {}): Promise<ImageResult[]> {
  return await run({ ...opts, force: false }, { quietWhenCurrent: true })
}

async function run(opts: BuildImagesOptions, mode: { quietWhenCurrent: boolean }): Promise<ImageResult[]> {
  const names = selectImages(opts.only)
  const docker = opts.docker ?? new Docker()
  const progress = opts.progress === undefined ? stderrProgress : (opts.progress ?? (() => {}))
  const ctx: BuildCtx = { docker, force: !!opts.force, logger: opts.logger ?? silentLogger(), progress, ...mode }
  await checkDocker(docker)
  const facts = await gatherHostFacts()
  const plans = names.map((n) => planImage(n, facts))
  return await withBuildLock(
    async () => {
      const results: ImageResult[] = []
      for (const plan of plans) results.push(await buildOne(ctx, plan))
      return results
    },
    { onWait: () => progress('waiting for another image build on this machine to finish') },
  )
}

interface BuildCtx {
  docker: Docker
  force: boolean
  logger: Logger
  progress: (line: string) => void
  quietWhenCurrent: boolean
}

async function checkDocker(docker: Docker): Promise<void> {
  try {
    await docker.ping()
  } catch (e) {
    throw new ImageBuildError(
      'DockerUnavailable',
      `dockerd is not running or not reachable (${(e as Error).message}): start it with scripts/setup.sh (bash scripts/setup.sh test)`,
      { cause: e },
    )
  }
}

async function currentImage(docker: Docker, tag: string): Promise<{ id: string; hash?: string } | undefined> {
  try {
    const info = await docker.getImage(tag).inspect()
    return { id: info.Id, hash: info.Config?.Labels?.[hashLabel] }
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) return undefined
    throw e
  }
}

async function planHash(plan: ImagePlan): Promise<string> {
  const sources = plan.entries.flatMap((e) => (e.kind === 'file' ? [e.source] : []))
  const hashes = await hashFiles(sources)
  return hashPlan(plan, (s) => hashes.get(s)!)
}

async function buildOne(ctx: BuildCtx, plan: ImagePlan): Promise<ImageResult> {
  const hash = await planHash(plan)
  const current = await currentImage(ctx.docker, plan.tag)
  const base = { name: plan.name, tag: plan.tag, hash }
  if (current && current.hash === hash && !ctx.force) {
    if (!ctx.quietWhenCurrent) ctx.progress(`${plan.tag}: up to date (${short(current.id)})`)
    ctx.logger.debug({ image: plan.tag, id: current.id }, 'image up to date')
    return { ...base, id: current.id, built: false }
  }
  const why = ctx.force ? 'forced' : current ? 'content changed' : 'missing'
  const stripping = plan.entries.some((e) => e.kind === 'file' && e.strip)
  ctx.progress(`${plan.tag}: ${why}, building; assembling the context${stripping ? ' (stripping node)' : ''}`)
  const started = Date.now()
  const context = await assembleContext(plan)
  try {
    const stream = await ctx.docker.buildImage(
      context.tar(),
      {
        t: plan.tag,
        labels: { [hashLabel]: hash, [nameLabel]: plan.name },
        version: '1',
        rm: true,
        forcerm: true,
        nocache: ctx.force,
      },
    )
    await followBuild(stream, (line) => ctx.progress(`${plan.tag}: ${line}`), plan.tag)
  } finally {
    await context.remove()
  }
  const built = await currentImage(ctx.docker, plan.tag)
  if (!built || built.hash !== hash) throw new ImageBuildError('BuildFailed', `building ${plan.tag} finished but the image is not tagged with its content hash`)
  if (current && current.id !== built.id) await removeReplaced(ctx, current.id)
  ctx.progress(`${plan.tag}: built ${short(built.id)} in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  ctx.logger.info({ image: plan.tag, id: built.id, hash }, 'image built')
  return { ...base, id: built.id, built: true }
}

/**
 * Removes the image a rebuild untagged, so rebuilds do not pile up. Docker
 * refuses while a container still uses it (or it has another tag): then it
 * stays, which is what such a container needs.
 */
async function removeReplaced(ctx: BuildCtx, id: string): Promise<void> {
  try {
    await ctx.docker.getImage(id).remove()
  } catch (e) {
    ctx.logger.debug({ id, err: (e as Error).message }, 'replaced image kept')
  }
}

const short = (id: string) => id.replace(/^sha256:/, '').slice(0, 12)

/** One event of the classic builder's JSON stream, reduced to what we use. */
export function parseBuildEvent(line: string): { step?: string; error?: string } {
  let ev: { stream?: string; error?: string; errorDetail?: { message?: string } }
  try {
    ev = JSON.parse(line)
  } catch {
    return {}
  }
  if (ev.error || ev.errorDetail) return { error: ev.errorDetail?.message ?? ev.error }
  const text = ev.stream?.trim()
  return text && /^Step \d+\/\d+ : /.test(text) ? { step: text } : {}
}

/** Reads the build stream to its end: reports each step, rejects on a build error. */
function followBuild(stream: NodeJS.ReadableStream, onStep: (line: string) => void, tag: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = ''
    let failure: string | undefined
    const take = (line: string) => {
      const ev = parseBuildEvent(line)
      if (ev.step) onStep(ev.step)
      if (ev.error) failure ??= ev.error
    }
    stream.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8')
      const lines = buf.split('\n')
      buf = lines.pop()!
      lines.forEach(take)
    })
    stream.on('error', (e: Error) => reject(new ImageBuildError('BuildFailed', `building ${tag}: ${e.message}`, { cause: e })))
    stream.on('end', () => {
      if (buf) take(buf)
      if (failure) reject(new ImageBuildError('BuildFailed', `building ${tag} failed: ${failure}`))
      else resolve()
    })
  })
}

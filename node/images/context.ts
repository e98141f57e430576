// Writes an ImagePlan out as a Docker build context in a fresh temp folder:
// files copied (node stripped when `strip` exists), links, inline files,
// folders with their modes, and the Dockerfile. Every mtime is set to one
// fixed instant so equal plans give byte-equal contexts, which lets Docker's
// build cache share the base and node layers between images.

import { execFile } from 'node:child_process'
import { chmod, copyFile, lutimes, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { pack, type PackOptions } from 'tar-fs'
import { ImageBuildError } from './errors.ts'
import type { ContextEntry, ImagePlan } from './spec.ts'

const run = promisify(execFile)
const fixedTime = new Date('2000-01-01T00:00:00Z')

async function writeEntry(root: string, e: ContextEntry): Promise<void> {
  const dest = join(root, e.path)
  await mkdir(dirname(dest), { recursive: true })
  switch (e.kind) {
    case 'file':
      if (e.strip) {
        try {
          await run('strip', ['-o', dest, e.source])
        } catch (err) {
          throw new ImageBuildError('HostTool', `strip ${e.source} failed: ${(err as Error).message}`, { cause: err })
        }
      } else {
        await copyFile(e.source, dest)
      }
      await chmod(dest, e.mode)
      return
    case 'inline':
      await writeFile(dest, e.content)
      await chmod(dest, e.mode)
      return
    case 'symlink':
      await symlink(e.target, dest)
      return
    case 'dir':
      await mkdir(dest, { recursive: true })
      await chmod(dest, e.mode)
      return
  }
}

/** Sets every mtime under `dir` (depth first, so folders are touched after their contents). */
async function pinTimes(dir: string): Promise<void> {
  for (const ent of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name)
    if (ent.isDirectory()) await pinTimes(p)
    await lutimes(p, fixedTime, fixedTime)
  }
}

export interface BuiltContext {
  dir: string
  /** The context as an uncompressed tar stream, for docker.buildImage. */
  tar(): NodeJS.ReadableStream
  remove(): Promise<void>
}

/**
 * Packs `dir` exactly: modes as planned (tar-fs would apply the process umask
 * and turn /tmp's 1777 into 1755; umask is a tar-fs option its typings lack),
 * and every file owned by root whoever runs the build.
 */
function packDir(dir: string): NodeJS.ReadableStream {
  const opts = { umask: 0, map: (h) => ({ ...h, uid: 0, gid: 0 }) } satisfies PackOptions & { umask: number }
  return pack(dir, opts)
}

/** Assembles the plan's context in a new temp folder; the caller removes it. */
export async function assembleContext(plan: ImagePlan): Promise<BuiltContext> {
  const dir = await mkdtemp(join(tmpdir(), `skiff-image-${plan.name}-`))
  const remove = () => rm(dir, { recursive: true, force: true })
  try {
    for (const e of plan.entries) await writeEntry(dir, e)
    await writeFile(join(dir, 'Dockerfile'), plan.dockerfile)
    await pinTimes(dir)
    return { dir, tar: () => packDir(dir), remove }
  } catch (e) {
    await remove()
    throw e
  }
}

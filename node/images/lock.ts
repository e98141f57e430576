// A machine-wide lock around image builds, so two test files (or `skiff up`
// and a test) that both find an image missing build it once, not twice on two
// shared cores. A lock file holds the owner's pid; one whose owner is gone is
// stale and taken over.

import { open, readFile, stat, unlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ImageBuildError } from './errors.ts'

export const defaultLockPath = join(tmpdir(), 'skiff-images.lock')

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function olderThan(path: string, ms: number): Promise<boolean> {
  const st = await stat(path).catch(() => undefined)
  return !!st && Date.now() - st.mtimeMs > ms
}

async function tryTake(path: string): Promise<boolean> {
  try {
    const fh = await open(path, 'wx')
    await fh.writeFile(String(process.pid))
    await fh.close()
    return true
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
  }
  const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim())
  // An empty file is a taker between open and write; one still empty after 10 s died there.
  const stale = owner ? owner !== process.pid && !alive(owner) : await olderThan(path, 10_000)
  if (stale) await unlink(path).catch(() => {})
  return false
}

/** Runs `fn` holding the lock; waits for another holder at most `timeoutMs`. */
export async function withBuildLock<T>(
  fn: () => Promise<T>,
  opts: { path?: string; timeoutMs?: number; onWait?: () => void } = {},
): Promise<T> {
  const path = opts.path ?? defaultLockPath
  const deadline = performance.now() + (opts.timeoutMs ?? 15 * 60_000)
  let waited = false
  while (!(await tryTake(path))) {
    if (!waited) opts.onWait?.()
    waited = true
    if (performance.now() > deadline) {
      throw new ImageBuildError('LockTimeout', `another process has held ${path} too long; if no image build is running, remove that file`)
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  try {
    return await fn()
  } finally {
    await unlink(path).catch(() => {})
  }
}

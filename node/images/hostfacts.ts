// Gathers the HostFacts the image plans are computed from: a statically linked
// busybox, the node binary and the libraries ldd lists for it, whether `strip`
// exists, and the `ws` package. Fails with an error naming what is missing.

import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { accessSync, constants, createReadStream, existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { delimiter, dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { ImageBuildError } from './errors.ts'
import { isStaticElf, parseLdd, type HostFacts } from './spec.ts'

const run = promisify(execFile)
const sourcesDir = dirname(fileURLToPath(import.meta.url))
const repoNode = fileURLToPath(new URL('../../node_modules/node/bin/node', import.meta.url))

/** First executable named `cmd` on PATH (or in the usual system folders). */
export function which(cmd: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/bin', '/usr/sbin', '/sbin']
  for (const d of dirs) {
    if (!d) continue
    const p = join(d, cmd)
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {
      // not here
    }
  }
  return undefined
}

export function findBusybox(): string {
  const candidates = ['/bin/busybox', '/usr/bin/busybox']
  const found = candidates.find((p) => existsSync(p))
  if (!found) {
    throw new ImageBuildError(
      'BusyboxMissing',
      'busybox-static is not installed (no /bin/busybox): run `bash scripts/setup.sh test` or `apt-get install busybox-static`',
    )
  }
  if (!isStaticElf(readFileSync(found))) {
    throw new ImageBuildError(
      'BusyboxMissing',
      `${found} is dynamically linked (Debian's busybox, not busybox-static); the images need the static one: apt-get install busybox-static`,
    )
  }
  return found
}

function findNode(): string {
  const p = existsSync(repoNode) ? repoNode : process.execPath
  try {
    return realpathSync(p)
  } catch (e) {
    throw new ImageBuildError('NodeMissing', `the node binary ${p} is missing: run npm ci (the 'node' package provides Node.js 24)`, { cause: e })
  }
}

function listFiles(root: string): string[] {
  const out: string[] = []
  const walk = (dir: string) => {
    for (const ent of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, ent.name)
      if (ent.isDirectory()) walk(p)
      else if (ent.isFile()) out.push(relative(root, p))
    }
  }
  walk(root)
  return out.sort()
}

async function tool(cmd: string, args: string[], what: string): Promise<string> {
  try {
    return (await run(cmd, args, { maxBuffer: 4 << 20 })).stdout
  } catch (e) {
    throw new ImageBuildError('HostTool', `${what} failed (${cmd} ${args.join(' ')}): ${(e as Error).message}`, { cause: e })
  }
}

export async function gatherHostFacts(): Promise<HostFacts> {
  const busybox = findBusybox()
  const applets = (await tool(busybox, ['--list'], 'listing busybox applets')).split('\n').filter(Boolean)
  const node = findNode()
  if (!which('ldd')) throw new ImageBuildError('HostTool', 'ldd is missing (Debian package libc-bin): cannot find the libraries node needs')
  const libs = parseLdd(await tool('ldd', [node], 'ldd on the node binary'))
  const wsDir = dirname(createRequire(import.meta.url).resolve('ws/package.json'))
  return { busybox, applets, node, libs, canStrip: !!which('strip'), wsDir, wsFiles: listFiles(wsDir), sourcesDir }
}

// Hashing node (~120 MB) costs a fraction of a second; remember it per file version.
const hashMemo = new Map<string, string>()

function memoKey(path: string): string {
  const st = statSync(path)
  return `${path}:${st.ino}:${st.size}:${st.mtimeMs}`
}

/** sha256 of each file, for hashPlan; read once per file version per process. */
export async function hashFiles(paths: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const p of new Set(paths)) {
    const key = memoKey(p)
    let digest = hashMemo.get(key)
    if (!digest) {
      const h = createHash('sha256')
      for await (const chunk of createReadStream(p)) h.update(chunk as Buffer)
      digest = h.digest('hex')
      hashMemo.set(key, digest)
    }
    out.set(p, digest)
  }
  return out
}

// What each local image contains, as data: a plan of context entries and a
// Dockerfile, computed from facts about the host (where busybox and node are,
// which libraries node needs). Pure: no file or Docker access here, so the
// plan, the content hash and the parsers are testable without a host.
//
// Every image is FROM scratch and built from a context of layer folders:
//   base/   busybox-static, its applet links, /etc/passwd etc., /tmp   (all images)
//   node/   the node binary and the shared libraries ldd lists         (echo, demo)
//   app/ or pause/  what makes the image itself
// Each folder is one COPY, so echo and demo share the base and node layers
// through Docker's build cache instead of storing node twice.

import { createHash } from 'node:crypto'
import { ImageBuildError } from './errors.ts'

export const imageNames = ['pause', 'echo', 'demo'] as const
export type ImageName = (typeof imageNames)[number]

export const imageTag = (name: ImageName): string => `skiff/${name}:local`
export const hashLabel = 'skiff.image.hash'
export const nameLabel = 'skiff.image'

/** Bump when the plan's shape changes in a way the entries alone do not show. */
const planFormat = 2

/** One file, link or folder in the build context, at `path` relative to its root. */
export type ContextEntry =
  | { kind: 'file'; path: string; source: string; mode: number; strip?: boolean }
  | { kind: 'inline'; path: string; content: string; mode: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'dir'; path: string; mode: number }

export interface ImagePlan {
  name: ImageName
  tag: string
  dockerfile: string
  entries: ContextEntry[]
}

/** What the host provides; gathered by hostfacts.ts. Paths are absolute. */
export interface HostFacts {
  busybox: string
  /** Applets the host's busybox has (`busybox --list`). */
  applets: string[]
  node: string
  /** Libraries as the node binary looks them up (ldd's paths), loader included. */
  libs: string[]
  canStrip: boolean
  /** The `ws` package folder and its files relative to it (for the /ws echo). */
  wsDir: string
  wsFiles: string[]
  /** This folder (node/images), where server.mjs, app.mjs and pause.sh live. */
  sourcesDir: string
}

/** Applets a test or a user reaches for; the first line must exist. wget is left out: it crashes in these images. */
const requiredApplets = ['sh', 'sleep', 'nc', 'nslookup', 'cat', 'echo', 'ls', 'ps', 'ip', 'ifconfig', 'hostname', 'env']
const extraApplets = [
  ...['ash', 'awk', 'base64', 'basename', 'cp', 'cut', 'date', 'dd', 'df', 'diff', 'dirname', 'du', 'egrep', 'expr'],
  ...['false', 'find', 'free', 'grep', 'gunzip', 'gzip', 'head', 'hexdump', 'id', 'kill', 'killall', 'less', 'ln'],
  ...['md5sum', 'mkdir', 'mktemp', 'more', 'mv', 'netstat', 'nproc', 'od', 'pidof', 'ping', 'ping6', 'printf', 'pwd'],
  ...['readlink', 'realpath', 'rm', 'rmdir', 'route', 'arp', 'sed', 'seq', 'sha256sum', 'sort', 'stat', 'tail', 'tar'],
  ...['tee', 'telnet', 'test', '[', '[[', 'timeout', 'top', 'touch', 'tr', 'traceroute', 'true', 'uname', 'uniq'],
  ...['uptime', 'usleep', 'vi', 'watch', 'wc', 'which', 'whoami', 'xargs', 'yes', 'zcat'],
]

/** The applets to link: the wanted ones the host's busybox has. Throws when a required one is missing. */
export function chooseApplets(available: string[]): string[] {
  const have = new Set(available)
  const missing = requiredApplets.filter((a) => !have.has(a))
  if (missing.length) {
    throw new ImageBuildError('BusyboxMissing', `the host's busybox lacks applets ${missing.join(', ')}: install Debian's busybox-static`)
  }
  return [...requiredApplets, ...extraApplets.filter((a) => have.has(a))].sort()
}

const etcFiles: Record<string, string> = {
  'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
  'etc/group': 'root:x:0:\nnogroup:x:65534:\n',
  // glibc (node's getaddrinfo) reads this; /etc/hosts and resolv.conf come from the runtime.
  'etc/nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files dns\n',
}

function baseEntries(facts: HostFacts): ContextEntry[] {
  return [
    { kind: 'file', path: 'base/bin/busybox', source: facts.busybox, mode: 0o755 },
    ...chooseApplets(facts.applets).map((a): ContextEntry => ({ kind: 'symlink', path: `base/bin/${a}`, target: 'busybox' })),
    ...Object.entries(etcFiles).map(([p, content]): ContextEntry => ({ kind: 'inline', path: `base/${p}`, content, mode: 0o644 })),
    { kind: 'dir', path: 'base/tmp', mode: 0o1777 },
    { kind: 'dir', path: 'base/root', mode: 0o700 },
  ]
}

function nodeEntries(facts: HostFacts): ContextEntry[] {
  return [
    { kind: 'file', path: 'node/usr/local/bin/node', source: facts.node, mode: 0o755, strip: facts.canStrip },
    ...facts.libs.map((lib): ContextEntry => ({ kind: 'file', path: `node${lib}`, source: lib, mode: 0o755 })),
  ]
}

const nodeDockerfile = (app: string, expose: string) => `FROM scratch
COPY base/ /
COPY node/ /
COPY app/ /app/
ENV PATH=/usr/local/bin:/bin
WORKDIR /app
EXPOSE ${expose}
CMD ["node", "/app/${app}"]
`

/** The whole plan of one image: its context entries (sorted by path) and Dockerfile. */
export function planImage(name: ImageName, facts: HostFacts): ImagePlan {
  const src = (p: string) => `${facts.sourcesDir}/${p}`
  let entries: ContextEntry[]
  let dockerfile: string
  if (name === 'pause') {
    entries = [...baseEntries(facts), { kind: 'file', path: 'pause/pause', source: src('pause/pause.sh'), mode: 0o755 }]
    dockerfile = 'FROM scratch\nCOPY base/ /\nCOPY pause/ /\nENV PATH=/bin\nCMD ["/pause"]\n'
  } else if (name === 'echo') {
    entries = [
      ...baseEntries(facts),
      ...nodeEntries(facts),
      { kind: 'file', path: 'app/server.mjs', source: src('echo/server.mjs'), mode: 0o644 },
      ...facts.wsFiles.map((f): ContextEntry => ({ kind: 'file', path: `app/node_modules/ws/${f}`, source: `${facts.wsDir}/${f}`, mode: 0o644 })),
    ]
    dockerfile = nodeDockerfile('server.mjs', '8080/tcp 9000/tcp 9001/udp')
  } else {
    entries = [...baseEntries(facts), ...nodeEntries(facts), { kind: 'file', path: 'app/app.mjs', source: src('demo/app.mjs'), mode: 0o644 }]
    dockerfile = nodeDockerfile('app.mjs', '8080/tcp')
  }
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  return { name, tag: imageTag(name), dockerfile, entries }
}

/**
 * The content hash of a plan: the Dockerfile and every entry's path, mode,
 * link target, and content (by hash: `fileHash(source)` for host files). Equal
 * hash, equal image; it goes into the `skiff.image.hash` label.
 */
export function hashPlan(plan: ImagePlan, fileHash: (source: string) => string): string {
  const h = createHash('sha256')
  h.update(JSON.stringify({ format: planFormat, name: plan.name, dockerfile: plan.dockerfile }))
  for (const e of plan.entries) {
    const content =
      e.kind === 'file' ? { sha256: fileHash(e.source), strip: !!e.strip } : e.kind === 'inline' ? { text: e.content } : {}
    h.update('\n' + JSON.stringify({ ...e, source: undefined, content }))
  }
  return h.digest('hex')
}

/**
 * Library paths from `ldd` output, in order, without the vDSO. Lines are
 * `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or, for the loader,
 * `/lib64/ld-linux-x86-64.so.2 (0x...)`. A `=> not found` line throws.
 */
export function parseLdd(text: string): string[] {
  const libs: string[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line || line.startsWith('linux-vdso') || line.startsWith('linux-gate')) continue
    if (/=>\s*not found/.test(line)) {
      throw new ImageBuildError('NodeMissing', `node needs a library the host lacks: ${line}`)
    }
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^(\/\S+)\s+\(/.exec(line)
    if (m) libs.push(m[1]!)
  }
  return [...new Set(libs)]
}

/** True when `buf` is an ELF executable without a program interpreter (statically linked). */
export function isStaticElf(buf: Buffer): boolean {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) return false
  const is64 = buf[4] === 2
  const le = buf[5] === 1
  const u16 = (o: number) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o))
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o))
  const phoff = is64 ? Number(le ? buf.readBigUInt64LE(0x20) : buf.readBigUInt64BE(0x20)) : u32(0x1c)
  const phentsize = u16(is64 ? 0x36 : 0x2a)
  const phnum = u16(is64 ? 0x38 : 0x2c)
  if (phoff + phentsize * phnum > buf.length) return false
  const ptInterp = 3
  for (let i = 0; i < phnum; i++) if (u32(phoff + i * phentsize) === ptInterp) return false
  return true
}

/** Resolves `--only` names: `echo` or `skiff/echo:local`; none means all. */
export function selectImages(only?: string[]): ImageName[] {
  if (!only || only.length === 0) return [...imageNames]
  const picked = new Set<ImageName>()
  for (const o of only) {
    const name = imageNames.find((n) => n === o || imageTag(n) === o)
    if (!name) throw new ImageBuildError('UnknownImage', `unknown image ${JSON.stringify(o)}: the local images are ${imageNames.join(', ')}`)
    picked.add(name)
  }
  return imageNames.filter((n) => picked.has(n))
}

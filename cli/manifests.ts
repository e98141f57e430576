// Load Kubernetes manifests from files, folders and stdin: multi-document
// YAML or JSON, `kind: List` expanded. A syntax error names the file, line
// and column; an object without apiVersion/kind/name says which document.

import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { LineCounter, parseAllDocuments } from 'yaml'
import type { KubeObject } from '../controlplane/api/types.ts'

export class ManifestError extends Error {
  readonly code = 'SKIFF_ERR_CLI_MANIFEST'
  constructor(message: string) {
    super(message)
    this.name = 'ManifestError'
  }
}

export interface Manifest {
  source: string // file:document
  object: KubeObject
}

function filesOf(path: string): string[] {
  if (path === '-') return ['-']
  let st
  try {
    st = statSync(path)
  } catch {
    throw new ManifestError(`${path}: no such file or directory`)
  }
  if (!st.isDirectory()) return [path]
  return readdirSync(path)
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort()
    .flatMap((f) => filesOf(join(path, f)))
}

export function parseManifests(text: string, file: string): Manifest[] {
  const lc = new LineCounter()
  const docs = parseAllDocuments(text, { lineCounter: lc })
  const out: Manifest[] = []
  const list = Array.isArray(docs) ? docs : [docs]
  list.forEach((doc, i) => {
    const err = doc.errors[0]
    if (err) {
      const pos = lc.linePos(err.pos[0])
      throw new ManifestError(`${file}:${pos.line}:${pos.col}: invalid YAML: ${err.message.split('\n')[0]}`)
    }
    const value = doc.toJS() as unknown
    if (value === null || value === undefined) return
    const line = doc.contents ? lc.linePos(doc.contents.range[0]).line : 1
    for (const obj of expand(value, `${file}:${line}`)) out.push({ source: `${file}:${line}`, object: obj })
    void i
  })
  return out
}

function expand(value: unknown, where: string): KubeObject[] {
  if (typeof value !== 'object' || Array.isArray(value) || value === null) {
    throw new ManifestError(`${where}: a manifest must be a mapping with apiVersion, kind and metadata`)
  }
  const obj = value as KubeObject
  if (typeof obj.kind === 'string' && obj.kind.endsWith('List') && Array.isArray(obj.items)) return obj.items.flatMap((x: unknown) => expand(x, where))
  if (!obj.apiVersion || !obj.kind) throw new ManifestError(`${where}: missing apiVersion or kind`)
  if (!obj.metadata?.name && !obj.metadata?.generateName) throw new ManifestError(`${where}: ${obj.kind} has no metadata.name`)
  return [obj]
}

export function loadManifests(paths: string[], stdin: () => string): Manifest[] {
  const out: Manifest[] = []
  for (const p of paths) {
    for (const f of filesOf(p)) {
      const text = f === '-' ? stdin() : readFileSync(f, 'utf8')
      out.push(...parseManifests(text, f === '-' ? '<stdin>' : f))
    }
  }
  return out
}

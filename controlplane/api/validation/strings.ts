// No control characters in the strings of objects the data plane turns
// into traffic rules (Ingress, IngressClass, Service): every string value
// and every key, wherever it sits (spec, status, metadata, fields Skiff does
// not know), on top of each field's own grammar. A control character has no
// business in a host, a path, a name or a setting, and a log line, an Event,
// a status message or a header built from one would carry it on.
//
// One exception: the values of annotations outside `skiff.dev/` may hold
// TAB, LF and CR. They are other tools' text, never read by Skiff, and
// kubectl's own `kubectl.kubernetes.io/last-applied-configuration` ends in
// a newline. Every other C0 or C1 control or DEL is refused there too.
// (`skiff.dev/` values get no exception: skiff.ts refuses any control
// character in them, on every kind.)

import { invalid, isRecord, keyPath, raw } from './field.ts'
import type { Causes } from './field.ts'
import { control, controlCharacterMsg } from './names.ts'
import { skiffPrefix } from './skiff.ts'

const controlButWhitespace = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/
const plainKey = /^[A-Za-z_][A-Za-z0-9_]*$/

/** A bad value for the message: long values are cut (the cause names the field anyway). */
function shown(v: string): string | ReturnType<typeof raw> {
  return v.length > 128 ? raw(`${JSON.stringify(v.slice(0, 128))}...`) : v
}

function child(path: string, key: string): string {
  if (path === '') return key
  return plainKey.test(key) ? `${path}.${key}` : keyPath(path, key)
}

/**
 * One cause per string (or key) holding a control character, with its field
 * path (`spec.rules[0].host`, `metadata.annotations[example.com/x]`). Walks
 * without recursion, so any depth of nesting is fine.
 */
export function controlCharacterErrors(obj: unknown): Causes {
  const out: Causes = []
  const stack: Array<{ v: unknown; path: string; lenient: boolean }> = [{ v: obj, path: '', lenient: false }]
  while (stack.length > 0) {
    const { v, path, lenient } = stack.pop()!
    if (typeof v === 'string') {
      if ((lenient ? controlButWhitespace : control).test(v)) out.push(invalid(path, shown(v), controlCharacterMsg))
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], path: `${path}[${i}]`, lenient: false })
    } else if (isRecord(v)) {
      const annotations = path === 'metadata.annotations'
      const keys = Object.keys(v)
      for (let i = keys.length - 1; i >= 0; i--) {
        const k = keys[i]!
        const at = child(path, k)
        if (control.test(k)) out.push(invalid(at, shown(k), controlCharacterMsg))
        // skiff.dev values: validateSkiffAnnotations checks them, on every kind, so once is enough.
        if (annotations && k.startsWith(skiffPrefix)) continue
        stack.push({ v: v[k], path: at, lenient: annotations })
      }
    }
  }
  return out
}

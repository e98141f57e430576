// Decoding of kubectl's protobuf request bodies. The fixtures are the exact
// bytes kubectl 1.32 sent (test/fixtures/protobuf/capture.ts), each next to
// kubectl's own `--dry-run=client -o json` rendering of the same object.

import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import protobuf from 'protobufjs/minimal.js'
import { decodeProtobufObject, isProtobufContentType } from '../../controlplane/api/protobuf.ts'
import { ApiError } from '../../controlplane/api/errors.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'

const dir = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/protobuf')
const bin = (name: string): Buffer => readFileSync(join(dir, `${name}.bin`))
const decode = (name: string): KubeObject => decodeProtobufObject(bin(name))

// kubectl's JSON has `creationTimestamp: null`, `status: {}`, `resources: {}`:
// unset values that the decoder leaves out. Drop them before comparing.
function prune(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(prune)
  if (v === null || typeof v !== 'object') return v
  const out: Record<string, unknown> = {}
  for (const [k, child] of Object.entries(v)) {
    const p = prune(child)
    if (p === null || (typeof p === 'object' && !Array.isArray(p) && Object.keys(p as object).length === 0)) continue
    out[k] = p
  }
  return out
}

t.test('every captured body decodes to what kubectl renders as JSON', async (t) => {
  const names = readdirSync(dir).filter((f) => f.endsWith('.bin')).map((f) => f.slice(0, -4))
  t.ok(names.length >= 6, 'fixtures present')
  for (const name of names) {
    const json = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8'))
    t.same(decode(name), prune(json), name)
  }
})

t.test('create deployment --image --port --replicas=3', async (t) => {
  const d = decode('deployment')
  t.equal(d.apiVersion, 'apps/v1')
  t.equal(d.kind, 'Deployment')
  t.equal(d.metadata.name, 'web')
  t.same(d.metadata.labels, { app: 'web' })
  t.equal(d.spec.replicas, 3)
  t.same(d.spec.selector, { matchLabels: { app: 'web' } })
  t.same(d.spec.template.metadata.labels, { app: 'web' })
  const [c, ...more] = d.spec.template.spec.containers
  t.equal(more.length, 0)
  t.equal(c.name, 'echo')
  t.equal(c.image, 'skiff/echo:local')
  t.same(c.ports, [{ containerPort: 8080 }])
  t.notOk('strategy' in d.spec, 'empty strategy is unset')
  t.notOk('status' in d, 'status is server-owned')
  t.notOk('creationTimestamp' in d.metadata)
})

t.test('replicas 0 is kept because it is on the wire', async (t) => {
  t.equal(decode('deployment-zero-replicas').spec.replicas, 0)
})

t.test('create deployment -- command, and two images', async (t) => {
  t.same(decode('deployment-command').spec.template.spec.containers[0].command, ['serve', '--listen=:9000'])
  const images = decode('deployment-two-images').spec.template.spec.containers.map((c: any) => [c.name, c.image])
  t.same(images, [['echo', 'skiff/echo:local'], ['demo', 'skiff/demo:local']])
})

t.test('create service clusterip --tcp=80:8080', async (t) => {
  const s = decode('service-clusterip')
  t.equal(s.kind, 'Service')
  t.equal(s.metadata.name, 'web')
  t.equal(s.spec.type, 'ClusterIP')
  t.same(s.spec.selector, { app: 'web' })
  t.same(s.spec.ports, [{ name: '80-8080', protocol: 'TCP', port: 80, targetPort: 8080 }])
  t.notOk('clusterIP' in s.spec, 'no clusterIP asked for')
})

t.test('create service clusterip --clusterip=None', async (t) => {
  const s = decode('service-headless')
  t.equal(s.spec.clusterIP, 'None')
  t.notOk('ports' in s.spec)
})

t.test('create service nodeport --node-port', async (t) => {
  const s = decode('service-nodeport')
  t.equal(s.spec.type, 'NodePort')
  t.equal(s.spec.ports[0].nodePort, 30080)
  t.equal(s.spec.ports[0].targetPort, 8080)
})

t.test('create service loadbalancer with two ports', async (t) => {
  const s = decode('service-loadbalancer')
  t.equal(s.spec.type, 'LoadBalancer')
  t.same(s.spec.ports.map((p: any) => [p.port, p.targetPort]), [[443, 8443], [80, 80]])
})

t.test('create service externalname', async (t) => {
  const s = decode('service-externalname')
  t.equal(s.spec.type, 'ExternalName')
  t.equal(s.spec.externalName, 'example.com')
})

t.test('create namespace', async (t) => {
  t.same(decode('namespace'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a' } })
})

t.test('create configmap --from-literal and --from-file', async (t) => {
  const c = decode('configmap')
  t.equal(c.metadata.name, 'cfg')
  t.same(c.data, { a: '1', b: 'two' })
  const f = decode('configmap-files')
  t.same(f.data, { 'greeting.txt': 'hello\nworld\n' })
  t.same(Buffer.from(f.binaryData['blob.bin'], 'base64'), Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x01]))
})

t.test('create secret generic sends protobuf too; data is base64', async (t) => {
  const s = decode('secret-generic')
  t.equal(s.kind, 'Secret')
  t.equal(Buffer.from(s.data.user, 'base64').toString(), 'admin')
  t.equal(Buffer.from(s.data.pass, 'base64').toString(), 's3cr3t')
  t.notOk('type' in s, 'empty type is left for defaulting')
})

// ---- hand-built bodies for what kubectl's create commands never send ----

type W = protobuf.Writer
const field = (w: W, n: number, wire: number): W => w.uint32((n << 3) | wire)
const str = (w: W, n: number, s: string): W => field(w, n, 2).string(s)
const int = (w: W, n: number, v: number): W => field(w, n, 0).int32(v)
function sub(w: W, n: number, fill: (w: W) => void): W {
  field(w, n, 2).fork()
  fill(w)
  return w.ldelim()
}
function envelope(apiVersion: string, kind: string, raw: Uint8Array, encoding = ''): Buffer {
  const w = protobuf.Writer.create()
  sub(w, 1, (w) => str(str(w, 1, apiVersion), 2, kind))
  field(w, 2, 2).bytes(raw)
  str(w, 3, encoding)
  str(w, 4, '')
  return Buffer.concat([Buffer.from('k8s\0', 'latin1'), w.finish()])
}
const build = (fill: (w: W) => void): Uint8Array => {
  const w = protobuf.Writer.create()
  fill(w)
  return w.finish()
}

t.test('named targetPort, quantities, env refs, pointer IntOrString zero, unknown fields', async (t) => {
  const svc = envelope('v1', 'Service', build((w) => {
    sub(w, 1, (m) => str(m, 1, 'named'))
    sub(w, 2, (spec) => sub(spec, 1, (p) => {
      int(p, 3, 80)
      sub(p, 4, (ios) => str(int(ios, 1, 1), 3, 'http'))
    }))
    str(w, 99, 'a field from the future')
  }))
  t.same(decodeProtobufObject(svc).spec.ports, [{ port: 80, targetPort: 'http' }])

  const dep = envelope('apps/v1', 'Deployment', build((w) => {
    sub(w, 2, (spec) => {
      sub(spec, 4, (st) => sub(str(st, 1, 'RollingUpdate'), 2, (ru) => {
        sub(ru, 1, (ios) => str(int(ios, 1, 1), 3, '25%'))
        sub(ru, 2, (ios) => int(int(ios, 1, 0), 2, 0))
      }))
      sub(spec, 3, (tpl) => sub(tpl, 2, (pod) => sub(pod, 2, (c) => {
        str(c, 1, 'app')
        sub(c, 7, (env) => sub(str(env, 1, 'A'), 3, (from) => sub(from, 3, (ref) => {
          sub(ref, 1, (lor) => str(lor, 1, 'cfg'))
          str(ref, 2, 'a')
        })))
        sub(c, 8, (res) => sub(res, 2, (entry) => sub(str(entry, 1, 'cpu'), 2, (q) => str(q, 1, '250m'))))
      })))
    })
  }))
  const d = decodeProtobufObject(dep)
  t.same(d.metadata, {}, 'metadata is always an object')
  t.same(d.spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: 0 } })
  t.same(d.spec.template.spec.containers[0].resources, { requests: { cpu: '250m' } })
  t.same(d.spec.template.spec.containers[0].env, [{ name: 'A', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'a' } } }],
    'the embedded LocalObjectReference is inlined, as in JSON')
})

/** The `raw` bytes of a captured body: the envelope's field 2. */
function rawOf(body: Buffer): Uint8Array {
  const r = protobuf.Reader.create(body.subarray(4))
  while (r.pos < r.len) {
    const tag = r.uint32()
    if (tag === ((2 << 3) | 2)) return r.bytes()
    r.skipType(tag & 7)
  }
  throw new Error('no raw field')
}

function rejection(body: Buffer): ApiError | undefined {
  try {
    decodeProtobufObject(body)
  } catch (e) {
    if (e instanceof ApiError) return e
    throw e
  }
  return undefined
}

t.test('malformed and unsupported bodies', async (t) => {
  t.match(rejection(Buffer.from('{"kind":"Pod"}')), { reason: 'BadRequest', message: /k8s\\0/ })
  t.match(rejection(Buffer.alloc(2)), { reason: 'BadRequest', message: /magic/ })
  const whole = bin('deployment')
  t.match(rejection(whole.subarray(0, whole.length - 40)), { reason: 'BadRequest', message: /the runtime.Unknown envelope: index out of range/ })
  const raw = rawOf(whole)
  t.match(rejection(envelope('apps/v1', 'Deployment', raw.subarray(0, raw.length - 40))), { reason: 'BadRequest', message: /the Deployment object: index out of range/ })
  const wrongWire = envelope('apps/v1', 'Deployment', build((w) => int(w, 1, 7)))
  t.match(rejection(wrongWire), { reason: 'BadRequest', message: /Deployment\.metadata: wire type 0, expected 2/ })
  t.match(rejection(envelope('scheduling.k8s.io/v1', 'PriorityClass', new Uint8Array(0))), { reason: 'UnsupportedMediaType', message: /not scheduling.k8s.io\/v1\/PriorityClass/ })
  t.match(rejection(envelope('extensions/v1beta1', 'Deployment', new Uint8Array(0))), { reason: 'UnsupportedMediaType', message: /send JSON/ })
  t.match(rejection(envelope('v1', 'ConfigMap', new Uint8Array(0), 'gzip')), { reason: 'UnsupportedMediaType', message: /contentEncoding "gzip"/ })
})

t.test('isProtobufContentType', async (t) => {
  t.ok(isProtobufContentType('application/vnd.kubernetes.protobuf'))
  t.ok(isProtobufContentType('Application/VND.Kubernetes.Protobuf; charset=binary'))
  t.notOk(isProtobufContentType('application/json'))
  t.notOk(isProtobufContentType('application/vnd.kubernetes.protobuf+json'))
  t.notOk(isProtobufContentType(undefined))
  t.notOk(isProtobufContentType(''))
})

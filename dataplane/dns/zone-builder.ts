// The zone builder thread (started by zone-sync.ts when the queries are
// answered by worker threads): it keeps its own copy of the Services,
// EndpointSlices and Pods, fed by the changes the main thread's informers
// saw, and rebuilds, compiles and encodes the zone (zone.ts, compile.ts,
// zone-wire.ts) off the main thread, whose event loop the agent shares with
// the service proxy. Changes that arrive while a build runs are folded into
// the next one.

import { parentPort, workerData } from 'node:worker_threads'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { compileZone } from './compile.ts'
import { encodeZone } from './zone-wire.ts'
import { buildZone } from './zone.ts'
import type { BuilderSetup, FromBuilder, ToBuilder } from './zone-sync.ts'

const setup = workerData as BuilderSetup
const port = parentPort!
const post = (m: FromBuilder) => port.postMessage(m)
const kinds = { services: new Map<string, KubeObject>(), slices: new Map<string, KubeObject>(), pods: new Map<string, KubeObject>() }
let scheduled = false

port.on('message', (m: ToBuilder) => {
  if (m.reset) for (const k of Object.values(kinds)) k.clear()
  for (const kind of ['services', 'slices', 'pods'] as const) {
    for (const [key, obj] of m[kind]) {
      if (obj) kinds[kind].set(key, obj)
      else kinds[kind].delete(key)
    }
  }
  if (scheduled) return
  scheduled = true
  setImmediate(() => {
    scheduled = false
    build(m.serial)
  })
})

function build(serial: number): void {
  const t0 = performance.now()
  try {
    const zone = buildZone({
      services: [...kinds.services.values()], slices: [...kinds.slices.values()], pods: [...kinds.pods.values()],
      origin: setup.origin, ttl: setup.ttl, dnsIP: setup.dnsIP, serial,
    })
    const compiled = compileZone(zone)
    post({ type: 'zone', zone: encodeZone(compiled), records: compiled.records, seconds: (performance.now() - t0) / 1000 })
  } catch (e) {
    // Keep serving the previous zone; the next change retries.
    post({ type: 'error', message: (e as Error).message })
  }
}

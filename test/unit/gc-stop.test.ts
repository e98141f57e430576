// The garbage collector's stop() while a namespace is Terminating and one of
// its pods never finishes (its node's agent is gone): stop() must return, not
// wait for the pod; the next server's sweep finishes the namespace. A stub
// registry stands in for Redis: this is the loop's logic, nothing else.

import t from 'tap'
import { GarbageCollector } from '../../controlplane/apiserver/gc.ts'
import type { Registry } from '../../controlplane/apiserver/registry.ts'
import { silentLogger } from '../../lib/log.ts'

t.test('stop() returns while a Terminating namespace waits on a pod no agent finishes', async (t) => {
  let lists = 0
  const stuck = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'doomed', uid: 'u1', deletionTimestamp: new Date().toISOString() } }
  const registry = {
    hooks: undefined,
    list: async (r: { resource: string }, ns?: string) => {
      lists++
      return { items: r.resource === 'pods' && ns === 'doomed' ? [stuck] : [] }
    },
    get: async () => ({ metadata: { name: 'doomed', deletionTimestamp: new Date().toISOString() } }),
    finalize: async () => t.fail('the namespace must not be finalized while a pod is left'),
    delete: async () => undefined,
    updateFrom: async () => undefined,
  } as unknown as Registry
  const gc = new GarbageCollector({ registry, logger: silentLogger(), sweepIntervalMs: 3_600_000, namespaceDelayMs: 0 })
  const terminating = gc.terminateNamespace('doomed')
  await new Promise((r) => setTimeout(r, 500))
  t.ok(lists > 0, 'the namespace loop is running')
  const stopped = await Promise.race([
    terminating.then(() => 'returned'),
    new Promise((r) => setTimeout(() => r('still waiting after 3 s'), 3_000).unref()),
  ])
  t.equal(stopped, 'still waiting after 3 s', 'without stop() it keeps waiting for the pod')
  const after = await Promise.race([
    gc.stop().then(() => terminating).then(() => 'returned'),
    new Promise((r) => setTimeout(() => r('stop() did not return within 10 s'), 10_000).unref()),
  ])
  t.equal(after, 'returned', 'stop() ends the wait')
})

// How a store event looks to a watcher with a selector (Kubernetes' rules):
// an object that stops matching is DELETED for it, one that starts, ADDED.

import t from 'tap'
import { lookupResource } from '../../controlplane/api/resources.ts'
import { parseLabelSelector } from '../../controlplane/api/selectors.ts'
import { translate } from '../../controlplane/apiserver/watch.ts'
import type { StoreEvent } from '../../controlplane/store/types.ts'

const info = lookupResource('', 'v1', 'pods')!
const pod = (app: string, ns = 'default') => ({ metadata: { name: 'p', namespace: ns, labels: { app } } })
const req = { info, filter: { namespace: 'default', labels: parseLabelSelector('app=web') }, bookmarks: false }

const cases: Array<{ name: string; ev: Partial<StoreEvent>; want: string | undefined }> = [
  { name: 'added, matching', ev: { type: 'ADDED', object: pod('web') }, want: 'ADDED' },
  { name: 'added, not matching', ev: { type: 'ADDED', object: pod('db') }, want: undefined },
  { name: 'modified, still matching', ev: { type: 'MODIFIED', object: pod('web'), prev: pod('web') }, want: 'MODIFIED' },
  { name: 'modified into the selector', ev: { type: 'MODIFIED', object: pod('web'), prev: pod('db') }, want: 'ADDED' },
  { name: 'modified out of the selector', ev: { type: 'MODIFIED', object: pod('db'), prev: pod('web') }, want: 'DELETED' },
  { name: 'modified, never matching', ev: { type: 'MODIFIED', object: pod('db'), prev: pod('db') }, want: undefined },
  { name: 'deleted, matching', ev: { type: 'DELETED', object: pod('web'), prev: pod('web') }, want: 'DELETED' },
  { name: 'other namespace', ev: { type: 'ADDED', object: pod('web', 'other') }, want: undefined },
]

for (const c of cases) {
  t.equal(translate(req, { resource: 'pods', key: 'default/p', revision: 1, ...c.ev } as StoreEvent), c.want, c.name)
}

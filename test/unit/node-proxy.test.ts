// The apiserver's node proxy, pure parts: which container, which kubelet
// endpoint, which kubelet path, how a kubelet error reads, and the memory of
// WebSocket failures answered to kubectl's SPDY fallback.

import t from 'tap'
import { ApiError } from '../../controlplane/api/errors.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { chooseContainer, kubeletEndpoint, kubeletError, kubeletExecPath, kubeletLogPath, RecentFailures } from '../../controlplane/apiserver/node-proxy.ts'

const pod = (containers: string[], init: string[] = []): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web', namespace: 'default' },
  spec: { containers: containers.map((name) => ({ name })), initContainers: init.map((name) => ({ name })) },
})

function failure(fn: () => unknown): ApiError {
  try {
    fn()
  } catch (e) {
    if (e instanceof ApiError) return e
    throw e
  }
  throw new Error('expected an ApiError')
}

t.test('chooseContainer', async (t) => {
  t.equal(chooseContainer(pod(['app']), undefined), 'app', 'the only container')
  t.equal(chooseContainer(pod(['app', 'side']), 'side'), 'side')
  t.equal(chooseContainer(pod(['app'], ['setup']), 'setup'), 'setup', 'init containers have logs too')
  const missing = failure(() => chooseContainer(pod(['app', 'side'], ['setup']), undefined))
  t.equal(missing.status, 400)
  t.equal(missing.message, 'a container name must be specified for pod web, choose one of: [app side] or one of the init containers: [setup]')
  const unknown = failure(() => chooseContainer(pod(['app']), 'nope'))
  t.equal(unknown.message, 'container nope is not valid for pod web')
})

t.test('kubeletEndpoint', async (t) => {
  const node = (status: unknown): KubeObject => ({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' }, status })
  const good = { addresses: [{ type: 'Hostname', address: 'n1' }, { type: 'InternalIP', address: '10.0.0.5' }], daemonEndpoints: { kubeletEndpoint: { Port: 10250 } } }
  t.same(kubeletEndpoint('n1', node(good)), { node: 'n1', host: '10.0.0.5', port: 10250 })
  const cases: Array<[string, KubeObject | undefined, number, RegExp]> = [
    ['no Node', undefined, 404, /nodes "n1" not found: .*not registered/],
    ['no InternalIP', node({ ...good, addresses: [{ type: 'Hostname', address: 'n1' }] }), 503, /node agent for node n1 is not reachable: .*InternalIP/],
    ['no port', node({ ...good, daemonEndpoints: {} }), 503, /node agent for node n1 is not reachable: .*kubeletEndpoint.Port/],
    ['port 0', node({ ...good, daemonEndpoints: { kubeletEndpoint: { Port: 0 } } }), 503, /kubeletEndpoint.Port/],
  ]
  for (const [name, n, status, msg] of cases) {
    const e = failure(() => kubeletEndpoint('n1', n))
    t.equal(e.status, status, name)
    t.match(e.message, msg, name)
  }
})

t.test('kubelet paths carry only the kubelet parameters, escaped', async (t) => {
  const ref = { namespace: 'default', pod: 'web', container: 'app' }
  t.equal(kubeletLogPath(ref, new URLSearchParams('container=app&follow=true&tailLines=5&pretty=true&previous=false')), '/containerLogs/default/web/app?follow=true&previous=false&tailLines=5')
  t.equal(kubeletLogPath({ ...ref, pod: 'a/b' }, new URLSearchParams('')), '/containerLogs/default/a%2Fb/app')
  t.equal(
    kubeletExecPath(ref, new URLSearchParams('command=sh&command=-c&command=echo a%26b&container=app&stdin=true&stdout=true&stderr=true&tty=false')),
    '/exec/default/web/app?command=sh&command=-c&command=echo+a%26b&stdin=true&stdout=true&stderr=true&tty=false',
  )
})

t.test('kubeletError', async (t) => {
  const ep = { node: 'n1', host: '10.0.0.5', port: 10250 }
  const status = JSON.stringify({ kind: 'Status', status: 'Failure', message: 'previous terminated container "app" in pod "web" not found', reason: 'BadRequest', code: 400 })
  const bad = kubeletError(ep, 400, status)
  t.equal(bad.status, 400)
  t.equal(bad.message, 'previous terminated container "app" in pod "web" not found')
  const token = kubeletError(ep, 401, 'Unauthorized')
  t.equal(token.status, 503)
  t.match(token.message, /node n1 refused the apiserver's kubelet client token/)
  const plain = kubeletError(ep, 404, 'not found: /x\n')
  t.equal(plain.reason, 'NotFound')
  t.equal(plain.message, 'not found: /x')
  t.equal(kubeletError(ep, 502, '').message, 'HTTP 502')
})

t.test('RecentFailures', async (t) => {
  const f = new RecentFailures({ ttlMs: 1000, max: 2 })
  const e = (m: string) => new ApiError('BadRequest', m)
  f.put('a', e('a'), 0)
  t.equal(f.take('a', 500)?.message, 'a')
  t.equal(f.take('a', 500), undefined, 'taken once')
  f.put('b', e('b'), 0)
  t.equal(f.take('b', 1001), undefined, 'expired')
  f.put('x', e('x'), 0)
  f.put('y', e('y'), 0)
  f.put('z', e('z'), 0)
  t.equal(f.take('x', 0), undefined, 'oldest dropped past max')
  t.equal(f.take('z', 0)?.message, 'z')
})

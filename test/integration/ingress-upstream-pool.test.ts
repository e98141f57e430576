// UpstreamPool (dataplane/ingress/upstream.ts) with real sockets on loopback:
// a request in flight to an endpoint that left the snapshot (its pod went not
// ready) keeps going, but when a later snapshot says the endpoint's host is
// dead, abort() cuts it, so the proxy can retry it elsewhere instead of
// waiting for the read timeout.

import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { EndpointCutError, UpstreamPool } from '../../dataplane/ingress/upstream.ts'

async function server(handler: http.RequestListener): Promise<{ id: string; close: () => void }> {
  const s = http.createServer(handler)
  await new Promise<void>((res) => s.listen(0, '127.0.0.1', () => res()))
  return { id: `127.0.0.1:${(s.address() as AddressInfo).port}`, close: () => (s.closeAllConnections(), s.close()) }
}

t.test('abort cuts requests in flight, also on a pool whose endpoint already departed', async (t) => {
  let seen!: () => void
  const arrived = new Promise<void>((r) => (seen = r))
  const dead = await server(() => seen()) // never answers: a dead host
  t.teardown(dead.close)
  const pool = new UpstreamPool()
  t.teardown(() => pool.destroy())
  const failed = pool.get(dead.id, 1000).request({ path: '/', method: 'GET' }).then(() => 'answered', (e: any) => e)
  await arrived
  pool.retain(new Set())
  t.equal(pool.abort(['127.0.0.1:1']), 0, 'an unknown endpoint: nothing to cut')
  t.equal(pool.abort([dead.id]), 1, 'the departed endpoint\'s connection is cut')
  const err = await failed
  t.ok(err instanceof EndpointCutError, 'the request in flight fails at once with the cut error (and can be retried)')
})

t.test('a departed endpoint finishes its requests in flight; a kept one stays usable', async (t) => {
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  const slow = await server((_req, res) => void gate.then(() => res.end('late')))
  const kept = await server((_req, res) => res.end('ok'))
  t.teardown(() => (slow.close(), kept.close()))
  const pool = new UpstreamPool()
  t.teardown(() => pool.destroy())
  const inFlight = pool.get(slow.id, 1000).request({ path: '/', method: 'GET' }).then((r) => r.body.text())
  await new Promise((r) => setTimeout(r, 50))
  pool.retain(new Set([kept.id]))
  release()
  t.equal(await inFlight, 'late', 'the departed endpoint\'s request completes')
  const again = await pool.get(kept.id, 1000).request({ path: '/', method: 'GET' })
  t.equal(await again.body.text(), 'ok', 'the kept endpoint answers')
  t.not(pool.get(slow.id, 1000), undefined, 'a departed endpoint that comes back gets a new pool')
})

// AgentPool (dataplane/ingress/proxy.ts) with real sockets on loopback: a
// request in flight to an endpoint that left the snapshot (its pod went not
// ready) keeps going, but when a later snapshot says the endpoint's host is
// dead, abort() cuts it, so the proxy can retry it elsewhere instead of
// waiting for the read timeout.

import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { AgentPool } from '../../dataplane/ingress/proxy.ts'

t.test('abort cuts requests in flight, also on an agent whose endpoint already departed', async (t) => {
  const server = http.createServer(() => { /* never answers: a dead host */ })
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const id = `127.0.0.1:${(server.address() as AddressInfo).port}`
  const pool = new AgentPool()
  const failed = new Promise<string>((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: Number(id.split(':')[1]), path: '/', agent: pool.get(id) }, () => resolve('answered'))
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message))
  })
  await new Promise((res) => server.once('request', res))
  pool.retain(new Set())
  t.equal(pool.abort(['127.0.0.1:1']), 0, 'an unknown endpoint: nothing to cut')
  t.equal(pool.abort([id]), 1, 'the departed endpoint\'s connection is cut')
  t.equal(await failed, 'ECONNRESET', 'the request in flight fails at once (and can be retried)')
})

// The probe manager's first results: a sync that has just started a
// container waits for its first readiness (or startup) probe, due at once, so
// one status write carries Running and Ready; results read that way trigger no
// second sync. Real tcpSocket probes against loopback ports.

import { createServer, type Server } from 'node:net'
import t from 'tap'
import { pino } from 'pino'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { ProbeManager } from '../../node/probes.ts'

const logger = pino({ level: 'silent' })
const runtime = { exec: async () => ({ exitCode: 0, output: '' }) }

async function listening(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => s.destroy())
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { server, port: (server.address() as { port: number }).port }
}

/** A port nothing listens on: one that was listening and is closed again. */
async function closedPort(): Promise<number> {
  const { server, port } = await listening()
  await new Promise((r) => server.close(r))
  return port
}

function pod(containers: any[]): KubeObject {
  return { metadata: { name: 'p', namespace: 'ns', uid: 'u1' }, spec: { containers } }
}

t.test('a readiness probe that passes at once: firstResults resolves with the container ready, and no onChange', async (t) => {
  const { server, port } = await listening()
  t.teardown(() => server.close())
  const changes: string[] = []
  const m = new ProbeManager({ runtime, logger, onChange: (k) => changes.push(k) })
  t.teardown(() => m.stop())
  const p = pod([{ name: 'app', readinessProbe: { tcpSocket: { port }, periodSeconds: 60 } }])
  m.sync('ns/p', p, [{ id: 'c1', name: 'app' }], '127.0.0.1')
  t.equal(m.view('c1')?.ready, false, 'not ready before the first probe')
  await m.firstResults('ns/p', 60_000)
  t.equal(m.view('c1')?.ready, true, 'ready once firstResults resolved')
  t.same(changes, [], 'the waiting sync read the result: no onChange')
})

t.test('a first probe that fails: firstResults resolves after that run, not at its bound', async (t) => {
  const port = await closedPort()
  const changes: string[] = []
  const m = new ProbeManager({ runtime, logger, onChange: (k) => changes.push(k) })
  t.teardown(() => m.stop())
  const p = pod([{ name: 'app', readinessProbe: { tcpSocket: { port }, periodSeconds: 60, failureThreshold: 1 } }])
  m.sync('ns/p', p, [{ id: 'c1', name: 'app' }], '127.0.0.1')
  // A bound of 10 minutes: were the wait not ended by the first run, tap's timeout would end the test.
  await m.firstResults('ns/p', 600_000)
  t.equal(m.view('c1')?.ready, false)
})

t.test('with a startup probe, its first run is what is waited for; liveness and delayed probes are not', async (t) => {
  const { server, port } = await listening()
  t.teardown(() => server.close())
  const m = new ProbeManager({ runtime, logger, onChange: () => {} })
  t.teardown(() => m.stop())
  const p = pod([
    { name: 'a', startupProbe: { tcpSocket: { port }, periodSeconds: 60 }, readinessProbe: { tcpSocket: { port }, periodSeconds: 60 } },
    { name: 'b', livenessProbe: { tcpSocket: { port }, periodSeconds: 60 } },
    { name: 'c', readinessProbe: { tcpSocket: { port }, periodSeconds: 60, initialDelaySeconds: 30 } },
  ])
  m.sync('ns/p', p, [{ id: 'a1', name: 'a' }, { id: 'b1', name: 'b' }, { id: 'c1', name: 'c' }], '127.0.0.1')
  await m.firstResults('ns/p', 600_000)
  t.equal(m.view('a1')?.started, true, 'the startup probe ran')
  t.equal(m.view('c1')?.ready, false, 'the delayed readiness probe has not run')
})

t.test('a result that comes after the bound triggers onChange as before', async (t) => {
  const changes: string[] = []
  // A probe that hangs until its timeout: the exec handler resolves after 300 ms.
  const slow = { exec: () => new Promise<{ exitCode: number; output: string }>((r) => setTimeout(() => r({ exitCode: 0, output: '' }), 300)) }
  const m = new ProbeManager({ runtime: slow, logger, onChange: (k) => changes.push(k) })
  t.teardown(() => m.stop())
  const p = pod([{ name: 'app', readinessProbe: { exec: { command: ['true'] }, periodSeconds: 60, timeoutSeconds: 5 } }])
  m.sync('ns/p', p, [{ id: 'c1', name: 'app' }], '127.0.0.1')
  await m.firstResults('ns/p', 1)
  t.equal(m.view('c1')?.ready, false, 'the bound passed before the result')
  await new Promise<void>((resolve) => {
    const check = () => (changes.length ? resolve() : setTimeout(check, 20))
    check()
  })
  t.same(changes, ['ns/p'], 'the late result asks for a sync')
  t.equal(m.view('c1')?.ready, true)
})

t.test('no probe due at once: firstResults returns at once', async (t) => {
  const m = new ProbeManager({ runtime, logger, onChange: () => {} })
  t.teardown(() => m.stop())
  m.sync('ns/p', pod([{ name: 'app' }]), [{ id: 'c1', name: 'app' }], '127.0.0.1')
  await m.firstResults('ns/p', 600_000)
  t.pass('resolved')
})

// The truth-table helper of the NetworkPolicy matrix test
// (test/harness/netpol-matrix.ts): upstream's Expect* overrides, the
// comparison (loopback ignored), the printed tables, and the probe script
// run by the real node against local listeners.

import t from 'tap'
import { spawn } from 'node:child_process'
import { createServer, type Server } from 'node:net'
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { compareReachability, describeMismatch, parseProbeOutput, probeScript, Reachability, truthTable } from '../harness/netpol-matrix.ts'

const pods = ['x/a', 'x/b', 'y/a', 'y/b']

t.test('Expect overrides, as upstream writes them', async (t) => {
  const r = new Reachability(pods, true)
    .expectPeer({}, { namespace: 'x' }, false)
    .expect('y/b', 'x/a', true)
  t.same(pods.map((f) => pods.map((to) => (r.get(f, to) ? 1 : 0))), [
    [0, 0, 1, 1],
    [0, 0, 1, 1],
    [0, 0, 1, 1],
    [1, 0, 1, 1],
  ], 'default-deny-ingress in x, then y/b → x/a allowed')
  const e = new Reachability(pods, true).expectAllEgress('x/a', false).expectAllIngress('y/b', false)
  t.equal(e.get('x/a', 'y/a'), false)
  t.equal(e.get('y/a', 'y/b'), false)
  t.equal(e.get('y/a', 'x/b'), true)
  const p = new Reachability(pods, false).expectPeer({ namespace: 'y', pod: 'a' }, { pod: 'b' }, true)
  t.same(pods.flatMap((f) => pods.filter((to) => p.get(f, to)).map((to) => `${f}>${to}`)), ['y/a>x/b', 'y/a>y/b'])
  t.throws(() => r.expect('x/a', 'z/a', true), /unknown pod pair/)
})

t.test('comparison ignores loopback and reports unprobed cells', async (t) => {
  const want = new Reachability(['x/a', 'x/b'], true).expect('x/b', 'x/a', false)
  t.same(compareReachability(want, { 'x/a': { 'x/a': false, 'x/b': true }, 'x/b': { 'x/a': false, 'x/b': false } }), [], 'loopback cells do not count')
  t.same(compareReachability(want, { 'x/a': { 'x/b': false }, 'x/b': {} }), [
    { from: 'x/a', to: 'x/b', expected: true, observed: false },
    { from: 'x/b', to: 'x/a', expected: false, observed: undefined },
  ])
})

t.test('tables in the upstream format', async (t) => {
  t.equal(truthTable(['x/a', 'x/b'], (f, to) => (f === to ? '.' : 'X')), '-\tx/a\tx/b\nx/a\t.\tX\nx/b\tX\t.')
  const want = new Reachability(['x/a', 'x/b'], true)
  const text = describeMismatch('tcp:80', want, { 'x/a': { 'x/b': false }, 'x/b': { 'x/a': true } })
  t.equal(text, [
    'tcp:80',
    'expected:', '-\tx/a\tx/b', 'x/a\t.\t.', 'x/b\t.\t.',
    'observed:', '-\tx/a\tx/b', 'x/a\t?\tX', 'x/b\t.\t?',
    'comparison:', '-\tx/a\tx/b', 'x/a\t-\tX', 'x/b\t.\t-',
  ].join('\n'))
})

t.test('parseProbeOutput', async (t) => {
  t.same(parseProbeOutput('noise\n{"tcp:80":{"x/a":1,"x/b":0}}\n'), { 'tcp:80': { 'x/a': true, 'x/b': false } })
  t.equal(parseProbeOutput('error: container not found'), undefined)
})

t.test('the probe script against local listeners: open, refused, UDP echo, UDP silence', async (t) => {
  const tcp: Server = createServer((s) => s.destroy()).listen(0, '127.0.0.1')
  await once(tcp, 'listening')
  const udp = createSocket('udp4').on('message', (m, r) => udp.send(m, r.port, r.address))
  udp.bind(0, '127.0.0.1')
  await once(udp, 'listening')
  const silent = createSocket('udp4').on('message', () => undefined)
  silent.bind(0, '127.0.0.1')
  await once(silent, 'listening')
  t.teardown(() => { tcp.close(); udp.close(); silent.close() })
  const closed = createServer().listen(0, '127.0.0.1')
  await once(closed, 'listening')
  const closedPort = (closed.address() as { port: number }).port
  await new Promise((r) => closed.close(r))

  const tcpPort = (tcp.address() as { port: number }).port
  const script = probeScript([{ name: 'here', ip: '127.0.0.1' }], [`tcp:${tcpPort}`, `tcp:${closedPort}`, `udp:${udp.address().port}`, `udp:${silent.address().port}`], 500)
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  await once(child, 'exit')
  t.same(parseProbeOutput(out), {
    [`tcp:${tcpPort}`]: { here: true },
    [`tcp:${closedPort}`]: { here: false },
    [`udp:${udp.address().port}`]: { here: true },
    [`udp:${silent.address().port}`]: { here: false },
  })
})

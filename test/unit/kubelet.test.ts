// The kubelet server's pure parts: which container a request means, the log
// and exec query parsing, Docker's stream framing and the exec status.

import t from 'tap'
import { labels, parseContainerPath, pickContainer, type Candidate } from '../../node/kubelet-containers.ts'
import { decodeChannel, encodeChannel, pickProtocol, portForwardProtocols, statusMessage } from '../../node/kubelet-channels.ts'
import { execStatus, parseExecOptions } from '../../node/kubelet-exec.ts'
import { encodeFrame, FrameDecoder } from '../../node/kubelet-frames.ts'
import { dockerLogQuery, parseLogOptions } from '../../node/kubelet-logs.ts'

const ref = { namespace: 'default', pod: 'web', container: 'app' }
const c = (id: string, attempt: string | undefined, role = 'app', created = 0): Candidate => ({
  Id: id,
  Created: created,
  State: 'running',
  Labels: { [labels.role]: role, ...(attempt === undefined ? {} : { [labels.attempt]: attempt }) },
})

t.test('pickContainer', async (t) => {
  const cases: Array<{ name: string; list: Candidate[]; previous?: boolean; want: string | RegExp }> = [
    { name: 'the only one', list: [c('a', '0')], want: 'a' },
    { name: 'highest attempt, numerically', list: [c('a', '2'), c('b', '10'), c('c', '9')], want: 'b' },
    { name: 'previous is the next lower attempt', list: [c('a', '0'), c('b', '2'), c('c', '1')], previous: true, want: 'c' },
    { name: 'sandbox never', list: [c('s', '5', 'sandbox'), c('a', '0')], want: 'a' },
    { name: 'init containers count', list: [c('i', '0', 'init')], want: 'i' },
    { name: 'same attempt: newest', list: [c('old', '1', 'app', 100), c('new', '1', 'app', 200)], want: 'new' },
    { name: 'none yet', list: [c('s', '0', 'sandbox')], want: /is waiting to start/ },
    { name: 'no previous', list: [c('a', '0')], previous: true, want: /previous terminated container "app" in pod "web" not found/ },
  ]
  for (const tc of cases) {
    const got = pickContainer(ref, tc.list, { previous: tc.previous })
    if (typeof tc.want === 'string') t.equal(got.ok && got.container.Id, tc.want, tc.name)
    else t.match(!got.ok && got.message, tc.want, tc.name)
  }
})

t.test('parseContainerPath', async (t) => {
  t.same(parseContainerPath('/containerLogs/ns/p/c', '/containerLogs/'), { namespace: 'ns', pod: 'p', container: 'c' })
  t.same(parseContainerPath('/exec/ns/p%2Dx/c', '/exec/'), { namespace: 'ns', pod: 'p-x', container: 'c' })
  for (const bad of ['/exec/ns/p', '/exec/ns/p/c/d', '/exec//p/c', '/containerLogs/ns/p/c', '/exec/ns/p/%E0%A4%A']) {
    t.equal(parseContainerPath(bad, '/exec/'), undefined, bad)
  }
})

t.test('parseLogOptions and dockerLogQuery', async (t) => {
  const now = Date.parse('2025-01-01T00:01:40Z')
  const parse = (q: string) => parseLogOptions(new URLSearchParams(q), now)
  t.same(dockerLogQuery((parse('') as any).value), { stdout: true, stderr: true, follow: false, timestamps: false, tail: 'all' })
  t.same(dockerLogQuery((parse('follow=true&tailLines=5&timestamps=true') as any).value), { stdout: true, stderr: true, follow: true, timestamps: true, tail: 5 })
  t.equal((parse('sinceSeconds=40') as any).value.since, now / 1000 - 40)
  t.equal((parse('sinceTime=2025-01-01T00:00:00Z') as any).value.since, now / 1000 - 100)
  t.equal((parse('previous=true&limitBytes=10') as any).value.limitBytes, 10)
  for (const [q, msg] of [
    ['tailLines=-1', /tailLines must be an integer >= 0/],
    ['limitBytes=0', /limitBytes must be an integer >= 1/],
    ['sinceSeconds=x', /sinceSeconds/],
    ['sinceSeconds=5&sinceTime=2025-01-01T00:00:00Z', /at most one/],
    ['sinceTime=yesterday', /RFC 3339/],
  ] as const) {
    const r = parse(q)
    t.match(!r.ok && r.message, msg, q)
  }
})

t.test('FrameDecoder splits and joins frames', async (t) => {
  const bytes = Buffer.concat([encodeFrame(1, 'hello '), encodeFrame(2, 'oops\n'), encodeFrame(1, 'world\n')])
  for (const size of [1, 3, 8, 9, bytes.length]) {
    const d = new FrameDecoder()
    const got: string[] = []
    for (let i = 0; i < bytes.length; i += size) for (const f of d.push(bytes.subarray(i, i + size))) got.push(`${f.stream}:${f.payload}`)
    t.same(got, ['1:hello ', '2:oops\n', '1:world\n'], `chunks of ${size}`)
    t.equal(d.pending, 0)
  }
})

t.test('parseExecOptions', async (t) => {
  const ok = parseExecOptions(new URLSearchParams('command=sh&command=-c&command=echo%20hi&stdout=true&stderr=true'))
  t.same(ok.ok && ok.value, { command: ['sh', '-c', 'echo hi'], stdin: false, stdout: true, stderr: true, tty: false })
  for (const [q, msg] of [
    ['stdout=true', /at least 1 command/],
    ['command=ls', /at least 1 of stdin, stdout, stderr/],
    ['command=ls&stdout=true&stderr=true&tty=true', /tty and stderr/],
  ] as const) {
    const r = parseExecOptions(new URLSearchParams(q))
    t.match(!r.ok && r.message, msg, q)
  }
})

t.test('pickProtocol takes the first offered protocol the kubelet serves, in the client\'s order', async (t) => {
  t.equal(pickProtocol('v4.channel.k8s.io, v5.channel.k8s.io')?.name, 'v4.channel.k8s.io')
  t.equal(pickProtocol(['v5.channel.k8s.io', 'v4.channel.k8s.io'])?.name, 'v5.channel.k8s.io')
  t.same(pickProtocol('base64.channel.k8s.io'), { name: 'base64.channel.k8s.io', base64: true, version: 1 })
  t.same(pickProtocol(undefined), { name: '', base64: false, version: 1 }, 'nothing offered: binary channel.k8s.io framing')
  t.equal(pickProtocol('SPDY/3.1+portforward.k8s.io'), undefined)
  // client-node offers the exec list for port-forward too; the kubelet serves v4 there.
  t.equal(pickProtocol('v5.channel.k8s.io,v4.channel.k8s.io,v3.channel.k8s.io', portForwardProtocols)?.name, 'v4.channel.k8s.io')
  t.equal(pickProtocol('v3.channel.k8s.io', portForwardProtocols), undefined)
})

t.test('channel framing: binary, base64 text, the v5 close signal', async (t) => {
  const v5 = pickProtocol('v5.channel.k8s.io')!
  const b64 = pickProtocol('v4.base64.channel.k8s.io')!
  const v4 = pickProtocol('v4.channel.k8s.io')!
  t.same(encodeChannel(v5, 1, 'hi'), Buffer.from([1, 104, 105]))
  t.equal(encodeChannel(b64, 2, 'hi'), '2aGk=')
  t.same(decodeChannel(b64, Buffer.from('0aGk=')), { ch: 0, data: Buffer.from('hi') })
  t.equal(decodeChannel(b64, Buffer.from('0a*b')), undefined, 'not base64: dropped')
  t.same(decodeChannel(v5, Buffer.from([255, 0])), { ch: 255, data: Buffer.from([0]) })
  t.same(decodeChannel(v4, Buffer.from([255, 0])), { ch: 255, data: Buffer.from([0]) }, 'before v5 it is just channel 255, which nothing reads')
  t.equal(decodeChannel(v4, Buffer.alloc(0)), undefined)
})

t.test('the status channel: JSON from v4, a failure message as text before', async (t) => {
  const fail = execStatus(3, ['false'])
  t.equal(statusMessage(pickProtocol('v4.channel.k8s.io')!, execStatus(0, ['true'])), '{"metadata":{},"status":"Success"}')
  t.equal(statusMessage(pickProtocol('channel.k8s.io')!, execStatus(0, ['true'])), undefined, 'v1: nothing on success')
  t.equal(statusMessage(pickProtocol('v3.channel.k8s.io')!, fail), 'command terminated with non-zero exit code: error executing command [false], exit code 3')
})

t.test('execStatus is what kubectl turns into an exit code', async (t) => {
  t.same(execStatus(0, ['true']), { metadata: {}, status: 'Success' })
  t.same(execStatus(3, ['sh', '-c', 'exit 3']), {
    metadata: {},
    status: 'Failure',
    message: 'command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3',
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: '3' }] },
  })
  t.match(execStatus(null, ['x']), { status: 'Failure', message: /could not be determined/ })
})

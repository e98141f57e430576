// SPDY/3.1 framing (node/spdy.ts) and the port-forward parsing around it:
// a session fed the frames a spdystream client writes (split at any byte)
// opens streams with their headers, answers PING, replies, and carries DATA.

import t from 'tap'
import { constants, createDeflate } from 'node:zlib'
import { eventually } from '../../lib/net.ts'
import { parsePort, parsePortQuery } from '../../node/kubelet-portforward.ts'
import { parsePortForwardPath } from '../../node/kubelet-server.ts'
import { controlFrame, dataFrame, decodeHeaderBlock, encodeHeaderBlock, flagFin, FrameReader, frameType, SpdySession, spdy3Dictionary, type SpdyStream } from '../../node/spdy.ts'

t.test('header blocks round-trip, names in lower case', async (t) => {
  const block = encodeHeaderBlock({ StreamType: 'data', port: '80', requestid: '0' })
  t.same(decodeHeaderBlock(block), { streamtype: 'data', port: '80', requestid: '0' })
  t.throws(() => decodeHeaderBlock(block.subarray(0, block.length - 1)), /truncated/)
  t.equal(spdy3Dictionary.length, 1423)
})

t.test('FrameReader splits frames across chunks', async (t) => {
  const bytes = Buffer.concat([controlFrame(frameType.ping, 0, Buffer.from([0, 0, 0, 1])), dataFrame(3, flagFin, Buffer.from('hello'))])
  const r = new FrameReader()
  const frames = [...bytes].flatMap((b) => r.push(Buffer.from([b])))
  t.equal(frames.length, 2)
  t.match(frames[0], { control: true, type: frameType.ping })
  t.match(frames[1], { control: false, streamId: 3, flags: flagFin })
  t.equal(frames[1]!.payload.toString(), 'hello')
  t.throws(() => new FrameReader().push(Buffer.from([0x80, 0x02, 0, 1, 0, 0, 0, 0])), /version 2/)
})

t.test('a session: SYN_STREAM with compressed headers, PING echoed, SYN_REPLY, DATA both ways', async (t) => {
  const out: Buffer[] = []
  const session = new SpdySession({ write: (b, done) => (out.push(b), done()), close: () => {} })
  const streams: SpdyStream[] = []
  session.on('stream', (s) => streams.push(s))
  // What a client writes: one zlib stream with the dictionary, a sync flush per block.
  const deflate = createDeflate({ dictionary: spdy3Dictionary })
  const compress = (b: Buffer) => new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = []
    const on = (c: Buffer) => chunks.push(c)
    deflate.on('data', on)
    deflate.write(b)
    deflate.flush(constants.Z_SYNC_FLUSH, () => (deflate.off('data', on), resolve(Buffer.concat(chunks))))
  })
  const syn = async (id: number, h: Record<string, string>) => {
    const head = Buffer.alloc(10)
    head.writeUInt32BE(id)
    return controlFrame(frameType.synStream, 0, Buffer.concat([head, await compress(encodeHeaderBlock(h))]))
  }
  const wire = Buffer.concat([
    await syn(1, { streamtype: 'error', port: '80', requestid: '0' }),
    await syn(3, { streamtype: 'data', port: '80', requestid: '0' }),
    controlFrame(frameType.ping, 0, Buffer.from([0, 0, 0, 7])),
    dataFrame(3, 0, Buffer.from('GET / ')),
    dataFrame(3, flagFin, Buffer.from('HTTP/1.0')),
  ])
  for (let i = 0; i < wire.length; i += 5) session.push(wire.subarray(i, i + 5))
  // zlib is asynchronous: wait for the frames to be handled, not for a fixed time.
  await eventually(() => streams.length === 2 && out.length >= 1, { timeout: 10_000, what: 'both streams and the PING answer' })
  t.same(streams.map((s) => s.headers), [{ streamtype: 'error', port: '80', requestid: '0' }, { streamtype: 'data', port: '80', requestid: '0' }])
  const data = streams[1]!
  let got = ''
  data.on('data', (d: Buffer) => (got += d))
  await new Promise((r) => data.once('end', r))
  t.equal(got, 'GET / HTTP/1.0', 'DATA until FIN')
  data.end('answer')
  await eventually(() => new FrameReader().push(Buffer.concat(out)).length >= 4, { timeout: 10_000, what: 'the reply, the data and the FIN' })
  const frames = new FrameReader().push(Buffer.concat(out))
  t.match(frames[0], { control: true, type: frameType.ping }, 'PING echoed')
  t.same(frames[0]!.payload, Buffer.from([0, 0, 0, 7]))
  t.match(frames[1], { control: true, type: frameType.synReply }, 'the reply comes before the data')
  t.equal(frames[1]!.payload.readUInt32BE(0), 3)
  t.match(frames[2], { control: false, streamId: 3, flags: 0 })
  t.equal(frames[2]!.payload.toString(), 'answer')
  t.match(frames[3], { control: false, streamId: 3, flags: flagFin })
  session.close()
  deflate.close()
})

t.test('ports and paths', async (t) => {
  t.same(parsePort('8080'), { ok: true, value: 8080 })
  for (const bad of ['0', '65536', 'http', '-1', '']) t.equal(parsePort(bad).ok, false, bad)
  t.same(parsePortQuery(new URLSearchParams('port=80&port=81,82')), { ok: true, value: [80, 81, 82] })
  t.match(parsePortQuery(new URLSearchParams('')), { ok: false, message: 'query parameter "port" is required' })
  t.same(parsePortForwardPath('/portForward/default/web'), { namespace: 'default', pod: 'web' })
  t.same(parsePortForwardPath('/portForward/default/web/uid-1'), { namespace: 'default', pod: 'web' })
  t.equal(parsePortForwardPath('/portForward/default'), undefined)
})

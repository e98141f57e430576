// A tiny TCP peer for network tests, run inside a namespace with nsenter:
//   serve <ip> <port>     answer every connection with {"seen":"<client address>"} and close; prints "listening" once ready
//   connect <ip> <port>   print {"local":"<own address>","seen":"<what the server saw>"} (or {"error":...}, exit 1); 3 s limit
import { connect, createServer } from 'node:net'

const [mode, host, portText] = process.argv.slice(2)
const port = Number(portText)
if (mode === 'serve') {
  const srv = createServer((s) => {
    s.on('error', () => undefined)
    s.end(`${JSON.stringify({ seen: s.remoteAddress?.replace(/^::ffff:/, '') })}\n`)
  })
  srv.listen(port, host, () => process.stdout.write('listening\n'))
} else if (mode === 'connect') {
  const s = connect({ host, port, timeout: 3_000 })
  let data = ''
  let local = ''
  const fail = (e: string) => {
    process.stdout.write(`${JSON.stringify({ error: e })}\n`)
    process.exit(1)
  }
  s.on('connect', () => (local = s.localAddress ?? ''))
  s.on('data', (d) => (data += d))
  s.on('timeout', () => fail('timeout'))
  s.on('error', (e) => fail(e.message))
  s.on('end', () => {
    try {
      process.stdout.write(`${JSON.stringify({ local, ...JSON.parse(data) })}\n`)
      process.exit(0)
    } catch {
      fail(`bad answer ${JSON.stringify(data)}`)
    }
  })
} else {
  process.stderr.write('usage: tcp-peer.ts serve|connect <ip> <port>\n')
  process.exit(2)
}

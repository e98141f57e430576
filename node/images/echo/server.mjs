// The Skiff test server (skiff/echo:local), like Kubernetes' agnhost: it tells
// a test who answered and what arrived. Plain JavaScript so it runs in the
// image with nothing but the node binary and the `ws` package beside it.
//
//   HTTP on $PORT (8080)   any path: JSON {pod, namespace, node, podIP, clientIP,
//                          method, path, query, headers}
//                          /healthz 200; /ready 200 or 503; POST /ready/on|off;
//                          /slow?ms=N (at most 60 s); /status/<code>; /hostname;
//                          /ws WebSocket echo
//   TCP on $TCP_PORT (9000)  echoes the bytes back
//   UDP on $UDP_PORT (9001)  answers every datagram with itself
//
// Not ready for $READY_DELAY_MS ms after start when set. SIGTERM/SIGINT: stop
// accepting, let in-flight requests finish, exit 0 within about a second.

import { createServer } from 'node:http'
import { createServer as createTcpServer } from 'node:net'
import { createSocket } from 'node:dgram'
import { hostname, networkInterfaces } from 'node:os'
import { WebSocketServer } from 'ws'

const env = process.env
const port = Number(env.PORT || 8080)
const tcpPort = Number(env.TCP_PORT || 9000)
const udpPort = Number(env.UDP_PORT || 9001)
const readyDelayMs = Number(env.READY_DELAY_MS || 0)
const maxSlowMs = 60_000

function firstIPv4() {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address
  }
  return ''
}

const identity = {
  pod: env.POD_NAME || hostname(),
  namespace: env.POD_NAMESPACE || '',
  node: env.NODE_NAME || '',
  podIP: env.POD_IP || firstIPv4(),
}

// Readiness: switched by POST /ready/on|off; the start delay only holds until it passes.
let readySwitch = true
const readyAfter = Date.now() + readyDelayMs
const isReady = () => readySwitch && Date.now() >= readyAfter

const log = (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`)
const clientIP = (sock) => (sock.remoteAddress ?? '').replace(/^::ffff:/, '')

function queryObject(params) {
  const out = {}
  for (const [k, v] of params) {
    if (k in out) out[k] = [].concat(out[k], v)
    else out[k] = v
  }
  return out
}

function describe(req, url) {
  return {
    ...identity,
    clientIP: clientIP(req.socket),
    method: req.method,
    path: url.pathname,
    query: queryObject(url.searchParams),
    headers: req.headers,
  }
}

function send(res, status, body) {
  const text = typeof body === 'string' ? body + '\n' : JSON.stringify(body) + '\n'
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json' })
  res.end(text)
}

function route(req, res, url) {
  const p = url.pathname
  if (p === '/healthz') return send(res, 200, 'ok')
  if (p === '/hostname') return send(res, 200, identity.pod)
  if (p === '/ready') return isReady() ? send(res, 200, 'ready') : send(res, 503, 'not ready')
  if (p === '/ready/on' || p === '/ready/off') {
    if (req.method !== 'POST') return send(res, 405, 'use POST')
    readySwitch = p === '/ready/on'
    return send(res, 200, readySwitch ? 'ready: on' : 'ready: off')
  }
  const status = /^\/status\/(\d{3})$/.exec(p)
  if (status) {
    const code = Number(status[1])
    if (code < 200 || code > 599) return send(res, 400, 'status must be 200-599')
    return send(res, code, { ...describe(req, url), status: code })
  }
  if (p === '/slow') {
    const ms = Math.min(Math.max(Number(url.searchParams.get('ms')) || 0, 0), maxSlowMs)
    const timer = setTimeout(() => send(res, 200, { ...describe(req, url), sleptMs: ms }), ms)
    res.on('close', () => clearTimeout(timer))
    return
  }
  send(res, 200, describe(req, url))
}

const http = createServer((req, res) => {
  const started = Date.now()
  res.on('finish', () => log(`http ${clientIP(req.socket)} ${req.method} ${req.url} ${res.statusCode} ${Date.now() - started}ms`))
  // Drain the body first so POSTs with a payload answer normally.
  req.resume()
  req.on('end', () => route(req, res, new URL(req.url ?? '/', 'http://local')))
})

const wss = new WebSocketServer({ noServer: true })
http.on('upgrade', (req, socket, head) => {
  if (new URL(req.url ?? '/', 'http://local').pathname !== '/ws') return socket.destroy()
  wss.handleUpgrade(req, socket, head, (ws) => {
    log(`ws ${clientIP(req.socket)} open ${req.url}`)
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
    ws.on('error', () => ws.terminate())
  })
})

const tcp = createTcpServer((sock) => {
  log(`tcp ${clientIP(sock)} connected`)
  sock.on('error', () => sock.destroy())
  sock.pipe(sock)
})

const udp = createSocket('udp4')
udp.on('message', (msg, rinfo) => {
  log(`udp ${rinfo.address} ${msg.length} bytes`)
  udp.send(msg, rinfo.port, rinfo.address)
})

http.listen(port, () => log(`http listening on ${port} as ${identity.pod} (${identity.podIP})`))
tcp.listen(tcpPort, () => log(`tcp echo on ${tcpPort}`))
udp.bind(udpPort, () => log(`udp echo on ${udpPort}`))

let stopping = false
function stop(signal) {
  if (stopping) return
  stopping = true
  log(`${signal}: stopping`)
  // A keep-alive client or a long /slow must not hold the exit past ~1 s.
  setTimeout(() => process.exit(0), 1000).unref()
  for (const ws of wss.clients) ws.close(1001, 'server stopping')
  let open = 3
  const done = () => --open === 0 && process.exit(0)
  http.close(done)
  http.closeIdleConnections()
  tcp.close(done)
  udp.close(done)
}
process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGINT', () => stop('SIGINT'))

// The Skiff demo web app (skiff/demo:local): one HTML page that says which pod
// and node served it and how many visits this pod has counted (in memory, so
// each replica counts its own: reload to watch a Service spread requests).
// /healthz answers 200. HTTP on $PORT (8080). Plain JavaScript, no packages.

import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { hostname, networkInterfaces } from 'node:os'

const env = process.env
const port = Number(env.PORT || 8080)

function firstIPv4() {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address
  }
  return ''
}

const pod = env.POD_NAME || hostname()
const node = env.NODE_NAME || 'unknown node'
// The downward API's POD_NAMESPACE, else the namespace file Kubernetes mounts with the
// ServiceAccount token; never a guess (a pod outside `default` must not say `default`).
function ownNamespace() {
  if (env.POD_NAMESPACE) return env.POD_NAMESPACE
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim() || 'unknown'
  } catch {
    return 'unknown'
  }
}
const namespace = ownNamespace()
const podIP = env.POD_IP || firstIPv4()
const started = new Date()
let visits = 0

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

function page(count) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Skiff demo</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; color: #123; }
  h1 { font-size: 1.6rem; } dt { font-weight: 600; } dd { margin: 0 0 .6rem 0; font-family: monospace; }
  .count { font-size: 2.5rem; color: #0a6; }
</style></head>
<body>
<h1>Hello from Skiff</h1>
<p>This page was served by</p>
<dl>
  <dt>pod</dt><dd id="pod">${escape(pod)}</dd>
  <dt>namespace</dt><dd id="namespace">${escape(namespace)}</dd>
  <dt>node</dt><dd id="node">${escape(node)}</dd>
  <dt>pod IP</dt><dd id="pod-ip">${escape(podIP)}</dd>
</dl>
<p>Visits counted by this pod since ${escape(started.toISOString())}:</p>
<p class="count" id="visits">${count}</p>
<p>Reload: behind a Service, another replica may answer.</p>
</body></html>
`
}

const log = (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`)

const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://local').pathname
  res.on('finish', () => log(`${(req.socket.remoteAddress ?? '').replace(/^::ffff:/, '')} ${req.method} ${req.url} ${res.statusCode}`))
  if (path === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' })
    return res.end('ok\n')
  }
  if (path !== '/') {
    res.writeHead(404, { 'content-type': 'text/plain' })
    return res.end('not found\n')
  }
  visits += 1
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
  res.end(page(visits))
})

server.listen(port, () => log(`demo listening on ${port} as ${pod}`))

function stop() {
  setTimeout(() => process.exit(0), 1000).unref()
  server.close(() => process.exit(0))
  server.closeIdleConnections()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)

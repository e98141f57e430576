// The floor reference for bench/ingress.ts: the smallest correct Node.js
// reverse proxy (node:http server piping to one keep-alive upstream), no
// routing, no headers, no metrics. Skiff's workers against this shows what
// Skiff's own code costs on top of the Node.js HTTP stack.
//
//   node bench/bare-proxy.ts <upstream-port> <listen-port>   (one process; run one per core, reusePort)

import http from 'node:http'

const upstream = Number(process.argv[2])
const port = Number(process.argv[3])
const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 64 })

http
  .createServer((req, res) => {
    const out = http.request({ host: '127.0.0.1', port: upstream, path: req.url, method: req.method, headers: req.headers, agent }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers)
      up.pipe(res)
    })
    out.on('error', () => res.destroy())
    req.pipe(out)
  })
  .listen({ port, host: '127.0.0.1', reusePort: true })

// The floor references for bench/ingress.ts: the smallest correct Node.js
// reverse proxies (a node:http server forwarding to one keep-alive upstream),
// no routing, no headers, no metrics. Skiff's workers against these show what
// Skiff's own code costs on top of the Node.js HTTP stack.
//   client http   : http.request with a keep-alive Agent, piped both ways
//   client undici : an undici Pool, dispatch() with the response written
//                   straight into the server response (what Skiff's workers do)
//
//   node bench/bare-proxy.ts <upstream-port> <listen-port> [http|undici]   (one process; run one per core, reusePort)

import http from 'node:http'
import { Pool } from 'undici'

const upstream = Number(process.argv[2])
const port = Number(process.argv[3])
const client = process.argv[4] ?? 'http'

function viaHttp(): http.RequestListener {
  const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 64 })
  return (req, res) => {
    const out = http.request({ host: '127.0.0.1', port: upstream, path: req.url, method: req.method, headers: req.headers, agent }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers)
      up.pipe(res)
    })
    out.on('error', () => res.destroy())
    req.pipe(out)
  }
}

function viaUndici(): http.RequestListener {
  const pool = new Pool(`http://127.0.0.1:${upstream}`, { connections: 64, pipelining: 1 })
  return (req, res) => {
    const headers = req.headers
    delete headers.connection
    const bodyless = req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined
    pool.dispatch({ path: req.url!, method: req.method as any, headers: headers as any, body: bodyless ? null : req }, {
      onRequestStart() {},
      onResponseStart(_c, status, h) {
        delete h.connection
        delete h['keep-alive']
        res.writeHead(status, h as any)
      },
      onResponseData(c, chunk) {
        if (!res.write(chunk)) {
          c.pause()
          res.once('drain', () => c.resume())
        }
      },
      onResponseEnd() {
        res.end()
      },
      onResponseError() {
        res.destroy()
      },
    })
  }
}

http.createServer(client === 'undici' ? viaUndici() : viaHttp()).listen({ port, host: '127.0.0.1', reusePort: true })

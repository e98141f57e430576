// The Gateway API matcher alone: matchGateway on the 100-route table of
// bench/ingress-routing.ts (every route PathPrefix /api + method + header +
// query; the request matches only the last in precedence order), in a loop
// in this process. µs per request, two rounds.
//
//   node bench/gateway-match.ts      (BENCH_REQUESTS=200000)

import type { GwRoute } from '../dataplane/ingress/gateway-build.ts'
import { compileGatewayTable, matchGateway, type GwRequest } from '../dataplane/ingress/gateway-routes.ts'
import { log } from './harness.ts'

const requests = Number(process.env.BENCH_REQUESTS ?? 200_000)
const n = (i: number) => String(i).padStart(3, '0')
const routes: GwRoute[] = Array.from({ length: 100 }, (_, i) => ({
  route: `default/r${n(i)}`, namespace: 'default', created: 0, attachments: { l: ['gw100.bench.test'] },
  rules: [{ ruleIndex: 0, filters: [], backends: [], matches: [{ pathType: 'PathPrefix', path: '/api', method: i % 2 ? 'GET' : 'POST', headers: [{ name: 'x-group', type: 'Exact', value: `g${i % 10}` }], query: [{ name: 'tenant', type: 'Exact', value: `t${n(i)}` }] }] }],
}))
const table = compileGatewayTable({ listeners: [{ key: 'l', protocol: 'HTTP', port: 80, hostname: '', certificates: [] }], routes })
const req: GwRequest = { scheme: 'http', host: 'gw100.bench.test', method: 'GET', path: '/api/t099/items', search: '?tenant=t099', headers: ['Host', 'gw100.bench.test', 'x-group', 'g9', 'accept', '*/*', 'user-agent', 'wrk'] }
for (let i = 0; i < requests / 10; i++) matchGateway(table, req)
for (const round of [1, 2]) {
  let hits = 0
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < requests; i++) if (matchGateway(table, req).kind === 'match') hits++
  const us = Number(process.hrtime.bigint() - t0) / 1000 / requests
  log(`round ${round}: ${us.toFixed(2)} µs per request (${hits}/${requests} matched)`)
}

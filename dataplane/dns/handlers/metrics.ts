// metrics: first in the chain, so it sees every reply (rcode from the reply
// header) and the whole time spent, forwarding included.

import type { DnsCounters } from '../metrics.ts'
import type { Handler, Reply } from '../types.ts'
import { qtypeName, rcodeName } from '../wire.ts'

export function metricsHandler(m: DnsCounters): Handler {
  return {
    name: 'metrics',
    serve(q, next) {
      const start = performance.now()
      const record = (r: Reply): Reply => {
        const rcode = r && r.length >= 4 ? (rcodeName[r[3]! & 0xf] ?? 'other') : 'dropped'
        m.query(qtypeName(q.qtype), rcode, (performance.now() - start) / 1000)
        return r
      }
      const r = next()
      return r instanceof Promise ? r.then(record) : record(r)
    },
  }
}

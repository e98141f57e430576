// ready: SERVFAIL for the cluster zone (and reverse names) until the first
// complete list of Services, EndpointSlices and Pods is compiled, as the
// CoreDNS kubernetes plugin does: "not yet" must not look like "no such name".

import { keyInZone } from '../compile.ts'
import type { Handler } from '../types.ts'
import { RCODE, rcodeReply, wireKey } from '../wire.ts'

export function readyHandler(opts: { origin: string; synced(): boolean }): Handler {
  const originKey = wireKey(opts.origin)
  const reverseKey = wireKey('in-addr.arpa')
  return {
    name: 'ready',
    serve(q, next) {
      if (opts.synced()) return next()
      if (keyInZone(q.key, originKey) || keyInZone(q.key, reverseKey)) return rcodeReply(q, RCODE.SERVFAIL)
      return next()
    },
  }
}

// kubernetes: authoritative answers for the cluster zone from the compiled
// zone (compile.ts), and PTR for known Service and pod addresses. A reverse
// name it does not know passes on (CoreDNS's `fallthrough in-addr.arpa`);
// any other name outside the zone passes on to the forwarder.

import { keyInZone, type CompiledZone } from '../compile.ts'
import type { Handler } from '../types.ts'
import { buildReply, encodeRecord, queryName, QTYPE, RCODE, type Compiled } from '../wire.ts'
import { podAddress } from '../zone.ts'

export function kubernetesHandler(opts: { zone(): CompiledZone | undefined }): Handler {
  return {
    name: 'kubernetes',
    serve(q, next) {
      const z = opts.zone()
      if (!z) return next()
      const e = z.names.get(q.key)
      if (e) return buildReply(q, e.byType.get(q.qtype) ?? (q.qtype === QTYPE.ANY ? e.any : e.other))
      if (!keyInZone(q.key, z.originKey)) return next()
      return buildReply(q, podAnswer(z, queryName(q), q.qtype) ?? z.nxdomain)
    },
  }
}

/** `a-b-c-d.ns.pod.<zone>` (pods insecure): A is the encoded address, other types NODATA. */
function podAnswer(z: CompiledZone, name: string, qtype: number): Compiled | undefined {
  const ip = podAddress(name, z.origin)
  if (!ip) return undefined
  if (qtype !== QTYPE.A && qtype !== QTYPE.ANY) return z.nodata
  const body = encodeRecord({ name: '.', type: 'A', ttl: z.ttl, class: 'IN', data: ip }, true)
  return { rcode: RCODE.NOERROR, aa: true, an: 1, ns: 0, ar: 0, body }
}

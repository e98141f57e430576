// forward: everything that reached the end of the chain goes upstream
// (forward.ts, with its cache). Without upstreams: SERVFAIL.

import type { Resolver } from '../chain.ts'
import type { Handler } from '../types.ts'
import { RCODE, rcodeReply } from '../wire.ts'

export function forwardHandler(opts: { forwarder: Resolver }): Handler {
  return {
    name: 'forward',
    serve(q) {
      return opts.forwarder.resolve(q).catch(() => rcodeReply(q, RCODE.SERVFAIL))
    },
  }
}

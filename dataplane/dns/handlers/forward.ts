// forward: everything that reached the end of the chain goes upstream
// (forward.ts, with its cache). Without upstreams: SERVFAIL.

import type { Forwarder } from '../forward.ts'
import type { Handler } from '../types.ts'
import { RCODE, rcodeReply } from '../wire.ts'

export function forwardHandler(opts: { forwarder: Forwarder }): Handler {
  return {
    name: 'forward',
    serve(q) {
      return opts.forwarder.resolve(q).catch(() => rcodeReply(q, RCODE.SERVFAIL))
    },
  }
}

// The handler contract, like CoreDNS's plugin.Handler (ServeDNS + Name).
//
// A handler either answers (returns the reply bytes, or null to drop the
// query without a reply) or passes the query on by calling next(). Handlers
// run in the order of chain.ts. The fast path stays synchronous: return a
// Buffer directly; only handlers that do I/O (forward) return a Promise.
// A handler must never throw for a client's input: the server answers
// SERVFAIL if one does, and logs it.

import type { Query } from './wire.ts'

export type Reply = Buffer | null

export type Next = () => Reply | Promise<Reply>

export interface Handler {
  readonly name: string
  serve(q: Query, next: Next): Reply | Promise<Reply>
}

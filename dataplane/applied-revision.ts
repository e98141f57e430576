// The routing revision a data-plane component has put into effect, against
// the store's one cluster-wide revision (issue 11, "applied on n/n nodes").
//
// A component (the service proxy of a node, the ingress of a class on a
// node) builds its state from informers. Each informer is complete up to its
// `revision` (watch bookmarks move it on while other resources change), so
// state built now reflects every input change at or below the lowest of
// them. Once that state is in effect, the component has applied that
// revision: anyone holding an object of revision R (a Service, an
// EndpointSlice) knows the component routes by it, or by something newer,
// when the reported revision is >= R.
//
// Reports cost a write to the API (a Lease annotation), so the tracker
// reports only when a change of the component's own inputs becomes applied.
// Bookmarks alone (other resources changing) move the value but never cause
// a write: otherwise every node's report would move every other node's
// bookmarks, and the nodes would report to each other forever.

import type { KubeObject } from '../controlplane/api/types.ts'

/** What the tracker needs of an informer (controlplane/client/informer.ts). */
export interface RevisionSource {
  readonly revision: number
  readonly hasSynced: boolean
  addHandlers(h: { onAdd?(o: KubeObject): void; onUpdate?(a: KubeObject, b: KubeObject): void; onDelete?(o: KubeObject): void }): void
}

export interface AppliedRevisionOptions {
  sources: RevisionSource[]
  /** True when nothing is waiting to be applied (no change queued, no apply running). */
  idle: () => boolean
  /** Called with the new applied revision when an input change became applied. */
  report: (revision: number) => void
  /** How often an idle component catches up with its informers' bookmarks (default 250 ms). */
  pollMs?: number
}

export class AppliedRevision {
  #o: AppliedRevisionOptions
  /** Revisions of input changes not yet covered by a report, ascending. */
  #unreported: number[] = []
  #applied = 0
  #timer?: NodeJS.Timeout

  constructor(o: AppliedRevisionOptions) {
    this.#o = o
    const changed = (obj: KubeObject) => {
      const rv = Number(obj.metadata?.resourceVersion)
      if (Number.isSafeInteger(rv) && rv > this.#applied) this.#unreported.push(rv)
    }
    for (const s of o.sources) s.addHandlers({ onAdd: changed, onUpdate: (_a, b) => changed(b), onDelete: changed })
  }

  /** The highest revision in effect (0 before the first apply). */
  get value(): number {
    return this.#applied
  }

  /** The inputs as of now: call when building the state that will be applied. 0 while a source is (re)listing. */
  inputs(): number {
    let min = Infinity
    for (const s of this.#o.sources) {
      if (!s.hasSynced) return 0
      min = Math.min(min, s.revision)
    }
    return min === Infinity ? 0 : min
  }

  /** The state built from inputs() == `revision` is in effect. */
  applied(revision: number): void {
    if (revision <= this.#applied) return
    this.#applied = revision
    // Changes from several informers interleave; keep the list ordered.
    if (this.#unreported.length > 1) this.#unreported.sort((a, b) => a - b)
    let covered = 0
    while (covered < this.#unreported.length && this.#unreported[covered]! <= revision) covered++
    if (covered === 0) return
    this.#unreported.splice(0, covered)
    this.#o.report(revision)
  }

  /** Follow bookmarks while idle. */
  start(): void {
    this.#timer ??= setInterval(() => this.poll(), this.#o.pollMs ?? 250)
    this.#timer.unref()
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** If the component is idle, its inputs as of now are in effect. */
  poll(): void {
    if (this.#o.idle()) this.applied(this.inputs())
  }
}

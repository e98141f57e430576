// The revision high-water mark, kept on local disk outside Redis.
//
// Redis may come back from an older AOF, or empty; its counter would then
// hand out revisions that clients have already seen for other objects. The
// file records a value `reserved` that is at least every revision this
// process has ever returned, so the store can tell that Redis went back and
// jump its counter past anything served.
//
// Writing the file on every revision would cost an fsync per request, so
// revisions are reserved in blocks: once a served revision comes within
// MARGIN of `reserved`, the next block is written in the background; only a
// revision beyond `reserved` has to wait for the file. After a clean stop the
// file holds the exact highest revision served, so a restart against the same
// Redis does not need to jump.

import { mkdir, open, readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'

const FILE = 'revision-hwm'
const MARGIN = 1_000
const BLOCK = 10_000

interface MarkFile {
  epoch: string
  reserved: number
}

export class RevisionMark {
  /** Every revision this process returns is <= reserved (once cover() settles). */
  reserved = 0
  /** The Redis epoch the file was last written under (informational). */
  epoch = ''
  private readonly dir: string
  private pending?: { target: number; done: Promise<void> }
  private queue: Promise<void> = Promise.resolve()
  private readonly onError: (err: unknown) => void

  constructor(dir: string, onError: (err: unknown) => void) {
    this.dir = dir
    this.onError = onError
  }

  get path(): string {
    return join(this.dir, FILE)
  }

  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    const parsed = JSON.parse(text) as Partial<MarkFile>
    if (typeof parsed.reserved !== 'number' || !Number.isSafeInteger(parsed.reserved) || parsed.reserved < 0) {
      throw new Error(`store: ${this.path} is corrupt (reserved=${String(parsed.reserved)}); refusing to guess`)
    }
    this.reserved = parsed.reserved
    this.epoch = typeof parsed.epoch === 'string' ? parsed.epoch : ''
  }

  /**
   * Make sure `rev` may be served. Returns undefined when it already may (the
   * common case, no await needed), or a promise to await first.
   */
  cover(rev: number): Promise<void> | undefined {
    if (rev <= this.reserved - MARGIN) return undefined
    const done = this.extend(rev + BLOCK)
    if (rev <= this.reserved) {
      done.catch(this.onError)
      return undefined
    }
    return done
  }

  /** Record the epoch and write it out with the current reservation. */
  setEpoch(epoch: string): Promise<void> {
    this.epoch = epoch
    return this.serial(() => this.persist(this.reserved))
  }

  /** Clean stop: nothing above `served` was returned, so record exactly that. */
  settle(served: number): Promise<void> {
    return this.serial(() => (served < this.reserved ? this.persist(served) : Promise.resolve()))
  }

  private extend(target: number): Promise<void> {
    if (this.pending && this.pending.target >= target) return this.pending.done
    const entry = {
      target,
      done: this.serial(() => (target > this.reserved ? this.persist(target) : Promise.resolve())),
    }
    this.pending = entry
    const clear = () => {
      if (this.pending === entry) this.pending = undefined
    }
    entry.done.then(clear, clear)
    return entry.done
  }

  /** One file write at a time, in call order. */
  private serial(fn: () => Promise<void>): Promise<void> {
    const run = this.queue.then(fn)
    this.queue = run.catch(() => {})
    return run
  }

  /** Write, fsync, rename, fsync the dir: the file is either old or new, never torn. */
  private async persist(reserved: number): Promise<void> {
    const tmp = `${this.path}.tmp`
    const body: MarkFile = { epoch: this.epoch, reserved }
    const fh = await open(tmp, 'w', 0o600)
    try {
      await fh.writeFile(JSON.stringify(body) + '\n')
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, this.path)
    const dh = await open(this.dir, 'r')
    try {
      await dh.sync()
    } finally {
      await dh.close()
    }
    this.reserved = reserved
  }
}

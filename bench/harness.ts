// Small helpers shared by the benchmarks.

export const log = (s: string) => process.stderr.write(`[bench] ${s}\n`)

/** A tap-like `t` for the test harness outside tap: teardown functions run last-in first-out by run(). */
export function teardowns() {
  const fns: Array<() => unknown> = []
  return {
    teardown(fn: () => unknown) {
      fns.push(fn)
    },
    async run() {
      while (fns.length) await Promise.resolve().then(fns.pop()!).catch((e) => log(`teardown: ${(e as Error).message}`))
    },
  }
}

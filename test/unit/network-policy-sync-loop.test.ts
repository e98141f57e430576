// SyncLoop: a burst of markDirty() coalesces into few runs, nothing runs
// before ready(), a failed run is retried (dirty stays set).

import t from 'tap'
import { eventually } from '../../lib/net.ts'
import { SyncLoop } from '../../dataplane/network-policy/sync-loop.ts'

t.test('a burst coalesces; nothing before ready', async (t) => {
  let runs = 0
  let ready = false
  const loop = new SyncLoop({ run: async () => { runs++ }, ready: () => ready, onError: () => undefined, minIntervalMs: 50 })
  await loop.runNow()
  t.equal(runs, 0, 'not ready: skipped')
  ready = true
  await loop.runNow()
  t.equal(runs, 1)
  for (let i = 0; i < 100; i++) loop.markDirty()
  await eventually(() => runs >= 2, { timeout: 5_000 })
  await new Promise((r) => setTimeout(r, 200))
  t.equal(runs, 2, '100 marks, one more run')
  await loop.stop()
})

t.test('a failure is retried until it succeeds', async (t) => {
  let calls = 0
  const errors: number[] = []
  const loop = new SyncLoop({ run: async () => { if (++calls < 3) throw new Error('nft failed') }, ready: () => true, onError: (_e, retry) => errors.push(retry), minIntervalMs: 0 })
  await loop.runNow()
  await eventually(() => calls === 3, { timeout: 5_000 })
  t.same(errors, [200, 400], 'exponential backoff')
  await loop.stop()
})

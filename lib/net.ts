// Small networking helpers shared by servers, tests and the CLI.

import { createServer } from 'node:net'

/** A TCP port that was free on `host` a moment ago (listen on 0, close). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, host, () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

/** Poll `fn` until it returns a truthy value or the timeout passes (never a fixed sleep). */
export async function eventually<T>(
  fn: () => Promise<T | undefined | false | null> | T | undefined | false | null,
  opts: { timeout?: number; interval?: number; what?: string } = {},
): Promise<T> {
  const deadline = performance.now() + (opts.timeout ?? 10_000)
  let lastErr: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
    } catch (e) {
      lastErr = e
    }
    if (performance.now() > deadline) {
      const why = lastErr instanceof Error ? `: last error: ${lastErr.message}` : ''
      throw new Error(`timed out after ${opts.timeout ?? 10_000} ms waiting for ${opts.what ?? 'condition'}${why}`)
    }
    await new Promise((r) => setTimeout(r, opts.interval ?? 50))
  }
}

// A real browser for tests: Debian's Chromium (/usr/bin/chromium, installed
// by scripts/setup.sh test) driven through playwright-core, which downloads
// nothing. Headless, no sandbox (tests run as root), with the flags that keep
// Chromium from reaching out to Google's services on a machine without
// internet, a fresh profile, and HTTPS errors ignored (the cluster's own CA
// signs the apiserver). Closed in t.teardown, also when the test fails.

import { existsSync } from 'node:fs'
import { chromium, type Browser, type BrowserContext } from 'playwright-core'

import { fileURLToPath } from 'node:url'

export const chromiumPath = process.env.SKIFF_CHROMIUM ?? '/usr/bin/chromium'

/** Where tests save what a reader of a run wants to see (screenshots): test-artifacts/ in the checkout, or SKIFF_ARTIFACTS. */
export const artifactsDir = process.env.SKIFF_ARTIFACTS ?? fileURLToPath(new URL('../../test-artifacts/', import.meta.url))

interface Teardown {
  teardown(fn: () => unknown): void
}

export async function startBrowser(t: Teardown): Promise<{ browser: Browser; context: BrowserContext }> {
  if (!existsSync(chromiumPath)) throw new Error(`no Chromium at ${chromiumPath}: run bash scripts/setup.sh test (it installs Debian's chromium), or set SKIFF_CHROMIUM`)
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  })
  t.teardown(() => browser.close())
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1400, height: 1000 } })
  return { browser, context }
}

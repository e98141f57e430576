// When an ACME issuer orders again after a failure (certs/issue.ts):
// Retry-After in both of its forms (RFC 9110 10.2.3, HTTP-dates per 5.6.7),
// the backoff choice per failure kind, and the AcmeFailed message.

import t from 'tap'
import { acmeFailureMessage, buildTlsSecret, maxRetryAfterMs, parseHttpDate, parseRetryAfter, planAcmeRetry } from '../../certs/issue.ts'
import { issueServingCert, loadOrCreateCA } from '../../certs/ca.ts'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const now = Date.UTC(2026, 0, 15, 12, 0, 0) // Thu, 15 Jan 2026 12:00:00 GMT

t.test('parseRetryAfter: delay-seconds and HTTP-dates, anything else ignored', async (t) => {
  const cases: Array<{ value: string | undefined; want: number | undefined }> = [
    { value: '120', want: 120_000 },
    { value: '0', want: 0 },
    { value: ' 7 ', want: 7_000 },
    { value: 'Thu, 15 Jan 2026 12:01:30 GMT', want: 90_000 },
    { value: 'Thursday, 15-Jan-26 12:00:10 GMT', want: 10_000 },
    { value: 'Thu Jan 15 13:00:00 2026', want: 3_600_000 },
    { value: 'Thu Jan  1 12:00:00 2026', want: 0 }, // asctime, day padded with a space; in the past
    { value: 'Wed, 14 Jan 2026 12:00:00 GMT', want: 0 }, // in the past: may retry now
    { value: undefined, want: undefined },
    { value: '', want: undefined },
    { value: '-5', want: undefined },
    { value: '1.5', want: undefined },
    { value: '2026-01-15T12:05:00Z', want: undefined }, // ISO 8601 is no HTTP-date
    { value: 'Thu, 15 Jan 2026 12:01:30 PST', want: undefined },
    { value: 'thu, 15 jan 2026 12:01:30 gmt', want: undefined }, // HTTP-date is case-sensitive
    { value: 'Thu, 31 Feb 2026 12:00:00 GMT', want: undefined },
    { value: 'Thu, 15 Jan 2026 24:00:00 GMT', want: undefined },
    { value: 'soon', want: undefined },
  ]
  for (const c of cases) t.equal(parseRetryAfter(c.value, now), c.want, `${JSON.stringify(c.value)} → ${c.want}`)
  t.equal(parseRetryAfter('9'.repeat(400), now), Number.MAX_SAFE_INTEGER, 'an absurd number stays a finite number')
})

t.test('parseHttpDate: an RFC 850 year more than 50 years ahead is in the past century', async (t) => {
  t.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', now), Date.UTC(1994, 10, 6, 8, 49, 37))
  t.equal(parseHttpDate('Friday, 06-Nov-76 08:49:37 GMT', now), Date.UTC(2076, 10, 6, 8, 49, 37))
  t.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT', now), Date.UTC(1994, 10, 6, 8, 49, 37), 'the RFC 9110 example')
  t.equal(parseHttpDate('Sun Nov  6 08:49:37 1994', now), Date.UTC(1994, 10, 6, 8, 49, 37), 'asctime is UTC')
})

t.test('planAcmeRetry: the backoff ramps to maxMs; a rate limit jumps to it; Retry-After is never undercut', async (t) => {
  const policy = { baseMs: 30_000, maxMs: 3_600_000 }
  const cases = [
    { name: 'unreachable, first failure', failures: 1, kind: 'unreachable', want: { delayMs: 30_000, why: 'backoff' } },
    { name: 'unreachable, third failure', failures: 3, kind: 'unreachable', want: { delayMs: 120_000, why: 'backoff' } },
    { name: 'unreachable for long: one attempt an hour', failures: 12, kind: 'unreachable', want: { delayMs: 3_600_000, why: 'backoff' } },
    { name: 'a 503 with Retry-After 10 min', failures: 1, kind: 'unreachable', retryAfterMs: 600_000, want: { delayMs: 600_000, why: 'Retry-After' } },
    { name: 'a 503 with a Retry-After below the backoff', failures: 5, kind: 'unreachable', retryAfterMs: 1_000, want: { delayMs: 480_000, why: 'backoff' } },
    { name: 'rate limited, first failure, no Retry-After', failures: 1, kind: 'rate_limited', want: { delayMs: 3_600_000, why: 'rate-limit interval' } },
    { name: 'rate limited, Retry-After 60 s: still an hour', failures: 1, kind: 'rate_limited', retryAfterMs: 60_000, want: { delayMs: 3_600_000, why: 'rate-limit interval' } },
    { name: 'rate limited, Retry-After 3 h', failures: 2, kind: 'rate_limited', retryAfterMs: 3 * 3_600_000, want: { delayMs: 3 * 3_600_000, why: 'Retry-After' } },
    { name: 'rate limited, Retry-After a year: a week', failures: 1, kind: 'rate_limited', retryAfterMs: 365 * 86_400_000, want: { delayMs: maxRetryAfterMs, why: 'Retry-After' } },
    { name: 'other failure (validation)', failures: 2, kind: 'other', want: { delayMs: 60_000, why: 'backoff' } },
  ] as const
  for (const c of cases) t.same(planAcmeRetry({ ...policy, failures: c.failures, kind: c.kind, ...('retryAfterMs' in c ? { retryAfterMs: c.retryAfterMs } : {}) }), c.want, c.name)
  // The promise in the README: once rate limited, consecutive orders are at least maxMs apart, whatever the server says.
  for (const retryAfterMs of [undefined, 0, 1, 59_000, 3_599_999]) {
    for (let failures = 1; failures < 20; failures++) {
      const plan = planAcmeRetry({ ...policy, failures, kind: 'rate_limited', ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) })
      if (plan.delayMs < policy.maxMs) t.fail(`rate limited, failure ${failures}, Retry-After ${retryAfterMs}: ${plan.delayMs} ms`)
    }
  }
  t.equal(planAcmeRetry({ ...policy, failures: 0, kind: 'other' }).delayMs, 30_000, 'failures below 1 count as the first')
})

t.test('acmeFailureMessage: why, the next attempt, and the certificate still served', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-acme-retry-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const ca = await loadOrCreateCA(dir)
  const leaf = issueServingCert(ca, { commonName: 'a.example.test', dnsNames: ['a.example.test'], days: 30 })
  const secret = buildTlsSecret({ namespace: 'web', name: 'a-tls', certPem: leaf.certPem, keyPem: leaf.keyPem, issuer: 'acme', hosts: ['a.example.test'] })
  const limited = acmeFailureMessage({ hosts: ['a.example.test'], reason: 'rate_limited', text: 'POST https://ca/new-order answered HTTP 429', failures: 2, retryAt: now + 3_600_000, delayMs: 3_600_000, why: 'rate-limit interval', secret })
  t.match(limited, /^Certificate for a\.example\.test not issued: rate limited by the ACME server: POST https:\/\/ca\/new-order answered HTTP 429; next attempt at 2026-01-15T13:00:00\.000Z \(in 3600 s, rate-limit interval, 2 failed in a row\); the current certificate \(valid until 20\d\d-[^)]+\) stays served$/)
  const down = acmeFailureMessage({ hosts: ['b.example.test'], reason: 'unreachable', text: 'ECONNREFUSED', failures: 1, retryAt: now + 30_000, delayMs: 30_000, why: 'backoff' })
  t.equal(down, 'Certificate for b.example.test not issued: ACME server unreachable: ECONNREFUSED; next attempt at 2026-01-15T12:00:30.000Z (in 30 s, backoff, 1 failed in a row)', 'no certificate yet: nothing said about one')
})

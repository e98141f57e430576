// The store guard's nft text and the store endpoints agents read from the
// apiservers' identity Leases (pure parts).

import t from 'tap'
import { leaseFreshByWallClock } from '../../controlplane/api/routing-applied.ts'
import { liveStoreEndpoints, storeEndpointsAnnotation } from '../../controlplane/apiserver/identity.ts'
import { renderStoreGuard } from '../../node/store-guard.ts'

t.test('renderStoreGuard', async (t) => {
  const text = renderStoreGuard('n1', '10.244.1.0/24', ['172.31.1.1:6379', '172.31.1.11:26379'])
  t.match(text, /^add table ip skiff-store-guard-n1\ndelete table ip skiff-store-guard-n1\n/, 'replaces the table atomically')
  t.match(text, /elements = \{ 172\.31\.1\.1 \. 6379, 172\.31\.1\.11 \. 26379 \}/)
  t.match(text, /hook forward[\s\S]*ip saddr 10\.244\.1\.0\/24 ip daddr \. tcp dport @store counter reject with tcp reset/)
  t.match(text, /hook input[\s\S]*ip saddr 10\.244\.1\.0\/24 ip daddr \. tcp dport @store/)
  t.equal(renderStoreGuard('n1', '10.244.1.0/24', []), 'add table ip skiff-store-guard-n1\ndelete table ip skiff-store-guard-n1\n', 'no endpoints: no table')
})

t.test('liveStoreEndpoints: fresh identity Leases only, IPv4 ip:port only, deduplicated', async (t) => {
  const now = Date.parse('2026-12-04T00:00:00Z')
  const lease = (ann: string, ageS: number) => ({
    metadata: { name: 'x', labels: { 'apiserver.kubernetes.io/identity': 'kube-apiserver' }, annotations: { [storeEndpointsAnnotation]: ann } },
    spec: { renewTime: new Date(now - ageS * 1000).toISOString(), leaseDurationSeconds: 30 },
  })
  t.same(liveStoreEndpoints([lease('10.0.0.2:6379,10.0.0.1:26379', 1), lease('10.0.0.1:26379,redis.local:6379,10.0.0.9', 2), lease('10.0.0.7:6379', 60)], (l) => leaseFreshByWallClock(l, now)), ['10.0.0.1:26379', '10.0.0.2:6379'])
})

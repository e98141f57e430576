// The applied-revision arithmetic (pure): dataplane/applied-revision.ts and
// controlplane/api/routing-applied.ts.

import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { AppliedRevision, type RevisionSource } from '../../dataplane/applied-revision.ts'
import { appliedText, ingressAppliers, ingressTarget, leaseFreshByWallClock, proxyAppliedAnnotation, ingressAppliedAnnotation, serviceTarget, servingAppliers } from '../../controlplane/api/routing-applied.ts'
import { microTime } from '../../node/heartbeat.ts'

class Source implements RevisionSource {
  revision = 0
  hasSynced = true
  h: Array<{ onAdd?(o: KubeObject): void; onUpdate?(a: KubeObject, b: KubeObject): void; onDelete?(o: KubeObject): void }> = []
  addHandlers(h: (typeof this.h)[number]): void {
    this.h.push(h)
  }
  change(rv: number): void {
    this.revision = rv
    const o = { metadata: { name: 'x', resourceVersion: String(rv) } }
    for (const h of this.h) h.onUpdate?.(o, o)
  }
}

t.test('AppliedRevision reports when an input change is applied, never for bookmarks alone', async (t) => {
  const a = new Source()
  const b = new Source()
  const reports: number[] = []
  let idle = false
  const ar = new AppliedRevision({ sources: [a, b], idle: () => idle, report: (r) => reports.push(r) })
  a.change(10)
  b.revision = 8
  t.equal(ar.inputs(), 8, 'inputs are the lowest source revision')
  ar.applied(ar.inputs())
  t.same(reports, [], 'the change at 10 is not covered by 8')
  b.revision = 12 // a bookmark
  idle = true
  ar.poll()
  t.same(reports, [10], 'once idle and past the change, one report (at the lowest source: 10)')
  t.equal(ar.value, 10)
  a.revision = 20
  b.revision = 20
  ar.poll()
  t.same(reports, [10], 'bookmarks alone move the value without a report')
  t.equal(ar.value, 20)
  b.change(25)
  a.revision = 25
  idle = false
  ar.poll()
  t.same(reports, [10], 'not idle: nothing')
  ar.applied(25)
  t.same(reports, [10, 25])
  ar.applied(24)
  t.equal(ar.value, 25, 'never goes back')
  b.hasSynced = false
  t.equal(ar.inputs(), 0, 'a relisting source means no inputs to claim')
})

t.test('servingAppliers, targets and the n/n text', async (t) => {
  const now = Date.parse('2026-12-04T00:00:00Z')
  const lease = (ns: string, name: string, ann: Record<string, string>, ageS = 1, dur = 40): KubeObject => ({
    metadata: { namespace: ns, name, annotations: ann },
    spec: { renewTime: microTime(now - ageS * 1000), leaseDurationSeconds: dur },
  })
  const leases = [
    lease('kube-node-lease', 'n1', { [proxyAppliedAnnotation]: '100' }),
    lease('kube-node-lease', 'n2', { [proxyAppliedAnnotation]: '90' }),
    lease('kube-node-lease', 'dead', { [proxyAppliedAnnotation]: '1' }, 60),
    lease('kube-node-lease', 'old-agent', {}),
    lease('kube-system', 'ingress-external-node-n1', { [ingressAppliedAnnotation]: '100', 'ingress.skiff.dev/ready': 'true' }, 1, 15),
    lease('kube-system', 'ingress-internal-node-n2', { [ingressAppliedAnnotation]: '50', 'ingress.skiff.dev/ready': 'false' }, 1, 15),
    lease('kube-system', 'skiff-controller-manager', {}),
  ]
  const appliers = servingAppliers(leases, (l) => leaseFreshByWallClock(l, now))
  t.same(appliers.map((a) => `${a.component}@${a.node}=${a.revision}`).sort(), ['ingress/external@n1=100', 'service-proxy@n1=100', 'service-proxy@n2=90'])
  const svc: KubeObject = { metadata: { namespace: 'd', name: 'web', resourceVersion: '80' } }
  const slices: KubeObject[] = [
    { metadata: { namespace: 'd', name: 'web-a', resourceVersion: '95', labels: { 'kubernetes.io/service-name': 'web' } } },
    { metadata: { namespace: 'e', name: 'web-b', resourceVersion: '99', labels: { 'kubernetes.io/service-name': 'web' } } },
  ]
  t.equal(serviceTarget(svc, slices), 95, 'the Service and its own slices only')
  t.equal(appliedText(appliers.filter((a) => a.component === 'service-proxy'), 95), '1/2')
  t.equal(appliedText(appliers.filter((a) => a.component === 'service-proxy'), 90), '2/2')
  t.equal(appliedText([], 1), '<none>')
  const ing: KubeObject = { metadata: { namespace: 'd', name: 'i', resourceVersion: '70' }, spec: { ingressClassName: 'external', rules: [{ http: { paths: [{ backend: { service: { name: 'web' } } }] } }] } }
  t.equal(ingressTarget(ing, [svc], slices), 95)
  t.same(ingressAppliers(ing, appliers).map((a) => a.node), ['n1'])
})

// planDeployment driven through whole rollouts: a small simulation applies
// each plan, plays the ReplicaSet controller (pods follow spec.replicas,
// surplus deleted in ActivePods order) and the kubelet (pods become ready one
// round after they appear), and checks the rollout bounds after every round.

import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { applyDefaults } from '../../controlplane/api/defaults.ts'
import { lookupResource } from '../../controlplane/api/resources.ts'
import { compareForDeletion } from '../../controlplane/controllers/pod-template.ts'
import { planDeployment, resolveFenceposts, type DeploymentPlan } from '../../controlplane/controllers/deployment-rollout.ts'
import { reasons } from '../../controlplane/controllers/deployment-status.ts'

const deployInfo = lookupResource('apps', 'v1', 'deployments')!
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z')
const t0 = Date.UTC(2025, 0, 1)

function deployment(spec: Record<string, unknown>, image = 'app:v1'): KubeObject {
  return applyDefaults(deployInfo, {
    metadata: { name: 'web', namespace: 'ns', uid: 'd-uid', generation: 1 },
    spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'app', image }] } }, ...spec },
    status: {},
  })
}

class Sim {
  d: KubeObject
  rss: KubeObject[] = []
  pods = new Map<string, KubeObject[]>()
  now = t0
  round = 0
  seq = 0
  plans: DeploymentPlan[] = []
  /** Images that never become ready. */
  stuck = new Set<string>()

  constructor(d: KubeObject) {
    this.d = d
  }

  setImage(image: string): void {
    this.d = structuredClone(this.d)
    this.d.spec.template.spec.containers[0].image = image
    this.d.metadata.generation!++
  }

  /** One controller sync: plan and apply it. */
  sync(): DeploymentPlan {
    const plan = planDeployment({ deployment: this.d, replicaSets: this.rss, podsByRs: this.pods, now: this.now })
    this.plans.push(plan)
    if (plan.create) this.rss.push({ ...structuredClone(plan.create), metadata: { ...plan.create.metadata, uid: `rs-${++this.seq}`, creationTimestamp: iso(this.now + this.seq), generation: 1 } })
    for (const u of plan.update) {
      const i = this.rss.findIndex((r) => r.metadata.name === u.metadata.name)
      const specChanged = JSON.stringify(u.spec) !== JSON.stringify(this.rss[i].spec)
      this.rss[i] = { ...structuredClone(u), metadata: { ...u.metadata, generation: this.rss[i].metadata.generation! + (specChanged ? 1 : 0) } }
    }
    this.rss = this.rss.filter((r) => !plan.delete.some((x) => x.metadata.name === r.metadata.name))
    this.d = { ...this.d, metadata: { ...this.d.metadata, annotations: plan.annotations ?? this.d.metadata.annotations }, status: plan.status }
    return plan
  }

  /** The ReplicaSet controller and the kubelet, one round. */
  pods_(): void {
    this.round++
    this.now += 1000
    for (const rs of this.rss) {
      let ps = this.pods.get(rs.metadata.uid!) ?? []
      const want = rs.spec.replicas
      if (ps.length > want) {
        const gone = new Set([...ps].sort(compareForDeletion).slice(0, ps.length - want))
        ps = ps.filter((p) => !gone.has(p))
      }
      while (ps.length < want) ps.push(this.newPod(rs))
      this.pods.set(rs.metadata.uid!, ps)
      rs.status = { replicas: ps.length, observedGeneration: rs.metadata.generation }
    }
  }

  newPod(rs: KubeObject): KubeObject {
    const image = rs.spec.template.spec.containers[0].image
    return { metadata: { name: `p${++this.seq}`, creationTimestamp: iso(this.now), labels: { born: String(this.round) } }, spec: { containers: [{ image }] }, status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'False' }] } }
  }

  kubelet(): void {
    for (const ps of this.pods.values()) {
      for (const p of ps) {
        if (Number(p.metadata.labels!.born) >= this.round || this.stuck.has(p.spec.containers[0].image)) continue
        p.status.conditions = [{ type: 'Ready', status: 'True', lastTransitionTime: iso(this.now) }]
      }
    }
  }

  get allPods(): KubeObject[] {
    return [...this.pods.values()].flat()
  }

  get ready(): number {
    return this.allPods.filter((p) => p.status.conditions[0].status === 'True').length
  }

  done(): boolean {
    const s = this.d.status
    return s.observedGeneration === this.d.metadata.generation && s.updatedReplicas === this.d.spec.replicas && s.replicas === s.updatedReplicas && s.availableReplicas >= s.updatedReplicas
  }

  /** Rounds until `kubectl rollout status` would say done; check(sim) after each round. */
  run(check: (s: Sim) => void = () => {}, maxRounds = 40): number {
    for (let i = 0; i < maxRounds; i++) {
      this.sync()
      this.pods_()
      check(this)
      this.kubelet()
      this.sync()
      if (this.done()) return i + 1
    }
    throw new Error(`no convergence after ${maxRounds} rounds: ${JSON.stringify(this.d.status)}`)
  }
}

const image = (rs: KubeObject) => rs.spec.template.spec.containers[0].image
const cond = (status: { conditions: Array<{ type: string }> }, type: string) => status.conditions.find((c) => c.type === type)
const revision = (o: KubeObject) => o.metadata.annotations?.['deployment.kubernetes.io/revision']

t.test('resolveFenceposts: surge rounds up, unavailable down, never both zero', async (t) => {
  const cases: Array<[unknown, unknown, number, { surge: number; unavailable: number }]> = [
    ['25%', '25%', 4, { surge: 1, unavailable: 1 }],
    ['25%', '25%', 10, { surge: 3, unavailable: 2 }],
    ['25%', '25%', 1, { surge: 1, unavailable: 0 }],
    [0, 0, 5, { surge: 0, unavailable: 1 }],
    ['0%', '10%', 5, { surge: 0, unavailable: 1 }],
    [2, '50%', 3, { surge: 2, unavailable: 1 }],
  ]
  for (const [s, u, n, want] of cases) t.same(resolveFenceposts(s, u, n), want, `maxSurge ${s}, maxUnavailable ${u}, replicas ${n}`)
})

t.test('a new Deployment gets its first ReplicaSet, owned, hashed, revision 1', async (t) => {
  const sim = new Sim(deployment({ replicas: 3 }))
  const plan = sim.sync()
  const rs = plan.create!
  const hash = rs.metadata.labels!['pod-template-hash']
  t.equal(rs.metadata.name, `web-${hash}`)
  t.same(rs.spec.selector, { matchLabels: { app: 'web', 'pod-template-hash': hash } })
  t.same(rs.spec.template.metadata.labels, { app: 'web', 'pod-template-hash': hash })
  t.equal(rs.spec.replicas, 3)
  t.match(rs.metadata.ownerReferences, [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: 'd-uid', controller: true, blockOwnerDeletion: true }])
  t.match(rs.metadata.annotations, { 'deployment.kubernetes.io/revision': '1', 'deployment.kubernetes.io/desired-replicas': '3', 'deployment.kubernetes.io/max-replicas': '4' })
  t.same(plan.annotations, { 'deployment.kubernetes.io/revision': '1' })
  t.same(plan.events, [{ type: 'Normal', reason: 'ScalingReplicaSet', message: `Scaled up replica set web-${hash} from 0 to 3` }])
  t.match(cond(plan.status, 'Progressing'), { status: 'True', reason: reasons.newRsCreated, message: `Created new replica set "web-${hash}"` })
  t.match(cond(plan.status, 'Available'), { status: 'False', reason: reasons.minimumUnavailable })
  sim.run()
  t.match(sim.d.status, { replicas: 3, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 3, unavailableReplicas: 0, observedGeneration: 1 })
  t.match(cond(sim.d.status, 'Progressing'), { status: 'True', reason: reasons.newRsAvailable, message: `ReplicaSet "web-${hash}" has successfully progressed.` })
  t.match(cond(sim.d.status, 'Available'), { status: 'True', reason: reasons.minimumAvailable, message: 'Deployment has minimum availability.' })
})

t.test('rolling updates stay within replicas - maxUnavailable and replicas + maxSurge', async (t) => {
  const cases = [
    { replicas: 4, maxSurge: 1, maxUnavailable: 1 },
    { replicas: 3, maxSurge: 1, maxUnavailable: 0 },
    { replicas: 5, maxSurge: 0, maxUnavailable: 2 },
    { replicas: 10, maxSurge: '25%', maxUnavailable: '25%' },
  ]
  for (const c of cases) {
    const sim = new Sim(deployment({ replicas: c.replicas, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: c.maxSurge, maxUnavailable: c.maxUnavailable } } }))
    sim.run()
    const { surge, unavailable } = resolveFenceposts(c.maxSurge, c.maxUnavailable, c.replicas)
    sim.setImage('app:v2')
    let minReady = Infinity
    let maxTotal = 0
    const rounds = sim.run((s) => {
      minReady = Math.min(minReady, s.ready)
      maxTotal = Math.max(maxTotal, s.allPods.length)
    })
    const name = JSON.stringify(c)
    t.ok(minReady >= c.replicas - unavailable, `${name}: ready never below ${c.replicas - unavailable} (min ${minReady})`)
    t.ok(maxTotal <= c.replicas + surge, `${name}: pods never above ${c.replicas + surge} (max ${maxTotal})`)
    t.ok(rounds > 1, `${name}: took ${rounds} rounds`)
    const [old, cur] = sim.rss
    t.same([image(old), old.spec.replicas, image(cur), cur.spec.replicas], ['app:v1', 0, 'app:v2', c.replicas], `${name}: old scaled to 0, new to ${c.replicas}`)
    t.same([revision(old), revision(cur), revision(sim.d)], ['1', '2', '2'], `${name}: revisions`)
  }
})

t.test('Recreate: old pods all gone before the new ReplicaSet exists', async (t) => {
  const sim = new Sim(deployment({ replicas: 2, strategy: { type: 'Recreate' } }))
  sim.run()
  sim.setImage('app:v2')
  const first = sim.sync()
  t.equal(first.create, undefined, 'no new ReplicaSet while old pods run')
  t.match(first.update, [{ spec: { replicas: 0 } }])
  t.equal(sim.sync().create, undefined, 'still none: the old pods are not gone yet')
  sim.run((s) => {
    const images = new Set(s.allPods.map((p) => p.spec.containers[0].image))
    t.ok(images.size <= 1, `never two versions at once (${[...images]})`)
  })
  t.same(
    sim.rss.map((rs) => [image(rs), rs.spec.replicas]),
    [
      ['app:v1', 0],
      ['app:v2', 2],
    ],
  )
})

t.test('rollback: the old ReplicaSet is reused with the next revision', async (t) => {
  const sim = new Sim(deployment({ replicas: 2 }))
  sim.run()
  sim.setImage('app:v2')
  sim.run()
  const names = sim.rss.map((rs) => rs.metadata.name)
  sim.setImage('app:v1')
  const plan = sim.sync()
  t.equal(plan.create, undefined, 'nothing created')
  t.match(plan.update, [{ metadata: { name: names[0], annotations: { 'deployment.kubernetes.io/revision': '3', 'deployment.kubernetes.io/revision-history': '1' } } }])
  t.same(plan.annotations?.['deployment.kubernetes.io/revision'], '3')
  sim.run()
  t.same(
    sim.rss.map((rs) => [rs.metadata.name, rs.spec.replicas, revision(rs)]),
    [
      [names[0], 2, '3'],
      [names[1], 0, '2'],
    ],
  )
})

t.test('revisionHistoryLimit: the oldest idle ReplicaSets are deleted once the rollout completes', async (t) => {
  const sim = new Sim(deployment({ replicas: 1, revisionHistoryLimit: 1 }))
  sim.run()
  for (const v of ['app:v2', 'app:v3']) {
    sim.setImage(v)
    sim.run()
  }
  for (let i = 0; i < 3; i++) sim.pods_(), sim.sync()
  t.same(sim.rss.map(image), ['app:v2', 'app:v3'], 'v1 deleted, one old revision kept')
  t.ok(sim.plans.some((p) => p.delete.some((rs) => image(rs) === 'app:v1')))
})

t.test('scaling mid-rollout is proportional across active ReplicaSets', async (t) => {
  // Kubernetes' documented example: 10 replicas, maxSurge 3, scaled to 15 in the middle of a rollout.
  const d = deployment({ replicas: 15, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 3, maxUnavailable: 2 } } }, 'app:v2')
  const rs = (name: string, img: string, replicas: number, created: number): KubeObject => ({
    metadata: { name, namespace: 'ns', uid: name, creationTimestamp: iso(t0 + created), annotations: { 'deployment.kubernetes.io/desired-replicas': '10', 'deployment.kubernetes.io/max-replicas': '13', 'deployment.kubernetes.io/revision': String(created) } },
    spec: { replicas, selector: d.spec.selector, template: { ...d.spec.template, spec: { containers: [{ name: 'app', image: img }] } } },
  })
  const old = rs('web-old', 'app:v1', 8, 1)
  const cur = rs('web-new', 'app:v2', 5, 2)
  cur.spec.template = structuredClone(d.spec.template)
  const plan = planDeployment({ deployment: d, replicaSets: [old, cur], podsByRs: new Map(), now: t0 })
  t.same(
    plan.update.map((x) => [x.metadata.name, x.spec.replicas, x.metadata.annotations!['deployment.kubernetes.io/desired-replicas'], x.metadata.annotations!['deployment.kubernetes.io/max-replicas']]),
    [
      ['web-old', 11, '15', '18'],
      ['web-new', 7, '15', '18'],
    ],
  )
})

t.test('ProgressDeadlineExceeded when new pods never become ready', async (t) => {
  const sim = new Sim(deployment({ replicas: 1, progressDeadlineSeconds: 3 }, 'app:never'))
  sim.stuck.add('app:never')
  sim.sync()
  sim.pods_()
  const progressing = sim.sync()
  t.match(cond(progressing.status, 'Progressing'), { status: 'True', reason: reasons.rsUpdated, lastUpdateTime: iso(t0 + 1000) })
  t.equal(progressing.requeueAfterMs, 4000, 'look again when the deadline has passed')
  sim.now += 2000
  t.match(cond(sim.sync().status, 'Progressing'), { status: 'True', reason: reasons.rsUpdated }, 'not yet')
  sim.now += 2000
  const late = sim.sync()
  t.match(cond(late.status, 'Progressing'), { status: 'False', reason: reasons.timedOut, message: /has timed out progressing/ })
  t.match(cond(late.status, 'Available'), { status: 'False', reason: reasons.minimumUnavailable })
  t.equal(late.requeueAfterMs, undefined, 'nothing more to wait for')
})

t.test('paused: no new ReplicaSet, Progressing Unknown; resuming rolls out', async (t) => {
  const sim = new Sim(deployment({ replicas: 2 }))
  sim.run()
  sim.setImage('app:v2')
  sim.d.spec.paused = true
  const plan = sim.sync()
  t.equal(plan.create, undefined)
  t.same(plan.update, [])
  t.match(cond(plan.status, 'Progressing'), { status: 'Unknown', reason: reasons.paused })
  sim.now += 3_600_000
  t.equal(sim.sync().requeueAfterMs, undefined, 'a paused Deployment has no deadline to watch')
  sim.d.spec.paused = false
  t.match(cond(sim.sync().status, 'Progressing'), { reason: reasons.newRsCreated })
  sim.run()
  t.same(sim.rss.map((rs) => rs.spec.replicas), [0, 2])
})

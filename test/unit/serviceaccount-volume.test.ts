// The ServiceAccount admission of a pod (the kube-api-access projected
// volume) and the node's projected volume files with token rotation (pure,
// the token source a stub: the real TokenRequest is in the e2e).

import t from 'tap'
import { admitServiceAccount, serviceAccountMountPath } from '../../controlplane/apiserver/serviceaccount-admission.ts'
import { ProjectedTokens, projectedFiles, tokenRefreshAt } from '../../node/pods/projected.ts'

const pod = (spec: any = {}) => ({ metadata: { name: 'p', namespace: 'shop', uid: 'u1' }, spec: { containers: [{ name: 'a' }, { name: 'b', volumeMounts: [] as any[] }], ...spec } })

t.test('admission: default ServiceAccount, the projected volume mounted in every container', async (t) => {
  const p = pod()
  admitServiceAccount(p, undefined)
  t.equal(p.spec.serviceAccountName, 'default')
  t.equal(p.spec.serviceAccount, 'default')
  const vol = p.spec.volumes[0]
  t.match(vol.name, /^kube-api-access-[a-z0-9]{5}$/)
  t.same(vol.projected.sources.map((s: any) => Object.keys(s)[0]), ['serviceAccountToken', 'configMap', 'downwardAPI'])
  t.equal(vol.projected.sources[0].serviceAccountToken.expirationSeconds, 3607)
  for (const c of p.spec.containers) t.same(c.volumeMounts.at(-1), { name: vol.name, readOnly: true, mountPath: serviceAccountMountPath })
})

t.test('admission: automount false on the pod or the ServiceAccount (the pod wins), or the path already mounted', async (t) => {
  const off = pod({ automountServiceAccountToken: false })
  admitServiceAccount(off, undefined)
  t.equal(off.spec.volumes, undefined, 'pod says false')
  const saOff = pod({ serviceAccountName: 'quiet' })
  admitServiceAccount(saOff, { metadata: { name: 'quiet' }, automountServiceAccountToken: false } as any)
  t.equal(saOff.spec.volumes, undefined, 'ServiceAccount says false')
  const podOn = pod({ serviceAccountName: 'quiet', automountServiceAccountToken: true })
  admitServiceAccount(podOn, { metadata: { name: 'quiet' }, automountServiceAccountToken: false } as any)
  t.equal(podOn.spec.volumes.length, 1, 'the pod overrides its ServiceAccount')
  const own = pod()
  own.spec.containers[0] = { name: 'a', volumeMounts: [{ name: 'mine', mountPath: serviceAccountMountPath }] } as any
  admitServiceAccount(own, undefined)
  t.equal(own.spec.containers[0]!.volumeMounts!.length, 1, 'a container mounting the path itself keeps its own')
  t.equal(own.spec.containers[1]!.volumeMounts!.length, 1, 'the others get the volume')
})

t.test('projected files: token, CA and namespace; the token is requested again after 80% of its life', async (t) => {
  const p = pod()
  admitServiceAccount(p, undefined)
  let requests = 0
  const tokens = new ProjectedTokens({ request: async (_pod, _aud, seconds) => ({ token: `tok-${++requests}`, expirationSeconds: seconds }) })
  const cm = { metadata: { name: 'kube-root-ca.crt' }, data: { 'ca.crt': 'PEM' } }
  const got = await projectedFiles(p as any, p.spec.volumes[0], { configMaps: new Map([['kube-root-ca.crt', cm as any]]), secrets: new Map(), tokens })
  t.same(got.files.map((f) => [f.path, f.data.toString(), f.mode]), [['token', 'tok-1', 0o644], ['ca.crt', 'PEM', 0o644], ['namespace', 'shop', 0o644]])
  await projectedFiles(p as any, p.spec.volumes[0], { configMaps: new Map([['kube-root-ca.crt', cm as any]]), secrets: new Map(), tokens })
  t.equal(requests, 1, 'a fresh token is reused')
  t.equal(tokenRefreshAt(1000, 3607), 1000 + 3607 * 0.8 * 1000)
  t.equal(tokenRefreshAt(0, 7 * 24 * 3600), 24 * 3600 * 1000, 'at most a day')
  await t.rejects(projectedFiles(p as any, p.spec.volumes[0], { configMaps: new Map(), secrets: new Map(), tokens }), /configmap "kube-root-ca.crt" not found/)
})

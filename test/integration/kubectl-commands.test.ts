// The everyday kubectl commands of issue 12's acceptance, with the real
// kubectl 1.32 against one apiserver with its controllers: create
// role|rolebinding|serviceaccount (protobuf bodies), label, annotate, edit
// (an editor script), diff, wait, rollout restart, events, api-resources;
// and a server-side apply patch from @kubernetes/client-node.

import t from 'tap'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { lookupResource } from '../../controlplane/api/resources.ts'
import { eventually } from '../../lib/net.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { KubeConfig, KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node'

const cms = lookupResource('', 'v1', 'configmaps')!
const deploys = lookupResource('apps', 'v1', 'deployments')!

t.test('kubectl commands', async (t) => {
  const c = await startTestCluster(t, { controllers: {} })
  const dir = await mkdtemp(join(tmpdir(), 'skiff-kubectl-cmds-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await c.kubectl(['create', 'namespace', 'cmds'])
  await c.kubectl(['create', 'configmap', 'cfg', '-n', 'cmds', '--from-literal=a=1'])

  await t.test('create serviceaccount, role, rolebinding (protobuf bodies)', async (t) => {
    t.match((await c.kubectl(['create', 'serviceaccount', 'bot', '-n', 'cmds'])).stdout, 'serviceaccount/bot created')
    t.match((await c.kubectl(['create', 'role', 'reader', '-n', 'cmds', '--verb=get,list', '--resource=configmaps'])).stdout, 'role.rbac.authorization.k8s.io/reader created')
    t.match((await c.kubectl(['create', 'rolebinding', 'bot-reads', '-n', 'cmds', '--role=reader', '--serviceaccount=cmds:bot'])).stdout, 'rolebinding.rbac.authorization.k8s.io/bot-reads created')
    const can = await c.kubectl(['auth', 'can-i', 'list', 'configmaps', '-n', 'cmds', '--as=system:serviceaccount:cmds:bot'])
    t.equal(can.stdout.trim(), 'yes', 'the binding grants what the role says')
  })

  await t.test('label, annotate, edit', async (t) => {
    t.match((await c.kubectl(['label', 'configmap', 'cfg', '-n', 'cmds', 'tier=web'])).stdout, 'configmap/cfg labeled')
    t.match((await c.kubectl(['annotate', 'configmap', 'cfg', '-n', 'cmds', 'owner=team-a'])).stdout, 'configmap/cfg annotated')
    const editor = join(dir, 'editor.sh')
    await writeFile(editor, '#!/bin/sh\nsed -i \'s/^  a: "1"$/  a: "2"/\' "$1"\n')
    await chmod(editor, 0o755)
    process.env.KUBE_EDITOR = editor
    t.teardown(() => void delete process.env.KUBE_EDITOR)
    t.match((await c.kubectl(['edit', 'configmap', 'cfg', '-n', 'cmds'])).stdout, 'configmap/cfg edited')
    const cm = await c.client.get(cms, 'cmds', 'cfg')
    t.same([cm.metadata.labels?.tier, cm.metadata.annotations?.owner, cm.data.a], ['web', 'team-a', '2'])
  })

  await t.test('diff shows a change without making it', async (t) => {
    const manifest = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: cmds}\ndata: {a: "3"}\n'
    const d = await c.kubectl(['diff', '-f', '-'], { stdin: manifest, allowFail: true })
    t.equal(d.code, 1, 'exit 1: there are differences')
    t.match(d.stdout, /-\s+a: "2"/)
    t.match(d.stdout, /\+\s+a: "3"/)
    t.equal((await c.client.get(cms, 'cmds', 'cfg')).data.a, '2', 'nothing changed')
  })

  await t.test('rollout restart, wait, events, api-resources', async (t) => {
    await c.kubectl(['create', 'deployment', 'web', '-n', 'cmds', '--image=skiff/echo:local'])
    const r = await c.kubectl(['rollout', 'restart', 'deployment/web', '-n', 'cmds'])
    t.match(r.stdout, 'deployment.apps/web restarted')
    const d = await c.client.get(deploys, 'cmds', 'web')
    t.ok(d.spec.template.metadata.annotations?.['kubectl.kubernetes.io/restartedAt'], 'the template carries restartedAt')
    await eventually(async () => (await c.client.get(deploys, 'cmds', 'web')).status?.observedGeneration === d.metadata.generation, { what: 'the controller saw the restart' })
    const w = await c.kubectl(['wait', '--for=jsonpath={.status.observedGeneration}=' + d.metadata.generation, 'deployment/web', '-n', 'cmds', '--timeout=30s'])
    t.match(w.stdout, 'deployment.apps/web condition met')
    await c.kubectl(['delete', 'configmap', 'cfg', '-n', 'cmds', '--wait=false'])
    const gone = await c.kubectl(['wait', '--for=delete', 'configmap/cfg', '-n', 'cmds', '--timeout=30s'], { allowFail: true })
    t.equal(gone.code, 0, `wait --for=delete (${gone.stderr})`)
    const ev = await eventually(async () => {
      const e = await c.kubectl(['events', '-n', 'cmds'])
      return /ScalingReplicaSet/.test(e.stdout) && e.stdout
    }, { what: 'the deployment controller\'s events' })
    t.match(ev, /LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE/)
    const api = await c.kubectl(['api-resources'])
    for (const row of [/^deployments\s+deploy\s+apps\/v1\s+true\s+Deployment$/m, /^roles\s+rbac\.authorization\.k8s\.io\/v1\s+true\s+Role$/m, /^pods\s+po\s+v1\s+true\s+Pod$/m]) t.match(api.stdout, row)
  })

  await t.test('client-node: a server-side apply patch creates and updates, owned by its field manager', async (t) => {
    const kc = new KubeConfig()
    kc.loadFromFile(c.kubeconfig)
    const api = KubernetesObjectApi.makeApiClient(kc)
    const obj = (v: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'ssa-lib', namespace: 'cmds' }, data: { v } })
    const created: any = await api.patch(obj('1'), undefined, undefined, 'lib-manager', false, PatchStrategy.ServerSideApply)
    t.equal(created.data.v, '1')
    const updated: any = await api.patch(obj('2'), undefined, undefined, 'lib-manager', false, PatchStrategy.ServerSideApply)
    t.equal(updated.data.v, '2')
    t.same(updated.metadata.managedFields.map((e: any) => [e.manager, e.operation]), [['lib-manager', 'Apply']])
  })
})

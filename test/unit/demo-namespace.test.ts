// The demo reports the namespace it runs in (issue 15 point 6): the
// manifest gives each pod POD_NAMESPACE through the downward API, the
// agent's env resolver turns it into the pod's namespace, and the app shows
// it (and, without it, never claims `default`).

import t from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { loadManifests } from '../../cli/manifests.ts'
import { eventually, freePort } from '../../lib/net.ts'
import { resolveEnv } from '../../node/pods/env.ts'

const demoYaml = fileURLToPath(new URL('../../cli/demo.yaml', import.meta.url))
const demoApp = fileURLToPath(new URL('../../node/images/demo/app.mjs', import.meta.url))

t.test('the demo Deployment resolves POD_NAMESPACE to its pods namespace', async (t) => {
  const deploy = loadManifests([demoYaml], () => '').map((m) => m.object).find((o) => o.kind === 'Deployment')!
  t.equal(deploy.metadata.namespace, 'demo')
  const template = deploy.spec.template
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { ...template.metadata, name: 'demo-abc', namespace: deploy.metadata.namespace, uid: 'u' }, spec: { ...template.spec, nodeName: 'n1' } }
  const env = resolveEnv(pod, pod.spec.containers[0], { configMaps: new Map(), secrets: new Map(), hostIP: '10.0.0.1', podIP: '10.244.1.2', allocatable: { cpu: 1, memory: 1 } })
  t.equal(env.get('POD_NAMESPACE'), 'demo')
  t.equal(env.get('POD_NAME'), 'demo-abc')
})

async function namespaceShown(t: { teardown(fn: () => void): void }, extraEnv: Record<string, string>): Promise<string> {
  const port = await freePort()
  const { POD_NAMESPACE: _, ...base } = process.env
  const child = spawn(process.execPath, [demoApp], { env: { ...base, PORT: String(port), ...extraEnv }, stdio: 'ignore' })
  t.teardown(() => child.kill())
  const html = await eventually(async () => (await fetch(`http://127.0.0.1:${port}/`)).text().catch(() => undefined), { timeout: 10_000, interval: 100, what: 'the demo app answers' })
  return /<dd id="namespace">([^<]*)<\/dd>/.exec(html)?.[1] ?? ''
}

t.test('the demo app shows POD_NAMESPACE', async (t) => {
  t.equal(await namespaceShown(t, { POD_NAMESPACE: 'demo' }), 'demo')
})

t.test('without POD_NAMESPACE (and no ServiceAccount mount) it says unknown, not default', async (t) => {
  t.equal(await namespaceShown(t, {}), 'unknown')
})

// `skiff up --demo`: apply cli/demo.yaml and wait until the demo Deployment
// is available, then say where it runs.

import { fileURLToPath } from 'node:url'
import { lookupResource } from '../controlplane/api/resources.ts'
import { ApiClient } from '../controlplane/client/client.ts'
import { eventually } from '../lib/net.ts'
import { applyAll } from './apply.ts'
import { readKubeconfig } from './kubeconfig.ts'
import { loadManifests } from './manifests.ts'

const demoFile = fileURLToPath(new URL('./demo.yaml', import.meta.url))

export async function deployDemo(kubeconfig: string, out: (s: string) => void): Promise<void> {
  const client = new ApiClient(readKubeconfig(kubeconfig))
  try {
    process.stderr.write('[skiff up] deploying the demo (namespace demo)\n')
    const failures = await applyAll(client, loadManifests([demoFile], () => ''), 'demo', (l) => process.stderr.write(`[skiff up]   ${l}\n`))
    if (failures) throw new Error('the demo did not apply; see the errors above')
    const deploys = lookupResource('apps', 'v1', 'deployments')!
    await eventually(async () => {
      const d = await client.get(deploys, 'demo', 'demo')
      return (d.status?.availableReplicas ?? 0) >= d.spec.replicas
    }, { timeout: 120_000, interval: 500, what: 'the demo Deployment to be available (kubectl -n demo describe pods)' })
    const pods = await client.list(lookupResource('', 'v1', 'pods')!, 'demo')
    out('The demo runs:')
    for (const p of pods.items) out(`  ${p.metadata.name}  ${p.status?.podIP}  on ${p.spec?.nodeName}`)
  } finally {
    client.close()
  }
}

// The registry: every package of the schema resolved into messages, and the
// lookup from a kind (apiVersion + kind) to its message. Everything derived
// from the schema (openapi.ts, ../protobuf.ts, fields.ts, ../patch.ts) starts
// here.

import { apps, autoscaling } from './apps.ts'
import { authentication, authorization, rbac } from './auth.ts'
import { batch } from './batch.ts'
import { gateway, gatewayV1beta1 } from './gateway.ts'
import { autoscalingV1Hpa, autoscalingV2, metricsV1beta1 } from './autoscaling.ts'
import { core } from './core.ts'
import { resolve, type Field, type Message, type PackageDef } from './dsl.ts'
import { meta } from './meta.ts'
import { coordination, discovery, networking } from './networking.ts'
import { policy } from './policy.ts'
import { storage } from './storage.ts'

export type { Field, Message, ValueType } from './dsl.ts'

/** Package → its API group and version (meta has none: it is not a group of kinds). */
const groupOf: Record<string, { group: string; version: string }> = {
  core: { group: '', version: 'v1' },
  apps: { group: 'apps', version: 'v1' },
  autoscaling: { group: 'autoscaling', version: 'v1' },
  networking: { group: 'networking.k8s.io', version: 'v1' },
  discovery: { group: 'discovery.k8s.io', version: 'v1' },
  coordination: { group: 'coordination.k8s.io', version: 'v1' },
  rbac: { group: 'rbac.authorization.k8s.io', version: 'v1' },
  authentication: { group: 'authentication.k8s.io', version: 'v1' },
  authorization: { group: 'authorization.k8s.io', version: 'v1' },
  batch: { group: 'batch', version: 'v1' },
  policy: { group: 'policy', version: 'v1' },
  storage: { group: 'storage.k8s.io', version: 'v1' },
  autoscalingv2: { group: 'autoscaling', version: 'v2' },
  autoscalingv1hpa: { group: 'autoscaling', version: 'v1' },
  metrics: { group: 'metrics.k8s.io', version: 'v1beta1' },
  gateway: { group: 'gateway.networking.k8s.io', version: 'v1' },
  gatewayv1beta1: { group: 'gateway.networking.k8s.io', version: 'v1beta1' },
}

export const packages: readonly PackageDef[] = [meta, core, apps, autoscaling, networking, discovery, coordination, rbac, authentication, authorization, batch, policy, storage, autoscalingV2, autoscalingV1Hpa, metricsV1beta1, gateway, gatewayV1beta1]

export const messages: ReadonlyMap<string, Message> = resolve(packages)

export interface KindSchema {
  group: string
  version: string
  kind: string
  /** Full OpenAPI name: io.k8s.api.apps.v1.Deployment */
  name: string
  message: Message
}

const kinds = new Map<string, KindSchema>()
for (const pkg of packages) {
  const gv = groupOf[pkg.alias]
  if (!gv) continue
  for (const goName of Object.keys(pkg.types)) {
    const message = messages.get(`${pkg.prefix}.${goName}`)!
    if (!message.topLevel) continue
    const apiVersion = gv.group ? `${gv.group}/${gv.version}` : gv.version
    kinds.set(`${apiVersion}/${goName}`, { ...gv, kind: goName, name: message.name, message })
  }
}

/** The schema of a kind, from an object's apiVersion and kind; undefined when Skiff has none. */
export function kindSchema(apiVersion: string, kind: string): KindSchema | undefined {
  return kinds.get(`${apiVersion}/${kind}`) ?? kinds.get(kindAliases[`${apiVersion}/${kind}`] ?? '')
}

/** Older versions the apiserver still decodes with a newer message of the same wire format (pods/eviction takes policy/v1beta1 bodies). */
const kindAliases: Record<string, string> = { 'policy/v1beta1/Eviction': 'policy/v1/Eviction' }

/** Every kind with a schema (Lists and reviews included). */
export function allKinds(): KindSchema[] {
  return [...kinds.values()]
}

export function message(name: string): Message {
  const m = messages.get(name)
  if (!m) throw new Error(`schema: no message ${name}`)
  return m
}

/** The message a field holds, or undefined for scalars and special types. */
export function fieldMessage(f: Field): Message | undefined {
  return f.value.kind === 'message' ? messages.get(f.value.name) : undefined
}

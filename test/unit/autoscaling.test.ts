// HorizontalPodAutoscaler API parts: v2 defaults, v1 <-> v2 conversion,
// validation field paths, and the kubectl get columns.

import t from 'tap'
import { defaultHorizontalPodAutoscaler, hpaV1ToV2, hpaV2ToV1, v1Annotations } from '../../controlplane/api/autoscaling.ts'
import { lookupResource } from '../../controlplane/api/resources.ts'
import { validate } from '../../controlplane/api/validation.ts'
import { formatHPATargets, hpaPrinter } from '../../controlplane/api/printers/autoscaling.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'

const info = lookupResource('autoscaling', 'v2', 'horizontalpodautoscalers')!
const ref = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }

t.test('defaults', async (t) => {
  const o: KubeObject = { metadata: { name: 'h' }, spec: { scaleTargetRef: ref, maxReplicas: 3 } }
  defaultHorizontalPodAutoscaler(o)
  t.same(o.spec, { scaleTargetRef: ref, maxReplicas: 3, minReplicas: 1, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }] }, 'minReplicas 1 and 80% CPU; no behavior added')
  const b: KubeObject = { metadata: { name: 'h' }, spec: { scaleTargetRef: ref, maxReplicas: 3, behavior: { scaleDown: { stabilizationWindowSeconds: 10 } } } }
  defaultHorizontalPodAutoscaler(b)
  t.same(b.spec.behavior, {
    scaleDown: { stabilizationWindowSeconds: 10, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] },
    scaleUp: { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Pods', value: 4, periodSeconds: 15 }, { type: 'Percent', value: 100, periodSeconds: 15 }] },
  }, 'a given behavior is completed with Kubernetes\' rules')
})

t.test('v1 <-> v2 conversion', async (t) => {
  const v1: KubeObject = { apiVersion: 'autoscaling/v1', kind: 'HorizontalPodAutoscaler', metadata: { name: 'h' }, spec: { scaleTargetRef: ref, minReplicas: 1, maxReplicas: 4, targetCPUUtilizationPercentage: 50 } }
  const v2 = hpaV1ToV2(v1)
  t.same(v2.spec, { scaleTargetRef: ref, minReplicas: 1, maxReplicas: 4, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }] })
  t.equal(v2.apiVersion, 'autoscaling/v2')
  t.same(hpaV2ToV1(v2).spec, v1.spec, 'round trip')
  const rich: KubeObject = {
    apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'h' },
    spec: { scaleTargetRef: ref, maxReplicas: 4, metrics: [{ type: 'Resource', resource: { name: 'memory', target: { type: 'AverageValue', averageValue: '100Mi' } } }, { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } } }], behavior: { scaleDown: { stabilizationWindowSeconds: 10 } } },
    status: { currentReplicas: 2, desiredReplicas: 3, currentMetrics: [{ type: 'Resource', resource: { name: 'cpu', current: { averageUtilization: 75, averageValue: '37m' } } }], conditions: [{ type: 'AbleToScale', status: 'True' }] },
  }
  const asV1 = hpaV2ToV1(rich)
  t.equal(asV1.spec.targetCPUUtilizationPercentage, 60)
  t.equal(asV1.status.currentCPUUtilizationPercentage, 75)
  t.same(JSON.parse(asV1.metadata.annotations![v1Annotations.metrics]), [rich.spec.metrics[0]], 'other metrics travel in the annotation')
  t.ok(asV1.metadata.annotations![v1Annotations.behavior] && asV1.metadata.annotations![v1Annotations.conditions])
  const back = hpaV1ToV2(asV1)
  t.same(back.spec.behavior, rich.spec.behavior)
  t.same(back.spec.metrics.map((m: any) => m.resource.name).sort(), ['cpu', 'memory'])
  t.same(back.status.conditions, rich.status.conditions)
  t.equal(back.metadata.annotations, undefined, 'the annotations are not stored')
})

t.test('validation', async (t) => {
  const hpa = (spec: Record<string, unknown>): KubeObject => ({ apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'h', namespace: 'ns' }, spec: { scaleTargetRef: ref, minReplicas: 1, maxReplicas: 3, ...spec } })
  const fields = (o: KubeObject) => validate(info, o).map((c) => `${c.field}: ${c.message}`)
  t.same(fields(hpa({})), [])
  t.same(fields(hpa({ minReplicas: 0 })), ['spec.minReplicas: Invalid value: 0: must be greater than or equal to 1'])
  t.same(fields(hpa({ minReplicas: 4 })), ['spec.maxReplicas: Invalid value: 3: must be greater than or equal to `minReplicas`'])
  t.same(fields(hpa({ scaleTargetRef: { name: 'web' } })), ['spec.scaleTargetRef.kind: Required value'])
  t.same(fields(hpa({ metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 0 } } }] })), ['spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0'])
  t.same(fields(hpa({ metrics: [{ type: 'Bogus' }] })), ['spec.metrics[0].type: Unsupported value: "Bogus": supported values: "Object", "Pods", "Resource", "ContainerResource", "External"'])
  t.same(fields(hpa({ behavior: { scaleDown: { stabilizationWindowSeconds: 4000, policies: [{ type: 'Pods', value: 0, periodSeconds: 2000 }] } } })), [
    'spec.behavior.scaleDown.stabilizationWindowSeconds: Invalid value: 4000: must be less than or equal to 3600',
    'spec.behavior.scaleDown.policies[0].periodSeconds: Invalid value: 2000: must be less than or equal to 1800',
    'spec.behavior.scaleDown.policies[0].value: Invalid value: 0: must be greater than zero',
  ])
})

t.test('kubectl get hpa columns', async (t) => {
  const o: KubeObject = {
    metadata: { name: 'web', creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: { scaleTargetRef: ref, minReplicas: 1, maxReplicas: 4, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }] },
    status: { currentReplicas: 2, currentMetrics: [{ type: 'Resource', resource: { name: 'cpu', current: { averageUtilization: 45 } } }] },
  }
  t.same(hpaPrinter.columns.map((c) => c.name), ['Name', 'Reference', 'Targets', 'MinPods', 'MaxPods', 'Replicas', 'Age'])
  t.same(hpaPrinter.cells(o, new Date('2026-01-01T00:05:00Z')), ['web', 'Deployment/web', 'cpu: 45%/50%', '1', 4, 2, '5m'])
  t.equal(formatHPATargets({ ...o, status: {} }), 'cpu: <unknown>/50%')
  const three = { ...o, spec: { ...o.spec, metrics: [...o.spec.metrics, { type: 'Resource', resource: { name: 'memory', target: { type: 'AverageValue', averageValue: '100Mi' } } }, { type: 'Pods', pods: { metric: { name: 'qps' }, target: { type: 'AverageValue', averageValue: '10' } } }] } }
  t.equal(formatHPATargets(three), 'cpu: 45%/50%, memory: <unknown>/100Mi + 1 more...')
})

t.test('discovery lists autoscaling v2 (preferred) and v1, and metrics.k8s.io', async (t) => {
  const { apiGroupList, aggregatedDiscovery, apiResourceList } = await import('../../controlplane/apiserver/discovery.ts')
  const groups = (apiGroupList() as any).groups
  const autoscaling = groups.find((g: any) => g.name === 'autoscaling')
  t.same(autoscaling.versions.map((v: any) => v.version), ['v2', 'v1'])
  t.equal(autoscaling.preferredVersion.version, 'v2')
  t.ok(groups.find((g: any) => g.name === 'metrics.k8s.io'))
  const agg = (aggregatedDiscovery(false) as any).items.find((i: any) => i.metadata.name === 'autoscaling')
  t.same(agg.versions.map((v: any) => v.resources.map((r: any) => r.resource)), [['horizontalpodautoscalers'], ['horizontalpodautoscalers']], 'one HPA resource per version')
  const v1 = apiResourceList('autoscaling/v1') as any
  t.same(v1.resources.map((r: any) => r.name), ['horizontalpodautoscalers', 'horizontalpodautoscalers/status'])
  const metrics = apiResourceList('metrics.k8s.io/v1beta1') as any
  t.same(metrics.resources.map((r: any) => [r.name, r.kind, r.verbs]), [['nodes', 'NodeMetrics', ['get', 'list']], ['pods', 'PodMetrics', ['get', 'list']]])
})

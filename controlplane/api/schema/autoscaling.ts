// autoscaling/v2 HorizontalPodAutoscaler (stored) and autoscaling/v1 (the
// same objects seen through apiserver/conversion.ts). Field numbers follow
// k8s.io/api/autoscaling/{v2,v1}/generated.proto.

import { atomic, byType, conditionStatus, req } from './common.ts'
import { definePackage, listOf, object, type } from './dsl.ts'

const meta = [1, 'meta.ObjectMeta', 'Standard object metadata.'] as const
const metricTypes = ['ContainerResource', 'External', 'Object', 'Pods', 'Resource']

const crossRef = type('The object to scale: kind, name and apiVersion.', {
  kind: [1, 'string', 'Kind of the referent.', req],
  name: [2, 'string', 'Name of the referent.', req],
  apiVersion: [3, 'string', 'API version of the referent.'],
}, { structType: 'atomic' })

export const autoscalingV2 = definePackage('autoscalingv2', 'io.k8s.api.autoscaling.v2', {
  HorizontalPodAutoscaler: object('Scales a workload on its pods\' metrics.', {
    metadata: meta,
    spec: [2, 'HorizontalPodAutoscalerSpec', 'Desired behaviour.'],
    status: [3, 'HorizontalPodAutoscalerStatus', 'Observed state.'],
  }),
  HorizontalPodAutoscalerList: listOf('HorizontalPodAutoscaler'),
  HorizontalPodAutoscalerSpec: type('Target, bounds, metrics and behaviour.', {
    scaleTargetRef: [1, 'CrossVersionObjectReference', 'The workload to scale (its scale subresource).', req],
    minReplicas: [2, '*int32', 'Lower bound. Defaults to 1.'],
    maxReplicas: [3, 'int32', 'Upper bound.', req],
    metrics: [4, '[]MetricSpec', 'Metrics to scale on; the largest proposal wins. Defaults to 80% CPU.', atomic],
    behavior: [5, '*HorizontalPodAutoscalerBehavior', 'Scaling speed limits and stabilization.'],
  }),
  CrossVersionObjectReference: crossRef,
  MetricSpec: type('One metric to scale on.', {
    type: [1, 'string', 'Object, Pods, Resource, ContainerResource or External.', { required: true, enum: metricTypes }],
    object: [2, '*ObjectMetricSource', 'A metric of another object.'],
    pods: [3, '*PodsMetricSource', 'A metric of each pod, averaged.'],
    resource: [4, '*ResourceMetricSource', 'A resource (cpu, memory) of the pods.'],
    containerResource: [7, '*ContainerResourceMetricSource', 'A resource of one container of the pods.'],
    external: [5, '*ExternalMetricSource', 'A metric from outside the cluster.'],
  }),
  ObjectMetricSource: type('A metric of another object.', {
    describedObject: [1, 'CrossVersionObjectReference', 'The object.', req],
    target: [2, 'MetricTarget', 'Target value.', req],
    metric: [3, 'MetricIdentifier', 'The metric.', req],
  }),
  PodsMetricSource: type('A per-pod metric.', {
    metric: [1, 'MetricIdentifier', 'The metric.', req],
    target: [2, 'MetricTarget', 'Target value.', req],
  }),
  ResourceMetricSource: type('A resource of the pods.', {
    name: [1, 'string', 'cpu or memory.', req],
    target: [2, 'MetricTarget', 'Target value.', req],
  }),
  ContainerResourceMetricSource: type('A resource of one container.', {
    name: [1, 'string', 'cpu or memory.', req],
    target: [2, 'MetricTarget', 'Target value.', req],
    container: [3, 'string', 'The container.', req],
  }),
  ExternalMetricSource: type('A metric from outside the cluster.', {
    metric: [1, 'MetricIdentifier', 'The metric.', req],
    target: [2, 'MetricTarget', 'Target value.', req],
  }),
  MetricIdentifier: type('A metric by name and selector.', {
    name: [1, 'string', 'Metric name.', req],
    selector: [2, '*meta.LabelSelector', 'Selects among series of the metric.'],
  }),
  MetricTarget: type('A target value: Utilization, Value or AverageValue.', {
    type: [1, 'string', 'Utilization, Value or AverageValue.', { required: true, enum: ['AverageValue', 'Utilization', 'Value'] }],
    value: [2, '*Quantity', 'Target value (Value).'],
    averageValue: [3, '*Quantity', 'Target per-pod average (AverageValue).'],
    averageUtilization: [4, '*int32', 'Target percentage of the request (Utilization).'],
  }),
  HorizontalPodAutoscalerBehavior: type('Scaling rules up and down.', {
    scaleUp: [1, '*HPAScalingRules', 'Rules for scaling up.'],
    scaleDown: [2, '*HPAScalingRules', 'Rules for scaling down.'],
  }),
  HPAScalingRules: type('Stabilization window and rate policies.', {
    stabilizationWindowSeconds: [3, '*int32', 'Past recommendations considered (0-3600).'],
    selectPolicy: [1, '*string', 'Max, Min or Disabled.', { enum: ['Disabled', 'Max', 'Min'] }],
    policies: [2, '[]HPAScalingPolicy', 'Allowed changes per period.', atomic],
    tolerance: [4, '*Quantity', 'Ratio band within which no scaling happens.'],
  }),
  HPAScalingPolicy: type('An allowed change per period.', {
    type: [1, 'string', 'Pods or Percent.', { required: true, enum: ['Percent', 'Pods'] }],
    value: [2, 'int32', 'Amount of change.', req],
    periodSeconds: [3, 'int32', 'Period the policy holds over (1-1800).', req],
  }),
  HorizontalPodAutoscalerStatus: type('Observed state of an autoscaler.', {
    observedGeneration: [1, '*int64', 'Generation last acted on.'],
    lastScaleTime: [2, '*Time', 'Last time the target was scaled.'],
    currentReplicas: [3, 'int32', 'Replicas seen last.'],
    desiredReplicas: [4, 'int32', 'Replicas wanted last.', req],
    currentMetrics: [5, '[]MetricStatus', 'Metric values seen last.', atomic],
    conditions: [6, '[]HorizontalPodAutoscalerCondition', 'AbleToScale, ScalingActive, ScalingLimited.', { ...byType, listType: 'map', listMapKeys: ['type'] }],
  }),
  HorizontalPodAutoscalerCondition: type('One condition of an autoscaler.', {
    type: [1, 'string', 'Condition type.', req],
    status: [2, 'string', 'True, False or Unknown.', { required: true, enum: conditionStatus }],
    lastTransitionTime: [3, 'Time', 'Last status change.'],
    reason: [4, 'string', 'CamelCase reason.'],
    message: [5, 'string', 'Details.'],
  }),
  MetricStatus: type('A metric value seen.', {
    type: [1, 'string', 'Object, Pods, Resource, ContainerResource or External.', { required: true, enum: metricTypes }],
    object: [2, '*ObjectMetricStatus', 'Object metric.'],
    pods: [3, '*PodsMetricStatus', 'Pods metric.'],
    resource: [4, '*ResourceMetricStatus', 'Resource metric.'],
    containerResource: [7, '*ContainerResourceMetricStatus', 'Container resource metric.'],
    external: [5, '*ExternalMetricStatus', 'External metric.'],
  }),
  ObjectMetricStatus: type('An object metric seen.', {
    metric: [1, 'MetricIdentifier', 'The metric.', req],
    current: [2, 'MetricValueStatus', 'Its value.', req],
    describedObject: [3, 'CrossVersionObjectReference', 'The object.', req],
  }),
  PodsMetricStatus: type('A per-pod metric seen.', {
    metric: [1, 'MetricIdentifier', 'The metric.', req],
    current: [2, 'MetricValueStatus', 'Its value.', req],
  }),
  ResourceMetricStatus: type('A resource seen.', {
    name: [1, 'string', 'cpu or memory.', req],
    current: [2, 'MetricValueStatus', 'Its value.', req],
  }),
  ContainerResourceMetricStatus: type('A container resource seen.', {
    name: [1, 'string', 'cpu or memory.', req],
    current: [2, 'MetricValueStatus', 'Its value.', req],
    container: [3, 'string', 'The container.', req],
  }),
  ExternalMetricStatus: type('An external metric seen.', {
    metric: [1, 'MetricIdentifier', 'The metric.', req],
    current: [2, 'MetricValueStatus', 'Its value.', req],
  }),
  MetricValueStatus: type('A metric value.', {
    value: [1, '*Quantity', 'Value.'],
    averageValue: [2, '*Quantity', 'Per-pod average.'],
    averageUtilization: [3, '*int32', 'Percentage of the request.'],
  }),
})

export const autoscalingV1Hpa = definePackage('autoscalingv1hpa', 'io.k8s.api.autoscaling.v1', {
  HorizontalPodAutoscaler: object('Scales a workload on its pods\' CPU (v1 view of the v2 object).', {
    metadata: meta,
    spec: [2, 'HorizontalPodAutoscalerSpec', 'Desired behaviour.'],
    status: [3, 'HorizontalPodAutoscalerStatus', 'Observed state.'],
  }),
  HorizontalPodAutoscalerList: listOf('HorizontalPodAutoscaler'),
  HorizontalPodAutoscalerSpec: type('Target, bounds and CPU target.', {
    scaleTargetRef: [1, 'CrossVersionObjectReference', 'The workload to scale.', req],
    minReplicas: [2, '*int32', 'Lower bound. Defaults to 1.'],
    maxReplicas: [3, 'int32', 'Upper bound.', req],
    targetCPUUtilizationPercentage: [4, '*int32', 'Target average CPU as a percentage of the request.'],
  }),
  CrossVersionObjectReference: crossRef,
  HorizontalPodAutoscalerStatus: type('Observed state.', {
    observedGeneration: [1, '*int64', 'Generation last acted on.'],
    lastScaleTime: [2, '*Time', 'Last time the target was scaled.'],
    currentReplicas: [3, 'int32', 'Replicas seen last.', req],
    desiredReplicas: [4, 'int32', 'Replicas wanted last.', req],
    currentCPUUtilizationPercentage: [5, '*int32', 'Average CPU seen, percentage of the request.'],
  }),
})

// metrics.k8s.io/v1beta1, read-only (apiserver/metrics/api.ts). Fields as k8s.io/metrics generated.proto; window is a metav1.Duration, a string in JSON.
export const metricsV1beta1 = definePackage('metrics', 'io.k8s.metrics.pkg.apis.metrics.v1beta1', {
  NodeMetrics: object('CPU and memory of a node, from its kubelet.', {
    metadata: meta,
    timestamp: [2, 'Time', 'When the later sample was taken.'],
    window: [3, 'string', 'Time between the two samples the CPU rate is from (a duration, 15.002s).'],
    usage: [4, 'map[Quantity]', 'cpu (nano-cores) and memory (working set).'],
  }),
  NodeMetricsList: listOf('NodeMetrics'),
  PodMetrics: object('CPU and memory of a pod\'s containers.', {
    metadata: meta,
    timestamp: [2, 'Time', 'When the later sample was taken.'],
    window: [3, 'string', 'Time between the two samples.'],
    containers: [4, '[]ContainerMetrics', 'One entry per container.', atomic],
  }),
  PodMetricsList: listOf('PodMetrics'),
  ContainerMetrics: type('CPU and memory of one container.', {
    name: [1, 'string', 'Container name.', req],
    usage: [2, 'map[Quantity]', 'cpu (nano-cores) and memory (working set).'],
  }),
})

// Server-side defaulting, as the real apiserver's SetDefaults_* functions do
// it for the v1, apps/v1, networking/v1 and discovery/v1 kinds. Defaults are
// part of the stored object, so `kubectl get -o yaml`, printing and every
// controller see the same fully-specified spec. Allocation (clusterIP,
// nodePort, names from generateName) is the apiserver's, not done here.

import type { ResourceInfo } from './resources.ts'
import { clone } from './types.ts'
import type { KubeObject } from './types.ts'
import { parseQuantity } from './validation/quantity.ts'
import { text } from './validation/field.ts'
import { defaultBinding } from './validation/rbac.ts'
import { defaultCronJob, defaultJob } from './batch-defaults.ts'
import { defaultPersistentVolume, defaultPersistentVolumeClaim, defaultStorageClass } from './storage.ts'
import { defaultHorizontalPodAutoscaler } from './autoscaling.ts'
import { defaultNetworkPolicy } from './validation/networkpolicy.ts'
import { defaultGateway, defaultGatewayClass, defaultHTTPRoute } from './gateway-defaults.ts'

type Obj = Record<string, any>

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Go defaulters treat the zero value as unset, so '' and null are filled too. */
function def(o: Obj, key: string, value: unknown): void {
  if (o[key] === undefined || o[key] === null || o[key] === '') o[key] = value
}

/** The object at o[key], created when absent. */
function sub(o: Obj, key: string): Obj {
  if (!isObj(o[key])) o[key] = {}
  return o[key]
}

function list(v: unknown): Obj[] {
  return Array.isArray(v) ? v.filter(isObj) : []
}

type Defaulter = (o: KubeObject) => void

const defaulters: Record<string, Defaulter> = {
  Pod: defaultPod,
  Deployment: defaultDeployment,
  ReplicaSet: (o) => {
    const spec = sub(o, 'spec')
    def(spec, 'replicas', 1)
    defaultTemplate(spec)
  },
  DaemonSet: defaultDaemonSet,
  StatefulSet: defaultStatefulSet,
  Service: defaultService,
  Secret: defaultSecret,
  Namespace: defaultNamespace,
  Node: (o) => {
    // A node that reports capacity but not allocatable can give all of it to pods.
    if (isObj(o.status) && isObj(o.status.capacity) && !isObj(o.status.allocatable)) o.status.allocatable = { ...o.status.capacity }
  },
  Ingress: (o) => {
    sub(sub(o, 'status'), 'loadBalancer')
  },
  IngressClass: (o) => {
    if (isObj(o.spec) && isObj(o.spec.parameters)) def(o.spec.parameters, 'scope', 'Cluster')
  },
  NetworkPolicy: defaultNetworkPolicy,
  EndpointSlice: (o) => {
    for (const p of list(o.ports)) {
      def(p, 'protocol', 'TCP')
      if (p.name === undefined || p.name === null) p.name = ''
    }
  },
  RoleBinding: defaultBinding,
  ClusterRoleBinding: defaultBinding,
  Endpoints: (o) => {
    for (const s of list(o.subsets)) for (const p of list(s.ports)) def(p, 'protocol', 'TCP')
  },
  Job: defaultJob,
  CronJob: defaultCronJob,
  PersistentVolume: defaultPersistentVolume,
  PersistentVolumeClaim: defaultPersistentVolumeClaim,
  StorageClass: defaultStorageClass,
  HorizontalPodAutoscaler: defaultHorizontalPodAutoscaler,
  GatewayClass: defaultGatewayClass,
  Gateway: defaultGateway,
  HTTPRoute: defaultHTTPRoute,
}

/** A defaulted copy of obj; obj itself is left untouched. Kinds without defaults come back as a plain copy. */
export function applyDefaults(info: ResourceInfo, obj: KubeObject): KubeObject {
  const out = clone(obj)
  defaulters[info.kind]?.(out)
  return out
}

// --- pods ------------------------------------------------------------------

function defaultPod(o: KubeObject): void {
  const spec = sub(o, 'spec')
  defaultPodSpec(spec)
  for (const c of [...list(spec.containers), ...list(spec.initContainers)]) defaultRequestsFromLimits(c)
  const status = sub(o, 'status')
  def(status, 'phase', 'Pending')
  // Derived from resources, which cannot change, so it is always recomputed rather than trusted from the client.
  status.qosClass = computeQOSClass(spec)
}

/** Defaults for a PodSpec, wherever it appears (Pod, or a workload's template). */
export function defaultPodSpec(spec: Obj): void {
  def(spec, 'restartPolicy', 'Always')
  def(spec, 'terminationGracePeriodSeconds', 30)
  def(spec, 'dnsPolicy', 'ClusterFirst')
  def(spec, 'schedulerName', 'default-scheduler')
  if (spec.enableServiceLinks === undefined || spec.enableServiceLinks === null) spec.enableServiceLinks = true
  sub(spec, 'securityContext')
  for (const c of [...list(spec.containers), ...list(spec.initContainers), ...list(spec.ephemeralContainers)]) defaultContainer(c)
  for (const v of list(spec.volumes)) defaultVolume(v)
}

/** `nginx`, `nginx:latest` and `nginx@sha256:…` pull policies, as Kubernetes decides them. */
export function defaultPullPolicy(image: unknown): string {
  if (typeof image !== 'string') return 'IfNotPresent'
  if (image.includes('@')) return 'IfNotPresent'
  const lastPart = image.slice(image.lastIndexOf('/') + 1)
  const colon = lastPart.lastIndexOf(':')
  const tag = colon >= 0 ? lastPart.slice(colon + 1) : ''
  return tag === '' || tag === 'latest' ? 'Always' : 'IfNotPresent'
}

function defaultContainer(c: Obj): void {
  def(c, 'imagePullPolicy', defaultPullPolicy(c.image))
  def(c, 'terminationMessagePath', '/dev/termination-log')
  def(c, 'terminationMessagePolicy', 'File')
  sub(c, 'resources')
  for (const p of list(c.ports)) def(p, 'protocol', 'TCP')
  for (const e of list(c.env)) if (isObj(e.valueFrom) && isObj(e.valueFrom.fieldRef)) def(e.valueFrom.fieldRef, 'apiVersion', 'v1')
  for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) if (isObj(c[probe])) defaultProbe(c[probe])
  if (isObj(c.lifecycle)) for (const hook of ['postStart', 'preStop']) if (isObj(c.lifecycle[hook])) defaultHandler(c.lifecycle[hook])
}

function defaultProbe(p: Obj): void {
  def(p, 'timeoutSeconds', 1)
  def(p, 'periodSeconds', 10)
  def(p, 'successThreshold', 1)
  def(p, 'failureThreshold', 3)
  defaultHandler(p)
}

function defaultHandler(h: Obj): void {
  if (!isObj(h.httpGet)) return
  def(h.httpGet, 'path', '/')
  def(h.httpGet, 'scheme', 'HTTP')
}

const volumeSourceKeys = ['hostPath', 'emptyDir', 'secret', 'configMap', 'projected', 'downwardAPI', 'persistentVolumeClaim', 'nfs', 'csi', 'ephemeral', 'image']

function defaultVolume(v: Obj): void {
  // A volume that names no source is an emptyDir (SetDefaults_Volume).
  const hasSource = Object.keys(v).some((k) => k !== 'name' && (volumeSourceKeys.includes(k) || isObj(v[k])))
  if (!hasSource) v.emptyDir = {}
  for (const k of ['secret', 'configMap', 'projected', 'downwardAPI']) if (isObj(v[k])) def(v[k], 'defaultMode', 0o644)
  if (isObj(v.hostPath)) def(v.hostPath, 'type', '')
}

/** A container that only sets limits requests the same amount (SetDefaults_Pod). */
function defaultRequestsFromLimits(c: Obj): void {
  const res = c.resources
  if (!isObj(res) || !isObj(res.limits)) return
  const requests = sub(res, 'requests')
  // An unparseable limit is left for validation to report once, not copied into a second error.
  for (const [name, q] of Object.entries(res.limits)) if (requests[name] === undefined && parseQuantity(q) !== undefined) requests[name] = q
}

/** Pod QoS class from the containers' cpu and memory requests and limits (ComputePodQOS). */
export function computeQOSClass(spec: Obj): 'BestEffort' | 'Burstable' | 'Guaranteed' {
  const requests: Record<string, number> = {}
  const limits: Record<string, number> = {}
  let guaranteed = true
  for (const c of [...list(spec.containers), ...list(spec.initContainers)]) {
    const res = isObj(c.resources) ? c.resources : {}
    addPositive(requests, res.requests)
    const found = addPositive(limits, res.limits)
    if (!found.has('cpu') || !found.has('memory')) guaranteed = false
  }
  const reqNames = Object.keys(requests)
  if (reqNames.length === 0 && Object.keys(limits).length === 0) return 'BestEffort'
  if (guaranteed && reqNames.every((n) => limits[n] === requests[n]) && reqNames.length === Object.keys(limits).length) return 'Guaranteed'
  return 'Burstable'
}

/** Sum the positive cpu/memory quantities of `list` into `into`; returns the names found. */
function addPositive(into: Record<string, number>, list: unknown): Set<string> {
  const found = new Set<string>()
  if (!isObj(list)) return found
  for (const name of ['cpu', 'memory']) {
    const n = parseQuantity(list[name])
    if (n === undefined || n <= 0) continue
    found.add(name)
    into[name] = (into[name] ?? 0) + n
  }
  return found
}

// --- workloads -------------------------------------------------------------

function defaultTemplate(spec: Obj): void {
  if (!isObj(spec.template)) return
  defaultPodSpec(sub(spec.template, 'spec'))
}

function defaultDeployment(o: KubeObject): void {
  const spec = sub(o, 'spec')
  def(spec, 'replicas', 1)
  def(spec, 'revisionHistoryLimit', 10)
  def(spec, 'progressDeadlineSeconds', 600)
  const strategy = sub(spec, 'strategy')
  def(strategy, 'type', 'RollingUpdate')
  if (strategy.type === 'RollingUpdate') {
    const ru = sub(strategy, 'rollingUpdate')
    def(ru, 'maxUnavailable', '25%')
    def(ru, 'maxSurge', '25%')
  }
  defaultTemplate(spec)
}

function defaultDaemonSet(o: KubeObject): void {
  const spec = sub(o, 'spec')
  def(spec, 'revisionHistoryLimit', 10)
  const strategy = sub(spec, 'updateStrategy')
  def(strategy, 'type', 'RollingUpdate')
  if (strategy.type === 'RollingUpdate') {
    const ru = sub(strategy, 'rollingUpdate')
    // Zero is meaningful for maxSurge, so only an absent value is filled.
    if (ru.maxUnavailable === undefined || ru.maxUnavailable === null) ru.maxUnavailable = 1
    if (ru.maxSurge === undefined || ru.maxSurge === null) ru.maxSurge = 0
  }
  defaultTemplate(spec)
}

/** SetDefaults_StatefulSet, with the claim templates defaulted as PersistentVolumeClaims. */
function defaultStatefulSet(o: KubeObject): void {
  const spec = sub(o, 'spec')
  def(spec, 'replicas', 1)
  def(spec, 'revisionHistoryLimit', 10)
  def(spec, 'podManagementPolicy', 'OrderedReady')
  const strategy = sub(spec, 'updateStrategy')
  if (!strategy.type) {
    strategy.type = 'RollingUpdate'
    sub(strategy, 'rollingUpdate')
  }
  if (strategy.type === 'RollingUpdate' && isObj(strategy.rollingUpdate)) def(strategy.rollingUpdate, 'partition', 0)
  const retention = sub(spec, 'persistentVolumeClaimRetentionPolicy')
  def(retention, 'whenDeleted', 'Retain')
  def(retention, 'whenScaled', 'Retain')
  for (const c of list(spec.volumeClaimTemplates)) defaultPersistentVolumeClaim(c as KubeObject)
  defaultTemplate(spec)
}

// --- services and the rest ---------------------------------------------------

function defaultService(o: KubeObject): void {
  const spec = sub(o, 'spec')
  def(spec, 'type', 'ClusterIP')
  def(spec, 'sessionAffinity', 'None')
  if (spec.sessionAffinity === 'ClientIP') def(sub(sub(spec, 'sessionAffinityConfig'), 'clientIP'), 'timeoutSeconds', 10800)
  for (const p of list(spec.ports)) {
    def(p, 'protocol', 'TCP')
    // targetPort 0 or "" means "same as port".
    if (p.targetPort === undefined || p.targetPort === null || p.targetPort === 0 || p.targetPort === '') p.targetPort = p.port
  }
  const external = spec.type === 'NodePort' || spec.type === 'LoadBalancer' || (spec.type === 'ClusterIP' && list(spec.externalIPs).length > 0)
  if (external) def(spec, 'externalTrafficPolicy', 'Cluster')
  if (spec.type !== 'ExternalName') {
    def(spec, 'internalTrafficPolicy', 'Cluster')
    // Skiff's service network is single-stack IPv4.
    if (!Array.isArray(spec.ipFamilies) || spec.ipFamilies.length === 0) spec.ipFamilies = ['IPv4']
    def(spec, 'ipFamilyPolicy', 'SingleStack')
  }
  if (spec.type === 'LoadBalancer' && (spec.allocateLoadBalancerNodePorts === undefined || spec.allocateLoadBalancerNodePorts === null))
    spec.allocateLoadBalancerNodePorts = true
  sub(sub(o, 'status'), 'loadBalancer')
}

/** stringData is a write-only convenience: it lands in data, base64-encoded, and overrides it. */
function defaultSecret(o: KubeObject): void {
  def(o, 'type', 'Opaque')
  if (!isObj(o.stringData)) {
    delete o.stringData
    return
  }
  const data = sub(o, 'data')
  for (const [k, v] of Object.entries(o.stringData)) data[k] = Buffer.from(text(v), 'utf8').toString('base64')
  delete o.stringData
}

function defaultNamespace(o: KubeObject): void {
  const spec = sub(o, 'spec')
  if (!Array.isArray(spec.finalizers)) spec.finalizers = ['kubernetes']
  def(sub(o, 'status'), 'phase', 'Active')
  // Every namespace carries its own name as a label, so selectors can pick namespaces by name.
  if (o.metadata?.name) o.metadata.labels = { ...o.metadata.labels, 'kubernetes.io/metadata.name': o.metadata.name }
}

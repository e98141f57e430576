// Docker create options for a pod's sandbox and containers (pure). The
// sandbox owns the network namespace (on the node's network, so Docker's IPAM
// gives it the pod IP from the podCIDR) and a shareable IPC namespace; every
// other container joins both with `container:<sandbox id>`. Labels carry
// what the sync must know after an agent restart (labels.ts).

import type Dockerode from 'dockerode'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { parseQuantity } from '../../controlplane/api/validation.ts'
import { containerDockerName, labels, sandboxName, specHash, type ContainerRole } from '../labels.ts'
import type { PodDns } from './dns.ts'

export const pauseImage = 'skiff/pause:local'

export interface VolumePath {
  path: string
  readOnly: boolean
}

interface Common {
  pod: KubeObject
  nodeName: string
  attempt: number
  /** Host path of the pod's resolv.conf, when the pod gets one. */
  resolvConfPath?: string
}

function podLabels(o: Common, container: string, role: ContainerRole, hash: string, backoffStep: number): Record<string, string> {
  const m = o.pod.metadata
  return {
    [labels.node]: o.nodeName,
    [labels.podUid]: m.uid!,
    [labels.podNamespace]: m.namespace!,
    [labels.podName]: m.name!,
    [labels.containerName]: container,
    [labels.role]: role,
    [labels.attempt]: String(o.attempt),
    [labels.hash]: hash,
    [labels.backoff]: String(backoffStep),
  }
}

function dockerName(o: Common, container: string): string {
  const m = o.pod.metadata
  return containerDockerName({ node: o.nodeName, namespace: m.namespace!, pod: m.name!, container, uid: m.uid!, attempt: o.attempt })
}

export function buildSandboxCreate(o: Common & { network: string; dns: PodDns; image?: string }): Dockerode.ContainerCreateOptions {
  const spec = o.pod.spec ?? {}
  const host = !!spec.hostNetwork
  return {
    name: dockerName(o, sandboxName),
    Image: o.image ?? pauseImage,
    Hostname: host ? undefined : (spec.hostname ?? o.pod.metadata.name),
    Domainname: !host && spec.subdomain ? `${spec.subdomain}.${o.pod.metadata.namespace}.svc.cluster.local` : undefined,
    Labels: podLabels(o, sandboxName, 'sandbox', specHash({ hostNetwork: host, dnsPolicy: spec.dnsPolicy, dnsConfig: spec.dnsConfig }), 0),
    HostConfig: {
      NetworkMode: host ? 'host' : o.network,
      IpcMode: 'shareable',
      RestartPolicy: { Name: 'no' },
      ...o.dns.docker,
      Binds: o.resolvConfPath ? [`${o.resolvConfPath}:/etc/resolv.conf:ro`] : [],
    },
    NetworkingConfig: host ? undefined : { EndpointsConfig: { [o.network]: {} } },
  }
}

/** Docker resource settings from the container's limits and requests. */
export function dockerResources(spec: any): Dockerode.HostConfig {
  const out: Dockerode.HostConfig = {}
  const cpu = parseQuantity(spec.resources?.limits?.cpu)
  const mem = parseQuantity(spec.resources?.limits?.memory)
  const cpuReq = parseQuantity(spec.resources?.requests?.cpu)
  if (cpu) out.NanoCpus = Math.round(cpu * 1e9)
  if (mem) out.Memory = Math.round(mem)
  // The kubelet's cpu.shares: 1024 per core requested, at least 2.
  if (cpuReq) out.CpuShares = Math.max(2, Math.round(cpuReq * 1024))
  return out
}

/** `host:container[:ro]` binds for the container's volumeMounts, plus the pod's resolv.conf. */
export function buildBinds(spec: any, volumes: ReadonlyMap<string, VolumePath>, resolvConfPath?: string): string[] {
  const binds: string[] = []
  for (const m of spec.volumeMounts ?? []) {
    const v = volumes.get(m.name)
    if (!v) throw new Error(`volumeMount ${m.name}: no such volume in the pod`)
    // As Kubernetes validates it: a subPath stays inside its volume.
    if (m.subPath && (m.subPath.startsWith('/') || m.subPath.split('/').includes('..'))) throw new Error(`volumeMount ${m.name}: subPath ${m.subPath} must be a relative path without '..'`)
    const src = m.subPath ? `${v.path}/${m.subPath}` : v.path
    binds.push(`${src}:${m.mountPath}${m.readOnly || v.readOnly ? ':ro' : ''}`)
  }
  if (resolvConfPath && !(spec.volumeMounts ?? []).some((m: any) => m.mountPath === '/etc/resolv.conf')) binds.push(`${resolvConfPath}:/etc/resolv.conf:ro`)
  return binds
}

function securityOptions(spec: any, pod: KubeObject): { User?: string; HostConfig: Dockerode.HostConfig } {
  const sc = { ...(pod.spec?.securityContext ?? {}), ...(spec.securityContext ?? {}) }
  const user = sc.runAsUser !== undefined ? `${sc.runAsUser}${sc.runAsGroup !== undefined ? `:${sc.runAsGroup}` : ''}` : undefined
  const hc: Dockerode.HostConfig = {}
  if (sc.privileged) hc.Privileged = true
  if (sc.readOnlyRootFilesystem) hc.ReadonlyRootfs = true
  if (sc.capabilities?.add) hc.CapAdd = sc.capabilities.add
  if (sc.capabilities?.drop) hc.CapDrop = sc.capabilities.drop
  return { User: user, HostConfig: hc }
}

/**
 * Container log rotation, as the kubelet's containerLogMaxSize (10Mi) and
 * containerLogMaxFiles (5): Docker's json-file driver keeps at most `maxFiles`
 * files of `maxSizeBytes` each per container, and `docker logs` (pods/log)
 * reads across them.
 */
export interface ContainerLogRotation {
  maxSizeBytes: number
  maxFiles: number
}

export const defaultLogRotation: ContainerLogRotation = { maxSizeBytes: 10 * 1024 * 1024, maxFiles: 5 }

/** The agent's --container-log-max-size (a quantity: 10Mi, 500Ki) and --container-log-max-files (≥ 2, as the kubelet asks). */
export function parseLogRotation(size: string, files: string): ContainerLogRotation {
  const bytes = parseQuantity(size)
  if (bytes === undefined || !Number.isFinite(bytes) || bytes < 1024) throw new Error(`--container-log-max-size must be a size of at least 1Ki, such as 10Mi or 500Ki, not ${JSON.stringify(size)}`)
  const n = Number(files)
  if (!Number.isInteger(n) || n < 2) throw new Error(`--container-log-max-files must be a whole number of at least 2 (the current file and one rotated), not ${JSON.stringify(files)}`)
  return { maxSizeBytes: bytes, maxFiles: n }
}

/** Docker's LogConfig for a rotation: max-size in KiB (Docker's `k` suffix), at least 1k. */
export function logConfig(r: ContainerLogRotation): { Type: string; Config: Record<string, string> } {
  return { Type: 'json-file', Config: { 'max-size': `${Math.max(1, Math.ceil(r.maxSizeBytes / 1024))}k`, 'max-file': String(r.maxFiles) } }
}

export interface ContainerInputs extends Common {
  spec: any
  role: 'init' | 'app'
  backoffStep: number
  sandboxId: string
  env: ReadonlyMap<string, string>
  command?: string[]
  args?: string[]
  binds: string[]
  /** Log rotation (default: the kubelet's 10Mi × 5). */
  logs?: ContainerLogRotation
}

export function buildContainerCreate(o: ContainerInputs): Dockerode.ContainerCreateOptions {
  const { spec } = o
  const sec = securityOptions(spec, o.pod)
  const shareNs = `container:${o.sandboxId}`
  return {
    name: dockerName(o, spec.name),
    Image: spec.image,
    // Kubernetes: command replaces the image ENTRYPOINT (and drops its CMD), args replace CMD.
    Entrypoint: o.command,
    Cmd: o.args,
    Env: [...o.env].map(([k, v]) => `${k}=${v}`),
    WorkingDir: spec.workingDir,
    User: sec.User,
    Tty: !!spec.tty,
    OpenStdin: !!spec.stdin,
    StdinOnce: !!spec.stdinOnce,
    Labels: podLabels(o, spec.name, o.role, specHash(spec), o.backoffStep),
    HostConfig: {
      NetworkMode: shareNs,
      IpcMode: shareNs,
      PidMode: o.pod.spec?.shareProcessNamespace ? shareNs : undefined,
      RestartPolicy: { Name: 'no' },
      Binds: o.binds,
      LogConfig: logConfig(o.logs ?? defaultLogRotation),
      ...dockerResources(spec),
      ...sec.HostConfig,
    },
  }
}

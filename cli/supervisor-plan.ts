// The processes of a local cluster, as data (pure): what the supervisor runs,
// with which arguments, in which namespace, logging where. Order matters only
// at start (redis, server, then each host's dockerd before its agent); after
// that each process is restarted on its own when it dies.

import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ClusterSpec, ControlPlaneMachine, HostSpec } from './cluster-spec.ts'
import { controlPlaneMachines, names } from './cluster-spec.ts'
import { dockerdArgs } from './simhost.ts'
import { ingressPoolLabel } from '../controlplane/api/bootstrap-token.ts'

export const skiffEntry = fileURLToPath(new URL('./skiff.ts', import.meta.url))

export interface ChildSpec {
  /** redis, server, dockerd/<host>, agent/<host>. */
  name: string
  cmd: string
  args: string[]
  env?: Record<string, string>
  /** Network namespace (a simulated host) to run in. */
  netns?: string
  log: string
  /** A string of its command line: a pid whose command line lacks it is not this child any more. */
  needle: string
  host?: string
  /** How long a graceful stop may take before SIGKILL. */
  stopGraceMs: number
  /** Leftovers of a previous run to SIGKILL before (re)starting it: command lines containing this. */
  stale?: string
}


export function redisChild(stateDir: string): ChildSpec {
  const conf = join(stateDir, 'redis', 'redis.conf')
  return { name: 'redis', cmd: 'redis-server', args: [conf], log: join(stateDir, 'logs', 'redis.log'), needle: conf, stopGraceMs: 10_000 }
}

export function serverChild(s: ClusterSpec, stateDir: string, node = process.execPath): ChildSpec {
  return {
    name: 'server',
    cmd: node,
    args: [
      skiffEntry, '--state-dir', stateDir, 'server',
      '--bind-address', s.lan.hostIP, '--advertise-address', s.lan.hostIP, '--port', String(s.apiPort),
      ...serverStoreArgs(s, stateDir),
    ],
    log: join(stateDir, 'logs', 'server.log'),
    needle: `${stateDir} server`,
    stopGraceMs: 15_000,
  }
}

/** The folder of HA machine i's Redis and sentinel (machine 0 keeps the single-Redis folder, which holds the password). */
export function haRedisDir(stateDir: string, i: number): string {
  return join(stateDir, i === 0 ? 'redis' : `redis-${i}`)
}

/** The store and controller flags both servers share. */
function serverStoreArgs(s: ClusterSpec, stateDir: string): string[] {
  const redis = s.ha
    ? ['--redis-sentinels', controlPlaneMachines(s).map((m) => `${m.ip}:${s.ha!.sentinelPort}`).join(','), '--redis-master-name', s.ha.masterName, '--forbidden-redis-cidrs', s.clusterCIDR]
    : ['--redis-port', String(s.redisPort)]
  // Every Redis this cluster runs writes to this machine's disk (the hosts are namespaces): guard them all.
  const dataDirs = s.ha ? controlPlaneMachines(s).map((m) => haRedisDir(stateDir, m.index)) : [join(stateDir, 'redis')]
  return [
    ...redis, '--redis-password-file', join(stateDir, 'redis', 'password'), '--redis-data-dir', dataDirs.join(','),
    '--cluster-cidr', s.clusterCIDR, '--load-balancer-pool', s.loadBalancerPool,
    '--node-monitor-grace-period', String(s.timers.nodeMonitorGracePeriodS), '--pod-eviction-timeout', String(s.timers.podEvictionTimeoutS),
  ]
}

/** --ha: the second server, on the first host, joined to the first with a server token; its own state folder. */
export function server2Child(s: ClusterSpec, stateDir: string, tokenFile: string, node = process.execPath): ChildSpec {
  const h = s.hosts[0]!
  const dir = join(stateDir, 'server-2')
  return {
    name: 'server-2',
    cmd: node,
    args: [
      skiffEntry, '--state-dir', dir, 'server',
      '--bind-address', h.ip, '--advertise-address', h.ip, '--port', String(s.apiPort),
      '--join', `https://${s.lan.hostIP}:${s.apiPort}`, '--token-file', tokenFile,
      ...serverStoreArgs(s, stateDir),
    ],
    netns: names.netns(s, h),
    host: h.name,
    log: join(stateDir, 'logs', 'server-2.log'),
    needle: `${dir} server`,
    stopGraceMs: 15_000,
  }
}

/** --ha: Redis and its sentinel on control-plane machine m (this machine or a host's namespace). */
export function haRedisChildren(s: ClusterSpec, stateDir: string, m: ControlPlaneMachine, conf: { redisConf: string; sentinelConf: string }): ChildSpec[] {
  const where = m.host ? { netns: names.netns(s, m.host), host: m.host.name } : {}
  return [
    { name: `redis-${m.index}`, cmd: 'redis-server', args: [conf.redisConf], log: join(stateDir, 'logs', `redis-${m.index}.log`), needle: conf.redisConf, stopGraceMs: 10_000, ...where },
    { name: `redis-sentinel-${m.index}`, cmd: 'redis-server', args: [conf.sentinelConf, '--sentinel'], log: join(stateDir, 'logs', `sentinel-${m.index}.log`), needle: conf.sentinelConf, stopGraceMs: 10_000, ...where },
  ]
}

export function dockerdChild(s: ClusterSpec, h: HostSpec, stateDir: string): ChildSpec {
  return {
    name: `dockerd/${h.name}`, cmd: 'dockerd', args: dockerdArgs(s, h, stateDir), netns: names.netns(s, h), host: h.name,
    log: join(stateDir, 'logs', `dockerd-${h.name}.log`), needle: names.dockerSock(s, h), stopGraceMs: 30_000,
    // A dockerd killed outright can leave its containerd behind, which a new dockerd then waits on in vain.
    stale: `containerd --config ${names.execRoot(s, h)}/containerd/containerd.toml`,
  }
}

/** The agent of a host: the same `skiff agent` a real machine runs, with the host's own state folder and Engine. */
export function agentChild(s: ClusterSpec, h: HostSpec, stateDir: string, extraArgs: string[] = [], node = process.execPath): ChildSpec {
  const root = names.hostRoot(stateDir, h)
  return {
    name: `agent/${h.name}`,
    cmd: node,
    args: [
      skiffEntry, '--state-dir', root, 'agent', '--node-name', h.name, '--cluster-cidr', s.clusterCIDR,
      '--heartbeat-ms', String(s.timers.heartbeatMs),
      ...(h.pool ? ['--node-label', `${ingressPoolLabel}=${h.pool}`] : []),
      ...(s.acme?.caFile ? ['--acme-ca-file', s.acme.caFile] : []),
      ...extraArgs,
    ],
    env: { DOCKER_HOST: `unix://${names.dockerSock(s, h)}` },
    netns: names.netns(s, h),
    host: h.name,
    log: join(stateDir, 'logs', `agent-${h.name}.log`),
    needle: `${root} agent`,
    stopGraceMs: 20_000,
  }
}

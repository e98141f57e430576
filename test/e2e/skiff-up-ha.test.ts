// `skiff up --ha` (issue 11): 3 Redis under 3 sentinels and 2 servers on this
// machine and the first two simulated hosts. Real processes, real namespaces:
//  - the processes are where they should be, and the kubeconfig names both
//    servers (a context each);
//  - the Redis primary hangs (SIGSTOP, past the sentinels' 3 s): the
//    sentinels promote a replica, writes through the API resume, every write
//    acknowledged before is still there, the revision keeps growing, and the
//    old primary comes back as a replica;
//  - the primary is killed (kill -9) under 50 writes/s with traffic going
//    through the ingress and a ClusterIP: every acknowledged write survives,
//    the Deployment scaled right after the kill converges within 30 s, and
//    the data plane fails 0 requests (the fault suite's Redis scenario, its
//    cluster half; the store half is test/faults/redis-primary-kill.test.ts);
//  - the first host dies (its replica, sentinel, the second server and its
//    agent with it): writes go on through the first server; started again,
//    its share of the control plane comes back and serves.

import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { eventually } from '../../lib/net.ts'
import { sh } from '../../lib/exec.ts'
import { upCluster } from '../harness/skiff-up.ts'
import { startLoad, failedSamples, loadSummary } from '../harness/loadgen-process.ts'
import { deployWeb, deploysInfo, isReady, podsInfo } from '../harness/web-app.ts'

const configMaps = lookupResource('', 'v1', 'configmaps')!

t.test('skiff up --ha', async (t) => {
  const c = await upCluster(t, ['--ha', '--nodes', '2', '--ingress-nodes', 'external=1'])
  const s = c.spec
  const password = readFileSync(join(c.stateDir, 'redis', 'password'), 'utf8').trim()
  const pidOf = async (needle: string) => Number((await sh('pgrep', ['-f', needle], { allowFail: true })).stdout.trim().split('\n')[0]) || undefined
  const role = async (ip: string) => {
    const r = new Redis({ host: ip, port: s.redisPort, password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    r.on('error', () => {})
    try {
      await r.connect()
      return String(((await r.role()) as unknown[])[0])
    } finally {
      r.disconnect()
    }
  }
  const write = async (name: string) => (await c.client.create(configMaps, 'default', { metadata: { name }, data: { v: name } } as KubeObject)).metadata.resourceVersion!

  await t.test('3 Redis, 3 sentinels, 2 servers, where they belong; a context per server', async (t) => {
    t.ok(s.ha, 'the spec records HA')
    for (const dir of ['redis', 'redis-1', 'redis-2']) {
      t.ok(await pidOf(join(c.stateDir, dir, 'redis.conf')), `${dir}: redis-server runs`)
      t.ok(await pidOf(join(c.stateDir, dir, 'sentinel.conf')), `${dir}: its sentinel runs`)
    }
    t.ok(await pidOf(`${join(c.stateDir, 'server-2')} server`), 'the second server runs')
    t.equal(await role(s.lan.hostIP), 'master', 'the primary is on this machine')
    for (const h of s.hosts) t.equal(await role(h.ip), 'slave', `${h.name} holds a replica`)
    const kc = readFileSync(c.kubeconfig, 'utf8')
    t.match(kc, /--context skiff-2: https:\/\/[\d.]+:\d+/, 'the kubeconfig says how to reach the second server')
    const r = await c.kubectl(['--context', 'skiff-2', 'get', 'ns', 'default', '-o', 'name'])
    t.equal(r.stdout.trim(), 'namespace/default', 'the second server answers')
  })

  await t.test('pods cannot reach the store: every host rejects its pods\' connections to the Redis and sentinel addresses', async (t) => {
    for (const h of s.hosts) {
      const r = await eventually(async () => {
        const x = await c.onHost(h.name, 'nft', ['list', 'table', 'ip', `skiff-store-guard-${h.name}`], { allowFail: true })
        return x.code === 0 && x.stdout.includes(`${s.redisPort}`) ? x : undefined
      }, { timeout: 30_000, what: `the store guard table on ${h.name}` })
      t.match(r.stdout, new RegExp(`${s.lan.hostIP.replaceAll('.', '\\.')} \\. ${s.redisPort}`), `${h.name} guards the primary's address`)
    }
    await c.kubectl(['run', 'probe', '--image=skiff/echo:local', '--restart=Never'])
    await c.kubectl(['wait', '--for=condition=Ready', 'pod/probe', '--timeout=120s'], { timeoutMs: 130_000 })
    for (const ip of [s.lan.hostIP, ...s.hosts.map((h) => h.ip)]) {
      const r = await c.kubectl(['exec', 'probe', '--', 'sh', '-c', `printf 'PING\\r\\n' | nc -w 2 ${ip} ${s.redisPort}; echo "rc=$?"`], { allowFail: true, timeoutMs: 30_000 })
      t.notMatch(r.stdout, /PONG|NOAUTH|DENIED|ERR/, `a pod gets no answer from Redis at ${ip}:${s.redisPort} (${r.stdout.trim().replace(/\s+/g, ' ')})`)
    }
    await c.kubectl(['delete', 'pod', 'probe', '--grace-period=1'], { allowFail: true })
  })

  await t.test('the primary hangs: a replica is promoted, acknowledged writes survive, revisions keep growing', async (t) => {
    const before: Array<[string, string]> = []
    for (let i = 0; i < 20; i++) before.push([`before-${i}`, await write(`before-${i}`)])
    const primary = (await pidOf(join(c.stateDir, 'redis', 'redis.conf')))!
    await sh('kill', ['-STOP', String(primary)])
    let resumed: string
    try {
      const stoppedAt = Date.now()
      resumed = await eventually(async () => write(`after-${Date.now()}`).catch(() => undefined), { timeout: 60_000, interval: 500, what: 'a write after the failover' })
      t.comment(`writes resumed ${((Date.now() - stoppedAt) / 1000).toFixed(1)} s after the primary hung`)
    } finally {
      await sh('kill', ['-CONT', String(primary)])
    }
    t.ok(Number(resumed) > Math.max(...before.map(([, rv]) => Number(rv))), `the first revision after the failover (${resumed}) is above every one served before`)
    const roles = await Promise.all(s.hosts.map((h) => role(h.ip)))
    t.ok(roles.includes('master'), `a replica on a host was promoted (${roles.join(', ')})`)
    for (const [name] of before) t.equal((await c.client.get(configMaps, 'default', name)).data.v, name, `${name} survived`)
    await eventually(async () => (await role(s.lan.hostIP)) === 'slave', { timeout: 60_000, what: 'the old primary back as a replica' })
    t.pass('the old primary came back as a replica')
  })

  await t.test('kill -9 of the primary under 50 writes/s and traffic: acknowledged writes survive, controllers converge within 30 s, the data plane fails 0 requests', async (t) => {
    const clusterIP = await deployWeb(c.client, { replicas: 2 })
    const [h1, h2] = s.hosts as [typeof s.hosts[0], typeof s.hosts[0]]
    await eventually(async () => (await c.onHost(h2.name, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Host: web.test', `http://${h1.externalIP}/`], { allowFail: true })).stdout === '200', { timeout: 60_000, interval: 300, what: 'web.test through the ingress' })
    const load = startLoad(t, c, h2, [
      { name: 'clusterip', url: `http://${clusterIP}/`, fresh: true },
      { name: 'ingress', url: `http://${h1.externalIP}/`, host: 'web.test' },
    ], { rps: 50, maxMs: 120_000 })
    // 50 writes a second, open loop: each acknowledged one must be readable afterwards.
    const acked: string[] = []
    let refused = 0
    let writing = true
    const writes = (async () => {
      const inflight: Promise<void>[] = []
      for (let i = 0; writing && i < 5_000; i++) {
        const name = `load-${i}`
        inflight.push(write(name).then(() => void acked.push(name), () => void refused++))
        await new Promise((r) => setTimeout(r, 20))
      }
      await Promise.all(inflight)
    })()
    t.teardown(() => void (writing = false))
    await new Promise((r) => setTimeout(r, 2_000))
    const machines = [{ ip: s.lan.hostIP, dir: 'redis' }, ...s.hosts.slice(0, 2).map((h, i) => ({ ip: h.ip, dir: `redis-${i + 1}` }))]
    const roles = await Promise.all(machines.map((m) => role(m.ip).catch(() => 'down')))
    const primary = machines[roles.indexOf('master')]!
    const pid = (await pidOf(join(c.stateDir, primary.dir, 'redis.conf')))!
    const killedAt = Date.now()
    process.kill(pid, 'SIGKILL')
    t.comment(`killed the primary (${primary.dir} at ${primary.ip}, pid ${pid})`)
    await c.client.patch(deploysInfo, 'default', 'web', { spec: { replicas: 3 } }, 'application/merge-patch+json').catch(async () =>
      await eventually(async () => c.client.patch(deploysInfo, 'default', 'web', { spec: { replicas: 3 } }, 'application/merge-patch+json').catch(() => undefined), { timeout: 30_000, interval: 200, what: 'scaling web to 3 after the kill' }))
    await eventually(async () => (await c.client.list(podsInfo, 'default', { labelSelector: 'app=web' })).items.filter(isReady).length === 3, { timeout: 60_000, interval: 250, what: 'three ready web pods' })
    const convergedMs = Date.now() - killedAt
    t.comment(`web scaled to 3 ready pods ${convergedMs} ms after the kill`)
    t.ok(convergedMs <= 30_000, `controllers converged within 30 s of the kill (${convergedMs} ms)`)
    await new Promise((r) => setTimeout(r, 3_000))
    writing = false
    await writes
    const r = await load.stop()
    t.comment(`writes: ${acked.length} acknowledged, ${refused} refused; ${loadSummary(r)}`)
    t.same(failedSamples(r), { clusterip: [], ingress: [] }, 'the data plane failed 0 requests')
    let lost = 0
    for (const name of acked) if ((await c.client.get(configMaps, 'default', name).catch(() => undefined))?.data?.v !== name) lost++
    t.equal(lost, 0, `every one of the ${acked.length} acknowledged writes survived`)
  })

  await t.test('the first host dies with its share of the control plane; writes go on; it comes back', async (t) => {
    const h = s.hosts[0]!
    // If the primary is on it, the two other sentinels (a quorum of 2) promote the remaining replica.
    if ((await role(h.ip)) === 'master') t.comment(`${h.name} holds the primary: its death is a second failover`)
    const killed = await c.skiff(['host', 'kill', h.name])
    t.equal(killed.code, 0, killed.stderr)
    t.notOk(await pidOf(`${join(c.stateDir, 'server-2')} server`), 'the second server died with its host')
    await eventually(async () => write(`while-down-${Date.now()}`).catch(() => undefined), { timeout: 60_000, interval: 500, what: 'a write with the first host down' })
    t.pass('writes go on through the first server')
    const started = await c.skiff(['host', 'start', h.name])
    t.equal(started.code, 0, started.stderr)
    await eventually(async () => {
      const r = await c.kubectl(['--context', 'skiff-2', 'get', 'ns', 'default', '-o', 'name'], { allowFail: true })
      return r.code === 0
    }, { timeout: 90_000, what: 'the second server serving again' })
    t.ok(await pidOf(join(c.stateDir, 'redis-1', 'redis.conf')), "the host's Redis runs again")
  })
})

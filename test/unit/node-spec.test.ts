// What the agent hands Docker for a pod (pure builders): environment, DNS,
// create options, binds, and the projected files of configMap/secret volumes
// (plus the atomic writer on a temp dir).

import t from 'tap'
import { mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { buildBinds, buildContainerCreate, buildSandboxCreate, dockerResources, parseLogRotation } from '../../node/pods/container-config.ts'
import { buildPodDns, dnsSettings } from '../../node/pods/dns.ts'
import { ContainerConfigError, expandCommand, expandVars, resolveEnv, type EnvSources } from '../../node/pods/env.ts'
import { projectFiles, writeAtomic } from '../../node/pods/volumes.ts'
import { containerDockerName, specHash } from '../../node/labels.ts'

const pod = (spec: Record<string, unknown> = {}): KubeObject => ({
  metadata: { name: 'web', namespace: 'shop', uid: '1234abcd-5678', labels: { app: 'web' } },
  spec: { nodeName: 'n1', containers: [{ name: 'app', image: 'skiff/echo:local' }], ...spec },
})

const src = (o: Partial<EnvSources> = {}): EnvSources => ({
  configMaps: new Map([['cfg', { metadata: { name: 'cfg' }, data: { LEVEL: 'debug', 'bad=key': 'x' } }]]),
  secrets: new Map([['sec', { metadata: { name: 'sec' }, data: { PASSWORD: Buffer.from('hunter2').toString('base64') } }], ['gone', null]]),
  podIP: '10.244.1.7',
  hostIP: '10.244.1.1',
  allocatable: { cpu: 2, memory: 4 * 2 ** 30 },
  ...o,
})

t.test('expandVars: $(VAR), $$ escapes, unknown references stay', async (t) => {
  const env = new Map([['A', 'x'], ['B', 'y']])
  const table: Array<[string, string]> = [
    ['$(A)-$(B)', 'x-y'],
    ['$$(A)', '$(A)'],
    ['$(C)', '$(C)'],
    ['cost $5', 'cost $5'],
    ['$(A', '$(A'],
  ]
  for (const [input, want] of table) t.equal(expandVars(input, env), want, input)
})

t.test('resolveEnv: envFrom, then env in order; refs and fields', async (t) => {
  const c = {
    envFrom: [{ configMapRef: { name: 'cfg' } }, { secretRef: { name: 'sec' }, prefix: 'S_' }],
    env: [
      { name: 'LEVEL', value: 'info' },
      { name: 'URL', value: 'http://$(POD_IP):8080' },
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'URL2', value: 'http://$(POD_IP):8080' },
      { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
      { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
      { name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'PW', valueFrom: { secretKeyRef: { name: 'sec', key: 'PASSWORD' } } },
      { name: 'OPT', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'nope', optional: true } } },
      { name: 'MEM', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
    ],
  }
  const env = resolveEnv(pod(), c, src())
  t.same(Object.fromEntries(env), {
    LEVEL: 'info', S_PASSWORD: 'hunter2', URL: 'http://$(POD_IP):8080', POD_IP: '10.244.1.7', URL2: 'http://10.244.1.7:8080',
    NODE: 'n1', APP: 'web', NS: 'shop', PW: 'hunter2', MEM: '4096',
  })
  t.same(expandCommand({ command: ['sh', '-c', 'echo $(NS)'], args: ['$(PW)'] }, env), { command: ['sh', '-c', 'echo shop'], args: ['hunter2'] })
})

t.test('resolveEnv: missing objects and keys are CreateContainerConfigError unless optional', async (t) => {
  const table: Array<[any, RegExp | undefined]> = [
    [{ env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'nope' } } }] }, /couldn't find key nope in ConfigMap shop\/cfg/],
    [{ env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'gone', key: 'k' } } }] }, /secret "gone" not found/],
    [{ envFrom: [{ secretRef: { name: 'gone' } }] }, /secret "gone" not found/],
    [{ envFrom: [{ secretRef: { name: 'gone', optional: true } }] }, undefined],
  ]
  for (const [c, want] of table) {
    if (want) t.throws(() => resolveEnv(pod(), c, src()), ContainerConfigError)
    if (want) t.throws(() => resolveEnv(pod(), c, src()), { message: want })
    else t.doesNotThrow(() => resolveEnv(pod(), c, src()))
  }
})

t.test('DNS per dnsPolicy, merged with dnsConfig', async (t) => {
  const cluster = buildPodDns(pod())
  t.equal(cluster.resolvConf, 'nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n')
  t.same(cluster.docker, { Dns: ['10.96.0.10'], DnsSearch: ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local'], DnsOptions: ['ndots:5'] })
  const merged = dnsSettings(pod({ dnsConfig: { nameservers: ['1.1.1.1'], searches: ['corp.example'], options: [{ name: 'ndots', value: '2' }, { name: 'edns0' }] } }))
  t.same(merged.settings, {
    nameservers: ['10.96.0.10', '1.1.1.1'],
    searches: ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'corp.example'],
    options: [{ name: 'ndots', value: '2' }, { name: 'edns0' }],
  })
  t.equal(buildPodDns(pod({ dnsPolicy: 'Default' })).resolvConf, undefined, 'Default: the node resolvers, through Docker')
  t.equal(buildPodDns(pod({ hostNetwork: true })).resolvConf, undefined, 'hostNetwork + ClusterFirst behaves as Default')
  t.equal(buildPodDns(pod({ dnsPolicy: 'None', dnsConfig: { nameservers: ['9.9.9.9'] } })).resolvConf, 'nameserver 9.9.9.9\n')
})

t.test('sandbox create options', async (t) => {
  const dns = buildPodDns(pod())
  const o = buildSandboxCreate({ pod: pod(), nodeName: 'n1', attempt: 2, network: 'skiff-n1', dns, resolvConfPath: '/s/resolv.conf' })
  t.equal(o.name, 'skiff_n1_shop_web_POD_1234abcd_2')
  t.equal(o.Image, 'skiff/pause:local')
  t.equal(o.Hostname, 'web')
  t.match(o.Labels, { 'skiff.node': 'n1', 'skiff.pod.uid': '1234abcd-5678', 'skiff.container.name': 'POD', 'skiff.container.role': 'sandbox', 'skiff.container.attempt': '2' })
  t.match(o.HostConfig, { NetworkMode: 'skiff-n1', IpcMode: 'shareable', Dns: ['10.96.0.10'], DnsOptions: ['ndots:5'], Binds: ['/s/resolv.conf:/etc/resolv.conf:ro'] })
  t.same(o.NetworkingConfig, { EndpointsConfig: { 'skiff-n1': {} } })
  t.equal(buildSandboxCreate({ pod: pod({ hostname: 'h1' }), nodeName: 'n1', attempt: 0, network: 'x', dns }).Hostname, 'h1')
})

t.test('container create options: shared namespaces, command, env, resources, labels', async (t) => {
  const spec = { name: 'app', image: 'skiff/echo:local', workingDir: '/w', resources: { limits: { cpu: '500m', memory: '64Mi' }, requests: { cpu: '250m' } } }
  const o = buildContainerCreate({
    pod: pod(), spec, nodeName: 'n1', role: 'app', attempt: 1, backoffStep: 2, sandboxId: 'sb1',
    env: new Map([['A', '1']]), command: ['sh'], args: ['-c', 'true'], binds: ['/v:/data'],
  })
  t.equal(o.name, containerDockerName({ node: 'n1', namespace: 'shop', pod: 'web', container: 'app', uid: '1234abcd-5678', attempt: 1 }))
  t.same(o.Entrypoint, ['sh'])
  t.same(o.Cmd, ['-c', 'true'])
  t.same(o.Env, ['A=1'])
  t.equal(o.WorkingDir, '/w')
  t.match(o.HostConfig, { NetworkMode: 'container:sb1', IpcMode: 'container:sb1', NanoCpus: 500_000_000, Memory: 64 * 2 ** 20, CpuShares: 256, Binds: ['/v:/data'] })
  t.match(o.Labels, { 'skiff.container.role': 'app', 'skiff.container.attempt': '1', 'skiff.container.backoff': '2', 'skiff.container.hash': specHash(spec) })
  t.same(dockerResources({}), {})
  t.same(o.HostConfig!.LogConfig, { Type: 'json-file', Config: { 'max-size': '10240k', 'max-file': '5' } }, 'logs rotated as the kubelet does by default: 10Mi, 5 files')
  const small = buildContainerCreate({
    pod: pod(), spec, nodeName: 'n1', role: 'app', attempt: 0, backoffStep: 0, sandboxId: 'sb1', env: new Map(), binds: [],
    logs: parseLogRotation('500Ki', '3'),
  })
  t.same(small.HostConfig!.LogConfig, { Type: 'json-file', Config: { 'max-size': '500k', 'max-file': '3' } })
})

t.test('container log rotation flags', async (t) => {
  t.same(parseLogRotation('10Mi', '5'), { maxSizeBytes: 10 * 2 ** 20, maxFiles: 5 })
  t.same(parseLogRotation('1M', '2'), { maxSizeBytes: 1_000_000, maxFiles: 2 })
  t.throws(() => parseLogRotation('ten', '5'), /--container-log-max-size must be a size of at least 1Ki, such as 10Mi or 500Ki, not "ten"/)
  t.throws(() => parseLogRotation('100', '5'), /at least 1Ki/)
  t.throws(() => parseLogRotation('10Mi', '1'), /--container-log-max-files must be a whole number of at least 2 \(the current file and one rotated\), not "1"/)
})

t.test('binds: volumeMounts, subPath, read-only, resolv.conf', async (t) => {
  const vols = new Map([['data', { path: '/p/data', readOnly: false }], ['cfg', { path: '/p/cfg', readOnly: true }]])
  const spec = { volumeMounts: [{ name: 'data', mountPath: '/data' }, { name: 'cfg', mountPath: '/etc/app.conf', subPath: 'app.conf' }, { name: 'data', mountPath: '/ro', readOnly: true }] }
  t.same(buildBinds(spec, vols, '/p/resolv.conf'), ['/p/data:/data', '/p/cfg/app.conf:/etc/app.conf:ro', '/p/data:/ro:ro', '/p/resolv.conf:/etc/resolv.conf:ro'])
  t.throws(() => buildBinds({ volumeMounts: [{ name: 'nope', mountPath: '/x' }] }, vols))
})

t.test('specHash ignores key order', async (t) => {
  t.equal(specHash({ name: 'a', image: 'b' }), specHash({ image: 'b', name: 'a' }))
  t.not(specHash({ name: 'a', image: 'b' }), specHash({ name: 'a', image: 'c' }))
})

t.test('projectFiles: all keys, or items with paths and modes', async (t) => {
  const entries = new Map([['a', Buffer.from('1')], ['b', Buffer.from('2')]])
  t.same(projectFiles(entries, {}, 'cm').map((f) => [f.path, f.mode]), [['a', 0o644], ['b', 0o644]])
  t.same(projectFiles(entries, { items: [{ key: 'b', path: 'dir/bee', mode: 0o400 }], defaultMode: 0o600 }, 'cm').map((f) => [f.path, f.mode]), [['dir/bee', 0o400]])
  t.throws(() => projectFiles(entries, { items: [{ key: 'zz', path: 'z' }] }, 'cm'), { message: /non-existent key: zz/ })
  t.same(projectFiles(entries, { items: [{ key: 'zz', path: 'z' }], optional: true }, 'cm'), [])
})

t.test('writeAtomic: files through ..data, replaced in one rename, stale names removed', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-atomic-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeAtomic(dir, [{ path: 'greeting', data: Buffer.from('hello'), mode: 0o644 }, { path: 'old', data: Buffer.from('x'), mode: 0o644 }])
  t.equal(await readFile(join(dir, 'greeting'), 'utf8'), 'hello')
  t.equal(await readlink(join(dir, 'greeting')), '..data/greeting')
  const first = await readlink(join(dir, '..data'))
  await writeAtomic(dir, [{ path: 'greeting', data: Buffer.from('bye'), mode: 0o644 }, { path: 'sub/x', data: Buffer.from('y'), mode: 0o644 }])
  t.equal(await readFile(join(dir, 'greeting'), 'utf8'), 'bye')
  t.equal(await readFile(join(dir, 'sub', 'x'), 'utf8'), 'y')
  t.not(await readlink(join(dir, '..data')), first)
  t.same((await readdir(dir)).filter((n) => !n.startsWith('..')).sort(), ['greeting', 'sub'])
  t.equal((await readdir(dir)).filter((n) => n.startsWith('..') && n !== '..data').length, 1, 'only the current data dir is kept')
  await t.rejects(writeAtomic(dir, [{ path: '../escape', data: Buffer.from(''), mode: 0o644 }]))
})

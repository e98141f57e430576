#!/usr/bin/env node
// The skiff command. Long-running: `server` (and `agent`, later). Cluster
// lifecycle: `up`, `down`, `kubeconfig`. Objects: `apply`, `get`,
// `describe`, `delete`. Errors print one line with what to do next and exit 1.

import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join, resolve } from 'node:path'
import { Command, Option } from 'commander'
import { ApiClient, ApiClientError } from '../controlplane/client/client.ts'
import { lookupKind } from '../controlplane/api/resources.ts'
import { createLogger } from '../lib/log.ts'
import { applyAll } from './apply.ts'
import { clusterRunning, down, hostAction, ingressAddresses, kubeconfigFor, stop, up } from './cluster.ts'
import { deleteNamed, describe, get, resolveType } from './get.ts'
import { parseKubeconfigText, readKubeconfig } from './kubeconfig.ts'
import { loadManifests, ManifestError } from './manifests.ts'
import { registerImagesCommand } from './images.ts'
import { registerTokenCommand } from './token.ts'
import { registerAgentCommand } from '../node/command.ts'
import { deployDemo } from './demo.ts'

const program = new Command()
program.name('skiff').description('Skiff: a networking-first, Kubernetes-style orchestrator').showHelpAfterError()
program.option('--state-dir <dir>', 'where the local cluster keeps its state', process.env.SKIFF_STATE_DIR ?? '.skiff')
program.option('--kubeconfig <file>', 'use this kubeconfig instead of the local cluster in --state-dir')
program.option('-n, --namespace <ns>', 'namespace')

const out = (s: string) => process.stdout.write(s + '\n')

/** `external=2,internal=1` → counts; both classes default to 0 when named. */
function parsePools(raw: string): { external: number; internal: number } {
  const pools = { external: 0, internal: 0 }
  for (const part of raw.split(',')) {
    const m = /^(external|internal)=(\d+)$/.exec(part.trim())
    if (!m) throw new Error(`--ingress-nodes takes external=N,internal=N, not ${JSON.stringify(part)}`)
    pools[m[1] as 'external' | 'internal'] = Number(m[2])
  }
  return pools
}

function stateDir(): string {
  return resolve(program.opts().stateDir as string)
}

async function client(): Promise<{ client: ApiClient; namespace: string }> {
  const g = program.opts()
  const kc = g.kubeconfig ?? process.env.SKIFF_KUBECONFIG
  if (kc) {
    const cfg = readKubeconfig(kc)
    return { client: new ApiClient(cfg), namespace: g.namespace ?? cfg.namespace ?? 'default' }
  }
  return { client: new ApiClient(await localKubeconfig()), namespace: g.namespace ?? 'default' }
}

/** The apiserver of the cluster in --state-dir: one `skiff up` runs, or a `skiff server` of this machine (server.json). */
async function localServerURL(): Promise<string> {
  const dir = stateDir()
  const st = await clusterRunning(dir)
  if (st) return st.server.url
  const server = join(dir, 'server.json')
  if (existsSync(server) && existsSync(join(dir, 'tokens.csv'))) return (JSON.parse(readFileSync(server, 'utf8')) as { url: string }).url
  throw new Error(`no running cluster in ${dir}: start one with \`skiff up\` (or npm start), run this on the machine of \`skiff server\` with its --state-dir, or pass --kubeconfig`)
}

/** The admin kubeconfig of the cluster in --state-dir. */
async function localKubeconfig(): Promise<ReturnType<typeof readKubeconfig>> {
  return parseKubeconfigText(kubeconfigFor(stateDir(), await localServerURL()))
}

/** `host:port,host:port` → endpoints, or a clear error naming the flag. */
function parseHostPorts(flag: string, raw: string): { host: string; port: number }[] {
  return String(raw).split(',').map((x) => x.trim()).filter(Boolean).map((hp) => {
    const m = /^(.+):(\d+)$/.exec(hp)
    if (!m) throw new Error(`${flag} takes host:port,host:port,..., not ${JSON.stringify(hp)}`)
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port: intFlag(flag, m[2]!, 1, 65535) }
  })
}

/** A size (bytes, or with a unit: 64Mi, 1Gi), or a clear error naming the flag. */
async function byteSizeFlag(flag: string, raw: string): Promise<number> {
  const { parseByteSize } = await import('../controlplane/store/disk-guard.ts')
  try {
    return parseByteSize(raw)
  } catch (err) {
    throw new Error(`${flag}: ${(err as Error).message}`)
  }
}

/** A whole number within bounds, or a clear error naming the flag (never NaN). */
function intFlag(flag: string, raw: string, min: number, max: number): number {
  const n = Number(raw)
  if (!/^\d+$/.test(String(raw).trim()) || n < min || n > max) throw new Error(`${flag} must be a whole number from ${min} to ${max}, not ${JSON.stringify(raw)}`)
  return n
}

program
  .command('up')
  .description('start (or resume) a local cluster in the background: simulated hosts, Redis, the server; returns when it is ready')
  .option('--port <port>', 'apiserver port (0: any free port)', '6443')
  .option('--nodes <n>', 'simulated hosts (network namespace + dockerd + agent each)', '3')
  .option('--cluster-cidr <cidr>', 'the pod network (one /24 per node)', '10.244.0.0/16')
  .option('--pod-network <mode>', 'host-gw (routes via each host) or vxlan (an overlay)', 'host-gw')
  .option('--lan-cidr <cidr>', 'the /24 the simulated hosts share (default: a free 172.31.X.0/24)')
  .option('--demo', 'deploy the demo app (skiff/demo:local) once the nodes are Ready')
  .option('--ingress-nodes <pools>', 'ingress nodes per class, e.g. external=2,internal=1 (default: that, when there are 3+ nodes)')
  .option('--acme-directory <url>', 'ACME directory for the external ingress class (e.g. a local pebble)')
  .option('--acme-email <email>', 'ACME account contact')
  .option('--acme-ca-file <file>', "CA bundle to trust the ACME directory's own TLS certificate")
  .option('--node-monitor-grace-period <seconds>', 'a node silent this long is NotReady', '40')
  .option('--pod-eviction-timeout <seconds>', 'pods of a NotReady node are replaced after this', '60')
  .option('--heartbeat-ms <ms>', "agents' Lease renewal interval (LoadBalancer failover is judged from it)", '2000')
  .option('--ha', 'an HA control plane: 3 Redis under 3 sentinels and 2 servers (the second joined to the first), on this machine and the first two hosts (a new cluster only; needs --nodes 2 or more)')
  .action(async (o) => {
    const acme = o.acmeDirectory ? { directory: o.acmeDirectory as string, email: o.acmeEmail as string | undefined, caFile: o.acmeCaFile ? resolve(o.acmeCaFile as string) : undefined } : undefined
    if (o.podNetwork !== 'host-gw' && o.podNetwork !== 'vxlan') throw new Error(`--pod-network must be host-gw or vxlan, not ${JSON.stringify(o.podNetwork)}`)
    const given = (name: string) => program.commands.find((c) => c.name() === 'up')!.getOptionValueSource(name) === 'cli'
    const st = await up({
      stateDir: stateDir(), port: intFlag('--port', o.port, 0, 65535),
      nodes: given('nodes') ? intFlag('--nodes', o.nodes, 0, 80) : undefined,
      clusterCIDR: given('clusterCidr') ? o.clusterCidr : undefined,
      podNetwork: given('podNetwork') ? o.podNetwork : undefined,
      lanCIDR: o.lanCidr, ingress: o.ingressNodes ? parsePools(o.ingressNodes) : undefined, acme, ha: !!o.ha,
      timers: {
        nodeMonitorGracePeriodS: intFlag('--node-monitor-grace-period', o.nodeMonitorGracePeriod, 1, 3600),
        podEvictionTimeoutS: intFlag('--pod-eviction-timeout', o.podEvictionTimeout, 0, 3600),
        heartbeatMs: intFlag('--heartbeat-ms', o.heartbeatMs, 200, 60_000),
      },
    })
    const dir = st.stateDir
    let addresses = new Map<string, string[]>()
    if (st.agents.length) {
      const c = new ApiClient(readKubeconfig(join(dir, 'kubeconfig')))
      await get(c, resolveType('nodes'), [], { namespace: 'default', output: 'wide' }, out)
      addresses = await ingressAddresses(c, st.ingressPools ?? {})
      c.close()
    }
    for (const [cls, ips] of addresses) out(`ingress ${cls}: point the DNS names of ${cls} Ingress hosts at ${ips.join(', ')} (ports 80 and 443)`)
    if (o.demo) {
      await deployDemo(join(dir, 'kubeconfig'), out)
      const ext = addresses.get('external')?.[0]
      if (ext) out(`Through the external ingress: curl -H 'Host: demo.skiff.test' http://${ext}/   (explain it: npm run skiff -- route GET http://demo.skiff.test/)`)
    }
    out(`Skiff is running.
  apiserver:  ${st.server.url}
  dashboard:  ${st.server.url}/dashboard/ (log in with the token in the kubeconfig)
  hosts:      ${st.spec.hosts.map((h) => `${h.name} ${h.ip}`).join(', ') || 'none'} on ${st.spec.lan.cidr} (pod network ${st.spec.podNetwork})
  state:      ${dir} (logs in ${join(dir, 'logs')})
  kubeconfig: ${join(dir, 'kubeconfig')}

Use it with kubectl:
  export KUBECONFIG=${join(dir, 'kubeconfig')}
  kubectl get namespaces
or with skiff:
  npm run skiff -- get namespaces
Stop it with: npm run skiff -- stop (keeps everything; skiff up resumes it), or remove it with: npm run skiff -- down`)
  })

program
  .command('stop')
  .description('stop every process of the local cluster (supervisor, Redis, server, Engines, agents); the state stays, skiff up resumes it')
  .action(async () => {
    await stop({ stateDir: stateDir() })
  })

program
  .command('host')
  .description('simulate a machine dying or coming back: skiff host kill node-2, skiff host start node-2')
  .argument('<action>', 'kill or start')
  .argument('<node>', 'the simulated host (node name)')
  .action(async (action: string, node: string) => {
    if (action !== 'kill' && action !== 'start') throw new Error(`skiff host takes kill or start, not ${JSON.stringify(action)}`)
    await hostAction(stateDir(), node, action)
    out(`host ${node}: ${action === 'kill' ? 'killed (its agent, Engine and containers; its LAN leg is down)' : 'started'}`)
  })

program
  .command('supervise', { hidden: true })
  .description('the background supervisor of a local cluster (started by skiff up)')
  .action(async () => {
    const { Supervisor } = await import('./supervisor.ts')
    await new Supervisor(stateDir()).run()
  })

program
  .command('down')
  .description('stop the local cluster and remove everything it created: processes, hosts, the LAN, containers and the state')
  .action(async () => {
    await down({ stateDir: stateDir() })
  })

program
  .command('kubeconfig')
  .description('print the admin kubeconfig of the local cluster (works with the real kubectl); with several apiservers, a context for each')
  .action(async () => {
    const url = await localServerURL()
    // Every live apiserver (their identity Leases): kubectl uses one context at a time, so each gets one.
    const c = new ApiClient(parseKubeconfigText(kubeconfigFor(stateDir(), url)))
    const { liveApiservers, identityLabel, identityLabelValue } = await import('../controlplane/apiserver/identity.ts')
    const { leaseFreshByWallClock } = await import('../controlplane/api/routing-applied.ts')
    const leases = await c.list(lookupKind('coordination.k8s.io/v1', 'Lease')!, 'kube-system', { labelSelector: `${identityLabel}=${identityLabelValue}` }).catch(() => ({ items: [] }))
    c.close()
    // One look, no history to judge renewals by: renewTime against this machine's clock (a skewed clock adds or drops a context).
    process.stdout.write(kubeconfigFor(stateDir(), url, liveApiservers(leases.items, (l) => leaseFreshByWallClock(l, Date.now()))))
  })

const user = program.command('user').description('users with client certificates from the cluster CA')
user
  .command('add <name>')
  .description('print a kubeconfig for a new user (client certificate CN=<name>, O=each --group); no rights until a RoleBinding or ClusterRoleBinding names the user or a group')
  .option('--group <group>', 'a group of the user (repeat for more)', (v: string, prev: string[]) => [...prev, v], [] as string[])
  .option('--days <n>', 'how long the certificate is valid', '365')
  .action(async (name: string, o: { group: string[]; days: string }) => {
    const { addUser } = await import('./user.ts')
    const days = intFlag('--days', o.days, 1, 3650)
    process.stdout.write(await addUser({ stateDir: stateDir(), server: await localServerURL(), name, groups: o.group, days }))
  })

program
  .command('server')
  .description('run the control plane (apiserver on Redis, scheduler, controllers) in the foreground')
  .option('--bind-address <addr>', 'listen address', '0.0.0.0')
  .addOption(new Option('--host <addr>', 'old name of --bind-address').hideHelp())
  .option('--advertise-address <addr>', "the address agents and kubeconfigs use (default: this machine's primary address); the serving certificate names it")
  .option('--port <port>', 'listen port', '6443')
  .option('--redis-host <host>', 'Redis host', '127.0.0.1')
  .option('--redis-port <port>', 'Redis port', '6379')
  .addOption(new Option('--redis-password-file <file>', 'file holding the Redis password').makeOptionMandatory())
  .option('--redis-sentinels <list>', 'Redis Sentinel mode (HA): sentinels as host:port,host:port,... (then --redis-host/--redis-port are not used)')
  .option('--redis-master-name <name>', 'the Sentinel master group name', 'skiff')
  .option('--redis-sentinel-password-file <file>', "file holding the sentinels' password (default: the Redis password)")
  .option('--redis-min-replicas <n>', 'replicas that must confirm a write before it is acknowledged (default 1 with sentinels, 0 without)')
  .option('--forbidden-redis-cidrs <cidrs>', 'refuse a Redis (or replica, or sentinel) inside these ranges, e.g. the pod network', '')
  .option('--redis-data-dir <dir>', "a directory holding Redis data (its AOF), repeatable or comma-separated (every Redis of a Sentinel group on this machine): writes answer 503 while one has less than --redis-disk-reserve free, before Redis runs out of space (default: a Redis on loopback is asked for its dir)", (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((x) => x.trim()).filter(Boolean)])
  .option('--redis-disk-reserve <size>', 'free space under Redis below which writes are refused (bytes, or with Ki/Mi/Gi); 0 turns the guard off', '64Mi')
  .option('--join <url>', 'join the control plane of this running server (https://host:6443): receive its CA, tokens and encryption key, then serve the same store')
  .option('--token <token>', 'with --join: a server token from `skiff token create --server` on a running server')
  .option('--token-file <file>', 'with --join: a file holding that token (keeps it off the command line)')
  .option('--san <name...>', 'extra names/addresses for the serving certificate')
  .option('--cluster-cidr <cidr>', 'the pod network; each node gets a /24 of it', '10.244.0.0/16')
  .option('--node-monitor-grace-period <seconds>', 'a node silent this long is NotReady', '40')
  .option('--node-monitor-period <seconds>', 'how often the node lifecycle controller looks at the node Leases', '5')
  .option('--pod-eviction-timeout <seconds>', 'pods of a NotReady node are replaced after this', '60')
  .option('--scheduler-profile <profile>', 'default (least allocated) or bin-packing', 'default')
  .option('--load-balancer-pool <ranges...>', 'LoadBalancer addresses (CIDRs, a-b ranges, addresses)', ['10.112.0.0/24'])
  .option('--install', 'write and enable a systemd unit running this command (restart on failure, start at boot), then exit')
  .option('--systemd-dir <dir>', 'where --install writes the unit', '/etc/systemd/system')
  .option('--no-watch-cache', 'serve lists and the initial state of watches from Redis instead of the watch cache (kube-apiserver --watch-cache=false)')
  .action(async (o) => {
    if (o.install) {
      const { installUnit, withoutInstallFlags } = await import('./install.ts')
      const argv = withoutInstallFlags(process.argv.slice(2))
      const msg = await installUnit({
        name: 'skiff-server', description: 'Skiff server (apiserver, scheduler, controllers)', systemdDir: o.systemdDir,
        execStart: [process.execPath, fileURLToPath(new URL('./skiff.ts', import.meta.url)), '--state-dir', stateDir(), ...argv],
        workingDirectory: process.cwd(), after: ['redis-server.service'], stopTimeoutS: 30,
      })
      out(msg)
      return
    }
    const { startServer } = await import('../controlplane/server.ts')
    const { primaryAddress } = await import('../lib/host-address.ts')
    const logger = createLogger({ component: 'server' })
    const bind = (o.host as string | undefined) ?? (o.bindAddress as string)
    const advertise = (o.advertiseAddress as string | undefined) ?? (bind !== '0.0.0.0' ? bind : (await primaryAddress()) ?? '127.0.0.1')
    /** The advertised address at a port: what agents, kubeconfigs and the identity Lease use. */
    const urlAt = (port: number | string) => `https://${advertise.includes(':') ? `[${advertise}]` : advertise}:${port}`
    if (o.tokenFile) o.token = readFileSync(o.tokenFile, 'utf8').trim()
    if (!!o.join !== !!o.token) throw new Error('--join and --token (or --token-file) go together: the URL of a running server and a token from `skiff token create --server` there')
    const password = readFileSync(o.redisPasswordFile, 'utf8').trim()
    const sentinels = o.redisSentinels ? parseHostPorts('--redis-sentinels', o.redisSentinels) : undefined
    const running = await startServer({
      stateDir: stateDir(),
      redis: {
        host: o.redisHost, port: intFlag('--redis-port', o.redisPort, 1, 65535), password,
        ...(sentinels ? { sentinel: { sentinels, name: o.redisMasterName, password: o.redisSentinelPasswordFile ? readFileSync(o.redisSentinelPasswordFile, 'utf8').trim() : password } } : {}),
        ...(o.redisMinReplicas !== undefined ? { minReplicas: intFlag('--redis-min-replicas', o.redisMinReplicas, 0, 16) } : {}),
        forbiddenCIDRs: String(o.forbiddenRedisCidrs).split(',').map((x: string) => x.trim()).filter(Boolean),
        dataDirs: o.redisDataDir, diskReserveBytes: await byteSizeFlag('--redis-disk-reserve', o.redisDiskReserve),
      },
      join: o.join ? { server: o.join, token: o.token } : undefined,
      watchCache: o.watchCache,
      host: bind,
      port: intFlag('--port', o.port, 0, 65535),
      sans: [advertise, ...((o.san as string[] | undefined) ?? [])],
      advertiseURL: urlAt(intFlag('--port', o.port, 0, 65535)),
      logger,
      controllers: {
        clusterCIDR: o.clusterCidr,
        nodeMonitorGracePeriodMs: intFlag('--node-monitor-grace-period', o.nodeMonitorGracePeriod, 1, 3600) * 1000,
        nodeMonitorPeriodMs: intFlag('--node-monitor-period', o.nodeMonitorPeriod, 1, 3600) * 1000,
        podEvictionTimeoutMs: intFlag('--pod-eviction-timeout', o.podEvictionTimeout, 0, 3600) * 1000,
        loadBalancerPool: o.loadBalancerPool,
      },
      scheduler: { profile: o.schedulerProfile },
    })
    // Where this server is reached: `skiff kubeconfig` and `skiff token create` read it on this machine.
    const url = urlAt(new URL(running.url).port)
    writeFileSync(join(stateDir(), 'server.json'), JSON.stringify({ url, pid: process.pid }, null, 2) + '\n')
    logger.info({ url, bind }, 'server ready')
    const stop = async (sig: string) => {
      logger.info({ signal: sig }, 'stopping')
      await running.stop()
      process.exit(0)
    }
    process.on('SIGTERM', () => void stop('SIGTERM'))
    process.on('SIGINT', () => void stop('SIGINT'))
  })

program
  .command('apply')
  .description('create or update objects from manifests (files, folders, or - for stdin)')
  .requiredOption('-f, --filename <path...>', 'manifest file, folder, or -')
  .action(async (o) => {
    const manifests = loadManifests(o.filename, () => readFileSync(0, 'utf8'))
    const { client: c, namespace } = await client()
    const failures = await applyAll(c, manifests, namespace, out)
    c.close()
    if (failures) process.exitCode = 1
  })

program
  .command('get')
  .description('list objects: skiff get pods, skiff get svc web, skiff get deploy -o wide')
  .argument('<type>', 'resource type (pods, svc, deploy, ing, ...); type/name works too')
  .argument('[names...]', 'object names')
  .option('-o, --output <format>', 'wide | yaml | json | name')
  .option('-l, --selector <selector>', 'label selector')
  .option('-w, --watch', 'after listing, watch for changes')
  .option('-A, --all-namespaces', 'list across all namespaces')
  .action(async (type: string, names: string[], o) => {
    const [t, n] = type.split('/')
    const info = resolveType(t!)
    const { client: c, namespace } = await client()
    await get(c, info, n ? [n, ...names] : names, { namespace, allNamespaces: o.allNamespaces, output: o.output, selector: o.selector, watch: o.watch }, out)
    c.close()
  })

program
  .command('describe')
  .description('show one object in detail, with its events')
  .argument('<type>')
  .argument('[name]')
  .action(async (type: string, name: string | undefined) => {
    const [t, n] = type.split('/')
    const { client: c, namespace } = await client()
    await describe(c, resolveType(t!), namespace, (n ?? name)!, out)
    c.close()
  })

program
  .command('route')
  .description('explain where a request would go: which Ingress, rule, Service and endpoints, and why')
  .argument('<method>', 'HTTP method, e.g. GET')
  .argument('<url>', 'the request URL, e.g. http://shop.example.com/cart?x=1')
  .option('--class <name>', 'only this ingress class (default: every skiff.dev/ingress class)')
  .action(async (method: string, url: string, o) => {
    const { explainRequest } = await import('./route.ts')
    const { client: c } = await client()
    try {
      for (const line of await explainRequest(c, { method, url, className: o.class })) out(line)
    } finally {
      c.close()
    }
  })

program
  .command('logs')
  .description('logs of many pods at once, as stern does: skiff logs deploy/web -f, skiff logs \'^web-\' -c app, skiff logs -l app=web --since 10m')
  .argument('[query]', 'pod/NAME, deploy|sts|ds|rs|job|svc/NAME, or a regular expression on pod names (default: every pod)')
  .option('-l, --selector <selector>', 'label selector')
  .option('-A, --all-namespaces', 'pods of every namespace')
  .option('-c, --container <regex>', 'only containers whose names match')
  .option('-f, --follow', 'keep reading: new pods, restarted containers')
  .option('--since <duration>', 'only lines newer than this (30s, 10m, 1h)')
  .option('--tail <lines>', 'the last N lines of each container (-1: all)', (v) => Number(v))
  .option('-t, --timestamps', 'print each line\'s timestamp')
  .option('-o, --output <format>', 'default | raw | json', 'default')
  .option('--color <when>', 'auto | always | never', 'auto')
  .option('--previous-pods', 'also the logs of deleted and replaced pods the nodes keep (24 h by default), printed first, the pod shown as "NAME (deleted)"; needs get on nodes/proxy')
  .action(async (query: string | undefined, o) => {
    if (!['default', 'raw', 'json'].includes(o.output)) throw new Error(`-o ${o.output}: use default, raw or json`)
    if (!['auto', 'always', 'never'].includes(o.color)) throw new Error(`--color ${o.color}: use auto, always or never`)
    const { runLogs } = await import('./logs.ts')
    const { client: c, namespace } = await client()
    try {
      await runLogs(c, {
        query, namespace, selector: o.selector, allNamespaces: o.allNamespaces, container: o.container, follow: o.follow,
        since: o.since, tail: o.tail, timestamps: o.timestamps, output: o.output, previousPods: !!o.previousPods,
        colour: o.color === 'always' || (o.color === 'auto' && process.stdout.isTTY && !process.env.NO_COLOR),
      }, out, (line) => process.stderr.write(`${line}\n`))
    } finally {
      c.close()
    }
  })

program
  .command('service')
  .description('print every way to reach a Service from outside: NodePort, LoadBalancer, Ingress and Gateway URLs (like minikube service --url)')
  .argument('<name>', 'the Service')
  .option('--url', 'only the URLs, one a line')
  .action(async (name: string, o) => {
    const { showService } = await import('./service.ts')
    const { client: c, namespace } = await client()
    try {
      for (const line of await showService(c, namespace, name, { url: o.url })) out(line)
    } finally {
      c.close()
    }
  })

program
  .command('delete')
  .description('delete objects by type and name, or those in manifests (-f)')
  .argument('[type]')
  .argument('[names...]')
  .option('-f, --filename <path...>', 'manifest file, folder, or -')
  .action(async (type: string | undefined, names: string[], o) => {
    const { client: c, namespace } = await client()
    if (o.filename) {
      for (const m of loadManifests(o.filename, () => readFileSync(0, 'utf8')).reverse()) {
        const info = lookupKind(m.object.apiVersion!, m.object.kind!)
        if (!info) throw new Error(`${m.source}: unknown kind ${m.object.kind}`)
        out(await deleteNamed(c, info, m.object.metadata.namespace ?? namespace, m.object.metadata.name!))
      }
    } else {
      if (!type) throw new Error('say what to delete: skiff delete <type> <name>, or skiff delete -f <file>')
      const [t, n] = type.split('/')
      const info = resolveType(t!)
      for (const name of n ? [n, ...names] : names) out(await deleteNamed(c, info, namespace, name))
    }
    c.close()
  })

registerImagesCommand(program)
registerTokenCommand(program, client)
registerAgentCommand(program)

function explain(e: unknown): string {
  if (e instanceof ApiClientError) {
    const reason = e.reason ? `(${e.reason})` : `(HTTP ${e.status})`
    return `Error from server ${reason}: ${e.message}`
  }
  if (e instanceof ManifestError) return `error: ${e.message}`
  const err = e as NodeJS.ErrnoException
  if (err.code === 'ECONNREFUSED') return `error: cannot reach the apiserver (${err.message}); is the cluster up? try \`skiff up\``
  return `error: ${err.message}`
}

program.parseAsync(process.argv).catch((e) => {
  process.stderr.write(explain(e) + '\n')
  process.exit(1)
})

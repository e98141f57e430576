// Issue 5 end to end: a control plane with controllers, two nodes in the
// external ingress pool and one in the internal pool (each agent runs its
// class's controller with real worker processes on its InternalIP, ports 80
// and 443), echo Deployments, and real traffic from the host to the node
// addresses the test created: method routing to two Services, TLS from the
// cluster CA on the internal class with SNI and the default certificate,
// ACME with real Pebble on both external nodes including a renewal under
// traffic, a WebSocket kept open across changes, and bounded wrk runs that
// must fail no request while Ingresses change, while the backend rolls, and
// while one external controller stops.

import t from 'tap'
import { execFile } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { connect as netConnect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { eventually } from '../../lib/net.ts'
import { ensureImages } from '../../node/images/build.ts'
import { parseWrk } from '../../bench/harness.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { ingressIdentity, nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames, type TestNode } from '../harness/node.ts'
import { startPebble } from '../harness/pebble.ts'
import { httpRequest } from '../harness/http.ts'

const run = promisify(execFile)
const deploys = lookupResource('apps', 'v1', 'deployments')!
const services = lookupResource('', 'v1', 'services')!
const slices = lookupResource('discovery.k8s.io', 'v1', 'endpointslices')!
const ingresses = lookupResource('networking.k8s.io', 'v1', 'ingresses')!
const classes = lookupResource('networking.k8s.io', 'v1', 'ingressclasses')!
const secrets = lookupResource('', 'v1', 'secrets')!
const skiffCli = fileURLToPath(new URL('../../cli/skiff.ts', import.meta.url))

const http1 = httpRequest

/** Bytes as written (no client-side normalisation), the whole answer as text. */
function rawHttp(ip: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host: ip, port: 80 }, () => sock.write(text))
    let out = ''
    sock.setEncoding('utf8')
    sock.on('data', (d) => (out += d))
    sock.on('end', () => resolve(out))
    sock.on('error', reject)
    sock.setTimeout(10_000, () => sock.destroy(new Error('raw request timed out')))
  })
}

/** The certificate a node serves for a server name (or none), and whether it verifies against `ca`. */
function servedCert(ip: string, servername: string | undefined, ca?: string): Promise<{ cert: X509Certificate; authorized: boolean }> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: ip, port: 443, servername, ca, rejectUnauthorized: false, timeout: 10_000 }, () => {
      const raw = s.getPeerX509Certificate()
      const authorized = s.authorized
      s.end()
      raw ? resolve({ cert: raw, authorized }) : reject(new Error('no peer certificate'))
    })
    s.on('timeout', () => s.destroy(new Error('tls timeout')))
    s.on('error', reject)
  })
}

/** GET https://host/ through curl pinned to a node address, verified against a root: the issue's check. */
async function curlHttps(ip: string, host: string, caFile: string): Promise<{ code: number; body: string }> {
  const r = await run('curl', ['-sS', '--max-time', '10', '--cacert', caFile, '--resolve', `${host}:443:${ip}`, '-w', '\n%{http_code}', `https://${host}/`]).catch((e) => ({ stdout: `${e.stderr ?? e.message}\n0` }))
  const out = String(r.stdout)
  const i = out.lastIndexOf('\n')
  return { code: Number(out.slice(i + 1)), body: out.slice(0, i) }
}

function echo(name: string, replicas: number): KubeObject {
  return {
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 5,
          containers: [{
            name: 'echo', image: 'skiff/echo:local', ports: [{ name: 'http', containerPort: 8080 }],
            env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
            readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1 },
          }],
        },
      },
    },
  }
}

function ing(name: string, o: { cls: string; host: string; svc?: string; path?: string; methods?: string; tls?: string; annotations?: Record<string, string> }): KubeObject {
  const annotations: Record<string, string> = { ...(o.annotations ?? {}) }
  if (o.methods) annotations['skiff.dev/methods'] = o.methods
  return {
    apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name, annotations },
    spec: {
      ingressClassName: o.cls,
      ...(o.tls ? { tls: [{ hosts: [o.host], secretName: o.tls }] } : {}),
      rules: [{ host: o.host, http: { paths: [{ path: o.path ?? '/', pathType: 'Prefix', backend: { service: { name: o.svc ?? 'web', port: { name: 'http' } } } }] } }],
    },
  }
}

async function readyEndpoints(c: { client: any }, svc: string): Promise<number> {
  const items: KubeObject[] = (await c.client.list(slices, 'default', { labelSelector: `kubernetes.io/service-name=${svc}` })).items
  return items.flatMap((s) => s.endpoints ?? []).filter((e: any) => e.conditions?.ready).length
}

async function wrk(url: string, host: string, seconds: number): Promise<ReturnType<typeof parseWrk> & { text: string }> {
  const { stdout } = await run('wrk', ['-t1', '-c8', `-d${seconds}s`, '--timeout', '10s', '--latency', '-H', `Host: ${host}`, url], { timeout: (seconds + 30) * 1000 })
  return { ...parseWrk(stdout), text: stdout }
}

t.test('ingress end to end', async (t) => {
  await ensureImages({ progress: null })
  await run('wrk', ['--version']).catch((e: any) => {
    if (e.code === 'ENOENT') throw new Error('wrk not found: run scripts/setup.sh (apt-get install wrk)')
  })
  const pebble = await startPebble(t, { httpPort: 80, addresses: [], certificateValidityPeriodSeconds: 60 })
  const net = await pickClusterCIDR()
  const names = testNodeNames(3, 'ie')
  const pools = ['external', 'external', 'internal']
  const c = await startTestCluster(t, {
    identities: [...nodeIdentities(names), ingressIdentity('external'), ingressIdentity('internal')],
    controllers: { clusterCIDR: net.clusterCIDR },
  })
  await c.client.patch(classes, undefined, 'external', { metadata: { annotations: { 'skiff.dev/acme-directory': pebble.directoryUrl, 'skiff.dev/acme-email': 'ops@example.test' } } }, 'application/merge-patch+json')
  const nodes: TestNode[] = []
  for (const [i, name] of names.entries()) {
    nodes.push(await startTestNode(t, c, {
      name, clusterCIDR: net.clusterCIDR, labels: { 'skiff.dev/ingress-pool': pools[i]! },
      serviceProxy: { backend: 'none' }, dnsPort: 0,
      ingress: { drainMs: 5_000, acme: { caBundlePem: pebble.caBundlePem, renewCheckMs: 1_000, challengeDelayMs: 1_500, backoffBaseMs: 2_000 } },
    }))
  }
  const [ext1, ext2, int1] = nodes.map((n) => n.agent.network!.gateway) as [string, string, string]
  pebble.setAddresses([ext1, ext2])

  await c.client.create(deploys, 'default', echo('web', 2))
  await c.client.create(deploys, 'default', echo('api', 1))
  for (const svc of ['web', 'api']) {
    await c.client.create(services, 'default', { metadata: { name: svc }, spec: { selector: { app: svc }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } })
  }
  await eventually(async () => (await readyEndpoints(c, 'web')) === 2 && (await readyEndpoints(c, 'api')) === 1, { timeout: 120_000, what: 'ready web and api endpoints' })

  await t.test('method routing: GET and POST on one path reach different Services, PUT gets 405', async (t) => {
    await c.client.create(ingresses, 'default', ing('items-read', { cls: 'external', host: 'methods.test', path: '/items', methods: 'GET,HEAD' }))
    await c.client.create(ingresses, 'default', ing('items-write', { cls: 'external', host: 'methods.test', path: '/items', svc: 'api', methods: 'POST' }))
    const got = await eventually(async () => {
      const a = await http1({ ip: ext1, host: 'methods.test', path: '/items/1' })
      return a.status === 200 ? a : undefined
    }, { timeout: 30_000, what: 'GET /items/1 through the ingress' })
    t.match(got.json, { pod: /^web-/, path: '/items/1' }, 'GET reaches web')
    const posted = await eventually(async () => {
      const a = await http1({ ip: ext2, host: 'methods.test', path: '/items/1', method: 'POST' })
      return a.status === 200 ? a : undefined
    }, { timeout: 30_000, what: 'POST /items/1 through the ingress' })
    t.match(posted.json, { pod: /^api-/, method: 'POST' }, 'POST reaches api')
    const put = await http1({ ip: ext1, host: 'methods.test', path: '/items/1', method: 'PUT' })
    t.equal(put.status, 405, 'PUT is not allowed')
    t.equal(put.headers.allow, 'GET, HEAD, POST', 'Allow lists both Ingresses\' methods')
    const explained = await run(process.execPath, [skiffCli, '--kubeconfig', c.kubeconfig, 'route', 'POST', 'http://methods.test/items/1', '--class', 'external'])
    t.match(explained.stdout, /result: default\/items-write rule 0 path 0 \(Prefix \/items\) -> default\/service api port http/, 'skiff route names the Ingress, rule and Service')
    t.match(explained.stdout, /endpoints \(round-robin\): \d+\.\d+\.\d+\.\d+:8080 \(api-/, 'skiff route lists the endpoints')
    t.match(explained.stdout, new RegExp(`served on ${[ext1, ext2].sort().join(', ').replaceAll('.', '\\.')}`), 'and where the class is served')
    const listed = await eventually(async () => {
      const r = await c.kubectl(['get', 'ingress', 'items-read', 'items-write'], { allowFail: true })
      return r.stdout.split('\n').filter((l) => l.includes([ext1, ext2].sort().join(','))).length === 2 ? r.stdout : undefined
    }, { timeout: 30_000, what: 'kubectl get ingress showing both external addresses' })
    t.match(listed, /items-read\s+external\s+methods\.test\s+/, 'kubectl shows the class and host, and the addresses of the external pool')
  })

  await t.test('a denied /admin is never reached through another spelling of the path', async (t) => {
    // /admin is only open to 192.0.2.0/24 (not this host); everything else goes to web, which echoes the path it got.
    await c.client.create(ingresses, 'default', ing('site', { cls: 'external', host: 'site.test' }))
    await c.client.create(ingresses, 'default', { ...ing('site-admin', { cls: 'external', host: 'site.test', path: '/admin', annotations: { 'skiff.dev/allow-source-ranges': '192.0.2.0/24' } }) })
    await eventually(async () => (await http1({ ip: ext1, host: 'site.test', path: '/admin' })).status === 403, { timeout: 30_000, what: '/admin denied' })
    for (const p of ['/admin', '/public/../admin', '/%61dmin', '//admin', '/./admin/', '/public/%2e%2e/admin']) {
      const r = await rawHttp(ext1, `GET ${p} HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n`)
      t.match(r, /^HTTP\/1\.1 403 /, `${p} is denied like /admin`)
      t.notMatch(r, /"path":"\/admin/, `${p} never reached a backend as /admin`)
    }
    const other = await rawHttp(ext1, 'GET /public/x HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n')
    t.match(other, /"path":"\/public\/x"/, 'other paths reach web, with the path as normalised')
    const bad = await rawHttp(ext1, 'GET /%2e%2e%2fadmin HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n')
    t.match(bad, /^HTTP\/1\.1 400 /, 'an encoded slash is a 400')
  })

  await t.test('TLS on the internal class: certificates from the cluster CA per host, default certificate for unknown SNI, 308 from HTTP', async (t) => {
    await c.client.create(ingresses, 'default', ing('tls-a', { cls: 'internal', host: 'a.internal.test', tls: 'a-tls' }))
    await c.client.create(ingresses, 'default', ing('tls-b', { cls: 'internal', host: 'b.internal.test', tls: 'b-tls' }))
    for (const host of ['a.internal.test', 'b.internal.test']) {
      const served = await eventually(async () => {
        const s = await servedCert(int1, host, c.caPem).catch(() => undefined)
        return s?.authorized && s.cert.checkHost(host) ? s : undefined
      }, { timeout: 60_000, what: `a cluster-CA certificate for ${host} on the internal node` })
      t.ok(served.cert.checkIssued(new X509Certificate(c.caPem)), `${host}: issued by the cluster CA`)
      t.notOk(served.cert.checkHost(host === 'a.internal.test' ? 'b.internal.test' : 'a.internal.test'), `${host}: its own certificate`)
    }
    const unknown = await servedCert(int1, 'unknown.internal.test', c.caPem)
    t.match(unknown.cert.subject, /Skiff Ingress Default Certificate/, 'unknown SNI gets the default certificate')
    // (Not `authorized`: that also checks the name, which the default certificate cannot match.)
    t.ok(unknown.cert.checkIssued(new X509Certificate(c.caPem)) && unknown.cert.verify(new X509Certificate(c.caPem).publicKey), 'the default certificate is issued by the cluster CA')
    const redirect = await http1({ ip: int1, host: 'a.internal.test', path: '/x?y=1' })
    t.equal(redirect.status, 308)
    t.equal(redirect.headers.location, 'https://a.internal.test/x?y=1')
    t.equal((await http1({ ip: ext1, host: 'a.internal.test' })).status, 404, 'an internal Ingress is not served on an external node')
  })

  await t.test('ACME with Pebble: issued, served by both external nodes, renewed under traffic without a failed request', async (t) => {
    const { writeFile, mkdtemp, rm } = await import('node:fs/promises')
    const { join } = await import('node:path')
    const { tmpdir } = await import('node:os')
    const dir = await mkdtemp(join(tmpdir(), 'skiff-acme-e2e-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const root = join(dir, 'pebble-root.pem')
    await writeFile(root, pebble.rootPem)
    await c.client.create(ingresses, 'default', ing('shop', { cls: 'external', host: 'shop.example.test', tls: 'shop-tls' }))
    const serialOf = async () => {
      const s = await c.client.get(secrets, 'default', 'shop-tls').catch(() => undefined)
      const pem = s?.data?.['tls.crt'] ? Buffer.from(s.data['tls.crt'], 'base64').toString() : undefined
      return pem ? new X509Certificate(pem).serialNumber : undefined
    }
    const first = await eventually(serialOf, { timeout: 90_000, interval: 500, what: 'the ACME certificate in Secret shop-tls' })
    for (const ip of [ext1, ext2]) {
      const served = await eventually(async () => {
        const r = await curlHttps(ip, 'shop.example.test', root)
        return r.code === 200 ? r : undefined
      }, { timeout: 30_000, what: `https://shop.example.test/ on ${ip} verified against Pebble's root` })
      t.match(JSON.parse(served.body), { pod: /^web-/ }, `${ip} serves the ACME certificate (curl verifies it against Pebble's root)`)
      t.equal((await servedCert(ip, 'shop.example.test')).cert.serialNumber, first, `${ip} serves the issued certificate`)
    }
    // Renewal starts when a third of the 60 s lifetime remains: 20 s for the order, its challenge and the Secret
    // reaching every worker (a 36 s lifetime left 12 s; a loaded CI run had 4 of 84 requests fail during the
    // renewal). Keep requesting over new TLS connections until it lands.
    let failures = 0
    let requests = 0
    const why: string[] = []
    const deadline = Date.now() + 90_000
    let renewed: string | undefined
    while (Date.now() < deadline && !renewed) {
      for (const ip of [ext1, ext2]) {
        const r = await curlHttps(ip, 'shop.example.test', root)
        requests++
        if (r.code !== 200) {
          failures++
          why.push(`${ip} ${new Date().toISOString().slice(11, 23)}: ${r.code} ${r.body.trim().slice(0, 160)}`)
        }
      }
      const now = await serialOf()
      if (now && now !== first) renewed = now
    }
    t.ok(renewed, 'the certificate was renewed')
    t.ok(requests > 10, `requests kept flowing during renewal (${requests})`)
    t.equal(failures, 0, `no request failed across the renewal${why.length ? ` (${why.join('; ')})` : ''}`)
    for (const ip of [ext1, ext2]) {
      await eventually(async () => (await servedCert(ip, 'shop.example.test')).cert.serialNumber === renewed, { timeout: 30_000, what: `${ip} serving the renewed certificate` })
    }
    t.pass('both external nodes serve the renewed certificate')
  })

  await t.test('a WebSocket through the ingress stays open across an unrelated Ingress change and an endpoint change', async (t) => {
    await c.client.create(ingresses, 'default', ing('ws', { cls: 'external', host: 'ws.test' }))
    await eventually(async () => (await http1({ ip: ext1, host: 'ws.test' })).status === 200, { timeout: 30_000, what: 'ws.test served' })
    const ws = new WebSocket(`ws://${ext1}/ws`, { headers: { host: 'ws.test' } })
    t.teardown(() => ws.terminate())
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
    let closed = false
    ws.on('close', () => (closed = true))
    const roundTrip = (msg: string) => new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no echo of ${msg}`)), 10_000)
      ws.once('message', (d) => { clearTimeout(timer); resolve(String(d)) })
      ws.send(msg)
    })
    t.equal(await roundTrip('before'), 'before')
    await c.client.create(ingresses, 'default', ing('unrelated', { cls: 'external', host: 'unrelated.test' }))
    await eventually(async () => (await http1({ ip: ext1, host: 'unrelated.test' })).status === 200, { timeout: 30_000, what: 'the unrelated Ingress served' })
    t.equal(await roundTrip('after an Ingress change'), 'after an Ingress change')
    await c.client.patch(deploys, 'default', 'web', { spec: { replicas: 3 } }, 'application/merge-patch+json')
    await eventually(async () => (await readyEndpoints(c, 'web')) === 3, { timeout: 90_000, what: 'a third web endpoint' })
    await eventually(async () => /\[3\/3 ready\]/.test(nodes[0]!.agent.ingress!.debugText()), { timeout: 30_000, what: 'the ingress table with 3 web endpoints' })
    t.equal(await roundTrip('after an endpoint change'), 'after an endpoint change')
    t.notOk(closed, 'the WebSocket never closed')
  })

  await t.test('under wrk load: Ingress changes, a rolling update and a stopping controller fail no request', async (t) => {
    await c.client.create(ingresses, 'default', ing('load', { cls: 'external', host: 'load.test' }))
    await eventually(async () => (await http1({ ip: ext2, host: 'load.test' })).status === 200, { timeout: 30_000, what: 'load.test served' })

    const changes = (async () => {
      for (let i = 0; i < 8; i++) {
        await c.client.create(ingresses, 'default', ing(`churn-${i}`, { cls: 'external', host: `churn-${i}.test` }))
        await c.client.patch(ingresses, 'default', 'load', { metadata: { annotations: { 'skiff.dev/proxy-read-timeout': `${30 + i}s` } } }, 'application/merge-patch+json')
        if (i > 0) await c.client.delete(ingresses, 'default', `churn-${i - 1}`)
      }
    })()
    const churn = await wrk(`http://${ext2}/`, 'load.test', 6)
    await changes
    t.ok(churn.rps > 0 && churn.errors === 0, `Ingress changes under load: ${churn.rps.toFixed(0)} req/s, ${churn.errors} failed`)

    const web = await c.client.get(deploys, 'default', 'web')
    const rollout = (async () => {
      await c.client.patch(deploys, 'default', 'web', { spec: { template: { metadata: { annotations: { rollout: '2' } } } } }, 'application/merge-patch+json')
      await eventually(async () => {
        const d = await c.client.get(deploys, 'default', 'web')
        return d.status?.observedGeneration > (web.metadata.generation ?? 0) && d.status?.updatedReplicas === 3 && d.status?.readyReplicas === 3 && (d.status?.replicas ?? 0) === 3
      }, { timeout: 90_000, interval: 500, what: 'the rolling update of web to finish' })
    })()
    const rolling = await Promise.all([wrk(`http://${ext2}/`, 'load.test', 25), rollout]).then(([r]) => r)
    t.ok(rolling.rps > 0, `the rolling update ran under load (${rolling.rps.toFixed(0)} req/s)`)
    t.equal(rolling.errors, 0, `a rolling update of the backend fails no request:\n${rolling.errors ? rolling.text : ''}`)

    const stop = (async () => {
      await new Promise((r) => setTimeout(r, 1_000))
      await nodes[0]!.agent.stop()
    })()
    const during = await wrk(`http://${ext2}/`, 'load.test', 5)
    await stop
    t.equal(during.errors, 0, `the other external node serves while one stops (${during.rps.toFixed(0)} req/s)`)
    await t.rejects(http1({ ip: ext1, host: 'load.test' }), 'the stopped controller no longer listens')
  })
})

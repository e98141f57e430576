// A real ACME server for tests: Debian's `pebble` (2.4) on free loopback
// ports, with a tiny UDP DNS server of our own as its resolver (`-dnsserver`)
// that answers every A query with the addresses the test gives, so HTTP-01
// validation connects to the test's ingress on 127.0.0.1:<httpPort>.
//
// Pebble needs a listener certificate: we make a throwaway CA (certs/ca.ts)
// and a serving certificate for localhost/127.0.0.1; `caBundlePem` is that CA,
// which the ACME client must trust. Issued certificates chain to Pebble's own
// root, regenerated at every start and fetched from the management interface
// (`/roots/0`) as `rootPem`.
//
// Environment: PEBBLE_VA_NOSLEEP=1 (no random validation delays),
// PEBBLE_WFE_NONCEREJECT=0 (no deliberate badNonce), PEBBLE_AUTHZREUSE=0 (every
// order validates again). Certificate lifetime: pebble 2.4 reads the config
// key `certificateValidityPeriod` (seconds; default 5 years); there are no
// profiles in this version.

import { spawn, type ChildProcess } from 'node:child_process'
import { createSocket, type Socket } from 'node:dgram'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import dnsPacket from 'dns-packet'
import { issueServingCert, loadOrCreateCA } from '../../certs/ca.ts'
import { eventually, freePort } from '../../lib/net.ts'

export interface PebbleOptions {
  /** The port Pebble connects to for HTTP-01 (where the test's ingress listens). */
  httpPort: number
  /** A answers for every name (default 127.0.0.1). */
  addresses?: string[]
  /** Lifetime of issued certificates in seconds (default: Pebble's 5 years). */
  certificateValidityPeriodSeconds?: number
}

export interface PebbleHandle {
  directoryUrl: string
  /** Trust for the directory's own TLS (the throwaway CA of Pebble's listener certificate). */
  caBundlePem: string
  /** Pebble's issuing root (PEM): what served certificates chain to. */
  rootPem: string
  managementUrl: string
  /** The pebble process, for faults that stop it by pid (then `stop()` only waits for its exit). */
  pid: number
  /** Change the A answers of the test resolver. */
  setAddresses(addresses: string[]): void
  /** Stop Pebble (the resolver stays up); idempotent. */
  stop(): Promise<void>
}

interface Teardown {
  teardown(fn: () => unknown): void
}

/** A UDP resolver answering A queries for any name with `addresses()`; AAAA and others get an empty NOERROR. */
async function startResolver(addresses: () => string[]): Promise<{ socket: Socket; port: number }> {
  const socket = createSocket('udp4')
  socket.on('message', (msg, rinfo) => {
    let q: dnsPacket.Packet
    try {
      q = dnsPacket.decode(msg)
    } catch {
      return
    }
    const question = q.questions?.[0]
    const answers = question?.type === 'A' ? addresses().map((data) => ({ type: 'A' as const, name: question.name, ttl: 1, class: 'IN' as const, data })) : []
    const reply = dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE, questions: q.questions, answers })
    socket.send(reply, rinfo.port, rinfo.address)
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(0, '127.0.0.1', () => resolve())
  })
  return { socket, port: socket.address().port }
}

function httpsGet(url: string, caPem: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca: caPem, timeout: 5000 }, (res) => {
      let body = ''
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}

export async function startPebble(t: Teardown, opts: PebbleOptions): Promise<PebbleHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-pebble-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  let addresses = opts.addresses ?? ['127.0.0.1']
  const resolver = await startResolver(() => addresses)
  t.teardown(() => new Promise<void>((r) => resolver.socket.close(() => r())))

  const ca = await loadOrCreateCA(join(dir, 'listener-ca'))
  const listener = issueServingCert(ca, { commonName: 'pebble', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days: 2 })
  await writeFile(join(dir, 'cert.pem'), listener.certPem)
  await writeFile(join(dir, 'key.pem'), listener.keyPem, { mode: 0o600 })
  const [acmePort, mgmtPort] = [await freePort(), await freePort()]
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${acmePort}`,
      managementListenAddress: `127.0.0.1:${mgmtPort}`,
      certificate: join(dir, 'cert.pem'),
      privateKey: join(dir, 'key.pem'),
      httpPort: opts.httpPort,
      // TLS-ALPN-01 is not used; still a port of ours so Pebble never dials elsewhere.
      tlsPort: opts.httpPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
      ...(opts.certificateValidityPeriodSeconds ? { certificateValidityPeriod: opts.certificateValidityPeriodSeconds } : {}),
    },
  }
  await writeFile(join(dir, 'pebble-config.json'), JSON.stringify(config, null, 2))

  let output = ''
  const child: ChildProcess = spawn('pebble', ['-config', join(dir, 'pebble-config.json'), '-dnsserver', `127.0.0.1:${resolver.port}`], {
    cwd: dir,
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout!.on('data', (c) => (output = (output + c).slice(-8000)))
  child.stderr!.on('data', (c) => (output = (output + c).slice(-8000)))
  const spawnFailed = new Promise<never>((_, reject) => child.on('error', (e) => reject(new Error(`cannot run pebble (apt-get install pebble): ${e.message}`))))
  spawnFailed.catch(() => {})
  let exited = false
  const exit = new Promise<void>((r) => child.on('exit', () => ((exited = true), r())))
  const stop = async () => {
    if (!exited) child.kill('SIGKILL')
    await exit
  }
  t.teardown(stop)

  const directoryUrl = `https://127.0.0.1:${acmePort}/dir`
  const managementUrl = `https://127.0.0.1:${mgmtPort}`
  await Promise.race([
    spawnFailed,
    eventually(async () => !exited && (await httpsGet(directoryUrl, ca.certPem)).status === 200, { timeout: 20_000, what: 'pebble directory' }).catch((e) => {
      throw new Error(`${(e as Error).message}\npebble output:\n${output}`)
    }),
  ])
  const root = await httpsGet(`${managementUrl}/roots/0`, ca.certPem)
  if (root.status !== 200) throw new Error(`pebble /roots/0 answered ${root.status}`)
  return {
    directoryUrl,
    caBundlePem: ca.certPem,
    rootPem: root.body,
    managementUrl,
    pid: child.pid!,
    setAddresses(a) {
      addresses = a
    },
    stop,
  }
}

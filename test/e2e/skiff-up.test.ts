// `skiff up --nodes 3 --demo` as a user runs it (what `npm start` does, on
// its own pod network): the nodes become Ready, two external ingress nodes
// and one internal one are printed with their addresses, the demo runs and
// answers on its pod IP and through the external ingress nodes, and
// `skiff down` leaves no process, container, network or rule.

import t from 'tap'
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { processMatches, readState } from '../../cli/cluster.ts'
import { docker, pickClusterCIDR } from '../harness/node.ts'
import { runKubectl } from '../harness/cluster.ts'

const skiff = fileURLToPath(new URL('../../cli/skiff.ts', import.meta.url))

function run(stateDir: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [skiff, '--state-dir', stateDir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))
  })
}

t.test('skiff up --nodes 3 --demo, then down', async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'skiff-up-nodes-'))
  t.teardown(async () => {
    await run(stateDir, ['down'])
    rmSync(stateDir, { recursive: true, force: true })
  })
  const { clusterCIDR } = await pickClusterCIDR()
  const up = await run(stateDir, ['up', '--port', '0', '--nodes', '3', '--cluster-cidr', clusterCIDR, '--demo'])
  t.equal(up.code, 0, up.stderr)
  t.match(up.stderr, /node node-1 is Ready/)
  t.match(up.stdout, /node-1\s+Ready/)
  t.match(up.stdout, /The demo runs:/)
  const st = readState(stateDir)!
  t.equal(st.agents.length, 3)
  const ext = /^ingress external: point the DNS names of external Ingress hosts at (\S+), (\S+) \(ports 80 and 443\)$/m.exec(up.stdout)
  const int = /^ingress internal: point the DNS names of internal Ingress hosts at (\S+) \(ports 80 and 443\)$/m.exec(up.stdout)
  t.ok(ext && int, `two external and one internal ingress address printed:\n${up.stdout}`)

  const cache = mkdtempSync(join(tmpdir(), 'skiff-up-kubectl-'))
  t.teardown(() => rmSync(cache, { recursive: true, force: true }))
  const pods = await runKubectl(join(stateDir, 'kubeconfig'), cache, ['get', 'pods', '-n', 'demo', '-o', 'wide'])
  const rows = pods.stdout.trim().split('\n').slice(1)
  t.equal(rows.length, 3)
  t.ok(rows.every((r) => /1\/1\s+Running/.test(r)), 'three demo pods Running and Ready')
  const ip = rows[0]!.trim().split(/\s+/)[5]!
  const page = execFileSync('curl', ['-s', '--max-time', '5', `http://${ip}:8080/`]).toString()
  t.match(page, /demo/i, 'the demo page answers on its pod IP')
  for (const addr of [ext?.[1], ext?.[2]]) {
    const viaIngress = execFileSync('curl', ['-s', '--fail', '--retry', '15', '--retry-all-errors', '--retry-delay', '1', '--max-time', '5', '-H', 'Host: demo.skiff.test', `http://${addr}/`]).toString()
    t.match(viaIngress, /demo/i, `the demo answers through the external ingress node ${addr}`)
  }
  const internal = execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', '-H', 'Host: demo.skiff.test', `http://${int?.[1]}/`]).toString()
  t.equal(internal, '404', 'the external demo Ingress is not served on the internal node')
  const route = await run(stateDir, ['route', 'GET', 'http://demo.skiff.test/'])
  t.match(route.stdout, /result: demo\/demo rule 0 path 0 \(Prefix \/\) -> demo\/service demo port http/, 'skiff route explains the demo route')

  const down = await run(stateDir, ['down'])
  t.equal(down.code, 0)
  for (const a of st.agents) t.notOk(processMatches(a.pid, 'skiff.ts'), `agent ${a.name} stopped`)
  t.notOk(processMatches(st.server.pid, 'skiff.ts'), 'server stopped')
  for (const a of st.agents) {
    const left = await docker.listContainers({ all: true, filters: { label: [`skiff.node=${a.name}`] } })
    t.equal(left.length, 0, `no containers of ${a.name} left`)
  }
  const nets = (await docker.listNetworks()).filter((n) => st.agents.some((a) => n.Name === `skiff-${a.name}`))
  t.equal(nets.length, 0, 'no node networks left')
  const rules = execFileSync('iptables', ['-S', 'DOCKER-USER']).toString()
  t.notMatch(rules, /skiff:node-/, 'no DOCKER-USER rules left')
})

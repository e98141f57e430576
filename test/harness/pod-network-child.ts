// Runs one node's PodNetwork in the network namespace it was started in
// (`nsenter --net=/run/netns/<host> node pod-network-child.ts`), driven by
// JSON lines on stdin, answering one JSON line each on stdout:
//   {"op":"start","options":{...PodNetworkOptions but logger/registry}} -> {"ok":true,"result":{mtu,annotations,underlay}}
//   {"op":"update","nodes":[Node, ...]}                                 -> {"ok":true,"status":{...}}
//   {"op":"status"}                                                     -> {"ok":true,"status","debug","metrics"}
//   {"op":"stop","cleanup":true}                                        -> {"ok":true}, then exit
// Logs (pino JSON) go to stderr. Stdin closing stops it without cleanup.

import { createInterface } from 'node:readline'
import { createLogger } from '../../lib/log.ts'
import { createRegistry } from '../../lib/metrics.ts'
import { PodNetwork } from '../../node/pod-network/pod-network.ts'

const logger = createLogger({ destination: 2, level: process.env.SKIFF_TEST_LOG ?? 'info' })
const registry = createRegistry()
let net: PodNetwork | undefined
const reply = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`)

const rl = createInterface({ input: process.stdin })
rl.on('line', async (line) => {
  let msg: any
  try {
    msg = JSON.parse(line)
    if (msg.op === 'start') {
      net = new PodNetwork({ ...msg.options, logger, registry })
      reply({ ok: true, result: await net.start() })
    } else if (msg.op === 'update') {
      reply({ ok: true, status: await net!.update(msg.nodes) })
    } else if (msg.op === 'status') {
      reply({ ok: true, status: net!.status(), debug: net!.debugText(), metrics: await registry.metrics() })
    } else if (msg.op === 'stop') {
      await net?.stop({ cleanup: !!msg.cleanup })
      reply({ ok: true })
      process.exit(0)
    } else throw new Error(`unknown op ${msg.op}`)
  } catch (e) {
    reply({ ok: false, error: (e as Error).message })
  }
})
rl.on('close', () => void net?.stop().finally(() => process.exit(0)))

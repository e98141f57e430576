// The overlay self-check (vxlan): one TCP connection from this host to a
// peer's podCIDR network address (the address on the peer's skiff.1), port
// 1. The peer's kernel answers (RST, or SYN-ACK if something listens), and
// the answer comes back through the peer's overlay entries for this node: a
// TCP round trip across the overlay both ways, with the checksum offload the
// pods' traffic gets. No answer means UDP 8472 does not get through between
// the hosts, or TCP is dropped on the way (the VXLAN checksum bug class).

import { connect } from 'node:net'

export const probePort = 1

/** undefined when the peer answered (connected or refused); else what went wrong. */
export function tcpProbe(ip: string, o: { port?: number; timeoutMs?: number } = {}): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = connect({ host: ip, port: o.port ?? probePort })
    const done = (v: string | undefined) => {
      clearTimeout(timer)
      s.destroy()
      resolve(v)
    }
    const timer = setTimeout(() => done(`no answer in ${o.timeoutMs ?? 2_000} ms`), o.timeoutMs ?? 2_000)
    s.on('connect', () => done(undefined))
    s.on('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' ? undefined : e.message))
  })
}

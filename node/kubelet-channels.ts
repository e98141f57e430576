// The Kubernetes channel protocols over WebSocket (exec, attach and the
// client libraries' port-forward), as the kubelet's wsstream speaks them.
// Every message is one channel's data: in the binary protocols the first
// byte is the channel number; in the base64 ones (text messages) the first
// character is the channel as an ASCII digit and the rest is the data in
// standard base64. What each protocol version adds:
//
//   channel.k8s.io, base64.channel.k8s.io   v1: the status channel (3) carries only a failure, as plain text
//   v2.channel.k8s.io                      as v1 (SPDY's v2 only changed stream setup), no resize
//   v3.channel.k8s.io                      as v2 plus the resize channel (4)
//   v4.channel.k8s.io, v4.base64...        the status channel carries a JSON metav1.Status, success
//                                          included, with the exit code (NonZeroExitCode / ExitCode cause)
//   v5.channel.k8s.io                      as v4 plus the close signal: [255, ch] half-closes channel ch
//
// The kubelet serves channel.k8s.io, base64.channel.k8s.io, v4.channel.k8s.io,
// v4.base64.channel.k8s.io and v5.channel.k8s.io over WebSocket (v2 and v3 only
// over SPDY); Skiff also takes v2/v3 over WebSocket with their SPDY meaning,
// since client libraries offer them. The resize channel is read for
// channel.k8s.io too, as the kubelet's WebSocket server does. A request that
// offers no subprotocol gets channel.k8s.io's binary framing, as there.

export interface ChannelProtocol {
  /** The Sec-WebSocket-Protocol answered ('' when the client offered none). */
  name: string
  base64: boolean
  /** 1 to 5: what the status channel carries, whether resize and the close signal exist. */
  version: number
}

const table: ChannelProtocol[] = [
  { name: 'v5.channel.k8s.io', base64: false, version: 5 },
  { name: 'v4.channel.k8s.io', base64: false, version: 4 },
  { name: 'v4.base64.channel.k8s.io', base64: true, version: 4 },
  { name: 'v3.channel.k8s.io', base64: false, version: 3 },
  { name: 'v2.channel.k8s.io', base64: false, version: 2 },
  { name: 'channel.k8s.io', base64: false, version: 1 },
  { name: 'base64.channel.k8s.io', base64: true, version: 1 },
]

export const remoteCommandProtocols = table.map((p) => p.name)
/** Port-forward over WebSocket: the kubelet serves the v4 protocols only (and none offered). */
export const portForwardProtocols = ['v4.channel.k8s.io', 'v4.base64.channel.k8s.io']

export const channel = { stdin: 0, stdout: 1, stderr: 2, status: 3, resize: 4, close: 255 } as const

/**
 * The protocol the kubelet picks: the first one in the client's offer that it
 * serves (the client's order, not the server's), or binary channel.k8s.io
 * framing when nothing was offered. undefined: none of the offered ones. Pure.
 */
export function pickProtocol(offered: string | string[] | undefined, supported: readonly string[] = remoteCommandProtocols): ChannelProtocol | undefined {
  const list = (Array.isArray(offered) ? offered.join(',') : (offered ?? '')).split(',').map((p) => p.trim()).filter(Boolean)
  if (list.length === 0) return { name: '', base64: false, version: 1 }
  for (const name of list) {
    if (supported.includes(name)) return table.find((p) => p.name === name)
  }
  return undefined
}

export const hasResize = (p: ChannelProtocol) => p.version !== 2
export const hasCloseSignal = (p: ChannelProtocol) => p.version >= 5
export const hasJsonStatus = (p: ChannelProtocol) => p.version >= 4

/** One outgoing message on a channel: binary, or text in the base64 protocols. Pure. */
export function encodeChannel(p: ChannelProtocol, ch: number, data: Buffer | string): Buffer | string {
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data)
  if (p.base64) return String.fromCharCode(48 + ch) + bytes.toString('base64')
  return Buffer.concat([Buffer.from([ch]), bytes])
}

/** An incoming message as channel and data; undefined for an empty or undecodable one (dropped, as the kubelet does). Pure. */
export function decodeChannel(p: ChannelProtocol, msg: Buffer): { ch: number; data: Buffer } | undefined {
  if (msg.length === 0) return undefined
  if (hasCloseSignal(p) && msg[0] === channel.close) return { ch: channel.close, data: msg.subarray(1) }
  if (!p.base64) return { ch: msg[0]!, data: msg.subarray(1) }
  const ch = msg[0]! - 48
  const text = msg.subarray(1).toString('latin1')
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined
  return { ch, data: Buffer.from(text, 'base64') }
}

/**
 * What goes on the status channel when a command ends: the JSON Status from
 * v4 on; before that nothing on success and the message as text on failure
 * (the client then fails without an exit code). undefined: send nothing. Pure.
 */
export function statusMessage(p: ChannelProtocol, status: Record<string, unknown>): string | undefined {
  if (hasJsonStatus(p)) return JSON.stringify(status)
  if (status.status === 'Success') return undefined
  return String(status.message ?? 'error')
}

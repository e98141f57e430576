// The VXLAN device (flannel's flannel.1, here skiff.1): VNI 1, UDP 8472, no
// learning, local = the InternalIP, on the interface that holds it, MTU =
// that interface's - 50, the podCIDR's network address /32 on it, and a VTEP
// MAC kept in the agent's state dir, so peers' neighbour and FDB entries for
// this node stay right across restarts. A device whose VXLAN settings differ
// is deleted and made again (they cannot be changed in place); the MAC and the
// MTU are set in place.

import { randomBytes } from 'node:crypto'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PodNetworkError } from './errors.ts'
import { mustRun, parseAddresses, readVxlanLink, run, type VxlanLink } from './kernel.ts'
import { isVtepMac, randomVtepMac } from './plan.ts'

export interface VxlanDeviceSpec {
  name: string
  vni: number
  port: number
  local: string
  underlay: string
  mtu: number
  mac: string
  /** `<podCIDR network address>/32`. */
  address: string
}

/** What to do with the device the kernel has. Pure. */
export function vxlanDeviceAction(have: VxlanLink | undefined, want: VxlanDeviceSpec): 'create' | 'recreate' | 'update' | 'none' {
  if (!have) return 'create'
  if (have.kind !== 'vxlan' || have.vni !== want.vni || have.local !== want.local || have.port !== want.port || have.learning !== false || have.link !== want.underlay) return 'recreate'
  if (have.mac !== want.mac || have.mtu !== want.mtu || !have.up) return 'update'
  return 'none'
}

/** Make the device match `want` (idempotent). Returns what it did. */
export async function ensureVxlanDevice(want: VxlanDeviceSpec): Promise<'create' | 'recreate' | 'update' | 'none'> {
  const action = vxlanDeviceAction(await readVxlanLink(want.name), want)
  if (action === 'recreate') await mustRun('ip', ['link', 'del', 'dev', want.name])
  if (action === 'create' || action === 'recreate') {
    await mustRun('ip', [
      'link', 'add', want.name, 'address', want.mac, 'mtu', String(want.mtu), 'type', 'vxlan', 'id', String(want.vni),
      'local', want.local, 'dev', want.underlay, 'dstport', String(want.port), 'nolearning',
    ])
  }
  if (action === 'update') await mustRun('ip', ['link', 'set', 'dev', want.name, 'address', want.mac, 'mtu', String(want.mtu)])
  // Exactly one address: the podCIDR's network address (a podCIDR change leaves the old one otherwise).
  const addrs = parseAddresses(JSON.parse((await mustRun('ip', ['-j', '-4', 'addr', 'show', 'dev', want.name])) || '[]'))
  for (const a of addrs) if (`${a.ip}/${a.prefixlen}` !== want.address) await mustRun('ip', ['addr', 'del', `${a.ip}/${a.prefixlen}`, 'dev', want.name])
  if (!addrs.some((a) => `${a.ip}/${a.prefixlen}` === want.address)) await mustRun('ip', ['addr', 'add', want.address, 'dev', want.name])
  await mustRun('ip', ['link', 'set', 'dev', want.name, 'up'])
  return action
}

export async function deleteLink(name: string): Promise<boolean> {
  return (await run('ip', ['link', 'del', 'dev', name])).code === 0
}

/** Turn TX checksum offload off on the device (flannel's documented fix for the VXLAN checksum bug class). */
export async function disableTxChecksumOffload(dev: string): Promise<void> {
  await mustRun('ethtool', ['-K', dev, 'tx-checksum-ip-generic', 'off'])
}

export const vtepMacFile = 'vtep-mac'

/** The VTEP MAC kept in `<stateDir>/vtep-mac`, made (random, locally administered) on first use. */
export async function loadVtepMac(stateDir: string): Promise<{ mac: string; created: boolean }> {
  const file = join(stateDir, vtepMacFile)
  let text: string | undefined
  try {
    text = (await readFile(file, 'utf8')).trim()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new PodNetworkError('VtepMac', `cannot read ${file}: ${(e as Error).message}`)
  }
  if (text !== undefined) {
    if (!isVtepMac(text)) throw new PodNetworkError('VtepMac', `${file} holds ${JSON.stringify(text.slice(0, 40))}, not a unicast MAC; remove the file (a new MAC is made at the next start)`)
    return { mac: text, created: false }
  }
  const mac = randomVtepMac(randomBytes(6))
  await mkdir(stateDir, { recursive: true })
  await writeFile(`${file}.tmp`, `${mac}\n`)
  await rename(`${file}.tmp`, file)
  return { mac, created: true }
}

// This machine's addresses, as the kernel's routing table sees them: the
// source address it would use towards a destination (how an agent finds its
// InternalIP from the route to the server, as the kubelet does), and the
// primary address (the default route's), the server's default advertise
// address. Route lookups only: nothing is sent.

import { run } from './exec.ts'

async function ipJson(args: string[]): Promise<any[]> {
  const r = await run('ip', ['-j', ...args])
  try {
    return r.code === 0 ? (JSON.parse(r.stdout || '[]') as any[]) : []
  } catch {
    return []
  }
}

/** The source address of the route towards `dest` (undefined when the route is loopback or there is none). */
export async function routeSource(dest: string): Promise<string | undefined> {
  const [r] = await ipJson(['-4', 'route', 'get', dest])
  const src = r?.prefsrc as string | undefined
  return src && !src.startsWith('127.') ? src : undefined
}

/** The first IPv4 address of the interface holding the default route. */
export async function primaryAddress(): Promise<string | undefined> {
  const [def] = await ipJson(['-4', 'route', 'show', 'default'])
  if (!def?.dev) return undefined
  if (def.prefsrc) return def.prefsrc as string
  const [link] = await ipJson(['-4', 'addr', 'show', 'dev', def.dev])
  return link?.addr_info?.find((a: any) => a.family === 'inet')?.local
}

/** The interface that holds `address` (the LAN leg of a host), if any. */
export async function interfaceOf(address: string): Promise<string | undefined> {
  for (const link of await ipJson(['-4', 'addr'])) {
    if ((link.addr_info ?? []).some((a: any) => a.local === address)) return link.ifname as string
  }
  return undefined
}

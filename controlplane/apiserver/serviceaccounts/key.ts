// The service-account signing key: pki/sa.key (RSA 2048, PKCS#8, 0600),
// created by the first server and handed to every joining server over the
// pinned server-join channel (join.ts ServerJoinBundle), never through
// Redis. Every server signs and verifies with the same key.

import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export const SA_KEY_FILE = 'sa.key'

export function saKeyPath(stateDir: string): string {
  return join(stateDir, 'pki', SA_KEY_FILE)
}

/** The key in `<stateDir>/pki/sa.key`, created when missing. */
export function loadOrCreateServiceAccountKey(stateDir: string): KeyObject {
  const path = saKeyPath(stateDir)
  if (!existsSync(path)) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600, flag: 'wx' })
  }
  try {
    return createPrivateKey(readFileSync(path, 'utf8'))
  } catch (e) {
    throw new Error(`${path} is not a PEM private key (${(e as Error).message}); restore it from another server of this cluster (skiff server --join) or remove it to issue new service-account tokens`)
  }
}

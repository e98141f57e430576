// How an object becomes the string Redis holds, and back.
//
// The stored form is the object's JSON without metadata.resourceVersion (the
// revision lives next to it, so a value never carries a stale copy). For
// encrypted resources that JSON is sealed with AES-256-GCM; the additional
// authenticated data is `resource/key`, so a ciphertext copied to another key
// (or another resource) fails to open instead of silently becoming that
// object.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import type { KubeObject } from '../api/types.ts'

const PREFIX = 'enc:v1:'
const IV_BYTES = 12
const TAG_BYTES = 16

export interface CodecOptions {
  encryptionKey?: Buffer
  encryptedResources: string[]
}

export class Codec {
  private readonly key?: Buffer
  private readonly encrypted: Set<string>

  constructor(opts: CodecOptions) {
    if (opts.encryptionKey !== undefined && opts.encryptionKey.length !== 32) {
      throw new Error(`store encryptionKey must be 32 bytes (AES-256), got ${opts.encryptionKey.length}`)
    }
    if (opts.encryptedResources.length > 0 && !opts.encryptionKey) {
      throw new Error(
        `store: encryptedResources is [${opts.encryptedResources.join(', ')}] but no encryptionKey was given; ` +
          'pass a 32-byte key, or encryptedResources: [] to store them in plain text',
      )
    }
    this.key = opts.encryptionKey
    this.encrypted = new Set(opts.encryptedResources)
  }

  /** The plain JSON stored for an object (no resourceVersion). */
  toJSON(obj: KubeObject): string {
    const { resourceVersion: _rv, ...metadata } = obj.metadata ?? {}
    return JSON.stringify({ ...obj, metadata })
  }

  /** The string Redis holds: the JSON, sealed when the resource is encrypted. */
  seal(resource: string, key: string, json: string): string {
    if (!this.encrypted.has(resource)) return json
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.key!, iv)
    cipher.setAAD(Buffer.from(`${resource}/${key}`))
    const body = Buffer.concat([cipher.update(json, 'utf8'), cipher.final()])
    return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')
  }

  /**
   * Parse what Redis holds. Sealed values are opened whatever the current
   * configuration says, and plain values are read even for encrypted
   * resources, so turning encryption on or off never makes data unreadable.
   */
  open(resource: string, key: string, stored: string, revision: number): KubeObject {
    const json = stored.startsWith(PREFIX) ? this.decrypt(resource, key, stored) : stored
    const obj = JSON.parse(json) as KubeObject
    obj.metadata ??= {}
    obj.metadata.resourceVersion = String(revision)
    return obj
  }

  private decrypt(resource: string, key: string, stored: string): string {
    if (!this.key) throw new Error(`store: ${resource}/${key} is encrypted but no encryptionKey was given`)
    const raw = Buffer.from(stored.slice(PREFIX.length), 'base64')
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES))
    decipher.setAAD(Buffer.from(`${resource}/${key}`))
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES))
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8')
  }
}

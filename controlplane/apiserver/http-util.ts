// Request and response helpers for the apiserver: bounded body reading,
// content negotiation, and Status responses.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { parse as parseYaml } from 'yaml'
import { ApiError } from '../api/errors.ts'
import { decodeProtobufObject, isProtobufContentType } from '../api/protobuf.ts'

export const maxBodyBytes = 3 * 1024 * 1024

/** Read the whole body, or fail with 413 as soon as it passes the limit. */
export async function readBody(req: IncomingMessage, limit = maxBodyBytes): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > limit) {
    req.resume()
    throw new ApiError('RequestEntityTooLarge', `the request body of ${declared} bytes is larger than the limit of ${limit} bytes`)
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > limit) {
      req.resume()
      throw new ApiError('RequestEntityTooLarge', `the request body is larger than the limit of ${limit} bytes`)
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase()
}

/** Decode a create/update body: JSON, YAML, or the protobuf that typed kubectl commands send. */
export function decodeObject(req: IncomingMessage, body: Buffer): any {
  const ct = mediaType(req)
  if (body.length === 0) throw new ApiError('BadRequest', 'the request body is empty')
  if (isProtobufContentType(ct)) {
    return decodeProtobufObject(body) // throws ApiError 400/415 itself
  }
  if (ct === 'application/yaml' || ct === 'application/x-yaml') {
    try {
      return parseYaml(body.toString('utf8'))
    } catch (e) {
      throw new ApiError('BadRequest', `cannot parse YAML body: ${(e as Error).message}`)
    }
  }
  if (ct !== 'application/json' && ct !== '*/*') throw new ApiError('UnsupportedMediaType', `the content type ${ct} is not supported; send application/json`)
  return parseJson(body)
}

export function parseJson(body: Buffer): any {
  try {
    return JSON.parse(body.toString('utf8'))
  } catch (e) {
    throw new ApiError('BadRequest', `cannot parse JSON body: ${(e as Error).message}`)
  }
}

export interface TableRequest {
  includeObject: 'None' | 'Metadata' | 'Object'
}

/** A Table is wanted when the Accept header asks for `as=Table` (kubectl get's human output). */
export function wantsTable(req: IncomingMessage, query: URLSearchParams): TableRequest | undefined {
  const accept = req.headers.accept ?? ''
  if (!/as=Table/.test(accept)) return undefined
  const inc = query.get('includeObject')
  return { includeObject: inc === 'None' || inc === 'Object' ? inc : 'Metadata' }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  if (res.headersSent) return // a timeout answered first
  const text = JSON.stringify(body)
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache, private' })
  res.end(text)
}

export function sendError(res: ServerResponse, e: ApiError): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  if (e.details?.retryAfterSeconds) res.setHeader('Retry-After', String(e.details.retryAfterSeconds))
  sendJson(res, e.status, e.toStatus())
}

// Bootstrap token cleaner (kubeadm's tokencleaner): deletes bootstrap token
// Secrets whose expiration has passed. The apiserver already refuses an
// expired token at join; this only tidies `skiff token list`. Expiry needs a
// clock, not an event, so it polls: every tokenCleanupPeriodMs (60 s) one
// list of kube-system Secrets of type bootstrap.kubernetes.io/token, and a
// delete guarded by uid and resourceVersion for each expired one (a token
// replaced meanwhile under the same name is left alone).

import { bootstrapTokenNamespace, bootstrapTokenType, isExpired, readBootstrapTokenSecret } from '../api/bootstrap-token.ts'
import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { ApiClientError, resourcePath } from '../client/client.ts'
import type { Controller, ControllerContext } from './types.ts'

const secretsInfo = lookupResource('', 'v1', 'secrets')!

/** The token Secrets to delete at `now`: expired, or not readable as a token (kubeadm deletes those too). Pure. */
export function expiredTokenSecrets(secrets: KubeObject[], now: number): KubeObject[] {
  return secrets.filter((s) => {
    if (s.type !== bootstrapTokenType) return false
    const t = readBootstrapTokenSecret(s)
    return !t || isExpired(t, now)
  })
}

export class BootstrapTokenCleaner implements Controller {
  readonly name = 'bootstrap-token-cleaner'
  #ctx?: ControllerContext
  #timer?: NodeJS.Timeout
  #running?: Promise<void>

  async start(ctx: ControllerContext): Promise<void> {
    this.#ctx = ctx
    const tick = () => {
      this.#running ??= this.sweep().catch((e) => ctx.logger.warn({ controller: this.name, err: (e as Error).message }, 'token cleanup failed; retrying next period')).finally(() => (this.#running = undefined))
    }
    this.#timer = setInterval(tick, ctx.config.tokenCleanupPeriodMs ?? 60_000)
    tick()
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    await this.#running
  }

  async sweep(): Promise<void> {
    const ctx = this.#ctx!
    const list = await ctx.client.list(secretsInfo, bootstrapTokenNamespace, { fieldSelector: `type=${bootstrapTokenType}` })
    for (const s of expiredTokenSecrets(list.items, Date.now())) {
      const preconditions = { uid: s.metadata.uid, resourceVersion: s.metadata.resourceVersion }
      try {
        await ctx.client.call('DELETE', resourcePath(secretsInfo, s.metadata.namespace, s.metadata.name), { body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions } })
        ctx.logger.info({ controller: this.name, secret: `${s.metadata.namespace}/${s.metadata.name}` }, 'deleted an expired bootstrap token')
      } catch (e) {
        if (!(e instanceof ApiClientError && (e.status === 404 || e.status === 409))) throw e
      }
    }
  }
}

// gateway.networking.k8s.io defaults: the `+kubebuilder:default` markers of
// the Gateway API CRDs (standard channel), which the apiextensions apiserver
// applies on every write: listener allowedRoutes `from: Same`, TLS mode
// Terminate, Secret and Service reference kinds, parentRef group and kind,
// path match PathPrefix "/", header and query match Exact, backend weight 1,
// redirect 302, and the Pending conditions a new GatewayClass or Gateway
// starts with.

import type { KubeObject } from './types.ts'

type Obj = Record<string, any>
const gatewayGroup = 'gateway.networking.k8s.io'
const epoch = '1970-01-01T00:00:00Z'

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : [])
function def(o: Obj, key: string, value: unknown): void {
  if (o[key] === undefined || o[key] === null) o[key] = value
}
const pending = (type: string) => ({ type, status: 'Unknown', reason: 'Pending', message: 'Waiting for controller', lastTransitionTime: epoch })

export function defaultGatewayClass(o: KubeObject): void {
  if (!isObj(o.status)) o.status = { conditions: [pending('Accepted')] }
}

export function defaultGateway(o: KubeObject): void {
  if (!isObj(o.status)) o.status = { conditions: [pending('Accepted'), pending('Programmed')] }
  if (!isObj(o.spec)) return
  for (const a of list(o.spec.addresses)) def(a, 'type', 'IPAddress')
  for (const l of list(o.spec.listeners)) {
    def(l, 'allowedRoutes', { namespaces: { from: 'Same' } })
    if (isObj(l.allowedRoutes)) {
      def(l.allowedRoutes, 'namespaces', { from: 'Same' })
      if (isObj(l.allowedRoutes.namespaces)) def(l.allowedRoutes.namespaces, 'from', 'Same')
      for (const k of list(l.allowedRoutes.kinds)) def(k, 'group', gatewayGroup)
    }
    if (isObj(l.tls)) {
      def(l.tls, 'mode', 'Terminate')
      for (const c of list(l.tls.certificateRefs)) secretRef(c)
    }
  }
}

function secretRef(c: Obj): void {
  def(c, 'group', '')
  def(c, 'kind', 'Secret')
}

function backendRef(b: Obj): void {
  def(b, 'group', '')
  def(b, 'kind', 'Service')
}

const rootMatch = () => ({ path: { type: 'PathPrefix', value: '/' } })

export function defaultHTTPRoute(o: KubeObject): void {
  if (!isObj(o.spec)) o.spec = {}
  const spec = o.spec
  for (const p of list(spec.parentRefs)) {
    def(p, 'group', gatewayGroup)
    def(p, 'kind', 'Gateway')
  }
  def(spec, 'rules', [{ matches: [rootMatch()] }])
  for (const rule of list(spec.rules)) {
    def(rule, 'matches', [rootMatch()])
    for (const m of list(rule.matches)) {
      def(m, 'path', { type: 'PathPrefix', value: '/' })
      if (isObj(m.path)) {
        def(m.path, 'type', 'PathPrefix')
        def(m.path, 'value', '/')
      }
      for (const h of [...list(m.headers), ...list(m.queryParams)]) def(h, 'type', 'Exact')
    }
    filters(rule.filters)
    for (const b of list(rule.backendRefs)) {
      backendRef(b)
      def(b, 'weight', 1)
      filters(b.filters)
    }
  }
}

function filters(fs: unknown): void {
  for (const f of list(fs)) {
    if (isObj(f.requestRedirect)) def(f.requestRedirect, 'statusCode', 302)
    if (isObj(f.requestMirror) && isObj(f.requestMirror.backendRef)) backendRef(f.requestMirror.backendRef)
  }
}

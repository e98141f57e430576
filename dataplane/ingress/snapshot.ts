// The contract between the ingress supervisor (in the node agent: watches the
// API) and its worker processes (serve ports 80/443): one plain,
// structured-cloneable value holding everything a worker needs to route a
// request. The supervisor sends a whole new snapshot on every change; a
// worker compiles it and swaps its state in one assignment, so a request sees
// either the old or the new state, never a mix, and open connections are kept.
//
// Everything here is already filtered: only the class's Ingresses, only the
// Services and endpoints they name, only the Secrets in their spec.tls.

import type { KubeObject } from '../../controlplane/api/types.ts'
import type { GatewaySnapshot } from './gateway-build.ts'

/** One endpoint address of a Service, from its EndpointSlices. */
export interface EndpointInfo {
  ip: string
  /** Service port name ('' for an unnamed port) → the endpoint's port number. */
  ports: Record<string, number>
  /** conditions.ready (not terminating and ready). */
  ready: boolean
  /** conditions.serving (ready, also while terminating). */
  serving: boolean
  terminating: boolean
  nodeName?: string
  /** targetRef name, for logs and `skiff route`. */
  pod?: string
}

export interface ServicePortInfo {
  name: string
  port: number
  protocol: string
}

export interface ServiceInfo {
  type: string
  ports: ServicePortInfo[]
  externalName?: string
}

/** A kubernetes.io/tls Secret named by an Ingress, or why it cannot be used. */
export type CertificateInfo = { cert: string; key: string } | { error: string }

/** Settings of the class (IngressClass annotations) and of this node's controller. */
export interface ClassSettings {
  /** Peer CIDRs whose incoming X-Forwarded-* headers are kept (skiff.dev/trusted-proxies). */
  trustedProxies: string[]
  /** Source ranges for Ingresses without skiff.dev/allow-source-ranges; undefined: everyone. */
  defaultAllowSourceRanges?: string[]
}

export interface IngressSnapshot {
  /** Increases with every snapshot the supervisor builds; workers report the one they applied. */
  generation: number
  className: string
  isDefaultClass: boolean
  /** The Ingresses of the class (metadata + spec), as compileRouteTable takes them. */
  ingresses: KubeObject[]
  /** 'namespace/name' → Service, for every Service an Ingress of the class names and that exists. */
  services: Record<string, ServiceInfo>
  /** 'namespace/service' → its endpoints (all conditions; the worker picks). */
  endpoints: Record<string, EndpointInfo[]>
  /** 'namespace/secret' → certificate, for every Secret named in spec.tls of the class's Ingresses. */
  certificates: Record<string, CertificateInfo>
  /** For unknown SNI (and clients without SNI): issued by the cluster CA. */
  defaultCertificate?: { cert: string; key: string }
  /** ACME HTTP-01: token → key authorization, answered at /.well-known/acme-challenge/<token>. */
  challenges: Record<string, string>
  settings: ClassSettings
  /**
   * Nodes hosting some of these endpoints that are not Ready (a dead host):
   * requests in flight to their pods will never be answered, so the workers
   * cut those connections (idempotent requests are retried on another pod)
   * instead of letting them wait for the read timeout.
   */
  unreachableNodes?: string[]
  /** The class's Gateway API listeners and attached HTTPRoutes (gateway-build.ts); their Services and Secrets are in the maps above. */
  gateway?: GatewaySnapshot
}

/** Messages from the supervisor to a worker (child_process IPC, serialization 'advanced'). */
export type ToWorker =
  | { type: 'snapshot'; snapshot: IngressSnapshot }
  /** Stop accepting, finish in-flight requests, close idle keep-alives, exit when idle or after drainMs (readiness is the supervisor's). */
  | { type: 'drain'; drainMs: number }
  /** Reply with { type: 'metrics', id, metrics } (prom-client getMetricsAsJSON()). */
  | { type: 'metrics'; id: number }

/** Messages from a worker to the supervisor. */
export type FromWorker =
  /** Listening on every configured port. */
  | { type: 'listening'; pid: number }
  /** The snapshot of this generation is in use. */
  | { type: 'applied'; generation: number }
  | { type: 'metrics'; id: number; metrics: unknown[] }
  /** Cannot start (port in use, bad address): the supervisor reports it and retries with backoff. */
  | { type: 'fatal'; message: string }

/** How a worker process is started: passed as JSON in argv[2] of worker.ts. */
export interface WorkerConfig {
  className: string
  /** Addresses to bind (the node's InternalIP and ExternalIP; 127.0.0.x in tests). */
  addresses: string[]
  httpPort: number
  httpsPort: number
  /** 0-based index of this worker, for logs. */
  index: number
  nodeName: string
}

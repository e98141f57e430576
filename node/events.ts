// Events about pods, as the kubelet records them (source component
// `kubelet`, host = node): through the correlating recorder, so a repeat
// (a crash loop's BackOff, a probe failing every period) is one Event whose
// count and lastTimestamp grow, as client-go's recorder does it.
// Never throws: events are best effort.

import type { KubeObject } from '../controlplane/api/types.ts'
import type { ApiClient } from '../controlplane/client/client.ts'
import { CorrelatingEventRecorder } from '../controlplane/client/event-recorder.ts'
import type { CorrelatorOptions } from '../controlplane/client/event-correlator.ts'
import type { Logger } from '../lib/log.ts'

export class NodeEventRecorder extends CorrelatingEventRecorder {
  constructor(opts: { client: ApiClient; logger: Logger; nodeName: string; correlator?: Partial<CorrelatorOptions> }) {
    super({ client: opts.client, logger: opts.logger, source: { component: 'kubelet', host: opts.nodeName }, reportingInstance: opts.nodeName, correlator: opts.correlator })
  }

  /** The agent's objects are pods, often read without kind and apiVersion (list items). */
  override event(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string, ref?: { fieldPath?: string }): void {
    super.event({ ...obj, apiVersion: obj.apiVersion ?? 'v1', kind: obj.kind ?? 'Pod' }, type, reason, message, ref)
  }
}

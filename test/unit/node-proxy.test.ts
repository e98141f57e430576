// The apiserver's node proxy, pure parts: which container, which kubelet
// endpoint, which kubelet path, how a kubelet error reads.

import t from 'tap'
import { ApiError } from '../../controlplane/api/errors.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { checkKubeletIdentity, chooseContainer, kubeletEndpoint, kubeletError, kubeletLogPath, kubeletStreamPath, kubeletTransportError } from '../../controlplane/apiserver/node-proxy.ts'

const pod = (containers: string[], init: string[] = []): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web', namespace: 'default' },
  spec: { containers: containers.map((name) => ({ name })), initContainers: init.map((name) => ({ name })) },
})

function failure(fn: () => unknown): ApiError {
  try {
    fn()
  } catch (e) {
    if (e instanceof ApiError) return e
    throw e
  }
  throw new Error('expected an ApiError')
}

t.test('chooseContainer', async (t) => {
  t.equal(chooseContainer(pod(['app']), undefined), 'app', 'the only container')
  t.equal(chooseContainer(pod(['app', 'side']), 'side'), 'side')
  t.equal(chooseContainer(pod(['app'], ['setup']), 'setup'), 'setup', 'init containers have logs too')
  const missing = failure(() => chooseContainer(pod(['app', 'side'], ['setup']), undefined))
  t.equal(missing.status, 400)
  t.equal(missing.message, 'a container name must be specified for pod web, choose one of: [app side] or one of the init containers: [setup]')
  const unknown = failure(() => chooseContainer(pod(['app']), 'nope'))
  t.equal(unknown.message, 'container nope is not valid for pod web')
})

t.test('kubeletEndpoint', async (t) => {
  const node = (status: unknown): KubeObject => ({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' }, status })
  const good = { addresses: [{ type: 'Hostname', address: 'n1' }, { type: 'InternalIP', address: '10.0.0.5' }], daemonEndpoints: { kubeletEndpoint: { Port: 10250 } } }
  t.same(kubeletEndpoint('n1', node(good)), { node: 'n1', host: '10.0.0.5', port: 10250 })
  const cases: Array<[string, KubeObject | undefined, number, RegExp]> = [
    ['no Node', undefined, 404, /nodes "n1" not found: .*not registered/],
    ['no InternalIP', node({ ...good, addresses: [{ type: 'Hostname', address: 'n1' }] }), 503, /node agent for node n1 is not reachable: .*InternalIP/],
    ['no port', node({ ...good, daemonEndpoints: {} }), 503, /node agent for node n1 is not reachable: .*kubeletEndpoint.Port/],
    ['port 0', node({ ...good, daemonEndpoints: { kubeletEndpoint: { Port: 0 } } }), 503, /kubeletEndpoint.Port/],
  ]
  for (const [name, n, status, msg] of cases) {
    const e = failure(() => kubeletEndpoint('n1', n))
    t.equal(e.status, status, name)
    t.match(e.message, msg, name)
  }
})

t.test('kubelet paths carry only the kubelet parameters, escaped', async (t) => {
  const ref = { namespace: 'default', pod: 'web', container: 'app' }
  t.equal(kubeletLogPath(ref, new URLSearchParams('container=app&follow=true&tailLines=5&pretty=true&previous=false')), '/containerLogs/default/web/app?follow=true&previous=false&tailLines=5')
  t.equal(kubeletLogPath({ ...ref, pod: 'a/b' }, new URLSearchParams('')), '/containerLogs/default/a%2Fb/app')
  t.equal(
    kubeletStreamPath('exec', ref, new URLSearchParams('command=sh&command=-c&command=echo a%26b&container=app&stdin=true&stdout=true&stderr=true&tty=false')),
    '/exec/default/web/app?command=sh&command=-c&command=echo+a%26b&stdin=true&stdout=true&stderr=true&tty=false',
  )
  t.equal(kubeletStreamPath('attach', ref, new URLSearchParams('container=app&stdin=true&stdout=true&tty=true&command=x')), '/attach/default/web/app?stdin=true&stdout=true&tty=true')
  t.equal(kubeletStreamPath('portforward', { ...ref, container: '' }, new URLSearchParams('ports=80&ports=8080,9000&x=1')), '/portForward/default/web?port=80&port=8080&port=9000')
})

t.test('kubeletError', async (t) => {
  const ep = { node: 'n1', host: '10.0.0.5', port: 10250 }
  const status = JSON.stringify({ kind: 'Status', status: 'Failure', message: 'previous terminated container "app" in pod "web" not found', reason: 'BadRequest', code: 400 })
  const bad = kubeletError(ep, 400, status)
  t.equal(bad.status, 400)
  t.equal(bad.message, 'previous terminated container "app" in pod "web" not found')
  const refused = kubeletError(ep, 401, 'Unauthorized')
  t.equal(refused.status, 503)
  t.match(refused.message, /node n1 refused the apiserver's kubelet client certificate \(HTTP 401\)/)
  const redirect = kubeletError(ep, 302, '')
  t.equal(redirect.status, 503)
  t.match(redirect.message, 'answered with a redirect (HTTP 302), which the apiserver does not follow')
  const plain = kubeletError(ep, 404, 'not found: /x\n')
  t.equal(plain.reason, 'NotFound')
  t.equal(plain.message, 'not found: /x')
  t.equal(kubeletError(ep, 502, '').message, 'HTTP 502')
})

t.test('kubeletTransportError: an untrusted certificate says so, anything else is unreachable', async (t) => {
  const ep = { node: 'n1', host: '10.0.0.5', port: 10250 }
  const cases: Array<{ name: string; err: Error & { code?: string }; want: RegExp }> = [
    { name: 'self-signed', err: Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), want: /node n1 at 10\.0\.0\.5:10250 is not trusted: self-signed certificate\. .*system:node:n1/ },
    { name: 'wrong address', err: Object.assign(new Error("IP: 10.0.0.5 is not in the cert's list: 10.0.0.6"), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }), want: /is not trusted: IP: 10\.0\.0\.5/ },
    { name: 'another node', err: new Error('its certificate is for "system:node:n2", not system:node:n1'), want: /is not trusted: its certificate is for "system:node:n2"/ },
    { name: 'refused', err: Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:10250'), { code: 'ECONNREFUSED' }), want: /node n1 is not reachable at 10\.0\.0\.5:10250: connect ECONNREFUSED/ },
  ]
  for (const c of cases) {
    const e = kubeletTransportError(ep, c.err)
    t.equal(e.status, 503, c.name)
    t.match(e.message, c.want, c.name)
  }
})

t.test('checkKubeletIdentity: the address must be in the certificate, and the CN must be the node', async (t) => {
  const cert = (cn: string, san: string) => ({ subject: { CN: cn }, subjectaltname: san }) as any
  t.equal(checkKubeletIdentity('n1', '10.0.0.5', cert('system:node:n1', 'IP Address:10.0.0.5')), undefined)
  t.match(checkKubeletIdentity('n1', '10.0.0.5', cert('system:node:n1', 'IP Address:10.0.0.6'))?.message, /10\.0\.0\.5/)
  t.match(checkKubeletIdentity('n1', '10.0.0.5', cert('system:node:n2', 'IP Address:10.0.0.5'))?.message, 'its certificate is for "system:node:n2", not system:node:n1')
  t.match(checkKubeletIdentity('n1', '10.0.0.5', cert('skiff-apiserver', 'IP Address:10.0.0.5'))?.message, 'not system:node:n1')
})

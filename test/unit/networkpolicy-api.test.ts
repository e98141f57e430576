// NetworkPolicy as an API kind: defaults (SetDefaults_NetworkPolicy*),
// validation with Kubernetes' field paths and messages, and the printer.

import t from 'tap'
import { applyDefaults } from '../../controlplane/api/defaults.ts'
import { printerFor } from '../../controlplane/api/printers.ts'
import { lookupResource, resources } from '../../controlplane/api/resources.ts'
import { kindSchema } from '../../controlplane/api/schema/index.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { validate } from '../../controlplane/api/validation.ts'

const info = resources.find((r) => r.kind === 'NetworkPolicy')!
const np = (spec: object): KubeObject => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'p', namespace: 'default' }, spec })
const causes = (spec: object) => validate(info, applyDefaults(info, np(spec))).map((c) => `${c.reason} ${c.field}: ${c.message}`)

t.test('the kind is served as netpol with its schema', async (t) => {
  t.equal(lookupResource('networking.k8s.io', 'v1', 'networkpolicies')?.kind, 'NetworkPolicy')
  t.same(info.shortNames, ['netpol'])
  const schema = kindSchema('networking.k8s.io/v1', 'NetworkPolicy')!
  t.ok(schema, 'schema known')
})

t.test('defaults: protocol TCP; policyTypes Ingress, plus Egress only when egress rules exist', async (t) => {
  const cases: Array<[string, object, string[]]> = [
    ['no rules', { podSelector: {} }, ['Ingress']],
    ['ingress only', { ingress: [{}] }, ['Ingress']],
    ['egress rules', { egress: [{ ports: [{ port: 53, protocol: 'UDP' }] }] }, ['Ingress', 'Egress']],
    ['empty egress list', { egress: [] }, ['Ingress']],
    ['explicit kept', { policyTypes: ['Egress'] }, ['Egress']],
  ]
  for (const [name, spec, want] of cases) t.same(applyDefaults(info, np(spec)).spec.policyTypes, want, name)
  const d = applyDefaults(info, np({ ingress: [{ ports: [{ port: 80 }, { port: 53, protocol: 'UDP' }] }] }))
  t.same(d.spec.ingress[0].ports.map((p: any) => p.protocol), ['TCP', 'UDP'])
  t.same(d.spec.podSelector, {}, 'podSelector {} selects all')
})

t.test('validation: field paths and messages as Kubernetes', async (t) => {
  const cases: Array<[string, object, string[]]> = [
    ['valid', { podSelector: { matchLabels: { app: 'db' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'a' } }, podSelector: { matchLabels: { role: 'c' } } }, { ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } }], ports: [{ port: 'http' }, { port: 8000, endPort: 8010 }] }] }, []],
    ['bad policy type', { policyTypes: ['Sideways'] }, ['FieldValueNotSupported spec.policyTypes[0]: Unsupported value: "Sideways": supported values: "Ingress", "Egress"']],
    ['three policy types', { policyTypes: ['Ingress', 'Egress', 'Ingress'] }, ['FieldValueInvalid spec.policyTypes: Invalid value: &[]networking.PolicyType{"Ingress", "Egress", "Ingress"}: may not specify more than two policyTypes']],
    ['endPort below port', { ingress: [{ ports: [{ port: 90, endPort: 80 }] }] }, ['FieldValueInvalid spec.ingress[0].ports[0].endPort: Invalid value: 90: must be greater than or equal to `port`']],
    ['endPort with a named port', { egress: [{ ports: [{ port: 'http', endPort: 80 }] }] }, ['FieldValueInvalid spec.egress[0].ports[0].endPort: Invalid value: 80: may not be specified when `port` is non-numeric']],
    ['endPort without port', { ingress: [{ ports: [{ endPort: 80 }] }] }, ['FieldValueInvalid spec.ingress[0].ports[0].endPort: Invalid value: 80: may not be specified when `port` is not specified']],
    ['bad protocol', { ingress: [{ ports: [{ protocol: 'ICMP' }] }] }, ['FieldValueNotSupported spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"']],
    ['port out of range', { ingress: [{ ports: [{ port: 70000 }] }] }, ['FieldValueInvalid spec.ingress[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive']],
    ['bad port name', { ingress: [{ ports: [{ port: 'web--x' }] }] }, ['FieldValueInvalid spec.ingress[0].ports[0].port: Invalid value: "web--x": must not contain consecutive hyphens']],
    ['empty peer', { ingress: [{ from: [{}] }] }, ['FieldValueRequired spec.ingress[0].from[0]: Required value: must specify a peer']],
    ['ipBlock with a selector', { egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }] }] }, ['FieldValueForbidden spec.egress[0].to[0]: Forbidden: may not specify both ipBlock and another peer']],
    ['ipBlock without cidr', { ingress: [{ from: [{ ipBlock: { cidr: '' } }] }] }, ['FieldValueRequired spec.ingress[0].from[0].ipBlock.cidr: Required value']],
    ['bad cidr', { ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/33' } }] }] }, ['FieldValueInvalid spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "10.0.0.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)']],
    ['except outside cidr', { ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.1.0.0/24'] } }] }] }, ['FieldValueInvalid spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "10.1.0.0/24": must be a strict subset of `cidr`']],
    ['except equal to cidr', { ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.0.0/16'] } }] }] }, ['FieldValueInvalid spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "10.0.0.0/16": must be a strict subset of `cidr`']],
    ['ipv6 except inside', { ingress: [{ from: [{ ipBlock: { cidr: 'fd00::/8', except: ['fd00:1::/32'] } }] }] }, []],
    ['bad selector', { podSelector: { matchExpressions: [{ key: 'a', operator: 'Near' }] } }, ['FieldValueNotSupported spec.podSelector.matchExpressions[0].operator: Unsupported value: "Near": supported values: "In", "NotIn", "Exists", "DoesNotExist"']],
  ]
  for (const [name, spec, want] of cases) t.same(causes(spec), want, name)
})

t.test('printer: NAME POD-SELECTOR AGE', async (t) => {
  const p = printerFor('NetworkPolicy')
  t.same(p.columns.map((c) => c.name), ['Name', 'Pod-Selector', 'Age'])
  const now = new Date('2026-12-04T12:00:00Z')
  const obj = (sel: object) => ({ ...np({ podSelector: sel }), metadata: { name: 'p', namespace: 'default', creationTimestamp: '2026-12-04T11:59:00Z' } })
  t.same(p.cells(obj({ matchLabels: { app: 'db', tier: 'x' } }), now), ['p', 'app=db,tier=x', '60s'])
  t.same(p.cells(obj({}), now), ['p', '', '60s'])
})

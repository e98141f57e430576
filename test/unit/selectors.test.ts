import t from 'tap'
import {
  fieldSelectorSupported,
  labelSelectorFromObject,
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
  selectorToString,
  SelectorError,
  validateFieldSelector,
} from '../../controlplane/api/selectors.ts'

const web = { app: 'web', tier: 'frontend', version: '3' }
const db = { app: 'db', tier: 'backend' }
const bare = {}

// Each selector is evaluated against three label sets and printed back canonically.
const labelCases: Array<{ sel: string; web: boolean; db: boolean; bare: boolean; canonical: string }> = [
  { sel: '', web: true, db: true, bare: true, canonical: '' },
  { sel: 'app=web', web: true, db: false, bare: false, canonical: 'app=web' },
  { sel: 'app==web', web: true, db: false, bare: false, canonical: 'app=web' },
  { sel: 'app!=web', web: false, db: true, bare: true, canonical: 'app!=web' },
  { sel: 'app in (web,db)', web: true, db: true, bare: false, canonical: 'app in (db,web)' },
  { sel: 'app notin (web)', web: false, db: true, bare: true, canonical: 'app notin (web)' },
  { sel: 'tier', web: true, db: true, bare: false, canonical: 'tier' },
  { sel: '!tier', web: false, db: false, bare: true, canonical: '!tier' },
  { sel: 'tier=frontend,app=web', web: true, db: false, bare: false, canonical: 'app=web,tier=frontend' },
  { sel: '  app = web ,  tier in ( frontend , x )  ', web: true, db: false, bare: false, canonical: 'app=web,tier in (frontend,x)' },
  { sel: 'app in(web),!missing', web: true, db: false, bare: false, canonical: 'app in (web),!missing' },
  { sel: 'version>2', web: true, db: false, bare: false, canonical: 'version>2' },
  { sel: 'version<3', web: false, db: false, bare: false, canonical: 'version<3' },
  { sel: 'app.kubernetes.io/name=x', web: false, db: false, bare: false, canonical: 'app.kubernetes.io/name=x' },
  { sel: 'missing==', web: false, db: false, bare: false, canonical: 'missing=' },
  { sel: 'app in (in,notin)', web: false, db: false, bare: false, canonical: 'app in (in,notin)' },
]

t.test('label selector grammar and matching', async (t) => {
  for (const c of labelCases) {
    const sel = parseLabelSelector(c.sel)
    t.equal(matchesLabels(sel, web), c.web, `${JSON.stringify(c.sel)} vs web`)
    t.equal(matchesLabels(sel, db), c.db, `${JSON.stringify(c.sel)} vs db`)
    t.equal(matchesLabels(sel, bare), c.bare, `${JSON.stringify(c.sel)} vs no labels`)
    t.equal(selectorToString(sel), c.canonical, `${JSON.stringify(c.sel)} prints canonically`)
    t.same(parseLabelSelector(c.canonical), sel, `${JSON.stringify(c.canonical)} parses back`)
  }
  t.equal(matchesLabels(parseLabelSelector('!a'), undefined), true, 'missing labels are no labels')
})

const badLabelSelectors: Array<{ sel: string; message: RegExp }> = [
  { sel: 'a in (x y)', message: /unable to parse requirement: found 'y', expected: ',' or '\)'/ },
  { sel: 'a in (x', message: /found 'end of string', expected: ',' or '\)'/ },
  { sel: 'a in x', message: /found 'x', expected: '\('/ },
  { sel: 'a (x)', message: /found '\(', expected: in, notin, =, ==, !=, gt, lt/ },
  { sel: 'a=b=c', message: /found '=', expected: ',' or 'end of string'/ },
  { sel: 'a=b,', message: /found 'end of string', expected: identifier after ','/ },
  { sel: ',a', message: /found ',', expected: !, identifier, or 'end of string'/ },
  { sel: '!a=b', message: /found '=', expected: ',' or 'end of string'/ },
  { sel: 'a=!b', message: /found '!', expected: identifier/ },
  { sel: 'a=(b)', message: /found '\(', expected: identifier/ },
  { sel: 'bad key=x', message: /found 'key', expected: in, notin/ },
  { sel: '-a=b', message: /invalid label key "-a"/ },
  { sel: 'a/b/c=d', message: /invalid label key "a\/b\/c"/ },
  { sel: 'Example.com/a=b', message: /invalid label key "Example.com\/a": prefix part/ },
  { sel: `${'k'.repeat(64)}=v`, message: /name part must be no more than 63 characters/ },
  { sel: 'a=-b', message: /invalid label value "-b"/ },
  { sel: `a=${'v'.repeat(64)}`, message: /must be no more than 63 characters/ },
  { sel: 'a>b', message: /the value must be an integer/ },
  { sel: 'constructor (x)', message: /expected: in, notin/ },
]

t.test('bad label selectors', async (t) => {
  for (const c of badLabelSelectors) {
    t.throws(() => parseLabelSelector(c.sel), { name: 'SelectorError', message: c.message }, JSON.stringify(c.sel))
  }
  t.throws(() => parseLabelSelector('a in (x y)'), SelectorError)
})

t.test('label selector objects', async (t) => {
  const sel = labelSelectorFromObject({
    matchLabels: { app: 'web' },
    matchExpressions: [
      { key: 'tier', operator: 'In', values: ['frontend', 'api'] },
      { key: 'legacy', operator: 'DoesNotExist' },
      { key: 'version', operator: 'Exists', values: [] },
      { key: 'track', operator: 'NotIn', values: ['canary'] },
    ],
  })
  t.equal(selectorToString(sel), 'app=web,!legacy,tier in (api,frontend),track notin (canary),version')
  t.equal(matchesLabels(sel, web), true)
  t.equal(matchesLabels(sel, { ...web, legacy: 'y' }), false)
  t.equal(matchesLabels(sel, { ...web, track: 'canary' }), false)
  t.equal(matchesLabels(labelSelectorFromObject({}), db), true, 'empty selects everything')
  t.equal(selectorToString(labelSelectorFromObject({ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['b', 'a'] }] })), 'app=web,tier in (a,b)')

  const bad: Array<[string, object, RegExp]> = [
    ['unknown operator', { matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] }, /"Gt" is not a valid label selector operator/],
    ['In without values', { matchExpressions: [{ key: 'a', operator: 'In', values: [] }] }, /values set can't be empty/],
    ['Exists with values', { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }, /must be empty/],
    ['bad matchLabels key', { matchLabels: { 'a b': 'x' } }, /invalid label key "a b"/],
    ['bad matchLabels value', { matchLabels: { a: 'x y' } }, /invalid label value "x y"/],
  ]
  for (const [name, obj, message] of bad) t.throws(() => labelSelectorFromObject(obj), { name: 'SelectorError', message }, name)
})

const pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web-1', namespace: 'default' },
  spec: { nodeName: 'node-a' },
  status: { phase: 'Running' },
}
const event = {
  kind: 'Event',
  metadata: { name: 'web-1.abc', namespace: 'default' },
  involvedObject: { kind: 'Pod', name: 'web-1', namespace: 'default', uid: 'u1', apiVersion: 'v1', fieldPath: 'spec.containers{app}' },
  reason: 'Pulled',
  type: 'Normal',
  source: { component: 'kubelet' },
}
const node = { kind: 'Node', metadata: { name: 'node-a' }, spec: {} }
const secret = { kind: 'Secret', metadata: { name: 's', namespace: 'default' }, type: 'kubernetes.io/tls' }

const fieldCases: Array<{ sel: string; obj: any; kind: string; want: boolean }> = [
  { sel: 'metadata.name=web-1', obj: pod, kind: 'Pod', want: true },
  { sel: 'metadata.name==web-2', obj: pod, kind: 'Pod', want: false },
  { sel: 'metadata.name!=web-2,metadata.namespace=default', obj: pod, kind: 'Pod', want: true },
  { sel: 'spec.nodeName=node-a,status.phase=Running', obj: pod, kind: 'Pod', want: true },
  { sel: 'spec.nodeName=', obj: { ...pod, spec: {} }, kind: 'Pod', want: true },
  { sel: 'status.phase!=Running', obj: pod, kind: 'Pod', want: false },
  { sel: 'involvedObject.kind=Pod,involvedObject.name=web-1,involvedObject.uid=u1', obj: event, kind: 'Event', want: true },
  { sel: 'involvedObject.fieldPath=spec.containers{app}', obj: event, kind: 'Event', want: true },
  { sel: 'reason=Pulled,type=Normal,source=kubelet', obj: event, kind: 'Event', want: true },
  { sel: 'involvedObject.resourceVersion=', obj: event, kind: 'Event', want: true },
  { sel: 'spec.unschedulable=false', obj: node, kind: 'Node', want: true },
  { sel: 'spec.unschedulable=true', obj: { ...node, spec: { unschedulable: true } }, kind: 'Node', want: true },
  { sel: 'metadata.namespace=', obj: node, kind: 'Node', want: true },
  { sel: 'type=kubernetes.io/tls', obj: secret, kind: 'Secret', want: true },
  { sel: ' metadata.name = web-1 ', obj: pod, kind: 'Pod', want: true },
  { sel: 'metadata.name=a\\,b', obj: { ...pod, metadata: { name: 'a,b' } }, kind: 'Pod', want: true },
  { sel: '', obj: pod, kind: 'Pod', want: true },
]

t.test('field selectors', async (t) => {
  for (const c of fieldCases) {
    const sel = parseFieldSelector(c.sel)
    validateFieldSelector(sel, c.kind)
    t.equal(matchesFields(sel, c.obj, c.kind), c.want, `${c.kind}: ${c.sel}`)
  }
  t.same(parseFieldSelector('a==b,c!=d').requirements, [
    { field: 'a', op: '=', value: 'b' },
    { field: 'c', op: '!=', value: 'd' },
  ])
})

t.test('field selector support and bad inputs', async (t) => {
  const supported: Array<[string, string, boolean]> = [
    ['metadata.name', 'Deployment', true],
    ['metadata.namespace', 'Namespace', true],
    ['involvedObject.name', 'Event', true],
    ['involvedObject.name', 'Pod', false],
    ['spec.nodeName', 'Pod', true],
    ['spec.nodeName', 'Deployment', false],
    ['type', 'Secret', true],
    ['type', 'ConfigMap', false],
    ['spec.unschedulable', 'Node', true],
    ['spec.replicas', 'Deployment', false],
    ['constructor', 'Pod', false],
  ]
  for (const [field, kind, want] of supported) t.equal(fieldSelectorSupported(field, kind), want, `${kind} ${field}`)

  t.throws(() => validateFieldSelector(parseFieldSelector('spec.replicas=3'), 'Deployment'), {
    name: 'SelectorError',
    message: 'field label not supported: spec.replicas',
  })
  t.equal(matchesFields(parseFieldSelector('spec.replicas=3'), pod as any, 'Deployment'), false, 'unsupported never matches')

  const bad: Array<[string, RegExp]> = [
    ['metadata.name', /can't understand 'metadata.name'/],
    ['=web', /no field name/],
    ['metadata.name=a=b', /unescaped '='/],
    ['metadata.name=a\\b', /invalid escape sequence/],
  ]
  for (const [sel, message] of bad) t.throws(() => parseFieldSelector(sel), { name: 'SelectorError', message }, sel)
})

// Query parameters as apimachinery converts url.Values, and the finalizers a
// DELETE leaves on an object per propagation policy.

import t from 'tap'
import { boolParam, intParam, stringParam } from '../../controlplane/apiserver/query.ts'
import { deletionFinalizers } from '../../controlplane/apiserver/registry.ts'

const q = (s: string) => new URLSearchParams(s)

t.test('booleans: absent, 0 and false (any case) are false; any other value is true', async (t) => {
  t.equal(boolParam(q(''), 'watch'), false)
  for (const v of ['0', 'false', 'False', 'FALSE', 'fAlSe']) t.equal(boolParam(q(`watch=${v}`), 'watch'), false, v)
  for (const v of ['1', 't', 'T', 'true', 'True', 'TRUE', '', 'yes', 'f']) t.equal(boolParam(q(`watch=${v}`), 'watch'), true, JSON.stringify(v))
  t.equal(boolParam(q('watch=0&watch=1'), 'watch'), false, 'the first value counts')
})

t.test('integers: base 10, the first value counts, anything else is a 400 naming the parameter', async (t) => {
  t.equal(intParam(q(''), 'limit'), undefined)
  t.equal(intParam(q('limit=5&limit=x'), 'limit'), 5)
  t.equal(intParam(q('limit=-3'), 'limit'), -3)
  for (const v of ['x', '1.5', '', '0x10', '99999999999999999999']) {
    t.throws(() => intParam(q(`limit=${v}`), 'limit'), { reason: 'BadRequest', message: /"limit"/ }, JSON.stringify(v))
  }
  t.equal(stringParam(q('a=1&a=2'), 'a'), '1')
})

t.test('finalizers after a DELETE', async (t) => {
  t.same(deletionFinalizers([], 'Foreground'), ['foregroundDeletion'])
  t.same(deletionFinalizers(['orphan', 'x.io/a'], 'Foreground'), ['x.io/a', 'foregroundDeletion'])
  t.same(deletionFinalizers(['foregroundDeletion'], 'Orphan'), ['orphan'])
  t.same(deletionFinalizers(['orphan', 'foregroundDeletion', 'x.io/a'], 'Background'), ['x.io/a'])
  t.same(deletionFinalizers(['orphan', 'x.io/a'], undefined), ['orphan', 'x.io/a'], 'no policy keeps them')
})

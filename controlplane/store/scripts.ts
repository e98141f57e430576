// The Lua scripts that make every store operation one atomic step in Redis.
//
// WRITE is the only code that ever changes an object, the counter, the event
// stream or a claim pool. It checks every precondition first and returns
// before its first write when one fails, so a refused write leaves nothing
// behind (Redis does not roll back a script that fails half-way, so the
// checks must come first).
//
// Every script also takes `minRev`, the highest revision this process has
// seen. A counter below it means Redis lost acknowledged writes (restored
// from an older file, or emptied); the script then answers 'behind' without
// writing, and the store jumps the counter ahead before trying again.

import type { Redis } from 'ioredis'
import { StoreError, type Claim } from './types.ts'

const FMT = `local function fmt(n) return string.format('%d', n) end\n`

// KEYS: 1 object hash, 2 index set, 3 counter, 4 event stream, 5 meta hash,
//       6.. claim pool hashes
// ARGV: 1 op (c|u|d), 2 expected rv or '', 3 resource, 4 key, 5 stored value,
//       6 owner, 7 stream max length, 8 minRev,
//       9 number of claims, then (pool KEYS index, value) pairs,
//       then number of releases, then (pool KEYS index, value) pairs
const WRITE = FMT + `
local op = ARGV[1]
local cur = redis.call('HMGET', KEYS[1], 'rv', 'v')
local curRv, curV = cur[1], cur[2]
if op == 'c' then
  if curRv then return {'exists', curRv} end
else
  if not curRv then return {'notfound'} end
  if ARGV[2] ~= '' and ARGV[2] ~= curRv then return {'conflict', curRv} end
end
local counter = tonumber(redis.call('GET', KEYS[3]) or '0')
if counter < tonumber(ARGV[8]) then return {'behind', fmt(counter)} end

local owner = ARGV[6]
local i = 10
local claims = {}
for c = 1, tonumber(ARGV[9]) do
  local pool, value = KEYS[tonumber(ARGV[i])], ARGV[i + 1]
  i = i + 2
  local holder = redis.call('HGET', pool, value)
  if holder and holder ~= owner then return {'claimed', c, holder} end
  claims[#claims + 1] = {pool, value}
end
local releases = {}
for r = 1, tonumber(ARGV[i]) do
  releases[#releases + 1] = {KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2]}
  i = i + 2
end

-- Every precondition holds; nothing below can fail.
local rev = redis.call('INCR', KEYS[3])
local id = fmt(rev) .. '-0'
if op == 'd' then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[4])
  redis.call('XADD', KEYS[4], id, 't', 'DELETED', 'r', ARGV[3], 'k', ARGV[4], 'o', curV, 'p', curV, 'pr', curRv)
else
  redis.call('HSET', KEYS[1], 'rv', fmt(rev), 'v', ARGV[5])
  if op == 'c' then
    redis.call('SADD', KEYS[2], ARGV[4])
    redis.call('XADD', KEYS[4], id, 't', 'ADDED', 'r', ARGV[3], 'k', ARGV[4], 'o', ARGV[5])
  else
    redis.call('XADD', KEYS[4], id, 't', 'MODIFIED', 'r', ARGV[3], 'k', ARGV[4], 'o', ARGV[5], 'p', curV, 'pr', curRv)
  end
end
for _, rel in ipairs(releases) do
  if redis.call('HGET', rel[1], rel[2]) == owner then redis.call('HDEL', rel[1], rel[2]) end
end
for _, cl in ipairs(claims) do redis.call('HSET', cl[1], cl[2], owner) end

-- Approximate trimming is O(1) amortised; the floor records what it removed
-- so a watch from before it is answered 'gone' instead of missing events.
if redis.call('XTRIM', KEYS[4], 'MAXLEN', '~', ARGV[7]) > 0 then
  local first = redis.call('XRANGE', KEYS[4], '-', '+', 'COUNT', 1)[1][1]
  local floor = tonumber(string.match(first, '^(%d+)')) - 1
  if floor > tonumber(redis.call('HGET', KEYS[5], 'floor') or '0') then
    redis.call('HSET', KEYS[5], 'floor', fmt(floor))
  end
end
if op == 'd' then return {'ok', rev, curV} end
return {'ok', rev}
`

// KEYS: 1 index set, 2 counter. ARGV: 1 object key prefix, 2 key prefix to
// match ('' for all, 'ns/' for one namespace), 3 minRev.
const LIST = FMT + `
local counter = tonumber(redis.call('GET', KEYS[2]) or '0')
if counter < tonumber(ARGV[3]) then return {'behind', fmt(counter)} end
local out = {'ok', fmt(counter)}
local want = ARGV[2]
for _, k in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if want == '' or string.sub(k, 1, #want) == want then
    local h = redis.call('HMGET', ARGV[1] .. k, 'rv', 'v')
    if h[1] then
      out[#out + 1] = k
      out[#out + 1] = h[1]
      out[#out + 1] = h[2]
    end
  end
end
return out
`

// KEYS: 1 counter, 2 meta hash. ARGV: 1 threshold (the counter must not be
// below it), 2 target (>= threshold; the counter becomes target + 1 if it
// was below), 3 a new epoch id for that case, 4 '0' when it must not write
// (the disk under Redis is nearly full), else '1'.
// Returns {jumped (0|1), counter, epoch, floor}, or {2} when it would have
// had to write and must not. A jump also raises the floor to the new
// counter: no event before it may be replayed, since the stream may hold a
// different history under those revisions.
const EPOCH = FMT + `
local counter = tonumber(redis.call('GET', KEYS[1]) or '0')
local epoch = redis.call('HGET', KEYS[2], 'epoch')
local mayWrite = ARGV[4] ~= '0'
if counter >= tonumber(ARGV[1]) then
  if not epoch then
    if not mayWrite then return {2} end
    epoch = ARGV[3]
    redis.call('HSET', KEYS[2], 'epoch', epoch)
    redis.call('HSETNX', KEYS[2], 'floor', '0')
  end
  return {0, fmt(counter), epoch, redis.call('HGET', KEYS[2], 'floor') or '0'}
end
if not mayWrite then return {2} end
local n = fmt(tonumber(ARGV[2]) + 1)
redis.call('SET', KEYS[1], n)
redis.call('HSET', KEYS[2], 'epoch', ARGV[3], 'floor', n)
return {1, n, ARGV[3], n}
`

type Arg = string | number
export type ScriptedRedis = Redis & {
  skiffWrite(numKeys: number, ...args: Arg[]): Promise<unknown[]>
  skiffList(...args: Arg[]): Promise<string[]>
  skiffEpoch(...args: Arg[]): Promise<[number, string, string, string]>
}

export function defineScripts(redis: Redis): ScriptedRedis {
  // Pool keys vary per write, so skiffWrite takes its key count first.
  redis.defineCommand('skiffWrite', { lua: WRITE })
  redis.defineCommand('skiffList', { lua: LIST, numberOfKeys: 2, readOnly: true })
  redis.defineCommand('skiffEpoch', { lua: EPOCH, numberOfKeys: 2 })
  return redis as ScriptedRedis
}

export interface WriteArgs {
  op: 'c' | 'u' | 'd'
  keys: { object: string; index: string; counter: string; stream: string; meta: string }
  poolKey: (pool: string) => string
  resource: string
  key: string
  value: string
  expectedRV?: string
  streamMaxLen: number
  minRev: number
  claims: Claim[]
  releases: Claim[]
}

/** Flatten a write into the key count, KEYS and ARGV of the WRITE script. */
export function writeCommandArgs(w: WriteArgs): [number, ...Arg[]] {
  const keys = [w.keys.object, w.keys.index, w.keys.counter, w.keys.stream, w.keys.meta]
  const poolIndex = new Map<string, number>()
  const indexOf = (pool: string) => {
    let i = poolIndex.get(pool)
    if (i === undefined) {
      keys.push(w.poolKey(pool))
      i = keys.length // Lua indexes from 1
      poolIndex.set(pool, i)
    }
    return i
  }
  const argv: Arg[] = [w.op, w.expectedRV ?? '', w.resource, w.key, w.value, `${w.resource}:${w.key}`, w.streamMaxLen, w.minRev]
  argv.push(w.claims.length)
  for (const c of w.claims) argv.push(indexOf(c.pool), c.value)
  argv.push(w.releases.length)
  for (const r of w.releases) argv.push(indexOf(r.pool), r.value)
  return [keys.length, ...keys, ...argv]
}

export type WriteOutcome = { kind: 'ok'; revision: number; prev?: string } | { kind: 'behind'; counter: number }

/** Turn the script's reply into an outcome, or the StoreError it stands for. */
export function parseWriteReply(reply: unknown[], w: WriteArgs): WriteOutcome {
  const [code, a, b] = reply as [string, string | number | undefined, string | undefined]
  const what = `${w.resource} ${w.key}`
  switch (code) {
    case 'ok':
      return { kind: 'ok', revision: Number(a), prev: b ?? undefined }
    case 'behind':
      return { kind: 'behind', counter: Number(a) }
    case 'exists':
      throw new StoreError('exists', `${what} already exists`)
    case 'notfound':
      throw new StoreError('notfound', `${what} not found`)
    case 'conflict':
      throw new StoreError('conflict', `${what} has resourceVersion ${a}, not ${w.expectedRV}`)
    case 'claimed': {
      const claim = w.claims[Number(a) - 1]!
      const owner = String(b)
      throw new StoreError('claimed', `${claim.pool} ${claim.value} is already held by ${owner}`, { ...claim, owner })
    }
    default:
      throw new Error(`store: unexpected reply from write script: ${JSON.stringify(reply)}`)
  }
}

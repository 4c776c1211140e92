"""The Lua scripts that change or search a partition atomically on the server.

Redis runs a script alone, so each one is a transaction: two processes appending to
one partition get dense, distinct offsets, and retention never races an append.
Scripts are registered once per client and run with EVALSHA.

Numbers cross into Lua as decimal strings and go back out formatted with ``%.0f``:
Lua 5.1 numbers are doubles (exact for integers below 2**53, which offsets and
microsecond times stay under) and its ``tostring`` switches to exponent notation
past 14 digits. Sequence numbers are compared as decimal strings, so they are exact
to any size.

A frame's stream ID is ``<base offset + 1>-0`` (``0-0`` is not a valid ID), so the
frame holding offset ``o`` is ``XREVRANGE key <o + 1> - COUNT 1``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["APPEND", "HEARTBEAT", "REMEMBERED", "SEEK_APPEND_TIME", "SWAP_DEFINITION", "TRIM",
           "UNPARK"]

#: Placements of recent batches remembered per producer and partition.
REMEMBERED: Final = 8

_PRELUDE: Final = """
local function fmt(n) return string.format('%.0f', n) end
local function fields(flat)
  local f = {}
  for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
  return f
end
local function base_of(id) return tonumber(string.match(id, '^(%d+)')) - 1 end
"""

APPEND: Final = _PRELUDE + f"""
-- The guard of an append, run in one MULTI with the XADD of the frame to the log
-- stream, so that the payload never passes through Lua (a script argument of a few
-- hundred kilobytes costs the server a millisecond; a plain XADD, a tenth of that).
-- The caller proposes the frame's base offset and append time; the guard checks them,
-- the definition and the producer's sequence, then writes everything but the frame. A
-- refused append renames the log stream away (KEYS[6]) so that the XADD that follows,
-- sent with NOMKSTREAM, finds no stream and does nothing; UNPARK then puts it back.
-- KEYS: topics, meta, log, index, producers, parked
-- ARGV: topic, its definition as read by the caller, base offset, append time (us),
--       count, max event time, frame uid, producer id ('' for none), sequence, size
-- Returns {{status, base, count, append time}}: status is stored or duplicate; or
-- {{'moved', end, append time}} when the proposed base is not the partition's end or
-- the append time is before its last; or {{'stale'}} (the topic is gone or was
-- redefined since the caller read it).
local topic, definition, expected, at, count, max_et, uid, producer, seq, size =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local function park()
  if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('RENAME', KEYS[3], KEYS[6]) end
end
if redis.call('HGET', KEYS[1], topic) ~= definition then park() return {{'stale'}} end

local history = false
if producer ~= '' then
  history = redis.call('HGET', KEYS[5], producer)
  if history then
    local last
    for s, b, n, t in string.gmatch(history, '(%d+):(%d+):(%d+):(%-?%d+)') do
      if s == seq then park() return {{'duplicate', b, n, t}} end
      last = s
    end
    if #seq < #last or (#seq == #last and seq <= last) then
      park()
      return {{'duplicate', '-1', '0', '0'}}
    end
  end
end

local state = redis.call('HMGET', KEYS[2], 'end', 'append_time')
local base = state[1] or '0'
if base ~= expected or (state[2] and tonumber(state[2]) > tonumber(at)) then
  park()
  return {{'moved', base, state[2] or '0'}}
end
if redis.call('EXISTS', KEYS[3]) == 0 then  -- the frame's XADD never creates the stream
  redis.call('XADD', KEYS[3], '0-1', 'x', '')
  redis.call('XDEL', KEYS[3], '0-1')
end
local id = fmt(tonumber(base) + 1) .. '-0'
redis.call('XADD', KEYS[4], id, 'n', count, 'at', at, 'et', max_et, 'z', size, 'u', uid)
redis.call('HSET', KEYS[2], 'end', fmt(tonumber(base) + tonumber(count)), 'append_time', at)
redis.call('HSETNX', KEYS[2], 'start', '0')
redis.call('HINCRBY', KEYS[2], 'bytes', size)

if producer ~= '' then
  local kept = {{}}
  if history then
    for placed in string.gmatch(history, '[^,]+') do kept[#kept + 1] = placed end
  end
  kept[#kept + 1] = seq .. ':' .. base .. ':' .. count .. ':' .. at
  local first = math.max(1, #kept - {REMEMBERED} + 1)
  redis.call('HSET', KEYS[5], producer, table.concat(kept, ',', first))
end
return {{'stored', base, count, at}}
"""

UNPARK: Final = """
-- KEYS: parked, log. The last command of an append's MULTI: a refused append's guard
-- moved the log stream away; put it back.
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('RENAME', KEYS[1], KEYS[2]) end
return 1
"""

SEEK_APPEND_TIME: Final = _PRELUDE + """
-- KEYS: meta, index    ARGV: time (us)
-- Binary search over offsets: append times never go backwards from frame to frame.
local state = redis.call('HMGET', KEYS[1], 'start', 'end')
local lo, hi = tonumber(state[1] or '0'), tonumber(state[2] or '0')
local t = tonumber(ARGV[1])
while lo < hi do
  local mid = math.floor((lo + hi) / 2)
  local entry = redis.call('XREVRANGE', KEYS[2], fmt(mid + 1), '-', 'COUNT', 1)[1]
  local frame = fields(entry[2])
  local base = base_of(entry[1])
  if tonumber(frame.at) >= t then hi = base else lo = base + tonumber(frame.n) end
end
return fmt(lo)
"""

TRIM: Final = _PRELUDE + """
-- KEYS: meta, log, index    ARGV: now (us), max age (us or ''), max bytes (or '')
-- Drops whole frames, oldest first, never the newest; returns the events dropped.
local now, max_age, max_bytes = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'end', 'bytes')
local last_end, bytes = tonumber(state[1] or '0'), tonumber(state[2] or '0')
local dropped, freed, keep, keep_base = 0, 0, nil, nil
local cursor = '-'
repeat
  local entries = redis.call('XRANGE', KEYS[3], cursor, '+', 'COUNT', 256)
  for _, entry in ipairs(entries) do
    local frame = fields(entry[2])
    local base, n = base_of(entry[1]), tonumber(frame.n)
    local too_old = max_age ~= nil and tonumber(frame.at) < now - max_age
    local too_big = max_bytes ~= nil and bytes - freed > max_bytes
    if base + n >= last_end or not (too_old or too_big) then
      keep, keep_base = entry[1], base
      break
    end
    dropped, freed = dropped + n, freed + tonumber(frame.z)
  end
  if #entries > 0 then cursor = '(' .. entries[#entries][1] end
until keep or #entries == 0
if dropped == 0 then return '0' end
redis.call('XTRIM', KEYS[2], 'MINID', keep)
redis.call('XTRIM', KEYS[3], 'MINID', keep)
redis.call('HSET', KEYS[1], 'start', fmt(keep_base))
redis.call('HINCRBY', KEYS[1], 'bytes', fmt(-freed))
return fmt(dropped)
"""

HEARTBEAT: Final = _PRELUDE + """
-- KEYS: members    ARGV: member, session timeout (ms), key time to live (ms)
-- Marks the member alive by the server's clock, expires the silent ones and returns
-- the members alive now.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZADD', KEYS[1], fmt(now), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. fmt(now - tonumber(ARGV[2])))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""


SWAP_DEFINITION: Final = """
-- KEYS: the topics hash. ARGV: topic, its definition as read, the new definition.
-- Replaces the definition only if it is still the one read (1), else nothing (0).
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""

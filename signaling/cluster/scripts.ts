/**
 * The cluster's path state lives in Redis and changes only inside these Lua scripts, each of which
 * Redis runs atomically (docs/PROTOCOL.md 3.8). A script also publishes, in the same atomic step,
 * every message its change causes (signaling/cluster/messages.ts), numbered per receiving node, so
 * a node sees the consequences of all changes in one global order.
 *
 * Keys (one Redis, or a primary with replicas; not Redis Cluster: a script touches several keys):
 *   zr:path:<path hex>    hash  address ("1", "2".."255") -> "<node>:<conn>" holding it
 *   zr:node:<node>        string with a TTL: the node's lease (missing = the node is dead)
 *   zr:nodes              set   node ids that may hold slots
 *   zr:nodepaths:<node>   hash  path hex -> number of slots the node holds there
 *   zr:seq:<node>         counter of messages published to the node
 * Channel zr:to:<node>: messages for the node's connections.
 */

/** Functions every script starts with. `send` publishes only to live nodes. */
const PRELUDE = `
local function alive(n) return redis.call('EXISTS', 'zr:node:' .. n) == 1 end
local function send(n, typ, conn, body)
  if not alive(n) then return end
  local seq = redis.call('INCR', 'zr:seq:' .. n)
  local hi = math.floor(seq / 4294967296)
  redis.call('PUBLISH', 'zr:to:' .. n, struct.pack('>BBI4I4I4', 1, typ, hi, seq - hi * 4294967296, conn) .. body)
end
local function split(holder)
  local n, c = string.match(holder, '^(%x+):(%d+)$')
  return n, tonumber(c)
end
local function held(n, p, delta)
  if redis.call('HINCRBY', 'zr:nodepaths:' .. n, p, delta) <= 0 then redis.call('HDEL', 'zr:nodepaths:' .. n, p) end
end
-- Take address a of path p from whoever holds it; notify = send 'disconnected' to the other side.
local function vacate(p, a, notify)
  local key = 'zr:path:' .. p
  local holder = redis.call('HGET', key, tostring(a))
  if not holder then return end
  redis.call('HDEL', key, tostring(a))
  local hn = split(holder)
  held(hn, p, -1)
  if not notify then return end
  if a == 1 then
    local all = redis.call('HGETALL', key)
    for i = 1, #all, 2 do
      local rn, rc = split(all[i + 1])
      send(rn, 5, rc, string.char(1))
    end
  else
    local init = redis.call('HGET', key, '1')
    if init then
      local inn, inc = split(init)
      send(inn, 5, inc, string.char(a))
    end
  end
end
-- Free every slot of node m (dead or retired), at most budget paths; returns the paths done.
local function sweep(m, budget)
  local paths = redis.call('HKEYS', 'zr:nodepaths:' .. m)
  local done = 0
  for _, p in ipairs(paths) do
    if done >= budget then return done end
    local all = redis.call('HGETALL', 'zr:path:' .. p)
    local mine = {}
    for i = 1, #all, 2 do
      if split(all[i + 1]) == m then table.insert(mine, tonumber(all[i])) end
    end
    table.sort(mine, function(x, y) return x > y end) -- responders first, the initiator last
    for _, a in ipairs(mine) do vacate(p, a, true) end
    redis.call('HDEL', 'zr:nodepaths:' .. m, p)
    done = done + 1
  end
  redis.call('DEL', 'zr:nodepaths:' .. m, 'zr:seq:' .. m)
  redis.call('SREM', 'zr:nodes', m)
  return done
end
`;

export interface ScriptSource {
  readonly name: string;
  readonly lua: string;
}

const script = (name: string, body: string): ScriptSource => ({ name, lua: `${PRELUDE}\n${body}` });

/** ARGV: node, lease ms. A fresh node id's lease and membership. */
export const REGISTER = script(
  'register',
  `
local n = ARGV[1]
redis.call('SET', 'zr:node:' .. n, '1', 'PX', tonumber(ARGV[2]))
redis.call('SADD', 'zr:nodes', n)
return 1
`,
);

/** ARGV: node, lease ms. Extends the lease; 0 when it is gone (expired, reaped, or Redis lost its data). */
export const HEARTBEAT = script(
  'heartbeat',
  `
if redis.call('SET', 'zr:node:' .. ARGV[1], '1', 'XX', 'PX', tonumber(ARGV[2])) then return 1 end
return 0
`,
);

/**
 * ARGV: path, node, conn. The initiator slot: a previous initiator is dropped with 3004 (no
 * 'disconnected'), every responder gets 'new-initiator', then the claimant its grant with the
 * responder addresses (docs/PROTOCOL.md 3.3 item 4).
 */
export const CLAIM_INITIATOR = script(
  'claim-initiator',
  `
local p, n, c = ARGV[1], ARGV[2], tonumber(ARGV[3])
if not alive(n) then return redis.error_reply('ZRLOST node lease gone') end
local key = 'zr:path:' .. p
local prev = redis.call('HGET', key, '1')
if prev then
  vacate(p, 1, false)
  local pn, pc = split(prev)
  send(pn, 6, pc, struct.pack('>I2', 3004))
end
redis.call('HSET', key, '1', n .. ':' .. c)
held(n, p, 1)
local all = redis.call('HGETALL', key)
local addrs = {}
for i = 1, #all, 2 do
  local a = tonumber(all[i])
  if a ~= 1 then
    table.insert(addrs, a)
    local rn, rc = split(all[i + 1])
    send(rn, 4, rc, '')
  end
end
table.sort(addrs)
local body = string.char(#addrs)
for _, a in ipairs(addrs) do body = body .. string.char(a) end
send(n, 7, c, body)
return 1
`,
);

/**
 * ARGV: path, node, conn. The lowest free responder address (none: 'path-full'); the initiator,
 * if any, gets 'new-responder' before the claimant gets its grant.
 */
export const CLAIM_RESPONDER = script(
  'claim-responder',
  `
local p, n, c = ARGV[1], ARGV[2], tonumber(ARGV[3])
if not alive(n) then return redis.error_reply('ZRLOST node lease gone') end
local key = 'zr:path:' .. p
local taken = {}
for _, a in ipairs(redis.call('HKEYS', key)) do taken[tonumber(a)] = true end
local addr = nil
for a = 2, 255 do
  if not taken[a] then addr = a break end
end
if not addr then
  send(n, 9, c, '')
  return 0
end
redis.call('HSET', key, tostring(addr), n .. ':' .. c)
held(n, p, 1)
local init = redis.call('HGET', key, '1')
if init then
  local inn, inc = split(init)
  send(inn, 3, inc, string.char(addr))
end
send(n, 8, c, string.char(addr, init and 1 or 0))
return addr
`,
);

/**
 * ARGV: path, node, conn, source address, destination address, frame. Verbatim relay to the
 * destination's node, or 'send-error' back to the sender when nobody holds the destination.
 * A sender that no longer holds its own address (dropped, replaced, swept) is ignored.
 */
export const RELAY = script(
  'relay',
  `
local p, n, c = ARGV[1], ARGV[2], ARGV[3]
local key = 'zr:path:' .. p
if redis.call('HGET', key, ARGV[4]) ~= n .. ':' .. c then return 0 end
local to = redis.call('HGET', key, ARGV[5])
if to then
  local tn, tc = split(to)
  if alive(tn) then
    send(tn, 1, tc, n .. struct.pack('>I4', tonumber(c)) .. ARGV[6])
    return 1
  end
end
send(n, 2, tonumber(c), string.sub(ARGV[6], 17, 24))
return 2
`,
);

/** ARGV: node, conn, 8-byte message id. 'send-error' to a connection whose frame could not be delivered. */
export const SEND_ERROR = script(
  'send-error',
  `
send(ARGV[1], 2, tonumber(ARGV[2]), ARGV[3])
return 1
`,
);

/** ARGV: path, node, conn (the initiator), responder address, close code. No 'disconnected' for it. */
export const DROP_RESPONDER = script(
  'drop-responder',
  `
local p, n, c, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local key = 'zr:path:' .. p
if redis.call('HGET', key, '1') ~= n .. ':' .. c then return 0 end
local target = redis.call('HGET', key, id)
if not target then return 0 end
vacate(p, tonumber(id), false)
local tn, tc = split(target)
send(tn, 6, tc, struct.pack('>I2', tonumber(ARGV[5])))
return 1
`,
);

/** ARGV: path, node, conn. The connection left: free its slot, if it still holds one, with 'disconnected'. */
export const LEAVE = script(
  'leave',
  `
local p, me = ARGV[1], ARGV[2] .. ':' .. ARGV[3]
local all = redis.call('HGETALL', 'zr:path:' .. p)
for i = 1, #all, 2 do
  if all[i + 1] == me then
    vacate(p, tonumber(all[i]), true)
    return 1
  end
end
return 0
`,
);

/**
 * ARGV: budget, node to retire or ''. Frees the slots of every node whose lease has expired (and of
 * the named node, whose lease is deleted first), telling their peers 'disconnected'; at most
 * `budget` paths per call. Returns 1 when more work is left.
 */
export const REAP = script(
  'reap',
  `
local budget = tonumber(ARGV[1])
if ARGV[2] ~= '' then redis.call('DEL', 'zr:node:' .. ARGV[2]) end
for _, m in ipairs(redis.call('SMEMBERS', 'zr:nodes')) do
  if not alive(m) then
    budget = budget - sweep(m, budget)
    if budget <= 0 then return 1 end
  end
end
return 0
`,
);

export const ALL_SCRIPTS: readonly ScriptSource[] = [
  REGISTER,
  HEARTBEAT,
  CLAIM_INITIATOR,
  CLAIM_RESPONDER,
  RELAY,
  SEND_ERROR,
  DROP_RESPONDER,
  LEAVE,
  REAP,
];

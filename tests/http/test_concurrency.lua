-- 20 requests to an endpoint that waits 300 ms must be in flight together (the server counts).
package.path = arg[0]:match("^(.*)/") .. "/?.lua;" .. package.path
local task = require "metasync.task"
local http = require "metasync.http"
local S = require "common"

S.reset()
local ts = {}
for i = 1, 20 do
  ts[i] = task.spawn(function() return assert(S.get("/delay?ms=300&id=" .. i)).status end)
end
for _, t in ipairs(ts) do
  local ok, st = t:join()
  assert(ok and st == 200, tostring(st))
end
local s = S.stats()
assert(s.max_inflight >= 20, "server saw at most " .. tostring(s.max_inflight) .. " in flight")
assert(http.stats()[S.base:match("//([^/]+)")].max_inflight >= 20)

-- A per-host cap holds: with concurrency 3, the server never sees more than 3.
S.reset()
http.limit(S.base, {concurrency = 3})
local r = task.map((function() local i = 0 return function() i = i + 1 return i <= 12 and i or nil end end)(),
  12, function(i) return assert(S.get("/delay?ms=50&id=" .. i)).status end)
assert(#r == 12)
s = S.stats()
assert(s.max_inflight <= 3 + 1, "cap exceeded: " .. s.max_inflight) -- +1: the stats call itself
assert(s.max_inflight >= 3, "cap not reached: " .. s.max_inflight)
http.limit(S.base, {concurrency = 0})
print("test_concurrency: ok")

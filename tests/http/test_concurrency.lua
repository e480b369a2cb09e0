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

-- http.drop: what waits behind a host's cap ends at once, unsent, with the message; what is in
-- flight goes on. 2 in flight, 4 parked: the server sees 2 of the 6.
S.reset()
http.limit(S.base, {concurrency = 2})
local held = {}
for i = 1, 6 do
  held[i] = task.spawn(function() return S.get("/delay?ms=200&id=drop" .. i) end)
end
local host = S.base:match("//([^/]+)")
while (http.stats()[host].parked or 0) < 4 do task.yield() end
assert(http.drop(S.base, "API is failing: gave up") == 4, "dropped")
assert(http.drop(S.base, "again") == 0, "nothing left to drop")
local answered, dropped = 0, 0
for _, t in ipairs(held) do
  local ok, resp, err, kind = t:join()
  assert(ok, tostring(resp))
  if resp then
    assert(resp.status == 200)
    answered = answered + 1
  else
    assert(err == "API is failing: gave up" and kind == "dropped", tostring(err) .. " " .. tostring(kind))
    dropped = dropped + 1
  end
end
assert(answered == 2 and dropped == 4, answered .. " answered, " .. dropped .. " dropped")
http.limit(S.base, {concurrency = 0})
assert(S.stats().calls["/delay"] == 2, "the server saw " .. tostring(S.stats().calls["/delay"]))
assert(http.drop("127.0.0.1:1", "no such host") == 0)

-- The requests/s token bucket: 6 requests at 5/s with a burst of 1 reach the server spread over
-- at least a second (lower bound only: a slow machine can only make the spread longer).
S.reset()
http.limit(S.base, {rate = 5, burst = 1})
local ts2 = {}
for i = 1, 6 do ts2[i] = task.spawn(function() return assert(S.get("/seq/bucket?codes=200")).status end) end
for _, t in ipairs(ts2) do assert(select(2, t:join()) == 200) end
http.limit(S.base, {rate = 0})
local times = S.stats().times.bucket
table.sort(times)
assert(#times == 6 and times[6] - times[1] >= 0.9, "token bucket not applied: spread " .. (times[6] - times[1]))
print("test_concurrency: ok")

-- Retries: 503s are retried until success, Retry-After is honoured in both forms, non-idempotent
-- methods are not retried, and the attempts stop at the maximum. (lib/metasync/rest.lua)
package.path = arg[0]:match("^(.*)/") .. "/?.lua;" .. package.path
local task = require "metasync.task"
local rest = require "metasync.rest"
local S = require "common"

S.reset()
local c = rest.new{name = "Test", base = S.base, retries = 4, backoff_base = 0.05, backoff_cap = 0.2}

-- Two 503s then 200: three calls seen by the server.
local r, err = c:request("GET", "/seq/a?codes=503,503,200")
assert(r and r.status == 200, err)
assert(S.stats().keys.a == 3)

-- Retry-After in seconds: the retry waits at least that long (server-side arrival times).
r, err = c:request("GET", "/seq/b?codes=429,200&retry_after=1")
assert(r and r.status == 200, err)
local tb = S.stats().times.b
assert(#tb == 2 and tb[2] - tb[1] >= 0.9, "Retry-After seconds not honoured: " .. (tb[2] - tb[1]))

-- Retry-After as an HTTP-date, 2 s ahead (whole seconds: at least 1 s after rounding).
r, err = c:request("GET", "/seq/c?codes=503,200&retry_after_date=1&after=2")
assert(r and r.status == 200, err)
local tc = S.stats().times.c
assert(#tc == 2 and tc[2] - tc[1] >= 0.9, "Retry-After date not honoured: " .. (tc[2] - tc[1]))

-- 504 and 502 are retried, and so are PUT and DELETE (idempotent).
r, err = c:request("GET", "/seq/g?codes=504,502,200")
assert(r and r.status == 200, err)
assert(S.stats().keys.g == 3)
r, err = c:request("PUT", "/seq/p?codes=503,200", {body = {x = 1}})
assert(r and r.status == 200, err)
assert(S.stats().keys.p == 2, "PUT was not retried")
r, err = c:request("DELETE", "/seq/del?codes=429,200")
assert(r and r.status == 200, err)
assert(S.stats().keys.del == 2, "DELETE was not retried")

-- POST is not retried by default.
r, err = c:request("POST", "/seq/d?codes=503,200", {body = {x = 1}})
assert(r == nil and err:find("HTTP 503", 1, true), tostring(err))
assert(S.stats().keys.d == 1)

-- The maximum number of attempts holds: 1 + retries calls, then the error.
r, err = c:request("GET", "/seq/e?codes=502")
assert(r == nil and err:find("502", 1, true))
assert(S.stats().keys.e == 5, "attempts: " .. tostring(S.stats().keys.e))

-- Connect errors are retried too.
local dead = rest.new{name = "Dead", base = "http://127.0.0.1:1", retries = 2, backoff_base = 0.01}
local t0 = task.now()
r, err = dead:request("GET", "/x")
assert(r == nil and err:find("transport error", 1, true), err)
assert(dead.stats.requests == 3)

-- Backoff is exponential, capped and jittered (the same attempt gives different delays).
for attempt = 1, 10 do
  local d = rest.backoff(attempt, 0.5, 4)
  assert(d > 0 and d <= 4)
end
assert(rest.backoff(1, 0.5, 30) <= 0.5 and rest.backoff(4, 0.5, 30) > 0.5 * 2 ^ 3 / 2 - 1e-9)
local seen = {}
local distinct = 0
for _ = 1, 20 do
  local d = rest.backoff(3, 0.5, 30)
  if not seen[d] then distinct = distinct + 1 end
  seen[d] = true
end
assert(distinct > 1, "backoff has no jitter")
assert(rest.retry_after("120") == 120)
assert(rest.retry_after("Sun, 06 Nov 1994 08:49:37 GMT", rest.epoch(1994, 11, 6, 8, 49, 30)) == 7)
assert(rest.retry_after("soon") == nil)
print("test_retry: ok", task.now() - t0)

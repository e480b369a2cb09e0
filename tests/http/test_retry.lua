-- Retries: 503s and 500s are retried until success, Retry-After is honoured in both forms,
-- non-idempotent methods are not retried, the attempts stop at the maximum, a response header
-- over libcurl's limit is an error at once, and retries are logged at debug with at most one
-- WARN line per interval. (lib/metasync/rest.lua, lib/metasync/breaker.lua)
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

-- HTTP 500 is retried like 502/503/504 (idempotent methods only).
r, err = c:request("GET", "/seq/f500?codes=500,500,200")
assert(r and r.status == 200, err)
assert(S.stats().keys.f500 == 3, "500 not retried")
r, err = c:request("POST", "/seq/p500?codes=500,200", {body = {x = 1}})
assert(r == nil and err:find("HTTP 500", 1, true), tostring(err))
assert(S.stats().keys.p500 == 1)

-- A response header over libcurl's limit (100 KB for one line; libcurl 7.88 says "Out of
-- memory") is reported as such and not retried: it will be as big next time.
S.reset()
local failures = c.health.failures
r, err = c:request("GET", "/bigheader?bytes=150000")
assert(r == nil and err:find("^Test GET /bigheader%?bytes=150000 %-> GET http://[^ ]+: response header too large"), tostring(err))
assert(S.stats().calls["/bigheader"] == 1, "an oversized header was retried")
assert(c.broken == nil and c.health.failures == failures, "an oversized header is no sign of a failing API")
r, err = c:request("GET", "/bigheader?bytes=50000")
assert(r and r.status == 200, err)

-- The retry log, through the real logger: each retry at debug, WARN at most once per interval
-- (default 60 s) per API with the counts. 20 requests x 2 retries in well under a minute:
-- exactly one WARN line.
local log = require "metasync.log"
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))
local logfile = dir .. "/test.log"
assert(log.setup{level = "debug", file = logfile, errors_file = false, stderr = false})
local function logged()
  local f = assert(io.open(logfile))
  local text = f:read("a")
  f:close()
  local warn, debug = {}, 0
  for line in text:gmatch("[^\n]+") do
    if line:find("| WARN  |", 1, true) then warn[#warn + 1] = line end
    if line:find("| DEBUG |", 1, true) and line:find(", retry %d+/%d+ in ") then debug = debug + 1 end
  end
  return warn, debug
end
-- (No breaker here: 40 failed attempts in a row would open it.)
local lc = rest.new{name = "Logged", base = S.base, retries = 4, backoff_base = 0.005, backoff_cap = 0.01,
  breaker_errors = 0}
assert(lc.health.interval == 60)
local ts = {}
for i = 1, 20 do
  ts[i] = task.spawn(function() return lc:request("GET", "/seq/w" .. i .. "?codes=503,500,200") end)
end
for i, res in ipairs(task.wait_all(ts)) do assert(res[1] and res[2] and res[2].status == 200, "request " .. i .. ": " .. tostring(res[2]) .. " " .. tostring(res[3])) end
local warn, debug = logged()
assert(#warn == 1, "WARN lines: " .. #warn)
assert(debug == 40, "debug retry lines: " .. debug)
assert(warn[1]:find("| Logged: 1 retry (1 x HTTP 503); last: GET /seq/w", 1, true), warn[1])
-- the rest come in one summary (at the end of the minute, or when flushed)
lc.health:flush()
warn = logged()
assert(#warn == 2 and warn[2]:find("| Logged: 39 retries in the last %d+ s %(20 x HTTP 500, 19 x HTTP 503%); last: GET /seq/w"), warn[2])
-- A short interval: the timer task prints the pending summary at its end, without another
-- retry (the test waits for that task, not for a guessed time).
local sc = rest.new{name = "Short", base = S.base, retries = 4, backoff_base = 0.001, backoff_cap = 0.001,
  log_interval = 0.05}
r, err = sc:request("GET", "/seq/short?codes=503,503,503,200")
assert(r and r.status == 200, err)
warn = logged()
assert(#warn == 3 and warn[3]:find("| Short: 1 retry (1 x HTTP 503)", 1, true), warn[3])
assert(sc.health.pending == 2 and sc.health.timer_task)
sc.health.timer_task:join()
warn = logged()
assert(#warn == 4 and warn[4]:find("| Short: 2 retries in the last 0 s (2 x HTTP 503)", 1, true), tostring(warn[4]))
os.execute("rm -rf '" .. dir .. "'")

print("test_retry: ok", task.now() - t0)

-- rest.lua over a scripted fake transport: retries, Retry-After, idempotency, error text, the
-- circuit breaker and the aggregated retry log (metasync.breaker, on a fake clock).
local calls, script, sleeps = {}, {}, {}
package.loaded["metasync.http"] = {
  request = function(req)
    calls[#calls + 1] = req
    local step = table.remove(script, 1)
    if step == nil then error("unexpected request " .. req.method .. " " .. req.url) end
    if step.transport then return nil, step.transport, step.kind or "reset" end
    local h = {}
    for k, v in pairs(step.headers or {}) do h[k:lower()] = v end
    return { status = step.status, headers = h, body = step.body or "" }
  end,
}
local task = require("metasync.task")
local real_sleep = task.sleep
task.sleep = function(s) sleeps[#sleeps + 1] = s end
local rest = require("metasync.rest")

-- Retry-After in both forms
assert(rest.retry_after("7") == 7)
assert(rest.retry_after(" 0 ") == 0)
local now = rest.epoch(2025, 6, 3, 8, 0, 0)
assert(rest.retry_after("Tue, 03 Jun 2025 08:00:30 GMT", now) == 30)
assert(rest.retry_after("Tue, 03 Jun 2025 07:00:00 GMT", now) == 0, "a past date means now")
assert(rest.retry_after("soon") == nil and rest.retry_after(nil) == nil)
assert(rest.epoch(1970, 1, 1, 0, 0, 0) == 0 and rest.epoch(2000, 3, 1, 0, 0, 0) == 951868800)
-- backoff: jittered, growing, capped
for attempt = 1, 10 do
  local d = rest.backoff(attempt, 0.5, 8)
  local full = math.min(8, 0.5 * 2 ^ (attempt - 1))
  assert(d >= full / 2 and d <= full, "backoff in the upper half of the capped exponential")
end
-- error text: the vendors' own words
assert(rest.error_text('{"code":-135,"description":"Custom field cannot be found."}') == "-135 Custom field cannot be found.")
assert(rest.error_text('{"ErrorCode":"0xA0110007","Message":"Bad field"}') == "Bad field (0xA0110007)")
assert(rest.error_text("") == "(empty body)")
assert(rest.error_text("<html>oops</html>") == "<html>oops</html>")
assert(rest.query({ { "a", "x y" }, { "b", "1&2" } }) == "a=x%20y&b=1%262")
assert(rest.query({ z = 1, a = 2 }) == "a=2&z=1")

local c = rest.new { name = "Sectigo", base = "http://h/", retries = 3,
  headers = { login = "u", password = "p" } }
-- 503 then 429 with Retry-After then 200: three calls, waits honour the header
script = { { status = 503 }, { status = 429, headers = { ["Retry-After"] = "2" } },
  { status = 200, body = '[1,2]', headers = { ["Content-Type"] = "application/json" } } }
local resp = assert(c:request("GET", "/api/ssl/v1", { query = { { "size", 2 } } }))
assert(#calls == 3 and resp.json[2] == 2)
assert(calls[1].url == "http://h/api/ssl/v1?size=2" and calls[1].headers.login == "u")
assert(#sleeps == 2 and sleeps[2] == 2)
-- transport errors retried up to the limit, then one clear line
calls, sleeps = {}, {}
script = { { transport = "connection refused" }, { transport = "connection refused" },
  { transport = "connection refused" }, { transport = "connection refused" } }
local ok, err = c:request("GET", "/x")
assert(ok == nil and #calls == 4 and err == "Sectigo GET /x -> transport error: connection refused", err)
-- POST is not retried by default
calls = {}
script = { { status = 503 } }
ok, err = c:request("POST", "/y", { body = { a = 1 } })
assert(ok == nil and #calls == 1 and err:find("^Sectigo POST /y %-> HTTP 503"))
assert(calls[1].headers["Content-Type"] == "application/json" and calls[1].body == '{"a":1}')
-- 400 is not retried; the message carries the vendor's text
calls = {}
script = { { status = 400, body = '{"code":-135,"description":"Custom field cannot be found."}' } }
ok, err = c:request("PUT", "/api/ssl/v1", { body = {} })
assert(ok == nil and #calls == 1)
assert(err == "Sectigo PUT /api/ssl/v1 -> HTTP 400: -135 Custom field cannot be found.", err)
-- malformed JSON in a success answer (a body cut short on the way) is retried like a 503 for
-- idempotent methods, and is an error, not a crash, once retries run out or for a POST
local bad = { status = 200, body = "[1,", headers = { ["Content-Type"] = "application/json" } }
calls = {}
script = { bad, { status = 200, body = "[1]", headers = { ["Content-Type"] = "application/json" } } }
ok, err = c:request("GET", "/z")
assert(ok and #calls == 2 and ok.json[1] == 1, tostring(err))
calls = {}
script = { bad }
ok, err = c:request("POST", "/z", { body = {} })
assert(ok == nil and #calls == 1 and err:find("malformed JSON"), tostring(err))
calls = {}
script = {}
for _ = 1, c.retries + 1 do script[#script + 1] = bad end
ok, err = c:request("GET", "/z")
assert(ok == nil and #calls == c.retries + 1 and err:find("malformed JSON: line 1 column"), tostring(err))
-- 204 with an empty body
script = { { status = 204 } }
assert(c:request("PUT", "/w", { body = {} }).status == 204)
-- OAuth-style auth callback: a 401 refreshes the token once
local forced = 0
local oc = rest.new { name = "Keyfactor", base = "http://k", reauth_on_401 = true,
  auth = function(force) if force then forced = forced + 1 end return { Authorization = "Bearer t" .. forced } end }
calls = {}
script = { { status = 401 }, { status = 200, body = "" } }
assert(oc:request("GET", "/Certificates"))
assert(forced == 1 and calls[2].headers.Authorization == "Bearer t1")

-- Log lines, by level (the modules call log.<level> at call time).
local log = require("metasync.log")
local lines = { warn = {}, debug = {}, error = {} }
local real_log = {}
for _, lv in ipairs({ "warn", "debug", "error" }) do
  real_log[lv] = log[lv]
  log[lv] = function(_, fmt, ...) table.insert(lines[lv], string.format(fmt, ...)) end
end
local function clear_lines() for _, l in pairs(lines) do for i = #l, 1, -1 do l[i] = nil end end end
local breaker = require("metasync.breaker")
local clock = 0
local function health(o)
  o = o or {}
  return breaker.new { name = o.name or "Sectigo", threshold = o.threshold or 0, interval = o.interval,
    clock = function() return clock end, timer = false }
end
local J = { ["Content-Type"] = "application/json" }
local function ok200(body) return { status = 200, body = body or "{}", headers = J } end

-- defaults: more attempts and a longer backoff than before, 500 among the retry statuses
local d = rest.new { name = "X", base = "http://h" }
assert(d.retries == 8 and d.backoff_base == 1 and d.backoff_cap == 30, "defaults")
assert(d.retry_status[500] and d.retry_status[429] and d.retry_status[502] and d.retry_status[503] and d.retry_status[504])
assert(not d.retry_status[501] and not d.retry_status[400])

-- HTTP 500 is retried for idempotent methods (GET and PUT), with the vendor's text kept
local s5 = rest.new { name = "Sectigo", base = "http://h", retries = 3, health = health() }
calls, sleeps = {}, {}
script = { { status = 500, body = '{"code":-2,"description":"Internal error. Please contact Support for details."}' }, ok200("[7]") }
resp = assert(s5:request("GET", "/api/ssl/v1/7"))
assert(#calls == 2 and resp.json[1] == 7 and #sleeps == 1)
calls = {}
script = { { status = 500, body = '{"ErrorCode":"0xA0110000","Message":"boom"}' }, { status = 204 } }
assert(s5:request("PUT", "/Certificates/Metadata", { body = {} }))
assert(#calls == 2, "PUT after a 500 retried")
-- ... but not for POST, and the error says it was transient
calls = {}
script = { { status = 500, body = '{"code":-2,"description":"Internal error."}' } }
local r, e, raw, transient = s5:request("POST", "/p", { body = {} })
assert(r == nil and #calls == 1 and transient == true and raw.status == 500, tostring(e))
assert(e == "Sectigo POST /p -> HTTP 500: -2 Internal error.", e)
-- a plain 4xx is not transient
calls = {}
script = { { status = 404, body = '{"code":-5101,"description":"Unknown certificate"}' } }
r, e, raw, transient = s5:request("GET", "/api/ssl/v1/9")
assert(r == nil and #calls == 1 and transient == false and e:find("HTTP 404: -5101", 1, true), e)

-- Sectigo's -2 "Internal error" body is transient whatever the status: a 400 with it is retried
-- for a GET (and counted as "HTTP 400 (-2)"), another code with 400 is not
calls, sleeps = {}, {}
script = { { status = 400, body = '{"code":-2,"description":"Internal error. Please contact Support for details."}' },
  ok200("[1]") }
assert(s5:request("GET", "/api/ssl/v1"))
assert(#calls == 2 and #sleeps == 1, "400 -2 retried")
calls = {}
script = { { status = 400, body = '{"code":-1601,"description":"Invalid parameter"}' } }
r, e = s5:request("GET", "/api/ssl/v1")
assert(r == nil and #calls == 1, "400 -1601 not retried")

-- the retry statuses are configurable (config retryStatuses -> setup.clients -> rest.new)
local only503 = rest.new { name = "K", base = "http://k", retries = 3, retry_statuses = { 503 }, health = health() }
calls = {}
script = { { status = 500, body = "" } }
r, e = only503:request("GET", "/x")
assert(r == nil and #calls == 1 and e == "K GET /x -> HTTP 500: (empty body)", e)
calls = {}
script = { { status = 503 }, ok200() }
assert(only503:request("GET", "/x") and #calls == 2)

-- an answer over a size limit (a response header past libcurl's, metasync.http kind too_big) is
-- not retried, and is no sign of a failing API
calls = {}
local hb = health { threshold = 1 }
local big = rest.new { name = "Keyfactor", base = "http://k", retries = 3, health = hb }
script = { { transport = "GET http://k/x: response header too large (over 102400 bytes for one line or 262144 in all)", kind = "too_big" } }
r, e = big:request("GET", "/x")
assert(r == nil and #calls == 1 and e:find("response header too large", 1, true), e)
assert(big.broken == nil and hb.failures == 0)
-- a run told to stop (kind interrupted) is not retried either
calls = {}
script = { { transport = "interrupted: not sent", kind = "interrupted" } }
r, e = big:request("GET", "/x")
assert(r == nil and #calls == 1 and e:find("interrupted", 1, true), e)

-- The circuit breaker: consecutive failed attempts, retries included, across requests.
local function fails(n, status)
  local t = {}
  for i = 1, n do t[i] = { status = status or 503, body = "<html>down</html>" } end
  return t
end
local bh = health { name = "Keyfactor", threshold = 5 }
local kb = rest.new { name = "Keyfactor", base = "http://k", retries = 2, health = bh }
local kb2 = rest.new { name = "Keyfactor token", base = "http://idp", retries = 2, health = bh } -- shares it
calls = {}
script = fails(3) -- request 1: three attempts, all fail (3 in a row)
assert(kb:request("GET", "/a") == nil and #calls == 3)
assert(kb.broken == nil and bh.failures == 3)
script = { ok200() } -- a success resets the count
assert(kb:request("GET", "/b"))
assert(bh.failures == 0)
script = fails(3)
assert(kb:request("GET", "/c") == nil and bh.failures == 3)
script = { { status = 404 } } -- so does any answer that is not a retryable error
assert(kb:request("GET", "/d") == nil and bh.failures == 0, "a 404 resets the count")
clear_lines()
calls = {}
script = fails(3, 502) -- 3 more, then 2 attempts of the next request open it (a POST counts too)
assert(kb:request("GET", "/e") == nil)
script = fails(1, 429)
assert(kb2:request("POST", "/token", { body = {} }) == nil)
script = { { transport = "Connection reset by peer" }, ok200() } -- opens on the 5th: not retried
r, e = kb:request("GET", "/f")
assert(r == nil and #calls == 5, "the breaker stops the retries too: " .. #calls)
local want = "Keyfactor is failing: 5 consecutive errors, last: GET /f -> transport error: Connection reset by peer"
assert(bh.broken == want and kb.broken == want and kb2.broken == want, tostring(bh.broken))
assert(e == want, e)
assert(#lines.error == 1 and lines.error[1]:find(want, 1, true), lines.error[1])
-- from now on every request to that API fails at once, sending nothing
calls = {}
script = { ok200() }
r, e, raw, transient = kb:request("PUT", "/g", { body = {} })
assert(r == nil and e == want and #calls == 0 and transient == true)
assert(kb:json("GET", "/h") == nil and kb2:request("POST", "/token") == nil and #calls == 0)
script = {}
-- threshold 0: no breaker
local nb = health { threshold = 0 }
local kn = rest.new { name = "K", base = "http://k", retries = 0, health = nb }
script = fails(50)
for _ = 1, 50 do assert(kn:request("GET", "/x") == nil) end
assert(kn.broken == nil and nb.failures == 50)
-- a request sleeping in its backoff when another opens the breaker does not retry
local sh = health { name = "K", threshold = 2 }
local ks = rest.new { name = "K", base = "http://k", retries = 5, health = sh }
calls = {}
script = fails(1)
task.sleep = function(sec)
  sleeps[#sleeps + 1] = sec
  sh:failure("GET /other -> HTTP 503: (elsewhere)") -- meanwhile, another task's attempt fails
end
r, e = ks:request("GET", "/x")
task.sleep = function(sec) sleeps[#sleeps + 1] = sec end
assert(r == nil and #calls == 1 and e == "K is failing: 2 consecutive errors, last: GET /other -> HTTP 503: (elsewhere)", e)

-- The retry log: each retry at debug; WARN at most once per interval per API, with counts.
clear_lines()
clock = 1000
local lh = health { name = "Sectigo", interval = 60 }
local lc = rest.new { name = "Sectigo", base = "http://h", retries = 3, health = lh }
local lc2 = rest.new { name = "Sectigo token", base = "http://idp", retries = 3, health = lh }
script = { { status = 429, headers = { ["Retry-After"] = "0" } }, ok200() }
assert(lc:request("GET", "/a"))
assert(#lines.warn == 1 and #lines.debug >= 1)
assert(lines.warn[1]:find("^Sectigo: 1 retry %(1 x HTTP 429%); last: GET /a %-> HTTP 429: %(empty body%); "), lines.warn[1])
-- 100 more retries within the minute, from two clients of the same API: no WARN line
for i = 1, 50 do
  clock = 1000 + i
  script = { { status = 500, body = "{}" }, { status = 429 }, ok200() }
  assert((i % 2 == 0 and lc or lc2):request("GET", "/b/" .. i))
end
assert(#lines.warn == 1, "WARN lines within the minute: " .. #lines.warn)
local retry_debug = 0
for _, l in ipairs(lines.debug) do if l:find(", retry %d/3 in ") then retry_debug = retry_debug + 1 end end
assert(retry_debug == 101, "one debug line per retry: " .. retry_debug)
assert(lh.pending == 100)
-- the first retry after the minute prints the summary of all of them
clock = 1061
script = { { status = 503, body = "<html>503</html>" }, ok200() }
assert(lc:request("GET", "/c"))
assert(#lines.warn == 2, #lines.warn)
assert(lines.warn[2] == "Sectigo: 101 retries in the last 61 s (50 x HTTP 429, 50 x HTTP 500, 1 x HTTP 503); "
  .. "last: GET /c -> HTTP 503: <html>503</html>", lines.warn[2])
-- and flush() prints what is pending (e.g. at the end of a run), nothing when nothing is
clock = 1070
script = { { transport = "Connection reset by peer" }, ok200() }
assert(lc:request("GET", "/d"))
assert(#lines.warn == 2)
lh:flush()
assert(#lines.warn == 3 and lines.warn[3]:find("^Sectigo: 1 retry in the last 9 s %(1 x connection reset%)"), lines.warn[3])
lh:flush()
assert(#lines.warn == 3)
assert(lh.retries == 103 and lh.by_reason["HTTP 429"] == 51, "totals kept")
-- a tiny interval (set by a test, no waiting): every retry has its own line
clear_lines()
local th = health { interval = 0 }
local tc = rest.new { name = "Sectigo", base = "http://h", retries = 3, health = th }
script = { { status = 503 }, { status = 503 }, ok200() }
assert(tc:request("GET", "/e"))
assert(#lines.warn == 2, #lines.warn)

-- a rest client made without a health object has its own, with the defaults
local own = rest.new { name = "Own", base = "http://o" }
assert(own.health.threshold == 20 and own.health.interval == 60 and own.broken == nil)
local off = rest.new { name = "Off", base = "http://o", breaker_errors = 0, log_interval = 5 }
assert(off.health.threshold == 0 and off.health.interval == 5)

for lv, f in pairs(real_log) do log[lv] = f end
task.sleep = real_sleep
-- a blip is not an outage: with `seconds`, the streak must also have lasted that long
do
  local b = breaker.new { name = "Keyfactor", threshold = 3, seconds = 10, clock = function() return clock end, timer = false }
  clock = 1000
  for _ = 1, 50 do b:failure("PUT /x -> HTTP 503") end
  assert(not b.broken, "50 failures within a second do not open it")
  clock = 1009
  b:failure("PUT /x -> HTTP 503")
  assert(not b.broken, "9 s of failures do not open it")
  b:success()
  clock = 1011
  b:failure("PUT /x -> HTTP 503"); b:failure("PUT /x -> HTTP 503"); b:failure("PUT /x -> HTTP 503")
  assert(not b.broken, "a success restarted the streak")
  clock = 1021
  b:failure("PUT /x -> HTTP 503")
  assert(b.broken and b.broken:find("Keyfactor is failing: 4 consecutive errors", 1, true), tostring(b.broken))
end
print("ok")

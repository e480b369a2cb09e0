-- rest.lua over a scripted fake transport: retries, Retry-After, idempotency, error text.
local calls, script, sleeps = {}, {}, {}
package.loaded["metasync.http"] = {
  request = function(req)
    calls[#calls + 1] = req
    local step = table.remove(script, 1)
    if step == nil then error("unexpected request " .. req.method .. " " .. req.url) end
    if step.transport then return nil, step.transport end
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
task.sleep = real_sleep
print("ok")

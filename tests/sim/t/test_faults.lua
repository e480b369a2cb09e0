-- Fault injection through /__sim/faults: scripts, 429s, errors, latency, rate limit, broken bodies.
local T = dofile(((arg and arg[0] or ""):match("^(.*/)") or "") .. "simtest.lua")
local json = T.json

T.world("basic.json")
local function details() return T.sc("GET", "/api/ssl/v1/101") end

T.test("scripted sequence: the next 2 GETs of details return 503, then normal", function()
  local r = T.ctl("POST", "faults", { endpoint = "sectigo.details", method = "GET",
    responses = { { status = 503 }, { status = 503 } } })
  T.eq(r.status, 200, "set")
  T.eq(#T.decode(r).scripts, 1, "script pending")
  T.eq(T.sc("GET", "/api/ssl/v1?size=1").status, 200, "other endpoint unaffected")
  T.eq(details().status, 503, "first")
  T.eq(details().status, 503, "second")
  T.eq(details().status, 200, "then normal")
  T.eq(#T.decode(T.ctl("GET", "faults")).scripts, 0, "script consumed")
end)

T.test("scripted steps: pass-through, custom body and headers, 429 with Retry-After", function()
  T.ctl("POST", "faults", { scripts = { { endpoint = "keyfactor.certificates", responses = {
    { pass = true }, { status = 500, body = { ErrorCode = "0xBAD", Message = "boom" } },
    { status = 429, retry_after = 7 }, { status = 429, retry_after = 3, retry_after_format = "http-date" } } } } })
  T.eq(T.kf("GET", "/Certificates").status, 200, "pass")
  local r = T.kf("GET", "/Certificates")
  T.eq(r.status, 500, "scripted 500")
  T.eq(T.decode(r).Message, "boom", "custom body")
  r = T.kf("GET", "/Certificates")
  T.eq(r.status, 429, "429")
  T.eq(r.headers["retry-after"], "7", "Retry-After seconds")
  r = T.kf("GET", "/Certificates")
  T.ok(r.headers["retry-after"]:match("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$"), "Retry-After HTTP-date")
end)

T.test("fail_rate 1 per endpoint gives 500/502/503 with the vendor or gateway body", function()
  T.ctl("POST", "faults", { endpoints = { ["sectigo.details"] = { fail_rate = 1 } } })
  local seen = {}
  for _ = 1, 30 do
    local r = details()
    T.ok(r.status == 500 or r.status == 502 or r.status == 503, "failure status " .. r.status)
    seen[r.status] = true
    if r.status == 500 then T.eq(T.decode(r).code, -2, "Sectigo error body") end
  end
  T.ok(seen[500] and (seen[502] or seen[503]), "a mix of statuses")
  T.eq(T.kf("GET", "/Status/Endpoints").status, 200, "other endpoints fine")
  T.eq(T.ctl("DELETE", "faults").status, 200, "clear")
  T.eq(details().status, 200, "cleared")
end)

T.test("global 429 rate with Retry-After", function()
  T.ctl("POST", "faults", { global = { rate_429 = 1, retry_after = 2 } })
  local r = T.kf("GET", "/Certificates")
  T.eq(r.status, 429, "keyfactor 429")
  T.eq(r.headers["retry-after"], "2", "Retry-After")
  T.eq(details().status, 429, "sectigo 429")
  T.ctl("DELETE", "faults")
end)

T.test("latency is added per request", function()
  T.ctl("POST", "faults", { endpoints = { ["sectigo.details"] = { latency_ms = 300 } } })
  local clock = require("metasync.task").now
  local a = clock()
  T.eq(details().status, 200, "status")
  local dt = clock() - a
  T.ok(dt >= 0.28 and dt < 3, "took " .. dt .. " s")
  T.ctl("DELETE", "faults")
end)

T.test("server-side rate limit answers 429 above N requests/s", function()
  T.ctl("POST", "faults", { endpoints = { ["sectigo.list"] = { rate_limit = 5 } } })
  local n429 = 0
  for _ = 1, 20 do
    local r = T.sc("GET", "/api/ssl/v1?size=1")
    if r.status == 429 then n429 = n429 + 1; T.ok(r.headers["retry-after"], "Retry-After") end
  end
  T.ok(n429 >= 10, "most of a burst of 20 refused (" .. n429 .. ")")
  T.ctl("DELETE", "faults")
end)

T.test("malformed, truncated and reset bodies", function()
  T.ctl("POST", "faults", { endpoint = "sectigo.details", responses = { { fault = "malformed" } } })
  local r = details()
  T.eq(r.status, 200, "status kept")
  T.eq(json.decode(r.body), nil, "body is not JSON")
  for _, f in ipairs({ "truncate", "reset" }) do
    T.ctl("POST", "faults", { endpoint = "sectigo.details", responses = { { fault = f } } })
    r = details()
    T.ok(r.status == 0 or json.decode(r.body) == nil, f .. " breaks the response")
  end
  T.eq(details().status, 200, "then normal")
  T.eq(T.decode(T.ctl("GET", "stats")).faults_injected >= 3, true, "faults counted")
end)

T.test("unknown endpoint keys get 400 naming the key", function()
  for _, c in ipairs({ { "nope.x", { endpoints = { ["nope.x"] = { fail_rate = 1 } } } },
    { "sectigo.detail", { endpoints = { ["sectigo.details"] = { fail_rate = 1 }, ["sectigo.detail"] = { fail_rate = 1 } } } },
    { "keyfactor.cert", { endpoint = "keyfactor.cert", responses = { { status = 503 } } } } }) do
    local r = T.ctl("POST", "faults", c[2])
    T.eq(r.status, 400, json.encode(c[2]))
    local e = T.decode(r).error
    T.ok(e:find("unknown endpoint '" .. c[1] .. "'", 1, true), e)
  end
  T.eq(next(T.decode(T.ctl("GET", "faults")).endpoints), nil, "nothing set")
  T.eq(details().status, 200, "details unaffected")
  T.eq(T.ctl("POST", "faults", { endpoints = { ["keyfactor.metadata_all"] = { latency_ms = 1 } },
    scripts = { { endpoint = "*", responses = { { pass = true } } } } }).status, 200, "known keys and * accepted")
  T.ctl("DELETE", "faults")
end)

T.test("bad fault documents get 400 and change nothing", function()
  for _, doc in ipairs({ { global = { fail_rate = 2 } }, { global = { bogus = 1 } }, { endpoint = "sectigo.list", responses = {} },
    { endpoint = "sectigo.list", responses = { { status = 99 } } },
    { scripts = { { endpoint = "sectigo.list", responses = { { fault = "fire" } } } } },
    { endpoints = { ["sectigo.details"] = { latency_ms = -1 } } }, { other = 1 } }) do
    local r = T.ctl("POST", "faults", doc)
    T.eq(r.status, 400, json.encode(doc))
    T.ok(T.decode(r).error, "error message")
  end
  T.eq(T.ctl("POST", "faults", "{not json").status, 400, "malformed JSON")
  T.eq(details().status, 200, "unchanged")
end)

T.done()

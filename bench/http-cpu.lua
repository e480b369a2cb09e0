-- Benchmark (not a test): the client's CPU per HTTP request (os.clock: user + system time of this
-- process only, not the simulator's) for small GETs and small-JSON PUTs, 64 in flight on loopback.
-- Usage: tests/with-sim.sh build/tests/sim/metasync-sim --certs 2000 -- \
--          build/metasync run bench/http-cpu.lua [N=5000] [ROUNDS=5] [INFLIGHT=64]
-- Each case runs one warm-up round (connections opened), then ROUNDS rounds of N requests, and
-- prints the best and the median round: the machine is shared, so the best round is the figure
-- least disturbed by other processes. "harness" is task.map doing no request, to subtract.
local http = require("metasync.http")
local task = require("metasync.task")

local n = math.tointeger(tonumber(arg and arg[1]) or 5000)
local rounds = math.tointeger(tonumber(arg and arg[2]) or 5)
local inflight = math.tointeger(tonumber(arg and arg[3]) or 64)
local sectigo = assert(os.getenv("METASYNC_SIM_SECTIGO"), "run through tests/with-sim.sh")
local keyfactor = assert(os.getenv("METASYNC_SIM_KEYFACTOR"), "run through tests/with-sim.sh")

local function b64(s)
  local abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  return (s:gsub(".", function(c)
    local b, o = c:byte(), ""
    for i = 8, 1, -1 do o = o .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return o
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return abc:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#s % 3 + 1]
end

local SC_HEADERS = { login = "sim-admin", password = "sim-password", customerUri = "sim-customer",
  Accept = "application/json" }
local KF_HEADERS = { Authorization = "Basic " .. b64("DOMAIN\\sim-admin:sim-password"),
  ["x-keyfactor-requested-with"] = "APIClient", Accept = "application/json",
  ["Content-Type"] = "application/json" }
local SC_PUT_HEADERS = { login = "sim-admin", password = "sim-password",
  customerUri = "sim-customer", Accept = "application/json", ["Content-Type"] = "application/json" }

-- Ids that exist (the generated world skips some), from the list endpoint, 200 a page.
local ids = {}
for pos = 0, 800, 200 do
  local r = assert(http.request { url = sectigo .. "/api/ssl/v1?size=200&position=" .. pos, headers = SC_HEADERS })
  for id in r.body:gmatch('"sslId":(%d+)') do ids[#ids + 1] = tonumber(id) end
end
assert(#ids > 0, "no certificates listed")
local function sslid(k) return ids[k % #ids + 1] end
-- Keyfactor ids run 1..count.
local function kfid(k) return k % math.min(#ids, 900) + 1 end

local cases = {
  { name = "harness (no request)", fn = function() return 200 end },
  { name = "GET  sectigo /api/ssl/v1/{id}", fn = function(k)
    local r = http.request { method = "GET", url = sectigo .. "/api/ssl/v1/" .. sslid(k),
      headers = SC_HEADERS }
    return r and r.status
  end },
  { name = "PUT  keyfactor /Certificates/Metadata", fn = function(k)
    local r = http.request { method = "PUT", url = keyfactor .. "/Certificates/Metadata",
      headers = KF_HEADERS,
      body = string.format('{"Id":%d,"Metadata":{"CostCenter":"CC-%d"}}', kfid(k), 100 + k % 900) }
    return r and r.status
  end },
  { name = "PUT  sectigo /api/ssl/v1", fn = function(k)
    local r = http.request { method = "PUT", url = sectigo .. "/api/ssl/v1", headers = SC_PUT_HEADERS,
      body = string.format('{"sslId":%d,"customFields":[]}', sslid(k)) }
    return r and r.status
  end },
}

local function round(fn, count)
  local i = 0
  local t0, c0 = task.now(), os.clock()
  local results, errors = task.map(function() i = i + 1; if i <= count then return i end end, inflight, fn)
  local cpu, wall = os.clock() - c0, task.now() - t0
  local bad, sample = 0, nil
  for k = 1, count do
    local s = results[k]
    if not (s and s >= 200 and s < 300) then
      bad = bad + 1
      sample = sample or (errors[k] or tostring(s))
    end
  end
  return cpu / count * 1e6, count / wall, bad, sample
end

print(string.format("%d requests a round, %d rounds, %d in flight, libcurl %s", n, rounds, inflight,
  http.curl_version))
for _, c in ipairs(cases) do
  round(c.fn, math.min(n, 1000)) -- warm-up: connections, caches, the free list
  local us, rate = {}, {}
  local bad, sample = 0, nil
  for r = 1, rounds do
    local u, q, b, s = round(c.fn, n)
    us[r], rate[r] = u, q
    bad, sample = bad + b, sample or s
  end
  table.sort(us)
  table.sort(rate)
  print(string.format("%-40s client cpu %6.1f us/req best, %6.1f median   %7.0f req/s best%s", c.name,
    us[1], us[(rounds + 1) // 2], rate[rounds], bad > 0 and ("   FAILED: " .. bad .. " e.g. " .. tostring(sample)) or ""))
end

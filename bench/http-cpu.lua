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
local sim = dofile(((arg and arg[0] or ""):match("^(.*)/") or ".") .. "/simclient.lua")
local sectigo, keyfactor = sim.sectigo, sim.keyfactor
local SC_HEADERS, KF_HEADERS, SC_PUT_HEADERS = sim.SC_HEADERS, sim.KF_HEADERS, sim.SC_PUT_HEADERS
local ids = sim.ids()
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

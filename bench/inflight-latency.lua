-- Benchmark (not a test): how the client's own CPU per answer stretches the latency it sees, and
-- so the throughput of a fixed number of requests in flight. Both APIs are kept at INFLIGHT
-- requests each (Sectigo details GETs, Keyfactor metadata PUTs, as a first sctokf does), and after
-- each answer the task spends WORK µs of CPU before its next request, for each WORK listed.
-- Usage: tests/with-sim.sh build/tests/sim/metasync-sim --certs 2000 --latency-ms 50 -- \
--          build/metasync run bench/inflight-latency.lua [N=5000] [WORK=0,50,100,200] [INFLIGHT=64]
-- Why: on a 2-core machine wall ÷ floor of bench/scale.sh at 50 ms is not set by the pipeline's
-- shape alone. While the single-threaded loop runs Lua for one answer, the answers that arrive
-- sit unread, and the simulator competes for the same cores; the loss grows with the CPU spent
-- per answer. This measures that loss with no pipeline at all, so a scale.sh ratio can be read
-- against it. "elapsed" is libcurl's transfer, from the request's start to the answer read.
local http = require("metasync.http")
local json = require("metasync.json")
local task = require("metasync.task")

local n = math.tointeger(tonumber(arg and arg[1]) or 5000)
local works = {}
for w in tostring(arg and arg[2] or "0,50,100,200"):gmatch("[^,]+") do works[#works + 1] = assert(tonumber(w), "WORK: a list of µs") end
local inflight = math.tointeger(tonumber(arg and arg[3]) or 64)
local sim = dofile(((arg and arg[0] or ""):match("^(.*)/") or ".") .. "/simclient.lua")
local sectigo, keyfactor, SC, KF = sim.sectigo, sim.keyfactor, sim.SC_HEADERS, sim.KF_HEADERS

local faults = assert(http.request { url = sectigo .. "/__sim/faults" })
local latency = (json.decode(faults.body).global or {}).latency_ms or 0
assert(latency > 0, "start the simulator with --latency-ms (the floor needs a latency)")

local ids = sim.ids()

-- A busy loop of plain arithmetic (os.clock is a system call, too slow to spin on), calibrated.
local function spin(k) local x = 0 for i = 1, k do x = x + i % 7 end return x end
local per_us
do
  local k, t = 1e6, 0
  repeat k = k * 2; local c = os.clock(); spin(k); t = os.clock() - c until t > 0.2
  per_us = k / (t * 1e6)
end

local function run(work)
  local loops = math.floor(work * per_us)
  local el = { sc = {}, kf = {} }
  local function sc(k)
    local r = http.request { url = sectigo .. "/api/ssl/v1/" .. ids[k % #ids + 1], headers = SC }
    el.sc[#el.sc + 1] = r and r.elapsed * 1000 or nil
    spin(loops)
    return r and r.status
  end
  local function kf(k)
    local r = http.request { method = "PUT", url = keyfactor .. "/Certificates/Metadata", headers = KF,
      body = string.format('{"Id":%d,"Metadata":{"CostCenter":"CC-%d"}}', k % 900 + 1, 100 + k % 900) }
    el.kf[#el.kf + 1] = r and r.elapsed * 1000 or nil
    spin(loops)
    return r and r.status
  end
  local function feed(fn)
    return task.spawn(function()
      local i = 0
      task.map(function() i = i + 1; if i <= n then return i end end, inflight, fn)
    end)
  end
  local t0, c0 = task.now(), os.clock()
  local a, b = feed(sc), feed(kf)
  a:join(); b:join()
  local wall, cpu = task.now() - t0, os.clock() - c0
  local cap = inflight * 1000 / latency
  for _, k in ipairs { "sc", "kf" } do
    local v = el[k]
    table.sort(v)
    local s = 0
    for _, x in ipairs(v) do s = s + x end
    print(string.format("work %4d us  %s  elapsed mean %6.2f ms p50 %6.1f p90 %6.1f p99 %6.1f   %5.0f req/s = %.2f of the cap   cpu %5.0f us/answer",
      work, k, s / #v, v[#v // 2 + 1], v[#v * 9 // 10 + 1], v[#v * 99 // 100 + 1], #v / wall, #v / wall / cap,
      cpu / (2 * n) * 1e6))
  end
end

print(string.format("%d requests per API per case, %d in flight per API, %g ms latency, cap %.0f req/s per API",
  n, inflight, latency, inflight * 1000 / latency))
run(0) -- warm-up: connections opened
for _, w in ipairs(works) do run(w) end

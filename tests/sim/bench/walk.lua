-- Benchmark client for metasync-sim (not a test): walks every list page of both APIs, fetches
-- details and runs report windows, and prints the simulator's CPU time per phase (read from
-- /proc/SIM_PID/stat). Run by tests/sim/bench/sim-cpu.sh, which starts the simulator.
-- Environment: METASYNC_SIM_SECTIGO, METASYNC_SIM_KEYFACTOR, SIM_PID; BENCH_CONC (requests in
-- flight, default 8), BENCH_DETAILS (how many details per API, default all), BENCH_PHASES
-- (comma list, default all: sclist,scfilter,scdetails,kflist,kfquery,kfdetails,report).
local http = require("metasync.http")
local json = require("metasync.json")
local task = require("metasync.task")

local S = assert(os.getenv("METASYNC_SIM_SECTIGO"))
local K = assert(os.getenv("METASYNC_SIM_KEYFACTOR"))
local PID = assert(os.getenv("SIM_PID"))
local CONC = tonumber(os.getenv("BENCH_CONC") or "") or 8
local NDET = tonumber(os.getenv("BENCH_DETAILS") or "")
local SC = { login = "sim-admin", password = "sim-password", customerUri = "sim-customer" }
local KF = { Authorization = "Basic c2ltLWFkbWluOnNpbS1wYXNzd29yZA==", ["x-keyfactor-requested-with"] = "APIClient" }
local want = {}
for p in (os.getenv("BENCH_PHASES") or "sclist,scfilter,scdetails,kflist,kfquery,kfdetails,report"):gmatch("[^,]+") do
  want[p] = true
end

local function cpu()
  local f = assert(io.open("/proc/" .. PID .. "/stat"))
  local s = f:read("a")
  f:close()
  local rest = s:match("%) (.*)$")
  local fields = {}
  for x in rest:gmatch("%S+") do fields[#fields + 1] = x end
  -- fields[1] is field 3 (state): utime is field 14, stime 15.
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100
end

local function rss()
  local f = io.open("/proc/" .. PID .. "/status")
  if not f then return "?" end
  local s = f:read("a")
  f:close()
  return s:match("VmRSS:%s*(%d+ kB)") or "?"
end

local function get(url, headers, method, body)
  headers = headers or (url:find(K, 1, true) == 1 and KF or SC)
  local r, err = http.request { method = method or "GET", url = url, headers = headers, body = body, timeout = 120 }
  if not r then error(url .. ": " .. tostring(err)) end
  if r.status ~= 200 then error(url .. ": status " .. r.status .. " " .. r.body:sub(1, 200)) end
  return r
end

-- Runs fn(i) for i = 1..n with CONC in flight.
local function each(n, fn)
  local i = 0
  local _, errs = task.map(function() i = i + 1; if i <= n then return i end end, CONC, fn)
  local e = next(errs or {})
  if e then error(errs[e]) end
end

local total_cpu, total_req = 0, 0
local function phase(name, fn)
  if not want[name] then return end
  local c0, t0 = cpu(), task.now()
  local n = fn()
  local c1, t1 = cpu(), task.now()
  total_cpu, total_req = total_cpu + (c1 - c0), total_req + n
  print(string.format("%-10s %7d requests  wall %7.2f s  sim cpu %7.2f s  %6.1f us/request", name, n, t1 - t0,
    c1 - c0, n > 0 and (c1 - c0) / n * 1e6 or 0))
end

-- Pages of a list whose total comes in a header: the first page, then the rest concurrently.
local function walk(url_of, total_header, on_page)
  local r = get(url_of(1))
  on_page(json.decode(r.body))
  local total = tonumber(r.headers[total_header])
  local pages = 1
  return total, function(per_page)
    local n = math.max(0, math.ceil(total / per_page) - 1)
    each(n, function(i) on_page(json.decode(get(url_of(i + 1)).body)) end)
    return pages + n
  end
end

local sc_ids, kf_ids = {}, {}

phase("sclist", function()
  local size = 200
  local _, rest = walk(function(p) return S .. "/api/ssl/v1?size=" .. size .. "&position=" .. (p - 1) * size end,
    "x-total-count", function(items) for _, it in ipairs(items) do sc_ids[#sc_ids + 1] = it.sslId end end)
  return rest(size)
end)

phase("scfilter", function()
  local size, n = 200, 0
  for _, q in ipairs({ "sslTypeId=1018", "status=Issued", "sslTypeId=1025&status=Issued&orgId=101" }) do
    local _, rest = walk(function(p) return S .. "/api/ssl/v1?" .. q .. "&size=" .. size .. "&position=" .. (p - 1) * size end,
      "x-total-count", function() end)
    n = n + rest(size)
  end
  return n
end)

phase("scdetails", function()
  local n = math.min(NDET or #sc_ids, #sc_ids)
  each(n, function(i) get(S .. "/api/ssl/v1/" .. sc_ids[i], SC) end)
  return n
end)

local function kfwalk(q, limit, collect)
  local _, rest = walk(function(p)
    return K .. "/Certificates?" .. q .. "&ReturnLimit=" .. limit .. "&PageReturned=" .. p
  end, "x-total-count", function(items) if collect then for _, c in ipairs(items) do kf_ids[#kf_ids + 1] = c.Id end end end)
  return rest(limit)
end

phase("kflist", function()
  return kfwalk("includeMetadata=true&IncludeRevoked=true&IncludeExpired=true", 100, true)
end)

phase("kfquery", function()
  local n = kfwalk("includeMetadata=true&QueryString=" .. "IssuerDN%20-contains%20%22Sectigo%22", 100)
  n = n + kfwalk("includeMetadata=true&SortField=NotAfter&SortAscending=1&QueryString=CertState%20-eq%201", 500)
  return n + kfwalk("QueryString=CostCenter%20-ne%20NULL", 100)
end)

phase("kfdetails", function()
  local n = math.min(NDET or #kf_ids, #kf_ids)
  each(n, function(i) get(K .. "/Certificates/" .. kf_ids[i], KF) end)
  return n
end)

phase("report", function()
  -- 30-day issuance windows over the last three years, then one expiration window per status.
  local now = os.time()
  local n = 0
  local function ymd(t) return os.date("!%Y-%m-%d", t) end
  local windows = {}
  for d = -1095, 0, 30 do windows[#windows + 1] = { ymd(now + d * 86400), ymd(now + (d + 29) * 86400) } end
  each(#windows, function(i)
    get(S .. "/api/report/v1/ssl-certificates", SC, "POST",
      json.encode({ certificateDateAttribute = "5", from = windows[i][1], to = windows[i][2] }))
  end)
  n = n + #windows
  for _, st in ipairs({ "2", "3", "4" }) do
    get(S .. "/api/report/v1/ssl-certificates", SC, "POST",
      json.encode({ certificateStatus = st, certificateDateAttribute = "3", from = ymd(now - 86400 * 60), to = ymd(now) }))
    n = n + 1
  end
  return n
end)

local st = json.decode(get(S .. "/__sim/stats", {}).body)
print(string.format("TOTAL      %7d requests  sim cpu %7.2f s  %6.1f us/request  sim RSS %s", total_req, total_cpu,
  total_req > 0 and total_cpu / total_req * 1e6 or 0, rss()) .. (st.lua_heap_kb and
  string.format(", Lua heap %d MB", st.lua_heap_kb // 1024) or ""))

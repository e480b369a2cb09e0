-- Latency faults hold answers back without blocking other requests; jitter varies the delay.
local T = dofile(((arg and arg[0] or ""):match("^(.*/)") or "") .. "simtest.lua")
local task = require("metasync.task")

T.world("basic.json")

-- Runs n concurrent GETs of a certificate's details in tasks; returns their responses and how
-- long each took (client side).
local function concurrent(n)
  local tasks = {}
  for i = 1, n do
    tasks[i] = task.spawn(function()
      local t0 = task.now()
      local r = T.sc("GET", "/api/ssl/v1/101")
      return r, task.now() - t0
    end)
  end
  local out = {}
  for i, t in ipairs(tasks) do
    local ok, r, dt = t:join()
    T.ok(ok, "task " .. i .. ": " .. tostring(r))
    out[i] = { r = r, dt = dt }
  end
  return out
end

local function journal_delays(since)
  local list = T.decode(T.ctl("GET", "requests?endpoint=sectigo.details&since=" .. since))
  local d = {}
  for _, e in ipairs(list) do d[#d + 1] = e.delay_ms or 0 end
  return d
end

local function last_seq()
  local l = T.decode(T.ctl("GET", "requests?limit=1"))
  return l[1] and l[1].seq or 0
end

T.test("latency fault: 20 requests are all in flight together, each held >= 300 ms", function()
  T.eq(T.ctl("POST", "faults", { global = { latency_ms = 300 } }).status, 200, "set latency")
  T.eq(T.ctl("DELETE", "stats").status, 204, "zero the counters")
  local since = last_seq()
  local res = concurrent(20)
  for i, x in ipairs(res) do
    T.eq(x.r.status, 200, "request " .. i)
    T.ok(x.dt >= 0.29, "request " .. i .. " took " .. x.dt .. " s, less than the latency")
  end
  local st = T.decode(T.ctl("GET", "stats"))
  T.ok(st.max_inflight >= 20, "max_inflight " .. tostring(st.max_inflight) .. " < 20: delays serialised?")
  local d = journal_delays(since)
  T.eq(#d, 20, "journal entries")
  for _, ms in ipairs(d) do T.eq(ms, 300, "journal delay_ms") end
  T.ctl("DELETE", "faults")
end)

T.test("jitter: delays vary between latency_ms and latency_ms + jitter_ms", function()
  T.eq(T.ctl("POST", "faults", { endpoints = { ["sectigo.details"] = { latency_ms = 100, jitter_ms = 200 } } }).status,
    200, "set jitter")
  local since = last_seq()
  local res = concurrent(12)
  for i, x in ipairs(res) do
    T.eq(x.r.status, 200, "request " .. i)
    T.ok(x.dt >= 0.09, "request " .. i .. " took " .. x.dt .. " s, less than latency_ms")
  end
  local d = journal_delays(since)
  T.eq(#d, 12, "journal entries")
  local seen, distinct = {}, 0
  for _, ms in ipairs(d) do
    T.ok(ms >= 100 and ms <= 300, "delay " .. ms .. " outside 100..300")
    if not seen[ms] then seen[ms], distinct = true, distinct + 1 end
  end
  T.ok(distinct >= 3, "only " .. distinct .. " distinct delays among 12: no jitter?")
  T.ctl("DELETE", "faults")
end)

T.done()

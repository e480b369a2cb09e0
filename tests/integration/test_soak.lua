-- Faults: a nightly run rides out what real APIs do.
--   1. A field definition whose POST fails transiently is looked up by name and POSTed again only
--      when absent (POST /MetadataFields is not idempotent).
--   2. Many retries print one aggregated WARN line per API per minute, not one per retry.
--   3. The circuit breaker stops sending to an API after 20 consecutive failed attempts.
--   4. The soak: sctokf then kftosc over a generated world with a fault mix on every endpoint
--      (10% 5xx including 500 and Sectigo's -2 body, 5% 429 of which half with an HTTP-date
--      Retry-After, 1% resets, 1% truncated bodies, 1% malformed JSON) both exit 0, at default
--      settings, and leave both APIs exactly as a fault-free run does.
-- The simulator draws every request's faults from the request itself (per_request_draws), so
-- which attempt of which request fails is the same on every run: nothing here can flake.
-- bench/soak.sh runs part 4 at 10,000 certificates (METASYNC_SOAK_CERTS, METASYNC_SOAK_ONLY=1).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")
local json = require("metasync.json")
local task = require("metasync.task")

local CERTS = math.tointeger(tonumber(os.getenv("METASYNC_SOAK_CERTS") or "")) or 400
local SEED = math.tointeger(tonumber(os.getenv("METASYNC_SOAK_SEED") or "")) or 11
local ONLY_SOAK = os.getenv("METASYNC_SOAK_ONLY") == "1"

local function count(text, pattern)
  local n = 0
  for _ in text:gmatch(pattern) do n = n + 1 end
  return n
end

-- WARN lines about retries, per API, in a log text
local function retry_warns(logtext, api)
  local n = 0
  for line in logtext:gmatch("[^\n]+") do
    if line:find("| WARN  |", 1, true) and line:find("| " .. api .. ": %d+ retr") then n = n + 1 end
  end
  return n
end

local function requests(st, ep, method)
  local r = st.requests[ep]
  return r and r[method] or 0
end

local function stock_config(over)
  local fields = json.decode(assert(H.read(H.source_root .. "/config/fields.json")))
  local banned = assert(H.read(H.source_root .. "/config/bannedcharacters.json"))
  local c = { sectigoPageSize = 20, keyfactorPageSize = 50 }
  for k, v in pairs(over or {}) do c[k] = v end
  return H.config_dir(c, fields, banned)
end

if not ONLY_SOAK then
  -- 0. The simulator's knobs the soak relies on.
  local http = require("metasync.http")
  local function sc_get(path)
    local r = assert(http.request { url = H.sectigo .. path,
      headers = { login = "sim-admin", password = "sim-password", customerUri = "sim-customer" } })
    return r
  end
  H.reset(H.world())
  -- per_request_draws: a request's faults depend on the request and its repetition, not on the
  -- order requests arrive in
  local function statuses(order)
    H.call("DELETE", H.sectigo .. "/__sim/faults")
    H.faults { global = { per_request_draws = true, fail_rate = 0.5, fail_statuses = { 503 } } }
    local seen = { a = {}, b = {} }
    for _, which in ipairs(order) do
      local r = sc_get(which == "a" and "/api/ssl/v1/5001" or "/api/ssl/v1/5002")
      table.insert(seen[which], r.status)
    end
    return table.concat(seen.a, ","), table.concat(seen.b, ",")
  end
  local order1, order2 = {}, {}
  for i = 1, 24 do order1[i] = i <= 12 and "a" or "b"; order2[i] = i % 2 == 0 and "a" or "b" end
  local a1, b1 = statuses(order1)
  local a2, b2 = statuses(order2)
  H.eq(a2, a1, "per_request_draws: request a's answers")
  H.eq(b2, b1, "per_request_draws: request b's answers")
  assert(a1:find("503", 1, true) and a1:find("200", 1, true) and a1 ~= b1, a1 .. " / " .. b1)
  -- retry_after_date_rate: that share of the 429s carries an HTTP-date, the rest seconds
  H.call("DELETE", H.sectigo .. "/__sim/faults")
  H.faults { global = { rate_429 = 1, retry_after = 1, retry_after_date_rate = 0.5 } }
  local dates, secs = 0, 0
  for _ = 1, 60 do
    local r = sc_get("/api/ssl/v1/types")
    H.eq(r.status, 429, "rate_429 1")
    local ra = r.headers["retry-after"]
    if ra == "1" then secs = secs + 1
    elseif ra:match("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$") then dates = dates + 1
    else error("Retry-After: " .. ra) end
  end
  assert(dates >= 15 and secs >= 15, string.format("HTTP-dates %d, seconds %d", dates, secs))
  H.call("DELETE", H.sectigo .. "/__sim/faults")

  -- retryStatuses (config.json) reaches the clients: without 500 in it a 500 is not retried
  H.reset(H.world())
  -- (not Sectigo's -2 body: that one is retried whatever the status)
  local one500 = { scripts = { { endpoint = "sectigo.details", method = "GET",
    responses = { { status = 500, body = { code = -1, description = "Unknown error." } } } } } }
  H.faults(one500)
  local rc, out = H.run(H.config_dir({ retryStatuses = { 429, 502, 503, 504 } }), "sctokf")
  H.eq(rc, 2, "retryStatuses without 500: exit code")
  assert(out:find("HTTP 500: -1 Unknown error.", 1, true), out)
  H.reset(H.world())
  H.faults(one500)
  rc, out = H.run(H.config_dir(), "sctokf")
  H.eq(rc, 0, "a 500 is retried by default: exit code\n" .. out)

  -- 1. Field definitions: six to create in the small world (SectigoID, SectigoCertTypeID,
  -- SectigoStatus, SectigoRenewed, RenewalDate, BudgetCode).
  local CREATES = 6
  local cases = {
    -- the POST went through but its answer was lost: looked up, found, taken as created
    { name = "reset after the create", step = { fault = "reset" }, posts = CREATES },
    { name = "garbled answer to the create", step = { fault = "malformed" }, posts = CREATES },
    -- the POST never reached Keyfactor: looked up, absent (404), sent again
    { name = "HTTP 500 before the create", step = { status = 500 }, posts = CREATES + 1 },
    { name = "HTTP 503 before the create", step = { status = 503 }, posts = CREATES + 1 },
  }
  for _, case in ipairs(cases) do
    H.reset(H.world())
    local dir = H.config_dir()
    H.faults { scripts = { { endpoint = "keyfactor.metadatafields", method = "POST", responses = { case.step } } } }
    H.clear_stats()
    local rc, out, err = H.run(dir, "sctokf")
    H.eq(rc, 0, case.name .. ": exit code (" .. err .. out .. ")")
    assert(out:find("fields created: +" .. CREATES), case.name .. ": " .. out)
    local st = H.stats()
    H.eq(requests(st, "keyfactor.metadatafields", "POST"), case.posts, case.name .. ": POSTs")
    -- the lookup by name (the pre-flight list is GET /MetadataFields, paged)
    local looked = 0
    for _, r in ipairs(H.call("GET", H.sectigo .. "/__sim/requests?endpoint=keyfactor.metadatafields&method=GET")) do
      if r.path:match("^/KeyfactorAPI/MetadataFields/.") then looked = looked + 1 end
    end
    H.eq(looked, 1, case.name .. ": lookups by name")
    local world = H.state()
    local names = {}
    for _, f in ipairs(world.keyfactor.metadataFields) do
      H.eq(names[f.Name:lower()], nil, case.name .. ": field defined once: " .. f.Name)
      names[f.Name:lower()] = true
    end
    for _, n in ipairs({ "SectigoID", "SectigoCertTypeID", "SectigoStatus", "SectigoRenewed", "RenewalDate", "BudgetCode" }) do
      assert(names[n:lower()], case.name .. ": field " .. n .. " exists")
    end
    -- and the values of every field went in
    local k1 = H.kf_cert(world, 1)
    H.eq(k1.Metadata.SectigoID, "5001", case.name .. ": SectigoID synced")
    H.eq(k1.Metadata.BudgetCode, "42", case.name .. ": BudgetCode synced")
    H.eq(k1.Metadata.RenewalDate ~= nil, true, case.name .. ": RenewalDate synced")
  end
  -- a refusal is no transient failure: no lookup, no second POST, the field fails
  H.reset(H.world())
  H.faults { scripts = { { endpoint = "keyfactor.metadatafields", method = "POST",
    responses = { { status = 400, body = '{"ErrorCode":"0xA0110007","Message":"Simulated field refusal"}' } } } } }
  H.clear_stats()
  rc, out = H.run(H.config_dir(), "sctokf")
  H.eq(rc, 2, "refused field: exit code")
  assert(out:find("Simulated field refusal", 1, true), out)
  H.eq(requests(H.stats(), "keyfactor.metadatafields", "POST"), CREATES, "refused field: POSTs")

  -- 2. Log volume: 30% of all requests answered 429 (Retry-After: 0, so nothing waits): many
  -- retries, and with the default 60 s interval exactly one WARN line per API in a short run.
  -- Each retry is still logged at debug.
  H.call("DELETE", H.sectigo .. "/__sim/faults")
  H.reset({ certs = 150, seed = 3 })
  H.faults { global = { per_request_draws = true, rate_429 = 0.3, retry_after = 0 } }
  local dir = stock_config({ maxRetries = 12, logLevel = "debug" })
  local t0 = task.now()
  local _, lout, lerr, logtext
  rc, lout, lerr, logtext = H.run(dir, "sctokf")
  H.eq(rc, 0, "30% 429: exit code (" .. lerr .. lout .. ")")
  assert(task.now() - t0 < 60, "the run is shorter than the interval")
  local st = H.stats()
  local injected = st.statuses["429"] or 0
  assert(injected > 100, "429s answered: " .. injected)
  local debug_retries = count(logtext, "| DEBUG | %a+ | [^\n]-, retry %d+/%d+ in ")
  H.eq(debug_retries, injected, "one debug line per retry")
  H.eq(retry_warns(logtext, "Sectigo"), 1, "Sectigo retry WARN lines")
  H.eq(retry_warns(logtext, "Keyfactor"), 1, "Keyfactor retry WARN lines")
  assert(logtext:find("| Sectigo: 1 retry (1 x HTTP 429); last: ", 1, true), logtext:sub(1, 3000))
  -- on the console (WARN and above) too: the two lines, not hundreds
  H.eq(count(lerr, "retr[yi]e?s? %(") , 2, "retry lines on stderr: " .. lerr)
  H.call("DELETE", H.sectigo .. "/__sim/faults")

  -- 3. The circuit breaker: every metadata PUT fails with 503. After 20 consecutive failed
  -- attempts (retries included) nothing more is sent to Keyfactor: the remaining certificates
  -- fail at once with the breaker's message instead of each being tried 7 times with backoff.
  -- (One Keyfactor page, read before the first PUT: no success in between resets the count.)
  H.reset({ certs = 200, seed = 3 })
  H.faults { endpoints = { ["keyfactor.metadata"] = { fail_rate = 1, fail_statuses = { 503 } } } }
  H.clear_stats()
  -- Keyfactor's cap (8) well under the pairs in flight (1.5 x (32 + 8) = 60), so that many
  -- PUTs wait behind it when the breaker opens.
  local caps = { sectigoConcurrency = 32, keyfactorConcurrency = 8 }
  dir = stock_config({ keyfactorPageSize = 1000, circuitBreakerSeconds = 0,
    sectigoConcurrency = caps.sectigoConcurrency, keyfactorConcurrency = caps.keyfactorConcurrency })
  rc, out, lerr, logtext = H.run(dir, "sctokf")
  assert(rc ~= 0, "breaker: the run fails")
  st = H.stats()
  local puts = requests(st, "keyfactor.metadata", "PUT")
  -- Sent besides the 20: those in flight when it opened (at most the cap, 8), and as many
  -- again at most, started by metasync.http as the previous ones finished, before their tasks
  -- ran (the failures one loop turn delivers). What was queued for Keyfactor then is dropped
  -- (http.drop); without that, every pair in flight (60) would have sent its PUT.
  local conc = caps.keyfactorConcurrency
  assert(puts >= 20 and puts <= 20 + 2 * conc, "breaker: PUTs sent " .. puts)
  local matched = tonumber(out:match("matched: +(%d+)"))
  -- (The listing stops at the breaker: what matched is what the pairs in flight had started,
  -- at least one pair for each PUT sent.)
  assert(matched and matched >= 20, "breaker: matched " .. tostring(matched) .. "\n" .. out)
  local line = logtext:match("[^\n]*Keyfactor is failing: 20 consecutive errors, last: [^\n]*")
  assert(line, "breaker: its line in the log\n" .. logtext:sub(-3000))
  assert(line:find("| ERROR |", 1, true), line)
  assert(line:find("last: PUT /Certificates/Metadata -> HTTP 503: ", 1, true), line)
  -- every certificate after the trip failed with the breaker's message, without a request
  assert(count(out, "Keyfactor is failing: 20 consecutive errors") >= 1, out)
  -- circuitBreakerErrors (config.json) sets the threshold
  H.reset({ certs = 200, seed = 3 })
  H.faults { endpoints = { ["keyfactor.metadata"] = { fail_rate = 1, fail_statuses = { 503 } } } }
  H.clear_stats()
  rc, out, lerr, logtext = H.run(stock_config({ keyfactorPageSize = 1000, circuitBreakerErrors = 5, circuitBreakerSeconds = 0,
    sectigoConcurrency = caps.sectigoConcurrency, keyfactorConcurrency = caps.keyfactorConcurrency }), "sctokf")
  puts = requests(H.stats(), "keyfactor.metadata", "PUT")
  assert(rc ~= 0 and puts >= 5 and puts <= 5 + 2 * conc, "circuitBreakerErrors 5: PUTs sent " .. puts)
  assert(logtext:find("Keyfactor is failing: 5 consecutive errors, last: ", 1, true), logtext:sub(-2000))
  H.call("DELETE", H.sectigo .. "/__sim/faults")
end

-- 4. The soak.
local function canon(v, out)
  local t = type(v)
  if t == "table" then
    if v[1] ~= nil or next(v) == nil then
      out[#out + 1] = "["
      for i = 1, #v do canon(v[i], out); out[#out + 1] = "," end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      table.sort(keys)
      out[#out + 1] = "{"
      for _, k in ipairs(keys) do
        out[#out + 1] = string.format("%q:", k)
        canon(v[k], out)
        out[#out + 1] = ","
      end
      out[#out + 1] = "}"
    end
  elseif t == "string" then
    out[#out + 1] = string.format("%q", v)
  else
    out[#out + 1] = tostring(v)
  end
end

local function sorted(list, key)
  table.sort(list, function(a, b) return key(a) < key(b) end)
  return list
end

-- Both APIs' state, canonical: certificates by id, custom fields and metadata fields by name,
-- object keys sorted. Returns the whole text and the per-certificate texts (for a useful diff).
local function snapshot()
  local st = H.state()
  local parts = {}
  sorted(st.sectigo.certificates, function(c) return c.id end)
  for _, c in ipairs(st.sectigo.certificates) do
    sorted(c.customFields or {}, function(f) return f.name end)
  end
  sorted(st.sectigo.customFields or {}, function(f) return f.name end)
  sorted(st.keyfactor.certificates, function(c) return c.Id end)
  sorted(st.keyfactor.metadataFields, function(f) return f.Name:lower() end)
  for _, c in ipairs(st.sectigo.certificates) do
    local o = {}
    canon(c, o)
    parts["sectigo " .. c.id] = table.concat(o)
  end
  for _, c in ipairs(st.keyfactor.certificates) do
    local o = {}
    canon(c, o)
    parts["keyfactor " .. c.Id] = table.concat(o)
  end
  local o = {}
  canon(st, o)
  return table.concat(o), parts
end

local function first_difference(a, b)
  local keys = {}
  for k in pairs(a) do keys[#keys + 1] = k end
  for k in pairs(b) do if a[k] == nil then keys[#keys + 1] = k end end
  table.sort(keys)
  for _, k in ipairs(keys) do
    if a[k] ~= b[k] then return k .. ":\n  fault-free: " .. tostring(a[k]) .. "\n  with faults: " .. tostring(b[k]) end
  end
  return "(certificates equal: the difference is in the field definitions or settings)"
end

local SECTIGO_EPS = { "sectigo.list", "sectigo.details", "sectigo.update", "sectigo.types", "sectigo.customfields",
  "sectigo.report" }
local function mix()
  local eps = {}
  -- Sectigo's "-2 Internal error" also comes with a 4xx status.
  for _, ep in ipairs(SECTIGO_EPS) do eps[ep] = { fail_statuses = { 500, 500, 502, 503, 504, 400 } } end
  return { global = { per_request_draws = true, fail_rate = 0.10, fail_statuses = { 500, 500, 502, 503, 504 },
    rate_429 = 0.05, retry_after = 1, retry_after_date_rate = 0.5,
    reset_rate = 0.01, truncate_rate = 0.01, malformed_rate = 0.01 }, endpoints = eps }
end

local logged = {} -- log bytes per config dir already seen: each run's own lines are the rest
local function soak_run(dir, command, figures)
  H.clear_stats()
  local t0 = task.now()
  local rc, out, err = H.run(dir, command)
  local wall = task.now() - t0
  local logtext = H.read(H.main_log(dir)) or ""
  local seen = logged[dir] or 0
  logged[dir] = #logtext
  logtext = logtext:sub(seen + 1)
  local st = H.stats()
  local statuses = {}
  for k, v in pairs(st.statuses) do statuses[#statuses + 1] = k .. ": " .. v end
  table.sort(statuses)
  local warns = retry_warns(logtext, "Sectigo") + retry_warns(logtext, "Keyfactor")
  -- faults_injected counts from the last reset of the faults
  local injected = (st.faults_injected or 0) - (figures.injected or 0)
  figures.injected = st.faults_injected or 0
  local line = string.format("%-6s exit %d, %6.1f s, updated %s, failed %s, %d requests (%d writes), %d faults injected, "
    .. "%d retry WARN lines; statuses %s", command, rc, wall, out:match("\n +updated: +(%d+)") or "?",
    out:match("\n +failed: +(%d+)") or "?", st.total, H.writes(st), injected, warns, table.concat(statuses, ", "))
  figures[#figures + 1] = line
  print(line)
  return rc, out, err, logtext, wall, st
end

H.call("DELETE", H.sectigo .. "/__sim/faults")
local figures = {}
local world = { certs = CERTS, seed = SEED }
local dir = stock_config()

-- The fault-free run, for the state to compare with.
H.reset(world)
print(string.format("soak: %d certificates (seed %d), fault-free:", CERTS, SEED))
for _, command in ipairs({ "sctokf", "kftosc" }) do
  local rc, out, err = soak_run(dir, command, figures)
  H.eq(rc, 0, "fault-free " .. command .. ": exit code\n" .. out .. err)
end
local want, want_parts = snapshot()

-- The same world with the fault mix on every endpoint, a fresh state file.
dir = stock_config()
H.reset(world)
H.faults(mix())
figures.injected = 0
print("with the fault mix on every endpoint:")
local injected = 0
for _, command in ipairs({ "sctokf", "kftosc" }) do
  local rc, out, err, logtext, wall, st = soak_run(dir, command, figures)
  H.eq(rc, 0, "soak " .. command .. ": exit code\n" .. out .. err)
  assert(out:find("failed: +0"), out)
  assert((st.statuses["500"] or 0) > 0 and (st.statuses["429"] or 0) > 0 and (st.statuses["400"] or 0) > 0,
    "the mix reached the APIs")
  injected = st.faults_injected or 0
  -- at most one retry WARN line per API a minute (the first at once)
  local bound = 2 * (math.floor(wall / 60) + 1)
  local warns = retry_warns(logtext, "Sectigo") + retry_warns(logtext, "Keyfactor")
  assert(warns >= 1 and warns <= bound, string.format("%s: %d retry WARN lines in %.0f s", command, warns, wall))
  assert(not logtext:find("is failing: ", 1, true), "no breaker opened")
end
assert(injected > CERTS / 5, "faults injected: " .. injected)
H.call("DELETE", H.sectigo .. "/__sim/faults")
local got, got_parts = snapshot()
if got ~= want then
  error("the state after the faulty runs differs from the fault-free one; first difference: "
    .. first_difference(want_parts, got_parts))
end
print(string.format("soak: %d certificates, state equal to the fault-free run's", CERTS))
print("ok")

-- Fault injection: latency, random errors, 429s, resets, truncation, malformed bodies,
-- server-side rate limits and scripted response sequences. Settable globally or per endpoint.
local U = require("util")

local F = {}

-- Every knob, with its accepted range; a spec is a table holding some of these.
local KNOBS = {
  latency_ms = { 0, 600000 }, jitter_ms = { 0, 600000 }, fail_rate = { 0, 1 },
  rate_429 = { 0, 1 }, retry_after = { 0, 86400 }, reset_rate = { 0, 1 },
  truncate_rate = { 0, 1 }, malformed_rate = { 0, 1 }, rate_limit = { 0, 1000000 },
  retry_after_date_rate = { 0, 1 },
}
-- The endpoint keys S.route, K.route and the token handler give (README "Endpoint keys"): a
-- fault for any other key would silently never fire.
local ENDPOINTS = {}
for _, k in ipairs({ "sectigo.list", "sectigo.details", "sectigo.update", "sectigo.types",
  "sectigo.customfields", "sectigo.report", "sectigo.token", "sectigo.other", "keyfactor.certificates",
  "keyfactor.certificate", "keyfactor.metadata", "keyfactor.metadata_all", "keyfactor.metadatafields",
  "keyfactor.status", "keyfactor.token", "keyfactor.other" }) do ENDPOINTS[k] = true end
F.ENDPOINTS = ENDPOINTS

local function bad_endpoint(path, k)
  return string.format("%s: unknown endpoint '%s' (one of %s)", path, tostring(k):sub(1, 100),
    "sectigo.list, .details, .update, .types, .customfields, .report, .token, .other; "
    .. "keyfactor.certificates, .certificate, .metadata, .metadata_all, .metadatafields, .status, .token, .other")
end

local FORMATS = { seconds = true, ["http-date"] = true }
local STEP_KEYS = { status = 1, body = 1, headers = 1, retry_after = 1, retry_after_format = 1,
  fault = 1, delay_ms = 1, pass = 1 }

local state, rng, clock, http_date

-- Resets to the startup defaults (from the command line).
function F.init(defaults, seed, simcore)
  F.defaults = defaults or {}
  F.seed = math.tointeger(seed) or 0
  rng = U.rng((seed or 0) + 7919)
  clock = simcore.now
  http_date = simcore.http_date
  F.wallclock = simcore.time
  F.clear()
end

function F.clear()
  state = { global = U.copy(F.defaults), endpoints = {}, scripts = {}, buckets = {}, injected = 0, seen = {} }
  state.idle = F.idle()
end

function F.injected() return state.injected end

-- True when no knob is set and no script is queued: F.before can skip every check.
function F.idle()
  if #state.scripts > 0 or next(state.endpoints) ~= nil then return false end
  for k, v in pairs(state.global) do
    if type(v) == "number" and v ~= 0 and k ~= "retry_after" then return false end
  end
  return true
end

local function check_spec(spec, path)
  if type(spec) ~= "table" then return path .. ": must be an object" end
  for k, v in pairs(spec) do
    local range = KNOBS[k]
    if k == "fail_statuses" then
      if type(v) ~= "table" or #v == 0 then return path .. ".fail_statuses: must be a non-empty array" end
      for _, st in ipairs(v) do
        if not U.int(st, 400, 599) then return path .. ".fail_statuses: statuses must be 400..599" end
      end
    elseif k == "retry_after_format" then
      if not FORMATS[v] then return path .. ".retry_after_format: 'seconds' or 'http-date'" end
    elseif k == "per_request_draws" then
      if type(v) ~= "boolean" then return path .. ".per_request_draws: must be true or false" end
    elseif not range then
      return path .. ": unknown fault '" .. tostring(k) .. "'"
    elseif type(v) ~= "number" or v ~= v or v < range[1] or v > range[2] then
      return string.format("%s.%s: must be a number in [%s, %s]", path, k, range[1], range[2])
    end
  end
end

local function check_script(sc, path)
  if type(sc) ~= "table" then return path .. ": must be an object" end
  if type(sc.endpoint) ~= "string" or #sc.endpoint > 64 then return path .. ".endpoint: required string" end
  if sc.endpoint ~= "*" and not ENDPOINTS[sc.endpoint] then return bad_endpoint(path .. ".endpoint", sc.endpoint) end
  if sc.method ~= nil and (type(sc.method) ~= "string" or #sc.method > 16) then return path .. ".method: string" end
  if type(sc.responses) ~= "table" or #sc.responses == 0 or #sc.responses > 10000 then
    return path .. ".responses: array of 1..10000 steps"
  end
  for i, st in ipairs(sc.responses) do
    local p = path .. ".responses[" .. i .. "]"
    if type(st) ~= "table" then return p .. ": must be an object" end
    for k in pairs(st) do if not STEP_KEYS[k] then return p .. ": unknown key '" .. tostring(k) .. "'" end end
    if st.status ~= nil and not U.int(st.status, 100, 599) then return p .. ".status: 100..599" end
    if st.status == nil and not st.pass and not st.fault and not st.delay_ms then
      return p .. ": needs status, pass, fault or delay_ms"
    end
    if st.fault ~= nil and st.fault ~= "reset" and st.fault ~= "truncate" and st.fault ~= "malformed" then
      return p .. ".fault: reset, truncate or malformed"
    end
    if st.body ~= nil and type(st.body) ~= "string" and type(st.body) ~= "table" then return p .. ".body: string or JSON" end
    if st.headers ~= nil and type(st.headers) ~= "table" then return p .. ".headers: object" end
    if st.delay_ms ~= nil and not U.int(st.delay_ms, 0, 600000) then return p .. ".delay_ms: 0..600000" end
    if st.retry_after ~= nil and not U.int(st.retry_after, 0, 86400) then return p .. ".retry_after: 0..86400" end
    if st.retry_after_format ~= nil and not FORMATS[st.retry_after_format] then return p .. ".retry_after_format" end
  end
end

-- Applies a POSTed document; all-or-nothing. Returns true or nil, message.
function F.set(doc)
  if type(doc) ~= "table" then return nil, "body must be a JSON object" end
  if doc.endpoint and doc.responses then doc = { scripts = { doc } } end
  for k in pairs(doc) do
    if k ~= "global" and k ~= "endpoints" and k ~= "scripts" then
      return nil, "unknown key '" .. tostring(k) .. "' (global, endpoints, scripts)"
    end
  end
  local err = doc.global ~= nil and check_spec(doc.global, "global")
  if err then return nil, err end
  if doc.endpoints ~= nil then
    if type(doc.endpoints) ~= "table" then return nil, "endpoints: must be an object" end
    for k, spec in pairs(doc.endpoints) do
      if not ENDPOINTS[k] then return nil, bad_endpoint("endpoints", k) end
      err = check_spec(spec, "endpoints." .. tostring(k))
      if err then return nil, err end
    end
  end
  if doc.scripts ~= nil then
    if type(doc.scripts) ~= "table" then return nil, "scripts: must be an array" end
    for i, sc in ipairs(doc.scripts) do
      err = check_script(sc, "scripts[" .. i .. "]")
      if err then return nil, err end
    end
  end
  for k, v in pairs(doc.global or {}) do state.global[k] = U.copy(v) end
  for ep, spec in pairs(doc.endpoints or {}) do
    local cur = state.endpoints[ep] or {}
    for k, v in pairs(spec) do cur[k] = U.copy(v) end
    state.endpoints[ep] = cur
    state.buckets[ep] = nil
  end
  state.buckets.global = nil
  for _, sc in ipairs(doc.scripts or {}) do
    local steps = {}
    for i, st in ipairs(sc.responses) do steps[i] = U.copy(st) end
    state.scripts[#state.scripts + 1] = { endpoint = sc.endpoint, method = sc.method and sc.method:upper(),
      steps = steps, next = 1 }
  end
  state.idle = F.idle()
  return true
end

function F.get()
  local scripts = U.array()
  for _, sc in ipairs(state.scripts) do
    local rest = U.array()
    for i = sc.next, #sc.steps do rest[#rest + 1] = sc.steps[i] end
    if #rest > 0 then scripts[#scripts + 1] = { endpoint = sc.endpoint, method = sc.method, responses = rest } end
  end
  local eps = {}
  for k, v in pairs(state.endpoints) do eps[k] = v end
  return { global = state.global, endpoints = eps, scripts = scripts, injected = state.injected }
end

local function knob(ep, name)
  local e = state.endpoints[ep]
  if e and e[name] ~= nil then return e[name] end
  return state.global[name]
end

local function take_token(key, rps)
  local now = clock()
  local b = state.buckets[key]
  if not b or b.rps ~= rps then
    b = { rps = rps, tokens = rps, t = now }
    state.buckets[key] = b
  end
  b.tokens = math.min(rps, b.tokens + (now - b.t) * rps)
  b.t = now
  if b.tokens >= 1 then
    b.tokens = b.tokens - 1
    return true
  end
  return false
end

local function retry_after(secs, fmt)
  if fmt == "http-date" then return http_date(math.floor(F.wallclock()) + secs) end
  return tostring(math.floor(secs))
end

-- The plan of every request while no fault is configured (shared, so read-only).
local NO_FAULT = setmetatable({}, { __index = { delay_ms = 0 }, __newindex = function() error("read-only plan") end })

-- A JSON body with its object keys sorted (a client's encoder need not keep an order), so
-- equal requests read the same; anything else as it is.
local function canon(v, out)
  if type(v) ~= "table" then
    out[#out + 1] = tostring(v)
  elseif v[1] ~= nil or next(v) == nil then
    out[#out + 1] = "["
    for i = 1, #v do canon(v[i], out); out[#out + 1] = "," end
    out[#out + 1] = "]"
  else
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    out[#out + 1] = "{"
    for _, k in ipairs(keys) do
      out[#out + 1] = k
      out[#out + 1] = ":"
      canon(v[k], out)
      out[#out + 1] = ","
    end
    out[#out + 1] = "}"
  end
end

local function fnv1a(s, h)
  for i = 1, #s do h = (h ~ s:byte(i)) * 1099511628211 end
  return h
end

-- per_request_draws: the draws for a request come from its own generator, seeded by the seed,
-- the request (method, path, query, body with sorted JSON keys) and how many times that same
-- request came before, instead of from the one shared stream. Which attempt of which request
-- fails is then the same on every run, whatever order concurrent requests arrive in.
local function request_rng(method, req)
  local body = req and req.body or ""
  local first = body:match("^%s*(.)")
  if first == "{" or first == "[" then
    local ok, doc = pcall(U.decode, body)
    if ok and type(doc) == "table" then
      local out = {}
      canon(doc, out)
      body = table.concat(out)
    end
  end
  local h = fnv1a(string.format("%s %s?%s\n", method, req and req.path or "", req and req.query or ""),
    -3750763034362895579)
  h = fnv1a(body, h)
  local n = (state.seen[h] or 0) + 1
  state.seen[h] = n
  return U.rng(h ~ (n * 0x9E3779B97F4A7C15) ~ F.seed)
end

-- Decides what happens before the handler runs (req: the request, for per_request_draws).
-- Returns plan = {status=?, headers=, body=, delay_ms=, fault=} where status set means
-- "answer this instead of the handler".
function F.before(ep, method, req)
  if state.idle then return NO_FAULT end
  local rng = knob(ep, "per_request_draws") and request_rng(method, req) or rng
  local plan = { delay_ms = 0 }
  local lat = knob(ep, "latency_ms") or 0
  local jit = knob(ep, "jitter_ms") or 0
  if lat > 0 or jit > 0 then plan.delay_ms = math.floor(lat + (jit > 0 and rng:float() * jit or 0)) end
  for _, sc in ipairs(state.scripts) do
    if sc.next <= #sc.steps and (sc.endpoint == ep or sc.endpoint == "*")
        and (not sc.method or sc.method == method) then
      local st = sc.steps[sc.next]
      sc.next = sc.next + 1
      state.injected = state.injected + 1
      if st.delay_ms then plan.delay_ms = st.delay_ms end
      plan.fault = st.fault
      if st.status and not st.pass then
        plan.status, plan.body, plan.headers = U.int(st.status), st.body, U.copy(st.headers) or {}
        if plan.status == 429 or st.retry_after then
          plan.headers["Retry-After"] = retry_after(st.retry_after or knob(ep, "retry_after") or 1,
            st.retry_after_format or knob(ep, "retry_after_format"))
        end
      elseif st.headers then
        -- A normal answer with some headers replaced (a lying X-Total-Count over real pages).
        plan.headers = U.copy(st.headers)
      end
      return plan
    end
  end
  local rl = knob(ep, "rate_limit") or 0
  if rl > 0 then
    local key = (state.endpoints[ep] and state.endpoints[ep].rate_limit) and ep or "global"
    if not take_token(key, rl) then
      state.injected = state.injected + 1
      plan.status, plan.headers = 429, { ["Retry-After"] = retry_after(1, knob(ep, "retry_after_format")) }
      return plan
    end
  end
  local r429 = knob(ep, "rate_429") or 0
  if r429 > 0 and rng:float() < r429 then
    state.injected = state.injected + 1
    plan.status = 429
    local fmt = knob(ep, "retry_after_format")
    local dates = knob(ep, "retry_after_date_rate") or 0
    if fmt == nil and dates > 0 and rng:float() < dates then fmt = "http-date" end
    plan.headers = { ["Retry-After"] = retry_after(knob(ep, "retry_after") or 1, fmt) }
    return plan
  end
  local fr = knob(ep, "fail_rate") or 0
  if fr > 0 and rng:float() < fr then
    state.injected = state.injected + 1
    local sts = knob(ep, "fail_statuses") or { 500, 502, 503 }
    plan.status, plan.headers = U.int(sts[rng:int(#sts)]), {}
    return plan
  end
  for _, f in ipairs({ "reset", "truncate", "malformed" }) do
    local rate = knob(ep, f .. "_rate") or 0
    if rate > 0 and rng:float() < rate then
      state.injected = state.injected + 1
      plan.fault = f
      break
    end
  end
  return plan
end

-- Applies a pass step's headers (replacing any of the same name, in any case) and a
-- body-level fault to a finished response.
function F.after(resp, fault, headers)
  if headers then
    local h = resp.headers or {}
    for k, v in pairs(headers) do
      for hk in pairs(h) do
        if type(hk) == "string" and hk:lower() == tostring(k):lower() then h[hk] = nil end
      end
      h[k] = tostring(v)
    end
    resp.headers = h
  end
  if not fault then return resp end
  local n = #resp.body
  if fault == "malformed" then
    resp.body = resp.body:sub(1, math.max(1, n // 2))
    if resp.body == "" or n == 0 then resp.body = "{" end
  else
    resp.fault = fault
    resp.fault_at = n // 2
  end
  return resp
end

return F

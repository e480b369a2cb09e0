-- The /__sim/ control API (no auth, both ports): stats, state, reset, faults, settings, requests.
local U = require("util")
local IO = require("dataio")
local F = require("faults")
local J = require("journal")
local SET = require("settings")
local N = require("counters")

local CTL = {}
local C, simcore

function CTL.init(ctx, core) C, simcore = ctx, core end

local function json(status, v)
  return { status = status, headers = { ["Content-Type"] = "application/json" }, body = U.encode(v) }
end

local function bad(msg) return json(400, { error = msg }) end

local function stats()
  local s = C.stats()
  return json(200, { requests = s.requests, statuses = s.statuses, total = s.total, writes = s.writes,
    writes_by_endpoint = s.writes_by_endpoint, faults_injected = F.injected(),
    inflight = simcore.inflight and simcore.inflight() or 0,
    max_inflight = simcore.max_inflight and simcore.max_inflight() or 0, index = N.get(),
    lua_heap_kb = math.floor(collectgarbage("count")) })
end

local function counts()
  return { sectigo_certificates = #C.world.sectigo.certs, keyfactor_certificates = #C.world.keyfactor.certs }
end

local function reset(req)
  local body = req.body or ""
  local world
  if body:match("^%s*$") then
    local ok, w = pcall(C.startup_world)
    if not ok then return bad(tostring(w)) end
    world = w
  else
    local doc, err = U.decode(body)
    if type(doc) ~= "table" then return bad("invalid JSON: " .. tostring(err)) end
    if U.is_array(doc) then return bad("body must be a JSON object: {certs, seed} or a world") end
    if doc.sectigo ~= nil or doc.keyfactor ~= nil or doc.settings ~= nil then
      local w, lerr = IO.load(doc)
      if not w then return bad(lerr) end
      world = w
    else
      for k in pairs(doc) do
        if k ~= "certs" and k ~= "seed" then return bad("unknown key '" .. tostring(k) .. "' (certs, seed, or a world)") end
      end
      local n = doc.certs == nil and C.cfg.certs or U.int(doc.certs, 0, 200000)
      local seed = doc.seed == nil and C.cfg.seed or math.tointeger(doc.seed)
      if not n then return bad("certs: integer 0..200000") end
      if not seed then return bad("seed: integer") end
      world = C.generate(n, seed)
    end
  end
  C.world = world
  C.reset_stats()
  C.expire_tokens()
  F.clear()
  J.clear()
  return json(200, counts())
end

-- GET shows every setting's effective value; POST changes some (all or nothing). Caches that
-- depend on a setting carry it in their variant key, so nothing needs flushing here.
local function settings(req)
  local st = C.world.settings
  if req.method == "POST" then
    local doc, err = U.decode(req.body)
    if type(doc) ~= "table" then return bad("invalid JSON: " .. tostring(err)) end
    local serr = SET.check(doc)
    if serr then return bad(serr) end
    SET.apply(st, doc)
  end
  return json(200, SET.view(st, C.cfg))
end

function CTL.handle(req)
  local p, m = req.path:gsub("/+$", ""), req.method
  if p == "/__sim/stats" then
    if m == "GET" or m == "HEAD" then return stats() end
    if m == "DELETE" then
      C.reset_stats()
      return { status = 204, headers = {}, body = "" }
    end
  elseif p == "/__sim/state" and (m == "GET" or m == "HEAD") then
    return json(200, IO.dump(C.world))
  elseif p == "/__sim/reset" and m == "POST" then
    return reset(req)
  elseif p == "/__sim/faults" then
    if m == "GET" or m == "HEAD" then return json(200, F.get()) end
    if m == "DELETE" then
      F.clear()
      return json(200, F.get())
    end
    if m == "POST" then
      local doc, err = U.decode(req.body)
      if type(doc) ~= "table" then return bad("invalid JSON: " .. tostring(err)) end
      local ok, ferr = F.set(doc)
      if not ok then return bad(ferr) end
      return json(200, F.get())
    end
  elseif p == "/__sim/settings" and (m == "GET" or m == "POST") then
    return settings(req)
  elseif p == "/__sim/requests" then
    if m == "GET" or m == "HEAD" then
      local list, err = J.list(req.args)
      if not list then return bad(err) end
      return json(200, list)
    end
    if m == "DELETE" then
      J.clear()
      return { status = 204, headers = {}, body = "" }
    end
  elseif p == "/__sim/tokens" and m == "DELETE" then
    C.expire_tokens()
    return { status = 204, headers = {}, body = "" }
  else
    return json(404, { error = "unknown control path " .. p:sub(1, 200) ..
      " (stats, state, reset, faults, settings, tokens, requests)" })
  end
  return json(405, { error = "method " .. m:sub(1, 16) .. " not allowed on " .. p })
end

return CTL

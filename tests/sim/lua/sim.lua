-- metasync-sim entry points for the C host: M.init(args) and M.handle(req).
local U = require("util")
local D = require("data")
local IO = require("dataio")
local F = require("faults")
local S = require("sectigo")
local K = require("keyfactor")
local CTL = require("control")
local J = require("journal")
local N = require("counters")

local M = {}
-- The host's native helpers are preloaded as "sim" (this file is loaded by path, so the
-- name is free); a dev harness may provide them as "simcore" instead.
local core_ok, simcore = pcall(require, "simcore")
if not core_ok or type(simcore) ~= "table" or not simcore.now then simcore = require("sim") end

local HELP = [[
Usage: metasync-sim [--handler FILE] [options]
Simulates the Sectigo Certificate Manager and Keyfactor Command REST APIs on loopback.
When ready it prints one JSON line: {"sectigo":"http://H:P","keyfactor":"http://H:Q/KeyfactorAPI"}

  --host ADDR                 loopback address to listen on (default 127.0.0.1)
  --sectigo-port N            Sectigo port, 0 = any free port (default 8081)
  --keyfactor-port N          Keyfactor port, 0 = any free port (default 8082)
  --certs N                   generated Sectigo certificates (default 100, max 200000)
  --seed N                    generator seed (default 1)
  --data FILE                 load this exact world (JSON, see tests/sim/README.md) instead
  --sectigo-login S           Sectigo 'login' header (default sim-admin)
  --sectigo-password S        Sectigo 'password' header (default sim-password)
  --sectigo-customer-uri S    Sectigo 'customerUri' header (default sim-customer)
  --keyfactor-user S          Keyfactor Basic user, any "DOMAIN\" prefix accepted (default sim-admin)
  --keyfactor-password S      Keyfactor Basic password (default sim-password)
  --oauth-client-id S         OAuth2 client id for POST /oauth/token (default sim-client)
  --oauth-client-secret S     OAuth2 client secret (default sim-secret)
  --latency-ms N              added latency per request (default 0)
  --jitter-ms N               random extra latency, 0..N ms (default 0)
  --fail-rate R               fraction of requests answered 500/502/503 (default 0)
  --rate-limit RPS            answer 429 above RPS requests/s (default 0 = off)
  --keyfactor-date-format F   Date metadata read-back: "M/d/yyyy h:mm:ss tt" (Command 25.1,
                              default) or "yyyy-MM-dd" (older versions)
  --handler FILE              serve with the Lua handler FILE instead of the simulator (e.g.
                              tests/http/testserver.lua, see tests/http/README.md); the other
                              options then go to FILE's init
  --tls-cert FILE             serve HTTPS with this PEM certificate (chain); the ready line
  --tls-key FILE              then gives https:// URLs. FILE: the certificate's PEM private key
  --tls-client-ca FILE        demand a client certificate signed by a CA in this PEM file
  --help                      show this help

Control API (no auth, both ports): /__sim/stats, /__sim/state, /__sim/reset, /__sim/faults,
/__sim/settings, /__sim/requests (journal of recent requests). OAuth2 tokens: POST /oauth/token on either port.
]]

local OPTS = {
  host = "string", ["sectigo-port"] = "port", ["keyfactor-port"] = "port", certs = { 0, 200000 },
  seed = { -(1 << 53), 1 << 53 }, data = "string", ["sectigo-login"] = "string", ["sectigo-password"] = "string",
  ["sectigo-customer-uri"] = "string", ["keyfactor-user"] = "string", ["keyfactor-password"] = "string",
  ["oauth-client-id"] = "string", ["oauth-client-secret"] = "string", ["latency-ms"] = { 0, 600000 },
  ["jitter-ms"] = { 0, 600000 }, ["fail-rate"] = { 0, 1, float = true }, ["rate-limit"] = { 0, 1000000, float = true },
  ["keyfactor-date-format"] = "string",
}

local cfg, C, stats, tokens, rng

local function reset_stats()
  stats = { requests = {}, statuses = {}, total = 0, writes = 0, writes_by_endpoint = {} }
  N.reset()
  if simcore.reset_inflight then simcore.reset_inflight() end
end

local function parse_args(args)
  local o = { host = "127.0.0.1", ["sectigo-port"] = 8081, ["keyfactor-port"] = 8082, certs = 100, seed = 1,
    ["sectigo-login"] = "sim-admin", ["sectigo-password"] = "sim-password",
    ["sectigo-customer-uri"] = "sim-customer", ["keyfactor-user"] = "sim-admin",
    ["keyfactor-password"] = "sim-password", ["oauth-client-id"] = "sim-client",
    ["oauth-client-secret"] = "sim-secret", ["latency-ms"] = 0, ["jitter-ms"] = 0, ["fail-rate"] = 0,
    ["rate-limit"] = 0, ["keyfactor-date-format"] = "M/d/yyyy h:mm:ss tt" }
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--help" or a == "-h" then return nil end
    local name, val = a:match("^%-%-([%w%-]+)=(.*)$")
    if not name then
      name = a:match("^%-%-([%w%-]+)$")
      if not name then error("unexpected argument '" .. a .. "' (see --help)", 0) end
      if not OPTS[name] then error("unknown option --" .. name .. " (see --help)", 0) end
      i = i + 1
      val = args[i]
      if val == nil then error("option --" .. name .. " needs a value", 0) end
    end
    local kind = OPTS[name]
    if not kind then error("unknown option --" .. name .. " (see --help)", 0) end
    if kind == "string" then
      if #val > 4096 then error("--" .. name .. ": value too long", 0) end
      o[name] = val
    else
      local n = tonumber(val)
      local lo, hi = 0, 65535
      if type(kind) == "table" then lo, hi = kind[1], kind[2] end
      local int = n and math.tointeger(n)
      if not n or n ~= n or n < lo or n > hi or (not (type(kind) == "table" and kind.float) and not int) then
        error(string.format("--%s: expected %s between %s and %s, got '%s'", name,
          (type(kind) == "table" and kind.float) and "a number" or "an integer", lo, hi, val), 0)
      end
      o[name] = int or n
    end
    i = i + 1
  end
  local h = o.host
  if not (h == "localhost" or h == "::1" or h:match("^127%.%d+%.%d+%.%d+$")) then
    error("--host must be a loopback address (127.x.x.x, ::1 or localhost), got '" .. h .. "'", 0)
  end
  local kf = o["keyfactor-date-format"]
  if kf ~= "M/d/yyyy h:mm:ss tt" and kf ~= "yyyy-MM-dd" then
    error("--keyfactor-date-format: 'M/d/yyyy h:mm:ss tt' or 'yyyy-MM-dd', got '" .. kf .. "'", 0)
  end
  return o
end

local function read_world(path)
  local f, e = io.open(path, "rb")
  if not f then error("--data: cannot read " .. tostring(e), 0) end
  -- fopen accepts a directory; the read is what fails (EISDIR).
  local text, rerr, errno = f:read(256 * 1024 * 1024 + 1)
  f:close()
  if errno == 21 then error("--data " .. path .. ": is a directory", 0) end
  if rerr then error("--data " .. path .. ": cannot read: " .. tostring(rerr), 0) end
  if not text then error("--data " .. path .. ": file is empty", 0) end
  if #text > 256 * 1024 * 1024 then error("--data " .. path .. ": file larger than 256 MiB", 0) end
  local doc, derr = U.decode(text)
  if not doc then error("--data " .. path .. ": invalid JSON: " .. tostring(derr), 0) end
  local w, lerr = IO.load(doc)
  if not w then error("--data " .. path .. ": " .. lerr, 0) end
  return w
end

-- Builds the startup world (also used by POST /__sim/reset without a body).
local function startup_world()
  if cfg.data then return read_world(cfg.data) end
  return D.generate(cfg.certs, cfg.seed, simcore.time())
end

function M.init(args)
  local o = parse_args(args or {})
  if not o then
    io.stdout:write(HELP)
    io.stdout:flush()
    return nil
  end
  cfg = { host = o.host, sectigo_port = o["sectigo-port"], keyfactor_port = o["keyfactor-port"],
    certs = o.certs, seed = o.seed, data = o.data, sectigo_login = o["sectigo-login"],
    sectigo_password = o["sectigo-password"], sectigo_customer_uri = o["sectigo-customer-uri"],
    keyfactor_user = o["keyfactor-user"], keyfactor_password = o["keyfactor-password"],
    oauth_client_id = o["oauth-client-id"], oauth_client_secret = o["oauth-client-secret"],
    keyfactor_date_format = o["keyfactor-date-format"] }
  rng = U.rng(o.seed + 31337)
  tokens = {}
  C = { cfg = cfg, now = simcore.time }
  C.world = startup_world()
  -- The collector runs in the C worker's idle time, in incremental steps (sim_worker.c): run
  -- by allocations, in the generational mode this had before, its major collections of the
  -- world stalled every request for up to 2 s at 100k certificates.
  collectgarbage("incremental")
  collectgarbage("stop")
  function C.write(ep)
    stats.writes = stats.writes + 1
    stats.writes_by_endpoint[ep] = (stats.writes_by_endpoint[ep] or 0) + 1
  end
  function C.token_ok(api, tok)
    local t = tok and tokens[tok]
    return t ~= nil and t.api == api and t.exp > simcore.now()
  end
  function C.expire_tokens() tokens = {} end
  C.stats = function() return stats end
  C.reset_stats = reset_stats
  J.clear()
  C.startup_world = startup_world
  C.generate = function(n, seed) return D.generate(n, seed, simcore.time()) end
  F.init({ latency_ms = o["latency-ms"], jitter_ms = o["jitter-ms"], fail_rate = o["fail-rate"],
    rate_limit = o["rate-limit"] }, o.seed, simcore)
  S.init(C)
  K.init(C)
  CTL.init(C, simcore)
  reset_stats()
  return { host = cfg.host, sectigo_port = cfg.sectigo_port, keyfactor_port = cfg.keyfactor_port }
end

-- POST /oauth/token (client credentials), on both ports; tokens are bound to the port's API.
local function token(req)
  local form = U.form(req.body)
  local id, secret = form.client_id, form.client_secret
  local basic = (req.headers["authorization"] or ""):match("^[Bb]asic%s+(%S+)$")
  if basic then id, secret = (U.b64decode(basic) or ""):match("^([^:]*):(.*)$") end
  local function oauth_err(status, code, desc)
    return { status = status, headers = { ["Content-Type"] = "application/json" },
      body = U.encode({ error = code, error_description = desc }) }
  end
  if form.grant_type ~= "client_credentials" then
    return oauth_err(400, "unsupported_grant_type", "grant_type must be client_credentials")
  end
  if id ~= cfg.oauth_client_id or secret ~= cfg.oauth_client_secret then
    return oauth_err(401, "invalid_client", "Invalid client credentials")
  end
  local now = simcore.now()
  if next(tokens) then
    local n = 0
    for k, t in pairs(tokens) do
      n = n + 1
      if t.exp <= now or n > 100000 then tokens[k] = nil end
    end
  end
  local tok = "sim." .. rng:hex(24)
  local ttl = C.world.settings.tokenTtl or 300
  tokens[tok] = { api = req.api, exp = now + ttl }
  return { status = 200, headers = { ["Content-Type"] = "application/json", ["Cache-Control"] = "no-store" },
    body = U.encode({ access_token = tok, expires_in = ttl, token_type = "Bearer", scope = "" }) }
end

-- Default body of an injected failure, in the API's own error shape (gateways answer HTML).
local function fault_body(api, status)
  if status == 502 or status == 503 or status == 504 then
    return "text/html", string.format("<html><head><title>%d</title></head><body><h1>%d %s</h1></body></html>",
      status, status, status == 502 and "Bad Gateway" or status == 503 and "Service Unavailable" or "Gateway Timeout")
  end
  local msg = status == 429 and "Too many requests, retry later." or "Internal error. Please contact Support for details."
  if api == "keyfactor" then
    return "application/json; charset=utf-8", U.encode({ ErrorCode = "0xA0110000", Message = msg })
  end
  return "application/json;charset=UTF-8", U.encode({ code = status == 429 and -1 or -2, description = msg })
end

local function dispatch(req)
  local path = req.path or "/"
  if path:sub(1, 7) == "/__sim/" or path == "/__sim" then return CTL.handle(req) end
  local ep, handler
  if path == "/oauth/token" or path == "/KeyfactorAPI/oauth/token" then
    ep = req.api .. ".token"
    handler = req.method == "POST" and token or function()
      return { status = 405, headers = { Allow = "POST" }, body = "" }
    end
  elseif req.api == "keyfactor" then
    ep, handler = K.route(req)
  else
    ep, handler = S.route(req)
  end
  local m = req.method
  stats.total = stats.total + 1
  local per = stats.requests[ep]
  if not per then per = {}; stats.requests[ep] = per end
  per[m] = (per[m] or 0) + 1
  local plan = F.before(ep, m, req)
  req.ep, req.fault = ep, plan.fault
  local resp
  if plan.status then
    local ct, body = fault_body(req.api, plan.status)
    if plan.body ~= nil then
      body = type(plan.body) == "table" and U.encode(plan.body) or plan.body
      ct = type(plan.body) == "table" and "application/json" or "text/plain"
    end
    resp = { status = plan.status, headers = plan.headers or {}, body = body }
    if not resp.headers["Content-Type"] then resp.headers["Content-Type"] = ct end
  else
    local denied = ep:match("%.token$") == nil and (req.api == "keyfactor" and K.auth(req) or req.api ~= "keyfactor" and S.auth(req))
    resp = denied or handler(req)
    resp = F.after(resp, plan.fault, plan.headers)
  end
  if plan.delay_ms and plan.delay_ms > 0 then resp.delay_ms = plan.delay_ms end
  return resp
end

function M.handle(req)
  req.args = req.args or {}
  req.headers = req.headers or {}
  req.body = req.body or ""
  req.method = (req.method or "GET"):upper()
  local ok, resp = pcall(dispatch, req)
  if not ok then
    io.stderr:write("metasync-sim: internal error: ", tostring(resp), "\n")
    local ct, body = fault_body(req.api, 500)
    resp = { status = 500, headers = { ["Content-Type"] = ct }, body = body }
  end
  if stats and req.path:sub(1, 6) ~= "/__sim" then
    local k = tostring(resp.status)
    stats.statuses[k] = (stats.statuses[k] or 0) + 1
    J.record(req, req.ep or req.api .. ".other", resp, req.fault, simcore.time())
  end
  if req.method == "HEAD" then resp.body = "" end
  return resp
end

return M

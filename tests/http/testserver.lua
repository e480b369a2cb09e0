-- The loopback server behind the engine's HTTP tests (tests/http/test_*.lua), run as
--   metasync-sim --sectigo-port 0 --handler tests/http/testserver.lua
-- Endpoints (any method; see tests/http/README.md):
--   /delay?ms=N[&id=X]                 200 {"ok":true,"id":X,"remote":...} after N ms (without blocking others)
--   /status?code=N[&retry_after=S]     status N; Retry-After in seconds,
--   /status?code=N&retry_after_date=1&after=S   or as an HTTP-date S seconds from now
--   /seq/KEY?codes=503,503,200[&retry_after=S]  the k-th call to KEY answers the k-th code
--   /echo                              the request as JSON
--   /big?bytes=N                       N bytes of body (at most 64 MiB)
--   /bigheader?bytes=N[&count=C]       200 with C (default 1) response headers of N bytes each
--   /gzip                              "hello, gzip world\n" three times, gzip-encoded (Content-Encoding)
--   /reset-conn?after=N[&bytes=M]      M bytes announced, connection reset after N
--   /truncate?after=N[&bytes=M]        M bytes announced, clean close after N
--   /__test/stats, /__test/reset       counters (calls per path, calls and arrival times per key,
--                                      requests in flight and their maximum)
local sim = require("sim")
local cjson = require("cjson")

local json = cjson
do
  local ok, mjson = pcall(require, "metasync.json")
  if ok and type(mjson) == "table" and mjson.encode then
    json = mjson
  end
end

local MAX_BIG = 64 * 1024 * 1024

local calls, keys, times = {}, {}, {}

local function reset()
  calls, keys, times = {}, {}, {}
  sim.reset_inflight()
end

local function note_time(key)
  local list = times[key]
  if not list then
    list = {}
    times[key] = list
  end
  list[#list + 1] = sim.now()
end

local function reply(status, body, headers)
  headers = headers or {}
  if headers["Content-Type"] == nil then
    headers["Content-Type"] = "application/json"
  end
  return { status = status, headers = headers, body = body }
end

local function ok_json(t, status)
  return reply(status or 200, json.encode(t))
end

local function int_arg(args, name, default, max)
  local s = args[name]
  if s == nil or s == "" then
    return default
  end
  local n = tonumber(s)
  if not n or n < 0 or n ~= math.floor(n) then
    error(string.format("query parameter %s must be a non-negative integer", name), 0)
  end
  if max and n > max then
    n = max
  end
  return math.tointeger(n)
end

local function retry_after(args, headers)
  if args.retry_after_date then
    local after = int_arg(args, "after", 0, 86400 * 365)
    headers["Retry-After"] = sim.http_date(sim.time() + after)
  elseif args.retry_after then
    headers["Retry-After"] = args.retry_after
  end
end

local function valid_status(code)
  if not code or code < 100 or code > 599 then
    error("code must be an HTTP status 100..599", 0)
  end
  return code
end

local routes = {}

routes["/delay"] = function(req)
  local resp = ok_json({ ok = true, id = req.args.id, remote = req.remote })
  resp.delay_ms = int_arg(req.args, "ms", 0, 600000)
  return resp
end

routes["/status"] = function(req)
  local code = valid_status(int_arg(req.args, "code", 200))
  local headers = {}
  retry_after(req.args, headers)
  return reply(code, json.encode({ status = code }), headers)
end

routes["/echo"] = function(req)
  return ok_json({
    method = req.method,
    path = req.path,
    query = req.query,
    args = req.args,
    headers = req.headers,
    body = req.body,
    remote = req.remote,
  })
end

-- gzip of ("hello, gzip world\n"):rep(3), made once with Python's gzip.compress(mtime=0).
local GZIPPED = "\31\139\8\0\0\0\0\0\2\3\203\72\205\201\201\215\81\72\175\202\44\80\40\207\47\202"
  .. "\73\225\202\32\66\4\0\68\20\233\145\54\0\0\0"
routes["/gzip"] = function()
  return reply(200, GZIPPED, { ["Content-Type"] = "text/plain", ["Content-Encoding"] = "gzip" })
end

-- Response header lines of N bytes each (X-Big, or X-Big-1 .. X-Big-C), to exceed the client's
-- header limits (one line, all of them).
routes["/bigheader"] = function(req)
  local n = int_arg(req.args, "bytes", 0, MAX_BIG)
  local count = int_arg(req.args, "count", 1, 64)
  local headers = {}
  if count == 1 then headers["X-Big"] = string.rep("h", n) end
  for i = 1, count > 1 and count or 0 do headers["X-Big-" .. i] = string.rep("h", n) end
  return reply(200, json.encode({ ok = true }), headers)
end

routes["/big"] = function(req)
  local n = int_arg(req.args, "bytes", 0, MAX_BIG)
  return reply(200, string.rep("x", n), { ["Content-Type"] = "application/octet-stream" })
end

local function fault(kind)
  return function(req)
    local after = int_arg(req.args, "after", 0)
    local bytes = int_arg(req.args, "bytes", math.max(after * 2, 4096), MAX_BIG)
    local resp = reply(200, string.rep("y", bytes), { ["Content-Type"] = "application/octet-stream" })
    resp.fault = kind
    resp.fault_at = after
    return resp
  end
end
routes["/reset-conn"] = fault("reset")
routes["/truncate"] = fault("truncate")

routes["/__test/stats"] = function()
  return ok_json({
    max_inflight = sim.max_inflight(),
    inflight = sim.inflight(),
    calls = calls,
    keys = keys,
    times = times,
  })
end

routes["/__test/reset"] = function()
  reset()
  return ok_json({ ok = true })
end

local function seq(req, key)
  local k = (keys[key] or 0) + 1
  keys[key] = k
  note_time(key)
  local codes = {}
  for c in (req.args.codes or "200"):gmatch("[^,]+") do
    codes[#codes + 1] = valid_status(math.tointeger(tonumber(c)))
  end
  if #codes == 0 then
    codes[1] = 200
  end
  local code = codes[math.min(k, #codes)]
  local headers = {}
  if code >= 300 then
    retry_after(req.args, headers)
  end
  return reply(code, json.encode({ key = key, call = k, status = code }), headers)
end

local M = {}

function M.init(args)
  local port = 0
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--help" or a == "-h" then
      io.write("usage: metasync-sim --handler testserver.lua [--sectigo-port N] [--keyfactor-port N]\n")
      return nil
    elseif a == "--sectigo-port" or a == "--keyfactor-port" then
      local v = tonumber(args[i + 1])
      if not v then
        error(a .. " needs a port number", 0)
      end
      if a == "--sectigo-port" then
        port = math.tointeger(v)
      end
      i = i + 2
    else
      error("unknown option " .. a .. " (the test server takes only ports)", 0)
    end
  end
  return { host = "127.0.0.1", sectigo_port = port, keyfactor_port = nil }
end

function M.handle(req)
  local path = req.path
  local route = routes[path]
  if path:sub(1, 8) ~= "/__test/" then
    calls[path] = (calls[path] or 0) + 1
    local key = req.args.key or req.args.id
    if key and not path:match("^/seq/") then
      note_time(key)
    end
  end
  if route then
    local ok, resp = pcall(route, req)
    if ok then
      return resp
    end
    return ok_json({ error = tostring(resp) }, 400)
  end
  local key = path:match("^/seq/(.+)$")
  if key then
    local ok, resp = pcall(seq, req, key)
    if ok then
      return resp
    end
    return ok_json({ error = tostring(resp) }, 400)
  end
  return ok_json({ error = "no such endpoint: " .. path }, 404)
end

return M

-- The request journal behind GET/DELETE /__sim/requests: the most recent API requests (never the
-- /__sim/ ones), so that tests can assert on what a client actually sent.
-- Recording runs on every request, so it only keeps references to strings and tables the host
-- already built; the JSON shape is assembled when someone reads the journal.
local U = require("util")

local J = {}

J.MAX_ENTRIES = 2000
J.MAX_BODY = 64 * 1024
-- Bodies are truncated one by one, and all kept bodies together stay under this many bytes
-- (oldest entries go first), so a client posting large bodies cannot grow the simulator.
J.MAX_BYTES = 32 * 1024 * 1024

-- The only headers recorded: none of them can carry a credential.
local SAFE_HEADERS = { "content-type", "accept", "x-keyfactor-requested-with", "x-keyfactor-api-version",
  "x-http-method-override" }

-- Parameter names whose values are replaced by "***" in the query, args and form bodies.
local function secret_name(name)
  local l = name:lower()
  return l:find("secret", 1, true) or l:find("password", 1, true) or l:find("token", 1, true)
    or l:find("assertion", 1, true) or l == "code"
end

local ring, first, last, bytes, seq

function J.clear()
  ring, first, last, bytes = {}, 1, 0, 0
  seq = seq or 0
end
J.clear()

-- The kind of credential presented, never its value.
local function auth_kind(h)
  local a = h["authorization"]
  if a then return (a:match("^(%a+)") or "other"):lower() end
  if h["login"] or h["password"] then return "sectigo-headers" end
  return nil
end

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(x) return string.char(tonumber(x, 16)) end))
end

local function redact_form(s)
  return (s:gsub("([^&=]*)=([^&]*)", function(k, v)
    if v ~= "" and secret_name(unescape(k)) then return k .. "=***" end
  end))
end

-- Cuts s to at most n bytes without splitting a UTF-8 sequence.
local function cut(s, n)
  local b = s:byte(n + 1)
  while n > 0 and b and b >= 0x80 and b < 0xC0 do
    n = n - 1
    b = s:byte(n + 1)
  end
  return s:sub(1, n)
end

-- JSON strings must be UTF-8: a binary body shows its non-UTF-8 bytes as "?".
local function text(s)
  if utf8.len(s) then return s end
  return (s:gsub("[\128-\255]", "?"))
end

-- Records one finished request: ep is the endpoint key, resp the response about to go out,
-- fault the injected fault (status faults show in resp.status), now the wall clock.
function J.record(req, ep, resp, fault, now)
  local h = req.headers
  local hdrs
  for _, name in ipairs(SAFE_HEADERS) do
    local v = h[name]
    if v then
      hdrs = hdrs or {}
      hdrs[name] = v
    end
  end
  local body, blen = req.body, #req.body
  local truncated = blen > J.MAX_BODY
  if truncated then body = cut(body, J.MAX_BODY) end
  local query = req.query or ""
  if query ~= "" then
    local lq = query:lower()
    if lq:find("secret", 1, true) or lq:find("passw", 1, true) or lq:find("token", 1, true)
        or lq:find("assert", 1, true) or query:find("code=", 1, true) then
      query = redact_form(query)
    end
  end
  if ep:match("%.token$") or (h["content-type"] or ""):find("x-www-form-urlencoded", 1, true) then
    body = redact_form(body)
  end
  seq = seq + 1
  last = last + 1
  ring[last] = { seq = seq, t = now, api = req.api, endpoint = ep, method = req.method, path = req.path,
    query = query, arg_list = req.arg_list, headers = hdrs, auth = auth_kind(h), body = body,
    body_size = blen, body_truncated = truncated or nil, status = resp.status, fault = fault,
    delay = (resp.delay_ms or 0) > 0 and resp.delay_ms or nil }
  bytes = bytes + #body
  while last - first + 1 > J.MAX_ENTRIES or (bytes > J.MAX_BYTES and first < last) do
    bytes = bytes - #ring[first].body
    ring[first] = nil
    first = first + 1
  end
end

-- args: name -> value, or name -> array of values when the name was repeated.
local function decode_args(list)
  local args = {}
  for _, kv in ipairs(list or {}) do
    local k, v = kv[1], kv[2]
    if v ~= "" and secret_name(k) then v = "***" end
    local cur = args[k]
    if cur == nil then
      args[k] = v
    elseif type(cur) == "table" then
      cur[#cur + 1] = v
    else
      args[k] = U.array({ cur, v })
    end
  end
  return args
end

local function matches(e, f)
  return (not f.api or e.api == f.api) and (not f.method or e.method == f.method)
    and (not f.endpoint or e.endpoint == f.endpoint) and (not f.since or e.seq > f.since)
end

-- Entries oldest first, filtered by the query (api, method, endpoint, since=<seq>, limit=<n>:
-- the newest n). Returns an array ready for JSON, or nil, message.
function J.list(args)
  local f = {}
  if args.api and args.api ~= "" then f.api = args.api end
  if args.method and args.method ~= "" then f.method = args.method:upper() end
  if args.endpoint and args.endpoint ~= "" then f.endpoint = args.endpoint end
  if args.since and args.since ~= "" then
    f.since = U.int(args.since, 0)
    if not f.since then return nil, "since: a non-negative integer (an entry's seq)" end
  end
  local limit = J.MAX_ENTRIES
  if args.limit and args.limit ~= "" then
    limit = U.int(args.limit, 0, J.MAX_ENTRIES)
    if not limit then return nil, "limit: an integer 0.." .. J.MAX_ENTRIES end
  end
  local picked = {}
  for i = last, first, -1 do
    if #picked >= limit then break end
    local e = ring[i]
    if matches(e, f) then picked[#picked + 1] = e end
  end
  local out = U.array()
  for i = #picked, 1, -1 do
    local e = picked[i]
    out[#out + 1] = { seq = e.seq, time = e.t, api = e.api, endpoint = e.endpoint, method = e.method,
      path = e.path, query = e.query, args = decode_args(e.arg_list), headers = e.headers or {},
      auth = e.auth, body = text(e.body), body_size = e.body_size, body_truncated = e.body_truncated,
      status = e.status, fault = e.fault, delay_ms = e.delay }
    if e.headers and (e.headers["content-type"] or ""):find("x-www-form-urlencoded", 1, true) then
      out[#out].form = U.form(e.body)
    end
  end
  return out
end

function J.count() return last - first + 1 end

return J

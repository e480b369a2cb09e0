-- JSON over HTTP on metasync.http, with the retry policy the engine leaves to Lua: transport
-- errors and 429/502/503/504 are retried with jittered exponential backoff, honouring
-- Retry-After (seconds or an HTTP-date); only idempotent methods retry unless asked.
-- Errors read "<API> <METHOD> <path> -> HTTP <status>: <the vendor's own text>".
local http = require("metasync.http")
local json = require("metasync.json")
local task = require("metasync.task")
local log = require("metasync.log")

local M = {}

local IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }
local RETRY_STATUS = { [429] = true, [502] = true, [503] = true, [504] = true }

function M.urlencode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- query(q) -> "a=1&b=2" from a list of {k, v} pairs (order kept) or a map (keys sorted).
function M.query(q)
  if q == nil then return "" end
  if type(q) == "string" then return q end
  local parts = {}
  if q[1] then
    for _, kv in ipairs(q) do parts[#parts + 1] = M.urlencode(kv[1]) .. "=" .. M.urlencode(kv[2]) end
  else
    local keys = {}
    for k in pairs(q) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do parts[#parts + 1] = M.urlencode(k) .. "=" .. M.urlencode(q[k]) end
  end
  return table.concat(parts, "&")
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8,
  Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

-- Seconds since the epoch for a UTC civil date (no dependence on the local time zone).
local function epoch(y, mo, d, h, mi, s)
  if mo <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (mo + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + h * 3600 + mi * 60 + s
end
M.epoch = epoch

-- retry_after(value[, now]) -> seconds to wait, or nil when the header is unusable.
-- Forms: "120" or an IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT".
function M.retry_after(v, now)
  if type(v) ~= "string" then return nil end
  v = v:match("^%s*(.-)%s*$")
  if v:match("^%d+$") then return tonumber(v) end
  local d, mon, y, h, mi, s = v:match("^%a%a%a, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if not d or not MONTHS[mon] then return nil end
  local t = epoch(tonumber(y), MONTHS[mon], tonumber(d), tonumber(h), tonumber(mi), tonumber(s))
  return math.max(0, t - (now or os.time()))
end

-- backoff(attempt, base, cap) -> jittered delay: a random point in the upper half of
-- base * 2^(attempt-1), capped, so a burst of failing tasks does not retry in lockstep.
function M.backoff(attempt, base, cap)
  local d = math.min(cap, base * 2 ^ (attempt - 1))
  return d / 2 + math.random() * d / 2
end

local function one_line(s, max)
  s = tostring(s or ""):gsub("%s+", " ")
  if #s > (max or 300) then s = s:sub(1, max or 300) .. "..." end
  return s
end

-- The vendors' error bodies: Sectigo {code, description}, Keyfactor {ErrorCode, Message}.
function M.error_text(body)
  local doc = type(body) == "string" and body ~= "" and json.decode(body)
  if type(doc) == "table" then
    if doc.code ~= nil and doc.description then
      return string.format("%s %s", tostring(doc.code), one_line(doc.description))
    end
    local msg = doc.Message or doc.message
    if msg and msg ~= json.null then
      local code = doc.ErrorCode or doc.errorCode
      return one_line(msg) .. ((code and code ~= json.null) and (" (" .. tostring(code) .. ")") or "")
    end
    if doc.error then
      return one_line(tostring(doc.error) .. (doc.error_description and (": " .. tostring(doc.error_description)) or ""))
    end
  end
  if body == nil or body == "" then return "(empty body)" end
  return one_line(body, 200)
end

local Client = {}
Client.__index = Client

-- new{name, base, headers, auth=function(force) -> headers|nil, err, timeout, connect_timeout,
--     cafile, proxy, insecure, retries, backoff_base, backoff_cap, logger}
function M.new(o)
  local c = setmetatable({}, Client)
  for k, v in pairs(o) do c[k] = v end
  c.base = assert(o.base, "base URL required"):gsub("/+$", "")
  c.retries = o.retries or 4
  c.backoff_base = o.backoff_base or 0.5
  c.backoff_cap = o.backoff_cap or 30
  c.max_retry_after = o.max_retry_after or 120
  c.logger = o.logger or "rest"
  c.stats = { requests = 0, retries = 0, writes = 0 }
  return c
end

-- request(method, path, opts) -> resp (with resp.json when the body is JSON), or nil, message, resp
-- opts: query, body (a table is JSON-encoded), form (table, url-encoded), headers, retry
-- (force retry on/off), ok (set of accepted statuses; default 2xx), decode (options for
-- json.decode, e.g. {select = {...}} to keep only some keys of each listed item).
function Client:request(method, path, opts)
  opts = opts or {}
  local url = self.base .. path
  local q = M.query(opts.query)
  if q ~= "" then url = url .. (url:find("?", 1, true) and "&" or "?") .. q end
  local headers = { Accept = "application/json" }
  for k, v in pairs(self.headers or {}) do headers[k] = v end
  local body = opts.body
  if type(body) == "table" then
    body = json.encode(body)
    headers["Content-Type"] = "application/json"
  elseif opts.form then
    body = M.query(opts.form)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
  end
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  local may_retry = opts.retry
  if may_retry == nil then may_retry = IDEMPOTENT[method] or false end
  local attempt, reauth = 0, false
  while true do
    attempt = attempt + 1
    if self.auth then
      local ah, aerr = self.auth(reauth)
      if not ah then return nil, string.format("%s %s %s -> %s", self.name, method, path, aerr) end
      for k, v in pairs(ah) do headers[k] = v end
    end
    local t0 = task.now()
    self.stats.requests = self.stats.requests + 1
    if method ~= "GET" and method ~= "HEAD" then self.stats.writes = self.stats.writes + 1 end
    local resp, terr = http.request {
      method = method, url = url, headers = headers, body = body,
      timeout = self.timeout, connect_timeout = self.connect_timeout,
      cafile = self.cafile, proxy = self.proxy, insecure = self.insecure,
    }
    local ms = (task.now() - t0) * 1000
    local delay, why
    if not resp then
      log.debug(self.logger, "%s %s -> %s (%.0f ms)", method, path, terr, ms)
      why = "transport error: " .. tostring(terr)
      if attempt > self.retries or not may_retry then
        return nil, string.format("%s %s %s -> %s", self.name, method, path, why)
      end
      delay = M.backoff(attempt, self.backoff_base, self.backoff_cap)
    else
      log.debug(self.logger, "%s %s -> HTTP %d (%.0f ms)", method, path, resp.status, ms)
      if resp.status == 401 and self.auth and not reauth and self.reauth_on_401 then
        reauth = true -- a cached token may have been revoked: fetch a new one once
        attempt = attempt - 1
      elseif RETRY_STATUS[resp.status] and may_retry and attempt <= self.retries then
        delay = M.retry_after(resp.headers and resp.headers["retry-after"])
        if delay then delay = math.min(delay, self.max_retry_after)
        else delay = M.backoff(attempt, self.backoff_base, self.backoff_cap) end
        why = "HTTP " .. resp.status
      else
        local ok = opts.ok and opts.ok[resp.status] or (not opts.ok and resp.status >= 200 and resp.status < 300)
        if not ok then
          return nil, string.format("%s %s %s -> HTTP %d: %s", self.name, method, path, resp.status,
            M.error_text(resp.body)), resp
        end
        local doc, jerr
        if resp.body and resp.body ~= "" then
          local ct = resp.headers and resp.headers["content-type"] or ""
          local first = resp.body:match("^%s*(.)")
          if ct:find("json", 1, true) or first == "{" or first == "[" then
            doc, jerr = json.decode(resp.body, opts.decode)
          end
        end
        if not jerr then
          resp.json = doc
          return resp
        end
        -- A body cut short or garbled on the way (proxy, reset) is as transient as a 503.
        if not (may_retry and attempt <= self.retries) then
          return nil, string.format("%s %s %s -> HTTP %d: malformed JSON: %s", self.name, method, path,
            resp.status, jerr), resp
        end
        why = "malformed JSON body: " .. jerr
        delay = M.backoff(attempt, self.backoff_base, self.backoff_cap)
      end
    end
    if delay then
      self.stats.retries = self.stats.retries + 1
      log.warn(self.logger, "%s %s: %s, retry %d/%d in %.1f s", method, path, why, attempt, self.retries, delay)
      task.sleep(delay)
    end
  end
end

-- json_request(...) -> decoded body (json.null for an empty one), or nil, message
function Client:json(method, path, opts)
  local resp, err = self:request(method, path, opts)
  if not resp then return nil, err end
  if resp.json == nil then return json.null, nil, resp end
  return resp.json, nil, resp
end

return M

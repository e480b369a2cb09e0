-- JSON over HTTP on metasync.http, with the retry policy the engine leaves to Lua. Transient
-- failures are retried with jittered exponential backoff, honouring Retry-After (seconds or an
-- HTTP-date): the retry statuses (429, 500, 502, 503, 504 unless configured), transport errors
-- (connect, reset, timeout, a body cut short), a 2xx whose JSON does not parse, and a vendor
-- "internal error" body (Sectigo's code -2, whatever the status). Only idempotent methods
-- retry unless asked. Each API has a circuit breaker and aggregated retry logging
-- (metasync.breaker), shared by every client of that API.
-- Errors read "<API> <METHOD> <path> -> HTTP <status>: <the vendor's own text>".
local http = require("metasync.http")
local json = require("metasync.json")
local task = require("metasync.task")
local log = require("metasync.log")
local breaker = require("metasync.breaker")

local M = {}

local IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }
M.RETRY_STATUSES = { 429, 500, 502, 503, 504 }
-- Sectigo's {"code":-2,"description":"Internal error. Please contact Support for details."} is
-- its common transient failure; it comes with 4xx as well as 5xx statuses.
M.RETRY_CODES = { -2 }
M.DEFAULTS = { retries = 8, backoff_base = 1, backoff_cap = 30, max_retry_after = 120,
  breaker_errors = 20, log_interval = 60 }

-- What a failed transfer is called in the retry summary, by metasync.http's kind.
local KIND = { connect = "connection failed", timeout = "timeout", tls = "TLS error", reset = "connection reset" }

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
-- client.broken: nil while the API's breaker is closed, else its one-line message
-- ("Keyfactor is failing: 20 consecutive errors, last: ..."), whichever client opened it.
Client.__index = function(c, k)
  if k == "broken" then return rawget(c, "health").broken end
  return Client[k]
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list or {}) do s[v] = true end
  return s
end

-- new{name, base, headers, auth=function(force) -> headers|nil, err, timeout, connect_timeout,
--     cafile, proxy, insecure, retries (6), backoff_base (1 s), backoff_cap (30 s),
--     max_retry_after (120 s), retry_statuses ({429,500,502,503,504}), retry_codes ({-2}:
--     vendor error codes that mean "try again"), logger,
--     health (a metasync.breaker shared by the API's clients; made here when absent, from
--     breaker_errors (20; 0 = no breaker), log_interval (60 s between retry WARN lines),
--     log_timer (false: no timer task for the retry summary))}
function M.new(o)
  local c = {}
  for k, v in pairs(o) do c[k] = v end
  c.base = assert(o.base, "base URL required"):gsub("/+$", "")
  local d = M.DEFAULTS
  c.retries = o.retries or d.retries
  c.backoff_base = o.backoff_base or d.backoff_base
  c.backoff_cap = o.backoff_cap or d.backoff_cap
  c.max_retry_after = o.max_retry_after or d.max_retry_after
  c.retry_status = set_of(o.retry_statuses or M.RETRY_STATUSES)
  c.retry_code = set_of(o.retry_codes or M.RETRY_CODES)
  c.logger = o.logger or "rest"
  c.health = o.health or breaker.new { name = o.name, logger = c.logger,
    threshold = o.breaker_errors or d.breaker_errors, interval = o.log_interval or d.log_interval,
    timer = o.log_timer }
  c.stats = { requests = 0, retries = 0, writes = 0 }
  return setmetatable(c, Client)
end

-- A vendor error body that means "try again": Sectigo's {"code": -2, "description": ...}.
local function vendor_code(self, body)
  if type(body) ~= "string" or body:sub(1, 1) ~= "{" or #body > 4096 then return nil end
  local doc = json.decode(body)
  if type(doc) == "table" and math.type(doc.code) == "integer" and doc.description ~= nil and self.retry_code[doc.code] then
    return doc.code
  end
end

-- request(method, path, opts) -> resp (with resp.json when the body is JSON), or nil, message,
-- resp (the last answer, if any), transient (true when the last attempt failed in a way a
-- retry could cure: a retry status, a transport error, a garbled body).
-- opts: query, body (a table is JSON-encoded), form (table, url-encoded), headers, retry
-- (force retry on/off), ok (set of accepted statuses; default 2xx), decode (options for
-- json.decode, e.g. {select = {...}} to keep only some keys of each listed item; or a function
-- body -> doc | nil, error, which reads the body its own way), read (a POST
-- that only reads, such as a report query: not counted in stats.writes, which tell a run
-- whether anything was written yet).
-- Once the API's breaker is open every request fails at once with its message, sending nothing.
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
  local health = self.health
  local attempt, reauth = 0, false
  while true do
    if health.broken then return nil, health.broken, nil, true end
    attempt = attempt + 1
    if self.auth then
      local ah, aerr = self.auth(reauth)
      if not ah then return nil, string.format("%s %s %s -> %s", self.name, method, path, aerr) end
      for k, v in pairs(ah) do headers[k] = v end
    end
    -- (auth may have waited for a token while the breaker opened)
    if health.broken then return nil, health.broken, nil, true end
    -- Requests beyond the API's concurrency wait in metasync.http's queue for the host (its
    -- limit, set by metasync.setup), so a finished request starts the next one at once; when
    -- the breaker opens, what waits there is dropped, never sent.
    local t0 = task.now()
    local write = method ~= "GET" and method ~= "HEAD" and not opts.read
    self.stats.requests = self.stats.requests + 1
    if write then self.stats.writes = self.stats.writes + 1 end
    local sent, resp, terr, kind = pcall(http.request, {
      method = method, url = url, headers = headers, body = body,
      timeout = self.timeout, connect_timeout = self.connect_timeout,
      cafile = self.cafile, proxy = self.proxy, insecure = self.insecure,
    })
    if not sent then error(resp, 0) end
    local ms = (task.now() - t0) * 1000
    -- On a transient failure: reason (counted in the retry summary), text (the error), delay.
    local reason, text, delay
    if not resp then
      log.debug(self.logger, "%s %s -> %s (%.0f ms)", method, path, terr, ms)
      if kind == "dropped" then
        self.stats.requests = self.stats.requests - 1 -- never sent
        if write then self.stats.writes = self.stats.writes - 1 end
        return nil, health.broken or terr, nil, true
      end
      if kind == "too_big" or kind == "interrupted" then
        -- An answer over a size limit (a header line past libcurl's, a body past max_body)
        -- will be as big next time, and a run told to stop sends nothing more: an error at
        -- once, and no sign of a failing API either.
        return nil, string.format("%s %s %s -> %s", self.name, method, path, tostring(terr))
      end
      reason = KIND[kind] or "transport error"
      text = "transport error: " .. tostring(terr)
    else
      log.debug(self.logger, "%s %s -> HTTP %d (%.0f ms)", method, path, resp.status, ms)
      local code = resp.status >= 400 and vendor_code(self, resp.body)
      if resp.status == 401 and self.auth and not reauth and self.reauth_on_401 then
        reauth = true -- a cached token may have been revoked: fetch a new one once
        attempt = attempt - 1
      elseif self.retry_status[resp.status] or code then
        reason = code and string.format("HTTP %d (%d)", resp.status, code) or ("HTTP " .. resp.status)
        text = string.format("HTTP %d: %s", resp.status, M.error_text(resp.body))
        delay = M.retry_after(resp.headers and resp.headers["retry-after"])
        if delay then delay = math.min(delay, self.max_retry_after) end
      else
        local ok = opts.ok and opts.ok[resp.status] or (not opts.ok and resp.status >= 200 and resp.status < 300)
        if not ok then
          health:success()
          return nil, string.format("%s %s %s -> HTTP %d: %s", self.name, method, path, resp.status,
            M.error_text(resp.body)), resp, false
        end
        local doc, jerr
        if resp.body and resp.body ~= "" then
          local ct = resp.headers and resp.headers["content-type"] or ""
          local first = resp.body:match("^%s*(.)")
          if ct:find("json", 1, true) or first == "{" or first == "[" then
            if type(opts.decode) == "function" then doc, jerr = opts.decode(resp.body)
            else doc, jerr = json.decode(resp.body, opts.decode) end
          end
        end
        if not jerr then
          health:success()
          resp.json = doc
          return resp
        end
        -- A body cut short or garbled on the way (proxy, reset) is as transient as a 503.
        reason = "malformed JSON"
        text = string.format("HTTP %d: malformed JSON: %s", resp.status, jerr)
      end
    end
    if reason then
      local what = string.format("%s %s -> %s", method, path, text)
      local opened = health:failure(what)
      if opened and http.drop then http.drop(url, opened) end
      if not may_retry or attempt > self.retries then
        return nil, string.format("%s %s", self.name, what), resp, true
      end
      if health.broken then return nil, health.broken, resp, true end
      delay = delay or M.backoff(attempt, self.backoff_base, self.backoff_cap)
      self.stats.retries = self.stats.retries + 1
      log.debug(self.logger, "%s, retry %d/%d in %.1f s", what, attempt, self.retries, delay)
      health:retry(reason, what)
      task.sleep(delay)
    end
  end
end

-- json(...) -> decoded body (json.null for an empty one), nil, resp; or nil, message, resp,
-- transient (as request)
function Client:json(method, path, opts)
  local resp, err, raw, transient = self:request(method, path, opts)
  if not resp then return nil, err, raw, transient end
  if resp.json == nil then return json.null, nil, resp end
  return resp.json, nil, resp
end

return M

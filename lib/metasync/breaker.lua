-- The health of one API as every task sees it: a circuit breaker over consecutive failed
-- attempts, and the aggregated WARN lines about retries. One object per API, shared by every
-- metasync.rest client that talks to it (the API's own and its OAuth token client), so the
-- counts run across all tasks.
--
-- Breaker: each attempt that ends in a retryable error (a retry status such as 429 or 5xx, a
-- transport error, a garbled body, a vendor's "internal error" body) counts, whether or not it
-- is retried later; any other answer (2xx, but also 400 or 404: the API is up and answering)
-- resets the count. At `threshold` consecutive failures the breaker opens for good (a run is a
-- batch: nothing would close it again) and `broken` holds the one-line reason
--   "Keyfactor is failing: 20 consecutive errors, last: PUT /Certificates/Metadata -> HTTP 503: ..."
-- after which metasync.rest fails every request to the API at once with that message.
--
-- Retry log: each retry is logged at debug; at WARN at most one line per `interval` seconds:
-- the first retry of a quiet spell at once, then a summary of the retries since the previous
-- line, printed at the next retry once the interval has passed or by a timer task at the end
-- of the interval (flush() prints what is pending at once):
--   "Sectigo: 37 retries in the last 60 s (29 x HTTP 429, 8 x HTTP 500); last: GET ... -> HTTP 500: ..."
local log = require("metasync.log")
local task = require("metasync.task")

local M = {}
local B = {}
B.__index = B

-- new{name, threshold (consecutive failures; 0 or nil: never opens), seconds (how long the
--     streak must have lasted without a success too; default 0), interval (seconds between
--     retry WARN lines, default 60), logger, clock (default task.now), timer (false: no timer
--     task; pending counts wait for the next retry or flush())}
-- (When it opens, metasync.rest drops the API's requests still queued in metasync.http, so
-- none of them goes out: http.drop.)
function M.new(o)
  o = o or {}
  return setmetatable({
    name = o.name or "API", threshold = o.threshold or 0, interval = o.interval or 60, seconds = o.seconds or 0,
    logger = o.logger or "rest", clock = o.clock or task.now, timer = o.timer ~= false,
    failures = 0, broken = nil, last = nil,
    -- retry counts since the last WARN line
    pending = 0, reasons = {}, order = {}, last_retry = nil, warned_at = nil, timer_due = nil,
    -- over the whole life of the object
    retries = 0, by_reason = {}, warnings = 0,
  }, B)
end

-- failure(what): an attempt ended in a retryable error; `what` is "<METHOD> <path> -> <error>".
-- Returns the breaker message when this failure opened it.
function B:failure(what)
  self.last = what
  if self.broken then return nil end
  self.failures = self.failures + 1
  if self.failures == 1 then self.streak_since = self.clock() end
  -- A blip with many requests in flight fails that many attempts at once (16 in flight and
  -- their first retries pass 20 within a second): the streak must also have lasted `seconds`
  -- without a single success before the API counts as down.
  if self.threshold and self.threshold > 0 and self.failures >= self.threshold
      and self.clock() - (self.streak_since or 0) >= self.seconds then
    self.broken = string.format("%s is failing: %d consecutive errors, last: %s", self.name, self.failures, what)
    log.error(self.logger, "%s; no further requests are sent to %s in this run", self.broken, self.name)
    return self.broken
  end
end

-- success(): the API answered (whatever the status) without a retryable error.
function B:success()
  if not self.broken then self.failures = 0 end
end

local function summary(self)
  local parts = {}
  table.sort(self.order, function(a, b)
    local x, y = self.reasons[a], self.reasons[b]
    if x ~= y then return x > y end
    return a < b
  end)
  for _, r in ipairs(self.order) do parts[#parts + 1] = string.format("%d x %s", self.reasons[r], r) end
  return table.concat(parts, ", ")
end

-- Prints the pending counts as one WARN line.
local function emit(self, now)
  if self.pending == 0 then return end
  local n = self.pending
  local what
  if self.warned_at then
    what = string.format("%s: %d retr%s in the last %.0f s (%s); last: %s", self.name, n, n == 1 and "y" or "ies",
      now - self.warned_at, summary(self), self.last_retry)
  else
    what = string.format("%s: %d retr%s (%s); last: %s; further retries are counted and summarised at most every %s s",
      self.name, n, n == 1 and "y" or "ies", summary(self), self.last_retry, tostring(self.interval))
  end
  log.warn(self.logger, "%s", what)
  self.warnings = self.warnings + 1
  self.pending, self.reasons, self.order = 0, {}, {}
  self.warned_at = now
end

local function arm(self, now)
  if not self.timer or self.timer_due then return end
  local due = self.warned_at + self.interval
  self.timer_due = due
  self.timer_task = task.spawn(function()
    task.sleep(math.max(0, due - now))
    self.timer_due = nil
    if self.pending == 0 then return end
    -- A retry may have printed a line meanwhile: then wait for the end of its interval.
    local t = self.clock()
    if t - self.warned_at >= self.interval - 0.001 then emit(self, t) else arm(self, t) end
  end)
end

-- retry(reason, what): one retry is about to wait; reason is the short kind counted in the
-- summary ("HTTP 429", "connection reset", "malformed JSON"), what the full "<METHOD> <path> -> ...".
function B:retry(reason, what)
  self.retries = self.retries + 1
  self.by_reason[reason] = (self.by_reason[reason] or 0) + 1
  if not self.reasons[reason] then self.order[#self.order + 1] = reason end
  self.reasons[reason] = (self.reasons[reason] or 0) + 1
  self.pending = self.pending + 1
  self.last_retry = what
  local now = self.clock()
  if not self.warned_at or now - self.warned_at >= self.interval then
    emit(self, now)
  else
    arm(self, now)
  end
end

-- flush(): prints the retries not yet summarised (e.g. at the end of a run).
function B:flush()
  emit(self, self.clock())
end

return M

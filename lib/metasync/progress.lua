-- How far a run is, while it runs. At 20,000 certificates a run takes about a minute, and a
-- blank screen for that long looks like a hang.
--
-- On a terminal (stderr a TTY with a usable TERM, or --progress): one status line on stderr,
-- redrawn at most 4 times a second and erased before the summary. Elsewhere (cron, a pipe):
-- an INFO log line every 30 s. --quiet shows no line (the log still gets its INFO lines).
-- Updates come from a timer task reading the counters metasync.report keeps anyway, never
-- from the per-certificate path, so a run pays nothing per certificate for them.
local log = require("metasync.log")
local task = require("metasync.task")

local M = {}

M.TTY_INTERVAL = 0.25 -- at most 4 redraws a second
M.LOG_INTERVAL = 30
M.WINDOW = 10         -- the rate is over the last 10 s: it follows a run that slows down
local TICK = 0.25     -- the timer's period (also bounds how long stop() waits for it)
local ERASE = "\r\27[K"

-- mode(opts, env) -> "tty" or "log". env(name) reads the environment (os.getenv).
function M.mode(opts, env)
  env = env or os.getenv
  if opts.quiet then return "log" end
  if opts.progress then return "tty" end
  local term = env("TERM")
  if not opts.stderr_tty or not term or term == "" or term == "dumb" then return "log" end
  -- -v streams log lines to stderr, and a dry run printing its plan to the same terminal
  -- shows its own progress: a status line would only be torn by them.
  if opts.verbose or (opts.dry_run and opts.stdout_tty) then return "log" end
  return "tty"
end

local PHASES = { ["the Sectigo listing"] = "indexing Sectigo", ["the Keyfactor listing"] = "syncing" }

-- snapshot(ctx) -> the counters shown: phase, listed, matched, expected (Sectigo index size:
-- the most that can match), total (Keyfactor's x-total-count, when a client recorded it),
-- written, failed.
function M.snapshot(ctx)
  local r = ctx.report
  local total = ctx.keyfactor and rawget(ctx.keyfactor, "listing_total")
  local phase = PHASES[ctx.stage] or "connecting"
  if ctx.index and ctx.stage == "the Sectigo listing" then phase = "field definitions" end
  return { phase = phase, listed = r.considered + r.skipped, matched = r.matched,
    expected = ctx.index and ctx.index.size or nil, total = math.tointeger(total),
    written = r.dry_run and r.planned or r.updated, failed = r.nfailed or #r.failed }
end

local function duration(s)
  s = math.floor(s + 0.5)
  if s < 60 then return string.format("%ds", s) end
  if s < 3600 then return string.format("%dm%02ds", s // 60, s % 60) end
  return string.format("%dh%02dm", s // 3600, s % 3600 // 60)
end
M.duration = duration

local Meter = {}
Meter.__index = Meter

function M.meter() return setmetatable({ samples = {} }, Meter) end

-- meter:update(now, snap) -> rate (certificates listed per second, or nil), eta (seconds or nil)
function Meter:update(now, s)
  -- a new phase starts a new measure: seconds spent connecting or indexing listed nothing
  if s.phase ~= self.phase then self.phase, self.samples = s.phase, {} end
  local q = self.samples
  q[#q + 1] = { t = now, listed = s.listed, matched = s.matched }
  while #q > 2 and now - q[2].t >= M.WINDOW do table.remove(q, 1) end
  local first = q[1]
  local dt = now - first.t
  if dt <= 0 then return nil, nil end
  local rate = (s.listed - first.listed) / dt
  local mrate = (s.matched - first.matched) / dt
  local eta
  if s.total and s.total > 0 and rate > 0 then
    eta = math.max(0, s.total - s.listed) / rate
  elseif s.expected and s.expected > 0 and mrate > 0 then
    eta = math.max(0, s.expected - s.matched) / mrate
  end
  return rate, eta
end

-- line(snap, rate, eta, width) -> the status text, at most width - 1 characters (a line that
-- wraps could not be erased with one carriage return)
function M.line(s, rate, eta, width)
  width = math.max(20, width or 80)
  local r, e = rate and string.format("%.0f/s", rate) or "-/s", eta and duration(eta) or "-"
  local function full(of)
    return string.format("%s: %d listed, %d%s matched, %d written, %d failed, %s, ETA %s", s.phase, s.listed,
      s.matched, of, s.written, s.failed, r, e)
  end
  local text = full(s.expected and ("/" .. s.expected) or "")
  if #text > width - 1 then text = full("") end
  if #text > width - 1 then -- a narrow terminal: the short form keeps the rate and the ETA
    text = string.format("%s %d lst %d mat %d wr %d fail %s ETA %s", s.phase, s.listed, s.matched, s.written,
      s.failed, r, e)
  end
  if #text > width - 1 then text = text:sub(1, width - 1) end
  return text
end

local Progress = {}
Progress.__index = Progress

-- new{ctx=, mode=, out=(stderr), width=, now=(task.now)} -> a progress display; tick(now)
-- draws when one is due, stop() erases the line. start() runs tick from a timer task.
function M.new(o)
  return setmetatable({ ctx = o.ctx, mode = o.mode or "log", out = o.out or io.stderr,
    width = o.width or tonumber(os.getenv("COLUMNS")) or 80, now = o.now or task.now,
    meter = M.meter(), drawn = false, last = nil, started = (o.now or task.now)(), draws = 0 }, Progress)
end

function Progress:tick(now)
  now = now or self.now()
  local snap = M.snapshot(self.ctx)
  local rate, eta = self.meter:update(now, snap)
  if self.mode == "tty" then
    if self.last and now - self.last < M.TTY_INTERVAL then return end
    self.last = now
    self.out:write(ERASE, M.line(snap, rate, eta, self.width), "\r")
    self.drawn = true
    self.draws = self.draws + 1
  else
    if now - (self.last or self.started) < M.LOG_INTERVAL then return end
    self.last = now
    log.info("progress", "%s", M.line(snap, rate, eta, 1000))
    self.draws = self.draws + 1
  end
end

-- stop(): no more updates; the line, if drawn, is erased (the summary takes its place).
function Progress:stop()
  self.done = true
  if self.drawn then
    self.out:write(ERASE)
    self.out:flush()
    self.drawn = false
  end
end

-- start(ctx, opts) -> a running display (its timer task ends soon after stop())
function M.start(ctx, opts)
  local p = M.new { ctx = ctx, mode = M.mode(opts) }
  task.spawn(function()
    while not p.done do
      task.sleep(TICK)
      if p.done then return end
      local ok, err = pcall(p.tick, p)
      if not ok then log.debug("progress", "%s", tostring(err)); p.done = true end
    end
  end)
  return p
end

return M

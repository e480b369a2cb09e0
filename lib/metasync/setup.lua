-- Stage 1 of a run: load and check the configuration, set up logging and build both clients
-- with their politeness limits. Everything here can still stop the run with exit 1.
local config = require("metasync.config")
local log = require("metasync.log")
local http = require("metasync.http")
local sectigo = require("metasync.sectigo")
local keyfactor = require("metasync.keyfactor")
local breaker = require("metasync.breaker")
local report = require("metasync.report")
local state = require("metasync.state")
local lock = require("metasync.lock")
local nlog = require("metasync.nlog")

local M = {}

local function stderr(fmt, ...)
  io.stderr:write("metasync: ", string.format(fmt, ...), "\n")
end
M.stderr = stderr

-- fatal(fmt, ...): stops the run with exit 1 and one line (metasync.run turns it into that);
-- only for what happens before the first write.
local Fatal = {}
M.Fatal = Fatal
function M.fatal(fmt, ...)
  error(setmetatable({ msg = string.format(fmt, ...) }, Fatal), 0)
end

-- failed_exit(what, started, nothing_done) -> the exit code of a command (apply, revert) whose
-- work raised. A stop signal makes the next request fail (nothing is sent after it), so with
-- one received that is an interruption: an [END] line and 128 + the signal. Once the command's
-- run is recorded (started: its state) changes may have been written, so never exit 1
-- ("nothing written"); the run's record is closed with the code either way.
function M.failed_exit(what, started, nothing_done)
  local sig, signum = require("metasync.signals").received()
  if sig then io.stdout:write(string.format("[END] %s interrupted by %s%s\n", what, sig, started and "" or nothing_done)) end
  local code = (sig and 128 + signum) or (started and 2) or 1
  if started then
    pcall(started.finish_run, started, code)
    pcall(started.close, started)
  end
  return code
end

local function host_of(url) return url:match("^https?://([^/]+)") end

-- register_secrets(cfg): every secret the configuration holds is masked by value in every
-- output (log sinks, the summary, the REPL, error lines), whatever words surround it.
function M.register_secrets(cfg)
  local so, ko = cfg.sectigoOAuth, cfg.keyfactorOAuth
  log.add_secret(cfg.sectigoPassword)
  log.add_secret(cfg.keyfactorPassword)
  log.add_secret(so and so.clientSecret)
  log.add_secret(ko and ko.clientSecret)
  if cfg.keyfactorPassword then
    log.add_secret("Basic " .. keyfactor.base64((cfg.keyfactorLogin or "") .. ":" .. cfg.keyfactorPassword))
  end
  local pw = type(cfg.proxy) == "string" and cfg.proxy:match("^%a[%w+.-]*://[^:/@]*:([^@/]+)@")
  if pw then log.add_secret(pw) end
end

-- clients(cfg, opts) -> sectigo client, keyfactor client
function M.clients(cfg, opts)
  M.register_secrets(cfg)
  local common = { timeout = cfg.requestTimeoutSeconds, connect_timeout = cfg.connectTimeoutSeconds,
    cafile = cfg.caFile, proxy = cfg.proxy, insecure = cfg.insecureSkipVerify, retries = cfg.maxRetries,
    retry_statuses = cfg.retryStatuses or { 429, 500, 502, 503, 504 } }
  local sn = opts.concurrency or cfg.sectigoConcurrency
  local kn = opts.concurrency or cfg.keyfactorConcurrency
  -- Each API gets its own health (circuit breaker, retry log), shared by its token client.
  local function per_api(name, logger)
    local h = {}
    for k, v in pairs(common) do h[k] = v end
    h.health = breaker.new { name = name, logger = logger, threshold = cfg.circuitBreakerErrors or 20,
      seconds = cfg.circuitBreakerSeconds or 30 }
    return h
  end
  local so = cfg.sectigoOAuth
  local sc = sectigo.new { base = cfg.sectigo_base, login = cfg.sectigoLogin, password = cfg.sectigoPassword,
    customer_uri = cfg.sectigoCustomerUri, concurrency = sn, http = per_api("Sectigo", "sectigo"),
    oauth = so and so.usable and { token_url = so.tokenUrl, client_id = so.clientId, client_secret = so.clientSecret } or nil }
  local ko = cfg.keyfactorOAuth
  local kf = keyfactor.new { base = cfg.keyfactor_base, login = cfg.keyfactorLogin, password = cfg.keyfactorPassword,
    concurrency = kn, http = per_api("Keyfactor", "keyfactor"), requested_with = ko and ko.requestedWith,
    oauth = cfg.UseKeyfactorOAuth and { token_url = ko.tokenUrl, client_id = ko.clientId, client_secret = ko.clientSecret,
      scope = ko.scopesCsv, audience = ko.audience, skew = ko.refreshSkewSeconds } or nil }
  -- The caps live in C so every task shares them, whatever code issues the request.
  local limits = { { cfg.sectigo_base, sn, cfg.sectigoRequestsPerSecond }, { cfg.keyfactor_base, kn, cfg.keyfactorRequestsPerSecond } }
  for _, l in ipairs(limits) do
    local lim = { concurrency = l[2] }
    if l[3] and l[3] > 0 then lim.rate = l[3] end
    if http.limit then http.limit(host_of(l[1]), lim) end
  end
  return sc, kf
end

-- log_settings(cfg) -> settings (nlog.settings: file, errors_file, archives, levels, source),
-- warnings | nil, message: what setup_log would open, without opening anything (for a check).
function M.log_settings(cfg)
  local doc, nerr = nlog.load(cfg.dir)
  if nerr then return nil, nerr end
  return nlog.settings(doc, { home = config.home(cfg.dir), resolve = function(p) return config.resolve(cfg, p) end,
    dir = cfg.logDirectory, main = cfg.logFileName, errors = cfg.errorLogFileName, level = cfg.logLevel,
    max_size = math.floor(cfg.logMaxSizeMB * 1048576), max_files = cfg.logMaxFiles, config_file = cfg.dir .. "/config.json" })
end

-- setup_log(cfg, opts) -> true, warnings, settings | nil, message. The logs live under the
-- tool's home (the parent of the config directory, where the old tool kept logs/), never under
-- the working directory, so cron and systemd runs find them in the same place. A
-- <config dir>/NLog.config (the old tool's, any case) decides what it sets; config.json's log
-- keys the rest; --log-level and -v the level.
local function setup_log(cfg, opts)
  local s, info = M.log_settings(cfg)
  if not s then return nil, info end -- info: the error, else the warnings
  local level = opts.log_level or (opts.verbose and "debug") or s.level
  local main_off = level == "off"
  if main_off then level = "info" end
  local errors_off = s.errors_level == "off"
  -- log.setup creates the directories; a log that cannot be written is a configuration error.
  local ok, err = log.setup { level = level, file = not main_off and s.file, archive = s.archive,
    max_size = s.max_size, max_files = s.max_files,
    errors_file = not errors_off and s.errors_file, errors_level = not errors_off and s.errors_level or nil,
    errors_archive = s.errors_archive, errors_max_size = s.errors_max_size, errors_max_files = s.errors_max_files,
    stderr = true, stderr_level = opts.verbose and level or (opts.quiet and "error" or "warn"),
    format = cfg.logFormat or "text" }
  if not ok then
    if s.source then return nil, string.format("%s: cannot write the logs: %s", s.source, tostring(err)) end
    return nil, string.format("%s/config.json: key 'logDirectory': %s", cfg.dir, tostring(err))
  end
  return true, info, s
end

-- One run at a time per state store: two runs at once would race their writes and field
-- creations. A dry run writes nothing and does not take the lock.
M.EX_LOCKED = 75

local function pid()
  local f = io.open("/proc/self/stat", "r")
  local s = f and f:read("l")
  if f then f:close() end
  return s and s:match("^(%d+)") or "?"
end

-- take_lock(cfg, opts, command) -> lock handle | nil, message
local function take_lock(cfg, opts, command)
  local path = cfg.state_path .. ".lock"
  local dir = path:match("^(.*)/[^/]*$")
  if dir then os.execute("mkdir -p -- '" .. dir:gsub("'", "'\\''") .. "' 2>/dev/null") end
  local info = string.format("pid %s, started %s (metasync %s)", pid(), os.date("!%Y-%m-%dT%H:%M:%SZ"), command)
  local h, why, text = lock.acquire(path, { wait = opts.wait_lock or 0, info = info })
  if h then return h end
  if why == "busy" then
    return nil, string.format("another run holds %s: %s; it was not disturbed (--wait-lock SECONDS waits for it)",
      path, text ~= "" and text or "holder unknown")
  end
  return nil, string.format("%s/config.json: key 'stateFile': %s", cfg.dir, tostring(text))
end

-- context(policy, opts) -> ctx, or nil, exit code after printing why. ctx is what every hook
-- receives: cfg, options, dry_run, banned, date_format (Keyfactor's), sectigo_date_format,
-- today (UTC, yyyy-MM-dd, fixed for the run), report, log, sectigo, keyfactor, concurrency.
function M.context(policy, opts)
  local cfg, errs, warnings = config.load(opts.config_dir or "config")
  if not cfg then
    for _, w in ipairs(warnings or {}) do stderr("warning: %s", w) end
    for _, e in ipairs(errs) do stderr("%s", e) end
    return nil, 1
  end
  warnings = errs
  local logged, lerr, where = setup_log(cfg, opts)
  if not logged then
    stderr("%s", lerr)
    return nil, 1
  end
  M.log_ready = true
  local run_id = tostring(log.run_id and log.run_id() or "")
  log.info("main", "[START] metasync %s, run %s%s", policy.direction, run_id, opts.dry_run and " (dry run)" or "")
  -- the old tool's marker, which its users' log searches key on
  log.info("main", "[RUN ID: %s]", run_id)
  log.debug("main", "logs: %s and %s%s", where.file, where.errors_file, where.source and (" (from " .. where.source .. ")") or "")
  for _, w in ipairs(lerr) do warnings[#warnings + 1] = w end
  for _, w in ipairs(warnings) do log.warn("config", "%s", w) end
  local ctx = { cfg = cfg, options = opts, dry_run = opts.dry_run and true or false, banned = cfg.banned,
    date_format = cfg.keyfactorDateFormat, sectigo_date_format = "MM/dd/yyyy", today = os.date("!%Y-%m-%d"),
    report = report.new(policy.direction), log = log }
  ctx.report.dry_run = ctx.dry_run
  -- The change limit: --max-changes over maxChanges.
  ctx.max_changes = cfg.max_changes
  if opts.max_changes then
    -- the same syntax as maxChanges in config.json, read by the same converter
    local spec, what = require("metasync.confcheck").CONV.changes(opts.max_changes)
    if not spec then
      stderr("--max-changes: %s, not '%s'", what, tostring(opts.max_changes))
      return nil, 64
    end
    ctx.max_changes = spec
  end
  if not ctx.dry_run then
    local h, why = take_lock(cfg, opts, policy.direction)
    if not h then
      log.error("main", "%s", why) -- reaches stderr too
      return nil, why:find("^another run") and M.EX_LOCKED or 1
    end
    ctx.lock = h
  end
  -- A dry run writes nothing, the state store included: it only reads the baseline.
  local st, serr = state.open(cfg.state_path, { readonly = ctx.dry_run })
  if not st then
    M.fatal("%s/config.json: key 'stateFile': cannot use %s: %s", cfg.dir, cfg.state_path, tostring(serr))
  end
  ctx.state = st
  ctx.sectigo, ctx.keyfactor = M.clients(cfg, opts)
  ctx.concurrency = { sectigo = ctx.sectigo.concurrency, keyfactor = ctx.keyfactor.concurrency }
  return ctx
end

return M

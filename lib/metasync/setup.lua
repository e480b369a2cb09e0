-- Stage 1 of a run: load and check the configuration, set up logging and build both clients
-- with their politeness limits. Everything here can still stop the run with exit 1.
local config = require("metasync.config")
local log = require("metasync.log")
local http = require("metasync.http")
local sectigo = require("metasync.sectigo")
local keyfactor = require("metasync.keyfactor")
local report = require("metasync.report")
local state = require("metasync.state")

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

local function host_of(url) return url:match("^https?://([^/]+)") end

-- clients(cfg, opts) -> sectigo client, keyfactor client
function M.clients(cfg, opts)
  local common = { timeout = cfg.requestTimeoutSeconds, connect_timeout = cfg.connectTimeoutSeconds,
    cafile = cfg.caFile, proxy = cfg.proxy, insecure = cfg.insecureSkipVerify, retries = cfg.maxRetries }
  local sn = opts.concurrency or cfg.sectigoConcurrency
  local kn = opts.concurrency or cfg.keyfactorConcurrency
  local so = cfg.sectigoOAuth
  local sc = sectigo.new { base = cfg.sectigo_base, login = cfg.sectigoLogin, password = cfg.sectigoPassword,
    customer_uri = cfg.sectigoCustomerUri, concurrency = sn, http = common,
    oauth = so and so.usable and { token_url = so.tokenUrl, client_id = so.clientId, client_secret = so.clientSecret } or nil }
  local ko = cfg.keyfactorOAuth
  local kf = keyfactor.new { base = cfg.keyfactor_base, login = cfg.keyfactorLogin, password = cfg.keyfactorPassword,
    concurrency = kn, http = common, requested_with = ko and ko.requestedWith,
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

local function setup_log(cfg, opts)
  local level = opts.log_level or (opts.verbose and "debug") or cfg.logLevel
  local dir = cfg.logDirectory
  -- log.setup creates the directory; a log that cannot be written is a configuration error.
  local ok, err = log.setup { level = level, file = dir .. "/metasync.log",
    errors_file = dir .. "/metasync-errors.log", stderr = true, stderr_level = opts.verbose and level or "warn",
    max_size = math.floor(cfg.logMaxSizeMB * 1048576), max_files = cfg.logMaxFiles }
  if not ok then return nil, string.format("%s/config.json: key 'logDirectory': %s", cfg.dir, tostring(err)) end
  return true
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
  local logged, lerr = setup_log(cfg, opts)
  if not logged then
    stderr("%s", lerr)
    return nil, 1
  end
  M.log_ready = true
  log.info("main", "[START] metasync %s, run %s%s", policy.direction, tostring(log.run_id and log.run_id() or ""),
    opts.dry_run and " (dry run)" or "")
  for _, w in ipairs(warnings) do log.warn("config", "%s", w) end
  local ctx = { cfg = cfg, options = opts, dry_run = opts.dry_run and true or false, banned = cfg.banned,
    date_format = cfg.keyfactorDateFormat, sectigo_date_format = "MM/dd/yyyy", today = os.date("!%Y-%m-%d"),
    report = report.new(policy.direction), log = log }
  ctx.report.dry_run = ctx.dry_run
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

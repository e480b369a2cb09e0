-- The run skeleton both stock policies share: load and check config, set up logging, build
-- the clients, pre-flight both APIs, settle field names, diff the field definitions and list
-- both inventories -- everything that can fail fatally (exit 1) comes before the first write --
-- then write the definitions, match by serial, and plan and apply through metasync.flows. The
-- policy (a table of hooks, see scripts/sctokf.lua) decides everything a site might want to change.
local config = require("metasync.config")
local log = require("metasync.log")
local http = require("metasync.http")
local task = require("metasync.task")
local sectigo = require("metasync.sectigo")
local keyfactor = require("metasync.keyfactor")
local names = require("metasync.names")
local serial = require("metasync.serial")
local fields = require("metasync.fields")
local report = require("metasync.report")

local M = {}

local function options()
  local ok, o = pcall(require, "metasync.options")
  return ok and type(o) == "table" and o or {}
end

local function stderr(fmt, ...)
  io.stderr:write("metasync: ", string.format(fmt, ...), "\n")
end

local Fatal = {}
local function fatal(fmt, ...)
  error(setmetatable({ msg = string.format(fmt, ...) }, Fatal), 0)
end
M.fatal = fatal

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

-- settle_names(ctx, list, policy): rewrites every Keyfactor name through the policy; a
-- character without a replacement is added to bannedcharacters.json (written back) and the
-- run stops before anything is written to either API.
local function settle_names(ctx, list, policy)
  local pending, order, table_changed = {}, {}, false
  for _, f in ipairs(list) do
    local new, missing = policy.keyfactor_name(f, ctx)
    for _, c in ipairs(missing or {}) do
      if ctx.banned:add(c, nil) then table_changed = true end
      if not pending[c] then pending[c] = {}; order[#order + 1] = c end
      table.insert(pending[c], f.keyfactor)
    end
    if new ~= f.keyfactor then
      log.info("fields", "Sectigo field '%s' becomes Keyfactor field '%s'", f.keyfactor, new)
      f.keyfactor = new
    end
  end
  if table_changed and not ctx.dry_run then
    local ok, err = names.save(ctx.banned, ctx.cfg.banned_path)
    if not ok then fatal("%s: cannot write: %s", ctx.cfg.banned_path, tostring(err)) end
  end
  if #order > 0 then
    for _, c in ipairs(order) do
      log.warn("fields", "character %s has no replacement; it appears in: %s", names.describe(c),
        table.concat(pending[c], ", "))
    end
    fatal("%d banned character(s) need a replacement in %s (set \"replacementcharacter\"); nothing was written to either API",
      #order, ctx.cfg.banned_path)
  end
end

-- apply_definitions(ctx, d): creates or updates the Keyfactor field definitions that differ
-- (d from fields.diff, computed before any write). This is the run's first write, so a
-- definition Keyfactor refuses no longer stops the run with exit 1 ("fatal before any write"
-- would be untrue once another definition went in): the field's values are skipped, the
-- failure goes in the summary, and the run ends with exit 2.
local function apply_definitions(ctx, d)
  local r = ctx.report
  if ctx.dry_run then
    for _, def in ipairs(d.create) do
      io.stdout:write(string.format("create Keyfactor field %s (DataType %d)\n", def.Name, def.DataType))
    end
    for _, u in ipairs(d.update) do
      io.stdout:write(string.format("update Keyfactor field %s: %s\n", u.def.Name, table.concat(u.changes, "; ")))
    end
    r.fields_created, r.fields_updated = #d.create, #d.update
    return
  end
  local broken = {}
  for _, def in ipairs(d.create) do
    local ok, err = ctx.keyfactor:create_field(def)
    if ok then
      r.fields_created = r.fields_created + 1
      log.info("fields", "created Keyfactor metadata field '%s' (DataType %d)", def.Name, def.DataType)
    else
      broken[def.Name:lower()] = true
      r:field_failed(def.Name, "cannot create Keyfactor field: " .. tostring(err))
    end
  end
  for _, u in ipairs(d.update) do
    local ok, err = ctx.keyfactor:update_field(u.def)
    if ok then
      r.fields_updated = r.fields_updated + 1
      log.info("fields", "updated Keyfactor metadata field '%s': %s", u.def.Name, table.concat(u.changes, "; "))
    else
      broken[u.def.Name:lower()] = true
      r:field_failed(u.def.Name, "cannot update Keyfactor field: " .. tostring(err))
    end
  end
  if next(broken) then
    local kept = {}
    for _, f in ipairs(ctx.fields) do
      if broken[f.keyfactor:lower()] then
        log.warn("fields", "values of Keyfactor field '%s' are skipped: its definition could not be written", f.keyfactor)
      else
        kept[#kept + 1] = f
      end
    end
    ctx.fields = kept
  end
end

-- inventories(ctx, policy) -> sectigo index by serial, keyfactor list.
-- The Sectigo index is a hash table keyed by normalised serial (no per-certificate scan).
local function inventories(ctx, policy)
  -- Both inventories are listed at once (each also fetches its own pages concurrently).
  local sc_task = task.spawn(function()
    local all = {}
    for _, filter in ipairs(policy.sectigo_filters(ctx)) do
      local list, err = ctx.sectigo:list(filter)
      if not list then fatal("listing Sectigo certificates failed: %s", err) end
      for _, c in ipairs(list) do all[#all + 1] = c end
    end
    return all
  end)
  local q = policy.keyfactor_query(ctx)
  q.page_size = q.page_size or ctx.cfg.keyfactorPageSize
  local kf_list, kerr = ctx.keyfactor:list(q)
  local ok, sc_list = sc_task:join()
  if not ok then error(sc_list, 0) end
  if not kf_list then fatal("listing Keyfactor certificates failed: %s", kerr) end
  local idx, skipped, dups = serial.index(sc_list, function(c) return c.serialNumber end)
  log.info("sync", "Sectigo: %d certificates listed (%d without a serial); Keyfactor: %d listed",
    #sc_list, skipped, #kf_list)
  for _, s in ipairs(dups) do log.warn("sync", "Sectigo serial %s appears more than once; the first is used", s) end
  return idx, kf_list
end

-- match(ctx, policy, idx, kf_list) -> list of {kf=, sc=, serial=}
local function match(ctx, policy, idx, kf_list)
  local pairs_ = {}
  for _, kc in ipairs(kf_list) do
    if not policy.include(kc, ctx) then
      ctx.report.skipped = ctx.report.skipped + 1
    else
      ctx.report.considered = ctx.report.considered + 1
      local key = serial.normalise(kc.SerialNumber)
      local sc = key and idx[key]
      if sc then
        pairs_[#pairs_ + 1] = { kf = kc, sc = sc, serial = key }
      else
        ctx.report:unmatched_serial(key or "(empty)")
      end
    end
  end
  ctx.report.matched = #pairs_
  return pairs_
end

local function setup_log(cfg, opts)
  local level = opts.log_level or (opts.verbose and "debug") or cfg.logLevel
  local dir = cfg.logDirectory
  -- log.setup creates the directory; a log that cannot be written is a configuration error.
  local ok, err = log.setup { level = level, file = dir .. "/metasync.log",
    errors_file = dir .. "/metasync-errors.log", stderr = true, stderr_level = opts.verbose and level or "warn",
    max_size = math.floor(cfg.logMaxSizeMB * 1048576), max_files = cfg.logMaxFiles }
  if not ok then return nil, string.format("%s/config.json: key 'logDirectory': %s", cfg.dir, tostring(err)) end
  M.log_ready = true
  return true
end

local function body(policy, opts)
  local cfg, errs, warnings = config.load(opts.config_dir or "config")
  if not cfg then
    for _, w in ipairs(warnings or {}) do stderr("warning: %s", w) end
    for _, e in ipairs(errs) do stderr("%s", e) end
    return 1
  end
  warnings = errs
  local logged, lerr = setup_log(cfg, opts)
  if not logged then
    stderr("%s", lerr)
    return 1
  end
  log.info("main", "[START] metasync %s, run %s%s", policy.direction, tostring(log.run_id and log.run_id() or ""),
    opts.dry_run and " (dry run)" or "")
  for _, w in ipairs(warnings) do log.warn("config", "%s", w) end
  local ctx = { cfg = cfg, options = opts, dry_run = opts.dry_run and true or false, banned = cfg.banned,
    date_format = cfg.keyfactorDateFormat, report = report.new(policy.direction), log = log }
  ctx.report.dry_run = ctx.dry_run
  ctx.sectigo, ctx.keyfactor = M.clients(cfg, opts)
  ctx.concurrency = { sectigo = ctx.sectigo.concurrency, keyfactor = ctx.keyfactor.concurrency }

  -- Pre-flight: both APIs answer with our credentials before anything is written.
  local defs, err = ctx.sectigo:custom_fields()
  if not defs then fatal("cannot reach Sectigo: %s", err) end
  ctx.sectigo_fields = defs
  ctx.kf_fields, err = ctx.keyfactor:metadata_fields()
  if not ctx.kf_fields then fatal("cannot reach Keyfactor: %s", err) end

  local list = policy.fields(ctx)
  fields.attach_sectigo(list, defs)
  settle_names(ctx, list, policy)
  ctx.fields = list
  log.info("fields", "%d fields in the mapping", #list)
  -- Everything that can stop the run comes before the first write: the definition diff is
  -- computed here, and both inventories are listed (a failed page is fatal), before any
  -- definition is created or updated.
  local defs_diff = policy.direction == "sctokf" and fields.diff(list, ctx.kf_fields) or nil

  local idx, kf_list = inventories(ctx, policy)
  if defs_diff then apply_definitions(ctx, defs_diff) end
  local matched = match(ctx, policy, idx, kf_list)
  require("metasync.flows")[policy.direction](ctx, policy, matched)
  return ctx.report:finish()
end

-- main(policy) -> exit code. Config and pre-flight problems are one line on stderr and exit 1.
function M.main(policy)
  local opts = options()
  local ok, rc = xpcall(body, function(e)
    if getmetatable(e) == Fatal then return e end
    return debug.traceback(tostring(e), 2)
  end, policy, opts)
  if ok then return rc end
  local msg = getmetatable(rc) == Fatal and rc.msg or tostring(rc)
  if M.log_ready then
    log.fatal("main", "%s", msg:match("^[^\n]*"))
    if getmetatable(rc) ~= Fatal then log.debug("main", "%s", msg) end
  else
    stderr("%s", msg:match("^[^\n]*"))
  end
  return 1
end

return M

-- The plumbing of the REPL's ad-hoc questions (metasync.adhoc), answered the way a run sees
-- the two inventories: the same configuration, the same policy (the site's sctokf.lua if it has
-- one, else the stock one: its field list, Sectigo filters, Keyfactor query and include hook),
-- serials normalised by metasync.serial, the Sectigo index of metasync.scindex, values compared
-- by meaning (metasync.values). Nothing here writes to either API, takes the run lock or opens
-- the state store. Listings stream (metasync.table_out streams): a helper over 100k
-- certificates holds a few pages and the requests in flight, never the list. The field
-- definitions and the Sectigo index are fetched on first use and kept for the session
-- (reload() forgets them).
local json = require("metasync.json")
local log = require("metasync.log")
local task = require("metasync.task")
local config = require("metasync.config")
local setup = require("metasync.setup")
local report = require("metasync.report")
local fieldset = require("metasync.fieldset")
local scindex = require("metasync.scindex")
local serial = require("metasync.serial")
local fields = require("metasync.fields")
local stock = require("metasync.stock")
local sectigo_id = require("metasync.sectigo").id
local out = require("metasync.table_out")
local status = out.status

local M = {}

local S = {} -- the session: cfg, sectigo, keyfactor, world

local function options()
  local ok, o = pcall(require, "metasync.options")
  return ok and type(o) == "table" and o or {}
end

-- An error that is only "interrupted" (Ctrl-C) must not be taken for one certificate's fault.
local function rethrow_interrupt(e)
  if tostring(e):find("interrupted", 1, true) then error(e, 0) end
end

-- setup.fatal raises a table; the shell shows error text.
local function plain(fn, ...)
  local ok, a = pcall(fn, ...)
  if ok then return a end
  if getmetatable(a) == setup.Fatal then error(a.msg, 0) end
  error(a, 0)
end

local function note(fmt, ...)
  status.clear()
  io.stderr:write(log.redact(string.format(fmt, ...)), "\n")
end

-- notes() -> note, but for one certificate's failure in a listing: the first ten are shown,
-- then one line says the rest are not (a broken hook would otherwise print the inventory).
local function notes()
  local n = 0
  return function(fmt, ...)
    n = n + 1
    if n <= 10 then note(fmt, ...) elseif n == 11 then note("(further failures of this listing are not shown)") end
  end
end

function M.config()
  if not S.cfg then
    local dir = options().config_dir or "config"
    local cfg, errs = config.load(dir)
    if not cfg then error("no configuration: " .. tostring(errs and errs[1] or dir), 0) end
    -- masked from the moment they are loaded: `config.sectigoPassword` may be the first use
    setup.register_secrets(cfg)
    S.cfg = cfg
  end
  return S.cfg
end

-- clients() -> sectigo, keyfactor: made once (no request is sent until one is used)
function M.clients()
  if not S.sectigo then S.sectigo, S.keyfactor = setup.clients(M.config(), options()) end
  return S.sectigo, S.keyfactor
end

-- reload(): the next use reads the configuration again and fetches definitions and the index
function M.reload() S = {} end

-- The site's sctokf.lua (--scripts DIR, then <config dir>/scripts) is loaded as metasync.stock
-- loads the stock one, and with metasync.run stood in for, so `return policy:run()` hands the
-- table back instead of starting a run.
local function site_policy(opts)
  local dirs = { opts.scripts_dir, (opts.config_dir or "config") .. "/scripts" }
  for i = 1, 2 do
    local path = dirs[i] and (dirs[i] .. "/sctokf.lua")
    local chunk, err
    if path then chunk, err = loadfile(path) end
    if chunk then
      local run = package.loaded["metasync.run"]
      package.loaded["metasync.run"] = { main = function(p) return p end }
      stock.loading = stock.loading + 1
      local ok, p = pcall(chunk)
      stock.loading = stock.loading - 1
      package.loaded["metasync.run"] = run
      if not ok then error(path .. ": " .. tostring(p), 0) end
      if type(p) ~= "table" or type(p.include) ~= "function" then error(path .. ": did not give a policy table", 0) end
      return p, path
    elseif path and not tostring(err):find("cannot open", 1, true) then
      error(err, 0)
    end
  end
  return stock.load("sctokf"), "stock sctokf.lua"
end

-- world() -> {ctx, policy}: ctx as setup.context makes it for a dry run (no lock, no state
-- store), with both sides' field definitions and the mapping (ctx.fields).
function M.world()
  if S.world then return S.world end
  local opts, cfg = options(), M.config()
  local sc, kf = M.clients()
  local policy, where = site_policy(opts)
  local ctx = { cfg = cfg, options = opts, dry_run = true, banned = cfg.banned, date_format = cfg.keyfactorDateFormat,
    sectigo_date_format = "MM/dd/yyyy", today = os.date("!%Y-%m-%d"), report = report.new("sctokf"), log = log,
    sectigo = sc, keyfactor = kf, direction = "sctokf",
    concurrency = { sectigo = sc.concurrency, keyfactor = kf.concurrency } }
  ctx.report.dry_run = true
  local err
  ctx.sectigo_fields, err = sc:custom_fields()
  if not ctx.sectigo_fields then error(report.preflight("Sectigo", err, cfg), 0) end
  ctx.kf_fields, err = kf:metadata_fields()
  if not ctx.kf_fields then error(report.preflight("Keyfactor", err, cfg), 0) end
  plain(fieldset.prepare, ctx, policy)
  S.world = { ctx = ctx, policy = policy, policy_file = where }
  return S.world
end

-- What completion offers inside a string: the mapping's names and the config keys (the
-- definitions only once a helper fetched them: a keystroke sends no request).
function M.words()
  local list = {}
  local cfg, w = S.cfg, S.world
  for _, spec in ipairs(config.KEYS) do list[#list + 1] = spec[1] end
  local lists = w and { w.ctx.fields } or cfg and cfg.fields and { cfg.fields.custom, cfg.fields.manual } or {}
  for _, fl in ipairs(lists) do
    for _, f in ipairs(fl) do
      list[#list + 1] = f.keyfactor
      list[#list + 1] = f.sectigo
    end
  end
  for _, d in ipairs(w and w.ctx.sectigo_fields or {}) do list[#list + 1] = d.name end
  for _, d in ipairs(w and w.ctx.kf_fields or {}) do list[#list + 1] = d.Name end
  return list
end

local function count(n) return tostring(n):reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "") end

-- The Sectigo index, built once: the listing is counted on the status line.
local function index(w)
  if w.index then return w.index end
  local real, n = w.ctx.sectigo, 0
  local counting = setmetatable({ certificates = function(_, f)
    local it = real:certificates(f)
    return function()
      local c = it()
      if c ~= nil then
        n = n + 1
        status.update(function() return "indexing Sectigo: " .. count(n) .. " certificates listed" end)
      end
      return c
    end
  end }, { __index = real })
  local ix = plain(scindex.build, setmetatable({ sectigo = counting }, { __index = w.ctx }), w.policy)
  status.clear()
  w.index = ix -- only a complete index is kept (an interrupted build never gets here)
  return ix
end

-- considered(w, label) -> iterator of (Keyfactor certificate, normalised serial) over what a
-- run considers: the policy's query, its include hook, a usable serial; and the counters.
local function considered(w, label)
  local ctx, policy = w.ctx, w.policy
  local q = policy.keyfactor_query(ctx)
  q.page_size = q.page_size or ctx.cfg.keyfactorPageSize
  q.fields = q.fields or policy.keyfactor_fields
  local it = ctx.keyfactor:certificates(q)
  local c = { listed = 0, considered = 0, rows = 0 }
  local warn = notes()
  local function text()
    return string.format("%s: %s Keyfactor certificates listed, %s rows", label, count(c.listed), count(c.rows))
  end
  return function()
    for kc in it do
      c.listed = c.listed + 1
      status.update(text)
      local ok, inc = pcall(policy.include, kc, ctx)
      if not ok then
        rethrow_interrupt(inc)
        warn("Keyfactor Id %s: policy.include: %s", tostring(rawget(kc, "Id")), tostring(inc):match("^[^\n]*"))
      elseif inc then
        local key = serial.parse(rawget(kc, "SerialNumber"))
        if key then
          c.considered = c.considered + 1
          return kc, key
        end
      end
    end
  end, c
end

-- ordered(next_item, n, fetch) -> iterator of (item, result, err): fetch(item) runs in its own
-- task, up to n at once, and results come back in the items' order.
local function ordered(next_item, n, fetch)
  local q, head, tail, done = {}, 1, 0, false
  return function()
    while not done and tail - head + 1 < n do
      local item = next_item()
      if item == nil then done = true else
        tail = tail + 1
        q[tail] = { item, task.spawn(fetch, item) }
      end
    end
    if head > tail then return nil end
    local e = q[head]
    q[head], head = nil, head + 1
    local ok, r, err = e[2]:join()
    if not ok then return e[1], nil, tostring(r):match("^[^\n]*") end
    return e[1], r, err
  end
end

local MATCHED = { "serial", "keyfactor_id", "sectigo_id", "cn" }
local MATCHED_MT = out.row_meta(MATCHED)

-- pairs_of(w, label) -> iterator of matched rows {serial, keyfactor_id, sectigo_id, cn,
-- keyfactor = the certificate}, the bulk document (sectigoBulkReads) or nil; and the counters
local function pairs_of(w, label)
  local ix = index(w)
  local it, c = considered(w, label)
  return function()
    for kc, key in it do
      local id, doc = ix:get(key)
      if id and not (ix.broken and ix.broken[key]) then
        return setmetatable({ serial = key, keyfactor_id = rawget(kc, "Id"), sectigo_id = id,
          cn = rawget(kc, "IssuedCN"), keyfactor = kc }, MATCHED_MT), doc
      end
    end
  end, c
end

-- with_details(w, it) -> iterator of (row, details | nil, err) for matched rows, the details
-- GETs concurrent (a bulk document when the index has one).
local function with_details(w, it)
  local sc = w.ctx.sectigo
  return ordered(function()
    local row, doc = it()
    if row then return { row, doc } end
  end, 2 * sc.concurrency, function(e)
    if e[2] and not w.index.need_details then return e[2] end
    return sc:details(e[1].sectigo_id)
  end)
end

-- field_of(w, name) -> the mapped field whose Keyfactor or Sectigo name is name (any case)
local function field_of(w, name, required)
  local low = tostring(name):lower()
  for _, f in ipairs(w.ctx.fields) do
    if f.keyfactor:lower() == low or (f.sectigo and f.sectigo:lower() == low) then return f end
  end
  if required then
    local names = {}
    for i, f in ipairs(w.ctx.fields) do names[i] = f.keyfactor end
    error(string.format("'%s' is not a mapped field (mapping(): %s)", tostring(name), table.concat(names, ", ")), 3)
  end
end

local function value_of(w, f, d, kc)
  if not d then return nil end
  local v = w.policy.source_value(f, d, kc, w.ctx)
  if v == json.null then return nil end
  return v
end

-- A Sectigo listing through the policy's filters, each certificate with its details.
local function sectigo_listing(w, label)
  local ctx = w.ctx
  local filters = w.policy.sectigo_filters(ctx)
  local fi, it = 0, nil
  local c = { listed = 0, rows = 0 }
  local function text()
    return string.format("%s: %s Sectigo certificates listed, %s rows", label, count(c.listed), count(c.rows))
  end
  local function next_item()
    while true do
      if not it then
        fi = fi + 1
        if not filters[fi] then return nil end
        it = ctx.sectigo:certificates(filters[fi])
      end
      local item = it()
      if item ~= nil then
        c.listed = c.listed + 1
        status.update(text)
        return item
      end
      it = nil
    end
  end
  return ordered(next_item, 2 * ctx.sectigo.concurrency, function(item)
    local id = sectigo_id(rawget(item, "sslId") or rawget(item, "id"))
    if not id then return nil, "no usable sslId (" .. fields.describe(item.sslId) .. ")" end
    return ctx.sectigo:details(id)
  end), c
end

M.MATCHED = MATCHED
M.index, M.considered, M.pairs_of, M.with_details = index, considered, pairs_of, with_details
M.field_of, M.value_of, M.sectigo_listing, M.note, M.notes, M.count = field_of, value_of, sectigo_listing, note, notes, count
M.rethrow_interrupt = rethrow_interrupt
function M.session() return S end

return M

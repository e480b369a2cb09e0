-- What one run tells the operator besides its summary: the per-certificate report of
-- `--report FILE`, the progress line (metasync.progress) and the metrics file (metricsFile,
-- metasync.metrics). attach() wires them to a run; the pipeline opens and closes them.
--
-- The report has one row per considered certificate: run id, serial, Keyfactor id, Sectigo
-- id, CN, action, the changed fields with their old and new values, and the error text.
-- Rows are written as certificates are decided, never collected: memory holds the pairs in
-- flight only. They go to FILE.tmp, renamed to FILE when the run ends, so FILE is always a
-- whole report; a run that dies leaves FILE.tmp (and FILE, if any, from an earlier run).
-- The journal (metasync.state) stays the record of what was written (`metasync report RUN`
-- and `revert` read it); this file is the run's account of every certificate, written or not.
local csv = require("metasync.csv")
local json = require("metasync.json")
local log = require("metasync.log")
local values = require("metasync.values")

local M = {}

M.COLUMNS = { "run_id", "serial", "keyfactor_id", "sectigo_id", "cn", "action", "changes", "error" }
local COLUMNS = M.COLUMNS

local Rows = {}
Rows.__index = Rows

-- open(path, run_id[, report]) -> rows | nil, message. A name ending in .csv gives CSV (RFC
-- 4180, metasync.csv), anything else JSON lines.
function M.open(path, run_id, report)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, string.format("--report %s: cannot write %s: %s", path, tmp, tostring(err)) end
  local self = setmetatable({ path = path, tmp = tmp, f = f, csv = path:lower():match("%.csv$") ~= nil,
    run_id = run_id, report = report, pending = {}, written = 0 }, Rows)
  if self.csv then self:put(csv.header(COLUMNS)) end
  return self
end

-- A write that fails (disk full) is remembered and reported at the end; the sync goes on.
function Rows:put(s)
  if self.err or not self.f then return end
  local ok, err = self.f:write(s)
  if not ok then self.err = tostring(err) end
end

local function kfinfo(kc)
  if type(kc) ~= "table" then return nil, nil end
  -- rawget: a listing decoded with policy.keyfactor_fields raises on keys it did not fetch
  local id, cn = rawget(kc, "Id"), rawget(kc, "IssuedCN")
  return math.type(id) and id or nil, type(cn) == "string" and cn or nil
end

-- the changes as written out: {field, to, old, new}, values as text (null for none)
local function change_list(list)
  local out = json.array()
  for _, c in ipairs(list) do
    local old, new = values.text(c.old), values.text(c.new)
    out[#out + 1] = { field = tostring(c.field), to = c.to, old = old == nil and json.null or old,
      new = new == nil and json.null or new }
  end
  return out
end

-- row{serial=, keyfactor_id=, sectigo_id=, cn=, action=, changes=, error=}
function Rows:row(r)
  local changes = r.changes and #r.changes > 0 and change_list(r.changes) or nil
  local out = { run_id = self.run_id, serial = r.serial and tostring(r.serial), keyfactor_id = r.keyfactor_id,
    sectigo_id = r.sectigo_id, cn = r.cn, action = r.action,
    -- An error may quote a server's answer, which may echo a credential.
    error = r.error and log.redact(r.error) or nil }
  if self.csv then
    out.changes = changes and json.encode(changes, { sort_keys = true }) or nil
    self:put(csv.line(out, COLUMNS))
  else
    out.changes = changes or json.array()
    self:put(csv.jsonl(out, COLUMNS))
  end
  self.written = self.written + 1
end

-- standalone(action, serial, kfcert[, error]): a certificate decided on the spot (skipped,
-- unmatched, or failed before it was paired).
function Rows:standalone(action, serial, kc, err)
  local id, cn = kfinfo(kc)
  self:row { serial = serial, keyfactor_id = id, cn = cn, action = action, error = err }
end

-- A pair's outcome is gathered from the report's hooks while it is in flight, keyed by serial.
-- Two Keyfactor certificates with one serial in flight at once share an entry list; a hook
-- goes to the oldest one.
function Rows:begin(p)
  local list = self.pending[p.serial]
  if not list then list = {}; self.pending[p.serial] = list end
  list[#list + 1] = { p = p, changes = {}, errors = {}, conflicts = {} }
end

local function entry(self, serial)
  local list = serial ~= nil and self.pending[serial]
  return list and list[1]
end

function Rows:fail(serial, reason, kc)
  local e = entry(self, serial)
  if e then e.errors[#e.errors + 1] = tostring(reason); return end
  self:standalone("failed", serial, kc, tostring(reason))
end

-- note(serial, what, data[, id_label]): changed (data = changes, id_label says which side),
-- conflict (data = its summary line), unchanged, held, interrupted.
function Rows:note(serial, what, data, id_label)
  local e = entry(self, serial)
  if not e then
    if what == "interrupted" then self:standalone("interrupted", serial, nil, data) end
    return
  end
  if what == "changed" then
    local to = tostring(id_label or ""):match("^Sectigo") and "sectigo" or "keyfactor"
    for _, c in ipairs(data or {}) do
      -- the old value in the canonical form it was compared (and journaled) in, when known
      local old = c.old_canon
      if old == nil then old = c.old end
      e.changes[#e.changes + 1] = { field = c.field, to = to, old = old, new = c.new }
    end
    e.written = true
  elseif what == "conflict" then
    e.conflicts[#e.conflicts + 1] = data
  else
    e[what] = data or true
  end
end

-- finish(p): the pair's row. Precedence: failed, conflict, updated (planned in a dry run), held
-- by the change limit, unchanged. A pair no hook spoke for had nothing to write, unless the
-- change limit was reached: it may then have been held back (pair.lua's r:held says so).
function Rows:finish(p)
  local list = self.pending[p.serial]
  if not list then return end
  local e
  for i, x in ipairs(list) do
    if x.p == p then e = table.remove(list, i); break end
  end
  if #list == 0 then self.pending[p.serial] = nil end
  if not e then return end
  local rep = self.report
  local action, err
  if #e.errors > 0 then action, err = "failed", table.concat(e.errors, "; ")
  elseif e.interrupted then action, err = "interrupted", e.interrupted
  elseif #e.conflicts > 0 then action = "conflict"
  elseif e.written then action = rep and rep.dry_run and "planned" or "updated"
  elseif e.held then
    action = "held"
    if type(e.held) == "table" then
      -- one-way runs write one side; a two-way pair's held changes do not say which
      local to = ({ sctokf = "keyfactor", kftosc = "sectigo" })[rep and rep.direction]
      for _, c in ipairs(e.held) do
        local old = c.old_canon
        if old == nil then old = c.old end
        e.changes[#e.changes + 1] = { field = c.field, to = to, old = old, new = c.new }
      end
    end
  elseif e.unchanged then action = "unchanged"
  elseif rep and rep.limit and rep.limit:tripped() then action = "unchanged or held"
  else action = "unchanged" end
  if #e.conflicts > 0 then
    local c = "conflict: " .. table.concat(e.conflicts, "; ")
    err = err and (err .. "; " .. c) or c
  end
  local id, cn = kfinfo(p.kf)
  self:row { serial = p.serial, keyfactor_id = id, sectigo_id = p.ssl_id, cn = cn, action = action,
    changes = e.changes, error = err }
end

-- close(complete) -> true | nil, message. complete: FILE.tmp becomes FILE; otherwise FILE.tmp
-- is removed (the run stopped before it considered anything worth a report).
function Rows:close(complete)
  if not self.f then return true end
  local f = self.f
  local ok, err
  -- pairs still in flight when a stopped run gave up waiting for them
  if complete then
    for _, list in pairs(self.pending) do
      for _, e in ipairs(list) do e.interrupted = e.interrupted or "the run stopped before it was finished" end
    end
    for _, list in pairs(self.pending) do
      while list[1] do self:finish(list[1].p) end
    end
  end
  self.f = nil
  ok, err = f:close()
  if not ok and not self.err then self.err = tostring(err) end
  if self.err or not complete then
    os.remove(self.tmp)
    if self.err then return nil, string.format("--report %s: not written: %s", self.path, self.err) end
    return true
  end
  local rok, rerr = os.rename(self.tmp, self.path)
  if not rok then
    os.remove(self.tmp)
    return nil, string.format("--report %s: %s", self.path, tostring(rerr))
  end
  return true
end

-- attach(ctx, opts) -> outputs: {open(), close(rc)}. open() starts the report file (raises
-- setup.fatal when it cannot be written: before any request); close(rc) stops the progress
-- line, completes or removes the report and writes the metrics file. Both are safe to call
-- twice and never raise after open().
function M.attach(ctx, opts)
  local progress = require("metasync.progress")
  local out = { ctx = ctx }
  ctx.report.progress = progress.start(ctx, opts)
  function out.open()
    if not opts.report or out.rows then return end
    local rows, err = M.open(opts.report, ctx.report.run_id, ctx.report)
    if not rows then require("metasync.setup").fatal("%s", err) end
    out.rows = rows
    ctx.report.rows = rows
  end
  function out.close(rc)
    if out.closed then return end
    out.closed = true
    if ctx.report.progress then ctx.report.progress:stop() end
    if out.rows then
      ctx.report.rows = nil
      -- a run that ended with an exit code (the summary printed) has a whole report; a fatal
      -- error before the first write (exit 1) has none worth keeping
      local ok, err = out.rows:close(rc ~= 1 or ctx.report.considered > 0)
      if not ok then log.error("main", "%s", err)
      elseif rc ~= 1 or ctx.report.considered > 0 then
        log.info("main", "run report: %s (%d certificates)", out.rows.path, out.rows.written)
      end
    end
    local path = ctx.cfg and ctx.cfg.metricsFile
    -- relative to the tool's home, like every other path in the config
    if path and path ~= "" then path = require("metasync.config").resolve(ctx.cfg, path) end
    if path and path ~= "" and not ctx.dry_run then
      local ok, done, err = pcall(require("metasync.metrics").write, path, ctx, rc)
      if not ok or not done then log.error("main", "metricsFile %s: %s", path, tostring(ok and err or done)) end
    end
  end
  return out
end

return M

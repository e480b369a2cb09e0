-- A dry run's output: one line per change, per field totals at the end, and with --plan-out the
-- saved plan (metasync.planfile) that `metasync apply` writes. Called by metasync.pair (one-way)
-- and metasync.twoway; nothing here decides what changes.
local log = require("metasync.log")
local values = require("metasync.values")
local fields = require("metasync.fields")
local planfile = require("metasync.planfile")

local M = {}

-- show(v): a value as the dry run prints it, on one line whatever it holds; a clear ("") reads
-- as the absence it makes.
local function show(v)
  local s = values.text(v)
  if s == nil or s == "" then return "(none)" end
  return "'" .. planfile.escape(s) .. "'"
end
M.show = show

-- print_plan(target, p, id_label, label, changes): a dry run's lines for one target, one line
-- per change so the text greps and counts. The old value is shown in the canonical form it is
-- compared in (old_canon: a Keyfactor date read back as "3/18/2027 12:00:00 AM" shows as
-- 2027-03-18), so old and new read alike.
local function print_plan(target, p, id_label, label, changes)
  label = values.text(label)
  local head = string.format("%s %s (%s%s): ", target, p.serial, id_label,
    (label and label ~= "") and (", " .. planfile.escape(label)) or "")
  local out = {}
  for i, c in ipairs(changes) do
    local old = c.old_canon
    if old == nil then old = c.old end
    out[i] = string.format("%s%s: %s -> %s\n", head, planfile.escape(c.field), show(old), show(c.new))
  end
  io.stdout:write(table.concat(out))
end
M.print_plan = print_plan

-- plan(ctx, side, p, changes): one target certificate's changes in a dry run: printed, counted
-- per field for the totals at the end, and saved with --plan-out. side = {target=, direction=,
-- id_label=, label=, keyfactor_id=, sectigo_id=}.
local function plan(ctx, side, p, changes)
  print_plan(side.target, p, side.id_label, side.label, changes)
  local totals = ctx.plan_totals
  if totals then
    for _, c in ipairs(changes) do
      local k = side.target .. "\0" .. c.field
      totals[k] = (totals[k] or 0) + 1
    end
  end
  local w = ctx.plan_writer
  if not w then return end
  local list = {}
  for i, c in ipairs(changes) do
    list[i] = { field = c.field, key = c.key, kind = c.kind, old = c.old_canon, new = values.text(c.new), baseline = c.agree }
  end
  local label = values.text(side.label)
  w:target { target = side.target:lower(), direction = side.direction, serial = p.serial,
    keyfactor_id = math.tointeger(side.keyfactor_id), sectigo_id = math.tointeger(side.sectigo_id),
    label = label, changes = list }
end
M.plan = plan

-- A dry run's end: the per-field totals, then the plan saved (renamed into place) only when
-- the run decided everything a real run would write; a plan cut short by a signal, or one
-- past the change limit (which a real run would stop at), is not a plan to apply.
local function plan_end(ctx, r)
  local keys = {}
  for k in pairs(ctx.plan_totals) do keys[#keys + 1] = k end
  table.sort(keys)
  local both = ctx.direction == "sync"
  local out = {}
  for _, k in ipairs(keys) do
    local target, field = k:match("^(.-)%z(.*)$")
    local n = ctx.plan_totals[k]
    out[#out + 1] = string.format("  %s%s: %d change%s\n", both and (target .. " ") or "", planfile.escape(field), n,
      n == 1 and "" or "s")
  end
  if #out > 0 then io.stdout:write("changes per field:\n", table.concat(out)) end
  local w = ctx.plan_writer
  if not w then return true end
  ctx.plan_writer = nil
  local why = (r.interrupted and "the run was interrupted") or (r.listing_failure and "the listing is incomplete")
    or (r.limit and r.limit:tripped() and "the change limit would stop a run before all of it (raise --max-changes to plan it all)")
  if why then
    w:discard()
    io.stdout:write(string.format("plan not saved to %s: %s\n", w.path, why))
    return true
  end
  local ok, err = w:commit()
  if not ok then
    log.error("main", "--plan-out: %s", err)
    return false
  end
  io.stdout:write(string.format("plan saved to %s: %d change(s) on %d certificate(s), %d field definition(s); metasync apply %s writes them\n",
    w.path, w.changes, w.targets, w.definitions, w.path))
  log.info("main", "plan saved to %s: %d change(s) on %d certificate(s)", w.path, w.changes, w.targets)
  return true
end

-- begin(ctx): a dry run counts its changes per field and, with --plan-out, opens the plan
-- with its header and the field definitions a run would write first. The end is hooked on
-- this run's report: finish() is where every run ends, the interrupted ones included.
function M.begin(ctx)
  ctx.plan_totals = {}
  local path = ctx.options and ctx.options.plan_out
  if path then
    local fatal = require("metasync.setup").fatal
    local digest, err = planfile.config_hash(ctx.cfg.dir, ctx.direction)
    if not digest then fatal("--plan-out: %s", err) end
    local w, werr = planfile.create(path, { command = ctx.direction, version = ctx.options.version,
      config_sha256 = digest })
    if not w then fatal("--plan-out: %s", werr) end
    ctx.plan_writer = w
    if ctx.direction ~= "kftosc" then
      local have = {}
      for _, e in ipairs(ctx.kf_fields or {}) do
        if type(e) == "table" and type(e.Name) == "string" then have[e.Name:lower()] = e end
      end
      local d = fields.diff(ctx.fields, ctx.kf_fields)
      for _, def in ipairs(d.create) do w:definition("create", def) end
      for _, u in ipairs(d.update) do w:definition("update", u.def, have[u.def.Name:lower()]) end
    end
  end
  local r = ctx.report
  local finish = r.finish
  r.finish = function(self)
    self.finish = nil
    local saved = plan_end(ctx, self)
    local rc = finish(self)
    if not saved and rc == 0 then return 1 end
    return rc
  end
end

return M

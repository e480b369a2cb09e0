-- Stage 7 of a run: one matched certificate pair, start to finish. Read the source values (the
-- bulk entry, or one details GET), decide per field (the policy's conversion, compared by
-- meaning: see metasync.values), then write at once or print the dry-run lines. Only counts
-- and failures stay behind (metasync.report).
-- A pair: {kf = Keyfactor certificate, serial = normalised serial, ssl_id =, doc = bulk doc|nil}.
-- Each direction is called as fn(ctx, policy, pair, spawn): whatever does I/O goes through
-- spawn(fn), which runs fn in a task of its own (bounded by the caller); a pair whose values
-- are already at hand is decided on the spot, and only its write, if any, becomes a task.
local log = require("metasync.log")
local values = require("metasync.values")
local fields = require("metasync.fields")

local M = {}

local function first_line(e) return (tostring(e):match("^[^\n]*")) end

local function show(v)
  local s = values.text(v)
  if s == nil then return "(none)" end
  return "'" .. s .. "'"
end

-- decide(...) -> false (nothing to write) | {new = value} | problem string
local function decide(ctx, policy, f, raw, old, kind, name)
  local new, err = policy.convert(raw, f, ctx)
  if new == nil then
    if err ~= "absent" then return string.format("field %s: %s", name, err) end
    return false
  end
  if values.equal(old, new, kind, ctx.date_format) then return false end
  return { new = new }
end

-- Values repeat across an inventory (three environments, a few hundred cost centres), so each
-- field's decisions are remembered per (source value, current value) for the run: convert(value,
-- field, ctx) sees nothing else, and the comparison is the library's own. Bounded per field.
local MEMO_MAX = 20000
local NOVALUE = {}
local SCALAR = { string = true, number = true, boolean = true }

-- compare(...) -> change | nil, problem | nil for one field of one certificate: the source value
-- converted by the policy, when it differs (by meaning) from the target's current value `old`.
-- An absent source value never wipes the target.
local function compare(ctx, policy, f, raw, old, kind, name)
  if values.absent(raw) then return nil end
  local r
  if SCALAR[type(raw)] and (old == nil or SCALAR[type(old)]) then
    local memo = ctx.memo
    if not memo then memo = setmetatable({}, { __mode = "k" }); ctx.memo = memo end
    local m = memo[f]
    if not m or m.n > MEMO_MAX then m = { n = 0 }; memo[f] = m end
    local byold = m[raw]
    if not byold then byold = {}; m[raw] = byold end
    local okey = old == nil and NOVALUE or old
    r = byold[okey]
    if r == nil then
      r = decide(ctx, policy, f, raw, old, kind, name)
      byold[okey] = r
      m.n = m.n + 1
    end
  else
    r = decide(ctx, policy, f, raw, old, kind, name)
  end
  if not r then return nil end
  if type(r) == "string" then return nil, r end
  return { field = name, old = old, new = r.new }
end

-- settle(ctx, p, target, id_label, label, changes, problems, write): the outcome of one pair.
-- A certificate with a field that could not be converted still gets its other fields, but
-- counts as failed, once.
local function settle(ctx, p, target, id_label, label, changes, problems, write, spawn)
  local r = ctx.report
  local problem = #problems > 0 and table.concat(problems, "; ") or nil
  if #changes == 0 then
    if problem then r:fail(p.serial, problem) else r.unchanged = r.unchanged + 1 end
    return
  end
  if problem then log.warn("sync", "certificate %s: %s", p.serial, problem) end
  r.planned = r.planned + 1
  if ctx.dry_run then
    local out = { string.format("%s %s (%s%s):", target, p.serial, id_label, label and (", " .. label) or "") }
    for _, c in ipairs(changes) do
      out[#out + 1] = string.format("    %s: %s -> %s", c.field, show(c.old), show(c.new))
    end
    out[#out + 1] = ""
    io.stdout:write(table.concat(out, "\n"))
    r:changed(p.serial, id_label, changes)
    return
  end
  local function go()
    local ok, err = write()
    if not ok then return r:fail(p.serial, first_line(err or "write failed")) end
    r.updated = r.updated + 1
    r:changed(p.serial, id_label, changes)
    if problem then r:fail(p.serial, problem) end
  end
  if spawn then spawn(go) else go() end
end

-- details(ctx, p) -> the Sectigo source document for a pair, or nil after recording why.
local function details(ctx, p)
  local d, err = ctx.sectigo:details(p.ssl_id)
  if not d then ctx.report:fail(p.serial, first_line(err or "details not fetched")) end
  return d
end

-- sctokf: Sectigo custom and manual fields -> Keyfactor metadata.
local function sctokf(ctx, policy, p, d, spawn)
  local changes, payload, problems = {}, {}, {}
  for _, f in ipairs(ctx.fields) do
    local change, problem = compare(ctx, policy, f, policy.source_value(f, d, p.kf, ctx),
      fields.metadata(p.kf, f.keyfactor), values.kind_of_kf(f.datatype), f.keyfactor)
    problems[#problems + 1] = problem
    if change then
      changes[#changes + 1] = change
      payload[f.keyfactor] = change.new
    end
  end
  local id = p.kf.Id
  settle(ctx, p, "Keyfactor", "Keyfactor id " .. tostring(id), p.kf.IssuedCN, changes, problems,
    function() return ctx.keyfactor:update_metadata(id, payload) end, spawn)
end

function M.sctokf(ctx, policy, p, spawn)
  if p.doc and not ctx.index.need_details then return sctokf(ctx, policy, p, p.doc, spawn) end
  spawn(function()
    local d = details(ctx, p)
    if d then sctokf(ctx, policy, p, d) end
  end)
end

-- prepare_kftosc(ctx): the custom fields kftosc may write, once per run. Sectigo refuses a
-- value for an inactive field (-135) and with it the whole update, so inactive fields are
-- never written, even when the policy selected them (enableDisabledFieldSync lets sctokf read
-- them; it cannot make Sectigo accept them). The merged list keeps only fields Sectigo
-- accepts: a certificate may still hold a value of a field deactivated since.
function M.prepare(ctx)
  if ctx.direction ~= "kftosc" then return end
  local custom = {}
  for _, f in ipairs(ctx.fields) do
    if f.kind == "custom" then
      if not f.sectigo_type then
        log.warn("sync", "Sectigo has no custom field '%s'; it is not synced", tostring(f.sectigo))
      elseif f.sectigo_active == false then
        log.info("sync", "Sectigo field '%s' is inactive and accepts no values; it is not written", f.sectigo)
      else
        custom[#custom + 1] = f
      end
    end
  end
  local writable = {}
  for name, def in pairs(fields.by_name(ctx.sectigo_fields)) do
    if fields.active(def) then writable[name] = true end
  end
  ctx.kftosc = { custom = custom, writable = writable }
end

-- kftosc: Keyfactor metadata -> Sectigo custom fields (custom fields only). The complete
-- merged custom field list is sent so no other field is dropped; comments are never sent.
local function kftosc(ctx, policy, p, d, spawn)
  local custom, writable = ctx.kftosc.custom, ctx.kftosc.writable
  local changes, problems, newvals = {}, {}, {}
  for _, f in ipairs(custom) do
    local change, problem = compare(ctx, policy, f, policy.source_value(f, d, p.kf, ctx),
      fields.custom_value(d, f.sectigo), values.kind_of_sectigo(f.sectigo_type), f.sectigo)
    problems[#problems + 1] = problem
    if change then
      changes[#changes + 1] = change
      newvals[f.sectigo:lower()] = { name = f.sectigo, value = change.new }
    end
  end
  local merged = {}
  if #changes > 0 then
    for _, cf in ipairs(type(d.customFields) == "table" and d.customFields or {}) do
      if type(cf) == "table" and type(cf.name) == "string" and writable[cf.name:lower()] then
        local nv = newvals[cf.name:lower()]
        merged[#merged + 1] = { name = cf.name, value = nv and nv.value or cf.value }
        if nv then newvals[cf.name:lower()] = nil end
      end
    end
    for _, c in ipairs(changes) do
      local nv = newvals[c.field:lower()]
      if nv then merged[#merged + 1] = nv end
    end
  end
  local id = math.tointeger(d.id) or p.ssl_id
  settle(ctx, p, "Sectigo", "Sectigo sslId " .. tostring(id), d.commonName or p.kf.IssuedCN, changes, problems,
    function() return ctx.sectigo:update(id, merged) end, spawn)
end

function M.kftosc(ctx, policy, p, spawn)
  -- Only certificates carrying a value for a mapped field need their Sectigo side.
  local any = false
  for _, f in ipairs(ctx.kftosc.custom) do
    if not values.absent(policy.source_value(f, nil, p.kf, ctx)) then any = true; break end
  end
  if not any then ctx.report.unchanged = ctx.report.unchanged + 1; return end
  if p.doc then return kftosc(ctx, policy, p, p.doc, spawn) end
  spawn(function()
    local d = details(ctx, p)
    if d then kftosc(ctx, policy, p, d) end
  end)
end

return M

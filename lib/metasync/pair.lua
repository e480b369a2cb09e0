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
local dryplan = require("metasync.dryplan")
local unchanged = require("metasync.unchanged")
local bulk = require("metasync.bulk")

local M = {}

local function first_line(e) return (tostring(e):match("^[^\n]*")) end

-- decide(...) -> false (no value) | {new = value} | {same = value} | problem string
local function decide(ctx, policy, f, raw, old, kind, name)
  local new, err = policy.convert(raw, f, ctx)
  if new == nil then
    if err ~= "absent" then return string.format("field %s: %s", name, err) end
    return false
  end
  if values.equal(old, new, kind, ctx.date_format) then return { same = new } end
  return { new = new }
end

-- Values repeat across an inventory (three environments, a few hundred cost centres), so each
-- field's decisions are remembered per (source value, current value) for the run: convert(value,
-- field, ctx) sees nothing else, and the comparison is the library's own. Bounded per field.
local MEMO_MAX = 20000
local NOVALUE = {}
-- A field's memo counts its entries under this key: no source value can be it (a string key
-- "n" was: the value "n", which values.bool reads as false, then indexed the count).
local COUNT, HITS = {}, {}
local SCALAR = { string = true, number = true, boolean = true }
-- A field whose values hardly repeat (an id, a serial, a date per certificate) gains nothing
-- from its memo and pays two tables per value: once PROBE answers are remembered with fewer
-- than a quarter of the lookups hitting, the field is decided directly for the rest of the run
-- (memo[f] = UNIQUE, which engine/unchanged.c reads as "nothing remembered").
local PROBE = 1024
local UNIQUE = false

-- The run's memo: field -> that field's remembered answers (weak, like the fields).
local function memo_of(ctx)
  local memo = ctx.memo
  if not memo then memo = setmetatable({}, { __mode = "k" }); ctx.memo = memo end
  return memo
end

-- compare(...) -> change | nil, problem | nil, nil, same for one field of one certificate: the
-- source value converted by the policy, when it differs (by meaning) from the target's current
-- value `old`; `same` is the converted value when both sides already agree. An absent source
-- value never wipes the target.
local function compare(ctx, policy, f, raw, old, kind, name)
  if values.absent(raw) then return nil end
  local r
  if SCALAR[type(raw)] and (old == nil or SCALAR[type(old)]) then
    local memo = memo_of(ctx)
    local m = memo[f]
    if m == UNIQUE then
      r = decide(ctx, policy, f, raw, old, kind, name)
    else
      if not m or m[COUNT] > MEMO_MAX then m = { [COUNT] = 0, [HITS] = 0 }; memo[f] = m end
      local byold = m[raw]
      if not byold then byold = {}; m[raw] = byold end
      local okey = old == nil and NOVALUE or old
      r = byold[okey]
      if r == nil then
        r = decide(ctx, policy, f, raw, old, kind, name)
        byold[okey] = r
        local n = m[COUNT] + 1
        m[COUNT] = n
        if n == PROBE and m[HITS] < PROBE // 4 then memo[f] = UNIQUE end
      else
        m[HITS] = m[HITS] + 1
      end
    end
  else
    r = decide(ctx, policy, f, raw, old, kind, name)
  end
  if not r then return nil end
  if type(r) == "string" then return nil, r end
  if r.same ~= nil then return nil, nil, r.same end
  return { field = name, key = f.keyfactor, old = old, new = r.new }
end
M.compare = compare

-- The sync state (metasync.state) learns from every run: a field both sides hold the same
-- value of, or that a run wrote, becomes the baseline, so a site can move from one-way runs to
-- `sync` without a storm of false conflicts. base is the certificate's baseline as read.
local function remember(ctx, p, base, key, value)
  if base[key] ~= value then ctx.state:agree(p.serial, key, value) end
end
M.remember = remember

-- journal(ctx, p, direction, c, result): one field's write, in the target's canonical terms
-- (c.old_canon, c.new), so `revert` can send the old value back as it is.
local function journal(ctx, p, direction, c, result)
  ctx.state:journal { direction = direction, serial = p.serial, sectigo_id = p.ssl_id,
    keyfactor_id = rawget(p.kf, "Id"), field = c.key, old = c.old_canon, new = values.text(c.new),
    result = result }
end
M.journal = journal

-- settle_unchanged(ctx, p, agreed[, base]): the outcome of a pair with nothing to write and no
-- problem, the usual case of a no-op run: the baseline learns what both sides hold, and none
-- of a write's labels and closures are made. base: the certificate's baseline, when the
-- caller has taken it from the store already (it is taken once).
local function settle_unchanged(ctx, p, agreed, base)
  if not ctx.dry_run then
    base = base or ctx.state:baseline(p.serial)
    for key, v in pairs(agreed) do remember(ctx, p, base, key, v) end
    -- (its digest, if the run keeps them, so that the next run settles it natively)
    ctx.state:in_step(p.serial)
  end
  ctx.report:unchanged_pair(p)
end
M.settle_unchanged = settle_unchanged

-- settle(ctx, p, o, spawn[, base]): the outcome of one pair. o = {target=, direction=,
-- id_label=, label=, changes=, problems=, agreed = {key = canonical value}, write = fn}. A
-- certificate with a field that could not be converted still gets its other fields, but
-- counts as failed, once. base: as for settle_unchanged.
local function settle(ctx, p, o, spawn, base)
  local r = ctx.report
  local changes = o.changes
  local problem = #o.problems > 0 and table.concat(o.problems, "; ") or nil
  base = ctx.dry_run and {} or base or ctx.state:baseline(p.serial)
  if not ctx.dry_run then
    for key, v in pairs(o.agreed) do remember(ctx, p, base, key, v) end
  end
  if #changes == 0 then
    if problem then r:fail(p.serial, problem) else r:unchanged_pair(p) end
    return
  end
  if problem then log.warn("sync", "certificate %s: %s", p.serial, problem) end
  if ctx.limit and not ctx.limit:take(changes) then
    if not ctx.dry_run then r:held(p, changes); return end -- past the change limit: decided, counted, not written
  end
  r.planned = r.planned + 1
  if ctx.dry_run then
    dryplan.plan(ctx, o, p, changes)
    r:changed(p.serial, o.id_label, changes)
    return
  end
  local function go()
    local ok, err = o.write()
    if not ok then
      local reason = first_line(err or "write failed")
      for _, c in ipairs(changes) do journal(ctx, p, o.direction, c, "failed: " .. reason) end
      return r:fail(p.serial, reason)
    end
    for _, c in ipairs(changes) do
      journal(ctx, p, o.direction, c, "ok")
      remember(ctx, p, base, c.key, c.agree)
    end
    r.updated = r.updated + 1
    r:changed(p.serial, o.id_label, changes)
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
M.details = details

-- pending(ctx, policy, kf, d, base[, entry]) -> nil when every field of the pair is settled
-- already, else the indices into ctx.fields left to decide (all of them: false). Fields whose
-- answer the run has remembered for the same two values, or that the stock conversion plainly
-- leaves as they are, and whose baseline already holds it, are settled natively
-- (metasync.unchanged), when the policy reads its values the library's way. entry: d is a
-- bulk index entry (metasync.bulk), read by slot, rather than a details-shaped doc.
local function current_plan(ctx, policy, entry)
  local which = entry and "entry_plan" or "lookup_plan"
  local plan = ctx[which]
  if not plan or plan.fields ~= ctx.fields or plan.source_value ~= policy.source_value
    or plan.convert ~= policy.convert then
    plan = policy.source_value == fields.source_value
      and fields.lookup_plan(ctx.fields, NOVALUE, policy.convert == fields.keyfactor_convert)
    if plan and entry then
      -- direct[i]: the slot whose value, when it is not false, is what source_value reads for
      -- field i from the entry's doc (bulk.direct), so sctokf takes it without making the doc
      plan.direct = {}
      for i, f in ipairs(ctx.fields) do
        local slot = bulk.slot_of(ctx.index.slots, f)
        plan[i][10] = slot
        plan.direct[i] = slot and bulk.direct(ctx.index.slots, f, slot) and slot or false
      end
    end
    plan = plan or { off = true }
    plan.fields, plan.source_value, plan.convert = ctx.fields, policy.source_value, policy.convert
    ctx[which] = plan
  end
  return plan
end

local function pending(ctx, policy, kf, d, base, entry)
  local plan = current_plan(ctx, policy, entry)
  if plan.off then return false end
  return unchanged.pending(plan, d, kf, memo_of(ctx), base, entry)
end
-- (for metasync.quick, which settles pairs before they are made)
M.current_plan, M.pending, M.memo_of = current_plan, pending, memo_of

-- sctokf: Sectigo custom and manual fields -> Keyfactor metadata. src: the details-shaped
-- doc, or with from_entry the pair's bulk entry, whose doc (p.doc) is then made only when a
-- field is left to the Lua.
local function sctokf(ctx, policy, p, src, spawn, from_entry)
  local base = p.base or (not ctx.dry_run and ctx.state:baseline(p.serial)) or false
  local left = p.left
  if left == nil then left = pending(ctx, policy, p.kf, src, base, from_entry) end
  if left == nil then return ctx.report:unchanged_pair(p) end
  -- From an entry, a value its slot holds is taken as it is; the doc is made only for a field
  -- the slot cannot answer (pending made ctx.entry_plan current just now).
  local plan = from_entry and ctx.entry_plan
  local direct = plan and not plan.off and plan.direct
  local d = not from_entry and src or nil
  local changes, payload, problems, agreed = {}, {}, {}, {}
  local list = ctx.fields
  local kinds = ctx.kf_kinds
  if not kinds or kinds.fields ~= list then
    kinds = { fields = list }
    for i, f in ipairs(list) do kinds[i] = values.kind_of_kf(f.datatype) end
    ctx.kf_kinds = kinds
  end
  for j = 1, left and #left or #list do
    local i = left and left[j] or j
    local f = list[i]
    local kind = kinds[i]
    local slot, raw = direct and direct[i], nil
    if slot then raw = src[slot + 1] end
    if raw == nil or raw == false then
      d = d or p.doc
      raw = policy.source_value(f, d, p.kf, ctx)
    end
    local change, problem, same = compare(ctx, policy, f, raw, fields.metadata(p.kf, f.keyfactor), kind, f.keyfactor)
    problems[#problems + 1] = problem
    if change then
      change.kind = kind
      if change.old ~= nil then change.old_canon = values.canonical(change.old, kind, ctx.date_format) end
      change.agree = values.text(change.new)
      changes[#changes + 1] = change
      payload[f.keyfactor] = change.new
    elseif same ~= nil then
      agreed[f.keyfactor] = values.text(same)
    end
  end
  -- (base is false only in a dry run, where neither settle function reads it)
  if #changes == 0 and #problems == 0 then return settle_unchanged(ctx, p, agreed, base) end
  local id = p.kf.Id
  settle(ctx, p, { target = "Keyfactor", direction = "sctokf", id_label = "Keyfactor id " .. tostring(id),
    keyfactor_id = id, sectigo_id = p.ssl_id,
    label = p.kf.IssuedCN, changes = changes, problems = problems, agreed = agreed,
    write = function() return ctx.keyfactor:update_metadata(id, payload) end }, spawn, base)
end

function M.sctokf(ctx, policy, p, spawn)
  local e = rawget(p, "entry")
  if e and not ctx.index.need_details then return sctokf(ctx, policy, p, e, spawn, true) end
  if p.doc and not ctx.index.need_details then return sctokf(ctx, policy, p, p.doc, spawn) end
  spawn(function()
    local d = details(ctx, p)
    if d then sctokf(ctx, policy, p, d) end
  end)
end

-- prepare(ctx): for the directions that write Sectigo, the custom fields they may write, once
-- per run. Sectigo refuses a value for an inactive field (-135) and with it the whole update,
-- so inactive fields are never written, even when the policy selected them
-- (enableDisabledFieldSync lets sctokf read them; it cannot make Sectigo accept them). The
-- merged list keeps only fields Sectigo accepts: a certificate may still hold a value of a
-- field deactivated since. A dry run also starts its plan here (metasync.dryplan).
function M.prepare(ctx)
  if ctx.dry_run then dryplan.begin(ctx) end
  if ctx.direction == "sctokf" then return end
  local custom = {}
  for _, f in ipairs(ctx.fields) do
    if f.kind == "custom" and (f.sync or "both") ~= "sctokf" then
      if not f.sectigo_type then
        log.warn("sync", "Sectigo has no custom field '%s'; it is not written to Sectigo", tostring(f.sectigo))
      elseif f.sectigo_active == false then
        log.info("sync", "Sectigo field '%s' is inactive and accepts no values; it is not written", f.sectigo)
      else
        f.sectigo_writable = true
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

-- merged(ctx, d, newvals) -> the complete custom field list to send for details d, with
-- newvals (lower-case name -> {name, value}) merged in; value "" clears a field. Only fields
-- Sectigo accepts are sent.
local function merged(ctx, d, newvals)
  local writable, out, pending = ctx.kftosc.writable, {}, {}
  for k, v in pairs(newvals) do pending[k] = v end
  for _, cf in ipairs(type(d.customFields) == "table" and d.customFields or {}) do
    if type(cf) == "table" and type(cf.name) == "string" and writable[cf.name:lower()] then
      local nv = pending[cf.name:lower()]
      out[#out + 1] = { name = cf.name, value = nv and nv.value or cf.value }
      pending[cf.name:lower()] = nil
    end
  end
  local rest = {}
  for _, nv in pairs(pending) do rest[#rest + 1] = nv end
  table.sort(rest, function(a, b) return a.name < b.name end)
  for _, nv in ipairs(rest) do out[#out + 1] = nv end
  return out
end
M.merged = merged

-- kftosc: Keyfactor metadata -> Sectigo custom fields (custom fields only). The complete
-- merged custom field list is sent so no other field is dropped; comments are never sent.
local function kftosc(ctx, policy, p, d, spawn)
  local changes, problems, newvals, agreed = {}, {}, {}, {}
  for _, f in ipairs(ctx.kftosc.custom) do
    local raw = policy.source_value(f, d, p.kf, ctx)
    local skind = values.kind_of_sectigo(f.sectigo_type)
    local change, problem, same = compare(ctx, policy, f, raw, fields.custom_value(d, f.sectigo), skind, f.sectigo)
    problems[#problems + 1] = problem
    if change or same ~= nil then
      local canon = values.canonical(raw, values.kind_of_kf(f.datatype), ctx.date_format)
      if change then
        change.kind = skind
        change.old_canon = values.canonical(change.old, skind, ctx.sectigo_date_format)
        change.agree = canon
        changes[#changes + 1] = change
        newvals[f.sectigo:lower()] = { name = f.sectigo, value = change.new }
      else
        agreed[f.keyfactor] = canon
      end
    end
  end
  if #changes == 0 and #problems == 0 then return settle_unchanged(ctx, p, agreed) end
  local id = math.tointeger(d.id) or p.ssl_id
  settle(ctx, p, { target = "Sectigo", direction = "kftosc", id_label = "Sectigo sslId " .. tostring(id),
    keyfactor_id = rawget(p.kf, "Id"), sectigo_id = id,
    label = d.commonName or p.kf.IssuedCN, changes = changes, problems = problems, agreed = agreed,
    write = function() return ctx.sectigo:update(id, merged(ctx, d, newvals)) end }, spawn)
end

function M.kftosc(ctx, policy, p, spawn)
  -- Only certificates carrying a value for a mapped field need their Sectigo side.
  local any = false
  for _, f in ipairs(ctx.kftosc.custom) do
    if not values.absent(policy.source_value(f, nil, p.kf, ctx)) then any = true; break end
  end
  if not any then ctx.report:unchanged_pair(p); return end
  if p.doc then return kftosc(ctx, policy, p, p.doc, spawn) end
  spawn(function()
    local d = details(ctx, p)
    if d then kftosc(ctx, policy, p, d) end
  end)
end

return M

-- The two directions' planning and applying, given matched certificate pairs. Each builds a
-- plan of changed values only (compared semantically, see metasync.values), then prints it
-- (--dry-run) or applies it with bounded concurrency.
local log = require("metasync.log")
local task = require("metasync.task")
local values = require("metasync.values")
local fields = require("metasync.fields")
local plan = require("metasync.plan")

local M = {}

local function first_line(e) return tostring(e):match("^[^\n]*") end

-- details(ctx, pairs_) -> fetches Sectigo details for every pair (bounded concurrency);
-- pairs whose details failed are reported and dropped. Per-certificate GETs rather than the
-- bulk report: the report endpoint's filters cannot select an arbitrary set of certificates,
-- and details carry every field a manual mapping may point at.
local function details(ctx, pairs_)
  local i = 0
  local results, errors = task.map(function() i = i + 1; return pairs_[i] and i or nil end,
    ctx.concurrency.sectigo, function(k)
      local d, err = ctx.sectigo:details(pairs_[k].sc.sslId or pairs_[k].sc.id)
      if not d then error(err, 0) end
      return d
    end)
  local out = {}
  for k, p in ipairs(pairs_) do
    if results and results[k] then
      p.details = results[k]
      out[#out + 1] = p
    else
      ctx.report:fail(p.serial, first_line(errors and errors[k] or "details not fetched"))
    end
  end
  return out
end

local function finish(ctx, pl, target, apply_one, concurrency)
  local r = ctx.report
  r.planned = pl:size()
  r.unchanged = r.matched - #r.failed - pl:size()
  local failed_before = {}
  for _, f in ipairs(r.failed) do failed_before[f.serial] = true end
  if ctx.dry_run then
    for _, l in ipairs(pl:lines(target)) do io.stdout:write(l, "\n") end
    return
  end
  local updated, failures = pl:apply(concurrency, apply_one)
  for _, f in ipairs(failures) do r:fail(f.entry.serial, f.error); failed_before[f.entry.serial] = true end
  -- A certificate with a field that could not be converted still gets its other fields, but
  -- counts as failed, once.
  for _, e in ipairs(pl.entries) do
    if e.partial_failure and not failed_before[e.serial] then r:fail(e.serial, e.partial_failure) end
  end
  r.updated = updated
  log.info("sync", "%d certificates updated, %d failed", updated, #failures)
end

-- compare(...) -> change | nil, problem | nil for one field of one certificate: the source value
-- converted by the policy, when it differs (by meaning) from the target's current value `old`.
-- An absent source value never wipes the target.
local function compare(ctx, policy, f, raw, old, kind, name)
  if values.absent(raw) then return nil end
  local new, err = policy.convert(raw, f, ctx)
  if new == nil then
    if err ~= "absent" then return nil, string.format("field %s: %s", name, err) end
    return nil
  end
  if values.equal(old, new, kind, ctx.date_format) then return nil end
  return { field = name, old = old, new = new }
end

-- add_entry(ctx, pl, entry, problems): values that could not be converted are logged and kept on
-- the entry; a certificate with nothing else to write counts as failed with that reason.
local function add_entry(ctx, pl, entry, problems)
  if #problems > 0 then
    entry.partial_failure = table.concat(problems, "; ")
    log.warn("sync", "certificate %s: %s", entry.serial, entry.partial_failure)
    if #entry.changes == 0 then ctx.report:fail(entry.serial, entry.partial_failure) end
  end
  pl:add(entry)
end

-- sctokf: Sectigo custom and manual fields -> Keyfactor metadata.
function M.sctokf(ctx, policy, pairs_)
  local ok_pairs = details(ctx, pairs_)
  local pl = plan.new("sctokf")
  for _, p in ipairs(ok_pairs) do
    local changes, payload, problems = {}, {}, {}
    for _, f in ipairs(ctx.fields) do
      local change, problem = compare(ctx, policy, f, policy.source_value(f, p.details, p.kf, ctx),
        fields.metadata(p.kf, f.keyfactor), values.kind_of_kf(f.datatype), f.keyfactor)
      problems[#problems + 1] = problem
      if change then
        changes[#changes + 1] = change
        payload[f.keyfactor] = change.new
      end
    end
    add_entry(ctx, pl, { serial = p.serial, id = p.kf.Id, id_label = "Keyfactor id " .. tostring(p.kf.Id),
      label = p.kf.IssuedCN, changes = changes, payload = payload }, problems)
  end
  finish(ctx, pl, "Keyfactor", function(e)
    return ctx.keyfactor:update_metadata(e.id, e.payload)
  end, ctx.concurrency.keyfactor)
end

-- kftosc: Keyfactor metadata -> Sectigo custom fields (custom fields only). The complete
-- merged custom field list is sent so no other field is dropped; comments are never sent.
-- Sectigo refuses a value for an inactive field (-135) and with it the whole update, so
-- inactive fields are never written, even when the policy selected them
-- (enableDisabledFieldSync lets sctokf read them; it cannot make Sectigo accept them).
function M.kftosc(ctx, policy, pairs_)
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
  -- The merged list keeps only fields Sectigo accepts: a certificate may still hold a value
  -- of a field deactivated since, and sending it back would fail the update.
  local writable = {}
  for name, def in pairs(fields.by_name(ctx.sectigo_fields)) do
    if fields.active(def) then writable[name] = true end
  end
  -- Only certificates carrying a value for a mapped field need their Sectigo details.
  local wanted = {}
  for _, p in ipairs(pairs_) do
    local any = false
    for _, f in ipairs(custom) do
      if not values.absent(policy.source_value(f, nil, p.kf, ctx)) then any = true; break end
    end
    if any then wanted[#wanted + 1] = p end
  end
  local ok_pairs = details(ctx, wanted)
  local pl = plan.new("kftosc")
  for _, p in ipairs(ok_pairs) do
    local changes, problems, newvals = {}, {}, {}
    for _, f in ipairs(custom) do
      local change, problem = compare(ctx, policy, f, policy.source_value(f, p.details, p.kf, ctx),
        fields.custom_value(p.details, f.sectigo), values.kind_of_sectigo(f.sectigo_type), f.sectigo)
      problems[#problems + 1] = problem
      if change then
        changes[#changes + 1] = change
        newvals[f.sectigo:lower()] = { name = f.sectigo, value = change.new }
      end
    end
    local merged = {}
    if #changes > 0 then
      for _, cf in ipairs(type(p.details.customFields) == "table" and p.details.customFields or {}) do
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
    local id = p.details.id or p.sc.sslId
    add_entry(ctx, pl, { serial = p.serial, id = id, id_label = "Sectigo sslId " .. tostring(id),
      label = p.details.commonName or p.sc.commonName, changes = changes, payload = merged }, problems)
  end
  -- Certificates skipped for lack of values are unchanged, not failures.
  finish(ctx, pl, "Sectigo", function(e)
    return ctx.sectigo:update(e.id, e.payload)
  end, ctx.concurrency.sectigo)
end

return M

-- Stage 7 of `metasync sync`: one matched pair decided both ways against the baseline (the
-- value both sides last agreed on, metasync.state). Per field:
--   Sectigo = Keyfactor                      -> baseline := value, no write
--   Sectigo changed, Keyfactor = baseline    -> Sectigo's value (or its clearing) to Keyfactor
--   Keyfactor changed, Sectigo = baseline    -> Keyfactor's value (or its clearing) to Sectigo
--   both changed, and differ                 -> conflict (policy.resolve decides, or it is left)
--   no baseline, a value on one side only    -> copied to the other side
--   no baseline, both present and different  -> conflict
-- Values are compared in Keyfactor's canonical terms: Sectigo's through policy.to_keyfactor
-- (so a site's value mapping holds both ways), Keyfactor's through values.canonical.
-- Fields with a fixed direction (syncDirection, manual fields, inactive Sectigo fields) go
-- one way as in sctokf/kftosc: an absent source never clears the target.
local log = require("metasync.log")
local values = require("metasync.values")
local pair = require("metasync.pair")
local dryplan = require("metasync.dryplan")

local M = {}

local function first_line(e) return (tostring(e):match("^[^\n]*")) end

-- Conversions repeat per distinct value (a few hundred cost centres): memoised per field and
-- direction, bounded.
local MEMO_MAX = 20000
local function converter(ctx, policy, f, dir)
  local memo = ctx.sync_memo
  if not memo then memo = {}; ctx.sync_memo = memo end
  local key = f
  local m = memo[key]
  if not m then m = { sctokf = { n = 0 }, kftosc = { n = 0 } }; memo[key] = m end
  m = m[dir]
  local fn = dir == "sctokf" and policy.to_keyfactor or policy.to_sectigo
  return function(raw)
    local cacheable = type(raw) == "string" or type(raw) == "number"
    local hit = cacheable and m[raw]
    if hit then return hit[1], hit[2] end
    local v, err = fn(raw, f, ctx)
    if cacheable then
      if m.n > MEMO_MAX then for k in pairs(m) do m[k] = nil end; m.n = 0 end
      m[raw] = { v, err }
      m.n = m.n + 1
    end
    return v, err
  end
end

local function same(a, b, kind, fmt)
  if a == nil or b == nil then return a == b end
  return a == b or values.equal(a, b, kind, fmt)
end

-- One field of one pair. Returns an action: nil (nothing to do), or
-- {to = "keyfactor"|"sectigo", value = canonical or nil (a clear), send = what is written},
-- or {conflict = true, ...}, or a problem string. `agree` is set when both sides hold the
-- same value.
local function decide(ctx, policy, f, d, p, base, read)
  local kind = values.kind_of_kf(f.datatype)
  local sraw = policy.sectigo_value(f, d, p.kf, ctx)
  local kraw = policy.keyfactor_value(f, d, p.kf, ctx)
  local s, k, err
  if not values.absent(sraw) then
    s, err = converter(ctx, policy, f, "sctokf")(sraw)
    if s == nil then return string.format("field %s: %s", f.keyfactor, tostring(err)) end
    s = values.text(s)
  end
  k = values.canonical(kraw, kind, ctx.date_format)
  local b = base[f.keyfactor]
  local mode = f.sync or "both"
  if mode == "both" and not f.sectigo_writable then mode = "sctokf" end
  local fmt = ctx.date_format
  if same(s, k, kind, fmt) then
    if s ~= nil then return { agree = s } end
    return b ~= nil and { agree_none = true } or nil
  end
  local function to_kf(v) return { to = "keyfactor", value = v, send = v or "", old = kraw } end
  local function to_sc()
    if k == nil then return { to = "sectigo", value = nil, send = "", old = sraw } end
    local sv, cerr = converter(ctx, policy, f, "kftosc")(kraw)
    if sv == nil then return string.format("field %s: %s", f.sectigo, tostring(cerr)) end
    return { to = "sectigo", value = k, send = values.text(sv), old = sraw }
  end
  if mode == "sctokf" then return s ~= nil and to_kf(s) or nil end
  if mode == "kftosc" then return k ~= nil and to_sc() or nil end
  -- A clear is only believed when both values were really read and the field is live on both
  -- sides: an inactive Sectigo field or a missing metadata object looks empty, and is not.
  local can_clear = read.sectigo and read.keyfactor
  local action
  if b ~= nil then
    local sb, kb = same(s, b, kind, fmt), same(k, b, kind, fmt)
    if not sb and kb then
      if s ~= nil or can_clear then action = to_kf(s) end
    elseif sb and not kb then
      if k ~= nil or can_clear then action = to_sc() end
    else
      action = { conflict = true }
    end
  elseif k == nil then action = to_kf(s)
  elseif s == nil then action = to_sc()
  else action = { conflict = true } end
  if action and action.conflict then
    local c = { serial = p.serial, field = f.keyfactor, sectigo_field = f.sectigo, sectigo = s, keyfactor = k,
      baseline = b, keyfactor_id = rawget(p.kf, "Id"), sectigo_id = p.ssl_id }
    local choice = policy.resolve and policy.resolve(c, ctx)
    if choice == "sectigo" and (s ~= nil or can_clear) then return to_kf(s) end
    if choice == "keyfactor" and (k ~= nil or can_clear) then return to_sc() end
    c.conflict = true
    return c
  end
  return action
end

-- sync(ctx, policy, p, d, spawn): decides every field of the pair on the spot, then writes
-- each side once, in a task of its own when spawn is given.
local function sync(ctx, policy, p, d, spawn)
  local r, st = ctx.report, ctx.state
  local base = st:baseline(p.serial)
  local read = { sectigo = type(d.customFields) == "table",
    keyfactor = type(rawget(p.kf, "Metadata")) == "table" }
  local kf_changes, sc_changes, problems, conflicts = {}, {}, {}, {}
  local payload, newvals = {}, {}
  for _, f in ipairs(ctx.fields) do
    local ok, a = pcall(decide, ctx, policy, f, d, p, base, read)
    if not ok then a = string.format("field %s: %s", f.keyfactor, first_line(a)) end
    if type(a) == "string" then
      problems[#problems + 1] = a
    elseif a == nil then -- nothing to do
    elseif a.agree_none then
      if not ctx.dry_run then st:agree(p.serial, f.keyfactor, nil) end
    elseif a.agree ~= nil then
      if not ctx.dry_run then pair.remember(ctx, p, base, f.keyfactor, a.agree) end
    elseif a.conflict then
      conflicts[#conflicts + 1] = a
    elseif a.to == "keyfactor" then
      local kind = values.kind_of_kf(f.datatype)
      kf_changes[#kf_changes + 1] = { field = f.keyfactor, key = f.keyfactor, old = a.old, new = a.send, kind = kind,
        old_canon = values.canonical(a.old, kind, ctx.date_format), agree = a.value }
      payload[f.keyfactor] = a.send
    else
      local kind = values.kind_of_sectigo(f.sectigo_type)
      sc_changes[#sc_changes + 1] = { field = f.sectigo, key = f.keyfactor, old = a.old, new = a.send, kind = kind,
        old_canon = values.canonical(a.old, kind, ctx.sectigo_date_format), agree = a.value }
      newvals[f.sectigo:lower()] = { name = f.sectigo, value = a.send }
    end
  end
  for _, c in ipairs(conflicts) do
    r:conflict(c)
    if not ctx.dry_run then
      st:journal { direction = "sync", serial = p.serial, sectigo_id = p.ssl_id, keyfactor_id = c.keyfactor_id,
        field = c.field, old = c.baseline, result = "conflict",
        detail = string.format("Sectigo %s, Keyfactor %s", c.sectigo and ("'" .. c.sectigo .. "'") or "(none)",
          c.keyfactor and ("'" .. c.keyfactor .. "'") or "(none)") }
    end
  end
  local problem = #problems > 0 and table.concat(problems, "; ") or nil
  if #kf_changes == 0 and #sc_changes == 0 then
    if problem then r:fail(p.serial, problem) elseif #conflicts == 0 then r:unchanged_pair(p) end
    return
  end
  if problem then log.warn("sync", "certificate %s: %s", p.serial, problem) end
  if ctx.limit then
    local all = {}
    for _, c in ipairs(kf_changes) do all[#all + 1] = c end
    for _, c in ipairs(sc_changes) do all[#all + 1] = c end
    -- past the change limit: decided, counted, not written
    if not ctx.limit:take(all) and not ctx.dry_run then r:held(p, all); return end
  end
  r.planned = r.planned + 1
  local kid, sid = rawget(p.kf, "Id"), math.tointeger(d.id) or p.ssl_id
  local sides = {
    { changes = kf_changes, target = "Keyfactor", direction = "sctokf", label = "Keyfactor id " .. tostring(kid),
      write = function() return ctx.keyfactor:update_metadata(kid, payload) end },
    { changes = sc_changes, target = "Sectigo", direction = "kftosc", label = "Sectigo sslId " .. tostring(sid),
      write = function() return ctx.sectigo:update(sid, pair.merged(ctx, d, newvals)) end },
  }
  if ctx.dry_run then
    -- Printed (and saved with --plan-out) per side, as apply writes each side on its own.
    for _, side in ipairs(sides) do
      if #side.changes > 0 then
        dryplan.plan(ctx, { target = side.target, direction = side.direction, id_label = side.label,
          label = rawget(p.kf, "IssuedCN"), keyfactor_id = kid, sectigo_id = sid }, p, side.changes)
        r:changed(p.serial, side.label, side.changes)
      end
    end
    return
  end
  local function commit()
    local failed
    for _, side in ipairs(sides) do
      if #side.changes > 0 then
        local ok, err = side.write()
        local result = ok and "ok" or ("failed: " .. first_line(err or "write failed"))
        for _, c in ipairs(side.changes) do
          pair.journal(ctx, p, side.direction, c, result)
          if ok then pair.remember(ctx, p, base, c.key, c.agree) end
        end
        if ok then r:changed(p.serial, side.label, side.changes)
        else failed = (failed and failed .. "; " or "") .. first_line(err or "write failed") end
      end
    end
    if failed then return r:fail(p.serial, failed) end
    r.updated = r.updated + 1
    if problem then r:fail(p.serial, problem) end
  end
  if spawn then spawn(commit) else commit() end
end

-- The work for one matched pair (kfstream's contract): decided inline when its values are at
-- hand (bulk), else in a task of its own after one details GET.
function M.sync(ctx, policy, p, spawn)
  if p.doc and not ctx.index.need_details then return sync(ctx, policy, p, p.doc, spawn) end
  spawn(function()
    local d = pair.details(ctx, p)
    if d then sync(ctx, policy, p, d) end
  end)
end

return M

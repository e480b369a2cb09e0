-- Stages 3 and 5 of a run: the unified field list and the Keyfactor field definitions.
-- prepare() builds the list through the policy, settles Keyfactor names (banned characters)
-- and diffs the definitions, all before any write; apply() then writes the definitions that
-- differ, as the run's first write.
local log = require("metasync.log")
local names = require("metasync.names")
local fields = require("metasync.fields")

local M = {}

local fatal = require("metasync.setup").fatal

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

-- prepare(ctx, policy) -> definition diff (sctokf, sync) or nil. Sets ctx.fields.
function M.prepare(ctx, policy)
  local list = policy.fields(ctx)
  fields.attach_sectigo(list, ctx.sectigo_fields)
  settle_names(ctx, list, policy)
  ctx.fields = list
  log.info("fields", "%d fields in the mapping", #list)
  -- The directions that write Keyfactor create and update its field definitions.
  return policy.direction ~= "kftosc" and fields.diff(list, ctx.kf_fields) or nil
end

-- apply(ctx, d): creates or updates the Keyfactor field definitions that differ. This is the
-- run's first write, so a definition Keyfactor refuses no longer stops the run with exit 1
-- ("fatal before any write" would be untrue once another definition went in): the field's
-- values are skipped, the failure goes in the summary, and the run ends with exit 2.
function M.apply(ctx, d)
  if not d then return end
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

return M

-- `metasync apply PLAN`: writes exactly the changes a dry run saved with --plan-out (see
-- metasync.planfile for the file). The host runs this file with the arguments ("apply", PLAN)
-- and options.dry_run.
--
-- The plan is what an operator reviewed, so nothing is decided again: no policy runs, and a
-- change is written only where the target still holds the value the plan saw. A target edited
-- since is listed as stale and left alone (exit 2), because the reviewed "old -> new" no longer
-- describes what the write would do. A target that already holds the new value needs nothing.
-- The plan is refused (exit 1) under a configuration other than the one it was made under.
-- apply is a journaled run of its own, so `report` shows it and `revert` undoes it.
local setup = require("metasync.setup")
local planfile = require("metasync.planfile")
local values = require("metasync.values")
local fields = require("metasync.fields")
local pair = require("metasync.pair")
local dryplan = require("metasync.dryplan")
local log = require("metasync.log")
local task = require("metasync.task")
local signals = require("metasync.signals")
local json = require("metasync.json")

local command, path = ...
local opts = require("metasync.options")

local function nn(v) if v == json.null then return nil end return v end
local function first_line(e) return (tostring(e):match("^[^\n]*")) end

-- where(e): the target as the dry run named it, "Keyfactor <serial> (Keyfactor id N, CN)".
local function where(e)
  local kf = e.target == "keyfactor"
  local label = nn(e.label)
  return string.format("%s %s (%s %d%s)", kf and "Keyfactor" or "Sectigo", e.serial, kf and "Keyfactor id" or "Sectigo sslId",
    kf and e.keyfactor_id or e.sectigo_id, (label and label ~= "") and (", " .. planfile.escape(label)) or "")
end

local function say(fmt, ...) io.stdout:write(log.redact(string.format(fmt, ...)), "\n") end

---------------------------------------------------------------------------------------------
-- Field definitions: a plan made before its Keyfactor fields existed writes them first, as
-- the run would have. Properties compared as fields.diff does, text against text.
---------------------------------------------------------------------------------------------
local PROPS = { "DataType", "Description", "Hint", "Validation", "Enrollment", "Message", "Options", "DefaultValue",
  "DisplayOrder", "CaseSensitive" }
local function norm(v)
  if v == nil or v == json.null then return "" end
  if type(v) == "boolean" then return v and "true" or "false" end
  return (tostring(v):gsub("%s*,%s*", ","))
end
-- same_def(have, want, wanted): have is Keyfactor's definition. Against the one the plan saw
-- (both Keyfactor's own), every property counts; against what the plan wants, only what
-- fields.diff compares: DisplayOrder 0 lets Keyfactor choose, Options matter for
-- MultipleChoice, CaseSensitive where Keyfactor reports it.
local function same_def(have, want, wanted)
  for _, k in ipairs(PROPS) do
    local skip = wanted and ((k == "DisplayOrder" and (tonumber(want[k]) or 0) == 0)
      or (k == "Options" and tonumber(want.DataType) ~= 5)
      or (k == "CaseSensitive" and (have[k] == nil or have[k] == json.null)))
    if not skip and norm(have[k]) ~= norm(want[k]) then return false end
  end
  return true
end

local function definitions(ctx, defs, out)
  local have = {}
  for _, d in ipairs(ctx.kf_fields) do
    if type(d) == "table" and type(d.Name) == "string" then have[d.Name:lower()] = d end
  end
  for _, e in ipairs(defs) do
    local def, cur = e.def, have[e.def.Name:lower()]
    local verb, ok, err
    if e.definition == "create" then
      if cur then goto next end -- already there (a plan applied twice)
      verb = "create"
    elseif cur and same_def(cur, e.old) then
      def.Id = cur.Id
      verb = "update"
    elseif cur and same_def(cur, def, true) then
      goto next
    else
      out.stale = out.stale + 1
      say("stale (skipped): Keyfactor field %s: its definition changed since the plan", def.Name)
      goto next
    end
    if ctx.dry_run then
      say("would %s Keyfactor field %s", verb, def.Name)
      ok = true
    elseif verb == "create" then
      ok, err = ctx.keyfactor:create_field(def)
    else
      ok, err = ctx.keyfactor:update_field(def)
    end
    if ok then
      out[verb == "create" and "created" or "updated"] = out[verb == "create" and "created" or "updated"] + 1
      log.info("apply", "%s Keyfactor metadata field '%s'", verb == "create" and "created" or "updated", def.Name)
    else
      -- Its values would be refused with every other field of their certificates.
      ctx.broken[def.Name:lower()] = true
      out.failed = out.failed + 1
      log.error("apply", "cannot %s Keyfactor field %s: %s", verb, def.Name, first_line(err))
    end
    ::next::
  end
end

---------------------------------------------------------------------------------------------
-- One target certificate: read it now, keep the changes whose old value still holds, write
-- them in one request, journal each.
---------------------------------------------------------------------------------------------
local function apply_one(ctx, e, out)
  local st = ctx.state
  local kf = e.target == "keyfactor"
  local cur, err
  if kf then cur, err = ctx.keyfactor:certificate(e.keyfactor_id) else cur, err = ctx.sectigo:details(e.sectigo_id) end
  if not cur then
    out.failed = out.failed + #e.changes
    log.error("apply", "%s: cannot read it: %s", where(e), first_line(err))
    return
  end
  local fmt = kf and ctx.date_format or ctx.sectigo_date_format
  local detail = ctx.detail
  local todo, payload, newvals = {}, {}, {}
  for _, c in ipairs(e.changes) do
    local old, new = nn(c.old), nn(c.new)
    local now = kf and fields.metadata(cur, c.key) or fields.custom_value(cur, c.field)
    if kf and ctx.broken[c.key:lower()] then
      out.failed = out.failed + 1
      st:journal { direction = e.direction, serial = e.serial, sectigo_id = e.sectigo_id, keyfactor_id = e.keyfactor_id,
        field = c.key, old = old, new = new, result = "failed: its field definition could not be written", detail = detail }
    elseif values.equal(now, old, c.kind, fmt) then
      todo[#todo + 1] = c
      if kf then payload[c.key] = new or ""
      else newvals[c.field:lower()] = { name = c.field, value = new or "" } end
    elseif values.equal(now, new, c.kind, fmt) then
      out.already = out.already + 1
    else
      out.stale = out.stale + 1
      local shown = values.canonical(now, c.kind, fmt)
      say("stale (skipped): %s: %s: now %s, the plan expected %s (-> %s)", where(e), planfile.escape(c.field),
        dryplan.show(shown), dryplan.show(old), dryplan.show(new))
      st:journal { direction = e.direction, serial = e.serial, sectigo_id = e.sectigo_id, keyfactor_id = e.keyfactor_id,
        field = c.key, old = old, new = new, result = "stale", detail = string.format("%s; now %s", detail,
          shown == nil and "(none)" or ("'" .. shown .. "'")) }
    end
  end
  if #todo == 0 then return end
  if ctx.dry_run then
    for _, c in ipairs(todo) do
      say("would write %s: %s: %s -> %s", where(e), planfile.escape(c.field), dryplan.show(nn(c.old)), dryplan.show(nn(c.new)))
    end
    out.written, out.certs = out.written + #todo, out.certs + 1
    return
  end
  local ok, werr
  if kf then ok, werr = ctx.keyfactor:update_metadata(e.keyfactor_id, payload)
  else ok, werr = ctx.sectigo:update(e.sectigo_id, pair.merged(ctx, cur, newvals)) end
  local result = ok and "ok" or ("failed: " .. first_line(werr or "write failed"))
  for _, c in ipairs(todo) do
    st:journal { direction = e.direction, serial = e.serial, sectigo_id = e.sectigo_id, keyfactor_id = e.keyfactor_id,
      field = c.key, old = nn(c.old), new = nn(c.new), result = result, detail = detail }
    -- Both sides now hold what the plan's run would have recorded as agreed.
    if ok then st:agree(e.serial, c.key, nn(c.baseline)) end
  end
  if ok then
    out.written, out.certs = out.written + #todo, out.certs + 1
  else
    out.failed = out.failed + #todo
    log.error("apply", "%s: %s", where(e), first_line(werr))
  end
end

-- Entries that name the same target certificate (two Keyfactor certificates with one serial,
-- in kftosc) are written one after the other: each sends a merged list read before its write.
local function keyed_lock()
  local held = {}
  return function(key)
    local h = held[key]
    if not h then h = { sem = task.semaphore(1), n = 0 }; held[key] = h end
    h.n = h.n + 1
    h.sem:acquire()
    return function()
      h.sem:release()
      h.n = h.n - 1
      if h.n == 0 then held[key] = nil end
    end
  end
end

local started -- the state, once the run is recorded (so a failure can still close its record)

local function apply()
  if not path then
    io.stderr:write("metasync: apply needs a plan file (made with --dry-run --plan-out FILE)\n")
    return 64
  end
  local rd, rerr = planfile.open(path)
  if not rd then setup.fatal("%s", rerr) end
  local h = rd.header
  local ctx, code = setup.context({ direction = "apply" }, opts)
  if not ctx then rd:close(); return code end
  local st = ctx.state
  local function stop(rc) rd:close(); st:close(); return rc end
  local ok, why = planfile.check(h, ctx.cfg.dir)
  if not ok then log.error("apply", "%s: %s", path, why); return stop(1) end
  -- Every line checked before the first write: a damaged plan writes nothing. Definitions are
  -- few (one per mapped field) and go first, as a run writes them first.
  local defs, n = {}, 0
  local vok, verr = pcall(function()
    for e in function() return rd:next() end do
      if e.definition then defs[#defs + 1] = e else n = n + 1 end
    end
  end)
  rd:close()
  if not vok then log.error("apply", "%s", first_line(verr)); return stop(1) end
  local err
  ctx.sectigo_fields, err = ctx.sectigo:custom_fields()
  if not ctx.sectigo_fields then setup.fatal("cannot reach Sectigo: %s", err) end
  ctx.kf_fields, err = ctx.keyfactor:metadata_fields()
  if not ctx.kf_fields then setup.fatal("cannot reach Keyfactor: %s", err) end
  local writable = {}
  for name, def in pairs(fields.by_name(ctx.sectigo_fields)) do
    if fields.active(def) then writable[name] = true end
  end
  ctx.kftosc = { writable = writable }
  ctx.broken = {}
  ctx.detail = string.format("apply of %s (%s plan of %s)", path, h.command, tostring(h.created))
  if signals.received() then return stop(128 + select(2, signals.received())) end
  st:begin_run(ctx.report.run_id, "apply", ctx.cfg.journalDays)
  started = st
  log.info("apply", "applying %s: %s plan made %s by metasync %s, %d certificate(s)%s", path, h.command,
    tostring(h.created), tostring(h.version), n, ctx.dry_run and " (dry run)" or "")
  local out = { written = 0, certs = 0, stale = 0, already = 0, failed = 0, created = 0, updated = 0 }
  definitions(ctx, defs, out)
  -- Certificates streamed from the file again, one task each, bounded.
  rd = assert(planfile.open(path))
  local limit = ctx.concurrency.sectigo + ctx.concurrency.keyfactor
  local slots, lock = task.semaphore(limit), keyed_lock()
  local lok, lerr = pcall(function()
    for e in function() return rd:next() end do
      if signals.received() then break end
      if not e.definition then
        slots:acquire()
        task.spawn(function()
          local unlock = lock(e.target .. (e.target == "keyfactor" and e.keyfactor_id or e.sectigo_id))
          local aok, aerr = pcall(apply_one, ctx, e, out)
          unlock()
          if not aok then out.failed = out.failed + #e.changes; log.error("apply", "%s", first_line(aerr)) end
          slots:release()
        end)
      end
    end
  end)
  for _ = 1, limit do slots:acquire() end
  if not lok then out.failed = out.failed + 1; log.error("apply", "%s", first_line(lerr)) end
  local summary = string.format("metasync apply of %s (%s plan made %s)%s: %d change(s) %s on %d certificate(s), " ..
    "%d stale (changed since the plan: skipped), %d already in place, %d failed; field definitions: %d created, %d updated; run id %s",
    path, h.command, tostring(h.created), ctx.dry_run and " (dry run: nothing written)" or "", out.written,
    ctx.dry_run and "would be written" or "written", out.certs, out.stale, out.already, out.failed, out.created,
    out.updated, ctx.report.run_id)
  local sig, signum = signals.received()
  say("%s", summary)
  log.info("summary", "%s", summary)
  if sig then
    say("[END] apply interrupted by %s: the rest of the plan was not applied (apply it again to finish)", sig)
    log.info("summary", "[END] apply interrupted by %s", sig)
  end
  local rc = (sig and 128 + signum) or ((out.failed > 0 or out.stale > 0) and 2 or 0)
  st:finish_run(rc)
  return stop(rc)
end

if command ~= "apply" then
  io.stderr:write("metasync: unknown plan command '", tostring(command), "'\n")
  return 64
end
-- SIGINT/SIGTERM: nothing new is started, what is in flight finishes, exit 128 + the signal.
signals.install()
local ok, rc = pcall(apply)
if ok then return rc end
local msg = type(rc) == "table" and rc.msg or tostring(rc)
if setup.log_ready then log.fatal("apply", "%s", first_line(msg)) else setup.stderr("%s", first_line(msg)) end
return setup.failed_exit("apply", started, " before any change was applied")

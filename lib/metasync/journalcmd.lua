-- `metasync report [RUN]` and `metasync revert RUN`: what a run wrote, read from the journal of
-- the state store (metasync.state), and the undoing of it. The host runs this file with the
-- arguments (command, run id or "last", format).
--
-- A revert writes back a field's old value only where the target still holds what the run
-- wrote: anything edited since is listed and left alone (exit 3). The revert is itself a
-- journaled run, and puts the baseline back to the old values it restored.
local config = require("metasync.config")
local state = require("metasync.state")
local csv = require("metasync.csv")
local log = require("metasync.log")
local values = require("metasync.values")
local fields = require("metasync.fields")
local task = require("metasync.task")

local command, which, format = ...
local opts = require("metasync.options")

local COLUMNS = { "run", "time", "command", "direction", "serial", "sectigo_id", "keyfactor_id", "field", "old",
  "new", "result", "detail" }

local function die(fmt, ...)
  io.stderr:write("metasync: ", log.redact(string.format(fmt, ...)), "\n")
  return 1
end

local function report()
  local cfg, errs = config.load(opts.config_dir or "config")
  if not cfg then
    for _, e in ipairs(errs) do io.stderr:write("metasync: ", e, "\n") end
    return 1
  end
  -- Journals written before failure reasons were redacted may hold a credential.
  require("metasync.setup").register_secrets(cfg)
  local st, err = state.open(cfg.state_path, { readonly = true })
  if not st then return die("%s", err) end
  if st.empty then return die("no state file at %s: no run has been recorded yet", cfg.state_path) end
  local run, rerr = st:resolve_run(which)
  if not run then st:close(); return die("%s", rerr) end
  local out = io.stdout
  if format == "csv" then out:write(csv.header(COLUMNS)) end
  local n = 0
  for e in st:entries(run.id) do
    e.time, e.command = e.at, run.command
    out:write(log.redact(format == "csv" and csv.line(e, COLUMNS) or csv.jsonl(e, COLUMNS)))
    n = n + 1
  end
  st:close()
  io.stderr:write(string.format("metasync: run %s (%s, started %s): %d journal entries\n", run.id, run.command,
    run.started, n))
  return 0
end

---------------------------------------------------------------------------------------------
-- revert
---------------------------------------------------------------------------------------------
local function q(v) return v == nil and "(none)" or ("'" .. tostring(v) .. "'") end

-- One target certificate's entries: read its current values, send back the old ones that
-- still hold what the run wrote.
local function revert_one(ctx, g, out)
  local st, kinds = ctx.state, ctx.kinds
  local keyfactor = g.direction == "sctokf"
  local cur, err
  if keyfactor then cur, err = ctx.keyfactor:certificate(g.id) else cur, err = ctx.sectigo:details(g.id) end
  if not cur then
    out.failed = out.failed + 1
    log.error("revert", "%s %s: cannot read it: %s", keyfactor and "Keyfactor id" or "Sectigo sslId", g.id, tostring(err))
    return
  end
  local payload, newvals, done = {}, {}, {}
  for _, e in ipairs(g.entries) do
    local now, kind, fmt
    if keyfactor then
      now, kind, fmt = fields.metadata(cur, e.field), kinds.kf[e.field:lower()], ctx.date_format
    else
      local sname = ctx.sectigo_name[e.field:lower()] or e.field
      now, kind, fmt = fields.custom_value(cur, sname), kinds.sc[sname:lower()], ctx.sectigo_date_format
      e.sectigo_name = sname
    end
    local still = values.equal(now, e.new, kind or "text", fmt)
    if still then
      done[#done + 1] = e
      if keyfactor then payload[e.field] = e.old or ""
      else newvals[e.sectigo_name:lower()] = { name = e.sectigo_name, value = e.old or "" } end
    else
      out.left = out.left + 1
      io.stdout:write(string.format("left alone: %s %s (serial %s) field %s: now %s, the run wrote %s\n",
        keyfactor and "Keyfactor id" or "Sectigo sslId", g.id, tostring(e.serial), e.field, q(values.text(now)), q(e.new)))
    end
  end
  if #done == 0 then return end
  if ctx.dry_run then
    for _, e in ipairs(done) do
      io.stdout:write(string.format("would revert %s %s (serial %s) field %s: %s -> %s\n",
        keyfactor and "Keyfactor id" or "Sectigo sslId", g.id, tostring(e.serial), e.field, q(e.new), q(e.old)))
    end
    out.reverted = out.reverted + #done
    return
  end
  local ok, werr
  if keyfactor then ok, werr = ctx.keyfactor:update_metadata(g.id, payload)
  else ok, werr = ctx.sectigo:update(g.id, require("metasync.pair").merged(ctx, cur, newvals)) end
  for _, e in ipairs(done) do
    st:journal { direction = g.direction, serial = e.serial, sectigo_id = e.sectigo_id, keyfactor_id = e.keyfactor_id,
      field = e.field, old = e.new, new = e.old, result = ok and "ok" or ("failed: " .. tostring(werr)),
      detail = "revert of run " .. ctx.reverting }
    if ok then st:agree(e.serial, e.field, e.old) end
  end
  if ok then
    out.reverted = out.reverted + #done
    for _, e in ipairs(done) do
      io.stdout:write(string.format("reverted %s %s (serial %s) field %s: %s -> %s\n",
        keyfactor and "Keyfactor id" or "Sectigo sslId", g.id, tostring(e.serial), e.field, q(e.new), q(e.old)))
    end
  else
    out.failed = out.failed + 1
    log.error("revert", "%s %s: %s", keyfactor and "Keyfactor id" or "Sectigo sslId", g.id, tostring(werr))
  end
end

local function revert()
  local setup = require("metasync.setup")
  local signals = require("metasync.signals")
  -- SIGINT/SIGTERM: nothing new is started, what is in flight finishes and is journaled, the
  -- summary says how far the revert got, and the exit is 128 + the signal (a re-run finishes
  -- the job: what was reverted is left alone as already in place).
  signals.install()
  local started -- the state, once the revert is recorded
  local rok, rc = pcall(function()
    local ctx, code = setup.context({ direction = "revert" }, opts)
    if not ctx then return code end
    local st = ctx.state
    if st.empty then return die("no state file at %s: no run has been recorded yet", ctx.cfg.state_path) end
    local run, rerr = st:resolve_run(which)
    if not run then return die("%s", rerr) end
    ctx.reverting = run.id
    -- The field definitions of both sides say how to compare what a target holds now with
    -- what the run wrote (a Keyfactor date reads back as "7/23/2025 12:00:00 AM").
    local sf, err = ctx.sectigo:custom_fields()
    if not sf then setup.fatal("cannot reach Sectigo: %s", err) end
    local kf
    kf, err = ctx.keyfactor:metadata_fields()
    if not kf then setup.fatal("cannot reach Keyfactor: %s", err) end
    ctx.sectigo_fields = sf
    ctx.kinds = { kf = {}, sc = {} }
    for _, d in ipairs(kf) do
      if type(d.Name) == "string" then ctx.kinds.kf[d.Name:lower()] = values.kind_of_kf(d.DataType) end
    end
    local writable = {}
    for name, def in pairs(fields.by_name(sf)) do
      ctx.kinds.sc[name] = values.kind_of_sectigo(def.input and def.input.type)
      if fields.active(def) then writable[name] = true end
    end
    ctx.kftosc = { writable = writable }
    -- The journal names a field by its Keyfactor name; the mapping gives the Sectigo one.
    ctx.sectigo_name = {}
    for _, f in ipairs(ctx.cfg.fields.custom) do ctx.sectigo_name[f.keyfactor:lower()] = f.sectigo end
    if signals.received() then st:close(); return 128 + select(2, signals.received()) end
    st:begin_run(ctx.report.run_id, "revert", ctx.cfg.journalDays, run.id)
    started = st
    log.info("revert", "reverting run %s (%s, started %s)%s", run.id, run.command, run.started,
      ctx.dry_run and " (dry run)" or "")
    -- Entries grouped by target certificate; one task per certificate, bounded.
    local out = { reverted = 0, left = 0, failed = 0 }
    local limit = ctx.concurrency.sectigo + ctx.concurrency.keyfactor
    local slots = task.semaphore(limit)
    local function flush(g)
      if not g then return end
      slots:acquire()
      task.spawn(function()
        local ok, e = pcall(revert_one, ctx, g, out)
        if not ok then out.failed = out.failed + 1; log.error("revert", "%s", tostring(e)) end
        slots:release()
      end)
    end
    local g
    for e in st.h:rows("SELECT * FROM journal WHERE run = ? AND result = 'ok' AND direction IN ('sctokf', 'kftosc') " ..
        "ORDER BY direction, CASE direction WHEN 'sctokf' THEN keyfactor_id ELSE sectigo_id END, seq", run.id) do
      local id = e.direction == "sctokf" and e.keyfactor_id or e.sectigo_id
      if not g or g.direction ~= e.direction or g.id ~= id then
        if signals.received() then g = nil; break end
        flush(g)
        g = { direction = e.direction, id = id, entries = {} }
      end
      g.entries[#g.entries + 1] = e
    end
    flush(g)
    for _ = 1, limit do slots:acquire() end
    local sig, signum = signals.received()
    local summary = string.format("metasync revert of run %s%s: %d field(s) %s, %d left alone (changed since), %d failed; run id %s",
      run.id, ctx.dry_run and " (dry run: nothing written)" or "", out.reverted,
      ctx.dry_run and "would be reverted" or "reverted", out.left, out.failed, ctx.report.run_id)
    if sig then summary = summary .. string.format("\n[END] revert interrupted by %s: certificates not reached were left as they are", sig) end
    io.stdout:write(summary, "\n")
    for l in summary:gmatch("[^\n]+") do log.info("summary", "%s", l) end
    local code = (sig and 128 + signum) or (out.failed > 0 and 2) or (out.left > 0 and 3) or 0
    st:finish_run(code)
    st:close()
    return code
  end)
  if rok then return rc end
  local msg = type(rc) == "table" and rc.msg or tostring(rc)
  io.stderr:write("metasync: ", log.redact(msg:match("^[^\n]*")), "\n")
  return setup.failed_exit("revert", started, " before anything was reverted")
end

if command == "report" then return report() end
if command == "revert" then return revert() end
return die("unknown journal command '%s'", tostring(command))

-- The data path of one run, top to bottom; each stage is one module. The policy (a table of
-- hooks, see scripts/sctokf.lua) decides everything a site might want to change.
--
-- Everything that can end a run with exit 1 happens before the first write: configuration,
-- pre-flight of both APIs, banned characters, the field-definition diff and the complete
-- Sectigo index. After that, failures are counted per certificate and the run ends with 2.
local log = require("metasync.log")
local setup = require("metasync.setup")
local fieldset = require("metasync.fieldset")
local scindex = require("metasync.scindex")
local kfstream = require("metasync.kfstream")
local pair = require("metasync.pair")
local quick_settle = require("metasync.quick")
local twoway = require("metasync.twoway")
local limit = require("metasync.limit")
local signals = require("metasync.signals")
local task = require("metasync.task")
local report = require("metasync.report")
local runreport = require("metasync.runreport")

local M = {}
local fatal = setup.fatal

local function writes(ctx)
  return ctx.sectigo.rest.stats.writes + ctx.keyfactor.rest.stats.writes
end

local WORK = { sctokf = pair.sctokf, kftosc = pair.kftosc, sync = twoway.sync }
-- What settles a pair that needs nothing before its table and task are made (see kfstream).
local QUICK = { sctokf = quick_settle.sctokf }

local stages

-- A stop signal (SIGINT, SIGTERM) ends a run cleanly: nothing new is started or sent, what is
-- in flight finishes, and the summary says so. In flight is given at most GRACE seconds; after
-- that the summary is printed anyway and the process exits.
local GRACE = 10

local function interrupted(ctx, note)
  local name, num = signals.received()
  ctx.report:interrupt(name, num, note)
  return ctx.report:finish()
end

local function watchdog(ctx, state)
  while not state.done do
    task.sleep(0.2)
    local name = signals.received()
    if name and not state.done then
      log.warn("main", "%s received: no new work is started; requests in flight may finish (at most %d s; a second signal stops at once)",
        name, GRACE)
      local deadline = task.now() + GRACE
      while not state.done and task.now() < deadline do task.sleep(0.1) end
      if state.done then return end
      local rc = interrupted(ctx, string.format("requests in flight did not finish within %d s", GRACE))
      ctx.outputs.close(rc)
      pcall(ctx.state.finish_run, ctx.state, rc)
      ctx.state:close()
      io.stdout:flush()
      os.exit(rc)
    end
  end
end

-- run(policy, opts) -> exit code
function M.run(policy, opts)
  signals.install()
  -- 1. Setup: configuration, logging, clients, the state store.
  local ctx, rc = setup.context(policy, opts)
  if not ctx then return rc end
  ctx.direction = policy.direction
  -- The progress line, --report's rows and metricsFile (metasync.runreport).
  ctx.outputs = runreport.attach(ctx, opts)
  local wd = { done = false }
  task.spawn(watchdog, ctx, wd)
  -- Whatever ends the run, what the store has queued is committed and the store closed: the
  -- baseline then matches the writes that were made.
  local ok, res = xpcall(stages, function(e)
    if getmetatable(e) == setup.Fatal then return e end
    return setmetatable({ msg = tostring(e), trace = debug.traceback(tostring(e), 2) }, setup.Fatal)
  end, ctx, policy)
  wd.done = true
  if not ok and signals.received() then
    -- a stage that failed because its requests were refused after the signal
    ok, res = true, interrupted(ctx, "stopped during " .. (ctx.stage or "setup"))
  end
  -- (A memory error skips the handler, so res may still be a string.)
  if not ok and type(res) ~= "table" then res = setmetatable({ msg = tostring(res) }, setup.Fatal) end
  if not ok and writes(ctx) > 0 then
    -- Something unexpected after writes began: never exit 1 (which says "nothing was
    -- written"). The summary counts what was done, names what stopped the run, and exits 2.
    if res.trace then log.debug("main", "%s", res.trace) end
    local fok, code = pcall(function()
      ctx.report:listing_failed("stopped: " .. tostring(res.msg):match("^[^\n]*"))
      return ctx.report:finish()
    end)
    ok, res = true, fok and code or 2
  end
  -- The run's row is closed whatever ended it (a run with no end time reads as still going).
  pcall(ctx.state.finish_run, ctx.state, ok and res or 1)
  ctx.outputs.close(ok and res or 1)
  ctx.state:close()
  if not ok then error(res, 0) end
  return res
end

function stages(ctx, policy)
  ctx.outputs.open() -- --report FILE: a file that cannot be written stops the run here
  -- 2. Pre-flight: both APIs answer with our credentials before anything is written. A
  -- refused login names the keys to check (report.preflight).
  local err
  ctx.sectigo_fields, err = ctx.sectigo:custom_fields()
  if not ctx.sectigo_fields then fatal("%s", report.preflight("Sectigo", err, ctx.cfg)) end
  ctx.kf_fields, err = ctx.keyfactor:metadata_fields()
  if not ctx.kf_fields then fatal("%s", report.preflight("Keyfactor", err, ctx.cfg)) end

  -- 3. The field list, Keyfactor names, and the definition diff.
  local defs = fieldset.prepare(ctx, policy)

  -- 4. The Sectigo index (list pages or the bulk report).
  ctx.stage = "the Sectigo listing"
  ctx.index = scindex.build(ctx, policy)
  if signals.received() then return interrupted(ctx, "stopped before any write") end
  -- The change limit, in certificates; a percentage is of the index (the most that can match).
  ctx.limit = limit.new(ctx.max_changes, ctx.index.size)
  ctx.report.limit = ctx.limit

  -- 5. Field definitions: the first write. The run is recorded from here on.
  ctx.state:begin_run(ctx.report.run_id, policy.direction, ctx.cfg.journalDays)
  fieldset.apply(ctx, defs)

  -- 6 + 7. The Keyfactor stream; each matched pair read, decided and written in its own task.
  -- Enough pairs in flight to keep both APIs' request caps busy at once: a pair holds one
  -- request at a time, so both caps full takes sc + kf pairs; half as many again leaves slack
  -- for the pairs between their two requests and for the listing's own requests. (A request
  -- beyond a cap waits in metasync.http and starts the moment a slot frees, so more pairs
  -- would only hold more memory: twice sc + kf cost ~4 MB at 100k, no time gained.)
  pair.prepare(ctx)
  local in_flight = 3 * (ctx.concurrency.sectigo + ctx.concurrency.keyfactor) // 2
  ctx.stage = "the Keyfactor listing"
  -- (--report keeps a row per pair, so every pair then lives its whole life)
  local quick = not ctx.report.rows and QUICK[policy.direction] or nil
  local lerr = kfstream.run(ctx, policy, ctx.index, WORK[policy.direction], in_flight, quick)
  if signals.received() then return interrupted(ctx) end
  local broken = ctx.keyfactor.rest.broken or ctx.sectigo.rest.broken
  if lerr or broken then
    -- The breaker's own line says what happened; a broken page says which page.
    local msg = broken and ("stopped: " .. broken) or ("listing Keyfactor certificates failed: " .. lerr)
    if writes(ctx) == 0 then fatal("%s", msg) end
    ctx.report:listing_failed(msg)
  end
  log.info("sync", "%d certificates updated, %d failed", ctx.report.updated, #ctx.report.failed)
  log.debug("state", "baselines read for %d certificates; %d settled by their baselines' digests",
    ctx.state.baselines_read or 0, ctx.digest_settled or 0)

  -- 8. The summary; the exit code says whether everything succeeded.
  return ctx.report:finish()
end

return M

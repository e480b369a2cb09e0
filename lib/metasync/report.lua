-- The operator's summary: what a run considered, matched, changed and why anything failed.
-- Printed on stdout at the end; the exit code follows from it (0 ok, 2 some certificates failed,
-- 3 completed with conflicts left unresolved).
local log = require("metasync.log")
local task = require("metasync.task")

local M = {}
local Report = {}
Report.__index = Report

function M.new(direction)
  return setmetatable({
    direction = direction, started = task.now(), considered = 0, skipped = 0, matched = 0,
    updated = 0, unchanged = 0, unmatched = 0, failed = {}, fields_created = 0,
    fields_updated = 0, field_failures = {}, planned = 0, dry_run = false, listing_failure = nil,
    conflicts = 0, conflict_list = {}, run_id = log.run_id and log.run_id() or nil,
  }, Report)
end

function Report:fail(serial, reason)
  -- A certificate whose request was refused after a stop signal did not fail: it was not done.
  if type(reason) == "string" and reason:find("interrupted: not sent", 1, true) then
    self.not_done = (self.not_done or 0) + 1
    return
  end
  self.failed[#self.failed + 1] = { serial = serial, reason = reason }
  log.error("sync", "certificate %s failed: %s", tostring(serial), reason)
end

-- field_failed(name, reason): a Keyfactor field definition that could not be written; its
-- values were skipped, so the run counts as not fully successful.
function Report:field_failed(name, reason)
  self.field_failures[#self.field_failures + 1] = { name = name, reason = reason }
  log.error("fields", "field %s failed: %s", tostring(name), reason)
end

-- Unmatched serials are logged as they are met rather than kept: the Keyfactor side may be
-- far larger than the Sectigo one.
function Report:unmatched_serial(serial)
  if self.unmatched == 0 then
    log.info("sync", "unmatched certificates (no certificate with the same serial on the other side) follow")
  end
  self.unmatched = self.unmatched + 1
  log.info("sync", "unmatched serial %s", tostring(serial))
end

-- changed(serial, target_id, changes): one certificate written (or, in a dry run, planned),
-- with its fields old -> new. Only the counts stay in memory; the values go to the log.
function Report:changed(serial, id, changes)
  if log.enabled("debug") then
    local parts = {}
    for _, c in ipairs(changes) do
      parts[#parts + 1] = string.format("%s: %s -> %s", c.field, tostring(c.old), tostring(c.new))
    end
    log.debug("sync", "certificate %s (%s): %s", tostring(serial), tostring(id), table.concat(parts, "; "))
  end
end

local CONFLICTS_SHOWN = 50
local function q(v) return v == nil and "(none)" or ("'" .. tostring(v) .. "'") end

-- conflict{serial=, field=, sectigo=, keyfactor=, baseline=}: both sides changed a field
-- differently since they last agreed; neither was written. The first few are kept for the
-- summary, every one goes to the log (and the journal, by the caller).
function Report:conflict(c)
  self.conflicts = self.conflicts + 1
  local line = string.format("%s %s: Sectigo %s, Keyfactor %s (%s)", tostring(c.serial), tostring(c.field),
    q(c.sectigo), q(c.keyfactor), c.baseline ~= nil and ("last agreed " .. q(c.baseline)) or "no baseline")
  if #self.conflict_list < CONFLICTS_SHOWN then self.conflict_list[#self.conflict_list + 1] = line end
  log.warn("sync", "conflict: %s", line)
end

-- listing_failed(msg): the Keyfactor listing broke off after writes began; the run is
-- incomplete, which the summary and the exit code (2) say.
function Report:listing_failed(msg)
  self.listing_failure = msg
  log.error("sync", "%s", msg)
end

-- interrupt(name, number[, note]): the run stopped on a signal; exit 128 + number.
function Report:interrupt(name, num, note)
  self.interrupted = { name = name, num = num, note = note }
end

function Report:exit_code()
  if self.interrupted then return 128 + self.interrupted.num end
  if self.limit and self.limit:tripped() then return 4 end
  if #self.failed > 0 or #self.field_failures > 0 or self.listing_failure then return 2 end
  if self.conflicts > 0 then return 3 end
  return 0
end

-- lines() -> the summary text
function Report:lines()
  local out = {}
  local function add(fmt, ...) out[#out + 1] = string.format(fmt, ...) end
  add("metasync %s%s summary", self.direction, self.dry_run and " (dry run: nothing written)" or "")
  add("  certificates considered: %d", self.considered)
  if self.skipped > 0 then add("  skipped by policy:       %d", self.skipped) end
  add("  matched:                 %d", self.matched)
  if self.dry_run then
    add("  would update:            %d", self.planned)
  else
    add("  updated:                 %d", self.updated)
  end
  add("  unchanged:               %d", self.unchanged)
  add("  unmatched:               %d%s", self.unmatched, self.unmatched > 0 and " (serials in the log)" or "")
  add("  failed:                  %d", #self.failed)
  for i, f in ipairs(self.failed) do
    if i > 20 then add("    ... and %d more (see the errors log)", #self.failed - 20); break end
    add("    %s: %s", tostring(f.serial), f.reason)
  end
  if self.direction == "sync" or self.conflicts > 0 then
    add("  conflicts:               %d%s", self.conflicts, self.conflicts > 0 and " (left unresolved: neither side written)" or "")
    for _, l in ipairs(self.conflict_list) do add("    %s", l) end
    if self.conflicts > #self.conflict_list then
      add("    ... and %d more (metasync report %s)", self.conflicts - #self.conflict_list, tostring(self.run_id))
    end
  end
  add("  fields created:          %d%s", self.fields_created, self.dry_run and " (planned)" or "")
  add("  fields updated:          %d%s", self.fields_updated, self.dry_run and " (planned)" or "")
  if #self.field_failures > 0 then
    add("  fields failed:           %d (their values were not synced)", #self.field_failures)
    for _, f in ipairs(self.field_failures) do add("    %s: %s", tostring(f.name), f.reason) end
  end
  if self.listing_failure then
    add("  INCOMPLETE: %s; certificates after it were not considered", self.listing_failure)
  end
  local lim = self.limit
  if lim and lim:tripped() then
    add("  CHANGE LIMIT: at most %s may be written; %s %d, %d more %s (%d in all, %d of them overwrite a value)",
      lim:describe(), self.dry_run and "a run would write" or "written", lim.taken, lim.over,
      self.dry_run and "would be held back" or "were not written", lim.taken + lim.over, lim.nonempty)
  elseif lim then
    add("  change limit:            %d of at most %s%s", lim.taken, lim:describe(), self.dry_run and " (not reached)" or "")
  end
  if self.interrupted then
    add("  INTERRUPTED by %s: no new work was started after it%s; %d certificate(s) in flight were left undone",
      self.interrupted.name, self.interrupted.note and ("; " .. self.interrupted.note) or "", self.not_done or 0)
  end
  add("  duration:                %.1f s", task.now() - self.started)
  if self.run_id then
    add("  run id:                  %s%s", self.run_id, self.dry_run and "" or string.format(" (metasync report %s)", self.run_id))
  end
  return out
end

-- finish() -> exit code, after printing the summary.
function Report:finish()
  local lines = self:lines()
  for _, l in ipairs(lines) do log.info("summary", "%s", l) end
  io.stdout:write(log.redact(table.concat(lines, "\n")), "\n")
  io.stdout:flush()
  local rc = self:exit_code()
  log.info("main", "[END] metasync %s, run %s: exit %d%s", self.direction, tostring(self.run_id), rc,
    self.interrupted and (", interrupted by " .. self.interrupted.name) or "")
  return rc
end

return M

-- The operator's summary: what a run considered, matched, changed and why anything failed.
-- Printed on stdout at the end; the exit code follows from it (0 ok, 2 some certificates failed,
-- 3 completed with conflicts left unresolved).
local log = require("metasync.log")
local task = require("metasync.task")

local M = {}
local Report = {}
Report.__index = Report

-- Failures are grouped by reason for the summary, not listed one by one: a run over 20,000
-- certificates can fail thousands for the same cause. Per group the count and a few example
-- serials are kept; every failure still goes to the errors log (and to --report's rows).
local GROUPS_MAX = 500 -- distinct reasons kept; the rest are counted under one "other" group
local EXAMPLES = 5     -- example serials per group
local KEPT = 100       -- failures kept as records in r.failed, for callers that look at them
local GROUPS_SHOWN = 20

function M.new(direction)
  local r = setmetatable({
    direction = direction, started = task.now(), considered = 0, skipped = 0, matched = 0,
    updated = 0, unchanged = 0, unmatched = 0, nfailed = 0, fields_created = 0,
    fields_updated = 0, field_failures = {}, planned = 0, dry_run = false, listing_failure = nil,
    conflicts = 0, conflict_list = {}, run_id = log.run_id and log.run_id() or nil,
    groups = {}, ngroups = 0,
  }, Report)
  -- r.failed holds the first KEPT failures ({serial=, reason=}), while #r.failed is the
  -- count of all of them: memory stays bounded and `#r.failed > 0` keeps meaning "something failed".
  r.failed = setmetatable({}, { __len = function() return r.nfailed end })
  return r
end

-- normalise(reason) -> the reason without what differs from one certificate to the next (ids
-- the clients append, ids in paths, serials), so the same cause falls into one group.
function M.normalise(reason)
  local s = tostring(reason)
  s = s:gsub("%s*%(certificate %-?%d+%)", ""):gsub("%s*%(sslId %-?%d+%)", "")
  s = s:gsub("%s*%(Keyfactor [Ii]d %-?%d+%)", ""):gsub("%s*%(Sectigo sslId %-?%d+%)", "")
  s = s:gsub("(/[%w_]+/v%d+/)%d+", "%1{id}"):gsub("(/Certificates/)%d+", "%1{id}")
  s = s:gsub("(%f[%w][Ii][Dd]%s*[=:]?%s*)%d+", "%1{id}")
  -- a serial: colon-separated hex pairs, or a run of 8+ hex digits with a digit in it (a whole
  -- word, so an error code such as 0xA0110000 stays)
  s = s:gsub("%f[%x]%x%x:%x%x[%x:]*", "{serial}")
  s = s:gsub("%f[%w]%x+%f[^%w]", function(h)
    if #h >= 8 and h:find("%d") then return "{serial}" end
  end)
  return s
end

-- fail(serial, reason [, kfcert]): one certificate failed. serial may be a label when the
-- record has none ("Keyfactor Id 5"); kfcert, when given, lets --report's row name it.
function Report:fail(serial, reason, kc)
  -- A certificate whose request was refused after a stop signal did not fail: it was not done.
  if type(reason) == "string" and reason:find("interrupted: not sent", 1, true) then
    self.not_done = (self.not_done or 0) + 1
    if self.rows then self.rows:note(serial, "interrupted", reason) end
    return
  end
  self.nfailed = self.nfailed + 1
  if self.nfailed <= KEPT then rawset(self.failed, self.nfailed, { serial = serial, reason = reason }) end
  local key = M.normalise(reason)
  local g = self.groups[key]
  if not g then
    if self.ngroups >= GROUPS_MAX then
      key = "(other reasons: see the errors log)"
      g = self.groups[key]
    end
    if not g then
      g = { key = key, count = 0, examples = {}, first = reason, order = self.ngroups }
      self.groups[key] = g
      self.ngroups = self.ngroups + 1
    end
  end
  g.count = g.count + 1
  if #g.examples < EXAMPLES then g.examples[#g.examples + 1] = tostring(serial) end
  log.error("sync", "certificate %s failed: %s", tostring(serial), reason)
  if self.rows then self.rows:fail(serial, reason, kc) end
end

-- failure_groups() -> the groups, most certificates first (then in the order first met)
function Report:failure_groups()
  local list = {}
  for _, g in pairs(self.groups) do list[#list + 1] = g end
  table.sort(list, function(a, b)
    if a.count ~= b.count then return a.count > b.count end
    return a.order < b.order
  end)
  return list
end

-- The operator's words for a refused login at pre-flight: which keys to check. A 401 or 403
-- (or an OAuth token endpoint's invalid_client) is a credentials problem, not reachability.
local function envset(env, name)
  local v = env(name)
  local f = env(name .. "_FILE")
  return (v and v ~= "") or (f and f ~= "")
end

-- per API and login kind: the keys to check, and the variable that replaces the secret
local CREDENTIALS = {
  Sectigo = {
    login = { "sectigoLogin, sectigoPassword and sectigoCustomerUri (or sectigoOAuth)",
      "METASYNC_SECTIGO_PASSWORD", "sectigoPassword" },
    oauth = { "sectigoOAuth (tokenUrl, clientId, clientSecret) and sectigoCustomerUri",
      "METASYNC_SECTIGO_CLIENT_SECRET", "sectigoOAuth.clientSecret" },
  },
  Keyfactor = {
    login = { "keyfactorLogin/keyfactorPassword (or keyfactorOAuth)", "METASYNC_KEYFACTOR_PASSWORD", "keyfactorPassword" },
    oauth = { "keyfactorOAuth (tokenUrl, clientId, clientSecret)", "METASYNC_KEYFACTOR_CLIENT_SECRET",
      "keyfactorOAuth.clientSecret" },
  },
}

-- preflight(api, err, cfg[, env]) -> the line a failed pre-flight request stops the run with
function M.preflight(api, err, cfg, env)
  err, cfg, env = tostring(err), cfg or {}, env or os.getenv
  local status = err:match("HTTP (40[13])%f[%D]")
  if not status and err:find("invalid_client", 1, true) then status = err:match("HTTP (%d%d%d)") or "400" end
  if not status or not CREDENTIALS[api] then return string.format("cannot reach %s: %s", api, err) end
  local so = cfg.sectigoOAuth
  local oauth = (api == "Sectigo" and type(so) == "table" and so.usable) or (api == "Keyfactor" and cfg.UseKeyfactorOAuth)
  local c = CREDENTIALS[api][oauth and "oauth" or "login"]
  local note = envset(env, c[2]) and string.format(" (%s is set and replaces %s)", c[2], c[3]) or ""
  return string.format("%s refused the credentials (HTTP %s): check %s%s%s; %s", api, status, c[1], note,
    status == "403" and ", and that the account may use the API" or "", err)
end

-- skip(serial, kfcert): a certificate the policy's include hook left out.
function Report:skip(serial, kc)
  self.skipped = self.skipped + 1
  if self.rows then self.rows:standalone("skipped", serial, kc) end
end

-- The life of a matched pair (kfstream): what happens to it between begin and finish becomes
-- its one --report row. Without --report these cost nothing.
function Report:pair_begin(p) if self.rows then self.rows:begin(p) end end
function Report:pair_end(p) if self.rows then self.rows:finish(p) end end

-- unchanged_pair(p): a matched pair with nothing to write.
function Report:unchanged_pair(p)
  self.unchanged = self.unchanged + 1
  if self.rows then self.rows:note(p.serial, "unchanged") end
end

-- held(p, changes): decided, but past the change limit and so not written (the limit counts it).
function Report:held(p, changes)
  if self.rows then self.rows:note(p.serial, "held", changes) end
end

-- field_failed(name, reason): a Keyfactor field definition that could not be written; its
-- values were skipped, so the run counts as not fully successful.
function Report:field_failed(name, reason)
  self.field_failures[#self.field_failures + 1] = { name = name, reason = reason }
  log.error("fields", "field %s failed: %s", tostring(name), reason)
end

-- Unmatched serials are logged as they are met rather than kept: the Keyfactor side may be
-- far larger than the Sectigo one.
function Report:unmatched_serial(serial, kc)
  if self.rows then self.rows:standalone("unmatched", serial, kc) end
  if self.unmatched == 0 then
    log.info("sync", "unmatched certificates (no certificate with the same serial on the other side) follow")
  end
  self.unmatched = self.unmatched + 1
  log.info("sync", "unmatched serial %s", tostring(serial))
end

-- changed(serial, target_id, changes): one certificate written (or, in a dry run, planned),
-- with its fields old -> new. Only the counts stay in memory; the values go to the log.
function Report:changed(serial, id, changes)
  if self.rows then self.rows:note(serial, "changed", changes, id) end
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
  if self.rows then self.rows:note(c.serial, "conflict", line) end
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
  if self.nfailed > 0 or #self.field_failures > 0 or self.listing_failure then return 2 end
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
  add("  failed:                  %d", self.nfailed)
  -- One line per reason: a reason met once reads as before ("serial: reason"); a shared one
  -- gives its count and a few serials.
  local groups = self:failure_groups()
  for i, g in ipairs(groups) do
    if i > GROUPS_SHOWN then
      local rest = 0
      for j = i, #groups do rest = rest + groups[j].count end
      add("    ... and %d more certificates, %d other reasons (see the errors log)", rest, #groups - i + 1)
      break
    end
    if g.count == 1 then
      add("    %s: %s", g.examples[1], g.first)
    else
      add("    %d certificates: %s (e.g. %s%s)", g.count, g.key, table.concat(g.examples, ", "),
        g.count > #g.examples and ", ..." or "")
    end
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
  -- the progress line goes before the summary takes its place
  if self.progress then self.progress:stop() end
  local lines = self:lines()
  -- the old tool's marker, which log searches look for
  log.info("summary", "[SUMMARY] metasync %s%s: %d considered, %d matched, %d %s, %d unchanged, %d unmatched, %d failed",
    self.direction, self.dry_run and " (dry run)" or "", self.considered, self.matched,
    self.dry_run and self.planned or self.updated, self.dry_run and "would update" or "updated",
    self.unchanged, self.unmatched, #self.failed)
  for _, l in ipairs(lines) do log.info("summary", "%s", l) end
  io.stdout:write(log.redact(table.concat(lines, "\n")), "\n")
  io.stdout:flush()
  local rc = self:exit_code()
  log.info("main", "[END] metasync %s, run %s: exit %d%s", self.direction, tostring(self.run_id), rc,
    self.interrupted and (", interrupted by " .. self.interrupted.name) or "")
  return rc
end

return M

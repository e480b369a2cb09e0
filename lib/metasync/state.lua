-- The sync state (SQLite through metasync.db): the baseline, the value both sides last agreed
-- on per certificate and field, and the journal of every write a run made. `sync` needs the
-- baseline to tell which side changed; `report` and `revert` read the journal.
--
-- Crash safety: baseline and journal changes are queued and committed in batched
-- transactions (every FLUSH_ROWS rows or FLUSH_SECONDS), always after the remote write they
-- describe succeeded. A run killed between a write and its commit leaves both sides holding
-- the same value with a stale baseline, which the next run reads as "in step" and records
-- without writing anything, so the store stays consistent and the re-run converges.
local db = require("metasync.db")
local task = require("metasync.task")
local log = require("metasync.log")

local M = {}
local Store = {}
Store.__index = Store

local FLUSH_ROWS = 2000
local FLUSH_SECONDS = 1.0

-- Version 1. Values are canonical text (dates yyyy-MM-dd, integers without ".0"); an agreed
-- "no value" is the absence of a row. Times are UTC ISO 8601, which sorts as text.
local SCHEMA = [[
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
  seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, command TEXT NOT NULL, started TEXT NOT NULL,
  finished TEXT, exit_code INTEGER, reverts TEXT);
CREATE TABLE IF NOT EXISTS baseline (
  serial TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL, run TEXT NOT NULL, at TEXT NOT NULL,
  PRIMARY KEY (serial, field)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal (
  seq INTEGER PRIMARY KEY, run TEXT NOT NULL, at TEXT NOT NULL, direction TEXT NOT NULL,
  serial TEXT, sectigo_id INTEGER, keyfactor_id INTEGER, field TEXT, old TEXT, new TEXT,
  result TEXT NOT NULL, detail TEXT);
CREATE INDEX IF NOT EXISTS journal_run ON journal (run, seq);
CREATE INDEX IF NOT EXISTS journal_at ON journal (at);
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', '1');
]]

local function now_iso() return os.date("!%Y-%m-%dT%H:%M:%SZ") end
M.now_iso = now_iso

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function mkdir_p(dir)
  if dir == "" or exists(dir) then return true end
  local q = "'" .. dir:gsub("'", "'\\''") .. "'"
  return os.execute("mkdir -p -- " .. q .. " 2>/dev/null")
end

-- open(path, {readonly=}) -> store | nil, message. A read-only open of a store that does not
-- exist yet gives an empty store (a dry run before the first real run): nothing is created.
function M.open(path, opts)
  opts = opts or {}
  local s = setmetatable({ path = path, queue = {}, last_flush = task.now(), readonly = opts.readonly,
    run = nil, writes = 0 }, Store)
  if opts.readonly then
    if not exists(path) then s.empty = true; return s end
    local h, err = db.open(path, { readonly = true })
    if not h then return nil, err end
    s.h = h
  else
    local dir = path:match("^(.*)/[^/]*$")
    if dir and not mkdir_p(dir) then return nil, string.format("cannot create directory %s", dir) end
    local h, err = db.open(path)
    if not h then return nil, err end
    s.h = h
    local ok, e = pcall(function()
      h:exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
      h:exec(SCHEMA)
    end)
    if not ok then h:close(); return nil, string.format("%s: %s", path, tostring(e)) end
  end
  local ok, v = pcall(s.h.row, s.h, "SELECT value FROM meta WHERE key = 'schema'")
  if not ok or not v then s.h:close(); return nil, string.format("%s: not a metasync state file", path) end
  if v.value ~= "1" then
    s.h:close()
    return nil, string.format("%s: state schema %s is newer than this metasync understands (1)", path, tostring(v.value))
  end
  return s
end

-- begin_run(id, command [, reverts]): the run's row, and the journal's pruning (journalDays).
function Store:begin_run(id, command, journal_days, reverts)
  self.run = id
  if not self.h or self.readonly then return end
  local h = self.h
  h:begin("immediate")
  local ok, err = pcall(function()
    h:run("INSERT INTO runs (id, command, started, reverts) VALUES (?, ?, ?, ?)", id, command, now_iso(), reverts)
    if journal_days and journal_days > 0 then
      local cutoff = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() - math.floor(journal_days * 86400))
      local n = h:run("DELETE FROM journal WHERE at < ?", cutoff)
      h:run("DELETE FROM runs WHERE finished IS NOT NULL AND finished < ? AND id NOT IN (SELECT DISTINCT run FROM journal)", cutoff)
      if n > 0 then log.info("state", "journal: %d entries older than %d days removed", n, journal_days) end
    end
  end)
  if ok then h:commit() else h:rollback(); error(err, 0) end
end

-- baseline(serial) -> {field = canonical value}; one indexed read per certificate, taken while
-- its pair is decided (the store is far larger than memory should hold at 100k certificates).
local EMPTY = setmetatable({}, { __newindex = function() error("read-only", 2) end })
function Store:baseline(serial)
  if not self.h then return EMPTY end
  local rows = self.h:all("SELECT field, value FROM baseline WHERE serial = ?", serial)
  if #rows == 0 then return EMPTY end
  local out = {}
  for _, r in ipairs(rows) do out[r.field] = r.value end
  return out
end

function Store:maybe_flush()
  local q = self.queue
  if #q >= FLUSH_ROWS or (#q > 0 and task.now() - self.last_flush >= FLUSH_SECONDS) then self:flush() end
end

-- agree(serial, field, value): both sides now hold value (nil: both hold none).
function Store:agree(serial, field, value)
  if self.readonly or not self.h then return end
  local q = self.queue
  q[#q + 1] = { "b", serial, field, value }
  self:maybe_flush()
end

-- journal{direction=, serial=, sectigo_id=, keyfactor_id=, field=, old=, new=, result=, detail=}
function Store:journal(e)
  if self.readonly or not self.h then return end
  local q = self.queue
  q[#q + 1] = { "j", e, now_iso() }
  self.writes = self.writes + 1
  self:maybe_flush()
end

-- flush(): commits what is queued, in one transaction. Runs without yielding, so no other
-- task adds to the queue meanwhile.
function Store:flush()
  local q = self.queue
  if #q == 0 or not self.h then return end
  self.queue = {}
  local h, run, at = self.h, self.run or "", now_iso()
  h:begin("immediate")
  local ok, err = pcall(function()
    for _, op in ipairs(q) do
      if op[1] == "b" then
        if op[4] == nil then
          h:run("DELETE FROM baseline WHERE serial = ? AND field = ?", op[2], op[3])
        else
          h:run("INSERT INTO baseline (serial, field, value, run, at) VALUES (?, ?, ?, ?, ?) " ..
            "ON CONFLICT (serial, field) DO UPDATE SET value = excluded.value, run = excluded.run, at = excluded.at",
            op[2], op[3], op[4], run, at)
        end
      else
        local e = op[2]
        h:run("INSERT INTO journal (run, at, direction, serial, sectigo_id, keyfactor_id, field, old, new, result, detail) " ..
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", run, op[3], e.direction, e.serial,
          math.tointeger(e.sectigo_id), math.tointeger(e.keyfactor_id), e.field, e.old, e.new, e.result or "ok", e.detail)
      end
    end
  end)
  if ok then h:commit() else h:rollback(); error(err, 0) end
  self.last_flush = task.now()
end

-- finish_run(exit_code): the queue committed and the run's row closed.
function Store:finish_run(rc)
  if not self.h or self.readonly then return end
  self:flush()
  self.h:run("UPDATE runs SET finished = ?, exit_code = ? WHERE id = ?", now_iso(), rc, self.run)
end

-- resolve_run("last" | id) -> run row | nil, message
function Store:resolve_run(which)
  if not self.h then return nil, "no runs recorded yet" end
  local r
  if which == nil or which == "last" then
    r = self.h:row("SELECT * FROM runs ORDER BY seq DESC LIMIT 1")
    if not r then return nil, "no runs recorded yet" end
  else
    r = self.h:row("SELECT * FROM runs WHERE id = ?", which)
    if not r then return nil, string.format("no run '%s' in %s", which, self.path) end
  end
  return r
end

-- entries(run) -> iterator over the run's journal rows, oldest first (streamed: a run may
-- have written every certificate).
function Store:entries(run)
  return self.h:rows("SELECT * FROM journal WHERE run = ? ORDER BY seq", run)
end

function Store:integrity()
  local r = self.h:row("PRAGMA integrity_check")
  return r and r.integrity_check
end

function Store:close()
  if self.h then
    if not self.readonly then pcall(self.flush, self) end
    self.h:close()
    self.h = nil
  end
end

return M

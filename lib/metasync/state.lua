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
local digests = require("metasync.digests")

local M = {}
local Store = {}
Store.__index = Store

local FLUSH_ROWS = 2000
local FLUSH_SECONDS = 1.0

-- Version 2. Values are canonical text (dates yyyy-MM-dd, integers without ".0"); an agreed
-- "no value" is the absence of a row. Times are UTC ISO 8601, which sorts as text. A baseline
-- row is only its key and value: version 1 also kept the run and the time that agreed it,
-- which nothing read, and which made up a third of a row. The baseline is keyed by serial, so
-- a first run's commits rewrite its pages all over the file: at W100k the smaller row cut a
-- first run's writes from 1.05 GB to 0.82 GB. When a value changes, the journal says which run
-- changed it and when.
local SCHEMA = [[
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
  seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, command TEXT NOT NULL, started TEXT NOT NULL,
  finished TEXT, exit_code INTEGER, reverts TEXT);
CREATE TABLE IF NOT EXISTS baseline (
  serial TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (serial, field)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal (
  seq INTEGER PRIMARY KEY, run TEXT NOT NULL, at TEXT NOT NULL, direction TEXT NOT NULL,
  serial TEXT, sectigo_id INTEGER, keyfactor_id INTEGER, field TEXT, old TEXT, new TEXT,
  result TEXT NOT NULL, detail TEXT);
CREATE INDEX IF NOT EXISTS journal_run ON journal (run, seq);
CREATE TABLE IF NOT EXISTS digest_scope (id INTEGER PRIMARY KEY, fields TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS digest (
  serial TEXT NOT NULL, scope INTEGER NOT NULL, value INTEGER NOT NULL,
  PRIMARY KEY (serial, scope)) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', '3');
]]

-- Version 3 adds the digests (metasync.digests): a version 2 file gains the tables as it is
-- opened for writing, and needs nothing else. Version 2 programs refuse a version 3 file, as
-- they must: they would change baselines without updating their digests.
local SCHEMA_VERSION = "3"

-- migrate(h, from) -> true | nil, message: version 1 or 2 -> 3, in one transaction (from 1, the
-- columns the baseline no longer keeps are dropped; a failure leaves the file as it was).
local function migrate(h, from)
  h:begin("immediate")
  local ok, err = pcall(function()
    if from == "1" then h:exec("ALTER TABLE baseline DROP COLUMN run; ALTER TABLE baseline DROP COLUMN at;") end
    h:run("UPDATE meta SET value = ? WHERE key = 'schema'", SCHEMA_VERSION)
  end)
  if ok then h:commit(); return true end
  h:rollback()
  return nil, tostring(err):match("^[^\n]*")
end

-- One formatted time per second: a first run journals several rows per certificate.
local last_t, last_iso
local function now_iso()
  local t = os.time()
  if t ~= last_t then last_t, last_iso = t, os.date("!%Y-%m-%dT%H:%M:%SZ", t) end
  return last_iso
end
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

-- open(path, {readonly=, flush_seconds=}) -> store | nil, message. A read-only open of a store
-- that does not exist yet gives an empty store (a dry run before the first real run): nothing
-- is created. flush_seconds: the most a queued row waits for its commit (default 1 s; a test
-- that checks what is queued sets math.huge, so a slow machine cannot commit under it).
function M.open(path, opts)
  opts = opts or {}
  local s = setmetatable({ path = path, bq = {}, bn = 0, bdel = {}, jq = {}, jn = 0, ops = 0, last_flush = task.now(),
    flush_seconds = tonumber(opts.flush_seconds) or FLUSH_SECONDS,
    readonly = opts.readonly, run = nil, writes = 0, cached = 0, touched = {},
    baselines_read = 0 }, Store)
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
      -- The baseline is keyed by serial, so each commit of a first run dirties pages all over
      -- it, and every dirty page is written whole. 1 KB pages (a new file only: page_size
      -- cannot change once a file has tables) write less per scattered row than 4 KB ones,
      -- and a checkpoint every 65536 pages (the same 64 MB of WAL, gone at close) copies each
      -- page to the file once where every 1000 copied it many times. A first run at 100k wrote
      -- 1.44 GB for an 85 MB file, now about 0.47 GB, with no memory more.
      h:exec("PRAGMA page_size=1024; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=65536;")
      h:exec(SCHEMA)
    end)
    if not ok then h:close(); return nil, string.format("%s: %s", path, tostring(e)) end
  end
  local ok, v = pcall(s.h.row, s.h, "SELECT value FROM meta WHERE key = 'schema'")
  if not ok or not v then s.h:close(); return nil, string.format("%s: not a metasync state file", path) end
  if v.value ~= "1" and v.value ~= "2" and v.value ~= SCHEMA_VERSION then
    s.h:close()
    return nil, string.format("%s: state schema %s is newer than this metasync understands (%s)", path,
      tostring(v.value), SCHEMA_VERSION)
  end
  -- An older file is read as it is (a read-only open changes nothing), and upgraded by the
  -- first open that may write it.
  if v.value ~= SCHEMA_VERSION and not opts.readonly then
    local mok, merr = migrate(s.h, v.value)
    if not mok then
      s.h:close()
      return nil, string.format("%s: upgrading the state schema from %s: %s", path, v.value, merr)
    end
  end
  if not opts.readonly then
    local kok, kerr = pcall(digests.open, s)
    if not kok then s.h:close(); return nil, string.format("%s: %s", path, tostring(kerr)) end
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
      -- By run, through the run index: an index on the time would cost every insert.
      local n = h:run("DELETE FROM journal WHERE run IN (SELECT id FROM runs WHERE started < ?)", cutoff)
      h:run("DELETE FROM runs WHERE started < ?", cutoff)
      if n > 0 then log.info("state", "journal: %d entries older than %d days removed", n, journal_days) end
    end
  end)
  if ok then h:commit() else h:rollback(); error(err, 0) end
end

-- baseline(serial) -> {field = canonical value}. The store is far larger than memory should
-- hold at 100k certificates, so baselines are read for the certificates at hand: prefetch()
-- reads a batch in one statement (each statement outside a transaction costs a lock round
-- trip, which dominated reading one certificate at a time), and baseline() takes a
-- certificate's entry out of that cache, or reads it alone when it was not prefetched.
local EMPTY = setmetatable({}, { __newindex = function() error("read-only", 2) end })
M.EMPTY = EMPTY
local BATCH = 64
local CACHE_MAX = 8192
local PREFETCH = "SELECT serial, field, value FROM baseline WHERE serial IN (" ..
  string.rep("?", BATCH, ", ") .. ")"

function Store:baseline(serial)
  local c = self.cache and self.cache[serial]
  if c then
    self.cache[serial] = nil
    self.cached = self.cached - 1
    return c
  end
  if not self.h then return EMPTY end
  self.baselines_read = self.baselines_read + 1
  local rows = self.h:all("SELECT field, value FROM baseline WHERE serial = ?", serial)
  if #rows == 0 then return EMPTY end
  local out = {}
  for _, r in ipairs(rows) do out[r.field] = r.value end
  return out
end

-- prefetched() -> the baselines read ahead and not yet taken (serial -> field -> value; EMPTY:
-- none), for a native settle (metasync.unchanged.settle), which removes those it uses; taken(n)
-- counts those n out, as baseline() would have.
function Store:prefetched() return self.cache end
function Store:taken(n) self.cached = self.cached - n end

-- prefetch(serials): reads the baselines of these certificates, BATCH per statement.
function Store:prefetch(serials)
  if not self.h then return end
  local cache = self.cache
  if not cache or self.cached > CACHE_MAX then cache = {}; self.cache = cache; self.cached = 0 end
  local args = {}
  self.baselines_read = self.baselines_read + #serials
  for i = 1, #serials, BATCH do
    local n = 0
    for j = i, math.min(i + BATCH - 1, #serials) do
      n = n + 1
      args[n] = serials[j]
      if cache[serials[j]] == nil then self.cached = self.cached + 1 end
      cache[serials[j]] = EMPTY
    end
    for j = n + 1, BATCH do args[j] = nil end
    for s, m in pairs(self.h:group(PREFETCH, table.unpack(args, 1, BATCH))) do
      if cache[s] == EMPTY then cache[s] = m end
    end
  end
end

-- Digests of baselines (metasync.digests): set_scope(names) names the run's fields; digests()
-- reads their digests (and keeps them: in_step); touch(serial) asks for a certificate's to be
-- recomputed at the commit; in_step(serial), for a certificate whose baseline holds what both
-- sides agree on, touches it when the digests read hold none for it (one they hold was
-- computed from its rows, and any change of them recomputes it anyway).
function Store:set_scope(names) return digests.set_scope(self, names) end
function Store:digests()
  local known, key = digests.all(self)
  self.known = known
  return known, key
end
function Store:touch(serial)
  if not self.scope or self.readonly then return end
  local t = self.touched
  if not t[serial] then t[serial] = true; self.ops = self.ops + 1 end
  self:maybe_flush()
end
function Store:in_step(serial)
  local known = self.known
  if known and known[serial] == nil then self:touch(serial) end
end

-- The queue is two flat arrays, one per table, each row its columns in the order they are
-- inserted (the first run of a large inventory queues several hundred thousand): the baseline
-- (serial, field, value; value false: the row is deleted, and bdel lists those rows)
-- and the journal (run, at, direction, serial, sectigo_id, keyfactor_id, field, old, new,
-- result, detail; false for none). They go to the database as they are (h:batch), with no
-- copy, and the journal and the baseline are separate tables, so each keeps its own order and
-- the two need not interleave.
local B_COLS, J_COLS = 3, 11

function Store:maybe_flush()
  if self.ops >= FLUSH_ROWS then return self:flush() end
  local t = task.now()
  if t - self.last_flush >= self.flush_seconds then self:flush() end
end

-- agree(serial, field, value): both sides now hold value (nil or false: both hold none).
function Store:agree(serial, field, value)
  if self.readonly or not self.h then return end
  local q, n = self.bq, self.bn
  if value == nil or value == false then
    value = false
    self.bdel[#self.bdel + 1] = n // B_COLS + 1
  end
  q[n + 1], q[n + 2], q[n + 3] = serial, field, value
  self.bn, self.ops = n + B_COLS, self.ops + 1
  -- (a store with no digests and no scope has none to keep right)
  if self.scope or self.any_digests then self.touched[serial] = true end
  self:maybe_flush()
end

-- journal{direction=, serial=, sectigo_id=, keyfactor_id=, field=, old=, new=, result=, detail=}
function Store:journal(e)
  if self.readonly or not self.h then return end
  local q, n = self.jq, self.jn
  q[n + 1], q[n + 2], q[n + 3], q[n + 4] = self.run or "", now_iso(), e.direction, e.serial or false
  q[n + 5], q[n + 6] = math.tointeger(e.sectigo_id) or false, math.tointeger(e.keyfactor_id) or false
  q[n + 7], q[n + 8], q[n + 9] = e.field or false, e.old or false, e.new or false
  -- A failure reason may quote a server's answer, which may echo a credential.
  q[n + 10], q[n + 11] = log.redact(e.result or "ok"), e.detail and log.redact(e.detail) or false
  self.jn, self.ops = n + J_COLS, self.ops + 1
  self.writes = self.writes + 1
  self:maybe_flush()
end

-- flush(): commits what is queued, in one transaction. Runs without yielding, so no other
-- task adds to the queue meanwhile.
--
-- Rows go in as multi-row statements of ROWS rows (single-row ones for the rest): SQLite's
-- per-statement work (bind, step, reset) was about half the cost of a row. Within the baseline
-- a delete ends a group, so operations on one key stay in order.
local ROWS = 32
local BASE_COLS = "INSERT INTO baseline (serial, field, value) VALUES "
local BASE_TAIL = " ON CONFLICT (serial, field) DO UPDATE SET value = excluded.value"
local UPSERT = BASE_COLS .. "(?, ?, ?)" .. BASE_TAIL
local UPSERT_N = BASE_COLS .. string.rep("(?, ?, ?)", ROWS, ", ") .. BASE_TAIL
local DELETE = "DELETE FROM baseline WHERE serial = ? AND field = ?"
local JOURNAL_COLS = "INSERT INTO journal (run, at, direction, serial, sectigo_id, keyfactor_id, field, old, new, result, detail) VALUES "
local JOURNAL_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
local JOURNAL = JOURNAL_COLS .. JOURNAL_ROW
local JOURNAL_N = JOURNAL_COLS .. string.rep(JOURNAL_ROW, ROWS, ", ")

local function apply(h, bq, bn, bdel, jq, jn, store, touched)
  local row = 1 -- the next baseline row to write
  for _, d in ipairs(bdel) do
    if d > row then h:batch(UPSERT, UPSERT_N, ROWS, B_COLS, bq, (row - 1) * B_COLS + 1, d - row) end
    local at = (d - 1) * B_COLS
    h:run(DELETE, bq[at + 1], bq[at + 2])
    row = d + 1
  end
  local last = bn // B_COLS
  if last >= row then h:batch(UPSERT, UPSERT_N, ROWS, B_COLS, bq, (row - 1) * B_COLS + 1, last - row + 1) end
  if jn > 0 then h:batch(JOURNAL, JOURNAL_N, ROWS, J_COLS, jq, 1, jn // J_COLS) end
  if next(touched) then digests.commit(store, touched) end
end

function Store:flush()
  if (self.bn == 0 and self.jn == 0 and next(self.touched) == nil) or not self.h then self.last_flush = task.now(); return end
  local bq, bn, bdel, jq, jn, touched = self.bq, self.bn, self.bdel, self.jq, self.jn, self.touched
  self.bq, self.bn, self.bdel, self.jq, self.jn, self.ops = {}, 0, {}, {}, 0, 0
  self.touched = {}
  local h = self.h
  h:begin("immediate")
  local ok, err = pcall(apply, h, bq, bn, bdel, jq, jn, self, touched)
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

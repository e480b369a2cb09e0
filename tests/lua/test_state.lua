-- metasync.state: baseline and journal round trips, batched prefetch, journalDays pruning,
-- run lookup, read-only use before any run, refusing files that are not a state store, schema
-- upgrades, and the baselines' digests kept in step with every change.
local state = require("metasync.state")
local db = require("metasync.db")

local dir = os.tmpname()
os.remove(dir)
local path = dir .. "/sub/state.db"
local function cleanup() os.execute("rm -rf '" .. dir .. "'") end
-- (also when an assertion fails: the Lua state's close runs it)
local cleanup_at_close = setmetatable({}, { __gc = cleanup })

-- a read-only open before any run is an empty store, and creates nothing
local ro = assert(state.open(path, { readonly = true }))
assert(ro.empty and next(ro:baseline("A")) == nil, "empty store")
ro:close()
assert(io.open(path) == nil, "a read-only open creates nothing")

-- (No commit by the clock here: under valgrind on a loaded machine a second passed between two
-- rows, and the time-based flush committed what the next assertion expects to be queued.)
local st = assert(state.open(path, { flush_seconds = math.huge })) -- creates the directory too
st:begin_run("run1", "sctokf", 90)
st:agree("A1", "CostCenter", "CC-1")
st:agree("A1", "Env", "Production")
st:journal { direction = "sctokf", serial = "A1", sectigo_id = 5, keyfactor_id = 7, field = "CostCenter",
  old = nil, new = "CC-1", result = "ok" }
-- nothing is visible before the commit, everything after it
assert(db.open(path, { readonly = true }):row("SELECT count(*) AS n FROM baseline").n == 0, "queued, not committed")
st:flush()
local b = st:baseline("A1")
assert(b.CostCenter == "CC-1" and b.Env == "Production", "baseline round trip")
st:agree("A1", "Env", nil) -- both sides hold nothing now
st:flush()
assert(st:baseline("A1").Env == nil and st:baseline("A1").CostCenter == "CC-1", "agreeing on no value deletes")
st:agree("A1", "CostCenter", false) -- false, like nil, is no value
st:flush()
assert(st:baseline("A1").CostCenter == nil, "agreeing on false deletes too")
st:agree("A1", "CostCenter", "CC-1")
local j = st.h:all("SELECT * FROM journal")
assert(#j == 1 and j[1].run == "run1" and j[1].old == nil and j[1].new == "CC-1" and j[1].sectigo_id == 5
  and j[1].keyfactor_id == 7 and j[1].at:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$"), "journal row")

-- prefetch: more than one batch, with and without rows, then taken out of the cache once
local serials = {}
for i = 1, 150 do
  serials[i] = string.format("P%03d", i)
  if i % 3 == 0 then st:agree(serials[i], "F", "v" .. i) end
end
st:flush()
st:prefetch(serials)
-- count the statements the handle runs from here on
local reads, real = 0, st.h
st.h = setmetatable({}, { __index = function(_, k)
  local fn = real[k]
  return function(_, ...)
    if k == "all" or k == "row" or k == "rows" then reads = reads + 1 end
    return fn(real, ...)
  end
end })
for i = 1, 150 do
  local v = st:baseline(serials[i]).F
  assert(v == (i % 3 == 0 and ("v" .. i) or nil), "prefetched baseline of " .. serials[i])
end
assert(reads == 0, "prefetched baselines need no statement: " .. reads)
assert(st:baseline("P003").F == "v3" and reads == 1, "taken out once, then read alone")
st.h = real

-- One flush of many rows: multi-row statements and single rows, baseline updates, deletes and
-- re-agreements of one key in order, journal rows in order, NULLs in any column. Compared
-- with the same operations replayed one by one in Lua.
local want, jwant = {}, {}
for i = 1, 333 do
  local serial = string.format("M%02d", i % 41)
  local field = "F" .. (i % 3)
  local value = (i % 7 == 0) and nil or ("m" .. i)
  st:agree(serial, field, value)
  want[serial .. "/" .. field] = value
  if i % 2 == 0 then
    st:journal { direction = "sync", serial = serial, field = field, old = i % 4 == 0 and "o" .. i or nil, new = value,
      sectigo_id = i, keyfactor_id = i % 5 == 0 and nil or i + 1, result = "ok" }
    jwant[#jwant + 1] = { i, value }
  end
end
st:flush()
for key, value in pairs(want) do
  local serial, field = key:match("^(.-)/(.*)$")
  local row = st.h:row("SELECT value FROM baseline WHERE serial = ? AND field = ?", serial, field)
  assert((row and row.value) == value, string.format("baseline %s: %s, want %s", key, tostring(row and row.value), tostring(value)))
end
local jrows = st.h:all("SELECT sectigo_id, keyfactor_id, old, new FROM journal WHERE direction = 'sync' ORDER BY seq")
assert(#jrows == #jwant, "journal rows " .. #jrows)
for k, r in ipairs(jrows) do
  local i, value = jwant[k][1], jwant[k][2]
  assert(r.sectigo_id == i and r.new == value, "journal order at " .. k)
  assert(r.keyfactor_id == (i % 5 == 0 and nil or i + 1) and r.old == (i % 4 == 0 and "o" .. i or nil), "journal NULLs at " .. k)
end
st.h:run("DELETE FROM journal WHERE direction = 'sync'")
-- Without deletes the 32-row statements carry repeated keys: the last agreement wins.
for i = 1, 64 do st:agree("R" .. (i % 5), "F", "r" .. i) end
st:flush()
for k = 0, 4 do
  local last = 0
  for i = 1, 64 do if i % 5 == k then last = i end end
  local got = st.h:row("SELECT value FROM baseline WHERE serial = ? AND field = 'F'", "R" .. k).value
  assert(got == "r" .. last, string.format("R%d: %s, want r%d", k, tostring(got), last))
end

st:finish_run(0)
-- the journal of a run older than journalDays goes at the next run's start
st.h:run("INSERT INTO runs (id, command, started, finished, exit_code) VALUES ('old', 'sync', '2000-01-01T00:00:00Z', '2000-01-01T00:00:01Z', 0)")
st.h:run("INSERT INTO journal (run, at, direction, result) VALUES ('old', '2000-01-01T00:00:00Z', 'sctokf', 'ok')")
st:begin_run("run2", "sync", 90)
assert(st.h:row("SELECT count(*) AS n FROM journal WHERE run = 'old'").n == 0, "old journal pruned")
assert(st.h:row("SELECT count(*) AS n FROM runs WHERE id = 'old'").n == 0, "old run pruned")
assert(st.h:row("SELECT count(*) AS n FROM journal WHERE run = 'run1'").n == 1, "recent journal kept")
st:finish_run(3)
assert(st:resolve_run("last").id == "run2" and st:resolve_run("run1").command == "sctokf", "resolve_run")
local none, msg = st:resolve_run("nope")
assert(none == nil and msg:find("no run 'nope'", 1, true), msg)
assert(st:integrity() == "ok")
assert(st.h:row("PRAGMA journal_mode").journal_mode == "wal", "WAL mode")
-- small pages: a scattered baseline write dirties 1 KB, not 4 KB (see state.open)
assert(st.h:row("PRAGMA page_size").page_size == 1024, "1 KB pages on a new store")
st:close()

-- a file that is not a state store, and one from a newer metasync, are refused with a reason
local f = assert(io.open(dir .. "/junk.db", "w")); f:write("not sqlite at all, just text\n"); f:close()
local s2, err = state.open(dir .. "/junk.db")
assert(s2 == nil and err:find("junk.db", 1, true), tostring(err))
local h = assert(db.open(path))
h:run("UPDATE meta SET value = '99' WHERE key = 'schema'")
h:close()
s2, err = state.open(path)
assert(s2 == nil and err:find("newer", 1, true), tostring(err))

-- a version 1 file (its baseline also kept the agreeing run and time) is read as it is by a
-- read-only open, and upgraded to version 2 by the first open that may write, keeping every
-- baseline value and journal row
local v1 = dir .. "/v1.db"
h = assert(db.open(v1))
h:exec([[
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE runs (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, command TEXT NOT NULL, started TEXT NOT NULL,
  finished TEXT, exit_code INTEGER, reverts TEXT);
CREATE TABLE baseline (serial TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL, run TEXT NOT NULL,
  at TEXT NOT NULL, PRIMARY KEY (serial, field)) WITHOUT ROWID;
CREATE TABLE journal (seq INTEGER PRIMARY KEY, run TEXT NOT NULL, at TEXT NOT NULL, direction TEXT NOT NULL,
  serial TEXT, sectigo_id INTEGER, keyfactor_id INTEGER, field TEXT, old TEXT, new TEXT, result TEXT NOT NULL, detail TEXT);
CREATE INDEX journal_run ON journal (run, seq);
INSERT INTO meta VALUES ('schema', '1');
INSERT INTO runs (id, command, started) VALUES ('old1', 'sctokf', '2026-11-01T00:00:00Z');
INSERT INTO baseline VALUES ('B1', 'CostCenter', 'CC-9', 'old1', '2026-11-01T00:00:00Z'),
  ('B1', 'Env', 'Test', 'old1', '2026-11-01T00:00:00Z'), ('B2', 'CostCenter', 'CC-8', 'old1', '2026-11-01T00:00:00Z');
INSERT INTO journal (run, at, direction, serial, field, new, result)
  VALUES ('old1', '2026-11-01T00:00:00Z', 'sctokf', 'B1', 'CostCenter', 'CC-9', 'ok');
]])
h:close()
local function columns(file)
  local hh, cols = assert(db.open(file, { readonly = true })), {}
  for _, r in ipairs(hh:all("PRAGMA table_info(baseline)")) do cols[#cols + 1] = r.name end
  local schema = hh:row("SELECT value FROM meta WHERE key = 'schema'").value
  hh:close()
  return table.concat(cols, ","), schema
end
ro = assert(state.open(v1, { readonly = true }))
assert(ro:baseline("B1").Env == "Test", "a version 1 baseline reads")
ro:close()
local cols, schema = columns(v1)
assert(cols == "serial,field,value,run,at" and schema == "1", "a read-only open leaves version 1: " .. cols)
st = assert(state.open(v1, { flush_seconds = math.huge }))
cols, schema = columns(v1)
assert(cols == "serial,field,value" and schema == "3", "upgraded: " .. cols .. " " .. schema)
b = st:baseline("B1")
assert(b.CostCenter == "CC-9" and b.Env == "Test" and st:baseline("B2").CostCenter == "CC-8", "values kept")
assert(st.h:row("SELECT count(*) AS n FROM journal WHERE run = 'old1'").n == 1, "journal kept")
st:begin_run("new1", "sctokf", 0)
st:agree("B2", "CostCenter", "CC-7")
st:finish_run(0)
assert(st:baseline("B2").CostCenter == "CC-7", "an upgraded file takes new rows")
st:close()

-- Digests (metasync.digests). A store with a scope keeps, for every certificate whose baseline
-- changed or that it touched, the digest of its rows for the scope's fields.
local dpath = dir .. "/digests.db"
local function digest_of(store, serial)
  local r = store.h:row("SELECT value FROM digest WHERE serial = ? AND scope = ?", serial, store.scope)
  return r and r.value
end
st = assert(state.open(dpath, { flush_seconds = math.huge }))
st:begin_run("d1", "sctokf", 0)
st:set_scope({ "Owner", "CostCenter" })
st:agree("D1", "CostCenter", "CC-1"); st:agree("D1", "Owner", "o@example.com")
st:agree("D2", "Owner", "o@example.com"); st:agree("D2", "CostCenter", "CC-1") -- the same set, another order
st:agree("D3", "CostCenter", "CC-2"); st:agree("D3", "Owner", "o@example.com")
st:agree("D4", "Other", "x") -- no field of the scope: the empty set's digest
st:flush()
local all, key = st:digests()
assert(math.type(key) == "integer" and key == st.key, "the digest key")
local d1, d2, d3 = all.D1, all.D2, all.D3
assert(math.type(d1) == "integer" and d1 == d2 and d1 ~= d3 and all.D4 == 0, "digests of sets of pairs")
assert(all.A1 == nil, "a certificate the store never changed has no digest")
-- a field outside the scope changes no digest; one inside does
st:agree("D1", "Other", "y"); st:flush()
assert(digest_of(st, "D1") == d1, "a field outside the scope")
st:agree("D1", "CostCenter", "CC-2"); st:flush()
assert(digest_of(st, "D1") == d3, "D1 now holds what D3 holds")
st:agree("D1", "CostCenter", nil); st:flush()
assert(digest_of(st, "D1") ~= d3 and digest_of(st, "D1") ~= 0, "a deleted row leaves the digest")
-- touch: a certificate whose baseline the store did not change, digested at the next commit
st.h:run("DELETE FROM digest WHERE serial = 'D3'")
st:touch("D3"); st:flush()
assert(digest_of(st, "D3") == d3, "touched: digested again")
st:finish_run(0)
st:close()
-- the key is the file's: the same after reopening
st = assert(state.open(dpath, { flush_seconds = math.huge }))
assert(st.key == key, "the key is kept in the file")
-- A store without a scope (revert, sync, kftosc here) changing a baseline deletes its digests,
-- and leaves the others'.
st:begin_run("d2", "revert", 0)
st:agree("D3", "Owner", "p@example.com")
st:flush()
local left = st.h:map("SELECT serial, value FROM digest")
assert(left.D3 == nil and left.D2 == d2, "a change without a scope deletes that certificate's digest only")
st:touch("D2"); st:flush() -- (touch without a scope asks nothing)
assert(st.h:row("SELECT count(*) AS n FROM digest WHERE serial = 'D2'").n == 1, "touch without a scope")
st:finish_run(0)
st:close()
-- A run with another scope: its changes delete the first scope's digests of what they change.
st = assert(state.open(dpath, { flush_seconds = math.huge }))
st:begin_run("d3", "kftosc", 0)
st:set_scope({ "Owner" })
local s2 = st.scope
st:agree("D2", "Owner", "q@example.com")
st:flush()
local rows = st.h:all("SELECT scope, value FROM digest WHERE serial = 'D2'")
assert(#rows == 1 and rows[1].scope == s2, "only the changing run's scope is left")
st:finish_run(0)
st:close()
-- Another file has another key: the same values digest differently.
local other = assert(state.open(dir .. "/other.db", { flush_seconds = math.huge }))
other:begin_run("o1", "sctokf", 0)
other:set_scope({ "Owner", "CostCenter" })
other:agree("D2", "CostCenter", "CC-1"); other:agree("D2", "Owner", "o@example.com")
other:flush()
assert(other.key ~= key and other:digests().D2 ~= d2, "a key per file")
other:finish_run(0)
other:close()
-- A read-only open neither makes a key nor reads digests.
ro = assert(state.open(dpath, { readonly = true }))
ro:set_scope({ "Owner" })
assert(ro.key == nil and ro:digests() == nil, "read-only: no digests")
ro:close()
-- A version 2 file (no digests) is read as it is, and upgraded by the first open that may write.
h = assert(db.open(dpath))
h:exec("DROP TABLE digest; DROP TABLE digest_scope; DELETE FROM meta WHERE key = 'digest_key'; UPDATE meta SET value = '2' WHERE key = 'schema';")
h:close()
ro = assert(state.open(dpath, { readonly = true }))
assert(ro:baseline("D2").Owner == "q@example.com", "a version 2 baseline reads")
ro:close()
assert(select(2, columns(dpath)) == "2", "a read-only open leaves version 2")
st = assert(state.open(dpath, { flush_seconds = math.huge }))
assert(select(2, columns(dpath)) == "3" and math.type(st.key) == "integer", "upgraded from 2")
st:begin_run("d4", "sctokf", 0)
st:set_scope({ "Owner" })
st:agree("D2", "Owner", "r@example.com")
st:flush()
assert(st:digests().D2 and st:baseline("D2").Owner == "r@example.com", "an upgraded file keeps digests")
st:finish_run(0)
st:close()
-- A digest that is not a number settles nothing (metasync.unchanged reads only integers); a
-- key that is not one makes the file refused, naming the key.
h = assert(db.open(dpath))
h:exec("UPDATE digest SET value = 'x'; UPDATE meta SET value = 'abc' WHERE key = 'digest_key';")
h:close()
local bad, berr = state.open(dpath)
assert(not bad and berr:find(dpath, 1, true) and berr:find("digest_key: expected an integer", 1, true), tostring(berr))
-- A file of a newer schema is refused, naming both versions.
local newer = dir .. "/newer.db"
h = assert(db.open(newer))
h:exec("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('schema', '4');")
h:close()
local nst, nerr = state.open(newer)
assert(not nst and nerr:find("state schema 4 is newer than this metasync understands (3)", 1, true), tostring(nerr))
cleanup()
print("ok")

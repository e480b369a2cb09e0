-- metasync.db: open, bound parameters and types, transactions, rows() cursors and coroutines,
-- errors that never show bound values, read-only and busy handles, the statement cache.
local db = require("metasync.db")
local task = require("metasync.task")

local function fails(pattern, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error matching " .. pattern)
  assert(type(err) == "string" and err:find(pattern), tostring(err))
  return err
end

assert(db.version():match("^3%.%d+%.%d+"), db.version())

local path = os.tmpname()
local function cleanup()
  for _, suffix in ipairs({ "", "-wal", "-shm", "-journal" }) do os.remove(path .. suffix) end
end
-- (also when an assertion fails: the Lua state's close runs it)
local cleanup_at_close = setmetatable({}, { __gc = cleanup })

-- open creates the file; exec runs several statements
local h = assert(db.open(path))
assert(tostring(h):find(path, 1, true), tostring(h))
assert(h:exec([[
  CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, f REAL, s TEXT, b BLOB, x);
  CREATE TABLE u (name TEXT UNIQUE NOT NULL);
  CREATE TABLE parent (id INTEGER PRIMARY KEY);
  CREATE TABLE child (pid INTEGER REFERENCES parent(id));
]]) == true)

-- every binding type, and the Lua types coming back
local nul = "a\0b\0"
assert(h:run("INSERT INTO t (i, f, s, b, x) VALUES (?1, ?2, ?3, ?4, ?5)", 42, 1.5, nul, "\0\255", nil) == 1)
local id1 = h:last_insert_rowid()
assert(math.type(id1) == "integer" and h:changes() == 1)
h:run("INSERT INTO t (i, f, s, x) VALUES (?, ?, ?, ?)", math.maxinteger, 2.0, "", true)
h:run("INSERT INTO t (i, f, s, x) VALUES (?, ?, ?, ?)", math.mininteger, -0.25, "\u{e9}t\u{e9}", false)
local r = h:row("SELECT * FROM t WHERE id = ?", id1)
assert(r.i == 42 and math.type(r.i) == "integer")
assert(r.f == 1.5 and math.type(r.f) == "float")
assert(r.s == nul and #r.s == 4, "embedded NULs round-trip")
assert(r.b == "\0\255")
assert(r.x == nil, "NULL columns are absent")
local n = 0
for _ in pairs(r) do n = n + 1 end
assert(n == 5, "id, i, f, s, b")
local rows = h:all("SELECT i, f, s, x FROM t ORDER BY id")
assert(#rows == 3)
assert(rows[2].i == math.maxinteger and rows[2].f == 2.0 and math.type(rows[2].f) == "float")
assert(rows[2].s == "" and rows[2].x == 1, "true binds as 1")
assert(rows[3].i == math.mininteger and rows[3].s == "\u{e9}t\u{e9}" and rows[3].x == 0)
assert(h:row("SELECT x'00ff' AS v").v == "\0\255", "blobs are strings")
assert(h:row("SELECT 1 AS a WHERE 0") == nil, "no row is nil")
assert(#h:all("SELECT 1 WHERE 0") == 0)
assert(h:row("SELECT 7 AS v;  -- a trailing comment\n ;").v == 7, "a tail without statements is fine")

-- group: (key, name, value) rows gathered per key; NULL keys and names are left out, a NULL
-- value leaves its key's group without it
local g = h:group([[SELECT 'a', 'x', 1 UNION ALL SELECT 'a', 'y', 'two' UNION ALL SELECT 'b', 'x', NULL
  UNION ALL SELECT NULL, 'x', 3 UNION ALL SELECT 'c', NULL, 4 UNION ALL SELECT 5, 'z', 2.5]])
assert(g.a.x == 1 and g.a.y == "two" and next(g.b) == nil and g.c == nil and g[5].z == 2.5)
local keys = 0
for _ in pairs(g) do keys = keys + 1 end
assert(keys == 3, "a, b and 5")
assert(next(h:group("SELECT 1, 2, 3 WHERE ?1", 0)) == nil)
-- a key's rows need not be consecutive, and a key is told apart by type as well as bytes
-- (consecutive rows of one key share their group without the key being made again)
g = h:group([[SELECT 'k', 'x', 1 UNION ALL SELECT 'k', 'y', 2 UNION ALL SELECT 'm', 'x', 3
  UNION ALL SELECT 'k', 'z', 4 UNION ALL SELECT '7', 'x', 5 UNION ALL SELECT 7, 'x', 6
  UNION ALL SELECT 7, NULL, 0 UNION ALL SELECT 7, 'y', 7 UNION ALL SELECT CAST('k' AS BLOB), 'w', 8
  UNION ALL SELECT 'kk', 'x', 9 UNION ALL SELECT '', 'x', 10 UNION ALL SELECT '', 'y', 11]])
assert(g.k.x == 1 and g.k.y == 2 and g.k.z == 4 and g.k.w == 8 and g.m.x == 3 and g.kk.x == 9)
assert(g["7"].x == 5 and g["7"].y == nil and g[7].x == 6 and g[7].y == 7)
assert(g[""].x == 10 and g[""].y == 11)
fails("^db: group needs a statement of exactly three columns", h.group, h, "SELECT 1, 2")

-- map: (key, value) rows as one table; a NULL in either leaves the row out, a repeated key
-- keeps its last value
local m = h:map([[SELECT 'a', 1 UNION ALL SELECT 'b', NULL UNION ALL SELECT NULL, 3 UNION ALL SELECT 'a', 2
  UNION ALL SELECT 7, 'seven' UNION ALL SELECT 'c', -9223372036854775807 - 1]])
assert(m.a == 2 and m.b == nil and m[7] == "seven" and m.c == math.mininteger, "map")
keys = 0
for _ in pairs(m) do keys = keys + 1 end
assert(keys == 3, "a, 7 and c")
assert(next(h:map("SELECT 1, 2 WHERE ?1", 0)) == nil)
fails("^db: map needs a statement of exactly two columns", h.map, h, "SELECT 1, 2, 3")

-- pairs_digest: the same set of pairs in any order is the same number; a different value, a
-- name moved between name and value, or another key is another; NULLs and, with a list of
-- names, unlisted names add nothing; no rows is 0
local function dg(sql, ...) return h:row("SELECT pairs_digest(k, n, v" .. (select("#", ...) > 0 and ", ?1" or "")
  .. ") AS d FROM (" .. sql .. ")", ...).d end
local ab = dg("SELECT 5 AS k, 'A' AS n, '1' AS v UNION ALL SELECT 5, 'B', '2'")
assert(math.type(ab) == "integer" and ab ~= 0)
assert(dg("SELECT 5 AS k, 'B' AS n, '2' AS v UNION ALL SELECT 5, 'A', '1'") == ab, "order")
assert(dg("SELECT 5 AS k, 'A' AS n, '1' AS v UNION ALL SELECT 5, 'B', '3'") ~= ab, "a value")
assert(dg("SELECT 5 AS k, 'A1' AS n, '' AS v UNION ALL SELECT 5, 'B', '2'") ~= ab, "the split of name and value")
assert(dg("SELECT 6 AS k, 'A' AS n, '1' AS v UNION ALL SELECT 6, 'B', '2'") ~= ab, "the key")
assert(dg("SELECT 5 AS k, 'A' AS n, '1' AS v UNION ALL SELECT 5, 'B', '2' UNION ALL SELECT 5, NULL, 'x'"
  .. " UNION ALL SELECT 5, 'C', NULL") == ab, "NULLs")
assert(dg("SELECT 5 AS k, 'A' AS n, '1' AS v UNION ALL SELECT 5, 'B', '2' UNION ALL SELECT 5, 'C', '3'",
  "A\0B\0") == ab, "an unlisted name")
assert(dg("SELECT 5 AS k, 'A' AS n, '1' AS v UNION ALL SELECT 5, 'B', '2'", "A\0") ~= ab, "a listed name only")
assert(dg("SELECT 5 AS k, 'A' AS n, '1' AS v WHERE 0") == 0, "no rows")

-- batch: rows straight from a flat table, groups through the multi-row statement and the rest
-- one by one, false and nil as NULL, from any starting slot; a bad value or a statement of the
-- wrong width is an error that names no value
h:exec("CREATE TABLE q (a INTEGER, b TEXT, c)")
local one, many = "INSERT INTO q (a, b, c) VALUES (?, ?, ?)", "INSERT INTO q (a, b, c) VALUES (?, ?, ?), (?, ?, ?)"
local flat = { "skipped" }
for i = 1, 7 do
  flat[#flat + 1], flat[#flat + 2], flat[#flat + 3] = i, i % 2 == 0 and ("s" .. i) or false, i == 3 and 1.5 or true
end
assert(h:batch(one, many, 2, 3, flat, 2, 7) == 7)
local got = h:all("SELECT a, b, c FROM q ORDER BY rowid")
assert(#got == 7, "every row: " .. #got)
for i, r in ipairs(got) do
  assert(r.a == i and r.b == (i % 2 == 0 and ("s" .. i) or nil) and r.c == (i == 3 and 1.5 or 1), "row " .. i)
end
assert(h:batch(one, many, 2, 3, flat, 2, 0) == 0)
fails("parameter count is not rows x width", h.batch, h, one, many, 3, 3, flat, 2, 3)
local err = fails("bad value at %[3%]: table", h.batch, h, one, many, 2, 3, { 1, "secret-value", {} }, 1, 1)
assert(not err:find("secret-value", 1, true), "no bound value in the message")
fails("^db: batch needs", h.batch, h, one, many, 0, 3, flat, 2, 1)
fails("^db: batch needs", h.batch, h, one, many, 2, 1, {}, math.maxinteger, 2)
h:begin()
fails("bad value at %[23%]: nil", h.batch, h, one, many, 2, 3, flat, 2, 8) -- one row past the end
h:rollback()
assert(h:row("SELECT count(*) AS n FROM q").n == 7, "a failed batch adds nothing after its error")

-- values are data, never SQL
local evil = "x'); DROP TABLE t;--"
h:run("INSERT INTO u (name) VALUES (?1)", evil)
assert(h:row("SELECT name FROM u").name == evil)
assert(h:row("SELECT count(*) AS n FROM t").n == 3, "t still there")

-- run counts changed rows, and 0 for statements that change none
assert(h:run("UPDATE t SET x = ?1 WHERE i > ?2", "big", 0) == 2)
assert(h:run("UPDATE t SET x = x WHERE 0") == 0)
assert(h:run("SELECT * FROM t") == 0, "not the stale count of the last UPDATE")
assert(h:run("CREATE TABLE scratch (a)") == 0)
assert(h:run("INSERT INTO scratch VALUES (1), (2), (3) RETURNING a") == 3, "RETURNING runs to the end")

-- foreign keys are on
h:run("INSERT INTO parent (id) VALUES (1)")
h:run("INSERT INTO child (pid) VALUES (1)")
fails("^db: FOREIGN KEY constraint failed", h.run, h, "INSERT INTO child (pid) VALUES (?1)", 99)

-- transactions
assert(h:in_transaction() == false)
h:begin()
assert(h:in_transaction() == true)
h:run("INSERT INTO scratch VALUES (?1)", 100)
h:rollback()
assert(h:in_transaction() == false)
assert(h:row("SELECT count(*) AS n FROM scratch WHERE a = 100").n == 0, "rollback discards")
h:begin("immediate")
h:run("INSERT INTO scratch VALUES (?1)", 200)
h:commit()
assert(h:row("SELECT count(*) AS n FROM scratch WHERE a = 200").n == 1, "commit keeps")
fails("bad argument", h.begin, h, "sometimes")
fails("^db: cannot commit %- no transaction is active", h.commit, h)

-- rows(): every row, then the statement is finalized
local seen = {}
for row in h:rows("SELECT a FROM scratch WHERE a >= ?1 ORDER BY a", 2) do seen[#seen + 1] = row.a end
assert(table.concat(seen, ",") == "2,3,200", table.concat(seen, ","))
for _ in h:rows("SELECT a FROM scratch WHERE 0") do error("no rows expected") end
-- A cursor steps after rows() returned: a string bound to it must outlive the caller's last
-- reference (the other calls read their strings in place, for speed; a cursor must not, and
-- the ASan build sees a read of freed bytes). Each step reads ?1 again.
do
  local function param(k) return string.rep("p", 60) .. k end
  local got = {}
  for row in h:rows("WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 4) SELECT n, ?1 AS v FROM c", param(7)) do
    collectgarbage("collect")
    local churn = {}
    for i = 1, 200 do churn[i] = string.rep("q", 60) .. i end
    got[#got + 1] = row.v
  end
  assert(#got == 4, #got)
  for i = 1, 4 do assert(got[i] == param(7), "step " .. i .. " read " .. tostring(got[i])) end
end
-- a statement still active blocks a schema change: what the next checks rely on
do
  local iter, state, _, cursor <close> = h:rows("SELECT a FROM scratch")
  assert(iter(state).a == 1)
  fails("^db: database table is locked", h.exec, h, "DROP TABLE scratch")
end
-- leaving early finalizes too: the schema change below fails (table locked) otherwise
for row in h:rows("SELECT a FROM scratch ORDER BY a") do
  if row.a == 2 then break end
end
h:exec("DROP TABLE scratch")
h:exec("CREATE TABLE scratch (a)")
-- so does an error in the loop body
local ok = pcall(function()
  for _ in h:rows("SELECT * FROM t") do error("body failed") end
end)
assert(not ok)
h:exec("ALTER TABLE t ADD COLUMN extra")
h:exec("DROP TABLE scratch")

-- rows() in coroutines, interleaved with run() on the same handle and with each other
h:exec("CREATE TABLE src (v INTEGER); CREATE TABLE dst (who TEXT, v INTEGER)")
for v = 1, 10 do h:run("INSERT INTO src (v) VALUES (?1)", v) end
local function copier(who)
  return coroutine.wrap(function()
    for row in h:rows("SELECT v FROM src ORDER BY v") do
      h:run("INSERT INTO dst (who, v) VALUES (?1, ?2)", who, row.v)
      assert(h:row("SELECT count(*) AS n FROM src").n == 10)
      coroutine.yield(true)
    end
    return false
  end)
end
local a, b = copier("a"), copier("b")
local more_a, more_b = true, true
while more_a or more_b do
  if more_a then more_a = a() end
  if more_b then more_b = b() end
end
assert(h:row("SELECT count(*) AS n, sum(v) AS s FROM dst WHERE who = 'a'").s == 55)
assert(h:row("SELECT count(*) AS n FROM dst WHERE who = 'b'").n == 10)
-- the same with scheduler tasks
local ts = {}
for k = 1, 3 do
  ts[k] = task.spawn(function()
    local sum = 0
    for row in h:rows("SELECT v FROM src WHERE v > ?1", 5) do
      sum = sum + row.v
      h:run("UPDATE dst SET v = v WHERE who = ?1", "a")
      task.yield()
    end
    return sum
  end)
end
for k = 1, 3 do
  local okk, sum = ts[k]:join()
  assert(okk and sum == 40, tostring(sum))
end
h:exec("DROP TABLE src; DROP TABLE dst")

-- errors: "db: " first, the SQL shown, bound values never
local secret = "s3cr3t-value"
local err = fails("^db: ", h.run, h, "INSERT INTO u (name) VALUES (?1)", evil)
assert(err:find("UNIQUE constraint failed", 1, true) and err:find("(INSERT INTO u (name) VALUES (?1))", 1, true), err)
assert(not err:find(evil, 1, true))
err = fails("^db: .*syntax error", h.row, h, "SELEC name FROM u WHERE name = ?1", secret)
assert(not err:find(secret, 1, true), err)
err = fails("^db: no such table: nope", h.all, h, "SELECT * FROM nope WHERE a = ?1", secret)
assert(not err:find(secret, 1, true), err)
err = fails("^db: expected 2 parameters, got 1", h.run, h, "INSERT INTO t (i, s) VALUES (?1, ?2)", secret)
assert(not err:find(secret, 1, true), err)
fails("^db: expected 1 parameter, got 2", h.row, h, "SELECT ?1 AS v", 1, 2)
fails("^db: expected 1 parameter, got 0", h.row, h, "SELECT ?1 AS v")
fails("^db: bad parameter #2: table", h.run, h, "INSERT INTO t (i, s) VALUES (?1, ?2)", 1, {})
fails("^db: bad parameter #1: function", h.rows, h, "SELECT ?1", print)
fails("^db: expected 1 parameter, got 0", h.rows, h, "SELECT ?1")
fails("^db: one statement per call", h.run, h, "INSERT INTO u (name) VALUES ('p'); DELETE FROM u")
fails("^db: one statement per call", h.row, h, "SELECT 1; SELECT 2")
assert(h:row("SELECT count(*) AS n FROM u WHERE name = 'p'").n == 0, "nothing of it ran")
fails("^db: no statement", h.run, h, "  -- only a comment")
fails("NUL", h.run, h, "SELECT 1\0; DROP TABLE t")
fails("^db: near", h.exec, h, "CREATE TABLE ok1 (a); CREATE TABLE (")
fails("bad argument", h.run, h, 42 and nil)
-- a long SQL text is cut, on one line
err = fails("^db: no such table", h.row, h, "SELECT\n\t*   FROM missing_table WHERE " .. ("a = 1 AND "):rep(20) .. "1")
assert(err:find("(SELECT * FROM missing_table WHERE a = 1 AND", 1, true) and err:find("...)", 1, true), err)
assert(not err:find("\n"), err)
-- a failed statement is reset: the schema can change right after
h:exec("DROP TABLE IF EXISTS ok1")

-- the statement cache: more distinct statements than it holds, then the first ones again
for k = 1, 40 do assert(h:row("SELECT ?1 + " .. k .. " AS v", 1).v == k + 1) end
for k = 1, 40 do assert(h:row("SELECT ?1 + " .. k .. " AS v", 2).v == k + 2) end
for k = 1, 5 do assert(h:all("SELECT ?1 * " .. k .. " AS v", 3)[1].v == 3 * k) end
h:exec("DROP TABLE child")

-- a finalizer using the handle in the middle of a call gets an error, not the caller's statement
h:exec("CREATE TABLE big (a TEXT)")
h:begin()
for k = 1, 300 do h:run("INSERT INTO big (a) VALUES (?1)", ("x"):rep(100) .. k) end
h:commit()
local in_use = 0
local function arm()
  setmetatable({}, { __gc = function()
    local okn, e = pcall(h.row, h, "SELECT a FROM big WHERE rowid = 1")
    if not okn and e:find("^db: handle in use") then in_use = in_use + 1 end
    if in_use < 10 then arm() end
  end })
end
collectgarbage("incremental", 10, 400)
arm()
for _ = 1, 200 do
  if in_use >= 10 then break end
  local list = h:all("SELECT a FROM big ORDER BY rowid")
  assert(#list == 300 and list[300].a == ("x"):rep(100) .. 300)
  local count = 0
  for row in h:rows("SELECT a FROM big ORDER BY rowid") do
    count = count + 1
    assert(row.a == ("x"):rep(100) .. count)
  end
  assert(count == 300)
end
collectgarbage("incremental", 200, 100)
collectgarbage()
assert(in_use > 0, "no finalizer ran during a call: the loop above proved nothing")
h:exec("DROP TABLE big")

-- a statement failing after some rows: raised as "db: ...", and the statement is done with
local seen2 = {}
local boom = "SELECT CASE WHEN id > ?1 THEN abs(-9223372036854775807 - 1) ELSE id END AS v FROM t ORDER BY id"
fails("^db: integer overflow", function()
  for row in h:rows(boom, id1) do seen2[#seen2 + 1] = row.v end
end)
assert(#seen2 == 1 and seen2[1] == id1)
fails("^db: integer overflow", h.all, h, boom, id1)
h:exec("CREATE TABLE ok2 (a); DROP TABLE ok2")

-- cursors and handles left to the collector, in either state
do
  local iter, state = assert(db.open(path)):rows("SELECT id FROM t ORDER BY id")
  collectgarbage()
  assert(iter(state).id == id1, "a cursor keeps its handle")
  iter, state = nil, nil
  local iter2, state2 = assert(db.open(path)):rows("SELECT id FROM t")
  assert(iter2(state2))
  iter2, state2 = nil, nil
  collectgarbage()
  collectgarbage()
end

-- closing: idempotent; every method raises afterwards; an open cursor notices
local cur_iter, cur_state = h:rows("SELECT id FROM t ORDER BY id")
assert(cur_iter(cur_state).id == id1)
h:close()
h:close()
fails("^db: database is closed", h.run, h, "SELECT 1")
fails("^db: database is closed", h.row, h, "SELECT 1")
fails("^db: database is closed", h.exec, h, "SELECT 1")
fails("^db: database is closed", h.rows, h, "SELECT 1")
fails("^db: database is closed", h.begin, h)
fails("^db: database is closed", h.in_transaction, h)
fails("^db: database is closed", cur_iter, cur_state)
assert(cur_iter(cur_state) == nil, "a finished cursor stays finished")
assert(tostring(h):find("closed"))
do
  local scoped <close> = assert(db.open(path))
  assert(scoped:row("SELECT count(*) AS n FROM t").n == 3)
end

-- open failures are nil, message
local none, oerr = db.open(path .. ".missing/x.db")
assert(none == nil and oerr:find("^cannot open " .. path:gsub("%p", "%%%0") .. "%.missing/x%.db: "), oerr)
none, oerr = db.open(path .. ".absent", { readonly = true })
assert(none == nil and oerr:find("^cannot open "), oerr)
local junk = path .. ".junk"
local f = assert(io.open(junk, "wb"))
f:write(("not a database "):rep(100))
f:close()
none, oerr = db.open(junk)
assert(none == nil and oerr:find("file is not a database", 1, true), oerr)
os.remove(junk)
fails("bad argument #2", db.open, path, { busy_timeout_ms = "50" })
fails("bad argument #2", db.open, path, { busy_timeout_ms = -1 })
fails("bad argument #2", db.open, path, 5)
fails("bad argument #2", db.open, path, { readonly = "no" })

-- read-only handles refuse writes
local ro = assert(db.open(path, { readonly = true }))
assert(ro:row("SELECT count(*) AS n FROM t").n == 3)
fails("^db: attempt to write a readonly database", ro.run, ro, "INSERT INTO u (name) VALUES (?1)", "z")
ro:close()

-- two handles in WAL mode: a second writer times out while the first holds the write lock
local w1 = assert(db.open(path))
assert(w1:row("PRAGMA journal_mode=WAL").journal_mode == "wal")
local w2 = assert(db.open(path, { busy_timeout_ms = 50 }))
w1:begin("immediate")
w1:run("INSERT INTO u (name) VALUES (?1)", "first")
err = fails("^db: database is locked", w2.run, w2, "INSERT INTO u (name) VALUES (?1)", secret)
assert(not err:find(secret, 1, true), err)
fails("^db: database is locked", w2.begin, w2, "immediate")
assert(w2:row("SELECT count(*) AS n FROM u WHERE name = 'first'").n == 0, "readers see the last commit")
w1:commit()
assert(w2:run("INSERT INTO u (name) VALUES (?1)", "second") == 1)
assert(w1:row("SELECT count(*) AS n FROM u").n == 3)
w1:close()
w2:close()

collectgarbage()
cleanup()
print("ok")

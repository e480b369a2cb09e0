-- metasync.planfile: SHA-256 against the FIPS vectors, the config hash (changes with any of the
-- three files or the command), dry-run escaping, a write/read round trip of every entry kind,
-- FILE.tmp renamed only on commit, the header check refusing another configuration, and lines
-- that are no entry refused with their line number.
local planfile = require("metasync.planfile")
local json = require("metasync.json")

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "/config'"))
local function cleanup() os.execute("rm -rf '" .. dir .. "'") end
-- (also when an assertion fails: the Lua state's close runs it)
local cleanup_at_close = setmetatable({}, { __gc = cleanup })
local function write(p, text) local f = assert(io.open(p, "w")); f:write(text); f:close() end
local function exists(p) local f = io.open(p, "r"); if f then f:close() end; return f ~= nil end

-- SHA-256 (FIPS 180-4 examples, and a message that spans the padding boundary)
assert(planfile.sha256("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "empty")
assert(planfile.sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "abc")
assert(planfile.sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
  == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", "two blocks")
assert(planfile.sha256(string.rep("a", 1000)) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3",
  "a thousand a")

-- escaping: one line whatever the value holds; a backslash is doubled so the text is unambiguous
assert(planfile.escape("plain") == "plain")
assert(planfile.escape("a\nb\r\tc") == "a\\nb\\r\\tc", planfile.escape("a\nb\r\tc"))
assert(planfile.escape("C:\\new") == "C:\\\\new", planfile.escape("C:\\new"))
assert(planfile.escape("bell\7 nul\0 del\127") == "bell\\x07 nul\\x00 del\\x7F", planfile.escape("bell\7 nul\0 del\127"))
assert(planfile.escape("caf\195\169") == "caf\195\169", "UTF-8 is left as it is")

-- the config hash: the same files give the same hash; any file or the command changes it; a
-- missing optional file differs from an empty one
local cfg = dir .. "/config"
write(cfg .. "/config.json", '{"Config": {}}')
write(cfg .. "/fields.json", '{"CustomFields": []}')
local h1 = assert(planfile.config_hash(cfg, "sctokf"))
assert(h1:match("^%x+$") and #h1 == 64, h1)
assert(planfile.config_hash(cfg, "sctokf") == h1, "stable")
assert(planfile.config_hash(cfg, "kftosc") ~= h1, "the command is part of it")
write(cfg .. "/bannedcharacters.json", "")
local h2 = planfile.config_hash(cfg, "sctokf")
assert(h2 ~= h1, "an empty bannedcharacters.json is not a missing one")
write(cfg .. "/bannedcharacters.json", "[]")
assert(planfile.config_hash(cfg, "sctokf") ~= h2, "bannedcharacters.json is part of it")
local h3 = planfile.config_hash(cfg, "sctokf")
write(cfg .. "/fields.json", '{"CustomFields": [ ]}')
assert(planfile.config_hash(cfg, "sctokf") ~= h3, "fields.json is part of it")
write(cfg .. "/fields.json", '{"CustomFields": []}')
assert(planfile.config_hash(cfg, "sctokf") == h3, "back to the same bytes, back to the same hash")

-- write: nothing at PATH until commit, FILE.tmp meanwhile
local path = dir .. "/plan.json"
local w = assert(planfile.create(path, { command = "sync", version = "9.9", config_sha256 = h3 }))
w:definition("create", { Name = "SectigoID", DataType = 2, Description = "SectigoID" })
w:definition("update", { Id = 1, Name = "CostCenter", DataType = 1, Description = "new" },
  { Id = 1, Name = "CostCenter", DataType = 1, Description = "old" })
w:target { target = "keyfactor", direction = "sctokf", serial = "0A112233", keyfactor_id = 1, sectigo_id = 5001,
  label = "www.acme.test", changes = {
    { field = "Notes", key = "Notes", kind = "text", old = nil, new = "line 1\nline \"2\"\\", baseline = "line 1\nline \"2\"\\" },
    { field = "RenewalDate", key = "RenewalDate", kind = "date", old = "2027-03-18", new = "2027-10-13", baseline = "2027-10-13" } } }
w:target { target = "sectigo", direction = "kftosc", serial = "0A112233", keyfactor_id = 1, sectigo_id = 5001,
  changes = { { field = "Cost Center", key = "CostCenter", kind = "text", old = "CC-1", new = "", baseline = nil } } }
assert(not exists(path) and exists(path .. ".tmp"), "written to FILE.tmp first")
assert(w.targets == 2 and w.changes == 3 and w.definitions == 2, "counts")
assert(w:commit())
assert(exists(path) and not exists(path .. ".tmp"), "renamed into place")
-- JSON lines: every line one object
local n = 0
for line in io.lines(path) do n = n + 1; assert(type(json.decode(line)) == "table", line) end
assert(n == 5, "header, 2 definitions, 2 certificates: " .. n)

-- read back: header, then the entries as written
local rd = assert(planfile.open(path))
assert(rd.header.command == "sync" and rd.header.version == "9.9" and rd.header.config_sha256 == h3
  and rd.header.created:match("^%d%d%d%d%-%d%d%-%d%dT"), "header")
local e = rd:next()
assert(e.definition == "create" and e.def.Name == "SectigoID" and e.def.DataType == 2, "create definition")
e = rd:next()
assert(e.definition == "update" and e.def.Description == "new" and e.old.Description == "old", "update definition")
e = rd:next()
assert(e.target == "keyfactor" and e.serial == "0A112233" and e.keyfactor_id == 1 and e.sectigo_id == 5001
  and e.label == "www.acme.test", "certificate entry")
assert(e.changes[1].old == json.null and e.changes[1].new == "line 1\nline \"2\"\\", "a multi-line value survives")
assert(e.changes[2].kind == "date" and e.changes[2].old == "2027-03-18" and e.changes[2].new == "2027-10-13", "a date change")
e = rd:next()
assert(e.target == "sectigo" and e.label == json.null and e.changes[1].new == "" and e.changes[1].baseline == json.null
  and e.changes[1].key == "CostCenter" and e.changes[1].field == "Cost Center", "a clear, by its two names")
assert(rd:next() == nil, "end")
rd:close()

-- the header check: accepted under the same files and command, refused under others, in one line
assert(planfile.check({ command = "sctokf", config_sha256 = h3, created = "x" }, cfg), "same configuration")
local ok, why = planfile.check({ command = "sync", config_sha256 = h3, created = "x" }, cfg)
assert(not ok and why:find("another configuration", 1, true), "another command: " .. tostring(why))
write(cfg .. "/config.json", '{"Config": {"conflictPolicy": "sectigo"}}')
ok, why = planfile.check({ command = "sctokf", config_sha256 = h3, created = "2026-01-02T03:04:05Z" }, cfg)
assert(not ok and why:find("another configuration", 1, true) and why:find("2026-01-02T03:04:05Z", 1, true)
  and not why:find("\n"), tostring(why))
write(cfg .. "/config.json", '{"Config": {}}')

-- files that are no plan, or a plan of another format, are refused at the header
write(path, '{"run":"x"}\n')
local r2, err = planfile.open(path)
assert(not r2 and err:find("is not a metasync plan", 1, true), err)
write(path, '{"metasync_plan":2,"command":"sctokf","config_sha256":"x"}\n')
r2, err = planfile.open(path)
assert(not r2 and err:find("format 2", 1, true), err)
assert(not planfile.open(dir .. "/missing.json"), "a missing plan")

-- a line that is no entry stops the reading with its line number
local good = '{"target":"keyfactor","direction":"sctokf","serial":"AA","keyfactor_id":3,"sectigo_id":4,"changes":' ..
  '[{"field":"F","key":"F","kind":"text","old":null,"new":"v","baseline":"v"}]}'
local bad = {
  { '{"target":"keyfactor","direction":"kftosc","serial":"AA","keyfactor_id":3,"changes":[]}', "direction does not match" },
  { '{"target":"sectigo","direction":"kftosc","serial":"AA","keyfactor_id":3,"changes":[{}]}', "no id of the target" },
  { good:gsub('"kind":"text"', '"kind":"colour"'), "change 1" },
  { good:gsub('"new":"v"', '"new":5'), "change 1" },
  { '{"target":"keyfactor",', "malformed JSON" },
  { '{"definition":"delete","def":{"Name":"X"}}', "neither create nor update" },
}
for _, b in ipairs(bad) do
  write(path, '{"metasync_plan":1,"command":"sctokf","config_sha256":"x"}\n' .. good .. "\n" .. b[1] .. "\n")
  rd = assert(planfile.open(path))
  assert(rd:next().serial == "AA", "the good line reads")
  local rok, rerr = pcall(rd.next, rd)
  assert(not rok and rerr:find("line 3: ", 1, true) and rerr:find(b[2], 1, true), b[1] .. " -> " .. tostring(rerr))
  rd:close()
end

-- a writer dropped without commit leaves nothing behind (a dry run that failed)
w = assert(planfile.create(dir .. "/dropped.json", { command = "sctokf", config_sha256 = h1 }))
w:discard()
assert(not exists(dir .. "/dropped.json") and not exists(dir .. "/dropped.json.tmp"), "discarded")
do
  local _ = assert(planfile.create(dir .. "/lost.json", { command = "sctokf", config_sha256 = h1 }))
end
collectgarbage(); collectgarbage()
assert(not exists(dir .. "/lost.json.tmp"), "collected without commit: FILE.tmp removed")

cleanup()
print("ok")

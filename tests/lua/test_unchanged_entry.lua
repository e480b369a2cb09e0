-- metasync.unchanged reading a bulk index entry by slot settles exactly the fields it settles
-- reading the details-shaped doc made of that entry (bulk.doc), over random report rows,
-- fields of every kind and case, memos and baselines: pair.sctokf then needs no doc for a
-- pair that needs nothing. unchanged.settle, over a batch, settles exactly the pairs it
-- leaves no field of, and unchanged.settle_digest only such pairs, by the digest of their
-- baseline. Then pair.sctokf over entries: the doc is made only for pairs with
-- a field left to the Lua.
local unchanged = require("metasync.unchanged")
local fields = require("metasync.fields")
local bulk = require("metasync.bulk")
local json = require("metasync.json")

math.randomseed(tonumber(os.getenv("SEED") or "") or 11)
local R = math.random
local NOVALUE = {}

local NAMES = { "Cost Center", "cost center", "Owner", "OWNER", "Env", "Budget" }
local PATHS = { "id", "sslId", "status", "commonName", "certType.id", "CERTTYPE.ID", "expires", "keySize", "issuer",
  "certificateDetails.issuer" }
local VALUES = { "a", "A", "Production", "12", "0012", "", " ", "x@example.com", "03/04/2026", 7, 7.0, 12.5, true }
local function value() return VALUES[R(#VALUES)] end

local function row()
  local cfs = json.array({})
  for _ = 1, R(0, 4) do cfs[#cfs + 1] = { name = NAMES[R(#NAMES)], value = value() } end
  return { id = R(1, 5), status = value(), commonName = value(), typeId = R(3) == 1 and value() or R(1, 9),
    expires = R(2) == 1 and "2027-01-0" .. R(9) or value(), publicKeySize = R(2) == 1 and "2048" or value(),
    issuer = value(), customFields = cfs }
end

local checked, settled, left, direct_reads, settled_batches = 0, 0, 0, 0, 0
local digest_settled, digest_missed = 0, 0
-- the state store's digests are SQL's pairs_digest (engine/digest.h), which settle_digest matches
local sql = assert(require("metasync.db").open(":memory:"))
sql:exec("CREATE TABLE t (name TEXT PRIMARY KEY, value TEXT)")
local KEY = 0x5eed1234abcd
for _ = 1, 3000 do
  local list, seen = {}, {}
  for _ = 1, R(1, 5) do
    local manual = R(2) == 1
    local f = { kind = manual and "manual" or "custom", sectigo = manual and PATHS[R(#PATHS)] or NAMES[R(#NAMES)],
      datatype = R(1, 7), options = R(3) == 1 and { "Production", "a" } or nil }
    f.keyfactor = "K" .. #list
    if not seen[f.sectigo:lower()] then seen[f.sectigo:lower()] = true; list[#list + 1] = f end
  end
  local custom, manual = {}, {}
  for _, f in ipairs(list) do
    if f.kind == "custom" then custom[#custom + 1] = f.sectigo else manual[#manual + 1] = f.sectigo end
  end
  local slots, missing = bulk.plan(custom, manual)
  if #missing == 0 then
    local e = bulk.entry(row(), slots, R(1, 5))
    local doc = bulk.doc(e, slots)
    local stock = R(4) > 1
    local pd = fields.lookup_plan(list, NOVALUE, stock)
    local pe = fields.lookup_plan(list, NOVALUE, stock)
    for i, f in ipairs(list) do
      local slot = bulk.slot_of(slots, f)
      pe[i][10] = slot
      -- what pair.sctokf reads straight from the entry is what the doc would have given
      if slot and bulk.direct(slots, f, slot) and e[slot + 1] ~= false then
        local want = fields.source_value(f, doc)
        assert(rawequal(e[slot + 1], want), string.format("field %s (%s): entry %s, doc %s", f.sectigo, f.kind,
          tostring(e[slot + 1]), tostring(want)))
        direct_reads = direct_reads + 1
      end
    end
    -- Keyfactor's side: the same values often, so that fields settle
    local md, base, memo = {}, {}, {}
    for _, f in ipairs(list) do
      local v = fields.source_value(f, doc)
      if R(4) > 1 and v ~= nil then md[f.keyfactor] = tostring(v) elseif R(2) == 1 then md[f.keyfactor] = value() end
      base[f.keyfactor] = R(4) > 1 and md[f.keyfactor] or nil
      if R(3) == 1 and v ~= nil then
        memo[f] = { [v] = { [md[f.keyfactor] or NOVALUE] = R(2) == 1 and { same = md[f.keyfactor] or "z" } or false } }
      end
    end
    local b = R(5) == 1 and false or base
    local kf = { Id = 1, Metadata = md }
    local want = unchanged.pending(pd, doc, kf, memo, b)
    local got = unchanged.pending(pe, e, kf, memo, b, true)
    local ws, gs = want and table.concat(want, ",") or "", got and table.concat(got, ",") or ""
    assert(ws == gs, string.format("from the entry %s, from the doc %s", gs, ws))
    -- settle, for a batch holding this pair between two it must not touch (no entry; no
    -- baseline read ahead), settles it exactly when pending() leaves no field
    if b then
      local other = { Id = 2, Metadata = md }
      local batch = { other, "K0", 1, false, kf, "K1", 1, e, other, "K2", 1, e }
      local bases = { K0 = base, K1 = b }
      local n = unchanged.settle(pe, batch, 1, 12, memo, bases)
      assert(batch[1] == other and batch[9] == other and bases.K0 == base, "settle touched a pair it cannot settle")
      if got == nil then
        assert(n == 1 and batch[5] == false and bases.K1 == nil, "settle left a pair pending() settles")
        settled_batches = settled_batches + 1
      else
        assert(n == 0 and batch[5] == kf and bases.K1 == b, "settle settled a pair pending() leaves")
      end
      -- settle_digest, given the digest of this baseline's rows (as the state store computes
      -- it, in SQL), settles only pairs that settle() settles, and settles them when the
      -- baseline holds nothing but the values the pair agrees on
      local names = {}
      for _, f in ipairs(list) do names[#names + 1] = f.keyfactor end
      sql:run("DELETE FROM t")
      local nrows = 0
      for k, v in pairs(base) do sql:run("INSERT INTO t VALUES (?, ?)", k, v); nrows = nrows + 1 end
      local d = sql:row("SELECT pairs_digest(?, name, value, ?) AS d FROM t", KEY, table.concat(names, "\0") .. "\0").d
      local batch2 = { other, "K0", 1, false, kf, "K1", 1, e, other, "K2", 1, e }
      local digests = { K0 = d, K1 = d }
      local n2 = unchanged.settle_digest(pe, batch2, 1, 12, memo, digests, KEY)
      assert(batch2[1] == other and batch2[9] == other and digests.K0 == d, "settle_digest touched a pair it cannot settle")
      if n2 == 1 then
        assert(got == nil and batch2[5] == false and digests.K1 == nil, "settle_digest settled a pair pending() leaves")
        if nrows > 0 then digest_settled = digest_settled + 1 end
        -- a digest read back as something else than an integer settles nothing
        local batch4 = { other, "K0", 1, false, kf, "K1", 1, e, other, "K2", 1, e }
        assert(unchanged.settle_digest(pe, batch4, 1, 12, memo, { K1 = tostring(d) }, KEY) == 0, "a text digest")
        -- another file's key: the same values are not the same digest
        if nrows > 0 then
          local batch3 = { other, "K0", 1, false, kf, "K1", 1, e, other, "K2", 1, e }
          assert(unchanged.settle_digest(pe, batch3, 1, 12, memo, { K1 = d }, KEY + 1) == 0, "a digest under another key")
        end
      else
        assert(n2 == 0 and batch2[5] == kf and digests.K1 == d, "settle_digest: " .. n2)
        -- when settle() settles it, the baseline holds a value for a field that has none now
        if got == nil then digest_missed = digest_missed + 1 end
      end
    end
    checked = checked + 1
    left = left + (want and #want or 0)
    settled = settled + #list - (want and #want or 0)
  end
end
assert(checked > 2000 and settled > 2000 and left > 1000, string.format("%d checked, %d settled, %d left", checked, settled, left))
assert(direct_reads > 1000, "direct reads checked: " .. direct_reads)
assert(settled_batches > 200, "pairs settled in a batch: " .. settled_batches)
assert(digest_settled > 100 and digest_missed > 10,
  string.format("settled by digest with a baseline %d, not settled by digest %d", digest_settled, digest_missed))
sql:close()
-- slots beyond the batch are nothing; a range that would wrap is refused
assert(unchanged.settle(fields.lookup_plan({}, NOVALUE, true), {}, 1, 8, {}, {}) == 0)
assert(not pcall(unchanged.settle, {}, {}, 0, 4, {}, {}))
assert(not pcall(unchanged.settle, {}, {}, 1, math.maxinteger, {}, {}))

-- A field no slot holds is left to the Lua.
local F = { kind = "custom", sectigo = "Owner", keyfactor = "Owner", datatype = 1 }
local pe = fields.lookup_plan({ F }, NOVALUE, true)
assert(table.concat(unchanged.pending(pe, { 1, "x" }, { Metadata = { Owner = "x" } }, {}, false, true), ",") == "1")
pe[1][10] = 1
assert(unchanged.pending(pe, { 1, "x" }, { Metadata = { Owner = "x" } }, {}, false, true) == nil)

-- pair.sctokf over bulk entries: a pair in step is settled without its doc; a pair with an
-- edited value gets its doc and is written.
local pair = require("metasync.pair")
local report = require("metasync.report")
local policy = require("metasync.stock").load("sctokf")
local list = {
  { kind = "manual", sectigo = "id", keyfactor = "SectigoID", datatype = 2 },
  { kind = "custom", sectigo = "Owner", keyfactor = "Owner", datatype = 7 },
}
local slots = bulk.plan({ "Owner" }, { "id" })
local docs = 0
local index = { slots = slots, need_details = false }
local mt = { __index = function(p, k)
  if k == "doc" then docs = docs + 1; return bulk.doc(rawget(p, "entry"), slots) end
end }
local writes = {}
local ctx = { fields = list, dry_run = false, report = report.new("sctokf"), direction = "sctokf", index = index,
  cfg = {}, sectigo_date_format = "MM/dd/yyyy", date_format = "M/d/yyyy h:mm:ss tt",
  state = { baseline = function() return { SectigoID = "4711", Owner = "o@example.com" } end, agree = function() end,
    journal = function() end },
  keyfactor = { update_metadata = function(_, id, payload) writes[#writes + 1] = { id, payload }; return true end } }
local function run(owner)
  local e = bulk.entry({ id = 4711, customFields = json.array { { name = "Owner", value = "o@example.com" } } }, slots, 4711)
  local p = setmetatable({ kf = { Id = 9, Metadata = { SectigoID = "4711", Owner = owner } }, serial = "AB",
    ssl_id = 4711, entry = e }, mt)
  pair.sctokf(ctx, policy, p, function(fn) fn() end)
end
run("o@example.com")
assert(docs == 0 and #writes == 0 and ctx.report.unchanged == 1, "settled from the entry, no doc made")
run("edited@example.com")
assert(docs == 0 and #writes == 1 and writes[1][2].Owner == "o@example.com" and writes[1][2].SectigoID == nil,
  "the edited field is written from the entry's slot, still without a doc")
-- A field whose slot is not read directly (a path spelt in another case: the doc's lookup
-- follows it case-insensitively) is read through the doc, made once for the pair.
list[3] = { kind = "manual", sectigo = "SSLID", keyfactor = "Other", datatype = 2 }
slots = bulk.plan({ "Owner" }, { "id", "SSLID" })
index.slots = slots
ctx.entry_plan, ctx.kf_kinds = nil, nil -- (the field list changed in place)
writes = {}
run("edited@example.com")
assert(docs == 1 and #writes == 1 and writes[1][2].Owner == "o@example.com" and tostring(writes[1][2].Other) == "4711",
  string.format("the doc is made for the field its slot cannot answer (docs %d, writes %d)", docs, #writes))
print("ok")

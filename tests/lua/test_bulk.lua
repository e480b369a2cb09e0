-- metasync.bulk over a fake report: the date windows cover the whole range once (adjacent,
-- both ends inclusive, never overlapping), rows are de-duplicated by id and filtered by
-- status and profile on the client, a report that ignores the dates is refused, an answer too
-- large is split, and an entry turns back into a details-shaped document.
local bulk = require("metasync.bulk")
local json = require("metasync.json")
require("metasync.log").set_level("fatal")

local function day(s) local y, m, d = s:match("^(%d+)-(%d+)-(%d+)$")
  return os.time { year = tonumber(y), month = tonumber(m), day = tonumber(d), hour = 12 } // 86400 end
local today = os.time() // 86400

-- 3000 certificates issued over the last 1500 days, one every half day
local certs = {}
for i = 1, 3000 do
  certs[i] = { id = i, issued = today - (i // 2), status = i % 7 == 0 and "Revoked" or "Issued",
    typeId = i % 5 == 0 and 1025 or 1018, serialNumber = string.format("%08X", i),
    customFields = { { name = "Cost Center", value = "CC-" .. i } }, publicKeySize = "2048", issuer = "CN=CA" }
end

local function fake(o)
  local windows = {}
  local client = {}
  function client.report(_, req, keys)
    local from, to = day(req.from), day(req.to)
    windows[#windows + 1] = { from, to }
    assert(req.certificateDateAttribute == "5" and req.serialNumberFormat == "HEXWithLeadingZeros")
    assert(type(keys) == "function", "the answer is read by bulk's own reader")
    if o.too_large and to - from > 40 then return nil, "Sectigo POST ... -> HTTP 400: -1 result too large", false end
    local rows = {}
    for _, c in ipairs(certs) do
      if o.ignore_dates or (c.issued >= from and c.issued <= to) then rows[#rows + 1] = c end
    end
    if o.dup and rows[1] then rows[#rows + 1] = rows[1] end
    local doc, jerr = keys(json.encode({ reports = json.array(rows) }))
    assert(doc, jerr)
    return doc.reports
  end
  return { sectigo = client }, windows
end

local slots = assert(bulk.plan({ "Cost Center" }, { "certType.id", "keySize" }))
local function run(o, filters)
  local ctx, windows = fake(o)
  local got = {}
  local map = {}
  local ok, err, unavailable = bulk.build(ctx, filters or { { status = "Issued" } }, slots, map, function(key, e)
    assert(not got[key] and not map[key], "serial handed twice: " .. key)
    got[key] = e
  end)
  for k, e in pairs(map) do assert(not got[k], "serial handed twice: " .. k); got[k] = e end
  return ok, err, unavailable, got, windows
end

local ok, err, _, got, windows = run({ dup = true })
assert(ok, tostring(err))
local n = 0
for _ in pairs(got) do n = n + 1 end
local issued = 0
for _, c in ipairs(certs) do if c.status == "Issued" then issued = issued + 1 end end
assert(n == issued, "every issued certificate once: " .. n .. " of " .. issued)
-- windows: adjacent and disjoint, from today + 1 back to the floor
table.sort(windows, function(a, b) return a[1] > b[1] end)
assert(windows[1][2] == today + 1, "the first window ends tomorrow")
for i = 2, #windows do
  assert(windows[i][2] == windows[i - 1][1] - 1, "window " .. i .. " is adjacent to the one before")
  assert(windows[i][1] <= windows[i][2])
end
assert(#windows < 120, "windows sized from the density: " .. #windows)

-- an entry back as a document, the same paths and forms as details
local e = got[string.format("%X", 2)]
local d = bulk.doc(e, slots)
assert(d.id == 2 and d.sslId == 2 and d.certType.id == 1018 and d.keySize == 2048, "doc paths")
assert(d.customFields[1].name == "Cost Center" and d.customFields[1].value == "CC-2")

-- docs share their {name, value} pairs, but at most bulk.SHARED values a slot: a field whose
-- values never repeat must not keep a pair per certificate for the whole run
local ss = bulk.plan({ "Ticket" }, {})
for i = 1, bulk.SHARED + 500 do
  local d1, d2 = bulk.doc({ i, "T-" .. i }, ss), bulk.doc({ i, "T-" .. i }, ss)
  assert(d1.customFields[1].value == "T-" .. i and d2.customFields[1].value == "T-" .. i)
  if i <= 10 then assert(d1.customFields[1] == d2.customFields[1], "a repeated value shares its pair") end
end
local kept = 0
for _ in pairs(ss[1].shared) do kept = kept + 1 end
assert(kept == bulk.SHARED, "pairs kept for one slot: " .. kept)

-- the profile filter runs on the client (the report has none)
ok, err, _, got = run({}, { { status = "Issued", ssl_type_id = 1025 } })
for _, x in pairs(got) do assert(x[1] % 5 == 0, "only profile 1025") end

-- a report that ignores the window: refused as unavailable (auto falls back to details)
local unavailable
ok, err, unavailable = run({ ignore_dates = true })
assert(not ok and unavailable and err:find("ignores the date window", 1, true), tostring(err))

-- an answer too large for a wide window: the window is split until it fits
ok, err, _, got = run({ too_large = true })
assert(ok, tostring(err))
n = 0
for _ in pairs(got) do n = n + 1 end
assert(n == issued, "split windows still give everything: " .. n)
print("ok")

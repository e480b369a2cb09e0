-- Bulk reads through Sectigo's report (POST /api/report/v1/ssl-certificates): the rows carry
-- custom fields and most attributes of many certificates at once, which saves one details GET
-- per certificate. The report has no paging, so the inventory is covered by non-overlapping
-- windows of issuance dates (both ends inclusive), several in flight, each sized from the row
-- density seen so far so that one answer stays within a few MB.
--
-- A row is kept compactly: the sslId and the values of the slots a run needs (custom fields
-- by name, details paths a row also carries), in one flat list. doc() turns an entry back into
-- a details-shaped table for the policy hooks, so whichever path produced the values, the
-- hooks see the same thing.
local log = require("metasync.log")
local task = require("metasync.task")
local serial = require("metasync.serial")
local fields = require("metasync.fields")
local json = require("metasync.json")
local sectigo_id = require("metasync.sectigo").id

local M = {}

-- Rows per window aimed at: about 1 KB a row, so about a MB an answer. Each answer in flight
-- is held twice (libcurl's buffer, then the Lua string json.rows reads) while the index grows
-- around it, and the heap keeps those holes: 2000 rows a window cost 15-20 MB more peak RSS at
-- 200k certificates than 1000 (bench/scale.sh -n 200000 -l 0 -b on), for no CPU saved.
M.TARGET_ROWS = 1000
M.MAX_DAYS, M.FIRST_DAYS, M.IN_FLIGHT = 366, 7, 8
M.YEARS_BACK = 40

local function mmddyyyy(v)
  if type(v) ~= "string" then return v end
  local y, m, d = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)")
  if y then return string.format("%s/%s/%s", m, d, y) end
  return v
end

local function integer(v)
  if type(v) == "string" then v = tonumber(v) end
  return type(v) == "number" and math.tointeger(v) or v
end

local function colons(v)
  if type(v) ~= "string" or v:find(":", 1, true) or #v % 2 == 1 then return v end
  return (v:upper():gsub("(%x%x)", "%1:"):gsub(":$", ""))
end

-- Details paths (lower case) a row carries under another name or form: path -> {canonical
-- details path, row key, conversion, the conversion's name for json.rows}. Dates come back in
-- the details' own default form (MM/dd/yyyy), so a text field shows the same either way.
M.PATHS = {}
local function path(p, key, conv, cname) M.PATHS[p:lower()] = { p, key, conv, cname } end
path("id", "id"); path("sslId", "id"); path("status", "status"); path("commonName", "commonName")
path("certType.id", "typeId"); path("certType.name", "type"); path("certificateDetails.issuer", "issuer")
path("keyType", "publicKeyType"); path("keyAlgorithm", "publicKeyAlg"); path("keySize", "publicKeySize", integer, "int")
path("orgId", "orgId"); path("orderNumber", "orderNumber"); path("backendCertId", "backendCertId")
path("requestedVia", "requestedVia"); path("term", "term"); path("requester", "requester")
path("signatureAlg", "signatureAlg"); path("comments", "comments"); path("externalRequester", "externalRequester")
path("serialNumber", "serialNumber", colons, "pairs")
for _, d in ipairs({ "requested", "approved", "declined", "issued", "expires", "revoked", "replaced" }) do
  path(d, d, mmddyyyy, "mdy")
end

-- plan(custom_names, manual_paths) -> slots, the paths no row carries (a list, maybe empty).
-- slots: { {kind="custom", name=} | {kind="path", path=, key=, conv=, segs=} ... }
function M.plan(custom_names, manual_paths)
  local slots, missing = {}, {}
  for _, n in ipairs(custom_names) do slots[#slots + 1] = { kind = "custom", name = n, lname = n:lower() } end
  for _, p in ipairs(manual_paths) do
    local m = M.PATHS[tostring(p):lower()]
    if m then
      local segs = {}
      for seg in m[1]:gmatch("[^%.]+") do segs[#segs + 1] = seg end
      slots[#slots + 1] = { kind = "path", path = m[1], key = m[2], conv = m[3], cname = m[4], segs = segs }
    else
      missing[#missing + 1] = tostring(p)
    end
  end
  return slots, missing
end

-- slot_of(slots, field) -> the index of the slot that holds the field's value as the field
-- reads it from doc(): a custom field's exact name, a manual field's details path; nil if none.
function M.slot_of(slots, f)
  local want
  if f.kind == "manual" then
    local m = M.PATHS[tostring(f.sectigo):lower()]
    want = m and m[1]
  else
    want = f.sectigo
  end
  for i, s in ipairs(slots) do
    if (s.kind == "custom" and s.name == want) or (s.kind == "path" and f.kind == "manual" and s.path == want) then return i end
  end
end

-- direct(slots, f, i) -> true when slot i's value, whenever it is not false, is exactly what
-- fields.source_value reads for field f from doc(): a custom field's slot carries its exact
-- name (source_value tries the exact name first); a manual field's, when the field names the
-- canonical path itself (doc() builds the canonical path; another spelling is left to the
-- doc's own lookup, which matches segments case-insensitively). A false slot is read through
-- the doc, whose lookup may go on to a name in another case.
function M.direct(slots, f, i)
  local s = slots[i]
  if not s then return false end
  if s.kind == "custom" then return f.kind ~= "manual" and s.name == f.sectigo end
  return f.kind == "manual" and s.path == f.sectigo
end

-- keys(slots) -> the row keys to decode
function M.keys(slots)
  local set, out = { id = true, typeId = true, status = true, serialNumber = true, customFields = true, commonName = true }, {}
  for _, s in ipairs(slots) do if s.key then set[s.key] = true end end
  for k in pairs(set) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- entry(row, slots) -> {sslId, v1, ..., vn}; a slot without a value holds false.
local function entry(row, slots, id)
  local e = { id }
  local by_name
  for i, s in ipairs(slots) do
    local v
    if s.kind == "custom" then
      if not by_name then
        by_name = {}
        local cfs = row.customFields
        if type(cfs) == "table" then
          for _, cf in ipairs(cfs) do
            if type(cf) == "table" and type(cf.name) == "string" then by_name[cf.name:lower()] = cf.value end
          end
        end
      end
      v = by_name[s.lname]
    else
      v = row[s.key]
      if s.conv then v = s.conv(v) end
    end
    if v == nil then v = false end
    e[i + 1] = v
  end
  return e
end

M.entry = entry

-- doc(e, slots) -> a details-shaped table holding what the entry carries. The {name, value}
-- pairs are shared between certificates with the same value (a doc is read, never changed),
-- which saves most of a doc's allocations. At most SHARED values a slot: a field whose values
-- do not repeat (a ticket number, a note) would otherwise keep a pair for every certificate
-- of the run (at 200k certificates that was most of kftosc's growth in memory).
local SHARED = 4096
M.SHARED = SHARED
function M.doc(e, slots)
  local cfs = {}
  local d = { id = e[1], sslId = e[1], customFields = cfs }
  for i, s in ipairs(slots) do
    local v = e[i + 1]
    if v ~= false then
      if s.kind == "custom" then
        local shared = s.shared
        if not shared then shared = {}; s.shared, s.nshared = shared, 0 end
        local cf = shared[v]
        if not cf then
          cf = { name = s.name, value = v }
          if type(v) ~= "table" and s.nshared < SHARED then shared[v], s.nshared = cf, s.nshared + 1 end
        end
        cfs[#cfs + 1] = cf
      else
        local cur = d
        local segs = s.segs
        for j = 1, #segs - 1 do
          cur[segs[j]] = cur[segs[j]] or {}
          cur = cur[segs[j]]
        end
        cur[segs[#segs]] = v
      end
    end
  end
  return d
end

local function ymd(day) return os.date("!%Y-%m-%d", day * 86400) end

-- selection(filters) -> certificateStatus, status set (lower case) or nil, type set or nil.
-- The policy's list filters, said in the report's terms: one status code when they agree,
-- and the rest checked on each row (the report has no profile filter).
local CODES = { issued = "2", revoked = "3", expired = "4", requested = "1" }
local function selection(filters)
  local statuses, types, any_status, any_type = {}, {}, false, false
  for _, f in ipairs(filters) do
    if f.status then statuses[tostring(f.status):lower()] = true else any_status = true end
    if f.ssl_type_id then types[math.tointeger(f.ssl_type_id) or f.ssl_type_id] = true else any_type = true end
  end
  if any_status then statuses = nil end
  if any_type then types = nil end
  local code = "0"
  if statuses then
    local only
    for s in pairs(statuses) do
      if only == nil then only = s elseif only ~= s then only = false end
    end
    code = only and CODES[only] or "0"
  end
  return code, statuses, types
end

-- rows_spec(slots, statuses, types, map, seen, other) -> the json.rows spec that builds the
-- entries of entry() straight from an answer's text: the rows it cannot settle exactly go to
-- other(text), which decodes them and takes the Lua path.
local function rows_spec(slots, statuses, types, map, seen, other)
  local match = {}
  if statuses then match[#match + 1] = { name = "status", set = statuses, lower = true } end
  if types then match[#match + 1] = { name = "typeId", set = types } end
  local out = {}
  for i, s in ipairs(slots) do
    if s.kind == "custom" then out[i] = { list = s.lname }
    else out[i] = { key = s.key, conv = s.cname } end
  end
  return { at = "reports", id = "id", key = "serialNumber", match = match, list = "customFields",
    list_name = "name", list_value = "value", slots = out, map = map, seen = seen, other = other }
end

-- build(ctx, filters, slots, map, on_row, on_bad) -> true, entries put into map | nil, message,
-- unavailable.
-- Puts map[serial] = entry for each row the filters select, once per certificate id, when map
-- holds no entry for that serial yet; calls on_row(serial, entry) for a selected row whose
-- serial map has already (or that needs the Lua's reading: see json.rows), and
-- on_bad(serial|nil, label, reason) for a selected row that names a certificate but cannot be
-- used (an id that is no id, a serial that is no serial, unreadable customFields).
function M.build(ctx, filters, slots, map, on_row, on_bad)
  local code, statuses, types = selection(filters)
  local keys = M.keys(slots)
  local seen, bad, rows_total = {}, 0, 0
  local ignored = false -- a window that gave back only rows seen before
  on_bad = on_bad or function() end
  local function selected(row)
    local st = type(row.status) == "string" and row.status:lower() or nil
    return (not statuses or (st and statuses[st])) and (not types or types[math.tointeger(row.typeId) or -1])
  end
  -- one(row, id): a selected row with a usable id
  local function one(row, id)
    local key, problem = serial.parse(row.serialNumber)
    if problem then return on_bad(nil, "Sectigo sslId " .. id, "Sectigo report: serialNumber is " .. problem) end
    if not key then return end
    problem = fields.check_custom_fields(row.customFields)
    if problem then return on_bad(key, key, string.format("Sectigo report (sslId %d): %s", id, problem)) end
    on_row(key, entry(row, slots, id))
  end
  -- take_row(row) -> 1 for a certificate not seen before, else 0
  local function take_row(row)
    local id = type(row) == "table" and sectigo_id(row.id)
    if not id then
      bad = bad + 1
      local key = type(row) == "table" and selected(row) and serial.parse(row.serialNumber)
      if key then on_bad(key, key, "Sectigo report: id is " .. fields.describe(row.id) .. ", not a certificate id") end
      return 0
    end
    if seen[id] then return 0 end
    seen[id] = true
    if selected(row) then one(row, id) end
    return 1
  end
  -- The rows json.rows hands back, taken the Lua way; odd_fresh counts the new ones of the
  -- answer being read (json.rows runs to its end without yielding, so one counter will do).
  local added, odd_fresh = 0, 0
  local spec = rows_spec(slots, statuses, types, map, seen, function(text)
    odd_fresh = odd_fresh + take_row(json.decode(text, { select = keys }))
  end)
  -- window(n, fresh, first) -> n: a window's rows counted; windows never overlap, so a later
  -- window holding only known rows means the report ignores the dates: reading on would fetch
  -- the whole inventory once per window.
  local function window(n, fresh, first)
    rows_total = rows_total + fresh
    if not first and n > 0 and fresh == 0 then ignored = true end
    return n
  end
  local function take(rows, first)
    local fresh = 0
    for _, row in ipairs(rows) do fresh = fresh + take_row(row) end
    return window(#rows, fresh, first)
  end
  -- request(from, to, first) -> the window's row count | nil, message, unavailable. The answer
  -- is read by json.rows as it arrives (an answer of another shape is decoded and taken row by
  -- row, which reports what is wrong with it).
  local function request(from, to, first)
    local counted
    local function read(body)
      odd_fresh = 0
      local n, fresh, kept = json.rows(body, spec)
      if n then
        added = added + kept
        counted = window(n, fresh + odd_fresh, first)
        return { reports = {} }
      end
      return json.decode(body, { select = keys, at = "reports" })
    end
    local rows, err, unavailable = ctx.sectigo:report({ from = ymd(from), to = ymd(to), certificateDateAttribute = "5",
      certificateStatus = code, serialNumberFormat = "HEXWithLeadingZeros" }, read)
    if not rows then return nil, err, unavailable end
    return counted or take(rows, first)
  end
  local today = os.time() // 86400
  local floor = today - M.YEARS_BACK * 366
  local cursor, len = today + 1, M.FIRST_DAYS
  -- The first window decides whether the report is there at all.
  local first = cursor - len + 1
  local n, err, unavailable = request(first, cursor, true)
  if not n then return nil, err, unavailable end
  local function adapt(n, days)
    local density = math.max(n, 1) / days
    len = math.max(1, math.min(M.MAX_DAYS, math.floor(M.TARGET_ROWS / density)))
  end
  adapt(n, cursor - first + 1)
  cursor = first - 1
  local failure
  local slots_sem = task.semaphore(M.IN_FLIGHT)
  local running = {}
  -- fetch(from, to): one window; an answer too large (400/413) is split in two.
  local function fetch(from, to)
    local r, e = request(from, to)
    if r then
      adapt(r, to - from + 1)
      return
    end
    if to > from and e and (e:find("HTTP 413", 1, true) or e:find("HTTP 400", 1, true)) then
      local mid = (from + to) // 2
      log.debug("sectigo", "report window %s..%s refused (%s); splitting it", ymd(from), ymd(to), e)
      fetch(from, mid)
      fetch(mid + 1, to)
      return
    end
    failure = failure or e
  end
  while cursor >= floor and not failure and not ignored do
    slots_sem:acquire()
    local to = cursor
    local from = math.max(floor, cursor - len + 1)
    cursor = from - 1
    running[#running + 1] = task.spawn(function()
      local ok, e = pcall(fetch, from, to)
      if not ok then failure = failure or tostring(e) end
      slots_sem:release()
    end)
  end
  for _, t in ipairs(running) do t:join() end
  if failure then return nil, failure, false end
  if ignored then
    return nil, "Sectigo POST /api/report/v1/ssl-certificates: the report ignores the date window (from/to)", true
  end
  if bad > 0 then log.warn("sectigo", "%d report rows without a usable id were skipped", bad) end
  log.info("sectigo", "report: %d certificates in %s..%s", rows_total, ymd(floor), ymd(today + 1))
  return true, added
end

return M

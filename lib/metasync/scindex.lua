-- Stage 4 of a run: the Sectigo index, normalised serial -> what matching and writing need.
-- From the list pages it holds only the sslId (an integer per certificate); from the bulk
-- report (sectigoBulkReads) an entry also carries the mapped values (metasync.bulk). Nothing
-- else of a listing is kept, so the index costs a few hundred bytes per certificate at most.
local log = require("metasync.log")
local json = require("metasync.json")
local serial = require("metasync.serial")
local bulk = require("metasync.bulk")
local fields = require("metasync.fields")
local sectigo_id = require("metasync.sectigo").id

local M = {}
local Index = {}
Index.__index = Index

local fatal = require("metasync.setup").fatal

-- get(key) -> sslId, details-shaped doc (bulk only) | nil
function Index:get(key)
  local id, e = self:lookup(key)
  if e then return id, self:doc(e) end
  return id
end

-- lookup(key) -> sslId, the compact bulk entry (bulk only: {sslId, slot values...}, see
-- metasync.bulk) | nil. The doc is made from the entry only when something needs it: a pair
-- that needs nothing is settled from the entry (metasync.pair), which spares most of a no-op
-- run's tables.
function Index:lookup(key)
  local e = self.map[key]
  if e == nil then return nil end
  if type(e) == "number" then return e end
  return e[1], e
end

-- match_map() -> the map lookup() reads (key -> sslId or entry) and the broken set, for the
-- listing's native match (metasync.match.page), which reads them as lookup() does.
function Index:match_map() return self.map, self.broken end

-- doc(entry) -> the details-shaped doc of an entry
function Index:doc(e) return bulk.doc(e, self.slots) end

local function add(ix, key, value)
  if ix.map[key] ~= nil then
    ix.dups = ix.dups + 1
    log.warn("sync", "Sectigo serial %s appears more than once; the first is used", key)
    return
  end
  ix.map[key] = value
  ix.size = ix.size + 1
end

-- broken(ctx, ix, key, label, reason): a Sectigo record that names a certificate but cannot be
-- used (sslId "abc", serialNumber 12.5, customFields a string) fails that certificate, once,
-- here (the run goes on, and ends with exit 2); its Keyfactor counterpart, when listed, is
-- then counted as matched, neither unmatched nor failed a second time (see kfstream).
local function broken(ctx, ix, key, label, reason)
  ix.bad = ix.bad + 1
  if key then ix.broken[key] = true end
  ctx.report:fail(label, reason)
end

local function from_listing(ctx, ix, filters)
  for _, filter in ipairs(filters) do
    local ok, err = pcall(function()
      for c in ctx.sectigo:certificates(filter) do
        local raw = c.sslId
        if (raw == nil or raw == json.null) and c.id ~= nil then raw = c.id end
        local id = sectigo_id(raw)
        local key, problem = serial.parse(c.serialNumber)
        if problem then
          broken(ctx, ix, nil, id and ("Sectigo sslId " .. id) or "Sectigo list item",
            "Sectigo list: serialNumber is " .. problem)
        elseif not key then
          ix.skipped = ix.skipped + 1 -- not issued yet: nothing to match on
        elseif not id then
          broken(ctx, ix, key, key, "Sectigo list: sslId is " .. fields.describe(raw) .. ", not a certificate id")
        else
          add(ix, key, id)
        end
      end
    end)
    if not ok then fatal("listing Sectigo certificates failed: %s", tostring(err):match("^[^\n]*")) end
  end
end

-- bulk_slots(ctx) -> bulk slots, and the mapped paths no row carries (details are then still
-- needed for each matched certificate)
local function bulk_slots(ctx)
  local custom, manual = {}, {}
  if ctx.direction ~= "sctokf" then
    -- The merged list sent back needs every active custom field's value.
    for name, def in pairs(fields.by_name(ctx.sectigo_fields)) do
      if fields.active(def) then custom[#custom + 1] = def.name or name end
    end
    table.sort(custom)
    if ctx.direction == "sync" then
      for _, f in ipairs(ctx.fields) do
        if f.kind == "manual" then manual[#manual + 1] = f.sectigo end
      end
    end
  else
    for _, f in ipairs(ctx.fields) do
      if f.kind == "custom" and f.sectigo then custom[#custom + 1] = f.sectigo
      elseif f.kind == "manual" then manual[#manual + 1] = f.sectigo end
    end
  end
  return bulk.plan(custom, manual)
end

-- build(ctx, policy) -> index. A failed listing (or an unusable report under
-- sectigoBulkReads "on") is fatal: this is still before the first write.
function M.build(ctx, policy)
  local ix = setmetatable({ map = {}, size = 0, skipped = 0, dups = 0, bad = 0, bulk = false, broken = {} }, Index)
  local filters = policy.sectigo_filters(ctx)
  local mode = ctx.cfg.sectigoBulkReads or "off"
  if mode ~= "off" then
    local slots, missing = bulk_slots(ctx)
    ix.slots = slots
    -- Malformed rows are held until the report is known to be usable: after a fallback to
    -- the listing, the listing reports them.
    local bad_rows = {}
    -- (on success the second value is the count of entries json.rows put into the map itself)
    local ok, res, unavailable = bulk.build(ctx, filters, slots, ix.map, function(key, e) add(ix, key, e) end,
      function(key, label, reason) bad_rows[#bad_rows + 1] = { key, label, reason } end)
    local err = not ok and res or nil
    if ok then
      ix.size = ix.size + res
      for _, b in ipairs(bad_rows) do broken(ctx, ix, b[1], b[2], b[3]) end
      ix.bulk, ix.need_details = true, #missing > 0
      if ix.need_details then
        log.info("sync", "bulk reads: details path(s) %s are not in report rows; details are fetched for each matched certificate",
          table.concat(missing, ", "))
      end
    elseif mode == "on" or not unavailable then
      fatal("Sectigo bulk report failed (sectigoBulkReads is %s): %s", mode, tostring(err))
    else
      log.warn("sync", "Sectigo bulk report is not available (%s); falling back to the list and details", tostring(err))
      ix.map, ix.size, ix.dups, ix.slots = {}, 0, 0, nil
    end
  end
  if not ix.bulk then from_listing(ctx, ix, filters) end
  -- A bulk index is most of the run's live data (a table of values per certificate) and lives
  -- as long as the run, beside a stream of short-lived per-certificate tables: the generational
  -- collector leaves the old objects alone in its minor collections, and a major collection
  -- once the heap has grown by half keeps the peak down. Measured with bench/scale.sh at 100k,
  -- zero latency, bulk on, against the incremental collector at pause 150: first sctokf 325 ->
  -- 263 us of CPU per matched certificate, peak 99 -> 95 MB, the no-op within noise. Without
  -- bulk reads the index is small and generational mode cost 6% more (20k, 50 ms latency), so
  -- the default collector stays. (Packing the entries into strings saved as much memory as
  -- the tuned collector but cost twice the CPU.)
  if ix.bulk then collectgarbage("generational", 20, 50) end
  log.info("sync", "Sectigo index: %d certificates by serial (%d without a serial%s)%s", ix.size, ix.skipped,
    ix.bad > 0 and string.format(", %d malformed", ix.bad) or "", ix.bulk and ", from the bulk report" or "")
  return ix
end

return M

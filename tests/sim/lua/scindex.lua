-- Indexes over the Sectigo inventory, built lazily and kept on the world (w.sectigo.ix), so that
-- list pages and report windows never scan every certificate per request. Nothing a client can
-- write changes what they index (list filters and report dates are on fields no endpoint
-- changes); a new world (reset, --data) starts without them.
local U = require("util")
local N = require("counters")

local SI = {}

local MAX_LISTS = 64
local DAY = 4294967296 -- date index keys are day * 2^32 + id

local function ix(w)
  local s = w.sectigo
  local x = s.ix
  if not x then
    x = { lists = {}, nlists = 0, dates = {}, status = nil, serial = nil, cn = nil }
    s.ix = x
  end
  return x
end

-- name -> array of certificates (id order), built on first use with key(c) (nil: not indexed).
local function group(certs, key)
  N.add("certificates_scanned", #certs)
  local t = {}
  for _, c in ipairs(certs) do
    local k = key(c)
    if k ~= nil then
      local l = t[k]
      if not l then l = {}; t[k] = l end
      l[#l + 1] = c
    end
  end
  return t
end

local EMPTY = {}

-- Certificates matching the list filters f = {typeId=, orgId=, status=, serial= (normalised),
-- cn= (lowercase)}, in id order. Serial and common name use their own index; combinations of
-- the other filters are cached per distinct combination.
function SI.list(w, f)
  local s, x = w.sectigo, ix(w)
  local base
  if f.serial then
    if f.serial == "" then return EMPTY end
    x.serial = x.serial or group(s.certs, function(c)
      local n = U.norm_serial(c.serial)
      return n ~= "" and n or nil
    end)
    base = x.serial[f.serial] or EMPTY
  elseif f.cn then
    x.cn = x.cn or group(s.certs, function(c) return c.commonName:lower() end)
    base = x.cn[f.cn] or EMPTY
  end
  local cn_too = f.serial and f.cn
  if not (f.typeId or f.orgId or f.status or cn_too) then return base or s.certs end
  -- A serial or name narrows to a few certificates: filter those, uncached. Otherwise the
  -- combination of type, org and status is cached.
  local key
  if not base then
    key = string.format("%s|%s|%s", f.typeId or "", f.orgId or "", f.status or "")
    local hit = x.lists[key]
    if hit then return hit end
  end
  local out = {}
  N.add("certificates_scanned", #(base or s.certs))
  if key then N.add("sectigo_lists_built") end
  for _, c in ipairs(base or s.certs) do
    if (not f.typeId or c.typeId == f.typeId) and (not f.orgId or c.orgId == f.orgId)
        and (not f.status or c.status == f.status) and (not cn_too or c.commonName:lower() == f.cn) then
      out[#out + 1] = c
    end
  end
  if key then
    if x.nlists >= MAX_LISTS then x.lists, x.nlists = {}, 0 end
    x.lists[key] = out
    x.nlists = x.nlists + 1
  end
  return out
end

-- The sorted keys (day * 2^32 + id) of every certificate that has date attr ("issued", ...).
local function date_keys(w, attr)
  local x = ix(w)
  local keys = x.dates[attr]
  if keys then return keys end
  keys = {}
  N.add("sectigo_date_indexes")
  N.add("certificates_scanned", #w.sectigo.certs)
  for _, c in ipairs(w.sectigo.certs) do
    local d = c[attr]
    if d then keys[#keys + 1] = d * DAY + c.id end
  end
  table.sort(keys)
  x.dates[attr] = keys
  return keys
end

-- First index i in sorted keys with keys[i] >= v (#keys + 1 when none).
local function lower_bound(keys, v)
  local lo, hi = 1, #keys + 1
  while lo < hi do
    local mid = (lo + hi) // 2
    if keys[mid] < v then lo = mid + 1 else hi = mid end
  end
  return lo
end

-- Certificates whose date attr falls in the days [from, to] (either bound may be nil), in id
-- order: two binary searches in the attribute's index, then only the window is touched.
function SI.window(w, attr, from, to)
  local keys = date_keys(w, attr)
  local lo = from and lower_bound(keys, from * DAY) or 1
  local hi = to and lower_bound(keys, (to + 1) * DAY) - 1 or #keys
  local ids = {}
  N.add("certificates_scanned", math.max(0, hi - lo + 1))
  for i = lo, hi do ids[#ids + 1] = keys[i] % DAY end
  table.sort(ids)
  local by_id, out = w.sectigo.by_id, {}
  for i, id in ipairs(ids) do out[i] = by_id[id] end
  return out
end

-- Certificates whose status is in the set (status -> true), in id order.
function SI.with_status(w, set)
  local x = ix(w)
  x.status = x.status or group(w.sectigo.certs, function(c) return c.status end)
  local lists, n = {}, 0
  for st in pairs(set) do
    local l = x.status[st]
    if l then lists[#lists + 1] = l; n = n + #l end
  end
  if #lists == 1 then return lists[1] end
  if #lists == 0 then return EMPTY end
  local ids = {}
  for _, l in ipairs(lists) do for _, c in ipairs(l) do ids[#ids + 1] = c.id end end
  table.sort(ids)
  local by_id, out = w.sectigo.by_id, {}
  for i, id in ipairs(ids) do out[i] = by_id[id] end
  return out
end

return SI

-- Keyfactor GET /Certificates: the filtered and sorted list per distinct query, cached together
-- with what it depends on, and the items' JSON.
-- A cached list stays valid until something it depends on changes:
--   metadata definitions (created, renamed, deleted: names may resolve differently) - any list;
--   a metadata value written to field F - only lists whose QueryString or SortField names F
--     (a query on built-in fields such as IssuerDN never changes: no endpoint writes those);
--   time - without IncludeExpired, until the first listed certificate expires; a query with
--     %TODAY% until the day ends;
--   a new world (reset, --data) starts without any.
local U = require("util")
local Q = require("kfquery")
local JC = require("jcache")
local N = require("counters")

local L = {}

local MAX_LISTS = 16
local STATE_NAMES = { [0] = "Unknown", "Active", "Revoked", "Denied", "Failed", "Pending",
  "CertificateAuthority", "ParentCertificateAuthority", "ExternalValidation" }

local function ix(w)
  local k = w.keyfactor
  local x = k.ix
  if not x then
    x = { fields_gen = 0, md_gen = {}, lists = {}, nlists = 0, tick = 0 }
    k.ix = x
  end
  return x
end

-- After metadata field definitions changed.
function L.fields_changed(w)
  local x = ix(w)
  x.fields_gen = x.fields_gen + 1
  x.lists, x.nlists = {}, 0
end

-- After certificate c's value of metadata field name (its defined spelling) was written.
function L.md_written(w, c, name)
  local x = ix(w)
  x.md_gen[name] = (x.md_gen[name] or 0) + 1
end

-- The item without its Metadata member: nothing in it ever changes, so it is cached.
local function head(c)
  local sans = {}
  for i, s in ipairs(c.SANs) do
    sans[i] = string.format('{"Id":%d,"Value":%s,"Type":2,"ValueHash":null}', c.Id * 100 + i, U.jstr(s))
  end
  return table.concat({
    '{"Id":', tostring(c.Id), ',"Thumbprint":', U.jstr(c.Thumbprint), ',"SerialNumber":', U.jstr(c.SerialNumber),
    ',"IssuedDN":', U.jstr(c.IssuedDN), ',"IssuedCN":', U.jstr(c.IssuedCN),
    ',"ImportDate":"', U.iso(c.ImportDate), '","NotBefore":"', U.iso(c.NotBefore), '","NotAfter":"', U.iso(c.NotAfter),
    '","IssuerDN":', U.jstr(c.IssuerDN), ',"PrincipalId":null,"TemplateId":null,"CertState":', tostring(c.CertState),
    ',"CertStateString":"', STATE_NAMES[c.CertState] or "Unknown", '","KeySizeInBits":', tostring(c.KeySizeInBits),
    ',"KeyType":', tostring(c.KeyType), ',"KeyTypeString":"', c.KeyType == 1 and "RSA" or "ECC",
    '","RequesterId":null,"IssuedOU":null,"IssuedEmail":null,"KeyUsage":160,"SigningAlgorithm":', U.jstr(c.SigningAlgorithm),
    ',"CertificateAuthorityId":null,"CertificateAuthorityName":', U.jstr(c.CertificateAuthorityName),
    ',"TemplateName":', U.jstr(c.TemplateName), ',"HasPrivateKey":', tostring(c.HasPrivateKey == true),
    ',"KeyRecoverable":false,"ArchivedKey":false,"CertRequestId":', tostring(c.CertRequestId),
    ',"CARecordId":', c.CARecordId and U.jstr(c.CARecordId) or "null",
    ',"CARowIndex":0,"RevocationEffDate":null,"RevocationReason":null,"RevocationComment":null,"ContentBytes":null',
    ',"SubjectAltNameElements":[', table.concat(sans, ","), ']',
    ',"ExtendedKeyUsages":[{"Id":1,"Oid":"1.3.6.1.5.5.7.3.1","DisplayName":"Server Authentication"}]',
    ',"CRLDistributionPoints":[],"LocationsCount":[],"Locations":[],"SSLLocations":[]' })
end

-- One certificate's JSON; with_md adds its metadata as render(field, value) shows it.
function L.item_json(w, c, with_md, render)
  local h = JC.of(w):fetch("kfh", c, head)
  if not with_md or next(c.md) == nil then return h .. ',"Metadata":{}}' end
  local fl, md = w.keyfactor.field_by_lname, {}
  for k, v in pairs(c.md) do md[k] = render(fl[k:lower()], v) end
  return h .. ',"Metadata":' .. U.encode(md) .. "}"
end

local function valid(x, e, now, today)
  if e.fields_gen ~= x.fields_gen or (e.until_ and now > e.until_) or (e.day and e.day ~= today) then return false end
  for name, g in pairs(e.deps) do
    if (x.md_gen[name] or 0) ~= g then return false end
  end
  return true
end

-- Sort keys that the default (C) string comparison orders: the value, then the Id (complemented
-- when descending, so that after reversing, equal values still come in ascending Id order).
-- Numbers and dates are 8 big-endian bytes with the sign bit flipped. Returns the Ids in order.
local function sort_list(list, sort, desc)
  local get, kind = sort.get, sort.kind
  local keys = {}
  for i, c in ipairs(list) do
    local v, k = get(c), nil
    if kind == "string" then
      k = v and tostring(v):lower() or ""
    else
      local n = tonumber(v)
      n = n and (math.tointeger(n) or (n == n and n > -2 ^ 63 and n < 2 ^ 63 and math.floor(n)) or nil)
      k = string.pack(">I8", (n or math.mininteger) ~ math.mininteger)
    end
    keys[i] = k .. "\0" .. string.pack(">I4", desc and 0xFFFFFFFF - c.Id or c.Id)
  end
  table.sort(keys)
  local n, out = #keys, {}
  for i, key in ipairs(keys) do
    local id = string.unpack(">I4", key, #key - 3)
    if desc then id = 0xFFFFFFFF - id end
    out[desc and n - i + 1 or i] = id
  end
  return out
end

-- The certificates GET /Certificates lists for p = {query, inc_rev, inc_exp, sortname, desc}, or
-- nil, message for an invalid query. K gives resolve(name) (fields with .md are metadata).
function L.list(K, w, p, now, today)
  local x = ix(w)
  local key = table.concat({ p.query, p.inc_rev and "1" or "0", p.inc_exp and "1" or "0", p.sortname,
    p.desc and "1" or "0" }, "\1")
  x.tick = x.tick + 1
  local e = x.lists[key]
  if e and valid(x, e, now, today) then
    e.tick = x.tick
    return e.list
  end
  local deps = {}
  local function resolve(name)
    local f = K.resolve(name)
    if f and f.md then deps[f.md] = x.md_gen[f.md] or 0 end
    return f
  end
  local pred, qerr = Q.compile(p.query, resolve, today)
  if not pred then return nil, qerr end
  local sort = resolve(p.sortname)
  local out, until_ = {}, nil
  local inc_rev, inc_exp = p.inc_rev, p.inc_exp
  N.add("keyfactor_lists_built")
  N.add("certificates_scanned", #w.keyfactor.certs)
  for _, c in ipairs(w.keyfactor.certs) do
    if (inc_rev or c.CertState ~= 2) and (inc_exp or c.NotAfter >= now) and pred(c) then
      out[#out + 1] = c
      if not inc_exp and (not until_ or c.NotAfter < until_) then until_ = c.NotAfter end
    end
  end
  if p.sortname ~= "id" and p.sortname ~= "certid" then
    local ids = sort_list(out, sort, p.desc)
    local by_id = w.keyfactor.by_id
    for i, id in ipairs(ids) do out[i] = by_id[id] end
  elseif p.desc then
    local n = #out
    for i = 1, n // 2 do out[i], out[n - i + 1] = out[n - i + 1], out[i] end
  end
  e = { list = out, deps = deps, fields_gen = x.fields_gen, until_ = until_, tick = x.tick,
    day = p.query:lower():find("%today", 1, true) and today or nil }
  if not x.lists[key] then
    if x.nlists >= MAX_LISTS then
      local oldest
      for k2, e2 in pairs(x.lists) do if not oldest or e2.tick < x.lists[oldest].tick then oldest = k2 end end
      x.lists[oldest] = nil
      x.nlists = x.nlists - 1
    end
    x.nlists = x.nlists + 1
  end
  x.lists[key] = e
  return out
end

return L

-- The REPL's helpers for ad-hoc questions (globals in `metasync repl` and `metasync run`):
--   show(missing("CostCenter", "keyfactor"))  which certificates have no CostCenter in Keyfactor
--   side("0A:11:22:33")                       both sides' values for one serial
--   csv(values("sectigo"), "sectigo.csv")     every Sectigo custom field value, as CSV
-- They read through metasync.adhoc_world, which sees the inventories as a run does (policy,
-- matching, comparison by meaning), and write nothing to either API. Helpers that list return
-- streams (metasync.table_out): nothing is collected, so they scale with the inventory; the
-- small answers (side, find, mapping) are lists that print as a table at the prompt.
local json = require("metasync.json")
local serial = require("metasync.serial")
local fields = require("metasync.fields")
local values = require("metasync.values")
local sectigo_id = require("metasync.sectigo").id
local world = require("metasync.adhoc_world")
local out = require("metasync.table_out")
local status = out.status

local M = {}

M.show, M.csv, M.jsonl = out.show, out.csv, out.jsonl
M.reload = world.reload

local note, count = world.note, world.count

local function rows_meta(cols) return cols, out.row_meta(cols) end

local function quote(s) return '"' .. tostring(s):gsub("\\", "\\\\"):gsub('"', '\\"') .. '"' end

-- "A112233" -> "0A:11:22:33", the form Sectigo's own pages print
local function colon(key)
  if #key % 2 == 1 then key = "0" .. key end
  return (key:gsub("..", "%0:"):sub(1, -2))
end

local function absent(v) return values.absent(v) end

-- Keyfactor certificates for a query (all their fields), revoked and expired ones too; a lookup
-- is for a few certificates, so it stops at 1000.
local function kf_query(w, query)
  local list = {}
  for kc in w.ctx.keyfactor:certificates { query = query, include_revoked = true, include_expired = true, page_size = 100 } do
    list[#list + 1] = kc
    if #list >= 1000 then break end
  end
  return list
end

-- One Sectigo list page filtered by name = value (serialNumber, commonName).
local function sc_query(w, name, value)
  local items, err = w.ctx.sectigo:page({ { name, value } }, 0, 200)
  if not items then error(err, 0) end
  return items
end

local function included(w, kc)
  local ok, inc = pcall(w.policy.include, kc, w.ctx)
  if not ok then world.rethrow_interrupt(inc) end
  return ok and inc and true or false
end

-- sc_by_serial(w, key) -> sslId or nil: the index when it is built, else the list's serial
-- filter (the plain form, then the colon form); a server that ignores the filter sends other
-- serials, and then the index decides.
local function sc_by_serial(w, key)
  if w.index then return (w.index:get(key)) end
  local other = false
  for _, form in ipairs { key, colon(key) } do
    for _, c in ipairs(sc_query(w, "serialNumber", form)) do
      if serial.normalise(c.serialNumber) == key then return sectigo_id(c.sslId or c.id) end
      other = true
    end
  end
  if other then return (world.index(w):get(key)) end
end

-- matched() -> rows {serial, keyfactor_id, sectigo_id, cn; keyfactor = the certificate}: the
-- pairs a run would read and compare.
function M.matched()
  local it, c = world.pairs_of(world.world(), "matched")
  return out.stream(function()
    local row = it()
    if row then c.rows = c.rows + 1 else status.clear() end
    return row
  end, world.MATCHED)
end

local SIDE, SIDE_MT = rows_meta { "field", "sectigo", "keyfactor", "in_step" }

-- side(serial [, keyfactor_id]) -> one row per mapped field: the Sectigo value, the Keyfactor
-- value, and whether they are in step as a run judges it (the policy's conversion, then
-- values.equal by the field's kind).
function M.side(s, keyfactor_id)
  local key = serial.normalise(s)
  if not key then error("side: expected a serial number, got " .. fields.describe(s), 2) end
  local w = world.world()
  local ctx = w.ctx
  local candidates, kc = {}, nil
  for _, c in ipairs(kf_query(w, "SerialNumber -contains " .. quote(key))) do
    if serial.normalise(rawget(c, "SerialNumber")) == key then candidates[#candidates + 1] = c end
  end
  for _, c in ipairs(candidates) do
    if keyfactor_id and math.tointeger(rawget(c, "Id")) == math.tointeger(keyfactor_id) then kc = c break end
    if not keyfactor_id and included(w, c) then kc = c break end
  end
  if keyfactor_id and not kc then error(string.format("serial %s: no Keyfactor certificate with Id %s", key, tostring(keyfactor_id)), 2) end
  if not kc and candidates[1] then
    kc = candidates[1]
    note("Keyfactor Id %s: the policy leaves it out (include), so a run does not sync it", tostring(rawget(kc, "Id")))
  end
  if #candidates > 1 then
    local ids = {}
    for i, c in ipairs(candidates) do ids[i] = tostring(rawget(c, "Id")) end
    note("%d Keyfactor certificates have serial %s (Ids %s); shown: Id %s (side(serial, id) for another)",
      #candidates, key, table.concat(ids, ", "), tostring(rawget(kc, "Id")))
  end
  local sid = sc_by_serial(w, key)
  if not kc and not sid then error("serial " .. key .. ": on neither side", 2) end
  local d, err
  if sid then
    d, err = ctx.sectigo:details(sid)
    if not d then note("Sectigo sslId %d: %s", sid, tostring(err)) end
  end
  if not kc then note("serial %s: not in Keyfactor", key) end
  if not sid then note("serial %s: not in Sectigo", key) end
  local rows = {}
  for _, f in ipairs(ctx.fields) do
    local kind = values.kind_of_kf(f.datatype)
    local sv = world.value_of(w, f, d, kc)
    local kv = kc and fields.metadata(kc, f.keyfactor)
    if kv == json.null then kv = nil end
    -- as the run decides: the Sectigo value converted by the policy, compared by meaning
    local ok, conv = pcall(w.policy.convert, sv, f, ctx)
    if not ok then world.rethrow_interrupt(conv) end
    if not ok or conv == nil then conv = sv end
    rows[#rows + 1] = setmetatable({ field = f.keyfactor, sectigo = sv, keyfactor = kv, sectigo_field = f.sectigo,
      in_step = values.equal(kv, conv, kind, ctx.date_format) }, SIDE_MT)
  end
  return out.list(rows, SIDE)
end

local function side_name(s)
  if s == nil then return nil end
  s = tostring(s):lower()
  if s == "kf" then return "keyfactor" elseif s == "sc" then return "sectigo" end
  if s ~= "keyfactor" and s ~= "sectigo" then error("side: expected \"keyfactor\" or \"sectigo\", got " .. s, 3) end
  return s
end

local KF_ROWS, KF_MT = rows_meta { "serial", "keyfactor_id", "cn" }
local SC_ROWS, SC_MT = rows_meta { "serial", "sectigo_id", "cn", "status" }
local BOTH, BOTH_MT = rows_meta { "serial", "keyfactor_id", "sectigo_id", "cn", "missing", "sectigo", "keyfactor" }

local function sc_row(item, d, mt)
  return setmetatable({ serial = serial.normalise(d.serialNumber), sectigo_id = sectigo_id(rawget(item, "sslId") or rawget(item, "id")),
    cn = d.commonName, status = d.status }, mt)
end

-- missing(field [, side]) -> certificates without a value for field. No side: the matched pairs
-- where either side has none (column missing: keyfactor, sectigo or both). "keyfactor": every
-- Keyfactor certificate a run considers, Keyfactor alone read (fast). "sectigo": every
-- Sectigo certificate a run lists, each with its details. field: a mapped field's Keyfactor or
-- Sectigo name; with a side, any field of that side.
function M.missing(name, side)
  if type(name) ~= "string" or name == "" then error("missing: expected a field name", 2) end
  side = side_name(side)
  local w = world.world()
  local f = world.field_of(w, name, side == nil)
  if side == "keyfactor" then
    local kname = f and f.keyfactor or name
    local it, c = world.considered(w, "missing " .. kname)
    return out.stream(function()
      for kc, key in it do
        if absent(fields.metadata(kc, kname)) then
          c.rows = c.rows + 1
          return setmetatable({ serial = key, keyfactor_id = rawget(kc, "Id"), cn = rawget(kc, "IssuedCN") }, KF_MT)
        end
      end
      status.clear()
    end, KF_ROWS)
  elseif side == "sectigo" then
    local it, c = world.sectigo_listing(w, "missing " .. name)
    local warn = world.notes()
    return out.stream(function()
      for item, d, err in it do
        if not d then warn("Sectigo sslId %s: %s", tostring(rawget(item, "sslId")), tostring(err))
        elseif absent(f and world.value_of(w, f, d, nil) or fields.custom_value(d, name)) then
          c.rows = c.rows + 1
          return sc_row(item, d, SC_MT)
        end
      end
      status.clear()
    end, SC_ROWS)
  end
  local pit, c = world.pairs_of(w, "missing " .. f.keyfactor)
  local it = world.with_details(w, pit)
  local warn = world.notes()
  return out.stream(function()
    for e, d, err in it do
      local row = e[1]
      if not d then warn("%s: Sectigo sslId %d: %s", row.serial, row.sectigo_id, tostring(err)) else
        local sv, kv = world.value_of(w, f, d, row.keyfactor), fields.metadata(row.keyfactor, f.keyfactor)
        local sa, ka = absent(sv), absent(kv)
        if sa or ka then
          c.rows = c.rows + 1
          return setmetatable({ serial = row.serial, keyfactor_id = row.keyfactor_id, sectigo_id = row.sectigo_id, cn = row.cn,
            missing = sa and ka and "both" or sa and "sectigo" or "keyfactor", sectigo = sv, keyfactor = kv }, BOTH_MT)
        end
      end
    end
    status.clear()
  end, BOTH)
end

local FIND, FIND_MT = rows_meta { "side", "id", "serial", "cn", "status", "expires", "considered" }
local CERT_STATE = { [0] = "Unknown", "Active", "Revoked", "Denied", "Failed", "Pending", "CertificateAuthority",
  "ParentCertificateAuthority", "ExternalValidation" }

-- Does a run list this Sectigo certificate (one of the policy's filters takes its status and type)?
local function sc_considered(w, d)
  local t = math.tointeger(d.sslTypeId) or math.tointeger(type(d.certType) == "table" and d.certType.id or nil)
  for _, f in ipairs(w.policy.sectigo_filters(w.ctx)) do
    if (not f.status or f.status == d.status) and (not f.ssl_type_id or f.ssl_type_id == t) then return true end
  end
  return false
end

-- find(serial or CN) -> every certificate of either side with that serial (any form) or that
-- common name (exact, any case), whether a run considers it or not.
function M.find(x)
  if type(x) ~= "string" and math.type(x) ~= "integer" then error("find: expected a serial number or a common name", 2) end
  x = tostring(x):match("^%s*(.-)%s*$")
  if x == "" then error("find: expected a serial number or a common name", 2) end
  local w = world.world()
  local key = x:find("^[%x:%s]+$") and serial.normalise(x)
  local low = x:lower()
  local rows, seen = {}, {}
  local function add(row)
    local k = row.side .. "\0" .. tostring(row.id)
    if not seen[k] then seen[k] = true; rows[#rows + 1] = setmetatable(row, FIND_MT) end
  end
  local hits = {}
  local function sc_hits(name, value, ok)
    for _, c in ipairs(sc_query(w, name, value)) do
      local id = sectigo_id(c.sslId or c.id)
      if id and ok(c) and not hits[id] then hits[id] = c; hits[#hits + 1] = id end
    end
  end
  if key then
    for _, form in ipairs { key, colon(key) } do
      sc_hits("serialNumber", form, function(c) return serial.normalise(c.serialNumber) == key end)
    end
  end
  sc_hits("commonName", x, function(c) return type(c.commonName) == "string" and c.commonName:lower() == low end)
  for i, id in ipairs(hits) do
    -- the list's items are thin (id, name, serial): a few details say status and expiry
    local d = i <= 20 and w.ctx.sectigo:details(id) or hits[id]
    add { side = "sectigo", id = id, serial = serial.normalise(d.serialNumber), cn = d.commonName, status = d.status,
      expires = d.expires, considered = d.status and sc_considered(w, d) or nil }
  end
  local kcs = {}
  if key then
    for _, kc in ipairs(kf_query(w, "SerialNumber -contains " .. quote(key))) do
      if serial.normalise(rawget(kc, "SerialNumber")) == key then kcs[#kcs + 1] = kc end
    end
  end
  for _, kc in ipairs(kf_query(w, "IssuedCN -eq " .. quote(x))) do kcs[#kcs + 1] = kc end
  for _, kc in ipairs(kcs) do
    local st = rawget(kc, "CertState")
    add { side = "keyfactor", id = rawget(kc, "Id"), serial = serial.normalise(rawget(kc, "SerialNumber")),
      cn = rawget(kc, "IssuedCN"), status = CERT_STATE[st] or st, expires = rawget(kc, "NotAfter"),
      considered = included(w, kc) }
  end
  return out.list(rows, FIND)
end

-- values([side]) -> one row per certificate with every field of that side as a column:
-- "sectigo" (the default) every Sectigo certificate a run lists with each custom field
-- defined in Sectigo; "keyfactor" every Keyfactor certificate a run considers with each
-- metadata field defined in Keyfactor.
function M.values(side)
  side = side_name(side) or "sectigo"
  local w = world.world()
  if side == "keyfactor" then
    local cols = { "serial", "keyfactor_id", "cn" }
    for _, d in ipairs(w.ctx.kf_fields) do
      if type(d.Name) == "string" then cols[#cols + 1] = d.Name end
    end
    local mt = out.row_meta(cols)
    local it, c = world.considered(w, "values")
    return out.stream(function()
      for kc, key in it do
        local row = { serial = key, keyfactor_id = rawget(kc, "Id"), cn = rawget(kc, "IssuedCN") }
        for i = 4, #cols do
          local v = fields.metadata(kc, cols[i])
          if v ~= json.null then row[cols[i]] = v end
        end
        c.rows = c.rows + 1
        return setmetatable(row, mt)
      end
      status.clear()
    end, cols)
  end
  local cols = { "serial", "sectigo_id", "cn", "status" }
  for _, d in ipairs(w.ctx.sectigo_fields) do cols[#cols + 1] = d.name end
  local mt = out.row_meta(cols)
  local it, c = world.sectigo_listing(w, "values")
  local warn = world.notes()
  return out.stream(function()
    for item, d, err in it do
      if not d then warn("Sectigo sslId %s: %s", tostring(rawget(item, "sslId")), tostring(err)) else
        local row = sc_row(item, d, mt)
        for i = 5, #cols do
          local v = fields.custom_value(d, cols[i])
          if v ~= json.null then row[cols[i]] = v end
        end
        c.rows = c.rows + 1
        return row
      end
    end
    status.clear()
  end, cols)
end

local MAPPING, MAPPING_MT = rows_meta { "keyfactor", "sectigo", "kind", "type", "sectigo_type" }

-- mapping() -> the fields a run syncs: Keyfactor name, Sectigo name (or details path), kind
-- (custom or manual), Keyfactor type, Sectigo input type.
function M.mapping()
  local rows = {}
  for _, f in ipairs(world.world().ctx.fields) do
    rows[#rows + 1] = setmetatable({ keyfactor = f.keyfactor, sectigo = f.sectigo, kind = f.kind,
      type = values.KF_NAMES[tonumber(f.datatype) or 1] or f.datatype, sectigo_type = f.sectigo_type }, MAPPING_MT)
  end
  return out.list(rows, MAPPING)
end

M.count = count
return M

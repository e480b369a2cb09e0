-- Sectigo Certificate Manager REST API endpoints (/api/...).
local U = require("util")
local D = require("data")
local SET = require("settings")
local SI = require("scindex")
local JC = require("jcache")

local S = {}
local C -- shared context from sim.lua: C.world, C.cfg, C.write(ep), C.token_ok(api, tok)

local CT = "application/json;charset=UTF-8"
local NAMED_FORMATS = { ISO = "yyyy-MM-dd", ISO_HMS = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", EU = "dd.MM.yyyy",
  EU_HMS = "dd.MM.yyyy HH:mm:ss", US = "MM/dd/yyyy", US_HMS = "MM/dd/yyyy HH:mm:ss", UK = "dd/MM/yyyy",
  UK_HMS = "dd/MM/yyyy HH:mm:ss", JP = "yyyy/MM/dd", JP_HMS = "yyyy/MM/dd HH:mm:ss" }
local DEFAULT_FMT = U.date_formatter("MM/dd/yyyy")

function S.init(ctx) C = ctx end

local function json(status, v, extra)
  local h = { ["Content-Type"] = CT }
  for k, x in pairs(extra or {}) do h[k] = x end
  return { status = status, headers = h, body = type(v) == "string" and v or U.encode(v) }
end

local function err(status, code, desc) return json(status, { code = code, description = U.clean(desc, 2048) }) end
S.err = err

local function invalid(name) return err(400, -1601, "Field '" .. name .. "' has invalid value.") end

-- Auth: login/password/customerUri headers, or a Bearer token from /oauth/token.
function S.auth(req)
  local h = req.headers
  local authz = h["authorization"]
  if authz and authz:match("^[Bb]earer ") then
    if C.token_ok("sectigo", authz:match("^%a+%s+(%S+)")) then return nil end
    local r = err(401, -16, "Unknown user")
    r.headers["WWW-Authenticate"] = 'Bearer error="invalid_token", authorization_uri="/oauth/token"'
    return r
  end
  local cfg = C.cfg
  if h["login"] == cfg.sectigo_login and h["password"] == cfg.sectigo_password
      and h["customeruri"] == cfg.sectigo_customer_uri then
    return nil
  end
  return err(401, -16, "Unknown user")
end

-- ?dateFormat=: a named format (any case) or a pattern. Returns formatter, or nil + response.
local function date_fmt(req)
  local v = req.args.dateFormat or req.args.dateformat
  if v == nil or v == "" then return DEFAULT_FMT end
  local pat = NAMED_FORMATS[v:upper()] or v
  local f = U.date_formatter(pat)
  if not f then return nil, invalid("dateFormat") end
  return f
end

local function arr(t) return U.array(t) end

-- A profile as details and GET /api/ssl/v1/types show it; built once per type (types never
-- change while running) and only ever encoded, never modified.
local TYPE_OBJ = setmetatable({}, { __mode = "k" })
local function type_obj(t)
  local o = TYPE_OBJ[t]
  if not o then
    local kt = {}
    for k, v in pairs(t.keyTypes or {}) do kt[k] = arr(U.copy(v)) end
    o = { id = t.id, name = t.name, description = t.description, terms = arr(U.copy(t.terms)),
      keyTypes = kt, useSecondaryOrgName = t.useSecondaryOrgName or false }
    TYPE_OBJ[t] = o
  end
  return o
end

local KEY_USAGES = arr({ "digitalSignature", "keyEncipherment" })
local EXT_KEY_USAGES = arr({ "serverAuth", "clientAuth" })
local AUTO_INSTALL, AUTO_RENEW = { state = "Not configured" }, { state = "Not scheduled" }

local function details(c, fmt)
  local w = C.world.sectigo
  local t = w.type_by_id[c.typeId] or { id = c.typeId, name = "", description = "", terms = {}, keyTypes = {} }
  local d = { commonName = c.commonName, sslId = c.id, id = c.id, orgId = c.orgId, status = c.status,
    orderNumber = 7000000 + c.id, backendCertId = tostring(7000000 + c.id), vendor = "Sectigo Limited",
    certType = type_obj(t),
    subType = "", validationType = t.id == 1025 and "Extended Validation (EV)" or "Organization Validation (OV)",
    term = c.term, owner = "Sim Admin", ownerId = 85, requester = c.requester, requestedVia = c.via or D.VIA_DEFAULT,
    externalRequester = c.externalRequester,
    comments = c.comments, renewed = false, signatureAlg = c.signatureAlg, keyAlgorithm = c.keyAlgorithm,
    keySize = c.keySize, keyType = c.keyAlgorithm .. " - " .. c.keySize,
    keyUsages = KEY_USAGES, extendedKeyUsages = EXT_KEY_USAGES,
    subjectAlternativeNames = arr(U.copy(c.sans)), customFields = arr(),
    autoInstallDetails = AUTO_INSTALL, autoRenewDetails = AUTO_RENEW,
    suspendNotifications = c.suspendNotifications or false }
  for _, k in ipairs({ "requested", "approved", "issued", "expires", "revoked" }) do
    if c[k] then d[k] = fmt(c[k]) end
  end
  if c.revoked then d.reasonCode = 0 end
  if c.serial then d.serialNumber = c.serial == "" and "" or U.colon_hex(c.serial) end
  if c.serial and c.serial ~= "" then
    d.certificateDetails = { issuer = D.sectigo_issuer(c.typeId),
      subject = "CN=" .. c.commonName .. ",O=Example Corp,L=Springfield,C=US",
      subjectAltNames = "dNSName=" .. table.concat(c.sans, ", dNSName="),
      md5Hash = c.sha1 and c.sha1:sub(1, 32), sha1Hash = c.sha1 }
  end
  for _, f in ipairs(w.fields) do
    local v = c.cf[f.name]
    if v and (f.state == "ACTIVE" or f.state == "SUSPENDED_ACTIVE") then
      d.customFields[#d.customFields + 1] = { name = f.name, value = v }
    end
  end
  return d
end

local function details_body(c, fmt)
  if fmt ~= DEFAULT_FMT then return U.encode(details(c, fmt)) end
  return JC.of(C.world):fetch("scd", c, function() return U.encode(details(c, fmt)) end)
end

-- A non-negative int32 query parameter, or default; false when invalid.
local function uint(v, default)
  if v == nil or v == "" then return default end
  if #v > 10 or not v:match("^%d+$") then return false end
  local n = tonumber(v)
  if n > 2147483647 then return false end
  return math.tointeger(n)
end

local STATUS_CI = {}
for _, s in ipairs(D.STATUSES) do STATUS_CI[s:lower()] = s end
STATUS_CI["sa approved"] = "SAApproved"

-- One list item's JSON (cached: nothing in it can change).
local function list_item(c, plain)
  local out = { '{"sslId":', tostring(c.id) }
  if c.commonName ~= "" then out[#out + 1] = ',"commonName":' .. U.jstr(c.commonName) end
  if #c.sans > 0 then
    local q = {}
    for i, n in ipairs(c.sans) do q[i] = U.jstr(n) end
    out[#out + 1] = ',"subjectAlternativeNames":[' .. table.concat(q, ",") .. "]"
  end
  if c.serial and c.serial ~= "" then
    out[#out + 1] = ',"serialNumber":"' .. (plain and c.serial or U.colon_hex(c.serial)) .. '"'
  end
  out[#out + 1] = "}"
  return table.concat(out)
end

local function list(req)
  local a = req.args
  local st = C.world.settings
  local pos, size = uint(a.position, 0), uint(a.size, 10)
  -- A server that ignores paging (setting sectigoIgnorePaging) never reads position.
  if SET.get(st, "sectigoIgnorePaging") then pos = 0 end
  if not pos then return invalid("position") end
  if not size then return invalid("size") end
  if size > 200 then size = 200 end
  local f = {}
  if a.sslTypeId and a.sslTypeId ~= "" then
    f.typeId = uint(a.sslTypeId)
    if not f.typeId then return invalid("sslTypeId") end
  end
  if a.orgId and a.orgId ~= "" then
    f.orgId = uint(a.orgId)
    if not f.orgId then return invalid("orgId") end
  end
  if a.status and a.status ~= "" then
    f.status = STATUS_CI[a.status:lower()]
    if not f.status then return invalid("status") end
  end
  -- Longer values cannot match a certificate: refused like any other invalid parameter.
  if a.serialNumber and #a.serialNumber > 256 then return invalid("serialNumber") end
  if a.commonName and #a.commonName > 255 then return invalid("commonName") end
  if a.serialNumber and a.serialNumber ~= "" then f.serial = U.norm_serial(a.serialNumber) end
  if a.commonName and a.commonName ~= "" then f.cn = a.commonName:lower() end
  local certs = SI.list(C.world, f)
  local hdr = { ["X-Total-Count"] = tostring(#certs) }
  if req.method == "HEAD" then return { status = 200, headers = hdr, body = "" } end
  local plain = st.sectigoListSerialFormat == "plain"
  local jc = JC.of(C.world)
  jc:use_variant("scl", plain)
  local parts = {}
  for i = pos + 1, math.min(#certs, pos + size) do
    local c = certs[i]
    parts[#parts + 1] = jc:get("scl", c) or jc:put("scl", c, list_item(c, plain))
  end
  return json(200, "[" .. table.concat(parts, ",") .. "]", hdr)
end

local function get_details(req, idtext)
  local fmt, bad = date_fmt(req)
  if not fmt then return bad end
  local id = uint(idtext)
  if not id then return err(400, -124, "Wrong SSL certificate id " .. idtext:sub(1, 64) .. ".") end
  local c = C.world.sectigo.by_id[id]
  if not c then return err(404, -5101, "Certificate not found. " .. id) end
  return { status = 200, headers = { ["Content-Type"] = CT }, body = details_body(c, fmt) }
end

local function scalar_string(v)
  if type(v) == "string" then return v end
  if type(v) == "number" then return math.tointeger(v) and tostring(math.tointeger(v)) or tostring(v) end
  if type(v) == "boolean" then return tostring(v) end
  return nil
end

local function update(req)
  local doc = U.decode(req.body)
  if type(doc) ~= "table" or #doc > 0 then return err(400, -1002, "Cannot parse message body") end
  if doc.sslId == nil or doc.sslId == U.null then return err(400, -7, "sslId is required but missing.") end
  local id = U.int(doc.sslId, 1)
  if not id then return invalid("sslId") end
  local w = C.world.sectigo
  local c = w.by_id[id]
  if not c then return err(404, -5101, "Certificate not found. " .. id) end
  local cfs = doc.customFields
  if cfs ~= nil and cfs ~= U.null and (type(cfs) ~= "table" or (next(cfs) and #cfs == 0)) then
    return err(400, -1002, "Cannot parse message body")
  end
  if doc.comments ~= nil and doc.comments ~= U.null then
    if type(doc.comments) ~= "string" or #doc.comments > 1024 then return invalid("comments") end
  end
  if doc.suspendNotifications ~= nil and type(doc.suspendNotifications) ~= "boolean" then
    return err(400, -1002, "Cannot parse message body")
  end
  local changes = {}
  for _, f in ipairs(type(cfs) == "table" and cfs or {}) do
    if type(f) ~= "table" then return err(400, -1002, "Cannot parse message body") end
    if f.name == nil or f.name == U.null or f.name == "" then
      return err(400, -7, "customFields[].name is required but missing.")
    end
    local name = scalar_string(f.name)
    if not name or #name > 256 then return invalid("name") end
    if f.value == nil or f.value == U.null then return err(400, -7, "customFields[].value is required but missing.") end
    local value = scalar_string(f.value)
    if not value then return err(400, -1002, "Cannot parse message body") end
    local fd = w.field_by_name[name]
    if not fd or fd.state == "INACTIVE" or fd.state == "SUSPENDED_INACTIVE" then
      return err(400, -135, "Custom field cannot be found.")
    end
    if D.check_cf(fd, value) then return invalid(name) end
    changes[#changes + 1] = { fd.name, value }
  end
  -- Whether customFields merges into or replaces the stored list is undocumented: the setting
  -- sectigoCustomFieldsPut picks. "replace" drops every active field not sent (only when
  -- customFields is sent at all); values of inactive fields cannot be seen or sent, so they stay.
  local merged = U.copy(c.cf)
  if type(cfs) == "table" and C.world.settings.sectigoCustomFieldsPut == "replace" then
    for _, fd in ipairs(w.fields) do
      if fd.state ~= "INACTIVE" and fd.state ~= "SUSPENDED_INACTIVE" then merged[fd.name] = nil end
    end
  end
  for _, ch in ipairs(changes) do merged[ch[1]] = ch[2] ~= "" and ch[2] or nil end
  for _, fd in ipairs(w.fields) do
    if fd.state == "ACTIVE" and not merged[fd.name] then
      for _, m in ipairs(fd.mandatories or {}) do
        if m == "REST_API" then return err(400, -62, "Missing mandatory custom field!") end
      end
    end
  end
  c.cf = merged
  if type(doc.comments) == "string" then c.comments = doc.comments ~= "" and doc.comments or nil end
  if doc.suspendNotifications ~= nil then c.suspendNotifications = doc.suspendNotifications end
  JC.of(C.world):drop(c)
  C.write("sectigo.update")
  local fmt, bad = date_fmt(req)
  if not fmt then return bad end
  return { status = 200, headers = { ["Content-Type"] = CT }, body = details_body(c, fmt) }
end

local function field_obj(f, v1)
  if v1 then return { id = f.id, name = f.name, mandatory = false } end
  local input = { type = f.input.type }
  if f.input.options then input.options = arr(U.copy(f.input.options)) end
  return { id = f.id, name = f.name, certType = f.certType, state = f.state, input = input,
    mandatories = arr(U.copy(f.mandatories or {})) }
end

local function custom_fields(req, idtext)
  local fields = C.world.sectigo.fields
  if idtext then
    local id = uint(idtext)
    for _, f in ipairs(fields) do if f.id == id then return json(200, field_obj(f)) end end
    return err(404, -135, "Custom field cannot be found.")
  end
  local want = req.args.certType or req.args.certtype
  local out = arr()
  for _, f in ipairs(fields) do
    if not want or want == "" or f.certType:lower() == want:lower() then out[#out + 1] = field_obj(f) end
  end
  return json(200, out)
end

local function types()
  local out = arr()
  for _, t in ipairs(C.world.sectigo.types) do out[#out + 1] = type_obj(t) end
  return json(200, out)
end

local report = require("sectigo_report")

-- Maps a request to (endpoint key, handler) ; handler(req) -> response.
function S.route(req)
  local p, m = req.path, req.method
  if p == "/api/ssl/v1" or p == "/api/ssl/v1/" then
    if m == "GET" or m == "HEAD" then return "sectigo.list", list end
    if m == "PUT" then return "sectigo.update", update end
  elseif p == "/api/ssl/v1/types" then
    if m == "GET" then return "sectigo.types", types end
  elseif p == "/api/ssl/v1/customFields" then
    if m == "GET" then
      return "sectigo.customfields", function()
        local out = arr()
        for _, f in ipairs(C.world.sectigo.fields) do
          if f.state == "ACTIVE" then out[#out + 1] = field_obj(f, true) end
        end
        return json(200, out)
      end
    end
  elseif p == "/api/customField/v2" or p == "/api/customField/v2/" then
    if m == "GET" then return "sectigo.customfields", custom_fields end
  elseif p == "/api/report/v1/ssl-certificates" then
    if m == "POST" then
      return "sectigo.report", function(r)
        return report.handle(r, C, { json = json, err = err, invalid = invalid, date_fmt = date_fmt })
      end
    end
  else
    local id = p:match("^/api/ssl/v1/([^/]+)$")
    if id then
      if m == "GET" then return "sectigo.details", function(r) return get_details(r, id) end end
    else
      id = p:match("^/api/customField/v2/([^/]+)$")
      if id and m == "GET" then return "sectigo.customfields", function(r) return custom_fields(r, id) end end
      if not id then return "sectigo.other", function() return err(404, -1, "Unknown error.") end end
    end
  end
  return "sectigo.other", function()
    local r = err(405, -1, "Method " .. m:sub(1, 16) .. " is not supported.")
    if m == "HEAD" then r.body = "" end
    return r
  end
end

return S

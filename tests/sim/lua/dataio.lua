-- The --data world format: load (with validation and clear errors) and dump (same format).
local U = require("util")
local D = require("data")
local SET = require("settings")

local IO = {}

local function fail(path, msg) error({ msg = path .. ": " .. msg }, 0) end

local function opt_type(v, t, path)
  if v ~= nil and v ~= U.null and type(v) ~= t then fail(path, "must be a " .. t) end
  if v == U.null then return nil end
  return v
end

local function req_int(v, path, lo)
  local n = U.int(v, lo or 1)
  if not n then fail(path, "must be an integer" .. (lo == 0 and " >= 0" or " >= 1")) end
  return n
end

local function opt_int(v, path, lo)
  if v == nil or v == U.null then return nil end
  return req_int(v, path, lo)
end

local function day(v, path)
  if v == nil or v == U.null then return nil end
  local secs = U.parse_datetime(opt_type(v, "string", path))
  if not secs then fail(path, "must be a date (yyyy-MM-dd)") end
  return secs // 86400
end

local function secs(v, path, default)
  if v == nil or v == U.null then return default end
  local t = U.parse_datetime(opt_type(v, "string", path))
  if not t then fail(path, "must be a date or ISO 8601 date-time") end
  return t
end

local function strings(v, path)
  local out = {}
  if v == nil or v == U.null then return out end
  if type(v) ~= "table" then fail(path, "must be an array of strings") end
  for i, s in ipairs(v) do out[i] = opt_type(s, "string", path .. "[" .. i .. "]") end
  return out
end

local function hex(v, path)
  if v == nil or v == U.null then return nil end
  local s = opt_type(v, "string", path):gsub("[:%s]", ""):upper()
  if not s:match("^%x*$") or #s > 128 then fail(path, "must be hexadecimal") end
  return s
end

local function arr(v, path)
  if v == nil or v == U.null then return {} end
  if type(v) ~= "table" then fail(path, "must be an array") end
  return v
end

local function load_sectigo(src, w)
  local s = w.sectigo
  s.field_by_name = {}
  for i, f in ipairs(arr(src.customFields, "sectigo.customFields")) do
    local p = "sectigo.customFields[" .. i .. "]"
    if type(f) ~= "table" then fail(p, "must be an object") end
    local input = opt_type(f.input, "table", p .. ".input") or {}
    local typ = opt_type(input.type, "string", p .. ".input.type") or "TEXT_SINGLE_LINE"
    if not D.INPUT_TYPES[typ] then fail(p .. ".input.type", "unknown input type '" .. typ .. "'") end
    local state = opt_type(f.state, "string", p .. ".state") or "ACTIVE"
    if not D.FIELD_STATES[state] then fail(p .. ".state", "unknown state '" .. state .. "'") end
    local name = opt_type(f.name, "string", p .. ".name")
    if not name or name == "" or #name > 256 then fail(p .. ".name", "required, 1-256 characters") end
    if s.field_by_name[name] then fail(p .. ".name", "duplicate name '" .. name .. "'") end
    local fd = { id = req_int(f.id or i, p .. ".id"), name = name,
      certType = opt_type(f.certType, "string", p .. ".certType") or "ssl", state = state,
      input = { type = typ, options = typ == "TEXT_OPTION" and strings(input.options, p .. ".input.options") or nil },
      mandatories = strings(f.mandatories, p .. ".mandatories") }
    s.fields[#s.fields + 1] = fd
    s.field_by_name[name] = fd
  end
  for i, t in ipairs(arr(src.types, "sectigo.types")) do
    local p = "sectigo.types[" .. i .. "]"
    if type(t) ~= "table" then fail(p, "must be an object") end
    local terms = {}
    for j, x in ipairs(arr(t.terms, p .. ".terms")) do terms[j] = req_int(x, p .. ".terms") end
    s.types[#s.types + 1] = { id = req_int(t.id, p .. ".id"), name = opt_type(t.name, "string", p .. ".name") or "",
      description = opt_type(t.description, "string", p) or "", terms = #terms > 0 and terms or { 365 },
      keyTypes = opt_type(t.keyTypes, "table", p .. ".keyTypes") or { RSA = { "2048" } },
      useSecondaryOrgName = opt_type(t.useSecondaryOrgName, "boolean", p) or false }
  end
  local seen = {}
  for i, c in ipairs(arr(src.certificates, "sectigo.certificates")) do
    local p = "sectigo.certificates[" .. i .. "]"
    if type(c) ~= "table" then fail(p, "must be an object") end
    local id = req_int(c.id or c.sslId, p .. ".id")
    if seen[id] then fail(p .. ".id", "duplicate id " .. id) end
    seen[id] = true
    local status = opt_type(c.status, "string", p .. ".status") or "Issued"
    local okst = false
    for _, st in ipairs(D.STATUSES) do if st == status then okst = true end end
    if not okst then fail(p .. ".status", "unknown status '" .. status .. "'") end
    local cert = { id = id, commonName = opt_type(c.commonName, "string", p .. ".commonName") or "",
      status = status, typeId = req_int(c.sslTypeId or c.typeId or (s.types[1] and s.types[1].id), p .. ".sslTypeId"),
      serial = hex(c.serialNumber, p .. ".serialNumber"), sans = strings(c.subjectAlternativeNames, p),
      requested = day(c.requested, p .. ".requested"), approved = day(c.approved, p .. ".approved"),
      issued = day(c.issued, p .. ".issued"), expires = day(c.expires, p .. ".expires"),
      revoked = day(c.revoked, p .. ".revoked"), declined = day(c.declined, p .. ".declined"),
      replaced = day(c.replaced, p .. ".replaced"), orgId = opt_int(c.orgId, p .. ".orgId") or 101,
      term = opt_int(c.term, p .. ".term") or 365, comments = opt_type(c.comments, "string", p .. ".comments"),
      requester = opt_type(c.requester, "string", p) or "requester@example.com",
      keyAlgorithm = opt_type(c.keyAlgorithm, "string", p) or "RSA", keySize = opt_int(c.keySize, p, 0) or 2048,
      signatureAlg = opt_type(c.signatureAlg, "string", p) or "SHA256WITHRSA",
      sha1 = opt_type(c.sha1Hash, "string", p .. ".sha1Hash"), cf = {},
      via = opt_type(c.requestedVia, "string", p .. ".requestedVia"),
      externalRequester = opt_type(c.externalRequester, "string", p .. ".externalRequester") }
    if cert.via and not D.VIAS[cert.via] then fail(p .. ".requestedVia", "unknown value '" .. cert.via .. "'") end
    if cert.via == D.VIA_DEFAULT then cert.via = nil end
    if cert.externalRequester == "" then cert.externalRequester = nil end
    local found
    for _, t in ipairs(s.types) do if t.id == cert.typeId then found = t end end
    if not found then fail(p .. ".sslTypeId", "no type with id " .. cert.typeId) end
    for j, f in ipairs(arr(c.customFields, p .. ".customFields")) do
      local q = p .. ".customFields[" .. j .. "]"
      if type(f) ~= "table" then fail(q, "must be an object") end
      local fd = s.field_by_name[f.name]
      if not fd then fail(q .. ".name", "no custom field named '" .. tostring(f.name) .. "'") end
      local why = D.check_cf(fd, f.value)
      if why then fail(q .. ".value", why) end
      cert.cf[fd.name] = f.value
    end
    s.certs[#s.certs + 1] = cert
  end
end

local function load_keyfactor(src, w)
  local k = w.keyfactor
  local byname = {}
  for i, f in ipairs(arr(src.metadataFields, "keyfactor.metadataFields")) do
    local p = "keyfactor.metadataFields[" .. i .. "]"
    if type(f) ~= "table" then fail(p, "must be an object") end
    local name = opt_type(f.Name, "string", p .. ".Name")
    if not name or not name:match("^[%w_%-]+$") or #name > 256 then fail(p .. ".Name", "required, [A-Za-z0-9_-]{1,256}") end
    if byname[name:lower()] then fail(p .. ".Name", "duplicate name '" .. name .. "'") end
    local dt = U.int(f.DataType or 1, 1, 7)
    if not dt then fail(p .. ".DataType", "must be 1..7") end
    local fd = { Id = req_int(f.Id or i, p .. ".Id"), Name = name,
      Description = opt_type(f.Description, "string", p) or name, DataType = dt,
      Hint = opt_type(f.Hint, "string", p) or "", Validation = opt_type(f.Validation, "string", p) or "",
      Enrollment = opt_int(f.Enrollment, p, 0) or 0, Message = opt_type(f.Message, "string", p) or "",
      Options = opt_type(f.Options, "string", p .. ".Options") or "",
      DefaultValue = opt_type(f.DefaultValue, "string", p) or "",
      DisplayOrder = opt_int(f.DisplayOrder, p .. ".DisplayOrder", 0) or i,
      CaseSensitive = opt_type(f.CaseSensitive, "boolean", p) or false }
    byname[name:lower()] = fd
    k.fields[#k.fields + 1] = fd
  end
  local seen = {}
  for i, c in ipairs(arr(src.certificates, "keyfactor.certificates")) do
    local p = "keyfactor.certificates[" .. i .. "]"
    if type(c) ~= "table" then fail(p, "must be an object") end
    local id = req_int(c.Id or i, p .. ".Id")
    if seen[id] then fail(p .. ".Id", "duplicate Id " .. id) end
    seen[id] = true
    local serial = hex(c.SerialNumber, p .. ".SerialNumber")
    if not serial or serial == "" then fail(p .. ".SerialNumber", "required") end
    local cn = opt_type(c.IssuedCN, "string", p .. ".IssuedCN")
    local nb = secs(c.NotBefore, p .. ".NotBefore", 0)
    local cert = { Id = id, SerialNumber = serial, IssuedCN = cn or "",
      IssuedDN = opt_type(c.IssuedDN, "string", p .. ".IssuedDN") or (cn and "CN=" .. cn) or "",
      IssuerDN = opt_type(c.IssuerDN, "string", p .. ".IssuerDN") or "",
      Thumbprint = hex(c.Thumbprint, p .. ".Thumbprint") or string.format("%040X", id),
      NotBefore = nb, NotAfter = secs(c.NotAfter, p .. ".NotAfter", nb + 365 * 86400),
      ImportDate = secs(c.ImportDate, p .. ".ImportDate", nb),
      CertState = opt_int(c.CertState, p .. ".CertState", 0) or 1,
      KeySizeInBits = opt_int(c.KeySizeInBits, p, 0) or 2048, KeyType = opt_int(c.KeyType, p, 0) or 1,
      SigningAlgorithm = opt_type(c.SigningAlgorithm, "string", p) or "SHA256withRSA",
      TemplateName = opt_type(c.TemplateName, "string", p) or "",
      CertificateAuthorityName = opt_type(c.CertificateAuthorityName, "string", p) or "",
      CARecordId = opt_type(c.CARecordId, "string", p .. ".CARecordId"),
      HasPrivateKey = opt_type(c.HasPrivateKey, "boolean", p) or false,
      CertRequestId = opt_int(c.CertRequestId, p, 0) or id,
      SANs = strings(c.SubjectAltNames, p .. ".SubjectAltNames"), md = {} }
    local md = opt_type(c.Metadata, "table", p .. ".Metadata") or {}
    for name, v in pairs(md) do
      local fd = byname[tostring(name):lower()]
      if not fd then fail(p .. ".Metadata." .. tostring(name), "no metadata field of that name") end
      local norm, why = D.kf_normalize(fd, v)
      if not norm then fail(p .. ".Metadata." .. name, "value " .. why) end
      if norm ~= "" then cert.md[fd.Name] = norm end
    end
    k.certs[#k.certs + 1] = cert
  end
end

-- Builds a world from a decoded --data document; returns world or nil, message.
local KEYS = { [""] = { settings = true, sectigo = true, keyfactor = true },
  sectigo = { types = true, customFields = true, certificates = true },
  keyfactor = { metadataFields = true, certificates = true } }

-- A misspelt key would otherwise load as an empty part of the world without a word.
local function known_keys(t, path)
  if U.is_array(t) then fail(path == "" and "world" or path, "must be a JSON object, not an array") end
  local allowed = KEYS[path]
  for k in pairs(t) do
    if not allowed[k] then
      local names = {}
      for n in pairs(allowed) do names[#names + 1] = n end
      table.sort(names)
      fail(path == "" and "world" or path, string.format("unknown key '%s' (expected %s)",
        tostring(k):sub(1, 100), table.concat(names, ", ")))
    end
  end
end

function IO.load(doc)
  if type(doc) ~= "table" or U.is_array(doc) then return nil, "world: must be a JSON object" end
  local w = D.new_world()
  local ok, err = pcall(function()
    known_keys(doc, "")
    if type(doc.sectigo) == "table" then known_keys(doc.sectigo, "sectigo") end
    if type(doc.keyfactor) == "table" then known_keys(doc.keyfactor, "keyfactor") end
    local st = opt_type(doc.settings, "table", "settings") or {}
    local serr = SET.check(st, "settings")
    if serr then error({ msg = serr }, 0) end
    SET.apply(w.settings, st)
    load_sectigo(opt_type(doc.sectigo, "table", "sectigo") or {}, w)
    load_keyfactor(opt_type(doc.keyfactor, "table", "keyfactor") or {}, w)
  end)
  if not ok then return nil, type(err) == "table" and err.msg or tostring(err) end
  return D.index(w)
end

local function put(t, k, v) if v ~= nil then t[k] = v end end

-- Dumps a world in the --data format (custom field and metadata values in stored form).
function IO.dump(w)
  local s, k = w.sectigo, w.keyfactor
  local out = { settings = U.copy(w.settings),
    sectigo = { customFields = U.array(), types = U.array(), certificates = U.array() },
    keyfactor = { metadataFields = U.array(), certificates = U.array() } }
  for _, f in ipairs(s.fields) do
    local c = U.copy(f)
    c.mandatories = U.array(c.mandatories)
    if c.input.options then c.input.options = U.array(c.input.options) end
    table.insert(out.sectigo.customFields, c)
  end
  for _, t in ipairs(s.types) do
    local c = U.copy(t)
    c.terms = U.array(c.terms)
    table.insert(out.sectigo.types, c)
  end
  for _, c in ipairs(s.certs) do
    local o = { id = c.id, commonName = c.commonName, status = c.status, sslTypeId = c.typeId,
      orgId = c.orgId, term = c.term, subjectAlternativeNames = U.array(U.copy(c.sans)),
      requester = c.requester, keyAlgorithm = c.keyAlgorithm, keySize = c.keySize,
      signatureAlg = c.signatureAlg, customFields = U.array() }
    put(o, "serialNumber", c.serial and (c.serial == "" and "" or U.colon_hex(c.serial)))
    for _, key in ipairs({ "requested", "approved", "declined", "issued", "expires", "revoked", "replaced" }) do
      put(o, key, c[key] and U.ymd(c[key]))
    end
    put(o, "requestedVia", c.via)
    put(o, "externalRequester", c.externalRequester)
    put(o, "comments", c.comments)
    put(o, "sha1Hash", c.sha1)
    for _, f in ipairs(s.fields) do
      if c.cf[f.name] then table.insert(o.customFields, { name = f.name, value = c.cf[f.name] }) end
    end
    table.insert(out.sectigo.certificates, o)
  end
  for _, f in ipairs(k.fields) do table.insert(out.keyfactor.metadataFields, U.copy(f)) end
  for _, c in ipairs(k.certs) do
    local o = { Id = c.Id, SerialNumber = c.SerialNumber, IssuerDN = c.IssuerDN, IssuedDN = c.IssuedDN,
      IssuedCN = c.IssuedCN, Thumbprint = c.Thumbprint, NotBefore = U.iso(c.NotBefore),
      NotAfter = U.iso(c.NotAfter), ImportDate = U.iso(c.ImportDate), CertState = c.CertState,
      KeySizeInBits = c.KeySizeInBits, KeyType = c.KeyType, SigningAlgorithm = c.SigningAlgorithm,
      TemplateName = c.TemplateName, CertificateAuthorityName = c.CertificateAuthorityName,
      CARecordId = c.CARecordId, HasPrivateKey = c.HasPrivateKey, CertRequestId = c.CertRequestId,
      SubjectAltNames = U.array(U.copy(c.SANs)), Metadata = U.copy(c.md) }
    table.insert(out.keyfactor.certificates, o)
  end
  return out
end

return IO

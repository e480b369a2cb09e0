-- The simulated worlds: deterministic generator, value validators shared with the endpoints.
-- Loading and dumping the documented --data format lives in dataio.lua.
local U = require("util")

local D = {}

D.STATUSES = { "Invalid", "Requested", "Approved", "Declined", "Applied", "Issued", "Revoked",
  "Expired", "Replaced", "Rejected", "SAApproved", "Init" }
D.INPUT_TYPES = { TEXT_SINGLE_LINE = 1, TEXT_MULTI_LINE = 1, EMAIL = 1, NUMBER = 1, TEXT_OPTION = 1,
  DATE = 1 }
D.FIELD_STATES = { ACTIVE = 1, INACTIVE = 1, SUSPENDED_ACTIVE = 1, SUSPENDED_INACTIVE = 1 }

local SECTIGO_OV = "CN=Sectigo RSA Organization Validation Secure Server CA, O=Sectigo Limited, "
  .. "L=Salford, S=Greater Manchester, C=GB"
local SECTIGO_EV = "CN=Sectigo RSA Extended Validation Secure Server CA, O=Sectigo Limited, "
  .. "L=Salford, S=Greater Manchester, C=GB"
-- certificateDetails.issuer of details and the report rows' issuer: one definition for both.
D.ISSUER_OV = "CN=Sectigo RSA Organization Validation Secure Server CA,O=Sectigo Limited,L=Salford,ST=Greater Manchester,C=GB"
D.ISSUER_EV = "CN=Sectigo RSA Extended Validation Secure Server CA,O=Sectigo Limited,L=Salford,ST=Greater Manchester,C=GB"
function D.sectigo_issuer(type_id) return type_id == 1025 and D.ISSUER_EV or D.ISSUER_OV end

-- requestedVia values and their certificateRequestSource codes (report request).
D.VIA_DEFAULT = "Enrollment Form"
D.REQUEST_SOURCES = { ["0"] = "Enrollment Form", ["1"] = "Client Admin", ["2"] = "Web API", ["3"] = "Discovery",
  ["4"] = "Imported", ["5"] = "SCEP", ["7"] = "MS Agent", ["9"] = "Bulk Request", ["10"] = "ACME", ["11"] = "EST",
  ["12"] = "REST API" }
D.VIAS = { ["CD Agent"] = true, ["MS CA"] = true }
for _, v in pairs(D.REQUEST_SOURCES) do D.VIAS[v] = true end

local OTHER_ISSUERS = {
  "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1, O=DigiCert Inc, C=US",
  "CN=R11, O=Let's Encrypt, C=US",
  "CN=Corp Issuing CA 01, DC=corp, DC=example, DC=com",
}

-- Sectigo custom field value check; returns nil when fine, else a reason.
function D.check_cf(field, value)
  if type(value) ~= "string" then return "not a string" end
  if #value > 256 then return "longer than 256 characters" end
  if value == "" then return nil end
  local t = field.input and field.input.type
  if t == "DATE" then
    if not U.parse_ymd(value) then return "not a yyyy-MM-dd date" end
  elseif t == "NUMBER" then
    if not value:match("^%-?%d+$") or #value > 18 then return "not an integer" end
  elseif t == "EMAIL" then
    if not U.is_email(value) then return "not an email address" end
  elseif t == "TEXT_OPTION" then
    local found = false
    for _, o in ipairs(field.input.options or {}) do if o == value then found = true end end
    if not found then return "not one of the options" end
  elseif t == "TEXT_SINGLE_LINE" then
    if value:find("[\r\n]") then return "contains a line break" end
  end
  return nil
end

local function options_of(field)
  local t = {}
  for o in (field.Options or ""):gmatch("[^,]+") do t[#t + 1] = U.trim(o) end
  return t
end
D.options_of = options_of

-- Keyfactor metadata value -> stored canonical string ("" clears), or nil, reason.
-- Dates are stored as yyyy-MM-dd and rendered at read time.
function D.kf_normalize(field, v)
  local dt = field.DataType
  if v == U.null or v == "" then return "" end
  local tv = type(v)
  if tv ~= "string" and tv ~= "number" and tv ~= "boolean" then return nil, "must be a string" end
  if dt == 2 then
    local n = U.int(v)
    if not n then return nil, "is not a valid integer" end
    return tostring(n)
  elseif dt == 3 then
    if tv ~= "string" then return nil, "is not a valid date" end
    local secs = U.parse_datetime(v)
    if not secs then return nil, "is not a valid date" end
    return U.ymd(secs // 86400)
  elseif dt == 4 then
    if tv == "boolean" then return v and "True" or "False" end
    local l = tostring(v):lower()
    if l == "true" then return "True" elseif l == "false" then return "False" end
    return nil, "is not a valid boolean"
  end
  if tv == "boolean" then return nil, "must be a string" end
  local s = tv == "number" and (math.tointeger(v) and tostring(math.tointeger(v)) or tostring(v)) or v
  if dt == 5 then
    for _, o in ipairs(options_of(field)) do if o == s then return s end end
    return nil, "is not one of the allowed values"
  elseif dt == 7 then
    if not U.is_email(s) then return nil, "is not a valid email address" end
  elseif dt == 6 then
    if #s > 4000 then return nil, "is longer than 4000 characters" end
    return s
  end
  if #s > 400 then return nil, "is longer than 400 characters" end
  return s
end

-- A fresh world skeleton with indexes filled by D.index.
function D.new_world()
  return {
    sectigo = { fields = {}, types = {}, certs = {} },
    keyfactor = { fields = {}, certs = {} },
    settings = { sectigoListSerialFormat = "colon" },
  }
end

-- Sorts list by key unless it already is (a generated world is: no comparator calls then).
local function sort_by(list, key)
  for i = 2, #list do
    if list[i - 1][key] > list[i][key] then
      table.sort(list, function(a, b) return a[key] < b[key] end)
      return
    end
  end
end

-- (Re)builds lookup tables; call after any structural change.
function D.index(w)
  local s, k = w.sectigo, w.keyfactor
  s.by_id, s.field_by_name, s.type_by_id = {}, {}, {}
  sort_by(s.certs, "id")
  for _, c in ipairs(s.certs) do s.by_id[c.id] = c end
  for _, f in ipairs(s.fields) do s.field_by_name[f.name] = f end
  for _, t in ipairs(s.types) do s.type_by_id[t.id] = t end
  k.by_id, k.field_by_lname = {}, {}
  sort_by(k.certs, "Id")
  local maxc, maxf = 0, 0
  for _, c in ipairs(k.certs) do k.by_id[c.Id] = c; if c.Id > maxc then maxc = c.Id end end
  for _, f in ipairs(k.fields) do
    k.field_by_lname[f.Name:lower()] = f
    if f.Id > maxf then maxf = f.Id end
  end
  k.next_field_id = math.max(k.next_field_id or 0, maxf + 1)
  k.next_cert_id = maxc + 1
  return w
end

local function sfield(id, name, typ, state, options)
  return { id = id, name = name, certType = "ssl", state = state or "ACTIVE",
    input = { type = typ, options = options }, mandatories = { "ADMIN_UI", "WEB_FORM" } }
end

local function kfield(id, name, dt, desc, options, order)
  return { Id = id, Name = name, Description = desc, DataType = dt, Hint = "", Validation = "",
    Enrollment = 0, Message = "", Options = options or "", DefaultValue = "", DisplayOrder = order,
    CaseSensitive = false }
end

local HOSTS = { "www", "api", "mail", "vpn", "portal", "shop", "auth", "cdn", "git", "wiki", "sso", "db" }
local DOMAINS = { "example.com", "example.org", "corp.example.net", "acme.test" }
local APPS = { "Billing", "CRM", "Payments", "Intranet", "Mail" }
local ENVS = { "Production", "Staging", "Development" }

local function pad32(hex) return string.rep("0", math.max(0, 32 - #hex)) .. hex end

-- Deterministic world for --certs n --seed seed; dates are relative to today (UTC).
function D.generate(n, seed, now)
  local r = U.rng(seed)
  local today = math.floor(now / 86400)
  local w = D.new_world()
  local s, k = w.sectigo, w.keyfactor
  s.types = {
    { id = 1018, name = "Sectigo OV SSL", description = "Organization validated SSL", terms = { 365 },
      keyTypes = { RSA = { "2048", "3072", "4096" } }, useSecondaryOrgName = false },
    { id = 1025, name = "Sectigo EV SSL", description = "Extended validation SSL", terms = { 365 },
      keyTypes = { RSA = { "2048", "4096" }, EC = { "P-256", "P-384" } }, useSecondaryOrgName = false },
    { id = 1040, name = "Sectigo OV Wildcard SSL", description = "Wildcard SSL", terms = { 365, 730 },
      keyTypes = { RSA = { "2048", "4096" } }, useSecondaryOrgName = true },
  }
  s.fields = {
    sfield(201, "Cost Center", "TEXT_SINGLE_LINE"),
    sfield(202, "App/Service", "TEXT_OPTION", nil, APPS),
    sfield(203, "Owner Email", "EMAIL"),
    sfield(204, "Renewal Date", "DATE"),
    sfield(205, "Budget Code", "NUMBER"),
    sfield(206, "Notes", "TEXT_MULTI_LINE"),
    sfield(207, "Environment", "TEXT_OPTION", nil, ENVS),
    sfield(208, "Legacy ID", "TEXT_SINGLE_LINE", "INACTIVE"),
  }
  k.fields = {
    kfield(1, "CostCenter", 1, "Cost center charged for the certificate", nil, 1),
    kfield(2, "Environment", 5, "Deployment environment", table.concat(ENVS, ","), 2),
    kfield(3, "OwnerEmail", 7, "Certificate owner", nil, 3),
    kfield(4, "RenewalDate", 3, "Planned renewal date", nil, 4),
    kfield(5, "Email-Contact", 1, "Contact address", nil, 5),
    kfield(6, "Critical", 4, "Business critical", nil, 6),
    kfield(7, "TicketNumber", 2, "Change ticket", nil, 7),
  }
  local inv = {}
  local function kf_md(c)
    if r:float() < 0.25 then
      c.md["CostCenter"] = "CC-" .. r:int(100, 999)
      c.md["Environment"] = r:pick(ENVS)
      if r:float() < 0.5 then c.md["RenewalDate"] = U.ymd(today + r:int(-30, 300)) end
      if r:float() < 0.3 then c.md["Critical"] = r:float() < 0.5 and "True" or "False" end
      if r:float() < 0.3 then c.md["TicketNumber"] = tostring(r:int(1000, 99999)) end
    end
  end
  local function kf_cert(serial, cn, issuer, nb_day, na_day, state, carec)
    local off = r:int(0, 86399)
    local c = { SerialNumber = pad32(serial), IssuedCN = cn,
      IssuedDN = "CN=" .. cn .. ", O=Example Corp, L=Springfield, C=US", IssuerDN = issuer,
      Thumbprint = r:hex(20), NotBefore = nb_day * 86400 + off, NotAfter = na_day * 86400 + off,
      ImportDate = math.min(nb_day + r:int(0, 5), today) * 86400 + off, CertState = state, KeySizeInBits = 2048,
      KeyType = 1, SigningAlgorithm = "SHA256withRSA", TemplateName = "", CARecordId = carec,
      CertificateAuthorityName = issuer:find("Sectigo", 1, true) and "Sectigo CA Gateway" or "",
      HasPrivateKey = r:float() < 0.5, CertRequestId = r:int(1, 100000), SANs = { cn }, md = {} }
    kf_md(c)
    inv[#inv + 1] = c
    return c
  end
  n = n or 0
  -- A second stream for attributes added later, so that the first one (and so every world
  -- generated before) stays as it was.
  local r2 = U.rng(seed + 0x5EC7)
  for i = 1, n do
    local typ = s.types[(i - 1) % 3 + 1]
    local host = r:pick(HOSTS)
    local dom = r:pick(DOMAINS)
    local cn = typ.id == 1040 and ("*." .. host .. i .. "." .. dom) or (host .. i .. "." .. dom)
    local x = r:float()
    local status = x < 0.72 and "Issued" or x < 0.82 and "Expired" or x < 0.90 and "Revoked" or "Applied"
    local term = typ.id == 1040 and r:pick({ 365, 730 }) or 365
    local c = { id = 4000 + 2 * i + (r:float() < 0.3 and 1 or 0), commonName = cn, status = status,
      typeId = typ.id, orgId = r:pick({ 101, 102, 205 }), term = term, sans = { cn },
      requester = "requester" .. r:int(1, 20) .. "@example.com", keyAlgorithm = "RSA", keySize = 2048,
      signatureAlg = "SHA256WITHRSA", cf = {}, comments = nil }
    if cn:sub(1, 2) ~= "*." then c.sans[2] = "alt" .. i .. "." .. dom end
    local via = r2:float()
    c.via = via < 0.15 and "REST API" or via < 0.25 and "ACME" or via < 0.30 and "Client Admin" or nil
    if r2:float() < 0.2 then c.externalRequester = "partner" .. r2:int(1, 9) .. "@partner.example" end
    if status == "Applied" then
      c.requested = today - r:int(0, 10)
      c.serial = (i % 2 == 0) and "" or nil
    else
      local issued
      if status == "Issued" then issued = today - r:int(1, term - 5)
      elseif status == "Expired" then issued = today - term - r:int(1, 400)
      else issued = today - r:int(30, 600) end
      c.requested, c.approved, c.issued, c.expires = issued - 1, issued - 1, issued, issued + term
      if status == "Revoked" then c.revoked = issued + r:int(1, 25) end
      local nbytes = r:float() < 0.15 and r:pick({ 12, 14, 15 }) or 16
      local hex = r:hex(nbytes)
      local y = r:float()
      if y < 0.1 then hex = "00" .. hex:sub(3) elseif y < 0.2 then hex = "0" .. hex:sub(2) end
      c.serial = hex
      c.sha1 = r:hex(20)
    end
    for _, f in ipairs(s.fields) do
      if r:float() < (f.state == "ACTIVE" and 0.5 or 0.3) then
        local t = f.input.type
        local v
        if t == "TEXT_OPTION" then v = r:pick(f.input.options)
        elseif t == "EMAIL" then v = "owner" .. r:int(1, 50) .. "@example.com"
        elseif t == "DATE" then v = U.ymd(today + r:int(-30, 400))
        elseif t == "NUMBER" then v = tostring(r:int(1, 99999))
        elseif t == "TEXT_MULTI_LINE" then v = "Line one\nLine two " .. i
        else v = (f.name == "Cost Center" and "CC-" or "L-") .. r:int(100, 999) end
        c.cf[f.name] = v
      end
    end
    if r:float() < 0.3 then c.comments = "Requested by ticket CHG" .. r:int(1000, 9999) end
    s.certs[#s.certs + 1] = c
    if c.serial and c.serial ~= "" and r:float() < 0.9 then
      kf_cert(c.serial, cn, typ.id == 1025 and SECTIGO_EV or SECTIGO_OV,
        c.issued, c.expires, status == "Revoked" and 2 or 1, r:float() < 0.5 and tostring(c.id) or nil)
    end
  end
  -- Sectigo-issued certificates that Sectigo does not list, then other issuers' ones.
  local issued_serials = {}
  for _, c in ipairs(s.certs) do if c.serial and c.serial ~= "" then issued_serials[#issued_serials + 1] = c.serial end end
  for i = 1, (n >= 10 and n // 20 or 0) do
    local d = today - r:int(1, 300)
    kf_cert(r:hex(16), "unknown" .. i .. ".example.com", SECTIGO_OV, d, d + 365, 1, nil)
  end
  for i = 1, (n >= 5 and n // 10 or 0) do
    local serial = (i % 3 == 0 and #issued_serials > 0) and r:pick(issued_serials) or r:hex(16)
    local d = today - r:int(1, 500)
    kf_cert(serial, "other" .. i .. ".example.org", r:pick(OTHER_ISSUERS), d, d + 398,
      r:float() < 0.1 and 2 or 1, nil)
  end
  for i = #inv, 2, -1 do
    local j = r:int(1, i)
    inv[i], inv[j] = inv[j], inv[i]
  end
  for i, c in ipairs(inv) do c.Id = i end
  k.certs = inv
  return D.index(w)
end

return D

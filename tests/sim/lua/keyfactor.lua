-- Keyfactor Command REST API endpoints (/KeyfactorAPI/...).
local U = require("util")
local D = require("data")
local Q = require("kfquery")
local SET = require("settings")
local KL = require("kflist")

local K = {}
local C

local CT = "application/json; charset=utf-8"
K.E_AUTH, K.E_HEADER, K.E_QUERY = "0xA0140001", "0xA0110002", "0xA0110005"
K.E_VALIDATION, K.E_NOTFOUND = "0xA0110007", "0xA0110004"

function K.init(ctx) C = ctx end

local function json(status, v, extra)
  local h = { ["Content-Type"] = CT }
  for k, x in pairs(extra or {}) do h[k] = x end
  return { status = status, headers = h, body = type(v) == "string" and v or U.encode(v) }
end
K.json = json

local function err(status, code, msg) return json(status, { ErrorCode = code, Message = U.clean(msg, 2048) }) end
K.err = err

local function no_content() return { status = 204, headers = {}, body = "" } end
K.no_content = no_content

-- Basic credentials already checked (the configured ones never change while running).
local basic_seen, nbasic = {}, 0

-- Basic ("DOMAIN\user:password") or Bearer; then the x-keyfactor-requested-with header.
function K.auth(req)
  local h, cfg = req.headers, C.cfg
  local authz = h["authorization"] or ""
  local scheme, cred = authz:match("^(%a+)%s+(%S+)$")
  scheme = scheme and scheme:lower()
  local ok = false
  if scheme == "bearer" then
    ok = C.token_ok("keyfactor", cred)
  elseif scheme == "basic" then
    ok = basic_seen[cred]
    if ok == nil then
      local plain = U.b64decode(cred) or ""
      local user, pass = plain:match("^([^:]*):(.*)$")
      ok = false
      if user and pass == cfg.keyfactor_password then
        local want = cfg.keyfactor_user:lower()
        user = user:lower()
        ok = user == want or (not want:find("\\", 1, true) and user:match("\\([^\\]*)$") == want)
      end
      if nbasic >= 64 then basic_seen, nbasic = {}, 0 end
      basic_seen[cred], nbasic = ok, nbasic + 1
    end
  end
  if not ok then
    local r = err(401, K.E_AUTH, "Authentication failed: invalid user name, password or token.")
    r.headers["WWW-Authenticate"] = 'Basic realm="Keyfactor"'
    return r
  end
  local rw = h["x-keyfactor-requested-with"]
  if not rw or rw == "" then
    return err(400, K.E_HEADER, "The required header 'x-keyfactor-requested-with' is missing. Use 'APIClient'.")
  end
  return nil
end

local function kf_date_format() return C.world.settings.keyfactorDateFormat or C.cfg.keyfactor_date_format end

-- Stored metadata value -> the string Command returns.
function K.render_md(field, v)
  if field and field.DataType == 3 then return U.kf_date(v, kf_date_format()) end
  return v
end

local BUILTIN = {
  issuerdn = { "string", "IssuerDN" }, issueddn = { "string", "IssuedDN" }, issuedcn = { "string", "IssuedCN" },
  serialnumber = { "string", "SerialNumber" }, thumbprint = { "string", "Thumbprint" },
  certstate = { "number", "CertState" }, certid = { "number", "Id" }, id = { "number", "Id" },
  notbefore = { "date", "NotBefore" }, issueddate = { "date", "NotBefore" }, notafter = { "date", "NotAfter" },
  expirationdate = { "date", "NotAfter" }, importdate = { "date", "ImportDate" },
  ca = { "string", "CertificateAuthorityName" }, certificateauthorityname = { "string", "CertificateAuthorityName" },
  templatename = { "string", "TemplateName" }, template = { "string", "TemplateName" },
  keysizeinbits = { "number", "KeySizeInBits" }, keysize = { "number", "KeySizeInBits" },
  carecordid = { "string", "CARecordId" }, signingalgorithm = { "string", "SigningAlgorithm" },
}
K.BUILTIN = BUILTIN

-- Field resolver for queries and SortField over certificates.
function K.resolve(name)
  local b = BUILTIN[name:lower()]
  if name:lower() == "san" then
    return { kind = "string", get = function(c) return table.concat(c.SANs, ",") end }
  end
  if b then
    local key = b[2]
    return { kind = b[1], get = function(c) return c[key] end }
  end
  local f = C.world.keyfactor.field_by_lname[name:lower()]
  if not f then return nil end
  local fname = f.Name
  if f.DataType == 2 then return { kind = "number", md = fname, get = function(c) return c.md[fname] end } end
  if f.DataType == 3 then
    return { kind = "date", md = fname, get = function(c)
      local d = c.md[fname] and U.parse_ymd(c.md[fname])
      return d and d * 86400
    end }
  end
  return { kind = "string", md = fname, get = function(c) return c.md[fname] end }
end

local function today() return math.floor(C.now() / 86400) end
function K.compile(q) return Q.compile(q, K.resolve, today()) end

-- The members of Command's certificate query object: v10 documents them only as pq.<name>,
-- v25 only unprefixed (setting keyfactorQueryNames: "v10", "v25", or "any" for both). Other
-- parameters (includeMetadata, force, ...) are never prefixed.
local QUERY_MEMBERS = { querystring = true, pagereturned = true, returnlimit = true, sortfield = true,
  sortascending = true, includerevoked = true, includeexpired = true }

-- Query parameters, names lowercased (they bind case-insensitively). In "any" mode both
-- spellings bind and a pq.* one wins over its unprefixed twin whatever their order; a name
-- sent twice in one spelling takes its last value.
function K.params(req)
  local mode = SET.get(C.world.settings, "keyfactorQueryNames")
  local p, pq = {}, {}
  for _, kv in ipairs(req.arg_list or {}) do
    local name = kv[1]:lower()
    local base = name:match("^pq%.(.*)$")
    if base then
      if mode == "any" or (mode == "v10" and QUERY_MEMBERS[base]) then pq[base] = kv[2] end
    elseif not QUERY_MEMBERS[name] or mode ~= "v10" then
      p[name] = kv[2]
    end
  end
  for k, v in pairs(pq) do p[k] = v end
  return p
end

local function bool(v, default)
  if v == nil or v == "" then return default end
  local l = v:lower()
  if l == "true" or l == "1" then return true elseif l == "false" or l == "0" then return false end
  return nil
end
K.bool = bool

function K.uint(v, default, lo)
  if v == nil or v == "" then return default end
  if #v > 10 or not v:match("^%d+$") then return nil end
  local n = math.tointeger(tonumber(v))
  if not n or n > 2147483647 or n < (lo or 0) then return nil end
  return n
end

-- A paging parameter in lo..2^31-1 (Command's Int32); the message says which bound was missed.
local function int_param(v, name, default, lo)
  local hi = 2147483647
  if v == nil or v == "" then return default end
  local digits = v:match("^0*(%d+)$")
  if not digits then
    return nil, string.format("%s must be an integer from %d to %d.", name, lo, hi)
  end
  local n = #digits <= 10 and math.tointeger(tonumber(digits))
  if not n or n > hi then return nil, string.format("%s is too large: at most %d.", name, hi) end
  if n < lo then return nil, string.format("%s must be at least %d (pages are numbered from 1).", name, lo) end
  return n
end

-- PageReturned (1-based: 0 is refused) and ReturnLimit (0 gives an empty page with the total).
-- Returns page, limit or nil, error response. A server that ignores paging (setting
-- keyfactorIgnorePaging) never reads PageReturned.
function K.paging(p, default_limit)
  local pr = p.pagereturned
  if SET.get(C.world.settings, "keyfactorIgnorePaging") then pr = nil end
  local page, e1 = int_param(pr, "PageReturned", 1, 1)
  if not page then return nil, err(400, K.E_VALIDATION, e1) end
  local limit, e2 = int_param(p.returnlimit, "ReturnLimit", default_limit, 0)
  if not limit then return nil, err(400, K.E_VALIDATION, e2) end
  return page, limit
end

local function list_certs(req)
  local p = K.params(req)
  local page, limit = K.paging(p, 50)
  if not page then return limit end
  local inc_rev, inc_exp, inc_md = bool(p.includerevoked, false), bool(p.includeexpired, false), bool(p.includemetadata, false)
  if inc_rev == nil or inc_exp == nil or inc_md == nil then
    return err(400, K.E_VALIDATION, "IncludeRevoked, IncludeExpired and includeMetadata must be true or false.")
  end
  local sortname = (p.sortfield and p.sortfield ~= "" and p.sortfield or "Id"):lower()
  local sort = K.resolve(sortname)
  if not sort then return err(400, K.E_VALIDATION, "Unknown SortField '" .. p.sortfield:sub(1, 100) .. "'.") end
  local desc = p.sortascending == "1"
  if p.sortascending and p.sortascending ~= "" and p.sortascending ~= "0" and p.sortascending ~= "1" then
    return err(400, K.E_VALIDATION, "SortAscending must be 0 (ascending) or 1 (descending).")
  end
  local list, qerr = KL.list(K, C.world, { query = p.querystring or "", inc_rev = inc_rev, inc_exp = inc_exp,
    sortname = sortname, desc = desc }, C.now(), today())
  if not list then return err(400, K.E_QUERY, "Invalid query: " .. qerr) end
  local parts = {}
  local first = (page - 1) * limit
  for i = first + 1, math.min(#list, first + limit) do
    parts[#parts + 1] = KL.item_json(C.world, list[i], inc_md, K.render_md)
  end
  return json(200, "[" .. table.concat(parts, ",") .. "]", { ["x-total-count"] = tostring(#list) })
end

local function get_cert(req, idtext)
  local id = K.uint(idtext, nil, 1)
  local c = id and C.world.keyfactor.by_id[id]
  if not c then return err(404, K.E_NOTFOUND, "Certificate with Id " .. idtext:sub(1, 32) .. " was not found.") end
  local md = bool(K.params(req).includemetadata, true)
  return json(200, KL.item_json(C.world, c, md ~= false, K.render_md))
end

-- Validates name -> value pairs against the field definitions; returns list or nil, response.
local function check_md(pairs_list)
  local fl = C.world.keyfactor.field_by_lname
  local out = {}
  for _, kv in ipairs(pairs_list) do
    local name, v = kv[1], kv[2]
    local f = type(name) == "string" and fl[name:lower()]
    if type(name) ~= "string" then return nil, err(400, K.E_VALIDATION, "Metadata field names must be strings.") end
    if not f then
      return nil, err(400, K.E_VALIDATION, "Metadata field '" .. name:sub(1, 256) .. "' does not exist.")
    end
    local norm, why = D.kf_normalize(f, v)
    if not norm then
      return nil, err(400, K.E_VALIDATION, "The value for metadata field '" .. f.Name .. "' " .. why .. ".")
    end
    out[#out + 1] = { f.Name, norm }
  end
  return out
end

local function set_md(c, name, v)
  if v == "" then c.md[name] = nil else c.md[name] = v end
  KL.md_written(C.world, c, name)
end

local function put_metadata(req)
  local doc = U.decode(req.body)
  if type(doc) ~= "table" then return err(400, K.E_VALIDATION, "The request body could not be parsed as JSON.") end
  local id = U.int(doc.Id or doc.id, 1)
  if not id then return err(400, K.E_VALIDATION, "Id is required and must be a positive integer.") end
  local md = doc.Metadata or doc.metadata
  if type(md) ~= "table" or (next(md) ~= nil and #md > 0) then
    return err(400, K.E_VALIDATION, "Metadata is required and must be an object of name/value pairs.")
  end
  local c = C.world.keyfactor.by_id[id]
  if not c then return err(404, K.E_NOTFOUND, "Certificate with Id " .. id .. " was not found.") end
  local list = {}
  for k, v in pairs(md) do list[#list + 1] = { k, v } end
  local changes, bad = check_md(list)
  if not changes then return bad end
  for _, ch in ipairs(changes) do set_md(c, ch[1], ch[2]) end
  C.write("keyfactor.metadata")
  return no_content()
end

local function put_metadata_all(req)
  local doc = U.decode(req.body)
  if type(doc) ~= "table" then return err(400, K.E_VALIDATION, "The request body could not be parsed as JSON.") end
  local md = doc.Metadata
  if type(md) ~= "table" or #md == 0 then return err(400, K.E_VALIDATION, "Metadata must be a non-empty array.") end
  local list, over = {}, {}
  for i, m in ipairs(md) do
    if type(m) ~= "table" then return err(400, K.E_VALIDATION, "Metadata[" .. i .. "] must be an object.") end
    list[i] = { m.MetadataName, m.Value == nil and "" or m.Value }
    over[i] = m.OverwriteExisting ~= false
  end
  local changes, bad = check_md(list)
  if not changes then return bad end
  local k, targets = C.world.keyfactor, {}
  if type(doc.CertificateIds) == "table" and #doc.CertificateIds > 0 then
    for _, x in ipairs(doc.CertificateIds) do
      local c = U.int(x, 1) and k.by_id[U.int(x, 1)]
      if not c then return err(400, K.E_VALIDATION, "Certificate with Id " .. tostring(x):sub(1, 32) .. " was not found.") end
      targets[#targets + 1] = c
    end
  elseif type(doc.Query) == "string" and doc.Query ~= "" then
    local pred, qerr = K.compile(doc.Query)
    if not pred then return err(400, K.E_QUERY, "Invalid query: " .. qerr) end
    local now = C.now()
    for _, c in ipairs(k.certs) do
      if c.CertState ~= 2 and c.NotAfter >= now and pred(c) then targets[#targets + 1] = c end
    end
  else
    return err(400, K.E_VALIDATION, "Either Query or CertificateIds is required.")
  end
  for _, c in ipairs(targets) do
    for i, ch in ipairs(changes) do
      if over[i] or not c.md[ch[1]] then set_md(c, ch[1], ch[2]) end
    end
  end
  C.write("keyfactor.metadata_all")
  return no_content()
end

local ENDPOINTS = { "GET /Certificates", "GET /Certificates/{id}", "PUT /Certificates/Metadata",
  "PUT /Certificates/Metadata/All", "GET /MetadataFields", "GET /MetadataFields/{id}",
  "GET /MetadataFields/{name}", "POST /MetadataFields", "PUT /MetadataFields", "DELETE /MetadataFields/{id}",
  "GET /Status/Endpoints" }

local fields = require("kffields")

function K.route(req)
  local p, m = req.path:gsub("/+$", ""), req.method
  local sub = p:match("^/KeyfactorAPI(/.*)$") or p
  local lsub = sub:lower()
  if lsub == "/certificates" and m == "GET" then return "keyfactor.certificates", list_certs end
  if lsub == "/certificates/metadata" and m == "PUT" then return "keyfactor.metadata", put_metadata end
  if lsub == "/certificates/metadata/all" and m == "PUT" then return "keyfactor.metadata_all", put_metadata_all end
  if lsub == "/status/endpoints" and m == "GET" then
    return "keyfactor.status", function()
      return json(200, U.array(U.copy(ENDPOINTS)),
        { ["x-keyfactor-product-version"] = SET.view(C.world.settings, C.cfg).productVersion })
    end
  end
  local id = lsub:match("^/certificates/(%d+)$")
  if id and m == "GET" then return "keyfactor.certificate", function(r) return get_cert(r, id) end end
  if lsub == "/metadatafields" or lsub:match("^/metadatafields/") then
    return "keyfactor.metadatafields", fields.handler(K, C, sub:match("^/[^/]+/(.+)$"), m)
  end
  return "keyfactor.other", function()
    return err(404, K.E_NOTFOUND, "No HTTP resource was found that matches the request URI '" .. sub:sub(1, 200) .. "'.")
  end
end

return K

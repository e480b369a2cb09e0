-- POST /api/report/v1/ssl-certificates: the bulk report (request SslCertificatesReportRequest,
-- rows SSLReportResponseRow of the Admin Operations API 25.9.2). What the vendor leaves open is a
-- setting (README "The SSL report"): the rows' date format, inactive fields, the default serial
-- form, whether the endpoint is there at all, a row cap.
-- A date window is two binary searches in a sorted index of the chosen date (scindex.lua); rows'
-- JSON is cached per certificate (a PUT to it drops it).
local U = require("util")
local D = require("data")
local SET = require("settings")
local SI = require("scindex")
local JC = require("jcache")
local N = require("counters")

local R = {}

-- certificateStatus: "1" (requested) covers the states of a request not yet issued or refused.
local STATUS_SETS = {
  ["0"] = false,
  ["1"] = { Requested = true, Applied = true, Approved = true, Init = true, SAApproved = true },
  ["2"] = { Issued = true }, ["3"] = { Revoked = true }, ["4"] = { Expired = true },
}
local DATE_ATTR = { ["2"] = "revoked", ["3"] = "expires", ["4"] = "requested", ["5"] = "issued" }
-- No default is documented: without certificateDateAttribute, from/to apply to the issuance date.
R.DEFAULT_DATE_ATTR = "5"
local DATES = { "requested", "approved", "declined", "issued", "expires", "revoked", "replaced" }

-- An enum code sent as a JSON string or integer -> its string, or nil.
local function code(v)
  if type(v) == "number" and math.tointeger(v) then return tostring(math.tointeger(v)) end
  if type(v) == "string" and #v <= 4 then return v end
  return nil
end

-- SQL LIKE without anchors: % is any run of characters, _ any one; otherwise a substring.
local function glob(p, s)
  local pi, si, star, mark, np, ns = 1, 1, nil, 0, #p, #s
  while si <= ns do
    local pc = p:byte(pi)
    if pc == 37 then
      star, mark, pi = pi, si, pi + 1
    elseif pc and (pc == 95 or pc == s:byte(si)) then
      pi, si = pi + 1, si + 1
    elseif star then
      pi, mark = star + 1, mark + 1
      si = mark
    else
      return false
    end
  end
  while p:byte(pi) == 37 do pi = pi + 1 end
  return pi > np
end

local function matcher(pat, fold)
  if fold then pat = pat:lower() end
  if not pat:find("[%%_]") then
    return function(s) return (fold and s:lower() or s):find(pat, 1, true) ~= nil end
  end
  pat = "%" .. pat .. "%"
  return function(s) return glob(pat, fold and s:lower() or s) end
end

local function opt_string(doc, name, max)
  local v = doc[name]
  if v == nil or v == U.null then return nil end
  if type(v) ~= "string" or #v > max then return false end
  return v
end

-- Parses and checks the request; returns the query or nil, error response.
local function parse(doc, H)
  local q = {}
  local function enum(name, set)
    local v = doc[name]
    if v == nil or v == U.null then return nil end
    local k = code(v)
    if not k or set[k] == nil then return false end
    return k
  end
  local st = enum("certificateStatus", STATUS_SETS)
  if st == false then return nil, H.invalid("certificateStatus") end
  q.statuses = st and STATUS_SETS[st] or nil
  local attr = enum("certificateDateAttribute", DATE_ATTR)
  if attr == false then return nil, H.invalid("certificateDateAttribute") end
  q.attr = DATE_ATTR[attr or R.DEFAULT_DATE_ATTR]
  local src = enum("certificateRequestSource", D.REQUEST_SOURCES)
  if src == false then return nil, H.invalid("certificateRequestSource") end
  q.via = src and D.REQUEST_SOURCES[src]
  for _, name in ipairs({ "from", "to" }) do
    local v = doc[name]
    if v ~= nil and v ~= U.null then
      local secs = type(v) == "string" and U.parse_datetime(v)
      if not secs then return nil, H.invalid(name) end
      q[name] = secs // 86400
    end
  end
  if q.from and q.to and q.from > q.to then return nil, H.invalid("from") end
  local cn = opt_string(doc, "commonName", 256)
  if cn == false or (cn and cn:find("[<>\\]")) then return nil, H.invalid("commonName") end
  if cn and cn ~= "" then q.cn = matcher(cn, true) end
  local ext = opt_string(doc, "externalRequester", 512)
  if ext == false then return nil, H.invalid("externalRequester") end
  if ext and ext ~= "" then q.ext = matcher(ext, false) end
  local orgs = doc.organizationIds
  if orgs ~= nil and orgs ~= U.null then
    if type(orgs) ~= "table" or (next(orgs) ~= nil and #orgs == 0) then return nil, H.invalid("organizationIds") end
    q.orgs = {}
    for _, o in ipairs(orgs) do
      local n = U.int(o)
      if not n then return nil, H.invalid("organizationIds") end
      q.orgs[n] = true
    end
    if next(q.orgs) == nil then q.orgs = nil end
  end
  local ip = doc.includeIpAddresses
  if ip == "true" or ip == "false" then ip = ip == "true" end
  if ip ~= nil and ip ~= U.null and type(ip) ~= "boolean" then return nil, H.invalid("includeIpAddresses") end
  q.ip = ip == true
  local snf = opt_string(doc, "serialNumberFormat", 64)
  if snf == false then return nil, H.invalid("serialNumberFormat") end
  q.leading = snf == "HEXWithLeadingZeros"
  return q
end

-- The certificates a query selects, in id order: from the date index when a window is given, or
-- the status index, else the whole inventory; then the remaining filters.
local function select(w, q)
  local base
  if q.from or q.to then base = SI.window(w, q.attr, q.from, q.to)
  elseif q.statuses then base = SI.with_status(w, q.statuses)
  else base = w.sectigo.certs end
  if not (q.statuses or q.orgs or q.cn or q.ext or q.via) then return base end
  local out = {}
  N.add("certificates_scanned", #base)
  for _, c in ipairs(base) do
    if (not q.statuses or q.statuses[c.status]) and (not q.orgs or q.orgs[c.orgId])
        and (not q.via or (c.via or D.VIA_DEFAULT) == q.via)
        and (not q.cn or q.cn(c.commonName)) and (not q.ext or q.ext(c.externalRequester or "")) then
      out[#out + 1] = c
    end
  end
  return out
end

-- One row's JSON, assembled from pieces (members as in SSLReportResponseRow; absent values left out).
local function row(w, c, o)
  local q = U.jstr
  local t = w.type_by_id[c.typeId] or {}
  local p = { '{"id":', tostring(c.id), ',"type":', q(t.name or ""), ',"typeId":', tostring(c.typeId),
    ',"orgId":', tostring(c.orgId), ',"commonName":', q(c.commonName), ',"subjAltNames":', q(table.concat(c.sans, ",")),
    ',"status":', q(c.status), ',"requester":', q(c.requester), ',"approver":"Sim Admin","organizationName":"Example Corp ',
    tostring(c.orgId), '","orderNumber":', tostring(7000000 + c.id), ',"backendCertId":"', tostring(7000000 + c.id),
    '","requestedVia":', q(c.via or D.VIA_DEFAULT), ',"term":', tostring(c.term),
    ',"externalRequester":', q(c.externalRequester or ""), ',"signatureAlg":', q(c.signatureAlg),
    ',"publicKeyAlg":', q(c.keyAlgorithm), ',"publicKeySize":"', tostring(c.keySize),
    '","publicKeyType":', q(c.keyAlgorithm .. " - " .. c.keySize) }
  local function add(name, v) if v ~= nil then p[#p + 1] = ',"' .. name .. '":' .. q(v) end end
  add("comments", c.comments)
  if o.ip then add("ipAddresses", "") end
  for _, k in ipairs(DATES) do
    if c[k] then add(k, o.fmt(c[k])) end
  end
  if c.serial and c.serial ~= "" then
    add("serialNumber", o.leading and c.serial or o.colon and U.colon_hex(c.serial) or U.norm_serial(c.serial))
    add("issuer", D.sectigo_issuer(c.typeId))
  end
  add("sha1", c.sha1)
  add("md5", c.sha1 and c.sha1:sub(1, 32))
  local cf = {}
  for _, f in ipairs(w.fields) do
    local v = c.cf[f.name]
    if v and (o.inactive or f.state == "ACTIVE" or f.state == "SUSPENDED_ACTIVE") then
      cf[#cf + 1] = '{"name":' .. q(f.name) .. ',"value":' .. q(v) .. "}"
    end
  end
  p[#p + 1] = ',"customFields":[' .. table.concat(cf, ",") .. "]}"
  return table.concat(p)
end

-- sectigoReport other than "on": the endpoint as a server without it (or a broken one) answers.
local function unavailable(mode, H)
  if mode == "401" then return H.err(401, -16, "Unknown user") end
  if mode == "403" then return H.err(403, -37, "Access denied.") end
  if mode == "404" then return H.err(404, -1, "No resource POST /api/report/v1/ssl-certificates.") end
  if mode == "405" then return H.err(405, -1, "Method POST is not supported.") end
  if mode == "badrows" then return H.json(200, { statusCode = 0, message = "", reports = { rows = U.array() } }) end
  return H.json(200, { statusCode = 0, message = "", data = U.array() })
end

function R.handle(req, C, H)
  local st = C.world.settings
  local mode = SET.get(st, "sectigoReport")
  if mode ~= "on" then return unavailable(mode, H) end
  local doc = U.decode(req.body)
  if type(doc) ~= "table" or U.is_array(doc) then return H.err(400, -1002, "Cannot parse message body") end
  -- The rows' date format: the setting, or ?dateFormat= as on details (a name or a pattern).
  local pattern = SET.get(st, "sectigoReportDateFormat")
  local fmt = U.date_formatter(pattern)
  local qf = req.args.dateFormat or req.args.dateformat
  if qf and qf ~= "" then
    local f, bad = H.date_fmt(req)
    if not f then return bad end
    fmt, pattern = f, "?" .. qf
  end
  local q, bad = parse(doc, H)
  if not q then return bad end
  local w = C.world
  local certs = select(w, q)
  local cap = SET.get(st, "sectigoReportMaxRows")
  if cap > 0 and #certs > cap then
    return H.err(400, -1, string.format("The report is too large: %d certificates match, at most %d can be "
      .. "returned. Narrow the date range or the filters.", #certs, cap))
  end
  local sform = q.leading and "lead" or SET.get(st, "sectigoReportSerialFormat")
  local o = { fmt = fmt, leading = q.leading, colon = sform == "colon",
    inactive = SET.get(st, "sectigoReportInactiveFields"), ip = q.ip }
  local jc = JC.of(w)
  jc:use_variant("row", table.concat({ pattern, sform, tostring(o.inactive), tostring(o.ip) }, "\0"))
  local parts = {}
  for i, c in ipairs(certs) do parts[i] = jc:get("row", c) or jc:put("row", c, row(w.sectigo, c, o)) end
  return H.json(200, '{"statusCode":0,"message":"","reports":[' .. table.concat(parts, ",") .. "]}")
end

return R

-- POST /api/report/v1/ssl-certificates: the bulk report (rows carry custom fields).
local U = require("util")

local R = {}

local STATUS_SETS = {
  ["0"] = false,
  ["1"] = { Requested = true, Applied = true, Approved = true, Init = true, SAApproved = true },
  ["2"] = { Issued = true }, ["3"] = { Revoked = true }, ["4"] = { Expired = true },
}
local DATE_ATTR = { ["2"] = "revoked", ["3"] = "expires", ["4"] = "requested", ["5"] = "issued" }
local REPORT_FMT = U.date_formatter("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")

local function code_string(v)
  if type(v) == "number" and math.tointeger(v) then return tostring(math.tointeger(v)) end
  if type(v) == "string" then return v end
  return nil
end

function R.handle(req, C, H)
  local doc = U.decode(req.body)
  if type(doc) ~= "table" then return H.err(400, -1002, "Cannot parse message body") end
  local fmt = REPORT_FMT
  if req.args.dateFormat or req.args.dateformat then
    local f, bad = H.date_fmt(req)
    if not f then return bad end
    fmt = f
  end
  local want
  if doc.certificateStatus ~= nil then
    local k = code_string(doc.certificateStatus)
    if not k or STATUS_SETS[k] == nil then return H.invalid("certificateStatus") end
    want = STATUS_SETS[k] or nil
  end
  local attr = "issued"
  if doc.certificateDateAttribute ~= nil then
    attr = DATE_ATTR[code_string(doc.certificateDateAttribute) or ""]
    if not attr then return H.invalid("certificateDateAttribute") end
  end
  local from, to
  if doc.from ~= nil then
    from = type(doc.from) == "string" and U.parse_datetime(doc.from)
    if not from then return H.invalid("from") end
    from = from // 86400
  end
  if doc.to ~= nil then
    to = type(doc.to) == "string" and U.parse_datetime(doc.to)
    if not to then return H.invalid("to") end
    to = to // 86400
  end
  if from and to and from > to then return H.invalid("from") end
  local cn = doc.commonName
  if cn ~= nil and (type(cn) ~= "string" or #cn > 256) then return H.invalid("commonName") end
  cn = cn and cn ~= "" and cn:lower() or nil
  local orgs
  if doc.organizationIds ~= nil then
    if type(doc.organizationIds) ~= "table" then return H.invalid("organizationIds") end
    orgs = {}
    for _, o in ipairs(doc.organizationIds) do
      local n = U.int(o)
      if not n then return H.invalid("organizationIds") end
      orgs[n] = true
    end
    if next(orgs) == nil then orgs = nil end
  end
  if doc.serialNumberFormat ~= nil and type(doc.serialNumberFormat) ~= "string" then
    return H.invalid("serialNumberFormat")
  end
  local leading = doc.serialNumberFormat == "HEXWithLeadingZeros"
  local w = C.world.sectigo
  local rows = U.array()
  for _, c in ipairs(w.certs) do
    local d = c[attr]
    local ok = (not want or want[c.status]) and (not orgs or orgs[c.orgId])
      and (not cn or c.commonName:lower():find(cn, 1, true))
      and (not from or (d and d >= from)) and (not to or (d and d <= to))
    if ok then
      local t = w.type_by_id[c.typeId] or {}
      local row = { id = c.id, type = t.name, typeId = c.typeId, orgId = c.orgId, commonName = c.commonName,
        subjAltNames = table.concat(c.sans, ","), status = c.status, requester = c.requester,
        approver = "Sim Admin", organizationName = "Example Corp " .. c.orgId,
        orderNumber = 7000000 + c.id, backendCertId = tostring(7000000 + c.id),
        requestedVia = "Enrollment Form", term = c.term, comments = c.comments,
        externalRequester = "", signatureAlg = c.signatureAlg,
        publicKeyType = c.keyAlgorithm .. " - " .. c.keySize, sha1 = c.sha1,
        customFields = U.array() }
      for _, k in ipairs({ "requested", "approved", "issued", "expires", "revoked" }) do
        if c[k] then row[k] = fmt(c[k]) end
      end
      if c.serial and c.serial ~= "" then
        row.serialNumber = leading and c.serial or U.norm_serial(c.serial)
        row.issuer = t.id == 1025 and "CN=Sectigo RSA Extended Validation Secure Server CA,O=Sectigo Limited,C=GB"
          or "CN=Sectigo RSA Organization Validation Secure Server CA,O=Sectigo Limited,C=GB"
      end
      for _, f in ipairs(w.fields) do
        local v = c.cf[f.name]
        if v and (f.state == "ACTIVE" or f.state == "SUSPENDED_ACTIVE") then
          row.customFields[#row.customFields + 1] = { name = f.name, value = v }
        end
      end
      rows[#rows + 1] = row
    end
  end
  return H.json(200, { statusCode = 0, message = "", reports = rows })
end

return R

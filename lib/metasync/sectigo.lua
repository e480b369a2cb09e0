-- Sectigo Certificate Manager client: password headers or OAuth2, custom field definitions,
-- the paged certificate list (pages fetched concurrently once X-Total-Count is known),
-- details, update and profile types.
local rest = require("metasync.rest")
local oauth = require("metasync.oauth")
local json = require("metasync.json")
local log = require("metasync.log")
local pager = require("metasync.pager")
local fields = require("metasync.fields")

local M = {}
local Client = {}
Client.__index = Client

-- new{base, login, password, customer_uri, oauth={token_url, client_id, client_secret},
--     concurrency, http={timeout, connect_timeout, cafile, proxy, insecure, retries}}
function M.new(o)
  local c = setmetatable({ concurrency = o.concurrency or 8 }, Client)
  local ro = { name = "Sectigo", base = o.base, logger = "sectigo" }
  for k, v in pairs(o.http or {}) do ro[k] = v end
  if o.oauth and o.oauth.token_url then
    local tok = oauth.new { name = "Sectigo", token_url = o.oauth.token_url, client_id = o.oauth.client_id,
      client_secret = o.oauth.client_secret, http = o.http }
    ro.headers = { customerUri = o.customer_uri }
    ro.reauth_on_401 = true
    ro.auth = tok:auth_hook()
  else
    ro.headers = { login = o.login, password = o.password, customerUri = o.customer_uri }
  end
  c.rest = rest.new(ro)
  return c
end

-- custom_fields() -> list of {id, name, state, certType, input={type, options}, mandatories}.
-- An answer that is not a list (an object such as {"customFields": []}) fails: read as "no
-- fields", it would quietly sync nothing. A definition that cannot be read is left out with a
-- WARN naming it (metasync.fields check_sectigo_def), and the others are used.
function Client:custom_fields()
  local doc, err = self.rest:json("GET", "/api/customField/v2", { query = { certType = "SSL" } })
  if not doc then return nil, err end
  if type(doc) ~= "table" or not json.is_array(doc) then
    return nil, "Sectigo GET /api/customField/v2: expected a list of custom fields, got " .. fields.describe(doc)
  end
  local out = {}
  for i, f in ipairs(doc) do
    local problem = fields.check_sectigo_def(f)
    -- The filter is not trusted: sources spell certType both "SSL" and "ssl".
    local ssl = type(f) ~= "table" or f.certType == nil or f.certType == json.null or tostring(f.certType):upper() == "SSL"
    if problem and ssl then
      local id = type(f) == "table" and f.id or nil
      log.warn("sectigo", "Sectigo custom field definition #%d%s%s is unusable: %s; ignored", i,
        (id ~= nil and id ~= json.null) and (" (id " .. tostring(id) .. ")") or "",
        type(f) == "table" and type(f.name) == "string" and (" '" .. f.name .. "'") or "", problem)
    elseif ssl then
      out[#out + 1] = f
    end
  end
  return out
end

function Client:types()
  return self.rest:json("GET", "/api/ssl/v1/types")
end

-- One list page; size is the page size, position 0-based.
function Client:page(filter, position, size)
  local q = { { "position", position }, { "size", size } }
  for _, kv in ipairs(filter) do q[#q + 1] = kv end
  local resp, err = self.rest:request("GET", "/api/ssl/v1", { query = q })
  if not resp then return nil, err end
  -- An object ({"Certificates": []}) is not an empty page: it fails the listing.
  if type(resp.json) ~= "table" or not json.is_array(resp.json) then
    return nil, "Sectigo GET /api/ssl/v1: expected a list of certificates, got " .. fields.describe(resp.json)
  end
  -- The header's text as it came: the pager decides whether the total can be believed.
  return resp.json, resp.headers and resp.headers["x-total-count"]
end

-- M.id(v) -> a certificate id (a positive integer; a numeric string is accepted), or nil.
function M.id(v)
  if type(v) == "string" and v:match("^%s*%d+%s*$") then v = tonumber(v) end
  local n = math.type(v) and math.tointeger(v)
  if n and n >= 1 then return n end
end

-- certificates{status=, ssl_type_id=, page_size=} -> iterator over every certificate
-- {sslId, serialNumber, ...}, streamed page by page (metasync.pager): pages after the first are
-- fetched `concurrency` at a time once X-Total-Count is known. A failed page raises: a partial
-- index would make certificates look unmatched and hide the failure.
function Client:certificates(o)
  o = o or {}
  local size = math.tointeger(o.page_size) or 25
  local filter = {}
  if o.status then filter[#filter + 1] = { "status", o.status } end
  if o.ssl_type_id then filter[#filter + 1] = { "sslTypeId", o.ssl_type_id } end
  return pager.stream { size = size, window = self.concurrency, what = "Sectigo certificates",
    fetch = function(k) return self:page(filter, (k - 1) * size, size) end,
    -- Only a usable id de-duplicates: items with none (null, "abc") are all handed on, for
    -- the index to report each one.
    key = function(c)
      if type(c) ~= "table" then return false end
      local id = c.sslId
      if id == nil then id = c.id end
      return M.id(id)
    end,
    dropped = function(item, k)
      log.warn("sectigo", "Sectigo certificates: page %d: an item that is %s, not a certificate, was skipped",
        k, fields.describe(item))
    end }
end

-- list(o) -> every certificate as a list (the run's serial index needs them all), or nil, message
function Client:list(o)
  return pager.collect(self:certificates(o))
end

-- details(ssl_id) -> the certificate's details, or nil, message. A document of the wrong shape
-- (not an object, customFields not a list of {name, value}) fails that certificate only.
function Client:details(ssl_id)
  local doc, err = self.rest:json("GET", "/api/ssl/v1/" .. math.tointeger(ssl_id))
  if not doc then return nil, err and (err .. string.format(" (sslId %d)", ssl_id)) end
  if type(doc) ~= "table" or json.is_array(doc) then
    return nil, string.format("Sectigo GET /api/ssl/v1/%d: expected an object, got %s", ssl_id, fields.describe(doc))
  end
  local problem = fields.check_custom_fields(doc.customFields)
  if problem then return nil, string.format("Sectigo GET /api/ssl/v1/%d: %s", ssl_id, problem) end
  return doc
end

local UNAVAILABLE = { [401] = true, [403] = true, [404] = true, [405] = true }

-- report(request, keys) -> rows | nil, message, unavailable. The bulk report
-- (POST /api/report/v1/ssl-certificates, SslCertificatesReportRequest): rows for every
-- certificate the request selects, each with its custom fields. keys: decode only these keys
-- of each row; or a function body -> {reports = rows} | nil, error that reads the answer its own
-- way (metasync.bulk builds its index straight from the text). `unavailable` is true when this
-- API does not offer the report to us (401, 403, 404 or 405, or a body that does not match the
-- documented schema), as opposed to a transient failure. The request only reads, so it is
-- retried like a GET.
function Client:report(req, keys)
  local decode = keys
  if type(keys) == "table" then decode = { select = keys, at = "reports" } end
  local resp, err, raw = self.rest:request("POST", "/api/report/v1/ssl-certificates",
    { body = req, retry = true, read = true, decode = decode })
  if not resp then return nil, err, raw ~= nil and UNAVAILABLE[raw.status] or false end
  local doc = resp.json
  local rows = type(doc) == "table" and doc.reports
  if type(rows) ~= "table" or (next(rows) ~= nil and rows[1] == nil) then
    return nil, "Sectigo POST /api/report/v1/ssl-certificates: the answer is not a report (no list of reports)", true
  end
  return rows
end

-- update(ssl_id, custom_fields) -> true or nil, message. Only sslId and customFields are sent:
-- comments and everything else stay as they are.
function Client:update(ssl_id, custom_fields)
  local list = json.array()
  for _, cf in ipairs(custom_fields) do list[#list + 1] = { name = cf.name, value = cf.value } end
  local resp, err = self.rest:request("PUT", "/api/ssl/v1", { body = { sslId = ssl_id, customFields = list } })
  if not resp then return nil, err .. string.format(" (sslId %d)", ssl_id) end
  return true
end

return M

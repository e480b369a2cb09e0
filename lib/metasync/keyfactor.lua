-- Keyfactor Command client: Basic auth (DOMAIN\user) or OAuth2 client credentials, the
-- x-keyfactor-requested-with header on every request, the paged certificate query (pages
-- fetched concurrently once x-total-count is known), metadata updates and MetadataFields.
local rest = require("metasync.rest")
local oauth = require("metasync.oauth")
local pager = require("metasync.pager")
local json = require("metasync.json")
local task = require("metasync.task")
local log = require("metasync.log")

local M = {}
local Client = {}
Client.__index = Client

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

function M.base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    for k = 0, 3 do
      local idx = (n >> (18 - 6 * k)) & 63
      out[#out + 1] = B64:sub(idx + 1, idx + 1)
    end
    if not c then out[#out] = "=" end
    if not b then out[#out - 1] = "=" end
  end
  return table.concat(out)
end

-- new{base, login, password, oauth={token_url, client_id, client_secret, scope, audience, skew},
--     requested_with, concurrency, http={...}}
function M.new(o)
  local c = setmetatable({ concurrency = o.concurrency or 8 }, Client)
  local ro = { name = "Keyfactor", base = o.base, logger = "keyfactor",
    headers = { ["x-keyfactor-requested-with"] = o.requested_with or "APIClient",
      ["x-keyfactor-api-version"] = "1" } }
  for k, v in pairs(o.http or {}) do ro[k] = v end
  if o.oauth and o.oauth.token_url then
    local tok = oauth.new { name = "Keyfactor", token_url = o.oauth.token_url, client_id = o.oauth.client_id,
      client_secret = o.oauth.client_secret, scope = o.oauth.scope, audience = o.oauth.audience,
      skew = o.oauth.skew, http = o.http }
    ro.reauth_on_401 = true
    ro.auth = tok:auth_hook()
  else
    ro.headers.Authorization = "Basic " .. M.base64((o.login or "") .. ":" .. (o.password or ""))
  end
  c.rest = rest.new(ro)
  return c
end

-- The v10 OpenAPI documents the query object only under the pq. prefix (pq.pageReturned ...);
-- v25 reads the bare names, and nothing says either reads the other's. Both spellings go in
-- every request rather than choosing by the product version of /Status/Endpoints: a proxy or
-- an older build may not send that header, a wrong guess would page silently through page 1
-- again and again, and each server ignores the spelling it does not bind. includeMetadata
-- has no prefix in either version.
local function both(name, value)
  return { name, value }, { "pq." .. name:sub(1, 1):lower() .. name:sub(2), value }
end

local function add_both(q, name, value)
  local a, b = both(name, value)
  q[#q + 1] = a
  q[#q + 1] = b
end

-- A certificate decoded with only some of its keys raises on a read of any other, so a
-- hook that needs one more field says so instead of silently seeing nil.
local function guard(keys)
  local set = {}
  for _, k in ipairs(keys) do set[k] = true end
  return { __index = function(_, k)
    if set[k] or type(k) ~= "string" then return nil end
    error(string.format("Keyfactor certificate field '%s' was not fetched: add it to policy.keyfactor_fields", k), 2)
  end }
end

-- pages(path, query, page_size, fields[, whole]) -> iterator over the items of a 1-based paged
-- list, streamed through metasync.pager's sliding window (`concurrency` pages in flight); a
-- failed page raises. fields: decode only these keys of each item (nil: all). whole: iterate
-- over pages instead (page, keep: see metasync.pager.pages).
function Client:pages(path, query, page_size, fields, whole)
  -- (the decoder gives each item the guard, without a loop over the page here)
  local decode = fields and { select = fields, meta = guard(fields) } or nil
  local function fetch(n)
    local q = {}
    add_both(q, "PageReturned", n)
    add_both(q, "ReturnLimit", page_size)
    for _, kv in ipairs(query) do q[#q + 1] = kv end
    local resp, err = self.rest:request("GET", path, { query = q, decode = decode })
    if not resp then return nil, err end
    local list = resp.json
    -- An empty object {} is not an empty page: a wrong shape is an error, never "no certificates".
    if type(list) ~= "table" or not json.is_array(list) then
      return nil, string.format("Keyfactor GET %s: expected a list", path)
    end
    -- The header's text as it came: pager.total_pages judges it ("0x10" is not 16).
    return list, resp.headers and resp.headers["x-total-count"]
  end
  -- A few pages in flight are plenty: one page of certificates keeps the writes behind it
  -- busy for a while, and every page held costs memory (up to 2 x window pages are).
  return (whole and pager.pages or pager.stream) { size = page_size, window = self.page_window or math.min(4, self.concurrency), fetch = fetch,
    what = "Keyfactor " .. path,
    -- only a usable Id (an integer) de-duplicates (items with Id null would collapse into one);
    -- an item that is not a record is dropped
    key_field = "Id",
    dropped = function(item, k)
      require("metasync.log").warn("keyfactor", "Keyfactor %s: page %d: an item that is %s, not a record, was skipped",
        path, k, require("metasync.fields").describe(item))
    end }
end

-- paged(path, query, page_size) -> every item as a list, or nil, message
function Client:paged(path, query, page_size)
  return pager.collect(self:pages(path, query, page_size))
end

local function cert_query(o)
  local q = {}
  add_both(q, "QueryString", o.query or "")
  q[#q + 1] = { "includeMetadata", "true" }
  if o.include_revoked then add_both(q, "IncludeRevoked", "true") end
  if o.include_expired then add_both(q, "IncludeExpired", "true") end
  return q
end

-- certificates{query=, include_revoked=, include_expired=, page_size=, fields=} -> iterator
-- over the matching certificates (with metadata), streamed; a failed page raises.
function Client:certificates(o)
  o = o or {}
  return self:pages("/Certificates", cert_query(o), math.tointeger(o.page_size) or 100, o.fields)
end

-- certificate_pages(o) -> the same listing as certificates(o), a page at a time: page, keep
-- (keep[i]: the listing hands out item i; false for a repeat or a non-record).
function Client:certificate_pages(o)
  o = o or {}
  return self:pages("/Certificates", cert_query(o), math.tointeger(o.page_size) or 100, o.fields, true)
end

-- list(o) -> the certificates certificates(o) iterates, as a list, or nil, message
function Client:list(o)
  return pager.collect(self:certificates(o))
end

-- certificate(id) -> one certificate with its metadata, or nil, message
function Client:certificate(id)
  local doc, err = self.rest:json("GET", "/Certificates/" .. math.tointeger(id), { query = { { "includeMetadata", "true" } } })
  if not doc then return nil, err end
  if type(doc) ~= "table" then return nil, string.format("Keyfactor GET /Certificates/%d: expected an object", id) end
  return doc
end

-- update_metadata(id, map) -> true or nil, message. Keyfactor overwrites only the keys sent.
function Client:update_metadata(id, metadata)
  local resp, err = self.rest:request("PUT", "/Certificates/Metadata", { body = { Id = id, Metadata = metadata } })
  if not resp then return nil, err .. string.format(" (certificate %s)", tostring(id)) end
  return true
end

function Client:metadata_fields()
  return self:paged("/MetadataFields", {}, 500)
end

-- Field definitions go with every property Keyfactor needs (DisplayOrder included: newer
-- versions refuse a definition without it).
local function definition(f)
  local d = { Name = f.Name, Description = f.Description, DataType = f.DataType,
    Hint = f.Hint or "", Validation = f.Validation or json.null, Enrollment = f.Enrollment or 0,
    Message = f.Message or json.null, Options = f.Options or json.null,
    DefaultValue = f.DefaultValue or json.null, DisplayOrder = f.DisplayOrder or 0,
    CaseSensitive = f.CaseSensitive or false }
  if f.Id then d.Id = f.Id end
  return d
end

-- field(name) -> Keyfactor's definition of that field, false when it has none, or nil, message.
-- GET /MetadataFields/{name} (names match case-insensitively; 404 is "no such field"); a name of
-- digits only would be read as an id there, so that one is looked for in the list.
function Client:field(name)
  name = tostring(name)
  local function same(f) return type(f) == "table" and type(f.Name) == "string" and f.Name:lower() == name:lower() end
  if name:match("^%d+$") then
    local list, err = self:metadata_fields()
    if not list then return nil, err end
    for _, f in ipairs(list) do if same(f) then return f end end
    return false
  end
  local resp, err = self.rest:request("GET", "/MetadataFields/" .. rest.urlencode(name), { ok = { [200] = true, [404] = true } })
  if not resp then return nil, err end
  if resp.status == 404 then return false end
  if not same(resp.json) then
    return nil, string.format("Keyfactor GET /MetadataFields/%s: the answer is not that field", name)
  end
  return resp.json
end

-- create_field(f) -> the created definition, or nil, message. POST is not idempotent, so the
-- request itself is never repeated blindly: after a transient failure (5xx, 429, a transport
-- error, a garbled answer) the field is looked up by name, and the POST is sent again (after a
-- backoff, up to the client's retries) only when Keyfactor does not have it; when it does, the
-- failed POST went through and the field counts as created.
function Client:create_field(f)
  local r = self.rest
  local body = definition(f)
  local attempt = 0
  while true do
    attempt = attempt + 1
    local doc, err, raw, transient = r:json("POST", "/MetadataFields", { body = body })
    if doc then return doc end
    if not transient or r.broken then return nil, err end
    local found, ferr = self:field(f.Name)
    if found then
      log.info("keyfactor", "Keyfactor field '%s' exists after a failed create (%s): taken as created", f.Name, err)
      return found
    end
    if found == nil then return nil, string.format("%s; looking the field up failed: %s", err, ferr) end
    if attempt > r.retries then return nil, err end
    local delay = rest.retry_after(raw and raw.headers and raw.headers["retry-after"])
    delay = delay and math.min(delay, r.max_retry_after) or rest.backoff(attempt, r.backoff_base, r.backoff_cap)
    local reason = raw and (raw.status >= 200 and raw.status < 300 and "malformed JSON" or "HTTP " .. raw.status)
      or "transport error"
    r.stats.retries = r.stats.retries + 1
    log.debug("keyfactor", "%s; field '%s' is absent, retry %d/%d in %.1f s", err, f.Name, attempt, r.retries, delay)
    r.health:retry(reason, (err:gsub("^Keyfactor ", "")))
    task.sleep(delay)
  end
end

function Client:update_field(f)
  return self.rest:json("PUT", "/MetadataFields", { body = definition(f) })
end

return M

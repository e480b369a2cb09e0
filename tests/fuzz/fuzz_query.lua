-- Fuzz target: the Keyfactor query of the stock policy (scripts/sctokf.lua,
-- policy.keyfactor_query), which splices the configuration's issuerDNLookupTerm into
--   IssuerDN -contains "<term>"[ AND ImportDate -ge "yyyy-MM-dd"]
-- Input: the term, optionally "\n--\n" keyfactorAddedSince, "\n--\n" keyfactorDateFormat.
-- Property: the quoted string is escaped so that Keyfactor reads back exactly the term: every
-- '"' and every '\' inside it is preceded by '\', nothing else is, and after the closing quote
-- comes only the ImportDate clause. Also the policy's include hook never raises on a
-- certificate whose IssuerDN is the term.
local H = require("harness").setup(...)
local policy = require("metasync.stock").load("sctokf")
local log = require("metasync.log")

-- keyfactor_query parses keyfactorAddedSince with keyfactorDateFormat through metasync.dates,
-- which caches every format it compiles without bound (one format per configuration in a run,
-- a new one with nearly every input here: 2 GB after 500,000 inputs). A fresh module now and
-- then keeps the process from growing; the policy requires it at each call, so it sees the new one.
local reset = H.every(20000, function() package.loaded["metasync.dates"] = nil end)

-- unquote(q, pos) -> the string Keyfactor reads from the quoted literal starting at q[pos]
-- ('"'), and the position after its closing quote; nil and why when it is not well formed.
local function unquote(q, pos)
  local out, i = {}, pos + 1
  while i <= #q do
    local c = q:sub(i, i)
    if c == "\\" then
      local n = q:sub(i + 1, i + 1)
      if n ~= '"' and n ~= "\\" then return nil, string.format("unescaped '\\' at %d", i) end
      out[#out + 1] = n
      i = i + 2
    elseif c == '"' then
      return table.concat(out), i + 1
    else
      out[#out + 1] = c
      i = i + 1
    end
  end
  return nil, "no closing quote"
end

return function(data)
  reset()
  local parts = H.split(data, "\n--\n", 3)
  local term, since, fmt = parts[1], parts[2], parts[3] or "M/d/yyyy h:mm:ss tt"
  for _, all in ipairs { false, true } do
    local ctx = { cfg = { issuerDNLookupTerm = term, keyfactorAddedSince = since, syncRevokedAndExpiredCerts = all },
      date_format = fmt, log = log, today = "2025-07-23" }
    local ok, q = pcall(policy.keyfactor_query, ctx)
    if not ok then H.fail("keyfactor_query raised on %s: %s", H.quote(term), tostring(q)) end
    if type(q) ~= "table" or type(q.query) ~= "string" then H.fail("keyfactor_query returned no query string") end
    if q.include_revoked ~= all or q.include_expired ~= all then H.fail("revoked/expired flags do not follow syncRevokedAndExpiredCerts") end
    local s = q.query
    local prefix = 'IssuerDN -contains '
    if s:sub(1, #prefix + 1) ~= prefix .. '"' then H.fail("query %s does not start with %s", H.quote(s), prefix) end
    local got, after = unquote(s, #prefix + 1)
    if got == nil or got ~= term then
      H.fail("term %s is not escaped: query %s (%s)", H.quote(term), H.quote(s),
        got == nil and after or ("reads back as " .. H.quote(got)))
    end
    do
      local rest = s:sub(after)
      if rest ~= "" and not rest:match('^ AND ImportDate %-ge "%d%d%d%d%-%d%d%-%d%d"$') then
        H.fail("query %s continues after the term with %s", H.quote(s), H.quote(rest))
      end
      if rest ~= "" and (since == nil or since == "") then H.fail("an ImportDate clause without keyfactorAddedSince") end
    end
    do
      local iok, r = pcall(policy.include, { IssuerDN = "CN=x, O=" .. term, CertState = 1, NotAfter = "2030-01-01T00:00:00" }, ctx)
      if not iok then H.fail("include raised: %s", tostring(r)) end
      if r ~= true then H.fail("include refuses a certificate whose issuer holds the term %s", H.quote(term)) end
    end
  end
end

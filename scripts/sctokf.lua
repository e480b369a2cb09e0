-- sctokf.lua: the stock Sectigo -> Keyfactor policy.
--
-- This file is the whole policy, top to bottom. To change it for your site, either
--   * copy it to <config dir>/scripts/sctokf.lua (or a --scripts DIR) and edit the copy, or
--   * keep the stock file and override single hooks from a short site script:
--       local policy = require("metasync.stock").load("sctokf")
--       local stock_include = policy.include
--       function policy.include(cert, ctx) ... return stock_include(cert, ctx) end
--       return policy:run()
--
-- Every hook receives `ctx`: ctx.cfg (config.json, with defaults filled in), ctx.sectigo_fields
-- (Sectigo custom field definitions), ctx.banned (bannedcharacters.json), ctx.date_format
-- (Keyfactor's keyfactorDateFormat), ctx.sectigo_date_format (Sectigo's own, MM/dd/yyyy),
-- ctx.today (the run's date, UTC yyyy-MM-dd), ctx.dry_run, ctx.log. The library does the mechanics: it lists both sides, matches them by
-- serial number, compares values and writes only what differs.

local fields = require("metasync.fields")
local values = require("metasync.values")

local policy = require("metasync.policy").new("sctokf")

---------------------------------------------------------------------------------------------
-- 1. Which fields are synced
---------------------------------------------------------------------------------------------
-- With importAllCustomFields, every Sectigo custom field becomes a Keyfactor metadata field of
-- the matching type (TEXT_SINGLE_LINE -> String, TEXT_MULTI_LINE -> BigText, EMAIL -> Email,
-- NUMBER -> Integer, TEXT_OPTION -> MultipleChoice with its options, DATE -> Date).
-- Inactive Sectigo fields are left out unless enableDisabledFieldSync is true.
-- Without it, fields.json's CustomFields say which fields go where.
-- ManualFields always come on top: each names a path into Sectigo's certificate details
-- ("id", "certType.id", "certificateDetails.issuer", "status" ...).
function policy.fields(ctx)
  local list = {}
  if ctx.cfg.importAllCustomFields then
    for _, def in ipairs(ctx.sectigo_fields) do
      if ctx.cfg.enableDisabledFieldSync or fields.active(def) then
        list[#list + 1] = fields.from_sectigo(def)
      end
    end
  else
    for _, f in ipairs(ctx.cfg.fields.custom) do list[#list + 1] = f end
  end
  for _, f in ipairs(ctx.cfg.fields.manual) do list[#list + 1] = f end
  return list
end

---------------------------------------------------------------------------------------------
-- 2. Field names
---------------------------------------------------------------------------------------------
-- Keyfactor names accept only A-Z a-z 0-9 _ -. Other characters are replaced as
-- bannedcharacters.json says ("Cost Center" -> "Cost_Center" with " " -> "_"). A character
-- with no replacement yet is added to that file with "null", and the run stops so you can
-- fill it in. Returns the new name and the characters still lacking a replacement.
function policy.keyfactor_name(field, ctx)
  return ctx.banned:rewrite(field.keyfactor)
end

---------------------------------------------------------------------------------------------
-- 3. Which certificates
---------------------------------------------------------------------------------------------
-- Sectigo side: one listing per profile in sslTypeIds (all profiles when the list is empty),
-- only Issued certificates unless syncRevokedAndExpiredCerts is true.
function policy.sectigo_filters(ctx)
  local status = (not ctx.cfg.syncRevokedAndExpiredCerts) and "Issued" or nil
  local page_size = ctx.cfg.sectigoPageSize
  local out = {}
  for _, id in ipairs(ctx.cfg.sslTypeIds) do
    out[#out + 1] = { status = status, ssl_type_id = id, page_size = page_size }
  end
  if #out == 0 then out[1] = { status = status, page_size = page_size } end
  return out
end

-- Keyfactor side: certificates whose issuer DN contains issuerDNLookupTerm, with revoked and
-- expired ones only when syncRevokedAndExpiredCerts is true; keyfactorAddedSince limits the
-- query to certificates imported since that date.
function policy.keyfactor_query(ctx)
  -- Backslash first, then the quote, so a term ending in "\" cannot escape the closing quote.
  local term = ctx.cfg.issuerDNLookupTerm:gsub("\\", "\\\\"):gsub('"', '\\"')
  local q = string.format('IssuerDN -contains "%s"', term)
  local since = ctx.cfg.keyfactorAddedSince
  if since and since ~= "" then
    local d = require("metasync.dates").parse_any(since, ctx.date_format)
    if d then q = q .. string.format(' AND ImportDate -ge "%04d-%02d-%02d"', d.year, d.month, d.day)
    else ctx.log.warn("policy", "keyfactorAddedSince '%s' is not a date; ignored", since) end
  end
  local all = ctx.cfg.syncRevokedAndExpiredCerts
  return { query = q, include_revoked = all, include_expired = all }
end

-- The keys of each Keyfactor certificate the hooks read. Only these are decoded from the
-- listing (a certificate carries about 30, with arrays, and decoding them all costs most of a
-- run's time); a hook that reads a key not listed fails with an error naming it. Set it to
-- nil to decode everything.
policy.keyfactor_fields = { "Id", "SerialNumber", "IssuerDN", "IssuedCN", "CertState", "NotAfter", "Metadata" }

-- Checked again here for every Keyfactor certificate, so a certificate from another CA
-- (say DigiCert) whose serial happens to equal a Sectigo one is never touched, whatever the
-- server's query did. Return false to leave a certificate alone.
function policy.include(cert, ctx)
  -- the issuer names the lookup term, in any case
  if not values.contains(cert.IssuerDN, ctx.cfg.issuerDNLookupTerm) then return false end
  if not ctx.cfg.syncRevokedAndExpiredCerts then
    if cert.CertState == 2 then return false end -- revoked
    -- expired: NotAfter (yyyy-MM-ddThh:mm:ss...) before today; ISO dates compare as text (the
    -- comparison first: it is cheaper than the pattern, and most certificates are not expired)
    local na = cert.NotAfter
    if type(na) == "string" and na < (ctx.today or os.date("!%Y-%m-%d")) and na:find("^%d%d%d%d%-%d%d%-%d%d") then
      return false
    end
  end
  return true
end

---------------------------------------------------------------------------------------------
-- 4. Values
---------------------------------------------------------------------------------------------
-- Where a field's value comes from: a custom field by name, or a manual field's path into the
-- certificate details (fields.source_value). Returning nil (or "") means "no value": the
-- Keyfactor value is kept. To take values from elsewhere, replace it with your own
--   function policy.source_value(field, details, kfcert, ctx) ... end
-- (the library then calls it for every field of every certificate; with fields.source_value
-- it can tell a certificate that needs nothing without calling Lua per field).
policy.source_value = fields.source_value

-- convert() is called once per distinct value of a field in a run (the library remembers the
-- answers), so it must give the same answer for the same value, as it does here.
-- How a value is written to Keyfactor, by the field's DataType: integers as "1234" (never
-- "1234.0"), booleans as true/false, dates as yyyy-MM-dd, MultipleChoice checked against the
-- options. Values longer than Keyfactor allows are refused unless enableTruncation is true.
-- The value comes from Sectigo, so a date is read in Sectigo's format (MM/dd/yyyy), never in
-- keyfactorDateFormat: with a day-first Keyfactor format, 03/04/2026 is still 4 March.
-- Returns the value, or nil and the reason it cannot be converted. The stock conversion (with
-- values = require("metasync.values")) is
--   function(value, field, ctx)
--     return values.to_keyfactor(value, field.datatype, { options = field.options,
--       truncate = ctx.cfg.enableTruncation, date_format = ctx.sectigo_date_format })
--   end
-- kept in the library (fields.keyfactor_convert) so that, while it is the policy's, a value
-- that already equals Keyfactor's is recognised without Lua; replace it to convert otherwise.
policy.convert = fields.keyfactor_convert

return policy:main()

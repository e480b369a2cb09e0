-- kftosc.lua: the stock Keyfactor -> Sectigo policy.
--
-- This file is the whole policy, top to bottom. To change it for your site, either
--   * copy it to <config dir>/scripts/kftosc.lua (or a --scripts DIR) and edit the copy, or
--   * override single hooks from a short site script:
--       local policy = require("metasync.stock").load("kftosc")
--       function policy.convert(value, field, ctx) ... end
--       return policy:run()
--
-- Only custom fields flow this way; manual fields (Sectigo's own certificate details) are
-- never written back. For every certificate, the complete custom field list is sent, with the
-- changed values merged in, so no other field is dropped; "comments" is never touched. Values
-- equal to what Sectigo already holds are not written.

local fields = require("metasync.fields")
local values = require("metasync.values")

-- The certificate selection and field naming are the same as Sectigo -> Keyfactor: start
-- from that policy and change what differs.
local policy = require("metasync.stock").load("sctokf")
policy.direction = "kftosc"

---------------------------------------------------------------------------------------------
-- 1. Which fields are synced: custom fields only. Inactive Sectigo fields are never written,
--    even with enableDisabledFieldSync: Sectigo refuses their values (the library skips them).
---------------------------------------------------------------------------------------------
local sctokf_fields = policy.fields
function policy.fields(ctx)
  local list = {}
  for _, f in ipairs(sctokf_fields(ctx)) do
    if f.kind == "custom" then list[#list + 1] = f end
  end
  return list
end

---------------------------------------------------------------------------------------------
-- 2. Field names: as for sctokf (policy.keyfactor_name), so both directions look up the same
--    Keyfactor field.
-- 3. Which certificates: as for sctokf (policy.sectigo_filters, keyfactor_query, include).
---------------------------------------------------------------------------------------------

---------------------------------------------------------------------------------------------
-- 4. Values
---------------------------------------------------------------------------------------------
-- The source is the Keyfactor certificate's metadata value for the field. Empty means "no
-- value": Sectigo's value is kept.
function policy.source_value(field, details, kfcert, ctx)
  return fields.metadata(kfcert, field.keyfactor)
end

-- How a value is written to Sectigo, by the Sectigo field's input type: DATE values are read
-- with keyfactorDateFormat (Keyfactor 25.1 returns "7/23/2025 12:00:00 AM") and written as
-- yyyy-MM-dd; NUMBER as an integer; text up to Sectigo's 256 characters (longer values are
-- refused unless enableTruncation is true).
function policy.convert(value, field, ctx)
  return values.to_sectigo(value, field.sectigo_type, {
    date_format = ctx.date_format, truncate = ctx.cfg.enableTruncation })
end

return policy:main()

-- sync.lua: the stock two-way policy, against a baseline of the values both sides last agreed on.
--
-- This file is the whole policy, top to bottom. To change it for your site, either
--   * copy it to <config dir>/scripts/sync.lua (or a --scripts DIR) and edit the copy, or
--   * override single hooks from a short site script:
--       local policy = require("metasync.stock").load("sync")
--       function policy.resolve(conflict, ctx) ... end
--       return policy:run()
--
-- For each matched certificate and each custom field, the library compares Sectigo's value,
-- Keyfactor's value and the baseline (the state file, stateFile in config.json):
--   both equal                               -> nothing written; the baseline is that value
--   only Sectigo changed since the baseline  -> Sectigo's value, or its clearing, to Keyfactor
--   only Keyfactor changed                   -> Keyfactor's value, or its clearing, to Sectigo
--   both changed, differently                -> a conflict: policy.resolve() decides, or it is
--                                               left for you (exit 3)
--   no baseline yet                          -> a value on one side only is copied; two
--                                               different values are a conflict
-- Manual fields (Sectigo's own details) go only Sectigo -> Keyfactor. A fields.json entry may
-- fix a custom field's direction with "syncDirection": "sctokf" or "kftosc" ("both" is the
-- default). A clear is copied only when both values were read and the Sectigo field is active:
-- an inactive field shows no values, and that is never taken for a deletion.

local fields = require("metasync.fields")
local values = require("metasync.values")

-- Which fields and which certificates: as for Sectigo -> Keyfactor (policy.fields,
-- keyfactor_name, sectigo_filters, keyfactor_query, include). Start from that policy.
local policy = require("metasync.stock").load("sctokf")
policy.direction = "sync"

---------------------------------------------------------------------------------------------
-- Values on each side
---------------------------------------------------------------------------------------------
-- Sectigo's value of a field: a custom field by name, or a manual field's path into the
-- certificate details.
function policy.sectigo_value(field, details, kfcert, ctx)
  if field.kind == "manual" then return values.dig(details, field.sectigo) end
  return fields.custom_value(details, field.sectigo)
end

-- Keyfactor's value of a field: the certificate's metadata.
function policy.keyfactor_value(field, details, kfcert, ctx)
  return fields.metadata(kfcert, field.keyfactor)
end

-- A Sectigo value as Keyfactor should hold it (the sctokf conversion: dates read as Sectigo's
-- MM/dd/yyyy, written yyyy-MM-dd; integers without ".0"; MultipleChoice checked against the
-- options). Values are compared in these terms, so the conversion must give the same answer
-- for the same value. Returns the value, or nil and the reason it cannot be converted.
function policy.to_keyfactor(value, field, ctx)
  return values.to_keyfactor(value, field.datatype, {
    options = field.options, truncate = ctx.cfg.enableTruncation, date_format = ctx.sectigo_date_format })
end

-- A Keyfactor value as Sectigo should hold it (the kftosc conversion: dates read with
-- keyfactorDateFormat and written yyyy-MM-dd, NUMBER as an integer, text up to 256 characters).
-- A site that maps values (Sectigo "Prod" is Keyfactor "Production") maps them in both
-- conversions, the one the reverse of the other.
function policy.to_sectigo(value, field, ctx)
  return values.to_sectigo(value, field.sectigo_type, {
    date_format = ctx.date_format, truncate = ctx.cfg.enableTruncation })
end

---------------------------------------------------------------------------------------------
-- Conflicts
---------------------------------------------------------------------------------------------
-- Both sides changed a field differently since they last agreed. conflict = {serial, field
-- (the Keyfactor name), sectigo_field, sectigo, keyfactor, baseline (each canonical text or
-- nil), keyfactor_id, sectigo_id}. Return "sectigo" or "keyfactor" for the side whose value
-- wins, or nil to write neither and list the conflict (the run then ends with exit 3).
-- conflictPolicy in config.json chooses for every field: report (the default), sectigo or
-- keyfactor. To decide per field, e.g.:
--   if conflict.field == "CostCenter" then return "keyfactor" end
function policy.resolve(conflict, ctx)
  local choice = ctx.cfg.conflictPolicy
  if choice == "sectigo" or choice == "keyfactor" then return choice end
  return nil
end

return policy:main()

-- Example: Sectigo -> Keyfactor with a value map. Sectigo's "Environment" option values are
-- spelled differently in Keyfactor ("Production" -> "PROD" ...). Values without an entry go
-- through unchanged. Everything else is the stock policy.
--
-- Install: copy to <config dir>/scripts/sctokf.lua (or a --scripts DIR); in fields.json give
-- the Keyfactor field the options it really has (e.g. ["PROD", "STAGE", "DEV"]).
local MAP = {
  Environment = { Production = "PROD", Staging = "STAGE", Development = "DEV" },
}

local policy = require("metasync.stock").load("sctokf")

local stock_convert = policy.convert
function policy.convert(value, field, ctx)
  local map = MAP[field.sectigo]
  if map and type(value) == "string" and map[value] then value = map[value] end
  return stock_convert(value, field, ctx)
end

return policy:run()

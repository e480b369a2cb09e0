-- Example: Sectigo -> Keyfactor, but leave alone every certificate whose common name matches
-- a pattern (here: test and staging hosts). Everything else is the stock policy.
--
-- Install: copy to <config dir>/scripts/sctokf.lua (or a --scripts DIR) and adjust SKIP.
local re = require("metasync.re")

local SKIP = re.compile([[^(test|staging)[0-9]*\.]], "i")

local policy = require("metasync.stock").load("sctokf")

local stock_include = policy.include
function policy.include(cert, ctx)
  if type(cert.IssuedCN) == "string" and SKIP:match(cert.IssuedCN) then
    ctx.log.debug("policy", "skipping %s: common name matches the skip pattern", cert.IssuedCN)
    return false
  end
  return stock_include(cert, ctx)
end

return policy:run()

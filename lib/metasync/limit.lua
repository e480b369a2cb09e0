-- The change limit (--max-changes N|P%, maxChanges in config.json): the most certificates one
-- run may write, a guard for unattended runs against a policy or data mistake that would
-- rewrite an inventory. A certificate's write takes a slot when it is decided, before it is
-- sent, so writes in flight never overshoot. Once the limit is reached nothing more is
-- written; the rest of the run still decides, so the summary can say how many certificates it
-- would have written and how many of those overwrite a value that is there.
local values = require("metasync.values")

local M = {}
local Limit = {}
Limit.__index = Limit

-- new(spec, population) -> limit | nil. A percentage is of `population`: the certificates the
-- Sectigo index holds, the most a run can match (known before the first write, where the
-- matched count is known only at the end of a streamed run).
function M.new(spec, population)
  if not spec then return nil end
  local max = spec.count or math.floor((spec.percent / 100) * (population or 0))
  return setmetatable({ spec = spec, max = max, taken = 0, over = 0, nonempty = 0 }, Limit)
end

function Limit:describe()
  if self.spec.percent then
    return string.format("%s%% of %d = %d certificates", tostring(self.spec.percent),
      math.floor(self.max * 100 / self.spec.percent + 0.5), self.max)
  end
  return string.format("%d certificates", self.max)
end

-- take(changes) -> true when this certificate may be written. changes: {old=, new=} each.
function Limit:take(changes)
  for _, c in ipairs(changes) do
    if not values.absent(c.old) then self.nonempty = self.nonempty + 1; break end
  end
  if self.taken < self.max then
    self.taken = self.taken + 1
    return true
  end
  self.over = self.over + 1
  return false
end

function Limit:tripped() return self.over > 0 end

return M

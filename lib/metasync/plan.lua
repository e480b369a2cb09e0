-- A plan is the list of writes a run intends: one entry per certificate with the fields that
-- change (old -> new). Computing it first makes --dry-run exact and lets the writes go out
-- with bounded concurrency.
local task = require("metasync.task")
local values = require("metasync.values")

local M = {}
local Plan = {}
Plan.__index = Plan

function M.new(direction)
  return setmetatable({ direction = direction, entries = {} }, Plan)
end

-- add{serial=, id=, label=, changes={{field=, old=, new=}...}, payload=} (skipped when no change)
function Plan:add(entry)
  if entry.changes and #entry.changes > 0 then self.entries[#self.entries + 1] = entry end
end

function Plan:size() return #self.entries end

local function show(v)
  local s = values.text(v)
  if s == nil then return "(none)" end
  return "'" .. s .. "'"
end

-- lines() -> the plan as text, one certificate header then one line per field change.
function Plan:lines(target)
  local out = {}
  for _, e in ipairs(self.entries) do
    out[#out + 1] = string.format("%s %s (%s%s):", target or "update", e.serial or "?",
      e.id_label or ("id " .. tostring(e.id)), e.label and (", " .. e.label) or "")
    for _, c in ipairs(e.changes) do
      out[#out + 1] = string.format("    %s: %s -> %s", c.field, show(c.old), show(c.new))
    end
  end
  return out
end

-- apply(n, fn) -> updated count, failures {{entry=, error=}}. fn(entry) -> true | nil, message;
-- at most n run at once.
function Plan:apply(n, fn)
  local i = 0
  local entries = self.entries
  local results, errors = task.map(function() i = i + 1; return entries[i] and i or nil end, n,
    function(k)
      local ok, err = fn(entries[k])
      if not ok then error(err or "failed", 0) end
      return true
    end)
  local updated, failures = 0, {}
  for k, e in ipairs(entries) do
    if results and results[k] then
      updated = updated + 1
    else
      local err = errors and errors[k]
      failures[#failures + 1] = { entry = e, error = err and tostring(err):match("^[^\n]*") or "failed" }
    end
  end
  return updated, failures
end

return M

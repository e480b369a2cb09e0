-- A bounded cache of encoded JSON per world object (certificate), in kinds ("scd" details,
-- "scl" list items, "kf0"/"kf1" Keyfactor items, "row" report rows). Two generations keep the
-- total near a byte budget: when the new one fills half the budget it becomes the old one and
-- the previous old one is dropped; a hit in the old generation moves the entry up. So memory
-- stays bounded however large the world, while a working set under half the budget always hits.
-- A kind has a variant key (e.g. the date format it was rendered with): changing it empties the kind.
local N = require("counters")

local JC = {}
JC.__index = JC

JC.BUDGET = 128 * 1024 * 1024

function JC.new(budget)
  return setmetatable({ new = {}, old = {}, bytes = 0, budget = budget or JC.BUDGET, variant = {} }, JC)
end

-- The cache of world w (made on first use; a new world starts empty).
function JC.of(w)
  local c = w.jcache
  if not c then
    c = JC.new()
    w.jcache = c
  end
  return c
end

local function gen_kind(g, kind)
  local t = g[kind]
  if not t then
    t = {}
    g[kind] = t
  end
  return t
end

-- Makes sure entries of kind were rendered for variant v (any comparable value).
function JC:use_variant(kind, v)
  if self.variant[kind] ~= v then
    self.variant[kind] = v
    self.new[kind], self.old[kind] = nil, nil
  end
end

function JC:get(kind, obj)
  local n = self.new[kind]
  local s = n and n[obj]
  if s then
    N.add("json_hits")
    return s
  end
  local o = self.old[kind]
  s = o and o[obj]
  if s then
    o[obj] = nil
    self:put(kind, obj, s)
    N.add("json_hits")
  else
    N.add("json_misses")
  end
  return s
end

function JC:put(kind, obj, s)
  gen_kind(self.new, kind)[obj] = s
  self.bytes = self.bytes + #s + 40
  if self.bytes > self.budget // 2 then
    self.old, self.new, self.bytes = self.new, {}, 0
  end
  return s
end

-- Forgets everything cached for obj (after a write to it).
function JC:drop(obj)
  for _, g in ipairs({ self.new, self.old }) do
    for _, t in pairs(g) do t[obj] = nil end
  end
end

-- get, or compute with fn(obj) and keep.
function JC:fetch(kind, obj, fn)
  local s = self:get(kind, obj)
  if s then return s end
  return self:put(kind, obj, fn(obj))
end

return JC

-- Work counters of the indexes and caches, shown under "index" by GET /__sim/stats (and zeroed
-- with the other stats), so tests can tell a cached answer from a rebuilt one.
--   sectigo_lists_built      filtered Sectigo lists built (one per distinct filter combination)
--   sectigo_date_indexes     report date indexes built (one per date attribute and world)
--   keyfactor_lists_built    filtered and sorted Keyfactor lists built
--   certificates_scanned     certificates examined while building those or selecting report rows
--   json_hits / json_misses  encoded items, details and rows found / not found in the JSON cache
local N = { names = { "sectigo_lists_built", "sectigo_date_indexes", "keyfactor_lists_built",
  "certificates_scanned", "json_hits", "json_misses" } }
local v = {}

function N.add(name, n) v[name] = v[name] + (n or 1) end

function N.reset() for _, k in ipairs(N.names) do v[k] = 0 end end

function N.get()
  local out = {}
  for _, k in ipairs(N.names) do out[k] = v[k] end
  return out
end

N.reset()
return N

local plan = require("metasync.plan")
local task = require("metasync.task")
local p = plan.new("sctokf")
p:add({ serial = "A1", id = 1, changes = {} })
assert(p:size() == 0, "an entry without changes is not planned")
for i = 1, 20 do
  p:add({ serial = "S" .. i, id = i, label = "cn" .. i, changes = { { field = "F", old = nil, new = tostring(i) } } })
end
local lines = p:lines("Keyfactor")
assert(lines[1] == "Keyfactor S1 (id 1, cn1):" and lines[2] == "    F: (none) -> '1'", lines[1] .. "|" .. lines[2])
-- apply: bounded concurrency, failures carry their reason
local inflight, peak = 0, 0
local updated, failures = p:apply(8, function(e)
  inflight = inflight + 1
  peak = math.max(peak, inflight)
  task.sleep(0.01)
  inflight = inflight - 1
  if e.id == 5 then return nil, "HTTP 400: nope" end
  return true
end)
assert(updated == 19 and #failures == 1 and failures[1].entry.id == 5 and failures[1].error == "HTTP 400: nope")
assert(peak == 8, "at most 8 and really 8 in flight, got " .. peak)
print("ok")

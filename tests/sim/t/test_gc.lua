-- The simulator's garbage: its automatic collector is stopped, and the worker thread collects
-- it, in steps while no request waits (sim_worker.c). Six resets leave six old worlds behind,
-- which no allocation's collection frees; the heap must then shrink by itself.
local T = dofile(((arg and arg[0] or ""):match("^(.*/)") or "") .. "simtest.lua")
local task = require("metasync.task")

local function heap_kb() return T.decode(T.ctl("GET", "stats")).lua_heap_kb end

T.test("the worker collects the garbage of old worlds", function()
  local peak = 0
  for i = 1, 6 do
    T.eq(T.ctl("POST", "reset", { certs = 3000, seed = 5 + i }).status, 200, "reset " .. i)
    peak = math.max(peak, heap_kb())
  end
  -- Each stats call leaves the worker idle until the next, and the collection goes on
  -- meanwhile. A cycle takes a few hundred steps of a few ms at most: the deadline is far off.
  local deadline, now = task.now() + 60, heap_kb()
  while now > peak * 0.75 and task.now() < deadline do
    task.sleep(0.05)
    now = heap_kb()
  end
  T.ok(now <= peak * 0.75, string.format("heap %d KiB, at most %d KiB after the resets", now, peak))
end)

T.done()

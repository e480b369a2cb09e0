-- The simulator's garbage: its automatic collector is stopped, and the worker thread collects
-- it (sim_worker.c). Every reset leaves the old world behind, which no allocation's collection
-- frees; after twelve of them the heap must hold a few worlds, not the thirteen it would hold
-- uncollected. The worker's own bound is twice the heap at the end of its last cycle (which may
-- still hold the world a reset was replacing) plus the world the current reset builds: up to
-- about five, and under load (two CPU hogs beside the test) 4.2 was seen. So the test allows 8.
local T = dofile(((arg and arg[0] or ""):match("^(.*/)") or "") .. "simtest.lua")

local function heap_kb() return T.decode(T.ctl("GET", "stats")).lua_heap_kb end

T.test("the worker collects the garbage of old worlds", function()
  T.eq(T.ctl("POST", "reset", { certs = 3000, seed = 5 }).status, 200, "reset")
  local one, seen = heap_kb(), {}
  for i = 1, 12 do
    T.eq(T.ctl("POST", "reset", { certs = 3000, seed = 5 + i }).status, 200, "reset " .. i)
    seen[#seen + 1] = heap_kb()
  end
  for i, kb in ipairs(seen) do
    T.ok(kb <= 8 * one, string.format("after reset %d: heap %d KiB, one world %d KiB", i, kb, one))
  end
end)

T.done()

-- metasync.task: spawn/join, errors with tracebacks, sleep as a timer, map, semaphores.
local task = require "metasync.task"

-- spawn and join: results come back in order; join can be called twice.
local t = task.spawn(function(a, b) return a + b, "x" end, 2, 3)
local ok, sum, x = t:join()
assert(ok == true and sum == 5 and x == "x")
assert(t:done())
assert(select("#", t:join()) == 3)

-- An error comes back to whoever joins, with a traceback; other tasks keep running.
local survivor = task.spawn(function() task.sleep(0.05) return "alive" end)
local bad = task.spawn(function() local function inner() error("boom") end inner() end)
local ok2, err = bad:join()
assert(ok2 == false and err:find("boom", 1, true) and err:find("stack traceback", 1, true), err)
assert(err:find("inner", 1, true), "traceback names the failing function")
assert(select(2, survivor:join()) == "alive")

-- Non-string error objects are kept as they are.
local okt, obj = task.spawn(function() error({code = 7}) end):join()
assert(okt == false and type(obj) == "table" and obj.code == 7)

-- sleep is a timer: 50 tasks sleeping 0.2 s finish together, not one after another.
local t0 = task.now()
local ts = {}
for i = 1, 50 do ts[i] = task.spawn(function() task.sleep(0.2) return i end) end
local all = task.wait_all(ts)
assert(#all == 50 and all[50][1] == true and all[50][2] == 50)
local took = task.now() - t0
assert(took >= 0.19, "sleep returned early: " .. took)
-- (an upper bound would be a timed assertion; the sleeping tasks are counted by CPU below instead)
local c0 = os.clock()
task.sleep(0.3)
assert(os.clock() - c0 < 0.2, "sleep must not busy-wait")

-- Ordering: a task that sleeps less finishes first.
local order = {}
local a = task.spawn(function() task.sleep(0.1) order[#order + 1] = "slow" end)
local b = task.spawn(function() task.sleep(0.01) order[#order + 1] = "fast" end)
a:join() b:join()
assert(order[1] == "fast" and order[2] == "slow")

-- map: at most n in flight, every item processed, errors kept per item.
local inflight, peak = 0, 0
local items = {}
for i = 1, 20 do items[i] = i end
local idx = 0
local function iter() idx = idx + 1 return items[idx] end
local results, errors = task.map(iter, 4, function(i)
  inflight = inflight + 1
  if inflight > peak then peak = inflight end
  task.sleep(0.01)
  inflight = inflight - 1
  if i == 7 then error("seven") end
  return i * 10
end)
assert(peak == 4, "peak in flight was " .. peak)
assert(results[20] == 200 and results[1] == 10 and results[7] == nil)
assert(errors[7] and errors[7]:find("seven", 1, true))
local n = 0
for _ in pairs(results) do n = n + 1 end
assert(n == 19)

-- semaphore: permits pass in FIFO order to waiters.
local s = task.semaphore(1)
local log = {}
s:acquire()
local w1 = task.spawn(function() s:acquire() log[#log + 1] = 1 s:release() end)
local w2 = task.spawn(function() s:acquire() log[#log + 1] = 2 s:release() end)
task.sleep(0.01)
assert(#log == 0, "waiters must wait for the permit")
s:release()
w1:join() w2:join()
assert(log[1] == 1 and log[2] == 2)

-- current(): inside a task it is that task; yield lets others run.
local me
local tt = task.spawn(function() me = task.current() task.yield() return true end)
tt:join()
assert(me == tt)

-- Misuse raises.
assert(not pcall(task.spawn, 42))
assert(not pcall(task.sleep, -1))
assert(not pcall(task.semaphore, -1))
print("test_task: ok")

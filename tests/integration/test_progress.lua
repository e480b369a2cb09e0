-- The progress line off a terminal: --progress forces it onto stderr (drawn, then erased
-- before the summary), --quiet keeps it off even then, and a plain run into a pipe draws
-- nothing. (tests/repl/test_progress_tty.sh watches it on a real terminal; tests/lua/
-- test_report.lua checks its throttle, ETA and the every-30-s INFO line.)
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")

local ERASE = "\r\27[K"
-- A slow world: every answer takes 100 ms, so the run lasts well past the first redraw (0.25 s).
local function slow_run(extra)
  H.reset(H.world())
  H.faults { global = { latency_ms = 100 } }
  local dir = H.config_dir()
  local rc, out, err = H.run(dir, "sctokf", extra)
  H.call("DELETE", H.sectigo .. "/__sim/faults")
  return rc, out, err
end

local rc, out, err = slow_run("--progress")
H.eq(rc, 0, "--progress run: " .. err)
local first = err:find(ERASE, 1, true)
assert(first, "--progress draws on stderr even off a terminal: " .. err)
assert(err:find("listed, %d+") and err:find("ETA"), "the line shows the counters: " .. err)
assert(err:sub(-#ERASE) == ERASE, "the line is erased at the end: " .. string.format("%q", err:sub(-120)))
assert(out:find("sctokf summary", 1, true), out)
assert(not out:find("\27", 1, true), "stdout stays clean")

rc, out, err = slow_run("--progress --quiet")
H.eq(rc, 0, "--quiet run")
assert(not err:find("\27[K", 1, true), "--quiet draws no line: " .. err)
assert(out:find("sctokf summary", 1, true), "--quiet still prints the summary")

rc, out, err = slow_run("")
H.eq(rc, 0, "plain run")
assert(not err:find("\27[K", 1, true), "no line when stderr is not a terminal: " .. err)
print("ok")

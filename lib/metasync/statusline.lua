-- The REPL helpers' status line: one line on stderr, on a terminal only, saying how far a long
-- listing is ("missing CostCenter: 12,000 Keyfactor certificates listed, 310 rows"). Whoever
-- writes to the terminal calls clear() first (metasync.table_out does), and the shell calls it
-- after every chunk, so a listing stopped by Ctrl-C leaves nothing behind. (A run's own status
-- line is metasync.progress: timers and run counters, which a helper has neither of.)
local task = require("metasync.task")

local M = { drawn = false, last = 0 }

M.INTERVAL = 0.25 -- at most 4 redraws a second

local function enabled()
  local ok, o = pcall(require, "metasync.options")
  local term = os.getenv("TERM")
  return ok and type(o) == "table" and o.stderr_tty == true and term ~= nil and term ~= "" and term ~= "dumb"
end

-- update(text_fn): redraws the line with text_fn() when the last draw is INTERVAL old. The text
-- is only made when it is drawn, so a caller may call this for every certificate.
function M.update(text_fn)
  if M.on == nil then M.on = enabled() end
  if not M.on then return end
  local now = task.now()
  if now - M.last < M.INTERVAL then return end
  M.last = now
  local s = tostring(text_fn()):gsub("%c", " ")
  local w = require("metasync.table_out").width() - 1
  if (utf8.len(s) or #s) > w then s = s:sub(1, (utf8.len(s) and utf8.offset(s, w + 1) or w + 1) - 1) end
  io.stderr:write("\r\27[K", s)
  M.drawn = true
end

-- clear(): erases the line if it is drawn
function M.clear()
  if M.drawn then
    io.stderr:write("\r\27[K")
    M.drawn = false
  end
end

return M

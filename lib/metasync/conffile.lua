-- Reading the configuration's files (config.json, fields.json, bannedcharacters.json and the
-- *_FILE secrets) without trusting what sits at the path. metasync.fs opens without blocking
-- and checks the file it opened, so only a regular file is read, with a size cap so a huge
-- file cannot fill memory, and a FIFO cannot hang a run. Errors say what the path is ("is a
-- directory", "permission denied", "too many levels of symbolic links"), never just "file not
-- found".
local fs = require("metasync.fs")

local M = {}

M.MAX_BYTES = 4 * 1024 * 1024 -- config files are a few KiB; 4 MiB is generous
M.SECRET_MAX_BYTES = 64 * 1024

-- kind(path) -> "file" | "dir" | "fifo" | "device" | "socket" | "other" | "absent" | "dangling"
-- | nil, reason
M.kind = fs.kind

-- read(path[, max]) -> text, {mode=} | nil, reason, code. code is "absent" when nothing is
-- at the path (callers decide whether that is fine), "error" otherwise. reason never holds
-- the file's content.
function M.read(path, max)
  local text, mode, code = fs.read(path, max or M.MAX_BYTES)
  if not text then return nil, mode, code end
  return text, { mode = mode }
end

-- group_readable(info) -> the mode string when group or others may read the file
function M.group_readable(info)
  local m = info and info.mode and tonumber(info.mode, 8)
  if m and m & 0x24 ~= 0 then return info.mode end -- 0044: group or other read
end

-- env_secret(var) -> value | nil (unset) | nil, error. The plain variable wins; otherwise
-- VAR_FILE names a file whose content (one trailing newline stripped, as `echo` and most
-- secret stores leave one) is the secret. Errors name the variable and the path, never
-- the content.
function M.env_secret(var)
  local v = os.getenv(var)
  if v and v ~= "" then return v end
  local fvar = var .. "_FILE"
  local path = os.getenv(fvar)
  if not path or path == "" then return nil end
  local text, why = M.read(path, M.SECRET_MAX_BYTES)
  if not text then return nil, string.format("%s: %s: %s", fvar, path, why) end
  text = text:gsub("\r?\n$", "", 1)
  if text == "" then return nil, string.format("%s: %s: the file is empty", fvar, path) end
  if text:find("\0", 1, true) or text:find("[\r\n]") then
    return nil, string.format("%s: %s: the secret holds a NUL byte or a line break", fvar, path)
  end
  return text
end

-- target(path) -> the path a write should replace: path itself, or the final target when it
-- is a symbolic link (so rewriting it never turns the link into a regular file) | nil, error
M.target = fs.target

return M

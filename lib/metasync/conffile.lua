-- Reading the configuration's files (config.json, fields.json, bannedcharacters.json and the
-- *_FILE secrets) without trusting what sits at the path. The engine has no file-system binding,
-- and Lua's io.open cannot tell a FIFO from a file without opening it, which blocks until a
-- writer appears. So each path is first classified by one small shell probe (`test`, which
-- never opens the file), and only a regular file is opened, then read with a size cap so a
-- huge file cannot fill memory. Errors say what the path is ("is a directory", "permission
-- denied", "too many levels of symbolic links"), never just "file not found".
local M = {}

M.MAX_BYTES = 4 * 1024 * 1024 -- config files are a few KiB; 4 MiB is generous
M.SECRET_MAX_BYTES = 64 * 1024

function M.sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- The probe prints the kind of the path and, for a regular file, its octal mode (for the
-- "readable by others" warning). `-e` follows links, so a loop or a missing target is a
-- "dangling" link; the real reason then comes from io.open's errno text.
local PROBE = 'p=%s; if [ -L "$p" ] && [ ! -e "$p" ]; then echo dangling; '
  .. 'elif [ ! -e "$p" ]; then echo absent; elif [ -d "$p" ]; then echo dir; '
  .. 'elif [ -p "$p" ]; then echo fifo; elif [ -c "$p" ] || [ -b "$p" ]; then echo device; '
  .. 'elif [ -S "$p" ]; then echo socket; elif [ -f "$p" ]; then echo file; '
  .. 'stat -L -c %%a -- "$p" 2>/dev/null; else echo other; fi'

-- probe(path) -> kind, mode (octal string or nil) | nil when the shell cannot be run
function M.probe(path)
  local p = io.popen(string.format(PROBE, M.sh_quote(path)) .. " 2>/dev/null", "r")
  if not p then return nil end
  local out = p:read("a") or ""
  p:close()
  local kind, mode = out:match("^(%a+)\n?(%d*)")
  return kind, mode ~= "" and mode or nil
end

local NOT_REGULAR = {
  dir = "is a directory", fifo = "is a FIFO, not a regular file",
  device = "is a device, not a regular file", socket = "is a socket, not a regular file",
  other = "is not a regular file",
}

-- strerror text from io.open ("path: Permission denied") as a lower-case reason.
local function reason_of(msg, path)
  msg = tostring(msg or "cannot open")
  if msg:sub(1, #path + 2) == path .. ": " then msg = msg:sub(#path + 3) end
  return (msg:gsub("^%u", string.lower))
end

local function mib(n)
  if n % (1024 * 1024) == 0 then return string.format("%d MiB", n // (1024 * 1024)) end
  return string.format("%d bytes", n)
end

-- read(path[, max]) -> text, {mode=} | nil, reason, code. code is "absent" when nothing is
-- at the path (callers decide whether that is fine), "error" otherwise. reason never holds
-- the file's content.
function M.read(path, max)
  max = max or M.MAX_BYTES
  local kind, mode = M.probe(path)
  if not kind then return nil, "cannot check the file type (no shell)", "error" end
  if NOT_REGULAR[kind] then return nil, NOT_REGULAR[kind], "error" end
  -- "absent" and "dangling" have nothing to open, so io.open cannot block; it reports why
  -- (ENOENT, EACCES on a parent directory, ELOOP).
  local f, err, errno = io.open(path, "rb")
  if not f then
    if errno == 2 then
      if kind == "dangling" then return nil, "is a symbolic link to a missing file", "error" end
      return nil, "file not found", "absent"
    end
    return nil, reason_of(err, path), "error"
  end
  local text, rerr = f:read(max + 1)
  if text == nil and rerr then f:close(); return nil, "cannot read: " .. reason_of(rerr, path), "error" end
  f:close()
  text = text or ""
  if #text > max then return nil, "is larger than " .. mib(max), "error" end
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
function M.target(path)
  local p = io.popen(string.format('p=%s; if [ -L "$p" ]; then readlink -f -- "$p" || echo; else echo =; fi 2>/dev/null',
    M.sh_quote(path)), "r")
  if not p then return nil, "cannot check for a symbolic link (no shell)" end
  local out = (p:read("a") or ""):gsub("\n$", "", 1)
  p:close()
  if out == "=" then return path end
  if out == "" then return nil, "is a symbolic link whose target cannot be resolved" end
  return out
end

return M

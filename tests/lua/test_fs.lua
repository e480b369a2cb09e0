-- metasync.fs: what sits at a path is reported as what it is, only regular files are read,
-- the cap holds, and nothing can block (a FIFO with no writer is refused, not opened for good).
local fs = require("metasync.fs")

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function sh(cmd) assert(os.execute(cmd), cmd) end
local root = os.tmpname()
os.remove(root)
sh("mkdir -p " .. q(root))
local cleanup = setmetatable({}, { __gc = function() os.execute("rm -rf " .. q(root)) end })
local function write(path, text)
  local f = assert(io.open(path, "wb")); f:write(text); f:close()
end
local is_root = io.popen("id -u"):read("l") == "0"

write(root .. "/plain", "hello\n")
sh("chmod 640 " .. q(root .. "/plain"))
local text, mode = fs.read(root .. "/plain", 100)
assert(text == "hello\n" and mode == "640", tostring(text) .. " " .. tostring(mode))

-- the cap: exactly max is fine, one more is refused with the size named
assert(fs.read(root .. "/plain", 6) == "hello\n")
local t, why, code = fs.read(root .. "/plain", 5)
assert(t == nil and why == "is larger than 5 bytes" and code == "error", tostring(why))
t, why = fs.read(root .. "/plain", 2 * 1024 * 1024)
assert(t == "hello\n")
assert(not pcall(fs.read, root .. "/plain", -1))
assert(not pcall(fs.read, root .. "/plain", 1 << 40))

-- an empty file is an empty string, not an absence
write(root .. "/empty", "")
assert(fs.read(root .. "/empty", 10) == "")

-- absent, and a link to nothing
t, why, code = fs.read(root .. "/none", 10)
assert(t == nil and why == "file not found" and code == "absent")
assert(fs.kind(root .. "/none") == "absent")
sh("ln -s " .. q(root .. "/none") .. " " .. q(root .. "/dangling"))
t, why, code = fs.read(root .. "/dangling", 10)
assert(t == nil and why == "is a symbolic link to a missing file" and code == "error", why)
assert(fs.kind(root .. "/dangling") == "dangling")

-- a loop
sh("ln -s " .. q(root .. "/loop") .. " " .. q(root .. "/loop"))
t, why, code = fs.read(root .. "/loop", 10)
assert(t == nil and why == "too many levels of symbolic links" and code == "error", why)
assert(fs.kind(root .. "/loop") == "dangling")

-- a directory, a FIFO (would block an io.open for good), a device
sh("mkdir " .. q(root .. "/dir"))
t, why = fs.read(root .. "/dir", 10)
assert(t == nil and why == "is a directory", why)
assert(fs.kind(root .. "/dir") == "dir")
sh("mkfifo " .. q(root .. "/fifo"))
t, why = fs.read(root .. "/fifo", 10)
assert(t == nil and why == "is a FIFO, not a regular file", why)
assert(fs.kind(root .. "/fifo") == "fifo")
t, why = fs.read("/dev/zero", 10)
assert(t == nil and why == "is a device, not a regular file", why)
assert(fs.kind("/dev/null") == "device")

-- a link to a regular file is read through, and target() resolves it
sh("ln -s plain " .. q(root .. "/link"))
assert(fs.read(root .. "/link", 100) == "hello\n")
assert(fs.kind(root .. "/link") == "file")
local real = io.popen("readlink -f " .. q(root .. "/plain")):read("l")
assert(fs.target(root .. "/link") == real, tostring(fs.target(root .. "/link")))
assert(fs.target(root .. "/plain") == root .. "/plain")
local tt, terr = fs.target(root .. "/dangling")
assert(tt == nil and terr:find("cannot be resolved"), tostring(terr))

-- no permission (root reads everything, so only checked as another user)
if not is_root then
  write(root .. "/secret", "x")
  sh("chmod 000 " .. q(root .. "/secret"))
  t, why = fs.read(root .. "/secret", 10)
  assert(t == nil and why == "permission denied", why)
end

-- list
local names = assert(fs.list(root))
table.sort(names)
assert(table.concat(names, ",") == (is_root and "dangling,dir,empty,fifo,link,loop,plain" or "dangling,dir,empty,fifo,link,loop,plain,secret"),
  table.concat(names, ","))
assert(#assert(fs.list(root .. "/dir")) == 0)
local l, lerr = fs.list(root .. "/plain")
assert(l == nil and lerr == "not a directory", tostring(lerr))
l, lerr = fs.list(root .. "/none")
assert(l == nil and lerr == "no such file or directory", tostring(lerr))

cleanup = nil
collectgarbage()
print("test_fs: ok")

-- The old tool's NLog.config: where its logs went, their names, rotation and level. A site that
-- moves to metasync keeps the file in config/ and its log shippers keep finding the logs. Only
-- what decides those is read: <variable>, <target> and <logger> (rule) elements. The rest of
-- NLog (layouts, other target types, filters) is ignored, as are unknown attributes.
--
-- There is no XML library among the packages we may use, so this is a small scanner: tags and
-- attributes, comments, processing instructions and CDATA skipped, the five XML entities and
-- character references decoded, end tags matched. The file is untrusted: it is read through
-- conffile.read (regular files only, bounded), a DOCTYPE (the way to entity expansion) is
-- refused, and anything malformed is one line naming the file, the line and what was expected.
local conffile = require("metasync.conffile")
local fs = require("metasync.fs")

local M = {}

M.MAX_BYTES = 1024 * 1024 -- the old tool's file is under 2 KiB
M.MAX_ARCHIVES = 100      -- engine/log.c's limit
M.MAX_SIZE = 10240 * 1048576 -- as config.json's logMaxSizeMB
M.MAIN, M.ERRORS = "MainLogFile", "ErrorLogFile" -- the old tool's target names

local Fail = {}
local function fail(fmt, ...) error(setmetatable({ msg = string.format(fmt, ...) }, Fail), 0) end

-- find(dir) -> path of dir/NLog.config in any case (the old tool ships config/nlog.config) | nil
-- | nil, message.
function M.find(dir)
  local list = fs.list(dir)
  local names = {}
  for _, name in ipairs(list or {}) do
    if name:lower() == "nlog.config" then names[#names + 1] = name end
  end
  table.sort(names)
  if #names > 1 then
    return nil, string.format("%s/%s and %s/%s: two NLog configurations; keep one", dir, names[1], dir, names[2])
  end
  return names[1] and (dir .. "/" .. names[1]) or nil
end

local ENTITIES = { lt = "<", gt = ">", amp = "&", quot = '"', apos = "'" }

local function entity(name)
  if ENTITIES[name] then return ENTITIES[name] end
  local n = name:match("^#x(%x+)$") or name:match("^#X(%x+)$")
  n = n and tonumber(n, 16) or tonumber(name:match("^#(%d+)$") or "")
  -- NUL and surrogates are not characters; a NUL would cut every path at the C boundary
  if n and n > 0 and n <= 0x10FFFF and not (n >= 0xD800 and n <= 0xDFFF) then return utf8.char(n) end
end

local function unescape(raw, where)
  if not raw:find("&", 1, true) then return raw end
  local out, i = {}, 1
  while true do
    local a = raw:find("&", i, true)
    if not a then out[#out + 1] = raw:sub(i); break end
    out[#out + 1] = raw:sub(i, a - 1)
    local name, e = raw:match("^&(#?%w+);()", a)
    local ch = name and entity(name)
    if not ch then fail("%s: expected an entity such as &amp; or &#38; after '&'", where) end
    out[#out + 1] = ch
    i = e
  end
  return table.concat(out)
end

local function local_name(n) return (n:match("([^:]+)$") or n):lower() end

-- parse(text, file) -> doc {file=, variables={lname={name=, value=, line=}}, targets={lname=
-- {attrs..., line=}}, rules={{attrs..., line=}}} | nil, message. Attribute names are lower
-- case without their prefix (xsi:type -> type), as NLog matches them case-insensitively.
function M.parse(text, file)
  local ok, res = pcall(function()
    local pos, n, line, counted = 1, #text, 1, 1
    local function line_at(p) -- line numbers, counted forward once over the file
      if p > counted then
        for _ in text:sub(counted, p - 1):gmatch("\n") do line = line + 1 end
        counted = p
      end
      return line
    end
    local function at(p) return string.format("%s: line %d", file, line_at(p)) end
    local b1, b2 = text:byte(1, 2)
    if (b1 == 0xFF and b2 == 0xFE) or (b1 == 0xFE and b2 == 0xFF) then
      fail("%s: is UTF-16: expected UTF-8 (save it as UTF-8)", file)
    end
    if text:find("\0", 1, true) then fail("%s: holds a NUL byte: expected UTF-8 XML text", file) end
    if text:sub(1, 3) == "\239\187\191" then pos = 4 end
    local doc = { file = file, variables = {}, targets = {}, rules = {} }
    local stack, in_nlog, seen_nlog = {}, 0, false
    while true do
      local lt = text:find("<", pos, true)
      if not lt then break end
      local head = text:sub(lt, lt + 8)
      if head:sub(1, 4) == "<!--" then
        local e = text:find("-->", lt + 4, true)
        if not e then fail("%s: expected '-->' to close the comment", at(lt)) end
        pos = e + 3
      elseif head == "<![CDATA[" then
        local e = text:find("]]>", lt + 9, true)
        if not e then fail("%s: expected ']]>' to close the CDATA section", at(lt)) end
        pos = e + 3
      elseif head:sub(1, 2) == "<?" then
        local e = text:find("?>", lt + 2, true)
        if not e then fail("%s: expected '?>' to close the <?...?> declaration", at(lt)) end
        pos = e + 2
      elseif head:sub(1, 2) == "<!" then
        fail("%s: expected an element: a <!DOCTYPE> or other declaration is not supported", at(lt))
      elseif head:sub(1, 2) == "</" then
        local name, e = text:match("^</([%a_][%w_:%.%-]*)%s*>()", lt)
        if not name then fail("%s: expected '</name>'", at(lt)) end
        local top = stack[#stack]
        if not top then fail("%s: expected no end tag here (no element is open), found </%s>", at(lt), name) end
        if top.name ~= name then fail("%s: expected </%s> (opened on line %d), found </%s>", at(lt), top.name, top.line, name) end
        if local_name(name) == "nlog" then in_nlog = in_nlog - 1 end
        stack[#stack] = nil
        pos = e
      else
        local name, p = text:match("^<([%a_][%w_:%.%-]*)()", lt)
        if not name then fail("%s: expected an element name after '<'", at(lt)) end
        local attrs, raw_seen, closed = {}, {}, false
        while true do
          local ws, q = text:match("^(%s*)()", p)
          p = q
          if text:sub(p, p) == ">" then p = p + 1; break end
          if text:sub(p, p + 1) == "/>" then p = p + 2; closed = true; break end
          -- the end of the file, or the next tag: this one was never closed
          if p > n or text:sub(p, p) == "<" then fail("%s: expected '>' to close <%s>", at(lt), name) end
          if ws == "" then fail("%s: expected a space, '>' or '/>' after <%s ...", at(p), name) end
          local aname, v = text:match("^([%a_][%w_:%.%-]*)%s*=%s*()", p)
          if not aname then fail("%s: expected name=\"value\" in <%s>", at(p), name) end
          local quote = text:sub(v, v)
          if quote ~= '"' and quote ~= "'" then fail("%s: expected a quoted value for '%s' in <%s>", at(v), aname, name) end
          local close = text:find(quote, v + 1, true)
          if not close then fail("%s: expected the closing %s of '%s' in <%s>", at(v), quote, aname, name) end
          local raw = text:sub(v + 1, close - 1)
          if raw:find("<", 1, true) then fail("%s: expected no '<' in the value of '%s' in <%s>", at(v), aname, name) end
          if raw_seen[aname] then fail("%s: expected '%s' once in <%s>, found it twice", at(p), aname, name) end
          raw_seen[aname] = true
          attrs[local_name(aname)] = unescape(raw, string.format("%s: '%s' in <%s>", at(v), aname, name))
          p = close + 1
        end
        local lname, ln = local_name(name), line_at(lt)
        if lname == "nlog" then in_nlog, seen_nlog = in_nlog + 1, true
        elseif in_nlog > 0 and lname == "variable" then
          if not attrs.name or attrs.name == "" then fail("%s: expected a name=\"...\" in <%s>", at(lt), name) end
          if attrs.value then doc.variables[attrs.name:lower()] = { name = attrs.name, value = attrs.value, line = ln } end
        elseif in_nlog > 0 and lname == "target" and attrs.name then
          attrs.line = ln
          doc.targets[attrs.name:lower()] = attrs
        elseif in_nlog > 0 and lname == "logger" then
          attrs.line = ln
          doc.rules[#doc.rules + 1] = attrs
        end
        if not closed then
          stack[#stack + 1] = { name = name, line = ln }
        elseif lname == "nlog" then
          in_nlog = in_nlog - 1
        end
        pos = p
      end
    end
    if #stack > 0 then
      fail("%s: at the end of the file: expected </%s> (opened on line %d)", file, stack[#stack].name, stack[#stack].line)
    end
    if not seen_nlog then fail("%s: expected an <nlog> element (the root of an NLog configuration)", file) end
    return doc
  end)
  if ok then return res end
  if getmetatable(res) == Fail then return nil, res.msg end
  error(res, 0)
end

-- load(dir) -> doc (with .file) | nil when there is no NLog.config | nil, message
function M.load(dir)
  local path, err = M.find(dir)
  if not path then return nil, err end
  local text, why = conffile.read(path, M.MAX_BYTES)
  if not text then return nil, string.format("%s: %s", path, why) end
  return M.parse(text, path)
end

-- NLog levels, any case; Off turns a target off.
local LEVELS = { "trace", "debug", "info", "warn", "error", "fatal", "off" }
local RANK = {}
for i, l in ipairs(LEVELS) do RANK[l] = i end

local function rank(s, where, attr)
  local r = RANK[tostring(s):lower():match("^%s*(.-)%s*$")]
  if not r then fail("%s: attribute '%s': expected Trace, Debug, Info, Warn, Error, Fatal or Off, not '%s'", where, attr, s) end
  return r
end

-- rule_floor(rule) -> the lowest level a "*" rule writes: minlevel, else level, else the lowest
-- of levels, else Trace (NLog writes every level then). metasync's files have a threshold, not
-- a set of levels, so maxlevel is not kept.
local function rule_floor(r, where)
  if r.minlevel then return rank(r.minlevel, where, "minlevel") end
  if r.level then return rank(r.level, where, "level") end
  if r.levels then
    local low = RANK.off
    for l in r.levels:gmatch("[^,%s]+") do low = math.min(low, rank(l, where, "levels")) end
    return low
  end
  return RANK.trace
end

-- expand(s, vars, home, depth) -> s with ${basedir}, ${var:name} and ${name} (a declared
-- variable, the form the old tool's file uses) replaced. Other layout renderers would give a
-- file name with "${shortdate}" in it, so they are refused.
local function expand(s, vars, home, depth)
  if depth > 16 then fail("variables refer to each other in a loop") end
  local out, i = {}, 1
  while true do
    local a = s:find("${", i, true)
    if not a then out[#out + 1] = s:sub(i); break end
    out[#out + 1] = s:sub(i, a - 1)
    local level, j = 1, a + 2
    while level > 0 do
      local c = s:find("[{}]", j)
      if not c then fail("expected '}' to close '${' in '%s'", s) end
      level = level + (s:sub(c, c) == "{" and 1 or -1)
      j = c + 1
    end
    local inner = s:sub(a + 2, j - 2)
    local li = inner:lower()
    local vname = li:match("^var:name=(.+)$") or li:match("^var:(.+)$") or (vars[li] and li)
    if li == "basedir" then
      out[#out + 1] = home
    elseif vname then
      local v = vars[vname]
      if not v then fail("variable '%s' is not defined", inner:match("[^:=]+$")) end
      local val = v.literal and v.value or expand(v.value, vars, home, depth + 1)
      -- an empty directory variable would put the logs at the root of the file system
      if val == "" then fail("variable '%s' is empty", v.name or vname) end
      out[#out + 1] = val
    else
      fail("unsupported layout renderer '${%s}' (metasync understands ${basedir}, ${var:name} and ${name} of a <variable>)", inner)
    end
    i = j
  end
  return table.concat(out)
end

-- path_of(value, o, vars) -> a path on this machine: Windows separators become '/', a
-- relative path resolves against the tool's home (as NLog resolves against ${basedir}).
local function path_of(value, o, vars)
  local p = expand(value, vars, o.home, 0):gsub("\\", "/")
  if p == "" then fail("expected a file path, found an empty one") end
  if p:match("^%a:/") then fail("expected a path on this machine, not the Windows path '%s'", p) end
  return o.resolve(p)
end

local function bytes_attr(v, where, attr, default)
  if v == nil then return default end
  local n = math.tointeger(tonumber(v))
  if n == -1 then return 0 end -- NLog's "never archive by size"
  if not n or n < 0 or n > M.MAX_SIZE then
    fail("%s: attribute '%s': expected a size in bytes from 0 to %d (or -1), not '%s'", where, attr, M.MAX_SIZE, v)
  end
  return n
end

local function files_attr(v, where, attr, default, warnings)
  if v == nil then return default end
  local n = math.tointeger(tonumber(v))
  if not n or n < 0 then fail("%s: attribute '%s': expected a whole number of files, not '%s'", where, attr, v) end
  if n == 0 or n > M.MAX_ARCHIVES then
    warnings[#warnings + 1] = string.format("%s: attribute '%s': %s; metasync keeps at most %d archives", where, attr,
      n == 0 and "0 (no limit in NLog)" or tostring(n), M.MAX_ARCHIVES)
    return M.MAX_ARCHIVES
  end
  return n
end

-- settings(doc, o) -> {file=, errors_file=, archive=, errors_archive=, max_size=, max_files=,
-- errors_max_size=, errors_max_files=, level=, errors_level=, source=}, warnings | nil, message.
-- doc is nil without an NLog.config: then config.json's keys (o.dir, o.main, o.errors, o.level,
-- o.max_size, o.max_files; o.config_file names the file in errors) decide alone, through the
-- same defaults the old tool's file sets, so both cases name and rotate the files alike. With
-- a doc, what it sets wins and config.json's keys fill in the rest. o.home is ${basedir};
-- o.resolve makes a path absolute against it. A level of "off" means the file is not written.
function M.settings(doc, o)
  local warnings, file = {}, doc and doc.file or o.config_file or "config.json"
  local ok, res = pcall(function()
    -- what config.json says, taken literally (no ${} in it), then what the file declares
    local vars = { logdirectory = { name = "logDirectory", value = o.dir, literal = true },
      logfilename = { name = "logFileName", value = o.main, literal = true },
      errorfilename = { name = "errorFileName", value = o.errors, literal = true } }
    for k, v in pairs(doc and doc.variables or {}) do vars[k] = v end
    local floors = {}
    for _, r in ipairs(doc and doc.rules or {}) do
      if (r.name or "*") == "*" and r.writeto then
        local f = rule_floor(r, string.format("%s: line %d: <logger>", file, r.line))
        for t in r.writeto:gmatch("[^,%s]+") do floors[t:lower()] = math.min(floors[t:lower()] or RANK.off, f) end
      end
    end
    local out = { source = doc and doc.file }
    local function target(tname, var, prefix, default_level)
      local t = doc and doc.targets[tname:lower()] or {}
      local where = t.line and string.format("%s: line %d: target '%s'", file, t.line, tname) or file
      local function attr_path(name, default)
        local ok2, p = pcall(path_of, t[name:lower()] or default, o, vars)
        if ok2 then return p end
        if getmetatable(p) == Fail then
          fail("%s: %s%s", where, t[name:lower()] and ("attribute '" .. name .. "': ") or "", p.msg)
        end
        error(p, 0)
      end
      local path = attr_path("fileName", "${var:logDirectory}/${var:" .. var .. "}")
      -- By default archives go to Archive/ beside the file, named as the old tool's file names
      -- them: MetadataSync.log.0.log (newest) .. .4.log.
      local dir, base = path:match("^(.*)/([^/]*)$")
      local archive = attr_path("archiveFileName", (dir or ".") .. "/Archive/" .. (base or path) .. ".{#}.log")
      local _, marks = archive:gsub("{#+}", "")
      local _, opens = archive:gsub("{#", "") -- what engine/log.c accepts: one {#...}, nothing like it
      if marks ~= 1 or opens ~= 1 or archive:find("{##########", 1, true) then
        fail("%s: attribute 'archiveFileName': expected one {#} (up to 9 #) where the archive number goes", where)
      end
      local numbering = t.archivenumbering
      if numbering and numbering:lower() ~= "rolling" then
        warnings[#warnings + 1] = string.format("%s: archiveNumbering '%s': metasync numbers archives as 'Rolling' (0 is the newest)", where, numbering)
      end
      if t.archiveevery and t.archiveevery:lower() ~= "none" then
        warnings[#warnings + 1] = string.format("%s: archiveEvery '%s' is ignored: metasync archives by size only", where, t.archiveevery)
      end
      out[prefix .. "file"] = path
      out[prefix .. "archive"] = archive
      out[prefix .. "max_size"] = bytes_attr(t.archiveabovesize, where, "archiveAboveSize", o.max_size)
      out[prefix .. "max_files"] = files_attr(t.maxarchivefiles, where, "maxArchiveFiles", o.max_files, warnings)
      local f = floors[tname:lower()]
      out[prefix == "" and "level" or "errors_level"] = f and LEVELS[f] or default_level
    end
    target(M.MAIN, "logFileName", "", o.level)
    target(M.ERRORS, "errorFileName", "errors_", "error")
    if out.file == out.errors_file then
      fail("%s: the main log and the errors log are the same file (%s): expected two names", file, out.file)
    end
    local names = {}
    for name in pairs(doc and doc.targets or {}) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do
      local t = doc.targets[name]
      if name ~= M.MAIN:lower() and name ~= M.ERRORS:lower() and (t.type or ""):lower() == "file" then
        warnings[#warnings + 1] = string.format("%s: line %d: target '%s' is not written: metasync writes %s and %s",
          file, t.line, t.name, M.MAIN, M.ERRORS)
      end
    end
    return out
  end)
  if ok then return res, warnings end
  if getmetatable(res) == Fail then
    -- a failure inside a variable has no place yet: name the file
    return nil, res.msg:find(file, 1, true) == 1 and res.msg or (file .. ": " .. res.msg)
  end
  error(res, 0)
end

return M

-- metasync.nlog: the old tool's NLog.config read without an XML library: variables with
-- ${basedir}, ${var:x} and ${x}, both spellings of the file name, archive settings, rule
-- levels, the config.json defaults, and malformed or oversized files as one-line errors.
local nlog = require("metasync.nlog")

local made = setmetatable({}, { __gc = function(t)
  for _, p in ipairs(t) do os.execute("rm -rf '" .. p .. "'") end
end })
local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p '" .. p .. "'"))
  made[#made + 1] = p
  return p
end
local function write(path, text)
  local f = assert(io.open(path, "wb")); f:write(text); f:close()
end

-- what setup.lua passes: config.json's values, home /opt/ms
local function opts(over)
  local o = { home = "/opt/ms", dir = "logs", main = "MetadataSync.log", errors = "MetadataSync-Errors.log",
    level = "info", max_size = 10485760, max_files = 5, config_file = "/opt/ms/config/config.json",
    resolve = function(p) return p:sub(1, 1) == "/" and p or "/opt/ms/" .. p end }
  for k, v in pairs(over or {}) do o[k] = v end
  return o
end

local function settings(xml, over)
  local doc = assert(nlog.parse(xml, "/opt/ms/config/NLog.config"))
  return nlog.settings(doc, opts(over))
end

-- The old tool's own file (its shape: ${name} references, Rolling archives under Archive/).
local OLD = [[<?xml version="1.0" encoding="utf-8"?>

<nlog xmlns="http://www.nlog-project.org/schemas/NLog.xsd"
      xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
      autoReload="true" throwExceptions="false"
      internalLogLevel="Debug" internalLogFile="c:\temp\nlog-internal.log">
	<!-- Define variables -->
	<variable name="logDirectory" value="${basedir}/logs" />
	<variable name="logFileName" value="MetadataSync.log" />
	<variable name="errorFileName" value="MetadataSync-Errors.log" />
	<targets>
		<target xsi:type="File" name="MainLogFile"
		        fileName="${logDirectory}/${logFileName}"
		        archiveFileName="${logDirectory}/Archive/${logFileName}.{#}.log"
		        archiveNumbering="Rolling" archiveAboveSize="10485760" maxArchiveFiles="5"
		        layout="${longdate} | ${uppercase:${level}} | ${logger} | ${message} ${exception}" />
		<target xsi:type="File" name="ErrorLogFile"
		        fileName="${logDirectory}/${errorFileName}"
		        archiveFileName="${logDirectory}/Archive/${errorFileName}.{#}.log"
		        archiveNumbering="Rolling" archiveAboveSize="10485760" maxArchiveFiles="5"
		        layout="${longdate} | ${uppercase:${level}} | ${logger} | ${message} ${exception}" />
	</targets>
	<rules>
		<logger name="*" minlevel="Info" writeTo="MainLogFile" />
		<logger name="*" minlevel="Error" writeTo="ErrorLogFile" />
	</rules>
</nlog>]]

local s, w = settings(OLD)
assert(s, w)
assert(s.file == "/opt/ms/logs/MetadataSync.log", s.file)
assert(s.errors_file == "/opt/ms/logs/MetadataSync-Errors.log", s.errors_file)
assert(s.archive == "/opt/ms/logs/Archive/MetadataSync.log.{#}.log", s.archive)
assert(s.errors_archive == "/opt/ms/logs/Archive/MetadataSync-Errors.log.{#}.log", s.errors_archive)
assert(s.max_size == 10485760 and s.max_files == 5 and s.errors_max_size == 10485760 and s.errors_max_files == 5)
assert(s.level == "info" and s.errors_level == "error")
assert(s.source == "/opt/ms/config/NLog.config")
assert(#w == 0, w[1])

-- Without a file, config.json's keys give the same layout (the old tool's names by default).
s = assert(nlog.settings(nil, opts()))
assert(s.file == "/opt/ms/logs/MetadataSync.log" and s.errors_file == "/opt/ms/logs/MetadataSync-Errors.log")
assert(s.archive == "/opt/ms/logs/Archive/MetadataSync.log.{#}.log", s.archive)
assert(s.level == "info" and s.errors_level == "error" and s.max_files == 5 and s.source == nil)
s = assert(nlog.settings(nil, opts { dir = "/var/log/ms", main = "a.log", errors = "b.log", level = "debug",
  max_size = 4096, max_files = 2 }))
assert(s.file == "/var/log/ms/a.log" and s.errors_file == "/var/log/ms/b.log" and s.archive == "/var/log/ms/Archive/a.log.{#}.log")
assert(s.level == "debug" and s.max_size == 4096 and s.max_files == 2 and s.errors_max_files == 2)
-- config.json's values are literal: no ${} expansion in them
s = assert(nlog.settings(nil, opts { dir = "odd${basedir}" }))
assert(s.file == "/opt/ms/odd${basedir}/MetadataSync.log", s.file)

-- ${var:x}, ${var:name=x}, case-insensitive names, variables built from variables, Windows
-- separators, a relative path against the home, what the file leaves out from config.json.
s, w = settings([[<nlog><variable name="Root" value="${BASEDIR}\var"/>
  <variable name="logDirectory" value="${var:root}/logs"/><variable name="logFileName" value="main.log"/>
  <targets><target type="File" name="mainlogfile" fileName="${var:name=logDirectory}/${var:LogFileName}"/>
  <target name="ErrorLogFile" fileName="rel/${errorFileName}" maxArchiveFiles="3"/></targets>
  <rules><logger name="*" minlevel="DEBUG" writeTo="MainLogFile"/></rules></nlog>]],
  { errors = "err.log", max_size = 777 })
assert(s, w)
assert(s.file == "/opt/ms/var/logs/main.log", s.file)
assert(s.archive == "/opt/ms/var/logs/Archive/main.log.{#}.log", s.archive)
assert(s.errors_file == "/opt/ms/rel/err.log", s.errors_file)
assert(s.errors_archive == "/opt/ms/rel/Archive/err.log.{#}.log", s.errors_archive)
assert(s.level == "debug" and s.errors_level == "error")
assert(s.max_size == 777 and s.max_files == 5 and s.errors_max_files == 3)

-- only logDirectory set: config.json's file names stay
s = assert(settings([[<nlog><variable name="logDirectory" value="/srv/l"/></nlog>]], { main = "x.log" }))
assert(s.file == "/srv/l/x.log" and s.errors_file == "/srv/l/MetadataSync-Errors.log")

-- levels: every NLog name in any case; several rules take the lowest; level=, levels=; Off;
-- rules for other loggers (name="Microsoft.*") do not count
for name, want in pairs { Trace = "trace", debug = "debug", INFO = "info", Warn = "warn", error = "error", Fatal = "fatal", Off = "off" } do
  s = assert(settings('<nlog><rules><logger name="*" minlevel="' .. name .. '" writeTo="MainLogFile"/></rules></nlog>'))
  assert(s.level == want, name .. " -> " .. s.level)
end
s = assert(settings([[<nlog><rules><logger name="*" minlevel="Warn" writeTo="MainLogFile"/>
  <logger name="Microsoft.*" minlevel="Trace" writeTo="MainLogFile"/>
  <logger minlevel="Error" writeTo="MainLogFile, ErrorLogFile"/><logger name="*" level="Warn" writeTo="ErrorLogFile"/>
  </rules></nlog>]]))
assert(s.level == "warn" and s.errors_level == "warn", s.level .. " " .. s.errors_level)
s = assert(settings('<nlog><rules><logger name="*" levels="Error, Debug" writeTo="MainLogFile"/><logger name="*" writeTo="ErrorLogFile"/></rules></nlog>'))
assert(s.level == "debug" and s.errors_level == "trace")

-- archive settings: -1 never archives; 0 files (no limit in NLog) and too many are capped with
-- a warning; padded {###}; other numbering and archiveEvery are warnings
s, w = settings([[<nlog><targets>
  <target name="MainLogFile" archiveAboveSize="-1" maxArchiveFiles="0" archiveFileName="${basedir}/a/m.{###}.txt" archiveNumbering="Sequence"/>
  <target name="ErrorLogFile" archiveAboveSize="2048" maxArchiveFiles="500" archiveEvery="Day"/>
  <target xsi:type="File" name="Other" fileName="x.log"/><target xsi:type="Console" name="Con"/></targets></nlog>]])
assert(s, w)
assert(s.max_size == 0 and s.max_files == 100 and s.errors_max_size == 2048 and s.errors_max_files == 100)
assert(s.archive == "/opt/ms/a/m.{###}.txt", s.archive)
local all = table.concat(w, "\n")
assert(#w == 5, #w .. ": " .. all)
assert(all:find("maxArchiveFiles': 0 (no limit in NLog); metasync keeps at most 100", 1, true), all)
assert(all:find("'maxArchiveFiles': 500;", 1, true) and all:find("archiveNumbering 'Sequence'", 1, true), all)
assert(all:find("archiveEvery 'Day' is ignored", 1, true), all)
assert(all:find("line 4: target 'Other' is not written", 1, true), all)

-- XML details: comments (also around a rule), CDATA, entities, single quotes, a BOM, prefixes,
-- unknown elements and attributes, text
s = assert(settings("\239\187\191" .. [==[<?xml version="1.0"?><!-- <variable name="logDirectory" value="/nope"/> -->
  <nlog:nlog><extensions><add assembly="X"/></extensions><![CDATA[ <variable name="logFileName" value="no"/> ]]>
  <nlog:variable name='logDirectory' value='/d/&amp;&lt;&#65;&#x42;&quot;&apos;' unknown="1"/>
  <targets async="true">text <target name="MainLogFile" fileName="${var:logDirectory}/m.log"/></targets>
  <rules><!-- <logger name="*" minlevel="Trace" writeTo="MainLogFile"/> --></rules></nlog:nlog>]==]))
assert(s.file == "/d/&<AB\"'/m.log", s.file)
assert(s.level == "info")

-- errors in the values metasync uses: named, with the file and line
local function bad_settings(xml, want, over)
  local r, e = settings(xml, over)
  assert(r == nil and type(e) == "string", "accepted: " .. xml)
  assert(not e:find("\n"), "more than one line: " .. e)
  assert(e:find("/opt/ms/config/NLog.config", 1, true), e)
  assert(e:find(want, 1, true), e .. "\n  wanted: " .. want)
end
bad_settings('<nlog><targets>\n<target name="MainLogFile" fileName="${basedir}/${shortdate}.log"/></targets></nlog>',
  "line 2: target 'MainLogFile': attribute 'fileName': unsupported layout renderer '${shortdate}'")
bad_settings('<nlog><target name="MainLogFile" fileName="${var:nope}/x.log"/></nlog>', "variable 'nope' is not defined")
bad_settings('<nlog><variable name="a" value="${b}"/><variable name="b" value="${a}"/><variable name="logDirectory" value="${a}"/></nlog>',
  "variables refer to each other in a loop")
bad_settings('<nlog><variable name="logDirectory" value=""/></nlog>', "variable 'logDirectory' is empty")
bad_settings('<nlog><variable name="logDirectory" value="C:\\logs"/></nlog>', "not the Windows path 'C:/logs/MetadataSync.log'")
bad_settings('<nlog><target name="MainLogFile" fileName="${basedir"/></nlog>', "expected '}' to close '${'")
bad_settings('<nlog><target name="MainLogFile" archiveFileName="x.log"/></nlog>', "attribute 'archiveFileName': expected one {#}")
for _, t in ipairs { "a/{#}/{#x}.log", "{#}{#}.log", "a.{##########}.log", "a.{#.log" } do
  bad_settings('<nlog><target name="ErrorLogFile" archiveFileName="' .. t .. '"/></nlog>', "expected one {#}")
end
bad_settings('<nlog><target name="MainLogFile" archiveAboveSize="10MB"/></nlog>', "attribute 'archiveAboveSize': expected a size in bytes")
bad_settings('<nlog><target name="MainLogFile" maxArchiveFiles="-2"/></nlog>', "attribute 'maxArchiveFiles': expected a whole number")
bad_settings('<nlog>\n\n<rules><logger name="*" minlevel="Verbose" writeTo="MainLogFile"/></rules></nlog>',
  "line 3: <logger>: attribute 'minlevel': expected Trace, Debug, Info, Warn, Error, Fatal or Off, not 'Verbose'")
bad_settings('<nlog><target name="ErrorLogFile" fileName="${basedir}/logs/MetadataSync.log"/></nlog>',
  "the main log and the errors log are the same file")

-- malformed XML: one line naming the file, the line and what was expected; never a crash
local function bad_xml(xml, want)
  local doc, e = nlog.parse(xml, "cfg/nlog.config")
  assert(doc == nil and type(e) == "string", "parsed: " .. xml)
  assert(not e:find("\n"), "more than one line: " .. e)
  assert(e:find("cfg/nlog.config", 1, true) == 1, e)
  assert(e:find(want, 1, true), e .. "\n  wanted: " .. want)
end
bad_xml("<nlog>\n<!-- open", "line 2: expected '-->' to close the comment")
bad_xml('<nlog>\n<variable name="x" value="y"', "line 2: expected '>' to close <variable>")
bad_xml('<nlog><variable name="x"\n<targets/></nlog>', "line 1: expected '>' to close <variable>")
bad_xml('<nlog><variable name="x" ="y"/></nlog>', "expected name=\"value\" in <variable>")
bad_xml('<nlog><variable name="x" value=y/></nlog>', "expected a quoted value for 'value' in <variable>")
bad_xml('<nlog><variable name="x" value="y/></nlog>', "expected the closing \" of 'value'")
bad_xml('<nlog><variable name="x"value="y"/></nlog>', "expected a space, '>' or '/>'")
bad_xml('<nlog><variable name="x" name="y"/></nlog>', "expected 'name' once in <variable>")
bad_xml('<nlog><variable value="y"/></nlog>', "expected a name=\"...\" in <variable>")
bad_xml('<nlog><variable name="a&b" value="y"/></nlog>', "expected an entity such as &amp;")
bad_xml('<nlog><variable name="a" value="&#0;"/></nlog>', "expected an entity")
bad_xml('<nlog><targets>\n</nlog>', "line 2: expected </targets> (opened on line 1), found </nlog>")
bad_xml('<nlog><rules>', "at the end of the file: expected </rules> (opened on line 1)")
bad_xml('<nlog></nlog></nlog>', "expected no end tag here")
bad_xml('<nlog>< variable/></nlog>', "expected an element name after '<'")
bad_xml('<!DOCTYPE x [<!ENTITY a "aaaa">]><nlog/>', "a <!DOCTYPE> or other declaration is not supported")
bad_xml('<configuration><x/></configuration>', "expected an <nlog> element")
bad_xml('', "expected an <nlog> element")
bad_xml('<nlog>\0</nlog>', "holds a NUL byte")
bad_xml('\255\254<\0n\0', "is UTF-16")
bad_xml('<nlog><?x', "expected '?>'")
bad_xml('<nlog><![CDATA[ x', "expected ']]>'")
-- garbage of every kind: an error or a document, never a Lua error
math.randomseed(7)
local alphabet = { "<", ">", "/", "=", '"', "'", "!", "-", "?", "[", "]", "&", ";", "#", "x", "nlog", "variable",
  "target", "logger", " ", "\n", "name", "value", "${", "}", "{#}" }
for _ = 1, 3000 do
  local parts = {}
  for i = 1, math.random(1, 40) do parts[i] = alphabet[math.random(#alphabet)] end
  local text = table.concat(parts)
  local ok, doc, e = pcall(nlog.parse, text, "f")
  assert(ok, "raised on " .. text .. ": " .. tostring(doc))
  assert(doc or (type(e) == "string" and not e:find("\n")), text)
  if doc then
    local ok2, r, e2 = pcall(nlog.settings, doc, opts())
    assert(ok2 and (r or type(e2) == "string"), "settings raised on " .. text .. ": " .. tostring(r))
  end
end

-- every archive template settings accepts, engine/log.c accepts too (it raises on the others)
local log = require("metasync.log")
local bits = { "{", "#", "}", "x", "/", "{#}", "##" }
for _ = 1, 2000 do
  local parts = {}
  for i = 1, math.random(1, 8) do parts[i] = bits[math.random(#bits)] end
  local t = "/tmp/" .. table.concat(parts)
  local r = settings('<nlog><target name="MainLogFile" archiveFileName="' .. t .. '"/></nlog>')
  if r then
    assert(pcall(log.setup, { file = false, errors_file = false, stderr = false, archive = r.archive }), t)
  end
end
log.setup { file = false, errors_file = false }

-- finding and loading the file: either spelling, any case; none; two; too large; a directory
local d = tmpdir()
assert(nlog.find(d) == nil and nlog.load(d) == nil, "no file: nil without an error")
write(d .. "/nlog.config", OLD)
assert(nlog.find(d) == d .. "/nlog.config")
local doc = assert(nlog.load(d))
assert(doc.file == d .. "/nlog.config" and doc.variables.logdirectory.value == "${basedir}/logs")
os.rename(d .. "/nlog.config", d .. "/NLog.config")
assert(nlog.find(d) == d .. "/NLog.config")
os.rename(d .. "/NLog.config", d .. "/NLOG.CONFIG")
assert(nlog.find(d) == d .. "/NLOG.CONFIG")
write(d .. "/nlog.config", OLD)
local f, e = nlog.load(d)
assert(f == nil and e:find("two NLog configurations; keep one", 1, true) and e:find("NLOG.CONFIG", 1, true), e)
os.remove(d .. "/NLOG.CONFIG")
os.remove(d .. "/nlog.config")
-- a name that only contains the word does not count
write(d .. "/old-nlog.config", OLD)
assert(nlog.find(d) == nil)
-- bounded: one byte over the cap is refused before parsing
write(d .. "/NLog.config", "<nlog>" .. string.rep(" ", nlog.MAX_BYTES - 13) .. "</nlog>")
assert(nlog.load(d), "a file at the cap is read")
write(d .. "/NLog.config", "<nlog>" .. string.rep(" ", nlog.MAX_BYTES - 12) .. "</nlog>")
f, e = nlog.load(d)
assert(f == nil and e == d .. "/NLog.config: is larger than 1 MiB", e)
os.remove(d .. "/NLog.config")
assert(os.execute("mkdir '" .. d .. "/nlog.config'"))
f, e = nlog.load(d)
assert(f == nil and e == d .. "/nlog.config: is a directory", e)
-- malformed on disk: the path in the message is the file's
os.execute("rmdir '" .. d .. "/nlog.config'")
write(d .. "/nlog.config", "<nlog>\n<targets>")
f, e = nlog.load(d)
assert(f == nil and e:find(d .. "/nlog.config: at the end of the file: expected </targets>", 1, true), e)

-- config.json's side (lib/metasync/config.lua): the log names, and page sizes above the APIs'
-- maximum taken as the maximum with a warning (the old tool accepted them), below 1 refused
local config = require("metasync.config")
local function cfg_dir(extra)
  local c = tmpdir()
  write(c .. "/config.json", [[{"Config": {"sectigoLogin": "a", "sectigoCustomerUri": "c",
    "sectigoAPIUrl": "https://sc.test", "keyfactorAPIUrl": "https://kf.test", "keyfactorLogin": "D\\u",
    "importAllCustomFields": true]] .. (extra or "") .. "}}")
  os.execute("chmod 600 '" .. c .. "/config.json'")
  return c
end
local function load(extra)
  -- passwords come from the file here, so the test does not depend on the environment
  return config.load(cfg_dir(', "sectigoPassword": "p1", "keyfactorPassword": "p2"' .. (extra or "")))
end
local cfg, warns = load()
assert(cfg, warns and warns[1])
assert(cfg.logFileName == "MetadataSync.log" and cfg.errorLogFileName == "MetadataSync-Errors.log")
assert(cfg.sectigoPageSize == 25 and cfg.keyfactorPageSize == 100 and #warns == 0, warns[1])
cfg, warns = load(', "sectigoPageSize": 500, "keyfactorPageSize": "5001", "logFileName": "a.log"')
assert(cfg, warns and warns[1])
assert(cfg.sectigoPageSize == 200 and cfg.keyfactorPageSize == 5000 and cfg.logFileName == "a.log")
assert(#warns == 2, #warns)
assert(warns[1]:find("key 'sectigoPageSize': 500 is above Sectigo's maximum page size, 200; 200 is used", 1, true), warns[1])
assert(warns[2]:find("key 'keyfactorPageSize': 5001 is above Keyfactor's maximum page size, 5000; 5000 is used", 1, true), warns[2])
cfg = assert(load(', "sectigoPageSize": 200, "keyfactorPageSize": 5000'))
assert(cfg.sectigoPageSize == 200 and cfg.keyfactorPageSize == 5000)
local function refused(extra, want)
  local c, errs = load(extra)
  assert(c == nil, "accepted: " .. extra)
  local all = table.concat(errs, "\n")
  assert(all:find(want, 1, true), all .. "\n  wanted: " .. want)
end
refused(', "sectigoPageSize": 0', "key 'sectigoPageSize': expected a value from 1 to 200")
refused(', "keyfactorPageSize": -5', "key 'keyfactorPageSize': expected a value from 1 to 5000")
refused(', "logFileName": "logs/a.log"', "key 'logFileName': expected a file name without '/'")
refused(', "errorLogFileName": ".."', "key 'errorLogFileName': expected a file name without '/'")
refused(', "errorLogFileName": ""', "key 'errorLogFileName': expected a file name")
refused(', "logFileName": "x.log", "errorLogFileName": "x.log"', "key 'errorLogFileName': expected a name other than logFileName's")
refused(', "logDirectory": ""', "key 'logDirectory': expected a directory")

print("test_nlog: ok")

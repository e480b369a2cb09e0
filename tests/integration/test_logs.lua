-- Drop-in logging: the old tool's log names and place (<home>/logs/MetadataSync.log and
-- MetadataSync-Errors.log, the home being the parent of the config directory, whatever the
-- working directory), its NLog.config honoured (variables, targets, rule level, archives),
-- archives under logs/Archive/, the run markers, and page sizes above the APIs' maximum used
-- as that maximum with a warning instead of refusing the old tool's config.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")

local q = H.sh_quote
local function exists(p)
  local f = io.open(p, "r")
  if f then f:close() end
  return f ~= nil
end

-- run_in(cwd, dir, command) -> rc, stdout, stderr: from a working directory that is neither the
-- home nor the config directory, as under cron ($HOME) or systemd (/)
local function run_in(cwd, dir, command)
  local out, err = cwd .. "/.stdout", cwd .. "/.stderr"
  local _, _, rc = os.execute(string.format("cd %s && %s -c %s %s >%s 2>%s", q(cwd), q(H.metasync), q(dir), command,
    q(out), q(err)))
  return rc, H.read(out) or "", H.read(err) or ""
end

local function lines_of(text)
  local t = {}
  for l in (text or ""):gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

------------------------------------------------------------------------------------------------
-- 1. No NLog.config: the old names under <home>/logs, an error in the errors file, the markers.
H.reset(H.world())
H.faults { scripts = { { endpoint = "keyfactor.metadata", method = "PUT",
  responses = { { status = 400, body = '{"ErrorCode":"0xA0110001","Message":"Refused for the test."}' } } } } }
local dir = H.config_dir()
local home, cwd = H.home(dir), H.tmpdir()
local rc, out, err = run_in(cwd, dir, "sctokf")
H.call("DELETE", H.sectigo .. "/__sim/faults")
H.eq(rc, 2, "a run with one refused write: exit code\n" .. out .. err)
local main = H.read(home .. "/logs/MetadataSync.log")
local errs = H.read(home .. "/logs/MetadataSync-Errors.log")
assert(main, "no " .. home .. "/logs/MetadataSync.log")
assert(errs and errs:find("| ERROR | sync | certificate ", 1, true), "errors log: " .. tostring(errs))
assert(not errs:find("| INFO  |", 1, true), "only errors in the errors log")
assert(not exists(cwd .. "/logs"), "logs written under the working directory")
assert(not exists(dir .. "/logs") and not exists(home .. "/logs/metasync.log"), "logs under the old metasync names")
-- [START], then [RUN ID: <id>] on the next line, and [END] with the same id
local lines = lines_of(main)
local at
for i, l in ipairs(lines) do if l:find("| INFO  | main | [START] metasync sctokf, run ", 1, true) then at = i; break end end
assert(at, "no [START] line:\n" .. main)
local id = lines[at]:match("run (%x+)")
assert(id and lines[at + 1] and lines[at + 1]:find("| INFO  | main | [RUN ID: " .. id .. "]", 1, true),
  "[RUN ID] after [START]: " .. tostring(lines[at + 1]))
assert(main:find("| INFO  | main | [END] metasync sctokf, run " .. id .. ": exit 2", 1, true), main)
assert(main:find("| INFO  | summary | [SUMMARY] metasync sctokf", 1, true), "[SUMMARY] line")
-- H.run (every other test's way in) reads the same files
local _, _, _, logtext = H.run(dir, "sctokf")
assert(logtext:find("[RUN ID: ", 1, true) and logtext:find("| ERROR |", 1, true), "H.run's log text")

------------------------------------------------------------------------------------------------
-- 2. The old tool's nlog.config (its spelling): a logDirectory of ${basedir}/..., ${name} and
-- ${var:name} references, Debug for the main file, small archives kept two at a time.
H.reset(H.world())
dir = H.config_dir({ logLevel = "error" })
home = H.home(dir)
H.write(dir .. "/nlog.config", [[<?xml version="1.0" encoding="utf-8"?>
<nlog xmlns="http://www.nlog-project.org/schemas/NLog.xsd" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
      autoReload="true" internalLogLevel="Debug" internalLogFile="c:\temp\nlog-internal.log">
  <!-- Define variables -->
  <variable name="logDirectory" value="${basedir}/oldlogs" />
  <variable name="logFileName" value="Sync.log" />
  <variable name="errorFileName" value="Sync-Errors.log" />
  <targets>
    <target xsi:type="File" name="MainLogFile" fileName="${logDirectory}/${logFileName}"
            archiveFileName="${logDirectory}/Archive/${logFileName}.{#}.log" archiveNumbering="Rolling"
            archiveAboveSize="2000" maxArchiveFiles="2"
            layout="${longdate} | ${uppercase:${level}} | ${logger} | ${message} ${exception}" />
    <target xsi:type="File" name="ErrorLogFile" fileName="${var:logDirectory}/${var:errorFileName}"
            archiveFileName="${logDirectory}/Archive/${errorFileName}.{#}.log" archiveNumbering="Rolling"
            archiveAboveSize="10485760" maxArchiveFiles="5"
            layout="${longdate} | ${uppercase:${level}} | ${logger} | ${message} ${exception}" />
  </targets>
  <rules>
    <!-- <logger name="*" minlevel="Fatal" writeTo="MainLogFile" /> -->
    <logger name="*" minlevel="Debug" writeTo="MainLogFile" />
    <logger name="*" minlevel="Error" writeTo="ErrorLogFile" />
  </rules>
</nlog>
]])
cwd = H.tmpdir()
rc, out, err = run_in(cwd, dir, "sctokf")
H.eq(rc, 0, "run with the old tool's nlog.config\n" .. out .. err)
local live = H.read(home .. "/oldlogs/Sync.log")
assert(live, "no " .. home .. "/oldlogs/Sync.log")
assert(exists(home .. "/oldlogs/Sync-Errors.log"), "errors log where errorFileName says")
assert(not exists(home .. "/logs") and not exists(cwd .. "/logs"), "logs not where nlog.config says")
local a0, a1 = H.read(home .. "/oldlogs/Archive/Sync.log.0.log"), H.read(home .. "/oldlogs/Archive/Sync.log.1.log")
assert(a0 and a1, "archives under oldlogs/Archive/ as Sync.log.0.log and .1.log")
assert(not exists(home .. "/oldlogs/Archive/Sync.log.2.log"), "maxArchiveFiles 2")
assert(not exists(home .. "/oldlogs/Sync.log.1"), "archives beside the live file")
assert(#a0 <= 2000 and #live <= 2000, "archiveAboveSize 2000")
local all = a1 .. a0 .. live
assert(all:find("| DEBUG |", 1, true), "minlevel Debug (over config.json's logLevel): no debug lines")
assert(all:find("[END] metasync sctokf", 1, true), "the newest lines are in the live file or .0")

------------------------------------------------------------------------------------------------
-- 3. NLog.config (the other spelling) naming an absolute file and Warn: INFO lines stay out.
H.reset(H.world())
dir = H.config_dir({ logLevel = "debug" })
home = H.home(dir)
local elsewhere = H.tmpdir() .. "/var/log/metasync"
H.write(dir .. "/NLog.config", string.format([[<nlog>
  <targets><target name="MainLogFile" fileName="%s/main.log" archiveEvery="Day"/></targets>
  <rules><logger name="*" minlevel="warn" writeTo="MainLogFile"/></rules></nlog>]], elsewhere))
rc, out, err = run_in(H.tmpdir(), dir, "sctokf")
H.eq(rc, 0, "run with NLog.config at Warn\n" .. out .. err)
live = H.read(elsewhere .. "/main.log")
assert(live, "no " .. elsewhere .. "/main.log")
assert(not live:find("| INFO  |", 1, true) and not live:find("| DEBUG |", 1, true), "minlevel Warn:\n" .. live)
-- what metasync does not do is said, on stderr and in the log
assert(err:find("| WARN  | config | " .. dir .. "/NLog.config: line 2: target 'MainLogFile': archiveEvery 'Day' is ignored", 1, true), err)
assert(live:find("archiveEvery 'Day' is ignored", 1, true), live)
-- the errors file keeps config.json's name, at the home (the file leaves it out)
assert(exists(home .. "/logs/MetadataSync-Errors.log"), "errors log from config.json's keys")
-- Off: the target is not written at all
os.execute("rm -rf " .. q(home .. "/logs"))
H.write(dir .. "/NLog.config", '<nlog><rules><logger name="*" minlevel="Off" writeTo="ErrorLogFile"/></rules></nlog>')
rc, out, err = run_in(H.tmpdir(), dir, "sctokf")
H.eq(rc, 0, "run with ErrorLogFile Off\n" .. out .. err)
assert(exists(home .. "/logs/MetadataSync.log") and not exists(home .. "/logs/MetadataSync-Errors.log"), "Off")
-- a malformed NLog.config: one line naming the file and what was expected, exit 1, nothing sent
H.write(dir .. "/NLog.config", '<nlog>\n  <variable name="logDirectory" value="/x"\n</nlog>\n')
H.clear_stats()
rc, out, err = run_in(H.tmpdir(), dir, "sctokf")
H.eq(rc, 1, "malformed NLog.config: exit code")
local errlines = lines_of(err)
H.eq(#errlines, 1, "malformed NLog.config: stderr lines (" .. err .. ")")
assert(errlines[1]:find(dir .. "/NLog.config: line 2: expected '>' to close <variable>", 1, true), errlines[1])
H.eq(H.stats().total, 0, "requests with a malformed NLog.config")
-- a place the file names that cannot be written: the same, naming the file
local blocker = H.tmpdir() .. "/file"
H.write(blocker, "not a directory")
H.write(dir .. "/NLog.config", '<nlog><variable name="logDirectory" value="' .. blocker .. '/logs"/></nlog>')
rc, out, err = run_in(H.tmpdir(), dir, "sctokf")
H.eq(rc, 1, "unwritable NLog.config logDirectory: exit code")
assert(err:find(dir .. "/NLog.config: cannot write the logs: " .. blocker .. "/logs/MetadataSync.log: Not a directory", 1, true), err)
H.eq(H.stats().total, 0, "requests with an unwritable log")

------------------------------------------------------------------------------------------------
-- 4. config.json's log keys without NLog.config: a relative logDirectory against the home, the
-- names, rotation into <logDirectory>/Archive/ with the old tool's numbering.
H.reset(H.world())
dir = H.config_dir({ logDirectory = "var/log", logFileName = "Custom.log", errorLogFileName = "Custom-Errors.log",
  logLevel = "debug", logMaxSizeMB = 0.002, logMaxFiles = 2 })
home, cwd = H.home(dir), H.tmpdir()
rc, out, err = run_in(cwd, dir, "sctokf")
H.eq(rc, 0, "run with config.json's log keys\n" .. out .. err)
assert(exists(home .. "/var/log/Custom.log") and exists(home .. "/var/log/Custom-Errors.log"), "logs under <home>/var/log")
assert(not exists(cwd .. "/var"), "a relative logDirectory resolved against the working directory")
assert(exists(home .. "/var/log/Archive/Custom.log.0.log") and exists(home .. "/var/log/Archive/Custom.log.1.log"),
  "archives under var/log/Archive/")
assert(not exists(home .. "/var/log/Archive/Custom.log.2.log") and not exists(home .. "/var/log/Custom.log.1"))
-- a log name that is a path is refused like any bad key
rc, out, err = run_in(cwd, H.config_dir({ logFileName = "../x.log" }), "sctokf")
H.eq(rc, 1, "logFileName with a '/': exit code")
assert(err:find("key 'logFileName': expected a file name without '/'", 1, true), err)

------------------------------------------------------------------------------------------------
-- 5. Page sizes above the APIs' maximum: a warning, and pages of the maximum.
H.reset(H.world())
dir = H.config_dir({ sectigoPageSize = 500, keyfactorPageSize = "9000" })
H.call("DELETE", H.sectigo .. "/__sim/requests")
rc, out, err = run_in(H.tmpdir(), dir, "sctokf")
H.eq(rc, 0, "page sizes above the maximum: the run works\n" .. out .. err)
assert(err:find("key 'sectigoPageSize': 500 is above Sectigo's maximum page size, 200; 200 is used", 1, true), err)
assert(err:find("key 'keyfactorPageSize': 9000 is above Keyfactor's maximum page size, 5000; 5000 is used", 1, true), err)
assert(H.read(H.main_log(dir)):find("| WARN  | config | " .. dir .. "/config.json: key 'sectigoPageSize'", 1, true),
  "the warning is logged")
assert(out:find("updated: +2"), out)
local sizes, limits = {}, {}
for _, e in ipairs(H.call("GET", H.sectigo .. "/__sim/requests")) do
  if e.endpoint == "sectigo.list" then sizes[#sizes + 1] = e.args.size end
  if e.endpoint == "keyfactor.certificates" then
    for k, v in pairs(e.args) do if k:lower():gsub("^pq%.", "") == "returnlimit" then limits[#limits + 1] = v end end
  end
end
assert(#sizes > 0 and #limits > 0, "no list requests in the journal")
for _, s in ipairs(sizes) do H.eq(s, "200", "Sectigo page size sent") end
for _, l in ipairs(limits) do H.eq(l, "5000", "Keyfactor page size sent") end
-- below 1 is still an error
rc, out, err = run_in(H.tmpdir(), H.config_dir({ sectigoPageSize = 0 }), "sctokf")
H.eq(rc, 1, "sectigoPageSize 0: exit code")
assert(err:find("key 'sectigoPageSize': expected a value from 1 to 200", 1, true), err)
print("ok")

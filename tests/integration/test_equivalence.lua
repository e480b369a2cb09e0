-- The streaming pipeline ends in the same state as the collect-then-diff path it replaced.
-- golden/equivalence.txt is the final state (both APIs, plus each run's exit code and counts)
-- that the old path produced from bigworld.lua's 3000 certificates with every kind of field,
-- running sctokf then kftosc. The details path and the bulk-report path must both give it.
-- METASYNC_WRITE_GOLDEN=1 rewrites the file instead of comparing (only ever done deliberately).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")
local B = require("bigworld")

local golden_path = H.here .. "/golden/equivalence.txt"
local world = B.world(3000, 7)

local function counts(out)
  local t = {}
  for _, k in ipairs({ "considered", "matched", "updated", "unchanged", "unmatched", "failed" }) do
    t[#t + 1] = k .. "=" .. (out:match(k .. ": +(%d+)") or "?")
  end
  return table.concat(t, " ")
end

local function run_both(over)
  H.reset(world)
  local dir = H.config_dir(over, B.fields(H))
  local text = {}
  for _, mode in ipairs({ "sctokf", "kftosc" }) do
    local rc, out, err = H.run(dir, mode)
    if rc ~= 0 and rc ~= 2 then error(mode .. " exited " .. tostring(rc) .. ": " .. err .. out) end
    text[#text + 1] = string.format("R %s rc=%d %s", mode, rc, counts(out))
  end
  os.execute("rm -rf " .. H.sh_quote(dir))
  return B.fingerprint(table.concat(text, "\n") .. "\n" .. B.digest(H.state()))
end

local function compare(got, full, what)
  local want = assert(H.read(golden_path), "missing " .. golden_path)
  if got == want then return end
  local gl, wl = {}, {}
  for l in got:gmatch("[^\n]+") do gl[#gl + 1] = l end
  for l in want:gmatch("[^\n]+") do wl[#wl + 1] = l end
  local shown = 0
  for i = 1, math.max(#gl, #wl) do
    if gl[i] ~= wl[i] and shown < 10 then
      io.stderr:write(string.format("line %d\n  want: %s\n  got:  %s\n", i, tostring(wl[i]),
        tostring(gl[i] and full[gl[i]] or gl[i])))
      shown = shown + 1
    end
  end
  error(what .. ": final state differs from the old path's (" .. golden_path .. ")")
end

local base = { sectigoPageSize = 50, keyfactorPageSize = 40 }
local details, dfull = run_both(base)
if os.getenv("METASYNC_WRITE_GOLDEN") == "1" then
  H.write(golden_path, details)
  print("wrote " .. golden_path)
  return
end
compare(details, dfull, "details path")
local bulk = {}
for k, v in pairs(base) do bulk[k] = v end
bulk.sectigoBulkReads = "on"
local bt, bfull = run_both(bulk)
compare(bt, bfull, "bulk-report path")
print("ok")

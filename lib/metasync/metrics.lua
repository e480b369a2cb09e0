-- metricsFile: the last run's counters, duration and exit code in the Prometheus text format,
-- for node_exporter's textfile collector (point metricsFile at its directory, name ending in
-- .prom). Each sample carries a direction label; a run replaces its own direction's samples
-- and keeps the others', so nightly sctokf and kftosc runs sharing one file both show. The
-- file is written beside itself and renamed into place, so the collector never reads half
-- of it (the .tmp name does not end in .prom, so the collector ignores it).
local task = require("metasync.task")

local M = {}

-- name, help, and the samples of one run: {labels, value} each
M.METRICS = {
  { "metasync_last_run_exit_code", "Exit code of the last run: 0 ok, 1 fatal before any write, 2 failures, 3 conflicts, 4 change limit, 130/143 interrupted." },
  { "metasync_last_run_success", "1 when the last run exited 0, else 0." },
  { "metasync_last_run_timestamp_seconds", "When the last run ended, in seconds since the Unix epoch." },
  { "metasync_last_run_duration_seconds", "How long the last run took, in seconds." },
  { "metasync_last_run_certificates", "Certificates of the last run, by outcome." },
  { "metasync_last_run_conflicts", "Fields left in conflict by the last run (sync)." },
  { "metasync_last_run_fields", "Keyfactor field definitions of the last run, by outcome." },
  { "metasync_last_run_requests", "HTTP requests the last run sent, by API." },
  { "metasync_last_run_retries", "Retried HTTP requests of the last run, by API." },
}
local KNOWN = {}
for _, m in ipairs(M.METRICS) do KNOWN[m[1]] = true end

local function esc(v) return (tostring(v):gsub("\\", "\\\\"):gsub("\n", "\\n"):gsub('"', '\\"')) end

local function labels(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return a == "direction" or (b ~= "direction" and a < b) end)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = string.format('%s="%s"', k, esc(t[k])) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function num(v)
  if math.type(v) == "integer" then return string.format("%d", v) end
  return string.format("%.3f", v)
end

-- samples(direction, report, rc, rest stats) -> {name = {"name{labels} value", ...}}
function M.samples(direction, r, rc, stats, now_unix)
  local out = {}
  local function add(name, extra, v)
    local l = { direction = direction }
    for k, x in pairs(extra or {}) do l[k] = x end
    local list = out[name] or {}
    out[name] = list
    list[#list + 1] = name .. labels(l) .. " " .. num(v)
  end
  add("metasync_last_run_exit_code", nil, rc)
  add("metasync_last_run_success", nil, rc == 0 and 1 or 0)
  add("metasync_last_run_timestamp_seconds", nil, now_unix or os.time())
  add("metasync_last_run_duration_seconds", nil, task.now() - r.started)
  local nfailed = r.nfailed or #r.failed
  for _, kv in ipairs { { "considered", r.considered }, { "skipped", r.skipped }, { "matched", r.matched },
      { "updated", r.updated }, { "unchanged", r.unchanged }, { "unmatched", r.unmatched }, { "failed", nfailed } } do
    add("metasync_last_run_certificates", { outcome = kv[1] }, kv[2])
  end
  add("metasync_last_run_conflicts", nil, r.conflicts)
  add("metasync_last_run_fields", { outcome = "created" }, r.fields_created)
  add("metasync_last_run_fields", { outcome = "updated" }, r.fields_updated)
  add("metasync_last_run_fields", { outcome = "failed" }, #r.field_failures)
  for _, api in ipairs { "sectigo", "keyfactor" } do
    local s = stats and stats[api]
    if s then
      add("metasync_last_run_requests", { api = api }, s.requests or 0)
      add("metasync_last_run_retries", { api = api }, s.retries or 0)
    end
  end
  return out
end

-- render(mine, old_text, direction) -> the file's text: every metric's HELP and TYPE, the
-- other directions' samples kept from old_text, then this run's.
function M.render(mine, old, direction)
  local kept = {}
  for line in (old or ""):gmatch("[^\n]+") do
    local name, l = line:match("^(metasync_[%w_]+)(%b{}) %S+$")
    local d = l and l:match('direction="([^"]*)"')
    if name and KNOWN[name] and d and d ~= esc(direction) then
      local list = kept[name] or {}
      kept[name] = list
      list[#list + 1] = line
    end
  end
  local out = {}
  for _, m in ipairs(M.METRICS) do
    local name = m[1]
    if kept[name] or mine[name] then
      out[#out + 1] = "# HELP " .. name .. " " .. m[2]
      out[#out + 1] = "# TYPE " .. name .. " gauge"
      for _, l in ipairs(kept[name] or {}) do out[#out + 1] = l end
      for _, l in ipairs(mine[name] or {}) do out[#out + 1] = l end
    end
  end
  return table.concat(out, "\n") .. "\n"
end

-- write(path, ctx, rc) -> true | nil, message
function M.write(path, ctx, rc)
  local r = ctx.report
  local stats = {}
  if ctx.sectigo and ctx.sectigo.rest then stats.sectigo = ctx.sectigo.rest.stats end
  if ctx.keyfactor and ctx.keyfactor.rest then stats.keyfactor = ctx.keyfactor.rest.stats end
  local direction = ctx.direction or r.direction
  local old
  local f = io.open(path, "rb")
  if f then old = f:read("a"); f:close() end
  local text = M.render(M.samples(direction, r, rc, stats), old, direction)
  local tmp = path .. ".tmp"
  local w, err = io.open(tmp, "wb")
  if not w then return nil, err end
  local ok, werr = w:write(text)
  local cok, cerr = w:close()
  if not ok or not cok then os.remove(tmp); return nil, tostring(werr or cerr) end
  local rok, rerr = os.rename(tmp, path)
  if not rok then os.remove(tmp); return nil, rerr end
  return true
end

return M

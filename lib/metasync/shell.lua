-- The REPL's environment: the engine's modules and, when the configuration loads, live clients
-- for both APIs, as globals for ad-hoc queries. (Setting globals is this module's whole purpose;
-- no other library module does.)
--   sectigo:custom_fields(), sectigo:details(id), sectigo:list{status = "Issued"} ...
--   keyfactor:metadata_fields(), keyfactor:list{query = 'IssuerDN -contains "Sectigo"'} ...
--   (sectigo:certificates{...} and keyfactor:certificates{...} are the streaming iterators)
local log = require("metasync.log")

local M = {}

-- print, as the base library's, but masked like everything else the shell shows (the
-- printer in engine/repl.c redacts results): print(config.sectigoPassword) shows "***" once
-- the password is registered. io.write stays raw, for whoever really needs the bytes.
local function masked_print(...)
  local n, parts = select("#", ...), {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  io.stdout:write(log.redact(table.concat(parts, "\t")), "\n")
end

function M.setup(interactive)
  local opts = require("metasync.options")
  for _, name in ipairs({ "json", "re", "http", "task", "log" }) do
    _G[name] = require("metasync." .. name)
  end
  _G.print = masked_print
  _G.serial = require("metasync.serial")
  local config = require("metasync.config")
  local cfg, errs = config.load(opts.config_dir)
  if not cfg then
    if interactive then
      io.stderr:write("metasync: no API clients (", log.redact(tostring(errs and errs[1])), ")\n")
    end
    return false
  end
  _G.config = cfg
  _G.sectigo, _G.keyfactor = require("metasync.setup").clients(cfg, opts)
  if interactive then
    print(string.format("clients: sectigo (%s), keyfactor (%s)", cfg.sectigo_base, cfg.keyfactor_base))
    print("modules: json, re, http, task, log, serial; config: the loaded configuration")
  end
  return true
end

return M

-- Tabular output: CSV (RFC 4180: fields holding a comma, a quote, CR or LF are quoted, quotes
-- doubled, lines end with CRLF) and JSON lines. Columns are given, so every row has the same
-- shape; a missing value is an empty field (CSV) or null (JSON).
local json = require("metasync.json")

local M = {}

local function field(v)
  if v == nil or v == json.null then return "" end
  local s = tostring(v)
  if s:find('[,"\r\n]') then return '"' .. s:gsub('"', '""') .. '"' end
  return s
end
M.field = field

-- line(values, columns) -> one CSV record with its CRLF; values keyed by column name
function M.line(row, columns)
  local out = {}
  for i, c in ipairs(columns) do out[i] = field(row[c]) end
  return table.concat(out, ",") .. "\r\n"
end

function M.header(columns)
  local out = {}
  for i, c in ipairs(columns) do out[i] = field(c) end
  return table.concat(out, ",") .. "\r\n"
end

-- jsonl(row, columns) -> one JSON object per line, keys in the columns' order
function M.jsonl(row, columns)
  local parts = {}
  for i, c in ipairs(columns) do
    local v = row[c]
    if v == nil then v = json.null end
    parts[i] = json.encode(c) .. ":" .. json.encode(v)
  end
  return "{" .. table.concat(parts, ",") .. "}\n"
end

return M

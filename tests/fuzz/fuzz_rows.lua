-- Fuzz target: json.rows (engine/json_rows.c), the bulk report's fast reader. The input is
-- the text inside a report's list ({"reports":[INPUT]}), and then the whole input as an answer
-- of its own. Properties: json.rows never raises; it answers nil exactly when json.decode
-- refuses the text; and when it reads a report, the index and the failures metasync.bulk
-- builds from it are exactly those of decoding every row and taking it in Lua.
local H = require("harness").setup(...)
local json = require("metasync.json")
local bulk = require("metasync.bulk")

local today = os.time() // 86400
-- Custom slots whose names differ only in case, every conversion, and filters that select by
-- status, by type only, by several statuses, or not at all.
local slots = bulk.plan({ "Cost Center", "cost center", "Notes" },
  { "keySize", "expires", "commonName", "serialNumber", "certType.id", "status" })
local FILTERS = { { { status = "Issued" } }, { { status = "Issued", ssl_type_id = 1018 } }, { { ssl_type_id = 1018 } },
  { { status = "Issued" }, { status = "Revoked" } }, { {} } }

local function run(body, fast, filters)
  local client = {}
  function client.report(_, req, read)
    local text = req.to == os.date("!%Y-%m-%d", (today + 1) * 86400) and body or '{"reports":[]}'
    if fast then
      local doc, err = read(text)
      if not doc then return nil, err, false end
      return doc.reports
    end
    local doc, err = json.decode(text, { select = bulk.keys(slots), at = "reports" })
    if not doc then return nil, err, false end
    return doc.reports
  end
  local map, dups, bad = {}, 0, {}
  local ok, err = bulk.build({ sectigo = client }, filters, slots, map, function(key, e)
    if map[key] ~= nil then dups = dups + 1 else map[key] = e end
  end, function(key, label, reason) bad[#bad + 1] = table.concat({ tostring(key), label, reason }, " | ") end)
  return ok, err, map, dups, bad
end

local function text(v)
  if type(v) == "table" then return json.encode(v, { sort_keys = true }) end
  if v == json.null then return "null" end
  return type(v) .. ":" .. tostring(v) .. ":" .. tostring(math.type(v))
end

local function check(body)
  local spec = { at = "reports", id = "id", key = "serialNumber", slots = {}, map = {}, seen = {}, other = function() end }
  local ok, n = pcall(json.rows, body, spec)
  if not ok then H.fail("json.rows raised: %s", tostring(n)) end
  local doc = json.decode(body)
  if (n == nil) ~= (doc == nil) then H.fail("json.rows says %s, json.decode %s", tostring(n), doc == nil and "invalid" or "valid") end
  if n == nil or n == false then return end
  if type(doc) ~= "table" or type(doc.reports) ~= "table" or not json.is_array(doc.reports) then
    H.fail("json.rows read a report from an answer that holds none")
  end
  for _, filters in ipairs(FILTERS) do
    local ok1, e1, m1, d1, b1 = run(body, false, filters)
    local ok2, e2, m2, d2, b2 = run(body, true, filters)
    -- (on success the second value counts the entries json.rows put into the map itself)
    if ok1 ~= ok2 or (not ok1 and e1 ~= e2) then H.fail("outcome: Lua %s %s, json.rows %s %s", tostring(ok1), tostring(e1), tostring(ok2), tostring(e2)) end
    if not ok1 then return end
    if d1 ~= d2 then H.fail("duplicate serials: Lua %d, json.rows %d", d1, d2) end
    if table.concat(b1, "\n") ~= table.concat(b2, "\n") then H.fail("failures differ:\n%s\nvs\n%s", table.concat(b1, "\n"), table.concat(b2, "\n")) end
    for k, e in pairs(m1) do
      local f = m2[k]
      if not f then H.fail("serial %s only in the Lua path's index", H.quote(k)) end
      for i = 1, math.max(#e, #f) do
        if text(e[i]) ~= text(f[i]) then H.fail("serial %s slot %d: Lua %s, json.rows %s", H.quote(k), i, text(e[i]), text(f[i])) end
      end
    end
    for k in pairs(m2) do if not m1[k] then H.fail("serial %s only in json.rows' index", H.quote(k)) end end
  end
end

return function(data)
  check('{"reports":[' .. data .. ']}')
  check(data)
end

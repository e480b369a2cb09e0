-- The Keyfactor query language: a pure unit test of kfquery.lua, then the same over HTTP.
local T = dofile(((arg and arg[0] or ""):match("^(.*/)") or "") .. "simtest.lua")
package.path = T.dir .. "../lua/?.lua;" .. package.path
local Q = require("kfquery")

local items = {
  { name = "alpha", n = 1, d = 20000 * 86400, tag = "x" },
  { name = "Beta", n = 2, d = 20001 * 86400 + 3600 },
  { name = "gamma", n = 3, d = 20002 * 86400, tag = "" },
}
local fields = { Name = "string", N = "number", D = "date", Tag = "string" }
local function resolve(name)
  for k, kind in pairs(fields) do
    if k:lower() == name:lower() then
      local key = k:lower()
      return { kind = kind, get = function(it) return it[key] end }
    end
  end
end
local function run(q)
  local p, err = Q.compile(q, resolve, 20001)
  if not p then return nil, err end
  local out = {}
  for _, it in ipairs(items) do if p(it) then out[#out + 1] = it.name end end
  return table.concat(out, ",")
end

T.test("unit: operators, case-insensitivity, quoting", function()
  local cases = {
    { 'Name -eq "ALPHA"', "alpha" }, { "name -ne alpha", "Beta,gamma" }, { 'Name -contains "ET"', "Beta" },
    { 'Name -notcontains "a"', "" }, { 'Name -startswith "ga"', "gamma" }, { 'Name -endswith "TA"', "Beta" },
    { "N -lt 2", "alpha" }, { "N -le 2", "alpha,Beta" }, { "N -gt 2", "gamma" }, { "N -ge 2", "Beta,gamma" },
    { "n -eq 3", "gamma" }, { "Tag -eq NULL", "Beta,gamma" }, { "Tag -ne NULL", "alpha" },
    { "Name -eq 'Beta'", "Beta" }, { 'Name -eq "say ""hi"""', "" }, { "", "alpha,Beta,gamma" },
  }
  for _, c in ipairs(cases) do T.eq(run(c[1]), c[2], c[1]) end
end)

T.test("unit: AND binds tighter than OR; parentheses", function()
  T.eq(run("N -eq 1 OR N -eq 2 AND Name -eq gamma"), "alpha", "precedence")
  T.eq(run("(N -eq 1 OR N -eq 2) AND Name -eq beta"), "Beta", "parentheses")
  T.eq(run("N -eq 1 or n -eq 3"), "alpha,gamma", "lowercase or")
  T.eq(run("((N -ge 1)) AND NOT_A_FIELD -eq 1"), nil, "unknown field")
end)

T.test("unit: dates, day-granular literals, %TODAY%", function()
  local day = os.date("!%Y-%m-%d", 20001 * 86400)
  T.eq(run('D -eq "' .. day .. '"'), "Beta", "same day")
  T.eq(run('D -lt "' .. day .. '"'), "alpha", "before")
  T.eq(run('D -ge "' .. day .. '"'), "Beta,gamma", "on or after")
  T.eq(run('D -gt "' .. day .. '"'), "gamma", "after")
  T.eq(run("D -eq %TODAY%"), "Beta", "today")
  T.eq(run("D -le %TODAY-1%"), "alpha", "today minus one")
  T.eq(run("D -ge %TODAY+1%"), "gamma", "today plus one")
end)

T.test("unit: malformed queries are errors, never crashes", function()
  for _, q in ipairs({ "Name", "Name -eq", "Name -eq x AND", "(Name -eq x", "Name -eq x)", 'Name -eq "open',
    "Name -like x", "N -contains 1", "N -eq abc", "D -eq notadate", "Name -lt NULL", string.rep("(", 500),
    "AND", "-eq x", string.rep("Name -eq x AND ", 3000) .. "Name -eq x" }) do
    local p, err = Q.compile(q, resolve, 20001)
    T.ok(p == nil and type(err) == "string", "rejected: " .. q:sub(1, 40))
  end
end)

T.world("basic.json")

local function ids(q)
  local r = T.kf("GET", "/Certificates?IncludeRevoked=true&IncludeExpired=true&QueryString=" ..
    q:gsub("[^%w%-_.~]", function(c) return string.format("%%%02X", c:byte()) end))
  if r.status ~= 200 then return "status " .. r.status end
  local out = {}
  for _, c in ipairs(T.decode(r)) do out[#out + 1] = c.Id end
  return table.concat(out, ",")
end

T.test("HTTP: built-in fields", function()
  T.eq(ids('SerialNumber -eq "0000000000000000000000000a1b2c3d"'), "1,5", "serial collision across issuers")
  T.eq(ids('IssuerDN -contains "sectigo" AND SerialNumber -endswith "0A1B2C3D"'), "1", "issuer and serial")
  T.eq(ids("CertState -eq 2"), "3", "revoked")
  T.eq(ids('IssuedCN -startswith "b." OR IssuedDN -eq NULL'), "2", "IssuedDN always set")
  T.eq(ids('ExpirationDate -lt "2022-01-01"'), "4", "ExpirationDate")
  T.eq(ids('NotAfter -gt "2098-06-01" AND NotBefore -ge "2025-01-01"'), "1,2", "dates")
  T.eq(ids("CertId -ge 5"), "5,6", "CertId")
  T.eq(ids('Thumbprint -eq "' .. string.rep("AA", 20) .. '"'), "1", "Thumbprint")
  T.eq(ids('TemplateName -eq "WebServer"'), "6", "TemplateName")
end)

T.test("HTTP: metadata fields by bare name", function()
  T.eq(ids('CostCenter -eq "cc-1"'), "1", "string metadata")
  T.eq(ids("CostCenter -eq NULL"), "2,3,4,5,6", "null metadata")
  T.eq(ids("Ticket -gt 1000"), "2", "integer metadata")
  T.eq(ids('RenewalDate -eq "2025-07-23"'), "1", "date metadata")
  T.eq(ids('Critical -eq "True"'), "2", "boolean metadata")
end)

T.test("HTTP: malformed queries get 400 with ErrorCode and Message", function()
  for _, q in ipairs({ "IssuerDN -eq", "Nope -eq 1", '(CertState -eq 1', "CertState -eq abc" }) do
    local r = T.kf("GET", "/Certificates?QueryString=" .. q:gsub("[^%w%-_.~]", function(c)
      return string.format("%%%02X", c:byte()) end))
    local b = T.kf_error(r, 400, q)
    T.ok(b.Message:lower():find("query", 1, true), "message mentions the query")
  end
end)

T.done()

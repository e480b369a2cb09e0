-- PUT /api/ssl/v1: validation codes, merge semantics, comments, writes count.
local T = dofile(((arg and arg[0] or ""):match("^(.*/)") or "") .. "simtest.lua")

T.world("basic.json")

local function put(body) return T.sc("PUT", "/api/ssl/v1", body) end
local function fields(d)
  local t = {}
  for _, f in ipairs(d.customFields) do t[f.name] = f.value end
  return t
end

T.test("update merges the given fields and returns the details", function()
  local r = put({ sslId = 101, customFields = { { name = "Owner Email", value = "ops@example.com" },
    { name = "Renewal Date", value = "2026-04-01" }, { name = "Budget", value = "-17" } } })
  T.eq(r.status, 200, "status")
  local d = T.decode(r)
  T.eq(d.sslId, 101, "details returned")
  local f = fields(d)
  T.eq(f["Owner Email"], "ops@example.com", "new email")
  T.eq(f["Renewal Date"], "2026-04-01", "new date")
  T.eq(f["Budget"], "-17", "integer")
  T.eq(f["Cost Center"], "CC-1", "untouched field kept")
  T.eq(f["App/Service"], "CRM", "untouched option kept")
  f = fields(T.decode(T.sc("GET", "/api/ssl/v1/101")))
  T.eq(f["Owner Email"], "ops@example.com", "GET sees the update")
end)

T.test("an empty value clears a field; comments are stored when sent", function()
  local d = T.decode(put({ sslId = 101, customFields = { { name = "Cost Center", value = "" } }, comments = "synced" }))
  T.eq(fields(d)["Cost Center"], nil, "cleared")
  T.eq(d.comments, "synced", "comments")
  d = T.decode(put({ sslId = 101, customFields = { { name = "Notes", value = "a\nb" } } }))
  T.eq(d.comments, "synced", "comments kept when not sent")
  T.eq(fields(d)["Notes"], "a\nb", "multi-line text")
end)

T.test("validation: -135 unknown or inactive field", function()
  T.sc_error(put({ sslId = 101, customFields = { { name = "No Such Field", value = "x" } } }), 400, -135, "unknown")
  T.sc_error(put({ sslId = 101, customFields = { { name = "Legacy", value = "x" } } }), 400, -135, "inactive")
end)

T.test("validation: -1601 for bad values", function()
  local bad = {
    { "Renewal Date", "04/01/2026" }, { "Renewal Date", "2026-02-30" }, { "Budget", "12.5" },
    { "Budget", "ten" }, { "Owner Email", "not-an-email" }, { "App/Service", "Payroll" },
    { "Cost Center", string.rep("x", 257) }, { "Cost Center", "two\nlines" },
  }
  for _, c in ipairs(bad) do
    local b = T.sc_error(put({ sslId = 102, customFields = { { name = c[1], value = c[2] } } }), 400, -1601, c[1])
    T.ok(b.description:find(c[1], 1, true), "description names the field " .. c[1])
  end
  T.eq(put({ sslId = 102, customFields = { { name = "Cost Center", value = string.rep("x", 256) } } }).status, 200,
    "256 characters are fine")
  local d = T.decode(T.sc("GET", "/api/ssl/v1/102"))
  T.eq(fields(d)["Owner Email"], nil, "nothing stored by the failed updates")
end)

T.test("validation: malformed JSON -1002, missing sslId -7, unknown id 404", function()
  T.sc_error(put("{\"sslId\": 101,"), 400, -1002, "truncated JSON")
  T.sc_error(put("[1,2]"), 400, -1002, "array body")
  T.sc_error(put({ sslId = 101, customFields = "x" }), 400, -1002, "customFields not an array")
  T.sc_error(put(""), 400, -1002, "empty body")
  T.sc_error(put({ customFields = {} }), 400, -7, "missing sslId")
  T.sc_error(put({ sslId = 424242 }), 404, -5101, "unknown certificate")
  T.sc_error(put({ sslId = 101, customFields = { { value = "x" } } }), 400, -7, "missing name")
  T.sc_error(put({ sslId = 101, customFields = { { name = "Notes" } } }), 400, -7, "missing value")
end)

T.test("writes are counted and the state dump shows the result", function()
  T.eq(T.ctl("DELETE", "stats").status, 204, "reset stats")
  put({ sslId = 106, customFields = { { name = "App/Service", value = "Billing" } } })
  put({ sslId = 106, customFields = { { name = "App/Service", value = "Nope" } } })
  local s = T.decode(T.ctl("GET", "stats"))
  T.eq(s.writes, 1, "one successful write")
  T.eq(s.requests["sectigo.update"].PUT, 2, "two PUTs")
  local st = T.decode(T.ctl("GET", "state"))
  local c = T.find(st.sectigo.certificates, "id", 106)
  local f = fields(c)
  T.eq(f["App/Service"], "Billing", "stored value")
  T.eq(f["Budget"], "42", "other stored value kept")
end)

T.test("sectigoCustomFieldsPut: merge (default) keeps unsent fields, replace drops them", function()
  T.world("basic.json")
  local st = T.decode(T.ctl("GET", "settings"))
  T.eq(st.sectigoCustomFieldsPut, "merge", "default")
  local d = T.decode(put({ sslId = 101, customFields = { { name = "Owner Email", value = "a@example.com" } } }))
  T.eq(fields(d)["Cost Center"], "CC-1", "merge keeps an unsent field")
  T.eq(T.ctl("POST", "settings", { sectigoCustomFieldsPut = "bogus" }).status, 400, "bad value refused")
  st = T.decode(T.ctl("POST", "settings", { sectigoCustomFieldsPut = "replace" }))
  T.eq(st.sectigoCustomFieldsPut, "replace", "set at runtime")
  d = T.decode(put({ sslId = 101, customFields = { { name = "Notes", value = "only" } } }))
  local f = fields(d)
  T.eq(f["Notes"], "only", "sent field stored")
  T.eq(f["Cost Center"], nil, "replace drops an unsent field")
  T.eq(f["App/Service"], nil, "replace drops every unsent field")
  T.eq(f["Owner Email"], nil, "including one set by an earlier PUT")
  d = T.decode(put({ sslId = 101, comments = "no list sent" }))
  T.eq(fields(d)["Notes"], "only", "a PUT without customFields leaves the list alone")
  local dump = T.decode(T.ctl("GET", "state"))
  T.eq(dump.settings.sectigoCustomFieldsPut, "replace", "the setting is part of the world")
  local c = fields(T.find(dump.sectigo.certificates, "id", 101))
  T.eq(c["Legacy"], "old", "an inactive field's hidden value is kept")
  T.decode(put({ sslId = 101, customFields = {} }))
  c = fields(T.find(T.decode(T.ctl("GET", "state")).sectigo.certificates, "id", 101))
  T.eq(c["Notes"], nil, "an empty list clears the active fields")
end)

T.test("sectigoCustomFieldsPut from a --data world; invalid values are refused", function()
  local doc = T.json.decode(T.fixture("basic.json"))
  doc.settings.sectigoCustomFieldsPut = "replace"
  T.eq(T.ctl("POST", "reset", doc).status, 200, "load a replace world")
  local d = T.decode(put({ sslId = 101, customFields = { { name = "Budget", value = "1" } } }))
  T.eq(fields(d)["Cost Center"], nil, "replace in effect")
  T.eq(fields(d)["Budget"], "1", "sent value")
  doc.settings.sectigoCustomFieldsPut = "both"
  local r = T.ctl("POST", "reset", doc)
  T.eq(r.status, 400, "invalid world refused")
  T.ok(r.body:find("settings.sectigoCustomFieldsPut", 1, true), "error names the path")
  T.world("basic.json")
  T.eq(T.decode(T.ctl("GET", "settings")).sectigoCustomFieldsPut, "merge", "a reset world merges again")
end)

T.done()

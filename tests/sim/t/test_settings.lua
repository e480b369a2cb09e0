-- GET/POST /__sim/settings: every setting with its default, validation, and the same settings in a
-- world document (loaded by reset/--data, dumped by GET /__sim/state).
local T = dofile(((arg and arg[0] or ""):match("^(.*/)") or "") .. "simtest.lua")

local DEFAULTS = {
  sectigoListSerialFormat = "colon", sectigoCustomFieldsPut = "merge", sectigoIgnorePaging = false,
  sectigoReport = "on", sectigoReportDateFormat = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'",
  sectigoReportInactiveFields = false, sectigoReportSerialFormat = "plain", sectigoReportMaxRows = 0,
  keyfactorDateFormat = "M/d/yyyy h:mm:ss tt", keyfactorQueryNames = "any", keyfactorIgnorePaging = false,
  productVersion = "25.1.0.0", tokenTtl = 300,
}

T.test("GET shows every setting with its default", function()
  local st = T.decode(T.ctl("GET", "settings"))
  for k, v in pairs(DEFAULTS) do T.eq(st[k], v, k) end
  for k in pairs(st) do T.ok(DEFAULTS[k] ~= nil, "documented setting " .. k) end
end)

T.test("POST sets values; bad names and values get 400 and change nothing", function()
  local r = T.ctl("POST", "settings", { keyfactorQueryNames = "v10", sectigoReportMaxRows = 5,
    sectigoReportDateFormat = "MM/dd/yyyy", sectigoReport = "403", keyfactorIgnorePaging = true })
  T.eq(r.status, 200, "set")
  local st = T.decode(r)
  T.eq(st.keyfactorQueryNames, "v10", "query names")
  T.eq(st.sectigoReportMaxRows, 5, "max rows")
  T.eq(st.productVersion, "10.4.0.0", "v10 reports a 10.x product version")
  local bad = { { keyfactorQueryNames = "v11" }, { keyfactorIgnorePaging = "yes" }, { sectigoIgnorePaging = 1 },
    { sectigoReport = "500" }, { sectigoReportDateFormat = "qq-yyyy" }, { sectigoReportDateFormat = 7 },
    { sectigoReportInactiveFields = "true" }, { sectigoReportSerialFormat = "dashes" },
    { sectigoReportMaxRows = -1 }, { sectigoReportMaxRows = "10" }, { sectigoReportMaxRows = 1.5 },
    { tokenTtl = 0 }, { bogus = 1 }, { keyfactorQueryNames = "v25", sectigoReport = "nope" } }
  for _, b in ipairs(bad) do
    local br = T.ctl("POST", "settings", b)
    T.eq(br.status, 400, T.json.encode(b))
    T.ok(T.decode(br).error:find(next(b) == "bogus" and "unknown setting" or "invalid value", 1, true), "message")
  end
  st = T.decode(T.ctl("GET", "settings"))
  T.eq(st.keyfactorQueryNames, "v10", "a refused POST changed nothing")
  T.eq(st.sectigoReport, "403", "still 403")
  T.ctl("POST", "settings", { productVersion = "10.1.2.3" })
  T.eq(T.decode(T.ctl("GET", "settings")).productVersion, "10.1.2.3", "productVersion wins over the v10 default")
end)

T.test("a reset world starts from the defaults again", function()
  T.world("basic.json")
  local st = T.decode(T.ctl("GET", "settings"))
  for k, v in pairs(DEFAULTS) do T.eq(st[k], v, k) end
end)

T.test("a world's settings load, dump with GET /__sim/state and load back", function()
  local doc = T.json.decode(T.fixture("basic.json"))
  doc.settings = { sectigoListSerialFormat = "plain", keyfactorQueryNames = "v25", keyfactorIgnorePaging = true,
    sectigoIgnorePaging = true, sectigoReport = "badshape", sectigoReportDateFormat = "yyyy-MM-dd",
    sectigoReportInactiveFields = true, sectigoReportSerialFormat = "colon", sectigoReportMaxRows = 100,
    keyfactorDateFormat = "yyyy-MM-dd", productVersion = "25.2.0.0", tokenTtl = 60 }
  T.eq(T.ctl("POST", "reset", doc).status, 200, "load")
  local st = T.decode(T.ctl("GET", "settings"))
  for k, v in pairs(doc.settings) do T.eq(st[k], v, "loaded " .. k) end
  local dumped = T.decode(T.ctl("GET", "state")).settings
  for k, v in pairs(doc.settings) do T.eq(dumped[k], v, "dumped " .. k) end
  T.eq(T.ctl("POST", "reset", T.ctl("GET", "state").body).status, 200, "reload the dump")
  st = T.decode(T.ctl("GET", "settings"))
  for k, v in pairs(doc.settings) do T.eq(st[k], v, "reloaded " .. k) end
end)

T.test("a world with an unknown or invalid setting is refused, naming it", function()
  local doc = T.json.decode(T.fixture("basic.json"))
  doc.settings = { keyfactorQueryNames = "v9" }
  local r = T.ctl("POST", "reset", doc)
  T.eq(r.status, 400, "invalid value")
  T.ok(T.decode(r).error:find("settings.keyfactorQueryNames", 1, true), "names the setting")
  doc.settings = { sectigoReportMaxRow = 1 }
  r = T.ctl("POST", "reset", doc)
  T.eq(r.status, 400, "unknown setting")
  T.ok(T.decode(r).error:find("sectigoReportMaxRow", 1, true), "names the unknown key")
end)

T.test("Status/Endpoints: the product version follows keyfactorQueryNames unless productVersion is set", function()
  T.world("basic.json")
  local function version() return T.kf("GET", "/Status/Endpoints").headers["x-keyfactor-product-version"] end
  T.eq(version(), "25.1.0.0", "default")
  T.ctl("POST", "settings", { keyfactorQueryNames = "v10" })
  T.eq(version(), "10.4.0.0", "v10")
  T.ctl("POST", "settings", { keyfactorQueryNames = "v25" })
  T.eq(version(), "25.1.0.0", "v25")
  T.ctl("POST", "settings", { keyfactorQueryNames = "v10", productVersion = "10.2.0.0" })
  T.eq(version(), "10.2.0.0", "explicit")
end)

T.done()

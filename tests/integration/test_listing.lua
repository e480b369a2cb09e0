-- The paged listings as streaming iterators, against the simulator: 60 certificates on each
-- side in pages of 7, pages after the first fetched 3 at a time. Every certificate comes
-- exactly once and in order, pages are fetched through a sliding window (not all up front),
-- the window's pages are in flight together, and a failed page makes the iteration fail.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local H = require("helper")
local sectigo = require("metasync.sectigo")
local keyfactor = require("metasync.keyfactor")

local N, SIZE, WINDOW = 60, 7, 3
local PAGES = (N + SIZE - 1) // SIZE -- 9
local w = { sectigo = { types = { { id = 1018, name = "OV SSL" } }, certificates = {} },
  keyfactor = { certificates = {} } }
for i = 1, N do
  w.sectigo.certificates[i] = { id = 1000 + i, commonName = "h" .. i .. ".test", sslTypeId = 1018,
    status = "Issued", serialNumber = string.format("0A:%02X:%02X", i // 256, i % 256),
    issued = "2025-01-01", expires = "2099-01-01" }
  w.keyfactor.certificates[i] = { Id = i, SerialNumber = string.format("0A%04X", i), IssuedCN = "h" .. i .. ".test",
    IssuerDN = "CN=Sectigo Test CA", NotBefore = "2025-01-01T00:00:00Z", NotAfter = "2099-01-01T00:00:00Z" }
end
H.reset(w)

local sc = sectigo.new { base = H.sectigo, login = "sim-admin", password = "sim-password",
  customer_uri = "sim-customer", concurrency = WINDOW, http = { retries = 0 } }
local kf = keyfactor.new { base = H.keyfactor, login = "DOMAIN\\sim-admin", password = "sim-password",
  concurrency = WINDOW, http = { retries = 0 } }

local function gets(endpoint)
  local r = H.stats().requests[endpoint]
  return r and r.GET or 0
end

local sides = {
  { name = "Sectigo", endpoint = "sectigo.list", id = function(c) return (c.sslId or c.id) - 1000 end,
    iter = function() return sc:certificates { page_size = SIZE } end,
    list = function() return sc:list { page_size = SIZE } end,
    fail_body = '{"code":-1,"description":"Unknown error."}', fail_text = "HTTP 500: -1 Unknown error." },
  { name = "Keyfactor", endpoint = "keyfactor.certificates", id = function(c) return c.Id end,
    iter = function() return kf:certificates { page_size = SIZE } end,
    list = function() return kf:list { page_size = SIZE } end,
    fail_body = '{"ErrorCode":"0xA0110001","Message":"Simulated outage"}', fail_text = "HTTP 500: Simulated outage" },
}

for _, s in ipairs(sides) do
  -- streaming: one page before the first certificate, one window more on entering page 2
  H.faults { global = { latency_ms = 40 } }
  H.clear_stats()
  local it = s.iter()
  H.eq(gets(s.endpoint), 0, s.name .. ": requests before the first call")
  local c = it()
  H.eq(s.id(c), 1, s.name .. ": first certificate")
  -- page 1 alone first (it tells the total), then a sliding window: never more than WINDOW
  -- pages in flight, and never more than 2 x WINDOW fetched ahead of the reader
  local ahead = gets(s.endpoint)
  assert(ahead >= 1 and ahead <= 1 + 2 * WINDOW, s.name .. ": pages fetched for the first certificate: " .. ahead)
  for i = 2, SIZE do H.eq(s.id(it()), i, s.name .. ": certificate " .. i) end
  H.eq(s.id(it()), SIZE + 1, s.name .. ": first certificate of page 2")
  local st = H.stats()
  assert(st.max_inflight >= 2, s.name .. ": window pages fetched concurrently, max in flight " .. tostring(st.max_inflight))
  -- (+1: the simulator may still count a finished request while the page it freed starts)
  assert(st.max_inflight <= WINDOW + 1, s.name .. ": at most a window in flight, got " .. tostring(st.max_inflight))
  -- the rest: every certificate exactly once, in order, then nil for good
  local n = SIZE + 1
  for cert in it do
    n = n + 1
    H.eq(s.id(cert), n, s.name .. ": certificate in order")
  end
  H.eq(n, N, s.name .. ": certificates listed")
  H.eq(it(), nil, s.name .. ": iterator stays finished")
  H.eq(gets(s.endpoint), PAGES, s.name .. ": pages fetched in all")
  H.call("DELETE", H.sectigo .. "/__sim/faults")

  -- the list wrapper gives the same
  local list = assert(s.list())
  H.eq(#list, N, s.name .. ": list length")
  for i, x in ipairs(list) do H.eq(s.id(x), i, s.name .. ": list order") end

  -- a failed page (the 5th, inside the second window) fails the iteration and the list
  H.faults { scripts = { { endpoint = s.endpoint, method = "GET", responses = { { pass = true }, { pass = true },
    { pass = true }, { pass = true }, { status = 500, body = s.fail_body } } } } }
  local seen = 0
  local ok, err = pcall(function() for _ in s.iter() do seen = seen + 1 end end)
  assert(not ok, s.name .. ": iteration over a failed page must fail")
  assert(tostring(err):find(s.fail_text, 1, true), s.name .. ": " .. tostring(err))
  assert(seen < N, s.name .. ": not every certificate was handed out")
  H.call("DELETE", H.sectigo .. "/__sim/faults")
  -- (The failed iteration has no page in flight: the pager raises once they are back, so
  -- none of them can take the steps scripted here for the list.)
  H.faults { scripts = { { endpoint = s.endpoint, method = "GET", responses = { { pass = true }, { pass = true },
    { status = 500, body = s.fail_body } } } } }
  local none, lerr = s.list()
  H.eq(none, nil, s.name .. ": list over a failed page")
  assert(tostring(lerr):find(s.fail_text, 1, true), s.name .. ": " .. tostring(lerr))
  H.call("DELETE", H.sectigo .. "/__sim/faults")
end
print("ok")

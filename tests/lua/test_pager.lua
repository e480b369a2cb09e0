-- metasync.pager over fake page sources: order, windows, totals missing or wrong, duplicates,
-- a server that ignores the page number, and a failed page.
local pager = require("metasync.pager")

-- source(n, opts) -> fetch function over items 1..n, and the list of pages asked for
local function source(n, o)
  o = o or {}
  local asked = {}
  return function(k)
    asked[#asked + 1] = k
    if o.fail == k then return nil, "page " .. k .. " failed" end
    local from = o.ignore_position and 1 or (k - 1) * o.size + 1
    local p = {}
    for i = from, math.min(n, from + o.size - 1) do p[#p + 1] = { Id = i } end
    if o.repeat_first and k > 1 then table.insert(p, 1, { Id = from - 1 }) end
    return p, o.total
  end, asked
end

local function ids(iter)
  local out = {}
  for x in iter do out[#out + 1] = x.Id end
  return out
end
local function key(x) return x.Id end
local function seq(n) local t = {} for i = 1, n do t[i] = i end return t end
local function same(a, b, what)
  assert(#a == #b, what .. ": " .. #a .. " items, expected " .. #b)
  for i = 1, #b do assert(a[i] == b[i], what .. ": item " .. i .. " is " .. tostring(a[i])) end
end

-- with a total: the first page, then windows; every item once, in order
local fetch, asked = source(23, { size = 5, total = 23 })
local it = pager.stream { fetch = fetch, size = 5, window = 2, key = key }
assert(it().Id == 1 and #asked == 1, "one page before the first item")
for _ = 2, 5 do it() end
assert(#asked == 1)
assert(it().Id == 6 and #asked == 3, "a window of 2 pages on entering page 2")
local rest = ids(it)
same(rest, { 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23 }, "rest")
same(asked, { 1, 2, 3, 4, 5 }, "pages asked")
assert(it() == nil, "stays finished")

-- no total: pages on while they come back full
fetch, asked = source(10, { size = 5 })
same(ids(pager.stream { fetch = fetch, size = 5, window = 4, key = key }), seq(10), "no total")
same(asked, { 1, 2, 3 }, "no total: until a short (here empty) page")

-- a total smaller than the real list: the full last page is followed
fetch = source(12, { size = 4, total = 5 })
same(ids(pager.stream { fetch = fetch, size = 4, window = 3, key = key }), seq(12), "total too small")

-- a shifted page boundary repeats an item: handed out once
fetch = source(9, { size = 3, total = 9, repeat_first = true })
same(ids(pager.stream { fetch = fetch, size = 3, window = 2, key = key }), seq(9), "duplicates")

-- a server that ignores the page number and always answers the first page: stops
fetch, asked = source(10, { size = 5, ignore_position = true })
same(ids(pager.stream { fetch = fetch, size = 5, window = 2, key = key }), seq(5), "position ignored")
assert(#asked == 2, "stopped after a full page with nothing new")

-- key false drops non-records, nil keeps records without an id
local odd = { { Id = 1 }, "junk", { name = "no id" }, { Id = 1 } }
local got = {}
for x in pager.stream { fetch = function() return odd, 4 end, size = 10, key = function(x)
  if type(x) ~= "table" then return false end
  return x.Id
end } do got[#got + 1] = x end
assert(#got == 2 and got[1].Id == 1 and got[2].name == "no id", "key false/nil")

-- a failed page raises with its message; collect turns that into nil, message
fetch = source(30, { size = 5, total = 30, fail = 4 })
local n = 0
local ok, err = pcall(function() for _ in pager.stream { fetch = fetch, size = 5, window = 2, key = key } do n = n + 1 end end)
assert(not ok and err == "page 4 failed", tostring(err))
assert(n == 15, "pages 1-3 (before the failed window {4,5}) were handed out: " .. n)
fetch = source(30, { size = 5, total = 30, fail = 1 })
local list, lerr = pager.collect(pager.stream { fetch = fetch, size = 5, window = 2, key = key })
assert(list == nil and lerr == "page 1 failed")

-- an empty listing
same(ids(pager.stream { fetch = function() return {}, 0 end, size = 5, key = key }), {}, "empty")
print("ok")

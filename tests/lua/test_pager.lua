-- metasync.pager over fake page sources: order, windows, totals missing or wrong, duplicates,
-- a server that ignores the page number, the sliding window, and a failed page.
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

-- with a total: every item once, in order, each page asked for once
local fetch, asked = source(23, { size = 5, total = 23 })
local it = pager.stream { fetch = fetch, size = 5, window = 2, key = key }
assert(it().Id == 1 and asked[1] == 1, "page 1 first")
local rest = ids(it)
same(rest, { 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23 }, "rest")
table.sort(asked)
same(asked, { 1, 2, 3, 4, 5 }, "pages asked")
assert(it() == nil, "stays finished")

-- the sliding window: never more than `window` pages in flight, a finished page lets the
-- next one start at once (pages finish out of order here), and a consumer that stops
-- reading holds the listing back (at most 2 x window pages fetched ahead)
do
  local task = require("metasync.task")
  local inflight, max_inflight, started = 0, 0, {}
  local function slow(k)
    started[#started + 1] = k
    inflight = inflight + 1
    max_inflight = math.max(max_inflight, inflight)
    task.sleep(k % 3 == 0 and 0.02 or 0.001)
    inflight = inflight - 1
    local p = {}
    for i = (k - 1) * 10 + 1, math.min(400, k * 10) do p[#p + 1] = { Id = i } end
    return p, 400
  end
  local it2 = pager.stream { fetch = slow, size = 10, window = 3, key = key }
  assert(it2().Id == 1)
  task.sleep(0.1) -- the consumer pauses: fetching must stop at the read-ahead bound
  assert(#started <= 1 + 2 * 3, "read ahead while the consumer waits: " .. #started .. " pages")
  local n = 1
  for _ in it2 do n = n + 1 end
  assert(n == 400, "all items: " .. n)
  assert(max_inflight <= 3, "in flight at most the window: " .. max_inflight)
  assert(max_inflight >= 2, "pages overlapped: " .. max_inflight)
  -- 40 pages, plus one past the total because the last one came back full (the total may
  -- have grown while listing)
  assert(#started == 41, "each page once: " .. #started)
end

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

-- a server that ignores the page number and always answers the first page: a loud failure,
-- with or without a total, never a quietly short listing
for _, total in ipairs({ false, 10 }) do
  fetch = source(10, { size = 5, ignore_position = true, total = total or nil })
  local ok, err = pcall(ids, pager.stream { fetch = fetch, size = 5, window = 2, key = key, what = "Keyfactor certificates" })
  assert(not ok and err:find("Keyfactor certificates: page 2 holds only items of earlier pages: the server ignores the paging parameters", 1, true), tostring(err))
end
-- an empty page while the total says more: also loud
local function short(k) if k == 1 then return { { Id = 1 }, { Id = 2 } }, 6 end return {}, 6 end
local sok, serr = pcall(ids, pager.stream { fetch = short, size = 2, window = 2, key = key })
assert(not sok and serr:find("page 2 is empty after 2 of 6 items", 1, true), tostring(serr))
-- a huge total is not believed: it cannot make the pager start a million pages, and the
-- empty page after it is the end (nothing to fail on: there is no total to fall short of)
local function huge(k) if k == 1 then return { { Id = 1 } }, 1e12 end return {}, 1e12 end
same(ids(pager.stream { fetch = huge, size = 1, window = 4, key = key }), { 1 }, "huge total")

-- Hostile totals: whatever the header says, a total that cannot be true is unknown, and an
-- unknown total means one page at a time until the first empty (or short) page. Pages 1..3
-- are full, page 4 is empty: exactly 4 fetches, never more than one in flight. The fetch
-- yields, so pages started ahead would run (and be counted) while the listing waits.
do
  local task = require("metasync.task")
  local hostile = { 1e12, "1e12", "1e400", math.huge, -5, "-5", 0 / 0, "nan", 12.5, "12.5", "0x10", "abc",
    pager.MAX_TOTAL + 1, -math.huge, true, {} }
  for _, total in ipairs(hostile) do
    local asked, inflight, peak = {}, 0, 0
    local function f(k)
      asked[#asked + 1] = k
      inflight = inflight + 1
      peak = math.max(peak, inflight)
      task.yield()
      inflight = inflight - 1
      local p = {}
      if k <= 3 then for i = (k - 1) * 5 + 1, k * 5 do p[#p + 1] = { Id = i } end end
      return p, total
    end
    local what = "total " .. tostring(total)
    same(ids(pager.stream { fetch = f, size = 5, window = 4, key = key }), seq(15), what)
    for _ = 1, 10 do task.yield() end -- anything started ahead gets to run before counting
    same(asked, { 1, 2, 3, 4 }, what .. ": fetches")
    assert(peak == 1, what .. ": one page at a time, got " .. peak)
  end
  -- the same with a short last page: it is the end too
  local asked = {}
  local function short3(k)
    asked[#asked + 1] = k
    local p = {}
    for i = (k - 1) * 5 + 1, math.min(13, k * 5) do p[#p + 1] = { Id = i } end
    return p, "1e400"
  end
  same(ids(pager.stream { fetch = short3, size = 5, window = 4, key = key }), seq(13), "short last page")
  same(asked, { 1, 2, 3 }, "short last page: fetches")

  -- totals that can be true open the window, as before: a number or the header's digits
  for _, total in ipairs({ 15, "15", " 15 ", 15.0 }) do
    local n, p2 = pager.total_pages(total, 5)
    assert(n == 3 and p2 == 15 and math.type(p2) == "integer", "believed total " .. tostring(total))
  end
  assert(pager.total_pages(0, 5) == 1 and pager.total_pages(pager.MAX_TOTAL, 1) == pager.MAX_TOTAL)
  for _, total in ipairs(hostile) do assert(pager.total_pages(total, 5) == nil, "not believed: " .. tostring(total)) end

  -- a believed total whose page 3 comes back empty: the listing fails (it is short of its
  -- total), and once the empty page is back no page is started, though the window has room
  local empty_back, late, started = false, 0, 0
  local function hole(k)
    started = started + 1
    if empty_back then late = late + 1 end
    task.yield()
    if k == 3 then empty_back = true; return {}, 40 end
    local p = {}
    for i = (k - 1) * 5 + 1, k * 5 do p[#p + 1] = { Id = i } end
    return p, 40
  end
  local ok, err = pcall(ids, pager.stream { fetch = hole, size = 5, window = 4, key = key })
  assert(not ok and err:find("page 3 is empty after 10 of 40 items", 1, true), tostring(err))
  for _ = 1, 10 do task.yield() end
  assert(empty_back and late == 0, "pages started after the empty one came back: " .. late)
  assert(started < 8, "the window stopped short of the total's 8 pages: " .. started)

  -- a server that pages forever (every page full of new ids, no total) is cut off
  local saved = pager.MAX_TOTAL
  pager.MAX_TOTAL = 50
  local calls = 0
  local function forever(k)
    calls = calls + 1
    local p = {}
    for i = (k - 1) * 5 + 1, k * 5 do p[#p + 1] = { Id = i } end
    return p
  end
  ok, err = pcall(ids, pager.stream { fetch = forever, size = 5, window = 4, key = key, what = "X" })
  pager.MAX_TOTAL = saved
  assert(not ok and err:find("X: more than 10 pages of 5: the server does not stop paging", 1, true), tostring(err))
  assert(calls == 11, "pages fetched before giving up: " .. calls)
end

-- an answer that is not a list (an object) fails the page
local nok, nerr = pcall(ids, pager.stream { fetch = function() return { Certificates = {} }, 1 end, size = 5, key = key })
assert(not nok and nerr:find("listing: page 1: expected a list", 1, true), tostring(nerr))
-- items that are not records are dropped, and the caller hears of each once
local drops = {}
same(ids(pager.stream { fetch = function(k) if k == 1 then return { { Id = 1 }, 7, { Id = 2 } }, 3 end return {}, 3 end,
  size = 5, key = function(x) return type(x) == "table" and x.Id or false end,
  dropped = function(item, k) drops[#drops + 1] = tostring(item) .. "@" .. k end }), { 1, 2 }, "dropped")
same(drops, { "7@1" }, "dropped items reported")

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
assert(not ok and err == "listing: page 4: page 4 failed", tostring(err))
assert(n == 15, "pages 1-3 were handed out before the failed page: " .. n)
fetch = source(30, { size = 5, total = 30, fail = 1 })
local list, lerr = pager.collect(pager.stream { fetch = fetch, size = 5, window = 2, key = key })
assert(list == nil and lerr == "listing: page 1: page 1 failed", tostring(lerr))

-- a failed page starts no page after it, and the failure is raised once the pages in flight
-- beside it are back: otherwise their requests reach the server after the caller has moved on
-- (found as a flaky integration test: they took the scripted answers meant for the next
-- listing)
do
  local task = require("metasync.task")
  local asked5, out5 = {}, 0
  local function failing(k)
    asked5[#asked5 + 1] = k
    -- every page takes a while, and the pages in flight beside page 5 come back after it
    out5 = out5 + 1
    task.sleep(k > 5 and 0.05 or 0.001)
    out5 = out5 - 1
    if k == 5 then return nil, "page 5 failed" end
    local p = {}
    for i = (k - 1) * 10 + 1, k * 10 do p[#p + 1] = { Id = i } end
    return p, 200
  end
  local nf = 0
  local fok, ferr = pcall(function() for _ in pager.stream { fetch = failing, size = 10, window = 3, key = key } do nf = nf + 1 end end)
  assert(not fok and ferr == "listing: page 5: page 5 failed", tostring(ferr))
  assert(nf == 40, "pages 1-4 handed out: " .. nf)
  table.sort(asked5)
  assert(asked5[#asked5] <= 7, "pages asked for after page 5 failed: " .. table.concat(asked5, ","))
  -- and the failure is raised once the pages in flight beside it are back
  assert(out5 == 0, out5 .. " pages still in flight after the listing failed")
end

-- an empty listing
same(ids(pager.stream { fetch = function() return {}, 0 end, size = 5, key = key }), {}, "empty")
print("ok")

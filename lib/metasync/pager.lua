-- Paged listings as streaming iterators, shared by the Sectigo list and the Keyfactor query.
-- The first page tells the total (X-Total-Count / x-total-count); the pages after it are then
-- fetched through a sliding window: up to `window` pages in flight, and each page that
-- finishes lets the next one start, so the API never waits for the slowest page of a batch.
-- Pages fetched ahead of the consumer are bounded too (2 x window), so a slow consumer (the
-- bounded work queue downstream) holds the listing back instead of letting it pile up: a
-- listing of any size costs a few pages of memory, plus the ids seen for de-duplication.
--
-- A server that ignores the paging parameters would otherwise look like a short inventory:
-- a page (after the first) with nothing new, while the total says more, fails the listing.
--
-- The total is the server's word, so it is believed only when it is plausible (total_pages):
-- a total of 1e12 or 1e400 once made the window run through a million pages. A total that is
-- not believed is unknown, and an unknown total means one page at a time until an empty or
-- short page, so no request is ever sent for a page past the end. The window never starts a
-- page past one that came back empty, and a listing that goes on for more pages than any real
-- inventory needs fails instead of running forever.
--
-- The iterator is a plain closure, not coroutine.wrap: the fetches yield to the scheduler,
-- which a plain coroutine would turn into blocking calls (docs/engine-api.md).
local task = require("metasync.task")
local match = require("metasync.match")

local M = {}

-- More items than this is a hostile or broken total, not an inventory (the largest known
-- estates hold a few million certificates); it also bounds how many pages a listing may take.
M.MAX_TOTAL = 10000000

-- total_pages(total, size) -> pages the total announces and the total as an integer, or nil
-- when the total cannot be believed: not a number (a header is digits only: "1e12", "0x10"
-- and "12.5" are not totals), NaN, negative, fractional, infinite or above MAX_TOTAL.
function M.total_pages(t, size)
  if type(t) == "string" then
    local digits = t:match("^%s*(%d+)%s*$")
    t = digits and #digits <= 15 and tonumber(digits) or nil
  end
  if type(t) ~= "number" or t ~= t or t < 0 or t > M.MAX_TOTAL or t ~= math.floor(t) then return nil end
  t = math.tointeger(t)
  return math.max(1, (t + size - 1) // size), t
end

-- max_pages(size) -> the most pages a listing may take: MAX_TOTAL items, plus the empty page
-- that ends it. A server whose pages keep coming back full of new ids past that is looping.
function M.max_pages(size)
  return (M.MAX_TOTAL + size - 1) // size + 1
end

local function first_line(e) return (tostring(e):match("^[^\n]*")) end

-- pages{fetch=, size=, window=, key= | key_field=, what=, dropped=} -> iterator over the pages,
-- in order: each call returns a page (a list of items) and keep, where keep[i] is true for an
-- item to hand out; nil at the end. stream(o) hands out those items one by one.
--   fetch(k) -> items (a list), total-or-nil | nil, message; k is the 1-based page number. The
--   total may be a number or the header's text (see total_pages).
--   size: the page size asked for; window: pages in flight at once (>= 1).
--   key(item) -> an id, nil (no id: always handed out) or false (not an item: dropped). An
--   item whose id was already handed out is skipped (a page boundary that shifted while
--   listing repeats items).
--   key_field: instead of key, the field holding an item's integer id, read natively
--   (metasync.match.keys: the same rule, without a Lua call per item).
--   dropped(item, k): called once for each item key() calls not an item (for a log line).
--   what: names the listing in errors ("Keyfactor certificates").
-- A failed page raises "<what>: page K: <message>" (level 0), so a caller never sees a
-- silently partial listing; the iterator is finished after that, with no page in flight.
function M.pages(o)
  local fetch, key, dropped, key_field = o.fetch, o.key, o.dropped, o.key_field
  local size = assert(math.tointeger(o.size), "page size")
  assert(size >= 1, "page size")
  local window = math.max(1, math.tointeger(o.window) or 1)
  local ahead = 2 * window
  local what = o.what or "listing"
  local max_pages = M.max_pages(size)
  local seen = (key or key_field) and {} or nil
  local tasks = {}              -- page number -> task fetching it
  local inflight, next_k = 0, 2 -- pages being fetched; next page to start
  local last_k, total           -- last page a believed total announces; that total
  local stop_k = math.huge      -- the first page seen empty or failed: none past it is started
  local cur_k = 0
  local handed, prev_full = 0, false
  local finished = false

  local function fail(msg)
    finished = true
    -- The pages still in flight finish first (their answers are dropped), so that nothing of
    -- a failed listing reaches the server after the caller has seen it fail and moved on.
    for k, t in pairs(tasks) do
      t:join()
      tasks[k] = nil
    end
    error(msg, 0)
  end

  local refill

  local function start(k)
    inflight = inflight + 1
    tasks[k] = task.spawn(function()
      -- A task runs some time after it was started: by then the listing may have ended, or
      -- an earlier page come back empty. Its page is never read then, so it is not asked for.
      if finished or k > stop_k then
        inflight = inflight - 1
        return {}
      end
      local ok, p, t = pcall(fetch, k)
      inflight = inflight - 1
      -- An empty page ends the listing (or fails it), and a failed page fails it: pages after
      -- either are not asked for.
      if (not ok or not p or (type(p) == "table" and next(p) == nil)) and k < stop_k then stop_k = k end
      if not finished then refill() end
      if not ok then error(p, 0) end
      if not p then error(t or "page fetch failed", 0) end
      return p
    end)
  end

  -- refill(): starts pages while the window and the read-ahead bound allow. Only a believed
  -- total (last_k) opens the window; without one, load() asks for one page at a time.
  function refill()
    while not finished and last_k and next_k <= last_k and next_k < stop_k and inflight < window
        and next_k - cur_k <= ahead do
      start(next_k)
      next_k = next_k + 1
    end
  end

  local function fetch_now(k)
    local p, t = fetch(k)
    if not p then fail(string.format("%s: page %d: %s", what, k, first_line(t or "page fetch failed"))) end
    return p, t
  end

  -- load(k) -> items of page k, or nil at the end of the listing.
  local function load(k)
    local p
    if k == 1 then
      local t
      p, t = fetch_now(1)
      last_k, total = M.total_pages(t, size)
    elseif tasks[k] then
      local ok, r = tasks[k]:join()
      tasks[k] = nil
      if not ok then fail(string.format("%s: page %d: %s", what, k, first_line(r))) end
      p = r
    elseif (not last_k or k > last_k) and prev_full then
      -- Past the announced total (or without one): page on, one page at a time, while pages
      -- come back full, so a total that grew while listing, or a server without the header,
      -- still gives everything; a server that never stops is cut off at max_pages.
      if k > max_pages then
        fail(string.format("%s: more than %d pages of %d: the server does not stop paging", what, max_pages - 1, size))
      end
      p = fetch_now(k)
    else
      return nil
    end
    if type(p) ~= "table" or (next(p) ~= nil and p[1] == nil) then
      fail(string.format("%s: page %d: expected a list", what, k))
    end
    local keep, fresh, odd
    if key_field then
      keep, fresh, odd = match.keys(p, key_field, seen)
      if odd and dropped then
        for _, i in ipairs(odd) do dropped(p[i], k) end
      end
    else
      keep, fresh = {}, 0
      for i, item in ipairs(p) do
        local id = key and key(item)
        if id == false then
          keep[i] = false
          if dropped then dropped(item, k) end
        elseif id == nil or not seen[id] then
          if id ~= nil then seen[id] = true end
          keep[i], fresh = true, fresh + 1
        else
          keep[i] = false
        end
      end
    end
    if k > 1 and fresh == 0 then
      -- Nothing new once the total was reached is just the end (a boundary item repeated).
      if (total and handed >= total) or (#p == 0 and (not total or k > last_k)) then return nil end
      if #p > 0 then
        fail(string.format("%s: page %d holds only items of earlier pages: the server ignores the paging parameters", what, k))
      end
      fail(string.format("%s: page %d is empty after %d of %d items: the server ignores the paging parameters or the inventory changed while listing",
        what, k, handed, total))
    end
    handed = handed + fresh
    prev_full = #p >= size
    if #p == 0 then return nil end
    return p, keep
  end

  return function()
    if finished then return nil end
    cur_k = cur_k + 1
    local p, keep = load(cur_k)
    if not p then finished = true; return nil end
    refill()
    return p, keep
  end
end

-- stream(o) -> iterator over every item the pages of pages(o) keep, in page order.
function M.stream(o)
  local next_page = M.pages(o)
  local page, keep, i = nil, nil, 0
  return function()
    while true do
      if page then
        i = i + 1
        local item = page[i]
        if item == nil then
          page = nil
        elseif keep[i] then
          return item
        end
      else
        page, keep = next_page()
        if not page then return nil end
        i = 0
      end
    end
  end
end

-- collect(iter) -> list of every item, or nil, message when the listing failed.
function M.collect(iter)
  local out = {}
  local ok, err = pcall(function()
    for item in iter do out[#out + 1] = item end
  end)
  if not ok then return nil, first_line(err) end
  return out
end

return M

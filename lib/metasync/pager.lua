-- Paged listings as streaming iterators, shared by the Sectigo list and the Keyfactor query.
-- The first page tells the total (X-Total-Count / x-total-count); the pages after it are then
-- fetched concurrently, one window of `window` pages at a time, and their items handed out in
-- page order. Only the window being handed out is held, so a listing of any size costs about
-- one window of pages in memory (plus the ids seen, for de-duplication).
--
-- The iterator is a plain closure, not coroutine.wrap: the fetches yield to the scheduler,
-- which a plain coroutine would turn into blocking calls (docs/engine-api.md).
local task = require("metasync.task")

local M = {}

local function first_line(e) return (tostring(e):match("^[^\n]*")) end

-- stream{fetch=, size=, window=, key=} -> iterator over every item, in page order.
--   fetch(k) -> items (a list), total-or-nil | nil, message; k is the 1-based page number.
--   size: the page size asked for; window: pages in flight at once (>= 1).
--   key(item) -> an id, nil (no id: always handed out) or false (not an item: dropped). An
--   item whose id was already handed out is skipped (a page boundary that shifted while
--   listing repeats items).
-- A failed page raises its message (level 0), so a caller never sees a silently partial
-- listing; the iterator is finished after that.
function M.stream(o)
  local fetch, size, key = o.fetch, assert(math.tointeger(o.size), "page size"), o.key
  local window = math.max(1, math.tointeger(o.window) or 1)
  local seen = key and {} or nil
  local pages, pi, ii = {}, 1, 0 -- the window being handed out; current page and item
  local next_k, last_k = 1, nil   -- next page to fetch; last page the total announces
  local tail_full = false         -- the last page fetched came back full
  local fresh = 0                 -- items of the last page not seen before
  local finished = false

  local function fail(err)
    finished, pages = true, {}
    error(err, 0)
  end

  local function one(k)
    local p, total = fetch(k)
    if not p then fail(total or "page fetch failed") end
    return p, total
  end

  -- load() -> true when a new window of pages is in `pages`, false at the end.
  local function load()
    if next_k == 1 then
      local p, total = one(1)
      next_k = 2
      total = tonumber(total)
      if total then last_k = math.max(1, (math.floor(total) + size - 1) // size) end
      pages, tail_full = { p }, #p >= size
      return #p > 0
    end
    if last_k and next_k <= last_k then
      local from, to = next_k, math.min(last_k, next_k + window - 1)
      local k = from - 1
      local results, errors = task.map(function()
        k = k + 1
        if k <= to then return k end
      end, window, function(n)
        local p, err = fetch(n)
        if not p then error(err or "page fetch failed", 0) end
        return p
      end)
      local got = {}
      for i = 1, to - from + 1 do
        if errors and errors[i] then fail(first_line(errors[i])) end
        got[i] = results[i]
      end
      pages, next_k, tail_full = got, to + 1, #got[#got] >= size
      return true
    end
    -- Past the announced total (or without one): page on while pages come back full, so a
    -- total that grew while listing, or a server without the header, still gives everything.
    -- A full page with nothing new means the server ignores the position: stop there.
    if not tail_full or (key and fresh == 0) then return false end
    local p = one(next_k)
    next_k = next_k + 1
    pages, tail_full = { p }, #p >= size
    return #p > 0
  end

  return function()
    while not finished do
      local p = pages[pi]
      if p then
        ii = ii + 1
        local item = p[ii]
        if item == nil then
          pages[pi], pi, ii = nil, pi + 1, 0
        else
          local id = key and key(item)
          if id == nil then fresh = fresh + 1; return item end
          if id ~= false and not seen[id] then seen[id] = true; fresh = fresh + 1; return item end
        end
      else
        if not load() then finished, pages = true, {}; return nil end
        pi, ii, fresh = 1, 0, 0
      end
    end
    return nil
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

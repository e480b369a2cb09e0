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
-- The iterator is a plain closure, not coroutine.wrap: the fetches yield to the scheduler,
-- which a plain coroutine would turn into blocking calls (docs/engine-api.md).
local task = require("metasync.task")

local M = {}

-- More pages than this is a hostile or broken total, not an inventory.
M.MAX_PAGES = 1000000

local function first_line(e) return (tostring(e):match("^[^\n]*")) end

-- stream{fetch=, size=, window=, key=, what=} -> iterator over every item, in page order.
--   fetch(k) -> items (a list), total-or-nil | nil, message; k is the 1-based page number.
--   size: the page size asked for; window: pages in flight at once (>= 1).
--   key(item) -> an id, nil (no id: always handed out) or false (not an item: dropped). An
--   item whose id was already handed out is skipped (a page boundary that shifted while
--   listing repeats items).
--   what: names the listing in errors ("Keyfactor certificates").
-- A failed page raises "<what>: page K: <message>" (level 0), so a caller never sees a
-- silently partial listing; the iterator is finished after that.
function M.stream(o)
  local fetch, key = o.fetch, o.key
  local size = assert(math.tointeger(o.size), "page size")
  local window = math.max(1, math.tointeger(o.window) or 1)
  local ahead = 2 * window
  local what = o.what or "listing"
  local seen = key and {} or nil
  local tasks = {}              -- page number -> task fetching it
  local inflight, next_k = 0, 2 -- pages being fetched; next page to start
  local last_k, total           -- last page the total announces; the total
  local cur_k, page, ii = 0, nil, 0
  local handed, prev_full = 0, false
  local finished = false

  local function fail(msg)
    finished, page = true, nil
    error(msg, 0)
  end

  local refill

  local function start(k)
    inflight = inflight + 1
    tasks[k] = task.spawn(function()
      local ok, p, t = pcall(fetch, k)
      inflight = inflight - 1
      if not finished then refill() end
      if not ok then error(p, 0) end
      if not p then error(t or "page fetch failed", 0) end
      return p
    end)
  end

  -- refill(): starts pages while the window and the read-ahead bound allow.
  function refill()
    while not finished and last_k and next_k <= last_k and inflight < window and next_k - cur_k <= ahead do
      start(next_k)
      next_k = next_k + 1
    end
  end

  -- load(k) -> items of page k, or nil at the end of the listing.
  local function load(k)
    local p
    if k == 1 then
      local t
      p, t = fetch(1)
      if not p then fail(string.format("%s: page 1: %s", what, first_line(t or "page fetch failed"))) end
      total = tonumber(t)
      if total and total == total and total >= 0 then
        last_k = math.min(M.MAX_PAGES, math.max(1, math.ceil(math.min(total, 1e15) / size)))
      else
        total = nil
      end
    elseif tasks[k] then
      local ok, r = tasks[k]:join()
      tasks[k] = nil
      if not ok then fail(string.format("%s: page %d: %s", what, k, first_line(r))) end
      p = r
    elseif (not last_k or k > last_k) and prev_full and k <= M.MAX_PAGES then
      -- Past the announced total (or without one): page on while pages come back full, so a
      -- total that grew while listing, or a server without the header, still gives everything.
      local t
      p, t = fetch(k)
      if not p then fail(string.format("%s: page %d: %s", what, k, first_line(t or "page fetch failed"))) end
    else
      return nil
    end
    if type(p) ~= "table" then fail(string.format("%s: page %d: expected a list", what, k)) end
    local fresh = 0
    for _, item in ipairs(p) do
      local id = key and key(item)
      if id == nil or (id ~= false and not seen[id]) then fresh = fresh + 1 end
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
    prev_full = #p >= size
    if #p == 0 then return nil end
    return p
  end

  return function()
    while not finished do
      if page then
        ii = ii + 1
        local item = page[ii]
        if item == nil then
          page = nil
        else
          local id = key and key(item)
          if id == nil then handed = handed + 1; return item end
          if id ~= false and not seen[id] then
            seen[id] = true
            handed = handed + 1
            return item
          end
        end
      else
        cur_k = cur_k + 1
        local p = load(cur_k)
        if cur_k == 1 then refill() end
        if not p then finished = true; return nil end
        page, ii = p, 0
        refill()
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

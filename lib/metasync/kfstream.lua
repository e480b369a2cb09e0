-- Stage 6 of a run: the Keyfactor listing, streamed page by page (metasync.pager's sliding
-- window). Each certificate goes through the policy's include hook and matching by serial;
-- a matched pair is handed to work(ctx, policy, pair, spawn), which runs its I/O through
-- spawn (a task each). At most `limit` such tasks are in flight: when they are, the listing
-- waits (backpressure), so memory holds a few pages and the pairs in flight, never the
-- inventory. Keyfactor certificates are never collected into a list.
local task = require("metasync.task")
local serial = require("metasync.serial")
local fields = require("metasync.fields")
local signals = require("metasync.signals")
local match = require("metasync.match")

local M = {}

local function first_line(e) return (tostring(e):match("^[^\n]*")) end

-- Matched pairs are handed on in small batches, so the state store reads their baselines in
-- one statement (metasync.state prefetch) rather than one per certificate.
local BATCH = 64
M.BATCH = BATCH

-- run(ctx, policy, index, work, limit[, quick]) -> nil, or the listing's error message when a
-- page failed (the pairs already started are finished first). quick(ctx, policy, kf, serial,
-- entry) -> true | false[, base, left]: asked first for a pair from a bulk index; true settles
-- the pair there (it needs nothing), so its table, task closure and report calls are never
-- made; otherwise what it learnt goes with the pair (p.base, p.left) to work(). quick may
-- also be {one = that function, batch = fn(ctx, policy, b, from, to), digest = fn(same)}:
-- batch is asked first for a batch's slots from..to (four a pair: kf, serial, sslId, entry or
-- false) once their baselines are read, and sets the kf slot of each pair it settled to false;
-- digest is asked the same before that, and the pairs it settles have no baseline read.
function M.run(ctx, policy, index, work, limit, quick)
  local r = ctx.report
  local batch, digest
  if type(quick) == "table" then quick, batch, digest = quick.one, quick.batch, quick.digest end
  local q = policy.keyfactor_query(ctx)
  q.page_size = q.page_size or ctx.cfg.keyfactorPageSize
  q.fields = q.fields or policy.keyfactor_fields
  local slots = task.semaphore(limit)
  -- A pair is over when work() has returned and every task it spawned has ended: the report
  -- then has its whole outcome (one --report row per pair). p.tasks counts its live tasks.
  local function settled(p)
    if p.dispatched and p.tasks == 0 then r:pair_end(p) end
  end
  -- One bad record fails that record: a hook's error is the certificate's failure.
  local function body(fn, p)
    local ok, err = xpcall(fn, debug.traceback)
    if not ok then r:fail(p.serial, first_line(err)) end
    p.tasks = p.tasks - 1
    settled(p)
    slots:release()
  end
  local function spawn_for(p)
    return function(fn)
      slots:acquire()
      p.tasks = p.tasks + 1
      task.spawn(body, fn, p)
    end
  end
  -- A pair from a bulk index carries its compact entry; p.doc, the details-shaped table the
  -- hooks read, is made on first use (most pairs of a no-op run never need it).
  local pair_mt = { __index = function(p, k)
    if k ~= "doc" then return nil end
    local e = rawget(p, "entry")
    if not e then return nil end
    local d = index:doc(e)
    rawset(p, "doc", d)
    return d
  end }
  -- An API the circuit breaker gave up on gets nothing more: the listing stops instead of
  -- failing every certificate after it one by one. Checked once a batch (reading a client's
  -- breaker costs two calls, too many to pay per certificate).
  local function given_up()
    return (ctx.keyfactor.rest or {}).broken or (ctx.sectigo and ctx.sectigo.rest or {}).broken
  end
  -- dispatch(b): starts the matched pairs of b, four slots each (kf, serial, sslId, entry or
  -- false), BATCH at a time, so the state store reads their baselines in one statement.
  local function dispatch(b)
    local n = #b
    for c = 1, n, 4 * BATCH do
      -- After a stop signal (or with an API given up on) no new pair is started; the pairs
      -- not started are then not counted as considered, so the report's INCOMPLETE line holds.
      local stop = signals.received() and "interrupted" or given_up()
      if stop then
        local rest = (n - c + 1) // 4
        r.considered, r.matched = r.considered - rest, r.matched - rest
        error(stop, 0)
      end
      local last = math.min(n, c + 4 * BATCH - 1)
      -- (digest settles the pairs whose baseline digests say enough, so only the rest have
      -- their baselines read)
      if digest then pcall(digest, ctx, policy, b, c, last) end
      if ctx.state then
        local serials = {}
        for i = c, last, 4 do
          if b[i] then serials[#serials + 1] = b[i + 1] end
        end
        ctx.state:prefetch(serials)
      end
      -- (a batch that trips leaves its pairs to quick, one by one)
      if batch then pcall(batch, ctx, policy, b, c, last) end
      for i = c, last, 4 do
        local kc, key, ssl_id, entry = b[i], b[i + 1], b[i + 2], b[i + 3]
        local qok, done, base, left = true, not kc, nil, nil
        if kc and quick and entry then qok, done, base, left = pcall(quick, ctx, policy, kc, key, entry) end
        if not qok then
          r:fail(key, first_line(done))
        elseif not done then
          local p = setmetatable({ kf = kc, serial = key, ssl_id = ssl_id, entry = entry or nil, base = base, left = left,
            tasks = 0 }, pair_mt)
          r:pair_begin(p)
          local wok, werr = pcall(work, ctx, policy, p, spawn_for(p))
          if not wok then r:fail(p.serial, first_line(werr)) end
          p.dispatched = true
          settled(p)
        end
      end
    end
  end
  -- consider(kc, verdict, out): the whole path of one certificate the native match left to
  -- Lua (verdict: what include said, true or false, or {error} when it raised). A matched
  -- pair goes to out.
  local function consider(kc, verdict, out)
    local raw_id = rawget(kc, "Id")
    local key, problem = serial.parse(rawget(kc, "SerialNumber"))
    -- Keyfactor writes and the journal go by Id: a certificate whose Id is no id (null,
    -- "abc", 1.5) is malformed, like a serial that is no serial, and fails by itself. (An Id
    -- not fetched at all is a site policy's choice; the write, if any, then says so.)
    local id = math.type(raw_id) and math.tointeger(raw_id)
    if id and id < 1 then id = nil end
    local bad_id = raw_id ~= nil and not id
    local label = key or ("Keyfactor Id " .. (id and tostring(id) or fields.describe(raw_id)))
    if type(verdict) == "table" then
      r.considered = r.considered + 1
      r:fail(label, "policy.include: " .. first_line(verdict[1]), kc)
    elseif not verdict then
      r:skip(key, kc)
    elseif problem or bad_id then
      r.considered = r.considered + 1
      r:fail(label, problem and ("SerialNumber is " .. problem)
        or ("Keyfactor Id is " .. fields.describe(raw_id) .. ", not a certificate id"), kc)
    elseif key and index.broken and index.broken[key] then
      -- Its Sectigo record is malformed: that failure is already listed under this serial.
      r.considered = r.considered + 1
      r.matched = r.matched + 1
    else
      r.considered = r.considered + 1
      local ssl_id, entry
      if key then ssl_id, entry = index:lookup(key) end
      if ssl_id then
        r.matched = r.matched + 1
        local n = #out
        out[n + 1], out[n + 2], out[n + 3], out[n + 4] = kc, key, ssl_id, entry or false
      else
        r:unmatched_serial(key or string.format("(none: Keyfactor Id %s has no serial)", tostring(raw_id)), kc)
      end
    end
  end
  -- The plain certificates of a page (included, a usable Id and serial, found in the index)
  -- are matched natively (metasync.match): on a run that changes nothing, the per-certificate
  -- glue in Lua was most of the run's CPU. Every other one takes consider()'s full path.
  local map, broken
  if index.match_map then map, broken = index:match_map() end
  local mo = map and { id = "Id", key = "SerialNumber", map = map, broken = broken }
  local include = policy.include
  local function one_page(page, keep)
    if signals.received() then error("interrupted", 0) end
    -- A hook that trips over one odd record fails that record, not the run.
    local verdict = {}
    for i = 1, #page do
      if keep == nil or keep[i] then
        local iok, included = pcall(include, page[i], ctx)
        if iok then verdict[i] = included and true or false else verdict[i] = { included } end
      end
    end
    local out, odd = {}, {}
    if mo then
      local m
      m, odd = match.page(page, keep, verdict, mo, out)
      r.considered, r.matched = r.considered + m, r.matched + m
    else
      for i = 1, #page do
        if keep == nil or keep[i] then odd[#odd + 1] = i end
      end
    end
    for _, i in ipairs(odd) do consider(page[i], verdict[i], out) end
    dispatch(out)
  end
  local ok, err = pcall(function()
    if ctx.keyfactor.certificate_pages then
      for page, keep in ctx.keyfactor:certificate_pages(q) do one_page(page, keep) end
    else
      -- A client without pages (a test's or a site's stand-in) is read in pages of BATCH.
      -- The items handed out before a failed page are still done.
      local it, page = ctx.keyfactor:certificates(q), {}
      local lok, lerr = pcall(function()
        for kc in it do
          page[#page + 1] = kc
          if #page >= BATCH then
            local full = page
            page = {}
            one_page(full)
          end
        end
      end)
      if #page > 0 then one_page(page) end
      if not lok then error(lerr, 0) end
    end
  end)
  for _ = 1, limit do slots:acquire() end -- every pair in flight is finished
  if not ok then return first_line(err) end
end

return M

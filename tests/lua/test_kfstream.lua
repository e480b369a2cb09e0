-- kfstream over a fake Keyfactor listing: every certificate goes through include and
-- matching once, matched pairs run with at most `limit` tasks in flight, the listing waits
-- while they are (backpressure: it never runs far ahead of the work), a hook's error fails
-- that one record, and a listing that breaks off is reported after the pairs in flight finish.
local task = require("metasync.task")
local report = require("metasync.report")
local kfstream = require("metasync.kfstream")

local N, LIMIT = 300, 5
local function world(fail_at)
  local handed = 0
  local kf = {
    certificates = function()
      local i = 0
      return function()
        i = i + 1
        if fail_at and i == fail_at then error("Keyfactor /Certificates: page 3: HTTP 500", 0) end
        if i > N then return nil end
        handed = handed + 1
        return { Id = i, SerialNumber = string.format("%X", 4096 + i), IssuerDN = "Sectigo" }
      end
    end,
  }
  return kf, function() return handed end
end
local index = { lookup = function(_, key)
  local n = tonumber(key, 16) - 4096
  if n % 10 == 0 then return nil end -- every tenth is unmatched
  return n + 100000
end }
local policy = {
  keyfactor_query = function() return {} end,
  include = function(c)
    if c.Id == 7 then error("odd record") end
    return c.Id % 50 ~= 0
  end,
}

require("metasync.log").set_level("fatal")
local kf, handed = world()
local ctx = { cfg = { keyfactorPageSize = 10 }, keyfactor = kf, report = report.new("sctokf") }
local inflight, max_inflight, max_ahead, done = 0, 0, 0, 0
local function work(_, _, p, spawn)
  spawn(function()
    inflight = inflight + 1
    max_inflight = math.max(max_inflight, inflight)
    local r = ctx.report
    max_ahead = math.max(max_ahead, handed() - done - r.skipped - r.unmatched - #r.failed)
    task.sleep(0.001)
    inflight = inflight - 1
    done = done + 1
    assert(p.ssl_id == tonumber(p.serial, 16) - 4096 + 100000)
  end)
end
local err = kfstream.run(ctx, policy, index, work, LIMIT)
local r = ctx.report
assert(err == nil, tostring(err))
assert(max_inflight == LIMIT, "pairs in flight: " .. max_inflight)
-- the listing never runs ahead of the work by more than the pairs in flight and one batch
-- of matched pairs waiting for their baselines
assert(max_ahead <= LIMIT + kfstream.BATCH + 1, "listing ahead of the work by " .. max_ahead)
assert(r.skipped == 6, "skipped by include: " .. r.skipped)
assert(#r.failed == 1 and r.failed[1].reason:find("policy.include: .*odd record"), "a hook error fails its record")
assert(r.unmatched == 24, "unmatched: " .. r.unmatched) -- Id 10, 20, ... but not 50, 100 ... (skipped first)
assert(r.matched == done and done == N - 6 - 1 - 24, "matched " .. r.matched .. ", done " .. done)

-- a listing that breaks off: the error comes back after the pairs already started are done
kf = world(40)
ctx = { cfg = { keyfactorPageSize = 10 }, keyfactor = kf, report = report.new("sctokf") }
local finished = 0
err = kfstream.run(ctx, { keyfactor_query = policy.keyfactor_query, include = function() return true end }, index,
  function(_, _, _, spawn) spawn(function() task.sleep(0.002); finished = finished + 1 end) end, LIMIT)
assert(err and err:find("page 3: HTTP 500", 1, true), tostring(err))
assert(ctx.report.matched == 39 - 3, "the items before the failure are matched: " .. ctx.report.matched) -- (Id 10, 20, 30 unmatched)
assert(finished == ctx.report.matched, "every started pair finished: " .. finished .. "/" .. ctx.report.matched)

-- quick: asked first for each pair from a bulk entry; a pair it settles gets no table and no
-- work() call, one it leaves goes to work() with what it learnt, and its error fails that
-- pair alone
kf = world()
ctx = { cfg = { keyfactorPageSize = 10 }, keyfactor = kf, report = report.new("sctokf") }
local entry_index = { lookup = function(_, key)
  local n = tonumber(key, 16) - 4096
  return n + 100000, { n + 100000, "v" .. n }
end }
local quick_settled, worked, bad_hand = 0, 0, 0
local function quick(_, _, kc, key, entry)
  assert(entry[1] == kc.Id + 100000 and key == string.format("%X", 4096 + kc.Id))
  if kc.Id == 33 then error("quick tripped") end
  if kc.Id % 2 == 0 then quick_settled = quick_settled + 1; return true end
  return false, { seen = kc.Id }, { 1 }
end
err = kfstream.run(ctx, { keyfactor_query = policy.keyfactor_query, include = function() return true end }, entry_index,
  function(_, _, p, spawn)
    worked = worked + 1
    if p.base.seen ~= p.kf.Id or p.left[1] ~= 1 or p.entry[2] ~= "v" .. p.kf.Id then bad_hand = bad_hand + 1 end
    spawn(function() end)
  end, LIMIT, quick)
r = ctx.report
assert(err == nil, tostring(err))
assert(quick_settled == N // 2 and worked == N // 2 - 1 and bad_hand == 0,
  string.format("quick settled %d, work() %d, wrong hand-overs %d", quick_settled, worked, bad_hand))
assert(#r.failed == 1 and r.failed[1].reason:find("quick tripped", 1, true), "quick's error fails its pair")
assert(r.matched == N, "every pair matched: " .. r.matched)

-- quick as {one, batch, digest}: digest is asked first for each batch and settles some pairs
-- (their kf slot set to false); only the others have their baselines read ahead, then go to
-- batch, then to one and work()
kf = world()
local prefetched, digest_calls, batch_seen, one_seen = {}, 0, 0, 0
ctx = { cfg = { keyfactorPageSize = 10 }, keyfactor = kf, report = report.new("sctokf"),
  state = { prefetch = function(_, serials) for _, k in ipairs(serials) do prefetched[k] = true end end } }
local digest_settled = 0
err = kfstream.run(ctx, { keyfactor_query = policy.keyfactor_query, include = function() return true end }, entry_index,
  function(_, _, _, spawn) spawn(function() end) end, LIMIT, {
    digest = function(c, _, b, from, to)
      digest_calls = digest_calls + 1
      for i = from, to, 4 do
        if b[i].Id % 3 == 0 then b[i] = false; digest_settled = digest_settled + 1; c.report.unchanged = c.report.unchanged + 1 end
      end
    end,
    batch = function(_, _, b, from, to)
      for i = from, to, 4 do
        if b[i] then
          batch_seen = batch_seen + 1
          assert(prefetched[b[i + 1]], "batch before the baseline was read")
        end
      end
    end,
    one = function(_, _, kc) one_seen = one_seen + 1; assert(kc.Id % 3 ~= 0, "one() for a pair digest settled"); return true end,
  })
assert(err == nil, tostring(err))
local nread = 0
for k in pairs(prefetched) do
  nread = nread + 1
  assert((tonumber(k, 16) - 4096) % 3 ~= 0, "the baseline of a pair digest settled was read: " .. k)
end
assert(digest_calls >= 1 and digest_settled == N // 3 and nread == N - N // 3 and batch_seen == nread
  and one_seen == nread, string.format("digest %d, read %d, batch %d, one %d", digest_settled, nread, batch_seen, one_seen))

-- The native path: a client with whole pages (page, keep) and an index that shows its map
-- give the outcome the item-by-item path gave above, with the index's Lua lookup asked only
-- for the records the native match left (here the unmatched ones), and items the listing
-- did not keep never considered.
local map = {}
for n = 1, N do if n % 10 ~= 0 then map[string.format("%X", 4096 + n)] = n + 100000 end end
local lookups = 0
local native_index = { match_map = function() return map end,
  lookup = function(_, key) lookups = lookups + 1; return map[key] end }
local pages_handed = 0
local paged = { certificate_pages = function()
  local k = 0
  return function()
    k = k + 1
    if (k - 1) * 10 >= N then return nil end
    local p, keep = {}, {}
    for i = 1, 10 do
      local id = (k - 1) * 10 + i
      p[#p + 1], keep[#keep + 1] = { Id = id, SerialNumber = string.format("%X", 4096 + id), IssuerDN = "Sectigo" }, true
    end
    p[#p + 1], keep[#keep + 1] = { Id = 1, SerialNumber = "1001", IssuerDN = "Sectigo" }, false -- a repeat
    pages_handed = pages_handed + 1
    return p, keep
  end
end }
ctx = { cfg = { keyfactorPageSize = 10 }, keyfactor = paged, report = report.new("sctokf") }
done = 0
local paired = 0
err = kfstream.run(ctx, policy, native_index, function(_, _, p, spawn)
  assert(p.ssl_id == tonumber(p.serial, 16) - 4096 + 100000)
  spawn(function() paired = paired + 1 end)
end, LIMIT)
r = ctx.report
assert(err == nil, tostring(err))
assert(pages_handed == N // 10, "pages " .. pages_handed)
assert(r.skipped == 6 and #r.failed == 1 and r.failed[1].reason:find("odd record") and r.unmatched == 24,
  string.format("native path: skipped %d, failed %d, unmatched %d", r.skipped, #r.failed, r.unmatched))
assert(r.matched == N - 6 - 1 - 24 and paired == r.matched, "native path matched " .. r.matched .. ", paired " .. paired)
assert(r.considered == N - 6, "considered " .. r.considered)
assert(lookups == 24, "Lua lookups " .. lookups .. ", for the 24 unmatched only")

-- An API given up on in the middle of a page: no pair is started after it, and the pairs of
-- the page not started are not counted as matched (every matched pair was started).
local one = { rest = {}, certificate_pages = function()
  local given = false
  return function()
    if given then return nil end
    given = true
    local p = {}
    for id = 1, 200 do p[id] = { Id = id, SerialNumber = string.format("%X", 4096 + id) } end
    return p
  end
end }
ctx = { cfg = { keyfactorPageSize = 200 }, keyfactor = one, report = report.new("sctokf") }
local started = 0
err = kfstream.run(ctx, { keyfactor_query = policy.keyfactor_query, include = function() return true end }, native_index,
  function(_, _, _, spawn) started = started + 1; one.rest.broken = "Keyfactor: too many failures"; spawn(function() end) end, LIMIT)
assert(err and err:find("too many failures", 1, true), tostring(err))
assert(started == kfstream.BATCH and ctx.report.matched == started,
  string.format("started %d, matched %d", started, ctx.report.matched))
print("ok")

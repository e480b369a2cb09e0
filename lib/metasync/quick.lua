-- What settles an sctokf pair from a bulk index that needs nothing (the usual case of a
-- no-op run) before kfstream makes its table, its task closures and its report calls; see
-- kfstream.run's quick. In the order kfstream asks, for each batch of matched pairs:
--   settle_digests  natively, by the baselines' digests (metasync.state), before any baseline
--                   is read;
--   settle_batch    natively, for the rest, once their baselines are read ahead;
--   settled         one pair at a time, for a pair the batch could not take (its plan, or an
--                   error that tripped the batch).
-- Whatever these leave goes through metasync.pair's full path, which is always right.
local pair = require("metasync.pair")
local unchanged = require("metasync.unchanged")

local current_plan, pending, memo_of = pair.current_plan, pair.pending, pair.memo_of

local M = {}

-- settled(ctx, policy, kf, serial, entry) -> true when a pair from a bulk index needs
-- nothing (the usual case of a no-op run), counted as unchanged; else false, with what was
-- learnt for the pair's full path ({base =, left =}) or nothing. kfstream asks this before it
-- makes a pair's table, its task closures and its report calls: only when no --report rows
-- are kept and nothing else needs a pair's life (a dry run prints its plan).
function M.settled(ctx, policy, kf, serial, entry)
  if ctx.index.need_details or ctx.dry_run then return false end
  local base = ctx.state:baseline(serial)
  local left = pending(ctx, policy, kf, entry, base, true)
  if left == nil then
    local r = ctx.report
    r.unchanged = r.unchanged + 1
    return true
  end
  return false, base, left
end

-- settle_batch(ctx, policy, b, from, to): settled() for the pairs in slots from..to
-- of a batch (four slots a pair: kf, serial, sslId, entry or false) at once, natively
-- (metasync.unchanged.settle), after their baselines were read ahead: each pair that needs
-- nothing is counted as unchanged and its kf slot set to false; the rest are left as they were.
function M.settle_batch(ctx, policy, b, from, to)
  -- (only a bulk index has entries, and slots)
  if not ctx.index.slots or ctx.index.need_details or ctx.dry_run then return end
  local bases = ctx.state:prefetched()
  if not bases then return end
  local plan = current_plan(ctx, policy, true)
  if plan.off then return end
  local touched = {}
  local n = unchanged.settle(plan, b, from, to, memo_of(ctx), bases, touched)
  ctx.state:taken(n)
  -- Their baselines hold what both sides agree on: the digests they lack are recorded for
  -- next time. (One they have, which did not match, stands for a row the pair does not agree
  -- on, such as a value of a field that has none now: computed again, it would not match
  -- either.)
  for _, key in ipairs(touched) do ctx.state:in_step(key) end
  local r = ctx.report
  r.unchanged = r.unchanged + n
end

-- The plan's baseline keys, each once; nil when two fields share one (a digest is of a set).
local function scope_of(plan)
  local names, seen = {}, {}
  for i = 1, #plan do
    local k = plan[i][2]
    if seen[k] then return nil end
    seen[k] = true
    names[i] = k
  end
  return names
end

-- settle_digests(ctx, policy, b, from, to): settle_batch() for the pairs whose
-- baseline digest (metasync.state digests) is known, before any baseline is read: a pair whose
-- agreed values digest to its baseline's needs nothing (metasync.unchanged.settle_digest).
function M.settle_digests(ctx, policy, b, from, to)
  if not ctx.index.slots or ctx.index.need_details or ctx.dry_run then return end
  local plan = current_plan(ctx, policy, true)
  if plan.off then return end
  if plan.scope == nil then
    local names = scope_of(plan)
    plan.scope = names and true or false
    if names then ctx.state:set_scope(names) end
  end
  if not plan.scope then return end
  if ctx.digests == nil then
    local d, key = ctx.state:digests()
    ctx.digests, ctx.digest_key = d or false, key
  end
  local digests = ctx.digests
  if not digests then return end
  local n = unchanged.settle_digest(plan, b, from, to, memo_of(ctx), digests, ctx.digest_key)
  local r = ctx.report
  r.unchanged = r.unchanged + n
  ctx.digest_settled = (ctx.digest_settled or 0) + n
end

-- kfstream.run's quick for sctokf
M.sctokf = { one = M.settled, batch = M.settle_batch, digest = M.settle_digests }

return M

-- The digests of the sync state's baselines: metasync.state owns the file and its commits, and
-- calls these. A certificate's digest is one number standing for the (field, value) rows its
-- baseline holds for a set of fields, the scope: the field list of the run that reads it
-- (sctokf and kftosc may map different fields). A no-op run with bulk reads then reads one
-- small row a certificate instead of its baseline's rows, and settles a pair natively when
-- the values both sides hold digest to the same number (metasync.unchanged.settle_digest).
--
-- The rule that keeps them right: every baseline change of a certificate, whoever makes it
-- (sctokf, kftosc, sync, revert: all go through state:agree), deletes its digests in the
-- transaction that commits the change, and the run's own scope is computed again there from
-- the rows themselves. A certificate with no digest is read the old way.
local json = require("metasync.json")

local M = {}

-- open(store), for a store that may write: the file's key for its digests (engine/digest.h),
-- made once, at random; and whether the file holds any digest (store.any_digests: if not, and
-- the run sets no scope, its baseline changes have none to delete).
function M.open(s)
  local f = io.open("/dev/urandom", "rb")
  local bytes = f and f:read(8)
  if f then f:close() end
  if not bytes or #bytes ~= 8 then error("cannot read /dev/urandom for the digest key", 0) end
  s.h:run("INSERT OR IGNORE INTO meta (key, value) VALUES ('digest_key', ?)", tostring((string.unpack("<i8", bytes))))
  s.key = math.tointeger(s.h:row("SELECT value FROM meta WHERE key = 'digest_key'").value)
  if not s.key then error("meta digest_key: expected an integer", 0) end
  s.any_digests = s.h:row("SELECT 1 AS x FROM digest LIMIT 1") ~= nil
end

-- set_scope(store, names): the run's fields (the baseline's keys), whose digests it reads and
-- keeps.
function M.set_scope(self, names)
  if self.readonly or not self.h then return end
  local sorted = {}
  for i, n in ipairs(names) do sorted[i] = n end
  table.sort(sorted)
  local text = json.encode(sorted)
  self.h:run("INSERT OR IGNORE INTO digest_scope (fields) VALUES (?)", text)
  self.scope = self.h:row("SELECT id FROM digest_scope WHERE fields = ?", text).id
  self.scope_names = table.concat(sorted, "\0") .. "\0" -- for pairs_digest
  self.other_scopes = self.h:row("SELECT 1 AS x FROM digest_scope WHERE id <> ? LIMIT 1", self.scope) ~= nil
end

-- all(store) -> {serial = digest} for the run's scope, and the key; nil without a scope. All of
-- them at once: one scan of a small table, where reading them a batch at a time (an index seek
-- each) cost a sixth of a no-op run. Only a bulk index, which holds every certificate anyway,
-- asks for them (metasync.quick).
function M.all(self)
  if not self.scope then return nil end
  return self.h:map("SELECT serial, value FROM digest WHERE scope = ?", self.scope), self.key
end

local DIGEST_DELETE = "DELETE FROM digest WHERE serial = ?"
local DIGEST_DELETE_OTHERS = "DELETE FROM digest WHERE serial = ? AND scope <> ?"
local DIGEST_PUT = [[INSERT OR REPLACE INTO digest (serial, scope, value)
  SELECT ?1, ?2, pairs_digest(?3, field, value, ?4) FROM baseline WHERE serial = ?1]]

-- commit(store, touched), in the transaction that commits the baseline changes: the digests of
-- the certificates whose baselines changed (or that were touched), after those changes. Only
-- the run's own scope is computed again, from the rows; any other scope's digest of them is
-- deleted. A delete that can find nothing is skipped: on a first run, one for every
-- certificate it wrote, it was a third of this cost.
function M.commit(s, touched)
  local h = s.h
  local scope = s.scope
  if not scope then
    if s.any_digests then
      for serial in pairs(touched) do h:run(DIGEST_DELETE, serial) end
    end
    return
  end
  for serial in pairs(touched) do
    if s.other_scopes then h:run(DIGEST_DELETE_OTHERS, serial, scope) end
    h:run(DIGEST_PUT, serial, scope, s.key, s.scope_names)
  end
  s.any_digests = true
end

return M

-- OAuth2 client-credentials tokens, cached until shortly before they expire. Concurrent tasks
-- asking at once share one token request instead of stampeding the identity provider.
local rest = require("metasync.rest")
local task = require("metasync.task")

local log = require("metasync.log")

local M = {}

local Token = {}
Token.__index = Token

-- new{token_url, client_id, client_secret, scope, audience, skew, name, http=rest options}
function M.new(o)
  local t = setmetatable({ o = o, skew = o.skew or 60, lock = task.semaphore(1) }, Token)
  local base, path = o.token_url:match("^(https?://[^/]+)(.*)$")
  local ro = { name = (o.name or "OAuth") .. " token", base = base, logger = o.logger or "oauth" }
  for k, v in pairs(o.http or {}) do ro[k] = v end
  t.path = path ~= "" and path or "/"
  t.client = rest.new(ro)
  return t
end

-- get([force]) -> "Bearer ..." header value, or nil, message (never containing the secret)
function Token:get(force)
  -- One fetch at a time; whoever waited finds the fresh token in the cache.
  local asked = task.now()
  self.lock:acquire()
  local ok, v, err = pcall(self.fetch, self, force, asked)
  self.lock:release()
  if not ok then error(v, 0) end
  return v, err
end

function Token:fetch(force, asked)
  local now = task.now()
  if self.value and now < self.expires and not (force and (self.fetched or 0) <= asked) then
    return self.value
  end
  local form = { { "grant_type", "client_credentials" }, { "client_id", self.o.client_id },
    { "client_secret", self.o.client_secret } }
  if self.o.scope and self.o.scope ~= "" then form[#form + 1] = { "scope", (self.o.scope:gsub("%s*,%s*", " ")) } end
  if self.o.audience and self.o.audience ~= "" then form[#form + 1] = { "audience", self.o.audience } end
  local doc, err = self.client:json("POST", self.path, { form = form, retry = true })
  if not doc then return nil, err end
  if type(doc) ~= "table" or type(doc.access_token) ~= "string" then
    return nil, self.client.name .. ": response has no access_token"
  end
  -- Tokens are secrets as much as the passwords: masked in every output from here on.
  log.add_secret(doc.access_token)
  log.add_secret(type(doc.refresh_token) == "string" and doc.refresh_token or nil)
  log.add_secret(type(doc.id_token) == "string" and doc.id_token or nil)
  local life = tonumber(doc.expires_in) or 300
  self.value = "Bearer " .. doc.access_token
  self.fetched = task.now()
  self.expires = now + math.max(1, life - math.min(self.skew, life / 2))
  return self.value
end

-- auth_hook() -> function(force) -> {Authorization = ...} | nil, message: the rest client's `auth`.
function Token:auth_hook()
  return function(force)
    local v, err = self:get(force)
    if not v then return nil, err end
    return { Authorization = v }
  end
end

return M

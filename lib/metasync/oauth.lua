-- OAuth2 client-credentials tokens, cached until shortly before they expire. Concurrent tasks
-- asking at once share one token request instead of stampeding the identity provider.
local rest = require("metasync.rest")
local task = require("metasync.task")

local M = {}

local Token = {}
Token.__index = Token

-- new{token_url, client_id, client_secret, scope, audience, skew, name, http=rest options}
function M.new(o)
  local t = setmetatable({ o = o, skew = o.skew or 60 }, Token)
  local base, path = o.token_url:match("^(https?://[^/]+)(.*)$")
  local ro = { name = (o.name or "OAuth") .. " token", base = base, logger = o.logger or "oauth" }
  for k, v in pairs(o.http or {}) do ro[k] = v end
  t.path = path ~= "" and path or "/"
  t.client = rest.new(ro)
  return t
end

-- get([force]) -> "Bearer ..." header value, or nil, message (never containing the secret)
function Token:get(force)
  while self.fetching do task.sleep(0.02) end
  local now = task.now()
  if not force and self.value and now < self.expires then return self.value end
  self.fetching = true
  local form = { { "grant_type", "client_credentials" }, { "client_id", self.o.client_id },
    { "client_secret", self.o.client_secret } }
  if self.o.scope and self.o.scope ~= "" then form[#form + 1] = { "scope", (self.o.scope:gsub("%s*,%s*", " ")) } end
  if self.o.audience and self.o.audience ~= "" then form[#form + 1] = { "audience", self.o.audience } end
  local doc, err = self.client:json("POST", self.path, { form = form, retry = true })
  self.fetching = false
  if not doc then return nil, err end
  if type(doc) ~= "table" or type(doc.access_token) ~= "string" then
    return nil, self.client.name .. ": response has no access_token"
  end
  local life = tonumber(doc.expires_in) or 300
  self.value = "Bearer " .. doc.access_token
  self.expires = now + math.max(1, life - math.min(self.skew, life / 2))
  return self.value
end

return M

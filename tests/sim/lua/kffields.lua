-- Keyfactor /MetadataFields: list, get by id or name, create, update, delete.
local U = require("util")
local D = require("data")
local Q = require("kfquery")
local KL = require("kflist")

local M = {}

-- Names Command reserves for its own query fields.
local RESERVED = { requestername = 1, requesterid = 1, principalname = 1, issuedemail = 1, issuedou = 1,
  keyusage = 1, revocationreason = 1, revocationcomment = 1 }

local PROPS = { Id = "number", Name = "string", Description = "string", DataType = "number", Hint = "string",
  Enrollment = "number", DisplayOrder = "number", Options = "string", DefaultValue = "string" }

local function obj(f)
  return { Id = f.Id, Name = f.Name, Description = f.Description, DataType = f.DataType, Hint = f.Hint,
    Validation = f.Validation, Enrollment = f.Enrollment, Message = f.Message, Options = f.Options,
    DefaultValue = f.DefaultValue, DisplayOrder = f.DisplayOrder, CaseSensitive = f.CaseSensitive }
end

local function in_use(k, name)
  for _, c in ipairs(k.certs) do if c.md[name] then return true end end
  return false
end

local function find(k, key)
  local id = tonumber(key)
  if id and key:match("^%d+$") then
    for _, f in ipairs(k.fields) do if f.Id == id then return f end end
    return nil
  end
  return k.field_by_lname[key:lower()]
end

-- Validates a create/update body; returns a field table or nil, message.
local function validate(K, k, doc, existing)
  local function str(name, max, required)
    local v = doc[name]
    if v == nil or v == U.null then
      if required then return nil, name .. " is required." end
      return existing and existing[name] or ""
    end
    if type(v) ~= "string" then return nil, name .. " must be a string." end
    if #v > max then return nil, name .. " must be at most " .. max .. " characters." end
    if required and v == "" then return nil, name .. " is required." end
    return v
  end
  local f, e = {}, nil
  f.Name, e = str("Name", 256, true)
  if not f.Name then return nil, e end
  if not f.Name:match("^[%w_%-]+$") then
    return nil, "Name may only contain letters, digits, '_' and '-'."
  end
  local ln = f.Name:lower()
  if K.BUILTIN[ln] or RESERVED[ln] or ln == "san" then
    return nil, "Name '" .. f.Name .. "' is reserved by a built-in certificate field."
  end
  local other = k.field_by_lname[ln]
  if other and other ~= existing then return nil, "A metadata field named '" .. f.Name .. "' already exists." end
  f.Description, e = str("Description", 1024, true)
  if not f.Description then return nil, e end
  if doc.DataType == nil then return nil, "DataType is required." end
  f.DataType = U.int(doc.DataType, 1, 7)
  if not f.DataType then return nil, "DataType must be between 1 and 7." end
  if doc.DisplayOrder == nil or doc.DisplayOrder == U.null then return nil, "DisplayOrder is required." end
  f.DisplayOrder = U.int(doc.DisplayOrder, 0)
  if not f.DisplayOrder then return nil, "DisplayOrder must be a non-negative integer." end
  for _, spec in ipairs({ { "Hint", 128 }, { "Validation", 4000 }, { "Message", 1024 }, { "Options", 65536 },
    { "DefaultValue", 100 } }) do
    f[spec[1]], e = str(spec[1], spec[2], false)
    if not f[spec[1]] then return nil, e end
  end
  if f.Validation ~= "" then
    local okre, re = pcall(require, "metasync.re")
    if okre and not re.compile(f.Validation) then return nil, "Validation is not a valid regular expression." end
  end
  f.Enrollment = doc.Enrollment == nil and (existing and existing.Enrollment or 0) or U.int(doc.Enrollment, 0, 2)
  if not f.Enrollment then return nil, "Enrollment must be 0, 1 or 2." end
  f.CaseSensitive = doc.CaseSensitive
  if f.CaseSensitive == nil then f.CaseSensitive = existing and existing.CaseSensitive or false end
  if type(f.CaseSensitive) ~= "boolean" then return nil, "CaseSensitive must be true or false." end
  if f.DataType == 5 and #D.options_of(f) == 0 then return nil, "Options are required for a MultipleChoice field." end
  if existing and in_use(k, existing.Name) then
    if f.Name ~= existing.Name then return nil, "The name of a field in use cannot be changed." end
    if f.DataType ~= existing.DataType then return nil, "The data type of a field in use cannot be changed." end
  end
  return f
end

local function list(K, C, req)
  local k = C.world.keyfactor
  local p = K.params(req)
  local page, limit = K.paging(p, 100)
  if not page then return limit end
  local sortf = p.sortfield and p.sortfield ~= "" and p.sortfield or "DisplayOrder"
  local skey
  for name in pairs(PROPS) do if name:lower() == sortf:lower() then skey = name end end
  if not skey then return K.err(400, K.E_VALIDATION, "Unknown SortField '" .. sortf:sub(1, 100) .. "'.") end
  local desc = p.sortascending == "1"
  local pred, qerr = Q.compile(p.querystring or "", function(name)
    for prop, kind in pairs(PROPS) do
      if prop:lower() == name:lower() then return { kind = kind, get = function(f) return f[prop] end } end
    end
  end, 0)
  if not pred then return K.err(400, K.E_QUERY, "Invalid query: " .. qerr) end
  local out = {}
  for _, f in ipairs(k.fields) do if pred(f) then out[#out + 1] = f end end
  table.sort(out, function(a, b)
    local x, y = a[skey], b[skey]
    if type(x) == "string" then x, y = x:lower(), y:lower() end
    if x == y then return a.Id < b.Id end
    if desc then return x > y end
    return x < y
  end)
  local items = U.array()
  for i = (page - 1) * limit + 1, math.min(#out, page * limit) do items[#items + 1] = obj(out[i]) end
  return K.json(200, items, { ["x-total-count"] = tostring(#out) })
end

-- Returns the handler for /MetadataFields[/rest] and the given method.
function M.handler(K, C, rest, method)
  return function(req)
    local k = C.world.keyfactor
    if method == "GET" then
      if not rest then return list(K, C, req) end
      local f = find(k, rest)
      if not f then return K.err(404, K.E_NOTFOUND, "Metadata field '" .. rest:sub(1, 256) .. "' was not found.") end
      return K.json(200, obj(f))
    end
    if method == "DELETE" then
      local f = rest and rest:match("^%d+$") and find(k, rest)
      if not f then return K.err(404, K.E_NOTFOUND, "Metadata field '" .. tostring(rest):sub(1, 256) .. "' was not found.") end
      local force = K.bool(K.params(req).force, false)
      if in_use(k, f.Name) and not force then
        return K.err(400, K.E_VALIDATION, "Metadata field '" .. f.Name .. "' is in use; use force=true to delete it.")
      end
      for _, c in ipairs(k.certs) do c.md[f.Name] = nil end
      for i, x in ipairs(k.fields) do if x == f then table.remove(k.fields, i); break end end
      D.index(C.world)
      KL.fields_changed(C.world)
      C.write("keyfactor.metadatafields")
      return K.no_content()
    end
    if (method == "POST" or method == "PUT") and not rest then
      local doc = U.decode(req.body)
      if type(doc) ~= "table" or (next(doc) ~= nil and #doc > 0) then
        return K.err(400, K.E_VALIDATION, "The request body could not be parsed as a metadata field.")
      end
      local existing
      if method == "PUT" then
        local id = U.int(doc.Id, 1)
        if not id then return K.err(400, K.E_VALIDATION, "Id is required.") end
        existing = find(k, tostring(id))
        if not existing then return K.err(404, K.E_NOTFOUND, "Metadata field with Id " .. id .. " was not found.") end
      end
      local f, why = validate(K, k, doc, existing)
      if not f then return K.err(400, K.E_VALIDATION, why) end
      if existing then
        for key, v in pairs(f) do existing[key] = v end
        f = existing
      else
        f.Id = k.next_field_id
        k.next_field_id = k.next_field_id + 1
        k.fields[#k.fields + 1] = f
      end
      D.index(C.world)
      KL.fields_changed(C.world)
      C.write("keyfactor.metadatafields")
      return K.json(200, obj(f))
    end
    return K.err(405, K.E_VALIDATION, "The requested resource does not support http method '" .. method:sub(1, 16) .. "'.")
  end
end

return M

-- csv() read back by an RFC 4180 parser of its own (not metasync.csv, which only writes).
-- usage: metasync run csv_check.lua roundtrip DIR      csv() of awkward values, read back
--        metasync run csv_check.lua sectigo FILE       the simulator world's values("sectigo")
-- The first runs with no configuration: csv() is one of the globals `metasync run` gives.

-- parse(text) -> list of records (lists of fields). Fields are separated by commas, records by
-- CRLF (a lone LF is accepted too); a quoted field may hold commas, CR, LF and "" for a quote.
local function parse(s)
  local records, record, i, n = {}, {}, 1, #s
  while i <= n do
    local c = s:sub(i, i)
    local field
    if c == '"' then
      local parts, j = {}, i + 1
      while true do
        local q = s:find('"', j, true)
        assert(q, "unterminated quoted field at byte " .. i)
        parts[#parts + 1] = s:sub(j, q - 1)
        if s:sub(q + 1, q + 1) == '"' then parts[#parts + 1] = '"'; j = q + 2
        else i = q + 1; break end
      end
      field = table.concat(parts)
    else
      local e = s:find("[,\r\n]", i) or n + 1
      field = s:sub(i, e - 1)
      assert(not field:find('"', 1, true), "a quote in an unquoted field at byte " .. i)
      i = e
    end
    record[#record + 1] = field
    local sep = s:sub(i, i)
    if sep == "," then
      i = i + 1
      if i > n then record[#record + 1] = "" end
    elseif sep == "\r" and s:sub(i + 1, i + 1) == "\n" then records[#records + 1] = record; record = {}; i = i + 2
    elseif sep == "\n" then records[#records + 1] = record; record = {}; i = i + 1
    elseif sep == "" then records[#records + 1] = record; record = {}
    else error(string.format("unexpected %q after a field at byte %d", sep, i)) end
  end
  return records
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local fails = 0
local function eq(got, want, what)
  if got ~= want then
    fails = fails + 1
    print(string.format("FAIL %s: got %q, want %q", what, tostring(got), tostring(want)))
  end
end

-- by_header(records) -> rows keyed by the header's names
local function by_header(records)
  local head, rows = records[1], {}
  for r = 2, #records do
    eq(#records[r], #head, "record " .. r .. " has as many fields as the header")
    local row = {}
    for i, name in ipairs(head) do row[name] = records[r][i] end
    rows[#rows + 1] = row
  end
  return head, rows
end

local mode, where = arg[1], arg[2]
if mode == "roundtrip" then
  local awkward = {
    { id = 1, text = "plain", note = "" },
    { id = 2, text = "a, b", note = 'she said "hi"' },
    { id = 3, text = "two\nlines", note = "crlf\r\ninside" },
    { id = 4, text = '"', note = ',' },
    { id = 5, text = nil, note = "ünïcödé, ok" },
    { id = 6, text = 12.0, note = true },
  }
  local path = where .. "/out.csv"
  -- an iterator, not the list: csv() streams
  local k = 0
  local n = csv(function() k = k + 1 return awkward[k] end, path, { "id", "text", "note" })
  eq(n, #awkward, "rows written")
  local s = read(path)
  eq(s:sub(1, 14), "id,text,note\r\n", "the header row, CRLF")
  local head, rows = by_header(parse(s))
  eq(#head, 3, "columns")
  eq(#rows, #awkward, "rows read back")
  for i, want in ipairs(awkward) do
    local got = rows[i] or {}
    eq(got.id, tostring(want.id), "id " .. i)
    local text = want.text == nil and "" or (want.text == 12.0 and "12" or want.text)
    eq(got.text, text, "text " .. i)
    eq(got.note, want.note == true and "true" or want.note, "note " .. i)
  end
  -- and a list of rows whose columns come from the rows themselves (names sorted)
  csv({ { b = "2", a = "x,y" } }, where .. "/keys.csv")
  local h2, r2 = by_header(parse(read(where .. "/keys.csv")))
  eq(table.concat(h2, "|"), "a|b", "columns from the keys")
  eq(r2[1].a, "x,y", "value from the keys")
elseif mode == "sectigo" then
  local head, rows = by_header(parse(read(where)))
  eq(table.concat(head, "|"), "serial|sectigo_id|cn|status|Cost Center|Environment|Renewal Date|Budget Code|Notes|Owner Email|Legacy Code",
    "header: the base columns, then every Sectigo custom field")
  local by = {}
  for _, r in ipairs(rows) do by[r.sectigo_id] = r end
  eq(#rows, 3, "the Issued certificates a run lists")
  eq(by["5001"] and by["5001"].Notes, 'line one\nline two, with "quotes"', "a line break and quotes")
  eq(by["5002"] and by["5002"]["Cost Center"], 'CC-2, "the big one"', "a comma and quotes")
  eq(by["5001"] and by["5001"]["Renewal Date"], "2025-07-23", "a date as Sectigo holds it")
  eq(by["5001"] and by["5001"]["Budget Code"], "42", "a number")
  eq(by["5002"] and by["5002"].Environment, "", "no value: an empty field")
  eq(by["5001"] and by["5001"].serial, "A112233", "the serial, normalised")
else
  error("usage: csv_check.lua roundtrip DIR | sectigo FILE")
end
if fails > 0 then print(fails .. " failure(s)") return 1 end
print("ok csv " .. mode)

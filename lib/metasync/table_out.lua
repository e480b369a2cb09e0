-- Rows out of the REPL's helpers (and anyone's lists): show() as an aligned table fitted to the
-- terminal, csv() (RFC 4180, metasync.csv) and jsonl(). "rows" is a list of tables or an
-- iterator (a function, or a stream made here); iterators are consumed as they come, so a
-- listing of 100k certificates is never held: show() buffers one bounded screenful to size its
-- columns, csv() and jsonl() a few rows to learn theirs. Column order comes from, in turn: the
-- columns argument, the list or stream (M.stream/M.list), the first row's metatable (__columns),
-- else the keys seen (1..n first, then names sorted).
-- Whatever goes to the terminal is masked like the rest of the shell (log.redact), and the
-- status line (metasync.statusline) is erased before each write so rows and progress never tear.
local json = require("metasync.json")
local log = require("metasync.log")
local csv = require("metasync.csv")
local values = require("metasync.values")
local planfile = require("metasync.planfile")
local status = require("metasync.statusline")

local M = {}

M.status = status

M.SCREENFUL = 50 -- rows show() reads before it prints: enough to size the columns
M.PEEK = 100     -- rows csv()/jsonl() read to learn the columns when nobody names them
local ELLIPSIS = "\u{2026}"

---------------------------------------------------------------------------------------------
-- Terminal width, cells
---------------------------------------------------------------------------------------------
-- width() -> COLUMNS, else the terminal's own width when the REPL can tell (M.term_width, set
-- by engine/repl.c), else 80.
function M.width()
  local c = math.tointeger(tonumber(os.getenv("COLUMNS") or ""))
  if c and c >= 20 then return c end
  local t = M.term_width and M.term_width()
  if t and t >= 20 then return t end
  return 80
end

local function ulen(s) return utf8.len(s) or #s end

-- cut(s, w) -> s in at most w columns, the end replaced by an ellipsis when it is longer
local function cut(s, w)
  if ulen(s) <= w then return s end
  if w <= 1 then return ELLIPSIS end
  local stop = utf8.len(s) and utf8.offset(s, w) or w
  return s:sub(1, stop - 1) .. ELLIPSIS
end
M.cut = cut

-- text(v) -> a value as one line of text: nothing for nil and JSON null, numbers without ".0",
-- lists joined, objects as JSON, control characters escaped as the dry run does (\n, \t ...).
local function text(v)
  if v == nil or v == json.null then return "" end
  local t = type(v)
  if t == "table" then
    local mt = getmetatable(v)
    if mt and mt.__tostring then return planfile.escape(tostring(v)) end
    local ok, s = pcall(json.encode, v)
    return ok and s or tostring(v)
  end
  if t == "string" then
    if v:find("[%c\\]") then return planfile.escape(v) end
    return v
  end
  return values.text(v) or tostring(v)
end
M.text = text

-- A column whose name names a credential shows "***" on the terminal, whatever its value, as the
-- REPL's printer does for such keys (mslog_secret_key in engine/redact.c): a value not
-- registered as a secret would otherwise show.
local SECRET_WORDS = { "password", "passwd", "secret", "authorization", "apikey", "api_key", "api-key" }
local function secret_column(c)
  if type(c) ~= "string" then return false end
  local low = c:lower()
  for _, w in ipairs(SECRET_WORDS) do
    if low:find(w, 1, true) then return true end
  end
  return low:sub(-5) == "token"
end

local function masked(c, v)
  local t = type(v)
  return (t == "string" or t == "number") and secret_column(c)
end

---------------------------------------------------------------------------------------------
-- Sources: lists and iterators
---------------------------------------------------------------------------------------------
local Stream = {}

local function describe(cols)
  return cols and table.concat(cols, ", ") or "columns from the rows"
end

Stream.__call = function(self) return self.next() end
Stream.__tostring = function(self)
  return string.format("<rows: %s> (a stream: show(it), csv(it, file), jsonl(it, file), or for row in it do ... end)",
    describe(self.columns))
end
Stream.__name = "rows"

-- stream(next_fn, columns) -> an iterator (callable: `for row in s do`) that knows its columns
function M.stream(next_fn, columns)
  return setmetatable({ next = next_fn, columns = columns }, Stream)
end

local render -- below

-- list(rows, columns) -> rows as a plain list that prints as a table at the prompt
function M.list(rows, columns)
  return setmetatable(rows, { columns = columns, __tostring = function(t) return render(t) end })
end

-- row_meta(columns) -> a metatable for rows that keeps their column order
function M.row_meta(columns) return { __columns = columns } end

-- source(rows) -> next function, columns (or nil)
local function source(rows)
  local t = type(rows)
  local mt = getmetatable(rows)
  if t == "function" then return rows, nil end
  if mt == Stream then return rows.next, rows.columns end
  if t == "table" and mt and mt.__call and rows[1] == nil then
    return function() return rows() end, nil
  end
  if t ~= "table" then error("rows: expected a list of tables or an iterator, got " .. t, 3) end
  local i = 0
  return function()
    i = i + 1
    return rows[i]
  end, mt and type(mt.columns) == "table" and mt.columns or nil
end

-- columns(buffered) -> the column list the rows suggest
local function infer(buf)
  local first = buf[1]
  local mt = type(first) == "table" and getmetatable(first)
  if mt and type(mt.__columns) == "table" then return mt.__columns end
  local n, names, seen = 0, {}, {}
  for _, r in ipairs(buf) do
    if type(r) ~= "table" then return { "value" } end
    n = math.max(n, #r)
    for k in pairs(r) do
      if type(k) == "string" and not seen[k] then seen[k] = true; names[#names + 1] = k end
    end
  end
  table.sort(names)
  local cols = {}
  for i = 1, n do cols[i] = i end
  for _, k in ipairs(names) do cols[#cols + 1] = k end
  return cols
end

local function get(row, c)
  if type(row) ~= "table" then return row end
  return row[c]
end

-- peek(next, count) -> the first count rows (fewer at the end)
local function peek(nxt, count)
  local buf = {}
  for _ = 1, count do
    local r = nxt()
    if r == nil then break end
    buf[#buf + 1] = r
  end
  return buf
end

local function columns_of(rows, columns, count)
  local nxt, cols = source(rows)
  local buf = peek(nxt, count)
  cols = columns or cols or infer(buf)
  if type(cols) == "string" then cols = { cols } end
  return nxt, cols, buf
end

---------------------------------------------------------------------------------------------
-- show
---------------------------------------------------------------------------------------------
-- fit(widths, headers, total): narrows the widest columns until the table fits in total
-- columns (two spaces between columns); none goes below 6 or its header, whichever is less.
local function fit(widths, cols, total)
  local n = #widths
  local avail = total - 2 * (n - 1)
  local sum = 0
  for _, w in ipairs(widths) do sum = sum + w end
  while sum > avail do
    local wi, ww = nil, 0
    for i, w in ipairs(widths) do
      if w > ww and w > math.min(6, ulen(tostring(cols[i]))) then wi, ww = i, w end
    end
    if not wi then break end
    widths[wi] = ww - 1
    sum = sum - 1
  end
end

local function line(cells, widths)
  local out = {}
  for i, s in ipairs(cells) do
    s = cut(s, widths[i])
    if i < #cells then s = s .. string.rep(" ", widths[i] - ulen(s)) end
    out[i] = s
  end
  return (table.concat(out, "  "):gsub("%s+$", ""))
end

local function cells(row, cols)
  local out = {}
  for i, c in ipairs(cols) do
    local v = get(row, c)
    out[i] = masked(c, v) and "***" or text(v)
  end
  return out
end

-- table_lines(rows, columns, emit) -> rows shown: the header, a rule, then each row, each line
-- handed to emit(line).
local function table_lines(rows, columns, emit)
  local nxt, cols, buf = columns_of(rows, columns, M.SCREENFUL)
  local heads, widths = {}, {}
  for i, c in ipairs(cols) do
    heads[i] = tostring(c)
    widths[i] = ulen(heads[i])
  end
  local made = {}
  for j, r in ipairs(buf) do
    made[j] = cells(r, cols)
    for i, s in ipairs(made[j]) do widths[i] = math.max(widths[i], ulen(s)) end
  end
  fit(widths, cols, M.width())
  emit(line(heads, widths))
  local rule = {}
  for i, w in ipairs(widths) do rule[i] = string.rep("-", w) end
  emit(table.concat(rule, "  "))
  local n = 0
  for _, c in ipairs(made) do
    n = n + 1
    emit(line(c, widths))
  end
  buf, made = nil, nil -- the rest streams
  -- A later value longer than its column (row 100000 after rows 1..50) widens the column while
  -- the line has room: a ragged edge is better than an id cut to "1…".
  local total = 2 * (#widths - 1)
  for _, w in ipairs(widths) do total = total + w end
  local room = M.width() - total
  for r in nxt do
    n = n + 1
    local c = cells(r, cols)
    if room > 0 then
      for i, s in ipairs(c) do
        local grow = math.min(ulen(s) - widths[i], room)
        if grow > 0 then widths[i], room = widths[i] + grow, room - grow end
      end
    end
    emit(line(c, widths))
  end
  return n
end

-- show(rows [, columns]) -> prints rows as an aligned table and a count; returns nothing, so
-- the prompt prints nothing more.
function M.show(rows, columns)
  local out = io.stdout
  local n = table_lines(rows, columns, function(l)
    status.clear()
    out:write(log.redact(l), "\n")
  end)
  status.clear()
  out:write(string.format("(%d row%s)\n", n, n == 1 and "" or "s"))
  out:flush()
end

-- render(list) -> the table show() would print, as one string (for __tostring: lists only).
function render(list)
  local lines = {}
  local n = table_lines(list, nil, function(l) lines[#lines + 1] = l end)
  lines[#lines + 1] = string.format("(%d row%s)", n, n == 1 and "" or "s")
  return table.concat(lines, "\n")
end
M.render = render

---------------------------------------------------------------------------------------------
-- csv, jsonl
---------------------------------------------------------------------------------------------
-- sink(file) -> write function, finish function, whether it is the terminal. file: a path, an
-- open file, or nil for stdout. A file is written as it goes; the terminal gets masked text.
local function sink(file)
  if file == nil or file == io.stdout then
    return function(s) status.clear(); io.stdout:write(log.redact(s)) end, function() io.stdout:flush() end, true
  end
  if io.type(file) == "file" then
    return function(s) file:write(s) end, function() file:flush() end
  end
  if type(file) ~= "string" or file == "" then error("file: expected a path, an open file or nil (stdout)", 3) end
  local f, err = io.open(file, "wb")
  if not f then error(err, 3) end
  return function(s) f:write(s) end, function() f:close() end
end

local function export(rows, file, columns, head, each)
  local nxt, cols, buf = columns_of(rows, columns, M.PEEK)
  local write, finish, terminal = sink(file)
  if terminal then
    local plain = each
    each = function(r, cs)
      if type(r) ~= "table" then return plain(r, cs) end
      local copy = {}
      for _, c in ipairs(cs) do
        local v = r[c]
        copy[c] = masked(c, v) and "***" or v
      end
      return plain(copy, cs)
    end
  end
  local ok, n = pcall(function()
    if head then write(head(cols)) end
    local k = 0
    for _, r in ipairs(buf) do k = k + 1; write(each(r, cols)) end
    buf = nil
    for r in nxt do k = k + 1; write(each(r, cols)) end
    return k
  end)
  finish()
  if not ok then error(n, 0) end
  -- to stdout nothing is returned: the prompt would print the count into the data
  if type(file) == "string" then return n, file end
  if file ~= nil and file ~= io.stdout then return n end
end

local function csv_line(r, cols)
  local out = {}
  for i, c in ipairs(cols) do
    local v = get(r, c)
    -- CSV holds text: values as show() reads them, but without the escaping (RFC 4180 quotes
    -- line breaks), and lists or objects as JSON.
    if type(v) == "table" then v = text(v) elseif v ~= nil and v ~= json.null and type(v) ~= "string" then v = values.text(v) end
    out[i] = csv.field(v)
  end
  return table.concat(out, ",") .. "\r\n"
end

-- csv(rows, file [, columns]) -> rows written, file (nothing for stdout, file nil). A header of
-- the column names, then one record per row (RFC 4180: CRLF, quotes where needed).
function M.csv(rows, file, columns)
  return export(rows, file, columns, function(cols)
    local hs = {}
    for i, c in ipairs(cols) do hs[i] = tostring(c) end
    return csv.header(hs)
  end, csv_line)
end

-- jsonl(rows, file [, columns]) -> rows written, file (as csv). One JSON object per row, keys in
-- column order, a missing value as null.
function M.jsonl(rows, file, columns)
  return export(rows, file, columns, nil, function(r, cols)
    if type(r) ~= "table" then return json.encode(r) .. "\n" end
    local keyed = {}
    for i, c in ipairs(cols) do keyed[i] = tostring(c) end
    local row = {}
    for i, c in ipairs(cols) do row[keyed[i]] = r[c] end
    return csv.jsonl(row, keyed)
  end)
end

return M

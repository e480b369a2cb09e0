-- metasync.re as the library uses it: names, serials, field values.
local re = require("metasync.re")

-- compile once, match many
local cn = re.compile("^CN=([^,]+)", "i")
assert(cn:match("CN=web01.example.com,O=Example") == "web01.example.com")
assert(cn:match("cn=lower,O=x") == "lower")
assert(cn:match("O=Example,CN=late") == nil)
assert(tostring(cn) == "re: ^CN=([^,]+)")

local bad, err = re.compile("([a-z]+")
assert(bad == nil and err:match("^offset %d+: "), err)
assert(not pcall(re.compile, "a", "g"), "unknown flags are misuse")

-- find: 1-based inclusive positions plus captures
local s, e, user, host = re.compile("(\\w+)@([\\w.]+)"):find("mail: ann@example.org.")
assert(s == 7 and e == 22 and user == "ann" and host == "example.org.")
assert(re.find("abcabc", "b", -3) == 5, "negative init counts from the end")

-- exec: numbered and named captures, unset groups false
local rx = re.compile("(?<key>[A-Za-z_]+)\\s*=\\s*(?<value>\"[^\"]*\"|\\S+)?")
local _, _, caps = rx:exec('Owner = "ops team"')
assert(caps.key == "Owner" and caps.value == '"ops team"' and caps[1] == "Owner")
_, _, caps = rx:exec("Empty =")
assert(caps.key == "Empty" and caps.value == false and caps[2] == false)

-- gmatch and gsub, including empty matches
local fields = {}
for k, v in re.gmatch("a=1;b=22;;c=333", "(\\w+)=(\\d+)") do
  fields[k] = tonumber(v)
end
assert(fields.a == 1 and fields.b == 22 and fields.c == 333)
local parts = {}
for p in re.gmatch("a,,b", "[^,]*") do
  parts[#parts + 1] = "<" .. p .. ">"
end
assert(table.concat(parts) == "<a><><b>", table.concat(parts))

-- banned characters rewritten the way names.lua might do it
local banned = re.compile("[^A-Za-z0-9_]")
assert(banned:gsub("Cost Center (EU)", "_") == "Cost_Center__EU_")
local out, n = re.gsub("Cost  Center", "\\s+", " ")
assert(out == "Cost Center" and n == 1)
assert(re.gsub("serial 0a:bc:de", "([0-9a-f]{2})", string.upper) == "serial 0A:BC:DE")
assert(re.gsub("$x and $y", "\\$(\\w+)", { x = "1" }) == "1 and $y")
assert(re.gsub("2024-06-30", "(\\d+)-(\\d+)-(\\d+)", "%3.%2.%1") == "30.06.2024")
assert(re.gsub("abc", "", "-") == "-a-b-c-")
assert(not pcall(re.gsub, "abc", "b", "%q"), "an invalid %-escape is an error")

-- UTF-8 aware
assert(re.match("\u{c9}T\u{c9}", "^.T.$") == "\u{c9}T\u{c9}")
assert(re.match("caf\u{c9}", "\u{e9}", 1, "i") == "\u{c9}")
local v, msg = re.match("bad \xff byte", "bad")
assert(v == nil and msg:find("UTF%-8"), "invalid UTF-8 gives nil, message")

-- runaway patterns stop
v, msg = re.match(("a"):rep(40) .. "!", "^(a|aa)+$")
assert(v == nil and msg == "match limit exceeded", msg)

-- to-be-closed patterns
do
  local tmp <close> = re.compile("x")
  assert(tmp:match("x") == "x")
end
print("ok")

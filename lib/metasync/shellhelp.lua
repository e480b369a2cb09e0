-- help() in the REPL: one line per client, helper and module, and for each a page with an
-- example. Data only; metasync.shell prints it.
return {
  { group = "clients", name = "sectigo", line = "the Sectigo client (no request is sent until it is used)",
    text = [[
sectigo:custom_fields()               the custom field definitions
sectigo:details(sslId)                details, custom fields too
sectigo:list{status = "Issued"}       a listing, as a list
sectigo:certificates{...}             the same, streamed page by page
sectigo:page({{"commonName", cn}}, 0, 25)   one list page, with filters
sectigo:types()                       the certificate profiles
sectigo:update(sslId, {{name =, value =}})  writes custom fields (it writes!)]],
    example = 'sectigo:details(5001).customFields' },
  { group = "clients", name = "keyfactor", line = "the Keyfactor client (no request is sent until it is used)",
    text = [[
keyfactor:metadata_fields()           the metadata field definitions
keyfactor:certificate(id)             one certificate with its metadata
keyfactor:list{query = 'IssuedCN -eq "a.example.com"'}   a query, as a list
keyfactor:certificates{query =, include_revoked =, include_expired =}
                                      the same, streamed page by page
keyfactor:update_metadata(id, {Field = "v"})   writes metadata (it writes!)]],
    example = 'keyfactor:list{query = \'IssuedCN -contains "acme"\'}[1].Metadata' },
  { group = "clients", name = "config", line = "config.json and fields.json as loaded, defaults filled in",
    text = [[
Keys as in config.json (config.keyfactorPageSize, config.issuerDNLookupTerm
...); config.fields holds fields.json (custom, manual). Passwords and client
secrets show as "***".]],
    example = "config.issuerDNLookupTerm" },

  { group = "helpers", name = "matched", line = "matched(): the pairs a run matches, streamed",
    text = [[
The Keyfactor certificates a run considers (the policy's query and include
hook), matched by serial to the Sectigo index (built on first use, kept until
reload()). Rows: serial, keyfactor_id, sectigo_id, cn, and keyfactor (the
whole certificate, not a column).]],
    example = 'for p in matched() do print(p.serial, p.keyfactor.Metadata.Owner) end' },
  { group = "helpers", name = "side", line = "side(serial): each mapped field on both sides, in step or not",
    text = [[
side(serial [, keyfactor_id]): one row per mapped field: the Sectigo value,
the Keyfactor value, and in_step (true when a run would write nothing: the
policy's conversion, then comparison by meaning, so 7/23/2025 12:00:00 AM
equals 2025-07-23). Any serial form works (0A:11:22:33, 000a112233). A value
missing on one side is an empty cell.]],
    example = 'side("0A:11:22:33")' },
  { group = "helpers", name = "missing", line = "missing(field [, side]): certificates without a value, streamed",
    text = [[
missing(field [, "keyfactor" | "sectigo"])
No side: the matched pairs where either side lacks the field (the column
missing says which), one Sectigo details read per pair. "keyfactor": every
Keyfactor certificate a run considers without a value, reading Keyfactor
only (fast). "sectigo": every Sectigo certificate a run lists without one.
field: a mapped field's Keyfactor or Sectigo name, any case.]],
    example = 'show(missing("CostCenter", "keyfactor"))' },
  { group = "helpers", name = "find", line = "find(serial or CN): that certificate on either side",
    text = [[
Rows: side, id (sslId or Keyfactor Id), serial, cn, status, expires and
considered (whether a run looks at it: the include hook, the Sectigo filters).]],
    example = 'find("www.acme.test")' },
  { group = "helpers", name = "values", line = "values([side]): every certificate with all its fields, streamed",
    text = [[
values(["sectigo" | "keyfactor"])
"sectigo" (the default): every Sectigo certificate a run lists, one column per
custom field defined in Sectigo (one details read each). "keyfactor": every
Keyfactor certificate a run considers, one column per metadata field defined
in Keyfactor.]],
    example = 'csv(values("sectigo"), "sectigo-fields.csv")' },
  { group = "helpers", name = "mapping", line = "mapping(): the fields a run syncs, by name on both sides",
    example = "mapping()" },
  { group = "helpers", name = "show", line = "show(rows [, columns]): an aligned table fitted to the terminal",
    text = [[
rows: a list of tables or a stream (what the helpers return), read as it
comes: the first screenful sizes the columns, the rest streams. Width:
COLUMNS, else the terminal's, else 80; long values are cut with an ellipsis.
columns: names (or one name) in the order to show.]],
    example = 'show(missing("CostCenter", "keyfactor"), {"serial", "cn"})' },
  { group = "helpers", name = "csv", line = "csv(rows [, file [, columns]]): CSV with a header row (RFC 4180)",
    text = [[
One record per row, values quoted where they hold a comma, a quote or a line
break, lines ending in CRLF. No file: stdout. Returns the rows and the file.]],
    example = 'csv(values("sectigo"), "sectigo-fields.csv")' },
  { group = "helpers", name = "jsonl", line = "jsonl(rows [, file [, columns]]): one JSON object per row",
    example = 'jsonl(matched(), "pairs.jsonl")' },
  { group = "helpers", name = "reload", line = "reload(): read the configuration again, forget what was fetched",
    example = "reload()" },
  { group = "helpers", name = "help", line = "help([name]): this list, or one entry with an example",
    example = 'help("missing")' },

  { group = "modules", name = "json", line = "json.decode(s), json.encode(v), json.null, json.array{}",
    example = 'json.encode{a = json.null}' },
  { group = "modules", name = "re", line = "re.match(s, pattern), re.find, re.gsub: PCRE2 expressions",
    example = [==[re.match("CC-123", [[^CC-(\d+)$]])]==] },
  { group = "modules", name = "http", line = "http.request{method =, url =, headers =, body =}",
    example = 'http.request{url = config.keyfactorAPIUrl .. "/Status/Endpoints"}' },
  { group = "modules", name = "task", line = "task.spawn(fn), task.sleep(s), task.map(iter, n, fn)",
    example = "task.sleep(0.5)" },
  { group = "modules", name = "log", line = "log.warn(logger, fmt, ...); the REPL shows warn and above",
    example = 'log.set_level("info")' },
  { group = "modules", name = "serial", line = "serial.normalise(s): the form both sides are matched in",
    example = 'serial.normalise("0a:11:22:33")' },
}

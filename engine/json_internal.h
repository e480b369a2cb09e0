/* metasync.json internals shared by json.c (encoder, array mark, module) and json_decode.c. */
#ifndef METASYNC_JSON_INTERNAL_H
#define METASYNC_JSON_INTERNAL_H

#include <lua.h>
#include <stddef.h>

#define JSON_MAX_DEPTH 200

/* json.decode(s [, opts]); upvalue 1 is the shared array metatable (json_decode.c). */
int json_decode(lua_State *L);
/* Four hex digits at q: 1 and *out, or 0 (json_decode.c). */
int json_hex4(const char *q, unsigned *out);
/* The UTF-8 bytes of code point cp into buf (at most 4); returns how many (json_decode.c). */
size_t json_utf8_put(char *buf, unsigned cp);
/* Whether s is one valid JSON document (as json.decode reads it); pushes nothing. */
int json_valid(lua_State *L, const char *s, size_t len);
/* json.rows(s, spec): compact rows straight from a JSON list of objects (json_rows.c). */
int json_rows(lua_State *L);
/* json.hexkey(v): the key normalisation json.rows applies (json_rows.c). */
int json_hexkey(lua_State *L);
int json_hexkey_at(lua_State *L, int idx);

#endif

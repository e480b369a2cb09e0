/* metasync.json internals shared by json.c (encoder, array mark, module) and json_decode.c. */
#ifndef METASYNC_JSON_INTERNAL_H
#define METASYNC_JSON_INTERNAL_H

#include <lua.h>

#define JSON_MAX_DEPTH 200

/* json.decode(s [, opts]); upvalue 1 is the shared array metatable (json_decode.c). */
int json_decode(lua_State *L);

#endif

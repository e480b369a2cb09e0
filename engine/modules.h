/* The engine's internal interfaces: native modules and the few C entry points the host uses. */
#ifndef METASYNC_MODULES_H
#define METASYNC_MODULES_H

#include <lua.h>

/* Native modules, registered in package.preload by the host. */
int luaopen_metasync_json(lua_State *L);
int luaopen_metasync_re(lua_State *L);
int luaopen_metasync_task(lua_State *L);
int luaopen_metasync_http(lua_State *L);
int luaopen_metasync_log(lua_State *L);
int luaopen_metasync_db(lua_State *L);
int luaopen_metasync_lock(lua_State *L);
int luaopen_metasync_signals(lua_State *L);
int luaopen_metasync_fs(lua_State *L);
int luaopen_metasync_unchanged(lua_State *L);
int luaopen_metasync_match(lua_State *L);
/* signals.c: the first SIGINT/SIGTERM received (its number), or 0. */
int signals_received(void);
int luaopen_cjson(lua_State *L); /* from Debian's lua-cjson static archive */

/* log.c: C-side logging into the same sinks as metasync.log. */
enum { MSLOG_TRACE, MSLOG_DEBUG, MSLOG_INFO, MSLOG_WARN, MSLOG_ERROR, MSLOG_FATAL };
int mslog_enabled(int level);
void mslog(int level, const char *logger, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* sched.c: run the function at stack top (below its nargs arguments) as a task and drive the
 * event loop until it ends. Returns LUA_OK with all results on the stack, or an error status with
 * the message (traceback appended) on the stack. */
int sched_call(lua_State *L, int nargs);
/* Async-signal-safe: make the running sched_call fail with "interrupted". */
void sched_interrupt(void);

/* repl.c: the interactive shell; returns the process exit code. */
int repl_run(lua_State *L);

/* host.c: the message handler used for every protected call (appends a traceback). */
int host_msghandler(lua_State *L);

#endif

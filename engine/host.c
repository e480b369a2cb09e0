/*
 * The host: builds the Lua state, decides where code may be loaded from, and runs scripts as the
 * main task under a protected call with a traceback handler.
 */
#include "host.h"
#include "modules.h"
#include "redact.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <curl/curl.h>
#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <pcre2.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* CMake passes the git commit of the source tree; a build without it still says something. */
#ifndef METASYNC_COMMIT
#define METASYNC_COMMIT "unknown"
#endif

static char stock_dir[PATH_MAX];

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Stock lib/ and scripts/: beside the executable in the build tree (share/metasync), under the
 * install prefix (../share/metasync), or where the build said it would be installed. */
const char *host_stock_dir(void) {
  if (stock_dir[0]) return stock_dir;
  char exe[PATH_MAX], cand[PATH_MAX + 64];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    const char *rel[] = {"/share/metasync", "/../share/metasync"};
    for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
      snprintf(cand, sizeof cand, "%s%s/lib", exe, rel[i]);
      if (is_dir(cand)) {
        snprintf(cand, sizeof cand, "%s%s", exe, rel[i]);
        if (realpath(cand, stock_dir)) return stock_dir;
      }
    }
  }
  snprintf(stock_dir, sizeof stock_dir, "%s", METASYNC_DATADIR);
  return stock_dir;
}

/* An absolute form of a user-given directory (it need not exist). */
static void absolute(const char *in, char *out, size_t outsz) {
  if (realpath(in, out)) return;
  if (in[0] == '/') {
    snprintf(out, outsz, "%s", in);
    return;
  }
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) cwd[0] = '\0';
  while (in[0] == '.' && in[1] == '/') in += 2;
  snprintf(out, outsz, "%s/%s", cwd, in);
}

char *host_find_script(const HostOptions *o, const char *name) {
  char p[PATH_MAX * 2];
  if (o->scripts_dir) {
    snprintf(p, sizeof p, "%s/%s.lua", o->scripts_dir, name);
    if (is_file(p)) return strdup(p);
  }
  snprintf(p, sizeof p, "%s/scripts/%s.lua", o->config_dir, name);
  if (is_file(p)) return strdup(p);
  snprintf(p, sizeof p, "%s/scripts/%s.lua", host_stock_dir(), name);
  if (is_file(p)) return strdup(p);
  return NULL;
}

int host_msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static void set_path(lua_State *L, const HostOptions *o) {
  char cfg[PATH_MAX], scr[PATH_MAX];
  const char *stock = host_stock_dir();
  luaL_Buffer b;
  lua_getglobal(L, "package");
  luaL_buffinit(L, &b);
  if (o->scripts_dir) {
    absolute(o->scripts_dir, scr, sizeof scr);
    lua_pushfstring(L, "%s/?.lua;", scr);
    luaL_addvalue(&b);
  }
  absolute(o->config_dir, cfg, sizeof cfg);
  lua_pushfstring(L, "%s/scripts/?.lua;%s/scripts/?.lua;%s/lib/?.lua;%s/lib/?/init.lua", cfg,
                  stock, stock, stock);
  luaL_addvalue(&b);
  luaL_pushresult(&b);
  lua_setfield(L, -2, "path");
  /* No C modules from the file system: everything native is preloaded. */
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
}

static void set_options(lua_State *L, const HostOptions *o) {
  lua_createtable(L, 0, 12);
  lua_pushstring(L, o->command);
  lua_setfield(L, -2, "command");
  lua_pushstring(L, o->config_dir);
  lua_setfield(L, -2, "config_dir");
  if (o->scripts_dir) {
    lua_pushstring(L, o->scripts_dir);
    lua_setfield(L, -2, "scripts_dir");
  }
  lua_pushstring(L, host_stock_dir());
  lua_setfield(L, -2, "stock_dir");
  lua_pushboolean(L, o->dry_run);
  lua_setfield(L, -2, "dry_run");
  lua_pushboolean(L, o->verbose);
  lua_setfield(L, -2, "verbose");
  if (o->log_level) {
    lua_pushstring(L, o->log_level);
    lua_setfield(L, -2, "log_level");
  }
  if (o->concurrency > 0) {
    lua_pushinteger(L, o->concurrency);
    lua_setfield(L, -2, "concurrency");
  }
  if (o->wait_lock >= 0) {
    lua_pushnumber(L, o->wait_lock);
    lua_setfield(L, -2, "wait_lock");
  }
  if (o->max_changes) {
    lua_pushstring(L, o->max_changes);
    lua_setfield(L, -2, "max_changes");
  }
  if (o->plan_out) {
    lua_pushstring(L, o->plan_out);
    lua_setfield(L, -2, "plan_out");
  }
  lua_pushboolean(L, o->progress);
  lua_setfield(L, -2, "progress");
  lua_pushboolean(L, o->quiet);
  lua_setfield(L, -2, "quiet");
  if (o->report) {
    lua_pushstring(L, o->report);
    lua_setfield(L, -2, "report");
  }
  if (o->repl_chunk) {
    lua_pushstring(L, o->repl_chunk);
    lua_setfield(L, -2, "repl_chunk");
  }
  /* Whether a status line can be drawn (lib/metasync/progress.lua): Lua has no isatty. */
  lua_pushboolean(L, isatty(2));
  lua_setfield(L, -2, "stderr_tty");
  lua_pushboolean(L, isatty(1));
  lua_setfield(L, -2, "stdout_tty");
  lua_createtable(L, o->nargs, 0);
  for (int i = 0; i < o->nargs; i++) {
    lua_pushstring(L, o->args[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "args");
  lua_pushliteral(L, METASYNC_VERSION);
  lua_setfield(L, -2, "version");
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    lua_pushlstring(L, exe, (size_t)n);
    lua_setfield(L, -2, "executable");
  }
  /* require "metasync.options" returns this table (see load_options). */
  lua_setfield(L, LUA_REGISTRYINDEX, "metasync.options");
}

static int load_options(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "metasync.options");
  return 1;
}

static int open_state(lua_State *L) {
  const HostOptions *o = lua_touserdata(L, 1);
  luaL_openlibs(L);
  static const luaL_Reg mods[] = {{"metasync.json", luaopen_metasync_json},
                                  {"metasync.re", luaopen_metasync_re},
                                  {"metasync.task", luaopen_metasync_task},
                                  {"metasync.http", luaopen_metasync_http},
                                  {"metasync.log", luaopen_metasync_log},
                                  {"metasync.db", luaopen_metasync_db},
                                  {"metasync.lock", luaopen_metasync_lock},
                                  {"metasync.signals", luaopen_metasync_signals},
                                  {"metasync.fs", luaopen_metasync_fs},
                                  {"metasync.unchanged", luaopen_metasync_unchanged},
                                  {"metasync.match", luaopen_metasync_match},
                                  {"metasync.options", load_options},
                                  {"cjson", luaopen_cjson},
                                  {NULL, NULL}};
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (const luaL_Reg *m = mods; m->name; m++) {
    lua_pushcfunction(L, m->func);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 1);
  set_path(L, o);
  set_options(L, o);
  /* The scheduler and the log are set up front: the host and the REPL rely on them. */
  luaL_requiref(L, "metasync.task", luaopen_metasync_task, 0);
  luaL_requiref(L, "metasync.log", luaopen_metasync_log, 0);
  if (o->log_level || o->verbose) {
    lua_getfield(L, -1, "set_level");
    lua_pushstring(L, o->log_level ? o->log_level : "debug");
    lua_call(L, 1, 0);
  }
  return 0;
}

lua_State *host_open(const HostOptions *o) {
  lua_State *L = luaL_newstate();
  if (!L) {
    fprintf(stderr, "metasync: cannot create the Lua state (out of memory)\n");
    return NULL;
  }
  lua_pushcfunction(L, host_msghandler);
  lua_pushcfunction(L, open_state);
  lua_pushlightuserdata(L, (void *)o);
  if (lua_pcall(L, 1, 0, 1) != LUA_OK) {
    fprintf(stderr, "metasync: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return NULL;
  }
  lua_settop(L, 0);
  return L;
}

/* The first line of an error message, unless verbose: tracebacks are for --verbose. */
static void report_error(lua_State *L, const HostOptions *o) {
  const char *msg = lua_tostring(L, -1);
  if (!msg) msg = "(error object is not a string)";
  const char *nl = o->verbose ? NULL : strchr(msg, '\n');
  fputs("metasync: ", stderr);
  mslog_fwrite_redacted(stderr, msg, nl ? (size_t)(nl - msg) : strlen(msg));
  fputc('\n', stderr);
}

int host_run_file(lua_State *L, const char *path, const HostOptions *o) {
  /* arg, as the stand-alone interpreter sets it: arg[0] the script, arg[1..] its arguments. */
  lua_createtable(L, o->nargs, 1);
  lua_pushstring(L, path);
  lua_rawseti(L, -2, 0);
  for (int i = 0; i < o->nargs; i++) {
    lua_pushstring(L, o->args[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setglobal(L, "arg");
  /* `metasync run`: the REPL's globals (clients, helpers), each made on first use, so a script
   * that uses none runs without a configuration (lib/metasync/shell.lua). */
  if (strcmp(o->command, "run") == 0 && luaL_dostring(L, "require('metasync.shell').lazy()") != LUA_OK) {
    report_error(L, o);
    return 1;
  }
  if (luaL_loadfile(L, path) != LUA_OK) {
    report_error(L, o);
    return 1;
  }
  luaL_checkstack(L, o->nargs, "too many arguments");
  for (int i = 0; i < o->nargs; i++) lua_pushstring(L, o->args[i]);
  int base = lua_gettop(L) - o->nargs;
  if (sched_call(L, o->nargs) != LUA_OK) {
    report_error(L, o);
    return 1;
  }
  /* A script may return its exit code. */
  if (lua_gettop(L) >= base && lua_isinteger(L, base)) {
    lua_Integer rc = lua_tointeger(L, base);
    return rc >= 0 && rc <= 255 ? (int)rc : 1;
  }
  return 0;
}

void host_print_versions(void) {
  char pcre[64] = "?";
  pcre2_config(PCRE2_CONFIG_VERSION, pcre);
  lua_State *L = luaL_newstate();
  const char *cj = "?";
  if (L) {
    luaL_requiref(L, "cjson", luaopen_cjson, 0);
    lua_getfield(L, -1, "_VERSION");
    if (lua_isstring(L, -1)) cj = lua_tostring(L, -1);
  }
  /* The commit tells two builds of one version apart (a bug report, a package on a server). */
  printf("metasync %s (commit %s)\n", METASYNC_VERSION, METASYNC_COMMIT);
  printf("  %s\n", LUA_RELEASE);
  printf("  libcurl %s\n", curl_version_info(CURLVERSION_NOW)->version);
  printf("  PCRE2 %s\n", pcre);
  printf("  lua-cjson %s\n", cj);
  printf("  sqlite %s\n", sqlite3_libversion());
  if (L) lua_close(L);
}

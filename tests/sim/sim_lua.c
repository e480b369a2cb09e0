/* The simulator's single lua_State: loading the endpoint module, M.init and M.handle.
 * MHD runs several threads, Lua allows one at a time: every entry here holds lua_lock. */
#include "sim.h"
#include "modules.h"

#include <arpa/inet.h>
#include <lauxlib.h>
#include <lualib.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <linux/sockios.h>

#define DEFAULT_CONTENT_TYPE "application/json;charset=UTF-8"

static lua_State *L;
static pthread_mutex_t lua_lock = PTHREAD_MUTEX_INITIALIZER;
static int module_ref = LUA_NOREF;

/* Appends a traceback to string errors; other error values become a description. */
static int msghandler(lua_State *L)
{
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static void preload(lua_State *L, const char *name, lua_CFunction open)
{
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, open);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
}

/* Loads the endpoint module: the --handler file, or the "sim" module found on package.path.
 * The latter is loaded by path rather than require because package.preload.sim is the native
 * module, which the endpoint code itself requires. */
static int load_module_p(lua_State *L)
{
  const char *handler = lua_touserdata(L, 1);
  if (handler) {
    if (luaL_loadfile(L, handler) != LUA_OK)
      return lua_error(L);
    lua_call(L, 0, 1);
  } else {
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchpath");
    lua_pushliteral(L, "sim");
    lua_getfield(L, -3, "path");
    lua_call(L, 2, 2);
    if (lua_isnil(L, -2))
      return luaL_error(L, "module 'sim' not found:%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    const char *path = lua_tostring(L, -1);
    if (luaL_loadfile(L, path) != LUA_OK)
      return lua_error(L);
    lua_pushliteral(L, "sim");
    lua_pushvalue(L, -3);
    lua_call(L, 2, 1);
  }
  if (!lua_istable(L, -1))
    return luaL_error(L, "%s returned %s, not a table", handler ? handler : "module 'sim'",
                      luaL_typename(L, -1));
  lua_getfield(L, -1, "handle");
  if (!lua_isfunction(L, -1))
    return luaL_error(L, "%s has no handle function", handler ? handler : "module 'sim'");
  lua_pop(L, 1);
  module_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

int simlua_open(const char *lua_dir, const char *handler_file)
{
  L = luaL_newstate();
  if (!L) {
    fprintf(stderr, "metasync-sim: cannot create a Lua state\n");
    return 1;
  }
  luaL_openlibs(L);
  preload(L, "metasync.json", luaopen_metasync_json);
  preload(L, "metasync.re", luaopen_metasync_re);
  preload(L, "cjson", luaopen_cjson);
  preload(L, "sim", luaopen_sim);

  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", lua_dir, lua_dir);
  lua_setfield(L, -2, "path");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);

  lua_pushcfunction(L, msghandler);
  lua_pushcfunction(L, load_module_p);
  lua_pushlightuserdata(L, (void *)handler_file);
  if (lua_pcall(L, 1, 0, -3) != LUA_OK) {
    fprintf(stderr, "metasync-sim: %s\n", lua_tostring(L, -1));
    lua_settop(L, 0);
    return 1;
  }
  lua_settop(L, 0);
  return 0;
}

static lua_Integer opt_port(lua_State *L, int t, const char *field, lua_Integer dflt)
{
  lua_getfield(L, t, field);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return dflt;
  }
  int isint = 0;
  lua_Integer v = lua_tointegerx(L, -1, &isint);
  if (!isint || v < 0 || v > 65535)
    return luaL_error(L, "init returned an invalid %s (an integer 0..65535 expected)", field);
  lua_pop(L, 1);
  return v;
}

struct init_call {
  int argc;
  char **argv;
  struct sim_listen *out;
  bool help;
};

static int init_p(lua_State *L)
{
  struct init_call *c = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, module_ref);
  lua_getfield(L, -1, "init");
  if (lua_isnil(L, -1)) {
    /* A handler without init takes the defaults: one daemon on any free loopback port. */
    strcpy(c->out->host, "127.0.0.1");
    c->out->sectigo_port = 0;
    c->out->keyfactor_port = -1;
    return 0;
  }
  lua_createtable(L, c->argc, 0);
  for (int i = 0; i < c->argc; i++) {
    lua_pushstring(L, c->argv[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_call(L, 1, 1);
  if (lua_isnil(L, -1)) {
    c->help = true;
    return 0;
  }
  if (!lua_istable(L, -1))
    return luaL_error(L, "init returned %s, not a table", luaL_typename(L, -1));
  int t = lua_gettop(L);
  lua_getfield(L, t, "host");
  size_t hl = 0;
  const char *host = lua_isnil(L, -1) ? "127.0.0.1" : lua_tolstring(L, -1, &hl);
  if (!host || hl >= sizeof c->out->host)
    return luaL_error(L, "init returned an invalid host");
  memcpy(c->out->host, host, strlen(host) + 1);
  c->out->sectigo_port = (int)opt_port(L, t, "sectigo_port", 0);
  c->out->keyfactor_port = (int)opt_port(L, t, "keyfactor_port", -1);
  return 0;
}

int simlua_init(int argc, char **argv, struct sim_listen *out)
{
  struct init_call c = {argc, argv, out, false};
  pthread_mutex_lock(&lua_lock);
  lua_pushcfunction(L, init_p);
  lua_pushlightuserdata(L, &c);
  int st = lua_pcall(L, 1, 0, 0);
  int rc = 0;
  if (st != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "metasync-sim: %s\n", msg ? msg : "init failed (non-string error)");
    rc = 64;
  } else if (c.help) {
    rc = -1;
  }
  lua_settop(L, 0);
  pthread_mutex_unlock(&lua_lock);
  return rc;
}

size_t simlua_heap_kb(void)
{
  pthread_mutex_lock(&lua_lock);
  size_t kb = L ? (size_t)lua_gc(L, LUA_GCCOUNT) : 0;
  pthread_mutex_unlock(&lua_lock);
  return kb;
}

int simlua_gc_step(int kb)
{
  pthread_mutex_lock(&lua_lock);
  /* A step works even while the automatic collector is stopped (sim.lua stops it). */
  int done = L ? lua_gc(L, LUA_GCSTEP, kb) : 1;
  pthread_mutex_unlock(&lua_lock);
  return done;
}

void simlua_close(void)
{
  pthread_mutex_lock(&lua_lock);
  if (L)
    lua_close(L);
  L = NULL;
  pthread_mutex_unlock(&lua_lock);
}

/* ---- requests ---- */

struct arg_walk {
  lua_State *L;
  int args, list;
  lua_Integer n;
};

static enum MHD_Result push_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                size_t key_size, const char *value, size_t value_size)
{
  struct arg_walk *w = cls;
  lua_State *L = w->L;
  (void)kind;
  if (!value)
    value = "", value_size = 0;
  lua_pushlstring(L, key, key_size);
  lua_pushlstring(L, value, value_size);
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, -3);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, 2);
  lua_rawseti(L, w->list, ++w->n);
  lua_rawset(L, w->args);
  return MHD_YES;
}

/* Header names are lowercased; a repeated header's values are joined with ", " (RFC 9110). */
static enum MHD_Result push_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
  lua_State *L = cls;
  int headers = lua_gettop(L);
  (void)kind;
  if (!value)
    value = "", value_size = 0;
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, key_size);
  for (size_t i = 0; i < key_size; i++) {
    unsigned char ch = (unsigned char)key[i];
    p[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
  }
  luaL_pushresultsize(&b, key_size);
  lua_pushvalue(L, -1);
  if (lua_rawget(L, headers) == LUA_TSTRING) {
    lua_pushliteral(L, ", ");
    lua_pushlstring(L, value, value_size);
    lua_concat(L, 3);
  } else {
    lua_pop(L, 1);
    lua_pushlstring(L, value, value_size);
  }
  lua_rawset(L, headers);
  return MHD_YES;
}

static void push_remote(lua_State *L, struct MHD_Connection *conn)
{
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  char ip[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  const struct sockaddr *sa = ci ? ci->client_addr : NULL;
  if (sa && sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
    port = ntohs(in->sin_port);
    lua_pushfstring(L, "%s:%d", ip, (int)port);
  } else if (sa && sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
    port = ntohs(in6->sin6_port);
    lua_pushfstring(L, "[%s]:%d", ip, (int)port);
  } else {
    lua_pushliteral(L, "?");
  }
}

static void push_request(lua_State *L, const struct sim_request *rq)
{
  lua_createtable(L, 0, 10);
  int req = lua_gettop(L);
  lua_pushstring(L, rq->api);
  lua_setfield(L, req, "api");
  lua_pushstring(L, rq->method);
  lua_setfield(L, req, "method");
  lua_pushstring(L, rq->path);
  lua_setfield(L, req, "path");
  lua_pushlstring(L, rq->query, rq->query_len);
  lua_setfield(L, req, "query");

  struct arg_walk w = {L, 0, 0, 0};
  lua_createtable(L, 0, 4);
  w.args = lua_gettop(L);
  lua_createtable(L, 4, 0);
  w.list = lua_gettop(L);
  MHD_get_connection_values_n(rq->conn, MHD_GET_ARGUMENT_KIND, push_arg, &w);
  lua_setfield(L, req, "arg_list");
  lua_setfield(L, req, "args");

  lua_createtable(L, 0, 8);
  MHD_get_connection_values_n(rq->conn, MHD_HEADER_KIND, push_header, L);
  lua_setfield(L, req, "headers");

  lua_pushlstring(L, rq->body ? rq->body : "", rq->body_len);
  lua_setfield(L, req, "body");
  push_remote(L, rq->conn);
  lua_setfield(L, req, "remote");
}

/* A response that stops early: fault_at bytes of the body, then an abortive close ("reset",
 * the client's read fails with ECONNRESET) or an orderly one ("truncate", the client reads EOF).
 * Content-Length still announces the whole body, so the client sees a short read either way. */
struct fault {
  int fd;
  bool reset;
  size_t n;
  char data[];
};

/* MHD shuts the socket down (FIN) before closing it, so SO_LINGER alone never reaches the
 * client as a reset. Disconnecting the socket (connect to AF_UNSPEC) sends the RST at once, but
 * discards unsent data: wait (briefly, at most ~1 s) until the body sent so far left the queue. */
static void reset_socket(int fd)
{
  for (int i = 0; i < 1000; i++) {
    int queued = 0;
    if (ioctl(fd, SIOCOUTQ, &queued) != 0 || queued <= 0)
      break;
    nanosleep(&(struct timespec){0, 1000000}, NULL);
  }
  struct sockaddr unspec = {.sa_family = AF_UNSPEC};
  connect(fd, &unspec, sizeof unspec);
}

static ssize_t fault_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
  struct fault *f = cls;
  if (pos >= f->n) {
    if (!f->reset)
      return MHD_CONTENT_READER_END_OF_STREAM;
    if (f->fd >= 0)
      reset_socket(f->fd);
    return MHD_CONTENT_READER_END_WITH_ERROR;
  }
  size_t k = f->n - (size_t)pos;
  if (k > max)
    k = max;
  memcpy(buf, f->data + pos, k);
  return (ssize_t)k;
}

static struct MHD_Response *fault_response(lua_State *L, int resp, const struct sim_request *rq,
                                           const char *body, size_t len)
{
  lua_getfield(L, resp, "fault");
  const char *kind = lua_tostring(L, -1);
  bool reset;
  if (kind && strcmp(kind, "reset") == 0)
    reset = true;
  else if (kind && strcmp(kind, "truncate") == 0)
    reset = false;
  else
    return (void)luaL_error(L, "response fault must be \"reset\" or \"truncate\""), NULL;
  lua_getfield(L, resp, "fault_at");
  int isint = 0;
  lua_Integer at = lua_isnil(L, -1) ? 0 : lua_tointegerx(L, -1, &isint);
  if (!lua_isnil(L, -1) && (!isint || at < 0))
    luaL_error(L, "response fault_at must be a non-negative integer");
  lua_pop(L, 2);
  size_t n = (lua_Unsigned)at < len ? (size_t)at : len;
  struct fault *f = malloc(sizeof *f + n);
  if (!f)
    return NULL;
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  f->fd = ci ? ci->connect_fd : -1;
  f->reset = reset;
  f->n = n;
  memcpy(f->data, body, n);
  struct MHD_Response *r = MHD_create_response_from_callback(len, 16384, fault_reader, f, free);
  if (!r)
    free(f);
  return r;
}

static void add_header(lua_State *L, struct sim_request *rq, const char *name, int v)
{
  const char *value = lua_tostring(L, v); /* converts numbers in place: v is a copy */
  if (!value)
    luaL_error(L, "response header %s: string expected, got %s", name, luaL_typename(L, v));
  if (MHD_add_response_header(rq->resp, name, value) != MHD_YES)
    luaL_error(L, "response header %s rejected (invalid characters?)", name);
}

static void build_response(lua_State *L, int resp, struct sim_request *rq)
{
  lua_getfield(L, resp, "status");
  int isint = 1;
  lua_Integer status = lua_isnil(L, -1) ? 200 : lua_tointegerx(L, -1, &isint);
  if (!isint || status < 100 || status > 999)
    luaL_error(L, "response status must be an integer 100..999");
  lua_getfield(L, resp, "body");
  size_t len = 0;
  const char *body = "";
  if (lua_type(L, -1) == LUA_TSTRING)
    body = lua_tolstring(L, -1, &len);
  else if (!lua_isnil(L, -1))
    luaL_error(L, "response body must be a string, not %s", luaL_typename(L, -1));

  /* From here on rq->resp is owned by the caller, which destroys it if we raise. */
  if (lua_getfield(L, resp, "fault") != LUA_TNIL)
    rq->resp = fault_response(L, resp, rq, body, len);
  else
    rq->resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
  lua_pop(L, 1);
  if (!rq->resp)
    luaL_error(L, "out of memory");

  bool has_type = false;
  if (lua_getfield(L, resp, "headers") == LUA_TTABLE) {
    int h = lua_gettop(L);
    luaL_checkstack(L, 4, "response headers");
    lua_pushnil(L);
    while (lua_next(L, h)) {
      if (lua_type(L, -2) != LUA_TSTRING)
        luaL_error(L, "response header names must be strings");
      const char *name = lua_tostring(L, -2);
      /* MHD computes Content-Length itself and refuses a second one. */
      if (strcasecmp(name, "content-length") == 0) {
        lua_pop(L, 1);
        continue;
      }
      if (strcasecmp(name, "content-type") == 0)
        has_type = true;
      if (lua_istable(L, -1)) {
        for (lua_Integer i = 1; lua_rawgeti(L, -1, i) != LUA_TNIL; i++) {
          add_header(L, rq, name, lua_gettop(L));
          lua_pop(L, 1);
        }
        lua_pop(L, 1);
      } else {
        add_header(L, rq, name, lua_gettop(L));
      }
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "response headers must be a table");
  }
  if (len > 0 && !has_type)
    MHD_add_response_header(rq->resp, MHD_HTTP_HEADER_CONTENT_TYPE, DEFAULT_CONTENT_TYPE);

  lua_getfield(L, resp, "delay_ms");
  if (!lua_isnil(L, -1)) {
    int isnum = 0;
    lua_Number d = lua_tonumberx(L, -1, &isnum);
    if (!isnum || !(d >= 0))
      luaL_error(L, "response delay_ms must be a non-negative number");
    rq->delay_ms = d > SIM_MAX_DELAY_MS ? SIM_MAX_DELAY_MS : (unsigned)(d + 0.5);
  }
  rq->status = (unsigned)status;
}

static int dispatch_p(lua_State *L)
{
  struct sim_request *rq = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, module_ref);
  lua_getfield(L, -1, "handle");
  push_request(L, rq);
  lua_call(L, 1, 1);
  if (!lua_istable(L, -1))
    return luaL_error(L, "handle returned %s, not a table", luaL_typename(L, -1));
  build_response(L, lua_gettop(L), rq);
  return 0;
}

void simlua_dispatch(struct sim_request *rq)
{
  rq->resp = NULL;
  rq->status = 200;
  rq->delay_ms = 0;
  pthread_mutex_lock(&lua_lock);
  lua_pushcfunction(L, msghandler);
  lua_pushcfunction(L, dispatch_p);
  lua_pushlightuserdata(L, rq);
  if (lua_pcall(L, 1, 0, 1) != LUA_OK) {
    if (rq->resp)
      MHD_destroy_response(rq->resp);
    size_t len = 0;
    const char *msg = lua_tolstring(L, -1, &len);
    if (!msg)
      msg = "error", len = 5;
    fprintf(stderr, "metasync-sim: %s %s: %s\n", rq->method, rq->path, msg);
    /* The client gets the message without the traceback. */
    const char *tb = strstr(msg, "\nstack traceback:");
    rq->resp = sim_error_response(msg, tb ? (size_t)(tb - msg) : len);
    rq->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    rq->delay_ms = 0;
  }
  lua_settop(L, 0);
  pthread_mutex_unlock(&lua_lock);
}

struct MHD_Response *sim_error_response(const char *msg, size_t len)
{
  static const char hex[] = "0123456789abcdef";
  char *out = malloc(len * 6 + 16);
  if (!out)
    return NULL;
  size_t n = 0;
  memcpy(out, "{\"error\":\"", 10);
  n = 10;
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)msg[i];
    if (ch == '"' || ch == '\\') {
      out[n++] = '\\';
      out[n++] = (char)ch;
    } else if (ch < 0x20 || ch == 0x7f) {
      memcpy(out + n, "\\u00", 4);
      out[n + 4] = hex[ch >> 4];
      out[n + 5] = hex[ch & 15];
      n += 6;
    } else {
      out[n++] = (char)ch;
    }
  }
  memcpy(out + n, "\"}", 2);
  n += 2;
  struct MHD_Response *r = MHD_create_response_from_buffer(n, out, MHD_RESPMEM_MUST_FREE);
  if (!r) {
    free(out);
    return NULL;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, DEFAULT_CONTENT_TYPE);
  return r;
}

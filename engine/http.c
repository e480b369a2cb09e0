/*
 * metasync.http: HTTP requests on libcurl's multi interface, driven by the scheduler's loop.
 *
 * One multi handle per process, so connections are kept and reused per host. A request is a Req
 * with its own easy handle; finished ones go back to a free list with their handle and buffers,
 * so curl's per-handle state is set up once, not per request. A per-host limiter (concurrency
 * cap + token bucket, http_host.c) parks requests in C until they may start; nothing blocks the
 * loop. Retries are policy and live in Lua (lib/metasync/rest.lua).
 */
#include "http.h"
#include "modules.h"

#include <ctype.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RESP_HDR_MT "metasync.http.headers"
#define DEFAULT_MAX_BODY (64L * 1024 * 1024)
#define POOL_MAX 1024            /* free requests kept for reuse */
#define KEEP_BUF (256 * 1024)    /* larger buffers are freed when a request is recycled */

static Req *pool;       /* free list, linked through next */
static int npool;
static Req *building;   /* taken from the pool, not yet submitted: recycled if l_request raised */

/* User-Agent and Accept-Encoding go in the request's own header list, as curl would write them:
 * curl formats its own ones afresh for every request. Not when a proxy is in use (curl also sends
 * the User-Agent in a CONNECT, from the option only). */
#define USER_AGENT "metasync/" METASYNC_VERSION
static char accept_encoding[64]; /* what CURLOPT_ACCEPT_ENCODING "" stands for in this libcurl */
static int proxy_env;            /* a standard proxy variable is set */

/* ---- buffers ---- */

static int buf_reserve(Buf *b, size_t need) {
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 1024;
  while (cap < need) cap *= 2;
  char *np = realloc(b->p, cap);
  if (!np) return -1;
  b->p = np;
  b->cap = cap;
  return 0;
}

static int buf_add(Buf *b, const char *p, size_t n) {
  if (b->len + n + 1 > b->cap && buf_reserve(b, b->len + n + 1) != 0) return -1;
  memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

static void buf_recycle(Buf *b) {
  b->len = 0;
  if (b->cap > KEEP_BUF) {
    free(b->p);
    b->p = NULL;
    b->cap = 0;
  }
}

/* ---- curl callbacks ---- */

/* Req.too_big: which limit an answer went over. */
enum { TOO_BIG_BODY = 1, TOO_BIG_HEADER = 2 };
#define HEAD_MAX (256 * 1024)

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  Req *r = ud;
  size_t len = size * n;
  if (r->body.len + len > r->max_body) {
    r->too_big = TOO_BIG_BODY;
    return 0;
  }
  if (r->body.len == 0) {
    /* One allocation for the whole body when the server announced its length. */
    curl_off_t cl = -1;
    if (curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK && cl > 0 &&
        (size_t)cl <= r->max_body)
      buf_reserve(&r->body, (size_t)cl + 1);
  }
  return buf_add(&r->body, p, len) == 0 ? len : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  Req *r = ud;
  size_t len = size * n;
  /* A new status line starts a new response (redirects, 100 Continue): keep only the last. */
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) r->head.len = 0;
  if (r->head.len + len > HEAD_MAX) {
    r->too_big = TOO_BIG_HEADER;
    return 0;
  }
  return buf_add(&r->head, p, len) == 0 ? len : 0;
}

/* True once the blank line ending the (last) response's headers was kept. */
static int headers_complete(const Buf *h) {
  return h->len >= 2 && h->p[h->len - 1] == '\n' &&
         (h->p[h->len - 2] == '\n' || (h->len >= 3 && h->p[h->len - 2] == '\r' && h->p[h->len - 3] == '\n'));
}

/* A response header over a limit: ours (HEAD_MAX for all of them), or libcurl's for one line
 * (CURL_MAX_HTTP_HEADER, 100 KB), which libcurl 7.88 reports as CURLE_OUT_OF_MEMORY while the
 * headers are still coming (8.6 and later: CURLE_TOO_LARGE). Not a transient failure. */
static int header_too_large(const Req *r) {
  if (r->too_big == TOO_BIG_HEADER) return 1;
  if (r->result == CURLE_OUT_OF_MEMORY && !headers_complete(&r->head)) return 1;
#if LIBCURL_VERSION_NUM >= 0x080600
  if (r->result == CURLE_TOO_LARGE && !headers_complete(&r->head)) return 1;
#endif
  return 0;
}

/* ---- the pool of requests ---- */

/* The options every request has: set on a new handle and again after curl_easy_reset. */
static void set_constant_options(Req *r) {
  CURL *e = r->easy;
  curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  r->ua = 0;
  sched_prepare_easy(e);
}

static void req_destroy(Req *r) {
  if (r->easy) curl_easy_cleanup(r->easy);
  for (int i = 0; i < PROF_N; i++) free(r->prof[i]);
  free(r->nodes);
  free(r->lines.p);
  free(r->body.p);
  free(r->head.p);
  free(r);
}

static Req *req_take(void) {
  Req *r = pool;
  if (r) {
    pool = r->next;
    npool--;
    r->next = NULL;
    return r;
  }
  r = calloc(1, sizeof *r);
  if (!r) return NULL;
  if (!(r->easy = curl_easy_init())) {
    free(r);
    return NULL;
  }
  set_constant_options(r);
  return r;
}

/* Back to the free list; the handle keeps its options, which the next request overwrites. */
static void req_release(Req *r) {
  if (npool >= POOL_MAX) {
    req_destroy(r);
    return;
  }
  buf_recycle(&r->body);
  buf_recycle(&r->head);
  buf_recycle(&r->lines);
  r->too_big = 0;
  r->dropped = 0;
  r->errbuf[0] = '\0';
  r->result = CURLE_OK;
  r->host = NULL;
  r->in_flight = 0;
  r->waiter = NULL;
  r->done = 0;
  r->next = pool;
  pool = r;
  npool++;
}

/* ---- responses ---- */

static const char *error_kind(CURLcode c) {
  switch (c) {
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_CONNECT: return "connect";
  case CURLE_OPERATION_TIMEDOUT: return "timeout";
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CACERT_BADFILE: return "tls";
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE: return "reset";
  default: return "other";
  }
}

/* Parse the kept header block into t (lowercased names; repeated names joined with ", "). */
static void push_headers(lua_State *L, const Buf *head) {
  const char *p = head->p, *end = head->p ? head->p + head->len : NULL;
  int n = 0;
  for (const char *c = p; c && (c = memchr(c, '\n', (size_t)(end - c))); c++) n++;
  lua_createtable(L, 0, n);
  luaL_setmetatable(L, RESP_HDR_MT);
  if (!p) return;
  char lname[64];
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) eol = end;
    const char *colon = memchr(p, ':', (size_t)(eol - p));
    if (colon && colon > p && !(eol - p >= 5 && memcmp(p, "HTTP/", 5) == 0)) {
      size_t nl = (size_t)(colon - p);
      if (nl <= sizeof lname) {
        for (size_t i = 0; i < nl; i++) lname[i] = (char)tolower((unsigned char)p[i]);
        lua_pushlstring(L, lname, nl);
      } else {
        luaL_Buffer name;
        luaL_buffinit(L, &name);
        for (const char *c = p; c < colon; c++) luaL_addchar(&name, (char)tolower((unsigned char)*c));
        luaL_pushresult(&name);
      }
      const char *v = colon + 1, *ve = eol;
      while (v < ve && (*v == ' ' || *v == '\t')) v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
      lua_pushvalue(L, -1);
      if (lua_rawget(L, -3) == LUA_TSTRING) {
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, (size_t)(ve - v));
        lua_concat(L, 3);
      } else {
        lua_pop(L, 1);
        lua_pushlstring(L, v, (size_t)(ve - v));
      }
      lua_rawset(L, -3);
    }
    p = eol + 1;
  }
}

/* Push `response` or `nil, message, kind` for a finished request. */
static int push_response(lua_State *L, Req *r) {
  luaL_checkstack(L, 6, NULL);
  if (r->dropped) {
    lua_pushnil(L);
    lua_pushstring(L, r->errbuf);
    lua_pushliteral(L, "dropped");
    return 3;
  }
  if (r->result != CURLE_OK) {
    char *url = NULL;
    curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &url);
    int big_header = header_too_large(r);
    if (big_header)
      lua_pushfstring(L, "%s %s: response header too large (over %d bytes for one line or %d in all)",
                      r->method, url ? url : "?", (int)CURL_MAX_HTTP_HEADER, (int)HEAD_MAX);
    else if (r->too_big)
      lua_pushfstring(L, "%s %s: response body exceeds %d bytes", r->method, url ? url : "?",
                      (int)r->max_body);
    else
      lua_pushfstring(L, "%s %s: %s%s%s%s", r->method, url ? url : "?",
                      curl_easy_strerror(r->result), r->errbuf[0] ? " (" : "", r->errbuf,
                      r->errbuf[0] ? ")" : "");
    lua_pushnil(L);
    lua_insert(L, -2);
    lua_pushstring(L, (r->too_big || big_header) ? "too_big" : error_kind(r->result));
    return 3;
  }
  long status = 0;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  push_headers(L, &r->head);
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, r->body.p ? r->body.p : "", r->body.len);
  lua_setfield(L, -2, "body");
  lua_pushnumber(L, sched_now() - r->started);
  lua_setfield(L, -2, "elapsed");
  return 1;
}

/* Wakes whoever waits for r, which is over (sent and answered, or never sent). */
void http_wake_waiter(Req *r) {
  if (r->waiter) {
    if (sched_waiting(r->waiter, r->gen)) {
      lua_State *co = sched_thread(r->waiter);
      sched_wake(r->waiter, push_response(co, r));
    }
    sched_unpin(sched_thread(r->waiter), r->pin);
    req_release(r);
  } else {
    r->done = 1;
  }
}

static void on_done(CURLMsg *m) {
  Req *r = NULL;
  curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
  if (!r) return;
  r->result = m->data.result;
  http_finished(r);
  if (mslog_enabled(MSLOG_DEBUG)) {
    long status = 0;
    char *url = NULL;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &url);
    mslog(MSLOG_DEBUG, "http", "%s %s -> %ld%s%s (%.0f ms)", r->method, url ? url : "?", status,
          r->result ? " " : "", r->result ? curl_easy_strerror(r->result) : "",
          (sched_now() - r->started) * 1000);
  }
  http_dispatch(r->host);
  http_wake_waiter(r);
}

/* ---- building a request ---- */

static const char *opt_string(lua_State *L, const char *key) {
  lua_getfield(L, 1, key);
  const char *s = lua_tostring(L, -1);
  if (!s && !lua_isnil(L, -1)) luaL_error(L, "http.request: field '%s' must be a string", key);
  lua_pop(L, 1); /* the string stays alive in the argument table */
  return s;
}

static double opt_number(lua_State *L, const char *key, double dflt) {
  lua_getfield(L, 1, key);
  double v = lua_isnil(L, -1) ? dflt : lua_tonumber(L, -1);
  if (!lua_isnil(L, -1) && !lua_isnumber(L, -1))
    luaL_error(L, "http.request: field '%s' must be a number", key);
  lua_pop(L, 1);
  return v;
}

static int is_secret_header(const char *name, size_t len) {
  return (len == 13 && strncasecmp(name, "authorization", 13) == 0) ||
         (len == 8 && strncasecmp(name, "password", 8) == 0) ||
         (len == 5 && strncasecmp(name, "login", 5) == 0) ||
         (len == 19 && strncasecmp(name, "proxy-authorization", 19) == 0);
}

/* One "Name: value" line into r->lines; its offset is kept in the next node until the list is
 * linked (the buffer may move while it grows). */
static int add_line(Req *r, size_t *count, const char *n, size_t nl, const char *v, size_t vl) {
  if (*count == r->nodecap) {
    size_t cap = r->nodecap ? r->nodecap * 2 : 8;
    struct curl_slist *nn = realloc(r->nodes, cap * sizeof *nn);
    if (!nn) return -1;
    r->nodes = nn;
    r->nodecap = cap;
  }
  size_t off = r->lines.len;
  if (buf_reserve(&r->lines, off + nl + vl + 3) != 0) return -1;
  char *d = r->lines.p + off;
  memcpy(d, n, nl);
  d += nl;
  if (v) {
    *d++ = ':';
    *d++ = ' ';
    memcpy(d, v, vl);
    d += vl;
  }
  *d++ = '\0';
  r->lines.len = (size_t)(d - r->lines.p);
  r->nodes[(*count)++].data = (char *)(uintptr_t)off;
  return 0;
}

/* headers={name=value,...} (the table at index idx) as r's header list; trace-logs them with
 * secrets masked. Raises on misuse (r is then recycled by the next request or at exit). */
static struct curl_slist *set_headers(lua_State *L, Req *r, int idx, int has_body, int own) {
  size_t count = 0;
  int has_ua = 0, has_ae = 0;
  r->lines.len = 0;
  if (lua_istable(L, idx)) {
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      size_t nl, vl;
      if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
        luaL_error(L, "http.request: headers must map names to strings");
      const char *n = lua_tolstring(L, -2, &nl);
      const char *v = lua_tolstring(L, -1, &vl);
      if (memchr(n, '\n', nl) || memchr(n, '\r', nl) || memchr(v, '\n', vl) || memchr(v, '\r', vl))
        luaL_error(L, "http.request: header '%s' contains a line break", n);
      if (add_line(r, &count, n, nl, v, vl) != 0) luaL_error(L, "out of memory");
      if (nl == 10 && strncasecmp(n, "user-agent", 10) == 0) has_ua = 1;
      if (nl == 15 && strncasecmp(n, "accept-encoding", 15) == 0) has_ae = 1;
      if (mslog_enabled(MSLOG_TRACE))
        mslog(MSLOG_TRACE, "http", "> %s: %s", n, is_secret_header(n, nl) ? "***" : v);
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, idx)) {
    luaL_error(L, "http.request: field 'headers' must be a table");
  }
  if (own && !has_ua && add_line(r, &count, "User-Agent", 10, USER_AGENT, sizeof USER_AGENT - 1) != 0)
    luaL_error(L, "out of memory");
  if (own && !has_ae && accept_encoding[0] &&
      add_line(r, &count, "Accept-Encoding", 15, accept_encoding, strlen(accept_encoding)) != 0)
    luaL_error(L, "out of memory");
  /* No "Expect: 100-continue" round trip before a body. */
  if (has_body && add_line(r, &count, "Expect:", 7, NULL, 0) != 0) luaL_error(L, "out of memory");
  if (count == 0) return NULL;
  for (size_t i = 0; i < count; i++) {
    r->nodes[i].data = r->lines.p + (uintptr_t)r->nodes[i].data;
    r->nodes[i].next = i + 1 < count ? &r->nodes[i + 1] : NULL;
  }
  return r->nodes;
}

/* TLS and proxy options: rarely set, so a recycled handle is only reset when they change. */
static void set_profile(Req *r, const char *want[PROF_N], int insecure) {
  static const CURLoption opt[PROF_N] = {CURLOPT_CAINFO, CURLOPT_SSLCERT, CURLOPT_SSLKEY,
                                         CURLOPT_PROXY};
  int same = r->insecure == insecure, custom = r->insecure;
  for (int i = 0; i < PROF_N; i++) {
    if (r->prof[i]) custom = 1;
    if ((r->prof[i] == NULL) != (want[i] == NULL) || (want[i] && strcmp(r->prof[i], want[i]) != 0))
      same = 0;
  }
  if (same) return;
  if (custom) {
    curl_easy_reset(r->easy);
    set_constant_options(r);
    r->mstate = 0;
  }
  int lost = 0;
  for (int i = 0; i < PROF_N; i++) {
    free(r->prof[i]);
    r->prof[i] = want[i] ? strdup(want[i]) : NULL;
    if (want[i] && !r->prof[i]) lost = 1;
    if (want[i]) curl_easy_setopt(r->easy, opt[i], want[i]);
  }
  r->insecure = lost ? 2 : insecure; /* 2: not known (out of memory), reset before the next use */
  if (insecure) {
    curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYHOST, 0L);
  }
}

enum { M_CUSTOM = 1, M_BODY = 2 };

/* The method and body, from whatever the handle's previous request left. */
static void set_method(Req *r, const char *method, const char *body, size_t bodylen) {
  CURL *e = r->easy;
  if (r->mstate & M_BODY) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL); /* drops the copy */
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
  }
  if (r->mstate & M_CUSTOM) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
  curl_easy_setopt(e, CURLOPT_HTTPGET, 1L); /* also clears NOBODY */
  r->mstate = 0;
  int head = strcmp(method, "HEAD") == 0;
  if (head) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  if (body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)bodylen);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body); /* makes it a POST */
    r->mstate |= M_BODY;
  }
  /* Any other method is sent as a custom request (a PUT keeps its in-memory body). */
  if (strcmp(method, body ? "POST" : "GET") != 0 && !(head && !body)) {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    r->mstate |= M_CUSTOM;
  }
}

/* http.request{method=, url=, headers=, body=, timeout=, connect_timeout=, cafile=, cert=, key=,
 *              proxy=, insecure=, max_body=} -> response | nil, message, kind */
static int l_request(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  const char *url = opt_string(L, "url");
  luaL_argcheck(L, url != NULL, 1, "field 'url' is required");
  const char *method = opt_string(L, "method");
  if (!method) method = "GET";
  size_t ml = strlen(method);
  luaL_argcheck(L, ml < 16 && ml > 0 && strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == ml, 1,
                "field 'method' must be an uppercase HTTP method");
  size_t bodylen = 0;
  lua_getfield(L, 1, "body");
  const char *body = lua_tolstring(L, -1, &bodylen);
  lua_pop(L, 1);
  /* After a stop signal nothing new goes out; what is in flight finishes (signals.c). */
  if (signals_received()) {
    lua_pushnil(L);
    lua_pushliteral(L, "interrupted: not sent");
    lua_pushliteral(L, "interrupted");
    return 3;
  }
  double timeout = opt_number(L, "timeout", 60), ctimeout = opt_number(L, "connect_timeout", 10);
  double max_body = opt_number(L, "max_body", (double)DEFAULT_MAX_BODY);
  luaL_argcheck(L, timeout > 0 && ctimeout > 0, 1, "timeouts must be positive");
  const char *prof[PROF_N] = {opt_string(L, "cafile"), opt_string(L, "cert"), opt_string(L, "key"),
                              opt_string(L, "proxy")};
  lua_getfield(L, 1, "insecure");
  int insecure = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 1, "headers"); /* index 2: read below without metamethods */

  /* Nothing between here and the hand-over runs Lua code, so no other request is built meanwhile;
   * an error raised while building leaves r in `building`, recycled by the next call or at exit. */
  if (building) req_release(building);
  Req *r = building = req_take();
  if (!r) return luaL_error(L, "out of memory");
  memcpy(r->method, method, ml + 1);
  r->max_body = max_body > 0 ? (size_t)max_body : (size_t)DEFAULT_MAX_BODY;
  set_profile(r, prof, insecure);
  int proxied = proxy_env || prof[PROF_PROXY];
  if (proxied != r->ua) {
    curl_easy_setopt(r->easy, CURLOPT_USERAGENT, proxied ? USER_AGENT : NULL);
    r->ua = proxied;
  }
  struct curl_slist *hdrs = set_headers(L, r, 2, body != NULL, !proxied);

  CURL *e = r->easy;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(ctimeout * 1000));
  set_method(r, method, body, bodylen);

  r->host = http_host_for_url(url);
  if (!r->host) {
    building = NULL;
    req_release(r);
    lua_pushnil(L);
    lua_pushfstring(L, "%s %s: malformed URL", method, url);
    lua_pushliteral(L, "other");
    return 3;
  }
  if (mslog_enabled(MSLOG_TRACE)) mslog(MSLOG_TRACE, "http", "%s %s", method, url);

  Task *me = sched_task_of(L);
  building = NULL; /* from here the loop owns r */
  if (me) {
    r->waiter = me;
    r->gen = sched_wait_gen(me);
    r->pin = sched_pin(L, me);
    http_submit(r);
    return sched_suspend(L, me);
  }
  http_submit(r);
  int rc = sched_run_until(&r->done);
  if (rc < 0) {
    http_withdraw(r);
    req_release(r);
    return luaL_error(L, rc == -1 ? "interrupted" : "deadlock while waiting for a response");
  }
  building = r; /* recycled even if building the response raises */
  int n = push_response(L, r);
  building = NULL;
  req_release(r);
  return n;
}

/* Case-insensitive lookup for response headers (stored lowercased). */
static int hdr_index(lua_State *L) {
  size_t n;
  const char *k = lua_tolstring(L, 2, &n);
  if (!k || lua_type(L, 2) != LUA_TSTRING) return 0;
  char buf[64];
  if (n <= sizeof buf) {
    for (size_t i = 0; i < n; i++) buf[i] = (char)tolower((unsigned char)k[i]);
    lua_pushlstring(L, buf, n);
  } else {
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, n);
    for (size_t i = 0; i < n; i++) p[i] = (char)tolower((unsigned char)k[i]);
    luaL_pushresultsize(&b, n);
  }
  lua_rawget(L, 1);
  return 1;
}

/* At exit, requests still parked or in flight (a script that did not wait for its tasks) are
 * taken off the multi handle and freed; this runs before the scheduler cleans up the multi. */
static int http_gc(lua_State *L) {
  (void)L;
  Req *r;
  while ((r = http_live_pop())) {
    if (r->in_flight) sched_transfer_stop(r->easy);
    req_destroy(r);
  }
  if (building) req_destroy(building);
  building = NULL;
  while ((r = pool)) {
    pool = r->next;
    req_destroy(r);
  }
  npool = 0;
  http_hosts_free();
  return 0;
}

int luaopen_metasync_http(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"request", l_request}, {"limit", http_l_limit}, {"drop", http_l_drop},
      {"stats", http_l_stats}, {NULL, NULL}};
  sched_set_done_handler(on_done);
  static const char *const proxy_vars[] = {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
                                           "ALL_PROXY"};
  proxy_env = 0;
  for (size_t i = 0; i < sizeof proxy_vars / sizeof *proxy_vars; i++) {
    const char *v = getenv(proxy_vars[i]);
    if (v && *v) proxy_env = 1;
  }
  long features = curl_version_info(CURLVERSION_NOW)->features;
  snprintf(accept_encoding, sizeof accept_encoding, "%s%s%s",
           features & CURL_VERSION_LIBZ ? "deflate, gzip" : "",
           features & CURL_VERSION_BROTLI ? (features & CURL_VERSION_LIBZ ? ", br" : "br") : "",
           features & CURL_VERSION_ZSTD ? (features & (CURL_VERSION_LIBZ | CURL_VERSION_BROTLI) ? ", zstd" : "zstd") : "");
  if (luaL_newmetatable(L, RESP_HDR_MT)) {
    lua_pushcfunction(L, hdr_index);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
  lua_setfield(L, -2, "curl_version");
  lua_newuserdatauv(L, 0, 0);
  lua_newtable(L);
  lua_pushcfunction(L, http_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "metasync.http.hosts");
  return 1;
}

/*
 * metasync.http: HTTP requests on libcurl's multi interface, driven by the scheduler's loop.
 *
 * One easy handle per request, one multi handle per process, so connections are kept and reused
 * per host. A per-host limiter (concurrency cap + token bucket) parks requests in C until they
 * may start; nothing blocks the loop. Retries are policy and live in Lua (lib/metasync/rest.lua).
 */
#include "modules.h"
#include "sched.h"

#include <ctype.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RESP_HDR_MT "metasync.http.headers"
#define DEFAULT_MAX_BODY (64L * 1024 * 1024)

typedef struct Buf {
  char *p;
  size_t len, cap;
} Buf;

typedef struct Host Host;

typedef struct Req {
  CURL *easy;
  struct curl_slist *hdrs;
  Buf body, head;
  size_t max_body;
  int too_big;
  char method[16];
  char errbuf[CURL_ERROR_SIZE];
  CURLcode result;
  Host *host;
  struct Req *next; /* parked list */
  struct Req *live_prev, *live_next; /* every request handed to the loop, for cleanup at exit */
  int in_flight;
  double started;
  /* who waits: a task (woken with the response) or a blocking caller (polls `done`) */
  Task *waiter;
  unsigned gen;
  int pin;
  volatile int done;
} Req;

struct Host {
  char key[300];
  int cap;                      /* 0: no cap */
  double rate, burst, tokens, last;
  int inflight, max_inflight;
  long requests, failures;
  Req *park_head, *park_tail;
  int parked;
  int timer_armed;
  Host *next;
};

static Host *hosts;
static Req *live; /* requests owned by the loop (parked or in flight) */

static void live_add(Req *r) {
  r->live_prev = NULL;
  r->live_next = live;
  if (live) live->live_prev = r;
  live = r;
}

static void live_remove(Req *r) {
  if (r->live_prev) r->live_prev->live_next = r->live_next;
  else if (live == r) live = r->live_next;
  if (r->live_next) r->live_next->live_prev = r->live_prev;
  r->live_prev = r->live_next = NULL;
}

static int buf_add(Buf *b, const char *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1) cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) return -1;
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  Req *r = ud;
  size_t len = size * n;
  if (r->body.len + len > r->max_body) {
    r->too_big = 1;
    return 0;
  }
  return buf_add(&r->body, p, len) == 0 ? len : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  Req *r = ud;
  size_t len = size * n;
  /* A new status line starts a new response (redirects, 100 Continue): keep only the last. */
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) r->head.len = 0;
  if (r->head.len + len > 256 * 1024) return 0;
  return buf_add(&r->head, p, len) == 0 ? len : 0;
}

static void req_free(Req *r) {
  if (r->easy) curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->hdrs);
  free(r->body.p);
  free(r->head.p);
  free(r);
}

/* ---- hosts and the limiter ---- */

/* "host:port" of a URL, lowercased, with the scheme's default port. */
static void url_hostkey(const char *url, char *out, size_t outsz) {
  out[0] = '\0';
  CURLU *u = curl_url();
  if (!u) return;
  char *host = NULL, *port = NULL;
  if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    snprintf(out, outsz, "%s:%s", host, port);
    for (char *c = out; *c; c++) *c = (char)tolower((unsigned char)*c);
  }
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
}

static Host *host_get(const char *key) {
  for (Host *h = hosts; h; h = h->next)
    if (strcmp(h->key, key) == 0) return h;
  Host *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  snprintf(h->key, sizeof h->key, "%s", key);
  h->next = hosts;
  hosts = h;
  return h;
}

static void refill(Host *h) {
  if (h->rate <= 0) return;
  double now = sched_now();
  h->tokens += (now - h->last) * h->rate;
  if (h->tokens > h->burst) h->tokens = h->burst;
  h->last = now;
}

static void start(Req *r) {
  Host *h = r->host;
  h->inflight++;
  if (h->inflight > h->max_inflight) h->max_inflight = h->inflight;
  h->requests++;
  r->in_flight = 1;
  r->started = sched_now();
  curl_multi_add_handle(sched_multi(), r->easy);
}

static void dispatch(Host *h);

static void rate_timer(void *arg) {
  Host *h = arg;
  h->timer_armed = 0;
  dispatch(h);
}

/* Start parked requests while the host's cap and bucket allow. */
static void dispatch(Host *h) {
  while (h->park_head) {
    if (h->cap > 0 && h->inflight >= h->cap) return;
    if (h->rate > 0) {
      refill(h);
      if (h->tokens < 1) {
        if (!h->timer_armed) {
          h->timer_armed = 1;
          sched_timer_add((1 - h->tokens) / h->rate, rate_timer, h);
        }
        return;
      }
      h->tokens -= 1;
    }
    Req *r = h->park_head;
    h->park_head = r->next;
    if (!h->park_head) h->park_tail = NULL;
    h->parked--;
    r->next = NULL;
    start(r);
  }
}

static void submit(Req *r) {
  Host *h = r->host;
  live_add(r);
  r->next = NULL;
  if (h->park_tail) h->park_tail->next = r;
  else h->park_head = r;
  h->park_tail = r;
  h->parked++;
  dispatch(h);
}

/* Take r out of the machinery before its owner gives up on it (interrupted blocking call). */
static void withdraw(Req *r) {
  Host *h = r->host;
  live_remove(r);
  if (r->in_flight) {
    curl_multi_remove_handle(sched_multi(), r->easy);
    h->inflight--;
    r->in_flight = 0;
    dispatch(h);
    return;
  }
  Req **pp = &h->park_head, *prev = NULL;
  while (*pp && *pp != r) {
    prev = *pp;
    pp = &(*pp)->next;
  }
  if (*pp) {
    *pp = r->next;
    if (h->park_tail == r) h->park_tail = prev;
    h->parked--;
  }
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
  lua_newtable(L);
  luaL_setmetatable(L, RESP_HDR_MT);
  const char *p = head->p, *end = head->p ? head->p + head->len : NULL;
  if (!p) return;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) eol = end;
    const char *colon = memchr(p, ':', (size_t)(eol - p));
    if (colon && colon > p && memcmp(p, "HTTP/", 5) != 0) {
      luaL_Buffer name;
      luaL_buffinit(L, &name);
      for (const char *c = p; c < colon; c++) luaL_addchar(&name, (char)tolower((unsigned char)*c));
      luaL_pushresult(&name);
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
  char *url = NULL;
  curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &url);
  if (r->result != CURLE_OK) {
    if (r->too_big)
      lua_pushfstring(L, "%s %s: response body exceeds %d bytes", r->method, url ? url : "?",
                      (int)r->max_body);
    else
      lua_pushfstring(L, "%s %s: %s%s%s%s", r->method, url ? url : "?",
                      curl_easy_strerror(r->result), r->errbuf[0] ? " (" : "", r->errbuf,
                      r->errbuf[0] ? ")" : "");
    lua_pushnil(L);
    lua_insert(L, -2);
    lua_pushstring(L, r->too_big ? "too_big" : error_kind(r->result));
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

static void on_done(CURLMsg *m) {
  Req *r = NULL;
  curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
  if (!r) return;
  r->result = m->data.result;
  curl_multi_remove_handle(sched_multi(), r->easy);
  live_remove(r);
  r->in_flight = 0;
  Host *h = r->host;
  h->inflight--;
  if (r->result != CURLE_OK) h->failures++;
  if (mslog_enabled(MSLOG_DEBUG)) {
    long status = 0;
    char *url = NULL;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &url);
    mslog(MSLOG_DEBUG, "http", "%s %s -> %ld%s%s (%.0f ms)", r->method, url ? url : "?", status,
          r->result ? " " : "", r->result ? curl_easy_strerror(r->result) : "",
          (sched_now() - r->started) * 1000);
  }
  dispatch(h);
  if (r->waiter) {
    if (sched_waiting(r->waiter, r->gen)) {
      lua_State *co = sched_thread(r->waiter);
      sched_wake(r->waiter, push_response(co, r));
    }
    sched_unpin(sched_thread(r->waiter), r->pin);
    req_free(r);
  } else {
    r->done = 1;
  }
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

/* Collect headers={name=value,...} into r->hdrs; trace-logs them with secrets masked. */
static void set_headers(lua_State *L, Req *r, int has_body) {
  lua_getfield(L, 1, "headers");
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      size_t nl, vl;
      const char *n = lua_tolstring(L, -2, &nl); /* keys are strings: tolstring won't convert */
      if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
        luaL_error(L, "http.request: headers must map names to strings");
      const char *v = lua_tolstring(L, -1, &vl);
      if (memchr(n, '\n', nl) || memchr(n, '\r', nl) || memchr(v, '\n', vl) || memchr(v, '\r', vl))
        luaL_error(L, "http.request: header '%s' contains a line break", n);
      lua_pushfstring(L, "%s: %s", n, v);
      struct curl_slist *nh = curl_slist_append(r->hdrs, lua_tostring(L, -1));
      if (!nh) luaL_error(L, "out of memory");
      r->hdrs = nh;
      if (mslog_enabled(MSLOG_TRACE))
        mslog(MSLOG_TRACE, "http", "> %s: %s", n, is_secret_header(n, nl) ? "***" : v);
      lua_pop(L, 2);
    }
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "http.request: field 'headers' must be a table");
  }
  lua_pop(L, 1);
  if (has_body) r->hdrs = curl_slist_append(r->hdrs, "Expect:");
}

static int req_gc(lua_State *L) {
  Req **pr = lua_touserdata(L, 1);
  if (*pr) req_free(*pr);
  *pr = NULL;
  return 0;
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
  luaL_argcheck(L, strlen(method) < 16 && strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == strlen(method) && *method,
                1, "field 'method' must be an uppercase HTTP method");
  size_t bodylen = 0;
  lua_getfield(L, 1, "body");
  const char *body = lua_tolstring(L, -1, &bodylen);
  lua_pop(L, 1);
  double timeout = opt_number(L, "timeout", 60), ctimeout = opt_number(L, "connect_timeout", 10);
  double max_body = opt_number(L, "max_body", (double)DEFAULT_MAX_BODY);
  luaL_argcheck(L, timeout > 0 && ctimeout > 0, 1, "timeouts must be positive");
  const char *cafile = opt_string(L, "cafile"), *cert = opt_string(L, "cert"),
             *key = opt_string(L, "key"), *proxy = opt_string(L, "proxy");
  lua_getfield(L, 1, "insecure");
  int insecure = lua_toboolean(L, -1);
  lua_pop(L, 1);

  /* The request is owned by a userdata until submitted, so a Lua error here frees it. */
  Req **pr = lua_newuserdatauv(L, sizeof *pr, 0);
  *pr = NULL;
  lua_newtable(L);
  lua_pushcfunction(L, req_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  Req *r = calloc(1, sizeof *r);
  if (!r || !(r->easy = curl_easy_init())) {
    free(r);
    return luaL_error(L, "out of memory");
  }
  *pr = r;
  snprintf(r->method, sizeof r->method, "%s", method);
  r->max_body = max_body > 0 ? (size_t)max_body : (size_t)DEFAULT_MAX_BODY;
  set_headers(L, r, body != NULL);

  CURL *e = r->easy;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(ctimeout * 1000));
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "metasync/" METASYNC_VERSION);
  if (strcmp(method, "GET") == 0) curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  else if (strcmp(method, "HEAD") == 0) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  else curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  if (body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)bodylen);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
    if (strcmp(method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  }
  if (cafile) curl_easy_setopt(e, CURLOPT_CAINFO, cafile);
  if (cert) curl_easy_setopt(e, CURLOPT_SSLCERT, cert);
  if (key) curl_easy_setopt(e, CURLOPT_SSLKEY, key);
  if (proxy) curl_easy_setopt(e, CURLOPT_PROXY, proxy);
  if (insecure) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }

  char hk[300];
  url_hostkey(url, hk, sizeof hk);
  if (!hk[0]) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s %s: malformed URL", method, url);
    lua_pushliteral(L, "other");
    return 3;
  }
  r->host = host_get(hk);
  if (!r->host) return luaL_error(L, "out of memory");
  if (mslog_enabled(MSLOG_TRACE)) mslog(MSLOG_TRACE, "http", "%s %s", method, url);

  Task *me = sched_task_of(L);
  *pr = NULL; /* from here the loop owns r */
  if (me) {
    r->waiter = me;
    r->gen = sched_wait_gen(me);
    r->pin = sched_pin(L, me);
    submit(r);
    return sched_suspend(L, me);
  }
  submit(r);
  int rc = sched_run_until(&r->done);
  if (rc < 0) {
    withdraw(r);
    req_free(r);
    return luaL_error(L, rc == -1 ? "interrupted" : "deadlock while waiting for a response");
  }
  *pr = r; /* owned by the userdata again: freed even if building the response fails */
  return push_response(L, r);
}

/* http.limit(host, {concurrency=N, rate=R, burst=B}) */
static int l_limit(lua_State *L) {
  const char *h = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  char key[300];
  if (strstr(h, "://")) url_hostkey(h, key, sizeof key);
  else {
    snprintf(key, sizeof key, "%s", h);
    for (char *c = key; *c; c++) *c = (char)tolower((unsigned char)*c);
  }
  luaL_argcheck(L, key[0], 1, "expected host:port or a URL");
  Host *ho = host_get(key);
  if (!ho) return luaL_error(L, "out of memory");
  lua_getfield(L, 2, "concurrency");
  lua_Integer cap = luaL_optinteger(L, -1, 0);
  lua_getfield(L, 2, "rate");
  lua_Number rate = luaL_optnumber(L, -1, 0);
  lua_getfield(L, 2, "burst");
  lua_Number burst = luaL_optnumber(L, -1, rate > 1 ? rate : 1);
  luaL_argcheck(L, cap >= 0 && cap <= 100000, 2, "concurrency must be 0..100000");
  luaL_argcheck(L, rate >= 0 && burst >= 1, 2, "rate must be >= 0 and burst >= 1");
  ho->cap = (int)cap;
  ho->rate = rate;
  ho->burst = burst;
  ho->tokens = burst;
  ho->last = sched_now();
  dispatch(ho);
  return 0;
}

/* http.stats() -> {["host:port"] = {inflight, max_inflight, requests, failures, parked}} */
static int l_stats(lua_State *L) {
  lua_newtable(L);
  for (Host *h = hosts; h; h = h->next) {
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, h->inflight);
    lua_setfield(L, -2, "inflight");
    lua_pushinteger(L, h->max_inflight);
    lua_setfield(L, -2, "max_inflight");
    lua_pushinteger(L, h->requests);
    lua_setfield(L, -2, "requests");
    lua_pushinteger(L, h->failures);
    lua_setfield(L, -2, "failures");
    lua_pushinteger(L, h->parked);
    lua_setfield(L, -2, "parked");
    lua_setfield(L, -2, h->key);
  }
  return 1;
}

/* Case-insensitive lookup for response headers (stored lowercased). */
static int hdr_index(lua_State *L) {
  size_t n;
  const char *k = lua_tolstring(L, 2, &n);
  if (!k || lua_type(L, 2) != LUA_TSTRING) return 0;
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, n);
  for (size_t i = 0; i < n; i++) p[i] = (char)tolower((unsigned char)k[i]);
  luaL_pushresultsize(&b, n);
  lua_rawget(L, 1);
  return 1;
}

/* At exit, requests still parked or in flight (a script that did not wait for its tasks) are
 * taken off the multi handle and freed; this runs before the scheduler cleans up the multi. */
static int hosts_gc(lua_State *L) {
  (void)L;
  while (live) {
    Req *r = live;
    live_remove(r);
    if (r->in_flight) curl_multi_remove_handle(sched_multi(), r->easy);
    req_free(r);
  }
  while (hosts) {
    Host *h = hosts;
    hosts = h->next;
    free(h);
  }
  return 0;
}

int luaopen_metasync_http(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"request", l_request}, {"limit", l_limit}, {"stats", l_stats}, {NULL, NULL}};
  sched_set_done_handler(on_done);
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
  lua_pushcfunction(L, hosts_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "metasync.http.hosts");
  return 1;
}

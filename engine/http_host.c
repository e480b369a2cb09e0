/*
 * metasync.http: hosts and the per-host limiter (concurrency cap + token bucket), and the list of
 * requests the loop owns (parked or in flight).
 */
#include "http.h"

#include <ctype.h>
#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* URL prefixes ("scheme://authority") already mapped to their Host, so that the URL of every
 * request is not parsed twice (here and by curl). */
#define ALIASES 16
#define ALIAS_MAX 128
static struct {
  char prefix[ALIAS_MAX];
  size_t len;
  Host *host;
} alias[ALIASES];
static int naliases, next_alias;

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

Req *http_live_pop(void) {
  Req *r = live;
  if (r) live_remove(r);
  return r;
}

/* ---- hosts ---- */

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

static Host *host_find(const char *key) {
  for (Host *h = hosts; h; h = h->next)
    if (strcmp(h->key, key) == 0) return h;
  return NULL;
}

static Host *host_get(const char *key) {
  Host *h = host_find(key);
  if (h) return h;
  h = calloc(1, sizeof *h);
  if (!h) return NULL;
  snprintf(h->key, sizeof h->key, "%s", key);
  h->next = hosts;
  hosts = h;
  return h;
}

/* Length of "scheme://host[:port]" at the start of url when it is plain enough to stand for its
 * host (letters, digits, '.', '-', ':', brackets: no user info, no escapes), else 0. */
static size_t url_prefix(const char *url) {
  const char *p = url;
  while (isalpha((unsigned char)*p)) p++;
  if (p == url || strncmp(p, "://", 3) != 0) return 0;
  p += 3;
  const char *a = p;
  while (isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == ':' || *p == '[' || *p == ']')
    p++;
  if (p == a || (*p && *p != '/' && *p != '?' && *p != '#')) return 0;
  size_t n = (size_t)(p - url);
  return n < ALIAS_MAX ? n : 0;
}

Host *http_host_for_url(const char *url) {
  size_t n = url_prefix(url);
  for (int i = 0; n && i < naliases; i++)
    if (alias[i].len == n && memcmp(alias[i].prefix, url, n) == 0) return alias[i].host;
  char hk[300];
  url_hostkey(url, hk, sizeof hk); /* the whole URL: a malformed one is refused here */
  if (!hk[0]) return NULL;
  Host *h = host_get(hk);
  if (h && n) {
    int i = naliases < ALIASES ? naliases++ : next_alias++ % ALIASES;
    memcpy(alias[i].prefix, url, n);
    alias[i].len = n;
    alias[i].host = h;
  }
  return h;
}

void http_hosts_free(void) {
  while (hosts) {
    Host *h = hosts;
    hosts = h->next;
    free(h);
  }
  naliases = next_alias = 0;
}

/* ---- the limiter ---- */

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
  sched_transfer_start(r->easy);
}

static void rate_timer(void *arg) {
  Host *h = arg;
  h->timer_armed = 0;
  http_dispatch(h);
}

/* The first request parked on h, taken off the queue (h has one). */
static Req *park_pop(Host *h) {
  Req *r = h->park_head;
  h->park_head = r->next;
  if (!h->park_head) h->park_tail = NULL;
  h->parked--;
  r->next = NULL;
  return r;
}

/* Start parked requests while the host's cap and bucket allow. */
void http_dispatch(Host *h) {
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
    start(park_pop(h));
  }
}

void http_submit(Req *r) {
  Host *h = r->host;
  live_add(r);
  r->next = NULL;
  if (h->park_tail) h->park_tail->next = r;
  else h->park_head = r;
  h->park_tail = r;
  h->parked++;
  http_dispatch(h);
}

void http_finished(Req *r) {
  sched_transfer_stop(r->easy);
  live_remove(r);
  r->in_flight = 0;
  r->host->inflight--;
  if (r->result != CURLE_OK) r->host->failures++;
}

void http_withdraw(Req *r) {
  Host *h = r->host;
  live_remove(r);
  if (r->in_flight) {
    sched_transfer_stop(r->easy);
    h->inflight--;
    r->in_flight = 0;
    http_dispatch(h);
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
  r->next = NULL;
}

/* http.limit(host, {concurrency=N, rate=R, burst=B}) */
/* The host argument at idx ("host:port" or a URL): its key, in out. */
static void host_arg(lua_State *L, int idx, char *out, size_t size) {
  const char *h = luaL_checkstring(L, idx);
  if (strstr(h, "://")) url_hostkey(h, out, size);
  else {
    snprintf(out, size, "%s", h);
    for (char *c = out; *c; c++) *c = (char)tolower((unsigned char)*c);
  }
  luaL_argcheck(L, out[0], idx, "expected host:port or a URL");
}

int http_l_limit(lua_State *L) {
  char key[300];
  host_arg(L, 1, key, sizeof key);
  luaL_checktype(L, 2, LUA_TTABLE);
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
  http_dispatch(ho);
  return 0;
}

/* http.drop(host or URL, message) -> n: every request parked for the host (held back by its
 * limits, not sent) ends at once with nil, message, "dropped"; those in flight go on. Why: a
 * caller that gave up on an API (a circuit breaker) must not have the queue it built up sent
 * after it, yet the queue should sit here, so that a finished transfer starts the next one at
 * once instead of after a round through Lua. */
int http_l_drop(lua_State *L) {
  char key[300];
  host_arg(L, 1, key, sizeof key);
  const char *msg = luaL_checkstring(L, 2);
  Host *ho = host_find(key);
  lua_Integer n = 0;
  while (ho && ho->park_head) {
    Req *r = park_pop(ho);
    live_remove(r);
    r->dropped = 1;
    snprintf(r->errbuf, sizeof r->errbuf, "%s", msg);
    n++;
    http_wake_waiter(r);
  }
  lua_pushinteger(L, n);
  return 1;
}

/* http.stats() -> {["host:port"] = {inflight, max_inflight, requests, failures, parked}} */
int http_l_stats(lua_State *L) {
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

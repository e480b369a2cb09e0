/* metasync.http's internals shared by http.c (requests, responses) and http_host.c (hosts, the
 * per-host limiter, the list of requests the loop owns). */
#ifndef METASYNC_HTTP_H
#define METASYNC_HTTP_H

#include "sched.h"

#include <lua.h>

typedef struct Buf {
  char *p;
  size_t len, cap;
} Buf;

typedef struct Host Host;

enum { PROF_CAFILE, PROF_CERT, PROF_KEY, PROF_PROXY, PROF_N };

typedef struct Req {
  CURL *easy;                 /* kept (with its options) while the Req sits in the free list */
  struct curl_slist *nodes;   /* the header list: nodes pointing into `lines` */
  size_t nodecap;
  Buf lines, body, head;
  char *prof[PROF_N];         /* TLS/proxy options the handle carries now (NULL: default) */
  int insecure;               /* 2: not known (a copy failed): reset before the next use */
  int mstate;                 /* method options the handle carries now (http.c) */
  int ua;                     /* CURLOPT_USERAGENT is set (requests through a proxy) */
  size_t max_body;
  int too_big;
  int dropped;                /* never sent: ended by http.drop, its message in errbuf */
  char method[16];
  char errbuf[CURL_ERROR_SIZE];
  CURLcode result;
  Host *host;
  struct Req *next;                  /* parked list, or the free list */
  struct Req *live_prev, *live_next; /* every request handed to the loop, for cleanup at exit */
  int in_flight;
  double started;
  /* who waits: a task (woken with the response) or a blocking caller (polls `done`) */
  Task *waiter;
  unsigned gen;
  int pin;
  volatile int done;
} Req;

/* The Host for a URL ("host:port" lowercased, the scheme's default port), or NULL when the URL
 * is malformed (or out of memory). */
Host *http_host_for_url(const char *url);
/* Hand r to the loop: parked behind its host's limits, started when they allow. */
void http_submit(Req *r);
/* Take r out of the machinery before its owner gives up on it (interrupted blocking call). */
void http_withdraw(Req *r);
/* r's transfer ended (before its waiter hears of it): off the multi handle and the host's count. */
void http_finished(Req *r);
/* Start what is parked on h as far as its limits allow. */
void http_dispatch(Host *h);
/* At exit: the next request the loop still owns (taken off the list), then the hosts. */
Req *http_live_pop(void);
void http_hosts_free(void);
/* r is over (answered, or never sent): wakes whoever waits for it, and recycles it (http.c). */
void http_wake_waiter(Req *r);
int http_l_limit(lua_State *L);
int http_l_drop(lua_State *L);
int http_l_stats(lua_State *L);

#endif

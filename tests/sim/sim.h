/* metasync-sim: interfaces between the C host's parts. The endpoints themselves are all Lua;
 * C only moves requests in and responses out, keeps time and counts requests in flight. */
#ifndef METASYNC_SIM_H
#define METASYNC_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include <microhttpd.h>

/* Largest request body handed to Lua; larger uploads are answered 413 without calling Lua. */
#define SIM_MAX_BODY ((size_t)8 << 20)
/* Memory MHD may use per connection; the request line and headers must fit in it, so it bounds
 * the URL length (beyond it MHD answers 414, or 431 for headers, with its own HTML page). */
#define SIM_CONN_MEMORY ((size_t)256 << 10)
/* Longest delay a handler may ask for (ms): keeps a typo from parking a connection for days. */
#define SIM_MAX_DELAY_MS 600000u

/* sim_mod.c: the native "sim" module and the in-flight counters it reports. */
int luaopen_sim(lua_State *L);
void sim_inflight_enter(void);
void sim_inflight_leave(void);

/* sim_timer.c: resumes suspended connections when their delay is over, off the MHD threads. */
int sim_timer_start(void);
/* CLOCK_MONOTONIC now, in nanoseconds. */
uint64_t sim_now_ns(void);
/* Resumes conn at due_ns (sim_now_ns's clock). The connection must already be suspended. */
void sim_timer_add(struct MHD_Connection *conn, uint64_t due_ns);
/* Resumes everything still waiting (and anything added later) and joins the thread. */
void sim_timer_stop(void);

/* sim_tls.c: HTTPS with a server certificate, optionally demanding a client certificate. */
struct sim_tls {
  bool on;
  char *cert, *key, *client_ca; /* PEM text, NUL-terminated */
};
/* All NULL: plain HTTP (returns 0). Otherwise loads the files; returns 0, or prints the reason
 * and returns an exit code. */
int sim_tls_load(struct sim_tls *t, const char *cert, const char *key, const char *client_ca);
void sim_tls_free(struct sim_tls *t);
/* Fills out[] (room for max >= 5 items) with the daemon's TLS options, MHD_OPTION_END last;
 * returns how many come before the end (0 without TLS). */
size_t sim_tls_options(const struct sim_tls *t, struct MHD_OptionItem *out, size_t max);
/* With a client CA: whether the connection's client presented a certificate it vouches for. */
bool sim_tls_peer_ok(const struct sim_tls *t, struct MHD_Connection *conn);

/* sim_lua.c: the one lua_State, serialised by a mutex. */
struct sim_listen {
  char host[64];
  int sectigo_port;   /* 0: any free port */
  int keyfactor_port; /* 0: any free port, -1: no Keyfactor daemon */
};

/* Returns 0, or prints the reason and returns the exit code. */
int simlua_open(const char *lua_dir, const char *handler_file);
/* Calls M.init(args). Returns 0 (out filled), -1 when init returned nil (help was shown: exit 0),
 * or an exit code after printing the error. */
int simlua_init(int argc, char **argv, struct sim_listen *out);
void simlua_close(void);
/* The Lua heap in KiB, and one incremental step of the collector, of the work kb KiB of
 * allocation pays for (0: a basic step); 1 when that step ended a cycle. The worker runs the
 * collector between requests (sim_worker.c). */
size_t simlua_heap_kb(void);
int simlua_gc_step(int kb);

struct sim_request {
  struct MHD_Connection *conn;
  const char *api, *method, *path;
  const char *query; /* raw, without '?' */
  size_t query_len;
  const char *body;
  size_t body_len;
  /* results */
  struct MHD_Response *resp; /* NULL only when out of memory */
  unsigned status;
  unsigned delay_ms;
};
void simlua_dispatch(struct sim_request *rq);

/* sim_worker.c: the thread that runs the Lua of every request, so that MHD's threads never wait
 * on Lua. A job is a request whose connection its access handler has suspended. */
struct sim_job {
  struct sim_request rq;
  uint64_t arrived_ns; /* the answer is due at arrived_ns + rq.delay_ms */
  struct sim_job *next;
};
int sim_worker_start(void);
/* Runs the request's Lua, then resumes the connection when the answer is due, with rq.resp
 * set, or NULL for no answer (out of memory, or the simulator is stopping). */
void sim_worker_submit(struct sim_job *j);
/* Finishes the request being run; those still queued are resumed with no answer. */
void sim_worker_stop(void);

/* A JSON error response {"error": msg} (msg is escaped); NULL when out of memory. */
struct MHD_Response *sim_error_response(const char *msg, size_t len);

#endif

/* metasync-sim: a local simulator of the Sectigo and Keyfactor REST APIs.
 * C is the HTTP plumbing (libmicrohttpd, one daemon per API); every endpoint is Lua. Usage:
 *   metasync-sim [--handler FILE] [--tls-cert F --tls-key F [--tls-client-ca F]] [Lua options...]
 * Prints one JSON line with the base URLs once listening; runs until SIGINT/SIGTERM. */
#include "sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SIM_LUA_DIR
#define SIM_LUA_DIR "tests/sim/lua"
#endif

enum { RQ_NEW, RQ_BODY, RQ_WAITING };

/* One per request, created when the request line arrives (URI log callback) and freed when MHD
 * reports the request completed. */
struct request {
  int state;
  bool too_big;
  struct sim_job job; /* while RQ_WAITING: with the Lua worker, then the answer it gave */
  char *body;
  size_t len, cap;
  size_t query_len;
  uint64_t arrived_ns; /* when the request line came in: a delay counts from here */
  char query[]; /* raw query string, NUL-terminated */
};

struct server {
  const char *api;
  bool plain; /* a --handler server: no vendor error shape */
  const struct sim_tls *tls;
  struct MHD_Daemon *daemon;
  struct MHD_Response *too_large; /* shared 413: responses are reference counted */
  unsigned port;
};

static struct request *request_new(const char *uri)
{
  const char *q = uri ? strchr(uri, '?') : NULL;
  size_t qlen = q ? strlen(q + 1) : 0;
  struct request *r = malloc(sizeof *r + qlen + 1);
  if (!r)
    return NULL;
  memset(r, 0, sizeof *r);
  r->query_len = qlen;
  if (qlen)
    memcpy(r->query, q + 1, qlen);
  r->query[qlen] = '\0';
  r->arrived_ns = sim_now_ns();
  sim_inflight_enter();
  return r;
}

/* MHD_OPTION_URI_LOG_CALLBACK: sees the raw URI (the access handler only gets the decoded
 * path), and what it returns becomes the request's context. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
  (void)cls, (void)conn;
  return request_new(uri);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
  (void)cls, (void)conn, (void)toe;
  struct request *r = *req_cls;
  if (!r)
    return;
  if (r->job.rq.resp)
    MHD_destroy_response(r->job.rq.resp);
  free(r->body);
  free(r);
  *req_cls = NULL;
  sim_inflight_leave();
}

static bool append_body(struct request *r, const char *data, size_t n)
{
  if (r->too_big || n > SIM_MAX_BODY - r->len) {
    r->too_big = true;
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
    return true;
  }
  if (r->len + n > r->cap) {
    size_t cap = r->cap ? r->cap : 4096;
    while (cap < r->len + n)
      cap *= 2;
    if (cap > SIM_MAX_BODY)
      cap = SIM_MAX_BODY;
    char *b = realloc(r->body, cap);
    if (!b)
      return false;
    r->body = b;
    r->cap = cap;
  }
  memcpy(r->body + r->len, data, n);
  r->len += n;
  return true;
}

static enum MHD_Result queue(struct MHD_Connection *conn, unsigned status,
                             struct MHD_Response *resp)
{
  if (!resp)
    return MHD_NO; /* out of memory: MHD drops the connection */
  return MHD_queue_response(conn, status, resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
  struct server *srv = cls;
  struct request *r = *req_cls;
  (void)version;
  if (!r) { /* MHD skipped the URI callback; should not happen, but cope */
    r = request_new(NULL);
    if (!r)
      return MHD_NO;
    *req_cls = r;
  }

  if (r->state == RQ_NEW) {
    r->state = RQ_BODY;
    /* Second line of defence behind the handshake: no answer without a vouched-for client. */
    if (!sim_tls_peer_ok(srv->tls, conn)) {
      fprintf(stderr, "metasync-sim: %s: client certificate missing or not trusted\n", srv->api);
      return MHD_NO;
    }
    /* Refuse an announced oversized body before reading it (no 100 Continue is sent). */
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
      errno = 0;
      char *end;
      unsigned long long n = strtoull(cl, &end, 10);
      if (errno == 0 && end != cl && n > SIM_MAX_BODY)
        return queue(conn, MHD_HTTP_CONTENT_TOO_LARGE, srv->too_large);
    }
    return MHD_YES;
  }

  if (*upload_data_size) {
    if (!append_body(r, upload_data, *upload_data_size))
      return MHD_NO;
    *upload_data_size = 0;
    return MHD_YES;
  }

  if (r->state == RQ_WAITING) { /* resumed by the worker or the delay timer */
    struct MHD_Response *resp = r->job.rq.resp;
    r->job.rq.resp = NULL;
    free(r->body); /* Lua has read it */
    r->body = NULL;
    r->len = r->cap = 0;
    enum MHD_Result ret = queue(conn, r->job.rq.status, resp);
    if (resp)
      MHD_destroy_response(resp);
    return ret;
  }

  if (r->too_big)
    return queue(conn, MHD_HTTP_CONTENT_TOO_LARGE, srv->too_large);

  /* The request and body stay where they are (MHD keeps the path and headers while the
   * connection is suspended) until the worker's answer is sent. */
  r->job = (struct sim_job){
      .rq =
          {
              .conn = conn,
              .api = srv->api,
              .method = method,
              .path = url,
              .query = r->query,
              .query_len = r->query_len,
              .body = r->body,
              .body_len = r->len,
          },
      .arrived_ns = r->arrived_ns,
  };
  r->state = RQ_WAITING;
  MHD_suspend_connection(conn);
  sim_worker_submit(&r->job);
  return MHD_YES;
}

/* ---- daemons ---- */

/* The 413 never reaches Lua (the body was not kept), so C answers it, in the error shape of the
 * API the port simulates: a client's error handling sees what the vendor would send. */
static struct MHD_Response *too_large_response(const struct server *srv)
{
  static const char sectigo[] =
      "{\"code\":-1,\"description\":\"Request body exceeds the 8 MiB limit.\"}";
  static const char keyfactor[] =
      "{\"ErrorCode\":\"0xA0110000\",\"Message\":\"Request body exceeds the 8 MiB limit.\"}";
  static const char plain[] = "{\"error\":\"request body larger than 8 MiB\"}";
  const char *body = srv->plain                        ? plain
                     : strcmp(srv->api, "keyfactor") == 0 ? keyfactor
                                                          : sectigo;
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
  if (r && (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                    "application/json;charset=UTF-8") != MHD_YES ||
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES)) {
    MHD_destroy_response(r);
    r = NULL;
  }
  return r;
}

/* MHD's own complaints (malformed requests, faults we injected) go to stderr, marked as such. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
  (void)cls;
  fputs("metasync-sim: mhd: ", stderr);
  vfprintf(stderr, fmt, ap);
}

static bool start_server(struct server *srv, const char *host, int port)
{
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  /* poll rather than epoll: with epoll, libmicrohttpd 0.9.75 can miss a client's FIN that
   * arrives together with a partial request, leaving the request "in flight" until the
   * connection timeout and skewing the in-flight counts tests rely on. poll is plenty fast. */
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME |
                   MHD_USE_ERROR_LOG;
  struct sockaddr_in *in = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
  if (strcmp(host, "localhost") == 0)
    host = "127.0.0.1";
  if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
  } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    flags |= MHD_USE_IPv6;
  } else {
    fprintf(stderr, "metasync-sim: invalid host address %s (a numeric IP expected)\n", host);
    return false;
  }
  srv->too_large = too_large_response(srv);
  if (!srv->too_large) {
    fprintf(stderr, "metasync-sim: out of memory\n");
    return false;
  }
  struct MHD_OptionItem tls_opts[6];
  if (sim_tls_options(srv->tls, tls_opts, 6) > 0)
    flags |= MHD_USE_TLS;
  srv->daemon = MHD_start_daemon(
      flags, (uint16_t)port, NULL, NULL, on_request, srv,
      MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
      MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)2048,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SIM_CONN_MEMORY,
      MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
      MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2,
      MHD_OPTION_ARRAY, tls_opts,
      MHD_OPTION_END);
  if (!srv->daemon) {
    fprintf(stderr, "metasync-sim: cannot listen on %s port %d for %s\n", host, port, srv->api);
    return false;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
  srv->port = di ? di->port : (unsigned)port;
  return true;
}

/* The installed layout keeps the Lua code in <prefix>/share/metasync/sim. */
static void lua_dir(char *out, size_t size)
{
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) {
      *slash = '\0';
      struct stat st;
      /* bin/ (an older layout) or libexec/metasync/, where it is installed now. */
      const char *rel[] = {"/../share/metasync/sim", "/../../share/metasync/sim"};
      for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
        int k = snprintf(out, size, "%s%s", exe, rel[i]);
        if (k > 0 && (size_t)k < size && stat(out, &st) == 0 && S_ISDIR(st.st_mode))
          return;
      }
    }
  }
  snprintf(out, size, "%s", SIM_LUA_DIR);
}

/* 1024 descriptors is the usual soft limit; hundreds of concurrent test clients need more. */
static void raise_fd_limit(void)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static void format_host(char *out, size_t size, const char *host)
{
  if (strcmp(host, "localhost") == 0)
    host = "127.0.0.1";
  snprintf(out, size, strchr(host, ':') ? "[%s]" : "%s", host);
}

/* Options the host itself takes, "--name VALUE" or "--name=VALUE". Returns 1 when argv[*i] is
 * NAME (value stored, *i advanced), 0 when it is not, -1 when the value is missing. */
static int host_option(char **argv, int argc, int *i, const char *name, const char **value)
{
  size_t n = strlen(name);
  if (strncmp(argv[*i], name, n) != 0)
    return 0;
  if (argv[*i][n] == '=' && argv[*i][n + 1] != '\0') {
    *value = argv[*i] + n + 1;
    return 1;
  }
  if (argv[*i][n] != '\0')
    return 0;
  if (*i + 1 >= argc || argv[*i + 1][0] == '\0') {
    fprintf(stderr, "metasync-sim: %s needs a file\n", name);
    return -1;
  }
  *value = argv[++*i];
  return 1;
}

int main(int argc, char **argv)
{
  const char *handler = NULL, *tls_cert = NULL, *tls_key = NULL, *tls_ca = NULL;
  char **args = calloc((size_t)argc + 1, sizeof *args);
  int nargs = 0;
  if (!args)
    return 1;
  for (int i = 1; i < argc; i++) {
    int k = host_option(argv, argc, &i, "--handler", &handler);
    if (!k)
      k = host_option(argv, argc, &i, "--tls-cert", &tls_cert);
    if (!k)
      k = host_option(argv, argc, &i, "--tls-key", &tls_key);
    if (!k)
      k = host_option(argv, argc, &i, "--tls-client-ca", &tls_ca);
    if (k < 0) {
      free(args);
      return 64;
    }
    if (!k)
      args[nargs++] = argv[i];
  }
  static struct sim_tls tls;
  int trc = sim_tls_load(&tls, tls_cert, tls_key, tls_ca);
  if (trc != 0) {
    free(args);
    return trc;
  }

  char dir[PATH_MAX];
  lua_dir(dir, sizeof dir);
  int rc = simlua_open(dir, handler);
  if (rc != 0) {
    simlua_close();
    sim_tls_free(&tls);
    free(args);
    return rc;
  }
  struct sim_listen listen = {"127.0.0.1", 0, -1};
  rc = simlua_init(nargs, args, &listen);
  free(args);
  if (rc != 0) {
    simlua_close();
    sim_tls_free(&tls);
    return rc < 0 ? 0 : rc;
  }

  /* Only the main thread takes SIGINT/SIGTERM (via sigwait): block them before any thread
   * exists so every thread inherits the mask. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  /* An inherited "ignore" would make sigwait miss SIGTERM; SIGINT stays as the parent wants it
   * (shells ignore it in background jobs). */
  signal(SIGTERM, SIG_DFL);
  signal(SIGPIPE, SIG_IGN);
#ifdef __linux__
  /* When a program reads our ready line through a pipe, we are its helper: should it lose
   * track of us (kill a wrapper shell rather than us), go when the parent goes instead of
   * lingering with its pipes open. Started from a terminal or into a file, we stay. */
  struct stat out;
  if (fstat(STDOUT_FILENO, &out) == 0 && S_ISFIFO(out.st_mode)) {
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
      raise(SIGTERM);
  }
#endif
  raise_fd_limit();

  if (sim_timer_start() != 0 || sim_worker_start() != 0) {
    sim_timer_stop();
    fprintf(stderr, "metasync-sim: out of resources at startup\n");
    simlua_close();
    sim_tls_free(&tls);
    return 1;
  }

  struct server servers[2] = {{.api = "sectigo", .plain = handler != NULL, .tls = &tls},
                              {.api = "keyfactor", .plain = handler != NULL, .tls = &tls}};
  int nservers = listen.keyfactor_port >= 0 ? 2 : 1;
  bool ok = start_server(&servers[0], listen.host, listen.sectigo_port);
  if (ok && nservers == 2)
    ok = start_server(&servers[1], listen.host, listen.keyfactor_port);

  if (ok) {
    char host[80];
    format_host(host, sizeof host, listen.host);
    const char *scheme = tls.on ? "https" : "http";
    if (nservers == 2)
      printf("{\"sectigo\":\"%s://%s:%u\",\"keyfactor\":\"%s://%s:%u/KeyfactorAPI\"}\n", scheme,
             host, servers[0].port, scheme, host, servers[1].port);
    else
      printf("{\"sectigo\":\"%s://%s:%u\"}\n", scheme, host, servers[0].port);
    fflush(stdout);
    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
  }

  /* Parked connections must be resumed before MHD_stop_daemon, which refuses suspended ones:
   * the worker's first (those it hands to the timer are resumed by the timer's stop). */
  sim_worker_stop();
  sim_timer_stop();
  for (int i = 0; i < nservers; i++) {
    if (servers[i].daemon)
      MHD_stop_daemon(servers[i].daemon);
    if (servers[i].too_large)
      MHD_destroy_response(servers[i].too_large);
  }
  simlua_close();
  sim_tls_free(&tls);
  return ok ? 0 : 1;
}

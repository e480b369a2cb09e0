/*
 * The event loop under the scheduler: C timers (a min-heap) and the curl multi handle driven
 * through its socket interface on epoll, so a turn only touches the sockets that had activity.
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when it next wants to be
 * called without socket activity (CURLMOPT_TIMERFUNCTION); a turn waits in epoll_wait for the
 * earliest of: socket activity, curl's deadline, the first C timer, or the wake-up eventfd that
 * sched_interrupt writes from a signal handler.
 */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  double when;
  unsigned long id;
  sched_timer_fn fn;
  void *arg;
} Timer;

static struct {
  CURLM *multi;
  int epfd, wakefd;     /* -1 until loop_init */
  void (*on_done)(CURLMsg *);
  int transfers;        /* easy handles on the multi handle */
  int peak;             /* most transfers at once, for the connection cache size */
  double curl_deadline; /* when curl wants a timeout call; < 0: none */
  int timer_changed;    /* set by the timer callback, to tell a stale deadline */
  int delivering;       /* inside deliver_done: finished transfers are being handed out */
  Timer *timers;
  size_t ntimers, captimers;
  size_t live_timers;   /* timers in the heap that still have a callback */
  unsigned long next_timer_id;
} L = {.epfd = -1, .wakefd = -1, .curl_deadline = -1};

double sched_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sched_set_done_handler(void (*fn)(CURLMsg *msg)) { L.on_done = fn; }

/* ---- curl's socket and timer callbacks ---- */

/* What the epoll set holds for each descriptor curl gave us, indexed by descriptor. */
enum { FD_REG = 1, FD_WANT = 2, FD_OURS = 4, FD_IN = 8, FD_OUT = 16 };
static unsigned char *fdst;
static size_t fdcap;

static unsigned char *fd_state(curl_socket_t s) {
  if (s < 0 || L.epfd < 0) return NULL;
  if ((size_t)s >= fdcap) {
    size_t cap = fdcap ? fdcap : 256;
    while (cap <= (size_t)s) cap *= 2;
    unsigned char *n = realloc(fdst, cap);
    if (!n) return NULL;
    memset(n + fdcap, 0, cap - fdcap);
    fdst = n;
    fdcap = cap;
  }
  return &fdst[s];
}

/* Sockets curl opens through here are "ours": we see them closed (on_close_socket), so when a
 * connection goes idle it can stay in the epoll set, and going back to work costs no system
 * call. Any other descriptor (a resolver's pipe) is added and removed as curl says. */
static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a) {
  (void)clientp;
  (void)purpose;
  curl_socket_t s = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
  unsigned char *st = fd_state(s);
  if (st) *st = FD_OURS;
  else if (s >= 0) {
    close(s); /* no memory to track it */
    return CURL_SOCKET_BAD;
  }
  return s;
}

static int on_close_socket(void *clientp, curl_socket_t s) {
  (void)clientp;
  unsigned char *st = fd_state(s);
  if (st) {
    if (*st & FD_REG) epoll_ctl(L.epfd, EPOLL_CTL_DEL, s, NULL);
    *st = 0;
  }
  return close(s);
}

void sched_prepare_easy(CURL *e) {
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
}

static void fd_del(curl_socket_t s, unsigned char *st) {
  epoll_ctl(L.epfd, EPOLL_CTL_DEL, s, NULL); /* may be gone with a closed descriptor already */
  *st &= FD_OURS;
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
  (void)e;
  (void)userp;
  (void)socketp;
  unsigned char *st = fd_state(s);
  if (!st) return -1;
  if (what == CURL_POLL_REMOVE) {
    if (!(*st & FD_OURS)) {
      if (*st & FD_REG) fd_del(s, st);
    } else {
      *st &= (unsigned char)~FD_WANT; /* stays in the set until it is closed or stirs */
    }
    return 0;
  }
  unsigned char ev = (what & CURL_POLL_IN ? FD_IN : 0) | (what & CURL_POLL_OUT ? FD_OUT : 0);
  struct epoll_event ee = {0};
  ee.events = (ev & FD_IN ? EPOLLIN : 0) | (ev & FD_OUT ? EPOLLOUT : 0);
  ee.data.fd = s;
  if (!(*st & FD_REG)) {
    if (epoll_ctl(L.epfd, EPOLL_CTL_ADD, s, &ee) != 0 && errno == EEXIST)
      epoll_ctl(L.epfd, EPOLL_CTL_MOD, s, &ee);
  } else if ((*st & (FD_IN | FD_OUT)) != ev) {
    if (epoll_ctl(L.epfd, EPOLL_CTL_MOD, s, &ee) != 0 && errno == ENOENT)
      epoll_ctl(L.epfd, EPOLL_CTL_ADD, s, &ee);
  }
  *st = (unsigned char)((*st & FD_OURS) | FD_REG | FD_WANT | ev);
  return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *userp) {
  (void)m;
  (void)userp;
  L.curl_deadline = timeout_ms < 0 ? -1 : sched_now() + (double)timeout_ms / 1000.0;
  L.timer_changed = 1;
  return 0;
}

/* The epoll set and the wake-up eventfd (made when the scheduler opens, so that an interrupt can
 * always wake the loop). */
void loop_init(void) {
  if (L.wakefd >= 0) return;
  L.epfd = epoll_create1(EPOLL_CLOEXEC);
  L.wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (L.epfd < 0 || L.wakefd < 0) abort(); /* out of descriptors before anything ran */
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = L.wakefd};
  epoll_ctl(L.epfd, EPOLL_CTL_ADD, L.wakefd, &ev);
}

/* The multi handle: made on first use. */
CURLM *sched_multi(void) {
  if (!L.multi) {
    loop_init();
    L.multi = curl_multi_init();
    if (!L.multi) abort();
    curl_multi_setopt(L.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(L.multi, CURLMOPT_TIMERFUNCTION, on_timer);
    L.curl_deadline = -1;
  }
  return L.multi;
}

void sched_transfer_start(CURL *e) {
  sched_multi();
  L.transfers++;
  /* curl's default connection cache holds 4 connections per easy handle added *now*: a dip in the
   * number of transfers closes idle connections that the next burst has to open again. Keep room
   * for twice the most transfers seen at once (at least 16). */
  if (L.transfers > L.peak) {
    L.peak = L.transfers;
    curl_multi_setopt(L.multi, CURLMOPT_MAXCONNECTS, L.peak < 8 ? 16L : (long)L.peak * 2);
  }
  curl_multi_add_handle(L.multi, e);
  /* curl starts a new transfer on its next timeout call, which would come only after every task
   * ready in this turn has run: start it now, so the request leaves as soon as it is made. Not
   * while finished transfers are handed out, though: one finishing there starts the next queued
   * one, and driving curl then could finish and replace others in a chain before any task has
   * seen an answer (a circuit breaker among them), so those wait for this turn's timeout call. */
  if (!L.delivering) {
    int running;
    curl_multi_socket_action(L.multi, CURL_SOCKET_TIMEOUT, 0, &running);
  }
}

void sched_transfer_stop(CURL *e) {
  curl_multi_remove_handle(L.multi, e);
  L.transfers--;
}

/* Async-signal-safe. */
void loop_wakeup(void) {
  if (L.wakefd >= 0) {
    uint64_t one = 1;
    ssize_t n = write(L.wakefd, &one, sizeof one);
    (void)n; /* a full counter already wakes the loop */
  }
}

/* ---- timers: a binary min-heap on `when` ---- */

static void heap_swap(size_t a, size_t b) {
  Timer t = L.timers[a];
  L.timers[a] = L.timers[b];
  L.timers[b] = t;
}

static void heap_down(size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < L.ntimers && L.timers[l].when < L.timers[m].when) m = l;
    if (r < L.ntimers && L.timers[r].when < L.timers[m].when) m = r;
    if (m == i) return;
    heap_swap(i, m);
    i = m;
  }
}

unsigned long sched_timer_add(double delay_s, sched_timer_fn fn, void *arg) {
  if (L.ntimers == L.captimers) {
    size_t cap = L.captimers ? L.captimers * 2 : 64;
    Timer *nt = realloc(L.timers, cap * sizeof *nt);
    if (!nt) abort(); /* out of memory in the loop itself: nothing sensible left to do */
    L.timers = nt;
    L.captimers = cap;
  }
  size_t i = L.ntimers++;
  L.timers[i] = (Timer){sched_now() + (delay_s > 0 ? delay_s : 0), ++L.next_timer_id, fn, arg};
  L.live_timers++;
  while (i > 0 && L.timers[(i - 1) / 2].when > L.timers[i].when) {
    heap_swap(i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
  return L.next_timer_id;
}

/* A cancelled timer stays in the heap with no callback and is dropped when due. */
void sched_timer_cancel(unsigned long id) {
  for (size_t i = 0; i < L.ntimers; i++)
    if (L.timers[i].id == id && L.timers[i].fn) {
      L.timers[i].fn = NULL;
      L.live_timers--;
    }
}

void loop_fire_timers(void) {
  if (L.ntimers == 0) return;
  double now = sched_now();
  while (L.ntimers > 0 && L.timers[0].when <= now) {
    Timer t = L.timers[0];
    L.timers[0] = L.timers[--L.ntimers];
    heap_down(0);
    if (t.fn) {
      L.live_timers--;
      t.fn(t.arg);
    }
  }
}

int loop_idle(void) { return L.transfers == 0 && L.live_timers == 0; }

/* ---- one turn ---- */

/* Milliseconds from now until `when`, rounded up so the wait does not end just short of it. */
static int ms_until(double when, double now, int cap) {
  double d = (when - now) * 1000.0;
  if (d <= 0) return 0;
  return d < cap ? (int)d + 1 : cap;
}

static void deliver_done(void) {
  CURLMsg *m;
  int left;
  L.delivering = 1;
  while ((m = curl_multi_info_read(L.multi, &left)))
    if (m->msg == CURLMSG_DONE && L.on_done) L.on_done(m);
  L.delivering = 0;
}

void loop_pump(int block) {
  loop_init();
  int running;
  int timeout = 0;
  if (block) {
    double now = sched_now();
    timeout = 1000;
    if (L.ntimers > 0) timeout = ms_until(L.timers[0].when, now, timeout);
    if (L.curl_deadline >= 0) timeout = ms_until(L.curl_deadline, now, timeout);
  }
  struct epoll_event ev[64];
  int n = epoll_wait(L.epfd, ev, 64, timeout);
  for (int i = 0; i < n; i++) {
    int fd = ev[i].data.fd;
    if (fd == L.wakefd) {
      uint64_t v;
      ssize_t r = read(L.wakefd, &v, sizeof v);
      (void)r;
      continue;
    }
    unsigned char *st = fd_state(fd);
    if (st && !(*st & FD_WANT)) {
      fd_del(fd, st); /* an idle connection stirred (the server closed it): curl will see */
      continue;
    }
    uint32_t e = ev[i].events;
    int flags = (e & EPOLLIN ? CURL_CSELECT_IN : 0) | (e & EPOLLOUT ? CURL_CSELECT_OUT : 0);
    /* An error or hang-up shows on whichever direction curl is using, as poll() reports it. */
    if (e & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_IN | CURL_CSELECT_OUT;
    curl_multi_socket_action(L.multi, fd, flags, &running);
  }
  if (L.multi && L.curl_deadline >= 0 && sched_now() >= L.curl_deadline) {
    L.timer_changed = 0;
    curl_multi_socket_action(L.multi, CURL_SOCKET_TIMEOUT, 0, &running);
    /* curl only calls the timer callback when its first expiry changes: if it did not, the one we
     * have was a hair early, so look again in a millisecond rather than spin. */
    if (!L.timer_changed) L.curl_deadline = sched_now() + 0.001;
  }
  if (L.multi) deliver_done();
}

void loop_close(void (*each_timer)(sched_timer_fn fn, void *arg)) {
  if (L.multi) curl_multi_cleanup(L.multi);
  L.multi = NULL;
  L.transfers = L.peak = 0;
  L.curl_deadline = -1;
  free(fdst);
  fdst = NULL;
  fdcap = 0;
  if (L.epfd >= 0) close(L.epfd);
  if (L.wakefd >= 0) close(L.wakefd);
  L.epfd = L.wakefd = -1;
  for (size_t i = 0; i < L.ntimers; i++)
    if (L.timers[i].fn && each_timer) each_timer(L.timers[i].fn, L.timers[i].arg);
  free(L.timers);
  L.timers = NULL;
  L.ntimers = L.captimers = L.live_timers = 0;
}

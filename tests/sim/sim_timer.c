/* Delayed responses: the access handler suspends the connection and registers it here; this
 * thread resumes it when due, so a slow answer never holds an MHD thread (or the Lua lock). */
#include "sim.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct timer {
  uint64_t due; /* CLOCK_MONOTONIC nanoseconds */
  uint64_t seq; /* keeps equal deadlines first-in first-out */
  struct MHD_Connection *conn;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake;
static pthread_t thread;
static bool running, stopping;
static struct timer *heap; /* binary min-heap on (due, seq) */
static size_t count, cap;
static uint64_t next_seq;

uint64_t sim_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool earlier(const struct timer *a, const struct timer *b)
{
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void sift_up(size_t i)
{
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!earlier(&heap[i], &heap[parent]))
      break;
    struct timer t = heap[i];
    heap[i] = heap[parent];
    heap[parent] = t;
    i = parent;
  }
}

static void sift_down(size_t i)
{
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < count && earlier(&heap[l], &heap[m]))
      m = l;
    if (r < count && earlier(&heap[r], &heap[m]))
      m = r;
    if (m == i)
      return;
    struct timer t = heap[i];
    heap[i] = heap[m];
    heap[m] = t;
    i = m;
  }
}

static struct MHD_Connection *pop(void)
{
  struct MHD_Connection *c = heap[0].conn;
  heap[0] = heap[--count];
  sift_down(0);
  return c;
}

static void *timer_main(void *arg)
{
  (void)arg;
  pthread_mutex_lock(&lock);
  for (;;) {
    if (count > 0 && (stopping || heap[0].due <= sim_now_ns())) {
      struct MHD_Connection *c = pop();
      /* Resuming only flags the connection and pokes MHD's inter-thread channel: cheap, and
       * safe to do with our lock held (MHD never calls back into us from resume). */
      MHD_resume_connection(c);
      continue;
    }
    if (stopping)
      break;
    if (count == 0) {
      pthread_cond_wait(&wake, &lock);
    } else {
      uint64_t due = heap[0].due;
      struct timespec ts = {(time_t)(due / 1000000000u), (long)(due % 1000000000u)};
      pthread_cond_timedwait(&wake, &lock, &ts);
    }
  }
  pthread_mutex_unlock(&lock);
  return NULL;
}

int sim_timer_start(void)
{
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&wake, &attr);
  pthread_condattr_destroy(&attr);
  if (pthread_create(&thread, NULL, timer_main, NULL) != 0)
    return -1;
  running = true;
  return 0;
}

void sim_timer_add(struct MHD_Connection *conn, uint64_t due_ns)
{
  pthread_mutex_lock(&lock);
  if (stopping || !running) {
    pthread_mutex_unlock(&lock);
    MHD_resume_connection(conn);
    return;
  }
  if (count == cap) {
    size_t ncap = cap ? cap * 2 : 256;
    struct timer *n = realloc(heap, ncap * sizeof *n);
    if (!n) {
      /* Answering early beats leaving the client hanging forever. */
      pthread_mutex_unlock(&lock);
      fprintf(stderr, "metasync-sim: out of memory for a delay timer; answering at once\n");
      MHD_resume_connection(conn);
      return;
    }
    heap = n;
    cap = ncap;
  }
  heap[count] = (struct timer){due_ns, next_seq++, conn};
  sift_up(count++);
  if (heap[0].conn == conn)
    pthread_cond_signal(&wake);
  pthread_mutex_unlock(&lock);
}

void sim_timer_stop(void)
{
  pthread_mutex_lock(&lock);
  stopping = true;
  pthread_cond_signal(&wake);
  bool joinable = running;
  pthread_mutex_unlock(&lock);
  if (joinable)
    pthread_join(thread, NULL);
  pthread_mutex_lock(&lock);
  running = false;
  free(heap);
  heap = NULL;
  count = cap = 0;
  pthread_mutex_unlock(&lock);
}

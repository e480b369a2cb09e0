/* The Lua worker: one thread runs the Lua of every request, in arrival order; MHD's threads only
 * move bytes. An access handler that has a whole request suspends its connection and hands the
 * request here; once Lua has answered, the connection is resumed when the answer is due (at
 * once, or through the delay timer).
 *
 * Why a thread of its own: Lua allows one thread at a time, so while it built a big answer (a
 * 500-certificate page takes ~25 ms) or collected garbage, every MHD thread that took a new
 * request sat on the Lua lock, and with it every finished answer that thread should have sent.
 * Each such stall stretched the latency of all requests in flight. Now a slow answer delays only
 * the requests queued behind it, and a delay counts from the request's arrival, so up to the
 * latency asked for the time Lua takes is hidden in the latency instead of added to it. */
#include "sim.h"

#include <pthread.h>
#include <stdbool.h>

/* The garbage collector runs here too, between requests. Lua's own collector runs inside
 * whichever allocation trips it, so a request could wait for a whole step or, in generational
 * mode, for a major collection of the world (hundreds of MB at --certs 100000: stalls of 0.3 to
 * 2 s were seen, each holding up every request behind it). sim.lua stops the automatic collector;
 * the worker starts a cycle once the heap has grown by half since the last one ended and runs it
 * in small steps while no request waits. Should requests never leave it idle, each request pays
 * for what it allocated once the heap has doubled, so memory stays bounded either way. */
static size_t gc_base_kb;   /* the heap when the last cycle ended (0: not measured yet) */
static size_t gc_last_kb;   /* the heap after the previous request */
static bool gc_collecting;  /* a cycle is under way */

/* One step of the cycle under way, doing the work of kb KiB of allocation (0: a basic step). */
static void gc_step(int kb)
{
  if (simlua_gc_step(kb)) {
    gc_collecting = false;
    gc_base_kb = simlua_heap_kb();
  }
}

static void gc_check(void)
{
  size_t kb = simlua_heap_kb();
  if (gc_base_kb == 0)
    gc_base_kb = kb;
  size_t grown = kb > gc_last_kb ? kb - gc_last_kb : 0;
  if (!gc_collecting && kb > gc_base_kb + gc_base_kb / 2)
    gc_collecting = true;
  /* Past twice the base, each request pays for what it allocated, as Lua's own pacing would. */
  if (gc_collecting && kb > 2 * gc_base_kb) {
    gc_step(grown > 0x7fffffff ? 0x7fffffff : (int)grown);
    kb = simlua_heap_kb(); /* what the step freed is not growth */
  }
  gc_last_kb = kb;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_t thread;
static bool running, stopping;
static struct sim_job *head, *tail;

/* The answer is ready (or there is none): the connection goes on when the answer is due. */
static void release(struct sim_job *j)
{
  uint64_t due = j->arrived_ns + (uint64_t)j->rq.delay_ms * 1000000u;
  if (j->rq.resp && j->rq.delay_ms > 0 && due > sim_now_ns())
    sim_timer_add(j->rq.conn, due);
  else
    MHD_resume_connection(j->rq.conn);
}

static void *worker_main(void *arg)
{
  (void)arg;
  pthread_mutex_lock(&lock);
  for (;;) {
    while (!head && !stopping) {
      if (gc_collecting) { /* idle: collect, a step at a time, looking for requests between */
        pthread_mutex_unlock(&lock);
        gc_step(0);
        pthread_mutex_lock(&lock);
        continue;
      }
      pthread_cond_wait(&wake, &lock);
    }
    struct sim_job *j = head;
    if (!j)
      break; /* stopping, and nothing left */
    head = j->next;
    if (!head)
      tail = NULL;
    bool answer = !stopping;
    pthread_mutex_unlock(&lock);
    /* After a stop the requests still queued get no answer (their connections are dropped):
     * the process is going away. */
    if (answer)
      simlua_dispatch(&j->rq);
    release(j);
    gc_check();
    pthread_mutex_lock(&lock);
  }
  pthread_mutex_unlock(&lock);
  return NULL;
}

int sim_worker_start(void)
{
  if (pthread_create(&thread, NULL, worker_main, NULL) != 0)
    return -1;
  running = true;
  return 0;
}

void sim_worker_submit(struct sim_job *j)
{
  j->rq.resp = NULL;
  j->next = NULL;
  pthread_mutex_lock(&lock);
  if (stopping || !running) {
    pthread_mutex_unlock(&lock);
    release(j); /* no answer: the handler drops the connection */
    return;
  }
  if (tail)
    tail->next = j;
  else
    head = j;
  tail = j;
  pthread_cond_signal(&wake);
  pthread_mutex_unlock(&lock);
}

void sim_worker_stop(void)
{
  pthread_mutex_lock(&lock);
  stopping = true;
  pthread_cond_signal(&wake);
  bool joinable = running;
  pthread_mutex_unlock(&lock);
  if (joinable)
    pthread_join(thread, NULL);
  running = false;
}

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
#include <stdio.h>

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
    while (!head && !stopping)
      pthread_cond_wait(&wake, &lock);
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

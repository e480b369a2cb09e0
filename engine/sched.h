/* The scheduler's interface to the other engine files (http*.c): tasks (sched.c), timers and the
 * curl loop (loop.c). */
#ifndef METASYNC_SCHED_H
#define METASYNC_SCHED_H

#include <curl/curl.h>
#include <lua.h>

typedef struct Task Task;

/* The process-wide curl multi handle; created on first use. */
CURLM *sched_multi(void);
/* Add an easy handle to the multi handle / take it off (counted: the loop knows a transfer is
 * pending). Always use these rather than curl_multi_add_handle/curl_multi_remove_handle. */
void sched_transfer_start(CURL *e);
void sched_transfer_stop(CURL *e);
/* Options every easy handle given to sched_transfer_start needs (socket open/close hooks). */
void sched_prepare_easy(CURL *e);
/* http.c registers this: called for every finished transfer. */
void sched_set_done_handler(void (*fn)(CURLMsg *msg));

/* The task whose coroutine is L, or NULL when L is not a task (main thread, plain coroutine). */
Task *sched_task_of(lua_State *L);
/* Keeps t alive until the matching sched_unpin: for waits registered outside the Lua stack. */
int sched_pin(lua_State *L, Task *t);
void sched_unpin(lua_State *L, int pin);
/* Mark t as waiting and yield it; the values later pushed by the waker become the results. */
int sched_suspend(lua_State *L, Task *t);
/* Wake a waiting task: push the results on sched_thread(t), then call sched_wake(t, n). */
lua_State *sched_thread(Task *t);
void sched_wake(Task *t, int nresults);
/* Whether t is still waiting for the wake registered at generation gen. */
unsigned sched_wait_gen(Task *t);
int sched_waiting(Task *t, unsigned gen);

/* Timers with a C callback; returns an id usable with sched_timer_cancel. */
typedef void (*sched_timer_fn)(void *arg);
unsigned long sched_timer_add(double delay_s, sched_timer_fn fn, void *arg);
void sched_timer_cancel(unsigned long id);

/* Run the loop until *flag becomes non-zero (blocking calls made outside a task). Returns 0, -1
 * when interrupted (Ctrl-C), or -2 when nothing could ever set it (deadlock). */
int sched_run_until(volatile int *flag);

double sched_now(void);

#endif

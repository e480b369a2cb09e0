/* loop.c, for sched.c: the event loop under the scheduler (C timers and curl's sockets). */
#ifndef METASYNC_LOOP_H
#define METASYNC_LOOP_H

#include "sched.h"

/* Makes the epoll set and the wake-up descriptor; idempotent. */
void loop_init(void);
/* One turn: wait for socket activity (block: up to the first C timer, curl's deadline or 1 s;
 * otherwise not at all), let curl act on it, hand finished transfers to the done handler. */
void loop_pump(int block);
/* Run the C timers that are due. */
void loop_fire_timers(void);
/* Nothing that could ever wake a waiter: no transfer on the multi handle, no live timer. */
int loop_idle(void);
/* Make a blocked loop_pump return (async-signal-safe). */
void loop_wakeup(void);
/* Free everything; each_timer is called for every timer still pending (to free its argument). */
void loop_close(void (*each_timer)(sched_timer_fn fn, void *arg));

#endif

/*
 * metasync.task: coroutine tasks on one event loop that drives timers and the curl multi handle
 * (the loop itself, epoll under curl's socket interface, is loop.c).
 *
 * A task is a coroutine plus a userdata ("metasync.task"). Blocking primitives (http.request,
 * task.sleep, t:join, semaphores) yield the task to the loop when called from a task and run the
 * loop in place when called from anywhere else (script top level, a plain coroutine), so policy code
 * reads sequentially either way. The loop resumes a task only when what it waits for has happened.
 */
#include "modules.h"
#include "loop.h"
#include "sched.h"

#include <lauxlib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TASK_MT "metasync.task"
#define SEM_MT "metasync.semaphore"

enum { T_READY, T_RUNNING, T_WAITING, T_DONE };

/* User values of a task userdata: its thread, the list of joiners, the packed results. */
enum { UV_THREAD = 1, UV_JOINERS, UV_RESULTS, UV_COUNT = UV_RESULTS };

struct Task {
  lua_State *co;
  int status;
  int nargs;     /* values on co's stack for the next resume */
  int ok;        /* when done: 1 success, 0 error */
  volatile int done;
  unsigned gen;  /* bumped at every wake, so stale wakers can tell */
  int self_ref;  /* registry ref while not done: a scheduled task is never collected */
  Task *next;    /* ready queue */
};

static struct {
  lua_State *L;  /* main thread */
  Task *ready_head, *ready_tail;
  Task *current;
  lua_State *volatile running; /* the thread executing Lua now, for the interrupt hook */
  volatile sig_atomic_t interrupted;
} S;

/* ---- tasks ---- */

static Task *check_task(lua_State *L, int idx) { return luaL_checkudata(L, idx, TASK_MT); }

Task *sched_task_of(lua_State *L) {
  if (!lua_isyieldable(L)) return NULL;
  return *(Task **)lua_getextraspace(L);
}

lua_State *sched_thread(Task *t) { return t->co; }
unsigned sched_wait_gen(Task *t) { return t->gen; }
int sched_waiting(Task *t, unsigned gen) { return t->status == T_WAITING && t->gen == gen; }

int sched_pin(lua_State *L, Task *t) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->self_ref);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

void sched_unpin(lua_State *L, int pin) { luaL_unref(L, LUA_REGISTRYINDEX, pin); }

static void make_ready(Task *t) {
  t->status = T_READY;
  t->next = NULL;
  if (S.ready_tail) S.ready_tail->next = t;
  else S.ready_head = t;
  S.ready_tail = t;
}

int sched_suspend(lua_State *L, Task *t) {
  t->status = T_WAITING;
  return lua_yield(L, 0);
}

void sched_wake(Task *t, int nresults) {
  if (t->status != T_WAITING) return;
  t->gen++;
  t->nargs = nresults;
  make_ready(t);
}

/* Push the task userdata of a live task onto L. */
static void push_task(lua_State *L, Task *t) { lua_rawgeti(L, LUA_REGISTRYINDEX, t->self_ref); }

/* Wake everyone joined on t (which is done) with `true, results...` or `false, err`. */
static void wake_joiners(lua_State *L, int tidx, Task *t) {
  if (lua_getiuservalue(L, tidx, UV_JOINERS) != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  lua_Integer n = luaL_len(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    Task *j = luaL_testudata(L, -1, TASK_MT);
    lua_pop(L, 1);
    if (!j || j->status != T_WAITING) continue;
    lua_getiuservalue(L, tidx, UV_RESULTS);
    lua_Integer nr = (lua_getfield(L, -1, "n"), lua_tointeger(L, -1));
    lua_pop(L, 1);
    luaL_checkstack(j->co, (int)nr + 2, "too many results");
    lua_pushboolean(j->co, t->ok);
    for (lua_Integer k = 1; k <= nr; k++) {
      lua_rawgeti(L, -1, k);
      lua_xmove(L, j->co, 1);
    }
    lua_pop(L, 1);
    sched_wake(j, (int)nr + 1);
  }
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_setiuservalue(L, tidx, UV_JOINERS);
}

/* Record the outcome of t: `nres` results (ok) or an error object at the top of t->co. */
static void finish(Task *t, int ok, int nres) {
  lua_State *L = S.L;
  lua_State *co = t->co;
  luaL_checkstack(L, nres + 8, "too many results");
  push_task(L, t);
  int tidx = lua_gettop(L);
  if (ok) {
    lua_createtable(L, nres, 1);
    lua_xmove(co, L, nres);
    for (int i = nres; i >= 1; i--) lua_rawseti(L, -(i + 1), i);
  } else {
    const char *msg = lua_tostring(co, -1);
    lua_createtable(L, 1, 1);
    if (msg) luaL_traceback(L, co, msg, 0);
    else lua_xmove(co, L, 1);
    lua_rawseti(L, -2, 1);
    nres = 1;
  }
  lua_pushinteger(L, nres);
  lua_setfield(L, -2, "n");
  lua_setiuservalue(L, tidx, UV_RESULTS);
  lua_settop(co, 0);
  if (!ok) lua_resetthread(co);
  *(Task **)lua_getextraspace(co) = NULL;
  t->ok = ok;
  t->status = T_DONE;
  t->done = 1;
  t->gen++;
  wake_joiners(L, tidx, t);
  luaL_unref(L, LUA_REGISTRYINDEX, t->self_ref);
  t->self_ref = LUA_NOREF;
  lua_settop(L, tidx - 1);
}

static void run_task(Task *t) {
  Task *prev = S.current;
  lua_State *prevrun = S.running;
  int nres = 0;
  S.current = t;
  S.running = t->co;
  t->status = T_RUNNING;
  int st = lua_resume(t->co, NULL, t->nargs, &nres);
  t->nargs = 0;
  S.running = prevrun;
  S.current = prev;
  if (st == LUA_YIELD) {
    lua_pop(t->co, nres);
    /* A bare coroutine.yield() at a task's top level gives the other tasks a turn. */
    if (t->status == T_RUNNING) make_ready(t);
  } else if (st == LUA_OK) {
    finish(t, 1, nres);
  } else {
    finish(t, 0, 1);
  }
}

static void run_ready(void) {
  /* Only the tasks ready now: ones readied meanwhile wait for the next turn, so I/O is polled. */
  Task *last = S.ready_tail;
  while (S.ready_head) {
    Task *t = S.ready_head;
    S.ready_head = t->next;
    if (!S.ready_head) S.ready_tail = NULL;
    if (t->status == T_READY) run_task(t);
    if (t == last) break;
  }
}

int sched_run_until(volatile int *flag) {
  while (!*flag) {
    if (S.interrupted) return -1;
    run_ready();
    if (*flag) break;
    loop_fire_timers();
    if (*flag) break;
    if (S.ready_head) {
      loop_pump(0); /* tasks are ready: look at the sockets without waiting */
      continue;
    }
    if (loop_idle()) return -2;
    loop_pump(1);
    loop_fire_timers();
  }
  return 0;
}

static int loop_error(lua_State *L, int r) {
  return luaL_error(L, r == -1 ? "interrupted" : "deadlock: waiting for something nothing can cause");
}

/* ---- Lua API ---- */

/* Create a task from the function at stack index fidx and the nargs values above it; pushes the
 * task userdata. */
static Task *spawn_at(lua_State *L, int fidx, int nargs) {
  luaL_checkstack(L, 4, NULL);
  lua_State *co = lua_newthread(L);
  Task *t = lua_newuserdatauv(L, sizeof *t, UV_COUNT);
  memset(t, 0, sizeof *t);
  t->co = co;
  t->self_ref = LUA_NOREF;
  luaL_setmetatable(L, TASK_MT);
  lua_insert(L, -2);
  lua_setiuservalue(L, -2, UV_THREAD);
  luaL_checkstack(co, nargs + 1, "too many arguments");
  lua_pushvalue(L, fidx);
  lua_xmove(L, co, 1);
  for (int i = 1; i <= nargs; i++) {
    lua_pushvalue(L, fidx + i);
    lua_xmove(L, co, 1);
  }
  t->nargs = nargs;
  *(Task **)lua_getextraspace(co) = t;
  lua_pushvalue(L, -1);
  t->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  make_ready(t);
  return t;
}

/* task.spawn(fn, ...) -> task */
static int l_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  spawn_at(L, 1, lua_gettop(L) - 1);
  return 1;
}

/* Push `ok, results...` of a finished task at index idx. */
static int push_outcome(lua_State *L, int idx, Task *t) {
  lua_getiuservalue(L, idx, UV_RESULTS);
  lua_getfield(L, -1, "n");
  int n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, n + 1, "too many results");
  lua_pushboolean(L, t->ok);
  for (int i = 1; i <= n; i++) lua_rawgeti(L, -1 - i, i);
  lua_remove(L, -2 - n);
  return n + 1;
}

static int join_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  return lua_gettop(L) - 1; /* the woken values follow the task argument */
}

/* t:join() -> true, results... | false, err (with traceback) */
static int l_join(lua_State *L) {
  Task *t = check_task(L, 1);
  lua_settop(L, 1);
  if (t->done) return push_outcome(L, 1, t);
  Task *me = sched_task_of(L);
  if (me == t) return luaL_error(L, "a task cannot join itself");
  if (me) {
    if (lua_getiuservalue(L, 1, UV_JOINERS) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, -1);
      lua_setiuservalue(L, 1, UV_JOINERS);
    }
    push_task(L, me);
    lua_rawseti(L, -2, luaL_len(L, -2) + 1);
    lua_pop(L, 1);
    me->status = T_WAITING;
    return lua_yieldk(L, 0, 0, join_k);
  }
  int r = sched_run_until(&t->done);
  if (r < 0) return loop_error(L, r);
  return push_outcome(L, 1, t);
}

/* t:done() -> boolean */
static int l_done(lua_State *L) {
  lua_pushboolean(L, check_task(L, 1)->done);
  return 1;
}

static int l_task_tostring(lua_State *L) {
  Task *t = check_task(L, 1);
  static const char *names[] = {"ready", "running", "waiting", "done"};
  lua_pushfstring(L, "task (%s): %p", names[t->status], (void *)t);
  return 1;
}

typedef struct {
  Task *t;
  unsigned gen;
  int pin;
  volatile int *flag;
} Wakeup;

static void wakeup_fire(void *arg) {
  Wakeup *w = arg;
  if (w->flag) *w->flag = 1;
  else {
    if (sched_waiting(w->t, w->gen)) sched_wake(w->t, 0);
    sched_unpin(S.L, w->pin);
  }
  free(w);
}

/* task.sleep(seconds) */
static int l_sleep(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  luaL_argcheck(L, s >= 0 && s < 1e9, 1, "expected a duration in seconds");
  Wakeup *w = calloc(1, sizeof *w);
  if (!w) return luaL_error(L, "out of memory");
  Task *me = sched_task_of(L);
  if (me) {
    w->t = me;
    w->gen = me->gen;
    w->pin = sched_pin(L, me);
    sched_timer_add(s, wakeup_fire, w);
    return sched_suspend(L, me);
  }
  volatile int flag = 0;
  w->flag = &flag;
  unsigned long id = sched_timer_add(s, wakeup_fire, w);
  int r = sched_run_until(&flag);
  if (r < 0) {
    sched_timer_cancel(id);
    free(w);
    return loop_error(L, r);
  }
  return 0;
}

/* task.yield(): let the other ready tasks run. */
static int l_yield(lua_State *L) {
  Task *me = sched_task_of(L);
  if (!me) return 0;
  make_ready(me); /* not T_RUNNING any more, so run_task will not queue it twice */
  return lua_yield(L, 0);
}

/* task.current() -> task | nil */
static int l_current(lua_State *L) {
  Task *me = sched_task_of(L);
  if (!me) return 0;
  push_task(L, me);
  return 1;
}

/* task.now() -> monotonic seconds */
static int l_now(lua_State *L) {
  lua_pushnumber(L, sched_now());
  return 1;
}

/* ---- semaphores: task.semaphore(n) -> s; s:acquire(); s:release() ---- */

typedef struct {
  lua_Integer count;
  lua_Integer head, tail; /* FIFO of waiters in the user value table: [head, tail) */
} Sem;

static Sem *check_sem(lua_State *L) { return luaL_checkudata(L, 1, SEM_MT); }

static int l_semaphore(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 0, 1, "expected a count >= 0");
  Sem *s = lua_newuserdatauv(L, sizeof *s, 1);
  s->count = n;
  s->head = s->tail = 1;
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, SEM_MT);
  return 1;
}

static int l_acquire(lua_State *L) {
  Sem *s = check_sem(L);
  if (s->count > 0) {
    s->count--;
    return 0;
  }
  lua_getiuservalue(L, 1, 1);
  Task *me = sched_task_of(L);
  if (me) {
    push_task(L, me);
    lua_rawseti(L, -2, s->tail++);
    return sched_suspend(L, me);
  }
  volatile int flag = 0;
  lua_pushlightuserdata(L, (void *)&flag);
  lua_Integer slot = s->tail++;
  lua_rawseti(L, -2, slot);
  int r = sched_run_until(&flag);
  if (r < 0) {
    lua_pushboolean(L, 0); /* the waiter is gone: release() skips this slot */
    lua_rawseti(L, -2, slot);
    return loop_error(L, r);
  }
  return 0;
}

static int l_release(lua_State *L) {
  Sem *s = check_sem(L);
  lua_getiuservalue(L, 1, 1);
  while (s->head < s->tail) {
    lua_rawgeti(L, -1, s->head);
    lua_pushnil(L);
    lua_rawseti(L, -3, s->head++);
    if (lua_islightuserdata(L, -1)) {
      *(volatile int *)lua_touserdata(L, -1) = 1;
      return 0;
    }
    Task *t = luaL_testudata(L, -1, TASK_MT);
    lua_pop(L, 1);
    if (t && t->status == T_WAITING) {
      sched_wake(t, 0); /* the permit passes straight to the waiter */
      return 0;
    }
  }
  s->count++;
  return 0;
}

static int l_sem_tostring(lua_State *L) {
  Sem *s = check_sem(L);
  lua_pushfstring(L, "semaphore (%d free, %d waiting)", (int)s->count, (int)(s->tail - s->head));
  return 1;
}

/* wait_all and map read best in Lua, over the primitives above. */
static const char helpers_lua[] =
  "local spawn, semaphore = ...\n"
  "local M = {}\n"
  "function M.wait_all(list)\n"
  "  local out = {}\n"
  "  for i, t in ipairs(list) do out[i] = table.pack(t:join()) end\n"
  "  return out\n"
  "end\n"
  "function M.map(iter, n, fn)\n"
  "  assert(type(iter) == 'function', 'task.map: expected an iterator function')\n"
  "  n = math.tointeger(n)\n"
  "  assert(n and n >= 1, 'task.map: expected at most-in-flight count >= 1')\n"
  "  local results, errors, slots = {}, {}, semaphore(n)\n"
  "  local k = 0\n"
  "  for item in iter do\n"
  "    k = k + 1\n"
  "    local i = k\n"
  "    slots:acquire()\n"
  "    spawn(function()\n"
  "      local ok, r = xpcall(fn, debug.traceback, item)\n"
  "      if ok then results[i] = r else errors[i] = r end\n"
  "      slots:release()\n"
  "    end)\n"
  "  end\n"
  "  for _ = 1, n do slots:acquire() end\n"
  "  return results, errors\n"
  "end\n"
  "return M\n";

/* ---- host entry points ---- */

static void interrupt_hook(lua_State *L, lua_Debug *ar);

int sched_call(lua_State *L, int nargs) {
  S.interrupted = 0;
  /* An interrupt that landed while no Lua ran left its hook on a thread; new threads copy the
   * hook of their creator, so clear it before this call's task is made. */
  if (lua_gethook(L) == interrupt_hook) lua_sethook(L, NULL, 0, 0);
  if (S.L && lua_gethook(S.L) == interrupt_hook) lua_sethook(S.L, NULL, 0, 0);
  int fidx = lua_gettop(L) - nargs;
  Task *t = spawn_at(L, fidx, nargs);
  int tidx = lua_gettop(L);
  int r = sched_run_until(&t->done);
  if (r < 0 && !t->done) {
    /* Abandon the task: stale wakers see the bumped generation and leave it alone. */
    lua_pushstring(t->co, r == -1 ? "interrupted" : "deadlock: waiting for something nothing can cause");
    finish(t, 0, 1);
  }
  int n = push_outcome(L, tidx, t);
  int ok = lua_toboolean(L, -n);
  /* Leave only the results (or the error message) where the function and arguments were. */
  lua_rotate(L, fidx, n);
  lua_settop(L, fidx + n - 1);
  lua_remove(L, fidx); /* the boolean */
  return ok ? LUA_OK : LUA_ERRRUN;
}

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted");
}

void sched_interrupt(void) {
  S.interrupted = 1;
  lua_State *run = S.running;
  if (run) lua_sethook(run, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  loop_wakeup();
}

/* Tasks still asleep when the state closes: their wake-ups are ours to free. */
static void free_wakeup(sched_timer_fn fn, void *arg) {
  if (fn == wakeup_fire) free(arg);
}

static int l_sched_gc(lua_State *L) {
  (void)L;
  loop_close(free_wakeup);
  return 0;
}

int luaopen_metasync_task(lua_State *L) {
  static const luaL_Reg task_m[] = {
      {"join", l_join}, {"done", l_done}, {"__tostring", l_task_tostring}, {NULL, NULL}};
  static const luaL_Reg sem_m[] = {{"acquire", l_acquire},
                                   {"release", l_release},
                                   {"__tostring", l_sem_tostring},
                                   {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"spawn", l_spawn},     {"sleep", l_sleep},
                                   {"yield", l_yield},     {"current", l_current},
                                   {"now", l_now},         {"semaphore", l_semaphore},
                                   {NULL, NULL}};
  lua_State *main;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  main = lua_tothread(L, -1);
  lua_pop(L, 1);
  loop_init();
  S.L = main;
  if (!S.running) S.running = main;
  /* New threads copy the main thread's extra space, which Lua leaves uninitialised: clear it so
   * plain coroutines are never taken for tasks. (The host opens this module first thing.) */
  *(Task **)lua_getextraspace(main) = NULL;
  if (luaL_newmetatable(L, TASK_MT)) {
    luaL_setfuncs(L, task_m, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, SEM_MT)) {
    luaL_setfuncs(L, sem_m, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  /* The loop's resources go with the state: a sentinel whose __gc frees them. */
  lua_newuserdatauv(L, 0, 0);
  lua_newtable(L);
  lua_pushcfunction(L, l_sched_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "metasync.sched");
  if (luaL_loadbuffer(L, helpers_lua, sizeof helpers_lua - 1, "=metasync.task") != LUA_OK)
    return lua_error(L);
  lua_getfield(L, -2, "spawn");
  lua_getfield(L, -3, "semaphore");
  lua_call(L, 2, 1);
  lua_getfield(L, -1, "wait_all");
  lua_setfield(L, -3, "wait_all");
  lua_getfield(L, -1, "map");
  lua_setfield(L, -3, "map");
  lua_pop(L, 1);
  return 1;
}

/* metasync.signals: a clean end on SIGINT/SIGTERM for unattended runs. The first signal is
 * only recorded (the run stops starting work, lets what is in flight finish and prints its
 * summary: see lib/metasync/pipeline.lua); no new HTTP request is sent after it. A second
 * signal ends the process at once, for an operator who does not want to wait.
 *
 *   signals.install()   -- handlers for SIGINT and SIGTERM
 *   signals.received()  -> "SIGINT" | "SIGTERM", its number | nil
 */
#include "loop.h"
#include "modules.h"

#include <lauxlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t got;

int signals_received(void) { return got; }

static void on_signal(int sig) {
  if (got) _exit(128 + sig);
  got = sig;
  loop_wakeup(); /* so a loop asleep in epoll_wait sees it */
}

static int l_install(lua_State *L) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  (void)L;
  return 0;
}

static int l_received(lua_State *L) {
  int s = got;
  if (!s) return 0;
  lua_pushstring(L, s == SIGINT ? "SIGINT" : s == SIGTERM ? "SIGTERM" : "signal");
  lua_pushinteger(L, s);
  return 2;
}

int luaopen_metasync_signals(lua_State *L) {
  static const luaL_Reg fns[] = {{"install", l_install}, {"received", l_received}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}

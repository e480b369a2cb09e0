/* The native "sim" module: clocks and the in-flight request counters for the Lua endpoints. */
#include "sim.h"

#include <lauxlib.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

/* Counted from the moment a request line arrives until MHD reports the request completed, so a
 * request parked by a delay counts as in flight (which is what concurrency tests measure). */
static atomic_long inflight;
static atomic_long max_inflight;

void sim_inflight_enter(void)
{
  long now = atomic_fetch_add(&inflight, 1) + 1;
  long max = atomic_load(&max_inflight);
  while (now > max && !atomic_compare_exchange_weak(&max_inflight, &max, now)) {
  }
}

void sim_inflight_leave(void)
{
  atomic_fetch_sub(&inflight, 1);
}

static double clock_seconds(clockid_t id)
{
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* sim.now() -> monotonic seconds (float) */
static int sim_now(lua_State *L)
{
  lua_pushnumber(L, clock_seconds(CLOCK_MONOTONIC));
  return 1;
}

/* sim.time() -> wall-clock seconds since the epoch (float) */
static int sim_time(lua_State *L)
{
  lua_pushnumber(L, clock_seconds(CLOCK_REALTIME));
  return 1;
}

/* sim.inflight() -> requests in flight now, this one included */
static int sim_inflight(lua_State *L)
{
  lua_pushinteger(L, atomic_load(&inflight));
  return 1;
}

/* sim.max_inflight() -> the most requests in flight at once since start or the last reset */
static int sim_max_inflight(lua_State *L)
{
  lua_pushinteger(L, atomic_load(&max_inflight));
  return 1;
}

/* sim.reset_inflight(): the maximum restarts from the current count (the caller's own request
 * is still in flight, so 0 would be a lie). */
static int sim_reset_inflight(lua_State *L)
{
  (void)L;
  atomic_store(&max_inflight, atomic_load(&inflight));
  return 0;
}

/* sim.http_date(epoch) -> "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 7231 IMF-fixdate) */
static int sim_http_date(lua_State *L)
{
  static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  lua_Number t = luaL_checknumber(L, 1);
  /* Years 0..9999 only: the format has four digits and time_t conversion must not overflow. */
  luaL_argcheck(L, t >= -62167219200.0 && t < 253402300800.0, 1, "epoch out of range");
  time_t secs = (time_t)floor(t);
  struct tm tm;
  if (!gmtime_r(&secs, &tm))
    return luaL_argerror(L, 1, "epoch out of range");
  char buf[96];
  int n = snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
                   tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                   tm.tm_sec);
  lua_pushlstring(L, buf, (size_t)n);
  return 1;
}

int luaopen_sim(lua_State *L)
{
  static const luaL_Reg funcs[] = {
      {"now", sim_now},
      {"time", sim_time},
      {"inflight", sim_inflight},
      {"max_inflight", sim_max_inflight},
      {"reset_inflight", sim_reset_inflight},
      {"http_date", sim_http_date},
      {NULL, NULL},
  };
  luaL_newlib(L, funcs);
  return 1;
}

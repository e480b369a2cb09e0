/* The native "sim" module: clocks, the in-flight request counters and two string helpers for
 * the JSON the Lua endpoints assemble from pieces. */
#include "sim.h"

#include <lauxlib.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
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

/* sim.jstr(s) -> s as a JSON string literal, byte for byte what metasync.json.encode(s) gives
 * (", \\ and control characters escaped, other bytes as they are), without the encoder's
 * per-call setup: the endpoints quote many short strings per item. */
static int sim_jstr(lua_State *L)
{
  static const char hex[] = "0123456789abcdef";
  size_t n;
  luaL_checktype(L, 1, LUA_TSTRING);
  const char *s = lua_tolstring(L, 1, &n);
  luaL_Buffer b;
  luaL_buffinitsize(L, &b, n + 2);
  luaL_addchar(&b, '"');
  const char *run = s, *end = s + n;
  for (const char *q = s; q < end; q++) {
    unsigned char c = (unsigned char)*q;
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    luaL_addlstring(&b, run, (size_t)(q - run));
    run = q + 1;
    char esc[6] = {'\\', 0, 0, 0, 0, 0};
    size_t elen = 2;
    switch (c) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\b': esc[1] = 'b'; break;
    case '\f': esc[1] = 'f'; break;
    case '\n': esc[1] = 'n'; break;
    case '\r': esc[1] = 'r'; break;
    case '\t': esc[1] = 't'; break;
    default:
      esc[1] = 'u', esc[2] = '0', esc[3] = '0';
      esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
      elen = 6;
    }
    luaL_addlstring(&b, esc, elen);
  }
  luaL_addlstring(&b, run, (size_t)(end - run));
  luaL_addchar(&b, '"');
  luaL_pushresult(&b);
  return 1;
}

/* sim.iso(epoch) -> "2025-06-03T02:00:01Z" (UTC; integer seconds, any year the proleptic
 * Gregorian calendar has: the same days-from-civil arithmetic as util.lua). */
static int sim_iso(lua_State *L)
{
  lua_Integer t = luaL_checkinteger(L, 1);
  luaL_argcheck(L, t > INT64_MIN / 2 && t < INT64_MAX / 2, 1, "epoch out of range");
  int64_t days = t / 86400, rem = t % 86400;
  if (rem < 0)
    rem += 86400, days--;
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2)
    y++;
  char buf[64];
  int len = snprintf(buf, sizeof buf, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, (int)m,
                     (int)d, (int)(rem / 3600), (int)(rem % 3600 / 60), (int)(rem % 60));
  lua_pushlstring(L, buf, (size_t)len);
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
      {"jstr", sim_jstr},
      {"iso", sim_iso},
      {NULL, NULL},
  };
  luaL_newlib(L, funcs);
  return 1;
}

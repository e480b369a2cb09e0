/* metasync.lock: an exclusive advisory lock on a file (flock), so two runs on one state never
 * interleave their writes. The kernel drops the lock when the process dies, kill -9 included,
 * so a crash never leaves a stale lock behind; the file only carries the holder's description
 * for the message the next run prints.
 *
 *   lock.acquire(path [, {wait = seconds, info = "text"}]) -> handle
 *                                                          | nil, "busy", holder text
 *                                                          | nil, "error", message
 *   handle:release()   (also on garbage collection and at exit)
 */
#include "modules.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define LOCK_MT "metasync.lock.handle"

typedef struct {
  int fd;
} Lock;

static int l_release(lua_State *L) {
  Lock *k = luaL_checkudata(L, 1, LOCK_MT);
  if (k->fd >= 0) {
    /* Closing drops the lock; the file stays, so a waiting run never races a re-creation. */
    close(k->fd);
    k->fd = -1;
  }
  return 0;
}

/* The holder's text, as much as fits: it is informational only. */
static void push_holder(lua_State *L, int fd) {
  char buf[512];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n < 0) n = 0;
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\0')) n--;
  lua_pushlstring(L, buf, (size_t)n);
}

static int l_acquire(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  double wait = 0;
  const char *info = "";
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "wait");
    if (!lua_isnil(L, -1)) {
      wait = luaL_checknumber(L, -1);
      /* a wait beyond a day is a typo, and NaN must not loop forever */
      if (!(wait >= 0 && wait <= 86400)) return luaL_argerror(L, 2, "wait: expected 0..86400 seconds");
    }
    lua_getfield(L, 2, "info");
    if (!lua_isnil(L, -1)) info = luaL_checkstring(L, -1);
    lua_pop(L, 2);
  }
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "error");
    lua_pushfstring(L, "cannot open %s: %s", path, strerror(errno));
    return 3;
  }
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) break;
    if (errno != EWOULDBLOCK && errno != EINTR) {
      int e = errno;
      close(fd);
      lua_pushnil(L);
      lua_pushliteral(L, "error");
      lua_pushfstring(L, "cannot lock %s: %s", path, strerror(e));
      return 3;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double waited = (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9;
    if (waited >= wait) {
      lua_pushnil(L);
      lua_pushliteral(L, "busy");
      push_holder(L, fd);
      close(fd);
      return 3;
    }
    /* Nothing else runs before a run holds its lock, so a short sleep blocks no task; flock
     * has no timeout of its own. */
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  if (ftruncate(fd, 0) == 0) {
    size_t len = strlen(info);
    if (pwrite(fd, info, len, 0) != (ssize_t)len) { /* informational only */
    }
  }
  Lock *k = lua_newuserdatauv(L, sizeof *k, 0);
  k->fd = fd;
  luaL_setmetatable(L, LOCK_MT);
  return 1;
}

int luaopen_metasync_lock(lua_State *L) {
  if (luaL_newmetatable(L, LOCK_MT)) {
    lua_pushcfunction(L, l_release);
    lua_setfield(L, -2, "__gc");
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, l_release);
    lua_setfield(L, -2, "release");
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"acquire", l_acquire}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}

/* metasync.fs: the few file-system questions the SDK must ask about paths it does not trust
 * (configuration files, secret files), answered without a shell and without a race.
 *
 *   fs.read(path, max)  -> text, mode        a regular file of at most max bytes; mode is the
 *                                           permission bits as an octal string ("600")
 *                       | nil, reason, code  code "absent" (nothing at the path) or "error"
 *   fs.kind(path)       -> "file" | "dir" | "fifo" | "device" | "socket" | "other"
 *                          | "absent" | "dangling" (a symbolic link to nothing, or a loop)
 *                       | nil, reason        (a parent directory cannot be searched, ...)
 *   fs.target(path)     -> the path itself when it is not a symbolic link, else the final
 *                          target's absolute path | nil, reason
 *   fs.list(dir)        -> the names in dir (not "." and ".."), unsorted, at most 100000
 *                       | nil, reason
 *
 * Why native: Lua's io.open cannot tell a FIFO from a file without opening it, and opening a
 * FIFO blocks until a writer appears. read() stats the path and opens only a regular file,
 * with O_NONBLOCK (which a regular file ignores), then asks fstat about the very file it
 * opened (same device and inode), so nothing swapped in between the check and the open can
 * make it block or read a device. Reasons are strerror-style phrases in
 * lower case and never hold the file's content. */
#include "modules.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

/* The largest cap a caller may ask for: config files are a few KiB. */
#define FS_MAX_CAP (64 * 1024 * 1024)

static const char *kind_of(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "dir";
  if (S_ISFIFO(m)) return "fifo";
  if (S_ISCHR(m) || S_ISBLK(m)) return "device";
  if (S_ISSOCK(m)) return "socket";
  return "other";
}

static const char *not_regular(mode_t m) {
  if (S_ISDIR(m)) return "is a directory";
  if (S_ISFIFO(m)) return "is a FIFO, not a regular file";
  if (S_ISCHR(m) || S_ISBLK(m)) return "is a device, not a regular file";
  if (S_ISSOCK(m)) return "is a socket, not a regular file";
  return "is not a regular file";
}

/* strerror's text with its first letter in lower case, as the SDK's messages read. */
static void push_reason(lua_State *L, const char *prefix, int err) {
  char buf[160];
  snprintf(buf, sizeof buf, "%s%s", prefix, strerror(err));
  size_t n = strlen(prefix);
  if (buf[n] >= 'A' && buf[n] <= 'Z') buf[n] = (char)(buf[n] - 'A' + 'a');
  lua_pushstring(L, buf);
}

static int fail(lua_State *L, const char *reason, const char *code) {
  lua_pushnil(L);
  lua_pushstring(L, reason);
  lua_pushstring(L, code);
  return 3;
}

static int fail_errno(lua_State *L, const char *prefix, int err) {
  lua_pushnil(L);
  push_reason(L, prefix, err);
  lua_pushstring(L, "error");
  return 3;
}

static int push_buffer(lua_State *L) {
  lua_pushlstring(L, lua_touserdata(L, 1), (size_t)lua_tointeger(L, 2));
  return 1;
}

static void too_large(char *why, size_t n, lua_Integer max) {
  if (max > 0 && max % (1024 * 1024) == 0) snprintf(why, n, "is larger than %lld MiB", (long long)(max / (1024 * 1024)));
  else snprintf(why, n, "is larger than %lld bytes", (long long)max);
}

static int l_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer max = luaL_checkinteger(L, 2);
  luaL_argcheck(L, max >= 0 && max <= FS_MAX_CAP, 2, "expected 0..64 MiB");
  char why[64];
  /* Anything but a regular file is refused without being opened: opening a device or a FIFO
   * can have effects of its own (a tape rewinds, a FIFO's writer is let go). */
  struct stat pre;
  if (stat(path, &pre) != 0) {
    int err = errno;
    struct stat ls;
    if (err == ENOENT) {
      /* A link whose target is missing is a mistake to name, not an absent optional file. */
      if (lstat(path, &ls) == 0 && S_ISLNK(ls.st_mode)) return fail(L, "is a symbolic link to a missing file", "error");
      return fail(L, "file not found", "absent");
    }
    return fail_errno(L, "", err);
  }
  if (!S_ISREG(pre.st_mode)) return fail(L, not_regular(pre.st_mode), "error");
  /* Then the open, which never blocks (O_NONBLOCK), and fstat of what was opened: a file
   * swapped in since the stat is refused rather than read. */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return fail(L, "file not found", "absent");
    return fail_errno(L, "", err);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return fail_errno(L, "cannot check the file: ", err);
  }
  if (!S_ISREG(st.st_mode) || st.st_dev != pre.st_dev || st.st_ino != pre.st_ino) {
    close(fd);
    return fail(L, S_ISREG(st.st_mode) ? "changed while it was being opened" : not_regular(st.st_mode), "error");
  }
  if (st.st_size > max) {
    close(fd);
    too_large(why, sizeof why, max);
    return fail(L, why, "error");
  }
  /* Read into memory of our own, so no Lua allocation (which may raise) happens while the
   * descriptor is open. The size can change while we read (a file being rewritten), so up to
   * max + 1 bytes are read whatever fstat said, and a file that turned out larger is refused. */
  size_t cap = (size_t)st.st_size + 1, total = 0;
  if (cap > (size_t)max + 1) cap = (size_t)max + 1;
  if (cap < 256) cap = 256;
  char *buf = malloc(cap);
  if (!buf) {
    close(fd);
    return fail(L, "cannot read: out of memory", "error");
  }
  for (;;) {
    if (total == (size_t)max + 1) break;
    if (total == cap) {
      size_t ncap = cap * 2;
      if (ncap > (size_t)max + 1) ncap = (size_t)max + 1;
      char *nb = realloc(buf, ncap);
      if (!nb) {
        free(buf);
        close(fd);
        return fail(L, "cannot read: out of memory", "error");
      }
      buf = nb;
      cap = ncap;
    }
    ssize_t n = read(fd, buf + total, cap - total);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      free(buf);
      close(fd);
      return fail_errno(L, "cannot read: ", err);
    }
    if (n == 0) break;
    total += (size_t)n;
  }
  close(fd);
  if (total > (size_t)max) {
    free(buf);
    too_large(why, sizeof why, max);
    return fail(L, why, "error");
  }
  char mode[16];
  snprintf(mode, sizeof mode, "%o", (unsigned)(st.st_mode & 07777));
  /* Pushed by a protected call: a memory error there must not leak buf. */
  lua_pushcfunction(L, push_buffer);
  lua_pushlightuserdata(L, buf);
  lua_pushinteger(L, (lua_Integer)total);
  int rc = lua_pcall(L, 2, 1, 0);
  free(buf);
  if (rc != LUA_OK) return lua_error(L);
  lua_pushstring(L, mode);
  return 2;
}

static int l_kind(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) == 0) {
    lua_pushstring(L, kind_of(st.st_mode));
    return 1;
  }
  int err = errno;
  struct stat ls;
  if (err == ENOENT || err == ELOOP) {
    if (lstat(path, &ls) == 0 && S_ISLNK(ls.st_mode)) {
      lua_pushliteral(L, "dangling");
      return 1;
    }
    if (err == ENOENT) {
      lua_pushliteral(L, "absent");
      return 1;
    }
  }
  lua_pushnil(L);
  push_reason(L, "", err);
  return 2;
}

static int l_target(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat ls;
  if (lstat(path, &ls) != 0 || !S_ISLNK(ls.st_mode)) {
    lua_pushvalue(L, 1);
    return 1;
  }
  char *real = realpath(path, NULL);
  if (!real) {
    lua_pushnil(L);
    lua_pushliteral(L, "is a symbolic link whose target cannot be resolved");
    return 2;
  }
  lua_pushstring(L, real);
  free(real);
  return 1;
}

/* A configuration directory holds a handful of files; the cap keeps a hostile one bounded. */
#define FS_MAX_LIST 100000

/* The names are collected into a table built by a protected call, so a memory error in Lua
 * cannot leak the open directory. */
static int list_into(lua_State *L) {
  DIR *d = lua_touserdata(L, 1);
  lua_newtable(L);
  lua_Integer n = 0;
  struct dirent *e;
  errno = 0;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
      if (n == FS_MAX_LIST) break;
      lua_pushstring(L, e->d_name);
      lua_rawseti(L, -2, ++n);
    }
    errno = 0;
  }
  /* readdir returns NULL both at the end and on an error: only errno tells them apart. */
  lua_pushinteger(L, e == NULL ? errno : 0);
  return 2;
}

static int l_list(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  DIR *d = opendir(path);
  if (!d) {
    int err = errno;
    lua_pushnil(L);
    push_reason(L, "", err);
    return 2;
  }
  lua_pushcfunction(L, list_into);
  lua_pushlightuserdata(L, d);
  int rc = lua_pcall(L, 1, 2, 0);
  closedir(d);
  if (rc != LUA_OK) return lua_error(L);
  int err = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (err != 0) {
    lua_pop(L, 1);
    lua_pushnil(L);
    push_reason(L, "cannot read the directory: ", err);
    return 2;
  }
  return 1;
}

int luaopen_metasync_fs(lua_State *L) {
  static const luaL_Reg fns[] = {{"read", l_read}, {"kind", l_kind}, {"target", l_target}, {"list", l_list}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}

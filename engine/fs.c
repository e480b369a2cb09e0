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
 * FIFO blocks until a writer appears. read() opens with O_NONBLOCK (which a regular file
 * ignores), then asks fstat about the very file it opened, so nothing swapped in between a
 * check and the open can make it block or read a device. Reasons are strerror-style phrases in
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

static int l_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer max = luaL_checkinteger(L, 2);
  luaL_argcheck(L, max >= 0 && max <= FS_MAX_CAP, 2, "expected 0..64 MiB");
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) {
      struct stat ls;
      /* A link whose target is missing is a mistake to name, not an absent optional file. */
      if (lstat(path, &ls) == 0 && S_ISLNK(ls.st_mode)) return fail(L, "is a symbolic link to a missing file", "error");
      return fail(L, "file not found", "absent");
    }
    if (err == ENXIO) return fail(L, "is a socket, not a regular file", "error");
    return fail_errno(L, "", err);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return fail_errno(L, "cannot check the file: ", err);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return fail(L, not_regular(st.st_mode), "error");
  }
  if (st.st_size > max) {
    close(fd);
    char why[64];
    if (max % (1024 * 1024) == 0) snprintf(why, sizeof why, "is larger than %lld MiB", (long long)(max / (1024 * 1024)));
    else snprintf(why, sizeof why, "is larger than %lld bytes", (long long)max);
    return fail(L, why, "error");
  }
  /* The size can change while we read (a file being rewritten), so read up to max + 1 bytes
   * whatever fstat said, and refuse a file that turned out larger. */
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t total = 0;
  for (;;) {
    size_t want = (size_t)max + 1 - total;
    if (want == 0) break;
    if (want > LUAL_BUFFERSIZE) want = LUAL_BUFFERSIZE;
    char *p = luaL_prepbuffsize(&b, want);
    ssize_t n = read(fd, p, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return fail_errno(L, "cannot read: ", err);
    }
    if (n == 0) break;
    luaL_addsize(&b, (size_t)n);
    total += (size_t)n;
  }
  close(fd);
  if (total > (size_t)max) {
    char why[64];
    snprintf(why, sizeof why, "is larger than %lld bytes", (long long)max);
    return fail(L, why, "error");
  }
  luaL_pushresult(&b);
  char mode[16];
  snprintf(mode, sizeof mode, "%o", (unsigned)(st.st_mode & 07777));
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

static int l_list(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  DIR *d = opendir(path);
  if (!d) {
    int err = errno;
    lua_pushnil(L);
    push_reason(L, "", err);
    return 2;
  }
  lua_newtable(L);
  lua_Integer n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (n == FS_MAX_LIST) break;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++n);
  }
  closedir(d);
  return 1;
}

int luaopen_metasync_fs(lua_State *L) {
  static const luaL_Reg fns[] = {{"read", l_read}, {"kind", l_kind}, {"target", l_target}, {"list", l_list}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}

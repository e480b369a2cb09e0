/* metasync.log: NLog-compatible log lines to stderr, a main file and an errors-only file, with
 * size-based rotation and redaction of credentials (redact.c). Logging state is process-wide
 * (one engine, one thread), so it lives in statics shared by the Lua module and the C API.
 * Each file has its own threshold and rotation, as each NLog File target has (the old tool's
 * NLog.config sets them per target). */
#include "modules.h"
#include "redact.h"

#include <lauxlib.h>
#include <lualib.h>

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* the old tool's names, which log shippers watch */
#define DEFAULT_FILE "logs/MetadataSync.log"
#define DEFAULT_ERRORS_FILE "logs/MetadataSync-Errors.log"
#define DEFAULT_MAX_SIZE 10485760L
#define DEFAULT_MAX_FILES 5
#define DEFAULT_LOGGER "metasync"
#define MAX_ARCHIVES 100

static const char *const level_names[] = {"trace", "debug", "info", "warn", "error", "fatal"};
static const char *const level_tags[] = {"TRACE", "DEBUG", "INFO ", "WARN ", "ERROR", "FATAL"};
#define NLEVELS 6

typedef struct Sink {
    char *path; /* NULL when the sink is off */
    FILE *fp;
    long size;  /* bytes in the current file, to decide rotation without stat per record */
    long max_size; /* <= 0: never rotate */
    int max_files;
    /* Archive names. Without a template: path.1 (newest) .. path.N, beside the file. With one
     * (NLog's archiveFileName, e.g. logs/Archive/MetadataSync.log.{#}.log): arch_pre, the
     * number zero-padded to arch_width digits, arch_suf, numbered as NLog's "Rolling" scheme
     * (0 is the newest), so the old tool's archives keep their names. */
    char *arch_pre, *arch_suf;
    int arch_width;
} Sink;

static struct {
    int level;          /* threshold of the main file */
    int errors_level;   /* threshold of the errors file */
    int use_stderr;
    int stderr_level;
    int stderr_follows; /* stderr_level was not given: it tracks set_level */
    int json;           /* the files get one JSON object per line (logFormat json) */
    Sink main, errors;
    char logger_default[64];
    char run_id[9];
} st = {
    .level = MSLOG_INFO, .errors_level = MSLOG_ERROR, .use_stderr = 1, .stderr_level = MSLOG_INFO,
    .stderr_follows = 1, .logger_default = DEFAULT_LOGGER,
};

#include "buf.h"

/* ---- sinks ---- */

/* mkdir -p of the directory part of path. */
static int make_parent_dirs(const char *path) {
    char *dir = strdup(path);
    if (!dir) return -1;
    char *slash = strrchr(dir, '/');
    int rc = 0;
    if (slash && slash != dir) {
        *slash = '\0';
        for (char *p = dir + 1; ; p++) {
            if (*p == '/' || *p == '\0') {
                char c = *p;
                *p = '\0';
                if (mkdir(dir, 0777) != 0 && errno != EEXIST) { rc = -1; break; }
                *p = c;
                if (c == '\0') break;
            }
        }
    }
    free(dir);
    return rc;
}

static int sink_open(Sink *s) {
    s->fp = fopen(s->path, "a");
    if (!s->fp) return -1;
    struct stat sb;
    s->size = fstat(fileno(s->fp), &sb) == 0 ? (long)sb.st_size : 0;
    return 0;
}

static void sink_close(Sink *s) {
    if (s->fp) fclose(s->fp);
    free(s->path);
    free(s->arch_pre);
    free(s->arch_suf);
    memset(s, 0, sizeof *s);
}

/* The name of archive i, in a malloc'd string (NULL when out of memory). */
static char *archive_name(const Sink *s, int i) {
    size_t cap = (s->arch_pre ? strlen(s->arch_pre) + strlen(s->arch_suf) + (size_t)s->arch_width
                              : strlen(s->path)) + 16;
    char *out = malloc(cap);
    if (!out) return NULL;
    if (s->arch_pre) snprintf(out, cap, "%s%0*d%s", s->arch_pre, s->arch_width, i, s->arch_suf);
    else snprintf(out, cap, "%s.%d", s->path, i);
    return out;
}

/* The newest archive is number first, the oldest first + max_files - 1: each is renamed one
 * up, the oldest dropped, then the live file becomes the newest and a fresh file starts.
 * Failures here must not stop logging: at worst the file grows past max_size. */
static void sink_rotate(Sink *s) {
    int first = s->arch_pre ? 0 : 1;
    fclose(s->fp);
    s->fp = NULL;
    if (s->max_files <= 0) {
        remove(s->path);
    } else {
        char *to = archive_name(s, first + s->max_files - 1);
        if (to) remove(to);
        for (int i = first + s->max_files - 2; to && i >= first; i--) {
            char *from = archive_name(s, i);
            if (from) rename(from, to);
            free(to);
            to = from;
        }
        /* the archive directory (logs/Archive) is made when it is first needed, as NLog does */
        if (to && make_parent_dirs(to) == 0) rename(s->path, to);
        free(to);
    }
    if (sink_open(s) != 0) s->size = 0;
}

static void sink_write(Sink *s, const char *line, size_t n) {
    if (!s->path) return;
    if (s->max_size > 0 && s->size > 0 && s->size + (long)n > s->max_size && s->fp) sink_rotate(s);
    if (!s->fp) return;
    fwrite(line, 1, n, s->fp);
    fflush(s->fp);
    s->size += (long)n;
}

/* ---- records ---- */

static int min_enabled(void) {
    int m = MSLOG_FATAL + 1;
    if (st.main.path && st.level < m) m = st.level;
    if (st.use_stderr && st.stderr_level < m) m = st.stderr_level;
    if (st.errors.path && st.errors_level < m) m = st.errors_level;
    return m;
}

int mslog_enabled(int level) { return level >= min_enabled(); }

/* A JSON string: quotes, backslashes and control characters escaped; other bytes as they are
 * (messages are UTF-8 text). */
static void json_str(Buf *b, const char *s, size_t n) {
    buf_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') { char e[2] = {'\\', (char)c}; buf_add(b, e, 2); }
        else if (c == '\n') buf_adds(b, "\\n");
        else if (c == '\t') buf_adds(b, "\\t");
        else if (c < 0x20 || c == 0x7f) { char e[8]; snprintf(e, sizeof e, "\\u%04x", c); buf_adds(b, e); }
        else buf_add(b, (const char *)&s[i], 1);
    }
    buf_add(b, "\"", 1);
}

static const char *run_id(void);

static void emit(int level, const char *logger, const char *msg, size_t len) {
    if (level < MSLOG_TRACE) level = MSLOG_TRACE;
    if (level > MSLOG_FATAL) level = MSLOG_FATAL;
    if (!mslog_enabled(level)) return;
    struct timespec ts;
    struct tm tm;
    char stamp[48];
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    size_t sl = strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(stamp + sl, sizeof stamp - sl, ".%04ld", (long)(ts.tv_nsec / 100000));

    Buf line = {0};
    buf_adds(&line, stamp);
    buf_adds(&line, " | ");
    buf_adds(&line, level_tags[level]);
    buf_adds(&line, " | ");
    buf_adds(&line, logger && *logger ? logger : st.logger_default);
    buf_adds(&line, " | ");
    /* Only the message is redacted: the stamp, level and logger are the engine's own words, and
     * a short secret matching them would garble the layout. */
    char *red;
    size_t rn;
    switch (mslog_redact(msg, len, &red, &rn)) {
    case 0: buf_add(&line, msg, len); break;
    case 1: buf_add(&line, red, rn); free(red); break;
    default: buf_adds(&line, "(message withheld: out of memory while masking secrets)");
    }
    buf_add(&line, "\n", 1);
    if (line.failed) { free(line.p); return; }

    if (st.use_stderr && level >= st.stderr_level) {
        fwrite(line.p, 1, line.n, stderr);
        fflush(stderr);
    }
    /* The files may want JSON for a log shipper; the console stays for people. */
    Buf file = line;
    Buf jl = {0};
    if (st.json) {
        struct tm utc;
        char iso[48];
        gmtime_r(&ts.tv_sec, &utc);
        size_t il = strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%S", &utc);
        snprintf(iso + il, sizeof iso - il, ".%03ldZ", (long)(ts.tv_nsec / 1000000));
        const char *body = line.p;
        size_t blen = line.n - 1;
        /* the message is what follows the third " | " of the text line (already redacted) */
        for (int bars = 0; bars < 3; bars++) {
            size_t k = 0;
            while (k + 3 <= blen && memcmp(body + k, " | ", 3) != 0) k++;
            if (k + 3 > blen) break;
            blen -= k + 3;
            body += k + 3;
        }
        buf_adds(&jl, "{\"time\":\"");
        buf_adds(&jl, iso);
        buf_adds(&jl, "\",\"level\":\"");
        buf_adds(&jl, level_names[level]);
        buf_adds(&jl, "\",\"logger\":");
        json_str(&jl, logger && *logger ? logger : st.logger_default, strlen(logger && *logger ? logger : st.logger_default));
        buf_adds(&jl, ",\"run_id\":\"");
        buf_adds(&jl, run_id());
        buf_adds(&jl, "\",\"message\":");
        json_str(&jl, body, blen);
        buf_adds(&jl, "}\n");
        if (!jl.failed) file = jl;
    }
    if (level >= st.level) sink_write(&st.main, file.p, file.n);
    if (level >= st.errors_level) sink_write(&st.errors, file.p, file.n);
    free(jl.p);
    free(line.p);
}

void mslog(int level, const char *logger, const char *fmt, ...) {
    if (!mslog_enabled(level)) return;
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) { emit(level, logger, small, (size_t)n); return; }
    char *big = malloc((size_t)n + 1);
    if (!big) { emit(level, logger, small, sizeof small - 1); return; }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    emit(level, logger, big, (size_t)n);
    free(big);
}

static const char *run_id(void) {
    if (st.run_id[0]) return st.run_id;
    unsigned char b[4];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, b, sizeof b) : -1;
    if (fd >= 0) close(fd);
    if (got != (ssize_t)sizeof b) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long x = (unsigned long)ts.tv_nsec ^ ((unsigned long)ts.tv_sec << 7) ^
                          ((unsigned long)getpid() << 16);
        for (int i = 0; i < 4; i++) b[i] = (unsigned char)(x >> (8 * i));
    }
    snprintf(st.run_id, sizeof st.run_id, "%02x%02x%02x%02x", b[0], b[1], b[2], b[3]);
    return st.run_id;
}

/* ---- Lua bindings ---- */

static int parse_level(const char *s) {
    if (strcasecmp(s, "warning") == 0) return MSLOG_WARN;
    for (int l = 0; l < NLEVELS; l++)
        if (strcasecmp(s, level_names[l]) == 0) return l;
    return -1;
}

static int check_level(lua_State *L, int arg) {
    const char *s = luaL_checkstring(L, arg);
    int l = parse_level(s);
    if (l < 0) return luaL_argerror(L, arg, lua_pushfstring(L, "unknown log level '%s'", s));
    return l;
}

/* The message of a record whose fmt is at index first: string.format(fmt, ...) when there are
 * further arguments, otherwise tostring(fmt) verbatim. Leaves the message on the stack. */
static const char *format_message(lua_State *L, int first, size_t *len) {
    int top = lua_gettop(L);
    if (top <= first) {
        if (top < first) lua_pushliteral(L, "");
        else luaL_tolstring(L, first, NULL);
        return lua_tolstring(L, -1, len);
    }
    lua_pushvalue(L, lua_upvalueindex(1)); /* string.format */
    for (int i = first; i <= top; i++) lua_pushvalue(L, i);
    lua_call(L, top - first + 1, 1);
    return lua_tolstring(L, -1, len);
}

static int log_record(lua_State *L, int level, const char *logger, int first) {
    if (!mslog_enabled(level)) return 0;
    size_t len;
    const char *msg = format_message(L, first, &len);
    emit(level, logger, msg ? msg : "", msg ? len : 0);
    return 0;
}

static const char *opt_logger(lua_State *L, int arg) {
    return lua_isnoneornil(L, arg) ? NULL : luaL_checkstring(L, arg);
}

/* log.<level>(logger, fmt, ...) */
#define LEVEL_FN(name, lvl)                                               \
    static int l_##name(lua_State *L) {                                   \
        return log_record(L, lvl, opt_logger(L, 1), 2);                   \
    }
LEVEL_FN(trace, MSLOG_TRACE)
LEVEL_FN(debug, MSLOG_DEBUG)
LEVEL_FN(info, MSLOG_INFO)
LEVEL_FN(warn, MSLOG_WARN)
LEVEL_FN(error, MSLOG_ERROR)
LEVEL_FN(fatal, MSLOG_FATAL)

/* log.run_start(logger, fmt, ...) / log.run_end(logger, fmt, ...): Info records prefixed with
 * "run <id> started: " / "run <id> finished: " so a run's lines can be found by id. */
static int run_edge(lua_State *L, const char *what) {
    if (!mslog_enabled(MSLOG_INFO)) return 0;
    const char *logger = opt_logger(L, 1);
    size_t len;
    const char *msg = format_message(L, 2, &len);
    lua_pushfstring(L, "run %s %s: %s", run_id(), what, msg ? msg : "");
    msg = lua_tolstring(L, -1, &len);
    emit(MSLOG_INFO, logger, msg, len);
    return 0;
}
static int l_run_start(lua_State *L) { return run_edge(L, "started"); }
static int l_run_end(lua_State *L) { return run_edge(L, "finished"); }

/* log.run_id() -> 8 hex chars, fixed for the life of the process */
static int l_run_id(lua_State *L) {
    lua_pushstring(L, run_id());
    return 1;
}

/* log.level() -> name of the main threshold */
static int l_level(lua_State *L) {
    lua_pushstring(L, level_names[st.level]);
    return 1;
}

/* log.set_level(name) */
static int l_set_level(lua_State *L) {
    st.level = check_level(L, 1);
    if (st.stderr_follows) st.stderr_level = st.level;
    return 0;
}

/* log.enabled(name) -> true when a record at that level would reach some sink */
static int l_enabled(lua_State *L) {
    lua_pushboolean(L, mslog_enabled(check_level(L, 1)));
    return 1;
}

/* log.redact(s) -> s with registered secrets and labelled credentials replaced by "***" (what
 * every record goes through) */
static int l_redact(lua_State *L) {
    size_t n, rn;
    const char *s = luaL_checklstring(L, 1, &n);
    char *red;
    int r = mslog_redact(s, n, &red, &rn);
    if (r < 0) return luaL_error(L, "out of memory");
    if (r == 0) { lua_settop(L, 1); return 1; }
    lua_pushlstring(L, red, rn); /* may raise on OOM: leaks red then, acceptable at that point */
    free(red);
    return 1;
}

/* log.add_secret(s) -> true when from now on s is masked wherever it appears, false when s is
 * nil or false (so optional settings need no check) or shorter than 4 bytes (see redact.h). */
static int l_add_secret(lua_State *L) {
    if (!lua_toboolean(L, 1)) { lua_pushboolean(L, 0); return 1; }
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    int r = mslog_add_secret(s, n);
    if (r < 0) return luaL_error(L, "out of memory");
    lua_pushboolean(L, r);
    return 1;
}

/* A path option: absent -> default, false -> off, string -> that path. */
static const char *opt_path(lua_State *L, const char *key, const char *def) {
    int t = lua_getfield(L, 1, key);
    const char *r = def;
    if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) r = NULL;
    else if (t == LUA_TSTRING) r = lua_tostring(L, -1);
    else if (t != LUA_TNIL) luaL_error(L, "log.setup: '%s' must be a string or false", key);
    lua_pop(L, 1); /* the string stays alive: it is a field of the options table */
    return r;
}

static lua_Integer opt_int(lua_State *L, const char *key, lua_Integer def, lua_Integer min) {
    int t = lua_getfield(L, 1, key);
    lua_Integer v = def;
    if (t != LUA_TNIL) {
        int ok;
        v = lua_tointegerx(L, -1, &ok);
        if (!ok || v < min) luaL_error(L, "log.setup: '%s' must be an integer >= %d", key, (int)min);
    }
    lua_pop(L, 1);
    return v;
}

static int opt_level(lua_State *L, const char *key, int def) {
    int l = def;
    if (lua_getfield(L, 1, key) != LUA_TNIL) {
        const char *s = lua_tostring(L, -1);
        l = s ? parse_level(s) : -1;
        if (l < 0) luaL_error(L, "log.setup: bad '%s' (trace, debug, info, warn, error, fatal)", key);
    }
    lua_pop(L, 1);
    return l;
}

/* An archive template: a path holding one {#} (or {###}: the number zero-padded to that many
 * digits, as NLog's). Raises on misuse; lib/metasync/nlog.lua checks what users write. */
typedef struct ArchiveSpec {
    const char *tmpl; /* NULL: archives beside the file as path.N */
    size_t pre;       /* bytes before the {#...} */
    int width;        /* number of # */
} ArchiveSpec;

static ArchiveSpec opt_archive(lua_State *L, const char *key) {
    ArchiveSpec a = {0};
    a.tmpl = opt_path(L, key, NULL);
    if (!a.tmpl) return a;
    const char *open = strstr(a.tmpl, "{#");
    const char *p = open ? open + 1 : NULL;
    while (p && *p == '#') p++;
    if (!open || *p != '}' || strstr(p, "{#") || p - open - 1 > 9)
        luaL_error(L, "log.setup: '%s' must hold one {#} (up to 9 #) where the archive number goes", key);
    a.pre = (size_t)(open - a.tmpl);
    a.width = (int)(p - open - 1);
    return a;
}

static int open_sink(Sink *s, const char *path, long max_size, int max_files, ArchiveSpec a,
                     char *err, size_t errcap) {
    if (!path) return 0;
    s->path = strdup(path);
    s->max_size = max_size;
    s->max_files = max_files;
    if (a.tmpl) {
        s->arch_pre = strndup(a.tmpl, a.pre);
        s->arch_suf = strdup(a.tmpl + a.pre + (size_t)a.width + 2);
        s->arch_width = a.width;
    }
    if (!s->path || (a.tmpl && (!s->arch_pre || !s->arch_suf))) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    if (make_parent_dirs(path) != 0 || sink_open(s) != 0) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* log.setup{level=, file=, errors_file=, errors_level=, stderr=, stderr_level=, max_size=,
 *           max_files=, archive=, errors_max_size=, errors_max_files=, errors_archive=,
 *           logger_default=} -> true | nil, message
 * Every call is a complete configuration: absent options take their defaults. The errors_*
 * rotation options default to the main file's. */
static int l_setup(lua_State *L) {
    if (lua_isnoneornil(L, 1)) { lua_settop(L, 0); lua_newtable(L); }
    luaL_checktype(L, 1, LUA_TTABLE);
    /* validate everything before touching the current state */
    int level = opt_level(L, "level", MSLOG_INFO);
    int errors_level = opt_level(L, "errors_level", MSLOG_ERROR);
    int has_stderr_level = lua_getfield(L, 1, "stderr_level") != LUA_TNIL;
    lua_pop(L, 1);
    int stderr_level = opt_level(L, "stderr_level", level);
    lua_getfield(L, 1, "stderr");
    int use_stderr = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
    lua_pop(L, 1);
    const char *file = opt_path(L, "file", DEFAULT_FILE);
    const char *errors_file = opt_path(L, "errors_file", DEFAULT_ERRORS_FILE);
    lua_Integer max_size = opt_int(L, "max_size", DEFAULT_MAX_SIZE, 0);
    lua_Integer max_files = opt_int(L, "max_files", DEFAULT_MAX_FILES, 0);
    lua_Integer emax_size = opt_int(L, "errors_max_size", max_size, 0);
    lua_Integer emax_files = opt_int(L, "errors_max_files", max_files, 0);
    if (max_files > MAX_ARCHIVES || emax_files > MAX_ARCHIVES)
        luaL_error(L, "log.setup: 'max_files' and 'errors_max_files' must be <= %d", MAX_ARCHIVES);
    if (max_size > LONG_MAX || emax_size > LONG_MAX) luaL_error(L, "log.setup: 'max_size' is too large");
    ArchiveSpec arch = opt_archive(L, "archive");
    ArchiveSpec earch = opt_archive(L, "errors_archive");
    const char *def = opt_path(L, "logger_default", DEFAULT_LOGGER);
    const char *format = opt_path(L, "format", "text");
    if (strcmp(format, "text") != 0 && strcmp(format, "json") != 0)
        luaL_error(L, "log.setup: 'format' must be \"text\" or \"json\"");
    if (!def || !*def || strlen(def) >= sizeof st.logger_default)
        luaL_error(L, "log.setup: 'logger_default' must be a non-empty string under 64 bytes");

    sink_close(&st.main);
    sink_close(&st.errors);
    st.level = level;
    st.errors_level = errors_level;
    st.stderr_level = stderr_level;
    st.stderr_follows = !has_stderr_level;
    st.use_stderr = use_stderr;
    st.json = strcmp(format, "json") == 0;
    strcpy(st.logger_default, def);
    char err[512];
    if (open_sink(&st.main, file, (long)max_size, (int)max_files, arch, err, sizeof err) != 0 ||
        open_sink(&st.errors, errors_file, (long)emax_size, (int)emax_files, earch, err, sizeof err) != 0) {
        sink_close(&st.main);
        sink_close(&st.errors);
        luaL_pushfail(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- logger objects: log.logger(name) -> obj with obj:info(fmt, ...) etc. ---- */

#define LOGGER_MT "metasync.logger"

static const char *check_logger(lua_State *L) {
    luaL_checkudata(L, 1, LOGGER_MT);
    lua_getiuservalue(L, 1, 1);
    const char *name = lua_tostring(L, -1);
    lua_pop(L, 1); /* the uservalue anchors the string */
    return name;
}

#define LOGGER_FN(name, lvl)                                              \
    static int m_##name(lua_State *L) {                                   \
        return log_record(L, lvl, check_logger(L), 2);                    \
    }
LOGGER_FN(trace, MSLOG_TRACE)
LOGGER_FN(debug, MSLOG_DEBUG)
LOGGER_FN(info, MSLOG_INFO)
LOGGER_FN(warn, MSLOG_WARN)
LOGGER_FN(error, MSLOG_ERROR)
LOGGER_FN(fatal, MSLOG_FATAL)

/* logger:run_start(fmt, ...) / logger:run_end(fmt, ...): the logger is argument 1 already, which
 * opt_logger would reject, so swap in its name. */
static int m_run_edge(lua_State *L, int (*fn)(lua_State *)) {
    lua_pushstring(L, check_logger(L));
    lua_replace(L, 1);
    return fn(L);
}
static int m_run_start(lua_State *L) { return m_run_edge(L, l_run_start); }
static int m_run_end(lua_State *L) { return m_run_edge(L, l_run_end); }

/* logger:enabled(level) */
static int m_enabled(lua_State *L) {
    check_logger(L);
    lua_pushboolean(L, mslog_enabled(check_level(L, 2)));
    return 1;
}

static int m_tostring(lua_State *L) {
    lua_pushfstring(L, "logger (%s)", check_logger(L));
    return 1;
}

/* log.logger(name) */
static int l_logger(lua_State *L) {
    luaL_checkstring(L, 1);
    lua_newuserdatauv(L, 0, 1);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    luaL_setmetatable(L, LOGGER_MT);
    return 1;
}

static const luaL_Reg logger_methods[] = {
    {"trace", m_trace}, {"debug", m_debug}, {"info", m_info}, {"warn", m_warn},
    {"error", m_error}, {"fatal", m_fatal}, {"run_start", m_run_start}, {"run_end", m_run_end},
    {"enabled", m_enabled}, {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"trace", l_trace}, {"debug", l_debug}, {"info", l_info}, {"warn", l_warn},
    {"error", l_error}, {"fatal", l_fatal}, {"run_start", l_run_start}, {"run_end", l_run_end},
    {"run_id", l_run_id}, {"level", l_level}, {"set_level", l_set_level},
    {"enabled", l_enabled}, {"redact", l_redact}, {"add_secret", l_add_secret},
    {"setup", l_setup}, {"logger", l_logger}, {NULL, NULL},
};

int luaopen_metasync_log(lua_State *L) {
    /* string.format, shared as upvalue 1 by every function that formats */
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 0);
    lua_getfield(L, -1, "format");
    lua_remove(L, -2);

    if (luaL_newmetatable(L, LOGGER_MT)) {
        luaL_newlibtable(L, logger_methods);
        lua_pushvalue(L, -3);
        luaL_setfuncs(L, logger_methods, 1);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, m_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);

    luaL_newlibtable(L, funcs);
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, funcs, 1);
    lua_remove(L, -2);
    return 1;
}

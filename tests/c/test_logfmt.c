/* The C logging API (mslog, mslog_enabled): thresholds, printf formatting including messages
 * longer than the on-stack buffer, redaction, and the line layout. C tests link only the core
 * modules, so the log module is compiled into this test directly. */
#include "../../engine/log.c"

#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                             \
        }                                                                           \
    } while (0)

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* log.setup{level=level, file=dir/main.log, errors_file=dir/err.log, stderr=false} */
static void setup(lua_State *L, const char *level, const char *file, const char *errors) {
    lua_getfield(L, -1, "setup");
    lua_newtable(L);
    lua_pushstring(L, level);
    lua_setfield(L, -2, "level");
    lua_pushstring(L, file);
    lua_setfield(L, -2, "file");
    lua_pushstring(L, errors);
    lua_setfield(L, -2, "errors_file");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "stderr");
    lua_call(L, 1, 1);
    CHECK(lua_toboolean(L, -1));
    lua_pop(L, 1);
}

/* Does line number n (1-based) of text have the layout with these level tag, logger, message? */
static int line_is(const char *text, int n, const char *tag, const char *logger, const char *msg) {
    const char *p = text;
    for (int i = 1; i < n && p; i++) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    if (!p || !*p) return 0;
    const char *e = strchr(p, '\n');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    /* "YYYY-MM-DD HH:MM:SS.ffff | " is 27 characters */
    if (len < 27) return 0;
    for (int i = 0; i < 24; i++) {
        char c = p[i];
        int digit = c >= '0' && c <= '9';
        int want_digit = !(i == 4 || i == 7 || i == 10 || i == 13 || i == 16 || i == 19);
        if (want_digit != digit) return 0;
    }
    if (p[4] != '-' || p[7] != '-' || p[10] != ' ' || p[13] != ':' || p[16] != ':' || p[19] != '.')
        return 0;
    char want[8192];
    snprintf(want, sizeof want, " | %s | %s | %s", tag, logger, msg);
    return len - 24 == strlen(want) && memcmp(p + 24, want, len - 24) == 0;
}

int main(void) {
    char dir[] = "/tmp/test_logfmt.XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    char file[256], errors[256];
    snprintf(file, sizeof file, "%s/sub/main.log", dir);
    snprintf(errors, sizeof errors, "%s/sub/err.log", dir);

    /* before any setup: Info and above, on stderr only */
    CHECK(mslog_enabled(MSLOG_INFO));
    CHECK(!mslog_enabled(MSLOG_DEBUG));

    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "metasync.log", luaopen_metasync_log, 0);

    setup(L, "warn", file, errors);
    CHECK(!mslog_enabled(MSLOG_INFO));
    CHECK(mslog_enabled(MSLOG_WARN));
    mslog(MSLOG_INFO, "c", "dropped %d", 1);
    mslog(MSLOG_WARN, "c", "n=%d s=%s f=%.1f", 42, "str", 2.25);
    mslog(MSLOG_ERROR, "http", "GET %s -> %d password=%s", "/x", 500, "topsecret");

    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    mslog(MSLOG_FATAL, NULL, "long %s end", big);

    char *text = slurp(file);
    CHECK(text != NULL);
    if (text) {
        CHECK(line_is(text, 1, "WARN ", "c", "n=42 s=str f=2.2"));
        CHECK(line_is(text, 2, "ERROR", "http", "GET /x -> 500 password=***"));
        char want[3100];
        snprintf(want, sizeof want, "long %s end", big);
        CHECK(line_is(text, 3, "FATAL", "metasync", want));
        CHECK(!strstr(text, "dropped"));
        CHECK(!strstr(text, "topsecret"));
    }
    text = slurp(errors);
    CHECK(text != NULL);
    if (text) {
        CHECK(line_is(text, 1, "ERROR", "http", "GET /x -> 500 password=***"));
        CHECK(strstr(text, "| WARN ") == NULL);
    }

    /* trace goes through once enabled */
    setup(L, "trace", file, errors);
    CHECK(mslog_enabled(MSLOG_TRACE));
    mslog(MSLOG_TRACE, "t", "%s", "Authorization: Bearer abc.def");
    text = slurp(file);
    CHECK(text && line_is(text, 4, "TRACE", "t", "Authorization: ***"));

    lua_close(L);
    /* leave the state clean and the directory removed */
    sink_close(&st.main);
    sink_close(&st.errors);
    remove(file);
    remove(errors);
    char sub[300];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    rmdir(sub);
    rmdir(dir);
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    puts("test_logfmt: ok");
    return 0;
}

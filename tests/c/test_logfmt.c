/* The C logging API (mslog, mslog_enabled): thresholds, printf formatting including messages
 * longer than the on-stack buffer, redaction (by keyword and by registered value, in every sink
 * and through mslog_redact / mslog_fwrite_redacted), and the line layout. C tests link only the
 * core modules, so the log module and redact.c are compiled into this test directly. */
#define _GNU_SOURCE /* memmem, for redact.c */
#include "../../engine/log.c"
#include "../../engine/redact.c"

#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* mslog_redact(in[0..n)) gives want[0..wn) (want NULL: nothing masked, the text unchanged). */
static void check_redact_at(int line, const char *in, size_t n, const char *want, size_t wn) {
    char *out = NULL;
    size_t on = 0;
    int r = mslog_redact(in, n, &out, &on);
    int ok = want ? r == 1 && on == wn && memcmp(out, want, on) == 0
                  : r == 0 || (r == 1 && on == n && memcmp(out, in, n) == 0);
    if (!ok) {
        fprintf(stderr, "%s:%d: redact(\"%.*s\") gave %d \"%.*s\", want \"%.*s\"\n", __FILE__, line,
                (int)(n > 200 ? 200 : n), in, r, r == 1 ? (int)(on > 200 ? 200 : on) : 0,
                r == 1 ? out : "", want ? (int)(wn > 200 ? 200 : wn) : 11,
                want ? want : "(unchanged)");
        failures++;
    }
    if (r == 1) free(out);
}
#define CHECK_REDACT(in, want) \
    check_redact_at(__LINE__, in, strlen(in), want, (want) ? strlen((want) ? (want) : "") : 0)

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

    /* ---- redaction by value ---- */
    /* before registration only labelled values go: free text leaks (what rule 1 is for) */
    CHECK_REDACT("login failed for password S3cr3t-pw", NULL);
    CHECK(mslog_add_secret("abc", 3) == 0);  /* too short: ignored... */
    CHECK_REDACT("abc password=abc", "abc password=***"); /* ...but masked where labelled */
    CHECK(mslog_add_secret("Qx9!", 4) == 1); /* the shortest registered */
    CHECK(mslog_add_secret(NULL, 0) == 0);
    CHECK(mslog_add_secret("S3cr3t-pw", 9) == 1);
    size_t known = reg.n;
    CHECK(mslog_add_secret("S3cr3t-pw", 9) == 1 && reg.n == known); /* no duplicates */
    CHECK_REDACT("login failed for password S3cr3t-pw", "login failed for password ***");
    CHECK_REDACT("S3cr3t-pw", "***");
    CHECK_REDACT("S3cr3t-pwS3cr3t-pw", "***");
    CHECK_REDACT("<S3cr3t-pw|S3cr3t-pw>", "<***|***>");
    CHECK_REDACT("a Qx9! b", "a *** b");
    CHECK_REDACT("S3cr3t-p w", NULL);
    CHECK_REDACT("", NULL);
    {   /* NUL bytes in the text do not stop the search */
        static const char bin[] = "x\0S3cr3t-pw", want[] = "x\0***";
        check_redact_at(__LINE__, bin, sizeof bin - 1, want, sizeof want - 1);
    }
    /* one secret inside another, or overlapping: one "***" for the union, in any order */
    CHECK(mslog_add_secret("cr3t-pw-and-more", 16) == 1);
    CHECK_REDACT("[S3cr3t-pw-and-more]", "[***]");
    CHECK_REDACT("[cr3t-pw-and-more]", "[***]");
    /* the forms a secret takes in JSON (with and without "\/") and URL-encoded */
    CHECK(mslog_add_secret("pa\"ss/wd\\x", 10) == 1);
    CHECK_REDACT("{\"p\":\"pa\\\"ss\\/wd\\\\x\"}", "{\"p\":\"***\"}");
    CHECK_REDACT("{\"p\":\"pa\\\"ss/wd\\\\x\"}", "{\"p\":\"***\"}");
    CHECK(mslog_add_secret("p@ss word!", 10) == 1);
    CHECK_REDACT("note=p%40ss%20word%21&next=1", "note=***&next=1");
    /* an Authorization value: the credential alone is masked too */
    CHECK(mslog_add_secret("Basic RE9NQUlOXHU6cHc=", 22) == 1);
    CHECK_REDACT("echo: RE9NQUlOXHU6cHc= (Basic RE9NQUlOXHU6cHc=)", "echo: *** (***)");
    CHECK(mslog_add_secret("Bearer tok.abc/def", 18) == 1);
    CHECK_REDACT("{\"t\":\"tok.abc\\/def\"}", "{\"t\":\"***\"}");
    /* both rules in one text */
    CHECK_REDACT("said S3cr3t-pw, password: hunter2", "said ***, password: ***");

    /* long text: a secret at both ends, past any on-stack buffer */
    {
        size_t n = 200000;
        char *big = malloc(n + 1), *want = malloc(n + 1);
        CHECK(big && want);
        if (big && want) {
            memset(big, 'y', n);
            memcpy(big, "S3cr3t-pw", 9);
            memcpy(big + n - 9, "S3cr3t-pw", 9);
            big[n] = '\0';
            memset(want, 'y', n - 12);
            memcpy(want, "***", 3);
            memcpy(want + 3 + (n - 18), "***", 3);
            check_redact_at(__LINE__, big, n, want, n - 12);
        }
        free(big);
        free(want);
    }
    /* cost: linear in secrets x text. Forty secrets over 10 MiB of text that holds none (the
     * common case: every secret scanned for, nothing found), then one secret repeated back to
     * back (a rescan from the start after each replacement would be quadratic). The repeated
     * text is kept small: under AddressSanitizer each memmem call checks the whole rest of the
     * text, so many matches in one long text cost quadratic time there only. */
    {
        size_t n = 1 << 20;
        char *big = malloc(n + 1);
        CHECK(big != NULL);
        if (big) {
            char sec[32];
            for (int i = 0; i < 40; i++) {
                snprintf(sec, sizeof sec, "secret-number-%02d", i);
                mslog_add_secret(sec, strlen(sec));
            }
            memset(big, 'b', n);
            big[n] = '\0';
            clock_t t0 = clock();
            for (int i = 0; i < 10; i++) {
                char *out;
                size_t on;
                CHECK(mslog_redact(big, n, &out, &on) == 0);
            }
            mslog_add_secret("aaaa", 4);
            size_t rn = 1 << 16;
            memset(big, 'a', rn);
            big[rn] = '\0';
            for (int i = 0; i < 10; i++) {
                char *out;
                size_t on;
                CHECK(mslog_redact(big, rn, &out, &on) == 1 && on == 3);
                if (on == 3) free(out);
            }
            double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
            if (secs > 5) { fprintf(stderr, "redaction took %.1f s\n", secs); failures++; }
        }
        free(big);
    }

    /* every sink: the main file, the errors file and stderr */
    char sfile[256], serrors[256], serr[256];
    snprintf(sfile, sizeof sfile, "%s/sub/sec.log", dir);
    snprintf(serrors, sizeof serrors, "%s/sub/sec-err.log", dir);
    snprintf(serr, sizeof serr, "%s/sub/stderr.txt", dir);
    setup(L, "info", sfile, serrors);
    st.use_stderr = 1; /* setup() turns stderr off; the test captures it instead */
    fflush(stderr);
    int saved = dup(2);
    FILE *cap = fopen(serr, "w");
    CHECK(saved >= 0 && cap != NULL);
    if (cap) dup2(fileno(cap), 2);
    mslog(MSLOG_ERROR, "http", "login failed for password %s", "S3cr3t-pw");
    CHECK(mslog_add_secret("WARN", 4) == 1);
    mslog(MSLOG_WARN, "c", "WARN here"); /* only the message is masked: the tag stays */
    fflush(stderr);
    if (saved >= 0) { dup2(saved, 2); close(saved); }
    if (cap) fclose(cap);
    st.use_stderr = 0;
    text = slurp(sfile);
    CHECK(text && line_is(text, 1, "ERROR", "http", "login failed for password ***"));
    CHECK(text && line_is(text, 2, "WARN ", "c", "*** here"));
    text = slurp(serrors);
    CHECK(text && line_is(text, 1, "ERROR", "http", "login failed for password ***"));
    text = slurp(serr);
    CHECK(text && line_is(text, 1, "ERROR", "http", "login failed for password ***"));
    CHECK(text && !strstr(text, "S3cr3t"));

    /* the C entry point for other output (the REPL, error reports) */
    FILE *f = fopen(serr, "w");
    CHECK(f != NULL);
    if (f) {
        mslog_fwrite_redacted(f, "error: S3cr3t-pw rejected", 25);
        fclose(f);
    }
    text = slurp(serr);
    CHECK(text && strcmp(text, "error: *** rejected") == 0);

    /* Lua: log.redact and log.add_secret share the registry */
    CHECK(luaL_dostring(L, "local log = require 'metasync.log'\n"
                           "assert(log.redact('x S3cr3t-pw y') == 'x *** y')\n"
                           "assert(log.add_secret('Lua-added-9') == true)\n"
                           "assert(log.add_secret(nil) == false and log.add_secret('ab') == false)") == 0);
    CHECK_REDACT("from Lua-added-9", "from ***");

    mslog_clear_secrets();
    CHECK(reg.n == 0);
    CHECK_REDACT("S3cr3t-pw", NULL);

    /* table keys that name a credential (the REPL printer masks their values) */
    CHECK(mslog_secret_key("password", 8) && mslog_secret_key("sectigoPassword", 15));
    CHECK(mslog_secret_key("clientSecret", 12) && mslog_secret_key("client_secret", 13));
    CHECK(mslog_secret_key("Authorization", 13) && mslog_secret_key("X-Api-Key", 9));
    CHECK(mslog_secret_key("api_key", 7) && mslog_secret_key("ApiKey", 6));
    CHECK(mslog_secret_key("token", 5) && mslog_secret_key("access_token", 12));
    CHECK(mslog_secret_key("accessToken", 11) && mslog_secret_key("passwd", 6));
    CHECK(!mslog_secret_key("tokenUrl", 8) && !mslog_secret_key("login", 5));
    CHECK(!mslog_secret_key("tok", 3) && !mslog_secret_key("", 0));

    lua_close(L);
    /* leave the state clean and the directory removed */
    sink_close(&st.main);
    sink_close(&st.errors);
    remove(file);
    remove(errors);
    remove(sfile);
    remove(serrors);
    remove(serr);
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

/* Redaction: what keeps credentials out of every log sink, log.redact, the REPL printer and
 * error reports. Two rules, applied in this order:
 *  1. by value: each registered secret (mslog_add_secret), wherever it appears and whatever
 *     surrounds it ("login failed for password S3cr3t" has no separator to key on);
 *  2. by keyword: the value after a credential word and ':' or '=', so a secret nobody
 *     registered (or one too short to register) is still masked where it is labelled. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include "redact.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/* ---- rule 1: registered values ----
 * A plain list searched with memmem once per secret: a run has a handful of secrets (two
 * passwords, two client secrets, the Basic credential, the tokens fetched so far), and memmem
 * is far faster per byte than any matcher we could build for so few patterns. */

typedef struct Secret {
    char *p;
    size_t n;
} Secret;

static struct {
    Secret *v;
    size_t n, cap;
} reg;

/* Registers exactly s[0..n) (no variants); 1 when known now, -1 when out of memory. */
static int add_exact(const char *s, size_t n) {
    for (size_t i = 0; i < reg.n; i++)
        if (reg.v[i].n == n && memcmp(reg.v[i].p, s, n) == 0) return 1;
    if (reg.n == reg.cap) {
        size_t cap = reg.cap ? reg.cap * 2 : 16;
        Secret *v = realloc(reg.v, cap * sizeof *v);
        if (!v) return -1;
        reg.v = v;
        reg.cap = cap;
    }
    char *p = malloc(n + 1);
    if (!p) return -1;
    memcpy(p, s, n);
    p[n] = '\0';
    reg.v[reg.n].p = p;
    reg.v[reg.n].n = n;
    reg.n++;
    return 1;
}

/* The secret as it reads inside a JSON string: '"', '\' and control characters escaped, and '/'
 * too when slash is set (lua-cjson writes "\/"; metasync.json does not). */
static int json_form(const char *s, size_t n, int slash, Buf *o) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[7] = {'\\', 0};
        size_t el = 2;
        switch (c) {
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        case '\b': e[1] = 'b'; break;
        case '\f': e[1] = 'f'; break;
        default:
            if (c == '/' && slash) { e[1] = '/'; break; }
            if (c >= 0x20) { buf_add(o, (const char *)&s[i], 1); continue; }
            memcpy(e, "\\u00", 4);
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            el = 6;
        }
        buf_add(o, e, el);
    }
    return o->failed ? -1 : 0;
}

/* The secret URL-encoded as metasync.rest encodes form and query values (RFC 3986 unreserved
 * characters kept, everything else %XX), which is how a form body echoed back would show it. */
static int url_form(const char *s, size_t n, Buf *o) {
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            buf_add(o, (const char *)&s[i], 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_add(o, e, 3);
        }
    }
    return o->failed ? -1 : 0;
}

/* s and the encoded forms of it that differ from s. */
static int add_with_forms(const char *s, size_t n) {
    if (add_exact(s, n) < 0) return -1;
    for (int form = 0; form < 3; form++) {
        Buf o = {0};
        int rc = form < 2 ? json_form(s, n, form, &o) : url_form(s, n, &o);
        if (rc == 0 && o.n && (o.n != n || memcmp(o.p, s, n) != 0)) rc = add_exact(o.p, o.n);
        free(o.p);
        if (rc < 0) return -1;
    }
    return 1;
}

int mslog_add_secret(const char *s, size_t n) {
    if (!s || n < MSLOG_SECRET_MIN) return 0;
    if (add_with_forms(s, n) < 0) return -1;
    /* An Authorization value: its credential also travels on its own (a server may echo the
     * base64 without the scheme), so it is masked by itself too. */
    static const char *const schemes[] = {"basic ", "bearer ", NULL};
    for (int k = 0; schemes[k]; k++) {
        size_t sl = strlen(schemes[k]), i;
        for (i = 0; i < sl && i < n && lower((unsigned char)s[i]) == schemes[k][i]; i++) {}
        if (i < sl) continue;
        while (i < n && s[i] == ' ') i++;
        if (n - i >= MSLOG_SECRET_MIN && add_with_forms(s + i, n - i) < 0) return -1;
    }
    return 1;
}

void mslog_clear_secrets(void) {
    for (size_t i = 0; i < reg.n; i++) free(reg.v[i].p);
    free(reg.v);
    reg.v = NULL;
    reg.n = reg.cap = 0;
}

/* Marks every byte covered by an occurrence of some secret, then writes each maximal marked run
 * as one "***". Marking first makes the result independent of the order of the secrets when one
 * contains another or two occurrences overlap. Returns like mslog_redact. */
static int mask_values(const char *s, size_t n, char **out, size_t *outn) {
    unsigned char *mark = NULL;
    for (size_t k = 0; k < reg.n; k++) {
        const Secret *sec = &reg.v[k];
        const char *p = s, *end = s + n;
        while ((size_t)(end - p) >= sec->n && (p = memmem(p, (size_t)(end - p), sec->p, sec->n))) {
            if (!mark && !(mark = calloc(n, 1))) return -1;
            memset(mark + (p - s), 1, sec->n);
            p += sec->n;
        }
    }
    if (!mark) return 0;
    /* every run is at least MSLOG_SECRET_MIN > 3 bytes long, so the text only shrinks */
    char *o = malloc(n + 1);
    if (!o) { free(mark); return -1; }
    size_t j = 0;
    for (size_t i = 0; i < n;) {
        if (!mark[i]) { o[j++] = s[i++]; continue; }
        memcpy(o + j, "***", 3);
        j += 3;
        while (i < n && mark[i]) i++;
    }
    o[j] = '\0';
    free(mark);
    *out = o;
    *outn = j;
    return 1;
}

/* ---- rule 2: keywords ----
 * A key is one of the words below, matched case-insensitively anywhere (so "X-Password" and
 * "new_password" count). It counts as a key only when followed by an optional closing quote,
 * optional blanks and a ':' or '='. The value after optional blanks is replaced by "***":
 *  - a quoted value ("..." or '...', backslash escapes honoured) loses its contents, quotes stay;
 *  - after "authorization" an unquoted value runs to the end of the line (it holds a scheme and a
 *    credential: "Basic dXNlcjpwYXNz");
 *  - any other unquoted value runs up to a blank, ',', ';', '&', ')', ']', '}' or end of line. */
static const char *const secret_keys[] = {
    "authorization", "password", "passwd", "login", "client_secret", "secret_key",
    "access_token", "refresh_token", "id_token", "api_key", "apikey", "x-api-key", NULL,
};

static int ci_prefix(const char *s, size_t n, const char *key) {
    size_t i;
    for (i = 0; key[i]; i++)
        if (i >= n || lower((unsigned char)s[i]) != key[i]) return 0;
    return 1;
}

static int has_secret_word(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int c = lower((unsigned char)s[i]);
        if (c != 'a' && c != 'p' && c != 'l' && c != 'c' && c != 's' && c != 'r' && c != 'i' &&
            c != 'x')
            continue;
        for (int k = 0; secret_keys[k]; k++)
            if (ci_prefix(s + i, n - i, secret_keys[k])) return 1;
    }
    return 0;
}

/* Where the value of a key ending at s[i] starts, or 0 when no separator follows. */
static size_t value_start(const char *s, size_t n, size_t i) {
    if (i < n && (s[i] == '"' || s[i] == '\'')) i++;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    if (i >= n || (s[i] != ':' && s[i] != '=')) return 0;
    i++;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    return i;
}

static void mask_keywords(const char *s, size_t n, Buf *out) {
    size_t i = 0, copied = 0;
    while (i < n) {
        int k;
        for (k = 0; secret_keys[k]; k++)
            if (ci_prefix(s + i, n - i, secret_keys[k])) break;
        if (!secret_keys[k]) { i++; continue; }
        size_t keyend = i + strlen(secret_keys[k]);
        size_t v = value_start(s, n, keyend);
        if (!v || v >= n || s[v] == '\n' || s[v] == '\r') { i = keyend; continue; }
        size_t e = v;
        if (s[v] == '"' || s[v] == '\'') {
            char q = s[v];
            v++;
            for (e = v; e < n && s[e] != q; e++)
                if (s[e] == '\\' && e + 1 < n) e++;
        } else if (k == 0) {
            while (e < n && s[e] != '\n' && s[e] != '\r') e++;
        } else {
            while (e < n && !strchr(" \t\r\n,;&)]}\"'", s[e])) e++;
        }
        buf_add(out, s + copied, v - copied);
        buf_add(out, "***", 3);
        copied = i = e;
    }
    buf_add(out, s + copied, n - copied);
}

/* ---- both rules ---- */

int mslog_redact(const char *s, size_t n, char **out, size_t *outn) {
    char *a = NULL;
    size_t an = 0;
    int r = reg.n ? mask_values(s, n, &a, &an) : 0;
    if (r < 0) return -1;
    const char *t = r ? a : s;
    size_t tn = r ? an : n;
    if (has_secret_word(t, tn)) {
        Buf b = {0};
        mask_keywords(t, tn, &b);
        free(a);
        if (b.failed || !b.p) { free(b.p); return -1; }
        *out = b.p;
        *outn = b.n;
        return 1;
    }
    if (!r) return 0;
    *out = a;
    *outn = an;
    return 1;
}

void mslog_fwrite_redacted(FILE *f, const char *s, size_t n) {
    char *red;
    size_t rn;
    switch (mslog_redact(s, n, &red, &rn)) {
    case 0: fwrite(s, 1, n, f); break;
    case 1: fwrite(red, 1, rn, f); free(red); break;
    default: fputs("(message withheld: out of memory while masking secrets)", f);
    }
}

static int ci_contains(const char *s, size_t n, const char *word) {
    size_t wl = strlen(word);
    for (size_t i = 0; i + wl <= n; i++)
        if (ci_prefix(s + i, n - i, word)) return 1;
    return 0;
}

int mslog_secret_key(const char *k, size_t n) {
    static const char *const words[] = {"password", "passwd", "secret", "authorization",
                                        "apikey", "api_key", "api-key", NULL};
    for (int i = 0; words[i]; i++)
        if (ci_contains(k, n, words[i])) return 1;
    return n >= 5 && ci_prefix(k + n - 5, 5, "token");
}

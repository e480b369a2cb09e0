/* A growable byte buffer for C-side text (log lines, masked copies), shared by log.c and
 * redact.c. Never live across a Lua error: it is plain malloc'd memory. An allocation failure
 * sets `failed` and later adds do nothing, so a caller checks once at the end. */
#ifndef METASYNC_BUF_H
#define METASYNC_BUF_H

#include <stdlib.h>
#include <string.h>

typedef struct Buf {
    char *p;
    size_t n, cap;
    int failed;
} Buf;

static inline void buf_add(Buf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->failed = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static inline void buf_adds(Buf *b, const char *s) { buf_add(b, s, strlen(s)); }

#endif

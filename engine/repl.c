/* The interactive shell: `metasync repl`. Each input chunk is first tried as an expression
 * ("return <line>"), else as statements, reading more lines while the parser only lacks input.
 * Chunks run as scheduler tasks so HTTP calls work interactively; results are pretty-printed.
 * On a terminal: libedit line editing, history in ~/.metasync_history, completion of globals
 * and fields, and inside a string of field names and config keys. Otherwise lines are read
 * plainly and nothing but program output is written; `repl -e CHUNK` runs one chunk. Off a
 * terminal a chunk that fails makes the exit status 1 (130 after Ctrl-C), so scripts notice.
 * The globals, help and the helpers are Lua (lib/metasync/shell.lua). */
#include "modules.h"
#include "redact.h"

#include <lauxlib.h>
#include <lualib.h>

#include <editline/readline.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#ifndef METASYNC_VERSION
#define METASYNC_VERSION "dev"
#endif

#define PROMPT "metasync> "
#define PROMPT2 "      >> "
#define HISTORY_NAME ".metasync_history"
#define HISTORY_MAX 1000
#define PP_MAX_DEPTH 8
#define PP_INLINE_WIDTH 72
#define PP_INLINE_ITEMS 12

/* ---- signals ---- */

static volatile sig_atomic_t running;     /* a chunk is executing */
static volatile sig_atomic_t interrupted; /* Ctrl-C while reading */
static volatile sig_atomic_t stopped;     /* Ctrl-C while a chunk ran */

static void on_sigint(int sig) {
    (void)sig;
    if (running) {
        stopped = 1;
        sched_interrupt();
    } else {
        interrupted = 1;
    }
}

/* No SA_RESTART: a Ctrl-C at the prompt must make the pending read return. */
static void set_sigint(void (*handler)(int), struct sigaction *old) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, old);
}

/* ---- pretty printer ----
 * Runs inside lua_pcall (pp_values), so __tostring errors and stack overflow are caught. Output
 * goes straight to stdout: nothing is buffered across a possible Lua error (the masking below
 * allocates, but only between two calls that cannot raise).
 * The clients and the configuration hold passwords, client secrets and the Authorization value,
 * and a screen is easily shared or recorded, so nothing secret is printed: every text shown
 * goes through the log's redaction (registered secret values, labelled credentials), and a
 * table field whose key names a credential shows as MASK whatever its value. */

#define MASK "\"***\""

/* Printed length of text once masked. */
static size_t redacted_len(const char *s, size_t n) {
    char *red;
    size_t rn;
    int r = mslog_redact(s, n, &red, &rn);
    if (r == 1) free(red);
    return r == 0 ? n : r == 1 ? rn : 3;
}

static void pp_string(const char *s, size_t n) {
    char *red;
    size_t rn;
    int r = mslog_redact(s, n, &red, &rn);
    if (r < 0) { fputs(MASK, stdout); return; }
    if (r == 1) { s = red; n = rn; }
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        default:
            if (c < 32 || c == 127) printf("\\%d", c);
            else putchar(c);
        }
    }
    putchar('"');
    if (r == 1) free(red);
}

static int is_identifier(const char *s, size_t n) {
    static const char *const kw[] = {"and", "break", "do", "else", "elseif", "end", "false",
        "for", "function", "goto", "if", "in", "local", "nil", "not", "or", "repeat", "return",
        "then", "true", "until", "while", NULL};
    if (n == 0 || (s[0] >= '0' && s[0] <= '9')) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return 0;
    }
    for (int i = 0; kw[i]; i++)
        if (strcmp(s, kw[i]) == 0) return 0;
    return 1;
}

/* json.null (cjson's NULL lightuserdata) reads as what it stands for. */
static int is_null(lua_State *L, int idx) {
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}

/* A scalar as it reads in Lua source (strings quoted); tostring for the rest. */
static void pp_scalar(lua_State *L, int idx) {
    size_t n;
    if (is_null(L, idx)) {
        fputs("null", stdout);
        return;
    }
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *s = lua_tolstring(L, idx, &n);
        pp_string(s, n);
        return;
    }
    const char *s = luaL_tolstring(L, idx, &n);
    mslog_fwrite_redacted(stdout, s, n);
    lua_pop(L, 1);
}

/* Printed width of a scalar, to decide whether a table fits on one line. */
static size_t scalar_width(lua_State *L, int idx) {
    size_t n;
    const char *s;
    if (is_null(L, idx)) return 4;
    if (lua_type(L, idx) == LUA_TSTRING) {
        s = lua_tolstring(L, idx, &n);
        return redacted_len(s, n) + 2;
    }
    s = luaL_tolstring(L, idx, &n);
    n = redacted_len(s, n);
    lua_pop(L, 1);
    return n;
}

/* Is the field with key at kidx and value at vidx printed as MASK? When its key names a
 * credential (mslog_secret_key) and its value could hold one: a table is walked instead (its
 * own fields judged the same way), and a boolean only says whether something is on. */
static int masked_field(lua_State *L, int kidx, int vidx) {
    int t = lua_type(L, vidx);
    if (lua_type(L, kidx) != LUA_TSTRING || t == LUA_TTABLE || t == LUA_TBOOLEAN || t == LUA_TNIL)
        return 0;
    size_t n;
    const char *k = lua_tolstring(L, kidx, &n);
    return mslog_secret_key(k, n);
}

static int key_rank(lua_State *L, int idx) {
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER: return 0;
    case LUA_TSTRING: return 1;
    case LUA_TBOOLEAN: return 2;
    default: return 3;
    }
}

/* table.sort comparator: numbers, then strings, then booleans, then the rest by address. */
static int key_less(lua_State *L) {
    int ra = key_rank(L, 1), rb = key_rank(L, 2);
    int r;
    if (ra != rb) r = ra < rb;
    else if (ra <= 1) r = lua_compare(L, 1, 2, LUA_OPLT);
    else if (ra == 2) r = !lua_toboolean(L, 1) && lua_toboolean(L, 2);
    else r = (const char *)lua_topointer(L, 1) < (const char *)lua_topointer(L, 2);
    lua_pushboolean(L, r);
    return 1;
}

/* table.sort as it was when the REPL started: the user may reassign the global "table". */
static const char sort_key = 's';

static void indent(int depth) {
    for (int i = 0; i < depth; i++) fputs("  ", stdout);
}

static void pp_key(lua_State *L, int idx) {
    size_t n = 0;
    const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &n) : NULL;
    if (s && is_identifier(s, n)) {
        mslog_fwrite_redacted(stdout, s, n);
    } else {
        putchar('[');
        pp_scalar(L, idx);
        putchar(']');
    }
    fputs(" = ", stdout);
}

static void pp_value(lua_State *L, int idx, int depth, int seen);

/* Table at idx: sorted keys, the 1..n run without keys, small scalar-only tables on one line.
 * seen holds the tables on the current path, so a cycle prints as <cycle> rather than looping. */
static void pp_table(lua_State *L, int idx, int depth, int seen) {
    luaL_checkstack(L, 8, "table too deeply nested");
    lua_pushvalue(L, idx);
    if (lua_rawget(L, seen) != LUA_TNIL) {
        lua_pop(L, 1);
        fputs("<cycle>", stdout);
        return;
    }
    lua_pop(L, 1);
    if (depth >= PP_MAX_DEPTH) {
        fputs("{...}", stdout);
        return;
    }
    lua_pushvalue(L, idx);
    lua_pushboolean(L, 1);
    lua_rawset(L, seen);

    /* keys: a sorted sequence at index keys */
    lua_newtable(L);
    int keys = lua_gettop(L);
    lua_Integer nkeys = 0;
    int all_scalar = 1;
    size_t width = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -1) == LUA_TTABLE) all_scalar = 0;
        else if (all_scalar)
            width += (masked_field(L, -2, -1) ? sizeof MASK - 1 : scalar_width(L, -1)) +
                     scalar_width(L, -2) + 5;
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, keys, ++nkeys);
    }
    if (nkeys == 0) {
        fputs("{}", stdout);
    } else {
        if (lua_rawgetp(L, LUA_REGISTRYINDEX, &sort_key) == LUA_TFUNCTION && nkeys > 1) {
            lua_pushvalue(L, keys);
            lua_pushcfunction(L, key_less);
            lua_call(L, 2, 0);
        } else {
            lua_pop(L, 1);
        }

        /* the sequence part: keys 1..seq, which sorting put first */
        lua_Integer seq = 0;
        for (lua_Integer i = 1; i <= nkeys; i++) {
            lua_rawgeti(L, keys, i);
            int isint = lua_isinteger(L, -1) && lua_tointeger(L, -1) == seq + 1;
            lua_pop(L, 1);
            if (!isint) break;
            seq++;
        }
        int inline_ = all_scalar && nkeys <= PP_INLINE_ITEMS && width + 2 * depth <= PP_INLINE_WIDTH;
        putchar('{');
        for (lua_Integer i = 1; i <= nkeys; i++) {
            if (inline_) fputs(i > 1 ? ", " : " ", stdout);
            else {
                fputs(i > 1 ? ",\n" : "\n", stdout);
                indent(depth + 1);
            }
            lua_rawgeti(L, keys, i);
            int k = lua_gettop(L);
            if (i > seq) pp_key(L, k);
            lua_pushvalue(L, k);
            lua_rawget(L, idx);
            if (masked_field(L, k, k + 1)) fputs(MASK, stdout);
            else pp_value(L, k + 1, depth + 1, seen);
            lua_pop(L, 2);
        }
        if (inline_) fputs(" }", stdout);
        else {
            putchar('\n');
            indent(depth);
            putchar('}');
        }
    }
    lua_pop(L, 1); /* keys */
    lua_pushvalue(L, idx);
    lua_pushnil(L);
    lua_rawset(L, seen);
}

static void pp_value(lua_State *L, int idx, int depth, int seen) {
    if (lua_type(L, idx) == LUA_TTABLE && luaL_getmetafield(L, idx, "__tostring") == LUA_TNIL)
        pp_table(L, idx, depth, seen);
    else {
        if (lua_type(L, idx) == LUA_TTABLE) lua_pop(L, 1); /* the __tostring field */
        pp_scalar(L, idx);
    }
}

/* pp_values(...): print every argument on one line, tab-separated; top-level strings unquoted,
 * as print() would show them. */
static int pp_values(lua_State *L) {
    int n = lua_gettop(L);
    lua_newtable(L);
    int seen = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        if (i > 1) putchar('\t');
        if (lua_type(L, i) == LUA_TSTRING) {
            size_t len;
            const char *s = lua_tolstring(L, i, &len);
            mslog_fwrite_redacted(stdout, s, len);
        } else {
            pp_value(L, i, 0, seen);
        }
    }
    putchar('\n');
    return 0;
}

/* ---- completion (terminal only) ---- */

static lua_State *comp_L;
static char **comp_list;
static size_t comp_n, comp_next;
static int comp_in_string; /* the word being completed is inside a string literal */

/* lib/metasync/shell.lua's module table, in the registry: words() and settle() */
static const char shell_key = 'h';

static void comp_clear(void) {
    for (size_t i = comp_next; i < comp_n; i++) free(comp_list[i]);
    free(comp_list);
    comp_list = NULL;
    comp_n = comp_next = 0;
}

static void comp_add(const char *prefix, size_t plen, const char *name) {
    char **p = realloc(comp_list, (comp_n + 1) * sizeof *p);
    if (!p) return;
    comp_list = p;
    size_t nl = strlen(name);
    char *s = malloc(plen + nl + 1);
    if (!s) return;
    memcpy(s, prefix, plen);
    memcpy(s + plen, name, nl + 1);
    comp_list[comp_n++] = s;
}

/* Add the string keys of the table at idx starting with word, then follow a table __index. */
static void comp_fields(lua_State *L, int idx, const char *text, size_t plen, const char *word,
                        int methods_only) {
    size_t wl = strlen(word);
    for (int hops = 0; hops < 4 && lua_istable(L, idx); hops++) {
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            size_t kl;
            if (lua_type(L, -2) == LUA_TSTRING) {
                const char *k = lua_tolstring(L, -2, &kl);
                if (kl >= wl && strncmp(k, word, wl) == 0 && is_identifier(k, kl) &&
                    (!methods_only || lua_type(L, -1) == LUA_TFUNCTION))
                    comp_add(text, plen, k);
            }
            lua_pop(L, 1);
        }
        if (!lua_getmetatable(L, idx)) break;
        lua_pushliteral(L, "__index");
        lua_rawget(L, -2);
        lua_remove(L, -2);
        idx = lua_gettop(L);
    }
}

/* The value on top, or for a non-table its metatable's __index, as a table on top; 0 if none. */
static int as_table(lua_State *L) {
    if (lua_istable(L, -1)) return 1;
    if (!lua_getmetatable(L, -1)) return 0;
    lua_pushliteral(L, "__index");
    lua_rawget(L, -2);
    return lua_istable(L, -1);
}

/* Inside a string: the words shell.words() offers (field names, config keys, helper names),
 * computed from what is already loaded, so a keystroke sends no request. */
static void comp_words(lua_State *L, const char *text) {
    size_t tl = strlen(text);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &shell_key) != LUA_TTABLE) return;
    lua_getfield(L, -1, "words");
    if (lua_pcall(L, 0, 1, 0) != LUA_OK || !lua_istable(L, -1)) return;
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        size_t wl;
        lua_rawgeti(L, -1, i);
        const char *w = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &wl) : NULL;
        if (w && wl >= tl && strncmp(w, text, tl) == 0 && strlen(w) == wl) comp_add("", 0, w);
        lua_pop(L, 1);
    }
}

/* Complete "a.b.c" / "a:b": walk the path with raw gets (no __index code runs on a keystroke),
 * except that a non-table value's metatable __index table stands in for it, as for strings. */
static void comp_collect(lua_State *L, const char *text) {
    static const char *const kw[] = {"and", "break", "do", "else", "elseif", "end", "false",
        "for", "function", "goto", "if", "in", "local", "nil", "not", "or", "repeat", "return",
        "then", "true", "until", "while", NULL};
    int top = lua_gettop(L);
    if (!lua_checkstack(L, 20)) return;
    if (comp_in_string) {
        comp_words(L, text);
        lua_settop(L, top);
        return;
    }
    const char *last = strrchr(text, '.');
    const char *colon = strrchr(text, ':');
    if (colon && (!last || colon > last)) last = colon;
    lua_pushglobaltable(L);
    if (!last) {
        for (int i = 0; kw[i]; i++)
            if (strncmp(kw[i], text, strlen(text)) == 0) comp_add("", 0, kw[i]);
        comp_fields(L, lua_gettop(L), "", 0, text, 0);
        lua_settop(L, top);
        return;
    }
    const char *p = text;
    while (p < last) {
        const char *e = p + strcspn(p, ".:");
        if (e > last) e = last;
        if (!as_table(L)) goto done;
        lua_pushlstring(L, p, (size_t)(e - p));
        lua_rawget(L, -2);
        if (lua_isnil(L, -1)) goto done;
        p = e + 1;
    }
    if (!as_table(L)) goto done;
    comp_fields(L, lua_gettop(L), text, (size_t)(last + 1 - text), last + 1, *last == ':');
done:
    lua_settop(L, top);
}

static char *comp_generator(const char *text, int state) {
    if (state == 0) {
        comp_clear();
        comp_collect(comp_L, text);
    }
    return comp_next < comp_n ? comp_list[comp_next++] : NULL;
}

/* Is position start of the line inside a '...' or "..." literal? */
static int in_string_at(const char *line, int start) {
    char q = 0;
    for (int i = 0; i < start && line[i]; i++) {
        char c = line[i];
        if (q) {
            if (c == '\\' && i + 1 < start) i++;
            else if (c == q) q = 0;
        } else if (c == '"' || c == '\'') {
            q = c;
        }
    }
    return q != 0;
}

static char **comp_attempt(const char *text, int start, int end) {
    (void)end;
    comp_in_string = rl_line_buffer && in_string_at(rl_line_buffer, start);
    rl_attempted_completion_over = 1; /* no fallback to file names */
    rl_completion_append_character = '\0';
    return rl_completion_matches(text, comp_generator);
}

/* ---- input ---- */

typedef struct Input {
    int tty;
    char *history; /* path, or NULL */
    char *plain;   /* getline buffer */
    size_t plain_cap;
} Input;

/* One line without its newline (malloc'd), or NULL at end of input. *cancelled is set when
 * Ctrl-C interrupted the read on a terminal. */
static char *read_line(Input *in, const char *prompt, int *cancelled) {
    *cancelled = 0;
    interrupted = 0;
    if (in->tty) {
        fflush(stdout);
        char *line = readline(prompt);
        if (interrupted) {
            free(line);
            *cancelled = 1;
            return NULL;
        }
        return line;
    }
    ssize_t n = getline(&in->plain, &in->plain_cap, stdin);
    if (n < 0) return NULL;
    if (n > 0 && in->plain[n - 1] == '\n') in->plain[--n] = '\0';
    if (n > 0 && in->plain[n - 1] == '\r') in->plain[--n] = '\0';
    return strdup(in->plain);
}

/* The message at the top of the stack (a string) on stderr as one line after prefix, masked like
 * everything else the shell shows: an error can quote a secret (an API echoing a request). */
static void put_error(lua_State *L, const char *prefix) {
    size_t n;
    const char *msg = lua_tolstring(L, -1, &n);
    fputs(prefix, stderr);
    mslog_fwrite_redacted(stderr, msg ? msg : "", msg ? n : 0);
    fputc('\n', stderr);
}

/* Leaves the compiled chunk on the stack and returns LUA_OK, or leaves an error message and
 * returns the status; LUA_ERRSYNTAX with incomplete set means more input could complete it. */
static int compile(lua_State *L, const char *code, size_t len, const char *name, int *incomplete) {
    static const char eof_mark[] = "<eof>";
    *incomplete = 0;
    int st = luaL_loadbuffer(L, code, len, name);
    if (st == LUA_ERRSYNTAX) {
        size_t ml;
        const char *msg = lua_tolstring(L, -1, &ml);
        if (msg && ml >= sizeof eof_mark - 1 &&
            strcmp(msg + ml - (sizeof eof_mark - 1), eof_mark) == 0)
            *incomplete = 1;
    }
    return st;
}

/* Compiles the code string on top of the stack, first as "return <code>" (so an expression
 * prints its value), else as statements. Leaves the code and above it the function (LUA_OK) or
 * the error message; *incomplete is set when more input could complete it. */
static int compile_chunk(lua_State *L, const char *name, int *incomplete) {
    size_t cl;
    const char *code = lua_tolstring(L, -1, &cl);
    const char *ret = lua_pushfstring(L, "return %s", code);
    int expr_incomplete, stmt_incomplete = 0;
    int st = compile(L, ret, strlen(ret), name, &expr_incomplete);
    lua_remove(L, -2);
    if (st != LUA_OK) {
        lua_pop(L, 1);
        st = compile(L, code, cl, name, &stmt_incomplete);
    }
    *incomplete = st != LUA_OK && (expr_incomplete || stmt_incomplete);
    return st;
}

/* Reads one complete chunk and leaves it compiled on the stack. Returns 1 on success, 0 at end
 * of input, -1 when the input was cancelled, -2 when it did not compile (message reported).
 * Each attempt tries "return <code>" first, so a value spread over lines (a table constructor,
 * "1 +" then "2") prints too. The code lives in a Lua string on the stack: no leak on error. */
static int read_chunk(lua_State *L, Input *in) {
    int cancelled;
    char *line = read_line(in, PROMPT, &cancelled);
    if (!line) return cancelled ? -1 : 0;
    lua_pushstring(L, line);
    free(line);
    for (;;) {
        int incomplete;
        int st = compile_chunk(L, "=stdin", &incomplete);
        if (st == LUA_OK) {
            if (in->tty && lua_rawlen(L, -2)) add_history(lua_tostring(L, -2));
            lua_remove(L, -2);
            return 1;
        }
        if (!incomplete) {
            put_error(L, "");
            lua_pop(L, 2);
            return -2;
        }
        lua_pop(L, 1);
        char *more = read_line(in, PROMPT2, &cancelled);
        if (!more) {
            lua_pop(L, 1);
            return cancelled ? -1 : 0;
        }
        lua_pushliteral(L, "\n");
        lua_pushstring(L, more);
        free(more);
        lua_concat(L, 3);
    }
}

/* pcall'd: tostring(err) */
static int error_text(lua_State *L) {
    luaL_tolstring(L, 1, NULL);
    return 1;
}

static void report_error(lua_State *L) {
    if (lua_type(L, -1) != LUA_TSTRING) {
        lua_pushcfunction(L, error_text);
        lua_insert(L, -2);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK || lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 1);
            lua_pushliteral(L, "(error object is not a string)");
        }
    }
    fflush(stdout);
    put_error(L, "");
    fflush(stderr);
    lua_pop(L, 1);
}

/* shell.settle() after every chunk: a helper stopped by Ctrl-C leaves no status line behind. */
static void settle(lua_State *L) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &shell_key) == LUA_TTABLE) {
        lua_getfield(L, -1, "settle");
        if (lua_pcall(L, 0, 0, 0) != LUA_OK) lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* Runs the chunk on top as a task and prints its results. Returns 0, 1 when it failed, or 130
 * when Ctrl-C stopped it. */
static int run_chunk(lua_State *L, int tty) {
    int base = lua_gettop(L) - 1, rc = 0;
    struct sigaction old;
    stopped = 0;
    running = 1;
    set_sigint(on_sigint, &old);
    int st = sched_call(L, 0);
    running = 0;
    if (!tty) sigaction(SIGINT, &old, NULL);
    fflush(stdout);
    /* A Ctrl-C that came while no Lua ran (a wait) left the scheduler's interrupt hook on this
     * thread: it would stop settle() and the printer instead. */
    if (stopped) lua_sethook(L, NULL, 0, 0);
    settle(L);
    if (st != LUA_OK && stopped) {
        /* where the chunk was when Ctrl-C came is of no interest: no traceback */
        fputs("interrupted\n", stderr);
        rc = 130;
    } else if (st != LUA_OK) {
        report_error(L);
        rc = 1;
    } else {
        int n = lua_gettop(L) - base;
        if (n > 0) {
            luaL_checkstack(L, 1, "too many results to print");
            lua_pushcfunction(L, pp_values);
            lua_insert(L, base + 1);
            if (lua_pcall(L, n, 0, 0) != LUA_OK) {
                putchar('\n');
                report_error(L);
                rc = 1;
            }
        }
    }
    lua_settop(L, base);
    fflush(stdout);
    return rc;
}

static char *history_path(void) {
    const char *home = getenv("HOME");
    if (!home || !*home) return NULL;
    size_t n = strlen(home) + sizeof HISTORY_NAME + 1;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", home, HISTORY_NAME);
    return p;
}

/* shell.term_width() -> the terminal's columns when stdout is one, else nil (show() fits its
 * tables to it; Lua has no ioctl). */
static int l_term_width(lua_State *L) {
    struct winsize ws;
    if (ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) lua_pushinteger(L, ws.ws_col);
    else lua_pushnil(L);
    return 1;
}

/* Globals for ad-hoc work: the modules, the helpers and live API clients, each made on first
 * use (lib/metasync/shell.lua); mode is "tty", "pipe" or "chunk". A failure here is reported
 * and the shell still starts. */
static void setup_shell(lua_State *L, const char *mode) {
    int base = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "metasync.shell");
    int st = sched_call(L, 1);
    if (st == LUA_OK) lua_settop(L, base + 1); /* the module, not require's second result */
    if (st == LUA_OK && lua_istable(L, -1)) {
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &shell_key);
        lua_pushcfunction(L, l_term_width);
        lua_setfield(L, -2, "term_width");
        lua_getfield(L, -1, "setup");
        lua_pushstring(L, mode);
        if (sched_call(L, 1) == LUA_OK) {
            lua_settop(L, base);
            return;
        }
    }
    if (lua_isstring(L, -1)) put_error(L, "metasync: ");
    lua_settop(L, base);
}

/* The chunk of `metasync repl -e CHUNK` (options.repl_chunk), or NULL. It stays valid: the
 * options table lives in the registry for the state's lifetime. */
static const char *given_chunk(lua_State *L) {
    const char *chunk = NULL;
    int top = lua_gettop(L);
    if (lua_getfield(L, LUA_REGISTRYINDEX, "metasync.options") == LUA_TTABLE &&
        lua_getfield(L, -1, "repl_chunk") == LUA_TSTRING)
        chunk = lua_tostring(L, -1);
    lua_settop(L, top);
    return chunk;
}

/* repl -e CHUNK: one chunk, its values printed, and its outcome as the exit status. */
static int run_given(lua_State *L, const char *chunk) {
    int incomplete;
    setup_shell(L, "chunk");
    lua_pushstring(L, chunk);
    if (compile_chunk(L, "=(command line)", &incomplete) != LUA_OK) {
        put_error(L, "");
        lua_pop(L, 2);
        return 1;
    }
    lua_remove(L, -2);
    return run_chunk(L, 0);
}

int repl_run(lua_State *L) {
    Input in = {0};
    struct sigaction old;
    int rc = 0;
    in.tty = isatty(0) && isatty(1);
    sigaction(SIGINT, NULL, &old);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 0);
    lua_getfield(L, -1, "sort");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sort_key);
    lua_pop(L, 1);
    const char *chunk = given_chunk(L);
    if (chunk) {
        rc = run_given(L, chunk);
        fflush(stdout);
        sigaction(SIGINT, &old, NULL);
        return rc;
    }
    if (in.tty) {
        comp_L = L;
        rl_readline_name = "metasync";
        /* '.' and ':' are not word breaks: "string.fo<TAB>" completes as one word */
        rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(+-*/%^~#,[]}";
        rl_completer_word_break_characters = (char *)rl_basic_word_break_characters;
        rl_attempted_completion_function = comp_attempt;
        in.history = history_path();
        stifle_history(HISTORY_MAX);
        if (in.history) read_history(in.history);
        /* at the prompt Ctrl-C cancels the line; the handler stays for the whole session */
        set_sigint(on_sigint, NULL);
        printf("metasync %s REPL (%s) - help() for help, Ctrl-D to exit\n", METASYNC_VERSION,
               LUA_RELEASE);
    }
    setup_shell(L, in.tty ? "tty" : "pipe");
    for (;;) {
        int r = read_chunk(L, &in);
        if (r == 0) break;
        if (r < 0) {
            if (in.tty) putchar('\n');
            else if (r == -2) rc = 1;
            continue;
        }
        int st = run_chunk(L, in.tty);
        /* Off a terminal a failed chunk fails the session (the rest still runs, as a shell
         * script without -e would); Ctrl-C ends it. */
        if (!in.tty && st) {
            rc = st;
            if (st == 130) break;
        }
    }
    if (in.tty) {
        putchar('\n');
        if (in.history) write_history(in.history);
        comp_clear();
    }
    fflush(stdout);
    sigaction(SIGINT, &old, NULL);
    free(in.history);
    free(in.plain);
    return rc;
}

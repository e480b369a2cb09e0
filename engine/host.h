/* The host: the Lua state with the engine's modules, search paths and the parsed command line. */
#ifndef METASYNC_HOST_H
#define METASYNC_HOST_H

#include <lua.h>

typedef struct {
  const char *command;     /* lowercased: sctokf, kftosc, run, repl */
  const char *config_dir;  /* default ./config */
  const char *scripts_dir; /* --scripts, or NULL */
  const char *log_level;   /* --log-level, or NULL */
  int verbose, dry_run;
  long concurrency;        /* -j, 0 when not given */
  double wait_lock;        /* --wait-lock seconds, -1 when not given */
  const char *max_changes; /* --max-changes N or P%, or NULL (checked in Lua) */
  const char *plan_out;    /* --plan-out FILE: a dry run saves its plan there, or NULL */
  int progress, quiet;     /* --progress (status line even off a terminal), --quiet */
  const char *report;      /* --report FILE: one row per certificate, or NULL */
  const char *repl_chunk;  /* repl -e CHUNK: run this chunk and exit, or NULL */
  char **args;             /* what follows the command */
  int nargs;
} HostOptions;

/* A new state with the standard libraries, the preloaded engine modules, package.path set to the
 * search path and metasync.options filled in. Prints the reason and returns NULL on failure. */
lua_State *host_open(const HostOptions *o);
/* Run a script file as the main task; returns the process exit code. */
int host_run_file(lua_State *L, const char *path, const HostOptions *o);
/* Find sctokf/kftosc: --scripts DIR, <config>/scripts, stock scripts/. Returns a malloc'd path. */
char *host_find_script(const HostOptions *o, const char *name);
/* The stock directory (holding lib/ and scripts/), found relative to the executable. */
const char *host_stock_dir(void);
/* Print "metasync X" and the versions of the libraries it runs with. */
void host_print_versions(void);

#endif

/* metasync: the command line. */
#include "host.h"
#include "modules.h"

#include <ctype.h>
#include <curl/curl.h>
#include <getopt.h>
#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EX_USAGE 64

static const char usage_text[] =
    "usage: metasync [options] <command> [args]\n"
    "\n"
    "Keeps certificate metadata in step between Sectigo Certificate Manager and Keyfactor Command.\n"
    "\n"
    "commands:\n"
    "  sctokf              Sectigo custom fields and attributes -> Keyfactor metadata\n"
    "  kftosc              Keyfactor metadata -> Sectigo custom fields\n"
    "  sync                both ways, against the baseline of last-agreed values\n"
    "  report [RUN]        one run's journal (default: the last run) as CSV, or --format jsonl\n"
    "  revert RUN          write back the old values of a run's writes (--dry-run to preview)\n"
    "  run SCRIPT [args]   run a Lua script with the engine's modules\n"
    "  repl                interactive Lua shell with live clients for both APIs\n"
    "\n"
    "options:\n"
    "  -c, --config DIR        configuration directory (default ./config)\n"
    "      --scripts DIR       look for sctokf.lua/kftosc.lua/sync.lua here first\n"
    "      --log-level LEVEL   trace, debug, info, warn, error or fatal\n"
    "  -v, --verbose           debug logging and full tracebacks on errors\n"
    "      --dry-run           compute and print the plan, write nothing\n"
    "  -j, --concurrency N     requests in flight per API (default: the config's, else 16)\n"
    "      --format FORMAT     report: csv (the default) or jsonl\n"
    "      --max-changes N|P%  write at most N certificates (or P% of those matched); more is exit 4\n"
    "      --wait-lock SECONDS wait this long for another run on the same state to end (default 0)\n"
    "  -h, --help              this help\n"
    "      --version           versions of metasync and the libraries it runs with\n"
    "\n"
    "Scripts are searched in --scripts DIR, then <config dir>/scripts/, then the stock scripts/.\n"
    "Exit codes: 0 success, 1 fatal error before any write, 2 some certificates failed,\n"
    "3 completed with conflicts left unresolved (sync; revert: values changed since the run),\n"
    "4 stopped at the change limit, 64 usage, 75 another run holds the lock,\n"
    "130/143 interrupted by SIGINT/SIGTERM (the summary is still printed).\n";

__attribute__((format(printf, 1, 2))) static int usage(const char *fmt, ...) {
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "metasync: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
  }
  fputs(usage_text, stderr);
  return EX_USAGE;
}

static int valid_level(const char *s) {
  static const char *levels[] = {"trace", "debug", "info", "warn", "warning", "error", "fatal"};
  for (size_t i = 0; i < sizeof levels / sizeof *levels; i++)
    if (strcasecmp(s, levels[i]) == 0) return 1;
  return 0;
}

static const char *report_format; /* --format, for report */

/* Parse options from argv[optind..]; returns 0, or an exit code when the run is over. */
static int parse_options(int argc, char **argv, HostOptions *o) {
  enum { OPT_SCRIPTS = 256, OPT_LOG_LEVEL, OPT_DRY_RUN, OPT_VERSION, OPT_FORMAT, OPT_MAX_CHANGES,
         OPT_WAIT_LOCK };
  static const struct option longs[] = {{"config", required_argument, NULL, 'c'},
                                         {"scripts", required_argument, NULL, OPT_SCRIPTS},
                                         {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"dry-run", no_argument, NULL, OPT_DRY_RUN},
                                         {"concurrency", required_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, OPT_VERSION},
                                         {"format", required_argument, NULL, OPT_FORMAT},
                                         {"max-changes", required_argument, NULL, OPT_MAX_CHANGES},
                                         {"wait-lock", required_argument, NULL, OPT_WAIT_LOCK},
                                         {NULL, 0, NULL, 0}};
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "+:c:vj:h", longs, NULL)) != -1) {
    switch (c) {
    case 'c': o->config_dir = optarg; break;
    case OPT_SCRIPTS: o->scripts_dir = optarg; break;
    case OPT_LOG_LEVEL:
      if (!valid_level(optarg)) return usage("unknown log level '%s'", optarg);
      o->log_level = optarg;
      break;
    case 'v': o->verbose = 1; break;
    case OPT_DRY_RUN: o->dry_run = 1; break;
    case 'j': {
      char *end;
      long n = strtol(optarg, &end, 10);
      if (*end || end == optarg || n < 1 || n > 1000)
        return usage("--concurrency expects a number from 1 to 1000, not '%s'", optarg);
      o->concurrency = n;
      break;
    }
    case 'h': fputs(usage_text, stdout); return -1;
    case OPT_VERSION: host_print_versions(); return -1;
    case OPT_MAX_CHANGES: o->max_changes = optarg; break;
    case OPT_WAIT_LOCK: {
      char *end;
      double s = strtod(optarg, &end);
      if (*end || end == optarg || !(s >= 0 && s <= 86400))
        return usage("--wait-lock expects seconds from 0 to 86400, not '%s'", optarg);
      o->wait_lock = s;
      break;
    }
    case OPT_FORMAT:
      if (strcmp(optarg, "csv") != 0 && strcmp(optarg, "jsonl") != 0)
        return usage("--format expects csv or jsonl, not '%s'", optarg);
      report_format = optarg;
      break;
    case ':': return usage("option '%s' needs a value", argv[optind - 1]);
    default: return usage("unknown option '%s'", argv[optind - 1]);
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  HostOptions o = {.config_dir = "./config", .wait_lock = -1};
  int rc = parse_options(argc, argv, &o);
  if (rc) return rc < 0 ? 0 : rc;
  if (optind >= argc) return usage("no command given");

  /* Mode names are case-insensitive: the old tool accepted SCtoKF. */
  char command[32];
  snprintf(command, sizeof command, "%s", argv[optind++]);
  for (char *p = command; *p; p++) *p = (char)tolower((unsigned char)*p);
  o.command = command;

  const char *script = NULL;
  char *found = NULL;
  int policy = strcmp(command, "sctokf") == 0 || strcmp(command, "kftosc") == 0 ||
               strcmp(command, "sync") == 0;
  /* report and revert: options anywhere, up to one positional (the run), handed to the
   * journal command in lib/ as its arguments. */
  char *cmd_args[4];
  int cmd_nargs = 0;
  if (strcmp(command, "report") == 0 || strcmp(command, "revert") == 0) {
    const char *run = NULL;
    for (;;) {
      if ((rc = parse_options(argc, argv, &o))) return rc < 0 ? 0 : rc;
      if (optind >= argc) break;
      if (run) return usage("unexpected argument '%s'", argv[optind]);
      run = argv[optind++];
    }
    if (!run && strcmp(command, "revert") == 0) return usage("revert needs a run id (or 'last')");
    cmd_args[cmd_nargs++] = (char *)command;
    cmd_args[cmd_nargs++] = (char *)(run ? run : "last");
    cmd_args[cmd_nargs++] = (char *)(report_format ? report_format : "csv");
    o.args = cmd_args;
    o.nargs = cmd_nargs;
    static char path[4096];
    snprintf(path, sizeof path, "%s/lib/metasync/journalcmd.lua", host_stock_dir());
    script = path;
  } else if (policy || strcmp(command, "repl") == 0) {
    /* Options may also follow these commands: `metasync sctokf --dry-run`. */
    if ((rc = parse_options(argc, argv, &o))) return rc < 0 ? 0 : rc;
    if (optind < argc) return usage("unexpected argument '%s'", argv[optind]);
  } else if (strcmp(command, "run") == 0) {
    if (optind >= argc) return usage("run needs a script");
    script = argv[optind++];
    o.args = argv + optind;
    o.nargs = argc - optind;
  } else {
    return usage("unknown command '%s'", argv[optind - 1]);
  }

  if (policy) {
    found = host_find_script(&o, command);
    if (!found) {
      fprintf(stderr, "metasync: no %s.lua in %s%s%s/scripts or %s/scripts\n", command,
              o.scripts_dir ? o.scripts_dir : "", o.scripts_dir ? ", " : "", o.config_dir,
              host_stock_dir());
      return 1;
    }
    script = found;
  }

  curl_global_init(CURL_GLOBAL_DEFAULT);
  lua_State *L = host_open(&o);
  if (!L) {
    free(found);
    curl_global_cleanup();
    return 1;
  }
  if (script) rc = host_run_file(L, script, &o);
  else rc = repl_run(L);
  fflush(stdout);
  lua_close(L);
  curl_global_cleanup();
  free(found);
  return rc;
}

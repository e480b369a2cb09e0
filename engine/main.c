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
    "  check               check the configuration and that both APIs answer with its credentials\n"
    "  apply PLAN          write a saved plan (--dry-run to preview)\n"
    "  help [COMMAND]      this help, or one command's with examples (also: COMMAND --help)\n"
    "  completion SHELL    print a completion script for bash or zsh\n"
    "\n"
    "options:\n"
    "  -c, --config DIR        configuration directory (default ./config)\n"
    "      --scripts DIR       look for sctokf.lua/kftosc.lua/sync.lua here first\n"
    "      --log-level LEVEL   trace, debug, info, warn, error or fatal\n"
    "  -v, --verbose           debug logging and full tracebacks on errors\n"
    "      --dry-run           compute and print the plan, write nothing\n"
    "      --plan-out FILE     a dry run that also saves its plan to FILE, for metasync apply\n"
    "  -j, --concurrency N     requests in flight per API (default: the config's, else 16)\n"
    "      --format FORMAT     report: csv (the default) or jsonl\n"
    "      --max-changes N|P%  write at most N certificates (or P% of those matched); more is exit 4\n"
    "      --wait-lock SECONDS wait this long for another run on the same state to end (default 0)\n"
    "      --progress          a status line on stderr even when it is not a terminal\n"
    "      --quiet             print only errors and the summary (no status line)\n"
    "      --report FILE       one row per certificate: CSV for a .csv name, else JSON lines\n"
    "  -h, --help              this help\n"
    "      --version           versions of metasync and the libraries it runs with\n"
    "\n"
    "Scripts are searched in --scripts DIR, then <config dir>/scripts/, then the stock scripts/.\n"
    "Exit codes: 0 success, 1 fatal error before any write, 2 some certificates failed,\n"
    "3 completed with conflicts left unresolved (sync; revert: values changed since the run),\n"
    "4 stopped at the change limit, 64 usage, 75 another run holds the lock,\n"
    "130/143 interrupted by SIGINT/SIGTERM (the summary is still printed).\n";

/* A usage error is the reason and where to read more, not the whole usage: in cron mail or a
 * journal the reason would otherwise scroll away above 40 lines of help. */
__attribute__((format(printf, 1, 2))) static int usage(const char *fmt, ...) {
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "metasync: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
  }
  fputs("see 'metasync --help'\n", stderr);
  return EX_USAGE;
}

/* Per-command help: `metasync help COMMAND` and `metasync COMMAND --help`. The summary is the
 * line of the general help; it also describes the command in the zsh completion. */
struct command_help {
  const char *name, *summary, *text;
};

#define COMMON_RUN_OPTIONS                                                                     \
  "  -c, --config DIR        configuration directory (default ./config)\n"                    \
  "      --scripts DIR       look for the policy script here first\n"                         \
  "      --dry-run           print each change ('Field: old -> new'), write nothing\n"        \
  "      --plan-out FILE     a dry run that also saves its plan to FILE, for metasync apply\n"\
  "  -j, --concurrency N     requests in flight per API (default: the config's, else 16)\n"   \
  "      --max-changes N|P%  write at most N certificates (or P% of those indexed); exit 4\n" \
  "      --wait-lock SECONDS wait this long for another run on the same state to end\n"       \
  "      --progress          a status line on stderr even when it is not a terminal\n"        \
  "      --quiet             print only errors and the summary (no status line)\n"            \
  "      --report FILE       one row per certificate: CSV for a .csv name, else JSON lines\n" \
  "      --log-level LEVEL   trace, debug, info, warn, error or fatal; -v: debug and tracebacks\n"

static const struct command_help command_helps[] = {
    {"sctokf", "Sectigo custom fields and attributes -> Keyfactor metadata",
     "usage: metasync [options] sctokf\n"
     "\n"
     "Sectigo custom fields and chosen certificate attributes (fields.json ManualFields) ->\n"
     "Keyfactor metadata. The Keyfactor metadata fields the mapping needs are created or updated\n"
     "first; then each Keyfactor certificate whose issuer DN contains issuerDNLookupTerm is\n"
     "matched to Sectigo by serial number, and only the values that differ are written. Every\n"
     "write is journaled in the state file (metasync report, metasync revert).\n"
     "The policy is sctokf.lua from --scripts DIR, <config dir>/scripts/ or the stock scripts/.\n"
     "\n"
     "options:\n" COMMON_RUN_OPTIONS
     "\n"
     "examples:\n"
     "  metasync -c /etc/metasync --dry-run sctokf        what would be written\n"
     "  metasync -c /etc/metasync sctokf --max-changes 5%\n"
     "  metasync sctokf --scripts ./site                   a site policy, ./site/sctokf.lua\n"
     "\n"
     "exit codes: 0 done, 1 fatal before any write, 2 some certificates failed, 4 change limit,\n"
     "75 another run holds the lock (all of them: metasync --help).\n"},
    {"kftosc", "Keyfactor metadata -> Sectigo custom fields",
     "usage: metasync [options] kftosc\n"
     "\n"
     "Keyfactor metadata -> Sectigo custom fields (the CustomFields of fields.json, or every\n"
     "Sectigo field with importAllCustomFields). Manual fields are never written back; inactive\n"
     "Sectigo fields are never written. Each certificate gets its complete custom field list with\n"
     "the changed values merged in, and only when something differs.\n"
     "The policy is kftosc.lua from --scripts DIR, <config dir>/scripts/ or the stock scripts/.\n"
     "\n"
     "options:\n" COMMON_RUN_OPTIONS
     "\n"
     "examples:\n"
     "  metasync -c /etc/metasync --dry-run kftosc\n"
     "  metasync -c /etc/metasync kftosc -j 4             gentler on a busy Sectigo account\n"
     "\n"
     "exit codes: 0 done, 1 fatal before any write, 2 some certificates failed, 4 change limit,\n"
     "75 another run holds the lock (all of them: metasync --help).\n"},
    {"sync", "both ways, against the baseline of last-agreed values",
     "usage: metasync [options] sync\n"
     "\n"
     "Both ways, against the baseline of the values both sides last agreed on (the state file):\n"
     "a value changed on one side only goes to the other, a clear included; a field changed on\n"
     "both sides differently is a conflict, decided by conflictPolicy (report, sectigo or\n"
     "keyfactor) or by the policy's resolve hook, else listed and left alone (exit 3).\n"
     "Manual fields go Sectigo -> Keyfactor only. The policy is sync.lua.\n"
     "\n"
     "options:\n" COMMON_RUN_OPTIONS
     "\n"
     "examples:\n"
     "  metasync -c /etc/metasync --dry-run sync\n"
     "  metasync -c /etc/metasync sync --max-changes 5%    the nightly job\n"
     "\n"
     "exit codes: 0 done, 1 fatal before any write, 2 some certificates failed, 3 conflicts left,\n"
     "4 change limit, 75 another run holds the lock (all of them: metasync --help).\n"},
    {"report", "one run's journal (default: the last run) as CSV, or --format jsonl",
     "usage: metasync [options] report [RUN]\n"
     "\n"
     "One run's journal, read from the state file: every field the run wrote or failed to write,\n"
     "with the old and the new value, as CSV (the default) or JSON lines on stdout. RUN is the\n"
     "run id a summary and the log's [START] line give (8 hex digits), or 'last' (the default).\n"
     "Nothing is sent to either API and the state file is only read.\n"
     "\n"
     "options:\n"
     "  -c, --config DIR        configuration directory (its stateFile is read)\n"
     "      --format FORMAT     csv (the default) or jsonl\n"
     "\n"
     "examples:\n"
     "  metasync -c /etc/metasync report                   the last run, CSV\n"
     "  metasync -c /etc/metasync report 1a2b3c4d --format jsonl\n"
     "  metasync report last > last-run.csv\n"},
    {"revert", "write back the old values of a run's writes (--dry-run to preview)",
     "usage: metasync [options] revert RUN\n"
     "\n"
     "Writes back the old values of a run's writes, where the target still holds what the run\n"
     "wrote; a value changed since is listed and left alone (exit 3). RUN is a run id (8 hex\n"
     "digits, from the summary or the log) or 'last'. The revert is a journaled run of its own,\n"
     "so it can be reported and reverted in turn.\n"
     "\n"
     "options:\n"
     "  -c, --config DIR        configuration directory\n"
     "      --dry-run           list what would be reverted, write nothing\n"
     "  -j, --concurrency N     requests in flight per API\n"
     "      --wait-lock SECONDS wait this long for another run on the same state to end\n"
     "\n"
     "examples:\n"
     "  metasync -c /etc/metasync revert last --dry-run\n"
     "  metasync -c /etc/metasync revert 1a2b3c4d\n"
     "\n"
     "exit codes: 0 done, 1 fatal, 2 some writes failed, 3 values left alone (changed since).\n"},
    {"run", "run a Lua script with the engine's modules",
     "usage: metasync [options] run SCRIPT [ARGS...]\n"
     "\n"
     "Runs a Lua 5.4 script with the engine's modules (metasync.json, metasync.http,\n"
     "metasync.task, metasync.log, ...) and the stock lib/ on package.path, as the main task, so\n"
     "HTTP requests and timers work. The script gets ARGS in arg[1..] and as ...; an integer it\n"
     "returns is the exit code. Everything after SCRIPT goes to the script, --help included.\n"
     "The modules are described in metasync-scripts(7).\n"
     "\n"
     "examples:\n"
     "  metasync run count.lua 2025-06-01\n"
     "  metasync -c /etc/metasync run report-owners.lua --csv    --csv is the script's\n"
     "  echo 'return 3' > three.lua; metasync run three.lua; echo $?   prints 3\n"},
    {"repl", "interactive Lua shell with live clients for both APIs",
     "usage: metasync [options] repl [-e CHUNK]\n"
     "\n"
     "An interactive Lua 5.4 shell with the engine's modules and, when the configuration loads,\n"
     "live clients for both APIs as the globals sectigo and keyfactor (config holds the\n"
     "configuration), plus helpers for everyday questions: help() lists them. A bare expression\n"
     "prints its values, input may span lines, Ctrl-C cancels the running line. On a terminal:\n"
     "line editing, history (~/.metasync_history) and completion of names, field names and\n"
     "config keys. It also reads plain lines from a pipe. -e CHUNK runs one chunk and exits\n"
     "(exit 1 if it fails).\n"
     "\n"
     "examples:\n"
     "  metasync repl -e 'show(missing(\"CostCenter\", \"keyfactor\"))'\n"
     "  metasync repl -e 'side(\"0A:11:22:33\")'\n"
     "  metasync repl -e 'csv(values(\"sectigo\"), \"sectigo-fields.csv\")'\n"
     "  metasync -c /etc/metasync repl\n"
     "    > sectigo:custom_fields()\n"
     "    > keyfactor:metadata_fields()\n"
     "  echo 'print(1 + 1)' | metasync repl\n"},
    {"check", "check the configuration and that both APIs answer with its credentials",
     "usage: metasync [options] check\n"
     "\n"
     "Checks the configuration, then reaches both APIs with its credentials, reading only:\n"
     "  Sectigo    the custom field definitions (GET /api/customField/v2?certType=SSL), one list\n"
     "             page of certificates (GET /api/ssl/v1), and whether the bulk report answers\n"
     "             (POST /api/report/v1/ssl-certificates for one day, a read)\n"
     "  Keyfactor  the metadata fields (GET /MetadataFields), the product version\n"
     "             (GET /Status/Endpoints), one page of the certificates a run considers\n"
     "             (GET /Certificates)\n"
     "It says what it cannot check without writing: permission to write Sectigo custom fields\n"
     "and Keyfactor metadata and field definitions. No lock is taken, the state file is only\n"
     "read, no log file is written. Exit 0 when every check passed, else 1.\n"
     "\n"
     "options:\n"
     "  -c, --config DIR        configuration directory (default ./config)\n"
     "  -v, --verbose           also show each request\n"
     "\n"
     "examples:\n"
     "  metasync -c /etc/metasync check\n"
     "  METASYNC_KEYFACTOR_PASSWORD_FILE=/run/credentials/kf metasync -c /etc/metasync check\n"},
    {"apply", "write a saved plan (--dry-run to preview)",
     "usage: metasync [options] apply PLAN\n"
     "\n"
     "Writes exactly the changes a dry run saved in PLAN (--plan-out FILE), as reviewed: no\n"
     "policy runs again, and a change is written only where the target still holds the value the\n"
     "plan saw (one edited since is listed as stale and left alone). A plan made under another\n"
     "configuration is refused. apply is a journaled run (metasync report, metasync revert).\n"
     "With --dry-run it shows what it would write and writes nothing.\n"
     "\n"
     "options:\n"
     "  -c, --config DIR        configuration directory (default ./config)\n"
     "      --dry-run           show the changes, write nothing\n"
     "  -j, --concurrency N     requests in flight per API\n"
     "      --wait-lock SECONDS wait this long for another run on the same state to end\n"
     "\n"
     "examples:\n"
     "  metasync -c /etc/metasync sync --plan-out plan.jsonl   a dry run that saves its plan\n"
     "  metasync -c /etc/metasync apply plan.jsonl --dry-run\n"
     "  metasync -c /etc/metasync apply plan.jsonl             after review\n"},
    {"help", "this help, or one command's with examples",
     "usage: metasync help [COMMAND]\n"
     "\n"
     "Without COMMAND the general help (as metasync --help); with one, that command's help with\n"
     "examples (as metasync COMMAND --help). The manual pages say more: metasync(1),\n"
     "metasync-scripts(7) for site scripts, metasync-sim(1) for the simulator.\n"
     "\n"
     "examples:\n"
     "  metasync help sync\n"
     "  metasync revert --help\n"},
    {"completion", "print a completion script for bash or zsh",
     "usage: metasync completion bash|zsh\n"
     "\n"
     "Prints a completion script for the shell: the commands, the options, and the values of\n"
     "--format and --log-level. An installed metasync already ships both\n"
     "(share/bash-completion/completions/metasync, zsh's site-functions/_metasync).\n"
     "\n"
     "examples:\n"
     "  source <(metasync completion bash)                      this bash session only\n"
     "  metasync completion bash > ~/.local/share/bash-completion/completions/metasync\n"
     "  metasync completion zsh > ~/.zfunc/_metasync           with fpath+=(~/.zfunc) before compinit\n"},
};

static const struct command_help *find_help(const char *name) {
  for (size_t i = 0; i < sizeof command_helps / sizeof *command_helps; i++)
    if (strcasecmp(name, command_helps[i].name) == 0) return &command_helps[i];
  return NULL;
}

/* The command whose --help is asked for once the command is known; NULL: the general help. */
static const char *help_command;

static void print_help(const char *name) {
  const struct command_help *h = name ? find_help(name) : NULL;
  fputs(h ? h->text : usage_text, stdout);
}

/* The long options, as parse_options declares them: the completion scripts are made from them,
 * so an option added there is completed without more ado. */
static const struct option *long_options;

/* An option's description, taken from its line in the options of the general help
 * ("  -c, --name ARG   text" or "      --name   text"); empty when it has none. */
static void option_description(const char *name, int has_arg, char *out, size_t outsz) {
  out[0] = '\0';
  const char *p = strstr(usage_text, "\noptions:\n");
  size_t len = strlen(name);
  while (p && *p) {
    p = strchr(p, '\n');
    if (!p || p[1] == '\n') return; /* the end of the options */
    p++;
    while (*p == ' ') p++;
    if (p[0] == '-' && p[1] != '-' && p[2] == ',' && p[3] == ' ') p += 4; /* "-c, " */
    if (strncmp(p, "--", 2) == 0 && strncmp(p + 2, name, len) == 0 && (p[2 + len] == ' ' || p[2 + len] == '\n'))
      break;
  }
  if (!p) return;
  p += 2 + len;
  if (has_arg) { /* the argument's name */
    while (*p == ' ') p++;
    while (*p && *p != ' ' && *p != '\n') p++;
  }
  while (*p == ' ') p++;
  size_t n = strcspn(p, "\n");
  if (n >= outsz) n = outsz - 1;
  memcpy(out, p, n);
  out[n] = '\0';
}

/* Values an option's argument completes to; NULL: any word. "/dir" completes directories. */
static const char *option_values(const char *name) {
  if (strcmp(name, "format") == 0) return "csv jsonl";
  if (strcmp(name, "log-level") == 0) return "trace debug info warn error fatal";
  if (strcmp(name, "config") == 0 || strcmp(name, "scripts") == 0) return "/dir";
  return NULL;
}

static void print_bash_completion(void) {
  const struct option *o;
  printf("# bash completion for metasync (made by `metasync completion bash`)\n"
         "_metasync() {\n"
         "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
         "  local commands='");
  for (size_t i = 0; i < sizeof command_helps / sizeof *command_helps; i++)
    printf("%s%s", i ? " " : "", command_helps[i].name);
  printf("'\n  local options='");
  for (o = long_options; o->name; o++) {
    if (o->val > 0 && o->val < 128) printf("-%c ", o->val);
    printf("--%s%s", o->name, o[1].name ? " " : "");
  }
  printf("'\n  # an option's argument\n  case $prev in\n");
  for (o = long_options; o->name; o++) {
    if (o->has_arg != required_argument) continue;
    const char *v = option_values(o->name);
    if (o->val > 0 && o->val < 128) printf("    -%c|--%s)", o->val, o->name);
    else printf("    --%s)", o->name);
    if (!v) printf(" return ;;\n");
    else if (strcmp(v, "/dir") == 0) printf(" COMPREPLY=($(compgen -d -- \"$cur\")); return ;;\n");
    else printf(" COMPREPLY=($(compgen -W '%s' -- \"$cur\")); return ;;\n", v);
  }
  printf("  esac\n"
         "  # the command: the first word that is neither an option nor an option's argument\n"
         "  local i cmd='' w\n"
         "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
         "    w=${COMP_WORDS[i]}\n"
         "    case $w in\n");
  int any = 0;
  for (o = long_options; o->name; o++) {
    if (o->has_arg != required_argument) continue;
    if (o->val > 0 && o->val < 128) printf("%s-%c|--%s", any++ ? "|" : "      ", o->val, o->name);
    else printf("%s--%s", any++ ? "|" : "      ", o->name);
  }
  if (any) printf(") i=$((i + 1)) ;;\n");
  printf("      -*) ;;\n"
         "      *) cmd=$w; break ;;\n"
         "    esac\n"
         "  done\n"
         "  if [[ $cmd == run && $i -lt $((COMP_CWORD - 1)) ]]; then\n"
         "    COMPREPLY=($(compgen -f -- \"$cur\")); return  # the script's own arguments\n"
         "  fi\n"
         "  if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W \"$options\" -- \"$cur\")); return; fi\n"
         "  case $cmd in\n"
         "    '') COMPREPLY=($(compgen -W \"$commands\" -- \"$cur\")) ;;\n"
         "    help) COMPREPLY=($(compgen -W \"$commands\" -- \"$cur\")) ;;\n"
         "    completion) COMPREPLY=($(compgen -W 'bash zsh' -- \"$cur\")) ;;\n"
         "    run|apply) COMPREPLY=($(compgen -f -- \"$cur\")) ;;\n"
         "    report|revert) COMPREPLY=($(compgen -W 'last' -- \"$cur\")) ;;\n"
         "  esac\n"
         "}\n"
         "complete -F _metasync metasync\n");
}

/* zsh wants [ ] escaped in a description, and the spec is in single quotes. */
static void print_zsh_text(const char *s) {
  for (; *s; s++) {
    if (*s == '\'') fputs("'\\''", stdout);
    else if (*s == '[' || *s == ']') printf("\\%c", *s);
    else putchar(*s);
  }
}

static void print_zsh_completion(void) {
  const struct option *o;
  char desc[256];
  printf("#compdef metasync\n"
         "# zsh completion for metasync (made by `metasync completion zsh`)\n"
         "_metasync() {\n"
         "  local curcontext=$curcontext state line ret=1\n"
         "  local -a options commands\n"
         "  options=(\n");
  for (o = long_options; o->name; o++) {
    option_description(o->name, o->has_arg == required_argument, desc, sizeof desc);
    const char *v = o->has_arg == required_argument ? option_values(o->name) : NULL;
    printf("    ");
    if (o->val > 0 && o->val < 128) printf("'(-%c --%s)'{-%c,--%s}'", o->val, o->name, o->val, o->name);
    else printf("'--%s", o->name);
    printf("[");
    print_zsh_text(desc);
    printf("]");
    if (o->has_arg == required_argument) {
      printf(":%s:", o->name);
      if (!v) printf(" ");
      else if (strcmp(v, "/dir") == 0) printf("_files -/");
      else printf("(%s)", v);
    }
    printf("'\n");
  }
  printf("  )\n  commands=(\n");
  for (size_t i = 0; i < sizeof command_helps / sizeof *command_helps; i++) {
    printf("    '%s:", command_helps[i].name);
    print_zsh_text(command_helps[i].summary);
    printf("'\n");
  }
  printf("  )\n"
         "  _arguments -C -s $options '1:command:->command' '*::argument:->args' && ret=0\n"
         "  case $state in\n"
         "    command) _describe -t commands 'metasync command' commands && ret=0 ;;\n"
         "    args)\n"
         "      case $words[1] in\n"
         "        help) _describe -t commands 'metasync command' commands && ret=0 ;;\n"
         "        completion) _values shell bash zsh && ret=0 ;;\n"
         "        run) _arguments -s '1:script:_files -g \"*.lua\"' '*:argument:_files' && ret=0 ;;\n"
         "        apply) _arguments -s $options '1:plan:_files' && ret=0 ;;\n"
         "        report|revert) _arguments -s $options '1:run id:(last)' && ret=0 ;;\n"
         "        *) _arguments -s $options && ret=0 ;;\n"
         "      esac ;;\n"
         "  esac\n"
         "  return ret\n"
         "}\n"
         "_metasync \"$@\"\n");
}

static int valid_level(const char *s) {
  static const char *levels[] = {"trace", "debug", "info", "warn", "warning", "error", "fatal"};
  for (size_t i = 0; i < sizeof levels / sizeof *levels; i++)
    if (strcasecmp(s, levels[i]) == 0) return 1;
  return 0;
}

/* The commands that are SDK code, not policy (report, revert, check, apply): the stock
 * lib/metasync/NAME.lua runs as the script, with args as its arguments. */
static const char *lib_command(HostOptions *o, const char *name, char **args, int nargs) {
  static char path[4096];
  snprintf(path, sizeof path, "%s/lib/metasync/%s.lua", host_stock_dir(), name);
  o->args = args;
  o->nargs = nargs;
  return path;
}

static const char *report_format; /* --format, for report */

/* Parse options from argv[optind..]; returns 0, or an exit code when the run is over. */
static int parse_options(int argc, char **argv, HostOptions *o) {
  enum { OPT_SCRIPTS = 256, OPT_LOG_LEVEL, OPT_DRY_RUN, OPT_VERSION, OPT_FORMAT, OPT_MAX_CHANGES,
         OPT_WAIT_LOCK, OPT_PLAN_OUT, OPT_PROGRESS, OPT_QUIET, OPT_REPORT };
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
                                         {"plan-out", required_argument, NULL, OPT_PLAN_OUT},
                                         {"progress", no_argument, NULL, OPT_PROGRESS},
                                         {"quiet", no_argument, NULL, OPT_QUIET},
                                         {"report", required_argument, NULL, OPT_REPORT},
                                         {NULL, 0, NULL, 0}};
  long_options = longs;
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
    case 'h': print_help(help_command); return -1;
    case OPT_VERSION: host_print_versions(); return -1;
    case OPT_MAX_CHANGES: o->max_changes = optarg; break;
    case OPT_PROGRESS: o->progress = 1; break;
    case OPT_QUIET: o->quiet = 1; break;
    case OPT_REPORT: o->report = optarg; break;
    case OPT_PLAN_OUT: o->plan_out = optarg; o->dry_run = 1; break; /* a plan is made by a dry run */
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
  /* From here on --help (or -h) is this command's help. */
  if (find_help(command)) help_command = command;

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
    script = lib_command(&o, "journalcmd", cmd_args, cmd_nargs);
  } else if (strcmp(command, "repl") == 0) {
    /* repl [-e CHUNK]: -e and its chunk are taken out before the options are read, so a chunk
     * starting with '-' is never read as an option; other options may come anywhere. */
    char **av = malloc(((size_t)argc + 1) * sizeof *av);
    if (!av) return 1;
    int ac = 0, bad = 0;
    for (int i = 0; i < argc; i++) {
      if (i < optind || strcmp(argv[i], "-e") != 0) av[ac++] = argv[i];
      else if (i + 1 < argc && !o.repl_chunk) o.repl_chunk = argv[++i];
      else bad = 1;
    }
    av[ac] = NULL;
    rc = bad ? usage(o.repl_chunk ? "-e given twice" : "-e needs a Lua chunk") : parse_options(ac, av, &o);
    if (rc == 0 && optind < ac) rc = usage("unexpected argument '%s'", av[optind]);
    free(av);
    if (rc) return rc < 0 ? 0 : rc;
  } else if (policy) {
    /* Options may also follow these commands: `metasync sctokf --dry-run`. */
    if ((rc = parse_options(argc, argv, &o))) return rc < 0 ? 0 : rc;
    if (optind < argc) return usage("unexpected argument '%s'", argv[optind]);
  } else if (strcmp(command, "check") == 0) {
    /* check: options anywhere, no argument; lib/metasync/check.lua does the work. */
    if ((rc = parse_options(argc, argv, &o))) return rc < 0 ? 0 : rc;
    if (optind < argc) return usage("unexpected argument '%s'", argv[optind]);
    cmd_args[cmd_nargs++] = (char *)command;
    script = lib_command(&o, "check", cmd_args, cmd_nargs);
  } else if (strcmp(command, "apply") == 0) {
    /* apply PLAN: options anywhere (--dry-run reaches the script as options.dry_run), one
     * positional, handed to lib/metasync/applycmd.lua as ("apply", PLAN). */
    const char *plan = NULL;
    for (;;) {
      if ((rc = parse_options(argc, argv, &o))) return rc < 0 ? 0 : rc;
      if (optind >= argc) break;
      if (plan) return usage("unexpected argument '%s'", argv[optind]);
      plan = argv[optind++];
    }
    if (!plan) return usage("apply needs a plan file");
    cmd_args[cmd_nargs++] = (char *)command;
    cmd_args[cmd_nargs++] = (char *)plan;
    script = lib_command(&o, "applycmd", cmd_args, cmd_nargs);
  } else if (strcmp(command, "help") == 0) {
    if ((rc = parse_options(argc, argv, &o))) return rc < 0 ? 0 : rc;
    if (optind >= argc) {
      print_help(NULL);
      return 0;
    }
    if (optind + 1 < argc) return usage("help takes one command, not '%s'", argv[optind + 1]);
    if (!find_help(argv[optind])) return usage("no help for '%s': not a command", argv[optind]);
    print_help(argv[optind]);
    return 0;
  } else if (strcmp(command, "completion") == 0) {
    if ((rc = parse_options(argc, argv, &o))) return rc < 0 ? 0 : rc;
    if (optind >= argc) return usage("completion needs a shell: bash or zsh");
    if (optind + 1 < argc) return usage("unexpected argument '%s'", argv[optind + 1]);
    if (strcmp(argv[optind], "bash") == 0) print_bash_completion();
    else if (strcmp(argv[optind], "zsh") == 0) print_zsh_completion();
    else return usage("completion: unknown shell '%s' (bash or zsh)", argv[optind]);
    return 0;
  } else if (strcmp(command, "run") == 0) {
    if (optind >= argc) return usage("run needs a script");
    /* `run --help` is run's help; after the script, --help is the script's argument. */
    if (strcmp(argv[optind], "--help") == 0 || strcmp(argv[optind], "-h") == 0) {
      print_help("run");
      return 0;
    }
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

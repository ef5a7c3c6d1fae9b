/* cli.h - what the files of the `dojo` command share: the exit-status
 * convention, error printing, and small option-parsing helpers.
 *
 * Every subcommand is a function `int dj_cmd_NAME(int argc, char **argv)`
 * where argv[0] is the subcommand's own name and argv[argc] is NULL; it
 * returns the process exit status. Messages for users go through dj_cli_err
 * so that they all read `dojo: <command>: <message>`, one line on stderr.
 * The CLI holds no math: it parses, calls libdojo and prints. */
#ifndef DOJO_CLI_H
#define DOJO_CLI_H

#include <stdint.h>
#include <stdio.h>

#define DJ_VERSION_STRING "0.1.0"

/* Exit statuses. */
enum {
    DJ_EXIT_OK = 0,
    DJ_EXIT_DATA = 1,  /* bad input data, or a failed read/write */
    DJ_EXIT_USAGE = 2  /* bad command line */
};

#if defined(__GNUC__) || defined(__clang__)
#define DJ_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#else
#define DJ_PRINTF(fmt_idx, arg_idx)
#endif

/* Flushes stdout (so that lines already printed are complete and come first)
 * and prints "dojo: CMD: MESSAGE\n" on stderr ("dojo: MESSAGE" if cmd is NULL
 * or empty). */
void dj_cli_err(const char *cmd, const char *fmt, ...) DJ_PRINTF(2, 3);

/* Writes `s` (n bytes, may hold any byte) in double quotes into buf, escaping
 * quotes, backslashes and non-printable bytes (\t, \r, \xNN) and cutting it
 * to about `max_show` bytes with "..." so that an error message stays one
 * readable line. Returns buf. */
char *dj_cli_quote(const char *s, size_t n, size_t max_show, char *buf, size_t bufsize);

/* The path this process was started as (main's argv[0], "dojo" until main
 * sets it): for commands that run dojo again as a child process when
 * /proc/self/exe is not available. */
void dj_cli_set_program(const char *argv0);
const char *dj_cli_program(void);

/* ---- option parsing ----
 *
 * Options are `--name value` or `--name=value`; flags are `--name`. Usage:
 *
 *     dj_opt_iter it;
 *     dj_opt_init(&it, argc, argv, 1);
 *     while ((rc = dj_opt_next(&it, CMD)) == DJ_OPT_MORE) {
 *         if (dj_opt_is(&it, "--format")) { v = dj_opt_value(&it, CMD); ... }
 *         else if (dj_opt_is(&it, "--json")) { dj_opt_no_value(&it, CMD) ... }
 *         else return dj_opt_unknown(&it, CMD);
 *     }
 */
typedef struct {
    int argc;
    char **argv;
    int i;             /* index of the next argument to look at */
    const char *arg;   /* the current argument */
    size_t name_len;   /* length of its name part (before any '=') */
    const char *eq;    /* the value after '=' or NULL */
} dj_opt_iter;

enum {
    DJ_OPT_DONE = 0,  /* all arguments consumed */
    DJ_OPT_MORE = 1,  /* it->arg is an option to handle */
    DJ_OPT_ERROR = -1 /* an error was printed (positional argument) */
};

void dj_opt_init(dj_opt_iter *it, int argc, char **argv, int first);
/* Advances to the next option. A bare `--` or a positional argument is an
 * error (printed); `-h` is reported as `--help`. */
int dj_opt_next(dj_opt_iter *it, const char *cmd);
/* Nonzero if the current option is `name` (as `--name` or `--name=...`). */
int dj_opt_is(const dj_opt_iter *it, const char *name);
/* The current option's value (from `=value` or the next argument); NULL
 * after printing an error if it is missing. */
const char *dj_opt_value(dj_opt_iter *it, const char *cmd);
/* For a flag: 0 if no value was attached, else prints an error, returns -1. */
int dj_opt_no_value(const dj_opt_iter *it, const char *cmd);
/* Prints "unknown option" and returns DJ_EXIT_USAGE. */
int dj_opt_unknown(const dj_opt_iter *it, const char *cmd);

/* ---- integers ---- */

/* Parses a whole string as a decimal integer (optional sign) in [lo, hi].
 * Returns 0, or -1 when it is not an integer, -2 when it is out of range. */
int dj_parse_int(const char *s, long long lo, long long hi, long long *out);
/* Parses a whole string as an unsigned 64-bit integer, decimal or 0x-hex.
 * Returns 0, or -1 when it is not such a number, -2 when it does not fit. */
int dj_parse_u64(const char *s, uint64_t *out);

/* ---- subcommands ---- */

int dj_cmd_cfloat(int argc, char **argv); /* cmd_cfloat.c */
int dj_cmd_bench(int argc, char **argv);  /* cmd_bench.c  */
int dj_cmd_train(int argc, char **argv);  /* cmd_train.c  */
int dj_cmd_eval(int argc, char **argv);   /* cmd_train.c  */
int dj_cmd_compare(int argc, char **argv); /* cmd_compare.c */

/* Help texts (to the given stream). */
void dj_cfloat_usage(FILE *fp);
void dj_bench_usage(FILE *fp);
void dj_train_usage(FILE *fp);
void dj_eval_usage(FILE *fp);
void dj_compare_usage(FILE *fp);

/* Seconds on the monotonic clock. */
double dj_cli_now(void);
/* "m:ss" or "h:mm:ss" (negative, NaN or absurd values print as 0:00). */
void dj_cli_duration(double seconds, char *buf, size_t n);

#endif

/* cli_util.c - helpers every `dojo` subcommand uses: one-line error
 * messages, `--name value` / `--name=value` option parsing, and integer
 * parsing with range checks. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

void dj_cli_err(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    if (cmd && *cmd)
        fprintf(stderr, "dojo: %s: ", cmd);
    else
        fputs("dojo: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

char *dj_cli_quote(const char *s, size_t n, size_t max_show, char *buf, size_t bufsize)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    /* Room for one escaped byte (4), the ellipsis (3), the quote and NUL. */
    if (bufsize < 12) {
        if (bufsize)
            buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[4];
        size_t k = 0;
        if (c == '"' || c == '\\') {
            tmp[k++] = '\\';
            tmp[k++] = (char)c;
        } else if (c == '\t') {
            tmp[k++] = '\\';
            tmp[k++] = 't';
        } else if (c == '\r') {
            tmp[k++] = '\\';
            tmp[k++] = 'r';
        } else if (c < 0x20 || c >= 0x7f) {
            tmp[k++] = '\\';
            tmp[k++] = 'x';
            tmp[k++] = hex[c >> 4];
            tmp[k++] = hex[c & 15];
        } else {
            tmp[k++] = (char)c;
        }
        if (i >= max_show || o + k + 5 > bufsize) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(buf + o, tmp, k);
        o += k;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static const char *g_program = "dojo";

void dj_cli_set_program(const char *argv0)
{
    if (argv0 && *argv0)
        g_program = argv0;
}

const char *dj_cli_program(void)
{
    return g_program;
}

/* ---- options ---- */

void dj_opt_init(dj_opt_iter *it, int argc, char **argv, int first)
{
    it->argc = argc;
    it->argv = argv;
    it->i = first;
    it->arg = NULL;
    it->name_len = 0;
    it->eq = NULL;
}

int dj_opt_next(dj_opt_iter *it, const char *cmd)
{
    if (it->i >= it->argc)
        return DJ_OPT_DONE;
    const char *a = it->argv[it->i++];
    if (strcmp(a, "-h") == 0)
        a = "--help";
    if (a[0] != '-' || a[1] != '-' || a[2] == '\0' || a[2] == '=') {
        if (a[0] == '-' && a[1] != '\0')
            dj_cli_err(cmd, "unknown option '%s' (try 'dojo %s --help')", a, cmd);
        else
            dj_cli_err(cmd, "unexpected argument '%s' (try 'dojo %s --help')", a, cmd);
        return DJ_OPT_ERROR;
    }
    it->arg = a;
    const char *eq = strchr(a, '=');
    it->eq = eq ? eq + 1 : NULL;
    it->name_len = eq ? (size_t)(eq - a) : strlen(a);
    return DJ_OPT_MORE;
}

int dj_opt_is(const dj_opt_iter *it, const char *name)
{
    return strlen(name) == it->name_len && strncmp(it->arg, name, it->name_len) == 0;
}

const char *dj_opt_value(dj_opt_iter *it, const char *cmd)
{
    if (it->eq)
        return it->eq;
    if (it->i >= it->argc) {
        dj_cli_err(cmd, "option '%.*s' needs a value", (int)it->name_len, it->arg);
        return NULL;
    }
    return it->argv[it->i++];
}

int dj_opt_no_value(const dj_opt_iter *it, const char *cmd)
{
    if (it->eq) {
        dj_cli_err(cmd, "option '%.*s' takes no value", (int)it->name_len, it->arg);
        return -1;
    }
    return 0;
}

int dj_opt_unknown(const dj_opt_iter *it, const char *cmd)
{
    dj_cli_err(cmd, "unknown option '%.*s' (try 'dojo %s --help')", (int)it->name_len, it->arg,
               cmd);
    return DJ_EXIT_USAGE;
}

/* ---- integers ---- */

int dj_parse_int(const char *s, long long lo, long long hi, long long *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0')
        return -1;
    if (errno == ERANGE || v < lo || v > hi)
        return -2;
    *out = v;
    return 0;
}

int dj_parse_u64(const char *s, uint64_t *out)
{
    int base = 10;
    const char *p = s;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    if (*p == '\0')
        return -1;
    for (const char *q = p; *q; q++) {
        int ok = (*q >= '0' && *q <= '9') ||
                 (base == 16 && ((*q >= 'a' && *q <= 'f') || (*q >= 'A' && *q <= 'F')));
        if (!ok)
            return -1;
    }
    errno = 0;
    char *end;
    unsigned long long v = strtoull(p, &end, base);
    if (*end != '\0')
        return -1;
    if (errno == ERANGE)
        return -2;
#if ULLONG_MAX > UINT64_MAX
    if (v > UINT64_MAX)
        return -2;
#endif
    *out = (uint64_t)v;
    return 0;
}

double dj_cli_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void dj_cli_duration(double s, char *buf, size_t n)
{
    if (!(s >= 0) || s > 1e8)
        s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else
        snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

/* cmd_cfloat.c - `dojo cfloat encode|decode|table|info`: the number formats
 * of libdojo (src/cfloat/, docs/CFLOAT.md) at the command line.
 *
 * encode and decode are filters, one input per line on stdin and one output
 * line `CODE VALUE FLAGS` per input, so that scripts can check any value
 * against another implementation. All conversions are the library's
 * reference path (dj_cf_encode / dj_cf_decode); this file only parses,
 * checks and prints. Output lines are printed whole: on a bad input line the
 * lines before it are flushed complete and the command stops with one
 * message on stderr (exit 1; exit 2 for a bad command line). */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/numparse.h"
#include "dojo/cfloat.h"

/* ---- help ---- */

void dj_cfloat_usage(FILE *fp)
{
    fputs("usage: dojo cfloat encode --format F [--bias B] [--rounding nearest|stochastic] [--seed N]\n"
          "       dojo cfloat decode --format F [--bias B]\n"
          "       dojo cfloat table  --format F [--bias B]\n"
          "       dojo cfloat info   [--format F [--bias B]] [--json]\n"
          "\n"
          "Tesla's configurable floats (CFloat8, CFloat16) and the formats they are\n"
          "compared with (OCP FP8, bfloat16); semantics in docs/CFLOAT.md.\n"
          "\n"
          "  encode  read one float32 per line from stdin: a decimal or C99 hex float\n"
          "          (1.5, -0x1.8p-3, 1e-3), inf, -inf, nan, or exact bits written\n"
          "          bits:0x3f800000; print CODE VALUE FLAGS for each. Stochastic\n"
          "          rounding gives input line i (from 0) element index i.\n"
          "  decode  read one code per line (1 to 4 hex digits, 0x optional) and\n"
          "          print CODE VALUE FLAGS.\n"
          "  table   print every code: CODE VALUE DECIMAL CLASS.\n"
          "  info    describe a format at a bias: layout, range, special values,\n"
          "          overflow; without --format, one line for every format.\n"
          "\n"
          "  VALUE is a C99 hex float (%a) or inf, -inf, nan. FLAGS are the status\n"
          "  flags the line raised, from IDOU (Invalid, Denormal, Overflow,\n"
          "  Underflow), or - for none.\n"
          "\n"
          "options:\n"
          "  --format F     cfloat8_1_4_3, cfloat8_1_5_2, shp, uhp, e4m3, e5m2, bf16\n"
          "  --bias B       exponent bias (default: the format's default; fixed\n"
          "                 formats allow only their own)\n"
          "  --rounding R   nearest (default) or stochastic\n"
          "  --seed N       seed of stochastic rounding (default 0)\n"
          "  --json         info: print one JSON object\n"
          "\n"
          "exit status: 0 ok, 1 bad input line or I/O error, 2 bad command line\n",
          fp);
}

/* ---- options ---- */

enum { OPT_FORMAT = 1, OPT_BIAS = 2, OPT_ROUNDING = 4, OPT_SEED = 8, OPT_JSON = 16 };

typedef struct {
    const char *cmd; /* "cfloat encode", for messages */
    int have_format, have_bias;
    dj_format format;
    int bias;
    dj_round round;
    int json;
} cf_opts;

static void format_list(char *buf, size_t n)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < DJ_FMT_COUNT && o < n; i++) {
        const dj_format_desc *d = dj_format_desc_of((dj_format)i);
        int w = snprintf(buf + o, n - o, "%s%s", i ? ", " : "", d->name);
        if (w < 0)
            break;
        o += (size_t)w;
    }
}

/* Parses the options in `allowed`. Returns -1 to go on, or an exit status
 * (0 after printing help). */
static int parse_opts(int argc, char **argv, unsigned allowed, cf_opts *o)
{
    dj_opt_iter it;
    const char *bias_text = NULL;
    int rc;
    o->have_format = o->have_bias = 0;
    o->format = DJ_FMT_CF8_143;
    o->bias = 0;
    o->round.mode = DJ_ROUND_NEAREST;
    o->round.seed = 0;
    o->json = 0;

    /* --help wins wherever it is, even after a bad option. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            dj_cfloat_usage(stdout);
            return DJ_EXIT_OK;
        }
    }

    dj_opt_init(&it, argc, argv, 1);
    while ((rc = dj_opt_next(&it, o->cmd)) == DJ_OPT_MORE) {
        const char *v;
        if ((allowed & OPT_FORMAT) && dj_opt_is(&it, "--format")) {
            if (!(v = dj_opt_value(&it, o->cmd)))
                return DJ_EXIT_USAGE;
            if (dj_format_from_name(v, &o->format) != 0) {
                char list[256], q[128];
                format_list(list, sizeof list);
                dj_cli_err(o->cmd, "unknown format %s (valid: %s)",
                           dj_cli_quote(v, strlen(v), 40, q, sizeof q), list);
                return DJ_EXIT_USAGE;
            }
            o->have_format = 1;
        } else if ((allowed & OPT_BIAS) && dj_opt_is(&it, "--bias")) {
            if (!(bias_text = dj_opt_value(&it, o->cmd)))
                return DJ_EXIT_USAGE;
            o->have_bias = 1;
        } else if ((allowed & OPT_ROUNDING) && dj_opt_is(&it, "--rounding")) {
            if (!(v = dj_opt_value(&it, o->cmd)))
                return DJ_EXIT_USAGE;
            if (strcmp(v, "nearest") == 0) {
                o->round.mode = DJ_ROUND_NEAREST;
            } else if (strcmp(v, "stochastic") == 0) {
                o->round.mode = DJ_ROUND_STOCHASTIC;
            } else {
                char q[128];
                dj_cli_err(o->cmd, "unknown rounding %s (valid: nearest, stochastic)",
                           dj_cli_quote(v, strlen(v), 40, q, sizeof q));
                return DJ_EXIT_USAGE;
            }
        } else if ((allowed & OPT_SEED) && dj_opt_is(&it, "--seed")) {
            char q[128];
            int prc;
            if (!(v = dj_opt_value(&it, o->cmd)))
                return DJ_EXIT_USAGE;
            if ((prc = dj_parse_u64(v, &o->round.seed)) != 0) {
                dj_cli_err(o->cmd, "--seed %s is not %s", dj_cli_quote(v, strlen(v), 40, q, sizeof q),
                           prc == -2 ? "below 2^64" : "an unsigned integer (decimal or 0x hex)");
                return DJ_EXIT_USAGE;
            }
        } else if ((allowed & OPT_JSON) && dj_opt_is(&it, "--json")) {
            if (dj_opt_no_value(&it, o->cmd))
                return DJ_EXIT_USAGE;
            o->json = 1;
        } else {
            return dj_opt_unknown(&it, o->cmd);
        }
    }
    if (rc == DJ_OPT_ERROR)
        return DJ_EXIT_USAGE;

    if (!o->have_format) {
        if (allowed & OPT_JSON) { /* info: --format is optional, but --bias needs it */
            if (o->have_bias) {
                dj_cli_err(o->cmd, "--bias needs --format");
                return DJ_EXIT_USAGE;
            }
            return -1;
        }
        char list[256];
        format_list(list, sizeof list);
        dj_cli_err(o->cmd, "missing --format (one of: %s)", list);
        return DJ_EXIT_USAGE;
    }
    const dj_format_desc *d = dj_format_desc_of(o->format);
    if (!o->have_bias) {
        o->bias = d->bias_default;
        return -1;
    }
    long long b;
    char q[128];
    int prc = dj_parse_int(bias_text, INT_MIN, INT_MAX, &b);
    if (prc == -1) {
        dj_cli_err(o->cmd, "--bias %s is not an integer",
                   dj_cli_quote(bias_text, strlen(bias_text), 40, q, sizeof q));
        return DJ_EXIT_USAGE;
    }
    if (prc != 0 || !dj_format_bias_ok(o->format, (int)b)) {
        if (d->bias_min == d->bias_max)
            dj_cli_err(o->cmd, "--bias %s is not allowed for %s: its bias is fixed at %d",
                       bias_text, d->name, d->bias_min);
        else
            dj_cli_err(o->cmd, "--bias %s is out of range for %s (allowed %d..%d)", bias_text,
                       d->name, d->bias_min, d->bias_max);
        return DJ_EXIT_USAGE;
    }
    o->bias = (int)b;
    return -1;
}

/* ---- reading lines ----
 *
 * read(2) on standard input, so that a line is answered as soon as it has
 * arrived: stdout is flushed before every read that may wait, which keeps a
 * script that writes a line and then reads the answer from hanging, while
 * bulk input is still read and written in large blocks. */

typedef struct {
    int fd;
    int eof;
    size_t pos, end;
    char buf[1 << 16];
} line_reader;

enum { LR_LINE = 1, LR_EOF = 0, LR_TOO_LONG = -1, LR_READ_ERROR = -2 };

/* The next line, without its '\n', into line[0..*len) (cap bytes at most).
 * A line longer than cap is consumed and reported as LR_TOO_LONG. The last
 * line needs no '\n'. */
static int lr_next(line_reader *r, char *line, size_t cap, size_t *len)
{
    size_t n = 0;
    int got = 0, too_long = 0;
    for (;;) {
        if (r->pos == r->end) {
            ssize_t k;
            if (r->eof)
                break;
            fflush(stdout);
            do
                k = read(r->fd, r->buf, sizeof r->buf);
            while (k < 0 && errno == EINTR);
            if (k < 0)
                return LR_READ_ERROR;
            if (k == 0) {
                r->eof = 1;
                break;
            }
            r->pos = 0;
            r->end = (size_t)k;
        }
        got = 1;
        const char *b = r->buf + r->pos;
        size_t avail = r->end - r->pos;
        const char *nl = memchr(b, '\n', avail);
        size_t take = nl ? (size_t)(nl - b) : avail;
        if (!too_long) {
            if (take > cap - n) {
                too_long = 1;
            } else {
                memcpy(line + n, b, take);
                n += take;
            }
        }
        r->pos += take + (nl ? 1 : 0);
        if (nl)
            break;
    }
    if (!got)
        return LR_EOF;
    *len = n;
    return too_long ? LR_TOO_LONG : LR_LINE;
}

/* ---- printing ---- */

static void fmt_code(char *buf, size_t n, const dj_format_desc *d, uint32_t code)
{
    snprintf(buf, n, d->bits == 8 ? "0x%02x" : "0x%04x", (unsigned)code);
}

/* %a, or inf / -inf / nan (never a signed nan). */
static void fmt_hex_value(char *buf, size_t n, float v)
{
    if (isnan(v))
        snprintf(buf, n, "nan");
    else if (isinf(v))
        snprintf(buf, n, "%s", v < 0 ? "-inf" : "inf");
    else
        snprintf(buf, n, "%a", (double)v);
}

/* %.9g, or inf / -inf / nan. */
static void fmt_dec_value(char *buf, size_t n, double v)
{
    if (isnan(v))
        snprintf(buf, n, "nan");
    else if (isinf(v))
        snprintf(buf, n, "%s", v < 0 ? "-inf" : "inf");
    else
        snprintf(buf, n, "%.9g", v);
}

static void print_result(const dj_format_desc *d, dj_format f, int bias, uint32_t code,
                         unsigned flags)
{
    char cbuf[16], vbuf[64], fbuf[5];
    unsigned ignored = 0;
    fmt_code(cbuf, sizeof cbuf, d, code);
    fmt_hex_value(vbuf, sizeof vbuf, dj_cf_decode(f, bias, code, &ignored));
    printf("%s %s %s\n", cbuf, vbuf, dj_cf_flags_str(flags, fbuf));
}

/* Exit status after the last line: 1 if writing stdout failed. */
static int finish_output(const char *cmd)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        int e = errno;
        fprintf(stderr, "dojo: %s: cannot write the output: %s\n", cmd, strerror(e));
        return DJ_EXIT_DATA;
    }
    return DJ_EXIT_OK;
}

/* Reports a line that could not be read or parsed; returns the exit status. */
static int line_error(const char *cmd, unsigned long lineno, int lr, dj_np_status st,
                      const char *line, size_t len, const char *what)
{
    char q[200];
    size_t a, n;
    if (lr == LR_READ_ERROR) {
        dj_cli_err(cmd, "cannot read standard input: %s", strerror(errno));
    } else if (lr == LR_TOO_LONG || st == DJ_NP_TOO_LONG) {
        dj_cli_err(cmd, "line %lu: longer than %d bytes", lineno, DJ_NUMPARSE_MAX_LINE);
    } else if (st == DJ_NP_EMPTY) {
        dj_cli_err(cmd, "line %lu: empty line (expected %s)", lineno, what);
    } else {
        dj_np_trim(line, len, &a, &n);
        dj_cli_err(cmd, "line %lu: cannot parse %s as %s", lineno,
                   dj_cli_quote(line + a, n, 64, q, sizeof q), what);
    }
    return DJ_EXIT_DATA;
}

/* ---- encode / decode ---- */

typedef struct {
    line_reader rd;
    char line[DJ_NUMPARSE_MAX_LINE];
} filter_state;

static int cmd_encode(int argc, char **argv)
{
    cf_opts o = {.cmd = "cfloat encode"};
    int rc = parse_opts(argc, argv, OPT_FORMAT | OPT_BIAS | OPT_ROUNDING | OPT_SEED, &o);
    if (rc >= 0)
        return rc;
    const dj_format_desc *d = dj_format_desc_of(o.format);
    filter_state *s = malloc(sizeof *s);
    if (!s) {
        dj_cli_err(o.cmd, "out of memory");
        return DJ_EXIT_DATA;
    }
    s->rd.fd = STDIN_FILENO;
    s->rd.eof = 0;
    s->rd.pos = s->rd.end = 0;
    rc = DJ_EXIT_OK;
    for (unsigned long lineno = 1;; lineno++) {
        size_t len = 0;
        int lr = lr_next(&s->rd, s->line, sizeof s->line, &len);
        if (lr == LR_EOF)
            break;
        dj_np_number num;
        dj_np_status st = DJ_NP_OK;
        if (lr == LR_LINE)
            st = dj_numparse_f32(s->line, len, &num);
        if (lr != LR_LINE || st != DJ_NP_OK) {
            rc = line_error(o.cmd, lineno, lr, st, s->line, len, "a number");
            break;
        }
        unsigned flags = 0;
        uint32_t code = dj_cf_encode(o.format, o.bias, num.value, o.round, lineno - 1, &flags);
        print_result(d, o.format, o.bias, code, flags);
    }
    free(s);
    int wrc = finish_output(o.cmd);
    return rc ? rc : wrc;
}

static int cmd_decode(int argc, char **argv)
{
    cf_opts o = {.cmd = "cfloat decode"};
    int rc = parse_opts(argc, argv, OPT_FORMAT | OPT_BIAS, &o);
    if (rc >= 0)
        return rc;
    const dj_format_desc *d = dj_format_desc_of(o.format);
    filter_state *s = malloc(sizeof *s);
    if (!s) {
        dj_cli_err(o.cmd, "out of memory");
        return DJ_EXIT_DATA;
    }
    s->rd.fd = STDIN_FILENO;
    s->rd.eof = 0;
    s->rd.pos = s->rd.end = 0;
    rc = DJ_EXIT_OK;
    for (unsigned long lineno = 1;; lineno++) {
        size_t len = 0;
        uint32_t code = 0;
        int lr = lr_next(&s->rd, s->line, sizeof s->line, &len);
        if (lr == LR_EOF)
            break;
        dj_np_status st = DJ_NP_OK;
        if (lr == LR_LINE)
            st = dj_numparse_code(s->line, len, &code);
        if (lr != LR_LINE || st != DJ_NP_OK) {
            rc = line_error(o.cmd, lineno, lr, st, s->line, len, "a code (1 to 4 hex digits)");
            break;
        }
        if (code >> d->bits) {
            char q[200];
            size_t a, n;
            dj_np_trim(s->line, len, &a, &n);
            dj_cli_err(o.cmd, "line %lu: code %s does not fit in %s (%d bits, 0x0..0x%x)", lineno,
                       dj_cli_quote(s->line + a, n, 64, q, sizeof q), d->name, d->bits,
                       (1u << d->bits) - 1);
            rc = DJ_EXIT_DATA;
            break;
        }
        unsigned flags = 0;
        float v = dj_cf_decode(o.format, o.bias, code, &flags);
        char cbuf[16], vbuf[64], fbuf[5];
        fmt_code(cbuf, sizeof cbuf, d, code);
        fmt_hex_value(vbuf, sizeof vbuf, v);
        printf("%s %s %s\n", cbuf, vbuf, dj_cf_flags_str(flags, fbuf));
    }
    free(s);
    int wrc = finish_output(o.cmd);
    return rc ? rc : wrc;
}

/* ---- table ---- */

static int cmd_table(int argc, char **argv)
{
    cf_opts o = {.cmd = "cfloat table"};
    int rc = parse_opts(argc, argv, OPT_FORMAT | OPT_BIAS, &o);
    if (rc >= 0)
        return rc;
    const dj_format_desc *d = dj_format_desc_of(o.format);
    printf("# %s (%s), bias %d: CODE VALUE DECIMAL CLASS\n", d->title, d->name, o.bias);
    uint32_t ncodes = 1u << d->bits;
    for (uint32_t code = 0; code < ncodes; code++) {
        unsigned flags = 0;
        float v = dj_cf_decode(o.format, o.bias, code, &flags);
        char cbuf[16], hbuf[64], dbuf[64];
        fmt_code(cbuf, sizeof cbuf, d, code);
        fmt_hex_value(hbuf, sizeof hbuf, v);
        fmt_dec_value(dbuf, sizeof dbuf, (double)v);
        printf("%s %s %s %s\n", cbuf, hbuf, dbuf,
               dj_class_name(dj_format_classify(o.format, code)));
    }
    return finish_output(o.cmd);
}

/* ---- info ---- */

static const char *denorm_text(const dj_format_desc *d)
{
    switch (d->denorm) {
    case DJ_DENORM_TESLA:
        return "2^(-bias)*0.m (Tesla rule; no code between the largest denormal and "
               "the smallest normal)";
    case DJ_DENORM_IEEE: return "2^(1-bias)*0.m (IEEE rule)";
    case DJ_DENORM_FLUSH:
        return "none: exponent field 0 reads as zero, results below the smallest normal "
               "flush to +0";
    }
    return "?";
}

static const char *specials_text(const dj_format_desc *d)
{
    switch (d->specials) {
    case DJ_SPECIALS_NONE: return "none: every code is a number";
    case DJ_SPECIALS_IEEE: return "all-ones exponent: mantissa 0 is Inf, otherwise NaN";
    case DJ_SPECIALS_E4M3: return "only S.1111.111 is NaN; no Inf";
    }
    return "?";
}

static const char *overflow_text(const dj_format_desc *d)
{
    if (d->overflow == DJ_OVERFLOW_SATURATE)
        return "saturate to +-max (Inf input too)";
    return d->sign_bits ? "+-Inf" : "+Inf";
}

static void nan_text(const dj_format_desc *d, char *buf, size_t n)
{
    if (d->nan_to_max)
        snprintf(buf, n, "becomes +max (the format has no NaN)");
    else if (d->nan_keeps_sign)
        snprintf(buf, n, "NaN 0x%0*x with the input's sign", d->bits / 4, (unsigned)d->nan_code);
    else
        snprintf(buf, n, "canonical NaN 0x%0*x", d->bits / 4, (unsigned)d->nan_code);
}

typedef struct {
    double max, min_normal, min_denormal, smallest; /* smallest positive value */
    double binades, decades;
    uint32_t max_code;
} fmt_numbers;

static fmt_numbers numbers_of(dj_format f, int bias)
{
    fmt_numbers r;
    r.max = dj_format_max(f, bias);
    r.min_normal = dj_format_min_normal(f, bias);
    r.min_denormal = dj_format_min_denormal(f, bias);
    r.smallest = r.min_denormal > 0 ? r.min_denormal : r.min_normal;
    r.binades = log2(r.max / r.smallest);
    r.decades = log10(r.max / r.smallest);
    r.max_code = dj_format_max_code(f, bias);
    return r;
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* "KEY": {"hex": "%a", "decimal": %.9g}, or null when v == 0 and none_ok. */
static void json_value(const char *key, double v, int none_if_zero)
{
    printf("\"%s\": ", key);
    if (none_if_zero && v == 0)
        printf("null");
    else
        printf("{\"hex\": \"%a\", \"decimal\": %.9g}", v, v);
}

static void info_json(dj_format f, int bias)
{
    const dj_format_desc *d = dj_format_desc_of(f);
    fmt_numbers nb = numbers_of(f, bias);
    char code[16], nan[96];
    printf("{\"format\": ");
    json_string(d->name);
    printf(", \"title\": ");
    json_string(d->title);
    printf(", \"bits\": %d, \"sign_bits\": %d, \"exponent_bits\": %d, \"mantissa_bits\": %d",
           d->bits, d->sign_bits, d->exp_bits, d->man_bits);
    printf(", \"bias\": %d, \"bias_min\": %d, \"bias_max\": %d, \"bias_default\": %d", bias,
           d->bias_min, d->bias_max, d->bias_default);
    printf(", ");
    json_value("max", nb.max, 0);
    fmt_code(code, sizeof code, d, nb.max_code);
    printf(", \"max_code\": \"%s\", ", code);
    json_value("min_normal", nb.min_normal, 0);
    printf(", ");
    json_value("min_denormal", nb.min_denormal, 1);
    printf(", \"dynamic_range_binades\": %.6g, \"dynamic_range_decades\": %.6g", nb.binades,
           nb.decades);
    printf(", \"denormals\": ");
    json_string(denorm_text(d));
    printf(", \"specials\": ");
    json_string(specials_text(d));
    nan_text(d, nan, sizeof nan);
    printf(", \"nan_input\": ");
    json_string(nan);
    printf(", \"overflow\": ");
    json_string(overflow_text(d));
    printf("}");
}

static void info_text(dj_format f, int bias)
{
    const dj_format_desc *d = dj_format_desc_of(f);
    fmt_numbers nb = numbers_of(f, bias);
    char code[16], nan[96];
    fmt_code(code, sizeof code, d, nb.max_code);
    nan_text(d, nan, sizeof nan);
    printf("%s (%s)\n", d->title, d->name);
    printf("layout:            %d bits: sign %d, exponent %d, mantissa %d\n", d->bits,
           d->sign_bits, d->exp_bits, d->man_bits);
    if (d->bias_min == d->bias_max)
        printf("bias:              %d (fixed)\n", bias);
    else
        printf("bias:              %d (allowed %d..%d, default %d)\n", bias, d->bias_min,
               d->bias_max, d->bias_default);
    printf("largest:           %a (%.9g), code %s\n", nb.max, nb.max, code);
    printf("smallest normal:   %a (%.9g)\n", nb.min_normal, nb.min_normal);
    if (nb.min_denormal > 0)
        printf("smallest denormal: %a (%.9g)\n", nb.min_denormal, nb.min_denormal);
    else
        printf("smallest denormal: none\n");
    printf("dynamic range:     %.2f binades, %.2f decades (smallest positive to largest)\n",
           nb.binades, nb.decades);
    printf("denormals:         %s\n", denorm_text(d));
    printf("special values:    %s\n", specials_text(d));
    printf("NaN input:         %s\n", nan);
    printf("overflow:          %s\n", overflow_text(d));
}

static void info_summary_text(void)
{
    printf("# %-13s %-23s %-9s %-11s %-14s %-14s %s\n", "format", "title", "layout", "bias",
           "max", "min normal", "min denormal");
    for (int i = 0; i < DJ_FMT_COUNT; i++) {
        dj_format f = (dj_format)i;
        const dj_format_desc *d = dj_format_desc_of(f);
        fmt_numbers nb = numbers_of(f, d->bias_default);
        char layout[32], bias[32], dn[32];
        snprintf(layout, sizeof layout, "s%d e%d m%d", d->sign_bits, d->exp_bits, d->man_bits);
        if (d->bias_min == d->bias_max)
            snprintf(bias, sizeof bias, "%d fixed", d->bias_default);
        else
            snprintf(bias, sizeof bias, "%d (%d..%d)", d->bias_default, d->bias_min, d->bias_max);
        if (nb.min_denormal > 0)
            snprintf(dn, sizeof dn, "%.9g", nb.min_denormal);
        else
            snprintf(dn, sizeof dn, "none");
        printf("%-15s %-23s %-9s %-11s %-14.9g %-14.9g %s\n", d->name, d->title, layout, bias,
               nb.max, nb.min_normal, dn);
    }
}

static int cmd_info(int argc, char **argv)
{
    cf_opts o = {.cmd = "cfloat info"};
    int rc = parse_opts(argc, argv, OPT_FORMAT | OPT_BIAS | OPT_JSON, &o);
    if (rc >= 0)
        return rc;
    if (o.have_format) {
        if (o.json) {
            info_json(o.format, o.bias);
            putchar('\n');
        } else {
            info_text(o.format, o.bias);
        }
    } else if (o.json) {
        printf("{\"formats\": [");
        for (int i = 0; i < DJ_FMT_COUNT; i++) {
            fputs(i ? ", " : "", stdout);
            info_json((dj_format)i, dj_format_desc_of((dj_format)i)->bias_default);
        }
        printf("]}\n");
    } else {
        info_summary_text();
    }
    return finish_output(o.cmd);
}

/* ---- dispatch ---- */

int dj_cmd_cfloat(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } subs[] = {
        {"encode", cmd_encode},
        {"decode", cmd_decode},
        {"table", cmd_table},
        {"info", cmd_info},
    };
    if (argc < 2) {
        dj_cfloat_usage(stderr);
        return DJ_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        dj_cfloat_usage(stdout);
        return DJ_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(sub, subs[i].name) == 0)
            return subs[i].fn(argc - 1, argv + 1);
    char q[128];
    dj_cli_err("cfloat", "unknown subcommand %s (valid: encode, decode, table, info)",
               dj_cli_quote(sub, strlen(sub), 40, q, sizeof q));
    return DJ_EXIT_USAGE;
}

/* cmd_compare.c - `dojo compare`: the same training under several precision
 * policies and seeds, and a report that puts them side by side.
 *
 * Every run is a child process, this same executable as `dojo train ...
 * --json`, with its stdout and stderr in REPORT/runs/P-seedS/train.log; the
 * child's peak resident memory comes from wait4(). Its results come from its
 * last output line (the --json object), its curves from metrics.jsonl. A run
 * directory that already holds the finished run (same settings) is reused,
 * an unfinished one is resumed from its checkpoint, so an interrupted
 * compare continues when started again. The report (report.json,
 * report.md, accuracy.svg, loss.svg, report.html) is written atomically at
 * the end, also when some runs failed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "cli/cli.h"
#include "dojo/fileio.h"
#include "dojo/json.h"
#include "dojo/precision.h"
#include "dojo/train.h"

#define MAX_SEEDS 1000
#define MAX_JOBS 64
/* Room for REPORT/runs/P-seedS (REPORT is checked to leave room) and the
 * files in it, and for messages that name them. */
#define DIR_MAX (DJ_PATH_MAX + 96)
#define FILE_MAX (DIR_MAX + 64)
#define MSG_MAX (2 * FILE_MAX + 256)

void dj_compare_usage(FILE *fp)
{
    fputs("usage: dojo compare --model SPEC.json [options] [-- TRAIN-OPTIONS...]\n"
          "\n"
          "Trains the same model under several precision policies and seeds, one\n"
          "`dojo train` process per run, one run at a time, and writes a report\n"
          "to DIR (--out):\n"
          "\n"
          "  report.md       table: test accuracy after the last epoch (mean ± sample\n"
          "                  std over seeds), its difference to fp32 in points, bytes\n"
          "                  of training state per parameter, peak memory, images/s\n"
          "                  and its ratio to fp32; printed at the end too\n"
          "  report.json     the same per policy (accuracies as fractions), with every\n"
          "                  run and its per-epoch test accuracy, test loss, ...\n"
          "  accuracy.svg    test accuracy per epoch: mean over seeds, band min..max\n"
          "  loss.svg        test loss per epoch\n"
          "  report.html     one self-contained page: table, both plots, every run\n"
          "  runs/P-seedS/   each run's dojo train directory, with its train.log\n"
          "\n"
          "Runs that DIR/runs/ already holds, finished with the same settings, are\n"
          "reused (\"reused\"); unfinished ones are resumed from their last checkpoint,\n"
          "so an interrupted compare continues when run again with the same options.\n"
          "A run directory with other settings (epochs, limits, model, ...) is moved\n"
          "aside to P-seedS.old (.old-2, ...), never deleted.\n"
          "\n"
          "options:\n"
          "  --model PATH        model spec (required)\n"
          "  --precisions LIST   policies, comma-separated: fp32, bf16, cfp8, cfp8-shp,\n"
          "                      ocp8 (default: all five; see dojo train --help)\n"
          "  --seeds N           seeds 1..N (3)\n"
          "  --seed-list LIST    these seeds instead, e.g. 1,5,9\n"
          "  --epochs N          (the spec's)\n"
          "  --out DIR           report directory (default runs/compare-<model name>)\n"
          "  --data DIR          the four IDX files (dojo train's default)\n"
          "  --jobs N            train N runs at once (1); each then gets CPUs / N\n"
          "                      threads unless --threads says otherwise\n"
          "  --threads N         threads of each run (all CPUs)\n"
          "  --batch-size N      (the spec's)\n"
          "  --train-limit N     use only the first N training images\n"
          "  --test-limit N      use only the first N test images\n"
          "  --report-only       train nothing: write the report from the runs that\n"
          "                      are finished\n"
          "  --json              end with one JSON line: the summary per policy\n"
          "  -- OPTIONS...       the rest goes to every dojo train unchanged, e.g.\n"
          "                      -- --lr 0.1 --scaling current\n"
          "\n"
          "Runs go seed by seed: seed 1 of every policy, then seed 2, ... While a run\n"
          "trains, one status line shows its progress (from the last line of its\n"
          "train.log), rewritten every second on a terminal (all the runs on one line\n"
          "with --jobs) and printed every 10 s per run otherwise; one summary line\n"
          "follows each run. With --jobs N, N runs share the machine: a small\n"
          "network trains faster per CPU on one thread than on several, so N runs of\n"
          "one thread finish sooner than one run after another on N threads; the\n"
          "images/s column is then what each run got beside the others. Peak memory\n"
          "is the child's peak resident set size (wait4). A run that fails is\n"
          "reported with its log and the log's last lines, the other runs go on, and\n"
          "the exit status is 1. Interrupted (Ctrl-C), compare stops its runs,\n"
          "writes the report of what is finished and exits with 130.\n",
          fp);
}

/* ---- small helpers ---- */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static int sb_reserve(sbuf *b, size_t extra)
{
    if (b->oom)
        return 0;
    if (b->len + extra + 1 <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (!sb_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_printf(sbuf *b, const char *fmt, ...) DJ_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if (!sb_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Text for HTML and SVG. */
static void sb_xml(sbuf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': sb_puts(b, "&amp;"); break;
        case '<': sb_puts(b, "&lt;"); break;
        case '>': sb_puts(b, "&gt;"); break;
        case '"': sb_puts(b, "&quot;"); break;
        case '\'': sb_puts(b, "&#39;"); break;
        default: sb_put(b, s, 1);
        }
    }
}

/* strlcpy: copies what fits, always terminated. */
static void copy_str(char *dst, size_t n, const char *src)
{
    size_t len = strlen(src);
    if (len >= n)
        len = n - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void sb_free(sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Same file or directory: by realpath when both resolve, else by name. */
static int same_path(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];
    if (realpath(a, ra) && realpath(b, rb))
        return strcmp(ra, rb) == 0;
    return strcmp(a, b) == 0;
}

/* The last non-empty line of a file (at most the last n-1 bytes of it, from
 * the last 16 KiB), with any progress before a '\r' dropped. */
static int last_line(const char *path, char *buf, size_t n)
{
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    char tail[16384];
    ssize_t got = -1;
    if (fstat(fd, &st) == 0) {
        off_t off = st.st_size > (off_t)sizeof tail ? st.st_size - (off_t)sizeof tail : 0;
        got = pread(fd, tail, (size_t)(st.st_size - off), off);
    }
    close(fd);
    if (got < 0)
        return -1;
    size_t end = (size_t)got;
    while (end > 0 && (tail[end - 1] == '\n' || tail[end - 1] == '\r' || tail[end - 1] == ' '))
        end--;
    size_t start = end;
    while (start > 0 && tail[start - 1] != '\n' && tail[start - 1] != '\r')
        start--;
    size_t len = end - start;
    if (len >= n)
        len = n - 1;
    memcpy(buf, tail + start, len);
    buf[len] = '\0';
    return len ? 0 : -1;
}

/* Prints the last `lines` lines of a file on stderr, indented. */
static void print_log_tail(const char *path, int lines)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    char tail[4096];
    ssize_t got = -1;
    if (fstat(fd, &st) == 0) {
        off_t off = st.st_size > (off_t)sizeof tail - 1 ? st.st_size - ((off_t)sizeof tail - 1) : 0;
        got = pread(fd, tail, (size_t)(st.st_size - off), off);
    }
    close(fd);
    if (got <= 0)
        return;
    size_t end = (size_t)got;
    while (end > 0 && tail[end - 1] == '\n')
        end--;
    size_t start = end;
    int count = 0;
    while (start > 0) {
        if (tail[start - 1] == '\n' && ++count == lines)
            break;
        start--;
    }
    tail[end] = '\0';
    char *line = tail + start;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *cr = strrchr(line, '\r'); /* keep what a terminal would show */
        fprintf(stderr, "    | %s\n", cr ? cr + 1 : line);
        line = nl ? nl + 1 : NULL;
    }
    fflush(stderr);
}

/* ---- the runs ---- */

enum { S_TEST_ACC, S_TEST_LOSS, S_TRAIN_LOSS, S_TRAIN_ACC, S_IPS, S_SECONDS, NSERIES };
static const char *const g_series_keys[NSERIES] = {
    "test_accuracy", "test_loss", "train_loss", "train_accuracy", "images_per_second", "seconds"};

typedef enum { R_PENDING = 0, R_DONE, R_REUSED, R_FAILED, R_MISSING } run_status;

typedef struct {
    dj_precision prec;
    uint64_t seed;
    run_status status;
    char dir[DIR_MAX];
    double test_accuracy, test_loss, train_loss, images_per_second, seconds;
    double state_bytes_per_param, peak_rss_bytes; /* 0: not known */
    double *ep[NSERIES];                          /* [epochs], NAN where absent */
    char note[DIR_MAX + 128];                     /* why it failed or is missing */
} run_rec;

typedef struct {
    const char *model;
    char name[256];           /* model name for titles and the default --out */
    char out[DJ_PATH_MAX];
    dj_precision prec[DJ_PREC_COUNT];
    int np;
    uint64_t seeds[MAX_SEEDS];
    int ns;
    int epochs;
    const char *epochs_s, *threads, *data, *batch_size, *train_limit, *test_limit;
    char **extra;
    int nextra;
    int json, report_only, tty;
    int jobs;                 /* runs trained at once (--jobs) */
    char threads_auto[16];    /* --threads when --jobs picks it */
    char exe[PATH_MAX];       /* argv[0] of the runs (they exec /proc/self/exe) */
    dj_train_config base;     /* what every run's config.json must say */
    run_rec *runs;            /* [np * ns], policy-major */
    char command[8192];
    char date[64];
} compare;

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static run_rec *run_at(compare *c, int p, int s)
{
    return &c->runs[(size_t)p * (size_t)c->ns + (size_t)s];
}

static int run_ok(const run_rec *r)
{
    return r->status == R_DONE || r->status == R_REUSED;
}

static void run_label(const compare *c, const run_rec *r, int k, char *buf, size_t n)
{
    snprintf(buf, n, "[%d/%d] %s seed %llu", k, c->np * c->ns, dj_precision_name(r->prec),
             (unsigned long long)r->seed);
}

/* Per-epoch values from metrics.jsonl ("type":"epoch" lines). Returns how
 * many of epochs 1..E it holds. */
static int load_metrics(const compare *c, run_rec *r)
{
    for (int k = 0; k < NSERIES; k++)
        for (int e = 0; e < c->epochs; e++)
            r->ep[k][e] = NAN;
    char path[FILE_MAX], err[256], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/metrics.jsonl", r->dir);
    if (dj_read_file(path, (size_t)1 << 30, &text, &len, err, sizeof err) != DJ_OK)
        return 0;
    int have = 0;
    char *seen = calloc((size_t)c->epochs, 1);
    for (char *line = text; seen && line < text + len;) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        size_t l = nl ? (size_t)(nl - line) : (size_t)(text + len - line);
        dj_json_doc *doc = NULL;
        if (dj_json_parse(line, l, NULL, &doc, NULL) == DJ_OK) {
            const dj_json_value *o = dj_json_root(doc);
            const char *type = dj_json_string(dj_json_get(o, "type"), NULL);
            const dj_json_value *ev = dj_json_get(o, "epoch");
            if (type && strcmp(type, "epoch") == 0 && dj_json_is_int(ev) && dj_json_int(ev) >= 1 &&
                dj_json_int(ev) <= c->epochs) {
                int e = (int)dj_json_int(ev) - 1;
                for (int k = 0; k < NSERIES; k++) {
                    const dj_json_value *v = dj_json_get(o, g_series_keys[k]);
                    r->ep[k][e] = dj_json_type_of(v) == DJ_JSON_NUMBER ? dj_json_number(v) : NAN;
                }
                if (!seen[e])
                    have++;
                seen[e] = 1;
            }
        }
        dj_json_free(doc);
        line += l + 1;
    }
    free(seen);
    free(text);
    return have;
}

/* Fills r's results from a `dojo train --json` object (or our result.json);
 * 0 on success. */
static int result_from_json(const char *text, size_t len, run_rec *r)
{
    dj_json_doc *doc = NULL;
    if (len == 0 || text[0] != '{' || dj_json_parse(text, len, NULL, &doc, NULL) != DJ_OK)
        return -1;
    const dj_json_value *o = dj_json_root(doc);
    const dj_json_value *acc = dj_json_get(o, "test_accuracy");
    if (dj_json_type_of(acc) != DJ_JSON_NUMBER) {
        dj_json_free(doc);
        return -1;
    }
    struct {
        const char *key;
        double *dst;
    } f[] = {{"test_accuracy", &r->test_accuracy},
             {"test_loss", &r->test_loss},
             {"train_loss", &r->train_loss},
             {"images_per_second", &r->images_per_second},
             {"seconds", &r->seconds},
             {"state_bytes_per_param", &r->state_bytes_per_param},
             {"peak_rss_bytes", &r->peak_rss_bytes}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        const dj_json_value *v = dj_json_get(o, f[i].key);
        *f[i].dst = dj_json_type_of(v) == DJ_JSON_NUMBER ? dj_json_number(v) : 0;
    }
    dj_json_free(doc);
    return 0;
}

/* Results of a finished run when no --json line is at hand: from its last
 * epoch (images/s: mean of the epochs'). */
static void result_from_metrics(const compare *c, run_rec *r)
{
    int last = c->epochs - 1;
    r->test_accuracy = r->ep[S_TEST_ACC][last];
    r->test_loss = r->ep[S_TEST_LOSS][last];
    r->train_loss = r->ep[S_TRAIN_LOSS][last];
    r->seconds = r->ep[S_SECONDS][last];
    double s = 0;
    int n = 0;
    for (int e = 0; e < c->epochs; e++)
        if (isfinite(r->ep[S_IPS][e]))
            s += r->ep[S_IPS][e], n++;
    r->images_per_second = n ? s / n : 0;
}

static dj_status write_result(const run_rec *r, char *err, size_t errlen)
{
    dj_json_writer w;
    dj_json_writer_init(&w, DJ_JSON_WRITE_PRETTY, NULL);
    dj_json_write_begin_object(&w);
    dj_json_write_key(&w, "format"), dj_json_write_string(&w, "dojo-compare-result-1");
    dj_json_write_key(&w, "precision"), dj_json_write_string(&w, dj_precision_name(r->prec));
    dj_json_write_key(&w, "seed"), dj_json_write_int(&w, (int64_t)r->seed);
    dj_json_write_key(&w, "test_accuracy"), dj_json_write_double(&w, r->test_accuracy);
    dj_json_write_key(&w, "test_loss"), dj_json_write_double(&w, r->test_loss);
    dj_json_write_key(&w, "train_loss"), dj_json_write_double(&w, r->train_loss);
    dj_json_write_key(&w, "images_per_second"), dj_json_write_double(&w, r->images_per_second);
    dj_json_write_key(&w, "seconds"), dj_json_write_double(&w, r->seconds);
    dj_json_write_key(&w, "state_bytes_per_param"), dj_json_write_double(&w, r->state_bytes_per_param);
    dj_json_write_key(&w, "peak_rss_bytes"), dj_json_write_int(&w, (int64_t)r->peak_rss_bytes);
    dj_json_write_end_object(&w);
    const char *text;
    size_t len;
    dj_status st = dj_json_writer_finish(&w, &text, &len);
    if (st == DJ_OK) {
        char path[FILE_MAX];
        snprintf(path, sizeof path, "%s/result.json", r->dir);
        st = dj_write_atomic(path, text, len, err, errlen);
    } else {
        snprintf(err, errlen, "result.json: %s", dj_json_writer_error(&w));
    }
    dj_json_writer_free(&w);
    return st;
}

/* The options after `--`, as compare-run.json records them. */
static char *extra_json(const compare *c)
{
    dj_json_writer w;
    dj_json_writer_init(&w, DJ_JSON_WRITE_PRETTY, NULL);
    dj_json_write_begin_object(&w);
    dj_json_write_key(&w, "format"), dj_json_write_string(&w, "dojo-compare-run-1");
    dj_json_write_key(&w, "train_options");
    dj_json_write_begin_array(&w);
    for (int i = 0; i < c->nextra; i++)
        dj_json_write_string(&w, c->extra[i]);
    dj_json_write_end_array(&w);
    dj_json_write_end_object(&w);
    return dj_json_writer_take_line(&w);
}

/* Whether the run directory holds a run of this comparison. 0: yes; 1: it
 * differs (why says how); -1: no config.json (nothing trained yet). */
static int run_differs(const compare *c, const run_rec *r, char *why, size_t n)
{
    char path[FILE_MAX], err[512], *text = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/config.json", r->dir);
    if (!exists(path))
        return -1;
    if (dj_read_file(path, 1 << 20, &text, &len, err, sizeof err) != DJ_OK) {
        snprintf(why, n, "%s", err);
        return 1;
    }
    dj_train_config have;
    dj_train_config_defaults(&have);
    dj_status st = dj_train_config_from_json(&have, text, len, path, err, sizeof err);
    free(text);
    if (st) {
        snprintf(why, n, "%s", err);
        return 1;
    }
    const dj_train_config *want = &c->base;
    if (have.prec.precision != r->prec)
        snprintf(why, n, "its config.json has precision %s", dj_precision_name(have.prec.precision));
    else if (have.seed != r->seed)
        snprintf(why, n, "its config.json has seed %llu", (unsigned long long)have.seed);
    else if (have.epochs != want->epochs)
        snprintf(why, n, "its config.json has %d epochs, this comparison %d", have.epochs, want->epochs);
    else if (have.batch_size != want->batch_size)
        snprintf(why, n, "its config.json has batch size %d, this comparison %d", have.batch_size,
                 want->batch_size);
    else if (have.train_limit != want->train_limit || have.test_limit != want->test_limit)
        snprintf(why, n, "its config.json has train/test limits %zu/%zu, this comparison %zu/%zu",
                 have.train_limit, have.test_limit, want->train_limit, want->test_limit);
    else if (!same_path(have.model, want->model))
        snprintf(why, n, "its config.json has model %s", have.model);
    else if (!same_path(have.data, want->data))
        snprintf(why, n, "its config.json has data %s", have.data);
    else {
        /* The options after `--`: compare-run.json, absent means none. */
        snprintf(path, sizeof path, "%s/compare-run.json", r->dir);
        char *want_text = extra_json(c);
        int same = 0;
        if (!exists(path))
            same = c->nextra == 0;
        else if (want_text && dj_read_file(path, 1 << 20, &text, &len, err, sizeof err) == DJ_OK) {
            same = strcmp(text, want_text) == 0;
            free(text);
        }
        free(want_text);
        if (same)
            return 0;
        snprintf(why, n, "it was trained with other options after --");
    }
    return 1;
}

/* Moves a run directory aside to DIR.old, DIR.old-2, ... */
static int move_aside(const char *dir, char *to, size_t n)
{
    for (int k = 1; k < 10000; k++) {
        if (k == 1)
            snprintf(to, n, "%s.old", dir);
        else
            snprintf(to, n, "%s.old-%d", dir, k);
        if (!exists(to))
            return rename(dir, to);
    }
    errno = EEXIST;
    return -1;
}

/* ---- one child process ---- */

typedef struct {
    char **argv; /* NULL-terminated */
    int argc, cap;
    char storage[2][32];
} child_args;

static void add_arg(child_args *a, const char *s)
{
    if (a->argc + 1 < a->cap)
        a->argv[a->argc++] = (char *)s;
    a->argv[a->argc] = NULL;
}

/* 0, or -1 when out of memory; free a->argv. */
static int build_args(const compare *c, const run_rec *r, int resume, child_args *a)
{
    a->argc = 0;
    a->cap = 32 + c->nextra;
    if (!(a->argv = calloc((size_t)a->cap, sizeof *a->argv)))
        return -1;
    add_arg(a, c->exe);
    add_arg(a, "train");
    if (resume) {
        add_arg(a, "--resume"), add_arg(a, r->dir);
    } else {
        add_arg(a, "--model"), add_arg(a, c->model);
        add_arg(a, "--precision"), add_arg(a, dj_precision_name(r->prec));
        snprintf(a->storage[0], sizeof a->storage[0], "%llu", (unsigned long long)r->seed);
        add_arg(a, "--seed"), add_arg(a, a->storage[0]);
        add_arg(a, "--out"), add_arg(a, r->dir);
        snprintf(a->storage[1], sizeof a->storage[1], "%d", c->epochs);
        add_arg(a, "--epochs"), add_arg(a, a->storage[1]);
    }
    add_arg(a, "--json");
    if (c->threads)
        add_arg(a, "--threads"), add_arg(a, c->threads);
    if (c->data)
        add_arg(a, "--data"), add_arg(a, c->data);
    if (!resume) {
        if (c->train_limit)
            add_arg(a, "--train-limit"), add_arg(a, c->train_limit);
        if (c->test_limit)
            add_arg(a, "--test-limit"), add_arg(a, c->test_limit);
        if (c->batch_size)
            add_arg(a, "--batch-size"), add_arg(a, c->batch_size);
        for (int i = 0; i < c->nextra; i++)
            add_arg(a, c->extra[i]);
    }
    return 0;
}

/* Shell-style quoting for command lines shown to people. */
static void sb_shell_word(sbuf *b, const char *s)
{
    int plain = *s != '\0';
    for (const char *p = s; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=,:+@%", *p))
            plain = 0;
    if (plain) {
        sb_puts(b, s);
        return;
    }
    sb_puts(b, "'");
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            sb_puts(b, "'\\''");
        else
            sb_put(b, p, 1);
    }
    sb_puts(b, "'");
}

static int term_columns(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col;
    return 100;
}

/* What the child is doing, from the last line of its log. */
static void child_status(const compare *c, const char *log, char *out, size_t n)
{
    char line[1024];
    int e = 0, used = 0;
    if (last_line(log, line, sizeof line) != 0 || strncmp(line, "epoch ", 6) != 0)
        snprintf(out, n, "starting");
    else if (sscanf(line, "epoch %d:%n", &e, &used) == 1 && used > 0)
        snprintf(out, n, "epoch %d/%d done:%s", e, c->epochs, line + used);
    else
        snprintf(out, n, "%s", line);
}

/* One job's status line: "[k/N] P seed S: [elapsed] what". */
static void status_line(const compare *c, const char *label, const char *log, double t0,
                        char *line, size_t n)
{
    char st[1024], el[32];
    child_status(c, log, st, sizeof st);
    dj_cli_duration(dj_cli_now() - t0, el, sizeof el);
    snprintf(line, n, "%s: [%s] %s", label, el, st);
}

/* ---- the jobs (runs being trained) ---- */

/* One run being trained by a child process. */
typedef struct {
    run_rec *r;
    int resume;
    pid_t pid;                        /* 0: the slot is free */
    double t0, last_show, killed_at;
    char label[128], log[FILE_MAX];
} job;

/* A job's status in short, for several on one line: "[k/N] P seed S:
 * epoch E/N step I/M" (or "epoch E/N done", "starting"). */
static void brief_line(const compare *c, const job *j, char *line, size_t n)
{
    char last[1024];
    int e = 0, en = 0, used = 0;
    size_t st = 0, sn = 0;
    const char *ep = last_line(j->log, last, sizeof last) == 0 ? strstr(last, "epoch ") : NULL;
    if (ep && sscanf(ep, "epoch %d/%d step %zu/%zu", &e, &en, &st, &sn) == 4)
        snprintf(line, n, "%s: epoch %d/%d step %zu/%zu", j->label, e, en, st, sn);
    else if (ep == last && sscanf(last, "epoch %d:%n", &e, &used) == 1 && used > 0)
        snprintf(line, n, "%s: epoch %d/%d done", j->label, e, c->epochs);
    else
        snprintf(line, n, "%s: starting", j->label);
}

/* The running jobs' status. On a terminal one line, rewritten: the job's
 * line, or with several jobs each one's label and what it does, " | "
 * between them, cut to the width. Otherwise a line per job that has not
 * printed one for 10 s (force: every job now). */
static void show_jobs(const compare *c, job *jobs, int n, int force)
{
    const double now = dj_cli_now();
    char line[1300];
    if (!c->tty) {
        for (int i = 0; i < n; i++)
            if (jobs[i].pid > 0 && (force || now - jobs[i].last_show >= 10.0)) {
                status_line(c, jobs[i].label, jobs[i].log, jobs[i].t0, line, sizeof line);
                printf("%s\n", line);
                jobs[i].last_show = now;
            }
        fflush(stdout);
        return;
    }
    int running = 0;
    for (int i = 0; i < n; i++)
        running += jobs[i].pid > 0;
    sbuf b = {0};
    for (int i = 0; i < n; i++)
        if (jobs[i].pid > 0) {
            if (running == 1)
                status_line(c, jobs[i].label, jobs[i].log, jobs[i].t0, line, sizeof line);
            else
                brief_line(c, &jobs[i], line, sizeof line);
            sb_printf(&b, "%s%s", b.len ? " | " : "", line);
        }
    if (b.p) {
        const int cols = term_columns() - 1;
        if ((int)b.len > cols)
            b.p[cols] = '\0';
        printf("\r\033[K%s", b.p);
        fflush(stdout);
    }
    sb_free(&b);
}

/* Clears the terminal's status line before other output. */
static void clear_status(const compare *c)
{
    if (c->tty)
        printf("\r\033[K"), fflush(stdout);
}

/* Starts a child with its output appended to log (after a line naming the
 * command). 0 and *pid_out, or -1 (*why says why). */
static int start_child(const child_args *a, const char *log, pid_t *pid_out, char *why,
                       size_t whylen)
{
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(why, whylen, "cannot open '%s': %s", log, strerror(errno));
        return -1;
    }
    /* The command goes first in the log: what ran, and when. */
    sbuf head = {0};
    char now[64];
    time_t t = time(NULL);
    struct tm tmv;
    strftime(now, sizeof now, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tmv));
    sb_printf(&head, "==> %s: dojo", now);
    for (int i = 1; i < a->argc; i++) {
        sb_puts(&head, " ");
        sb_shell_word(&head, a->argv[i]);
    }
    sb_puts(&head, "\n");
    if (head.p && write(fd, head.p, head.len) != (ssize_t)head.len) {
        snprintf(why, whylen, "cannot write '%s': %s", log, strerror(errno));
        sb_free(&head);
        close(fd);
        return -1;
    }
    sb_free(&head);
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, whylen, "cannot start a process: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (pid == 0) {
#ifdef __linux__
        /* Dies with compare, even on SIGKILL; its last epoch is on disk. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
#else
        (void)parent;
#endif
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        int in = open("/dev/null", O_RDONLY);
        if (in >= 0) {
            dup2(in, STDIN_FILENO);
            if (in != STDIN_FILENO)
                close(in);
        }
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        /* This very executable, even if its file was replaced meanwhile;
         * argv[0] is its path for people to read. */
        execv("/proc/self/exe", a->argv);
        execvp(dj_cli_program(), a->argv);
        char msg[PATH_MAX + 128];
        int m = snprintf(msg, sizeof msg, "dojo: compare: cannot run '%s': %s\n", dj_cli_program(),
                         strerror(errno));
        if (m > 0 && write(STDERR_FILENO, msg, (size_t)m) < 0)
            _exit(127);
        _exit(127);
    }
    close(fd);
    *pid_out = pid;
    return 0;
}

/* ---- running or reusing one run ---- */

static void print_summary_line(const char *label, const run_rec *r, const char *what)
{
    char peak[64] = "";
    if (r->peak_rss_bytes > 0)
        snprintf(peak, sizeof peak, ", peak %.1f MiB", r->peak_rss_bytes / 1048576.0);
    printf("%s: %s%stest accuracy %.2f%%, loss %.4f, %.0f img/s, %.1f s%s\n", label, what,
           *what ? " " : "", 100 * r->test_accuracy, r->test_loss, r->images_per_second,
           r->seconds, peak);
    fflush(stdout);
}

/* Settles a run that needs no training (finished: reused; --report-only:
 * missing; a directory that cannot be made ready: failed) and returns 0;
 * returns 1 when it must train, j->resume saying whether it continues from
 * its checkpoint. */
static int prepare_run(compare *c, run_rec *r, int k, job *j)
{
    char why[MSG_MAX] = "", err[MSG_MAX] = "";
    char *label = j->label, *log = j->log, path[FILE_MAX];
    memset(j, 0, sizeof *j);
    j->r = r;
    run_label(c, r, k, label, sizeof j->label);
    snprintf(log, sizeof j->log, "%s/train.log", r->dir);

    int resume = 0;
    if (is_dir(r->dir)) {
        int d = run_differs(c, r, why, sizeof why);
        if (d == 0) {
            int have = load_metrics(c, r);
            if (have == c->epochs) {
                /* Finished: results from result.json, else the log's --json line. */
                char *text = NULL, line[16384];
                size_t len;
                snprintf(path, sizeof path, "%s/result.json", r->dir);
                int got = dj_read_file(path, 1 << 20, &text, &len, err, sizeof err) == DJ_OK &&
                          result_from_json(text, len, r) == 0;
                free(text);
                if (!got && last_line(log, line, sizeof line) == 0)
                    got = result_from_json(line, strlen(line), r) == 0;
                if (!got)
                    result_from_metrics(c, r);
                r->status = R_REUSED;
                char what[FILE_MAX];
                snprintf(what, sizeof what, "reused %s:", r->dir);
                print_summary_line(label, r, what);
                return 0;
            }
            snprintf(path, sizeof path, "%s/checkpoint.safetensors", r->dir);
            resume = have > 0 && exists(path);
            if (c->report_only) {
                r->status = R_MISSING;
                snprintf(r->note, sizeof r->note, "unfinished (%d of %d epochs)", have, c->epochs);
                printf("%s: unfinished (%d of %d epochs); left out (--report-only)\n", label, have,
                       c->epochs);
                return 0;
            }
            if (resume)
                printf("%s: resuming %s after epoch %d of %d\n", label, r->dir, have, c->epochs);
        } else if (d == 1) {
            if (c->report_only) {
                r->status = R_MISSING;
                snprintf(r->note, sizeof r->note, "%s holds another run", r->dir);
                printf("%s: %s holds another run (%s); left out (--report-only)\n", label, r->dir, why);
                return 0;
            }
            char to[FILE_MAX];
            if (move_aside(r->dir, to, sizeof to) != 0) {
                r->status = R_FAILED;
                snprintf(r->note, sizeof r->note, "cannot move %s aside", r->dir);
                dj_cli_err("compare", "%s: %s holds another run (%s) and cannot be moved aside: %s",
                           label, r->dir, why, strerror(errno));
                return 0;
            }
            printf("%s: %s holds another run (%s); moved it to %s\n", label, r->dir, why, to);
        }
    }
    if (c->report_only) {
        r->status = R_MISSING;
        snprintf(r->note, sizeof r->note, "not run");
        printf("%s: not run; left out (--report-only)\n", label);
        return 0;
    }
    if (dj_mkdirs(r->dir, err, sizeof err) != DJ_OK) {
        r->status = R_FAILED;
        snprintf(r->note, sizeof r->note, "cannot create its directory");
        dj_cli_err("compare", "%s: %s", label, err);
        return 0;
    }
    if (!resume) {
        char *ej = extra_json(c);
        snprintf(path, sizeof path, "%s/compare-run.json", r->dir);
        dj_status st = ej ? dj_write_atomic(path, ej, strlen(ej), err, sizeof err) : DJ_ERR_NOMEM;
        free(ej);
        if (st) {
            r->status = R_FAILED;
            snprintf(r->note, sizeof r->note, "cannot write compare-run.json");
            dj_cli_err("compare", "%s: %s", label, err[0] ? err : dj_status_str(st));
            return 0;
        }
    }
    j->resume = resume;
    return 1;
}

/* Starts the child of a prepared run: 0, or -1 with the run failed. */
static int start_run(compare *c, job *j)
{
    run_rec *r = j->r;
    char why[MSG_MAX] = "", path[FILE_MAX];
    snprintf(path, sizeof path, "%s/result.json", r->dir);
    unlink(path); /* written again when this run ends */
    child_args a;
    if (build_args(c, r, j->resume, &a) != 0) {
        r->status = R_FAILED;
        snprintf(r->note, sizeof r->note, "out of memory");
        dj_cli_err("compare", "%s: out of memory", j->label);
        return -1;
    }
    int st = start_child(&a, j->log, &j->pid, why, sizeof why);
    free(a.argv);
    if (st != 0) {
        r->status = R_FAILED;
        copy_str(r->note, sizeof r->note, why);
        dj_cli_err("compare", "%s: %s", j->label, why);
        return -1;
    }
    j->t0 = dj_cli_now();
    j->last_show = j->t0;
    j->killed_at = 0;
    if (!c->tty)
        printf("%s: training (log %s)\n", j->label, j->log), fflush(stdout);
    return 0;
}

/* Settles a run whose child ended with wait status `status`, peak memory
 * maxrss bytes. Returns 0, or 2 when the child refused its command line
 * (every other run would be refused too). */
static int finish_run(compare *c, job *j, int status, double maxrss)
{
    run_rec *r = j->r;
    const char *label = j->label, *log = j->log;
    const int resume = j->resume;
    char err[MSG_MAX] = "";
    if (g_stop) {
        r->status = R_MISSING;
        snprintf(r->note, sizeof r->note, "interrupted");
        printf("%s: interrupted\n", label);
        fflush(stdout);
        return 0;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        r->status = R_FAILED;
        if (WIFSIGNALED(status))
            snprintf(r->note, sizeof r->note, "killed by signal %d", WTERMSIG(status));
        else
            snprintf(r->note, sizeof r->note, "dojo train exited with status %d", WEXITSTATUS(status));
        load_metrics(c, r); /* the epochs it finished, for report.json */
        dj_cli_err("compare", "%s failed: %s; log %s ends:", label, r->note, log);
        print_log_tail(log, 8);
        if (resume)
            fprintf(stderr, "    (it was resumed from its checkpoint; remove %s to start it over)\n",
                    r->dir);
        return WIFEXITED(status) && (WEXITSTATUS(status) == DJ_EXIT_USAGE || WEXITSTATUS(status) == 127)
                   ? 2
                   : 0;
    }
    int have = load_metrics(c, r);
    if (have != c->epochs) {
        r->status = R_FAILED;
        snprintf(r->note, sizeof r->note, "metrics.jsonl holds %d of %d epochs", have, c->epochs);
        dj_cli_err("compare", "%s: dojo train ended but %s/metrics.jsonl holds %d of %d epochs; see %s",
                   label, r->dir, have, c->epochs, log);
        return 0;
    }
    char line[16384];
    if (last_line(log, line, sizeof line) != 0 || result_from_json(line, strlen(line), r) != 0) {
        dj_cli_err("compare", "%s: no JSON result line at the end of %s; using metrics.jsonl", label, log);
        result_from_metrics(c, r);
    }
    if (maxrss > 0)
        r->peak_rss_bytes = maxrss;
    if (write_result(r, err, sizeof err) != DJ_OK)
        dj_cli_err("compare", "%s: %s (the run itself is complete)", label, err);
    r->status = R_DONE;
    print_summary_line(label, r, "");
    return 0;
}

/* Trains the runs, seed by seed, up to c->jobs at a time, showing their
 * progress; on SIGINT/SIGTERM stops the children (SIGTERM, then SIGKILL
 * after 10 s) and marks what did not finish. */
static void run_jobs(compare *c)
{
    const int total = c->np * c->ns;
    job jobs[MAX_JOBS];
    memset(jobs, 0, sizeof jobs);
    int next = 0, active = 0, refused = 0;
    double last_tty = 0;
    for (;;) {
        /* fill the free slots, seed by seed */
        while (active < c->jobs && next < total && !g_stop && !refused) {
            const int k = next++;
            run_rec *r = run_at(c, k % c->np, k / c->np);
            int f = 0;
            while (jobs[f].pid > 0)
                f++;
            clear_status(c);
            if (prepare_run(c, r, k + 1, &jobs[f]) && start_run(c, &jobs[f]) == 0) {
                active++;
                if (c->tty)
                    show_jobs(c, jobs, c->jobs, 1);
                last_tty = dj_cli_now();
            } else {
                jobs[f].pid = 0;
            }
        }
        if (active == 0)
            break;
        for (int i = 0; i < c->jobs; i++) {
            job *j = &jobs[i];
            if (j->pid <= 0)
                continue;
            int status = 0;
            struct rusage ru;
            memset(&ru, 0, sizeof ru);
            const pid_t w = wait4(j->pid, &status, WNOHANG, &ru);
            if (w == 0 || (w < 0 && errno == EINTR))
                continue;
            clear_status(c);
            if (w < 0) { /* cannot happen to our own child; do not spin on it */
                j->r->status = R_FAILED;
                snprintf(j->r->note, sizeof j->r->note, "waiting for process %ld: %s",
                         (long)j->pid, strerror(errno));
                dj_cli_err("compare", "%s: %s", j->label, j->r->note);
            } else if (finish_run(c, j, status, (double)ru.ru_maxrss * 1024.0) == 2 && !refused) {
                refused = 1;
                dj_cli_err("compare", "dojo train refused its command line or could not start; "
                                      "not starting the other runs");
            }
            j->pid = 0;
            active--;
            if (active > 0 && c->tty)
                show_jobs(c, jobs, c->jobs, 1);
        }
        const double now = dj_cli_now();
        for (int i = 0; i < c->jobs; i++) {
            job *j = &jobs[i];
            if (j->pid <= 0)
                continue;
            if (g_stop && j->killed_at == 0) {
                kill(j->pid, SIGTERM);
                j->killed_at = now;
            } else if (j->killed_at > 0 && now - j->killed_at > 10) {
                kill(j->pid, SIGKILL);
            }
        }
        if (!g_stop && active > 0) {
            if (!c->tty)
                show_jobs(c, jobs, c->jobs, 0);
            else if (now - last_tty >= 1.0) {
                show_jobs(c, jobs, c->jobs, 0);
                last_tty = now;
            }
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    clear_status(c);
    for (int k = next; k < total; k++) {
        run_rec *r = run_at(c, k % c->np, k / c->np);
        r->status = R_MISSING;
        snprintf(r->note, sizeof r->note, "%s", g_stop ? "interrupted" : "not run");
    }
}

/* ---- statistics ---- */

typedef struct {
    int n, failed, missing;
    double acc_mean, acc_std, acc_min, acc_max; /* acc_std: NAN when n < 2 */
    double loss_mean, ips_mean, sec_mean, peak_max, bpp;
} summary;

static summary summarize(compare *c, int p)
{
    summary s;
    memset(&s, 0, sizeof s);
    s.acc_min = INFINITY;
    s.acc_max = -INFINITY;
    for (int i = 0; i < c->ns; i++) {
        const run_rec *r = run_at(c, p, i);
        if (r->status == R_FAILED)
            s.failed++;
        if (!run_ok(r)) {
            s.missing += r->status != R_FAILED;
            continue;
        }
        s.n++;
        s.acc_mean += r->test_accuracy;
        s.loss_mean += r->test_loss;
        s.ips_mean += r->images_per_second;
        s.sec_mean += r->seconds;
        s.bpp += r->state_bytes_per_param;
        if (r->peak_rss_bytes > s.peak_max)
            s.peak_max = r->peak_rss_bytes;
        if (r->test_accuracy < s.acc_min)
            s.acc_min = r->test_accuracy;
        if (r->test_accuracy > s.acc_max)
            s.acc_max = r->test_accuracy;
    }
    s.acc_std = NAN;
    if (s.n == 0) {
        s.acc_mean = s.loss_mean = s.ips_mean = s.sec_mean = s.bpp = s.acc_min = s.acc_max = NAN;
        return s;
    }
    s.acc_mean /= s.n;
    s.loss_mean /= s.n;
    s.ips_mean /= s.n;
    s.sec_mean /= s.n;
    s.bpp /= s.n;
    if (s.n >= 2) {
        double v = 0;
        for (int i = 0; i < c->ns; i++) {
            const run_rec *r = run_at(c, p, i);
            if (run_ok(r))
                v += (r->test_accuracy - s.acc_mean) * (r->test_accuracy - s.acc_mean);
        }
        s.acc_std = sqrt(v / (s.n - 1));
    }
    return s;
}

/* The index of fp32 among the policies if it has results, else -1. */
static int fp32_ref(compare *c)
{
    for (int p = 0; p < c->np; p++)
        if (c->prec[p] == DJ_PREC_FP32 && summarize(c, p).n > 0)
            return p;
    return -1;
}

/* ---- the table (Markdown and HTML) ---- */

#define NCOLS 7

typedef struct {
    int ncols;
    const char *head[NCOLS];
    int right[NCOLS];
    char cell[DJ_PREC_COUNT][NCOLS][96];
    int nrows;
} table;

static void build_table(compare *c, table *t)
{
    memset(t, 0, sizeof *t);
    int ref = fp32_ref(c);
    summary rs;
    memset(&rs, 0, sizeof rs);
    if (ref >= 0)
        rs = summarize(c, ref);
    int col = 0;
    t->head[col++] = "policy";
    t->head[col++] = "test accuracy (%)";
    if (ref >= 0)
        t->head[col++] = "Δ vs fp32 (points)";
    t->head[col++] = "state bytes/param";
    t->head[col++] = "peak memory (MiB)";
    t->head[col++] = "images/s";
    if (ref >= 0)
        t->head[col++] = "images/s vs fp32";
    t->ncols = col;
    for (int i = 1; i < col; i++)
        t->right[i] = 1;
    t->nrows = c->np;
    for (int p = 0; p < c->np; p++) {
        summary s = summarize(c, p);
        char(*row)[96] = t->cell[p];
        int k = 0;
        snprintf(row[k++], 96, "%s", dj_precision_name(c->prec[p]));
        if (s.n == 0) {
            snprintf(row[k++], 96, "%s", s.failed ? "failed" : "not run");
            if (ref >= 0)
                snprintf(row[k++], 96, "—");
            for (int j = 0; j < 3; j++)
                snprintf(row[k++], 96, "—");
            if (ref >= 0)
                snprintf(row[k++], 96, "—");
            continue;
        }
        char runs[48] = "";
        if (s.n < c->ns)
            snprintf(runs, sizeof runs, " (%d of %d runs)", s.n, c->ns);
        if (s.n >= 2)
            snprintf(row[k++], 96, "%.2f ± %.2f%s", 100 * s.acc_mean, 100 * s.acc_std, runs);
        else
            snprintf(row[k++], 96, "%.2f%s", 100 * s.acc_mean, runs);
        if (ref >= 0) {
            if (p == ref)
                snprintf(row[k++], 96, "—");
            else
                snprintf(row[k++], 96, "%+.2f", 100 * (s.acc_mean - rs.acc_mean));
        }
        snprintf(row[k++], 96, "%.2f", s.bpp);
        if (s.peak_max > 0)
            snprintf(row[k++], 96, "%.1f", s.peak_max / 1048576.0);
        else
            snprintf(row[k++], 96, "n/a");
        snprintf(row[k++], 96, "%.0f", s.ips_mean);
        if (ref >= 0) {
            if (rs.ips_mean > 0)
                snprintf(row[k++], 96, "%.2f×", s.ips_mean / rs.ips_mean);
            else
                snprintf(row[k++], 96, "n/a");
        }
    }
}

static void table_md(const table *t, sbuf *b)
{
    sb_puts(b, "|");
    for (int i = 0; i < t->ncols; i++)
        sb_printf(b, " %s |", t->head[i]);
    sb_puts(b, "\n|");
    for (int i = 0; i < t->ncols; i++)
        sb_puts(b, t->right[i] ? "---:|" : "---|");
    sb_puts(b, "\n");
    for (int r = 0; r < t->nrows; r++) {
        sb_puts(b, "|");
        for (int i = 0; i < t->ncols; i++)
            sb_printf(b, " %s |", t->cell[r][i]);
        sb_puts(b, "\n");
    }
}

static const char *policy_color(dj_precision p)
{
    static const char *const colors[] = {"#333333", "#1f77b4", "#d62728", "#ff7f0e", "#2ca02c"};
    static const char *const more[] = {"#9467bd", "#8c564b", "#e377c2", "#17becf"};
    if ((unsigned)p < sizeof colors / sizeof colors[0])
        return colors[p];
    return more[(unsigned)p % 4];
}

static void table_html(const compare *c, const table *t, sbuf *b)
{
    sb_puts(b, "<table class=\"summary\">\n<thead><tr>");
    for (int i = 0; i < t->ncols; i++) {
        sb_printf(b, "<th%s>", t->right[i] ? " class=\"num\"" : "");
        sb_xml(b, t->head[i]);
        sb_puts(b, "</th>");
    }
    sb_puts(b, "</tr></thead>\n<tbody>\n");
    for (int r = 0; r < t->nrows; r++) {
        sb_puts(b, "<tr>");
        for (int i = 0; i < t->ncols; i++) {
            if (i == 0)
                sb_printf(b, "<td><span class=\"swatch\" style=\"background:%s\"></span>",
                          policy_color(c->prec[r]));
            else
                sb_printf(b, "<td%s>", t->right[i] ? " class=\"num\"" : "");
            sb_xml(b, t->cell[r][i]);
            sb_puts(b, "</td>");
        }
        sb_puts(b, "</tr>\n");
    }
    sb_puts(b, "</tbody>\n</table>\n");
}

/* ---- plots ---- */

static double nice_step(double range, int target)
{
    if (!(range > 0))
        return 1;
    double raw = range / target;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    double nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    return nf * mag;
}

/* One SVG line plot of series k (S_TEST_ACC or S_TEST_LOSS) per epoch:
 * per policy the mean over seeds as a line with markers, min..max over
 * seeds as a band (error bars with fewer than 3 epochs). */
static void svg_plot(compare *c, int k, sbuf *b)
{
    const int E = c->epochs, P = c->np;
    const double scale = k == S_TEST_ACC ? 100 : 1;
    const char *what = k == S_TEST_ACC ? "test accuracy" : "test loss";
    const char *ylabel = k == S_TEST_ACC ? "test accuracy (%)" : "test loss (cross-entropy)";
    const double W = 780, H = 460, X0 = 72, X1 = 596, Y0 = 64, Y1 = 398;
    const char *font = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";

    size_t cells = (size_t)P * (size_t)E;
    double *mean = malloc(cells * sizeof *mean), *lo = malloc(cells * sizeof *lo),
           *hi = malloc(cells * sizeof *hi);
    int *cnt = calloc(cells, sizeof *cnt);
    if (!mean || !lo || !hi || !cnt) {
        b->oom = 1;
        free(mean), free(lo), free(hi), free(cnt);
        return;
    }
    double vmin = INFINITY, vmax = -INFINITY;
    int maxn = 0;
    for (int p = 0; p < P; p++)
        for (int e = 0; e < E; e++) {
            size_t i = (size_t)p * (size_t)E + (size_t)e;
            double s = 0;
            lo[i] = INFINITY, hi[i] = -INFINITY;
            for (int j = 0; j < c->ns; j++) {
                const run_rec *r = run_at(c, p, j);
                double v = run_ok(r) ? r->ep[k][e] * scale : NAN;
                if (!isfinite(v))
                    continue;
                s += v;
                cnt[i]++;
                if (v < lo[i])
                    lo[i] = v;
                if (v > hi[i])
                    hi[i] = v;
            }
            mean[i] = cnt[i] ? s / cnt[i] : NAN;
            if (cnt[i]) {
                if (lo[i] < vmin)
                    vmin = lo[i];
                if (hi[i] > vmax)
                    vmax = hi[i];
                if (cnt[i] > maxn)
                    maxn = cnt[i];
            }
        }
    int have_data = vmin <= vmax;
    if (!have_data)
        vmin = 0, vmax = k == S_TEST_ACC ? 100 : 1;
    if (!(vmax > vmin)) {
        double pad = fabs(vmin) * 0.05 + (k == S_TEST_ACC ? 0.5 : 0.01);
        vmin -= pad, vmax += pad;
    }
    {
        /* headroom, so that no point or band sits on the frame */
        double h = 0.04 * (vmax - vmin);
        vmin = vmin - h < 0 && vmin >= 0 ? 0 : vmin - h;
        vmax = k == S_TEST_ACC && vmax + h > 100 && vmax <= 100 ? 100 : vmax + h;
    }
    double ystep = nice_step(vmax - vmin, 5);
    double ymin = floor(vmin / ystep + 1e-9) * ystep, ymax = ceil(vmax / ystep - 1e-9) * ystep;
    if (k == S_TEST_LOSS && ymin < 0 && vmin >= 0)
        ymin = 0;
    if (!(ymax > ymin))
        ymax = ymin + ystep;
    int ydec = ystep >= 1 ? 0 : (int)ceil(-log10(ystep) - 1e-9);

    const double pad = 16;
#define PX(e) (E == 1 ? (X0 + X1) / 2 : X0 + pad + ((double)(e)) / (E - 1) * (X1 - X0 - 2 * pad))
    /* With one or two epochs, points of different policies sit side by side. */
#define DX(p) (E < 3 ? ((p) - (P - 1) / 2.0) * 7 : 0)
#define PY(v) (Y1 - ((v) - ymin) / (ymax - ymin) * (Y1 - Y0))

    sb_printf(b,
              "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
              "viewBox=\"0 0 %.0f %.0f\" font-family=\"%s\" font-size=\"12\" role=\"img\">\n",
              W, H, W, H, font);
    sb_puts(b, "<title>");
    sb_xml(b, c->name);
    sb_printf(b, ": %s per epoch</title>\n", what);
    sb_printf(b, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", W, H);
    /* title */
    sb_printf(b, "<text x=\"%.1f\" y=\"28\" text-anchor=\"middle\" font-size=\"17\" font-weight=\"600\" "
                 "fill=\"#222\">",
              (X0 + X1) / 2);
    sb_xml(b, c->name);
    sb_printf(b, ": %s per epoch</text>\n", what);
    sb_printf(b, "<text x=\"%.1f\" y=\"47\" text-anchor=\"middle\" font-size=\"12\" fill=\"#666\">",
              (X0 + X1) / 2);
    if (maxn >= 2)
        sb_printf(b, "line: mean over %d seeds, %s: min to max</text>\n", maxn, E >= 3 ? "band" : "bars");
    else
        sb_printf(b, "%s</text>\n", have_data ? "one seed" : "no finished runs");
    /* plot area, grid, y ticks */
    sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fafafa\" "
                 "stroke=\"none\"/>\n",
              X0, Y0, X1 - X0, Y1 - Y0);
    sb_puts(b, "<g stroke=\"#e3e3e3\" stroke-width=\"1\">\n");
    int nyt = (int)floor((ymax - ymin) / ystep + 0.5);
    for (int i = 0; i <= nyt; i++) {
        double y = PY(ymin + i * ystep);
        sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", X0, y, X1, y);
    }
    int xstep = 1;
    if (E > 12) {
        xstep = (int)nice_step(E - 1, 8);
        if (xstep < 1)
            xstep = 1;
    }
    for (int e = 1; e <= E; e++)
        if (e == 1 || e % xstep == 0)
            sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PX(e - 1), Y0,
                      PX(e - 1), Y1);
    sb_puts(b, "</g>\n");
    sb_printf(b, "<g fill=\"#444\" font-size=\"11.5\" text-anchor=\"end\">\n");
    for (int i = 0; i <= nyt; i++) {
        double v = ymin + i * ystep;
        sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\">%.*f</text>\n", X0 - 8, PY(v) + 4, ydec, v);
    }
    sb_puts(b, "</g>\n<g fill=\"#444\" font-size=\"11.5\" text-anchor=\"middle\">\n");
    for (int e = 1; e <= E; e++)
        if (e == 1 || e % xstep == 0)
            sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\">%d</text>\n", PX(e - 1), Y1 + 18, e);
    sb_puts(b, "</g>\n");
    sb_printf(
        b,
        "<g stroke=\"#888\" stroke-width=\"1\"><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/></g>\n",
        X0, Y1, X1, Y1, X0, Y0, X0, Y1);
    sb_printf(
        b,
        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\" fill=\"#333\">epoch</text>\n",
        (X0 + X1) / 2, Y1 + 42);
    sb_printf(b, "<text transform=\"translate(%.1f %.1f) rotate(-90)\" text-anchor=\"middle\" "
                 "font-size=\"13\" fill=\"#333\">%s</text>\n",
              X0 - 50, (Y0 + Y1) / 2, ylabel);
    if (!have_data)
        sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\" fill=\"#999\">"
                     "no data</text>\n",
                  (X0 + X1) / 2, (Y0 + Y1) / 2);

    /* series: bands first, then lines and markers on top; fp32, the
     * reference, last and dashed, so that it shows over a policy that
     * matches it */
    int order[DJ_PREC_COUNT], no = 0;
    for (int p = 0; p < P; p++)
        if (c->prec[p] != DJ_PREC_FP32)
            order[no++] = p;
    for (int p = 0; p < P; p++)
        if (c->prec[p] == DJ_PREC_FP32)
            order[no++] = p;
    for (int pass = 0; pass < 2; pass++)
        for (int oi = 0; oi < P; oi++) {
            const int p = order[oi];
            const char *col = policy_color(c->prec[p]);
            const char *pname = dj_precision_name(c->prec[p]);
            const double *m = mean + (size_t)p * E, *l = lo + (size_t)p * E, *h = hi + (size_t)p * E;
            const int *n = cnt + (size_t)p * E;
            int spread = 0, any = 0;
            for (int e = 0; e < E; e++) {
                any |= n[e] > 0;
                spread |= n[e] >= 2;
            }
            if (!any)
                continue;
            if (pass == 0) {
                if (!spread)
                    continue;
                if (E >= 3) {
                    sb_printf(
                        b,
                        "<polygon class=\"band\" data-policy=\"%s\" fill=\"%s\" fill-opacity=\"0.14\" "
                        "stroke=\"none\" points=\"",
                        pname, col);
                    for (int e = 0; e < E; e++)
                        if (n[e])
                            sb_printf(b, "%.1f,%.1f ", PX(e), PY(h[e]));
                    for (int e = E - 1; e >= 0; e--)
                        if (n[e])
                            sb_printf(b, "%.1f,%.1f ", PX(e), PY(l[e]));
                    sb_puts(b, "\"/>\n");
                } else {
                    sb_printf(
                        b, "<g class=\"bars\" stroke=\"%s\" stroke-width=\"1.4\" stroke-opacity=\"0.7\">",
                        col);
                    for (int e = 0; e < E; e++)
                        if (n[e] >= 2) {
                            double x = PX(e) + DX(p);
                            sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                                         "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                                         "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
                                      x, PY(l[e]), x, PY(h[e]), x - 4, PY(l[e]), x + 4, PY(l[e]), x - 4,
                                      PY(h[e]), x + 4, PY(h[e]));
                        }
                    sb_puts(b, "</g>\n");
                }
                continue;
            }
            sb_printf(b,
                      "<polyline class=\"series\" data-policy=\"%s\" fill=\"none\" stroke=\"%s\" "
                      "stroke-width=\"2.2\" stroke-linejoin=\"round\" stroke-linecap=\"round\"%s points=\"",
                      pname, col, c->prec[p] == DJ_PREC_FP32 ? " stroke-dasharray=\"7 4\"" : "");
            for (int e = 0; e < E; e++)
                if (n[e])
                    sb_printf(b, "%.1f,%.1f ", PX(e) + DX(p), PY(m[e]));
            sb_puts(b, "\"/>\n");
            if (E <= 40) {
                sb_printf(b, "<g fill=\"%s\" stroke=\"#ffffff\" stroke-width=\"1\">", col);
                for (int e = 0; e < E; e++)
                    if (n[e]) {
                        sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.2\"><title>%s, epoch %d: %.*f",
                                  PX(e) + DX(p), PY(m[e]), pname, e + 1, k == S_TEST_ACC ? 2 : 4, m[e]);
                        if (n[e] >= 2)
                            sb_printf(b, " (%.*f to %.*f over %d seeds)", k == S_TEST_ACC ? 2 : 4, l[e],
                                      k == S_TEST_ACC ? 2 : 4, h[e], n[e]);
                        sb_puts(b, "</title></circle>");
                    }
                sb_puts(b, "</g>\n");
            }
        }

    /* legend: policy and its last mean value */
    double lx = X1 + 22, ly = Y0 + 6;
    sb_printf(
        b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" font-weight=\"600\" fill=\"#333\">policy</text>\n",
        lx, ly);
    sb_printf(
        b,
        "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#888\" text-anchor=\"end\">epoch %d</text>\n",
        W - 14, ly, E);
    for (int p = 0; p < P; p++) {
        double y = ly + 24 + 22 * p;
        const char *col = policy_color(c->prec[p]);
        const double *m = mean + (size_t)p * E;
        sb_printf(
            b,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.6\"%s/>"
            "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.2\" fill=\"%s\"/>",
            lx, y - 4, lx + 24, y - 4, col, c->prec[p] == DJ_PREC_FP32 ? " stroke-dasharray=\"7 4\"" : "",
            lx + 12, y - 4, col);
        sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#222\">%s</text>", lx + 32, y,
                  dj_precision_name(c->prec[p]));
        if (isfinite(m[E - 1]))
            sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#666\" text-anchor=\"end\">%.*f</text>",
                      W - 14, y, k == S_TEST_ACC ? 2 : 4, m[E - 1]);
        else
            sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#aaa\" text-anchor=\"end\">—</text>", W - 14,
                      y);
        sb_puts(b, "\n");
    }
    sb_puts(b, "</svg>\n");
#undef PX
#undef PY
#undef DX
    free(mean), free(lo), free(hi), free(cnt);
}

/* ---- report files ---- */

static void json_num(dj_json_writer *w, const char *key, double v)
{
    dj_json_write_key(w, key);
    if (isfinite(v))
        dj_json_write_double(w, v);
    else
        dj_json_write_null(w);
}

static void write_summary_json(compare *c, int p, dj_json_writer *w)
{
    summary s = summarize(c, p);
    int ref = fp32_ref(c);
    dj_json_write_begin_object(w);
    dj_json_write_key(w, "runs"), dj_json_write_int(w, s.n);
    dj_json_write_key(w, "failed"), dj_json_write_int(w, s.failed);
    dj_json_write_key(w, "missing"), dj_json_write_int(w, s.missing);
    json_num(w, "test_accuracy_mean", s.acc_mean);
    json_num(w, "test_accuracy_std", s.acc_std);
    json_num(w, "test_accuracy_min", s.acc_min);
    json_num(w, "test_accuracy_max", s.acc_max);
    json_num(w, "test_loss_mean", s.loss_mean);
    if (ref >= 0) {
        summary rs = summarize(c, ref);
        json_num(w, "test_accuracy_delta_vs_fp32", s.acc_mean - rs.acc_mean);
        json_num(w, "images_per_second_ratio_vs_fp32",
                 rs.ips_mean > 0 ? s.ips_mean / rs.ips_mean : NAN);
    }
    json_num(w, "images_per_second_mean", s.ips_mean);
    json_num(w, "seconds_mean", s.sec_mean);
    dj_json_write_key(w, "peak_rss_bytes");
    if (s.peak_max > 0)
        dj_json_write_int(w, (int64_t)s.peak_max);
    else
        dj_json_write_null(w);
    json_num(w, "state_bytes_per_param", s.bpp);
    dj_json_write_end_object(w);
}

static const char *status_name(run_status s)
{
    switch (s) {
    case R_DONE: return "done";
    case R_REUSED: return "reused";
    case R_FAILED: return "failed";
    default: return "missing";
    }
}

static char *report_json(compare *c)
{
    dj_json_writer w;
    dj_json_writer_init(&w, DJ_JSON_WRITE_PRETTY, NULL);
    dj_json_write_begin_object(&w);
    dj_json_write_key(&w, "format"), dj_json_write_string(&w, "dojo-compare-report-1");
    dj_json_write_key(&w, "model"), dj_json_write_string(&w, c->model);
    dj_json_write_key(&w, "model_name"), dj_json_write_string(&w, c->name);
    dj_json_write_key(&w, "date"), dj_json_write_string(&w, c->date);
    dj_json_write_key(&w, "command"), dj_json_write_string(&w, c->command);
    dj_json_write_key(&w, "epochs"), dj_json_write_int(&w, c->epochs);
    dj_json_write_key(&w, "seeds");
    dj_json_write_begin_array(&w);
    for (int s = 0; s < c->ns; s++)
        dj_json_write_int(&w, (int64_t)c->seeds[s]);
    dj_json_write_end_array(&w);
    dj_json_write_key(&w, "train_limit"), dj_json_write_int(&w, (int64_t)c->base.train_limit);
    dj_json_write_key(&w, "test_limit"), dj_json_write_int(&w, (int64_t)c->base.test_limit);
    dj_json_write_key(&w, "batch_size"), dj_json_write_int(&w, c->base.batch_size);
    dj_json_write_key(&w, "train_options");
    dj_json_write_begin_array(&w);
    for (int i = 0; i < c->nextra; i++)
        dj_json_write_string(&w, c->extra[i]);
    dj_json_write_end_array(&w);
    dj_json_write_key(&w, "policies");
    dj_json_write_begin_object(&w);
    for (int p = 0; p < c->np; p++) {
        dj_json_write_key(&w, dj_precision_name(c->prec[p]));
        dj_json_write_begin_object(&w);
        dj_json_write_key(&w, "summary");
        write_summary_json(c, p, &w);
        dj_json_write_key(&w, "runs");
        dj_json_write_begin_array(&w);
        for (int s = 0; s < c->ns; s++) {
            const run_rec *r = run_at(c, p, s);
            int ok = run_ok(r);
            dj_json_write_begin_object(&w);
            dj_json_write_key(&w, "seed"), dj_json_write_int(&w, (int64_t)r->seed);
            dj_json_write_key(&w, "status"), dj_json_write_string(&w, status_name(r->status));
            dj_json_write_key(&w, "dir"), dj_json_write_string(&w, r->dir);
            if (r->note[0])
                dj_json_write_key(&w, "note"), dj_json_write_string(&w, r->note);
            json_num(&w, "test_accuracy", ok ? r->test_accuracy : NAN);
            json_num(&w, "test_loss", ok ? r->test_loss : NAN);
            json_num(&w, "train_loss", ok ? r->train_loss : NAN);
            json_num(&w, "images_per_second", ok ? r->images_per_second : NAN);
            json_num(&w, "seconds", ok ? r->seconds : NAN);
            dj_json_write_key(&w, "peak_rss_bytes");
            if (ok && r->peak_rss_bytes > 0)
                dj_json_write_int(&w, (int64_t)r->peak_rss_bytes);
            else
                dj_json_write_null(&w);
            json_num(&w, "state_bytes_per_param", ok ? r->state_bytes_per_param : NAN);
            dj_json_write_key(&w, "per_epoch");
            dj_json_write_begin_object(&w);
            for (int k = 0; k < NSERIES; k++) {
                dj_json_write_key(&w, g_series_keys[k]);
                dj_json_write_begin_array(&w);
                for (int e = 0; e < c->epochs; e++)
                    dj_json_write_double(&w, ok || r->status == R_FAILED ? r->ep[k][e] : NAN);
                dj_json_write_end_array(&w);
            }
            dj_json_write_end_object(&w);
            dj_json_write_end_object(&w);
        }
        dj_json_write_end_array(&w);
        dj_json_write_end_object(&w);
    }
    dj_json_write_end_object(&w);
    dj_json_write_end_object(&w);
    return dj_json_writer_take_line(&w);
}

static void describe(const compare *c, sbuf *b)
{
    sb_printf(b, "%d epochs, seeds ", c->epochs);
    for (int s = 0; s < c->ns; s++)
        sb_printf(b, "%s%llu", s ? ", " : "", (unsigned long long)c->seeds[s]);
    sb_printf(b, ", batch %d", c->base.batch_size);
    if (c->base.train_limit)
        sb_printf(b, ", first %zu training images", c->base.train_limit);
    if (c->base.test_limit)
        sb_printf(b, ", first %zu test images", c->base.test_limit);
    sb_puts(b, ". Test accuracy and loss after the last epoch; accuracy as mean ± sample standard "
               "deviation over seeds. Peak memory: the largest peak resident set size of a run's "
               "process. images/s: training throughput, mean over seeds");
    if (c->jobs > 1 && !c->report_only)
        sb_printf(b, " (runs trained %d at a time, %s threads each: what each run got beside the "
                     "others)", c->jobs, c->threads);
    sb_puts(b, ".\n");
}

static void runs_rows(compare *c, sbuf *b, int html)
{
    for (int s = 0; s < c->ns; s++)
        for (int p = 0; p < c->np; p++) {
            const run_rec *r = run_at(c, p, s);
            char acc[32] = "—", loss[32] = "—", ips[32] = "—", sec[32] = "—", peak[32] = "—",
                 bpp[32] = "—";
            if (run_ok(r)) {
                snprintf(acc, sizeof acc, "%.2f", 100 * r->test_accuracy);
                snprintf(loss, sizeof loss, "%.4f", r->test_loss);
                snprintf(ips, sizeof ips, "%.0f", r->images_per_second);
                snprintf(sec, sizeof sec, "%.1f", r->seconds);
                if (r->peak_rss_bytes > 0)
                    snprintf(peak, sizeof peak, "%.1f", r->peak_rss_bytes / 1048576.0);
                snprintf(bpp, sizeof bpp, "%.2f", r->state_bytes_per_param);
            }
            const char *rel = r->dir + strlen(c->out) + 1; /* runs/P-seedS */
            char st[DIR_MAX + 200];
            snprintf(st, sizeof st, "%s%s%s", status_name(r->status), r->note[0] ? ": " : "", r->note);
            if (html) {
                sb_printf(b, "<tr><td><span class=\"swatch\" style=\"background:%s\"></span>%s</td>"
                             "<td class=\"num\">%llu</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
                             "<td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
                             "<td class=\"num\">%s</td><td><a href=\"",
                          policy_color(r->prec), dj_precision_name(r->prec), (unsigned long long)r->seed,
                          acc, loss, ips, sec, peak, bpp);
                sb_xml(b, rel);
                sb_puts(b, "/train.log\">");
                sb_xml(b, rel);
                sb_puts(b, "</a></td><td>");
                sb_xml(b, st);
                sb_puts(b, "</td></tr>\n");
            } else {
                sb_printf(b, "| %s | %llu | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                          dj_precision_name(r->prec), (unsigned long long)r->seed, acc, loss, ips, sec,
                          peak, bpp, rel, st);
            }
        }
}

static const char *g_css =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#222;"
    "max-width:1580px;margin:24px auto;padding:0 24px;line-height:1.45}"
    "h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em}"
    ".meta{color:#555;font-size:.92em}.meta code{background:#f3f3f3;padding:2px 5px;border-radius:4px;"
    "word-break:break-all}"
    "table{border-collapse:collapse;margin:12px 0;font-size:.95em}"
    "th,td{padding:6px 12px;border-bottom:1px solid #e2e2e2;text-align:left;white-space:nowrap}"
    "th{background:#f5f5f5;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-"
    "nums}"
    "tbody tr:hover{background:#fafafa}"
    ".swatch{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:7px;"
    "vertical-align:-1px}"
    ".plots{display:flex;flex-wrap:wrap;gap:16px}.plots svg{max-width:100%;height:auto;"
    "border:1px solid #e6e6e6;border-radius:6px}"
    "a{color:#1f5fa8}";

static char *report_html(compare *c, const table *t, const char *acc_svg, const char *loss_svg)
{
    sbuf b = {0};
    sb_puts(
        &b,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>dojo compare: ");
    sb_xml(&b, c->name);
    sb_printf(&b, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>dojo compare: ", g_css);
    sb_xml(&b, c->name);
    sb_puts(&b, "</h1>\n<p class=\"meta\">");
    sb_xml(&b, c->date);
    sb_puts(&b, " &middot; model <code>");
    sb_xml(&b, c->model);
    sb_puts(&b, "</code><br>command: <code>");
    sb_xml(&b, c->command);
    sb_puts(&b, "</code></p>\n<p>");
    sbuf d = {0};
    describe(c, &d);
    if (d.p)
        sb_xml(&b, d.p);
    sb_free(&d);
    sb_puts(&b, "</p>\n");
    table_html(c, t, &b);
    sb_puts(&b, "<div class=\"plots\">\n");
    sb_puts(&b, acc_svg);
    sb_puts(&b, loss_svg);
    sb_puts(&b, "</div>\n<h2>Runs</h2>\n<table class=\"runs\">\n<thead><tr><th>policy</th><th "
                "class=\"num\">seed</th>"
                "<th class=\"num\">test accuracy (%)</th><th class=\"num\">test loss</th>"
                "<th class=\"num\">images/s</th><th class=\"num\">seconds</th>"
                "<th class=\"num\">peak memory (MiB)</th><th class=\"num\">state bytes/param</th>"
                "<th>log</th><th>status</th></tr></thead>\n<tbody>\n");
    runs_rows(c, &b, 1);
    sb_puts(&b, "</tbody>\n</table>\n</body>\n</html>\n");
    if (b.oom) {
        sb_free(&b);
        return NULL;
    }
    return b.p;
}

static int write_text(const char *dir, const char *name, const char *text, int *ok)
{
    char path[DJ_PATH_MAX + 64], err[DJ_PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!text) {
        dj_cli_err("compare", "cannot build %s: out of memory", path);
        *ok = 0;
        return -1;
    }
    if (dj_write_atomic(path, text, strlen(text), err, sizeof err) != DJ_OK) {
        dj_cli_err("compare", "%s", err);
        *ok = 0;
        return -1;
    }
    return 0;
}

/* Writes the five report files; prints the table (and the --json line). */
static int write_report(compare *c)
{
    int ok = 1;
    table t;
    build_table(c, &t);

    char *rj = report_json(c);
    write_text(c->out, "report.json", rj, &ok);
    free(rj);

    sbuf md = {0};
    sb_puts(&md, "# dojo compare: ");
    sb_puts(&md, c->name);
    sb_printf(&md, "\n\n%s · model `%s`\n\nCommand: `%s`\n\n", c->date, c->model, c->command);
    describe(c, &md);
    sb_puts(&md, "\n");
    table_md(&t, &md);
    sb_puts(&md, "\n![test accuracy per epoch](accuracy.svg)\n![test loss per epoch](loss.svg)\n\n"
                 "## Runs\n\n| policy | seed | test accuracy (%) | test loss | images/s | seconds | "
                 "peak memory (MiB) | state bytes/param | directory | status |\n"
                 "|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n");
    runs_rows(c, &md, 0);
    write_text(c->out, "report.md", md.oom ? NULL : md.p, &ok);
    sb_free(&md);

    sbuf acc = {0}, loss = {0};
    svg_plot(c, S_TEST_ACC, &acc);
    svg_plot(c, S_TEST_LOSS, &loss);
    write_text(c->out, "accuracy.svg", acc.oom ? NULL : acc.p, &ok);
    write_text(c->out, "loss.svg", loss.oom ? NULL : loss.p, &ok);
    if (!acc.oom && !loss.oom && acc.p && loss.p) {
        char *html = report_html(c, &t, acc.p, loss.p);
        write_text(c->out, "report.html", html, &ok);
        free(html);
    } else {
        write_text(c->out, "report.html", NULL, &ok);
    }
    sb_free(&acc);
    sb_free(&loss);

    sbuf tb = {0};
    table_md(&t, &tb);
    printf("\n%s\n", tb.p ? tb.p : "");
    sb_free(&tb);
    if (ok)
        printf("report: %s/report.html (report.md, report.json, accuracy.svg, loss.svg)\n", c->out);
    if (c->json) {
        dj_json_writer w;
        dj_json_writer_init(&w, 0, NULL);
        dj_json_write_begin_object(&w);
        dj_json_write_key(&w, "model"), dj_json_write_string(&w, c->model);
        dj_json_write_key(&w, "out"), dj_json_write_string(&w, c->out);
        dj_json_write_key(&w, "epochs"), dj_json_write_int(&w, c->epochs);
        dj_json_write_key(&w, "policies");
        dj_json_write_begin_object(&w);
        for (int p = 0; p < c->np; p++) {
            dj_json_write_key(&w, dj_precision_name(c->prec[p]));
            write_summary_json(c, p, &w);
        }
        dj_json_write_end_object(&w);
        dj_json_write_end_object(&w);
        dj_json_writer_print_line(&w, stdout);
    }
    fflush(stdout);
    return ok ? 0 : -1;
}

/* ---- the command ---- */

static int parse_count(const char *cmd, const char *opt, const char *s, long long lo, long long hi)
{
    long long v;
    if (dj_parse_int(s, lo, hi, &v) != 0) {
        dj_cli_err(cmd, "%s: expected an integer in [%lld, %lld], got '%s'", opt, lo, hi, s);
        return -1;
    }
    return 0;
}

static int parse_precisions(const char *cmd, const char *list, compare *c)
{
    char buf[512];
    if (strlen(list) >= sizeof buf) {
        dj_cli_err(cmd, "--precisions: list too long");
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", list);
    c->np = 0;
    char *save = NULL;
    const char *sep = ",";
    if (buf[0] == '\0' || buf[strlen(buf) - 1] == ',' || buf[0] == ',' || strstr(buf, ",,")) {
        dj_cli_err(cmd, "--precisions: empty name in '%s' (e.g. --precisions fp32,bf16,cfp8)", list);
        return -1;
    }
    for (char *tok = strtok_r(buf, sep, &save); tok; tok = strtok_r(NULL, sep, &save)) {
        while (*tok == ' ')
            tok++;
        char *e = tok + strlen(tok);
        while (e > tok && e[-1] == ' ')
            *--e = '\0';
        dj_precision p;
        if (dj_precision_from_name(tok, &p) != 0) {
            char q[96];
            dj_cli_err(cmd, "--precisions: unknown policy %s (expected fp32, bf16, cfp8, cfp8-shp, ocp8)",
                       dj_cli_quote(tok, strlen(tok), 40, q, sizeof q));
            return -1;
        }
        for (int i = 0; i < c->np; i++)
            if (c->prec[i] == p) {
                dj_cli_err(cmd, "--precisions: %s is listed twice", dj_precision_name(p));
                return -1;
            }
        c->prec[c->np++] = p;
    }
    return 0;
}

static int parse_seed_list(const char *cmd, const char *list, compare *c)
{
    c->ns = 0;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char tok[32];
        uint64_t v;
        if (n == 0 || n >= sizeof tok) {
            dj_cli_err(cmd, "--seed-list: expected seeds separated by commas (e.g. 1,5,9), got '%s'", list);
            return -1;
        }
        memcpy(tok, p, n);
        tok[n] = '\0';
        if (dj_parse_u64(tok, &v) != 0) {
            dj_cli_err(cmd, "--seed-list: '%s' is not a non-negative integer", tok);
            return -1;
        }
        for (int i = 0; i < c->ns; i++)
            if (c->seeds[i] == v) {
                dj_cli_err(cmd, "--seed-list: seed %llu is listed twice", (unsigned long long)v);
                return -1;
            }
        if (c->ns == MAX_SEEDS) {
            dj_cli_err(cmd, "--seed-list: more than %d seeds", MAX_SEEDS);
            return -1;
        }
        c->seeds[c->ns++] = v;
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

/* The model's name: the spec's "name" when it is a plain word, else the
 * file's stem. */
static void model_name(const char *model, char *out, size_t n)
{
    dj_json_doc *doc = NULL;
    out[0] = '\0';
    if (dj_json_parse_file(model, NULL, &doc, NULL) == DJ_OK) {
        const char *s = dj_json_string(dj_json_get(dj_json_root(doc), "name"), NULL);
        int plain = s && *s && strlen(s) < n;
        for (const char *p = s; plain && *p; p++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.", *p))
                plain = 0;
        if (plain)
            snprintf(out, n, "%s", s);
    }
    dj_json_free(doc);
    if (out[0])
        return;
    const char *base = strrchr(model, '/');
    base = base ? base + 1 : model;
    size_t len = strlen(base);
    if (len > 5 && strcmp(base + len - 5, ".json") == 0)
        len -= 5;
    snprintf(out, n, "%.*s", (int)len, base);
}

/* Options after `--` that compare sets itself. */
static int check_extra(const char *cmd, char **extra, int n)
{
    static const char *const own[] = {"--model", "--precision", "--seed", "--out", "--resume", "--json",
                                      "--epochs", "--threads", "--data", "--train-limit", "--test-limit",
                                      "--batch-size", "--help", "-h", NULL};
    for (int i = 0; i < n; i++) {
        const char *a = extra[i];
        size_t len = strcspn(a, "=");
        for (int k = 0; own[k]; k++)
            if (strlen(own[k]) == len && strncmp(a, own[k], len) == 0) {
                if (!strcmp(own[k], "--precision") || !strcmp(own[k], "--seed"))
                    dj_cli_err(cmd, "after --: %s is what compare varies; use --precisions / --seeds / "
                                    "--seed-list", own[k]);
                else if (!strcmp(own[k], "--resume") || !strcmp(own[k], "--help") || !strcmp(own[k], "-h"))
                    dj_cli_err(cmd, "after --: %s cannot be passed to the runs", own[k]);
                else
                    dj_cli_err(cmd, "after --: %s is an option of dojo compare itself; put it before --",
                               own[k]);
                return -1;
            }
    }
    return 0;
}

static void build_command(compare *c, int argc, char **argv)
{
    sbuf b = {0};
    sb_puts(&b, "dojo");
    for (int i = 0; i < argc; i++) {
        sb_puts(&b, " ");
        sb_shell_word(&b, argv[i]);
    }
    snprintf(c->command, sizeof c->command, "%s", b.p ? b.p : "dojo compare");
    sb_free(&b);
}

int dj_cmd_compare(int argc, char **argv)
{
    const char *cmd = "compare";
    int nopt = argc;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            nopt = i;
            break;
        }
    compare *c = calloc(1, sizeof *c);
    if (!c) {
        dj_cli_err(cmd, "out of memory");
        return DJ_EXIT_DATA;
    }
    int ret = DJ_EXIT_USAGE;
    c->extra = argv + (nopt < argc ? nopt + 1 : argc);
    c->nextra = nopt < argc ? argc - nopt - 1 : 0;
    const char *out = NULL, *precisions = "fp32,bf16,cfp8,cfp8-shp,ocp8", *seeds = NULL, *seed_list = NULL;
    const char *jobs_s = NULL;
    dj_opt_iter it;
    int rc;
    dj_opt_init(&it, nopt, argv, 1);
    while ((rc = dj_opt_next(&it, cmd)) == DJ_OPT_MORE) {
        if (dj_opt_is(&it, "--help")) {
            dj_compare_usage(stdout);
            ret = DJ_EXIT_OK;
            goto done;
        }
        if (dj_opt_is(&it, "--json") || dj_opt_is(&it, "--report-only")) {
            if (dj_opt_no_value(&it, cmd))
                goto done;
            *(dj_opt_is(&it, "--json") ? &c->json : &c->report_only) = 1;
            continue;
        }
        struct {
            const char *name;
            const char **dst;
        } opts[] = {{"--model", &c->model},         {"--precisions", &precisions},
                    {"--seeds", &seeds},            {"--seed-list", &seed_list},
                    {"--epochs", &c->epochs_s},     {"--out", &out},
                    {"--data", &c->data},           {"--threads", &c->threads},
                    {"--jobs", &jobs_s},
                    {"--batch-size", &c->batch_size}, {"--train-limit", &c->train_limit},
                    {"--test-limit", &c->test_limit}};
        size_t k = 0;
        while (k < sizeof opts / sizeof opts[0] && !dj_opt_is(&it, opts[k].name))
            k++;
        if (k == sizeof opts / sizeof opts[0]) {
            if (dj_opt_is(&it, "--precision"))
                dj_cli_err(cmd, "unknown option '--precision'; did you mean --precisions?");
            else if (dj_opt_is(&it, "--seed"))
                dj_cli_err(cmd, "unknown option '--seed'; did you mean --seeds or --seed-list?");
            else
                ret = dj_opt_unknown(&it, cmd);
            goto done;
        }
        if (!(*opts[k].dst = dj_opt_value(&it, cmd)))
            goto done;
    }
    if (rc == DJ_OPT_ERROR)
        goto done;

    /* ---- check everything before starting anything ---- */
    if (!c->model) {
        dj_cli_err(cmd, "missing --model (e.g. --model models/fmnist-mlp.json)");
        goto done;
    }
    if (strlen(c->model) >= DJ_PATH_MAX) {
        dj_cli_err(cmd, "--model: path too long");
        goto done;
    }
    if (parse_precisions(cmd, precisions, c))
        goto done;
    if (seeds && seed_list) {
        dj_cli_err(cmd, "give --seeds or --seed-list, not both");
        goto done;
    }
    if (seed_list) {
        if (parse_seed_list(cmd, seed_list, c))
            goto done;
    } else {
        long long n = 3;
        if (seeds &&
            (parse_count(cmd, "--seeds", seeds, 1, MAX_SEEDS) || dj_parse_int(seeds, 1, MAX_SEEDS, &n)))
            goto done;
        c->ns = (int)n;
        for (int i = 0; i < c->ns; i++)
            c->seeds[i] = (uint64_t)i + 1;
    }
    if ((c->epochs_s && parse_count(cmd, "--epochs", c->epochs_s, 1, 100000)) ||
        (c->threads && parse_count(cmd, "--threads", c->threads, 1, 1024)) ||
        (jobs_s && parse_count(cmd, "--jobs", jobs_s, 1, MAX_JOBS)) ||
        (c->batch_size && parse_count(cmd, "--batch-size", c->batch_size, 1, 65536)) ||
        (c->train_limit && parse_count(cmd, "--train-limit", c->train_limit, 0, 1000000000000LL)) ||
        (c->test_limit && parse_count(cmd, "--test-limit", c->test_limit, 0, 1000000000000LL)))
        goto done;
    if (check_extra(cmd, c->extra, c->nextra))
        goto done;
    if (c->data && strlen(c->data) >= DJ_PATH_MAX) {
        dj_cli_err(cmd, "--data: path too long");
        goto done;
    }

    /* What every run's config.json will say (the spec, then the options). */
    char err[DJ_PATH_MAX + 512] = "";
    dj_train_config_defaults(&c->base);
    snprintf(c->base.model, sizeof c->base.model, "%s", c->model);
    if (dj_train_config_apply_spec(&c->base, err, sizeof err) != DJ_OK) {
        dj_cli_err(cmd, "--model: %s", err);
        ret = DJ_EXIT_DATA;
        goto done;
    }
    long long v;
    c->jobs = 1;
    if (jobs_s && dj_parse_int(jobs_s, 1, MAX_JOBS, &v) == 0)
        c->jobs = (int)v;
    if (c->jobs > 1 && !c->threads) { /* share the CPUs */
        const int t = dj_cpu_count() / c->jobs;
        snprintf(c->threads_auto, sizeof c->threads_auto, "%d", t > 0 ? t : 1);
        c->threads = c->threads_auto;
    }
    if (c->epochs_s && dj_parse_int(c->epochs_s, 1, 100000, &v) == 0)
        c->base.epochs = (int)v;
    if (c->batch_size && dj_parse_int(c->batch_size, 1, 65536, &v) == 0)
        c->base.batch_size = (int)v;
    if (c->train_limit && dj_parse_int(c->train_limit, 0, 1000000000000LL, &v) == 0)
        c->base.train_limit = (size_t)v;
    if (c->test_limit && dj_parse_int(c->test_limit, 0, 1000000000000LL, &v) == 0)
        c->base.test_limit = (size_t)v;
    if (c->data)
        snprintf(c->base.data, sizeof c->base.data, "%s", c->data);
    c->epochs = c->base.epochs;
    if (!c->report_only && !is_dir(c->base.data)) {
        dj_cli_err(cmd, "%sdataset directory '%s' not found (the four IDX files; --data DIR, or "
                        "apt-get install dataset-fashion-mnist)", c->data ? "--data: " : "", c->base.data);
        ret = DJ_EXIT_DATA;
        goto done;
    }
    model_name(c->model, c->name, sizeof c->name);
    if (out)
        snprintf(c->out, sizeof c->out, "%s", out);
    else
        snprintf(c->out, sizeof c->out, "runs/compare-%s", c->name);
    size_t ol = strlen(c->out);
    while (ol > 1 && c->out[ol - 1] == '/')
        c->out[--ol] = '\0';
    if (ol + 64 >= DJ_PATH_MAX) {
        dj_cli_err(cmd, "--out: path too long");
        goto done;
    }
    char runs_dir[DJ_PATH_MAX + 16];
    snprintf(runs_dir, sizeof runs_dir, "%s/runs", c->out);
    if (dj_mkdirs(runs_dir, err, sizeof err) != DJ_OK) {
        dj_cli_err(cmd, "--out: %s", err);
        ret = DJ_EXIT_DATA;
        goto done;
    }
    if (access(c->out, W_OK) != 0 || access(runs_dir, W_OK) != 0) {
        dj_cli_err(cmd, "--out: cannot write to '%s': %s", c->out, strerror(errno));
        ret = DJ_EXIT_DATA;
        goto done;
    }
    ssize_t n = readlink("/proc/self/exe", c->exe, sizeof c->exe - 1);
    if (n > 0)
        c->exe[n] = '\0';
    else
        snprintf(c->exe, sizeof c->exe, "%s", dj_cli_program());
    build_command(c, argc, argv);
    {
        time_t t = time(NULL);
        struct tm tmv;
        strftime(c->date, sizeof c->date, "%Y-%m-%d %H:%M:%S %z", localtime_r(&t, &tmv));
    }
    c->tty = isatty(STDOUT_FILENO);

    c->runs = calloc((size_t)c->np * (size_t)c->ns, sizeof *c->runs);
    double *series = calloc((size_t)c->np * (size_t)c->ns * NSERIES * (size_t)c->epochs, sizeof *series);
    if (!c->runs || !series) {
        free(series);
        dj_cli_err(cmd, "out of memory");
        ret = DJ_EXIT_DATA;
        goto done;
    }
    for (int p = 0; p < c->np; p++)
        for (int s = 0; s < c->ns; s++) {
            run_rec *r = run_at(c, p, s);
            r->prec = c->prec[p];
            r->seed = c->seeds[s];
            snprintf(r->dir, sizeof r->dir, "%s/%s-seed%llu", runs_dir, dj_precision_name(r->prec),
                     (unsigned long long)r->seed);
            size_t base = ((size_t)p * (size_t)c->ns + (size_t)s) * NSERIES * (size_t)c->epochs;
            for (int k = 0; k < NSERIES; k++) {
                r->ep[k] = series + base + (size_t)k * (size_t)c->epochs;
                for (int e = 0; e < c->epochs; e++)
                    r->ep[k][e] = NAN;
            }
        }

    printf("compare %s: %d %s (", c->name, c->np, c->np == 1 ? "policy" : "policies");
    for (int p = 0; p < c->np; p++)
        printf("%s%s", p ? ", " : "", dj_precision_name(c->prec[p]));
    printf(") x %d %s (", c->ns, c->ns == 1 ? "seed" : "seeds");
    for (int s = 0; s < c->ns; s++)
        printf("%s%llu", s ? ", " : "", (unsigned long long)c->seeds[s]);
    printf("), %d %s each: %d %s; writing to %s/\n", c->epochs, c->epochs == 1 ? "epoch" : "epochs",
           c->np * c->ns, c->np * c->ns == 1 ? "run" : "runs", c->out);
    fflush(stdout);

    /* Seeds outermost: after the first round every policy has a result. */
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART; /* file I/O goes on; the wait loop's sleep wakes */
    sigemptyset(&sa.sa_mask);
    g_stop = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    double t0 = dj_cli_now();
    run_jobs(c);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);

    int failed = 0, done_n = 0;
    for (int i = 0; i < c->np * c->ns; i++) {
        failed += c->runs[i].status == R_FAILED;
        done_n += run_ok(&c->runs[i]);
    }
    char el[32];
    dj_cli_duration(dj_cli_now() - t0, el, sizeof el);
    printf("%d of %d runs finished in %s", done_n, c->np * c->ns, el);
    if (failed)
        printf(", %d failed", failed);
    printf("\n");
    int wrote = write_report(c);
    free(series);
    if (g_stop) {
        dj_cli_err(cmd, "interrupted; run the same command again to continue");
        ret = 130;
    } else if (failed) {
        dj_cli_err(cmd, "%d of %d runs failed (their logs are named above)", failed, c->np * c->ns);
        ret = DJ_EXIT_DATA;
    } else {
        ret = wrote == 0 ? DJ_EXIT_OK : DJ_EXIT_DATA;
    }
done:
    free(c->runs);
    free(c);
    return ret;
}

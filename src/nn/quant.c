/* quant.c - per-tensor quantisation for the precision policies: the
 * tensor's largest magnitude, the exponent bias (or power-of-two scale) that
 * fits it, the conversion into codes, and counts of what the format did
 * (elements that saturated, non-zero elements that became zero).
 *
 * Work is split into a fixed number of contiguous ranges (one per pool
 * thread); the stochastic stream of element i is (seed, i) whatever the
 * split, so codes never depend on the thread count. */
#include <math.h>
#include <string.h>

#include "nn/nn_internal.h"

#define MAX_TASKS 64

void dj_quant_init(dj_quant *q, dj_format fmt, dj_rounding r, int scaled, int current,
                   int history, int margin)
{
    memset(q, 0, sizeof *q);
    q->fmt = fmt;
    q->rounding = r;
    q->scaled = scaled;
    q->current = current;
    q->history = history < 1 ? 1 : history > DJ_AMAX_HISTORY_MAX ? DJ_AMAX_HISTORY_MAX : history;
    q->margin = margin;
    q->bias = dj_format_desc_of(fmt)->bias_default;
    q->lut_bias = -1;
    q->bias_min = 1 << 30;
    q->bias_max = -(1 << 30);
}

void dj_quant_reset_history(dj_quant *q)
{
    q->hcount = q->hpos = 0;
}

int dj_quant_bias_for(const dj_quant *q, float amax)
{
    const dj_format_desc *d = dj_format_desc_of(q->fmt);
    if (d->bias_min != d->bias_max) {
        int b;
        dj_cf_bias_for_amax(q->fmt, amax, q->margin, &b); /* DJ_ERR_RANGE: the smallest bias */
        return b;
    }
    if (!q->scaled || !(amax > 0.0f) || isinf(amax))
        return d->bias_default;
    /* Effective bias b0 + s: the largest s with amax * 2^(s + margin) <= max
     * at b0 (max at b0 + s is max(b0) * 2^-s). */
    const double mx = dj_format_max(q->fmt, d->bias_default);
    int s = (int)floor(log2(mx / (double)amax)) - q->margin;
    while (ldexp((double)amax, s + q->margin) > mx)
        s--;
    int b = d->bias_default + s;
    return b < 0 ? 0 : b > 63 ? 63 : b;
}

/* ---- largest magnitude ---- */

typedef struct {
    const float *x;
    size_t n;
    int T;
    float part[MAX_TASKS];
} amax_job;

static void range_of(size_t n, int T, int t, size_t *lo, size_t *hi)
{
    *lo = n * (size_t)t / (size_t)T;
    *hi = n * (size_t)(t + 1) / (size_t)T;
}

static float amax_range(const float *x, size_t n)
{
    float m[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) {
            float a = fabsf(x[i + j]);
            m[j] = a > m[j] ? a : m[j]; /* NaN compares false: ignored */
        }
    for (; i < n; i++) {
        float a = fabsf(x[i]);
        m[0] = a > m[0] ? a : m[0];
    }
    float r = 0.0f;
    for (int j = 0; j < 16; j++)
        r = m[j] > r ? m[j] : r;
    return r;
}

static void amax_task(void *arg, int t)
{
    amax_job *j = arg;
    size_t lo, hi;
    range_of(j->n, j->T, t, &lo, &hi);
    j->part[t] = amax_range(j->x + lo, hi - lo);
}

static int tasks_for(dj_pool *pool, size_t n)
{
    int T = dj_pool_threads(pool);
    if (T > MAX_TASKS)
        T = MAX_TASKS;
    if ((size_t)T > n / 16384 + 1)
        T = (int)(n / 16384 + 1);
    return T < 1 ? 1 : T;
}

float dj_amax(dj_pool *pool, const float *x, size_t n)
{
    amax_job j = {x, n, tasks_for(pool, n), {0}};
    dj_pool_run(j.T > 1 ? pool : NULL, amax_task, &j, j.T);
    float r = 0.0f;
    for (int t = 0; t < j.T; t++)
        r = j.part[t] > r ? j.part[t] : r;
    return r;
}

/* ---- conversion and counts ---- */

typedef struct {
    const dj_quant *q;
    const float *x;
    const uint16_t *src16;    /* or 16-bit codes of src_fmt at src_bias */
    dj_format src_fmt;
    int src_bias;
    void *codes;
    size_t n;
    int T, bias, wide;
    float maxv;           /* elements beyond this overflow (saturate) */
    int tie_over;         /* ... and those equal to it too */
    dj_round r;
    int64_t over[MAX_TASKS], under[MAX_TASKS];
    float amax[MAX_TASKS];    /* of each task's range (NaN ignored) */
} enc_job;

static void enc_task(void *arg, int t)
{
    enc_job *j = arg;
    size_t lo, hi;
    range_of(j->n, j->T, t, &lo, &hi);
    /* The encoder counts overflow (|x| beyond maxv, or equal to it when
     * tie), underflow (non-zero x whose code is a zero) and amax in its own
     * pass. 16-bit sources are decoded 4096 at a time. */
    dj_cf_stats st = {0, 0, 0.0f};
    unsigned flags = 0;
    const size_t es = j->wide ? 2 : 1;
    if (!j->src16) {
        dj_cf_encode_array_stats(j->q->fmt, j->bias, j->x + lo, (char *)j->codes + lo * es, hi - lo,
                                 j->r, lo, &flags, j->maxv, j->tie_over, &st);
    } else {
        float tmp[4096];
        for (size_t b = lo; b < hi; b += 4096) {
            const size_t m = hi - b < 4096 ? hi - b : 4096;
            dj_cf_decode_array(j->src_fmt, j->src_bias, j->src16 + b, tmp, m, &flags);
            dj_cf_encode_array_stats(j->q->fmt, j->bias, tmp, (char *)j->codes + b * es, m, j->r,
                                     b, &flags, j->maxv, j->tie_over, &st);
        }
    }
    j->over[t] = st.over;
    j->under[t] = st.under;
    j->amax[t] = st.amax;
}

static dj_opd quant_any(dj_quant *q, dj_pool *pool, const float *x, const uint16_t *src16,
                        dj_format src_fmt, int src_bias, size_t n, void *codes, uint64_t seed,
                        int record)
{
    const int wide = dj_format_desc_of(q->fmt)->bits == 16;
    const dj_format_desc *fd = dj_format_desc_of(q->fmt);
    /* Delayed scaling with a history, or a format without a bias to choose
     * (bf16): the bias does not depend on this tensor, whose amax is then
     * taken in the encoding pass instead of a pass of its own. */
    const int delayed = record && !q->current && q->hcount > 0;
    const int fixed = fd->bias_min == fd->bias_max && !q->scaled;
    float amax = 0.0f;
    if (src16) { /* sign-magnitude codes: the largest magnitude is the largest code */
        uint16_t mc = 0;
        for (size_t i = 0; i < n; i++)
            mc = (uint16_t)(src16[i] & 0x7fff) > mc ? (uint16_t)(src16[i] & 0x7fff) : mc;
        unsigned fl = 0;
        amax = dj_cf_decode(src_fmt, src_bias, mc, &fl);
    } else if (!delayed && !fixed) {
        amax = dj_amax(pool, x, n);
    }
    float scale_amax = amax;
    if (delayed) { /* the largest amax of the steps before */
        scale_amax = 0.0f;
        for (int i = 0; i < q->hcount; i++)
            scale_amax = q->hist[i] > scale_amax ? q->hist[i] : scale_amax;
    }
    const int bias = dj_quant_bias_for(q, scale_amax);
    enc_job j = {0};
    j.q = q;
    j.x = x;
    j.src16 = src16;
    j.src_fmt = src_fmt;
    j.src_bias = src_bias;
    j.codes = codes;
    j.n = n;
    j.T = tasks_for(pool, n);
    j.bias = bias;
    j.wide = wide;
    /* Overflow as the standard defines it (docs/CFLOAT.md, rule 2): the
     * value rounded with unbounded exponent exceeds max. Round to nearest:
     * |x| >= max + ulp/2, the tie going up when max's mantissa is odd (all
     * but E4M3, whose max mantissa is 110). Stochastic: any |x| > max may
     * round up, so those count. */
    const double mx = dj_format_max(q->fmt, bias);
    if (q->rounding == DJ_ROUND_NEAREST) {
        j.maxv = (float)(mx + ldexp(1.0, (int)floor(log2(mx)) - fd->man_bits - 1));
        j.tie_over = fd->specials != DJ_SPECIALS_E4M3;
    } else {
        j.maxv = (float)mx;
        j.tie_over = 0;
    }
    j.r = (dj_round){q->rounding, seed};
    dj_pool_run(j.T > 1 ? pool : NULL, enc_task, &j, j.T);
    q->bias = bias;
    if (!src16 && (delayed || fixed))
        for (int t = 0; t < j.T; t++)
            amax = j.amax[t] > amax ? j.amax[t] : amax;
    if (record && !q->current) {
        /* this step's amax enters the history (the first step of an epoch
         * had none and was scaled by its own) */
        q->hist[q->hpos] = amax;
        q->hpos = (q->hpos + 1) % q->history;
        if (q->hcount < q->history)
            q->hcount++;
    }
    if (record) {
        for (int t = 0; t < j.T; t++) {
            q->overflow += j.over[t];
            q->underflow += j.under[t];
        }
        q->elements += (int64_t)n;
        q->calls++;
        q->bias_min = bias < q->bias_min ? bias : q->bias_min;
        q->bias_max = bias > q->bias_max ? bias : q->bias_max;
        q->amax = amax > q->amax ? amax : q->amax;
    }
    if (wide)
        return dj_opd_bf16((const uint16_t *)codes);
    if (q->lut_bias != bias) {
        const dj_format_desc *d = dj_format_desc_of(q->fmt);
        if (q->scaled)
            dj_cf_decode_lut8(q->fmt, d->bias_default, bias - d->bias_default, q->lut);
        else
            dj_cf_decode_lut8(q->fmt, bias, 0, q->lut);
        dj_lut8_form_of(q->lut, &q->form);
        q->lut_bias = bias;
    }
    return dj_opd_u8_form((const uint8_t *)codes, q->lut, &q->form);
}

dj_opd dj_quant_run(dj_quant *q, dj_pool *pool, const float *x, size_t n, void *codes,
                    uint64_t seed, int record)
{
    return quant_any(q, pool, x, NULL, DJ_FMT_COUNT, 0, n, codes, seed, record);
}

dj_opd dj_quant_run16(dj_quant *q, dj_pool *pool, const uint16_t *src, dj_format src_fmt,
                      int src_bias, size_t n, void *codes, uint64_t seed, int record)
{
    return quant_any(q, pool, NULL, src, src_fmt, src_bias, n, codes, seed, record);
}

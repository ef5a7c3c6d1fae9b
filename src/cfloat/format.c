/* format.c - the format descriptor table and the quantities derived from it.
 *
 * Adding an 8-bit format means adding a row here; the conversion code reads
 * only the descriptor. The denormal scale (Tesla's 2^-bias against IEEE's
 * 2^(1-bias)) is decided in exactly one function, dj_format_denorm_exp(). */
#include <assert.h>
#include <math.h>
#include <strings.h>

#include "cfloat/cfloat_internal.h"

static const dj_format_desc g_formats[DJ_FMT_COUNT] = {
    [DJ_FMT_CF8_143] = {"cfloat8_1_4_3", "CFloat8_1_4_3", 8, 1, 4, 3, 0, 63, 7, DJ_DENORM_TESLA,
                        DJ_SPECIALS_NONE, DJ_OVERFLOW_SATURATE, 0, 0, 1},
    [DJ_FMT_CF8_152] = {"cfloat8_1_5_2", "CFloat8_1_5_2", 8, 1, 5, 2, 0, 63, 15, DJ_DENORM_TESLA,
                        DJ_SPECIALS_NONE, DJ_OVERFLOW_SATURATE, 0, 0, 1},
    [DJ_FMT_SHP] = {"shp", "CFloat16 SHP (signed)", 16, 1, 5, 10, 0, 63, 15, DJ_DENORM_TESLA,
                    DJ_SPECIALS_NONE, DJ_OVERFLOW_SATURATE, 0, 0, 1},
    [DJ_FMT_UHP] = {"uhp", "CFloat16 UHP (unsigned)", 16, 0, 6, 10, 31, 31, 31, DJ_DENORM_FLUSH,
                    DJ_SPECIALS_IEEE, DJ_OVERFLOW_INF, 0xFE00, 0, 0},
    [DJ_FMT_E4M3] = {"e4m3", "OCP FP8 E4M3", 8, 1, 4, 3, 7, 7, 7, DJ_DENORM_IEEE, DJ_SPECIALS_E4M3,
                     DJ_OVERFLOW_SATURATE, 0x7F, 1, 0},
    [DJ_FMT_E5M2] = {"e5m2", "OCP FP8 E5M2", 8, 1, 5, 2, 15, 15, 15, DJ_DENORM_IEEE,
                     DJ_SPECIALS_IEEE, DJ_OVERFLOW_SATURATE, 0x7E, 1, 0},
    [DJ_FMT_BF16] = {"bf16", "bfloat16", 16, 1, 8, 7, 127, 127, 127, DJ_DENORM_IEEE,
                     DJ_SPECIALS_IEEE, DJ_OVERFLOW_INF, 0x7FC0, 1, 0},
};

const dj_format_desc *dj_format_desc_of(dj_format f)
{
    if ((int)f < 0 || f >= DJ_FMT_COUNT)
        return NULL;
    return &g_formats[f];
}

int dj_format_from_name(const char *name, dj_format *out)
{
    if (!name)
        return -1;
    for (int i = 0; i < DJ_FMT_COUNT; i++) {
        if (strcasecmp(name, g_formats[i].name) == 0) {
            *out = (dj_format)i;
            return 0;
        }
    }
    return -1;
}

int dj_format_bias_ok(dj_format f, int bias)
{
    const dj_format_desc *d = dj_format_desc_of(f);
    return d && bias >= d->bias_min && bias <= d->bias_max;
}

int dj_format_scaled_bias_ok(dj_format f, int bias)
{
    const dj_format_desc *d = dj_format_desc_of(f);
    if (d && d->bits == 8 && d->bias_min == d->bias_max)
        return bias >= 0 && bias <= 63;
    return dj_format_bias_ok(f, bias);
}

int dj_format_denorm_exp(dj_format f, int bias)
{
    /* Tesla: 2^(-bias) * 0.m.  IEEE: 2^(1-bias) * 0.m.  (Flush: the codes
     * read as zero, but the scale is reported IEEE-style for information.) */
    return dj_format_desc_of(f)->denorm == DJ_DENORM_TESLA ? -bias : 1 - bias;
}

int dj__emax_field(const dj_format_desc *d)
{
    int all_ones = (1 << d->exp_bits) - 1;
    return d->specials == DJ_SPECIALS_IEEE ? all_ones - 1 : all_ones;
}

int dj__max_mant(const dj_format_desc *d)
{
    int all_ones = (1 << d->man_bits) - 1;
    return d->specials == DJ_SPECIALS_E4M3 ? all_ones - 1 : all_ones;
}

uint32_t dj_format_max_code(dj_format f, int bias)
{
    (void)bias;
    const dj_format_desc *d = dj_format_desc_of(f);
    return ((uint32_t)dj__emax_field(d) << d->man_bits) | (uint32_t)dj__max_mant(d);
}

double dj_format_max(dj_format f, int bias)
{
    const dj_format_desc *d = dj_format_desc_of(f);
    double m = 1.0 + ldexp(dj__max_mant(d), -d->man_bits);
    return ldexp(m, dj__emax_field(d) - bias);
}

double dj_format_min_normal(dj_format f, int bias)
{
    (void)f;
    return ldexp(1.0, 1 - bias);
}

double dj_format_min_denormal(dj_format f, int bias)
{
    const dj_format_desc *d = dj_format_desc_of(f);
    if (d->denorm == DJ_DENORM_FLUSH)
        return 0.0;
    return ldexp(1.0, dj_format_denorm_exp(f, bias) - d->man_bits);
}

dj_class dj_format_classify(dj_format f, uint32_t code)
{
    const dj_format_desc *d = dj_format_desc_of(f);
    int M = d->man_bits;
    uint32_t emask = (1u << d->exp_bits) - 1, mmask = (1u << M) - 1;
    uint32_t e = (code >> M) & emask, m = code & mmask;
    if (d->specials == DJ_SPECIALS_IEEE && e == emask)
        return m ? DJ_CLASS_NAN : DJ_CLASS_INF;
    if (d->specials == DJ_SPECIALS_E4M3 && e == emask && m == mmask)
        return DJ_CLASS_NAN;
    if (e == 0)
        return m ? DJ_CLASS_DENORMAL : DJ_CLASS_ZERO;
    return DJ_CLASS_NORMAL;
}

const char *dj_class_name(dj_class c)
{
    switch (c) {
    case DJ_CLASS_ZERO: return "zero";
    case DJ_CLASS_DENORMAL: return "denormal";
    case DJ_CLASS_NORMAL: return "normal";
    case DJ_CLASS_INF: return "inf";
    case DJ_CLASS_NAN: return "nan";
    }
    return "?";
}

const char *dj_cf_flags_str(unsigned flags, char buf[5])
{
    static const char letters[4] = {'I', 'D', 'O', 'U'};
    int n = 0;
    for (int i = 0; i < 4; i++)
        if (flags & (1u << i))
            buf[n++] = letters[i];
    if (n == 0)
        buf[n++] = '-';
    buf[n] = '\0';
    return buf;
}

dj_status dj_cf_bias_for_amax(dj_format f, float amax, int margin, int *bias)
{
    const dj_format_desc *d = dj_format_desc_of(f);
    if (!d || d->bias_min == d->bias_max || !(amax >= 0.0f) || isinf(amax) || margin < 0 ||
        margin > 64)
        return DJ_ERR_ARG;
    /* Overflow under rule 2 is monotone in the bias: try from the finest. */
    double v = ldexp((double)amax, margin);
    for (int b = d->bias_max; b >= d->bias_min; b--) {
        double max = dj_format_max(f, b);
        double half_ulp = ldexp(1.0, dj__emax_field(d) - b - d->man_bits - 1);
        /* x rounds (unbounded exponent) to above max iff x >= max + ulp/2:
         * the tie goes to the even next binade because max's mantissa is odd. */
        if (v < max + half_ulp) {
            *bias = b;
            return DJ_OK;
        }
    }
    *bias = d->bias_min;
    return DJ_ERR_RANGE;
}

void dj_cf_decode_lut8(dj_format f, int bias, int scale_exp, float lut[256])
{
    const dj_format_desc *d = dj_format_desc_of(f);
    assert(d && d->bits == 8 && dj_format_bias_ok(f, bias));
    if (!d || d->bits != 8)
        return;
    for (uint32_t code = 0; code < 256; code++) {
        unsigned flags = 0;
        const float v = dj_cf_decode(f, bias, code, &flags); /* exact; NaN is quiet */
        lut[code] = isnan(v) ? v : ldexpf(v, -scale_exp);
    }
}

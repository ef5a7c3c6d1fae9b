/* cfloat_bulk.c - the array conversions: constants for the kernels and the
 * run-time choice of kernel (generic, AVX2, AVX-512). */
#include <assert.h>
#include <math.h>

#include "cfloat/cfloat_internal.h"

static uint32_t bits_of(double v)
{
    return dj__f32_bits((float)v);
}

void dj__cvt_params_init(dj_cvt_params *p, dj_format f, int bias)
{
    const dj_format_desc *d = dj_format_desc_of(f);
    const uint32_t M = (uint32_t)d->man_bits;
    const int dexp = dj_format_denorm_exp(f, bias);
    memset(p, 0, sizeof *p);
    p->man_bits = M;
    p->shift = 23 - M;
    p->keep_mask = ~((1u << p->shift) - 1);
    p->half_m1 = (1u << (p->shift - 1)) - 1;
    p->exp_adj = (uint32_t)(127 - bias) << M;
    p->max_bits = bits_of(dj_format_max(f, bias));
    p->minnorm_bits = bits_of(dj_format_min_normal(f, bias));
    p->qd_exp = dexp - (int)M;
    p->tesla_gap = d->denorm == DJ_DENORM_TESLA;
    p->gap_lo_bits = bits_of(ldexp((double)((1 << M) - 1), dexp - (int)M));
    p->gap_mid_bits = bits_of((ldexp((double)((1 << M) - 1), dexp - (int)M) + ldexp(1.0, 1 - bias)) / 2);
    p->flush = d->denorm == DJ_DENORM_FLUSH;
    p->is_unsigned = d->sign_bits == 0;
    p->saturate = d->overflow == DJ_OVERFLOW_SATURATE;
    p->sign_bit = d->sign_bits ? 1u << (d->bits - 1) : 0;
    p->max_code = dj_format_max_code(f, bias);
    p->inf_code = ((1u << d->exp_bits) - 1) << M;
    p->nan_pos = d->nan_to_max ? p->max_code : d->nan_code;
    p->nan_neg = d->nan_to_max ? p->max_code : d->nan_code | (d->nan_keeps_sign ? p->sign_bit : 0);
    p->exp_mask = (1u << d->exp_bits) - 1;
    p->body_mask = (1u << (d->bits - d->sign_bits)) - 1;
    p->specials = (uint32_t)d->specials;
    p->bias = (uint32_t)bias;
    p->is_bf16 = f == DJ_FMT_BF16;
}

typedef struct {
    void (*encode_stats)(const dj_cvt_params *, dj_format, int, const float *, void *, size_t,
                         dj_round, uint64_t, unsigned *, float, int, dj_cf_stats *);
    void (*encode)(const dj_cvt_params *, dj_format, int, const void *, int, void *, size_t,
                   dj_round, uint64_t, unsigned *);
    void (*decode)(const dj_cvt_params *, const void *, void *, int, size_t, unsigned *);
} kernels;

static kernels kernels_for(dj_isa isa)
{
    switch (isa) {
#ifdef DOJO_X86
    case DJ_ISA_AVX512: return (kernels){dj__encode_stats_avx512, dj__encode_avx512, dj__decode_avx512};
    case DJ_ISA_AVX2: return (kernels){dj__encode_stats_avx2, dj__encode_avx2, dj__decode_avx2};
#endif
    default: return (kernels){dj__encode_stats_generic, dj__encode_generic, dj__decode_generic};
    }
}

/* Checks the bias, resolves *isa (DJ_ISA_AUTO: the best) and fills *p. */
static dj_status prepare(dj_isa *isa, dj_format f, int bias, dj_cvt_params *p)
{
    if (!dj_format_scaled_bias_ok(f, bias))
        return DJ_ERR_ARG;
    if (*isa == DJ_ISA_AUTO)
        *isa = dj_cpu_best_isa();
    if (!dj_cpu_supports(*isa))
        return DJ_ERR_UNSUPPORTED;
    dj__cvt_params_init(p, f, bias);
    return DJ_OK;
}

static dj_status encode_any(dj_isa isa, dj_format f, int bias, const void *x, int x_bf16, void *out,
                            size_t n, dj_round r, uint64_t index0, unsigned *flags)
{
    dj_cvt_params p;
    const dj_status st = prepare(&isa, f, bias, &p);
    if (st == DJ_OK)
        kernels_for(isa).encode(&p, f, bias, x, x_bf16, out, n, r, index0, flags);
    return st;
}

static dj_status decode_any(dj_isa isa, dj_format f, int bias, const void *in, void *out,
                            int out_bf16, size_t n, unsigned *flags)
{
    dj_cvt_params p;
    const dj_status st = prepare(&isa, f, bias, &p);
    if (st == DJ_OK)
        kernels_for(isa).decode(&p, in, out, out_bf16, n, flags);
    return st;
}

dj_status dj_cf_encode_array_isa(dj_isa isa, dj_format f, int bias, const float *x, void *out,
                                 size_t n, dj_round r, uint64_t index0, unsigned *flags)
{
    return encode_any(isa, f, bias, x, 0, out, n, r, index0, flags);
}

dj_status dj_cf_decode_array_isa(dj_isa isa, dj_format f, int bias, const void *in, float *out,
                                 size_t n, unsigned *flags)
{
    return decode_any(isa, f, bias, in, out, 0, n, flags);
}

dj_status dj_cf_encode_array_stats_isa(dj_isa isa, dj_format f, int bias, const float *x,
                                       void *out, size_t n, dj_round r, uint64_t index0,
                                       unsigned *flags, float limit, int tie, dj_cf_stats *st)
{
    dj_cvt_params p;
    const dj_status status = prepare(&isa, f, bias, &p);
    if (status == DJ_OK)
        kernels_for(isa).encode_stats(&p, f, bias, x, out, n, r, index0, flags, limit, tie, st);
    return status;
}

void dj_cf_encode_array_stats(dj_format f, int bias, const float *x, void *out, size_t n,
                              dj_round r, uint64_t index0, unsigned *flags, float limit, int tie,
                              dj_cf_stats *st)
{
    dj_status status = dj_cf_encode_array_stats_isa(DJ_ISA_AUTO, f, bias, x, out, n, r, index0,
                                                    flags, limit, tie, st);
    assert(status == DJ_OK);
    (void)status;
}

void dj_cf_encode_array(dj_format f, int bias, const float *x, void *out, size_t n, dj_round r,
                        uint64_t index0, unsigned *flags)
{
    dj_status st = encode_any(DJ_ISA_AUTO, f, bias, x, 0, out, n, r, index0, flags);
    assert(st == DJ_OK);
    (void)st;
}

void dj_cf_decode_array(dj_format f, int bias, const void *in, float *out, size_t n,
                        unsigned *flags)
{
    dj_status st = decode_any(DJ_ISA_AUTO, f, bias, in, out, 0, n, flags);
    assert(st == DJ_OK);
    (void)st;
}

void dj_cf_encode_bf16_array(dj_format f, int bias, const uint16_t *x, uint8_t *out, size_t n,
                             dj_round r, uint64_t index0, unsigned *flags)
{
    assert(dj_format_desc_of(f) && dj_format_desc_of(f)->bits == 8);
    dj_status st = encode_any(DJ_ISA_AUTO, f, bias, x, 1, out, n, r, index0, flags);
    assert(st == DJ_OK);
    (void)st;
}

void dj_cf_decode_to_bf16_array(dj_format f, int bias, const uint8_t *in, uint16_t *out, size_t n,
                                unsigned *flags)
{
    assert(dj_format_desc_of(f) && dj_format_desc_of(f)->bits == 8);
    dj_status st = decode_any(DJ_ISA_AUTO, f, bias, in, out, 1, n, flags);
    assert(st == DJ_OK);
    (void)st;
}

/* cfloat_internal.h - what the reference and bulk conversion paths share:
 * descriptor helpers and the precomputed constants of one (format, bias). */
#ifndef DOJO_CFLOAT_INTERNAL_H
#define DOJO_CFLOAT_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "dojo/cfloat.h"

/* Largest exponent field holding finite numbers, and the largest mantissa
 * at that exponent (E4M3 loses S.1111.111 to NaN). */
int dj__emax_field(const dj_format_desc *d);
int dj__max_mant(const dj_format_desc *d);

static inline uint32_t dj__f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float dj__bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Constants of one (format, bias) for the bulk kernels. Everything is a
 * uint32_t so that the per-element code is plain 32-bit lane arithmetic. */
typedef struct {
    uint32_t man_bits;     /* M */
    uint32_t shift;        /* 23 - M: float32 mantissa bits dropped */
    uint32_t keep_mask;    /* ~((1 << shift) - 1) */
    uint32_t half_m1;      /* (1 << (shift - 1)) - 1 */
    uint32_t exp_adj;      /* (127 - bias) << M */
    uint32_t max_bits;     /* float32 bits of the largest finite value */
    uint32_t minnorm_bits; /* float32 bits of the smallest normal 2^(1-bias) */
    int32_t qd_exp;        /* denormal quantum: 2^qd_exp */
    uint32_t tesla_gap;    /* 1 if denormals end below 2^-bias (Tesla rule) */
    uint32_t gap_lo_bits;  /* float32 bits of the largest denormal */
    uint32_t gap_mid_bits; /* float32 bits of the midpoint of the gap */
    uint32_t flush;        /* UHP: no denormals, flush to +0 */
    uint32_t is_unsigned;
    uint32_t saturate;
    uint32_t sign_bit;     /* code bit of the sign; 0 when unsigned */
    uint32_t max_code, inf_code;
    uint32_t nan_pos, nan_neg; /* result for a NaN input of each sign */
    /* decode */
    uint32_t exp_mask;     /* (1 << E) - 1 */
    uint32_t body_mask;    /* code bits without the sign */
    uint32_t specials;     /* dj_specials_rule */
    uint32_t bias;
    uint32_t is_bf16;
} dj_cvt_params;

void dj__cvt_params_init(dj_cvt_params *p, dj_format f, int bias);

/* Per-ISA kernel entry points (cfloat_bulk_<isa>.c); `flags` is OR-ed.
 * Encode reads float32 (x_bf16 = 0) or bf16 (x_bf16 = 1) inputs; decode
 * writes float32 (out_bf16 = 0) or bf16. Codes are uint8_t or uint16_t by
 * the format's width. */
#define DJ_DECLARE_KERNELS(isa)                                                                  \
    void dj__encode_##isa(const dj_cvt_params *p, dj_format f, int bias, const void *x,        \
                          int x_bf16, void *out, size_t n, dj_round r, uint64_t index0,        \
                          unsigned *flags);                                                      \
    void dj__encode_stats_##isa(const dj_cvt_params *p, dj_format f, int bias, const float *x, \
                                void *out, size_t n, dj_round r, uint64_t index0,              \
                                unsigned *flags, float limit, int tie, dj_cf_stats *st);       \
    void dj__decode_##isa(const dj_cvt_params *p, const void *in, void *out, int out_bf16,     \
                          size_t n, unsigned *flags);

DJ_DECLARE_KERNELS(generic)
DJ_DECLARE_KERNELS(avx2)
DJ_DECLARE_KERNELS(avx512)

#endif

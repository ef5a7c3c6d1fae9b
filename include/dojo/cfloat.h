/* cfloat.h - Tesla's configurable floating-point formats (CFloat8, CFloat16)
 * and the other narrow formats Dojo compares them with (OCP FP8, bfloat16).
 *
 * Every format is a row of a descriptor table (dj_format_desc): sign,
 * exponent and mantissa widths, the allowed exponent biases, and the rules
 * for denormals, special values and overflow. Conversions are written once
 * against the descriptor, so a further 8-bit format is a new table entry.
 *
 * Exact semantics, including the choices the standard leaves open, are in
 * docs/CFLOAT.md. In short, for a format with M mantissa bits and bias b:
 *   exponent field e > 0          : (-1)^s * 2^(e-b) * 1.m   (normal)
 *   e = 0, Tesla denormal rule    : (-1)^s * 2^(-b)   * 0.m   (note: not 1-b)
 *   e = 0, IEEE denormal rule     : (-1)^s * 2^(1-b)  * 0.m
 *   e = 0, flush rule (UHP)       : zero
 * and the all-ones exponent is an ordinary normal unless the format has
 * IEEE-style specials.
 *
 * Status flags are sticky bits in a caller-owned word: functions OR into
 * *flags and never clear it; nothing is global. */
#ifndef DOJO_CFLOAT_H
#define DOJO_CFLOAT_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/cpu.h"
#include "dojo/status.h"

typedef enum {
    DJ_FMT_CF8_143 = 0, /* CFloat8_1_4_3: s1 e4 m3, bias 0..63, no Inf/NaN   */
    DJ_FMT_CF8_152,     /* CFloat8_1_5_2: s1 e5 m2, bias 0..63, no Inf/NaN   */
    DJ_FMT_SHP,         /* CFloat16 signed: s1 e5 m10, bias 0..63            */
    DJ_FMT_UHP,         /* CFloat16 unsigned: e6 m10, bias 31, Inf/NaN, FTZ  */
    DJ_FMT_E4M3,        /* OCP FP8 E4M3: bias 7, max 448, S.1111.111 is NaN  */
    DJ_FMT_E5M2,        /* OCP FP8 E5M2: bias 15, IEEE-style Inf/NaN          */
    DJ_FMT_BF16,        /* bfloat16: s1 e8 m7, bias 127, IEEE-style          */
    DJ_FMT_COUNT
} dj_format;

/* How exponent field 0 with a non-zero mantissa is read. */
typedef enum {
    DJ_DENORM_TESLA, /* 2^(-bias) * 0.m  (Tesla's standard, as written)  */
    DJ_DENORM_IEEE,  /* 2^(1-bias) * 0.m (IEEE 754, OCP FP8, bfloat16)   */
    DJ_DENORM_FLUSH  /* read as zero; results below min normal flush to +0 */
} dj_denorm_rule;

/* Which codes are not finite numbers. */
typedef enum {
    DJ_SPECIALS_NONE, /* every code is a number                           */
    DJ_SPECIALS_IEEE, /* all-ones exponent: mantissa 0 is Inf, else NaN   */
    DJ_SPECIALS_E4M3  /* only all-ones exponent and mantissa is NaN       */
} dj_specials_rule;

/* What a finite result too large for the format becomes. */
typedef enum {
    DJ_OVERFLOW_SATURATE, /* +-max (Inf input too)                */
    DJ_OVERFLOW_INF       /* +-Inf                                */
} dj_overflow_rule;

typedef struct {
    const char *name;     /* command-line name: "cfloat8_1_4_3", ... */
    const char *title;    /* human name: "CFloat8_1_4_3"            */
    int bits;             /* storage width: 8 or 16                 */
    int sign_bits;        /* 1, or 0 for unsigned (UHP)             */
    int exp_bits, man_bits;
    int bias_min, bias_max, bias_default; /* equal when fixed       */
    dj_denorm_rule denorm;
    dj_specials_rule specials;
    dj_overflow_rule overflow;
    uint32_t nan_code;    /* canonical NaN code (sign bit clear); 0 if none */
    int nan_keeps_sign;   /* a NaN input's sign is copied to the code   */
    int nan_to_max;       /* NaN input becomes +max (no NaN in format)  */
} dj_format_desc;

/* Status flag bits (OR-ed into a caller-owned word). */
enum {
    DJ_FLAG_INVALID = 1u << 0,   /* I: NaN input; negative into UHP      */
    DJ_FLAG_DENORMAL = 1u << 1,  /* D: denormal operand                  */
    DJ_FLAG_OVERFLOW = 1u << 2,  /* O: result too large (or Inf saturated) */
    DJ_FLAG_UNDERFLOW = 1u << 3  /* U: result tiny and inexact           */
};

typedef enum { DJ_ROUND_NEAREST = 0, DJ_ROUND_STOCHASTIC } dj_rounding;

/* A rounding mode with, for stochastic rounding, its seed. Element i of a
 * conversion draws its random bits from dj_rng_u32(seed, i, word). */
typedef struct {
    dj_rounding mode;
    uint64_t seed;
} dj_round;

/* ---- the descriptor table ---- */

const dj_format_desc *dj_format_desc_of(dj_format f); /* NULL if f is invalid */
/* Look up by command-line name (case-insensitive); 0 on success. */
int dj_format_from_name(const char *name, dj_format *out);
/* Nonzero if `bias` is allowed for format f. */
int dj_format_bias_ok(dj_format f, int bias);
/* Power-of-two scaling of the fixed-bias 8-bit formats (OCP E4M3, E5M2):
 * encoding x * 2^s at the fixed bias b0 gives exactly the code of encoding x
 * at the "effective bias" b0 + s (the value set is scaled by 2^-s, rounding
 * and saturation with it), and decoding at b0 + s gives the value times
 * 2^-s. The conversion functions (scalar and bulk) accept, besides the
 * allowed biases, effective biases 0..63 for those formats; this says which
 * biases a conversion accepts. */
int dj_format_scaled_bias_ok(dj_format f, int bias);

/* The exponent of the denormal scale: value of e=0 code with mantissa m is
 * m * 2^(dj_format_denorm_exp(f,bias) - man_bits). The one place where the
 * Tesla (-bias) and IEEE (1-bias) conventions differ. */
int dj_format_denorm_exp(dj_format f, int bias);

/* Largest finite value, smallest positive normal, smallest positive
 * denormal (0 when the format has none). */
double dj_format_max(dj_format f, int bias);
double dj_format_min_normal(dj_format f, int bias);
double dj_format_min_denormal(dj_format f, int bias);
uint32_t dj_format_max_code(dj_format f, int bias); /* code of +max */

/* Classification of a code, for tables and tests. */
typedef enum { DJ_CLASS_ZERO, DJ_CLASS_DENORMAL, DJ_CLASS_NORMAL, DJ_CLASS_INF, DJ_CLASS_NAN } dj_class;
dj_class dj_format_classify(dj_format f, uint32_t code);
const char *dj_class_name(dj_class c);

/* ---- scalar reference path (clarity first) ---- */

/* Encode one float32 into format f at `bias`. `index` is the element index
 * for stochastic rounding (ignored for nearest). */
uint32_t dj_cf_encode(dj_format f, int bias, float x, dj_round r, uint64_t index, unsigned *flags);
/* Decode one code; exact. Raises D for a denormal code. */
float dj_cf_decode(dj_format f, int bias, uint32_t code, unsigned *flags);

/* ---- bulk path (vectorised, bit-identical to the scalar path) ---- */

/* Element i of the call is element (index0 + i) of the stochastic stream.
 * `out`/`in` hold uint8_t codes for 8-bit formats, uint16_t for 16-bit. */
void dj_cf_encode_array(dj_format f, int bias, const float *x, void *out, size_t n,
                        dj_round r, uint64_t index0, unsigned *flags);
void dj_cf_decode_array(dj_format f, int bias, const void *in, float *out, size_t n,
                        unsigned *flags);

/* The same with an explicit instruction set (must be supported; see cpu.h).
 * DJ_ISA_AUTO picks the best. Returns DJ_ERR_UNSUPPORTED if not supported. */
dj_status dj_cf_encode_array_isa(dj_isa isa, dj_format f, int bias, const float *x, void *out,
                                 size_t n, dj_round r, uint64_t index0, unsigned *flags);
dj_status dj_cf_decode_array_isa(dj_isa isa, dj_format f, int bias, const void *in, float *out,
                                 size_t n, unsigned *flags);

/* What an encoding pass saw (dj_cf_encode_array_stats). */
typedef struct {
    int64_t over;  /* elements with |x| > limit, or |x| == limit when tie (NaN never) */
    int64_t under; /* non-zero elements (NaN included) whose code is zero below its top bit */
    float amax;    /* the largest |x|, NaN ignored; 0 when there is none */
} dj_cf_stats;

/* dj_cf_encode_array of float32 that also counts, in the same pass over x,
 * into *st: counts added, amax the larger of *st's and this call's. For a
 * quantiser's statistics (limit: the magnitude above which an element
 * overflows). Same codes and flags as dj_cf_encode_array. */
void dj_cf_encode_array_stats(dj_format f, int bias, const float *x, void *out, size_t n,
                              dj_round r, uint64_t index0, unsigned *flags, float limit, int tie,
                              dj_cf_stats *st);
dj_status dj_cf_encode_array_stats_isa(dj_isa isa, dj_format f, int bias, const float *x,
                                       void *out, size_t n, dj_round r, uint64_t index0,
                                       unsigned *flags, float limit, int tie, dj_cf_stats *st);

/* The decode table of an 8-bit format for the kernels' 8-bit operands
 * (dj_opd_u8 in kernels.h): lut[code] = the value of each of the 256 codes
 * of an 8-bit format at `bias` (NaN codes give a quiet NaN with the code's
 * sign, Inf codes +-inf), times 2^-scale_exp (one rounding to float32, so
 * exact unless the product leaves float32's range). f must be an 8-bit
 * format and `bias` allowed for it (OCP E4M3/E5M2: their fixed bias, with
 * the tensor's power-of-two scale in scale_exp; CFloat8: scale_exp 0). */
void dj_cf_decode_lut8(dj_format f, int bias, int scale_exp, float lut[256]);

/* bfloat16 <-> CFloat8 (the standard requires both directions). bf16 input
 * is widened exactly to float32 and encoded, so results equal the float32
 * path; CFloat8 -> bf16 is exact (every CFloat8 value is a bf16 value). */
void dj_cf_encode_bf16_array(dj_format f, int bias, const uint16_t *x, uint8_t *out, size_t n,
                             dj_round r, uint64_t index0, unsigned *flags);
void dj_cf_decode_to_bf16_array(dj_format f, int bias, const uint8_t *in, uint16_t *out, size_t n,
                                unsigned *flags);

/* bf16 bits <-> float (widening exact). */
static inline float dj_bf16_to_f32(uint16_t h)
{
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}

/* ---- bias selection ---- */

/* The largest bias of format f at which a tensor whose largest magnitude is
 * `amax` does not overflow, after multiplying amax by 2^margin (margin >= 0
 * leaves headroom). amax == 0 gives the largest allowed bias. Returns
 * DJ_ERR_RANGE (and the smallest bias) when even that overflows,
 * DJ_ERR_ARG for NaN/Inf/negative amax, or a format without a free bias. */
dj_status dj_cf_bias_for_amax(dj_format f, float amax, int margin, int *bias);

/* Flag letters "IDOU" subset, or "-" for none; buf needs 5 bytes. */
const char *dj_cf_flags_str(unsigned flags, char buf[5]);

#endif

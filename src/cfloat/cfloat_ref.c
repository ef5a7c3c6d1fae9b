/* cfloat_ref.c - the scalar reference conversions, written for clarity.
 *
 * Encoding follows docs/CFLOAT.md step by step: find the two representable
 * neighbours lo <= |x| < hi from the format's definition, pick one (nearest
 * with ties to the even code, or stochastically with probability exactly
 * (|x|-lo)/(hi-lo)), then apply the overflow and flush rules and raise the
 * flags. Arithmetic is in double, which is exact here: every float32 and every
 * format value has at most 24 significant bits, and the differences taken are
 * between numbers a few binades apart at most.
 *
 * The bulk kernels (cfloat_bulk_impl.h) compute the same results another way
 * and fall back to this file for rare inputs. */
#include <assert.h>
#include <math.h>

#include "cfloat/cfloat_internal.h"
#include "dojo/rng.h"

/* ---- stochastic rounding: the exact decision ---- */

/* Reads the stream of random bits of one element, most significant first. */
typedef struct {
    dj_rng_key key;
    uint32_t lo, hi;   /* element index */
    uint32_t word;     /* next word to draw */
    uint64_t buf;      /* unread bits, left-aligned */
    int avail;
} bitstream;

static uint32_t bits_read(bitstream *bs, int n) /* 1 <= n <= 32 */
{
    if (bs->avail < n) {
        uint64_t w = dj_rng_keyed(bs->key, bs->lo, bs->hi, bs->word++);
        bs->buf |= w << (32 - bs->avail);
        bs->avail += 32;
    }
    uint32_t v = (uint32_t)(bs->buf >> (64 - n));
    bs->buf <<= n;
    bs->avail -= n;
    return v;
}

/* Round up iff U < A / (c * 2^s), U = 0.b0 b1 b2 ... the element's random
 * bits. 1 <= s, 0 < A < c * 2^s, A < 2^24, c odd and small. */
static int sr_round_up(uint64_t seed, uint64_t index, uint32_t A, uint32_t c, int s)
{
    bitstream bs = {dj_rng_key_make(seed), (uint32_t)index, (uint32_t)(index >> 32), 0, 0, 0};
    /* I = the first s bits. c*I < A needs I < 2^24, so any of the leading
     * s - 24 bits set means "down". */
    uint64_t I;
    int lead = s > 24 ? s - 24 : 0;
    while (lead > 0) {
        int k = lead > 32 ? 32 : lead;
        if (bits_read(&bs, k) != 0)
            return 0;
        lead -= k;
    }
    I = bits_read(&bs, s > 24 ? 24 : s);
    if (c * I >= A)
        return 0;
    if (c * I + c <= A)
        return 1;
    /* A - c < c*I < A: compare the remaining bits with rem / c. */
    uint64_t rem = A - c * I; /* 0 < rem < c */
    for (int w = 0; w < 8; w++) {
        uint64_t P = (rem << 32) / c;
        rem = (rem << 32) % c;
        uint32_t b = bits_read(&bs, 32);
        if (b < P)
            return 1;
        if (b > P)
            return 0;
    }
    return 0;
}

/* Splits a positive power-of-two multiple w = c * 2^t with c odd. */
static void split_odd(double w, uint32_t *c, int *t)
{
    int e;
    double fr = frexp(w, &e); /* w = fr * 2^e, fr in [0.5, 1) */
    uint64_t m = (uint64_t)ldexp(fr, 53);
    e -= 53;
    while ((m & 1) == 0) {
        m >>= 1;
        e++;
    }
    *c = (uint32_t)m;
    *t = e;
}

/* ---- round to nearest with unbounded exponent (for tininess) ---- */

static double round_nearest_unbounded(double v, int M)
{
    double q = ldexp(1.0, ilogb(v) - M);
    double lo = floor(v / q) * q, hi = lo + q;
    double dl = v - lo, dh = hi - v;
    if (dl < dh)
        return lo;
    if (dh < dl)
        return hi;
    return fmod(lo / q, 2.0) == 0.0 ? lo : hi;
}

/* ---- value <-> code ---- */

/* The code (without sign) of a representable non-negative finite value. */
static uint32_t code_of_value(const dj_format_desc *d, dj_format f, int bias, double v)
{
    int M = d->man_bits;
    if (v == 0.0)
        return 0;
    if (v < ldexp(1.0, 1 - bias)) /* denormal: v = k * 2^(dexp - M) */
        return (uint32_t)ldexp(v, M - dj_format_denorm_exp(f, bias));
    int e = ilogb(v);
    uint32_t field = (uint32_t)(e + bias);
    uint32_t mant = (uint32_t)ldexp(ldexp(v, -e) - 1.0, M);
    return (field << M) | mant;
}

static uint32_t inf_code(const dj_format_desc *d)
{
    return ((1u << d->exp_bits) - 1) << d->man_bits;
}

uint32_t dj_cf_encode(dj_format f, int bias, float x, dj_round r, uint64_t index, unsigned *flags)
{
    const dj_format_desc *d = dj_format_desc_of(f);
    assert(d && dj_format_scaled_bias_ok(f, bias));
    const int M = d->man_bits;
    const uint32_t u = dj__f32_bits(x), a = u & 0x7fffffffu;
    const int neg = (int)(u >> 31);
    const uint32_t sign_code = (d->sign_bits && neg) ? 1u << (d->bits - 1) : 0;
    const uint32_t max_code = dj_format_max_code(f, bias);
    unsigned fl = 0;
    uint32_t code;

    if (a != 0 && a < 0x00800000u)
        fl |= DJ_FLAG_DENORMAL; /* float32 subnormal operand */

    if (a > 0x7f800000u) { /* NaN */
        fl |= DJ_FLAG_INVALID;
        code = d->nan_to_max ? max_code : d->nan_code | (d->nan_keeps_sign ? sign_code : 0);
    } else if (!d->sign_bits && neg && a != 0) { /* negative into an unsigned format */
        fl |= DJ_FLAG_INVALID;
        code = d->nan_code;
    } else if (a == 0x7f800000u) { /* +-Inf */
        if (d->overflow == DJ_OVERFLOW_SATURATE) {
            fl |= DJ_FLAG_OVERFLOW;
            code = max_code | sign_code;
        } else {
            code = inf_code(d) | sign_code;
        }
    } else if (a == 0) {
        code = sign_code; /* -0 kept where there is a sign */
    } else {
        const double v = fabs((double)x);
        const double min_normal = ldexp(1.0, 1 - bias);
        const double max = dj_format_max(f, bias);
        double lo, hi;
        int lo_odd;

        /* 1. The neighbours lo <= v < hi. */
        if (v >= min_normal || d->denorm == DJ_DENORM_FLUSH) {
            double q = ldexp(1.0, ilogb(v) - M); /* unbounded exponent */
            lo = floor(v / q) * q;
            hi = lo + q;
            lo_odd = fmod(lo / q, 2.0) != 0.0;
        } else {
            int dexp = dj_format_denorm_exp(f, bias);
            double qd = ldexp(1.0, dexp - M);
            double top = ldexp((double)((1 << M) - 1), dexp - M); /* largest denormal */
            if (v >= top) { /* Tesla gap (IEEE: the last denormal step) */
                lo = top;
                hi = min_normal;
                lo_odd = 1;
            } else {
                lo = floor(v / qd) * qd;
                hi = lo + qd;
                lo_odd = fmod(lo / qd, 2.0) != 0.0;
            }
        }

        /* 2. Pick one. */
        double res;
        if (v == lo) {
            res = lo;
        } else if (r.mode == DJ_ROUND_NEAREST) {
            double dl = v - lo, dh = hi - v;
            res = dl < dh ? lo : dh < dl ? hi : lo_odd ? hi : lo;
        } else {
            /* v = Sig * 2^ex exactly; A = (v - lo) / 2^ex; hi - lo = c * 2^t. */
            int ex = (a >= 0x00800000u ? (int)(a >> 23) - 127 : -126) - 23;
            uint32_t A = (uint32_t)ldexp(v - lo, -ex), c;
            int t;
            split_odd(hi - lo, &c, &t);
            res = sr_round_up(r.seed, index, A, c, t - ex) ? hi : lo;
        }

        /* 3. Overflow, flush. */
        if (res > max) {
            fl |= DJ_FLAG_OVERFLOW;
            res = d->overflow == DJ_OVERFLOW_SATURATE ? max : INFINITY;
        }
        int flushed = 0;
        if (d->denorm == DJ_DENORM_FLUSH && res < min_normal) {
            res = 0.0;
            flushed = 1;
        }

        /* 4. Underflow: inexact and tiny after rounding; in UHP also every
         * non-zero value flushed to +0 (in stochastic mode a value just
         * below min normal that is not tiny can still be flushed). */
        if ((res != v && round_nearest_unbounded(v, M) < min_normal) || flushed)
            fl |= DJ_FLAG_UNDERFLOW;

        code = (isinf(res) ? inf_code(d) : code_of_value(d, f, bias, res)) | sign_code;
    }
    *flags |= fl;
    return code;
}

float dj_cf_decode(dj_format f, int bias, uint32_t code, unsigned *flags)
{
    const dj_format_desc *d = dj_format_desc_of(f);
    assert(d && dj_format_scaled_bias_ok(f, bias));
    const int M = d->man_bits;
    code &= (d->bits == 32 ? ~0u : (1u << d->bits) - 1);
    const int neg = d->sign_bits && (code >> (d->bits - 1)) & 1;
    const uint32_t e = (code >> M) & ((1u << d->exp_bits) - 1);
    const uint32_t m = code & ((1u << M) - 1);
    double v;
    switch (dj_format_classify(f, code)) {
    case DJ_CLASS_NAN:
        /* bf16 widens exactly, payload and all; other formats give the
         * canonical quiet NaN with the code's sign. */
        if (f == DJ_FMT_BF16)
            return dj__bits_f32(code << 16);
        return dj__bits_f32(0x7fc00000u | (neg ? 0x80000000u : 0));
    case DJ_CLASS_INF:
        v = INFINITY;
        break;
    case DJ_CLASS_ZERO:
        v = 0.0;
        break;
    case DJ_CLASS_DENORMAL:
        *flags |= DJ_FLAG_DENORMAL;
        v = d->denorm == DJ_DENORM_FLUSH ? 0.0 : ldexp((double)m, dj_format_denorm_exp(f, bias) - M);
        break;
    default:
        v = ldexp(1.0 + ldexp((double)m, -M), (int)e - bias);
        break;
    }
    return (float)(neg ? -v : v);
}

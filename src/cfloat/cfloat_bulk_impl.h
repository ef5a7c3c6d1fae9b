/* cfloat_bulk_impl.h - the bulk conversion kernels, written once for the
 * auto-vectoriser and compiled per instruction set.
 *
 * Included by cfloat_bulk_generic.c, cfloat_bulk_avx2.c and
 * cfloat_bulk_avx512.c, each built with its own -m flags and defining
 * DJ_ISA_SUFFIX. The per-element functions are straight-line 32-bit lane
 * arithmetic (selects, variable shifts, compares) so that the compiler maps
 * one element to one vector lane.
 *
 * Encoding works on float32 bit patterns: rounding to M mantissa bits is an
 * integer add on the bits (the carry moves into the exponent by itself), the
 * exponent is re-biased by a subtraction, denormals are a variable shift of
 * the significand. Lanes this does not cover exactly are "hard" and are redone
 * by the scalar reference after the vector loop: float32 subnormal inputs, and
 * in stochastic mode the Tesla gap and results more than 32 bits below the
 * input's precision. They are rare in real data. The results are
 * bit-identical to dj_cf_encode(), which the tests check. */
#include "cfloat/cfloat_internal.h"
#include "dojo/rng.h"

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#define DJ_CAT2(a, b) a##_##b
#define DJ_CAT(a, b) DJ_CAT2(a, b)
#define DJ_FN(name) DJ_CAT(name, DJ_ISA_SUFFIX)

#define DJ_BLOCK 256

#define FL_I ((uint32_t)DJ_FLAG_INVALID)
#define FL_D ((uint32_t)DJ_FLAG_DENORMAL)
#define FL_O ((uint32_t)DJ_FLAG_OVERFLOW)
#define FL_U ((uint32_t)DJ_FLAG_UNDERFLOW)

/* Lanes per vector: the kernels use GCC/Clang vector extensions, so the
 * same source becomes SSE2, AVX2 or AVX-512 code by the file's -m flags. */
#if defined(__AVX512F__)
#define VL 16
#elif defined(__AVX2__)
#define VL 8
#else
#define VL 4
#endif
typedef uint32_t vu __attribute__((vector_size(VL * 4)));
typedef int32_t vi __attribute__((vector_size(VL * 4)));
typedef uint16_t vu16 __attribute__((vector_size(VL * 2)));
typedef uint8_t vu8 __attribute__((vector_size(VL)));

/* A lane mask (all ones / all zeros) from a vector comparison. */
#define MASK(cmp) ((vu)(cmp))

/* Nonzero if every lane of mask m is set. */
static inline int all_lanes(vu m)
{
#if defined(__AVX512F__)
    __m512i v;
    memcpy(&v, &m, sizeof v);
    return _mm512_movepi32_mask(v) == 0xffff;
#elif defined(__AVX2__)
    __m256i v;
    memcpy(&v, &m, sizeof v);
    return _mm256_movemask_epi8(v) == -1;
#elif defined(__SSE2__)
    __m128i v;
    memcpy(&v, &m, sizeof v);
    return _mm_movemask_epi8(v) == 0xffff;
#else
    uint32_t all = ~0u;
    for (int l = 0; l < VL; l++)
        all &= m[l];
    return all == ~0u;
#endif
}

static inline vu vsel(vu m, vu a, vu b)
{
    return (a & m) | (b & ~m);
}

static inline vi vclamp(vi v, int32_t lo, int32_t hi)
{
    vi lom = v < lo, him = v > hi;
    v = (v & ~lom) | (lo & lom);
    return (v & ~him) | (hi & him);
}

/* dj_mix32 of rng.h, lane-wise; with it, word 0 of element (hi:lo) is
 * vmix32(vmix32(lo ^ k0) ^ k1 ^ hi * 0xc2b2ae35), as dj_rng_keyed(). */
static inline vu vmix32(vu x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* Whether every lane of u is zero or in the format's normal range (the
 * common case), where enc_fast encodes it. */
static inline __attribute__((always_inline)) int fast_ok(const dj_cvt_params *p, vu u)
{
    const vi ai = (vi)(u & 0x7fffffffu);
    return all_lanes((MASK(ai >= (int32_t)p->minnorm_bits) & MASK(ai < 0x7f800000)) | MASK(ai == 0));
}

/* Encode VL float32 bit patterns for which fast_ok holds: only rounding,
 * re-biasing and overflow are needed. `rnd` holds each lane's random word 0
 * (stochastic mode; sr is a compile-time constant). Returns the codes;
 * *flags_out gets each lane's flags. No lane is hard, and no code of a
 * non-zero lane is zero. */
static inline __attribute__((always_inline)) vu enc_fast(const dj_cvt_params *p, vu u, vu rnd,
                                                         const int sr, vu *flags_out)
{
    const vu a = u & 0x7fffffffu, keep = (vu){0} + p->keep_mask;
    const vu zerom = MASK((vi)a == 0);
    vu r;
    if (sr)
        r = (a & keep) + ((MASK((vi)(rnd >> (32 - p->shift)) < (vi)(a & ~keep)) & 1u) << p->shift);
    else
        r = (a + p->half_m1 + ((a >> p->shift) & 1u)) & keep;
    const vu ovfm = MASK((vi)r > (int32_t)p->max_bits);
    const vu sign_code = p->sign_bit & MASK((vi)u < 0);
    const vu neg_unsigned = p->is_unsigned ? MASK((vi)u < 0) & ~zerom : (vu){0};
    vu code = vsel(ovfm, (vu){0} + (p->saturate ? p->max_code : p->inf_code), (r >> p->shift) - p->exp_adj);
    code = (code & ~zerom) | sign_code;
    code = vsel(neg_unsigned, (vu){0} + p->nan_pos, code);
    *flags_out = (ovfm & ~neg_unsigned & FL_O) | (neg_unsigned & FL_I);
    return code;
}

/* Encode VL float32 bit patterns, any lanes (enc_fast's included). Returns
 * the codes; *flags_out gets each lane's flags and *hard_out a mask of the
 * lanes that must be redone by the reference. */
static inline __attribute__((always_inline)) vu enc_vec(const dj_cvt_params *p, vu u, vu rnd,
                                                        const int sr, vu *flags_out, vu *hard_out)
{
    /* Every quantity compared below is below 2^31, so comparisons are done
     * signed (AVX2 has no unsigned vector compare). */
    const uint32_t M = p->man_bits, shift = p->shift, keep = p->keep_mask;
    const vu ones = (vu){0} + 1u;
    const vu a = u & 0x7fffffffu;
    const vi ai = (vi)a;
    const vu negm = MASK((vi)u < 0);
    const vu sign_code = p->sign_bit & negm;

    /* Normal range: round the float32 bits, exponent unbounded. */
    const vu disc = a & ~keep;
    const vu r_rn = (a + p->half_m1 + ((a >> shift) & 1u)) & keep;
    const vu r_sr = (a & keep) + ((MASK((vi)(rnd >> (32 - shift)) < (vi)disc) & ones) << shift);
    const vi r = (vi)(sr ? r_sr : r_rn);
    const vu normm = MASK(ai >= (int32_t)p->minnorm_bits);
    const vu ovfm = MASK(r > (int32_t)p->max_bits);
    const vu ncode = ((vu)r >> shift) - p->exp_adj;

    /* Denormal range: x = sig * 2^ex, quantum 2^qd_exp, s bits discarded. */
    const vu sig = (a & 0x7fffffu) | 0x800000u;
    const vi s = p->qd_exp - ((vi)(a >> 23) - 150);
    const vu sc = (vu)vclamp(s, 1, 31);
    const vu k = sig >> sc;
    const vi rem = (vi)(sig & ((ones << sc) - 1u));
    const vi half = (vi)(ones << (sc - 1u));
    /* Stochastic: I = the first s random bits; up iff I < rem (s <= 31 here,
     * larger s is a hard lane). */
    const vi I = (vi)((rnd >> 1) >> (31u - sc));
    vu up;
    if (sr) /* s > 31: rounds down unless the leading random bits are all zero (hard) */
        up = MASK(I < rem) & MASK(s <= 31);
    else
        up = MASK(rem > half) | (MASK(rem == half) & MASK((k & 1u) != 0));
    const vu kd = k + (up & ones);

    /* Tesla gap: lo = (2^M - 1) * 2^qd_exp, hi = 2^(1-bias) = 2^(M+1) * 2^qd_exp. */
    const vu gapm = p->tesla_gap ? MASK(ai >= (int32_t)p->gap_lo_bits) : (vu){0};
    vu gap_up, gap_hard = {0};
    if (sr) {
        /* hi - lo = c * 2^s units of x's last bit, c = 2^M + 1; A = x - lo in
         * those units. Up iff c*I < A; undecided (A - c < c*I < A, a chance
         * of about 2^-s) goes to the reference. */
        const uint32_t c = (1u << M) + 1u;
        /* Unsigned arithmetic (lanes outside the gap hold garbage that
         * must not overflow a signed type); values are < 2^25 in the gap. */
        const vi A = (vi)(sig - (((1u << M) - 1u) << sc));
        const vi cI = (vi)((vu)I * c);
        const vi cI_c = (vi)((vu)cI + c);
        gap_hard = MASK(cI < A) & MASK(cI_c > A);
        gap_up = MASK(cI_c <= A);
    } else {
        gap_up = MASK(ai >= (int32_t)p->gap_mid_bits);
    }
    const vu gap_code = ((1u << M) - 1u) + (gap_up & ones);
    const vu dcode = vsel(gapm, gap_code, kd);
    /* UHP: round with unbounded exponent, then flush what is below min normal. */
    const vu fcode = ncode & MASK(r >= (int32_t)p->minnorm_bits);

    const uint32_t big_code = p->saturate ? p->max_code : p->inf_code;
    vu mag = vsel(normm, ncode, p->flush ? fcode : dcode);
    mag = vsel(ovfm, (vu){0} + big_code, mag);

    const vu nanm = MASK(ai > 0x7f800000);
    const vu infm = MASK(ai == 0x7f800000);
    const vu zerom = MASK(ai == 0);
    const vu neg_unsigned = p->is_unsigned ? negm & ~zerom : (vu){0};
    const vu subm = ~zerom & MASK(ai < 0x00800000);
    const vu finite = ~(nanm | infm | zerom | neg_unsigned);

    vu code = (mag & ~zerom) | sign_code;
    code = vsel(infm, big_code | sign_code, code);
    code = vsel(neg_unsigned, (vu){0} + p->nan_pos, code);
    code = vsel(nanm, vsel(negm, (vu){0} + p->nan_neg, (vu){0} + p->nan_pos), code);

    const vu tinym = MASK((vi)r_rn < (int32_t)p->minnorm_bits);
    const vu inexact_sub =
        p->flush ? ~(vu){0} : vsel(gapm, MASK(ai != (int32_t)p->gap_lo_bits), MASK(rem != 0));
    vu fl = (nanm | neg_unsigned) & FL_I;
    fl |= subm & FL_D;
    fl |= ((finite & ovfm) | (p->saturate ? infm & ~neg_unsigned : (vu){0})) & FL_O;
    /* U: inexact and tiny; in UHP also every non-zero value flushed to +0. */
    const vu flushed = p->flush ? MASK(fcode == 0u) : (vu){0};
    fl |= (finite & ~normm & ((tinym & inexact_sub) | flushed)) & FL_U;
    *flags_out = fl;
    vu hard = subm;
    if (sr && !p->flush)
    {
        /* s > 31: up needs the leading s - 24 random bits zero (A < 2^24);
         * any of the first min(s - 24, 32) set decides "down" here. */
        const vu lead_shift = 32u - (vu)vclamp(s - 24, 8, 32);
        hard |= finite & ~normm & ((MASK(s > 31) & MASK((rnd >> lead_shift) == 0u)) | (gapm & gap_hard));
    }
    *hard_out = hard;
    return code;
}

/* The scalar twin of enc_vec's hard-lane test, for the fix-up pass. */
static inline int enc_is_hard(const dj_cvt_params *p, uint32_t u, int sr, uint32_t rnd0)
{
    const uint32_t a = u & 0x7fffffffu;
    if (a != 0 && a < 0x00800000u)
        return 1;
    if (!sr || p->flush || a == 0 || a >= 0x7f800000u || a >= p->minnorm_bits)
        return 0;
    if (p->is_unsigned && (u >> 31))
        return 0;
    const int32_t s = p->qd_exp - ((int32_t)(a >> 23) - 150);
    if (s > 31) { /* see enc_vec: hard only if the leading random bits are all zero */
        const int32_t lead = s - 24 > 32 ? 32 : s - 24;
        return (lead == 32 ? rnd0 : rnd0 >> (32 - lead)) == 0;
    }
    if (!p->tesla_gap || a < p->gap_lo_bits)
        return 0;
    /* In the gap: hard when the first s random bits do not decide. */
    const uint32_t sig = (a & 0x7fffffu) | 0x800000u, M = p->man_bits, c = (1u << M) + 1u;
    const int32_t A = (int32_t)sig - (int32_t)(((1u << M) - 1u) << s);
    const int32_t cI = (int32_t)((rnd0 >> (32 - s)) * c);
    return cI < A && cI + (int32_t)c > A;
}

static inline vu load_f32(const void *x, size_t i)
{
    vu v;
    memcpy(&v, (const uint32_t *)x + i, sizeof v);
    return v;
}

static inline vu load_bf16(const void *x, size_t i)
{
    vu16 h;
    memcpy(&h, (const uint16_t *)x + i, sizeof h);
    return __builtin_convertvector(h, vu) << 16;
}

static inline uint32_t load1_f32(const void *x, size_t i)
{
    return ((const uint32_t *)x)[i];
}

static inline uint32_t load1_bf16(const void *x, size_t i)
{
    return (uint32_t)((const uint16_t *)x)[i] << 16;
}

typedef uint32_t elem_f32_t;
typedef uint16_t elem_bf16_t;

/* Narrowing stores. Codes fit their width, so unsigned-saturating packs are
 * exact; GCC's generic vector narrowing goes through scalar extracts. */
static inline void store_u8(uint8_t *out, vu c)
{
#if defined(__AVX512F__)
    __m512i v;
    memcpy(&v, &c, sizeof v);
    _mm_storeu_si128((__m128i *)(void *)out, _mm512_cvtepi32_epi8(v));
#elif defined(__AVX2__)
    __m256i v;
    memcpy(&v, &c, sizeof v);
    __m256i w = _mm256_packus_epi16(_mm256_packus_epi32(v, v), v); /* bytes 0-3 | 16-19 */
    w = _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0));
    _mm_storel_epi64((__m128i *)(void *)out, _mm256_castsi256_si128(w));
#else
    vu8 b = __builtin_convertvector(c, vu8);
    memcpy(out, &b, sizeof b);
#endif
}

static inline void store_u16(uint16_t *out, vu c)
{
#if defined(__AVX512F__)
    __m512i v;
    memcpy(&v, &c, sizeof v);
    _mm256_storeu_si256((__m256i *)(void *)out, _mm512_cvtepi32_epi16(v));
#elif defined(__AVX2__)
    __m256i v;
    memcpy(&v, &c, sizeof v);
    __m256i w = _mm256_permute4x64_epi64(_mm256_packus_epi32(v, v), 0x08); /* qwords 0, 2 */
    _mm_storeu_si128((__m128i *)(void *)out, _mm256_castsi256_si128(w));
#else
    vu16 h = __builtin_convertvector(c, vu16);
    memcpy(out, &h, sizeof h);
#endif
}

/* Sum of the lanes of v. */
static inline int64_t lane_sum(vu v)
{
    int64_t t = 0;
    for (int l = 0; l < VL; l++)
        t += v[l];
    return t;
}

/* The statistics dj_cf_encode_array_stats counts for one element (the
 * scalar twin of the vector loop's, for the lanes the reference redoes). */
static inline void stats_one(uint32_t u, uint32_t code, uint32_t mag, uint32_t lim, int tie,
                             dj_cf_stats *st)
{
    const uint32_t a = u & 0x7fffffffu;
    st->over += (a > lim && a <= 0x7f800000u) || (tie && a == lim);
    st->under += a != 0 && (code & mag) == 0;
    if (a <= 0x7f800000u && a > dj__f32_bits(st->amax))
        st->amax = dj__bits_f32(a);
}

/* One specialised loop per (input type, code width, rounding mode, with
 * statistics or not), in blocks of DJ_BLOCK elements. A first pass encodes
 * the whole vectors for which fast_ok holds and marks the others; a second
 * encodes the marked ones (and a partial last vector, through zero-padded
 * copies) with enc_vec, which keeps the rare lanes' arithmetic out of the
 * first pass's registers; the reference then redoes the hard lanes. A
 * block whose element indices wrap past a multiple of 2^32 (the random
 * stream's index is 64-bit) is done by the reference entirely. With STATS
 * the passes also count into *st (see dj_cf_encode_array_stats): the
 * input's part (overflow, amax) of each vector where it is encoded, the
 * code's part (underflow, never in the first pass: its codes of non-zero
 * lanes are not zero) for the second pass's lanes that it keeps, the
 * reference's for the lanes it redoes (all three for a wrapping block). */
#define DJ_ENC_LOOP(NAME, IN, OUT_T, SR, STATS)                                                    \
    static void NAME(const dj_cvt_params *pp, dj_format f, int bias, const void *restrict x,       \
                     OUT_T *restrict out, size_t n, dj_round r, uint64_t index0, unsigned *flags,  \
                     uint32_t lim, int tie, dj_cf_stats *st)                                       \
    {                                                                                              \
        const dj_cvt_params P = *pp;                                                               \
        const dj_rng_key key = dj_rng_key_make(r.seed);                                            \
        const uint32_t mag = (uint32_t)((OUT_T)~(OUT_T)0 >> 1);                                    \
        const vu tiem = (vu){0} - (uint32_t)(tie != 0);                                            \
        vu lane = {0};                                                                             \
        for (int l = 0; l < VL; l++)                                                               \
            lane[l] = (uint32_t)l;                                                                 \
        vu acc = {0}, amv = {0};                                                                   \
        uint32_t acc_fix = 0;                                                                      \
        for (size_t base = 0; base < n; base += DJ_BLOCK) {                                        \
            const size_t len = n - base < DJ_BLOCK ? n - base : DJ_BLOCK;                          \
            const uint64_t idx = index0 + base;                                                    \
            const uint32_t lo0 = (uint32_t)idx, hi = (uint32_t)(idx >> 32);                        \
            const int wraps = SR && (uint32_t)(lo0 + (uint32_t)(len - 1)) < lo0;                   \
            const vu rkey = (vu){0} + (key.k1 ^ (hi * 0xc2b2ae35U));                               \
            vu any_hard = {0}, ovc = {0}, unc = {0};                                               \
            uint64_t marked = 0; /* vectors for the second pass (DJ_BLOCK / VL <= 64) */           \
            const size_t nv = wraps ? 0 : len / VL;                                                \
            /* the block's random words first: a loop of its own keeps the hash's registers */     \
            _Alignas(64) uint32_t rwords[SR ? DJ_BLOCK : 1];                                       \
            for (size_t j = 0; SR && !wraps && j < len; j += VL) {                                 \
                const vu w = vmix32(vmix32((lane + (lo0 + (uint32_t)j)) ^ key.k0) ^ rkey);         \
                memcpy(rwords + j, &w, sizeof w);                                                  \
            }                                                                                      \
            for (size_t v = 0; v < nv; v++) {                                                      \
                const size_t j = v * VL;                                                           \
                const vu u = load_##IN(x, base + j);                                               \
                if (!fast_ok(&P, u)) {                                                             \
                    marked |= (uint64_t)1 << v;                                                    \
                    continue;                                                                      \
                }                                                                                  \
                vu rnd = {0}, lf;                                                                  \
                if (SR)                                                                            \
                    memcpy(&rnd, rwords + j, sizeof rnd);                                          \
                STORE_##OUT_T(out + base + j, enc_fast(&P, u, rnd, SR, &lf));                      \
                acc |= lf;                                                                         \
                if (STATS) {                                                                       \
                    const vi ai = (vi)(u & 0x7fffffffu);                                           \
                    ovc -= MASK(ai > (int32_t)lim) | (tiem & MASK(ai == (int32_t)lim));            \
                    amv = vsel(MASK(ai > (vi)amv), (vu)ai, amv);                                   \
                }                                                                                  \
            }                                                                                      \
            if (!wraps && nv * VL < len)                                                           \
                marked |= (uint64_t)1 << nv;                                                       \
            while (marked) {                                                                       \
                const size_t j = (size_t)__builtin_ctzll(marked) * VL;                             \
                marked &= marked - 1;                                                              \
                vu u, rnd = {0}, lf, hard, valid = ~(vu){0};                                       \
                const size_t m = len - j < VL ? len - j : VL;                                      \
                if (m == VL) {                                                                     \
                    u = load_##IN(x, base + j);                                                    \
                } else {                                                                           \
                    elem_##IN##_t tmp[VL] = {0};                                                   \
                    memcpy(tmp, (const elem_##IN##_t *)x + base + j, m * sizeof tmp[0]);           \
                    u = load_##IN(tmp, 0);                                                         \
                }                                                                                  \
                if (SR)                                                                            \
                    memcpy(&rnd, rwords + j, sizeof rnd);                                          \
                vu c = enc_vec(&P, u, rnd, SR, &lf, &hard);                                        \
                if (m < VL) {                                                                      \
                    valid = MASK(lane < (uint32_t)m);                                              \
                    lf &= valid;                                                                   \
                    hard &= valid;                                                                 \
                    OUT_T tmpo[VL];                                                                \
                    STORE_##OUT_T(tmpo, c);                                                        \
                    memcpy(out + base + j, tmpo, m * sizeof(OUT_T));                               \
                } else {                                                                           \
                    STORE_##OUT_T(out + base + j, c);                                              \
                }                                                                                  \
                if (STATS) {                                                                       \
                    const vi ai = (vi)(u & 0x7fffffffu);                                           \
                    const vu notnan = MASK(ai <= 0x7f800000);                                      \
                    ovc -= valid & ((MASK(ai > (int32_t)lim) & notnan) |                           \
                                    (tiem & MASK(ai == (int32_t)lim)));                            \
                    unc -= valid & ~hard & MASK(ai != 0) & MASK((c & mag) == 0u);                  \
                    amv = vsel(MASK(ai > (vi)amv) & notnan, (vu)ai, amv);                          \
                }                                                                                  \
                acc |= lf & ~hard;                                                                 \
                any_hard |= hard;                                                                  \
            }                                                                                      \
            if (STATS) {                                                                           \
                st->over += lane_sum(ovc);                                                         \
                st->under += lane_sum(unc);                                                        \
            }                                                                                      \
            int need_fix = wraps;                                                                  \
            for (int l = 0; l < VL; l++)                                                           \
                need_fix |= any_hard[l] != 0;                                                      \
            if (!need_fix)                                                                         \
                continue;                                                                          \
            for (size_t j = 0; j < len; j++) {                                                     \
                const uint32_t u = load1_##IN(x, base + j);                                        \
                const uint32_t rnd0 = SR ? dj_rng_keyed(key, lo0 + (uint32_t)j, hi, 0) : 0;        \
                if (wraps || enc_is_hard(&P, u, SR, rnd0)) {                                       \
                    unsigned rf = 0;                                                               \
                    out[base + j] = (OUT_T)dj_cf_encode(f, bias, dj__bits_f32(u), r, idx + j, &rf); \
                    acc_fix |= rf;                                                                 \
                    if (STATS && wraps) /* the vector loop counted nothing of this block */      \
                        stats_one(u, out[base + j], mag, lim, tie, st);                            \
                    else if (STATS) /* it counted the input's part of this lane */                 \
                        st->under += (u & 0x7fffffffu) != 0 && (out[base + j] & mag) == 0;         \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        for (int l = 0; l < VL; l++) {                                                             \
            acc_fix |= acc[l];                                                                     \
            if (STATS && amv[l] > dj__f32_bits(st->amax))                                          \
                st->amax = dj__bits_f32(amv[l]);                                                   \
        }                                                                                          \
        *flags |= acc_fix;                                                                         \
    }

#define STORE_uint8_t store_u8
#define STORE_uint16_t store_u16

DJ_ENC_LOOP(enc_f32_u8_rn, f32, uint8_t, 0, 0)
DJ_ENC_LOOP(enc_f32_u8_sr, f32, uint8_t, 1, 0)
DJ_ENC_LOOP(enc_f32_u16_rn, f32, uint16_t, 0, 0)
DJ_ENC_LOOP(enc_f32_u16_sr, f32, uint16_t, 1, 0)
DJ_ENC_LOOP(enc_bf16_u8_rn, bf16, uint8_t, 0, 0)
DJ_ENC_LOOP(enc_bf16_u8_sr, bf16, uint8_t, 1, 0)
DJ_ENC_LOOP(enc_f32_u8_rn_st, f32, uint8_t, 0, 1)
DJ_ENC_LOOP(enc_f32_u8_sr_st, f32, uint8_t, 1, 1)
DJ_ENC_LOOP(enc_f32_u16_rn_st, f32, uint16_t, 0, 1)
DJ_ENC_LOOP(enc_f32_u16_sr_st, f32, uint16_t, 1, 1)

void DJ_FN(dj__encode)(const dj_cvt_params *p, dj_format f, int bias, const void *x, int x_bf16,
                       void *out, size_t n, dj_round r, uint64_t index0, unsigned *flags)
{
    const int sr = r.mode == DJ_ROUND_STOCHASTIC;
    const int wide = dj_format_desc_of(f)->bits == 16;
    if (x_bf16)
        (sr ? enc_bf16_u8_sr : enc_bf16_u8_rn)(p, f, bias, x, out, n, r, index0, flags, 0, 0, NULL);
    else if (wide)
        (sr ? enc_f32_u16_sr : enc_f32_u16_rn)(p, f, bias, x, out, n, r, index0, flags, 0, 0, NULL);
    else
        (sr ? enc_f32_u8_sr : enc_f32_u8_rn)(p, f, bias, x, out, n, r, index0, flags, 0, 0, NULL);
}

void DJ_FN(dj__encode_stats)(const dj_cvt_params *p, dj_format f, int bias, const float *x,
                             void *out, size_t n, dj_round r, uint64_t index0, unsigned *flags,
                             float limit, int tie, dj_cf_stats *st)
{
    const int sr = r.mode == DJ_ROUND_STOCHASTIC;
    const uint32_t lim = dj__f32_bits(limit) & 0x7fffffffu;
    if (dj_format_desc_of(f)->bits == 16)
        (sr ? enc_f32_u16_sr_st : enc_f32_u16_rn_st)(p, f, bias, x, out, n, r, index0, flags, lim,
                                                     tie, st);
    else
        (sr ? enc_f32_u8_sr_st : enc_f32_u8_rn_st)(p, f, bias, x, out, n, r, index0, flags, lim,
                                                   tie, st);
}

/* Decode one code to float32 bits. Denormals: the mantissa converted to
 * float (exact) and its exponent field moved by qd_exp (the result is a
 * normal float32 for every format but bf16, which has its own loop). */
static inline __attribute__((always_inline)) uint32_t dec_one(const dj_cvt_params *p, uint32_t code,
                                                              uint32_t *flags_out)
{
    const uint32_t M = p->man_bits;
    const uint32_t neg = p->sign_bit ? (code & p->sign_bit) != 0 : 0;
    const uint32_t body = code & p->body_mask;
    const uint32_t e = body >> M;
    const uint32_t m = body & ((1u << M) - 1);
    const uint32_t normal = ((e + 127u - p->bias) << 23) | (m << (23 - M));
    const float mf = (float)(int32_t)m;
    uint32_t mbits;
    memcpy(&mbits, &mf, sizeof mbits);
    const uint32_t denorm = p->flush ? 0 : mbits + ((uint32_t)p->qd_exp << 23);
    const uint32_t all_ones = e == p->exp_mask;
    const uint32_t is_nan = (p->specials == DJ_SPECIALS_IEEE && all_ones && m != 0) |
                            (p->specials == DJ_SPECIALS_E4M3 && all_ones && m == (1u << M) - 1);
    const uint32_t is_inf = p->specials == DJ_SPECIALS_IEEE && all_ones && m == 0;
    uint32_t v = e ? normal : m ? denorm : 0;
    v = is_inf ? 0x7f800000u : v;
    v = is_nan ? 0x7fc00000u : v;
    *flags_out = (e == 0 && m != 0) ? FL_D : 0;
    return v | (neg << 31);
}

#define DJ_DEC_LOOP(NAME, IN_T, OUT_T, OUT_SHIFT)                                                   \
    static void NAME(const dj_cvt_params *pp, const IN_T *restrict in, OUT_T *restrict out,        \
                     size_t n, unsigned *flags)                                                    \
    {                                                                                              \
        const dj_cvt_params P = *pp;                                                               \
        uint32_t fl = 0;                                                                           \
        for (size_t i = 0; i < n; i++) {                                                           \
            uint32_t lf;                                                                           \
            out[i] = (OUT_T)(dec_one(&P, in[i], &lf) >> OUT_SHIFT);                                \
            fl |= lf;                                                                              \
        }                                                                                          \
        *flags |= fl;                                                                              \
    }

DJ_DEC_LOOP(dec_u8_f32, uint8_t, uint32_t, 0)
DJ_DEC_LOOP(dec_u16_f32, uint16_t, uint32_t, 0)
DJ_DEC_LOOP(dec_u8_bf16, uint8_t, uint16_t, 16)

/* bfloat16 codes are the top half of float32. */
static void dec_bf16_f32(const uint16_t *restrict in, uint32_t *restrict out, size_t n,
                                unsigned *flags)
{
    uint32_t fl = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t h = in[i];
        out[i] = h << 16;
        fl |= ((h & 0x7f80u) == 0 && (h & 0x7fu) != 0) ? FL_D : 0;
    }
    *flags |= fl;
}

void DJ_FN(dj__decode)(const dj_cvt_params *p, const void *in, void *out, int out_bf16, size_t n,
                       unsigned *flags)
{
    if (p->is_bf16)
        dec_bf16_f32(in, out, n, flags);
    else if (out_bf16)
        dec_u8_bf16(p, in, out, n, flags);
    else if (p->body_mask > 0xffu || p->sign_bit > 0xffu)
        dec_u16_f32(p, in, out, n, flags);
    else
        dec_u8_f32(p, in, out, n, flags);
}

/* gemm_avx2.c - the AVX2+FMA float32 GEMM micro-kernel: the body in
 * gemm_ukr_impl.h (shared with AVX-512) on ymm registers, a 6 x 16 tile of
 * C in twelve accumulators; the 15 live registers fit the 16 that AVX2 has.
 * Its main loop (whole groups of 4 k steps) is the inline assembly below,
 * the same FMAs as the body's C loop in fixed registers.
 *
 * Also here: the AVX2 decoder of bf16 and 8-bit operands for the packing
 * routines (dj__opd_decode_avx2, used by the AVX2 and AVX-512 kernels).
 *
 * Built with -mavx2 -mfma; called only when dj_cpu_supports(DJ_ISA_AVX2). */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/gemm_internal.h"

#define DJ_V __m256
#define DJ_VW 8
#define DJ_V_ZERO() _mm256_setzero_ps()
#define DJ_V_LOAD(p) _mm256_loadu_ps(p)
#define DJ_V_STORE(p, v) _mm256_storeu_ps(p, v)
#define DJ_V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define DJ_V_MUL(a, b) _mm256_mul_ps(a, b)
#define DJ_V_SET1(x) _mm256_set1_ps(x)
#define DJ_V_BCAST(p) _mm256_broadcast_ss(p)
#define DJ_UKR_NAME(base) base##avx2

/* The micro-kernel's main loop in assembly: groups of 4 k steps from
 * zeroed accumulators ymm0-11 (row r of the tile in ymm 2r, 2r + 1),
 * stored to acc[0..11] at the end; the C remainder loop goes on from
 * there. The same FMAs in the same order as the C loop, so the same bits
 * (test_gemm checks the three entry points against each other and against
 * a scalar fmaf chain): gcc gives the C loop's 15 live registers extra
 * moves and swapped operand forms, and the loops in fixed registers ran
 * 5-13% faster (scratch program alternating the two over L1- and
 * L2-resident panels on one Zen 3 core; figures in PERFORMANCE.md). */

/* B's row in ymm12-13 times the 6 values of A at the given addresses. */
#define ASM_ROWS(a0, a1, a2, a3, a4, a5)                                                           \
    "vbroadcastss " a0 ", %%ymm14\n\t"                                                             \
    "vfmadd231ps %%ymm12, %%ymm14, %%ymm0\n\t"                                                     \
    "vfmadd231ps %%ymm13, %%ymm14, %%ymm1\n\t"                                                     \
    "vbroadcastss " a1 ", %%ymm15\n\t"                                                             \
    "vfmadd231ps %%ymm12, %%ymm15, %%ymm2\n\t"                                                     \
    "vfmadd231ps %%ymm13, %%ymm15, %%ymm3\n\t"                                                     \
    "vbroadcastss " a2 ", %%ymm14\n\t"                                                             \
    "vfmadd231ps %%ymm12, %%ymm14, %%ymm4\n\t"                                                     \
    "vfmadd231ps %%ymm13, %%ymm14, %%ymm5\n\t"                                                     \
    "vbroadcastss " a3 ", %%ymm15\n\t"                                                             \
    "vfmadd231ps %%ymm12, %%ymm15, %%ymm6\n\t"                                                     \
    "vfmadd231ps %%ymm13, %%ymm15, %%ymm7\n\t"                                                     \
    "vbroadcastss " a4 ", %%ymm14\n\t"                                                             \
    "vfmadd231ps %%ymm12, %%ymm14, %%ymm8\n\t"                                                     \
    "vfmadd231ps %%ymm13, %%ymm14, %%ymm9\n\t"                                                     \
    "vbroadcastss " a5 ", %%ymm15\n\t"                                                             \
    "vfmadd231ps %%ymm12, %%ymm15, %%ymm10\n\t"                                                    \
    "vfmadd231ps %%ymm13, %%ymm15, %%ymm11\n\t"

/* A packed: the 6 values of k step q at byte offset 24 q of %[a]. */
#define ASM_A_PACKED(q)                                                                            \
    ASM_ROWS(#q "*24(%[a])", #q "*24+4(%[a])", #q "*24+8(%[a])", #q "*24+12(%[a])",                \
             #q "*24+16(%[a])", #q "*24+20(%[a])")

/* Step q of a group: A packed and B rows %[bs] bytes apart (%[b] moves
 * on a row); A packed and B row q at %[b] + 4 off[q]; A row r read in
 * place at %[a<r>], B packed 64 bytes a row. */
#define ASM_STEP_PACKED(q)                                                                         \
    "vmovups (%[b]), %%ymm12\n\t"                                                                  \
    "vmovups 32(%[b]), %%ymm13\n\t"                                                                \
    "add %[bs], %[b]\n\t" ASM_A_PACKED(q)
#define ASM_STEP_OFS(q)                                                                            \
    "movslq " #q "*4(%[off]), %[t]\n\t"                                                            \
    "vmovups (%[b],%[t],4), %%ymm12\n\t"                                                           \
    "vmovups 32(%[b],%[t],4), %%ymm13\n\t" ASM_A_PACKED(q)
#define ASM_STEP_AROWS(q)                                                                          \
    "vmovups " #q "*64(%[b]), %%ymm12\n\t"                                                         \
    "vmovups " #q "*64+32(%[b]), %%ymm13\n\t"                                                      \
    ASM_ROWS(#q "*4(%[a0])", #q "*4(%[a1])", #q "*4(%[a2])", #q "*4(%[a3])", #q "*4(%[a4])",       \
             #q "*4(%[a5])")

/* Accumulators zeroed, then the loop's label; the count down and the
 * accumulators stored to acc after it. */
#define ASM_LOOP_BEGIN                                                                             \
    "vxorps %%xmm0, %%xmm0, %%xmm0\n\t"                                                            \
    "vmovaps %%ymm0, %%ymm1\n\t"                                                                   \
    "vmovaps %%ymm0, %%ymm2\n\t"                                                                   \
    "vmovaps %%ymm0, %%ymm3\n\t"                                                                   \
    "vmovaps %%ymm0, %%ymm4\n\t"                                                                   \
    "vmovaps %%ymm0, %%ymm5\n\t"                                                                   \
    "vmovaps %%ymm0, %%ymm6\n\t"                                                                   \
    "vmovaps %%ymm0, %%ymm7\n\t"                                                                   \
    "vmovaps %%ymm0, %%ymm8\n\t"                                                                   \
    "vmovaps %%ymm0, %%ymm9\n\t"                                                                   \
    "vmovaps %%ymm0, %%ymm10\n\t"                                                                  \
    "vmovaps %%ymm0, %%ymm11\n\t"                                                                  \
    ".p2align 5\n"                                                                                 \
    "1:\n\t"
#define ASM_LOOP_END                                                                               \
    "dec %[n]\n\t"                                                                                 \
    "jnz 1b\n\t"                                                                                   \
    "vmovaps %%ymm0, (%[acc])\n\t"                                                                 \
    "vmovaps %%ymm1, 32(%[acc])\n\t"                                                               \
    "vmovaps %%ymm2, 64(%[acc])\n\t"                                                               \
    "vmovaps %%ymm3, 96(%[acc])\n\t"                                                               \
    "vmovaps %%ymm4, 128(%[acc])\n\t"                                                              \
    "vmovaps %%ymm5, 160(%[acc])\n\t"                                                              \
    "vmovaps %%ymm6, 192(%[acc])\n\t"                                                              \
    "vmovaps %%ymm7, 224(%[acc])\n\t"                                                              \
    "vmovaps %%ymm8, 256(%[acc])\n\t"                                                              \
    "vmovaps %%ymm9, 288(%[acc])\n\t"                                                              \
    "vmovaps %%ymm10, 320(%[acc])\n\t"                                                             \
    "vmovaps %%ymm11, 352(%[acc])\n\t"
#define ASM_CLOBBERS                                                                               \
    "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", \
        "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

/* `groups` (>= 1) groups of 4 k steps of each entry point's operands into
 * acc[0..11]: A packed and B rows bs floats apart; A packed and B row p at
 * b + off[p]; A row r at ar[r] and B packed (NR = 16 floats a row). */
#define DJ_UKR_ASM_PACKED(a, b, bs, groups, acc)                                                   \
    do {                                                                                           \
        const float *a_ = (a), *b_ = (b);                                                          \
        long n_ = (groups);                                                                        \
        const long bs_ = (long)(bs) * (long)sizeof(float);                                         \
        __asm__ volatile(ASM_LOOP_BEGIN ASM_STEP_PACKED(0) ASM_STEP_PACKED(1) ASM_STEP_PACKED(2)   \
                             ASM_STEP_PACKED(3) "add $96, %[a]\n\t" ASM_LOOP_END                   \
                         : [a] "+r"(a_), [b] "+r"(b_), [n] "+r"(n_)                                \
                         : [bs] "r"(bs_), [acc] "r"(acc)                                           \
                         : ASM_CLOBBERS);                                                          \
    } while (0)
#define DJ_UKR_ASM_OFS(a, b, off, groups, acc)                                                     \
    do {                                                                                           \
        const float *a_ = (a);                                                                     \
        const int32_t *o_ = (off);                                                                 \
        long n_ = (groups), t_;                                                                    \
        __asm__ volatile(ASM_LOOP_BEGIN ASM_STEP_OFS(0) ASM_STEP_OFS(1) ASM_STEP_OFS(2)            \
                             ASM_STEP_OFS(3) "add $96, %[a]\n\t"                                   \
                                             "add $16, %[off]\n\t" ASM_LOOP_END                    \
                         : [a] "+r"(a_), [off] "+r"(o_), [n] "+r"(n_), [t] "=&r"(t_)               \
                         : [b] "r"(b), [acc] "r"(acc)                                              \
                         : ASM_CLOBBERS);                                                          \
    } while (0)
#define DJ_UKR_ASM_AROWS(ar, b, groups, acc)                                                       \
    do {                                                                                           \
        const float *a0_ = (ar)[0], *a1_ = (ar)[1], *a2_ = (ar)[2], *a3_ = (ar)[3];                \
        const float *a4_ = (ar)[4], *a5_ = (ar)[5], *b_ = (b);                                     \
        long n_ = (groups);                                                                        \
        __asm__ volatile(ASM_LOOP_BEGIN ASM_STEP_AROWS(0) ASM_STEP_AROWS(1) ASM_STEP_AROWS(2)      \
                             ASM_STEP_AROWS(3) "add $16, %[a0]\n\t"                                \
                                               "add $16, %[a1]\n\t"                                \
                                               "add $16, %[a2]\n\t"                                \
                                               "add $16, %[a3]\n\t"                                \
                                               "add $16, %[a4]\n\t"                                \
                                               "add $16, %[a5]\n\t"                                \
                                               "add $256, %[b]\n\t" ASM_LOOP_END                   \
                         : [a0] "+r"(a0_), [a1] "+r"(a1_), [a2] "+r"(a2_), [a3] "+r"(a3_),         \
                           [a4] "+r"(a4_), [a5] "+r"(a5_), [b] "+r"(b_), [n] "+r"(n_)              \
                         : [acc] "r"(acc)                                                          \
                         : ASM_CLOBBERS);                                                          \
    } while (0)
#include "kernels/gemm_ukr_impl.h"

/* ---- packing ---- */

/* Columns i of the 8 x 8 block rows r[0..7] (8 floats each): o[i] holds
 * r[0][i] .. r[7][i]. */
static inline __attribute__((always_inline)) void transpose8(__m256 r[8], __m256 o[8])
{
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    o[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    o[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    o[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    o[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    o[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    o[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    o[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    o[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* dj__sgemm_pack_b_rows for NR = 16: k rows of 16 lanes from nr <= 16
 * source rows (rows[j][0 .. k)), lanes past nr zero. Each full half of 8
 * lanes goes through 8 x 8 transposes; the rest lane by lane. */
void dj__sgemm_pack_b_rows_avx2(const float *const *rows, int nr, int k, float *dst)
{
    for (int h = 0; h < 2; h++) {
        float *d = dst + h * 8;
        const int lanes = nr - h * 8 < 0 ? 0 : nr - h * 8 > 8 ? 8 : nr - h * 8;
        int p = 0;
        if (lanes == 8) {
            const float *const *s = rows + h * 8;
            for (; p + 8 <= k; p += 8) {
                __m256 r[8], o[8];
                for (int i = 0; i < 8; i++)
                    r[i] = _mm256_loadu_ps(s[i] + p);
                transpose8(r, o);
                for (int i = 0; i < 8; i++)
                    _mm256_storeu_ps(d + (size_t)(p + i) * NR, o[i]);
            }
            for (; p + 4 <= k; p += 4) /* then 4 x 4 blocks */
                for (int q = 0; q < 8; q += 4) {
                    __m128 x0 = _mm_loadu_ps(s[q] + p), x1 = _mm_loadu_ps(s[q + 1] + p);
                    __m128 x2 = _mm_loadu_ps(s[q + 2] + p), x3 = _mm_loadu_ps(s[q + 3] + p);
                    _MM_TRANSPOSE4_PS(x0, x1, x2, x3);
                    _mm_storeu_ps(d + (size_t)p * NR + q, x0);
                    _mm_storeu_ps(d + (size_t)(p + 1) * NR + q, x1);
                    _mm_storeu_ps(d + (size_t)(p + 2) * NR + q, x2);
                    _mm_storeu_ps(d + (size_t)(p + 3) * NR + q, x3);
                }
        }
        for (; p < k; p++) {
            float *dp = d + (size_t)p * NR;
            for (int i = 0; i < lanes; i++)
                dp[i] = rows[h * 8 + i][p];
            for (int i = lanes; i < 8; i++)
                dp[i] = 0.0f;
        }
    }
}

/* 8 codes by the table's form f (kernels.h): the exponent and mantissa
 * fields shifted into place and rebiased by one integer add; denormals and
 * zero by an exact subtraction; the sign bit moved; codes of magnitude >=
 * f->special (NaN, Inf) gathered from the table. */
static inline __attribute__((always_inline)) __m256 decode8_form(const uint8_t *s, const float *lut,
                                                                 const dj_lut8_form *f)
{
    const __m256i m7f = _mm256_set1_epi32(0x7f);
    const __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)s));
    const __m256i a = _mm256_and_si256(c, m7f);
    const __m256i sign = _mm256_slli_epi32(_mm256_andnot_si256(m7f, c), 24);
    __m256i n = _mm256_add_epi32(_mm256_sll_epi32(a, _mm_cvtsi32_si128(23 - f->mbits)),
                                 _mm256_set1_epi32(f->exp_add));
    const __m256i isden = _mm256_cmpgt_epi32(_mm256_set1_epi32(1 << f->mbits), a);
    if (f->den_add)
        n = _mm256_add_epi32(n, _mm256_and_si256(isden, _mm256_set1_epi32(f->den_add)));
    __m256 v = _mm256_sub_ps(_mm256_castsi256_ps(n),
                             _mm256_and_ps(_mm256_castsi256_ps(isden), _mm256_set1_ps(f->den_sub)));
    v = _mm256_or_ps(v, _mm256_castsi256_ps(sign));
    if (f->special < 0x80) {
        const __m256i sp = _mm256_cmpgt_epi32(a, _mm256_set1_epi32(f->special - 1));
        if (!_mm256_testz_si256(sp, sp))
            v = _mm256_mask_i32gather_ps(v, lut, c, _mm256_castsi256_ps(sp), 4);
    }
    return v;
}

/* The nibble form's five tables (kernels.h), each in both 128-bit lanes. */
typedef struct {
    __m256i ta, tb, t0h, tl, t0l;
} nib_tables;

static inline __attribute__((always_inline)) nib_tables nib_tables_of(const dj_lut8_form *f)
{
    nib_tables t;
    t.ta = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)f->ta));
    t.tb = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)f->tb));
    t.t0h = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)f->t0h));
    t.tl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)f->tl));
    t.t0l = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)f->t0l));
    return t;
}

/* 32 codes by the nibble form, to o[0..3] (codes 0-7, 8-15, 16-23,
 * 24-31): the two bytes of each value looked up by nibble, 32 lanes at a
 * time, then interleaved into the top halves of 32-bit lanes. The dword
 * permutation first puts the codes where the in-lane unpacks need them. */
static inline __attribute__((always_inline)) void decode32_nib(const uint8_t *s,
                                                               const nib_tables *t, __m256 o[4])
{
    const __m256i lo4 = _mm256_set1_epi8(0x0f);
    const __m256i c = _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const __m256i *)s),
                                                  _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
    const __m256i l = _mm256_and_si256(c, lo4);
    const __m256i h = _mm256_and_si256(_mm256_srli_epi16(c, 4), lo4);
    const __m256i z = _mm256_cmpeq_epi8(_mm256_and_si256(c, _mm256_set1_epi8(0x70)),
                                        _mm256_setzero_si256()); /* h & 7 == 0 */
    const __m256i hi = _mm256_add_epi8(
        _mm256_shuffle_epi8(t->ta, h),
        _mm256_blendv_epi8(_mm256_shuffle_epi8(t->tb, l), _mm256_shuffle_epi8(t->t0h, l), z));
    const __m256i lo = _mm256_blendv_epi8(_mm256_shuffle_epi8(t->tl, l),
                                          _mm256_shuffle_epi8(t->t0l, l), z);
    const __m256i w0 = _mm256_unpacklo_epi8(lo, hi), w1 = _mm256_unpackhi_epi8(lo, hi);
    const __m256i zero = _mm256_setzero_si256();
    o[0] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, w0));
    o[1] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, w0));
    o[2] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, w1));
    o[3] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, w1));
}

/* 8 bf16 values widened by a 16-bit shift (exact). */
static inline __attribute__((always_inline)) __m256 decode8_bf16(const uint16_t *s)
{
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)s)), 16));
}

/* 8 codes gathered from the table. */
static inline __attribute__((always_inline)) __m256 decode8_gather(const uint8_t *s, const float *lut)
{
    return _mm256_i32gather_ps(lut, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)s)), 4);
}

enum { DEC_BF16, DEC_FORM, DEC_GATHER };

/* 8 elements at p (bf16 bits or 8-bit codes) by decoder `how`. */
static inline __attribute__((always_inline)) __m256 decode8(int how, const void *p, const float *lut,
                                                            const dj_lut8_form *f)
{
    return how == DEC_BF16 ? decode8_bf16(p) : how == DEC_FORM ? decode8_form(p, lut, f)
                                                               : decode8_gather(p, lut);
}

/* The first n < 8 lanes of v to dst, one by one (a masked store is slow on
 * AMD's cores). */
static inline __attribute__((always_inline)) void store_few(float *dst, __m256 v, int n)
{
    _Alignas(32) float t[8];
    _mm256_store_ps(t, v);
    for (int i = 0; i < n; i++)
        dst[i] = t[i];
}

/* The row loops of dj__opd_decode_rows_avx2 for decoder `how` (a constant
 * once inlined): 8 elements at a time; the last n % 8 of a row of at least
 * 8 as the row's last 8 (overlapping the previous vector); of a shorter
 * row, 8 decoded from the source where those 8 lie inside the block's span
 * (first row's start to last row's end: every row but the last, when ld >=
 * n), else through a zero-padded copy (never reading past the block), and
 * stored lane by lane. */
static inline __attribute__((always_inline)) void decode_rows8(int how, dj_opd src, ptrdiff_t ld,
                                                               int rows, int n, float *dst,
                                                               ptrdiff_t ldd)
{
    const size_t es = how == DEC_BF16 ? 2 : 1;
    const dj_lut8_form f = how == DEC_FORM ? *src.form : (dj_lut8_form){0};
    for (int r = 0; r < rows; r++) {
        const unsigned char *s = (const unsigned char *)src.p + (size_t)(r * ld) * es;
        float *d = dst + r * ldd;
        int i = 0;
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(d + i, decode8(how, s + i * es, src.lut, &f));
        if (i < n && n >= 8) { /* the last 8 again: the overlap stores the same values */
            _mm256_storeu_ps(d + n - 8, decode8(how, s + (n - 8) * es, src.lut, &f));
        } else if (i < n) {
            _Alignas(16) unsigned char t[16] = {0};
            const unsigned char *at = s + i * es;
            if (r * ld + i + 8 > (rows - 1) * ld + n) /* past the block: a padded copy */
                at = memcpy(t, at, (size_t)(n - i) * es);
            store_few(d + i, decode8(how, at, src.lut, &f), n - i);
        }
    }
}

/* dj__opd_decode_rows_generic with 8 lanes at a time: bf16 widened by a
 * 16-bit shift; 8-bit codes by the table's form, or gathered from the
 * table. The bits are the scalar routine's (the form is the table's,
 * checked when made). */
void dj__opd_decode_rows_avx2(dj_opd src, ptrdiff_t ld, int rows, int n, float *dst,
                              ptrdiff_t ldd)
{
    if (src.kind == DJ_OPD_BF16)
        decode_rows8(DEC_BF16, src, ld, rows, n, dst, ldd);
    else if (src.kind == DJ_OPD_U8 && src.form) {
        /* the nibble form for each row's whole runs of 32, the arithmetic
         * form for the rest (and for rows shorter than 32) */
        const int n32 = src.form->nib ? n / 32 * 32 : 0;
        if (n32) {
            const nib_tables t = nib_tables_of(src.form);
            for (int r = 0; r < rows; r++)
                for (int i = 0; i < n32; i += 32) {
                    __m256 o[4];
                    decode32_nib((const uint8_t *)src.p + r * ld + i, &t, o);
                    for (int q = 0; q < 4; q++)
                        _mm256_storeu_ps(dst + r * ldd + i + q * 8, o[q]);
                }
        }
        if (n32 < n)
            decode_rows8(DEC_FORM, dj__opd_at(src, n32), ld, rows, n - n32, dst + n32, ldd);
    }
    else if (src.kind == DJ_OPD_U8)
        decode_rows8(DEC_GATHER, src, ld, rows, n, dst, ldd);
    else
        dj__opd_decode_rows_generic(src, ld, rows, n, dst, ldd);
}

void dj__opd_decode_avx2(dj_opd src, int n, float *dst)
{
    dj__opd_decode_rows_avx2(src, 0, 1, n, dst, 0);
}

/* ---- the dot-product kernel for few rows times a transposed B ----
 *
 * C (m x [c0, c1)) = alpha * A * B^T + beta * C, m <= DJ_DOT_MAX_M, A m
 * contiguous float rows of k, lda apart, B row `col` (k contiguous
 * elements of B's kind) at col * ldb. Each element of C is a dot product
 * over k: its groups of 8 (the last one partial, zero-padded) go to nch
 * chains of 8 lanes, group g to chain g mod nch: lane l of a chain sums by
 * FMA, in k order, the terms at offset l of its groups, over all of k. The
 * chains are then added lane by lane (as (0 + 1) + (2 + 3) for four) and
 * the lanes in a fixed order. nch is 4 at m = 1 and 2 at m = 2, so that a
 * row's FMAs do not wait on each other's latency, and 1 for more rows,
 * whose FMAs interleave (more chains would not fit the 16 registers). A
 * column's B is decoded in registers once, 32 elements at a time
 * (nibble-form codes 32 in one go, others 8 by 8), and used for all m
 * rows. The order depends on k and m only, and every decoder gives exact
 * values, so every kind of B gives the bits of float32 B holding the
 * decoded values, on any thread count (the columns are split, never k).
 *
 * Three loop orders, the same sums: 8-bit B at m <= 4 goes one column at a
 * time over all of k, B read as one stream (prefetched DOT_PF bytes ahead
 * of the read), A's m x k floats re-read from cache for each column; else 8
 * columns share each DOT_KB block of A (held in L1), their chains kept in
 * memory from one k block to the next. And CFloat8 B with A scaled for the
 * table's scaled form (gemm.c decides) goes two columns at a time over all
 * of k, rows 0-3 and then rows 4-7, each decoded B vector used by up to 4
 * rows and each A vector by both columns (measured against the nibble-form
 * loops in PERFORMANCE.md). The other two were each measured fastest for
 * their kinds (scratch program alternating them in one process, 2 threads, 4096 x
 * 4096 B): one column at a time gave CFloat8 +10-15% at m <= 4 (before the
 * chains ran over all of k, when each k block ended in a horizontal sum;
 * summing once per column then gave it 20-28% more), float32 and bf16
 * -10-15%. */

#define DOT_KB 256  /* A block: m x 256 floats, 8 KiB at m = 8 (L1) */
#define DOT_NB 8    /* columns per pass over k: 8 rows of B streamed at a time */
#define DOT_AHEAD 2 /* B rows prefetched ahead of the one being read (8 columns) */
#define DOT_PF 1024 /* bytes of B prefetched ahead of the read (one column) */

/* B's kinds: float32, bf16, codes gathered from the table, by the table's
 * arithmetic form, by its nibble form, by its scaled form (A scaled) for
 * mbits 3 and 2. */
enum { BK_F32, BK_BF16, BK_U8, BK_U8F, BK_U8N, BK_U8S3, BK_U8S2 };

/* All ones in the first n of 8 lanes, zeros after. */
static inline __attribute__((always_inline)) __m256i lanes_below(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* 8 codes by the scaled form of mbits 2 or 3 (CFloat8 1-5-2, 1-4-3) with
 * CFloat denormals (sc_den = 1 << 23), without its factor 2^sc_exp:
 * sign-extended (so that bit 31 is the sign after the shift), shifted,
 * masked, and the exponent raised by one where it is not 0. The constants
 * are compile-time ones, which the compiler may read from memory rather
 * than hold in registers that the accumulators need. */
static inline __attribute__((always_inline)) __m256 decode8_sc(const uint8_t *s, const int mbits)
{
    const int32_t fields = 0x7f << (23 - mbits);
    const __m256i x = _mm256_slli_epi32(
        _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)s)), 23 - mbits);
    const __m256i y = _mm256_and_si256(x, _mm256_set1_epi32((int32_t)0x80000000u | fields));
    const __m256i e = _mm256_and_si256(y, _mm256_set1_epi32(fields & 0x7f800000));
    const __m256i bump = _mm256_min_epu32(e, _mm256_set1_epi32(1 << 23)); /* 2^23 or 0 */
    return _mm256_castsi256_ps(_mm256_add_epi32(y, bump));
}

/* 8 elements of B at element offset p (n <= 8 valid; lanes past n zero:
 * a partial vector is copied out zero-padded, decoded, and masked, since
 * the table's code 0 may not be 0). The nibble form's 8 at a time are the
 * arithmetic form's. */
static inline __attribute__((always_inline)) __m256 dot_load_b(const int kind, dj_opd b,
                                                               const dj_lut8_form *f,
                                                               const void *row, int p, int n)
{
    const size_t esz = kind == BK_F32 ? 4 : kind == BK_BF16 ? 2 : 1;
    const char *at = (const char *)row + (size_t)p * esz;
    if (n == 8) {
        switch (kind) {
        case BK_F32: return _mm256_loadu_ps((const float *)at);
        case BK_BF16: return decode8_bf16((const uint16_t *)at);
        case BK_U8: return decode8_gather((const uint8_t *)at, b.lut);
        case BK_U8S3: return decode8_sc((const uint8_t *)at, 3);
        case BK_U8S2: return decode8_sc((const uint8_t *)at, 2);
        default: return decode8_form((const uint8_t *)at, b.lut, f);
        }
    }
    const __m256i mask = lanes_below(n);
    if (kind == BK_F32)
        return _mm256_maskload_ps((const float *)at, mask);
    _Alignas(32) uint8_t tmp[16] = {0};
    memcpy(tmp, at, (size_t)n * esz);
    return _mm256_and_ps(dot_load_b(kind, b, f, tmp, 0, 8), _mm256_castsi256_ps(mask));
}

static inline __attribute__((always_inline)) float dot_hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* The M rows' chains (A's block at a, rows lda apart) over a block of kc
 * elements of B at row: group g of the block into acc[g mod nch], 4
 * groups a round (32 nibble-form codes decoded together). kc is a multiple
 * of 32 but for the last block of k, so chain g mod nch is the same counted
 * in the block or in all of k. pf: 8-bit B prefetched from there on, or
 * NULL. */
static inline __attribute__((always_inline)) void dot_pass(const int M, const int kind,
                                                           const int nch, dj_opd B,
                                                           const dj_lut8_form *f,
                                                           const nib_tables *nt, const void *row,
                                                           const float *a, ptrdiff_t lda, int kc,
                                                           __m256 acc[4][DJ_DOT_MAX_M],
                                                           const char *pf)
{
    int p = 0;
    for (; p + 32 <= kc; p += 32) {
        __m256 w[4];
        if (pf) /* B's bytes from pf on: one line a round (8-bit B) */
            _mm_prefetch(pf + p, _MM_HINT_T0);
        if (kind == BK_U8N) {
            decode32_nib((const uint8_t *)row + p, nt, w);
        } else {
            for (int g = 0; g < 4; g++)
                w[g] = dot_load_b(kind, B, f, row, p + 8 * g, 8);
        }
        for (int g = 0; g < 4; g++)
            for (int i = 0; i < M; i++)
                acc[g % nch][i] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i * lda + p + 8 * g), w[g],
                                                  acc[g % nch][i]);
    }
    for (int g = 0; g < 4; g++) { /* the last, partial round */
        const int q = p + 8 * g, n = kc - q < 8 ? kc - q : 8;
        if (n <= 0)
            break;
        const __m256 w = dot_load_b(kind, B, f, row, q, n);
        const __m256i mask = lanes_below(n);
        for (int i = 0; i < M; i++)
            acc[g % nch][i] =
                _mm256_fmadd_ps(_mm256_maskload_ps(a + i * lda + q, mask), w, acc[g % nch][i]);
    }
}

/* Where the B row read DOT_AHEAD rows after the one at (col, k0) starts,
 * or NULL past the last: the rows go column by column within a k block,
 * the k blocks in order, then the next block of columns. */
static inline __attribute__((always_inline)) const char *dot_row_ahead(dj_opd B, size_t esz,
                                                                       ptrdiff_t ldb, int K,
                                                                       int cb, int ce, int c1,
                                                                       int col, int k0,
                                                                       size_t *nbytes)
{
    for (int d = 0; d < DOT_AHEAD; d++) {
        if (++col < ce)
            continue;
        if (k0 + DOT_KB < K) {
            col = cb;
            k0 += DOT_KB;
        } else {
            cb = col = ce;
            ce = c1 - cb < DOT_NB ? c1 : cb + DOT_NB;
            k0 = 0;
            if (cb >= c1)
                return NULL;
        }
    }
    *nbytes = (size_t)(K - k0 < DOT_KB ? K - k0 : DOT_KB) * esz;
    return (const char *)B.p + ((size_t)col * (size_t)ldb + (size_t)k0) * esz;
}

/* C's column col from the M rows' chains: chains added, lanes summed. */
static inline __attribute__((always_inline)) void dot_finish(const int M, const int nch,
                                                             __m256 acc[4][DJ_DOT_MAX_M],
                                                             float alpha, float beta, float *C,
                                                             ptrdiff_t ldc, int col)
{
    for (int i = 0; i < M; i++) {
        const __m256 t = nch == 1   ? acc[0][i]
                         : nch == 2 ? _mm256_add_ps(acc[0][i], acc[1][i])
                                    : _mm256_add_ps(_mm256_add_ps(acc[0][i], acc[1][i]),
                                                    _mm256_add_ps(acc[2][i], acc[3][i]));
        const float s = dot_hsum(t);
        float *c = C + (ptrdiff_t)i * ldc + col;
        *c = beta == 0.0f ? alpha * s : alpha * s + beta * *c;
    }
}

/* R <= 4 rows of A (at a, lda apart; scaled by 2^sc_exp) times two columns
 * of 8-bit B (rows b0, b1 by the scaled form) over all of k: group g of
 * each dot product into acc[column][g mod nch][row], the same chains as
 * dot_pass, each A vector feeding both columns. pf: B's rows
 * are prefetched pf bytes ahead of the read (0: not). */
static inline __attribute__((always_inline)) void dot_tile2(const int R, const int nch,
                                                            const int kind, dj_opd B,
                                                            const uint8_t *b0,
                                                            const uint8_t *b1, ptrdiff_t pf,
                                                            const float *a, ptrdiff_t lda, int K,
                                                            __m256 acc[2][4][DJ_DOT_MAX_M])
{
    for (int c = 0; c < nch; c++)
        for (int i = 0; i < R; i++)
            acc[0][c][i] = acc[1][c][i] = _mm256_setzero_ps();
    int p = 0;
    for (; p + 32 <= K; p += 32) {
        if (pf) {
            _mm_prefetch((const char *)b0 + p + pf, _MM_HINT_T0);
            _mm_prefetch((const char *)b1 + p + pf, _MM_HINT_T0);
        }
        for (int g = 0; g < 4; g++) {
            const __m256 w0 = dot_load_b(kind, B, NULL, b0, p + 8 * g, 8);
            const __m256 w1 = dot_load_b(kind, B, NULL, b1, p + 8 * g, 8);
            for (int i = 0; i < R; i++) {
                const __m256 av = _mm256_loadu_ps(a + i * lda + p + 8 * g);
                acc[0][g % nch][i] = _mm256_fmadd_ps(av, w0, acc[0][g % nch][i]);
                acc[1][g % nch][i] = _mm256_fmadd_ps(av, w1, acc[1][g % nch][i]);
            }
        }
    }
    for (int g = 0; g < 4; g++) { /* the last, partial round */
        const int q = p + 8 * g, n = K - q < 8 ? K - q : 8;
        if (n <= 0)
            break;
        const __m256 w0 = dot_load_b(kind, B, NULL, b0, q, n);
        const __m256 w1 = dot_load_b(kind, B, NULL, b1, q, n);
        const __m256i mask = lanes_below(n);
        for (int i = 0; i < R; i++) {
            const __m256 av = _mm256_maskload_ps(a + i * lda + q, mask);
            acc[0][g % nch][i] = _mm256_fmadd_ps(av, w0, acc[0][g % nch][i]);
            acc[1][g % nch][i] = _mm256_fmadd_ps(av, w1, acc[1][g % nch][i]);
        }
    }
}

/* The scaled form's loop: two columns at a time (the last one of an odd
 * count paired with itself), rows 0-3 then 4 on; the next pair's B rows
 * prefetched at the offset being read. */
static inline __attribute__((always_inline)) void dot_body_sc(const int M, const int kind, int K,
                                                              const float *A, ptrdiff_t lda,
                                                              dj_opd B, ptrdiff_t ldb, int c0,
                                                              int c1, float alpha, float beta,
                                                              float *C, ptrdiff_t ldc)
{
    const int nch = M == 1 ? 4 : M == 2 ? 2 : 1; /* dot_body's chains */
    __m256 acc[2][4][DJ_DOT_MAX_M];
    for (int col = c0; col < c1; col += 2) {
        const uint8_t *b0 = (const uint8_t *)B.p + (size_t)col * (size_t)ldb;
        const uint8_t *b1 = col + 1 < c1 ? b0 + ldb : b0;
        /* rows 0-3, then 4 on (B's two rows again, from L1) */
        for (int r0 = 0; r0 < M; r0 += 4) {
            dot_tile2(M - r0 < 4 ? M - r0 : 4, nch, kind, B, b0, b1, r0 ? 0 : 2 * ldb,
                      A + r0 * lda, lda, K, acc);
            for (int j = 0; j < 2 && col + j < c1; j++)
                dot_finish(M - r0 < 4 ? M - r0 : 4, nch, acc[j], alpha, beta, C + r0 * ldc, ldc,
                           col + j);
        }
    }
}

static inline __attribute__((always_inline)) void dot_body(const int M, const int kind, int K,
                                                           const float *A, ptrdiff_t lda, dj_opd B,
                                                           ptrdiff_t ldb, int c0, int c1,
                                                           float alpha, float beta, float *C,
                                                           ptrdiff_t ldc)
{
    if (kind >= BK_U8S3) {
        dot_body_sc(M, kind, K, A, lda, B, ldb, c0, c1, alpha, beta, C, ldc);
        return;
    }
    const size_t esz = kind == BK_F32 ? 4 : kind == BK_BF16 ? 2 : 1;
    const dj_lut8_form f = kind >= BK_U8F ? *B.form : (dj_lut8_form){0};
    const nib_tables nt = kind == BK_U8N ? nib_tables_of(&f) : (nib_tables){0};
    /* chains per row: enough that a row's FMAs do not wait on each other's
     * latency (4 at m = 1, 2 at m = 2: more would spill registers); 1 for
     * more rows, whose FMAs interleave */
    const int nch = M == 1 ? 4 : M == 2 ? 2 : 1;
    __m256 acc[4][DJ_DOT_MAX_M];
    if (kind >= BK_U8 && M <= 4) { /* one column at a time, all of k */
        for (int col = c0; col < c1; col++) {
            const char *row = (const char *)B.p + (size_t)col * (size_t)ldb;
            for (int c = 0; c < nch; c++)
                for (int i = 0; i < M; i++)
                    acc[c][i] = _mm256_setzero_ps();
            dot_pass(M, kind, nch, B, &f, &nt, row, A, lda, K, acc, row + DOT_PF);
            dot_finish(M, nch, acc, alpha, beta, C, ldc, col);
        }
        return;
    }
    __m256 keep[DOT_NB][4][DJ_DOT_MAX_M]; /* the chains between k blocks */
    for (int cb = c0; cb < c1; cb += DOT_NB) {
        const int ce = c1 - cb < DOT_NB ? c1 : cb + DOT_NB;
        for (int k0 = 0; k0 < K; k0 += DOT_KB) {
            const int kc = K - k0 < DOT_KB ? K - k0 : DOT_KB;
            for (int col = cb; col < ce; col++) {
                const void *row = (const char *)B.p + ((size_t)col * (size_t)ldb + (size_t)k0) * esz;
                /* a B row read soon, fetched while this one runs: rows are
                 * short runs of a few cache lines, which the hardware
                 * prefetcher does not see coming */
                size_t nbytes;
                const char *next =
                    dot_row_ahead(B, esz, ldb, K, cb, ce, c1, col, k0, &nbytes);
                if (next)
                    for (size_t q = 0; q < nbytes; q += 64)
                        _mm_prefetch(next + q, _MM_HINT_T0);
                for (int c = 0; c < nch; c++)
                    for (int i = 0; i < M; i++)
                        acc[c][i] = k0 == 0 ? _mm256_setzero_ps() : keep[col - cb][c][i];
                dot_pass(M, kind, nch, B, &f, &nt, row, A + k0, lda, kc, acc, NULL);
                if (k0 + DOT_KB < K) {
                    for (int c = 0; c < nch; c++)
                        for (int i = 0; i < M; i++)
                            keep[col - cb][c][i] = acc[c][i];
                } else {
                    dot_finish(M, nch, acc, alpha, beta, C, ldc, col);
                }
            }
        }
    }
}

#define DOT_CALL(m, k) dot_body(m, k, K, A, lda, B, ldb, c0, c1, alpha, beta, C, ldc)
#define DOT_M_CASE(m)                                                                              \
    case m:                                                                                        \
        switch (kind) {                                                                            \
        case BK_F32: DOT_CALL(m, BK_F32); return;                                                  \
        case BK_BF16: DOT_CALL(m, BK_BF16); return;                                                \
        case BK_U8: DOT_CALL(m, BK_U8); return;                                                    \
        case BK_U8F: DOT_CALL(m, BK_U8F); return;                                                  \
        case BK_U8N: DOT_CALL(m, BK_U8N); return;                                                  \
        case BK_U8S3: DOT_CALL(m, BK_U8S3); return;                                                \
        default: DOT_CALL(m, BK_U8S2); return;                                                     \
        }

void dj__sgemm_dot_nt_avx2(int M, int K, const float *A, ptrdiff_t lda, dj_opd B, ptrdiff_t ldb,
                           int a_scaled, int c0, int c1, float alpha, float beta, float *C,
                           ptrdiff_t ldc)
{
    const int kind = B.kind == DJ_OPD_F32    ? BK_F32
                     : B.kind == DJ_OPD_BF16 ? BK_BF16
                     : !B.form               ? BK_U8
                     : a_scaled              ? (B.form->mbits == 3 ? BK_U8S3 : BK_U8S2)
                     : B.form->nib           ? BK_U8N
                                             : BK_U8F;
    switch (M) {
        DOT_M_CASE(1)
        DOT_M_CASE(2)
        DOT_M_CASE(3)
        DOT_M_CASE(4)
        DOT_M_CASE(5)
        DOT_M_CASE(6)
        DOT_M_CASE(7)
        DOT_M_CASE(8)
    default: break;
    }
}

/* gemm.c - the float32 GEMM driver: packing, cache blocking, threading and
 * the choice of micro-kernel (generic, AVX2, AVX-512).
 *
 * BLIS's loop nest. For each block of NC columns of C, and each group of k
 * blocks (KC deep) whose packed B fits a fixed budget: (1) the threads pack
 * those B panels together (one pool run); (2) C's block is cut into a tm x tn
 * grid of rectangles aligned to the micro-tile, one per thread; each thread,
 * for each k block, packs MC x KC blocks of A into its own buffer (L2) and
 * runs the micro-kernel over its tiles, column panel outer (a KC x NR B panel
 * stays in L1) and row panel inner. The k blocks depend only on K, so every
 * element of C is summed in the same order whatever the thread count (see
 * gemm_internal.h). The packing buffers come from the caller (dj_sgemm_ws)
 * or from the heap on each call (dj_sgemm). Small products skip the threads
 * and the buffers: they pack one micro-panel at a time into stack buffers,
 * in the same order, with the same bits (also the fallback when the heap is
 * out of memory).
 *
 * C of few rows is different: B would be packed for a handful of FMAs per
 * element. With at most two row panels, B is streamed through L1 one KC x NR
 * panel at a time (same bits as above); with at most 8 rows and B
 * transposed (a small batch through a Linear layer), ISAs with a
 * dot-product kernel (AVX2, AVX-512) read B's rows in place and decode them
 * in registers, so an 8-bit B costs a quarter of float32's memory traffic.
 *
 * Operands of other kinds (dj_opd) take the same path: only the packing
 * routines see the kind, and they decode into the packed panels, so the
 * float32 entry points are these with float32 operands. */
#include <assert.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <xmmintrin.h>
#endif

#include "cfloat/cfloat_internal.h"
#include "kernels/gemm_internal.h"
#include "kernels/vec4.h"


/* ---- the kernel table ---- */

static const dj__sgemm_kernel k_generic = {DJ_ISA_GENERIC, 4, 8, 128, 256, 4096,
                                           dj__sgemm_ukr_generic, dj__sgemm_ukr_ofs_generic,
                                           dj__sgemm_ukr_arows_generic, NULL,
                                           dj__opd_decode_generic, dj__opd_decode_rows_generic, NULL};
#ifdef DOJO_X86
/* Zen 3: 32 KiB L1d holds a 256 x 16 B panel (16 KiB) with room to spare; a
 * 144 x 256 A block (144 KiB) sits in the 512 KiB L2. */
static const dj__sgemm_kernel k_avx2 = {DJ_ISA_AVX2, 6, 16, 144, 256, 4080, dj__sgemm_ukr_avx2,
                                        dj__sgemm_ukr_ofs_avx2, dj__sgemm_ukr_arows_avx2,
                                        dj__sgemm_pack_b_rows_avx2, dj__opd_decode_avx2,
                                        dj__opd_decode_rows_avx2, dj__sgemm_dot_nt_avx2};
/* A 192 x 32 B panel is 24 KiB, inside the 32-48 KiB L1d of AVX-512 cores.
 * The decoders and the few-row dot-product kernel are AVX2's (AVX-512 CPUs
 * have AVX2): what they save is memory traffic, not vector width. */
static const dj__sgemm_kernel k_avx512 = {DJ_ISA_AVX512, 6, 32, 144, 192, 4096,
                                          dj__sgemm_ukr_avx512, dj__sgemm_ukr_ofs_avx512,
                                          dj__sgemm_ukr_arows_avx512, NULL,
                                          dj__opd_decode_avx2, dj__opd_decode_rows_avx2,
                                          dj__sgemm_dot_nt_avx2};
#endif

const dj__sgemm_kernel *dj__sgemm_kernel_for(dj_isa isa)
{
    if (isa == DJ_ISA_AUTO)
        isa = dj_cpu_best_isa();
    if (!dj_cpu_supports(isa))
        return NULL;
    switch (isa) {
#ifdef DOJO_X86
    case DJ_ISA_AVX512: return &k_avx512;
    case DJ_ISA_AVX2: return &k_avx2;
#endif
    case DJ_ISA_GENERIC: return &k_generic;
    default: return NULL;
    }
}

/* ---- k blocks ---- */

int dj__sgemm_kblocks(const dj__sgemm_kernel *kd, int K)
{
    return K <= kd->kc ? 1 : (K + kd->kc - 1) / kd->kc;
}

void dj__sgemm_kblock(const dj__sgemm_kernel *kd, int K, int b, int *k0, int *kc)
{
    const int nb = dj__sgemm_kblocks(kd, K);
    const int lo = (int)((long long)K * b / nb), hi = (int)((long long)K * (b + 1) / nb);
    *k0 = lo;
    *kc = hi - lo;
}

/* ---- packing ---- */

/* Zero-fills lanes [from, L) of k rows of L floats. */
static void zero_lanes(float *dst, int L, int from, int k)
{
    if (from < L)
        for (int p = 0; p < k; p++)
            memset(dst + (size_t)p * L + from, 0, (size_t)(L - from) * sizeof(float));
}

/* Copies rows of a row-major matrix into panels of L lanes: for each of k
 * rows (stride ld), n values go to panels of L (panel stride ps, row stride
 * L). Reading a whole row at a time keeps the reads sequential. */
DJ_ALWAYS_INLINE void pack_rows(int L, const float *src, ptrdiff_t ld, int k, int n, float *dst,
                                size_t ps)
{
    const int full = n / L, rest = n - full * L;
    for (int p = 0; p < k; p++) {
        const float *s = src + p * ld;
        float *d = dst + (size_t)p * L;
        for (int q = 0; q < full; q++, s += L, d += ps)
            memcpy(d, s, (size_t)L * sizeof(float)); /* L constant: inline vector moves */
        if (rest) {
            memcpy(d, s, (size_t)rest * sizeof(float));
            memset(d + rest, 0, (size_t)(L - rest) * sizeof(float));
        }
    }
}

/* Transposes a block: source rows r < nr (rows[r], k contiguous floats
 * each) become lane r of k rows of L floats at dst; lanes past nr are zero.
 * 4 x 4 and 2 x 4 SSE transposes where they fit. */
DJ_ALWAYS_INLINE void pack_cols(int L, const float *const *rows, int nr, int k, float *dst)
{
    int r = 0;
#ifdef __SSE2__
    for (; r + 4 <= nr; r += 4) {
        const float *s0 = rows[r], *s1 = rows[r + 1], *s2 = rows[r + 2], *s3 = rows[r + 3];
        float *d = dst + r;
        int p = 0;
        for (; p + 4 <= k; p += 4, d += 4 * L) {
            __m128 x0 = _mm_loadu_ps(s0 + p), x1 = _mm_loadu_ps(s1 + p);
            __m128 x2 = _mm_loadu_ps(s2 + p), x3 = _mm_loadu_ps(s3 + p);
            _MM_TRANSPOSE4_PS(x0, x1, x2, x3);
            _mm_storeu_ps(d, x0);
            _mm_storeu_ps(d + L, x1);
            _mm_storeu_ps(d + 2 * L, x2);
            _mm_storeu_ps(d + 3 * L, x3);
        }
        for (; p < k; p++, d += L) {
            d[0] = s0[p];
            d[1] = s1[p];
            d[2] = s2[p];
            d[3] = s3[p];
        }
    }
    if (r + 2 <= nr) { /* two rows: 2 x 4 blocks as interleaved pairs */
        const float *s0 = rows[r], *s1 = rows[r + 1];
        float *d = dst + r;
        int p = 0;
        for (; p + 4 <= k; p += 4, d += 4 * L) {
            const __m128 x0 = _mm_loadu_ps(s0 + p), x1 = _mm_loadu_ps(s1 + p);
            const __m128 lo = _mm_unpacklo_ps(x0, x1), hi = _mm_unpackhi_ps(x0, x1);
            _mm_storel_pi((__m64 *)d, lo);
            _mm_storeh_pi((__m64 *)(d + L), lo);
            _mm_storel_pi((__m64 *)(d + 2 * L), hi);
            _mm_storeh_pi((__m64 *)(d + 3 * L), hi);
        }
        for (; p < k; p++, d += L) {
            d[0] = s0[p];
            d[1] = s1[p];
        }
        r += 2;
    }
#endif
    for (; r < nr; r++) {
        const float *s = rows[r];
        for (int p = 0; p < k; p++)
            dst[(size_t)p * L + r] = s[p];
    }
    zero_lanes(dst, L, nr, k);
}

/* pack_cols from a strided matrix: row r at src + r * ld. */
DJ_ALWAYS_INLINE void pack_cols_ld(int L, const float *src, ptrdiff_t ld, int nr, int k, float *dst)
{
    const float *rows[DJ_SGEMM_MAX_NR];
    for (int r = 0; r < nr; r++)
        rows[r] = src + r * ld;
    pack_cols(L, rows, nr, k, dst);
}

/* A panels from row-major A (k contiguous): a transpose per panel. */
DJ_ALWAYS_INLINE void pack_a_n(int MR, const float *A, ptrdiff_t lda, int m, int k, float *dst)
{
    for (int i0 = 0; i0 < m; i0 += MR, dst += (size_t)k * MR)
        pack_cols_ld(MR, A + i0 * lda, lda, m - i0 < MR ? m - i0 : MR, k, dst);
}

/* A panels from transposed A (i contiguous): rows of op(A)^T. */
DJ_ALWAYS_INLINE void pack_a_t(int MR, const float *A, ptrdiff_t lda, int m, int k, float *dst)
{
    pack_rows(MR, A, lda, k, m, dst, (size_t)k * MR);
}

/* B panels from row-major B (j contiguous). */
DJ_ALWAYS_INLINE void pack_b_n(int NR, const float *B, ptrdiff_t ldb, int k, int n, float *dst,
                               size_t ps)
{
    pack_rows(NR, B, ldb, k, n, dst, ps);
}

/* B panels from transposed B (k contiguous): a transpose per panel. */
DJ_ALWAYS_INLINE void pack_b_t(int NR, const float *B, ptrdiff_t ldb, int k, int n, float *dst,
                               size_t ps)
{
    for (int j0 = 0; j0 < n; j0 += NR, dst += ps)
        pack_cols_ld(NR, B + j0 * ldb, ldb, n - j0 < NR ? n - j0 : NR, k, dst);
}

void dj__sgemm_pack_a(const dj__sgemm_kernel *kd, int trans, const float *A, ptrdiff_t lda, int m,
                      int k, float *dst)
{
    switch (kd->mr * 2 + !!trans) {
    case 4 * 2: pack_a_n(4, A, lda, m, k, dst); break;
    case 4 * 2 + 1: pack_a_t(4, A, lda, m, k, dst); break;
    case 6 * 2: pack_a_n(6, A, lda, m, k, dst); break;
    case 6 * 2 + 1: pack_a_t(6, A, lda, m, k, dst); break;
    default:
        if (trans)
            pack_a_t(kd->mr, A, lda, m, k, dst);
        else
            pack_a_n(kd->mr, A, lda, m, k, dst);
    }
}

void dj__sgemm_pack_b(const dj__sgemm_kernel *kd, int trans, const float *B, ptrdiff_t ldb, int k,
                      int n, float *dst, size_t ps)
{
    if (trans && kd->pack_b_rows) {
        const float *rows[DJ_SGEMM_MAX_NR];
        for (int j0 = 0; j0 < n; j0 += kd->nr, dst += ps) {
            const int nr = n - j0 < kd->nr ? n - j0 : kd->nr;
            for (int r = 0; r < nr; r++)
                rows[r] = B + (j0 + r) * ldb;
            kd->pack_b_rows(rows, nr, k, dst);
        }
        return;
    }
    switch (kd->nr * 2 + !!trans) {
    case 8 * 2: pack_b_n(8, B, ldb, k, n, dst, ps); break;
    case 8 * 2 + 1: pack_b_t(8, B, ldb, k, n, dst, ps); break;
    case 16 * 2: pack_b_n(16, B, ldb, k, n, dst, ps); break;
    case 16 * 2 + 1: pack_b_t(16, B, ldb, k, n, dst, ps); break;
    case 32 * 2: pack_b_n(32, B, ldb, k, n, dst, ps); break;
    case 32 * 2 + 1: pack_b_t(32, B, ldb, k, n, dst, ps); break;
    default:
        if (trans)
            pack_b_t(kd->nr, B, ldb, k, n, dst, ps);
        else
            pack_b_n(kd->nr, B, ldb, k, n, dst, ps);
    }
}

void dj__sgemm_pack_b_rows(const dj__sgemm_kernel *kd, const float *const *rows, int nr, int k,
                           float *dst)
{
    if (kd->pack_b_rows) {
        kd->pack_b_rows(rows, nr, k, dst);
        return;
    }
    switch (kd->nr) {
    case 8: pack_cols(8, rows, nr, k, dst); break;
    case 16: pack_cols(16, rows, nr, k, dst); break;
    case 32: pack_cols(32, rows, nr, k, dst); break;
    default: pack_cols(kd->nr, rows, nr, k, dst);
    }
}

/* ---- packing operands of other kinds ----
 *
 * The same layouts as above from decoded values. Where the float32 routine
 * copies runs along the lanes (pack_rows), the runs are decoded straight
 * into the panels; where it transposes (pack_cols), each source row's next
 * QBLK values are decoded into a stack block and the float32 transpose
 * packs that block. Either way the panels get the float32 routine's bits. */

void dj__opd_decode_generic(dj_opd src, int n, float *dst)
{
    switch (src.kind) {
    case DJ_OPD_BF16: {
        const uint16_t *s = src.p;
        for (int i = 0; i < n; i++) {
            const uint32_t u = (uint32_t)s[i] << 16;
            memcpy(dst + i, &u, sizeof u);
        }
        break;
    }
    case DJ_OPD_U8: {
        const uint8_t *s = src.p;
        for (int i = 0; i < n; i++)
            memcpy(dst + i, src.lut + s[i], sizeof(float));
        break;
    }
    default: memcpy(dst, src.p, (size_t)n * sizeof(float));
    }
}

void dj__opd_decode_rows_generic(dj_opd src, ptrdiff_t ld, int rows, int n, float *dst,
                                 ptrdiff_t ldd)
{
    for (int r = 0; r < rows; r++)
        dj__opd_decode_generic(dj__opd_at(src, r * ld), n, dst + r * ldd);
}

/* lut[c]'s bits by the form f (kernels.h): what the vector decoders compute. */
static uint32_t form_bits(const dj_lut8_form *f, unsigned c)
{
    const uint32_t a = c & 0x7f, sign = (uint32_t)(c & 0x80) << 24;
    const uint32_t n = (a << (23 - f->mbits)) + (uint32_t)f->exp_add;
    if (a >> f->mbits)
        return sign | n;
    const uint32_t nd = n + (uint32_t)f->den_add;
    float v;
    memcpy(&v, &nd, sizeof v);
    v -= f->den_sub;
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return sign | u;
}

/* lut[c]'s bits by the nibble form of f (kernels.h). */
static uint32_t nib_bits(const dj_lut8_form *f, unsigned c)
{
    const unsigned h = c >> 4, l = c & 15;
    const unsigned hi = (unsigned)(f->ta[h] + (h & 7 ? f->tb[l] : f->t0h[l])) & 0xff;
    return (uint32_t)hi << 24 | (uint32_t)(h & 7 ? f->tl[l] : f->t0l[l]) << 16;
}

/* Sets f's nibble form from lut, or f->nib = 0 where lut has none: the
 * tables are read off codes 0x00..0x0f (t0h, t0l), 0x10..0x1f (tb, tl) and
 * h << 4 (ta), then checked against every entry. */
static void nib_form_of(const float *lut, dj_lut8_form *f)
{
    uint32_t b[256];
    memcpy(b, lut, sizeof b);
    f->nib = 0;
    for (int c = 0; c < 256; c++)
        if (b[c] & 0xffff)
            return;
    for (int i = 0; i < 16; i++) {
        f->ta[i] = (uint8_t)(b[i << 4] >> 24);
        f->t0l[i] = (uint8_t)(b[i] >> 16);
        f->tl[i] = (uint8_t)(b[0x10 | i] >> 16);
    }
    for (int l = 0; l < 16; l++) {
        f->t0h[l] = (uint8_t)((b[l] >> 24) - f->ta[0]);
        f->tb[l] = (uint8_t)((b[0x10 | l] >> 24) - f->ta[1]);
    }
    for (int c = 0; c < 256; c++)
        if (nib_bits(f, (unsigned)c) != b[c])
            return;
    f->nib = 1;
}

/* The scaled form's value of code c (kernels.h), before the factor 2^sc_exp. */
static float sc_value(const dj_lut8_form *f, unsigned c)
{
    const uint32_t n = (c & 0x7fu) << (23 - f->mbits), e = n & 0x7f800000u;
    const uint32_t den = (uint32_t)f->sc_den;
    return dj__bits_f32((uint32_t)(c & 0x80) << 24 | (n + (e < den ? e : den)));
}

/* Sets f->sc (and sc_exp, sc_den) where lut has the scaled form for f->mbits. */
static void sc_form_of(const float *lut, dj_lut8_form *f)
{
    f->sc = 0;
    if (!f->mbits)
        return;
    for (int den = 0; den < 2 && !f->sc; den++) {
        dj_lut8_form t = *f;
        t.sc_den = den ? 0 : 1 << 23;
        /* the exponent from the smallest normal code, then every code checked */
        const float first = lut[1 << t.mbits];
        if (!(first > 0.0f) || !isfinite(first))
            return;
        t.sc_exp = ilogbf(first) - ilogbf(sc_value(&t, 1u << t.mbits));
        int c = 0;
        while (c < 256 &&
               dj__f32_bits(ldexpf(sc_value(&t, (unsigned)c), t.sc_exp)) == dj__f32_bits(lut[c]))
            c++;
        if (c == 256) {
            t.sc = 1;
            *f = t;
        }
    }
}

int dj_lut8_form_of(const float *lut, dj_lut8_form *f)
{
    dj_lut8_form best = {0};
    for (int mb = 1; mb <= 6; mb++)
        for (int ieee = 0; ieee < 2; ieee++) {
            uint32_t first; /* the smallest normal code, a = 1 << mb, puts 1 << 23 in place */
            memcpy(&first, lut + (1 << mb), sizeof first);
            dj_lut8_form t = {.mbits = mb,
                              .exp_add = (int32_t)(first - (1u << 23)),
                              .den_add = ieee ? 1 << 23 : 0};
            const uint32_t sub = (uint32_t)t.exp_add + (uint32_t)t.den_add;
            memcpy(&t.den_sub, &sub, sizeof sub);
            int a = 0;
            for (; a < 0x80; a++) {
                uint32_t pos, neg;
                memcpy(&pos, lut + a, sizeof pos);
                memcpy(&neg, lut + (a | 0x80), sizeof neg);
                if (form_bits(&t, (unsigned)a) != pos || form_bits(&t, (unsigned)a | 0x80) != neg)
                    break;
            }
            t.special = a;
            /* Useful only if it covers the denormals and some normals. */
            if (a > (1 << mb) && a > best.special)
                best = t;
        }
    nib_form_of(lut, &best);
    sc_form_of(lut, &best);
    *f = best;
    return best.mbits != 0;
}

/* Values of each source row decoded at a time by the transposing packs. */
#define QBLK 64

/* pack_rows of a non-float32 operand: each row's n values decoded into
 * panels of L lanes (panel stride ps, row stride L), the rest zero. */
static void pack_rows_q(const dj__sgemm_kernel *kd, int L, dj_opd src, ptrdiff_t ld, int k, int n,
                        float *dst, size_t ps)
{
    for (int q = 0; q * L < n; q++, dst += ps) {
        const int w = n - q * L < L ? n - q * L : L;
        kd->decode_rows(dj__opd_at(src, (ptrdiff_t)q * L), ld, k, w, dst, L);
        if (w < L)
            for (int p = 0; p < k; p++)
                memset(dst + (size_t)p * L + w, 0, (size_t)(L - w) * sizeof(float));
    }
}

/* pack_cols with the float32 transpose for L lanes, L a compile-time
 * constant where it is one of the micro-tiles. */
static void pack_cols_any(int L, const float *const *rows, int nr, int k, float *dst)
{
    switch (L) {
    case 4: pack_cols(4, rows, nr, k, dst); break;
    case 6: pack_cols(6, rows, nr, k, dst); break;
    case 8: pack_cols(8, rows, nr, k, dst); break;
    case 16: pack_cols(16, rows, nr, k, dst); break;
    case 32: pack_cols(32, rows, nr, k, dst); break;
    default: pack_cols(L, rows, nr, k, dst);
    }
}

/* pack_cols of a non-float32 operand: source row r < nr (elements of
 * src's kind) at rows[r], or, with rows NULL, at element r * ld of src,
 * becomes lane r of k rows of L floats, QBLK values at a time through a
 * stack block. as_b: the B panel packer of kd (L = NR). */
static void pack_cols_q(const dj__sgemm_kernel *kd, int L, int as_b, dj_opd src, ptrdiff_t ld,
                        const void *const *rows, int nr, int k, float *dst)
{
    _Alignas(DJ_SGEMM_ALIGN) float blk[DJ_SGEMM_MAX_NR * QBLK];
    const float *brows[DJ_SGEMM_MAX_NR];
    assert(nr <= DJ_SGEMM_MAX_NR);
    for (int r = 0; r < nr; r++)
        brows[r] = blk + r * QBLK;
    for (int p0 = 0; p0 < k; p0 += QBLK) {
        const int kb = k - p0 < QBLK ? k - p0 : QBLK;
        if (!rows) {
            kd->decode_rows(dj__opd_at(src, p0), ld, nr, kb, blk, QBLK);
        } else {
            for (int r = 0; r < nr; r++) {
                dj_opd s = src;
                s.p = rows[r];
                kd->decode(dj__opd_at(s, p0), kb, blk + r * QBLK);
            }
        }
        if (as_b)
            dj__sgemm_pack_b_rows(kd, brows, nr, kb, dst + (size_t)p0 * L);
        else
            pack_cols_any(L, brows, nr, kb, dst + (size_t)p0 * L);
    }
}

void dj__gemm_pack_a_q(const dj__sgemm_kernel *kd, int trans, dj_opd A, ptrdiff_t lda, int m,
                       int k, float *dst)
{
    if (A.kind == DJ_OPD_F32) {
        dj__sgemm_pack_a(kd, trans, A.p, lda, m, k, dst);
        return;
    }
    const int MR = kd->mr;
    if (trans) {
        pack_rows_q(kd, MR, A, lda, k, m, dst, (size_t)k * MR);
        return;
    }
    for (int i0 = 0; i0 < m; i0 += MR, dst += (size_t)k * MR)
        pack_cols_q(kd, MR, 0, dj__opd_at(A, i0 * lda), lda, NULL, m - i0 < MR ? m - i0 : MR, k,
                    dst);
}

void dj__gemm_pack_b_q(const dj__sgemm_kernel *kd, int trans, dj_opd B, ptrdiff_t ldb, int k,
                       int n, float *dst, size_t ps)
{
    if (B.kind == DJ_OPD_F32) {
        dj__sgemm_pack_b(kd, trans, B.p, ldb, k, n, dst, ps);
        return;
    }
    const int NR = kd->nr;
    if (!trans) {
        pack_rows_q(kd, NR, B, ldb, k, n, dst, ps);
        return;
    }
    for (int j0 = 0; j0 < n; j0 += NR, dst += ps)
        pack_cols_q(kd, NR, 1, dj__opd_at(B, j0 * ldb), ldb, NULL, n - j0 < NR ? n - j0 : NR, k,
                    dst);
}

void dj__gemm_pack_b_rows_q(const dj__sgemm_kernel *kd, dj_opd like, const void *const *rows,
                            int nr, int k, float *dst)
{
    pack_cols_q(kd, kd->nr, 1, like, 0, rows, nr, k, dst);
}

/* ---- the macro-kernel ---- */

void dj__sgemm_macro(const dj__sgemm_kernel *kd, int m, int n, int k, const float *pa, size_t a_ps,
                     const float *pb, size_t b_ps, ptrdiff_t bs, float alpha, float beta, float *c,
                     ptrdiff_t ldc)
{
    const int MR = kd->mr, NR = kd->nr;
    const int nkb = dj__sgemm_kblocks(kd, k);
    for (int kb = 0; kb < nkb; kb++) {
        int k0, kc;
        dj__sgemm_kblock(kd, k, kb, &k0, &kc);
        const float be = kb == 0 ? beta : 1.0f;
        for (int j = 0, jp = 0; j < n; j += NR, jp++) {
            const float *b = pb + jp * b_ps + k0 * bs;
            const int nr = n - j < NR ? n - j : NR;
            for (int i = 0, ip = 0; i < m; i += MR, ip++) {
                const int mr = m - i < MR ? m - i : MR;
                kd->ukr(kc, pa + ip * a_ps + (size_t)k0 * MR, b, bs, c + i * ldc + j, ldc, mr, nr,
                        alpha, be);
            }
        }
    }
}

void dj__sgemm_macro_ofs(const dj__sgemm_kernel *kd, int m, int n, int k, const float *pa,
                         size_t a_ps, const float *pb, const int32_t *off, float alpha, float beta,
                         float *c, ptrdiff_t ldc)
{
    /* (Copying each B panel into an aligned buffer first was measured: the
     * micro-kernel gains what the copy costs.) */
    const int MR = kd->mr, NR = kd->nr;
    const int nkb = dj__sgemm_kblocks(kd, k);
    for (int kb = 0; kb < nkb; kb++) {
        int k0, kc;
        dj__sgemm_kblock(kd, k, kb, &k0, &kc);
        const float be = kb == 0 ? beta : 1.0f;
        for (int j = 0; j < n; j += NR) {
            const int nr = n - j < NR ? n - j : NR;
            for (int i = 0, ip = 0; i < m; i += MR, ip++) {
                const int mr = m - i < MR ? m - i : MR;
                kd->ukr_ofs(kc, pa + ip * a_ps + (size_t)k0 * MR, pb + j, off + k0,
                            c + i * ldc + j, ldc, mr, nr, alpha, be);
            }
        }
    }
}

/* ---- the driver ---- */

/* Packed B of one phase is at most this many floats (16 MiB). */
#define B_BUDGET ((size_t)4 << 20)
/* Below this many flops a product runs on one thread without the heap. */
#define SMALL_FLOPS (2.0 * 48 * 48 * 48)
/* Each thread gets at least this many flops. */
#define FLOPS_PER_THREAD 2e6

typedef struct {
    const dj__sgemm_kernel *kd;
    int ta, tb, M, N, K;
    float alpha, beta;
    dj_opd A, B;          /* any kind: decoded by the packing routines */
    ptrdiff_t lda, ldb, ldc;
    float *C;
    /* the current phase */
    int jc, ncur;         /* columns of C */
    int kb0, kb1;         /* k blocks */
    int tm, tn, ntasks;   /* the grid of C rectangles */
    float *bpack;         /* (kb1 - kb0) regions of pn panels */
    size_t b_ps, region;  /* panel stride (kcmax * NR), region stride */
    float *apack;         /* ntasks buffers of a_size floats */
    size_t a_size;
    int dot_sc;           /* dot path: apack holds A * 2^B.form->sc_exp */
} sgemm_job;

/* Products with at most this many row panels of C take the streaming path
 * (a variable only so that the tests can compare both paths). */
int dj__sgemm_stream_panels = 2;
_Atomic long dj__sgemm_stream_calls;
/* Whether ISAs with a dot-product kernel use it (tests switch it off). */
int dj__sgemm_dot_on = 1;
_Atomic long dj__sgemm_dot_calls, dj__sgemm_dot_sc_calls;

static int ceil_div(int a, int b)
{
    return (a + b - 1) / b;
}

static dj_opd a_at(const sgemm_job *j, int i, int p)
{
    return dj__opd_at(j->A, j->ta ? (ptrdiff_t)p * j->lda + i : (ptrdiff_t)i * j->lda + p);
}

static dj_opd b_at(const sgemm_job *j, int p, int col)
{
    return dj__opd_at(j->B, j->tb ? (ptrdiff_t)col * j->ldb + p : (ptrdiff_t)p * j->ldb + col);
}

/* Phase 1: task t packs its share of the B panels of every k block. */
static void pack_b_task(void *arg, int t)
{
    const sgemm_job *j = arg;
    const int NR = j->kd->nr, pn = ceil_div(j->ncur, NR);
    const int q0 = (int)((long long)pn * t / j->ntasks), q1 = (int)((long long)pn * (t + 1) / j->ntasks);
    if (q0 >= q1)
        return;
    const int c0 = q0 * NR, c1 = q1 * NR < j->ncur ? q1 * NR : j->ncur;
    for (int kb = j->kb0; kb < j->kb1; kb++) {
        int k0, kc;
        dj__sgemm_kblock(j->kd, j->K, kb, &k0, &kc);
        float *dst = j->bpack + (size_t)(kb - j->kb0) * j->region + (size_t)q0 * j->b_ps;
        dj__gemm_pack_b_q(j->kd, j->tb, b_at(j, k0, j->jc + c0), j->ldb, kc, c1 - c0, dst, j->b_ps);
    }
}

/* Phase 2: task t computes its rectangle of C for the phase's k blocks. */
static void compute_task(void *arg, int t)
{
    const sgemm_job *j = arg;
    const dj__sgemm_kernel *kd = j->kd;
    const int MR = kd->mr, NR = kd->nr;
    const int pm = ceil_div(j->M, MR), pn = ceil_div(j->ncur, NR);
    const int ti = t / j->tn, tj = t % j->tn;
    const int r0 = (int)((long long)pm * ti / j->tm) * MR;
    int r1 = (int)((long long)pm * (ti + 1) / j->tm) * MR;
    const int q0 = (int)((long long)pn * tj / j->tn), q1 = (int)((long long)pn * (tj + 1) / j->tn);
    if (r1 > j->M)
        r1 = j->M;
    const int c0 = q0 * NR, c1 = q1 * NR < j->ncur ? q1 * NR : j->ncur;
    if (r0 >= r1 || c0 >= c1)
        return;
    float *ap = j->apack + (size_t)t * j->a_size;
    for (int kb = j->kb0; kb < j->kb1; kb++) {
        int k0, kc;
        dj__sgemm_kblock(kd, j->K, kb, &k0, &kc);
        const float be = kb == 0 ? j->beta : 1.0f;
        const float *bp = j->bpack + (size_t)(kb - j->kb0) * j->region + (size_t)q0 * j->b_ps;
        for (int ic = r0; ic < r1; ic += kd->mc) {
            const int mc = r1 - ic < kd->mc ? r1 - ic : kd->mc;
            dj__gemm_pack_a_q(kd, j->ta, a_at(j, ic, k0), j->lda, mc, kc, ap);
            /* One k block: the macro-kernel does not split kc <= KC again. */
            dj__sgemm_macro(kd, mc, c1 - c0, kc, ap, (size_t)kc * MR, bp, j->b_ps, NR, j->alpha,
                            be, j->C + (ptrdiff_t)ic * j->ldc + j->jc + c0, j->ldc);
        }
    }
}

/* The streaming path, for C of few rows (M <= dj__sgemm_stream_panels * MR: a batch
 * of one to a dozen through a Linear layer), where the blocked path would
 * write all of B out packed and read it back for a handful of FMAs per
 * element: A is packed whole once (j->apack: for each k block, its row
 * panels), then task t walks its share of B's column panels; for each
 * panel and k block it packs one KC x NR B panel into a stack buffer (L1)
 * and runs the micro-kernel over the row panels at once. B is read from
 * memory once, in its own format (8-bit codes: a quarter of the bytes), and
 * never written. Same k blocks, same micro-kernel calls in the same k order
 * for every element of C: the same bits as the blocked path. */
static void stream_task(void *arg, int t)
{
    const sgemm_job *j = arg;
    const dj__sgemm_kernel *kd = j->kd;
    const int MR = kd->mr, NR = kd->nr, pn = ceil_div(j->N, NR);
    const int q0 = (int)((long long)pn * t / j->ntasks), q1 = (int)((long long)pn * (t + 1) / j->ntasks);
    _Alignas(DJ_SGEMM_ALIGN) float bpan[DJ_SGEMM_MAX_NR * 256];
    assert(kd->kc <= 256 && NR <= DJ_SGEMM_MAX_NR);
    const int nkb = dj__sgemm_kblocks(kd, j->K);
    for (int q = q0; q < q1; q++) {
        const int c = q * NR, nr = j->N - c < NR ? j->N - c : NR;
        const float *ap = j->apack;
        for (int kb = 0; kb < nkb; kb++) {
            int k0, kc;
            dj__sgemm_kblock(kd, j->K, kb, &k0, &kc);
            const float be = kb == 0 ? j->beta : 1.0f;
            dj__gemm_pack_b_q(kd, j->tb, b_at(j, k0, c), j->ldb, kc, nr, bpan, (size_t)kc * NR);
            for (int r = 0; r < j->M; r += MR, ap += (size_t)kc * MR)
                kd->ukr(kc, ap, bpan, NR, j->C + (ptrdiff_t)r * j->ldc + c, j->ldc,
                        j->M - r < MR ? j->M - r : MR, nr, j->alpha, be);
        }
    }
}

/* The dot-product path (kd->dot_nt): task t computes its share of C's
 * columns from A's rows decoded into j->apack (M rows, dj__dot_lda(K) apart). */
static void dot_task(void *arg, int t)
{
    const sgemm_job *j = arg;
    const int c0 = (int)((long long)j->N * t / j->ntasks);
    const int c1 = (int)((long long)j->N * (t + 1) / j->ntasks);
    if (c0 < c1)
        j->kd->dot_nt(j->M, j->K, j->apack, dj__dot_lda(j->K), j->B, j->ldb, j->dot_sc, c0, c1,
                      j->alpha, j->beta, j->C, j->ldc);
}

/* Row i of op(A), decoded, at j->apack + i * dj__dot_lda(K). */
static void dot_pack_a(const sgemm_job *j)
{
    for (int i = 0; i < j->M; i++) {
        float *dst = j->apack + (size_t)i * (size_t)dj__dot_lda(j->K);
        if (!j->ta) {
            j->kd->decode(a_at(j, i, 0), j->K, dst);
        } else {
            for (int p = 0; p < j->K; p++)
                dst[p] = dj__opd_get(j->A, (ptrdiff_t)p * j->lda + i);
        }
    }
}

/* Products of fewer columns keep A as it is: scaling it (then a check pass
 * and a scaling pass over M x K floats, now one pass) cost more than the
 * faster decoding saved (64 columns: M = 8 at 0.8x; from 128 on,
 * 1.0-1.5x; scratch program, 2 threads, K = 4096). */
#define DOT_SC_MIN_N 128

/* Where the dot kernel decodes B by its table's scaled form (kernels.h)
 * and every element of A (decoded in j->apack) times 2^sc_exp is exact,
 * multiplies them so and returns 1; else leaves A as dot_pack_a makes it
 * and returns 0. The kernel's products are then those of A and B's values,
 * to the bit. With 0 <= sc_exp < 128 (CFloat8 tables: 126 - bias) nothing
 * underflows and Inf and NaN stay what they are, so exact means no finite
 * |a| at or above 2^(128 - sc_exp). One pass scales and checks, 16
 * elements at a time (which the compiler vectorises); where the check
 * fails (rare: huge activations), A is packed again. */
/* *x times up; 1 where *x was finite with |x| >= the float of bits lim. */
static inline uint32_t scale_exact(float *x, float up, uint32_t lim, uint32_t span)
{
    const uint32_t big = (dj__f32_bits(*x) & 0x7fffffffu) - lim < span;
    *x *= up;
    return big;
}

static int dot_scale_a(const sgemm_job *j)
{
    if (j->B.kind != DJ_OPD_U8 || !dj__dot_sc_form(j->B.form) || j->N < DOT_SC_MIN_N)
        return 0;
    const int e = j->B.form->sc_exp;
    if (e < 0 || e > 127)
        return 0;
    const uint32_t lim = (uint32_t)(255 - e) << 23, span = 0x7f800000u - lim; /* 2^(128 - e) */
    const float up = ldexpf(1.0f, e);
    const ptrdiff_t lda = dj__dot_lda(j->K);
    const int K16 = j->K / 16 * 16;
    uint32_t bad = 0;
    for (int i = 0; i < j->M; i++) {
        float *a = j->apack + i * lda;
        for (int p = 0; p < K16; p += 16)
            for (int q = 0; q < 16; q++)
                bad |= scale_exact(a + p + q, up, lim, span);
        for (int p = K16; p < j->K; p++)
            bad |= scale_exact(a + p, up, lim, span);
    }
    if (bad)
        dot_pack_a(j);
    return !bad;
}

/* Packs all of A for the streaming path: k block by k block, its row panels. */
static void stream_pack_a(const sgemm_job *j)
{
    const dj__sgemm_kernel *kd = j->kd;
    const int nkb = dj__sgemm_kblocks(kd, j->K), rows = ceil_div(j->M, kd->mr) * kd->mr;
    float *ap = j->apack;
    for (int kb = 0; kb < nkb; kb++) {
        int k0, kc;
        dj__sgemm_kblock(kd, j->K, kb, &k0, &kc);
        dj__gemm_pack_a_q(kd, j->ta, a_at(j, 0, k0), j->lda, j->M, kc, ap);
        ap += (size_t)rows * kc;
    }
}

void dj__sgemm_grid(int pm, int pn, int T, int prefer_cols, int *tm, int *tn)
{
    long long best = -1;
    for (int i = 1; i <= T; i++) {
        const int a = prefer_cols ? i : T + 1 - i; /* candidates in order of preference */
        if (T % a)
            continue;
        const int b = T / a;
        const long long w = (long long)ceil_div(pm, a) * ceil_div(pn, b);
        if (best < 0 || w < best) {
            best = w;
            *tm = a;
            *tn = b;
        }
    }
}

static void scale_c(int M, int N, float beta, float *C, ptrdiff_t ldc)
{
    for (int i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (beta == 0.0f)
            memset(c, 0, (size_t)N * sizeof(float));
        else if (beta != 1.0f)
            for (int j = 0; j < N; j++)
                c[j] *= beta;
    }
}

/* Single thread, stack buffers: one B micro-panel and one A micro-panel at
 * a time. Same k blocks and micro-kernel calls, so the same bits. */
static void sgemm_small(const sgemm_job *j)
{
    const dj__sgemm_kernel *kd = j->kd;
    const int MR = kd->mr, NR = kd->nr;
    _Alignas(DJ_SGEMM_ALIGN) float apan[DJ_SGEMM_MAX_MR * 256];
    _Alignas(DJ_SGEMM_ALIGN) float bpan[DJ_SGEMM_MAX_NR * 256];
    assert(kd->kc <= 256 && MR <= DJ_SGEMM_MAX_MR && NR <= DJ_SGEMM_MAX_NR);
    const int nkb = dj__sgemm_kblocks(kd, j->K);
    for (int kb = 0; kb < nkb; kb++) {
        int k0, kc;
        dj__sgemm_kblock(kd, j->K, kb, &k0, &kc);
        const float be = kb == 0 ? j->beta : 1.0f;
        for (int c = 0; c < j->N; c += NR) {
            const int nr = j->N - c < NR ? j->N - c : NR;
            dj__gemm_pack_b_q(kd, j->tb, b_at(j, k0, c), j->ldb, kc, nr, bpan, (size_t)kc * NR);
            for (int r = 0; r < j->M; r += MR) {
                const int mr = j->M - r < MR ? j->M - r : MR;
                dj__gemm_pack_a_q(kd, j->ta, a_at(j, r, k0), j->lda, mr, kc, apan);
                kd->ukr(kc, apan, bpan, NR, j->C + (ptrdiff_t)r * j->ldc + c, j->ldc, mr, nr,
                        j->alpha, be);
            }
        }
    }
}

static void *aligned_floats(size_t n)
{
    size_t bytes = (n * sizeof(float) + DJ_SGEMM_ALIGN - 1) / DJ_SGEMM_ALIGN * DJ_SGEMM_ALIGN;
    return aligned_alloc(DJ_SGEMM_ALIGN, bytes ? bytes : DJ_SGEMM_ALIGN);
}

/* The buffers of one product: how the work is blocked and how much packed
 * B and A it keeps. */
typedef struct {
    int T;                /* threads used */
    int nc, nkb, kcmax, kb_group;
    size_t b_ps, region, a_size;
    size_t floats;        /* scratch in all, with room to align it */
} sgemm_layout;

/* Returns 0 for a product small enough for sgemm_small (no scratch). */
static int layout_of(const dj__sgemm_kernel *kd, int M, int N, int K, int nthreads,
                     sgemm_layout *l)
{
    const double flops = 2.0 * M * N * K;
    if (flops < SMALL_FLOPS)
        return 0;
    const int MR = kd->mr, NR = kd->nr;
    l->T = nthreads < 1 ? 1 : nthreads;
    if (l->T > flops / FLOPS_PER_THREAD)
        l->T = (int)(flops / FLOPS_PER_THREAD) > 1 ? (int)(flops / FLOPS_PER_THREAD) : 1;
    l->nc = ceil_div(N < kd->nc ? N : kd->nc, NR) * NR;
    l->nkb = dj__sgemm_kblocks(kd, K);
    l->kcmax = ceil_div(K, l->nkb);
    l->b_ps = (size_t)l->kcmax * NR;
    l->region = (size_t)l->nc * l->kcmax;
    l->kb_group = (int)(B_BUDGET / l->region);
    if (l->kb_group < 1)
        l->kb_group = 1;
    if (l->kb_group > l->nkb)
        l->kb_group = l->nkb;
    const int mc = M < kd->mc ? ceil_div(M, MR) * MR : kd->mc;
    l->a_size = ((size_t)mc * l->kcmax + 15) / 16 * 16; /* keeps each buffer 64-byte aligned */
    l->floats = l->region * l->kb_group + l->a_size * l->T + DJ_SGEMM_ALIGN / sizeof(float);
    /* The streaming path keeps all of packed A instead. */
    const size_t stream = (size_t)ceil_div(M, MR) * MR * (size_t)K + DJ_SGEMM_ALIGN / sizeof(float);
    if (M <= dj__sgemm_stream_panels * MR && stream > l->floats)
        l->floats = stream;
    /* The dot-product path keeps A's rows at their padded stride. */
    const size_t dot = (size_t)M * (size_t)dj__dot_lda(K) + DJ_SGEMM_ALIGN / sizeof(float);
    if (kd->dot_nt && M <= DJ_DOT_MAX_M && dot > l->floats)
        l->floats = dot;
    return 1;
}

size_t dj_sgemm_workspace(int M, int N, int K, int nthreads)
{
    size_t need = 0;
    if (M <= 0 || N <= 0 || K <= 0)
        return 0;
    for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++) {
        const dj__sgemm_kernel *kd = dj__sgemm_kernel_for((dj_isa)isa);
        sgemm_layout l;
        if (kd && layout_of(kd, M, N, K, nthreads, &l) && l.floats > need)
            need = l.floats;
    }
    return need;
}

size_t dj_gemm_q_workspace(int M, int N, int K, int nthreads)
{
    return dj_sgemm_workspace(M, N, K, nthreads); /* decoding needs no more */
}

void dj__gemm_q_isa(dj_isa isa, dj_pool *pool, int trans_a, int trans_b, int M, int N, int K,
                    float alpha, dj_opd A, int lda, dj_opd B, int ldb, float beta, float *C,
                    int ldc, float *ws)
{
    const dj__sgemm_kernel *kd = dj__sgemm_kernel_for(isa);
    assert(kd && "ISA not supported by this CPU");
    if (!kd || M <= 0 || N <= 0)
        return;
    if (K <= 0 || alpha == 0.0f) { /* A and B are not read */
        scale_c(M, N, beta, C, ldc);
        return;
    }
    sgemm_job j = {0};
    j.kd = kd;
    j.ta = trans_a;
    j.tb = trans_b;
    j.M = M;
    j.N = N;
    j.K = K;
    j.alpha = alpha;
    j.beta = beta;
    j.A = A;
    j.B = B;
    j.lda = lda;
    j.ldb = ldb;
    j.ldc = ldc;
    j.C = C;

    sgemm_layout l;
    if (!layout_of(kd, M, N, K, dj_pool_threads(pool), &l)) {
        sgemm_small(&j);
        return;
    }
    float *mem = NULL;
    if (!ws) {
        ws = mem = aligned_floats(l.floats);
        if (!mem) { /* no memory: the stack path gives the same bits */
            sgemm_small(&j);
            return;
        }
    }
    const uintptr_t u = (uintptr_t)ws;
    ws += ((DJ_SGEMM_ALIGN - u % DJ_SGEMM_ALIGN) % DJ_SGEMM_ALIGN) / sizeof(float);
    const int MR = kd->mr, NR = kd->nr, T = l.T;
    if (kd->dot_nt && trans_b && M <= DJ_DOT_MAX_M && dj__sgemm_dot_on) {
        atomic_fetch_add_explicit(&dj__sgemm_dot_calls, 1, memory_order_relaxed);
        j.apack = ws;
        dot_pack_a(&j);
        j.dot_sc = dot_scale_a(&j);
        if (j.dot_sc)
            atomic_fetch_add_explicit(&dj__sgemm_dot_sc_calls, 1, memory_order_relaxed);
        j.ntasks = T < ceil_div(N, 8) ? T : ceil_div(N, 8);
        dj_pool_run(j.ntasks > 1 ? pool : NULL, dot_task, &j, j.ntasks);
        free(mem);
        return;
    }
    if (M <= dj__sgemm_stream_panels * MR) {
        atomic_fetch_add_explicit(&dj__sgemm_stream_calls, 1, memory_order_relaxed);
        j.apack = ws;
        stream_pack_a(&j);
        j.ntasks = T < ceil_div(N, NR) ? T : ceil_div(N, NR);
        dj_pool_run(j.ntasks > 1 ? pool : NULL, stream_task, &j, j.ntasks);
        free(mem);
        return;
    }
    j.b_ps = l.b_ps;
    j.region = l.region;
    j.a_size = l.a_size;
    j.bpack = ws;
    j.apack = ws + l.region * l.kb_group;
    const int pm = ceil_div(M, MR);
    for (int jc = 0; jc < N; jc += l.nc) {
        j.jc = jc;
        j.ncur = N - jc < l.nc ? N - jc : l.nc;
        dj__sgemm_grid(pm, ceil_div(j.ncur, NR), T, 0, &j.tm, &j.tn);
        j.ntasks = j.tm * j.tn;
        for (int kb = 0; kb < l.nkb; kb += l.kb_group) {
            j.kb0 = kb;
            j.kb1 = kb + l.kb_group < l.nkb ? kb + l.kb_group : l.nkb;
            dj_pool_run(T > 1 ? pool : NULL, pack_b_task, &j, j.ntasks);
            dj_pool_run(T > 1 ? pool : NULL, compute_task, &j, j.ntasks);
        }
    }
    free(mem);
}

void dj__sgemm_isa(dj_isa isa, dj_pool *pool, int trans_a, int trans_b, int M, int N, int K,
                   float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                   float *C, int ldc, float *ws)
{
    dj__gemm_q_isa(isa, pool, trans_a, trans_b, M, N, K, alpha, dj_opd_f32(A), lda, dj_opd_f32(B),
                   ldb, beta, C, ldc, ws);
}

void dj_gemm_q(dj_pool *pool, int trans_a, int trans_b, int M, int N, int K, float alpha,
               dj_opd A, int lda, dj_opd B, int ldb, float beta, float *C, int ldc, float *ws)
{
    dj__gemm_q_isa(DJ_ISA_AUTO, pool, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C,
                   ldc, ws);
}

void dj_sgemm(dj_pool *pool, int trans_a, int trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    dj__sgemm_isa(DJ_ISA_AUTO, pool, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C,
                  ldc, NULL);
}

void dj_sgemm_ws(dj_pool *pool, int trans_a, int trans_b, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                 float *ws)
{
    dj__sgemm_isa(DJ_ISA_AUTO, pool, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C,
                  ldc, ws);
}

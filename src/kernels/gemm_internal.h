/* gemm_internal.h - the pieces of the float32 GEMM that the convolution
 * kernels and the tests share: the per-ISA micro-kernel table, the packing
 * routines, the macro-kernel over packed panels, and entry points that force
 * one instruction set (so that tests compare every path the CPU runs with
 * the reference).
 *
 * Packed formats (BLIS style). An "A panel" holds MR rows of op(A) for a run
 * of k: element (i, p) at a[p * MR + i]; rows past the matrix are zero. A "B
 * panel" holds NR columns of op(B): element (p, j) at b[p * bs + j], where
 * the row stride bs is NR for a packed panel, or the leading dimension of a
 * row-major matrix that the micro-kernel reads in place (the convolution's
 * im2col buffer). Panels of one operand follow each other at a fixed panel
 * stride.
 *
 * Summation order. Each element of C is the sum over k split into blocks by
 * dj__sgemm_kblock() (a function of K and the ISA only); within a block the
 * micro-kernel accumulates in k order in one register lane per element (FMA
 * on AVX2/AVX-512), and the blocks are added to C in order. So the bits of a
 * result never depend on the thread count, on how C is tiled among threads,
 * or on where the micro-kernel's operands come from (packed, in place).
 * One exception, by shape: C of at most DJ_DOT_MAX_M rows times a transposed
 * B takes the dot-product kernel on ISAs that have one (AVX2, AVX-512),
 * which sums in chains of 8 lanes over k and adds them (gemm_avx2.c); its
 * order depends on K and M only, never on threads or on the operands'
 * kinds.
 *
 * Operands of other kinds (dj_opd: bfloat16, 8-bit codes through a table)
 * are decoded by the packing routines straight into the same packed
 * layout (the _q routines below; their float32 case is the float32 routine
 * itself). Packing only moves values, so a packed panel of decoded values
 * holds exactly the bits the float32 routine writes from a float array of
 * them, and everything after packing is shared: the _q kernels are
 * bit-identical to the float32 ones on the decoded values. */
#ifndef DOJO_GEMM_INTERNAL_H
#define DOJO_GEMM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/cfloat.h"
#include "dojo/cpu.h"
#include "dojo/kernels.h"

/* The largest micro-tile of any ISA (for stack buffers). */
#define DJ_SGEMM_MAX_MR 8
#define DJ_SGEMM_MAX_NR 32
/* Alignment of packed buffers in bytes. */
#define DJ_SGEMM_ALIGN 64

/* C[i, j] = alpha * sum_{p < k} a[p * MR + i] * b[p * bs + j] + beta * C[i, j]
 * for i < m <= MR, j < n <= NR (C row-major with ldc). beta == 0: C is not
 * read. All MR x NR lanes of a and b must be readable; lanes past m, n are
 * computed and dropped. k may be 0. */
typedef void (*dj__sgemm_ukr_fn)(int k, const float *a, const float *b, ptrdiff_t bs, float *c,
                                 ptrdiff_t ldc, int m, int n, float alpha, float beta);

/* The same with B row p at b + off[p] (an offset table): the convolution's
 * implicit im2col, where row p is a shifted window of a padded image. */
typedef void (*dj__sgemm_ukr_ofs_fn)(int k, const float *a, const float *b, const int32_t *off,
                                     float *c, ptrdiff_t ldc, int m, int n, float alpha,
                                     float beta);

/* The same with packed B (row stride NR) and A row i read in place at
 * arows[i][0 .. k): the convolution's weight gradient, whose A rows are
 * windows of a padded image. All MR pointers must be readable for k floats
 * (rows past m may repeat row 0). */
typedef void (*dj__sgemm_ukr_arows_fn)(int k, const float *const *arows, const float *b, float *c,
                                       ptrdiff_t ldc, int m, int n, float alpha, float beta);

typedef struct {
    dj_isa isa;
    int mr, nr;     /* micro-tile */
    int mc, kc, nc; /* cache blocks: mc a multiple of mr, nc of nr; kc the largest k block */
    dj__sgemm_ukr_fn ukr;
    dj__sgemm_ukr_ofs_fn ukr_ofs;
    dj__sgemm_ukr_arows_fn ukr_arows;
    /* dj__sgemm_pack_b_rows for this ISA's NR, or NULL for the portable one */
    void (*pack_b_rows)(const float *const *rows, int nr, int k, float *dst);
    /* dst[i] = element i of src, i < n (any kind; see dj__opd_decode_generic) */
    void (*decode)(dj_opd src, int n, float *dst);
    /* the same for rows rows: dst[r * ldd + i] = element r * ld + i of src */
    void (*decode_rows)(dj_opd src, ptrdiff_t ld, int rows, int n, float *dst, ptrdiff_t ldd);
    /* C = A * B^T for M <= DJ_DOT_MAX_M rows by dot products (gemm_avx2.c),
     * or NULL: the ISA streams B through its micro-kernel instead. a_scaled:
     * A holds A * 2^sc_exp of B's table's scaled form (kernels.h), by which
     * B is then decoded */
    void (*dot_nt)(int M, int K, const float *A, ptrdiff_t lda, dj_opd B, ptrdiff_t ldb,
                   int a_scaled, int c0, int c1, float alpha, float beta, float *C,
                   ptrdiff_t ldc);
} dj__sgemm_kernel;

/* The most rows of C the dot-product kernel takes. */
#define DJ_DOT_MAX_M 8

/* Whether the dot-product kernel decodes B of table form f by the scaled
 * form (kernels.h): the CFloat8 layouts' mantissa widths with CFloat
 * denormals, each a kernel of its own with the shifts and masks built in. */
static inline int dj__dot_sc_form(const dj_lut8_form *f)
{
    return f && f->sc && f->sc_den == 1 << 23 && (f->mbits == 2 || f->mbits == 3);
}

/* The row stride (floats) of A as the dot-product path packs it: at least
 * K, and 256 more than a multiple of 1024, so that the rows' 1 KiB blocks
 * the kernel reads together fall in different L1 sets (at a multiple of
 * 4 KiB they would all compete for the same 8 ways). */
static inline ptrdiff_t dj__dot_lda(int K)
{
    return K <= 256 ? K : ((ptrdiff_t)K - 256 + 1023) / 1024 * 1024 + 256;
}

/* ---- operands (dj_opd) ---- */

/* Bytes per element of an operand kind. */
static inline size_t dj__opd_size(dj_opd_kind kind)
{
    return kind == DJ_OPD_F32 ? sizeof(float) : kind == DJ_OPD_BF16 ? sizeof(uint16_t) : 1;
}

/* The operand that starts at element i of o. */
static inline dj_opd dj__opd_at(dj_opd o, ptrdiff_t i)
{
    o.p = (const char *)o.p + i * (ptrdiff_t)dj__opd_size(o.kind);
    return o;
}

/* The value of element i of o (the contract in kernels.h). */
static inline float dj__opd_get(dj_opd o, ptrdiff_t i)
{
    switch (o.kind) {
    case DJ_OPD_BF16: return dj_bf16_to_f32(((const uint16_t *)o.p)[i]);
    case DJ_OPD_U8: return o.lut[((const uint8_t *)o.p)[i]];
    default: return ((const float *)o.p)[i];
    }
}

/* dst[i] = dj__opd_get(src, i) for i < n: scalar (reads the table), and
 * AVX2 (a 16-bit shift for bf16; for 8-bit codes the table's arithmetic form
 * where the operand carries one, else a gather from the table). The form is
 * checked against the table bit for bit when it is made, so both give the
 * table's bits. */
void dj__opd_decode_generic(dj_opd src, int n, float *dst);
void dj__opd_decode_rows_generic(dj_opd src, ptrdiff_t ld, int rows, int n, float *dst,
                                 ptrdiff_t ldd);
#ifdef DOJO_X86
void dj__opd_decode_avx2(dj_opd src, int n, float *dst);
void dj__opd_decode_rows_avx2(dj_opd src, ptrdiff_t ld, int rows, int n, float *dst,
                              ptrdiff_t ldd);
#endif

/* Products of at most this many row panels (M <= it * MR) stream B through
 * L1 instead of packing it (gemm.c; 2). Tests set 0 to compare the paths. */
extern int dj__sgemm_stream_panels;
/* Products that took the streaming path (for the tests). */
extern _Atomic long dj__sgemm_stream_calls;
/* Products of M <= DJ_DOT_MAX_M rows times a transposed B (a batch through a
 * Linear layer) take the ISA's dot-product kernel where it has one, before
 * the streaming path; 0 turns it off (tests). Its calls are counted. */
extern int dj__sgemm_dot_on;
extern _Atomic long dj__sgemm_dot_calls;
extern _Atomic long dj__sgemm_dot_sc_calls; /* of which with A scaled for B's scaled form */

/* The kernel table of an ISA (DJ_ISA_AUTO: the best this CPU runs); NULL if
 * the CPU cannot run it or it is not built in. */
const dj__sgemm_kernel *dj__sgemm_kernel_for(dj_isa isa);

void dj__sgemm_ukr_generic(int k, const float *a, const float *b, ptrdiff_t bs, float *c,
                           ptrdiff_t ldc, int m, int n, float alpha, float beta);
void dj__sgemm_ukr_ofs_generic(int k, const float *a, const float *b, const int32_t *off, float *c,
                               ptrdiff_t ldc, int m, int n, float alpha, float beta);
void dj__sgemm_ukr_arows_generic(int k, const float *const *arows, const float *b, float *c,
                                 ptrdiff_t ldc, int m, int n, float alpha, float beta);
#ifdef DOJO_X86
void dj__sgemm_ukr_avx2(int k, const float *a, const float *b, ptrdiff_t bs, float *c,
                        ptrdiff_t ldc, int m, int n, float alpha, float beta);
void dj__sgemm_ukr_ofs_avx2(int k, const float *a, const float *b, const int32_t *off, float *c,
                            ptrdiff_t ldc, int m, int n, float alpha, float beta);
void dj__sgemm_ukr_arows_avx2(int k, const float *const *arows, const float *b, float *c,
                              ptrdiff_t ldc, int m, int n, float alpha, float beta);
void dj__sgemm_pack_b_rows_avx2(const float *const *rows, int nr, int k, float *dst);
void dj__sgemm_dot_nt_avx2(int M, int K, const float *A, ptrdiff_t lda, dj_opd B, ptrdiff_t ldb,
                           int a_scaled, int c0, int c1, float alpha, float beta, float *C,
                           ptrdiff_t ldc);
void dj__sgemm_ukr_avx512(int k, const float *a, const float *b, ptrdiff_t bs, float *c,
                          ptrdiff_t ldc, int m, int n, float alpha, float beta);
void dj__sgemm_ukr_ofs_avx512(int k, const float *a, const float *b, const int32_t *off, float *c,
                              ptrdiff_t ldc, int m, int n, float alpha, float beta);
void dj__sgemm_ukr_arows_avx512(int k, const float *const *arows, const float *b, float *c,
                                ptrdiff_t ldc, int m, int n, float alpha, float beta);
#endif

/* The k blocks: K splits into dj__sgemm_kblocks() nearly equal blocks of at
 * most kd->kc; block b is [k0, k0 + kc). */
int dj__sgemm_kblocks(const dj__sgemm_kernel *kd, int K);
void dj__sgemm_kblock(const dj__sgemm_kernel *kd, int K, int b, int *k0, int *kc);

/* Packs the m x k block of op(A) whose top-left element is at A (op(A)(i, p)
 * = A[i * lda + p], or A[p * lda + i] if trans) into ceil(m / MR) A panels at
 * dst, panel stride k * MR. */
void dj__sgemm_pack_a(const dj__sgemm_kernel *kd, int trans, const float *A, ptrdiff_t lda, int m,
                      int k, float *dst);
/* Packs the k x n block of op(B) at B (op(B)(p, j) = B[p * ldb + j], or
 * B[j * ldb + p] if trans) into ceil(n / NR) B panels at dst, panel stride
 * ps (>= k * NR), row stride NR. */
void dj__sgemm_pack_b(const dj__sgemm_kernel *kd, int trans, const float *B, ptrdiff_t ldb, int k,
                      int n, float *dst, size_t ps);

/* Packs k rows of one B panel (row stride NR) from nr <= NR source columns:
 * column j of the panel is rows[j][0 .. k), lanes past nr are zero. */
void dj__sgemm_pack_b_rows(const dj__sgemm_kernel *kd, const float *const *rows, int nr, int k,
                           float *dst);

/* The packing routines for operands of any kind: dj__sgemm_pack_a,
 * dj__sgemm_pack_b and dj__sgemm_pack_b_rows on decoded values, with the
 * same packed bits (rows[] of pack_b_rows_q point at elements of the kind,
 * table and form of `like`, whose p is not read). */
void dj__gemm_pack_a_q(const dj__sgemm_kernel *kd, int trans, dj_opd A, ptrdiff_t lda, int m,
                       int k, float *dst);
void dj__gemm_pack_b_q(const dj__sgemm_kernel *kd, int trans, dj_opd B, ptrdiff_t ldb, int k,
                       int n, float *dst, size_t ps);
void dj__gemm_pack_b_rows_q(const dj__sgemm_kernel *kd, dj_opd like, const void *const *rows,
                            int nr, int k, float *dst);

/* C (m x n) = alpha * A * B + beta * C over A panels at pa (panel stride
 * a_ps) and B panels at pb (panel stride b_ps, row stride bs), k split into
 * the k blocks above (A panel rows advance by MR, B rows by bs). */
void dj__sgemm_macro(const dj__sgemm_kernel *kd, int m, int n, int k, const float *pa, size_t a_ps,
                     const float *pb, size_t b_ps, ptrdiff_t bs, float alpha, float beta, float *c,
                     ptrdiff_t ldc);

/* A tm x tn grid of C rectangles for T threads (tm * tn = T) over pm row
 * panels and pn column panels: the least work in the largest rectangle; ties
 * go to more row blocks, or to more column blocks if prefer_cols. */
void dj__sgemm_grid(int pm, int pn, int T, int prefer_cols, int *tm, int *tn);

/* The macro-kernel with B rows through an offset table: B panel jp's row p
 * is at pb + jp * NR + off[p] (pb + j + off[p] for column j). */
void dj__sgemm_macro_ofs(const dj__sgemm_kernel *kd, int m, int n, int k, const float *pa,
                         size_t a_ps, const float *pb, const int32_t *off, float alpha, float beta,
                         float *c, ptrdiff_t ldc);

/* dj_sgemm_ws on one ISA (DJ_ISA_AUTO: the best). The ISA must be
 * supported; ws may be NULL (then it allocates). */
void dj__sgemm_isa(dj_isa isa, dj_pool *pool, int trans_a, int trans_b, int M, int N, int K,
                   float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                   float *C, int ldc, float *ws);

/* dj_gemm_q on one ISA (DJ_ISA_AUTO: the best); dj__sgemm_isa is this with
 * float32 operands. */
void dj__gemm_q_isa(dj_isa isa, dj_pool *pool, int trans_a, int trans_b, int M, int N, int K,
                    float alpha, dj_opd A, int lda, dj_opd B, int ldb, float beta, float *C,
                    int ldc, float *ws);

/* The convolution kernels on one ISA; the workspace they need. The public
 * dj_conv2d_workspace() is the largest of these over every ISA the CPU runs,
 * so one workspace serves any of them. */
size_t dj__conv2d_workspace_isa(dj_isa isa, const dj_conv2d_dims *d, int nthreads);
void dj__conv2d_forward_isa(dj_isa isa, dj_pool *pool, const dj_conv2d_dims *d, const float *x,
                            const float *w, const float *bias, float *y, float *ws);
void dj__conv2d_backward_data_isa(dj_isa isa, dj_pool *pool, const dj_conv2d_dims *d,
                                  const float *dy, const float *w, float *dx, float *ws);
void dj__conv2d_backward_weight_isa(dj_isa isa, dj_pool *pool, const dj_conv2d_dims *d,
                                    const float *x, const float *dy, float *dw, float *dbias,
                                    float *ws);
/* The same with operands of any kind (the float32 ones above are these
 * with dj_opd_f32 operands). */
void dj__conv2d_forward_q_isa(dj_isa isa, dj_pool *pool, const dj_conv2d_dims *d, dj_opd x,
                              dj_opd w, const float *bias, float *y, float *ws);
void dj__conv2d_backward_data_q_isa(dj_isa isa, dj_pool *pool, const dj_conv2d_dims *d, dj_opd dy,
                                    dj_opd w, float *dx, float *ws);
void dj__conv2d_backward_weight_q_isa(dj_isa isa, dj_pool *pool, const dj_conv2d_dims *d, dj_opd x,
                                      dj_opd dy, float *dw, float *dbias, float *ws);

#endif

/* conv2d.c - fast 2-D convolution (forward and both backwards) as GEMMs on
 * the GEMM's micro-kernels and packing routines.
 *
 * With K = c * kh * kw "krows" (the weight's (c, ki, kj) order) and P = oh *
 * ow output positions, per image:
 *   forward          y[oc, P]   = W[oc, K] . col[K, P]               (+ bias)
 *   backward_data    dx         = col2im(W^T[K, oc] . dy[oc, P])
 *   backward_weight  dW[oc, K] += dy[oc, P] . col[K, P]^T   (over the batch)
 * where col is the im2col matrix of the image.
 *
 * Stride 1 never writes col: the image is copied once into a zero-padded
 * buffer and the micro-kernel reads col's rows as shifted windows of it
 * ("implicit GEMM", see below). backward_data is then the forward
 * convolution of the padded dy with the flipped weights, and
 * backward_weight reads its A rows in place. Other strides do the same for
 * forward and backward_weight on a copy split into phase planes (kernels of
 * one tap excepted); their backward_data, 1 x 1 kernels and huge K build
 * col in L2-sized chunks (im2col, col2im).
 *
 * 3x3 stride-1 convolutions with enough channels and outputs take the
 * Winograd F(4x4, 3x3) path instead (section at the end; winograd.h): about
 * 4x fewer multiplications, the same threading and determinism rules.
 *
 * Threads. forward and backward_data share out (image, chunk of output
 * rows) items; each output element is written by one thread. backward_weight
 * splits dW into a grid of rectangles, one per thread, and each thread sums
 * its rectangle over every image and k block in a fixed order; dbias is
 * summed by one thread per channel, images in order. The k blocks depend on
 * the shapes and the ISA only, so results are bit-identical for any thread
 * count.
 *
 * Nothing is allocated: every buffer lives in the caller's workspace, whose
 * size dj_conv2d_workspace() gives (the largest need of the three kernels on
 * every ISA the CPU runs).
 *
 * Operands of other kinds (dj_opd: bf16, 8-bit codes through a table) are
 * decoded where the float32 kernels copy them anyway: into the padded image
 * copy, the im2col chunks and the packed A/B panels (the GEMM's _q packing
 * routines). Everything after that is the float32 code, so the results are
 * bit-identical to it on the decoded values, in the same workspace. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "kernels/gemm_internal.h"
#include "kernels/vec4.h"
#include "kernels/winograd.h"

/* A chunk's buffers (per thread) aim at this many floats (192 KiB). */
#define CHUNK_FLOATS (48 * 1024)

static int ceil_div(int a, int b)
{
    return (a + b - 1) / b;
}

static int round_up(int a, int b)
{
    return ceil_div(a, b) * b;
}

static size_t round16(size_t n)
{
    return (n + 15) / 16 * 16;
}


/* dst[i] = src[i] + *b for i < n (dst may be src; no add where b is NULL),
 * then, if relu, ReLU as dj_relu_forward (negatives to +0; -0 and NaN
 * stay); four lanes at a time. */
static void finish_row(float *dst, const float *src, int n, const float *b, int relu)
{
    const float bv = b ? *b : 0.0f;
    const v4f vb = {bv, bv, bv, bv};
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        v4f v;
        memcpy(&v, src + i, sizeof v);
        if (b)
            v += vb;
        v = relu_in4(v, relu);
        memcpy(dst + i, &v, sizeof v);
    }
    for (; i < n; i++)
        dst[i] = relu_in(b ? src[i] + bv : src[i], relu);
}

dj_status dj_conv2d_dims_init(dj_conv2d_dims *d, int n, int c, int h, int w, int oc, int kh, int kw,
                              int stride_h, int stride_w, int pad_h, int pad_w)
{
    if (n < 1 || c < 1 || h < 1 || w < 1 || oc < 1 || kh < 1 || kw < 1 || stride_h < 1 ||
        stride_w < 1 || pad_h < 0 || pad_w < 0)
        return DJ_ERR_ARG;
    const long long hp = (long long)h + 2LL * pad_h, wp = (long long)w + 2LL * pad_w;
    if (hp < kh || wp < kw || hp > INT32_MAX || wp > INT32_MAX)
        return DJ_ERR_ARG;
    const long long oh = (hp - kh) / stride_h + 1, ow = (wp - kw) / stride_w + 1;
    if ((long long)c * kh * kw > INT32_MAX || oh * ow > INT32_MAX || (long long)h * w > INT32_MAX)
        return DJ_ERR_ARG;
    *d = (dj_conv2d_dims){n,        c,        h,     w,     oc,      kh,      kw,
                          stride_h, stride_w, pad_h, pad_w, (int)oh, (int)ow, 0};
    return DJ_OK;
}

/* ---- reading operands of any kind ---- */

/* dst[i] = element at + i of src, i < n. */
static inline void copy_run(const dj__sgemm_kernel *kd, dj_opd src, size_t at, int n, float *dst)
{
    if (src.kind == DJ_OPD_F32)
        memcpy(dst, (const float *)src.p + at, (size_t)n * sizeof(float));
    else
        kd->decode(dj__opd_at(src, (ptrdiff_t)at), n, dst);
}

/* ---- im2col / col2im over a range of krows and a run of P ---- */

/* dst[t] = src[2 t] for t < n, four at a time. Reads src[0 .. 2 n - 2]
 * only: the vector loop stops while a value is left for the scalar tail, so
 * it never loads the element after the last one it needs. */
static void gather2(float *dst, const float *src, int n)
{
    int t = 0;
    for (; t + 4 < n; t += 4) {
        v4f a, b;
        memcpy(&a, src + 2 * t, sizeof a);
        memcpy(&b, src + 2 * t + 4, sizeof b);
        const v4f e = EVEN4(a, b);
        memcpy(dst + t, &e, sizeof e);
    }
    for (; t < n; t++)
        dst[t] = src[2 * t];
}

/* dst[2 t] += src[t] for t < n, four at a time, touching dst[0 .. 2 n - 2]
 * only. The lanes in between get -0.0 added, which leaves every value (-0
 * and NaN included) as it was, so the bits are the scalar loop's. */
static void scatter_add2(float *dst, const float *src, int n)
{
    const v4f nz = {-0.0f, -0.0f, -0.0f, -0.0f};
    int t = 0;
    for (; t + 4 < n; t += 4) {
        v4f s, a, b;
        memcpy(&s, src + t, sizeof s);
        memcpy(&a, dst + 2 * t, sizeof a);
        memcpy(&b, dst + 2 * t + 4, sizeof b);
        a += ZIP_LO4(s, nz);
        b += ZIP_HI4(s, nz);
        memcpy(dst + 2 * t, &a, sizeof a);
        memcpy(dst + 2 * t + 4, &b, sizeof b);
    }
    for (; t < n; t++)
        dst[2 * t] += src[t];
}

/* For krow (ki, kj): the output columns ox in [*lo, *hi) whose input column
 * ox * sw - pw + kj is inside the image. */
static void valid_cols(const dj_conv2d_dims *d, int kj, int *lo, int *hi)
{
    const int first = d->pad_w - kj;                /* ox * sw >= first */
    const int last = d->w - 1 + d->pad_w - kj;      /* ox * sw <= last */
    int a = first > 0 ? (first + d->stride_w - 1) / d->stride_w : 0;
    int b = last < 0 ? 0 : last / d->stride_w + 1;
    if (b > d->ow)
        b = d->ow;
    if (a > b)
        a = b;
    *lo = a;
    *hi = b;
}

/* col[r - r0][q] = x(c, oy * sh - ph + ki, ox * sw - pw + kj) (0 in the
 * padding) for krows r in [r0, r1) and positions p0 + q, q < np, of one
 * image x; rows of col have stride ld. */
/* Planes of at most this many values of a non-float32 source with strides
 * other than 1 are decoded whole into a stack block (once per channel and
 * call), and gathered from there as float32. */
#define IM2COL_PLANE 4096

static void im2col(const dj__sgemm_kernel *kd, const dj_conv2d_dims *d, dj_opd x, int r0, int r1,
                   int p0, int np, float *col, ptrdiff_t ld)
{
    const int khw = d->kh * d->kw, ow = d->ow, sw = d->stride_w;
    const size_t hw = (size_t)d->h * d->w;
    _Alignas(64) float plane[IM2COL_PLANE];
    const int via_plane = x.kind != DJ_OPD_F32 && sw != 1 && hw <= IM2COL_PLANE;
    int decoded = -1; /* the channel in plane */
    for (int r = r0; r < r1; r++) {
        const int ch = r / khw, ki = r % khw / d->kw, kj = r % d->kw;
        size_t xc = (size_t)ch * hw; /* the channel's first element */
        dj_opd src = x;
        if (via_plane) {
            if (decoded != ch)
                kd->decode(dj__opd_at(x, (ptrdiff_t)xc), (int)hw, plane);
            decoded = ch;
            src = dj_opd_f32(plane);
            xc = 0;
        }
        float *dst = col + (r - r0) * ld;
        int lo, hi;
        valid_cols(d, kj, &lo, &hi);
        int oy = p0 / ow, ox = p0 % ow;
        for (int q = 0; q < np; oy++, ox = 0) {
            const int seg = ow - ox < np - q ? ow - ox : np - q;
            const int iy = oy * d->stride_h - d->pad_h + ki;
            float *o = dst + q; /* o[t - ox] for output column t in [ox, ox + seg) */
            if (iy < 0 || iy >= d->h) {
                memset(o, 0, (size_t)seg * sizeof(float));
            } else {
                const int a = lo > ox ? lo : ox;
                int b = hi < ox + seg ? hi : ox + seg;
                if (b < a)
                    b = a;
                const size_t xr = xc + (size_t)iy * d->w;
                const int ix0 = kj - d->pad_w; /* input column of t: t * sw + ix0 */
                for (int t = ox; t < a; t++)
                    o[t - ox] = 0.0f;
                if (sw == 1 && b > a) {
                    copy_run(kd, src, xr + (size_t)(a + ix0), b - a, o + (a - ox));
                } else if (src.kind == DJ_OPD_F32 && sw == 2) {
                    if (b > a)
                        gather2(o + (a - ox), (const float *)src.p + xr + 2 * a + ix0, b - a);
                } else if (src.kind == DJ_OPD_F32) {
                    const float *xf = (const float *)src.p + xr;
                    for (int t = a; t < b; t++)
                        o[t - ox] = xf[t * sw + ix0];
                } else {
                    const dj_opd xq = dj__opd_at(src, (ptrdiff_t)xr);
                    for (int t = a; t < b; t++)
                        o[t - ox] = dj__opd_get(xq, t * sw + ix0);
                }
                for (int t = b; t < ox + seg; t++)
                    o[t - ox] = 0.0f;
            }
            q += seg;
        }
    }
}

/* The adjoint of im2col: dx(c, iy, ix) += col[r - r0][q] over the same
 * ranges. dx is one image. */
static void col2im(const dj_conv2d_dims *d, const float *col, ptrdiff_t ld, int r0, int r1, int p0,
                   int np, float *dx)
{
    const int khw = d->kh * d->kw, ow = d->ow, sw = d->stride_w;
    for (int r = r0; r < r1; r++) {
        const int ch = r / khw, ki = r % khw / d->kw, kj = r % d->kw;
        float *xc = dx + (size_t)ch * d->h * d->w;
        const float *src = col + (r - r0) * ld;
        int lo, hi;
        valid_cols(d, kj, &lo, &hi);
        int oy = p0 / ow, ox = p0 % ow;
        for (int q = 0; q < np; oy++, ox = 0) {
            const int seg = ow - ox < np - q ? ow - ox : np - q;
            const int iy = oy * d->stride_h - d->pad_h + ki;
            if (iy >= 0 && iy < d->h) {
                const float *s = src + q; /* s[t - ox] for output column t */
                const int a = lo > ox ? lo : ox;
                const int b = hi < ox + seg ? hi : ox + seg;
                float *xr = xc + (size_t)iy * d->w;
                const int ix0 = kj - d->pad_w;
                if (sw == 1)
                    for (int t = a; t < b; t++)
                        xr[t + ix0] += s[t - ox];
                else if (sw == 2) {
                    if (b > a) /* (else the pointer may lie before the plane) */
                        scatter_add2(xr + 2 * a + ix0, s + (a - ox), b - a);
                } else
                    for (int t = a; t < b; t++)
                        xr[t * sw + ix0] += s[t - ox];
            }
            q += seg;
        }
    }
}

/* ---- the implicit GEMM of a stride-1 convolution ----
 *
 * For output (oy, ox) and krow (ci, ki, kj) a stride-1 convolution reads the
 * padded image at (ci, oy + ki, ox + kj). In a zero-padded copy with planes
 * of hp x wp that is xp[q + off[k]], q = oy * wp + ox, off[k] = (ci * hp +
 * ki) * wp + kj. With q as the GEMM's column index (oh rows of wp columns;
 * the last wp - ow columns of each row are not outputs and are dropped),
 * row k of any B panel is a contiguous run of xp, which the micro-kernel
 * reads in place through the offset table: no im2col buffer is written.
 * backward_data of a stride-1 convolution is itself one: of dy padded by
 * k - 1 - pad, with the weights' channels swapped and their taps flipped.
 *
 * With strides sh, sw the padded image is read at (ci, oy * sh + ki, ox *
 * sw + kj). The copy splits each padded plane into its phases: phase (a, b)
 * holds rows a, a + sh, ... and columns b, b + sw, ... as a plane of hq x wq
 * (ceil(hp / sh) x ceil(wp / sw)), for a < min(sh, kh), b < min(sw, kw)
 * (phases no tap reads are not kept). Then the read is at (ci, phase (ki %
 * sh, kj % sw), oy + ki / sh, ox + kj / sw): a stride-1 window again, off[k]
 * = ((ci, phase) plane * hq + ki / sh) * wq + kj / sw and q = oy * wq + ox. */

/* The largest K on the implicit path (its offset table lives on the stack). */
#define MAX_OFF 8192

typedef struct {
    int cin, h, w;    /* source planes */
    int top, left;    /* padding before the source (negative: cropped) */
    int hp, wp;       /* padded planes */
    int kh, kw, K;    /* K = cin * kh * kw */
    int cout, oh, ow; /* output planes: oh = (hp - kh) / sh + 1, likewise ow */
    int sh, sw;       /* stride */
    int ph, pw;       /* phases kept per channel: min(stride, kernel) per axis */
    int hq, wq;       /* a phase plane: ceil(hp / sh) x ceil(wp / sw) */
} igeom;

/* g with strides sh, sw and the phase fields they imply. */
static igeom with_stride(igeom g, int sh, int sw)
{
    g.sh = sh;
    g.sw = sw;
    g.ph = sh < g.kh ? sh : g.kh;
    g.pw = sw < g.kw ? sw : g.kw;
    g.hq = ceil_div(g.hp, sh);
    g.wq = ceil_div(g.wp, sw);
    return g;
}

static igeom geom_fwd(const dj_conv2d_dims *d)
{
    const igeom g = {.cin = d->c, .h = d->h, .w = d->w, .top = d->pad_h, .left = d->pad_w,
                     .hp = d->h + 2 * d->pad_h, .wp = d->w + 2 * d->pad_w, .kh = d->kh,
                     .kw = d->kw, .K = d->c * d->kh * d->kw, .cout = d->oc, .oh = d->oh,
                     .ow = d->ow};
    return with_stride(g, d->stride_h, d->stride_w);
}

static igeom geom_bwd_data(const dj_conv2d_dims *d)
{
    const igeom g = {.cin = d->oc, .h = d->oh, .w = d->ow, .top = d->kh - 1 - d->pad_h,
                     .left = d->kw - 1 - d->pad_w, .hp = d->h + d->kh - 1, .wp = d->w + d->kw - 1,
                     .kh = d->kh, .kw = d->kw, .K = d->oc * d->kh * d->kw, .cout = d->c,
                     .oh = d->h, .ow = d->w};
    return with_stride(g, 1, 1);
}

/* Floats of the padded copy's planes (every phase of every channel). */
static long long xp_used(const igeom *g)
{
    return (long long)g->cin * g->ph * g->pw * g->hq * g->wq;
}

static int implicit_ok(const igeom *g)
{
    return g->K <= MAX_OFF && xp_used(g) + 4096 < INT32_MAX;
}

/* Floats of a padded copy, with the slack the last panels read past it. */
static size_t xp_floats(const igeom *g, int NR)
{
    return round16((size_t)xp_used(g) + (size_t)NR + (size_t)g->kw + 16);
}

static void make_offsets(const igeom *g, int32_t *off)
{
    int k = 0;
    for (int ci = 0; ci < g->cin; ci++)
        for (int ki = 0; ki < g->kh; ki++)
            for (int kj = 0; kj < g->kw; kj++) {
                const long long phase = ((long long)ci * g->ph + ki % g->sh) * g->pw + kj % g->sw;
                off[k++] = (int32_t)((phase * g->hq + ki / g->sh) * g->wq + kj / g->sw);
            }
}

/* n floats from s to d (not overlapping) / n zeros at d, inline: the rows
 * of padded planes are a few dozen floats, where a libc call costs more
 * than the copy. */
DJ_ALWAYS_INLINE void copy_row(float *d, const float *s, int n)
{
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        v4f v;
        memcpy(&v, s + i, sizeof v);
        memcpy(d + i, &v, sizeof v);
    }
    if (i < n && n >= 4) { /* the last four again, overlapping */
        v4f v;
        memcpy(&v, s + n - 4, sizeof v);
        memcpy(d + n - 4, &v, sizeof v);
        return;
    }
    for (; i < n; i++)
        d[i] = s[i];
}

DJ_ALWAYS_INLINE void zero_row(float *d, int n)
{
    const v4f z = {0};
    int i = 0;
    for (; i + 4 <= n; i += 4)
        memcpy(d + i, &z, sizeof z);
    if (i < n && n >= 4) {
        memcpy(d + n - 4, &z, sizeof z);
        return;
    }
    for (; i < n; i++)
        d[i] = 0.0f;
}

/* Where a source plane lands in its padded copy (hp rows of rw >= wp
 * floats): rows [i0, i1), columns [j0, j1); empty when i1 == i0. */
typedef struct {
    int i0, i1, j0, j1;
} pad_box;

static pad_box pad_box_of(const igeom *g)
{
    pad_box b;
    b.j0 = g->left > 0 ? g->left : 0;
    b.j1 = g->left + g->w < g->wp ? g->left + g->w : g->wp;
    if (b.j1 < b.j0)
        b.j1 = b.j0;
    b.i0 = g->top > 0 ? g->top : 0;
    b.i1 = g->top + g->h < g->hp ? g->top + g->h : g->hp;
    if (b.i1 < b.i0 || b.j1 == b.j0)
        b.i1 = b.i0;
    return b;
}

/* The zeros of a padded plane at dst (rows of rw floats): everything
 * outside the box. pad_fill writes only inside it, so a scratch plane
 * refilled channel after channel is zeroed once. */
static void pad_zero(const igeom *g, int rw, float *dst)
{
    const pad_box b = pad_box_of(g);
    for (int i = 0; i < g->hp; i++) {
        float *row = dst + (size_t)i * rw;
        if (i < b.i0 || i >= b.i1) {
            zero_row(row, rw);
        } else {
            zero_row(row, b.j0);
            zero_row(row + b.j1, rw - b.j1);
        }
    }
}

/* Channel ci of a source image into the box of its padded copy at dst. */
static void pad_fill(const dj__sgemm_kernel *kd, const igeom *g, dj_opd src, int ci, int rw,
                     float *dst)
{
    const pad_box b = pad_box_of(g);
    if (b.i1 == b.i0)
        return;
    const int n = b.j1 - b.j0;
    const size_t s = ((size_t)ci * g->h + (b.i0 - g->top)) * g->w + (size_t)(b.j0 - g->left);
    if (src.kind == DJ_OPD_F32) {
        const float *sp = (const float *)src.p + s;
        for (int i = b.i0; i < b.i1; i++)
            copy_row(dst + (size_t)i * rw + b.j0, sp + (size_t)(i - b.i0) * g->w, n);
    } else if (n < 8 && n == g->w && (size_t)(b.i1 - b.i0) * g->w <= IM2COL_PLANE) {
        /* rows shorter than a vector (7 x 7 planes) are decoded lane by
         * lane; the whole rows are contiguous in the source, so decode them
         * as one run and place the rows */
        _Alignas(64) float buf[IM2COL_PLANE];
        kd->decode_rows(dj__opd_at(src, (ptrdiff_t)s), 0, 1, (b.i1 - b.i0) * g->w, buf, 0);
        for (int i = b.i0; i < b.i1; i++)
            copy_row(dst + (size_t)i * rw + b.j0, buf + (size_t)(i - b.i0) * g->w, n);
    } else { /* every row in one call */
        kd->decode_rows(dj__opd_at(src, (ptrdiff_t)s), g->w, b.i1 - b.i0, n,
                        dst + (size_t)b.i0 * rw + b.j0, rw);
    }
}

/* Channel ci of a source image zero-padded to hp rows of rw >= wp floats
 * (columns past wp zero too) at dst. */
static void pad_plane(const dj__sgemm_kernel *kd, const igeom *g, dj_opd src, int ci, int rw,
                      float *dst)
{
    pad_zero(g, rw, dst);
    pad_fill(kd, g, src, ci, rw, dst);
}

/* Source row x (n values, the first at padded column c0 >= 0) split into
 * two phase rows: d[c % 2][c / 2] = value at padded column c. */
static void split2_row(const float *x, int n, int c0, float *d0, float *d1)
{
    int i = 0;
    if (c0 % 2 && n > 0) { /* the first value is odd: to phase 1 */
        d1[c0 / 2] = x[0];
        i = 1;
    }
    for (; i + 8 <= n; i += 8) { /* c0 + i even: x[i] to d0, x[i + 1] to d1 */
        v4f a, b;
        memcpy(&a, x + i, sizeof a);
        memcpy(&b, x + i + 4, sizeof b);
        const v4f e = EVEN4(a, b), o = ODD4(a, b);
        memcpy(d0 + (c0 + i) / 2, &e, sizeof e);
        memcpy(d1 + (c0 + i) / 2, &o, sizeof o);
    }
    for (; i < n; i++) {
        const int c = c0 + i;
        (c % 2 ? d1 : d0)[c / 2] = x[i];
    }
}

/* Channel ci of a source image of a strided geometry split into its phase
 * planes at dst (section comment above), zeros where padding. */
static void pad_phases(const dj__sgemm_kernel *kd, const igeom *g, dj_opd src, int ci, float *dst)
{
    const size_t plane = (size_t)g->hq * g->wq, hw = (size_t)g->h * g->w;
    memset(dst, 0, (size_t)g->ph * g->pw * plane * sizeof(float));
    _Alignas(64) float buf[IM2COL_PLANE];
    const float *xf = NULL; /* the channel as float32, if it is (or was decoded) */
    const dj_opd xq = dj__opd_at(src, (ptrdiff_t)((size_t)ci * hw));
    if (src.kind == DJ_OPD_F32) {
        xf = (const float *)xq.p;
    } else if (hw <= IM2COL_PLANE) {
        kd->decode_rows(xq, 0, 1, (int)hw, buf, 0); /* contiguous: one run */
        xf = buf;
    }
    for (int iy = 0; iy < g->h; iy++) {
        const int r = iy + g->top; /* padded row: row r / sh of phase r % sh */
        if (r < 0 || r >= g->hp || r % g->sh >= g->ph)
            continue;
        /* phase (a, b) row: padded columns b, b + sw, ... */
        float *o = dst + (size_t)(r % g->sh) * g->pw * plane + (size_t)(r / g->sh) * g->wq;
        if (xf && g->sw == 2 && g->pw == 2) {
            split2_row(xf + (size_t)iy * g->w, g->w, g->left, o, o + plane);
            continue;
        }
        for (int b = 0; b < g->pw; b++) {
            /* the first source column at padded column b mod sw */
            const int ix0 = ((b - g->left) % g->sw + g->sw) % g->sw;
            float *ob = o + (size_t)b * plane + (ix0 + g->left) / g->sw;
            const size_t at = (size_t)iy * g->w;
            for (int ix = ix0; ix < g->w; ix += g->sw)
                *ob++ = xf ? xf[at + (size_t)ix] : dj__opd_get(xq, (ptrdiff_t)(at + (size_t)ix));
        }
    }
}

/* xp = one source image (cin x h x w) zero-padded to cin x hp x wp (with a
 * stride, split into phases), and the slack after it zeroed. */
static void pad_copy(const dj__sgemm_kernel *kd, const igeom *g, dj_opd src, float *xp)
{
    const size_t chan = (size_t)g->ph * g->pw * g->hq * g->wq;
    for (int ci = 0; ci < g->cin; ci++) {
        if (g->sh == 1 && g->sw == 1)
            pad_plane(kd, g, src, ci, g->wp, xp + (size_t)ci * chan);
        else
            pad_phases(kd, g, src, ci, xp + (size_t)ci * chan);
    }
    const size_t used = (size_t)xp_used(g);
    memset(xp + used, 0, (xp_floats(g, kd->nr) - used) * sizeof(float));
}

/* Output rows per chunk: the chunk's C buffer aims at CHUNK_FLOATS. */
static void row_chunks(const igeom *g, int *rows_c, int *nchunks)
{
    int r = CHUNK_FLOATS / (g->cout * g->wq);
    if (r < 1)
        r = 1;
    *nchunks = ceil_div(g->oh, r);
    *rows_c = ceil_div(g->oh, *nchunks);
}

/* ---- sizes ---- */

typedef struct {
    int K, P;
    int implicit_fwd, implicit_data; /* which path each kernel takes */
    int wino_fwd, wino_data;         /* Winograd: forward and weight gradient; data */
    igeom gf, gd;
    /* implicit forward (gf) / backward data (gd): shared packed weights;
     * per thread a padded image and a C buffer of ld columns */
    int f_rows, f_nchunks, f_ldy, d_rows, d_nchunks, d_ldy;
    size_t f_apack, f_task, d_apack, d_task;
    /* im2col forward: col chunks of nch columns (row stride ld) */
    int c_nch, c_nchunks, c_ld;
    size_t c_wpack, c_col;
    /* im2col backward data: per thread A, B and dcol */
    int e_nch, e_nchunks;
    size_t e_apack, e_bpack, e_dcol;
    /* implicit backward weight: k blocks of oh * wp up to v_kc; per thread a
     * padded image, B panels and dW^T */
    int v_kc, v_ldt;
    size_t v_task, v_bpack, v_dwt;
    /* im2col backward weight: k blocks of P up to w_kc; per thread A, B and
     * col rows (row stride w_ld) */
    int w_kc, w_ld;
    size_t w_apack, w_bpack, w_src;
} plan;

/* Splits P into chunks of at most max_cols (a multiple of NR), evenly. */
static void chunks(int P, int max_cols, int NR, int *nch, int *nchunks)
{
    if (max_cols < NR)
        max_cols = NR;
    *nchunks = ceil_div(P, max_cols);
    *nch = round_up(ceil_div(P, *nchunks), NR);
}

/* A row stride of at least n floats that is a whole, odd number of 64-byte
 * lines, so that a column panel's rows spread over every L1 set. */
static int odd_lines(int n)
{
    int ld = round_up(n, 16);
    if (ld / 16 % 2 == 0)
        ld += 16;
    return ld;
}

/* The Winograd path (below). */
static size_t wino_ws(const dj__sgemm_kernel *kd, const dj_conv2d_dims *d, int T);
static int wino_shape(const igeom *g, int mode);
static void wino_forward(dj_pool *pool, const dj__sgemm_kernel *kd, const igeom *g, int n,
                         dj_opd src, dj_opd w, int flipped, const float *bias, int relu,
                         float *dst, float *ws);
static void wino_backward_weight(dj_pool *pool, const dj__sgemm_kernel *kd,
                                 const dj_conv2d_dims *d, dj_opd x, dj_opd dy, float *dw,
                                 float *dbias, float *ws);

static void make_plan(const dj__sgemm_kernel *kd, const dj_conv2d_dims *d, plan *pl)
{
    const int MR = kd->mr, NR = kd->nr;
    const int K = d->c * d->kh * d->kw, P = d->oh * d->ow;
    memset(pl, 0, sizeof *pl);
    pl->K = K;
    pl->P = P;
    const int stride1 = d->stride_h == 1 && d->stride_w == 1;
    pl->gf = geom_fwd(d);
    pl->gd = geom_bwd_data(d);
    /* other strides: the implicit GEMM over phase planes where the kernel
     * has several taps (a 1 x 1 kernel's im2col is a plain gather, and its
     * GEMM writes the output in place) */
    pl->implicit_fwd = (stride1 || (dj__conv2d_strided_implicit && d->kh * d->kw > 1)) &&
                       implicit_ok(&pl->gf);
    /* backward data's GEMM has M = c: with few input channels (an image's
     * first layer) the micro-tile would be mostly empty, so im2col's M = K
     * is better. */
    pl->implicit_data = stride1 && implicit_ok(&pl->gd) && 4 * d->c >= 3 * round_up(d->c, MR);
    pl->wino_fwd = stride1 && wino_shape(&pl->gf, dj__conv2d_winograd);
    pl->wino_data = stride1 && wino_shape(&pl->gd, dj__conv2d_winograd);

    if (pl->implicit_fwd) {
        row_chunks(&pl->gf, &pl->f_rows, &pl->f_nchunks);
        pl->f_ldy = round_up(pl->f_rows * pl->gf.wq, NR);
        pl->f_apack = round16((size_t)round_up(d->oc, MR) * K);
        pl->f_task = xp_floats(&pl->gf, NR) + round16((size_t)d->oc * pl->f_ldy);
    } else {
        chunks(P, CHUNK_FLOATS / K / NR * NR, NR, &pl->c_nch, &pl->c_nchunks);
        pl->c_ld = odd_lines(pl->c_nch);
        pl->c_wpack = round16((size_t)round_up(d->oc, MR) * K);
        pl->c_col = round16((size_t)K * pl->c_ld);
    }
    if (pl->implicit_data) {
        row_chunks(&pl->gd, &pl->d_rows, &pl->d_nchunks);
        pl->d_ldy = round_up(pl->d_rows * pl->gd.wq, NR);
        pl->d_apack = round16((size_t)round_up(d->c, MR) * pl->gd.K);
        pl->d_task = xp_floats(&pl->gd, NR) + round16((size_t)d->c * pl->d_ldy);
    } else {
        chunks(P, CHUNK_FLOATS / (K + d->oc) / NR * NR, NR, &pl->e_nch, &pl->e_nchunks);
        pl->e_apack = round16((size_t)round_up(K, MR) * d->oc);
        pl->e_bpack = round16((size_t)round_up(pl->e_nch, NR) * d->oc);
        pl->e_dcol = round16((size_t)K * pl->e_nch);
    }
    if (pl->implicit_fwd) {
        const int nq = d->oh * pl->gf.wq;
        pl->v_kc = ceil_div(nq, dj__sgemm_kblocks(kd, nq));
        pl->v_ldt = round_up(d->oc, NR);
        pl->v_bpack = round16((size_t)pl->v_ldt * pl->v_kc);
        pl->v_dwt = round16((size_t)round_up(K, MR) * pl->v_ldt);
        pl->v_task = xp_floats(&pl->gf, NR) + pl->v_bpack + pl->v_dwt;
    } else {
        pl->w_kc = ceil_div(P, dj__sgemm_kblocks(kd, P));
        pl->w_ld = odd_lines(pl->w_kc);
        pl->w_apack = round16((size_t)round_up(d->oc, MR) * pl->w_kc);
        pl->w_bpack = round16((size_t)round_up(K, NR) * pl->w_kc);
        pl->w_src = round16((size_t)K * pl->w_ld);
    }
}

static size_t max2(size_t a, size_t b)
{
    return a > b ? a : b;
}

size_t dj__conv2d_workspace_isa(dj_isa isa, const dj_conv2d_dims *d, int nthreads)
{
    const dj__sgemm_kernel *kd = dj__sgemm_kernel_for(isa);
    if (!kd)
        return 0;
    plan pl;
    make_plan(kd, d, &pl);
    const size_t T = nthreads > 1 ? (size_t)nthreads : 1;
    size_t need = pl.implicit_fwd ? pl.f_apack + T * pl.f_task : pl.c_wpack + T * pl.c_col;
    need = max2(need, pl.implicit_data ? pl.d_apack + T * pl.d_task
                                       : T * (pl.e_apack + pl.e_bpack + pl.e_dcol));
    need = max2(need, pl.implicit_fwd ? T * pl.v_task : T * (pl.w_apack + pl.w_bpack + pl.w_src));
    need = max2(need, wino_ws(kd, d, (int)T));
    return need + 16; /* room to align the start to 64 bytes */
}

size_t dj_conv2d_workspace(const dj_conv2d_dims *d, int nthreads)
{
    size_t need = 0;
    for (int isa = DJ_ISA_GENERIC; isa < DJ_ISA_COUNT; isa++)
        if (dj_cpu_supports((dj_isa)isa))
            need = max2(need, dj__conv2d_workspace_isa((dj_isa)isa, d, nthreads));
    return need;
}

static float *align64(float *ws)
{
    uintptr_t u = (uintptr_t)ws;
    return ws + ((DJ_SGEMM_ALIGN - u % DJ_SGEMM_ALIGN) % DJ_SGEMM_ALIGN) / sizeof(float);
}

/* Threads for `items` independent pieces of work: at most one per piece. */
static int threads_for(dj_pool *pool, long long items)
{
    int T = dj_pool_threads(pool);
    return items < T ? (int)items : T;
}

/* ---- implicit forward (also backward data) ---- */

typedef struct {
    const dj__sgemm_kernel *kd;
    const igeom *g;
    int n;                /* images */
    dj_opd src;           /* n x cin x h x w */
    const float *bias;    /* cout, or NULL */
    int relu;             /* ReLU on the output */
    float *dst;           /* n x cout x oh x ow */
    const float *apack;   /* weights: A panels of cout rows, k in (ci, ki, kj) order */
    float *ws;            /* per task: padded image, then C buffer */
    size_t task_floats;
    int rows_c, nchunks, ldy, ntasks;
} ifwd_job;

static void ifwd_task(void *arg, int t)
{
    const ifwd_job *j = arg;
    const igeom *g = j->g;
    const int MR = j->kd->mr, NR = j->kd->nr;
    int32_t off[MAX_OFF];
    make_offsets(g, off);
    float *xp = j->ws + (size_t)t * j->task_floats, *ybuf = xp + xp_floats(g, NR);
    const size_t src_img = (size_t)g->cin * g->h * g->w, dst_plane = (size_t)g->oh * g->ow;
    const long long items = (long long)j->n * j->nchunks;
    const long long w0 = items * t / j->ntasks, w1 = items * (t + 1) / j->ntasks;
    long long have = -1;
    for (long long it = w0; it < w1; it++) {
        const int img = (int)(it / j->nchunks), r0 = (int)(it % j->nchunks) * j->rows_c;
        if (r0 >= g->oh)
            continue;
        const int rows = g->oh - r0 < j->rows_c ? g->oh - r0 : j->rows_c;
        if (img != have) {
            pad_copy(j->kd, g, dj__opd_at(j->src, (ptrdiff_t)(img * src_img)), xp);
            have = img;
        }
        dj__sgemm_macro_ofs(j->kd, g->cout, rows * g->wq, g->K, j->apack, (size_t)g->K * MR,
                            xp + (size_t)r0 * g->wq, off, 1.0f, 0.0f, ybuf, j->ldy);
        /* keep the ow real columns of each row (+ bias) */
        float *out = j->dst + (size_t)img * g->cout * dst_plane + (size_t)r0 * g->ow;
        for (int o = 0; o < g->cout; o++)
            for (int r = 0; r < rows; r++) {
                const float *s = ybuf + (size_t)o * j->ldy + (size_t)r * g->wq;
                float *dd = out + o * dst_plane + (size_t)r * g->ow;
                if (j->bias || j->relu)
                    finish_row(dd, s, g->ow, j->bias ? &j->bias[o] : NULL, j->relu);
                else
                    memcpy(dd, s, (size_t)g->ow * sizeof(float));
            }
    }
}

static void run_implicit(dj_pool *pool, const dj__sgemm_kernel *kd, const igeom *g, int n,
                         dj_opd src, const float *bias, int relu, float *dst, const float *apack,
                         float *ws, size_t task_floats, int rows_c, int nchunks, int ldy)
{
    ifwd_job j = {kd, g, n, src, bias, relu, dst, apack, ws, task_floats, rows_c, nchunks, ldy, 0};
    j.ntasks = threads_for(pool, (long long)n * nchunks);
    dj_pool_run(pool, ifwd_task, &j, j.ntasks);
}

/* A panels of the backward-data weights: A(i, k) over i = input channel,
 * k = (o, ki, kj), = W[o, i, kh - 1 - ki, kw - 1 - kj]. */
static void pack_flipped(const dj__sgemm_kernel *kd, const dj_conv2d_dims *d, dj_opd w, float *dst)
{
    const int MR = kd->mr, khw = d->kh * d->kw, K = d->oc * khw;
    for (int i0 = 0; i0 < d->c; i0 += MR)
        for (int k = 0; k < K; k++) {
            const int o = k / khw, ki = k % khw / d->kw, kj = k % d->kw;
            for (int ii = 0; ii < MR; ii++) {
                const int i = i0 + ii;
                const size_t at = (((size_t)o * d->c + i) * d->kh + d->kh - 1 - ki) * d->kw +
                                  d->kw - 1 - kj;
                *dst++ = i < d->c ? dj__opd_get(w, (ptrdiff_t)at) : 0.0f;
            }
        }
}

/* ---- im2col forward (strides other than 1) ---- */

typedef struct {
    const dj__sgemm_kernel *kd;
    const dj_conv2d_dims *d;
    const plan *pl;
    dj_opd x;
    const float *bias, *wpack;
    float *y, *ws;
    int ntasks;
} fwd_job;

static void fwd_task(void *arg, int t)
{
    const fwd_job *j = arg;
    const dj_conv2d_dims *d = j->d;
    const plan *pl = j->pl;
    const int MR = j->kd->mr, NR = j->kd->nr, K = pl->K, P = pl->P;
    float *col = j->ws + (size_t)t * pl->c_col;
    const long long items = (long long)d->n * pl->c_nchunks;
    const long long w0 = items * t / j->ntasks, w1 = items * (t + 1) / j->ntasks;
    for (long long it = w0; it < w1; it++) {
        const int img = (int)(it / pl->c_nchunks), p0 = (int)(it % pl->c_nchunks) * pl->c_nch;
        if (p0 >= P)
            continue;
        const int np = P - p0 < pl->c_nch ? P - p0 : pl->c_nch;
        im2col(j->kd, d, dj__opd_at(j->x, (ptrdiff_t)((size_t)img * d->c * d->h * d->w)), 0, K, p0,
               np, col, pl->c_ld);
        const int npad = round_up(np, NR);
        if (npad > np) /* the last panel's spare columns are read: make them 0 */
            for (int r = 0; r < K; r++)
                memset(col + (size_t)r * pl->c_ld + np, 0, (size_t)(npad - np) * sizeof(float));
        float *y = j->y + (size_t)img * d->oc * P + p0;
        dj__sgemm_macro(j->kd, d->oc, np, K, j->wpack, (size_t)K * MR, col, NR, pl->c_ld, 1.0f,
                        0.0f, y, P);
        if (j->bias || d->relu)
            for (int o = 0; o < d->oc; o++)
                finish_row(y + (size_t)o * P, y + (size_t)o * P, np,
                           j->bias ? &j->bias[o] : NULL, d->relu);
    }
}

void dj__conv2d_forward_q_isa(dj_isa isa, dj_pool *pool, const dj_conv2d_dims *d, dj_opd x,
                              dj_opd w, const float *bias, float *y, float *ws)
{
    const dj__sgemm_kernel *kd = dj__sgemm_kernel_for(isa);
    assert(kd && ws);
    plan pl;
    make_plan(kd, d, &pl);
    ws = align64(ws);
    if (pl.wino_fwd) {
        wino_forward(pool, kd, &pl.gf, d->n, x, w, 0, bias, d->relu, y, ws);
        return;
    }
    /* W is A: [oc, K] row-major, packed once for every image. */
    dj__gemm_pack_a_q(kd, 0, w, pl.K, d->oc, pl.K, ws);
    if (pl.implicit_fwd) {
        if (d->stride_h != 1 || d->stride_w != 1)
            dj__conv2d_strided_calls++;
        run_implicit(pool, kd, &pl.gf, d->n, x, bias, d->relu, y, ws, ws + pl.f_apack,
                     pl.f_task, pl.f_rows, pl.f_nchunks, pl.f_ldy);
        return;
    }
    fwd_job j = {kd, d, &pl, x, bias, ws, y, ws + pl.c_wpack, 0};
    j.ntasks = threads_for(pool, (long long)d->n * pl.c_nchunks);
    dj_pool_run(pool, fwd_task, &j, j.ntasks);
}

/* ---- im2col backward data (strides other than 1): GEMM, then col2im ---- */

typedef struct {
    const dj__sgemm_kernel *kd;
    const dj_conv2d_dims *d;
    const plan *pl;
    dj_opd dy, w;
    float *dx, *ws;
    int groups; /* channel groups per image */
    int ntasks;
} bwd_data_job;

static void bwd_data_task(void *arg, int t)
{
    const bwd_data_job *j = arg;
    const dj__sgemm_kernel *kd = j->kd;
    const dj_conv2d_dims *d = j->d;
    const plan *pl = j->pl;
    const int MR = kd->mr, NR = kd->nr, K = pl->K, P = pl->P, khw = d->kh * d->kw;
    float *apack = j->ws + (size_t)t * (pl->e_apack + pl->e_bpack + pl->e_dcol);
    float *bpack = apack + pl->e_apack, *dcol = bpack + pl->e_bpack;
    const long long items = (long long)d->n * j->groups;
    const long long w0 = items * t / j->ntasks, w1 = items * (t + 1) / j->ntasks;
    int packed_group = -1;
    for (long long it = w0; it < w1; it++) {
        const int img = (int)(it / j->groups), g = (int)(it % j->groups);
        const int c0 = (int)((long long)d->c * g / j->groups);
        const int c1 = (int)((long long)d->c * (g + 1) / j->groups);
        if (c0 >= c1)
            continue;
        const int r0 = c0 * khw, rows = (c1 - c0) * khw;
        if (g != packed_group) { /* A = W^T rows [r0, r0 + rows): A(r, o) = W[o, r] */
            dj__gemm_pack_a_q(kd, 1, dj__opd_at(j->w, r0), K, rows, d->oc, apack);
            packed_group = g;
        }
        const size_t plane = (size_t)d->h * d->w;
        float *dx = j->dx + (size_t)img * d->c * plane;
        const dj_opd dy = dj__opd_at(j->dy, (ptrdiff_t)((size_t)img * d->oc * P));
        memset(dx + c0 * plane, 0, (size_t)(c1 - c0) * plane * sizeof(float));
        for (int p0 = 0; p0 < P; p0 += pl->e_nch) {
            const int np = P - p0 < pl->e_nch ? P - p0 : pl->e_nch;
            dj__gemm_pack_b_q(kd, 0, dj__opd_at(dy, p0), P, d->oc, np, bpack, (size_t)d->oc * NR);
            dj__sgemm_macro(kd, rows, np, d->oc, apack, (size_t)d->oc * MR, bpack,
                            (size_t)d->oc * NR, NR, 1.0f, 0.0f, dcol, pl->e_nch);
            col2im(d, dcol, pl->e_nch, r0, r0 + rows, p0, np, dx);
        }
    }
}

void dj__conv2d_backward_data_q_isa(dj_isa isa, dj_pool *pool, const dj_conv2d_dims *d, dj_opd dy,
                                    dj_opd w, float *dx, float *ws)
{
    const dj__sgemm_kernel *kd = dj__sgemm_kernel_for(isa);
    assert(kd && ws);
    plan pl;
    make_plan(kd, d, &pl);
    ws = align64(ws);
    if (pl.wino_data) {
        wino_forward(pool, kd, &pl.gd, d->n, dy, w, 1, NULL, 0, dx, ws);
        return;
    }
    if (pl.implicit_data) {
        pack_flipped(kd, d, w, ws);
        run_implicit(pool, kd, &pl.gd, d->n, dy, NULL, 0, dx, ws, ws + pl.d_apack, pl.d_task,
                     pl.d_rows, pl.d_nchunks, pl.d_ldy);
        return;
    }
    bwd_data_job j = {kd, d, &pl, dy, w, dx, ws, 1, 0};
    const int T = dj_pool_threads(pool);
    if (d->n < T) /* too few images for the threads: also split the channels */
        j.groups = ceil_div(T, d->n) < d->c ? ceil_div(T, d->n) : d->c;
    j.ntasks = threads_for(pool, (long long)d->n * j.groups);
    dj_pool_run(pool, bwd_data_task, &j, j.ntasks);
}

/* ---- backward weight ---- */

/* The running partials of a row sum: 8 lanes over whole groups of 8. */
static inline void sum8(const float *r, size_t n8, v4f *s0, v4f *s1)
{
    for (size_t q = 0; q < n8; q += 8) {
        v4f a, b;
        memcpy(&a, r + q, sizeof a);
        memcpy(&b, r + q + 4, sizeof b);
        *s0 += a;
        *s1 += b;
    }
}

/* The partials pairwise, then the last n % 8 values in order. */
static inline float sum_finish(v4f s0, v4f s1, const float *tail, size_t nt)
{
    const v4f s = s0 + s1;
    float t = 0.0f;
    for (size_t q = 0; q < nt; q++)
        t += tail[q];
    return ((s[0] + s[1]) + (s[2] + s[3])) + t;
}

/* A row's sum in float: eight running partials, then pairwise. */
static float row_sum(const float *r, size_t n)
{
    v4f s0 = {0, 0, 0, 0}, s1 = {0, 0, 0, 0};
    const size_t n8 = n / 8 * 8;
    sum8(r, n8, &s0, &s1);
    return sum_finish(s0, s1, r + n8, n - n8);
}

/* row_sum of a row of any kind, decoded SUMBLK values at a time: as SUMBLK
 * is a multiple of 8, the same partials in the same order. */
#define SUMBLK 512
static float row_sum_q(const dj__sgemm_kernel *kd, dj_opd r, size_t n)
{
    if (r.kind == DJ_OPD_F32)
        return row_sum(r.p, n);
    float blk[SUMBLK];
    v4f s0 = {0, 0, 0, 0}, s1 = {0, 0, 0, 0};
    for (size_t q0 = 0;; q0 += SUMBLK) {
        const size_t m = n - q0 < SUMBLK ? n - q0 : SUMBLK, m8 = m / 8 * 8;
        kd->decode(dj__opd_at(r, (ptrdiff_t)q0), (int)m, blk);
        sum8(blk, m8, &s0, &s1);
        if (m < SUMBLK)
            return sum_finish(s0, s1, blk + m8, m - m8);
    }
}

/* dbias[o] (+)= the sum of one image's dy rows o0 .. o1 - 1 (which the
 * caller has just read, so they are in cache): images add in order. */
static void add_dbias(const dj__sgemm_kernel *kd, const dj_conv2d_dims *d, dj_opd dy_img, int img,
                      int o0, int o1, float *dbias)
{
    const size_t P = (size_t)d->oh * d->ow;
    for (int o = o0; o < o1; o++) {
        const float s = row_sum_q(kd, dj__opd_at(dy_img, (ptrdiff_t)((size_t)o * P)), P);
        dbias[o] = img == 0 ? s : dbias[o] + s;
    }
}

typedef struct {
    const dj__sgemm_kernel *kd;
    const dj_conv2d_dims *d;
    const plan *pl;
    dj_opd x, dy;
    float *dw, *dbias, *ws;
    int tm, tn;
} bwd_weight_job;

/* The stride-1 weight gradient as dW^T (K x oc) = sum over images and
 * positions q = oy * wp + ox of A(r, q) B(q, o): A(r, q) = xp[q + off[r]],
 * krow r's window of the padded image, read in place by the micro-kernel;
 * B(q, o) = dy[o, oy, ox] (0 for the wp - ow columns past each row), packed.
 * No im2col and no transpose of it. Task t owns a rectangle of krows x
 * output channels and sums it over every image and k block in order. */
static void bwd_weight_implicit_task(void *arg, int t)
{
    const bwd_weight_job *j = arg;
    const dj__sgemm_kernel *kd = j->kd;
    const dj_conv2d_dims *d = j->d;
    const plan *pl = j->pl;
    const igeom *g = &pl->gf;
    const int MR = kd->mr, NR = kd->nr, K = pl->K, P = pl->P, wp = g->wq, ow = d->ow;
    const int pm = ceil_div(K, MR), pn = ceil_div(d->oc, NR);
    const int ti = t / j->tn, tj = t % j->tn;
    const int r0 = pm * ti / j->tm * MR, o0 = pn * tj / j->tn * NR;
    int r1 = pm * (ti + 1) / j->tm * MR, o1 = pn * (tj + 1) / j->tn * NR;
    if (r1 > K)
        r1 = K;
    if (o1 > d->oc)
        o1 = d->oc;
    if (r0 >= r1 || o0 >= o1)
        return;
    float *xp = j->ws + (size_t)t * pl->v_task;
    float *bpack = xp + xp_floats(g, NR), *dwt = bpack + pl->v_bpack;
    const int ldt = pl->v_ldt;
    int32_t off[MAX_OFF];
    make_offsets(g, off);
    const int nq = d->oh * wp, nkb = dj__sgemm_kblocks(kd, nq);
    const float *rows[DJ_SGEMM_MAX_NR];
    const void *qrows[DJ_SGEMM_MAX_NR];
    const float *arows[DJ_SGEMM_MAX_MR];
    const dj_opd_kind dyk = j->dy.kind;
    for (int img = 0; img < d->n; img++) {
        const dj_opd dy = dj__opd_at(j->dy, (ptrdiff_t)((size_t)img * d->oc * P));
        pad_copy(kd, g, dj__opd_at(j->x, (ptrdiff_t)((size_t)img * d->c * d->h * d->w)), xp);
        for (int kb = 0; kb < nkb; kb++) {
            int q0, kc;
            dj__sgemm_kblock(kd, nq, kb, &q0, &kc);
            /* B panels: dy rows o0 .. o1 over positions q0 .. q0 + kc */
            for (int o = o0; o < o1; o += NR) {
                const int nr = o1 - o < NR ? o1 - o : NR;
                float *dst = bpack + (size_t)(o - o0) / NR * kc * NR;
                for (int q = q0; q < q0 + kc;) {
                    const int oy = q / wp, ox = q % wp;
                    int len = wp - ox < q0 + kc - q ? wp - ox : q0 + kc - q;
                    if (ox < ow) {
                        if (len > ow - ox)
                            len = ow - ox;
                        const size_t at = (size_t)o * P + (size_t)oy * ow + ox;
                        if (dyk == DJ_OPD_F32) {
                            for (int r = 0; r < nr; r++)
                                rows[r] = (const float *)dy.p + at + (size_t)r * P;
                            dj__sgemm_pack_b_rows(kd, rows, nr, len, dst + (size_t)(q - q0) * NR);
                        } else {
                            for (int r = 0; r < nr; r++)
                                qrows[r] = dj__opd_at(dy, (ptrdiff_t)(at + (size_t)r * P)).p;
                            dj__gemm_pack_b_rows_q(kd, dy, qrows, nr, len,
                                                   dst + (size_t)(q - q0) * NR);
                        }
                    } else {
                        memset(dst + (size_t)(q - q0) * NR, 0, (size_t)len * NR * sizeof(float));
                    }
                    q += len;
                }
            }
            const float be = img == 0 && kb == 0 ? 0.0f : 1.0f;
            for (int o = o0; o < o1; o += NR) {
                const int nr = o1 - o < NR ? o1 - o : NR;
                const float *b = bpack + (size_t)(o - o0) / NR * kc * NR;
                for (int r = r0; r < r1; r += MR) {
                    const int mr = r1 - r < MR ? r1 - r : MR;
                    for (int i = 0; i < MR; i++)
                        arows[i] = xp + off[r + (i < mr ? i : 0)] + q0;
                    kd->ukr_arows(kc, arows, b, dwt + (size_t)(r - r0) * ldt + (o - o0), ldt, mr,
                                  nr, 1.0f, be);
                }
            }
        }
        if (j->dbias && r0 == 0) /* the one task of these channels that has krow 0 */
            add_dbias(kd, d, dy, img, o0, o1, j->dbias);
    }
    for (int o = o0; o < o1; o++) /* dW = (dW^T)^T */
        for (int r = r0; r < r1; r++)
            j->dw[(size_t)o * K + r] = dwt[(size_t)(r - r0) * ldt + (o - o0)];
}

/* The weight gradient for other strides: dW (oc x K) += dy . col^T per
 * image and k block of P, with col from im2col and transposed into B
 * panels. Task t owns a rectangle of output channels x krows. */
static void bwd_weight_task(void *arg, int t)
{
    const bwd_weight_job *j = arg;
    const dj__sgemm_kernel *kd = j->kd;
    const dj_conv2d_dims *d = j->d;
    const plan *pl = j->pl;
    const int MR = kd->mr, NR = kd->nr, K = pl->K, P = pl->P;
    const int pm = ceil_div(d->oc, MR), pn = ceil_div(K, NR);
    const int ti = t / j->tn, tj = t % j->tn;
    const int o0 = pm * ti / j->tm * MR, q0 = pn * tj / j->tn * NR;
    int o1 = pm * (ti + 1) / j->tm * MR, q1 = pn * (tj + 1) / j->tn * NR;
    if (o1 > d->oc)
        o1 = d->oc;
    if (q1 > K)
        q1 = K;
    if (o0 >= o1 || q0 >= q1)
        return;
    float *apack = j->ws + (size_t)t * (pl->w_apack + pl->w_bpack + pl->w_src);
    float *bpack = apack + pl->w_apack, *col = bpack + pl->w_bpack;
    const int nkb = dj__sgemm_kblocks(kd, P);
    float *dw = j->dw + (size_t)o0 * K + q0;
    for (int img = 0; img < d->n; img++) {
        const dj_opd x = dj__opd_at(j->x, (ptrdiff_t)((size_t)img * d->c * d->h * d->w));
        const dj_opd dy = dj__opd_at(j->dy, (ptrdiff_t)((size_t)img * d->oc * P));
        for (int kb = 0; kb < nkb; kb++) {
            int k0, kc;
            dj__sgemm_kblock(kd, P, kb, &k0, &kc);
            /* A = dy[o0:o1, k0:k0+kc]; B = col^T: B(p, r) = col[r, p]. */
            dj__gemm_pack_a_q(kd, 0, dj__opd_at(dy, (ptrdiff_t)((size_t)o0 * P + k0)), P, o1 - o0,
                              kc, apack);
            im2col(kd, d, x, q0, q1, k0, kc, col, pl->w_ld);
            dj__sgemm_pack_b(kd, 1, col, pl->w_ld, kc, q1 - q0, bpack, (size_t)kc * NR);
            dj__sgemm_macro(kd, o1 - o0, q1 - q0, kc, apack, (size_t)kc * MR, bpack,
                            (size_t)kc * NR, NR, 1.0f, img == 0 && kb == 0 ? 0.0f : 1.0f, dw, K);
        }
        if (j->dbias && q0 == 0) /* the one task of these channels that has krow 0 */
            add_dbias(kd, d, dy, img, o0, o1, j->dbias);
    }
}

/* ---- Winograd F(4x4, 3x3) for stride-1 3 x 3 convolutions ----
 *
 * winograd.h has the algorithm. Per chunk of whole images (32 to 128 tiles,
 * V and M of about W_BYTES): the 6 x 6 patch of each 4 x 4 output tile of
 * the padded source is transformed into V (36 planes of cin x tiles); 36
 * GEMMs M[xi] = U[xi] . V[xi] over the transformed weights U (packed A
 * panels, made once per call); each tile's 36 values of M are transformed
 * back into its output block. Each output element is written by one chunk,
 * and its sum over input channels depends on cin and the ISA only, so
 * results are bit-identical for any thread count. backward_data is the same
 * on the padded dy with the flipped weights (geom_bwd_data). The weight
 * gradient sums (A dy A^T) . (B^T x B) over every tile of the batch per
 * transform value (36 GEMMs over the tiles of a chunk, chunks added in
 * order): per chunk the threads first transform its tiles (split by image
 * and channel range), then share out the 36 GEMMs, so no copy or transform
 * is done twice; the 36 sums are transformed back by G^T . G at the end. The
 * transforms' vector lanes are the tiles of a row of tiles, or, where a row
 * fills half the lanes or fewer (14 x 14 has 4 tiles a row, 7 x 7 two) and
 * the images fill more, the same tile of eight images (winograd.h); a chunk
 * is then whole groups of eight images, and the lanes of a partial group are
 * zero. About 4x fewer multiplications than the direct kernels; the
 * transforms' extra rounding is within the error bound the tests give this
 * path (test_conv2d.c). */

int dj__conv2d_winograd = 1;
int dj__conv2d_strided_implicit = 1;
_Atomic long dj__conv2d_strided_calls;
_Atomic long dj__conv2d_winograd_calls;

#define WT 4  /* output tile */
#define WX 36 /* transform values per tile (6 x 6) */
/* V and M of a chunk aim at this many bytes (per thread; fmnist-cnn's
 * second convolution, 32 -> 64 channels, gets three images of 36 tiles).
 * fmnist-resnet, ab_train.sh, 4 rounds each: a fixed 128 tiles (4.7 MiB
 * for 128 -> 128 channels) -> 1.5 MiB 1.07x (0.99-1.22); 1.5 -> 0.75 MiB
 * 0.93x (0.77-1.11). */
#define W_BYTES (1536 * 1024)

/* G, the 6 x 3 kernel transform. */
static const double wino_g[6][3] = {{1.0 / 4, 0, 0},
                                    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                    {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                    {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                    {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                    {0, 0, 1}};

typedef struct {
    igeom gx;         /* the source padded to whole tiles: hp = th * 4 + 2 */
    igeom gy;         /* dy padded to whole tiles (weight gradient) */
    int th, tw, nt;   /* tiles per image: th x tw */
    int il;           /* image lanes (winograd.h), else row lanes */
    int ipc, nchunks; /* images per chunk (image lanes: a multiple of 8); chunks */
    int cpc;          /* columns of V and M of a full chunk */
    int ld;           /* row stride of V and M: the tiles of a chunk, and room */
    int xs, ys;       /* phase strides of the split copies of x and dy */
    size_t vp, mp;    /* plane strides of V (cin x ld) and M, Y (cout x ld) */
    size_t xcp, ycp;  /* floats of a copy of x, of dy (split or interleaved) */
    size_t tmp;       /* floats of the copies' scratch */
    size_t u, task;   /* floats: packed U; per thread x copy, scratch, V, M */
} wplan;

/* The split copy (winograd.h) of a source image of geometry g, padded to
 * g->hp x g->wp, in phases of xs floats: element (ci, row, x) at ((ci * hp +
 * row) * 4 + x % 4) * xs + x / 4. Floats it takes, with slack for the
 * unused lanes that read past the end. */
static size_t split_floats(const igeom *g, int xs)
{
    return round16((size_t)g->cin * g->hp * 4 * xs + 32);
}

/* Channels [c0, c1) of the split copy into dst (which holds every channel;
 * the slack after the last one is zeroed with it). tmp: hp * 4 * xs floats
 * of scratch; a channel is padded into tmp first and then split, so that
 * the split's loads do not wait on the copy's stores. */
static void split_copy(const dj__sgemm_kernel *kd, const dj__wino_fns *fn, const igeom *g, int xs,
                       dj_opd src, int c0, int c1, float *tmp, float *dst)
{
    const int rw = 4 * xs;
    pad_zero(g, rw, tmp);
    for (int ci = c0; ci < c1; ci++) {
        float *d = dst + (size_t)ci * g->hp * rw;
        pad_fill(kd, g, src, ci, rw, tmp);
        for (int i = 0; i < g->hp; i++)
            fn->split(tmp + (size_t)i * rw, xs, d + (size_t)i * rw);
    }
    const size_t used = (size_t)g->cin * g->hp * rw;
    if (c1 == g->cin)
        memset(dst + used, 0, (split_floats(g, xs) - used) * sizeof(float));
}

/* Floats of the interleaved copy of eight images of geometry g (winograd.h:
 * image lanes) padded to g->hp x g->wp. */
static size_t il_floats(const igeom *g)
{
    return round16((size_t)g->cin * g->hp * g->wp * 8 + 16);
}

/* Channels [c0, c1) of the interleaved copy of the ng <= 8 images from src
 * (images img_floats apart) into dst; lanes past ng are zero. tmp: nine
 * padded planes of scratch. */
static void il_copy(const dj__sgemm_kernel *kd, const dj__wino_fns *fn, const igeom *g, dj_opd src,
                    size_t img_floats, int ng, int c0, int c1, float *tmp, float *dst)
{
    const size_t plane = (size_t)g->hp * g->wp;
    const float *planes[8];
    memset(tmp + 8 * plane, 0, plane * sizeof(float));
    for (int l = 0; l < 8; l++)
        planes[l] = tmp + (l < ng ? l : 8) * plane;
    for (int l = 0; l < ng; l++)
        pad_zero(g, g->wp, tmp + l * plane);
    for (int ci = c0; ci < c1; ci++) {
        for (int l = 0; l < ng; l++)
            pad_fill(kd, g, dj__opd_at(src, (ptrdiff_t)(l * img_floats)), ci, g->wp,
                     tmp + l * plane);
        fn->interleave(planes, (int)plane, dst + (size_t)ci * plane * 8);
    }
}

/* Whether a stride-1 convolution of geometry g takes the Winograd path. */
static int wino_shape(const igeom *g, int mode)
{
    if (mode == 0 || g->kh != 3 || g->kw != 3 || !implicit_ok(g))
        return 0;
    if (mode == 2)
        return 1;
    /* 36 products per 4 x 4 tile against 9 per output: at least 2x fewer,
     * and channels enough to share the transforms over. */
    const long long tiles = (long long)ceil_div(g->oh, WT) * ceil_div(g->ow, WT);
    return g->cin >= 16 && g->cout >= 16 && 2 * WX * tiles <= 9LL * g->oh * g->ow;
}

/* Columns of V and M of the chunk of images [i0, i1). */
static int wino_cols(const wplan *w, int i0, int i1)
{
    return (w->il ? round_up(i1 - i0, 8) : i1 - i0) * w->nt;
}

static void wino_plan(const dj__sgemm_kernel *kd, const igeom *g, int n, wplan *w)
{
    const int MR = kd->mr, NR = kd->nr;
    w->th = ceil_div(g->oh, WT);
    w->tw = ceil_div(g->ow, WT);
    w->nt = w->th * w->tw;
    w->gx = *g;
    w->gx.hp = w->th * WT + 2;
    w->gx.wp = w->tw * WT + 2;
    w->gx = with_stride(w->gx, 1, 1);
    const igeom gy = {.cin = g->cout, .h = g->oh, .w = g->ow, .hp = w->th * WT,
                      .wp = w->tw * WT, .kh = 3, .kw = 3, .cout = g->cout};
    w->gy = with_stride(gy, 1, 1);
    /* Image lanes where a row of tiles would leave half the lanes or more
     * idle and the images fill more of them: lanes used n / (8 ceil(n /
     * 8)) against tw / (8 ceil(tw / 8)). (fmnist-cnn's 24 x 24, six tiles a
     * row, ran 0.8x as fast with image lanes: a chunk of eight images of
     * 36 tiles holds V and M of 4 MiB, against 1.5 MiB for three.) Row
     * lanes come back for fewer images only at n <= tw <= 4, whose chunks
     * and copies are smaller than image lanes' (eight images): so the
     * workspace for n images serves any smaller batch (test_conv2d). */
    w->il = 2 * w->tw <= round_up(w->tw, 8) &&
            (long long)n * round_up(w->tw, 8) > (long long)w->tw * round_up(n, 8);
    /* tiles per chunk: V and M of about W_BYTES, from 32 to 128 tiles */
    int tiles = (int)(W_BYTES / ((size_t)WX * sizeof(float) * (size_t)(g->cin + g->cout)));
    tiles = tiles < 32 ? 32 : tiles > 128 ? 128 : tiles;
    w->ipc = tiles / w->nt;
    if (w->il)
        w->ipc = w->ipc < 8 ? 8 : w->ipc / 8 * 8;
    if (w->ipc < 1)
        w->ipc = 1;
    if (w->ipc > n)
        w->ipc = n;
    w->nchunks = ceil_div(n, w->ipc);
    w->cpc = wino_cols(w, 0, w->ipc);
    /* the GEMM reads whole panels; the last group of tiles stores 8 lanes */
    const int cols = w->cpc;
    w->ld = odd_lines(cols + 8 > round_up(cols, NR) ? cols + 8 : round_up(cols, NR));
    w->xs = round_up(w->tw + 1, 8); /* x up to 4 tw + 1; whole vectors */
    w->ys = round_up(w->tw, 8);
    /* An odd number of cache lines apart: the 36 planes a transform
     * writes or reads at once spread over every L1 set. */
    w->vp = (size_t)odd_lines(g->cin * w->ld);
    w->mp = (size_t)odd_lines(g->cout * w->ld);
    w->u = round16((size_t)WX * round_up(g->cout, MR) * g->cin);
    if (w->il) {
        w->xcp = il_floats(&w->gx);
        w->ycp = il_floats(&w->gy);
        w->tmp = round16((size_t)9 * w->gx.hp * w->gx.wp);
    } else {
        w->xcp = split_floats(&w->gx, w->xs);
        w->ycp = split_floats(&w->gy, w->ys);
        w->tmp = round16((size_t)w->gx.hp * 4 * w->xs);
    }
    w->task = w->xcp + w->tmp + WX * w->vp + WX * w->mp;
}


/* Per thread of the weight gradient: split copies of x and dy and the
 * packed panels of its GEMMs (K = the chunk's tiles). */
static size_t wino_wt_task(const dj__sgemm_kernel *kd, const wplan *w)
{
    const int K = w->cpc;
    return w->xcp + w->ycp + w->tmp +
           round16((size_t)round_up(w->gx.cout, kd->mr) * K) +
           round16((size_t)round_up(w->gx.cin, kd->nr) * K);
}

/* Floats the weight gradient shares between its threads: the 36 sums
 * (cout x cin each), then a chunk's V and Y. */
static size_t wino_wt_sums(const wplan *w)
{
    return round16((size_t)WX * w->gx.cout * w->gx.cin);
}

static size_t wino_wt_shared(const wplan *w)
{
    return wino_wt_sums(w) + WX * (w->vp + w->mp);
}

static size_t wino_ws(const dj__sgemm_kernel *kd, const dj_conv2d_dims *d, int T)
{
    if (d->stride_h != 1 || d->stride_w != 1)
        return 0;
    size_t need = 0;
    const igeom gf = geom_fwd(d), gd = geom_bwd_data(d);
    wplan w;
    if (wino_shape(&gf, 2)) {
        wino_plan(kd, &gf, d->n, &w);
        need = max2(w.u + (size_t)T * w.task, wino_wt_shared(&w) + (size_t)T * wino_wt_task(kd, &w));
    }
    if (wino_shape(&gd, 2)) {
        wino_plan(kd, &gd, d->n, &w);
        need = max2(need, w.u + (size_t)T * w.task);
    }
    return need;
}

typedef struct {
    const dj__sgemm_kernel *kd;
    const igeom *g;
    dj_opd w;
    int flipped, T;
    float *u;
} wgt_job;

/* U, the transformed weights G k G^T, as 36 sets of packed A panels
 * (cout x cin); thread t of T makes output channels [cout t / T, cout (t +
 * 1) / T). flipped: backward data, whose kernel (o, i) is the forward
 * kernel (i, o) turned by 180 degrees. */
static void wgt_task(void *arg, int t)
{
    const wgt_job *j = arg;
    const int MR = j->kd->mr, cin = j->g->cin, cout = j->g->cout;
    const size_t ups = (size_t)round_up(cout, MR) * cin;
    const dj_opd w = j->w;
    for (int o = cout * t / j->T; o < cout * (t + 1) / j->T; o++)
        for (int i = 0; i < cin; i++) {
            double k[3][3], tk[6][3];
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++)
                    k[a][b] = j->flipped
                                  ? dj__opd_get(w, (((ptrdiff_t)i * cout + o) * 3 + 2 - a) * 3 + 2 - b)
                                  : dj__opd_get(w, (((ptrdiff_t)o * cin + i) * 3 + a) * 3 + b);
            for (int r = 0; r < 6; r++)
                for (int b = 0; b < 3; b++)
                    tk[r][b] = wino_g[r][0] * k[0][b] + wino_g[r][1] * k[1][b] + wino_g[r][2] * k[2][b];
            float *dst = j->u + (size_t)(o / MR) * cin * MR + (size_t)i * MR + o % MR;
            for (int r = 0; r < 6; r++)
                for (int c = 0; c < 6; c++)
                    dst[(size_t)(r * 6 + c) * ups] = (float)(tk[r][0] * wino_g[c][0] +
                                                             tk[r][1] * wino_g[c][1] +
                                                             tk[r][2] * wino_g[c][2]);
        }
}

static void wino_weights(dj_pool *pool, const dj__sgemm_kernel *kd, const igeom *g, dj_opd w,
                         int flipped, float *u)
{
    const int MR = kd->mr, cin = g->cin, cout = g->cout;
    const size_t ups = (size_t)round_up(cout, MR) * cin;
    if (cout % MR) /* the last panel's rows past cout are zero */
        for (int x = 0; x < WX; x++)
            for (int i = 0; i < cin; i++)
                memset(u + x * ups + (size_t)(cout / MR) * cin * MR + (size_t)i * MR + cout % MR, 0,
                       (size_t)(MR - cout % MR) * sizeof(float));
    wgt_job j = {kd, g, w, flipped, threads_for(pool, cout), u};
    dj_pool_run(pool, wgt_task, &j, j.T);
}

typedef struct {
    const dj__sgemm_kernel *kd;
    const dj__wino_fns *fn;
    const igeom *g;
    const wplan *w;
    int n;
    dj_opd src;
    const float *bias, *u;
    int relu;
    float *dst, *ws;
    int ntasks;
} wfwd_job;

/* Image lanes, wfwd_task's chunk of images [i0, i1): per group of eight,
 * the interleaved copy and the transforms of each tile position into V;
 * returns V's columns. */
static int wino_il_in(const wfwd_job *j, int i0, int i1, float *xs, float *tmp, float *V)
{
    const igeom *g = j->g, *gx = &j->w->gx;
    const wplan *w = j->w;
    const int wp = gx->wp;
    const ptrdiff_t xpl = (ptrdiff_t)gx->hp * wp * 8;
    const size_t src_img = (size_t)g->cin * g->h * g->w;
    int col = 0;
    for (int g0 = i0; g0 < i1; g0 += 8) {
        const int ng = i1 - g0 < 8 ? i1 - g0 : 8;
        il_copy(j->kd, j->fn, gx, dj__opd_at(j->src, (ptrdiff_t)(g0 * src_img)), src_img, ng, 0,
                g->cin, tmp, xs);
        for (int ty = 0; ty < w->th; ty++)
            for (int tx = 0; tx < w->tw; tx++, col += 8)
                j->fn->in(xs + ((size_t)ty * WT * wp + (size_t)tx * WT) * 8, 8 * wp, 8, 32, xpl,
                          g->cin, V + col, w->vp, w->ld);
    }
    return col;
}

/* Image lanes: the outputs of the chunk [i0, i1) from M. */
static void wino_il_out(const wfwd_job *j, int i0, int i1, const float *M)
{
    const igeom *g = j->g;
    const wplan *w = j->w;
    const size_t plane = (size_t)g->oh * g->ow;
    int col = 0;
    for (int g0 = i0; g0 < i1; g0 += 8) {
        const int ng = i1 - g0 < 8 ? i1 - g0 : 8;
        float *y = j->dst + (size_t)g0 * g->cout * plane;
        for (int ty = 0; ty < w->th; ty++) {
            const int rows = g->oh - ty * WT < WT ? g->oh - ty * WT : WT;
            for (int tx = 0; tx < w->tw; tx++, col += 8) {
                const int cw = g->ow - tx * WT < WT ? g->ow - tx * WT : WT;
                const int cols[8] = {cw, cw, cw, cw, cw, cw, cw, cw};
                j->fn->out(M + col, w->mp, w->ld, g->cout, ng,
                           y + (size_t)ty * WT * g->ow + tx * WT, (ptrdiff_t)(g->cout * plane),
                           rows, cols, g->ow, (ptrdiff_t)plane, j->bias, j->relu);
            }
        }
    }
}

static void wfwd_task(void *arg, int t)
{
    const wfwd_job *j = arg;
    const dj__sgemm_kernel *kd = j->kd;
    const igeom *g = j->g;
    const wplan *w = j->w;
    const int MR = kd->mr, NR = kd->nr, ld = w->ld, rs = 4 * w->xs;
    float *xs = j->ws + (size_t)t * w->task, *row = xs + w->xcp;
    float *V = row + w->tmp, *M = V + WX * w->vp;
    const size_t vs = w->vp, ms = w->mp;
    const size_t ups = (size_t)round_up(g->cout, MR) * g->cin;
    const size_t src_img = (size_t)g->cin * g->h * g->w, plane = (size_t)g->oh * g->ow;
    const int c0 = w->nchunks * t / j->ntasks, c1 = w->nchunks * (t + 1) / j->ntasks;
    for (int c = c0; c < c1; c++) {
        const int i0 = c * w->ipc, i1 = i0 + w->ipc < j->n ? i0 + w->ipc : j->n;
        int col = w->il ? wino_il_in(j, i0, i1, xs, row, V) : 0;
        for (int img = i0; img < i1 && !w->il; img++) {
            split_copy(kd, j->fn, &w->gx, w->xs, dj__opd_at(j->src, (ptrdiff_t)(img * src_img)), 0,
                       g->cin, row, xs);
            for (int ty = 0; ty < w->th; ty++)
                for (int tx = 0; tx < w->tw; tx += 8) {
                    const int nl = w->tw - tx < 8 ? w->tw - tx : 8;
                    j->fn->in(xs + (size_t)ty * WT * rs + tx, rs, w->xs, 1,
                              (ptrdiff_t)w->gx.hp * rs, g->cin, V + col, vs, ld);
                    col += nl;
                }
        }
        for (int x = 0; x < WX; x++)
            dj__sgemm_macro(kd, g->cout, col, g->cin, j->u + x * ups, (size_t)g->cin * MR,
                            V + x * vs, NR, ld, 1.0f, 0.0f, M + x * ms, ld);
        if (w->il) {
            wino_il_out(j, i0, i1, M);
            continue;
        }
        col = 0;
        for (int img = i0; img < i1; img++) {
            float *y = j->dst + (size_t)img * g->cout * plane;
            for (int ty = 0; ty < w->th; ty++) {
                const int rows = g->oh - ty * WT < WT ? g->oh - ty * WT : WT;
                for (int tx = 0; tx < w->tw; tx += 8) {
                    const int nl = w->tw - tx < 8 ? w->tw - tx : 8;
                    int cols[8];
                    for (int l = 0; l < nl; l++)
                        cols[l] = g->ow - (tx + l) * WT < WT ? g->ow - (tx + l) * WT : WT;
                    j->fn->out(M + col, ms, ld, g->cout, nl, y + (size_t)ty * WT * g->ow + tx * WT,
                               WT, rows, cols, g->ow, (ptrdiff_t)plane, j->bias, j->relu);
                    col += nl;
                }
            }
        }
    }
}

/* The forward convolution of geometry g by Winograd: ws holds the plan's u
 * + T * task floats. */
static void wino_forward(dj_pool *pool, const dj__sgemm_kernel *kd, const igeom *g, int n,
                         dj_opd src, dj_opd w, int flipped, const float *bias, int relu,
                         float *dst, float *ws)
{
    wplan wp;
    wino_plan(kd, g, n, &wp);
    wino_weights(pool, kd, g, w, flipped, ws);
    wfwd_job j = {kd, dj__wino_fns_for(kd->isa), g, &wp, n, src, bias, ws, relu, dst, ws + wp.u, 0};
    j.ntasks = threads_for(pool, wp.nchunks);
    dj_pool_run(pool, wfwd_task, &j, j.ntasks);
    dj__conv2d_winograd_calls++;
}

typedef struct {
    const dj__sgemm_kernel *kd;
    const dj__wino_fns *fn;
    const dj_conv2d_dims *d;
    const wplan *w;
    dj_opd x, dy;
    float *dbias, *sums, *V, *Y, *ws;
    size_t task;
    int T;
    int i0, i1, first; /* the chunk's images; whether it is the first */
} wwt_job;

/* The transforms of the chunk's tiles into V and Y: thread t of T takes
 * input channels [cin t / T, cin (t + 1) / T) and the output channels
 * likewise, over every image of the chunk in order, so it alone writes
 * those rows of V and Y (each group's spare lanes are overwritten by its
 * next group). */
static void wwt_tiles_task(void *arg, int t)
{
    const wwt_job *j = arg;
    const dj_conv2d_dims *d = j->d;
    const wplan *w = j->w;
    const int cin = d->c, cout = d->oc, ld = w->ld, T = j->T;
    const int a0 = cin * t / T, a1 = cin * (t + 1) / T, b0 = cout * t / T, b1 = cout * (t + 1) / T;
    float *xs = j->ws + (size_t)t * j->task, *dys = xs + w->xcp;
    float *row = dys + w->ycp;
    const size_t P = (size_t)d->oh * d->ow;
    int col = 0;
    if (w->il) {
        const size_t ximg = (size_t)cin * d->h * d->w, yimg = (size_t)cout * P;
        const int wx = w->gx.wp, wy = w->gy.wp;
        const ptrdiff_t xpl = (ptrdiff_t)w->gx.hp * wx * 8, ypl = (ptrdiff_t)w->gy.hp * wy * 8;
        for (int g0 = j->i0; g0 < j->i1; g0 += 8) {
            const int ng = j->i1 - g0 < 8 ? j->i1 - g0 : 8;
            il_copy(j->kd, j->fn, &w->gx, dj__opd_at(j->x, (ptrdiff_t)(g0 * ximg)), ximg, ng, a0,
                    a1, row, xs);
            il_copy(j->kd, j->fn, &w->gy, dj__opd_at(j->dy, (ptrdiff_t)(g0 * yimg)), yimg, ng, b0,
                    b1, row, dys);
            for (int ty = 0; ty < w->th; ty++)
                for (int tx = 0; tx < w->tw; tx++, col += 8) {
                    j->fn->in(xs + a0 * xpl + ((size_t)ty * WT * wx + (size_t)tx * WT) * 8, 8 * wx,
                              8, 32, xpl, a1 - a0, j->V + (size_t)a0 * ld + col, w->vp, ld);
                    j->fn->dy(dys + b0 * ypl + ((size_t)ty * WT * wy + (size_t)tx * WT) * 8,
                              8 * wy, 8, ypl, b1 - b0, j->Y + (size_t)b0 * ld + col, w->mp, ld);
                }
        }
        return;
    }
    const ptrdiff_t xrs = 4 * w->xs, yrs = 4 * w->ys, xpl = w->gx.hp * xrs, ypl = w->gy.hp * yrs;
    for (int img = j->i0; img < j->i1; img++) {
        split_copy(j->kd, j->fn, &w->gx, w->xs,
                   dj__opd_at(j->x, (ptrdiff_t)((size_t)img * cin * d->h * d->w)), a0, a1, row, xs);
        split_copy(j->kd, j->fn, &w->gy, w->ys, dj__opd_at(j->dy, (ptrdiff_t)((size_t)img * cout * P)),
                   b0, b1, row, dys);
        for (int ty = 0; ty < w->th; ty++)
            for (int tx = 0; tx < w->tw; tx += 8) {
                j->fn->in(xs + a0 * xpl + (size_t)ty * WT * xrs + tx, xrs, w->xs, 1, xpl, a1 - a0,
                          j->V + (size_t)a0 * ld + col, w->vp, ld);
                j->fn->dy(dys + b0 * ypl + (size_t)ty * WT * yrs + tx, yrs, w->ys, ypl, b1 - b0,
                          j->Y + (size_t)b0 * ld + col, w->mp, ld);
                col += w->tw - tx < 8 ? w->tw - tx : 8;
            }
    }
}

/* The chunk's 36 GEMMs, added to the sums (thread t takes a run of the 36
 * values); the thread with value 0 also adds the chunk's dbias, images in
 * order. */
static void wwt_gemm_task(void *arg, int t)
{
    const wwt_job *j = arg;
    const dj__sgemm_kernel *kd = j->kd;
    const dj_conv2d_dims *d = j->d;
    const wplan *w = j->w;
    const int MR = kd->mr, NR = kd->nr, cin = d->c, cout = d->oc, K = w->cpc;
    const int col = wino_cols(w, j->i0, j->i1), x0 = WX * t / j->T, x1 = WX * (t + 1) / j->T;
    float *ap = j->ws + (size_t)t * j->task + w->xcp + w->ycp + w->tmp;
    float *bp = ap + round16((size_t)round_up(cout, MR) * K);
    for (int x = x0; x < x1; x++) {
        dj__sgemm_pack_a(kd, 0, j->Y + x * w->mp, w->ld, cout, col, ap);
        dj__sgemm_pack_b(kd, 1, j->V + x * w->vp, w->ld, col, cin, bp, (size_t)col * NR);
        dj__sgemm_macro(kd, cout, cin, col, ap, (size_t)col * MR, bp, (size_t)col * NR, NR, 1.0f,
                        j->first ? 0.0f : 1.0f, j->sums + (size_t)x * cout * cin, cin);
    }
    if (j->dbias && x0 == 0 && x1 > 0)
        for (int img = j->i0; img < j->i1; img++)
            add_dbias(kd, d, dj__opd_at(j->dy, (ptrdiff_t)((size_t)img * cout * d->oh * d->ow)),
                      img, 0, cout, j->dbias);
}

typedef struct {
    const float *sums;
    float *dw;
    size_t pairs;
    int T;
} wdw_job;

/* dW = G^T S G per (output, input) channel pair; thread t of T takes a
 * run of the pairs. */
static void wdw_task(void *arg, int t)
{
    const wdw_job *j = arg;
    const size_t pairs = j->pairs;
    for (size_t p = pairs * t / j->T; p < pairs * (t + 1) / j->T; p++) {
        double tk[6][3];
        for (int r = 0; r < 6; r++)
            for (int b = 0; b < 3; b++) {
                double s = 0;
                for (int c = 0; c < 6; c++)
                    s += (double)j->sums[(size_t)(r * 6 + c) * pairs + p] * wino_g[c][b];
                tk[r][b] = s;
            }
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) {
                double s = 0;
                for (int r = 0; r < 6; r++)
                    s += wino_g[r][a] * tk[r][b];
                j->dw[p * 9 + (size_t)a * 3 + b] = (float)s;
            }
    }
}

static void wino_backward_weight(dj_pool *pool, const dj__sgemm_kernel *kd,
                                 const dj_conv2d_dims *d, dj_opd x, dj_opd dy, float *dw,
                                 float *dbias, float *ws)
{
    const igeom gf = geom_fwd(d);
    wplan wp;
    wino_plan(kd, &gf, d->n, &wp);
    const int T = dj_pool_threads(pool);
    float *sums = ws, *V = ws + wino_wt_sums(&wp), *Y = V + WX * wp.vp;
    wwt_job j = {kd, dj__wino_fns_for(kd->isa), d, &wp, x, dy, dbias, sums, V, Y,
                 ws + wino_wt_shared(&wp), wino_wt_task(kd, &wp), T, 0, 0, 0};
    for (int c = 0; c < wp.nchunks; c++) {
        j.i0 = c * wp.ipc;
        j.i1 = j.i0 + wp.ipc < d->n ? j.i0 + wp.ipc : d->n;
        j.first = c == 0;
        dj_pool_run(pool, wwt_tiles_task, &j, T);
        dj_pool_run(pool, wwt_gemm_task, &j, T < WX ? T : WX);
    }
    wdw_job k = {sums, dw, (size_t)d->oc * d->c, threads_for(pool, (long long)d->oc * d->c)};
    dj_pool_run(pool, wdw_task, &k, k.T);
    dj__conv2d_winograd_calls++;
}

void dj__conv2d_backward_weight_q_isa(dj_isa isa, dj_pool *pool, const dj_conv2d_dims *d, dj_opd x,
                                      dj_opd dy, float *dw, float *dbias, float *ws)
{
    const dj__sgemm_kernel *kd = dj__sgemm_kernel_for(isa);
    assert(kd && ws);
    plan pl;
    make_plan(kd, d, &pl);
    if (pl.wino_fwd) {
        wino_backward_weight(pool, kd, d, x, dy, dw, dbias, align64(ws));
        return;
    }
    bwd_weight_job j = {kd, d, &pl, x, dy, dw, dbias, align64(ws), 1, 1};
    if (pl.implicit_fwd) {
        if (d->stride_h != 1 || d->stride_w != 1)
            dj__conv2d_strided_calls++;
        /* Each thread packs B for its output channels and copies the padded
         * image for its krows; on a tie, split the side whose repeated work
         * (a copy of dy or of x) is the larger. */
        const int pm = ceil_div(pl.K, kd->mr), pn = ceil_div(d->oc, kd->nr);
        dj__sgemm_grid(pm, pn, threads_for(pool, (long long)pm * pn), d->oc > d->c, &j.tm, &j.tn);
        dj_pool_run(pool, bwd_weight_implicit_task, &j, j.tm * j.tn);
        return;
    }
    /* Splitting dW's columns (krows) gives each thread its own B panels;
     * splitting its rows would pack the same B in every thread. */
    const int pm = ceil_div(d->oc, kd->mr), pn = ceil_div(pl.K, kd->nr);
    dj__sgemm_grid(pm, pn, threads_for(pool, (long long)pm * pn), 1, &j.tm, &j.tn);
    dj_pool_run(pool, bwd_weight_task, &j, j.tm * j.tn);
}

/* ---- the float32 kernels: the same with float32 operands ---- */

void dj__conv2d_forward_isa(dj_isa isa, dj_pool *pool, const dj_conv2d_dims *d, const float *x,
                            const float *w, const float *bias, float *y, float *ws)
{
    dj__conv2d_forward_q_isa(isa, pool, d, dj_opd_f32(x), dj_opd_f32(w), bias, y, ws);
}

void dj__conv2d_backward_data_isa(dj_isa isa, dj_pool *pool, const dj_conv2d_dims *d,
                                  const float *dy, const float *w, float *dx, float *ws)
{
    dj__conv2d_backward_data_q_isa(isa, pool, d, dj_opd_f32(dy), dj_opd_f32(w), dx, ws);
}

void dj__conv2d_backward_weight_isa(dj_isa isa, dj_pool *pool, const dj_conv2d_dims *d,
                                    const float *x, const float *dy, float *dw, float *dbias,
                                    float *ws)
{
    dj__conv2d_backward_weight_q_isa(isa, pool, d, dj_opd_f32(x), dj_opd_f32(dy), dw, dbias, ws);
}

/* ---- the public entry points: the best ISA ---- */

size_t dj_conv2d_q_workspace(const dj_conv2d_dims *d, int nthreads)
{
    return dj_conv2d_workspace(d, nthreads); /* decoding needs no more */
}

void dj_conv2d_forward_q(dj_pool *pool, const dj_conv2d_dims *d, dj_opd x, dj_opd w,
                         const float *bias, float *y, float *ws)
{
    dj__conv2d_forward_q_isa(DJ_ISA_AUTO, pool, d, x, w, bias, y, ws);
}

void dj_conv2d_backward_data_q(dj_pool *pool, const dj_conv2d_dims *d, dj_opd dy, dj_opd w,
                               float *dx, float *ws)
{
    dj__conv2d_backward_data_q_isa(DJ_ISA_AUTO, pool, d, dy, w, dx, ws);
}

void dj_conv2d_backward_weight_q(dj_pool *pool, const dj_conv2d_dims *d, dj_opd x, dj_opd dy,
                                 float *dw, float *dbias, float *ws)
{
    dj__conv2d_backward_weight_q_isa(DJ_ISA_AUTO, pool, d, x, dy, dw, dbias, ws);
}

void dj_conv2d_forward(dj_pool *pool, const dj_conv2d_dims *d, const float *x, const float *w,
                       const float *bias, float *y, float *ws)
{
    dj__conv2d_forward_isa(DJ_ISA_AUTO, pool, d, x, w, bias, y, ws);
}

void dj_conv2d_backward_data(dj_pool *pool, const dj_conv2d_dims *d, const float *dy,
                             const float *w, float *dx, float *ws)
{
    dj__conv2d_backward_data_isa(DJ_ISA_AUTO, pool, d, dy, w, dx, ws);
}

void dj_conv2d_backward_weight(dj_pool *pool, const dj_conv2d_dims *d, const float *x,
                               const float *dy, float *dw, float *dbias, float *ws)
{
    dj__conv2d_backward_weight_isa(DJ_ISA_AUTO, pool, d, x, dy, dw, dbias, ws);
}

/* kernels.h - the math of training in float32; GEMM and convolution also
 * read bfloat16 and 8-bit operands directly (dj_opd, decoded while
 * packing). Every kernel has a plain reference version (suffix _ref: simple
 * loops, single-threaded, written for obviousness) that the tests compare
 * the fast version with.
 *
 * Conventions: row-major; images NCHW; conv weights OIHW; linear weights
 * [out, in]. Backward kernels OVERWRITE their outputs (dx, dw, ...), they do
 * not accumulate. A NULL pool means single-threaded. Results are
 * deterministic for a given thread count (no atomics on floats; reductions
 * in a fixed order). Shapes are trusted: callers (nn/) validate them. */
#ifndef DOJO_KERNELS_H
#define DOJO_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/pool.h"

/* ---- GEMM: C = alpha * op(A) * op(B) + beta * C ----
 * op(A) is M x K (A stored M x K with lda, or K x M if trans_a), op(B) is
 * K x N. beta == 0 means C is not read (may hold NaN). */
void dj_sgemm(dj_pool *pool, int trans_a, int trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
void dj_sgemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* dj_sgemm with the caller's scratch, so that nothing is allocated inside
 * (dj_sgemm allocates its packing buffers on every call): ws holds
 * dj_sgemm_workspace(M, N, K, nthreads) floats, nthreads >= the pool's
 * thread count (0 means no scratch is needed; ws may then be NULL). The
 * results are bit-identical to dj_sgemm's. */
size_t dj_sgemm_workspace(int M, int N, int K, int nthreads);
void dj_sgemm_ws(dj_pool *pool, int trans_a, int trans_b, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                 float *ws);

/* ---- GEMM and convolution on low-precision operands ----
 *
 * An operand of a GEMM or convolution: float32, bfloat16 bits, or 8-bit codes
 * of any 8-bit format decoded through a 256-entry table (the table folds in
 * the format, its exponent bias or power-of-two scale).
 *
 * The contract. Element i of an operand has the value
 *   DJ_OPD_F32   ((const float *)p)[i]
 *   DJ_OPD_BF16  dj_bf16_to_f32(((const uint16_t *)p)[i])   (exact: a 16-bit shift)
 *   DJ_OPD_U8    lut[((const uint8_t *)p)[i]]                 (the float's bits, as stored)
 * and the _q kernels are exactly the float32 kernels (dj_sgemm_ws,
 * dj_conv2d_*) applied to those values: the same packing layout, the same
 * micro-kernels and summation order, accumulation in float32. Their results
 * are bit-identical to the float32 kernel run on an array holding the
 * decoded values, for any thread count. Decoding happens while packing: into
 * the packed A/B panels, the im2col chunks and the zero-padded per-image copy
 * of the implicit convolution, never into a float copy of a whole operand.
 * Leading dimensions and offsets count elements, not bytes. A lut may hold
 * any floats (NaN, Inf included: they propagate as in float32); build one
 * for a dj_format with dj_cf_decode_lut8() (cfloat.h). */
typedef enum { DJ_OPD_F32 = 0, DJ_OPD_BF16, DJ_OPD_U8 } dj_opd_kind;

/* The arithmetic form of a 256-entry table, where it has one: for a code c
 * with a = c & 0x7f below `special`, let n = (a << (23 - mbits)) + exp_add
 * (the exponent and mantissa fields moved into place and rebiased); then
 * lut[c] has the bits of
 *   sign bit of c | n                                   if a >> mbits != 0
 *   sign bit of c | bits of (float(n + den_add) - den_sub)   otherwise
 * (a denormal or zero as an exact difference of two normals: den_add 0,
 * den_sub 2^-bias for the CFloat denormals 2^-bias * 0.m; den_add 2^23,
 * den_sub 2^(1-bias) for IEEE-style ones). A vector decoder computes this
 * instead of gathering from the table; codes with a >= special (NaN, Inf)
 * are still read from the table. dj_lut8_form_of() finds the form and
 * checks it against all 256 entries, bit for bit, so it is never wrong: at
 * worst (mbits 0) the table has none and decoding gathers. The CFloat8,
 * E4M3 and E5M2 tables at every bias and scale have one. */
typedef struct {
    int mbits;       /* mantissa bits 1..6; 0: no arithmetic form */
    int special;     /* 1..0x80: first magnitude code read from the table */
    int32_t exp_add; /* added to the shifted code: (127 - bias) << 23 */
    int32_t den_add; /* 0 or 1 << 23 */
    float den_sub;   /* 2^-bias or 2^(1 - bias) */
    /* The nibble form, where the table has one (nib 1): every entry is a
     * bfloat16 (low 16 bits zero), and for c = h << 4 | l its top byte is
     * (ta[h] + (h & 7 ? tb[l] : t0h[l])) mod 256 and its next byte
     * (h & 7 ? tl[l] : t0l[l]): five 16-entry byte lookups, which a vector
     * decoder does 32 codes at a time. CFloat8 tables at every bias have
     * one (not those with NaN or Inf codes); checked against all 256
     * entries like the arithmetic form. */
    int nib;
    uint8_t ta[16], tb[16], t0h[16], tl[16], t0l[16];
    /* The scaled form, where the table has one (sc 1): for every code c,
     * lut[c] = 2^sc_exp * the float with the bits
     *   sign bit of c | n + min(n & 0x7f800000, sc_den),  n = a << (23 - mbits)
     * (the fields moved into place, not rebiased; sc_den 1 << 23 raises a
     * normal's exponent by one, which makes the CFloat denormals come out
     * as float32 denormals, sc_den 0 does the same for IEEE-style ones). No
     * NaN or Inf codes. A product with this code's value is the product
     * with the other factor multiplied by 2^sc_exp, exactly where that
     * multiplication is: the dot-product kernel scales A's rows so and
     * decodes 8 codes in six vector operations. CFloat8 tables at every bias
     * have one; checked against all 256 entries like the other forms. */
    int sc, sc_exp;
    int32_t sc_den;
} dj_lut8_form;

/* Fills *f for lut (mbits 0 when it has no form); returns f->mbits != 0. */
int dj_lut8_form_of(const float *lut, dj_lut8_form *f);

typedef struct {
    dj_opd_kind kind;
    const void *p;     /* const float *, const uint16_t * (bf16 bits) or const uint8_t * */
    const float *lut;  /* DJ_OPD_U8: lut[code] = value (256 floats); else NULL */
    const dj_lut8_form *form; /* DJ_OPD_U8: lut's arithmetic form, or NULL (decode gathers) */
} dj_opd;
static inline dj_opd dj_opd_f32(const float *p) { dj_opd o = {DJ_OPD_F32, p, NULL, NULL}; return o; }
static inline dj_opd dj_opd_bf16(const uint16_t *p) { dj_opd o = {DJ_OPD_BF16, p, NULL, NULL}; return o; }
static inline dj_opd dj_opd_u8(const uint8_t *p, const float *lut) { dj_opd o = {DJ_OPD_U8, p, lut, NULL}; return o; }
/* The same with the table's form (from dj_lut8_form_of on that table; the
 * values are lut's either way, only the decoding is faster). */
static inline dj_opd dj_opd_u8_form(const uint8_t *p, const float *lut, const dj_lut8_form *form)
{
    dj_opd o = {DJ_OPD_U8, p, lut, form && form->mbits ? form : NULL};
    return o;
}

/* dj_sgemm_ws with operands of any kind (C stays float32). ws holds
 * dj_gemm_q_workspace(M, N, K, nthreads) floats (which serves every kind
 * and equals dj_sgemm_workspace), or is NULL: then the packing buffers are
 * allocated as dj_sgemm does. */
size_t dj_gemm_q_workspace(int M, int N, int K, int nthreads); /* floats */
void dj_gemm_q(dj_pool *pool, int trans_a, int trans_b, int M, int N, int K, float alpha,
               dj_opd A, int lda, dj_opd B, int ldb, float beta, float *C, int ldc, float *ws);

/* ---- 2-D convolution (PyTorch Conv2d, groups = 1, dilation = 1) ---- */
typedef struct {
    int n, c, h, w;         /* input */
    int oc, kh, kw;         /* weight [oc, c, kh, kw] */
    int stride_h, stride_w;
    int pad_h, pad_w;       /* zero padding */
    int oh, ow;             /* output, set by dj_conv2d_dims_init */
    int relu;               /* forward only: y = ReLU(conv + bias) as dj_relu_forward
                             * computes it, in the pass that writes y (0 from
                             * dj_conv2d_dims_init) */
} dj_conv2d_dims;

/* Fills oh/ow; returns DJ_ERR_ARG if the output would be empty. */
dj_status dj_conv2d_dims_init(dj_conv2d_dims *d, int n, int c, int h, int w, int oc, int kh, int kw,
                              int stride_h, int stride_w, int pad_h, int pad_w);
/* Scratch floats the fast kernels need for a pool of `nthreads`; they also
 * serve the same shapes with fewer images (a smaller d->n). */
size_t dj_conv2d_workspace(const dj_conv2d_dims *d, int nthreads);

/* y[n, oc, oh, ow] = conv(x, w) + bias (bias may be NULL); then ReLU if
 * d->relu. */
void dj_conv2d_forward(dj_pool *pool, const dj_conv2d_dims *d, const float *x, const float *w,
                       const float *bias, float *y, float *ws);
/* dx = conv_transpose(dy, w). */
void dj_conv2d_backward_data(dj_pool *pool, const dj_conv2d_dims *d, const float *dy,
                             const float *w, float *dx, float *ws);
/* dw = sum over batch of dy (x) x; dbias = sum of dy (dbias may be NULL). */
void dj_conv2d_backward_weight(dj_pool *pool, const dj_conv2d_dims *d, const float *x,
                               const float *dy, float *dw, float *dbias, float *ws);

/* The convolutions with operands of any kind (bias, outputs and gradients
 * stay float32; see the contract above). ws holds dj_conv2d_q_workspace()
 * floats, which serves every kind (it equals dj_conv2d_workspace). */
size_t dj_conv2d_q_workspace(const dj_conv2d_dims *d, int nthreads); /* floats */
void dj_conv2d_forward_q(dj_pool *pool, const dj_conv2d_dims *d, dj_opd x, dj_opd w,
                         const float *bias, float *y, float *ws);
void dj_conv2d_backward_data_q(dj_pool *pool, const dj_conv2d_dims *d, dj_opd dy, dj_opd w,
                               float *dx, float *ws);
void dj_conv2d_backward_weight_q(dj_pool *pool, const dj_conv2d_dims *d, dj_opd x, dj_opd dy,
                                 float *dw, float *dbias, float *ws);

void dj_conv2d_forward_ref(const dj_conv2d_dims *d, const float *x, const float *w,
                           const float *bias, float *y);
void dj_conv2d_backward_data_ref(const dj_conv2d_dims *d, const float *dy, const float *w,
                                 float *dx);
void dj_conv2d_backward_weight_ref(const dj_conv2d_dims *d, const float *x, const float *dy,
                                   float *dw, float *dbias);

/* ---- pooling (PyTorch MaxPool2d / AvgPool2d semantics) ---- */
typedef struct {
    int n, c, h, w;
    int kh, kw, stride_h, stride_w, pad_h, pad_w;
    int oh, ow; /* set by dj_pool2d_dims_init (floor mode) */
} dj_pool2d_dims;

dj_status dj_pool2d_dims_init(dj_pool2d_dims *d, int n, int c, int h, int w, int kh, int kw,
                              int stride_h, int stride_w, int pad_h, int pad_w);
/* Max pooling; padding is -inf. argmax[i] = index of the chosen input within
 * its (n, c) plane (h * w + w); ties pick the first in scan order. */
void dj_maxpool2d_forward(dj_pool *pool, const dj_pool2d_dims *d, const float *x, float *y,
                          int32_t *argmax);
void dj_maxpool2d_backward(dj_pool *pool, const dj_pool2d_dims *d, const float *dy,
                           const int32_t *argmax, float *dx);
/* MaxPool2d of ReLU(x) in one pass, the same values, argmax and gradients as
 * dj_relu_forward then dj_maxpool2d_forward (ReLU: x < 0 gives +0; -0 and
 * NaN pass); backward: dx = dj_relu_backward(x, dj_maxpool2d_backward(dy)),
 * with x the ReLU's input, computed from y, the forward's output (the mask
 * relu(x) <= 0 at each argmax is y <= 0). No ReLU output is stored. */
void dj_relu_maxpool2d_forward(dj_pool *pool, const dj_pool2d_dims *d, const float *x, float *y,
                               int32_t *argmax);
void dj_relu_maxpool2d_backward(dj_pool *pool, const dj_pool2d_dims *d, const float *y,
                                const float *dy, const int32_t *argmax, float *dx);
/* Average pooling with count_include_pad = true (PyTorch's default). */
void dj_avgpool2d_forward(dj_pool *pool, const dj_pool2d_dims *d, const float *x, float *y);
void dj_avgpool2d_backward(dj_pool *pool, const dj_pool2d_dims *d, const float *dy, float *dx);
/* AdaptiveAvgPool2d((1, 1)): planes = n * c, each of `hw` values. */
void dj_global_avgpool_forward(dj_pool *pool, size_t planes, size_t hw, const float *x, float *y);
void dj_global_avgpool_backward(dj_pool *pool, size_t planes, size_t hw, const float *dy,
                                float *dx);

/* ---- normalisation ---- */
/* BatchNorm2d in training mode: batch statistics over (n, h, w) per channel
 * (biased variance for normalising); running stats updated as PyTorch does:
 * running = (1 - momentum) * running + momentum * batch_stat, with the
 * unbiased variance. Saves mean and 1/sqrt(var + eps) for backward. */
void dj_batchnorm2d_forward_train(dj_pool *pool, int n, int c, int hw, const float *x,
                                  const float *gamma, const float *beta, float eps,
                                  float momentum, float *running_mean, float *running_var,
                                  float *y, float *save_mean, float *save_invstd);
void dj_batchnorm2d_forward_eval(dj_pool *pool, int n, int c, int hw, const float *x,
                                 const float *gamma, const float *beta, float eps,
                                 const float *running_mean, const float *running_var, float *y);
void dj_batchnorm2d_backward(dj_pool *pool, int n, int c, int hw, const float *x, const float *dy,
                             const float *gamma, const float *save_mean, const float *save_invstd,
                             float *dx, float *dgamma, float *dbeta);
/* BatchNorm2d followed by ReLU in one pass: y = relu(batchnorm(x)), the
 * same bits as dj_batchnorm2d_forward_* then dj_relu_forward. The backward
 * takes that y (the mask: dy is dropped where y <= 0) and gives what
 * dj_relu_backward then dj_batchnorm2d_backward give. */
void dj_batchnorm2d_relu_forward_train(dj_pool *pool, int n, int c, int hw, const float *x,
                                       const float *gamma, const float *beta, float eps,
                                       float momentum, float *running_mean, float *running_var,
                                       float *y, float *save_mean, float *save_invstd);
void dj_batchnorm2d_relu_forward_eval(dj_pool *pool, int n, int c, int hw, const float *x,
                                      const float *gamma, const float *beta, float eps,
                                      const float *running_mean, const float *running_var,
                                      float *y);
void dj_batchnorm2d_relu_backward(dj_pool *pool, int n, int c, int hw, const float *x,
                                  const float *y, const float *dy, const float *gamma,
                                  const float *save_mean, const float *save_invstd, float *dx,
                                  float *dgamma, float *dbeta);
/* LayerNorm over the last d values of each of `rows` rows (elementwise
 * affine gamma, beta of length d). */
void dj_layernorm_forward(dj_pool *pool, int rows, int d, const float *x, const float *gamma,
                          const float *beta, float eps, float *y, float *save_mean,
                          float *save_invstd);
void dj_layernorm_backward(dj_pool *pool, int rows, int d, const float *x, const float *dy,
                           const float *gamma, const float *save_mean, const float *save_invstd,
                           float *dx, float *dgamma, float *dbeta);

/* ---- activations (elementwise; backward takes the forward input x) ---- */
void dj_relu_forward(dj_pool *pool, size_t n, const float *x, float *y);
void dj_relu_backward(dj_pool *pool, size_t n, const float *x, const float *dy, float *dx);
/* GELU with the exact erf form (PyTorch's default approximate='none'). */
void dj_gelu_forward(dj_pool *pool, size_t n, const float *x, float *y);
void dj_gelu_backward(dj_pool *pool, size_t n, const float *x, const float *dy, float *dx);
void dj_silu_forward(dj_pool *pool, size_t n, const float *x, float *y);
void dj_silu_backward(dj_pool *pool, size_t n, const float *x, const float *dy, float *dx);

/* ---- dropout: element i is kept iff its uniform draw from the counter
 * generator dj_rng_u32(seed, stream_base + i, 0) is >= p * 2^32; kept values
 * are scaled by 1/(1-p). mask[i] = 1 if kept. */
void dj_dropout_forward(dj_pool *pool, size_t n, float p, uint64_t seed, uint64_t stream_base,
                        const float *x, float *y, uint8_t *mask);
void dj_dropout_backward(dj_pool *pool, size_t n, float p, const uint8_t *mask, const float *dy,
                         float *dx);

/* ---- elementwise helpers ---- */
void dj_add(dj_pool *pool, size_t n, const float *a, const float *b, float *y); /* y = a + b */
/* y = relu(a + b), the same bits as dj_add then dj_relu_forward (a
 * residual sum and the ReLU after it in one pass). */
void dj_add_relu(dj_pool *pool, size_t n, const float *a, const float *b, float *y);
void dj_axpy(dj_pool *pool, size_t n, float alpha, const float *x, float *y);  /* y += alpha x */

/* ---- loss: softmax cross-entropy, mean over the batch, with optional label
 * smoothing (PyTorch CrossEntropyLoss(label_smoothing=s)). Writes the
 * softmax probabilities (n x classes) and returns the mean loss; labels must
 * be in [0, classes). */
double dj_softmax_xent_forward(int n, int classes, const float *logits, const int32_t *labels,
                               float smoothing, float *probs);
/* dlogits = (probs - target) / n, target = (1 - s) onehot + s / classes. */
void dj_softmax_xent_backward(int n, int classes, const float *probs, const int32_t *labels,
                              float smoothing, float *dlogits);

/* ---- optimizer updates (PyTorch semantics, on float32 master weights) ---- */
/* torch.optim.SGD: g += wd * w; buf = momentum * buf + g (buf = g on the first
 * step, signalled by first_step); g = nesterov ? g + momentum * buf : buf;
 * w -= lr * g. momentum 0 ignores buf (may be NULL). */
void dj_sgd_update(dj_pool *pool, size_t n, float *w, const float *g, float *buf, float lr,
                   float momentum, float weight_decay, int nesterov, int first_step);
/* torch.optim.AdamW: w -= lr * wd * w; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps). step t >= 1. */
void dj_adamw_update(dj_pool *pool, size_t n, float *w, const float *g, float *m, float *v,
                     float lr, float beta1, float beta2, float eps, float weight_decay, long step);

#endif

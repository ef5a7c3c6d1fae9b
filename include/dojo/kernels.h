/* kernels.h - the math of training, float32 (the 8-bit operand paths come
 * with the precision issue). Every kernel has a plain reference version
 * (suffix _ref: simple loops, single-threaded, written for obviousness) that
 * the tests compare the fast version with.
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

/* ---- 2-D convolution (PyTorch Conv2d, groups = 1, dilation = 1) ---- */
typedef struct {
    int n, c, h, w;         /* input */
    int oc, kh, kw;         /* weight [oc, c, kh, kw] */
    int stride_h, stride_w;
    int pad_h, pad_w;       /* zero padding */
    int oh, ow;             /* output, set by dj_conv2d_dims_init */
} dj_conv2d_dims;

/* Fills oh/ow; returns DJ_ERR_ARG if the output would be empty. */
dj_status dj_conv2d_dims_init(dj_conv2d_dims *d, int n, int c, int h, int w, int oc, int kh, int kw,
                              int stride_h, int stride_w, int pad_h, int pad_w);
/* Scratch floats the fast kernels need for a pool of `nthreads`. */
size_t dj_conv2d_workspace(const dj_conv2d_dims *d, int nthreads);

/* y[n, oc, oh, ow] = conv(x, w) + bias (bias may be NULL). */
void dj_conv2d_forward(dj_pool *pool, const dj_conv2d_dims *d, const float *x, const float *w,
                       const float *bias, float *y, float *ws);
/* dx = conv_transpose(dy, w). */
void dj_conv2d_backward_data(dj_pool *pool, const dj_conv2d_dims *d, const float *dy,
                             const float *w, float *dx, float *ws);
/* dw = sum over batch of dy (x) x; dbias = sum of dy (dbias may be NULL). */
void dj_conv2d_backward_weight(dj_pool *pool, const dj_conv2d_dims *d, const float *x,
                               const float *dy, float *dw, float *dbias, float *ws);

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

/* nn.h - layers with forward and backward, and models built from a JSON spec.
 *
 * A spec names layers as PyTorch does, so a Dojo model is an nn.Sequential:
 *
 *   { "name": "fmnist-cnn",
 *     "input": [1, 28, 28],
 *     "normalize": {"mean": [0.286], "std": [0.353]},      (optional)
 *     "layers": [ {"type": "Conv2d", "out_channels": 32, "kernel_size": 3},
 *                 {"type": "ReLU"}, ...,
 *                 {"type": "Residual", "body": [...], "shortcut": [...]} ],
 *     "train": { ... }                                      (optional; read by train/)
 *   }
 *
 * Layer types and fields (PyTorch's names; kernel_size/stride/padding take an
 * int or [h, w]): Conv2d(out_channels, kernel_size, stride=1, padding=0,
 * bias=true); Linear(out_features, bias=true); BatchNorm2d(eps=1e-5,
 * momentum=0.1); LayerNorm(eps=1e-5; normalises over the whole per-sample
 * shape, elementwise affine); ReLU; GELU; SiLU; MaxPool2d(kernel_size,
 * stride=kernel_size, padding=0); AvgPool2d(same); AdaptiveAvgPool2d
 * (output_size 1 or [1, 1] only); Flatten; Dropout(p=0.5); Residual(body,
 * shortcut optional): output = body(x) + (shortcut(x) or x). Channel and
 * feature counts are inferred from "input". Errors name the layer path
 * (layers[3], layers[5].body[1]) and field, and say what shape arrived.
 *
 * Parameters carry PyTorch state_dict names for the equivalent
 * nn.Sequential: "{i}.weight", "{i}.bias", "{i}.running_mean",
 * "{i}.running_var", "{i}.num_batches_tracked"; a Residual at index i names
 * its parts "{i}.body.{j}..." and "{i}.shortcut.{j}...". Layouts are
 * PyTorch's (conv OIHW, linear [out, in]). */
#ifndef DOJO_NN_H
#define DOJO_NN_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/json.h"
#include "dojo/pool.h"
#include "dojo/precision.h"
#include "dojo/status.h"
#include "dojo/tensor.h"

typedef struct dj_model dj_model;

/* A learnable parameter or a buffer of the model. */
typedef struct {
    char name[128];     /* state_dict name */
    dj_tensor value;    /* float32 master copy (num_batches_tracked: i64) */
    dj_tensor grad;     /* float32, same shape; unallocated for buffers */
    int is_buffer;      /* running stats and counters: saved, not trained */
    int no_decay;       /* biases and norm affine parameters */
} dj_param;

/* Builds a model from spec text; `source` names it in errors (a path).
 * On error returns a status and fills err with one line naming the file,
 * the layer path and the field. */
dj_status dj_model_parse(const char *text, size_t len, const char *source, dj_model **out,
                         char *err, size_t errlen);
dj_status dj_model_load(const char *path, dj_model **out, char *err, size_t errlen);
void dj_model_free(dj_model *m);

const char *dj_model_name(const dj_model *m);
/* The spec's "train" object (NULL if absent); valid while m lives. */
const dj_json_value *dj_model_train_spec(const dj_model *m);
/* Input shape [c, h, w] (or [features] with ndim 1). */
int dj_model_input_shape(const dj_model *m, int64_t shape[3]);
size_t dj_model_input_size(const dj_model *m);   /* values per sample */
size_t dj_model_output_size(const dj_model *m);  /* logits per sample */
/* Per-channel normalisation (mean 0 / std 1 when the spec has none). */
const float *dj_model_norm_mean(const dj_model *m);
const float *dj_model_norm_std(const dj_model *m);

dj_param *dj_model_params(dj_model *m, size_t *count);
size_t dj_model_param_count(const dj_model *m); /* trainable scalars */
/* Forward FLOPs per sample (conv and linear multiply-adds x 2). */
uint64_t dj_model_flops(const dj_model *m);
/* One line per layer: index, type, output shape, parameter count. */
void dj_model_summary(const dj_model *m, char *buf, size_t size);

/* PyTorch's default initialisation (kaiming_uniform(a=sqrt(5)) for weights,
 * uniform(+-1/sqrt(fan_in)) for biases, ones/zeros for norms), drawn from
 * the counter generator keyed by seed: same seed, same weights. */
void dj_model_init(dj_model *m, uint64_t seed);

/* Sizes activation buffers for up to max_batch samples and scratch for a
 * pool of up to nthreads threads (call once; calling again with a larger
 * batch or thread count re-allocates, a smaller one keeps the plan). No
 * allocation happens in forward/backward after that. Refuses (DJ_ERR_RANGE)
 * plans over 32 GiB or with a buffer over 2^31 values. */
dj_status dj_model_prepare(dj_model *m, int max_batch, int nthreads);
/* Why the last dj_model_prepare failed ("" if it did not), e.g. "fmnist-cnn:
 * batch 100000 needs 52.3 GiB of activations, more than the 32 GiB limit". */
const char *dj_model_error(const dj_model *m);

/* Forward pass on n <= max_batch samples of normalised input (n x input
 * size, NCHW). train = 1 uses batch statistics, updates running stats and
 * applies dropout with random bits keyed by (seed, step). Returns the
 * logits (n x output size), valid until the next forward; NULL when the
 * model is not prepared for n samples or for the pool's thread count. */
const float *dj_model_forward(dj_model *m, dj_pool *pool, const float *x, int n, int train,
                              uint64_t seed, uint64_t step);
/* Backward pass of the last training forward: writes (overwrites) every
 * parameter's grad from dlogits (n x output size). */
void dj_model_backward(dj_model *m, dj_pool *pool, const float *dlogits);

/* ---- where the time goes ---- */

/* Per-layer timing: on != 0 zeroes the counters and times every layer's
 * forward and backward from then on (two clock reads per layer call);
 * 0 stops it. */
void dj_model_profile(dj_model *m, int on);

/* One layer's share of the profiled steps. Times are self times: a
 * Residual's exclude its body and shortcut (what is left is the sum). */
typedef struct {
    char name[112];           /* "3.body.1" */
    const char *kind;         /* "Conv2d" */
    int depth;                /* Residual nesting */
    int fused;                /* done by another layer's kernel: 1 the next one (a ReLU
                               * before a MaxPool2d), 2 the one before (a ReLU after a
                               * BatchNorm2d) */
    int64_t out[3];           /* per-sample output shape */
    int out_ndim;
    double forward_s, backward_s;
    double encode_s;          /* of those, quantising operands (8-bit, bf16 policies) */
    double cpu_s;             /* process CPU time (all threads) of forward and backward */
} dj_layer_profile;

/* Fills up to cap entries in depth-first order (out may be NULL); returns
 * the number of layers. */
size_t dj_model_profile_report(const dj_model *m, dj_layer_profile *out, size_t cap);

/* ---- precision policies (precision.h) ---- */

/* Sets the model's precision policy: which Conv2d/Linear layers read their
 * operands in which format (all but those named by pc->keep_fp32). Call
 * before dj_model_prepare (a later call drops the plan: prepare again).
 * DJ_ERR_ARG, with dj_model_error() saying why, when keep_fp32 names no
 * such layer. */
dj_status dj_model_set_precision(dj_model *m, const dj_precision_config *pc);

/* What the formats did to one quantised tensor since the last reset. */
typedef struct {
    char name[160];           /* "3.weight", "3.input", "3.grad_output" */
    const char *format;       /* "cfloat8_1_4_3", ... */
    int scaled;               /* OCP: bias = fixed bias + scale exponent */
    int bias_min, bias_max;   /* (effective) bias used */
    float amax;               /* largest magnitude seen */
    int64_t overflow;         /* elements beyond the largest value (saturated) */
    int64_t underflow;        /* non-zero elements that became zero */
    int64_t elements, steps;
} dj_quant_stat;

/* Fills up to cap entries (out may be NULL) and returns how many quantised
 * tensors the model has; reset != 0 then starts new counts. */
size_t dj_model_quant_stats(dj_model *m, dj_quant_stat *out, size_t cap, int reset);
/* Empties every amax history (the start of an epoch). */
void dj_model_quant_new_epoch(dj_model *m);
/* Nonzero if parameter i (dj_model_params order) is the weight of a
 * Conv2d/Linear that runs quantised under the policy. */
int dj_model_param_quantized(const dj_model *m, size_t i);
/* Bytes of the low-precision weight copies the GEMM/conv kernels read. */
size_t dj_model_quant_weight_bytes(const dj_model *m);

#endif

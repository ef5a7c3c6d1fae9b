/* nn_internal.h - the model's insides, shared by the files of src/nn/ and by
 * the tests that look under the hood (gradient checks need each layer's
 * configuration, its saved state and the gradient with respect to the
 * input, none of which belongs in the public nn.h).
 *
 * A model is a tree: a sequence (dj_seq) of layers, where a Residual layer
 * owns two more sequences (body and, optionally, shortcut). model.c builds
 * the tree from the spec and plans its buffers, layers.c runs forward and
 * backward over it, init.c fills the parameters. */
#ifndef DOJO_NN_INTERNAL_H
#define DOJO_NN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/kernels.h"
#include "dojo/nn.h"
#include "dojo/precision.h"
#include "dojo/rng.h"

/* ---- quant.c: one tensor's quantiser (format, bias choice, statistics) ---- */
typedef struct {
    dj_format fmt;        /* DJ_FMT_BF16 or an 8-bit format */
    dj_rounding rounding;
    int scaled;           /* OCP: power-of-two scale; bias = fixed bias + scale exponent */
    int current;          /* scale by this step's amax (else the history's largest) */
    int history, margin;
    float hist[DJ_AMAX_HISTORY_MAX];
    int hcount, hpos;
    int bias;             /* (effective) bias of the last quantisation */
    int lut_bias;         /* bias lut was built for (-1: none) */
    float lut[256];
    dj_lut8_form form;    /* lut's arithmetic form (kernels.h) */
    /* statistics since the last dj_quant_take */
    int64_t overflow, underflow, elements, calls;
    int bias_min, bias_max;
    float amax;
} dj_quant;

void dj_quant_init(dj_quant *q, dj_format fmt, dj_rounding r, int scaled, int current,
                   int history, int margin);
/* Empties the amax history (at each epoch's start). */
void dj_quant_reset_history(dj_quant *q);
/* Quantises x[0, n) into codes (uint8_t for 8-bit formats, uint16_t for
 * bf16), element i drawing its stochastic bits from (seed, i). record = 1
 * (training) enters the amax into the history and counts statistics;
 * record = 0 (evaluation) scales by the current amax and changes nothing.
 * Returns the operand for the kernels. */
dj_opd dj_quant_run(dj_quant *q, dj_pool *pool, const float *x, size_t n, void *codes,
                    uint64_t seed, int record);
/* The same from 16-bit codes (SHP master weights) of src_fmt at src_bias;
 * the source must be a sign-magnitude format. */
dj_opd dj_quant_run16(dj_quant *q, dj_pool *pool, const uint16_t *src, dj_format src_fmt,
                      int src_bias, size_t n, void *codes, uint64_t seed, int record);
/* The bias for a given amax (scaled formats: fixed bias + scale exponent). */
int dj_quant_bias_for(const dj_quant *q, float amax);
/* Largest |x| (NaN ignored). */
float dj_amax(dj_pool *pool, const float *x, size_t n);

typedef enum {
    DJ_L_CONV2D = 0,
    DJ_L_LINEAR,
    DJ_L_BATCHNORM2D,
    DJ_L_LAYERNORM,
    DJ_L_RELU,
    DJ_L_GELU,
    DJ_L_SILU,
    DJ_L_MAXPOOL2D,
    DJ_L_AVGPOOL2D,
    DJ_L_ADAPTIVEAVGPOOL2D,
    DJ_L_FLATTEN,
    DJ_L_DROPOUT,
    DJ_L_RESIDUAL,
    DJ_L_COUNT
} dj_layer_kind;

/* PyTorch's class name of a kind ("Conv2d"). */
const char *dj_layer_kind_name(dj_layer_kind k);

typedef struct dj_layer dj_layer;

/* A sequence of layers (the model itself, a Residual's body or shortcut)
 * and the two gradient buffers its backward pass alternates between. */
typedef struct {
    dj_layer *layers;
    int count;
    size_t gsize;        /* floats per sample of the largest gradient */
    float *gbuf[2];      /* max_batch * gsize each, after prepare */
} dj_seq;

/* Per-sample shape: ndim 3 is [c, h, w], ndim 1 is [features]. */
typedef struct {
    int ndim;
    int64_t d[3];
} dj_shape;

struct dj_layer {
    dj_layer_kind kind;
    int uid;             /* depth-first index over the whole tree (dropout stream) */
    char name[112];      /* state_dict prefix without the dot: "3", "3.body.1" */
    dj_shape in, out;
    size_t in_size, out_size; /* values per sample */
    uint64_t flops;      /* forward multiply-adds x 2 per sample (conv, linear) */

    /* configuration from the spec */
    int out_ch;          /* Conv2d out_channels, Linear out_features */
    int kh, kw, sh, sw, ph, pw; /* Conv2d and pooling */
    int has_bias;        /* Conv2d, Linear */
    float eps, momentum; /* BatchNorm2d, LayerNorm */
    float p;             /* Dropout */
    dj_seq body, shortcut; /* Residual */
    int has_shortcut;

    /* indices into the model's parameter array, -1 when absent */
    int p_weight, p_bias, p_mean, p_var, p_count;

    /* buffers, allocated by dj_model_prepare for max_batch samples */
    float *y;            /* output (NULL for layers whose output is their input) */
    float *save_mean, *save_invstd; /* BatchNorm2d: c each; LayerNorm: max_batch each */
    int32_t *argmax;     /* MaxPool2d */
    uint8_t *mask;       /* Dropout */

    /* state of the last forward */
    const float *x;      /* the input it saw */
    int fwd_train;       /* it ran in training mode */
    /* Conv2d/Linear under an 8-bit or bf16 policy (NULL: float32) */
    struct dj_layer_quant *q;
    /* A quantised Conv2d that runs, in the same step, just after x_from (a
     * quantised Conv2d with the same input quantiser settings) on the same
     * input tensor: a residual block's shortcut and its body's first
     * convolution. It takes x_from's input codes and input quantiser state
     * (bias, history, statistics) instead of encoding the tensor again;
     * the two quantisers see the same tensor every step from the same
     * resets, so that state is what its own would be. Set by
     * dj_model_set_precision. */
    struct dj_layer *x_from;
    int dropped;         /* Dropout applied a mask (train and p > 0) */
    /* A ReLU followed by a MaxPool2d in the same sequence: the pool does both
     * in one pass (dj_relu_maxpool2d_*); the ReLU passes x and dy through and
     * stores nothing. Set on both layers by dj_model_prepare. */
    int relu_pool;
    /* A BatchNorm2d followed by a ReLU (that is not fused with a pool): the
     * batch norm applies it (dj_batchnorm2d_relu_*) and the ReLU passes x
     * and dy through, storing nothing. Set on both by dj_model_prepare. */
    int bn_relu;
    /* A Residual followed by a ReLU (that is not fused with a pool): the
     * sum applies it (dj_add_relu), its backward masks dy by its output
     * before the branches; the ReLU passes x and dy through. Set on both. */
    int res_relu;
    /* A Conv2d followed by a ReLU (that is not fused with a pool): the
     * convolution's forward applies it as it writes y (dj_conv2d_dims.relu)
     * and the ReLU's forward passes x through; its backward is the ReLU's
     * own, on x = relu(conv), whose mask x <= 0 is the same. Set on both. */
    int conv_relu;

    /* dj_model_profile: inclusive seconds of forward, backward, encoding;
     * process CPU seconds of forward and backward */
    double t_fwd, t_bwd, t_enc, t_cpu;
};

/* Size limits that keep hostile specs from asking for terabytes. */
typedef struct {
    uint64_t max_params;     /* scalars in all parameters and buffers */
    uint64_t max_acts;       /* activation values per sample, all layers */
    uint64_t max_flops;      /* forward FLOPs per sample */
    uint64_t max_layer_size; /* values per sample of one layer's in/output */
    int max_layers;          /* layers in the whole tree */
    int max_depth;           /* Residual nesting */
} dj_nn_limits;

/* The limits dj_model_parse applies. */
void dj_nn_default_limits(dj_nn_limits *lim);

/* dj_model_parse with explicit limits (the fuzzer uses small ones). */
dj_status dj_model_parse_limits(const char *text, size_t len, const char *source,
                                const dj_nn_limits *lim, dj_model **out, char *err,
                                size_t errlen);

struct dj_model {
    char *name;
    char *source;
    dj_json_doc *doc;
    const dj_json_value *train;

    dj_shape input;
    size_t in_size, out_size;
    dj_shape output;
    int norm_channels;
    float *norm_mean, *norm_std;

    dj_seq top;
    int nlayers;         /* in the whole tree */

    dj_param *params;
    size_t nparams, params_cap;
    size_t trainable;    /* scalars */
    uint64_t flops;      /* forward, per sample */
    uint64_t acts;       /* activation values per sample */

    /* plan (dj_model_prepare) */
    int max_batch, nthreads;
    float *ws;           /* conv workspace shared by all conv layers */
    size_t ws_floats;
    size_t plan_bytes;

    /* last forward/backward */
    int last_n, last_train;
    const float *out;
    int want_dinput;     /* backward also computes d(loss)/d(input) */
    const float *dinput;

    char error[256];     /* why the last dj_model_prepare failed */

    /* precision policy (dj_model_set_precision) */
    dj_precision_config prec;
    uint64_t last_seed, last_step; /* of the last forward: keys backward's rounding */
    int profile;         /* dj_model_profile: time each layer */
};

/* The quantisers and code buffers of a Conv2d/Linear layer. */
typedef struct dj_layer_quant {
    dj_quant w, x, g;    /* weight, input activation, gradient of the output */
    void *wc, *xc, *gc;  /* their codes */
    dj_opd wo, xo;       /* operands of the last forward */
} dj_layer_quant;

/* ---- layers.c ------------------------------------------------------------ */

/* Forward over a sequence; returns the output (a layer buffer, or x itself
 * when every layer is an identity). */
const float *dj_seq_forward(dj_model *m, dj_seq *s, dj_pool *pool, const float *x, int n,
                            int train, uint64_t seed, uint64_t step);
/* Backward over a sequence given d(out); writes parameter grads and returns
 * d(input) (in one of the sequence's buffers, or dy itself), or NULL when
 * need_dx is 0 and the first layer could skip it. */
const float *dj_seq_backward(dj_model *m, dj_seq *s, dj_pool *pool, const float *dy, int n,
                             int need_dx);

/* The seed a Dropout layer draws its mask with at a given step. */
uint64_t dj_dropout_seed(uint64_t seed, uint64_t step, int uid);

/* ---- extras for tests and tools ------------------------------------------- */

/* Makes dj_model_backward also compute the gradient with respect to the
 * model input; dj_model_input_grad returns it (n x input size) after a
 * backward, NULL before. */
void dj_model_set_input_grad(dj_model *m, int on);
const float *dj_model_input_grad(const dj_model *m);


/* Whether L is a ReLU whose forward a neighbour does (the pool after it, or
 * the batch norm, residual sum or convolution before it): it passes x
 * through and has no output buffer. */
static inline int dj_nn_relu_forward_fused(const struct dj_layer *L)
{
    return L->kind == DJ_L_RELU && (L->relu_pool || L->bn_relu || L->res_relu || L->conv_relu);
}

/* Seed derivation (see rng.h). */
static inline uint64_t dj_nn_mix64(uint64_t z)
{
    return dj_mix64(z);
}

#endif

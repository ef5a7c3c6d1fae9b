/* precision.h - training precision policies and per-tensor scaling.
 *
 * A policy says in which number format the operands of every GEMM and
 * convolution are stored (weights and activations forward, gradients
 * backward), in which format the master weights and optimizer moments live,
 * and how each tensor's exponent bias (CFloat) or power-of-two scale (OCP
 * FP8) is chosen. Accumulation is always float32.
 *
 *   fp32      everything float32 (the reference)
 *   bf16      GEMM/conv operands (weights, activations, gradients) in bf16,
 *             round to nearest
 *   cfp8      forward operands in CFloat8_1_4_3 (round to nearest), gradients
 *             flowing into GEMM/conv in CFloat8_1_5_2 (stochastic rounding),
 *             per-tensor bias, fp32 master weights and optimizer state
 *   cfp8-shp  as cfp8, with the GEMM/conv weights' master copy and their
 *             optimizer moments stored in SHP (CFloat16, per-tensor bias),
 *             updated with stochastic rounding
 *   ocp8      as cfp8 with OCP E4M3 forward / E5M2 backward and a per-tensor
 *             power-of-two scale instead of a bias
 *
 * Layers named by keep_fp32 (default "first,last": the first and the last
 * GEMM/conv layer of the model) run in float32 under every policy; see
 * docs/PRECISION.md for why and for what was measured.
 *
 * Scaling. A tensor's bias is the largest at which its largest magnitude
 * (amax), times 2^margin, does not overflow (dj_cf_bias_for_amax). Weights
 * use the current amax. Activations and gradients use, by default, the
 * largest amax of the last `history` steps of the epoch (delayed scaling, as
 * FP8 training on GPUs does); the current step's amax enters the history, so
 * after an overflow the bias adapts on the next step. The history starts
 * empty each epoch (the first step uses the current amax), which keeps a
 * resumed run bit-identical to an uninterrupted one. */
#ifndef DOJO_PRECISION_H
#define DOJO_PRECISION_H

#include "dojo/cfloat.h"

typedef enum {
    DJ_PREC_FP32 = 0,
    DJ_PREC_BF16,
    DJ_PREC_CFP8,
    DJ_PREC_CFP8_SHP,
    DJ_PREC_OCP8,
    DJ_PREC_COUNT
} dj_precision;

typedef enum { DJ_SCALING_DELAYED = 0, DJ_SCALING_CURRENT } dj_scaling;

#define DJ_AMAX_HISTORY_MAX 64

typedef struct {
    dj_precision precision;
    dj_scaling scaling;
    int history;          /* delayed scaling: steps of amax history, 1..64 */
    int margin;           /* powers of two of headroom, 0..8 */
    char keep_fp32[128];  /* "first,last" (default), "none", or layer names "0,3.body.0" */
} dj_precision_config;

void dj_precision_config_defaults(dj_precision_config *p);
const char *dj_precision_name(dj_precision p);      /* "cfp8-shp" */
int dj_precision_from_name(const char *s, dj_precision *p); /* 0 on success */
const char *dj_scaling_name(dj_scaling s);
int dj_scaling_from_name(const char *s, dj_scaling *out);

/* The formats of a policy: forward operands, backward gradients, master
 * weights of GEMM/conv layers (DJ_FMT_COUNT = float32 for fwd/bwd/master). */
typedef struct {
    dj_format fwd, bwd, master;
    dj_rounding fwd_round, bwd_round;
    int scaled; /* OCP: power-of-two scale instead of bias */
} dj_precision_formats;
dj_precision_formats dj_precision_formats_of(dj_precision p);

#endif

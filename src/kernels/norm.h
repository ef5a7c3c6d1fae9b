/* norm.h - the inner loops of the batch and layer normalisation kernels
 * (norm.c), one set per instruction set (norm_impl.h, built plain and with
 * AVX2), bit-identical to each other. */
#ifndef DOJO_NORM_H
#define DOJO_NORM_H
#include <stddef.h>

#include "dojo/cpu.h"

/* The coefficients of dx = scale * ((g - mg) - ((x - m) - shift) * k). */
typedef struct {
    double shift, mg, k, scale;
} dj__norm_coef;

typedef struct {
    /* Adds the sums of d = x - shift and d^2 over x[0..n) to *s1, *s2, in
     * double. */
    void (*sums)(const float *x, size_t n, double shift, double *s1, double *s2);
    /* Adds sum d, sum g and sum g d over [0..n) to s[0..2], with d = x - m
     * and g = dy, in double. Where mask is not NULL, g is 0 where mask <= 0
     * (a ReLU's backward, mask its output); where gamma is not NULL, g is
     * multiplied by it. */
    void (*bwd_sums)(const float *x, const float *dy, const float *mask, const float *gamma,
                     size_t n, float m, double s[3]);
    /* dx over [0..n) from the coefficients, in double (g as above). */
    void (*bwd_dx)(const float *x, const float *dy, const float *mask, const float *gamma,
                   float *dx, size_t n, float m, const dj__norm_coef *c);
    /* y = ((x - mean_hi) - mean_lo) * scale + shift over [0..n) in float,
     * then, if relu, 0 where it is < 0 (NaN and -0 pass, as dj_relu_forward);
     * y may be x. */
    void (*normalize)(const float *x, float *y, size_t n, float mean_hi, float mean_lo,
                      float scale, float shift, int relu);
} dj__norm_fns;

/* The loops for an ISA (generic for any that has none of its own). */
const dj__norm_fns *dj__norm_fns_for(dj_isa isa);
extern const dj__norm_fns dj__norm_generic;
#ifdef DOJO_X86
extern const dj__norm_fns dj__norm_avx2;
#endif

#endif

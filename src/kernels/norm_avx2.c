/* norm_avx2.c - the normalisation loops (norm_impl.h) with AVX2: four
 * doubles or eight floats per register. Built with -mavx2 (and
 * -ffp-contract=off: no fused multiply-adds, the same bits as the generic
 * loops); called only when the CPU has AVX2. */
#define DJ_NORM_NAME dj__norm_avx2
#include "kernels/norm_impl.h"

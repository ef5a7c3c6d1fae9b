/* winograd_avx2.c - the Winograd tile transforms (winograd_impl.h) with
 * AVX2 and FMA: one tile per lane of a ymm register. Built with -mavx2
 * -mfma; called only when the CPU has AVX2. */
#define DJ_WINO_NAME dj__wino_avx2
#include "kernels/winograd_impl.h"

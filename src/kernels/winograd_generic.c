/* winograd_generic.c - the Winograd tile transforms (winograd_impl.h) for
 * any CPU, and the choice of transforms per ISA. */
#define DJ_WINO_NAME dj__wino_generic
#include "kernels/winograd_impl.h"

const dj__wino_fns *dj__wino_fns_for(dj_isa isa)
{
#ifdef DOJO_X86
    if (isa == DJ_ISA_AVX2 || isa == DJ_ISA_AVX512)
        return &dj__wino_avx2;
#endif
    (void)isa;
    return &dj__wino_generic;
}

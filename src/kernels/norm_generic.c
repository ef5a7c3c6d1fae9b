/* norm_generic.c - the normalisation loops (norm_impl.h) for any CPU, and
 * the choice of loops per ISA. */
#define DJ_NORM_NAME dj__norm_generic
#include "kernels/norm_impl.h"

const dj__norm_fns *dj__norm_fns_for(dj_isa isa)
{
#ifdef DOJO_X86
    if (isa == DJ_ISA_AVX2 || isa == DJ_ISA_AVX512)
        return &dj__norm_avx2;
#endif
    (void)isa;
    return &dj__norm_generic;
}

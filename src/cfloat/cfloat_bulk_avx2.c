/* cfloat_bulk_avx2.c - the bulk conversion kernels compiled for avx2
 * (flags set per file in CMakeLists.txt). */
#define DJ_ISA_SUFFIX avx2
#include "cfloat/cfloat_bulk_impl.h"

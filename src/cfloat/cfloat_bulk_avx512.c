/* cfloat_bulk_avx512.c - the bulk conversion kernels compiled for avx512
 * (flags set per file in CMakeLists.txt). */
#define DJ_ISA_SUFFIX avx512
#include "cfloat/cfloat_bulk_impl.h"

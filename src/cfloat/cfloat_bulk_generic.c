/* cfloat_bulk_generic.c - the bulk conversion kernels compiled for generic
 * (flags set per file in CMakeLists.txt). */
#define DJ_ISA_SUFFIX generic
#include "cfloat/cfloat_bulk_impl.h"

/* vec4.h - four-float vectors (GCC/clang vector extensions) for the plain C
 * kernels, the even/odd lane shuffles that stride-2 loops need, ReLU on them,
 * and DJ_ALWAYS_INLINE. */
#ifndef DOJO_VEC4_H
#define DOJO_VEC4_H
#include <stdint.h>

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

/* Lanes 0, 2, 4, 6 and 1, 3, 5, 7 of a:b; ZIP_LO(a, b) is a0 b0 a1 b1 and
 * ZIP_HI(a, b) a2 b2 a3 b3 (clang and GCC >= 12 spell it
 * __builtin_shufflevector, older GCC __builtin_shuffle). */
#if defined(__clang__) || __GNUC__ >= 12
#define EVEN4(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6)
#define ODD4(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7)
#define ZIP_LO4(a, b) __builtin_shufflevector(a, b, 0, 4, 1, 5)
#define ZIP_HI4(a, b) __builtin_shufflevector(a, b, 2, 6, 3, 7)
#else
#define EVEN4(a, b) __builtin_shuffle(a, b, (v4i){0, 2, 4, 6})
#define ODD4(a, b) __builtin_shuffle(a, b, (v4i){1, 3, 5, 7})
#define ZIP_LO4(a, b) __builtin_shuffle(a, b, (v4i){0, 4, 1, 5})
#define ZIP_HI4(a, b) __builtin_shuffle(a, b, (v4i){2, 6, 3, 7})
#endif

#define DJ_ALWAYS_INLINE static inline __attribute__((always_inline))

/* ReLU as dj_relu_forward computes it (x < 0: +0; -0 and NaN stay) where
 * relu is set, else v itself; one value and four lanes. */
static inline float relu_in(float v, int relu)
{
    return relu && v < 0.0f ? 0.0f : v;
}

static inline v4f relu_in4(v4f v, int relu)
{
    return relu ? (v4f)((v4i)v & ~(v < 0.0f)) : v;
}

#endif

/* gemm_avx512.c - the AVX-512 float32 GEMM micro-kernel: the AVX2 kernel's
 * body (gemm_ukr_impl.h, shared) at twice the width, a 6 x 32 tile of C in
 * twelve zmm accumulators. Sharing the body keeps the kernel that the
 * development machines cannot run identical in every line but the vector
 * operations to the one they test, except the main loop: AVX2 runs it in
 * assembly, this kernel in the body's C (the same FMAs in the same order;
 * AVX2 runs that C for the last k % 4 steps). The tests run it against the
 * reference, and its tiles against a scalar fmaf chain bit for bit,
 * wherever the CPU has AVX-512.
 *
 * Built with -mavx512f/bw/dq/vl; called only when
 * dj_cpu_supports(DJ_ISA_AVX512). */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/gemm_internal.h"

#define DJ_V __m512
#define DJ_VW 16
#define DJ_V_ZERO() _mm512_setzero_ps()
#define DJ_V_LOAD(p) _mm512_loadu_ps(p)
#define DJ_V_STORE(p, v) _mm512_storeu_ps(p, v)
#define DJ_V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define DJ_V_MUL(a, b) _mm512_mul_ps(a, b)
#define DJ_V_SET1(x) _mm512_set1_ps(x)
#define DJ_V_BCAST(p) _mm512_set1_ps(*(p))
#define DJ_UKR_NAME(base) base##avx512
#include "kernels/gemm_ukr_impl.h"

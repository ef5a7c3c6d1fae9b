/* gemm_ref.c - the reference GEMM that the fast one is tested against:
 * three loops, one element of C at a time, the dot product accumulated in
 * double so that it is (nearly) the exact result the fast kernels approach.
 * Same conventions as dj_sgemm: beta == 0 does not read C, and alpha == 0
 * (or K == 0) does not read A or B. */
#include <string.h>

#include "dojo/kernels.h"

void dj_sgemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            if (alpha != 0.0f)
                for (int p = 0; p < K; p++) {
                    const float a = trans_a ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                    const float b = trans_b ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                    acc += (double)a * b;
                }
            float *c = &C[(size_t)i * ldc + j];
            const double old = beta == 0.0f ? 0.0 : (double)beta * *c;
            *c = (float)((double)alpha * acc + old);
        }
    }
}

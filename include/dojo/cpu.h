/* cpu.h - run-time CPU feature detection for kernel dispatch.
 *
 * The only process-wide state in libdojo: a table filled once (thread-safe)
 * from CPUID. Kernels with several instruction-set variants pick one through
 * dj_cpu_best_isa(); tests and benchmarks may force any variant the CPU
 * supports. */
#ifndef DOJO_CPU_H
#define DOJO_CPU_H

typedef enum {
    DJ_ISA_AUTO = 0,   /* the best the CPU supports */
    DJ_ISA_GENERIC,    /* portable C, whatever the compiler makes of it */
    DJ_ISA_AVX2,       /* AVX2 + FMA + F16C + BMI2 */
    DJ_ISA_AVX512,     /* AVX-512 F/BW/DQ/VL */
    DJ_ISA_COUNT
} dj_isa;

/* Nonzero if this CPU (and OS) can run code built for `isa`. */
int dj_cpu_supports(dj_isa isa);

/* The best supported ISA; DJ_ISA_AVX512 > DJ_ISA_AVX2 > DJ_ISA_GENERIC.
 * The environment variable DOJO_ISA=generic|avx2|avx512 caps it. */
dj_isa dj_cpu_best_isa(void);

/* "generic", "avx2", "avx512" ("auto" for DJ_ISA_AUTO). */
const char *dj_isa_name(dj_isa isa);

/* Parse a name as printed by dj_isa_name; returns 0 on success. */
int dj_isa_from_name(const char *name, dj_isa *out);

#endif

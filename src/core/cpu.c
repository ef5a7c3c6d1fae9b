/* cpu.c - CPU feature detection: the once-initialised dispatch table.
 *
 * The only process-wide state in libdojo. It is filled on first use under
 * pthread_once, from CPUID and XGETBV (the OS must save the wide registers
 * for AVX/AVX-512 to be usable). DOJO_ISA in the environment caps the choice,
 * so that a user or a test can run a slower path on a faster machine. */
#include "dojo/cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define DJ_CPU_X86 1
#endif

static int g_supported[DJ_ISA_COUNT];
static dj_isa g_best = DJ_ISA_GENERIC;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#ifdef DJ_CPU_X86
static unsigned long long xgetbv0(void)
{
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
#endif

static void detect(void)
{
    g_supported[DJ_ISA_GENERIC] = 1;
#ifdef DJ_CPU_X86
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
        unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
        int ymm_ok = (xcr0 & 0x6) == 0x6;
        int zmm_ok = (xcr0 & 0xe6) == 0xe6;
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
            int avx2 = (b >> 5) & 1, bmi2 = (b >> 8) & 1;
            int f512 = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
            g_supported[DJ_ISA_AVX2] = avx && avx2 && fma && f16c && bmi2 && ymm_ok;
            g_supported[DJ_ISA_AVX512] = g_supported[DJ_ISA_AVX2] && f512 && dq && bw && vl && zmm_ok;
        }
    }
#endif
    dj_isa cap = DJ_ISA_AVX512;
    const char *env = getenv("DOJO_ISA");
    if (env && *env) {
        dj_isa e;
        if (dj_isa_from_name(env, &e) == 0 && e != DJ_ISA_AUTO)
            cap = e;
    }
    for (int i = DJ_ISA_GENERIC; i <= (int)cap; i++)
        if (g_supported[i])
            g_best = (dj_isa)i;
}

int dj_cpu_supports(dj_isa isa)
{
    pthread_once(&g_once, detect);
    if (isa == DJ_ISA_AUTO)
        return 1;
    if ((int)isa < 0 || isa >= DJ_ISA_COUNT)
        return 0;
    return g_supported[isa];
}

dj_isa dj_cpu_best_isa(void)
{
    pthread_once(&g_once, detect);
    return g_best;
}

static const char *const isa_names[DJ_ISA_COUNT] = {"auto", "generic", "avx2", "avx512"};

const char *dj_isa_name(dj_isa isa)
{
    if ((int)isa < 0 || isa >= DJ_ISA_COUNT)
        return "?";
    return isa_names[isa];
}

int dj_isa_from_name(const char *name, dj_isa *out)
{
    for (int i = 0; i < DJ_ISA_COUNT; i++) {
        if (strcasecmp(name, isa_names[i]) == 0) {
            *out = (dj_isa)i;
            return 0;
        }
    }
    return -1;
}

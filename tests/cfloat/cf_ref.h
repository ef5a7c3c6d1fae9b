/* cf_ref.h - an independent reference model of the number formats of
 * docs/CFLOAT.md, shared by the tests in tests/cfloat/.
 *
 * Written from the specification only (never from src/cfloat/): each format
 * is described again here by its layout, codes are decoded from the layout
 * with ldexp, and encoding is done by a different method than a conversion
 * routine would use: the sorted list of every finite value of the format at a
 * bias is built from all codes, and an input is placed in it by binary search
 * with exact long double arithmetic. Stochastic rounding is modelled by the
 * spec's exact rule "round up iff U < p" with U the bit stream of
 * dj_rng_u32(seed, index, 0), (.., 1), ... and p = (x - lo)/(hi - lo) as an
 * exact rational, compared with small big-integer arithmetic.
 *
 * Every function is static inline so that a test that uses only part of the
 * model compiles without unused-function warnings. */
#ifndef DOJO_TESTS_CF_REF_H
#define DOJO_TESTS_CF_REF_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/cfloat.h"
#include "dojo/rng.h"

#if defined(__SANITIZE_ADDRESS__)
#define R_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define R_SANITIZED 1
#endif
#endif
#ifndef R_SANITIZED
#define R_SANITIZED 0
#endif

/* ---- formats, as the table in docs/CFLOAT.md describes them ---- */

enum { R_DN_TESLA, R_DN_IEEE, R_DN_FLUSH };
enum { R_SP_NONE, R_SP_IEEE, R_SP_E4M3 };

typedef struct {
    const char *name;
    int bits, sbits, E, M;
    int bmin, bmax, bdef;
    int denorm;   /* R_DN_* */
    int specials; /* R_SP_* */
    int saturate; /* overflow gives +-max (else Inf) */
    uint32_t nan_code;
    int nan_sign; /* NaN input keeps its sign */
    int nan_max;  /* NaN input gives +max */
} rfmt;

static inline const rfmt *rf(dj_format f)
{
    static const rfmt t[DJ_FMT_COUNT] = {
        {"cfloat8_1_4_3", 8, 1, 4, 3, 0, 63, 7, R_DN_TESLA, R_SP_NONE, 1, 0, 0, 1},
        {"cfloat8_1_5_2", 8, 1, 5, 2, 0, 63, 15, R_DN_TESLA, R_SP_NONE, 1, 0, 0, 1},
        {"shp", 16, 1, 5, 10, 0, 63, 15, R_DN_TESLA, R_SP_NONE, 1, 0, 0, 1},
        {"uhp", 16, 0, 6, 10, 31, 31, 31, R_DN_FLUSH, R_SP_IEEE, 0, 0xFE00, 0, 0},
        {"e4m3", 8, 1, 4, 3, 7, 7, 7, R_DN_IEEE, R_SP_E4M3, 1, 0x7F, 1, 0},
        {"e5m2", 8, 1, 5, 2, 15, 15, 15, R_DN_IEEE, R_SP_IEEE, 1, 0x7E, 1, 0},
        {"bf16", 16, 1, 8, 7, 127, 127, 127, R_DN_IEEE, R_SP_IEEE, 0, 0x7FC0, 1, 0},
    };
    return &t[f];
}

static inline uint32_t r_sign_bit(const rfmt *F) { return F->sbits ? 1u << (F->bits - 1) : 0u; }
static inline uint32_t r_ncodes(const rfmt *F) { return 1u << F->bits; }

static inline dj_class r_classify(const rfmt *F, uint32_t code)
{
    uint32_t emask = (1u << F->E) - 1, mmask = (1u << F->M) - 1;
    uint32_t e = (code >> F->M) & emask, m = code & mmask;
    if (F->specials == R_SP_IEEE && e == emask)
        return m ? DJ_CLASS_NAN : DJ_CLASS_INF;
    if (F->specials == R_SP_E4M3 && e == emask && m == mmask)
        return DJ_CLASS_NAN;
    if (e == 0)
        return m ? DJ_CLASS_DENORMAL : DJ_CLASS_ZERO;
    return DJ_CLASS_NORMAL;
}

/* The value of a code, computed from the layout. NaN for NaN codes. */
static inline double r_decode(const rfmt *F, int bias, uint32_t code)
{
    uint32_t emask = (1u << F->E) - 1, mmask = (1u << F->M) - 1;
    uint32_t e = (code >> F->M) & emask, m = code & mmask;
    int neg = F->sbits && ((code >> (F->bits - 1)) & 1u);
    double v = 0.0;
    switch (r_classify(F, code)) {
    case DJ_CLASS_NAN: return NAN;
    case DJ_CLASS_INF: v = INFINITY; break;
    case DJ_CLASS_ZERO: v = 0.0; break;
    case DJ_CLASS_DENORMAL:
        if (F->denorm == R_DN_TESLA)
            v = ldexp((double)m, -bias - F->M); /* 2^(-bias) * 0.m */
        else if (F->denorm == R_DN_IEEE)
            v = ldexp((double)m, 1 - bias - F->M); /* 2^(1-bias) * 0.m */
        else
            v = 0.0; /* UHP: read as zero */
        break;
    case DJ_CLASS_NORMAL: v = ldexp((double)((1u << F->M) + m), (int)e - bias - F->M); break;
    }
    return neg ? -v : v;
}

/* ---- small helpers ---- */

static inline uint32_t r_f2u(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}
static inline float r_u2f(uint32_t u)
{
    float x;
    memcpy(&x, &u, 4);
    return x;
}
static inline int r_is_subnormal(float x)
{
    uint32_t u = r_f2u(x);
    return (u & 0x7F800000u) == 0 && (u & 0x007FFFFFu) != 0;
}

static inline uint64_t r_rand64(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline uint32_t r_rand32(uint64_t *s) { return (uint32_t)(r_rand64(s) >> 32); }
static inline double r_rand_unit(uint64_t *s) { return (double)(r_rand64(s) >> 11) * 0x1p-53; }

static inline const char *r_flags_txt(unsigned fl, char buf[8])
{
    int k = 0;
    if (fl & DJ_FLAG_INVALID) buf[k++] = 'I';
    if (fl & DJ_FLAG_DENORMAL) buf[k++] = 'D';
    if (fl & DJ_FLAG_OVERFLOW) buf[k++] = 'O';
    if (fl & DJ_FLAG_UNDERFLOW) buf[k++] = 'U';
    if (fl & ~15u) buf[k++] = '?';
    if (!k) buf[k++] = '-';
    buf[k] = 0;
    return buf;
}

/* ---- the sorted table of the finite non-negative values at a bias ---- */

typedef struct {
    long double v;
    uint32_t c;
} r_pair;

typedef struct {
    dj_format f;
    const rfmt *F;
    int bias;
    size_t n;          /* entries of v/c; the last one is the virtual vnext */
    long double *v;    /* increasing: 0, denormals, normals, max, vnext */
    uint32_t *c;       /* their codes (sign bit clear); vnext: max_code + 1 */
    long double max;   /* largest finite value */
    long double vnext; /* the value above max with unbounded exponent */
    long double minnorm, mindenorm;
    long double thr;   /* |x| below thr is tiny (rounds below minnorm, unbounded exponent) */
    uint32_t max_code;
    uint32_t ovf_code; /* code (sign clear) of an overflowed result */
    int ok;            /* table was built and is strictly increasing */
} rtab;

static inline int r_pair_cmp(const void *a, const void *b)
{
    const r_pair *x = (const r_pair *)a, *y = (const r_pair *)b;
    return (x->v > y->v) - (x->v < y->v);
}

static inline void r_tab_free(rtab *T)
{
    free(T->v);
    free(T->c);
    T->v = NULL;
    T->c = NULL;
}

static inline int r_tab_build(rtab *T, dj_format f, int bias)
{
    const rfmt *F = rf(f);
    uint32_t nmag = 1u << (F->bits - F->sbits);
    r_pair *p = (r_pair *)malloc(sizeof(r_pair) * (nmag + 1));
    size_t n = 0;
    memset(T, 0, sizeof *T);
    T->f = f;
    T->F = F;
    T->bias = bias;
    if (!p) return 0;
    T->minnorm = INFINITY;
    T->mindenorm = 0;
    for (uint32_t c = 0; c < nmag; c++) {
        dj_class k = r_classify(F, c);
        if (k == DJ_CLASS_NAN || k == DJ_CLASS_INF) continue;
        if (k == DJ_CLASS_DENORMAL && F->denorm == R_DN_FLUSH) continue; /* reads as +0 */
        p[n].v = (long double)r_decode(F, bias, c);
        p[n].c = c;
        if (k == DJ_CLASS_NORMAL && p[n].v < T->minnorm) T->minnorm = p[n].v;
        if (k == DJ_CLASS_DENORMAL && (T->mindenorm == 0 || p[n].v < T->mindenorm)) T->mindenorm = p[n].v;
        n++;
    }
    qsort(p, n, sizeof *p, r_pair_cmp);
    T->ok = n >= 3 && p[0].v == 0;
    for (size_t i = 1; i < n; i++)
        if (!(p[i].v > p[i - 1].v)) T->ok = 0;
    T->max = p[n - 1].v;
    T->max_code = p[n - 1].c;
    T->vnext = 2 * p[n - 1].v - p[n - 2].v; /* max + spacing below max */
    p[n].v = T->vnext;
    p[n].c = T->max_code + 1;
    n++;
    T->n = n;
    T->v = (long double *)malloc(sizeof(long double) * n);
    T->c = (uint32_t *)malloc(sizeof(uint32_t) * n);
    if (!T->v || !T->c) {
        free(p);
        T->ok = 0;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        T->v[i] = p[i].v;
        T->c[i] = p[i].c;
    }
    free(p);
    T->thr = T->minnorm * (1 - ldexpl(1, -(F->M + 2)));
    T->ovf_code = F->saturate ? T->max_code : (((1u << F->E) - 1) << F->M); /* +-max or Inf */
    return T->ok;
}

/* Largest i with v[i] <= ax, for 0 <= ax < vnext. */
static inline size_t r_tab_floor(const rtab *T, long double ax)
{
    size_t lo = 0, hi = T->n - 1; /* v[lo] <= ax < v[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (T->v[mid] <= ax)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* ---- specials shared by both rounding modes ---- */

/* Handles NaN, Inf, zero and UHP negatives: returns 1 with code/flags set. */
static inline int r_special(const rtab *T, float x, uint32_t *code, unsigned *fl)
{
    const rfmt *F = T->F;
    int neg = signbit(x) != 0;
    uint32_t sb = neg ? r_sign_bit(F) : 0;
    *fl = 0;
    if (isnan(x)) {
        *fl = DJ_FLAG_INVALID;
        if (F->nan_max)
            *code = T->max_code;
        else
            *code = F->nan_code | (F->nan_sign ? sb : 0);
        return 1;
    }
    if (!F->sbits && neg && x != 0) { /* UHP: negative non-zero, -Inf too */
        *fl = DJ_FLAG_INVALID | (r_is_subnormal(x) ? DJ_FLAG_DENORMAL : 0);
        *code = F->nan_code;
        return 1;
    }
    if (isinf(x)) {
        if (F->saturate) {
            *code = sb | T->max_code;
            *fl = DJ_FLAG_OVERFLOW;
        } else {
            *code = sb | T->ovf_code;
        }
        return 1;
    }
    if (x == 0) {
        *code = sb;
        return 1;
    }
    return 0;
}

/* ---- round to nearest ---- */

static inline void r_rn(const rtab *T, float x, uint32_t *code, unsigned *fl)
{
    const rfmt *F = T->F;
    if (r_special(T, x, code, fl)) return;
    uint32_t sb = signbit(x) ? r_sign_bit(F) : 0;
    long double ax = fabsl((long double)x);
    unsigned flags = r_is_subnormal(x) ? DJ_FLAG_DENORMAL : 0;
    uint32_t mag;
    int inexact;
    if (F->denorm == R_DN_FLUSH && ax < T->thr) {
        mag = 0; /* rounds below minnorm with unbounded exponent: flush */
        inexact = 1;
    } else if (ax >= T->vnext) {
        mag = T->ovf_code;
        flags |= DJ_FLAG_OVERFLOW;
        inexact = 1;
    } else {
        size_t i = r_tab_floor(T, ax);
        if (T->v[i] == ax) {
            mag = T->c[i];
            inexact = 0;
        } else {
            long double dlo = ax - T->v[i], dhi = T->v[i + 1] - ax; /* exact */
            size_t k;
            if (dlo < dhi)
                k = i;
            else if (dhi < dlo)
                k = i + 1;
            else
                k = (T->c[i] & 1u) ? i + 1 : i; /* tie: even code */
            inexact = 1;
            if (k == T->n - 1) {
                mag = T->ovf_code;
                flags |= DJ_FLAG_OVERFLOW;
            } else {
                mag = T->c[k];
            }
        }
    }
    if (inexact && ax < T->thr) flags |= DJ_FLAG_UNDERFLOW;
    *code = sb | mag;
    *fl = flags;
}

/* ---- stochastic rounding ---- */

/* A tiny big-integer type for the exact comparison of U with p. */
#define R_BIG_LIMBS 16
typedef struct {
    uint32_t d[R_BIG_LIMBS]; /* little-endian */
} r_big;

static inline void r_big_set(r_big *a, uint64_t v)
{
    memset(a, 0, sizeof *a);
    a->d[0] = (uint32_t)v;
    a->d[1] = (uint32_t)(v >> 32);
}
static inline int r_big_bits(const r_big *a)
{
    for (int i = R_BIG_LIMBS - 1; i >= 0; i--)
        if (a->d[i]) {
            int b = 32;
            while (!((a->d[i] >> (b - 1)) & 1u)) b--;
            return 32 * i + b;
        }
    return 0;
}
static inline int r_big_shl(r_big *a, int s) /* returns 0 if it would not fit */
{
    if (r_big_bits(a) + s > 32 * R_BIG_LIMBS - 32) return 0;
    int w = s / 32, b = s % 32;
    for (int i = R_BIG_LIMBS - 1; i >= 0; i--) {
        uint64_t hi = i - w >= 0 ? a->d[i - w] : 0;
        uint64_t lo = i - w - 1 >= 0 ? a->d[i - w - 1] : 0;
        a->d[i] = (uint32_t)(b ? (hi << b) | (lo >> (32 - b)) : hi);
    }
    return 1;
}
static inline void r_big_mul(r_big *a, uint32_t m)
{
    uint64_t carry = 0;
    for (int i = 0; i < R_BIG_LIMBS; i++) {
        uint64_t t = (uint64_t)a->d[i] * m + carry;
        a->d[i] = (uint32_t)t;
        carry = t >> 32;
    }
}
static inline void r_big_add1(r_big *a)
{
    for (int i = 0; i < R_BIG_LIMBS; i++)
        if (++a->d[i] != 0) break;
}
static inline int r_big_cmp(const r_big *a, const r_big *b)
{
    for (int i = R_BIG_LIMBS - 1; i >= 0; i--)
        if (a->d[i] != b->d[i]) return a->d[i] < b->d[i] ? -1 : 1;
    return 0;
}

/* x = odd * 2^ex for a positive dyadic long double. */
static inline void r_odd_exp(long double x, uint64_t *odd, int *ex)
{
    int e;
    long double fr = frexpl(x, &e);
    uint64_t m = (uint64_t)ldexpl(fr, 64);
    int z = 0;
    while (!(m & 1u)) {
        m >>= 1;
        z++;
    }
    *odd = m;
    *ex = e - 64 + z;
}

/* Round up iff U < N/D, U = 0.(word0)(word1)... of dj_rng_u32(seed, index, w).
 * 1: up, 0: down, -1: not decided by eight words. */
static inline int r_sr_up(uint64_t seed, uint64_t index, long double N, long double D)
{
    uint64_t a, c;
    int v, t;
    if (N <= 0) return 0;
    r_odd_exp(N, &a, &v);
    r_odd_exp(D, &c, &t);
    int s = t - v; /* p = a / (c * 2^s) */
    if (c > 0xFFFFFFFFu) return -2;
    r_big W;
    r_big_set(&W, 0);
    for (int k = 1; k <= 8; k++) {
        r_big_shl(&W, 32);
        W.d[0] = dj_rng_u32(seed, index, (uint32_t)(k - 1));
        r_big R, L;
        r_big_set(&R, a);
        if (!r_big_shl(&R, 32 * k + (s < 0 ? -s : 0))) return -2;
        L = W;
        r_big_add1(&L);
        r_big_mul(&L, (uint32_t)c);
        if (s > 0 && !r_big_shl(&L, s)) return -2;
        if (r_big_cmp(&L, &R) <= 0) return 1; /* U < (W+1)/2^32k <= p */
        L = W;
        r_big_mul(&L, (uint32_t)c);
        if (s > 0 && !r_big_shl(&L, s)) return -2;
        if (r_big_cmp(&L, &R) >= 0) return 0; /* U >= W/2^32k >= p */
    }
    return -1;
}

/* The two possible stochastic results of x: code[0]/fl[0] (round down, also
 * the only one when det), code[1]/fl[1] (round up); N/D the exact
 * probability of rounding up; lo/hi the neighbours' magnitudes. */
typedef struct {
    int det;
    uint32_t code[2];
    unsigned fl[2];
    long double lo, hi, N, D;
} r_srcase;

static inline void r_sr_case(const rtab *T, float x, r_srcase *s)
{
    const rfmt *F = T->F;
    memset(s, 0, sizeof *s);
    if (r_special(T, x, &s->code[0], &s->fl[0])) {
        s->det = 1;
        return;
    }
    uint32_t sb = signbit(x) ? r_sign_bit(F) : 0;
    long double ax = fabsl((long double)x);
    unsigned base = r_is_subnormal(x) ? DJ_FLAG_DENORMAL : 0;
    unsigned tiny = ax < T->thr ? DJ_FLAG_UNDERFLOW : 0;
    if (F->denorm == R_DN_FLUSH && ax < T->minnorm) {
        /* neighbours with unbounded exponent (M+1 bits), then flush */
        int e = ilogbl(ax);
        long double ulp = ldexpl(1, e - F->M);
        long double lo = floorl(ax / ulp) * ulp, hi = lo + ulp;
        s->lo = lo;
        s->hi = hi;
        s->code[0] = 0;
        s->fl[0] = base | DJ_FLAG_UNDERFLOW; /* a flush of a non-zero value */
        if (lo == ax || hi < T->minnorm) {
            s->det = 1;
        } else {
            s->code[1] = T->c[1]; /* hi == minnorm */
            s->fl[1] = base | tiny;
            s->N = ax - lo;
            s->D = hi - lo;
        }
        return;
    }
    if (ax >= T->vnext) {
        s->det = 1;
        s->code[0] = sb | T->ovf_code;
        s->fl[0] = base | DJ_FLAG_OVERFLOW;
        s->lo = s->hi = ax;
        return;
    }
    size_t i = r_tab_floor(T, ax);
    s->lo = T->v[i];
    s->hi = T->v[i + 1];
    s->code[0] = sb | T->c[i];
    s->fl[0] = base;
    if (T->v[i] == ax) {
        s->det = 1;
        return;
    }
    s->fl[0] |= tiny;
    if (i + 1 == T->n - 1) {
        s->code[1] = sb | T->ovf_code;
        s->fl[1] = base | tiny | DJ_FLAG_OVERFLOW;
    } else {
        s->code[1] = sb | T->c[i + 1];
        s->fl[1] = base | tiny;
    }
    s->N = ax - s->lo;
    s->D = s->hi - s->lo;
}

/* Exact expected stochastic result; returns 0 when undecided (p ~ 2^-256). */
static inline int r_sr(const rtab *T, float x, uint64_t seed, uint64_t index, uint32_t *code,
                       unsigned *fl)
{
    r_srcase s;
    r_sr_case(T, x, &s);
    int up = 0;
    if (!s.det) {
        up = r_sr_up(seed, index, s.N, s.D);
        if (up < 0) return 0;
    }
    *code = s.code[up];
    *fl = s.fl[up];
    return 1;
}

/* ---- test inputs ---- */

typedef struct {
    float *x;
    size_t n, cap;
} r_vec;

static inline void r_push(r_vec *v, float x)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 1024;
        v->x = (float *)realloc(v->x, v->cap * sizeof(float));
        if (!v->x) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
    }
    v->x[v->n++] = x;
}

/* Push x and -x (if x is a float32). */
static inline void r_push_pm(r_vec *v, long double x)
{
    if (!(fabsl(x) <= FLT_MAX)) return;
    float f = (float)x;
    if ((long double)f != x) return;
    r_push(v, f);
    r_push(v, -f);
}
static inline void r_push_near(r_vec *v, float f, int k)
{
    float lo = f, hi = f;
    r_push(v, f);
    r_push(v, -f);
    for (int i = 0; i < k; i++) {
        lo = nextafterf(lo, -INFINITY);
        hi = nextafterf(hi, INFINITY);
        r_push(v, lo);
        r_push(v, -lo);
        r_push(v, hi);
        r_push(v, -hi);
    }
}

/* Special float32 inputs: zeros, NaNs, Infs, subnormals, extremes. */
static inline void r_push_specials(r_vec *v, uint64_t *rng)
{
    static const uint32_t bits[] = {
        0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFC00000u,
        0x7F800001u, 0xFF800001u, 0x7FBFFFFFu, 0x7FFFFFFFu, 0xFFFFFFFFu, 0x7FC12345u,
        0x00000001u, 0x80000001u, 0x007FFFFFu, 0x807FFFFFu, 0x00400000u, 0x00000002u,
        0x00800000u, 0x80800000u, 0x7F7FFFFFu, 0xFF7FFFFFu, 0x3F800000u, 0xBF800000u,
        0x00000003u, 0x00012345u, 0x80054321u, 0x7F000000u, 0x00800001u};
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
        r_push(v, r_u2f(bits[i]));
    for (int i = 0; i < 64; i++) {
        uint32_t m = r_rand32(rng) & 0x807FFFFFu; /* random subnormals, both signs */
        r_push(v, r_u2f(m ? m : 1u));
    }
}

/* Every value, every midpoint (and 1, 2 float32 ulps around it), both signs,
 * the gap and the flush threshold, plus `nnear` random values spread over the
 * format's range. */
static inline void r_push_table_inputs(r_vec *v, const rtab *T, uint64_t *rng, size_t nnear)
{
    for (size_t i = 0; i < T->n; i++) {
        long double a = T->v[i];
        if (a <= FLT_MAX) {
            float f = (float)a;
            if ((long double)f == a) r_push_near(v, f, 1);
        }
        if (i + 1 < T->n) {
            long double m = (T->v[i] + T->v[i + 1]) / 2;
            if (m <= FLT_MAX) {
                float f = (float)m;
                if ((long double)f == m) r_push_near(v, f, 2);
            }
        }
    }
    /* the Tesla gap (or the step to the smallest normal), evenly */
    long double below = 0;
    for (size_t i = 0; i < T->n; i++)
        if (T->v[i] < T->minnorm) below = T->v[i];
    for (int k = 1; k < 32; k++)
        r_push_pm(v, (long double)(float)(below + (T->minnorm - below) * k / 32));
    /* tininess threshold and flush boundary */
    if (T->thr <= FLT_MAX) r_push_near(v, (float)T->thr, 3);
    r_push_near(v, (float)(T->minnorm / 2), 1);
    if (T->mindenorm > 0) {
        r_push_near(v, (float)(T->mindenorm / 2), 1);
        r_push_near(v, (float)(T->mindenorm / 4), 1);
        r_push_near(v, (float)(T->mindenorm * 0.75L), 1);
    }
    /* beyond the overflow tie */
    r_push_pm(v, T->vnext * 2);
    r_push_pm(v, T->vnext * 1024);
    r_push_pm(v, T->max * 1.25L);
    /* random values concentrated near the range */
    int elo = ilogbl(T->mindenorm > 0 ? T->mindenorm : T->minnorm) - 6;
    int ehi = ilogbl(T->max) + 3;
    for (size_t k = 0; k < nnear; k++) {
        int e = elo + (int)(r_rand32(rng) % (uint32_t)(ehi - elo + 1));
        uint32_t m = r_rand32(rng) & 0xFFFFFFu;
        float f = ldexpf((float)(m | 0x800000u), e - 23);
        if (!isfinite(f)) continue;
        if (r_rand32(rng) & 1) f = -f;
        r_push(v, f);
    }
}

static inline const char *r_fmtname(dj_format f) { return rf(f)->name; }

#endif

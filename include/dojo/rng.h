/* rng.h - the counter-based random bit generator behind stochastic rounding.
 *
 * Bits are a pure function of (seed, index, word): no state, so any thread,
 * any vector width and any split of an array into chunks draws the same bits
 * for the same element. `word` selects further 32-bit words for the same
 * element (word 0 first); stochastic rounding needs word 1 and beyond only in
 * rare cases where the first 32 bits do not decide.
 *
 * The function is a two-round keyed mix of 32-bit lanes (multiply-xorshift,
 * the finaliser constants of Wellons' "lowbias32"); it is cheap in SIMD and
 * passes the statistical checks in tests/core/test_rng.c. It is not a
 * cryptographic generator. The definition is part of Dojo's reproducibility
 * contract: changing it changes every stochastically rounded result. */
#ifndef DOJO_RNG_H
#define DOJO_RNG_H

#include <stdint.h>

static inline uint32_t dj_mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* Per-seed keys, computed once per call of a bulk routine. */
typedef struct {
    uint32_t k0, k1;
} dj_rng_key;

static inline dj_rng_key dj_rng_key_make(uint64_t seed)
{
    dj_rng_key k;
    k.k0 = dj_mix32((uint32_t)seed ^ 0x9e3779b9U);
    k.k1 = dj_mix32((uint32_t)(seed >> 32) ^ k.k0 ^ 0x85ebca6bU);
    return k;
}

/* The mix for one element given the key; `hi` is index >> 32. */
static inline uint32_t dj_rng_keyed(dj_rng_key k, uint32_t lo, uint32_t hi, uint32_t word)
{
    uint32_t h = dj_mix32(lo ^ k.k0);
    return dj_mix32(h ^ k.k1 ^ (hi * 0xc2b2ae35U) ^ (word * 0x27d4eb2fU));
}

/* 32 random bits for element `index`, word `word`, under `seed`. */
static inline uint32_t dj_rng_u32(uint64_t seed, uint64_t index, uint32_t word)
{
    return dj_rng_keyed(dj_rng_key_make(seed), (uint32_t)index, (uint32_t)(index >> 32), word);
}

/* 64-bit mixer (splitmix64's finaliser) for deriving seeds from seeds. */
static inline uint64_t dj_mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#endif

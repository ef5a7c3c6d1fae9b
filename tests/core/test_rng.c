/* test_rng.c - the counter-based generator of include/dojo/rng.h.
 *
 * dj_rng_u32 is part of the reproducibility contract (docs/CFLOAT.md rule 6),
 * so its values are pinned; it must be a pure function of (seed, index,
 * word) in which every part of each argument matters; and its bits must look
 * random: each of the 32 bits balanced within 5 sigma over 10^6 indices, a
 * chi-square test on the top (and bottom) 8 bits, and no correlation between
 * neighbouring indices. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "dojo/rng.h"
#include "harness.h"

/* Chris Wellons' "lowbias32" as published, written out independently. */
static uint32_t lowbias32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static void check_pinned(void)
{
    static const struct {
        uint64_t seed, index;
        uint32_t word, value;
    } g[] = {
        {0ull, 0ull, 0, 0xE54EB87Du},
        {0ull, 0ull, 1, 0x81ED24F4u},
        {0ull, 0x1ull, 0, 0xEBDD1F04u},
        {0ull, 0x3039ull, 1, 0x1326ADD5u},
        {0ull, 0x100000007ull, 0, 0x21249E8Au},
        {0x1ull, 0ull, 0, 0xE3FBEB67u},
        {0x1ull, 0x1ull, 1, 0x15BDF3BEu},
        {0x1ull, 0x100000007ull, 1, 0x3DED92F0u},
        {0x2aull, 0ull, 0, 0x4E7E4170u},
        {0x2aull, 0x3039ull, 0, 0x2A1D6201u},
        {0x2aull, 0x100000007ull, 1, 0xACB838C5u},
        {0xdeadbeefcafebabeull, 0ull, 1, 0xC2BA6AF4u},
        {0xdeadbeefcafebabeull, 0x1ull, 0, 0x63C012DCu},
        {0xdeadbeefcafebabeull, 0x3039ull, 0, 0xCF13C921u},
        {0xdeadbeefcafebabeull, 0x100000007ull, 0, 0x868A72A4u},
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        uint32_t v = dj_rng_u32(g[i].seed, g[i].index, g[i].word);
        CHECK(v == g[i].value, "dj_rng_u32(%#llx, %#llx, %u) = 0x%08X, pinned 0x%08X", (unsigned long long)g[i].seed,
              (unsigned long long)g[i].index, g[i].word, v, g[i].value);
    }
    for (uint32_t x = 0; x < 100000; x++) {
        uint32_t y = x * 2654435761u;
        if (dj_mix32(y) != lowbias32(y)) {
            CHECK(0, "dj_mix32(0x%08X) differs from lowbias32", y);
            break;
        }
    }
    CHECK(dj_mix32(0) == 0 && dj_mix32(1) != 1, "dj_mix32 fixed points");
}

static void check_pure(void)
{
    uint64_t seeds[] = {0, 1, 42, 0xFFFFFFFFull, 1ull << 32, 0xDEADBEEFCAFEBABEull, ~0ull};
    int same_w = 0, same_i = 0, same_s = 0, same_shi = 0, same_ihi = 0, repeat = 0, keyed = 0;
    long n = 0;
    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
        uint64_t seed = seeds[s];
        dj_rng_key k = dj_rng_key_make(seed);
        for (uint64_t i = 0; i < 20000; i++) {
            uint64_t idx = i * 0x9E3779B97F4A7C15ull >> (i % 64);
            uint32_t a = dj_rng_u32(seed, idx, 0);
            n++;
            repeat += a == dj_rng_u32(seed, idx, 0);
            keyed += a == dj_rng_keyed(k, (uint32_t)idx, (uint32_t)(idx >> 32), 0);
            same_w += a == dj_rng_u32(seed, idx, 1) || a == dj_rng_u32(seed, idx, 7);
            same_i += a == dj_rng_u32(seed, idx + 1, 0);
            same_s += a == dj_rng_u32(seed + 1, idx, 0);
            same_shi += a == dj_rng_u32(seed ^ (1ull << 40), idx, 0);
            same_ihi += a == dj_rng_u32(seed, idx ^ (1ull << 33), 0);
        }
    }
    CHECK(repeat == n, "dj_rng_u32 not deterministic (%d of %ld repeat)", repeat, n);
    CHECK(keyed == n, "dj_rng_keyed(dj_rng_key_make(s), ...) differs from dj_rng_u32 (%d of %ld)", keyed, n);
    /* equal by chance with probability 2^-32 each */
    CHECK(same_w <= 2, "different words gave equal values %d times", same_w);
    CHECK(same_i <= 2, "neighbouring indices gave equal values %d times", same_i);
    CHECK(same_s <= 2, "neighbouring seeds gave equal values %d times", same_s);
    CHECK(same_shi <= 2, "seeds differing in the high word gave equal values %d times", same_shi);
    CHECK(same_ihi <= 2, "indices differing in the high word gave equal values %d times", same_ihi);
}

/* Bit balance, chi-square on the top and bottom bytes, neighbour correlation. */
static void check_stats(uint64_t seed, uint64_t index0, uint32_t word, long n)
{
    long ones[32] = {0}, top[256] = {0}, bot[256] = {0}, agree = 0;
    uint32_t prev = 0;
    for (long i = 0; i < n; i++) {
        uint32_t v = dj_rng_u32(seed, index0 + (uint64_t)i, word);
        for (int b = 0; b < 32; b++)
            ones[b] += (v >> b) & 1u;
        top[v >> 24]++;
        bot[v & 0xFF]++;
        if (i) agree += 1 - (long)(((v ^ prev) >> 31) & 1u);
        prev = v;
    }
    double half = n / 2.0, sd = sqrt(n / 4.0);
    for (int b = 0; b < 32; b++)
        CHECK(fabs(ones[b] - half) <= 5 * sd, "seed %#llx index0 %#llx word %u: bit %d set %ld of %ld times",
              (unsigned long long)seed, (unsigned long long)index0, word, b, ones[b], n);
    double e = n / 256.0, c_top = 0, c_bot = 0;
    for (int k = 0; k < 256; k++) {
        c_top += (top[k] - e) * (top[k] - e) / e;
        c_bot += (bot[k] - e) * (bot[k] - e) / e;
    }
    /* chi-square with 255 degrees of freedom: mean 255, sd sqrt(510) ~ 22.6 */
    double lo = 255 - 5 * sqrt(510.0), hi = 255 + 5 * sqrt(510.0);
    CHECK(c_top > lo && c_top < hi, "seed %#llx word %u: chi-square of the top byte %.1f", (unsigned long long)seed,
          word, c_top);
    CHECK(c_bot > lo && c_bot < hi, "seed %#llx word %u: chi-square of the bottom byte %.1f",
          (unsigned long long)seed, word, c_bot);
    double pairs = (double)(n - 1);
    CHECK(fabs(agree - pairs / 2) <= 5 * sqrt(pairs / 4), "seed %#llx: top bits of neighbours agree %ld of %.0f",
          (unsigned long long)seed, agree, pairs);
}

int main(void)
{
    check_pinned();
    check_pure();
    check_stats(0, 0, 0, 1000000);
    check_stats(0x123456789ABCDEFull, 0, 0, 1000000);
    check_stats(7, 0xFFFFFFFFull - 5000, 1, 200000); /* crosses index 2^32 */
    check_stats(1ull << 63, 1ull << 40, 3, 200000);
    /* the bits of one element's successive words are independent too */
    long ones = 0, n = 200000;
    for (long i = 0; i < n; i++)
        ones += (long)((dj_rng_u32(99, (uint64_t)i, 0) ^ dj_rng_u32(99, (uint64_t)i, 1)) >> 31);
    CHECK(fabs(ones - n / 2.0) <= 5 * sqrt(n / 4.0), "word 0 and word 1 top bits agree too often: %ld", ones);
    return th_done("test_rng");
}

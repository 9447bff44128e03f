#include "nd_rng.h"

/* Multipliers and Weyl increments of Philox4x32 (Salmon et al. 2011, table 2). */
#define ND_PHILOX_M0 0xD2511F53u
#define ND_PHILOX_M1 0xCD9E8D57u
#define ND_PHILOX_W0 0x9E3779B9u
#define ND_PHILOX_W1 0xBB67AE85u

static inline void nd_mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo)
{
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void nd_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; ++r) {
        uint32_t hi0, lo0, hi1, lo1;
        nd_mulhilo(ND_PHILOX_M0, c0, &hi0, &lo0);
        nd_mulhilo(ND_PHILOX_M1, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
        k0 += ND_PHILOX_W0;
        k1 += ND_PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* One block of four words gives two doubles: counter = (block index, stream), key = seed. */
void nd_rng_uniform_pair(uint64_t seed, uint64_t stream, uint64_t block, double two[2])
{
    const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t w[4];
    nd_philox4x32(ctr, key, w);
    for (int k = 0; k < 2; ++k) {
        uint64_t bits = ((uint64_t)w[2 * k] << 21) ^ (uint64_t)(w[2 * k + 1] >> 11); /* 53 bits */
        two[k] = (double)(bits & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
    }
}

double nd_rng_uniform(uint64_t seed, uint64_t stream, uint64_t i)
{
    double two[2];
    nd_rng_uniform_pair(seed, stream, i >> 1, two);
    return two[i & 1];
}

void nd_rng_uniform_fill(uint64_t seed, uint64_t stream, uint64_t first, int64_t n, double *out)
{
    int64_t k = 0;
    if (n > 0 && (first & 1)) {
        out[k++] = nd_rng_uniform(seed, stream, first);
    }
    for (; k + 1 < n; k += 2) {
        double two[2];
        nd_rng_uniform_pair(seed, stream, (first + (uint64_t)k) >> 1, two);
        out[k] = two[0];
        out[k + 1] = two[1];
    }
    if (k < n)
        out[k] = nd_rng_uniform(seed, stream, first + (uint64_t)k);
}

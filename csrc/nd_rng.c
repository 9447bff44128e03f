#include "nd_rng.h"

#include <math.h>
#include <string.h> /* memcpy */

#include "nd_vmath.h" /* ND_VECTOR_CLONES, the bit casts */

/* Multipliers and Weyl increments of Philox4x32 (Salmon et al. 2011, table 2). */
#define ND_PHILOX_M0 0xD2511F53u
#define ND_PHILOX_M1 0xCD9E8D57u
#define ND_PHILOX_W0 0x9E3779B9u
#define ND_PHILOX_W1 0xBB67AE85u

/* Philox4x32-10 on one counter, all in locals: inlined into a loop over counters it is
 * lane-wise integer arithmetic (32x32->64 products) that gcc vectorises. */
static inline void nd_philox_block(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1,
                                   uint32_t *w)
{
    for (int r = 0; r < 10; ++r) {
        const uint64_t p0 = (uint64_t)ND_PHILOX_M0 * c0, p1 = (uint64_t)ND_PHILOX_M1 * c2;
        const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n1 = (uint32_t)p1;
        const uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1, n3 = (uint32_t)p0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
        k0 += ND_PHILOX_W0;
        k1 += ND_PHILOX_W1;
    }
    w[0] = c0;
    w[1] = c1;
    w[2] = c2;
    w[3] = c3;
}

void nd_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    nd_philox_block(ctr[0], ctr[1], ctr[2], ctr[3], key[0], key[1], out);
}

/* 53 random bits of two words, hi 2^21 + (lo >> 11), as a double in [0, 1). The integer becomes a
 * double without an integer conversion, which AVX2 lacks for 64-bit lanes (it kept every loop
 * calling this scalar): the low 52 bits through the exponent of 2^52, the top bit added, both
 * exact. */
static inline double nd_words_to_unit(uint32_t hi, uint32_t lo)
{
    const uint64_t low52 = (((uint64_t)hi << 21) ^ (uint64_t)(lo >> 11)) & ((1ull << 52) - 1);
    const double top = (hi >> 31) ? 4503599627370496.0 : 0.0;
    const double x = (nd_bits_to_double(0x4330000000000000ull | low52) - 4503599627370496.0) + top;
    return x * (1.0 / 9007199254740992.0);
}

/* One block of four words gives two doubles: counter = (block index, stream), key = seed. */
void nd_rng_uniform_pair(uint64_t seed, uint64_t stream, uint64_t block, double two[2])
{
    uint32_t w[4];
    nd_philox_block((uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream, (uint32_t)(stream >> 32),
                    (uint32_t)seed, (uint32_t)(seed >> 32), w);
    two[0] = nd_words_to_unit(w[0], w[1]);
    two[1] = nd_words_to_unit(w[2], w[3]);
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

/* ---- standard normals ------------------------------------------------------------------ */

/* log(u) for u in [2^-53, 1]: u = m 2^e with m in [sqrt(1/2), sqrt(2)), and log m =
 * log1p(m - 1) (m - 1 is exact) by nd_vmath's series. Lane-wise integer and floating-point
 * steps only (the exponent becomes a double through the magic 2^52 rather than an int64
 * conversion, which AVX2 lacks). */
static inline double nd_log_unit(double u)
{
    const uint64_t bits = nd_double_to_bits(u);
    /* bias the split so that m lands in [sqrt(1/2), sqrt(2)) */
    const uint64_t shifted = bits + (0x3ff0000000000000ull - 0x3fe6a09e667f3bcdull);
    const uint64_t e = shifted >> 52;
    const double m = nd_bits_to_double((shifted & 0x000fffffffffffffull) + 0x3fe6a09e667f3bcdull);
    const double ed = nd_bits_to_double(0x4330000000000000ull | e) - 4503599627370496.0 - 1023.0;
    /* ln 2 in two parts: e ln2_hi is exact for |e| < 2^11 */
    return ed * 6.93147180369123816490e-01 + (ed * 1.90821492927058770002e-10 + nd_log1p_unit(m - 1.0));
}

/* cos(2 pi u) and sin(2 pi u) for u in [0, 1): u - k/4 = r with the nearest quarter k (exact),
 * then the Taylor series of cos and sin at 2 pi r, |2 pi r| <= pi/4, and the quadrant's
 * identities. */
static inline void nd_sincos_turns(double u, double *cos_out, double *sin_out)
{
    const double shifter = 6755399441055744.0; /* 1.5 * 2^52 */
    const double kd = (4.0 * u + shifter) - shifter;
    const double r = u - 0.25 * kd, x = 6.283185307179586477 * r, x2 = x * x;
    double c = 1.0 / 20922789888000.0; /* 1/16! */
    c = c * -x2 + 1.0 / 87178291200.0;
    c = c * -x2 + 1.0 / 479001600.0;
    c = c * -x2 + 1.0 / 3628800.0;
    c = c * -x2 + 1.0 / 40320.0;
    c = c * -x2 + 1.0 / 720.0;
    c = c * -x2 + 1.0 / 24.0;
    c = c * -x2 + 0.5;
    const double cosx = 1.0 - x2 * c;
    double t = 1.0 / 355687428096000.0; /* 1/17! */
    t = t * -x2 + 1.0 / 1307674368000.0;
    t = t * -x2 + 1.0 / 6227020800.0;
    t = t * -x2 + 1.0 / 39916800.0;
    t = t * -x2 + 1.0 / 362880.0;
    t = t * -x2 + 1.0 / 5040.0;
    t = t * -x2 + 1.0 / 120.0;
    t = t * -x2 + 1.0 / 6.0;
    const double sinx = x - x * x2 * t;
    const uint64_t q = (nd_double_to_bits(kd + shifter) - nd_double_to_bits(shifter)) & 3u;
    /* cos(x + q pi/2): cos, -sin, -cos, sin; sin(x + q pi/2): sin, cos, -sin, -cos */
    const double cmag = (q & 1u) ? sinx : cosx, smag = (q & 1u) ? cosx : sinx;
    *cos_out = ((q + 1u) & 2u) ? -cmag : cmag;
    *sin_out = (q & 2u) ? -smag : smag;
}

/* Both Box-Muller normals of one Philox block: r cos(2 pi u_2) and r sin(2 pi u_2) with
 * r = sqrt(-2 log(1 - u_1)), u_1 and u_2 the block's two 53-bit uniforms. */
static inline void nd_normal_pair(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1,
                                  double *cos_out, double *sin_out)
{
    uint32_t w[4];
    nd_philox_block(c0, c1, c2, c3, k0, k1, w);
    const double u1 = 1.0 - nd_words_to_unit(w[0], w[1]); /* in (0, 1]: log is finite */
    const double rad = sqrt(-2.0 * nd_log_unit(u1));
    double c, sn;
    nd_sincos_turns(nd_words_to_unit(w[2], w[3]), &c, &sn);
    *cos_out = rad * c;
    *sin_out = rad * sn;
}

ND_VECTOR_CLONES
void nd_rng_normal_pairs_rows(uint64_t seed, int64_t rows, const uint64_t *streams, int64_t blocks, uint64_t first,
                              double *out)
{
    const uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int64_t q = 0; q < blocks; ++q) {
        const uint64_t block = first + (uint64_t)q;
        double *restrict out_cos = out + q * rows, *restrict out_sin = out + (blocks + q) * rows;
        for (int64_t r = 0; r < rows; ++r) {
            const uint64_t st = streams[r];
            nd_normal_pair((uint32_t)block, (uint32_t)(block >> 32), (uint32_t)st, (uint32_t)(st >> 32), k0, k1,
                           &out_cos[r], &out_sin[r]);
        }
    }
}

/* ---- single precision: four normals a block ---------------------------------------------- */

/* The top 24 bits of a word as a float in [0, 1) (through int32: a conversion AVX2 has). */
static inline float nd_word_to_unitf(uint32_t w) { return (float)(int32_t)(w >> 8) * (1.0f / 16777216.0f); }

/* log(u) for a normal float u in (0, 1] (down to 2^-53 here), as nd_log_unit in single precision. */
static inline float nd_logf_unit(float u)
{
    const uint32_t shifted = nd_float_to_bits(u) + (0x3f800000u - 0x3f3504f3u);
    const float e = (float)((int32_t)(shifted >> 23) - 127);
    const float m = nd_bits_to_float((shifted & 0x007fffffu) + 0x3f3504f3u);
    return e * 0.693145752f + (e * 1.42860677e-06f + nd_log1pf_unit(m - 1.0f));
}

/* cos(2 pi u) and sin(2 pi u) for u in [0, 1) in single precision: as nd_sincos_turns, with
 * Taylor polynomials of degrees 8 and 9 on |x| <= pi/4 (truncation below 4e-9). */
static inline void nd_sincosf_turns(float u, float *cos_out, float *sin_out)
{
    const float kd = (4.0f * u + ND_VMATHF_SHIFTER) - ND_VMATHF_SHIFTER;
    const float r = u - 0.25f * kd, x = 6.28318531f * r, x2 = x * x;
    float c = 1.0f / 40320.0f;
    c = c * -x2 + 1.0f / 720.0f;
    c = c * -x2 + 1.0f / 24.0f;
    c = c * -x2 + 0.5f;
    const float cosx = 1.0f - x2 * c;
    float t = 1.0f / 362880.0f;
    t = t * -x2 + 1.0f / 5040.0f;
    t = t * -x2 + 1.0f / 120.0f;
    t = t * -x2 + 1.0f / 6.0f;
    const float sinx = x - x * x2 * t;
    const uint32_t q = (nd_float_to_bits(kd + ND_VMATHF_SHIFTER) - nd_float_to_bits(ND_VMATHF_SHIFTER)) & 3u;
    const float cmag = (q & 1u) ? sinx : cosx, smag = (q & 1u) ? cosx : sinx;
    *cos_out = ((q + 1u) & 2u) ? -cmag : cmag;
    *sin_out = (q & 2u) ? -smag : smag;
}

ND_VECTOR_CLONES
void nd_rng_normal_quads_rows(uint64_t seed, int64_t rows, const uint64_t *streams, int64_t blocks, uint64_t first,
                              float *out)
{
    const uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    const int64_t plane = blocks * rows;
    for (int64_t q = 0; q < blocks; ++q) {
        const uint64_t block = first + (uint64_t)q;
        float *restrict o0 = out + q * rows, *restrict o1 = o0 + plane, *restrict o2 = o1 + plane, *restrict o3 = o2 + plane;
        for (int64_t r = 0; r < rows; ++r) {
            const uint64_t st = streams[r];
            uint32_t w[4];
            nd_philox_block((uint32_t)block, (uint32_t)(block >> 32), (uint32_t)st, (uint32_t)(st >> 32), k0, k1, w);
            /* two Box-Muller pairs: radii from words 0 and 2, angles from words 1 and 3 */
            const float ra = sqrtf(-2.0f * nd_logf_unit(1.0f - nd_word_to_unitf(w[0])));
            const float rb = sqrtf(-2.0f * nd_logf_unit(1.0f - nd_word_to_unitf(w[2])));
            float ca, sa, cb, sb;
            nd_sincosf_turns(nd_word_to_unitf(w[1]), &ca, &sa);
            nd_sincosf_turns(nd_word_to_unitf(w[3]), &cb, &sb);
            o0[r] = ra * ca;
            o1[r] = ra * sa;
            o2[r] = rb * cb;
            o3[r] = rb * sb;
        }
    }
}

/* ---- one stream's normals, both of each block ------------------------------------------- */

/* A 53-bit uniform's two words as a float, to float precision at every magnitude: the top 31
 * bits of hi and the 21 of lo, each through int32 (a conversion AVX2 has), so that all the work
 * stays in 32-bit lanes. */
static inline float nd_words_to_unitf(uint32_t hi, uint32_t lo)
{
    return (float)(int32_t)(hi >> 1) * 0x1p-31f + (float)(int32_t)(lo >> 11) * 0x1p-53f;
}

/* The pair of nd_normal_pair in single precision, from the same uniforms: log(1 - u_1) by
 * log1p(-u_1) for small u_1 (1 - u_1 in float would lose u_1's digits, and the radius, a square
 * root, would show the loss), otherwise by log of 1 - u_1 formed from the complemented words
 * (exact for u_1 near 1, where u_1 itself rounds to 1 in float); the angle from the top 24 bits
 * of u_2 (2^-24 turns at most off the double's). */
static inline void nd_normal_pairf(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1,
                                   float *cos_out, float *sin_out)
{
    uint32_t w[4];
    nd_philox_block(c0, c1, c2, c3, k0, k1, w);
    const float u1 = nd_words_to_unitf(w[0], w[1]), v1 = nd_words_to_unitf(~w[0], ~w[1]) + 0x1p-53f;
    const float lg = u1 < 0.25f ? nd_log1pf_unit(-u1) : nd_logf_unit(v1);
    const float rad = sqrtf(-2.0f * lg);
    float c, sn;
    nd_sincosf_turns(nd_word_to_unitf(w[2]), &c, &sn);
    *cos_out = rad * c;
    *sin_out = rad * sn;
}

enum { ND_PAIR_CHUNK = 128 }; /* blocks a fill draws at a time, into a buffer on the stack */

/* Blocks block0 .. block0 + nb - 1 of one stream, interleaved: out[2q] the cosine normal of
 * block block0 + q, out[2q + 1] its sine normal, by pair (nd_normal_pair or its float twin).
 * One vectorised pass over the blocks; defined once for both precisions. */
#define ND_PAIRS_LOOP(name, T, pair)                                                                  \
    ND_VECTOR_CLONES                                                                                  \
    static void name(uint64_t seed, uint64_t stream, uint64_t block0, int64_t nb, void *buf)          \
    {                                                                                                 \
        T *restrict out = buf;                                                                        \
        for (int64_t q = 0; q < nb; ++q) {                                                            \
            const uint64_t block = block0 + (uint64_t)q;                                              \
            pair((uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream, (uint32_t)(stream >> 32), \
                 (uint32_t)seed, (uint32_t)(seed >> 32), &out[2 * q], &out[2 * q + 1]);               \
        }                                                                                             \
    }
ND_PAIRS_LOOP(nd_pairs_f64, double, nd_normal_pair) /* defines nd_pairs_f64 */
ND_PAIRS_LOOP(nd_pairs_f32, float, nd_normal_pairf) /* defines nd_pairs_f32 */

/* Normals first .. first + n - 1 of a stream from the interleaved pairs of its blocks, for any
 * first (an odd one starts at a block's sine normal). */
static void nd_fill_from_pairs(void (*pairs)(uint64_t, uint64_t, uint64_t, int64_t, void *), size_t size,
                               uint64_t seed, uint64_t stream, uint64_t first, int64_t n, void *out)
{
    double buf[2 * ND_PAIR_CHUNK]; /* room for the doubles; the floats use half */
    unsigned char *o = out;
    while (n > 0) {
        const int64_t skip = (int64_t)(first & 1), room = 2 * ND_PAIR_CHUNK - skip;
        const int64_t take = n < room ? n : room;
        pairs(seed, stream, first >> 1, (skip + take + 1) >> 1, buf);
        memcpy(o, (unsigned char *)buf + (size_t)skip * size, (size_t)take * size);
        o += (size_t)take * size;
        first += (uint64_t)take;
        n -= take;
    }
}

void nd_rng_normal_fill(uint64_t seed, uint64_t stream, uint64_t first, int64_t n, double *out)
{
    nd_fill_from_pairs(nd_pairs_f64, sizeof(double), seed, stream, first, n, out);
}

void nd_rng_normal_fillf(uint64_t seed, uint64_t stream, uint64_t first, int64_t n, float *out)
{
    nd_fill_from_pairs(nd_pairs_f32, sizeof(float), seed, stream, first, n, out);
}

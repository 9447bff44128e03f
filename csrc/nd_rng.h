/* Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11).
 *
 * A number is a pure function of (key, stream, index), so any thread can draw any element
 * and the result never depends on the number of threads or the order of the work. */
#ifndef ND_RNG_H
#define ND_RNG_H

#include <stdint.h>

/* Four 32-bit words for counter (c0..c3) under key (k0, k1). */
void nd_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* The i-th uniform double in [0, 1) of stream `stream` under seed `seed` (53 random bits). */
double nd_rng_uniform(uint64_t seed, uint64_t stream, uint64_t i);

/* Uniforms 2 * pair and 2 * pair + 1 of the stream (one Philox block gives both). */
void nd_rng_uniform_pair(uint64_t seed, uint64_t stream, uint64_t pair, double two[2]);

/* Uniforms for indices [first, first + n) into out (doubles in [0, 1)). */
void nd_rng_uniform_fill(uint64_t seed, uint64_t stream, uint64_t first, int64_t n, double *out);

/* Standard normals k = first .. first + n - 1 of a stream into out: normal k is the cosine (k
 * even) or sine (k odd) Box-Muller normal of Philox block k >> 1, sqrt(-2 log(1 - u_1))
 * (cos, sin)(2 pi u_2) with u_1, u_2 the block's two uniforms, evaluated with vectorisable log
 * and sincos within about an ulp of libm's. */
void nd_rng_normal_fill(uint64_t seed, uint64_t stream, uint64_t first, int64_t n, double *out);

/* The same normals in single precision: the same uniforms, the log and sincos in float (each
 * within a few float ulps of the double's value). */
void nd_rng_normal_fillf(uint64_t seed, uint64_t stream, uint64_t first, int64_t n, float *out);

/* Both Box-Muller normals of blocks first .. first + blocks - 1 of many streams (the samples of
 * an SDE batch, each with its own): block first + q of stream streams[r] gives
 * out[q rows + r] = r cos(2 pi u_2) (normal 2 (first + q) of nd_rng_normal_fill) and
 * out[(blocks + q) rows + r] = r sin(2 pi u_2), r = sqrt(-2 log(1 - u_1)). One vectorised pass
 * over the streams per block. */
void nd_rng_normal_pairs_rows(uint64_t seed, int64_t rows, const uint64_t *streams, int64_t blocks, uint64_t first,
                              double *out);

/* The same in single precision, four normals a block from 24-bit uniforms u_0 .. u_3 of its four
 * words, in four planes of [blocks][rows]: r_0 (cos, sin)(2 pi u_1), then r_2 (cos, sin)(2 pi u_3),
 * r_k = sqrt(-2 log(1 - u_k)) (|normal| < 5.8). */
void nd_rng_normal_quads_rows(uint64_t seed, int64_t rows, const uint64_t *streams, int64_t blocks, uint64_t first,
                              float *out);

#endif

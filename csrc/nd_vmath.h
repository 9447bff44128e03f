/* Elementwise exp, expm1, tanh and sigmoid written so that gcc vectorises the loops that call
 * them (libm's scalar calls cost ~10 ns per element and dominated every activation).
 *
 * Double precision: Cody-Waite reduction x = k ln2 + r with |r| <= ln2 / 2 and a degree-13
 * Taylor polynomial for e^r - 1 (truncation < 1e-17 relative), so results are within about
 * 1 ulp of libm. Single precision has its own routines in float (twice the lanes of a
 * vector, no conversions): the same reduction with a degree-7 polynomial. Special values:
 * NaN propagates, exp overflows to inf and underflows to 0 like libm. Measured against libm
 * (csrc/tests/test_vmath.c): exp within 1 ulp, tanh within 3 ulp, log1p on [0, 1] within 2;
 * in float, against the correctly rounded double result, exp within 2 ulp, the others 3. */
#ifndef ND_VMATH_H
#define ND_VMATH_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline double nd_bits_to_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static inline uint64_t nd_double_to_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* e^r - 1 for |r| <= ln2 / 2, without the leading 1 so small r keeps full relative accuracy. */
static inline double nd_expm1_reduced(double r)
{
    double p = 1.0 / 6227020800.0; /* 1/13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    return r + r * r * p;
}

/* Adding 1.5 * 2^52 rounds a double to the nearest integer, which then sits in the low bits
 * of the sum: both without conversions that SSE2 cannot do on packed doubles. */
#define ND_VMATH_SHIFTER 6755399441055744.0

/* x = k ln2 + r; returns r and the integer k (as an exact double). */
static inline double nd_exp_reduce(double x, double *k)
{
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    double kd = (x * 1.4426950408889634074 + ND_VMATH_SHIFTER) - ND_VMATH_SHIFTER;
    *k = kd;
    return (x - kd * ln2_hi) - kd * ln2_lo;
}

/* 2^k for an integer-valued k in [-1022, 1023], built from the exponent bits. */
static inline double nd_pow2i(double k)
{
    uint64_t ki = nd_double_to_bits(k + ND_VMATH_SHIFTER) - nd_double_to_bits(ND_VMATH_SHIFTER);
    return nd_bits_to_double((ki + 1023u) << 52);
}

/* Rounds an integer-valued k / 2 to an integer (ties to even). */
static inline double nd_half_int(double k)
{
    return (k * 0.5 + ND_VMATH_SHIFTER) - ND_VMATH_SHIFTER;
}

/* e^x for x already clamped to [-745.2, 709.8]. 2^k is applied as two factors 2^k1 2^k2
 * (k1 = k/2 rounded), each a normal number for every k in range, so the largest doubles and
 * the subnormals are reached without overflowing the exponent field. The first product is
 * exact (a normal number scaled by a power of two), so the result is rounded once, as with
 * one factor; the same arithmetic for every k costs less than choosing a second factor near
 * the ends only. */
static inline double nd_exp_clamped(double xc)
{
    double k;
    double r = nd_exp_reduce(xc, &k);
    const double k1 = nd_half_int(k);
    return ((1.0 + nd_expm1_reduced(r)) * nd_pow2i(k1)) * nd_pow2i(k - k1);
}

static inline double nd_exp(double x)
{
    /* Clamp first (NaN passes through the comparisons) so the scaling stays in range. */
    double y = nd_exp_clamped(x > 709.8 ? 709.8 : (x < -745.2 ? -745.2 : x));
    y = x > 709.782712893384 ? INFINITY : y;
    return x < -745.1332191019412 ? 0.0 : y;
}

/* nd_exp for x <= 0 (or NaN), without the overflow side's clamp and select. Here k lies in
 * [-1075, 0], so 2^(k + 64) is a normal number and one factor does what nd_exp_clamped's two
 * do: (e^r 2^(k + 64)) is exact and the product with 2^-64 rounds once, the same bits for less
 * work (the sigmoid and its kin spend most of their time here). */
static inline double nd_exp_nonpos(double x)
{
    double k;
    const double r = nd_exp_reduce(x < -745.2 ? -745.2 : x, &k);
    const double y = ((1.0 + nd_expm1_reduced(r)) * nd_pow2i(k + 64.0)) * 0x1p-64;
    return x < -745.1332191019412 ? 0.0 : y;
}

/* e^x - 1 for x <= 0, where 2^k stays a normal number: the core of tanh. */
static inline double nd_expm1_nonpos(double x)
{
    double xc = x < -40.0 ? -40.0 : x;
    double k;
    double r = nd_exp_reduce(xc, &k);
    double s = nd_pow2i(k);
    double y = s * nd_expm1_reduced(r) + (s - 1.0);
    return x < -40.0 ? -1.0 : y; /* e^-40 is below half an ulp of 1 */
}

static inline double nd_tanh(double x)
{
    /* tanh|x| = -expm1(-2|x|) / (2 + expm1(-2|x|)): no cancellation near 0. */
    double e = nd_expm1_nonpos(-2.0 * fabs(x));
    return copysign(-e / (2.0 + e), x);
}

/* 1 / (1 + e^-|x|) and e^-|x| / (1 + e^-|x|) (the sign picks one: s or 1 - s without
 * cancellation) with one division: -|x| = k ln2 + r and e^r = N / D by the [6/6] Pade
 * approximant N = P(r), D = P(-r), P(r) = E(r^2) + r O(r^2), whose error (6!)^2 /
 * (12! 13!) |r|^13 is below 1e-19 for |r| <= ln2 / 2. Then s = D / (D + 2^k N) and
 * 1 - s = 2^k N / (D + 2^k N), the scaling applied after the division (one factor 2^(k + 64)
 * and 2^-64, as nd_exp_nonpos) so that subnormal results round once. About 14 products against
 * the Taylor route's 20, one division as before; within 3 ulps like it (csrc/tests/test_vmath.c). */
static inline double nd_sigmoid(double x)
{
    const double z = -fabs(x);
    double k;
    const double r = nd_exp_reduce(z < -745.2 ? -745.2 : z, &k), r2 = r * r;
    const double E = 1.0 + r2 * (5.0 / 44 + r2 * (1.0 / 792 + r2 * (1.0 / 665280)));
    const double O = r * (0.5 + r2 * (1.0 / 66 + r2 * (1.0 / 15840)));
    const double N = E + O, D = E - O, e2 = nd_pow2i(k + 64.0);
    const double q = (x >= 0 ? D : N) / (D + (N * e2) * 0x1p-64);
    return x >= 0 ? q : (z < -745.1332191019412 ? 0.0 : (q * e2) * 0x1p-64);
}

/* The sigmoid's derivative s (1 - s) as e / (1 + e)^2 with e = exp(-|x|) (it is even): no
 * 1 - s, which cancels to nothing in the tails, where it is still far from 0. */
static inline double nd_dsigmoid(double x)
{
    double e = nd_exp_nonpos(-fabs(x));
    double r = 1.0 / (1.0 + e);
    return e * r * r;
}

/* log(1 + u) for u in [sqrt(1/2) - 1, 1] (softplus's log1p(exp(-|x|)) on [0, 1], and the
 * mantissa of nd_rng's log): log(m) = 2 atanh((m - 1) / (m + 1)), taken at m = 1 + u below
 * sqrt(2) and at m / 2 above it (adding ln 2), so |s| <= 0.1716 and twelve terms of the odd
 * series reach double precision. */
static inline double nd_log1p_unit(double u)
{
    const int high = u > 0.41421356237309503;
    const double s = high ? (u - 1.0) / (u + 3.0) : u / (2.0 + u);
    const double s2 = s * s;
    double q = 1.0 / 23;
    q = q * s2 + 1.0 / 21;
    q = q * s2 + 1.0 / 19;
    q = q * s2 + 1.0 / 17;
    q = q * s2 + 1.0 / 15;
    q = q * s2 + 1.0 / 13;
    q = q * s2 + 1.0 / 11;
    q = q * s2 + 1.0 / 9;
    q = q * s2 + 1.0 / 7;
    q = q * s2 + 1.0 / 5;
    q = q * s2 + 1.0 / 3;
    /* the leading 2 s apart from the small correction keeps the rounding to about an ulp */
    const double r = 2.0 * s + 2.0 * s * (s2 * q);
    return high ? 0.69314718055994530942 + r : r;
}

/* log(1 + x) for x in [-0.8, 1]: 1 + x below sqrt(1/2) is scaled by 2 or 4 into
 * [sqrt(1/2), sqrt(2)), with 2 x + 1 and 4 x + 3 exact there (Sterbenz), then ln 2 or 2 ln 2
 * taken off. */
static inline double nd_log1p_wide(double x)
{
    const int j = (x < -0.29289321881345248) + (x < -0.64644660940672624);
    const double u = j == 0 ? x : (j == 1 ? 2.0 * x + 1.0 : 4.0 * x + 3.0);
    return nd_log1p_unit(u) - (double)j * 0.69314718055994530942;
}

/* log(x) for a normal positive x: x = 2^k m with m in [sqrt(1/2), sqrt(2)) read from the bits
 * (the bits of sqrt(1/2) subtracted put k in the exponent field), log m by nd_log1p_unit, k ln 2
 * in two parts. Integer work on 64-bit lanes only (adds, logical shifts), so it vectorises. */
static inline double nd_log_pos(double x)
{
    const uint64_t u = nd_double_to_bits(x), tmp = u - 0x3FE6A09E667F3BCDull; /* the bits of sqrt(1/2) */
    /* k + 1023 >= 0 in the exponent field: k = that field read through the 1.5 * 2^52 shifter */
    const double kd = nd_bits_to_double(nd_double_to_bits(ND_VMATH_SHIFTER) + ((tmp + (1023ull << 52)) >> 52)) -
                      (ND_VMATH_SHIFTER + 1023.0);
    const double m = nd_bits_to_double(u - (tmp & 0xFFF0000000000000ull));
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    return kd * ln2_hi + (nd_log1p_unit(m - 1.0) + kd * ln2_lo);
}

/* softplus(x) = max(x, 0) + log1p(exp(-|x|)), exact for large |x|. */
static inline double nd_softplus(double x)
{
    return (x > 0 ? x : 0.0) + nd_log1p_unit(nd_exp_nonpos(-fabs(x)));
}

/* ---- single precision ------------------------------------------------------------------ */

static inline float nd_bits_to_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t nd_float_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* 1.5 * 2^23: adding it rounds a float to an integer held in the low mantissa bits. */
#define ND_VMATHF_SHIFTER 12582912.0f

/* x = k ln2 + r, |r| <= ln2 / 2 (ln2 split so k * ln2_hi is exact for |k| < 2^10). */
static inline float nd_expf_reduce(float x, float *k)
{
    float kf = (x * 1.44269504f + ND_VMATHF_SHIFTER) - ND_VMATHF_SHIFTER;
    *k = kf;
    return (x - kf * 0.693359375f) - kf * -2.12194440e-4f;
}

/* 2^k for an integer-valued k in [-126, 127]. */
static inline float nd_pow2if(float k)
{
    uint32_t ki = nd_float_to_bits(k + ND_VMATHF_SHIFTER) - nd_float_to_bits(ND_VMATHF_SHIFTER);
    return nd_bits_to_float((ki + 127u) << 23);
}

/* e^r - 1 for |r| <= ln2 / 2: r + r^2 (1/2 + r/6 + ... + r^5/5040), truncation < 3e-9. */
static inline float nd_expm1f_reduced(float r)
{
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    return r + r * r * p;
}

/* e^x for x already clamped to [-104, 88.8], as nd_exp_clamped: 2^k as two normal factors
 * (subnormal results and the last binade before overflow in range, one rounding). */
static inline float nd_expf_clamped(float xc)
{
    float k;
    float r = nd_expf_reduce(xc, &k);
    const float k1 = (k * 0.5f + ND_VMATHF_SHIFTER) - ND_VMATHF_SHIFTER;
    return ((1.0f + nd_expm1f_reduced(r)) * nd_pow2if(k1)) * nd_pow2if(k - k1);
}

static inline float nd_expf(float x)
{
    float y = nd_expf_clamped(x > 88.8f ? 88.8f : (x < -104.0f ? -104.0f : x));
    y = x > 88.7228391f ? INFINITY : y;
    return x < -103.972084f ? 0.0f : y;
}

/* nd_expf for x <= 0 (or NaN), one factor as in nd_exp_nonpos (k in [-150, 0]). */
static inline float nd_expf_nonpos(float x)
{
    float k;
    const float r = nd_expf_reduce(x < -104.0f ? -104.0f : x, &k);
    const float y = ((1.0f + nd_expm1f_reduced(r)) * nd_pow2if(k + 64.0f)) * 0x1p-64f;
    return x < -103.972084f ? 0.0f : y;
}

/* e^x - 1 for x <= 0: the core of tanhf (e^-18 is below half an ulp of 1). */
static inline float nd_expm1f_nonpos(float x)
{
    float xc = x < -18.0f ? -18.0f : x;
    float k;
    float r = nd_expf_reduce(xc, &k);
    float s = nd_pow2if(k);
    float y = s * nd_expm1f_reduced(r) + (s - 1.0f);
    return x < -18.0f ? -1.0f : y;
}

static inline float nd_tanhf(float x)
{
    float e = nd_expm1f_nonpos(-2.0f * fabsf(x));
    return copysignf(-e / (2.0f + e), x);
}

static inline float nd_sigmoidf(float x)
{
    float e = nd_expf_nonpos(-fabsf(x));
    float s = 1.0f / (1.0f + e);
    return x >= 0 ? s : e * s;
}

static inline float nd_dsigmoidf(float x)
{
    float e = nd_expf_nonpos(-fabsf(x));
    float r = 1.0f / (1.0f + e);
    return e * r * r;
}

/* log(1 + u) for u in [sqrt(1/2) - 1, 1], as nd_log1p_unit with the series cut where float
 * needs it. */
static inline float nd_log1pf_unit(float u)
{
    const int high = u > 0.41421356f;
    const float s = high ? (u - 1.0f) / (u + 3.0f) : u / (2.0f + u);
    const float s2 = s * s;
    float q = 1.0f / 11;
    q = q * s2 + 1.0f / 9;
    q = q * s2 + 1.0f / 7;
    q = q * s2 + 1.0f / 5;
    q = q * s2 + 1.0f / 3;
    const float r = 2.0f * s + 2.0f * s * (s2 * q);
    return high ? 0.693147181f + r : r;
}

/* log(1 + x) for x in [-0.8, 1], as nd_log1p_wide. */
static inline float nd_log1pf_wide(float x)
{
    const int j = (x < -0.292893219f) + (x < -0.646446609f);
    const float u = j == 0 ? x : (j == 1 ? 2.0f * x + 1.0f : 4.0f * x + 3.0f);
    return nd_log1pf_unit(u) - (float)j * 0.693147181f;
}

static inline float nd_softplusf(float x)
{
    return (x > 0 ? x : 0.0f) + nd_log1pf_unit(nd_expf_nonpos(-fabsf(x)));
}

/* x, or a zero of its sign where |x| is below the smallest normal number divided by the
 * machine epsilon (2^-103, about 9.9e-32, in float; 2^-970, about 1.0e-292, in double): the
 * flush of the backward kernels' cotangents (docs/models.md §0). Gradients that decay
 * geometrically (a scan's cotangent carried back over many frames) reach the subnormal range,
 * and on cores that handle subnormal operands and results in microcode every product that
 * meets them runs tens of times slower (a Liquid training step over 100 frames: 956 ms
 * against 62 on an Intel Xeon). The margin of one epsilon keeps the products of a flushed
 * cotangent with factors down to an ulp normal as well; a flush at the smallest normal
 * number alone left the products rounding into that range (135 ms). */
static inline float nd_flush_tinyf(float x) { return fabsf(x) < FLT_MIN / FLT_EPSILON ? 0.0f * x : x; }
static inline double nd_flush_tiny(double x) { return fabs(x) < DBL_MIN / DBL_EPSILON ? 0.0 * x : x; }

/* e^x for x <= 0 (or NaN), flushed as nd_flush_tiny: the argument is first clamped where the
 * result is still a normal number (-80 in float, -700 in double; the flush level is e^-71.4 and
 * e^-672.4), so that the exponential never computes a subnormal intermediate either. */
static inline float nd_expf_nonpos_flushed(float x) { return nd_flush_tinyf(nd_expf_nonpos(x < -80.0f ? -80.0f : x)); }
static inline double nd_exp_nonpos_flushed(double x) { return nd_flush_tiny(nd_exp_nonpos(x < -700.0 ? -700.0 : x)); }

/* out = the sum of TERM over j in [0, n), TERM an expression of the index j: in eight lanes of
 * double, the tail added first and the lanes one by one at the end. A fixed order (the same bits
 * on every machine and thread count) that vectorises, where one running sum cannot. */
#define ND_LANE_SUM(n, j, TERM, out)                                                               \
    do {                                                                                           \
        double lane_[8] = {0, 0, 0, 0, 0, 0, 0, 0}, sum_ = 0;                                      \
        int64_t b_ = 0;                                                                            \
        for (; b_ + 8 <= (n); b_ += 8)                                                             \
            for (int k_ = 0; k_ < 8; ++k_) {                                                       \
                const int64_t j = b_ + k_;                                                         \
                lane_[k_] += (double)(TERM);                                                       \
            }                                                                                      \
        for (int64_t j = b_; j < (n); ++j)                                                         \
            sum_ += (double)(TERM);                                                                \
        for (int k_ = 0; k_ < 8; ++k_)                                                             \
            sum_ += lane_[k_];                                                                     \
        (out) = sum_;                                                                              \
    } while (0)

/* Type-generic names for the float/double templates. */
/* 1 if all n values are finite: no early exit, so the loop vectorises. */
static inline int nd_all_finitef(int64_t n, const float *p)
{
    int ok = 1;
    for (int64_t i = 0; i < n; ++i)
        ok &= isfinite(p[i]) != 0;
    return ok;
}

static inline int nd_all_finite(int64_t n, const double *p)
{
    int ok = 1;
    for (int64_t i = 0; i < n; ++i)
        ok &= isfinite(p[i]) != 0;
    return ok;
}

#define nd_vall_finite(n, p) _Generic((p), float *: nd_all_finitef, const float *: nd_all_finitef, \
                                      default: nd_all_finite)(n, p)
#define nd_vexp(x) _Generic((x), float: nd_expf, default: nd_exp)(x)
#define nd_vexp_nonpos(x) _Generic((x), float: nd_expf_nonpos, default: nd_exp_nonpos)(x)
#define nd_vlog1p_wide(x) _Generic((x), float: nd_log1pf_wide, default: nd_log1p_wide)(x)
#define nd_vtanh(x) _Generic((x), float: nd_tanhf, default: nd_tanh)(x)
#define nd_vsigmoid(x) _Generic((x), float: nd_sigmoidf, default: nd_sigmoid)(x)
#define nd_vdsigmoid(x) _Generic((x), float: nd_dsigmoidf, default: nd_dsigmoid)(x)
#define nd_vsoftplus(x) _Generic((x), float: nd_softplusf, default: nd_softplus)(x)
#define nd_vflush_tiny(x) _Generic((x), float: nd_flush_tinyf, default: nd_flush_tiny)(x)
#define nd_vexp_nonpos_flushed(x) _Generic((x), float: nd_expf_nonpos_flushed, default: nd_exp_nonpos_flushed)(x)

/* Elementwise kernels carry this attribute: gcc compiles them for AVX-512, AVX2+FMA and
 * baseline x86-64 and picks one when the library loads, so a portable build still uses the
 * widest vectors of the machine it runs on. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && !defined(ND_NO_CLONES)
#define ND_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
/* The same, for kernels whose results must not depend on the machine: no a * b + c fused into
 * one rounding where the clone has FMA, so every clone rounds as the baseline does. */
#define ND_VECTOR_CLONES_EXACT                                                                        \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), optimize("fp-contract=off")))
#else
#define ND_VECTOR_CLONES
#define ND_VECTOR_CLONES_EXACT
#endif

#endif

/* The vectorisable elementwise math of nd_vmath.h against libm, in ulps, over the whole
 * range, with the special values; and the activation kernels that use it. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "nd_nn.h"
#include "nd_status.h"
#include "nd_test.h"
#include "nd_vmath.h"

static double ulps(double got, double want)
{
    if (got == want || (isnan(got) && isnan(want)))
        return 0;
    double u = fabs(nextafter(want, INFINITY) - want);
    return fabs(got - want) / (u > 0 ? u : 4.9e-324);
}

static double max_ulps(double (*f)(double), double (*ref)(double), double lo, double hi)
{
    double worst = 0;
    for (int i = 0; i < 200000; ++i) {
        double x = nd_test_uniform(lo, hi), u = ulps(f(x), ref(x));
        worst = u > worst ? u : worst;
    }
    return worst;
}

/* in long double: the double formula's own rounding (up to 2 ulps) would count against nd_sigmoid */
static double ref_sigmoid(double x) { return (double)(1.0L / (1.0L + expl(-(long double)x))); }
static double ref_dsigmoid(double x)
{
    long double e = expl(-fabsl((long double)x));
    return (double)(e / ((1.0L + e) * (1.0L + e)));
}

static void test_exp_accuracy(void)
{
    CHECK(max_ulps(nd_exp, exp, -745.0, 709.78) <= 1.0);
    CHECK(max_ulps(nd_exp, exp, -1e-6, 1e-6) <= 1.0);
    CHECK(max_ulps(nd_exp, exp, -745.1, -708.0) <= 1.0); /* subnormal results */
    CHECK(max_ulps(nd_exp, exp, 700.0, 709.78) <= 1.0);  /* near overflow */
    CHECK(nd_exp(0.0) == 1.0);
    CHECK(isinf(nd_exp(710.0)) && isinf(nd_exp(INFINITY)));
    CHECK(nd_exp(-746.0) == 0.0 && nd_exp(-INFINITY) == 0.0);
    CHECK(isnan(nd_exp(NAN)));
}

static double ref_softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

static void test_log1p_softplus_accuracy(void)
{
    CHECK(max_ulps(nd_log1p_unit, log1p, 0.0, 1.0) <= 2.0);
    CHECK(max_ulps(nd_log1p_unit, log1p, 0.0, 1e-6) <= 2.0);
    CHECK(max_ulps(nd_log1p_unit, log1p, 0.4, 0.43) <= 2.0); /* across the range split */
    CHECK(max_ulps(nd_log1p_unit, log1p, -0.2928932, 0.0) <= 2.0); /* nd_rng's mantissas below 1 */
    CHECK(nd_log1p_unit(0.0) == 0.0);
    /* the LTC decay's log1p on [-0.8, 1], across its splits at sqrt(1/2) - 1 and sqrt(1/8) - 1 */
    CHECK(max_ulps(nd_log1p_wide, log1p, -0.8, 1.0) <= 2.0);
    CHECK(max_ulps(nd_log1p_wide, log1p, -0.30, -0.28) <= 2.0);
    CHECK(max_ulps(nd_log1p_wide, log1p, -0.66, -0.63) <= 2.0);
    CHECK(max_ulps(nd_log1p_wide, log1p, -0.8, -0.79) <= 2.0);
    CHECK(max_ulps(nd_softplus, ref_softplus, -40.0, 40.0) <= 3.0);
    CHECK(nd_softplus(800.0) == 800.0 && nd_softplus(-800.0) == 0.0 && isnan(nd_softplus(NAN)));
}

static void test_tanh_sigmoid_accuracy(void)
{
    CHECK(max_ulps(nd_tanh, tanh, -30.0, 30.0) <= 3.0);
    CHECK(max_ulps(nd_tanh, tanh, -1e-5, 1e-5) <= 1.0);
    CHECK(max_ulps(nd_sigmoid, ref_sigmoid, -30.0, 30.0) <= 3.0);
    CHECK(nd_tanh(-0.0) == 0.0 && signbit(nd_tanh(-0.0)));
    CHECK(nd_tanh(INFINITY) == 1.0 && nd_tanh(-INFINITY) == -1.0 && isnan(nd_tanh(NAN)));
    CHECK(nd_sigmoid(-800.0) == 0.0 && nd_sigmoid(800.0) == 1.0 && isnan(nd_sigmoid(NAN)));
    /* the derivative keeps its relative accuracy in the tails, where s (1 - s) cancels */
    CHECK(max_ulps(nd_dsigmoid, ref_dsigmoid, -700.0, 700.0) <= 4.0);
    CHECK(max_ulps(nd_dsigmoid, ref_dsigmoid, 36.0, 40.0) <= 4.0);
    CHECK(nd_dsigmoid(0.0) == 0.25 && nd_dsigmoid(-800.0) == 0.0 && isnan(nd_dsigmoid(NAN)));
}

/* float routines against the double result rounded once, in float ulps */
static double ulpsf(float got, double want)
{
    const float w = (float)want;
    if (got == w || (isnan(got) && isnan(w)))
        return 0;
    double u = fabs((double)nextafterf(w, INFINITY) - (double)w);
    return fabs((double)got - want) / (u > 0 ? u : 1.4e-45);
}

static double max_ulpsf(float (*f)(float), double (*ref)(double), double lo, double hi)
{
    double worst = 0;
    for (int i = 0; i < 200000; ++i) {
        const float x = (float)nd_test_uniform(lo, hi);
        double u = ulpsf(f(x), ref((double)x));
        worst = u > worst ? u : worst;
    }
    return worst;
}

static void test_float_routines(void)
{
    CHECK(max_ulpsf(nd_expf, exp, -103.9, 88.72) <= 2.0);
    CHECK(max_ulpsf(nd_expf, exp, -1e-4, 1e-4) <= 1.0);
    CHECK(max_ulpsf(nd_expf, exp, -103.9, -87.0) <= 2.0); /* subnormal results */
    CHECK(max_ulpsf(nd_expf, exp, 80.0, 88.72) <= 2.0);   /* near overflow */
    CHECK(nd_expf(0.0f) == 1.0f && isinf(nd_expf(89.0f)) && nd_expf(-105.0f) == 0.0f && isnan(nd_expf(NAN)));
    CHECK(nd_expf(INFINITY) == INFINITY && nd_expf(-INFINITY) == 0.0f);
    CHECK(max_ulpsf(nd_tanhf, tanh, -12.0, 12.0) <= 3.0);
    CHECK(max_ulpsf(nd_tanhf, tanh, -1e-3, 1e-3) <= 2.0);
    CHECK(nd_tanhf(-0.0f) == 0.0f && signbit(nd_tanhf(-0.0f)) && nd_tanhf(INFINITY) == 1.0f);
    CHECK(nd_tanhf(-INFINITY) == -1.0f && isnan(nd_tanhf(NAN)));
    CHECK(max_ulpsf(nd_sigmoidf, ref_sigmoid, -100.0, 30.0) <= 3.0);
    CHECK(nd_sigmoidf(-200.0f) == 0.0f && nd_sigmoidf(200.0f) == 1.0f && isnan(nd_sigmoidf(NAN)));
    CHECK(max_ulpsf(nd_dsigmoidf, ref_dsigmoid, -80.0, 80.0) <= 4.0);
    CHECK(max_ulpsf(nd_dsigmoidf, ref_dsigmoid, 17.0, 20.0) <= 4.0); /* where 1 - s is 0 in float */
    CHECK(nd_dsigmoidf(0.0f) == 0.25f && nd_dsigmoidf(200.0f) == 0.0f && isnan(nd_dsigmoidf(NAN)));
    CHECK(max_ulpsf(nd_softplusf, ref_softplus, -100.0, 40.0) <= 3.0);
    CHECK(max_ulpsf(nd_log1pf_unit, log1p, -0.2928932, 1.0) <= 2.0);
    CHECK(max_ulpsf(nd_log1pf_wide, log1p, -0.8, 1.0) <= 2.0);
    CHECK(max_ulpsf(nd_log1pf_wide, log1p, -0.66, -0.63) <= 2.0);
    CHECK(nd_softplusf(200.0f) == 200.0f && nd_softplusf(-200.0f) == 0.0f && isnan(nd_softplusf(NAN)));
}

static void test_activation_kernels(void)
{
    enum { N = 1001 };
    static double x[N], y[N];
    static float xf[N], yf[N];
    for (int i = 0; i < N; ++i) {
        x[i] = -25.0 + 50.0 * i / (N - 1);
        xf[i] = (float)x[i];
    }
    double worst[ND_ACT_COUNT] = {0};
    for (int act = 0; act < ND_ACT_COUNT; ++act) {
        CHECK(nd_act_forward_f64(act, N, x, y) == ND_OK);
        CHECK(nd_act_forward_f32(act, N, xf, yf) == ND_OK);
        for (int i = 0; i < N; ++i) {
            double v = x[i], want;
            switch (act) {
            case ND_ACT_TANH: want = tanh(v); break;
            case ND_ACT_SILU: want = v / (1.0 + exp(-v)); break;
            case ND_ACT_RELU: want = v > 0 ? v : 0; break;
            case ND_ACT_SIGMOID: want = 1.0 / (1.0 + exp(-v)); break;
            case ND_ACT_SOFTPLUS: want = log1p(exp(v)); break;
            case ND_ACT_LECUN_TANH: want = 1.7159 * tanh(0.666 * v); break;
            default: want = v;
            }
            double err = fabs(y[i] - want) / (fabs(want) > 1e-300 ? fabs(want) : 1.0);
            worst[act] = err > worst[act] ? err : worst[act];
            CHECK_CLOSE(yf[i], want, 1e-6 * (fabs(want) > 1 ? fabs(want) : 1.0));
        }
        CHECK(worst[act] < 1e-15);
    }
    /* in place, and NaN passes through every activation */
    double z[2] = {NAN, 0.5};
    for (int act = 0; act < ND_ACT_COUNT; ++act) {
        z[0] = NAN;
        CHECK(nd_act_forward_f64(act, 2, z, z) == ND_OK);
        CHECK(isnan(z[0]));
    }
    CHECK(nd_act_forward_f64(ND_ACT_COUNT, 2, z, z) == ND_ERR_ARG);
}

ND_TEST_MAIN(test_exp_accuracy, test_log1p_softplus_accuracy, test_tanh_sigmoid_accuracy, test_float_routines,
             test_activation_kernels)

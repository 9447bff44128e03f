/* Energies (values and input gradients against finite differences) and the Langevin and
 * MALA samplers (Gaussian moments, reproducibility, acceptance). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nd_ebm.h"
#include "nd_nn.h"
#include "nd_rng.h"
#include "nd_status.h"
#include "nd_test.h"

enum { D = 3 };
static nd_energy EN;
static double X[D], WORK[4096];

static double energy_at(void)
{
    double e, g[D];
    CHECK(nd_energy_eval_f64(&EN, 1, X, &e, g) == ND_OK);
    return e;
}

static void check_gradient(const char *what)
{
    nd_test_fill(X, D, -1.2, 1.2);
    double e, g[D];
    CHECK(nd_energy_eval_f64(&EN, 1, X, &e, g) == ND_OK);
    double err = nd_test_fd_error(energy_at, X, g, D, 1e-6, 1e-3);
    if (err >= 1e-6)
        fprintf(stderr, "%s: gradient fd error %g\n", what, err);
    CHECK(err < 1e-6);
}

static void test_energy_gradients(void)
{
    static double W0[D * 5], B0[5], W1[5 * 4], B1[4], W2[4], B2[1], M[D], P[D * D], GM[2 * D], GP[2 * D * D], GC[2];
    nd_test_fill(W0, D * 5, -1, 1);
    nd_test_fill(B0, 5, -0.5, 0.5);
    nd_test_fill(W1, 20, -1, 1);
    nd_test_fill(B1, 4, -0.5, 0.5);
    nd_test_fill(W2, 4, -1, 1);
    B2[0] = 0.3;
    nd_energy mlp = {.kind = ND_ENERGY_MLP, .dim = D, .n_layers = 2, .widths = {D, 5, 4}, .weights = {W0, W1, W2},
                     .biases = {B0, B1, B2}, .act = ND_ACT_SILU, .work = WORK, .batch_cap = 1};
    size_t len;
    CHECK(nd_energy_workspace_len(&mlp, 1, &len) == ND_OK && len <= 4096);
    EN = mlp;
    check_gradient("mlp");
    nd_energy_prepare_f64(&EN); /* the gradient's products on the transposed kernels */
    CHECK(EN.weights_t[1] && EN.weights_t[2] && ((const double *)EN.weights_t[1])[1] == W0[5]);
    check_gradient("mlp, prepared");
    /* quadratic with a symmetric positive precision */
    double A[D * D];
    nd_test_fill(A, D * D, -1, 1);
    for (int i = 0; i < D; ++i)
        for (int j = 0; j < D; ++j) {
            double s = i == j ? 1.0 : 0.0;
            for (int k = 0; k < D; ++k)
                s += A[i * D + k] * A[j * D + k];
            P[i * D + j] = s;
        }
    nd_test_fill(M, D, -1, 1);
    nd_energy quad = {.kind = ND_ENERGY_QUADRATIC, .dim = D, .mean = M, .precision = P, .work = WORK, .batch_cap = 1};
    EN = quad;
    check_gradient("quadratic");
    for (int k = 0; k < 2; ++k) {
        nd_test_fill(GM + k * D, D, -1, 1);
        memcpy(GP + k * D * D, P, sizeof P);
        GC[k] = k ? -0.3 : 0.2;
    }
    nd_energy gmm = {.kind = ND_ENERGY_GMM, .dim = D, .components = 2, .mean = GM, .precision = GP, .logc = GC,
                     .work = WORK, .batch_cap = 1};
    EN = gmm;
    check_gradient("gmm");
    nd_energy well = {.kind = ND_ENERGY_DOUBLE_WELL, .dim = D, .barrier = 1.5, .tilt = 0.2, .batch_cap = 1};
    EN = well;
    check_gradient("double well");
}

static void test_langevin_gaussian_moments(void)
{
    /* E = 0.5 (x - m)^2 / v in 1-D: with noise_scale 1 the chains sample N(m, v) */
    enum { B = 4000 };
    static double x[B], work[3 * B + 2 * B];
    const double m = 0.7, v = 0.25, prec = 1 / v;
    nd_energy quad = {.kind = ND_ENERGY_QUADRATIC, .dim = 1, .mean = &m, .precision = &prec, .batch_cap = B};
    static double ework[2 * B];
    quad.work = ework;
    for (int mala = 0; mala < 2; ++mala) {
        memset(x, 0, sizeof x);
        nd_langevin_opts o = {.steps = 400, .step_size = 0.05, .noise_scale = 1.0, .mala = mala, .seed = 11};
        static int64_t acc[B];
        CHECK(nd_langevin_f64(nd_energy_eval_f64, &quad, &o, B, 1, x, acc, work) == ND_OK);
        double mean = 0, var = 0;
        for (int i = 0; i < B; ++i)
            mean += x[i];
        mean /= B;
        for (int i = 0; i < B; ++i)
            var += (x[i] - mean) * (x[i] - mean);
        var /= B - 1;
        /* standard errors: sqrt(v / B) = 0.008 for the mean, v sqrt(2 / B) = 0.0056 for the
         * variance; unadjusted Langevin's own bias at eta = 0.05 is v eta / (4 - eta) ~ 0.003 */
        CHECK(fabs(mean - m) < 5 * 0.008);
        CHECK(fabs(var - v) < 5 * 0.0056 + (mala ? 0 : 0.004));
        if (mala) {
            int64_t total = 0;
            for (int i = 0; i < B; ++i)
                total += acc[i];
            double rate = (double)total / (400.0 * B);
            CHECK(rate > 0.5 && rate <= 1.0);
        }
    }
    /* same seed, same chains */
    double a[8] = {0}, b[8] = {0}, w[40];
    nd_langevin_opts o = {.steps = 10, .step_size = 0.1, .noise_scale = 1.0, .seed = 3};
    CHECK(nd_langevin_f64(nd_energy_eval_f64, &quad, &o, 8, 1, a, NULL, w) == ND_OK);
    CHECK(nd_langevin_f64(nd_energy_eval_f64, &quad, &o, 8, 1, b, NULL, w) == ND_OK);
    CHECK(memcmp(a, b, sizeof a) == 0);
    o.clamp = 1;
    o.clamp_lo = 0.5;
    o.clamp_hi = 0.4;
    CHECK(nd_langevin_f64(nd_energy_eval_f64, &quad, &o, 8, 1, a, NULL, w) == ND_ERR_ARG);
}

/* The vectorised normals against Box-Muller through libm on the same Philox uniforms (normal k:
 * the cosine or sine normal of block k >> 1), from even and odd starts over ranges that cross
 * 32-bit counter words, their first two moments, and the single-precision fill against them. */
static void test_normal_fill_matches_libm(void)
{
    enum { N = 100001 };
    static double z[N];
    static float zf[N];
    const uint64_t firsts[4] = {0, 3, 8589934592ull - N / 2, (1ull << 62) + 1};
    for (int f = 0; f < 4; ++f) {
        nd_rng_normal_fill(77, 5, firsts[f], N, z);
        nd_rng_normal_fillf(77, 5, firsts[f], N, zf);
        double worst = 0, worst_f = 0, sum = 0, sq = 0;
        for (int i = 0; i < N; ++i) {
            const uint64_t k = firsts[f] + (uint64_t)i;
            double u[2];
            nd_rng_uniform_pair(77, 5, k >> 1, u);
            const double r = sqrt(-2.0 * log(1.0 - u[0])), a = 6.283185307179586 * u[1];
            const double want = r * ((k & 1) ? sin(a) : cos(a));
            const double err = fabs(z[i] - want), err_f = fabs((double)zf[i] - want) / (1.0 + fabs(want));
            worst = err > worst ? err : worst;
            worst_f = err_f > worst_f ? err_f : worst_f;
            sum += z[i];
            sq += z[i] * z[i];
        }
        CHECK(worst < 1e-14);
        CHECK(worst_f < 2e-6); /* a few float ulps of values up to ~8.6 */
        CHECK(fabs(sum / N) < 0.02 && fabs(sq / N - 1.0) < 0.02);
    }
}

ND_TEST_MAIN(test_energy_gradients, test_langevin_gaussian_moments, test_normal_fill_matches_libm)

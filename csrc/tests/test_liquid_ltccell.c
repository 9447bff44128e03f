/* The LTC cell kernels: one unfold against the update written out, and the backward pass
 * (every parameter array, the inputs, the initial state) against central finite differences. */
#include <math.h>
#include <string.h>

#include "nd_liquid_ltccell.h"
#include "nd_status.h"
#include "nd_test.h"

enum { B = 2, T = 3, S = 2, N = 3, K = 4 };
static double X[B * T * S], DT[B * T], H0[B * N], WOUT[B * T * N];
static double GL[N], VL[N], CM[N], W[N * N], SIG[N * N], MU[N * N], E[N * N], SW[S * N], SSIG[S * N], SMU[S * N],
    SE[S * N];
static nd_ltccell cell = {.sensory = S, .units = N, .unfolds = K, .eps = 1e-8, .gleak = GL, .vleak = VL, .cm = CM,
                          .w = W, .sigma = SIG, .mu = MU, .erev = E, .sw = SW, .ssigma = SSIG, .smu = SMU, .serev = SE};
static double work[1024];

static double loss(void)
{
    double h[B * T * N];
    CHECK(nd_ltccell_forward_f64(&cell, B, T, X, DT, H0, h, NULL, work) == ND_OK);
    double l = 0;
    for (int i = 0; i < B * T * N; ++i)
        l += WOUT[i] * h[i];
    return l;
}

static void setup(void)
{
    nd_test_fill(X, B * T * S, -1, 1);
    nd_test_fill(DT, B * T, 0.5, 1.5);
    nd_test_fill(H0, B * N, -0.5, 0.5);
    nd_test_fill(WOUT, B * T * N, -1, 1);
    nd_test_fill(GL, N, 0.1, 1.0);
    nd_test_fill(VL, N, -0.2, 0.2);
    nd_test_fill(CM, N, 0.4, 0.6);
    nd_test_fill(W, N * N, 0.01, 1.0);
    nd_test_fill(SIG, N * N, 3, 8);
    nd_test_fill(MU, N * N, 0.3, 0.8);
    nd_test_fill(E, N * N, -1, 1);
    nd_test_fill(SW, S * N, 0.01, 1.0);
    nd_test_fill(SSIG, S * N, 3, 8);
    nd_test_fill(SMU, S * N, 0.3, 0.8);
    nd_test_fill(SE, S * N, -1, 1);
}

static double sig(double z) { return 1 / (1 + exp(-z)); }

static void test_first_unfold_by_hand(void)
{
    setup();
    /* one step, one unfold: K = 1 makes the first output the first unfold */
    nd_ltccell one = cell;
    one.unfolds = 1;
    double h[B * T * N];
    CHECK(nd_ltccell_forward_f64(&one, B, T, X, DT, H0, h, NULL, work) == ND_OK);
    for (int j = 0; j < N; ++j) {
        double c = CM[j] / DT[0], num = c * H0[j] + GL[j] * VL[j], den = c + GL[j] + 1e-8;
        for (int i = 0; i < N; ++i) {
            double a = W[i * N + j] * sig(SIG[i * N + j] * (H0[i] - MU[i * N + j]));
            num += a * E[i * N + j];
            den += a;
        }
        for (int i = 0; i < S; ++i) {
            double a = SW[i * N + j] * sig(SSIG[i * N + j] * (X[i] - SMU[i * N + j]));
            num += a * SE[i * N + j];
            den += a;
        }
        CHECK_CLOSE(h[j], num / den, 1e-14);
    }
}

static void test_gradients(void)
{
    setup();
    size_t clen, wlen;
    CHECK(nd_ltccell_sizes(&cell, B, T, &clen, &wlen) == ND_OK && wlen <= 1024 && clen == B * T * K * N);
    static double cache[B * T * K * N], h[B * T * N], dx[B * T * S], dh0[B * N], dp[256];
    CHECK(nd_ltccell_param_count(&cell) == 3 * N + 4 * N * N + 4 * S * N);
    CHECK(nd_ltccell_forward_f64(&cell, B, T, X, DT, H0, h, cache, work) == ND_OK);
    CHECK(nd_ltccell_backward_f64(&cell, B, T, X, DT, H0, cache, WOUT, dx, dh0, dp, work) == ND_OK);
    double *arrays[] = {GL, VL, CM, W, SIG, MU, E, SW, SSIG, SMU, SE};
    int sizes[] = {N, N, N, N * N, N * N, N * N, N * N, S * N, S * N, S * N, S * N};
    double e = 0, *off = dp;
    for (int k = 0; k < 11; ++k) {
        double ek = nd_test_fd_error(loss, arrays[k], off, sizes[k], 1e-6, 1e-3);
        if (ek >= 1e-6)
            fprintf(stderr, "ltccell parameter array %d: fd error %g\n", k, ek);
        e = fmax(e, ek);
        off += sizes[k];
    }
    e = fmax(e, nd_test_fd_error(loss, X, dx, B * T * S, 1e-6, 1e-3));
    e = fmax(e, nd_test_fd_error(loss, H0, dh0, B * N, 1e-6, 1e-3));
    CHECK(e < 1e-6);
}

static void test_rules_name_the_argument(void)
{
    setup();
    const struct {
        int64_t sensory, units, unfolds;
        double eps;
        const char *arg;
    } bad[] = {{-1, N, K, 0, "input_size"},   {S, 0, K, 0, "units"},       {S, N, 0, 0, "ode_unfolds"},
               {S, N, 100001, 0, "ode_unfolds"}, {S, N, K, -1e-8, "epsilon"}, {S, N, K, NAN, "epsilon"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        nd_ltccell c = cell;
        c.sensory = bad[i].sensory;
        c.units = bad[i].units;
        c.unfolds = bad[i].unfolds;
        c.eps = bad[i].eps;
        CHECK(nd_ltccell_check(&c) == ND_ERR_ARG && strcmp(nd_last_error()->arg, bad[i].arg) == 0);
    }
    double dt[B * T], h[B * T * N];
    for (int i = 0; i < B * T; ++i)
        dt[i] = 1;
    dt[B * T - 1] = 0;
    CHECK(nd_ltccell_forward_f64(&cell, B, T, X, dt, H0, h, NULL, work) == ND_ERR_ARG &&
          strcmp(nd_last_error()->arg, "timespans") == 0);
    nd_clear_error();
}

/* Sizes whose work would not fit in memory are refused, naming the argument, not wrapped (the
 * parameters are never read for the sizes, so any pointers will do). */
static void test_overflowing_sizes(void)
{
    setup();
    size_t clen, wlen;
    const int64_t huge[][2] = {{((int64_t)1 << 61) - 12, 1}, {1, (int64_t)1 << 31}, {(int64_t)1 << 40, 1 << 20}};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; ++i) {
        nd_ltccell c = cell;
        c.sensory = huge[i][0];
        c.units = huge[i][1];
        CHECK(nd_ltccell_sizes(&c, 1, 1, &clen, &wlen) == ND_ERR_OVERFLOW &&
              strcmp(nd_last_error()->arg, "units") == 0);
        nd_clear_error();
    }
    /* the work of many samples stays within the budget of groups, at least one group's */
    CHECK(nd_ltccell_sizes(&cell, 100000, 1, &clen, &wlen) == ND_OK && wlen <= ((size_t)1 << 22));
}

ND_TEST_MAIN(test_first_unfold_by_hand, test_gradients, test_rules_name_the_argument, test_overflowing_sizes)

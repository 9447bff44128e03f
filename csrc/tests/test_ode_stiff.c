/* The implicit solvers of nd_ode_stiff.h (Radau IIA 5, BDF 1-5) on independent samples: a
 * stiff linear problem against its exact solution, Robertson's kinetics against the published
 * reference values, samples bit-identical alone and in a batch, difference Jacobians, float32,
 * failures of one sample (singular Newton matrix, non-finite f) that leave the others intact,
 * and the argument checks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nd_ode_stiff.h"
#include "nd_status.h"
#include "nd_test.h"

/* ---- problems ------------------------------------------------------------------------------- */

/* y' = A y with A = V diag(-1, -1e4) V^-1, V = [[1, 1], [1, -1]]: A = [[-5000.5, 4999.5],
 * [4999.5, -5000.5]]. */
static const double lin_A[4] = {-5000.5, 4999.5, 4999.5, -5000.5};

static int lin_rhs(void *ctx, int64_t m, int64_t d, const double *t, const double *y, double *dy)
{
    for (int64_t i = 0; i < m; ++i) {
        dy[2 * i] = lin_A[0] * y[2 * i] + lin_A[1] * y[2 * i + 1];
        dy[2 * i + 1] = lin_A[2] * y[2 * i] + lin_A[3] * y[2 * i + 1];
    }
    return ND_OK;
}

static int lin_jac(void *ctx, int64_t m, int64_t d, const double *t, const double *y, double *J)
{
    for (int64_t i = 0; i < m; ++i)
        memcpy(J + 4 * i, lin_A, sizeof lin_A);
    return ND_OK;
}

static void lin_exact(double t, const double *y0, double *y)
{
    /* in the eigenbasis: u = (y0 + y1)/2 decays with -1, v = (y0 - y1)/2 with -1e4 */
    double u = 0.5 * (y0[0] + y0[1]) * exp(-t), v = 0.5 * (y0[0] - y0[1]) * exp(-1e4 * t);
    y[0] = u + v;
    y[1] = u - v;
}

/* Robertson with per-sample rates held in the state: y = (y1, y2, y3, k1, k2, k3), k' = 0. */
static int rober_rhs(void *ctx, int64_t m, int64_t d, const double *t, const double *y, double *dy)
{
    for (int64_t i = 0; i < m; ++i) {
        const double *v = y + 6 * i;
        double *o = dy + 6 * i;
        const double a = v[3] * v[0], b = v[5] * v[1] * v[2], c = v[4] * v[1] * v[1];
        o[0] = -a + b;
        o[1] = a - b - c;
        o[2] = c;
        o[3] = o[4] = o[5] = 0;
    }
    return ND_OK;
}

static int rober_jac(void *ctx, int64_t m, int64_t d, const double *t, const double *y, double *J)
{
    memset(J, 0, sizeof(double) * (size_t)(m * 36));
    for (int64_t i = 0; i < m; ++i) {
        const double *v = y + 6 * i;
        double *Ji = J + 36 * i;
        const double k1 = v[3], k2 = v[4], k3 = v[5];
        Ji[0] = -k1, Ji[1] = k3 * v[2], Ji[2] = k3 * v[1];
        Ji[6] = k1, Ji[7] = -k3 * v[2] - 2 * k2 * v[1], Ji[8] = -k3 * v[1];
        Ji[13] = 2 * k2 * v[1];
        Ji[3] = -v[0], Ji[5] = v[1] * v[2];
        Ji[9] = v[0], Ji[10] = -v[1] * v[1], Ji[11] = -v[1] * v[2];
        Ji[16] = v[1] * v[1];
    }
    return ND_OK;
}

typedef struct {
    int64_t *nfev, *njev, *nlu, *acc, *rej, *nout;
    double *t;
    int *status;
} counters;

static nd_ode_stiff_stats make_stats(int64_t B, counters *c)
{
    c->nfev = calloc((size_t)B, 8), c->njev = calloc((size_t)B, 8), c->nlu = calloc((size_t)B, 8);
    c->acc = calloc((size_t)B, 8), c->rej = calloc((size_t)B, 8), c->nout = calloc((size_t)B, 8);
    c->t = calloc((size_t)B, 8), c->status = calloc((size_t)B, sizeof(int));
    nd_ode_stiff_stats st = {c->nfev, c->njev, c->nlu, c->acc, c->rej, c->nout, c->t, c->status, 0, 0, 0, 0, 0, 0, 0, NULL};
    return st;
}

static void free_counters(counters *c)
{
    free(c->nfev), free(c->njev), free(c->nlu), free(c->acc), free(c->rej), free(c->nout), free(c->t), free(c->status);
}

/* Solves with fresh workspace; ys [nt, B, d]. */
static int solve(int method, nd_batch_rhs_f64 rhs, nd_batch_jac_f64 jac, int64_t B, int64_t d, const double *y0,
                 int64_t nt, const double *t, double rtol, double atol, double *ys, nd_ode_stiff_stats *st)
{
    nd_ode_stiff_opts o;
    nd_ode_stiff_opts_default(&o);
    o.method = method;
    o.rtol = rtol;
    o.atol = atol;
    o.max_steps = 100000;
    size_t bytes;
    CHECK(nd_ode_stiff_workspace_size(method, B, d, sizeof(double), &bytes) == ND_OK);
    void *work = malloc(bytes);
    int r = nd_odeint_stiff_f64(rhs, NULL, jac, NULL, B, d, y0, nt, t, &o, ys, NULL, work, st);
    free(work);
    return r;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_linear_exact(void)
{
    const double t[4] = {0, 1e-4, 0.5, 3.0}, y0[2] = {2.0, -1.0};
    double ys[8], ex[2];
    for (int method = 0; method < 2; ++method) {
        for (int with_jac = 0; with_jac < 2; ++with_jac) {
            counters c;
            nd_ode_stiff_stats st = make_stats(1, &c);
            CHECK(solve(method, lin_rhs, with_jac ? lin_jac : NULL, 1, 2, y0, 4, t, 1e-8, 1e-10, ys, &st) == ND_OK);
            for (int j = 0; j < 4; ++j) {
                lin_exact(t[j], y0, ex);
                for (int k = 0; k < 2; ++k) {
                    double err = fabs(ys[2 * j + k] - ex[k]) / (1e-8 + 1e-6 * fabs(ex[k]));
                    if (!(err < 1))
                        fprintf(stderr, "method %d jac %d t=%g: %.17g vs %.17g\n", method, with_jac, t[j],
                                ys[2 * j + k], ex[k]);
                    CHECK(err < 1);
                }
            }
            CHECK(c.status[0] == ND_OK && c.nout[0] == 4 && c.t[0] == 3.0);
            CHECK(c.njev[0] >= 1 && c.nlu[0] >= 1 && c.acc[0] > 0);
            CHECK(st.nfev_total == c.nfev[0] && st.njev_total == c.njev[0]);
            free_counters(&c);
        }
    }
}

/* Robertson to t = 1e11 against the reference of the Test Set for IVP Solvers (Mazzia &
 * Magherini, problem ROBER): y(1e11) = (2.083340149701255e-8, 8.333360770334713e-14,
 * 0.9999999791665050). */
static void test_robertson_reference(void)
{
    const double ref[3] = {2.083340149701255e-8, 8.333360770334713e-14, 0.9999999791665050};
    const double y0[6] = {1, 0, 0, 0.04, 3e7, 1e4};
    double t[12], ys[12 * 6];
    t[0] = 0;
    for (int j = 1; j < 12; ++j)
        t[j] = pow(10.0, j);
    for (int method = 0; method < 2; ++method) {
        counters c;
        nd_ode_stiff_stats st = make_stats(1, &c);
        CHECK(solve(method, rober_rhs, rober_jac, 1, 6, y0, 12, t, 1e-8, 1e-14, ys, &st) == ND_OK);
        const double *yend = ys + 11 * 6;
        for (int k = 0; k < 3; ++k) {
            double rel = fabs(yend[k] - ref[k]) / ref[k];
            if (!(rel < 1e-4))
                fprintf(stderr, "method %d y%d: %.17g vs %.17g (rel %g)\n", method, k, yend[k], ref[k], rel);
            CHECK(rel < 1e-4);
        }
        fprintf(stderr, "robertson method %d: nfev %lld njev %lld nlu %lld acc %lld rej %lld\n", method,
                (long long)c.nfev[0], (long long)c.njev[0], (long long)c.nlu[0], (long long)c.acc[0],
                (long long)c.rej[0]);
        free_counters(&c);
    }
}

/* Each sample of a batch gives the bits it gives alone; a difference Jacobian is close. */
static void test_batch_bits(void)
{
    enum { B = 7, NT = 6 };
    double y0[B * 6], t[NT] = {0, 1e-3, 1, 100, 1e4, 1e6};
    for (int s = 0; s < B; ++s) {
        double *v = y0 + 6 * s;
        v[0] = 1, v[1] = 0, v[2] = 0;
        v[3] = 0.04 * nd_test_uniform(0.8, 1.2), v[4] = 3e7 * nd_test_uniform(0.8, 1.2);
        v[5] = 1e4 * nd_test_uniform(0.8, 1.2);
    }
    for (int method = 0; method < 2; ++method)
        for (int with_jac = 0; with_jac < 2; ++with_jac) {
            double ys[NT * B * 6], one[NT * 6];
            counters c;
            nd_ode_stiff_stats st = make_stats(B, &c);
            nd_batch_jac_f64 jac = with_jac ? rober_jac : NULL;
            CHECK(solve(method, rober_rhs, jac, B, 6, y0, NT, t, 1e-6, 1e-10, ys, &st) == ND_OK);
            CHECK(st.rhs_calls < st.nfev_total); /* rows of several samples per call */
            for (int s = B - 1; s >= 0; --s) {
                counters c1;
                nd_ode_stiff_stats st1 = make_stats(1, &c1);
                CHECK(solve(method, rober_rhs, jac, 1, 6, y0 + 6 * s, NT, t, 1e-6, 1e-10, one, &st1) == ND_OK);
                for (int j = 0; j < NT; ++j)
                    CHECK(memcmp(one + 6 * j, ys + (j * B + s) * 6, 6 * sizeof(double)) == 0);
                CHECK(c1.nfev[0] == c.nfev[s] && c1.acc[0] == c.acc[s] && c1.rej[0] == c.rej[s]);
                free_counters(&c1);
            }
            free_counters(&c);
        }
}

/* Robertson in float32 follows float64 to float32's accuracy. */
static int rober_rhs32(void *ctx, int64_t m, int64_t d, const double *t, const float *y, float *dy)
{
    for (int64_t i = 0; i < m; ++i) {
        const float *v = y + 3 * i;
        float *o = dy + 3 * i;
        const float a = 0.04f * v[0], b = 1e4f * v[1] * v[2], c = 3e7f * v[1] * v[1];
        o[0] = -a + b, o[1] = a - b - c, o[2] = c;
    }
    return ND_OK;
}

static void test_float32(void)
{
    const float y0[3] = {1, 0, 0};
    const double t[3] = {0, 40, 1e4};
    const double ref40[3] = {0.7158270687, 9.185534764e-6, 0.2841637457}; /* H&W II, IV.10 */
    float ys[9];
    for (int method = 0; method < 2; ++method) {
        nd_ode_stiff_opts o;
        nd_ode_stiff_opts_default(&o);
        o.method = method;
        o.rtol = 1e-4;
        o.atol = 1e-8;
        size_t bytes;
        CHECK(nd_ode_stiff_workspace_size(method, 1, 3, sizeof(float), &bytes) == ND_OK);
        void *work = malloc(bytes);
        nd_ode_stiff_stats st = {0};
        CHECK(nd_odeint_stiff_f32(rober_rhs32, NULL, NULL, NULL, 1, 3, y0, 3, t, &o, ys, NULL, work, &st) == ND_OK);
        for (int k = 0; k < 3; ++k)
            CHECK(fabs(ys[3 + k] - ref40[k]) <= 1e-3 * ref40[k] + 1e-7);
        free(work);
    }
}

/* A Jacobian so large that mu/h - J is exactly singular at every representable step: that
 * sample fails with ND_ERR_SINGULAR, the other finishes. */
static int sing_rhs(void *ctx, int64_t m, int64_t d, const double *t, const double *y, double *dy)
{
    for (int64_t i = 0; i < m; ++i)
        dy[2 * i] = -y[2 * i], dy[2 * i + 1] = -y[2 * i + 1];
    return ND_OK;
}

static int sing_jac(void *ctx, int64_t m, int64_t d, const double *t, const double *y, double *J)
{
    for (int64_t i = 0; i < m; ++i) {
        const double big = y[2 * i] > 1.5 ? 1e300 : 0; /* sample with y0 = 2 only */
        J[4 * i] = J[4 * i + 1] = J[4 * i + 2] = J[4 * i + 3] = big;
        if (big == 0)
            J[4 * i] = J[4 * i + 3] = -1;
    }
    return ND_OK;
}

static void test_singular_sample(void)
{
    const double y0[4] = {1, 1, 2, 2}, t[2] = {0, 1};
    double ys[8];
    for (int method = 0; method < 2; ++method) {
        counters c;
        nd_ode_stiff_stats st = make_stats(2, &c);
        CHECK(solve(method, sing_rhs, sing_jac, 2, 2, y0, 2, t, 1e-6, 1e-9, ys, &st) == ND_ERR_SINGULAR);
        CHECK(c.status[0] == ND_OK && c.status[1] == ND_ERR_SINGULAR);
        CHECK(fabs(ys[4] - exp(-1.0)) < 1e-5 && isnan(ys[6]));
        CHECK(st.n_failed == 1);
        free_counters(&c);
    }
}

static int calls;
static int failing_rhs(void *ctx, int64_t m, int64_t d, const double *t, const double *y, double *dy)
{
    lin_rhs(ctx, m, d, t, y, dy);
    return ++calls > 3 ? ND_ERR_CALLBACK : ND_OK;
}

static void test_arguments_and_callback_failure(void)
{
    const double y0[2] = {1, 1}, t[3] = {0, 1, 2}, bad_t[3] = {0, 2, 1};
    double ys[6];
    nd_ode_stiff_opts o;
    nd_ode_stiff_opts_default(&o);
    nd_ode_stiff_stats st = {0};
    size_t bytes;
    CHECK(nd_ode_stiff_workspace_size(0, 1, 2, 8, &bytes) == ND_OK);
    void *work = malloc(bytes);
    nd_clear_error();
    CHECK(nd_odeint_stiff_f64(lin_rhs, NULL, NULL, NULL, 1, 2, y0, 3, bad_t, &o, ys, NULL, work, &st) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "t") == 0);
    o.rtol = -1;
    CHECK(nd_odeint_stiff_f64(lin_rhs, NULL, NULL, NULL, 1, 2, y0, 3, t, &o, ys, NULL, work, &st) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "rtol") == 0);
    nd_ode_stiff_opts_default(&o);
    o.method = 7;
    CHECK(nd_odeint_stiff_f64(lin_rhs, NULL, NULL, NULL, 1, 2, y0, 3, t, &o, ys, NULL, work, &st) == ND_ERR_ARG);
    CHECK(nd_ode_stiff_workspace_size(0, -1, 2, 8, &bytes) == ND_ERR_ARG);
    CHECK(nd_ode_stiff_workspace_size(0, INT64_MAX / 2, 1000, 8, &bytes) == ND_ERR_OVERFLOW);
    nd_ode_stiff_opts_default(&o);
    const double nan_y0[2] = {NAN, 1};
    CHECK(nd_odeint_stiff_f64(lin_rhs, NULL, NULL, NULL, 1, 2, nan_y0, 3, t, &o, ys, NULL, work, &st) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "y0") == 0);
    calls = 0;
    int status[1];
    st.status = status;
    CHECK(nd_odeint_stiff_f64(failing_rhs, NULL, NULL, NULL, 1, 2, y0, 3, t, &o, ys, NULL, work, &st) ==
          ND_ERR_CALLBACK);
    CHECK(status[0] == ND_ERR_CALLBACK && isnan(ys[4]));
    o.max_steps = 2;
    CHECK(nd_odeint_stiff_f64(lin_rhs, NULL, lin_jac, NULL, 1, 2, y0, 3, t, &o, ys, NULL, work, &st) ==
          ND_ERR_MAX_STEPS);
    free(work);
}

ND_TEST_MAIN(test_linear_exact, test_robertson_reference, test_batch_bits, test_float32, test_singular_sample,
             test_arguments_and_callback_failure)

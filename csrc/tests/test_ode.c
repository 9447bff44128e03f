/* C unit tests of the ODE solvers, the built-in fields and the LTC relaxation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nd_fields.h"
#include "nd_liquid.h"
#include "nd_ode.h"
#include "nd_status.h"
#include "nd_test.h"

static int decay_f64(void *ctx, double t, const double *y, double *dy)
{
    dy[0] = -y[0];
    return ND_OK;
}

static int oscillator_f32(void *ctx, double t, const float *y, float *dy)
{
    dy[0] = y[1];
    dy[1] = -y[0];
    return ND_OK;
}

static int blowup_f64(void *ctx, double t, const double *y, double *dy)
{
    dy[0] = y[0] * y[0]; /* y = 1 / (1 - t): infinite at t = 1 */
    return ND_OK;
}

static double solve_decay(int method, double dt, double t_end, nd_ode_stats *st)
{
    nd_ode_opts o;
    nd_ode_opts_default(&o);
    o.method = method;
    o.dt = dt;
    o.max_steps = 1000000;
    double t[2] = {0.0, t_end}, y0 = 1.0, ys[2], work[10];
    int status = nd_odeint_f64(decay_f64, NULL, 1, &y0, 2, t, &o, ys, NULL, work, st);
    CHECK(status == ND_OK);
    return ys[1];
}

static void test_fixed_step_golden(void)
{
    nd_ode_stats st;
    /* dy/dt = -y over [0, 1] with rk4 dt 0.1: within 1e-6 of e^-1 (docs/models.md §1). */
    CHECK_CLOSE(solve_decay(ND_ODE_RK4, 0.1, 1.0, &st), exp(-1.0), 1e-6);
    CHECK(st.accepted == 10 && st.nfev == 40);
    /* Euler with 10 steps is (1 - 0.1)^10 exactly. */
    CHECK_CLOSE(solve_decay(ND_ODE_EULER, 0.1, 1.0, &st), pow(0.9, 10), 1e-15);
    CHECK(st.accepted == 10);
    /* round-half-away: 0.25 / 0.1 = 2.5 -> 3 steps. */
    solve_decay(ND_ODE_MIDPOINT, 0.1, 0.25, &st);
    CHECK(st.accepted == 3);
}

static void test_convergence_orders(void)
{
    const int methods[3] = {ND_ODE_EULER, ND_ODE_MIDPOINT, ND_ODE_RK4};
    const double orders[3] = {1, 2, 4};
    for (int m = 0; m < 3; ++m) {
        nd_ode_stats st;
        double e1 = fabs(solve_decay(methods[m], 0.02, 1.0, &st) - exp(-1.0));
        double e2 = fabs(solve_decay(methods[m], 0.01, 1.0, &st) - exp(-1.0));
        CHECK_CLOSE(log2(e1 / e2), orders[m], 0.1);
    }
}

static void test_dopri5_oscillator_f32(void)
{
    nd_ode_opts o;
    nd_ode_opts_default(&o);
    o.rtol = 1e-6;
    o.atol = 1e-6;
    double t[5] = {0.0, 0.5, 1.7, 3.0, 6.0};
    float y0[2] = {1.0f, 0.0f}, ys[10], ylast[2], work[20];
    nd_ode_stats st;
    CHECK(nd_odeint_f32(oscillator_f32, NULL, 2, y0, 5, t, &o, ys, ylast, work, &st) == ND_OK);
    for (int i = 0; i < 5; ++i) {
        CHECK_CLOSE(ys[2 * i], cos(t[i]), 2e-5);
        CHECK_CLOSE(ys[2 * i + 1], -sin(t[i]), 2e-5);
    }
    CHECK(st.n_out == 5 && st.t == 6.0);
    /* FSAL: one evaluation for f(t0), one for the first-step guess, six per attempted step. */
    CHECK(st.nfev == 2 + 6 * (st.accepted + st.rejected));
}

static void test_dopri5_backwards_in_time(void)
{
    nd_ode_opts o;
    nd_ode_opts_default(&o);
    o.rtol = 1e-9;
    o.atol = 1e-12;
    double t[3] = {1.0, 0.5, 0.0}, y0 = exp(-1.0), ys[3], work[10];
    CHECK(nd_odeint_f64(decay_f64, NULL, 1, &y0, 3, t, &o, ys, NULL, work, NULL) == ND_OK);
    CHECK_CLOSE(ys[1], exp(-0.5), 1e-8);
    CHECK_CLOSE(ys[2], 1.0, 1e-8);
}

static void test_failures_report_progress(void)
{
    nd_ode_opts o;
    nd_ode_opts_default(&o);
    double t[3] = {0.0, 0.5, 2.0}, y0 = 1.0, ys[3], ylast, work[10];
    nd_ode_stats st;
    int status = nd_odeint_f64(blowup_f64, NULL, 1, &y0, 3, t, &o, ys, &ylast, work, &st);
    CHECK(status == ND_ERR_STEP_UNDERFLOW || status == ND_ERR_NONFINITE || status == ND_ERR_MAX_STEPS);
    CHECK(st.n_out == 2);
    CHECK_CLOSE(ys[1], 2.0, 1e-2);
    CHECK(st.t > 0.99 && st.t < 1.0);
    CHECK(ylast > 10.0);

    o.max_steps = 3;
    status = nd_odeint_f64(decay_f64, NULL, 1, &y0, 3, t, &o, ys, &ylast, work, &st);
    CHECK(status == ND_ERR_MAX_STEPS);
    CHECK(st.accepted + st.rejected == 3);

    /* Bad arguments. */
    double tbad[3] = {0.0, 1.0, 1.0};
    CHECK(nd_odeint_f64(decay_f64, NULL, 1, &y0, 3, tbad, &o, ys, NULL, work, &st) == ND_ERR_ARG);
    o.max_steps = 100;
    o.rtol = -1;
    CHECK(nd_odeint_f64(decay_f64, NULL, 1, &y0, 3, t, &o, ys, NULL, work, &st) == ND_ERR_ARG);
    size_t len;
    CHECK(nd_odeint_workspace_len(ND_ODE_DOPRI5, INT64_MAX, &len) == ND_ERR_OVERFLOW);
    CHECK(nd_odeint_workspace_len(17, 4, &len) == ND_ERR_ARG);
}

static void test_ltc_golden(void)
{
    nd_ode_opts o;
    nd_ode_opts_default(&o);
    double x = 1.0, a = 0.5, tau = 1.0, out, work[12];
    CHECK(nd_solve_ltc_f64(ND_ODE_EULER, 1, &x, &a, &tau, 1, &o, &out, work, NULL) == ND_OK);
    CHECK_CLOSE(out, 0.5, 1e-15);
    CHECK(nd_solve_ltc_f64(ND_ODE_MIDPOINT, 1, &x, &a, &tau, 1, &o, &out, work, NULL) == ND_OK);
    CHECK_CLOSE(out, 0.75, 1e-15);
    CHECK(nd_solve_ltc_f64(ND_ODE_RK4, 1, &x, &a, &tau, 1, &o, &out, work, NULL) == ND_OK);
    CHECK_CLOSE(out, 0.6875, 1e-15);
    CHECK(nd_solve_ltc_f64(ND_LTC_EXACT, 1, &x, &a, &tau, 1, &o, &out, NULL, NULL) == ND_OK);
    CHECK_CLOSE(out, 0.6839397206, 1e-10);
    a = 0.0;
    CHECK(nd_solve_ltc_f64(ND_ODE_EULER, 1, &x, &a, &tau, 10, &o, &out, work, NULL) == ND_OK);
    CHECK_CLOSE(out, 0.3486784401, 1e-10);
    CHECK(nd_solve_ltc_f64(ND_ODE_RK4, 1, &x, &a, &tau, 5, &o, &out, work, NULL) == ND_OK);
    CHECK_CLOSE(out, 0.3678852381, 1e-10);
    o.rtol = 1e-2;
    o.atol = 1e-4;
    o.max_steps = 100;
    CHECK(nd_solve_ltc_f64(ND_ODE_DOPRI5, 1, &x, &a, &tau, 1, &o, &out, work, NULL) == ND_OK);
    CHECK_CLOSE(out, exp(-1.0), 1e-3);
}

static void test_fields(void)
{
    /* Lorenz at (1, 2, 3): (10 * 1, 1 * 25 - 2, 2 - 8). */
    double y[6] = {1, 2, 3, 0, 0, 0}, dy[6];
    nd_field lz = {.kind = ND_FIELD_LORENZ, .batch = 2, .dim = 3, .sigma = 10, .rho = 28, .beta = 8.0 / 3};
    CHECK(nd_field_check(&lz) == ND_OK);
    nd_field_eval_f64(&lz, 0.0, y, dy);
    CHECK_CLOSE(dy[0], 10.0, 1e-15);
    CHECK_CLOSE(dy[1], 23.0, 1e-15);
    CHECK_CLOSE(dy[2], 2.0 - 8.0, 1e-14);
    CHECK(dy[3] == 0 && dy[4] == 0 && dy[5] == 0);

    /* Linear: dy = A y + b with rows as samples. */
    double A[4] = {1, 2, 3, 4}, b[2] = {0.5, -0.5}, ly[4] = {1, 1, 2, 0}, ldy[4];
    nd_field lin = {.kind = ND_FIELD_LINEAR, .batch = 2, .dim = 2, .A = A, .b = b};
    nd_field_eval_f64(&lin, 0.0, ly, ldy);
    CHECK_CLOSE(ldy[0], 3.5, 1e-15);
    CHECK_CLOSE(ldy[1], 6.5, 1e-15);
    CHECK_CLOSE(ldy[2], 2.5, 1e-15);
    CHECK_CLOSE(ldy[3], 5.5, 1e-15);

    /* MLP 2 -> 3 -> 2 with tanh then identity, against a hand loop. */
    double W1[6] = {0.1, -0.2, 0.3, 0.4, 0.5, -0.6}, b1[3] = {0.01, 0.02, 0.03};
    double W2[6] = {1, -1, 0.5, 2, -0.5, 0.25}, b2[2] = {0.1, 0.2};
    double work[32], my[4] = {0.3, -0.7, 1.5, 2.0}, mdy[4];
    nd_field mlp = {.kind = ND_FIELD_MLP, .batch = 2, .dim = 2, .n_layers = 2, .widths = {2, 3, 2},
                    .weights = {W1, W2}, .biases = {b1, b2}, .acts = {1, 0}, .work = work};
    size_t len;
    /* 2 rows x (2 x widest 3 for evaluation and cotangents + (3 + 2) x 2 kept by the VJP) */
    CHECK(nd_field_workspace_len(&mlp, &len) == ND_OK && len == 32);
    CHECK(nd_field_eval_f64(&mlp, 0.0, my, mdy) == ND_OK);
    for (int r = 0; r < 2; ++r) {
        double h[3];
        for (int j = 0; j < 3; ++j)
            h[j] = tanh(my[2 * r] * W1[j] + my[2 * r + 1] * W1[3 + j] + b1[j]);
        for (int j = 0; j < 2; ++j)
            CHECK_CLOSE(mdy[2 * r + j], h[0] * W2[j] + h[1] * W2[2 + j] + h[2] * W2[4 + j] + b2[j], 1e-14);
    }
    mlp.widths[2] = 3;
    CHECK(nd_field_check(&mlp) == ND_ERR_ARG);
}

/* The solves' status keys are the enum names after ND_ERR_ in lower case, "success" for ND_OK and
 * "error" for the statuses that are no solve's outcome. */
static void test_status_keys(void)
{
    CHECK(strcmp(nd_status_key(ND_OK), "success") == 0);
    for (int st = ND_ERR_MAX_STEPS; st >= ND_ERR_SINGULAR; --st) {
        const char *name = nd_status_name(st) + strlen("ND_ERR_"), *key = nd_status_key(st);
        CHECK(strlen(key) == strlen(name));
        for (size_t i = 0; name[i]; ++i)
            CHECK(key[i] == (name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]));
    }
    CHECK(strcmp(nd_status_key(ND_ERR_ARG), "error") == 0 && strcmp(nd_status_key(ND_ERR_NOMEM), "error") == 0);
}

ND_TEST_MAIN(test_fixed_step_golden, test_convergence_orders, test_dopri5_oscillator_f32,
             test_dopri5_backwards_in_time, test_failures_report_progress, test_ltc_golden, test_fields,
             test_status_keys)

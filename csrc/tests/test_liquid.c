/* The Liquid layer scan: forward against frame-by-frame nd_solve_ltc, and the backward
 * (da, dtau, dh0) against central finite differences, for every solver. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nd_liquid.h"
#include "nd_status.h"
#include "nd_test.h"

enum { B = 2, T = 5, H = 3, N = B * T * H };
static double A[N], TAU[N], H0[B * H], W[N];
static int solver_under_test;
static int64_t steps_under_test;
static nd_ode_opts opts;
static char work[1 << 20];

static double scan_loss(void)
{
    double h[N];
    CHECK(nd_ltc_scan_forward_f64(solver_under_test, B, T, H, A, TAU, H0, steps_under_test, &opts, h, work, NULL) ==
          ND_OK);
    double l = 0;
    for (int i = 0; i < N; ++i)
        l += W[i] * h[i];
    return l;
}

static void setup(void)
{
    nd_test_fill(A, N, -1, 1);
    nd_test_fill(TAU, N, 0.6, 3.0); /* stable for one substep of every method */
    nd_test_fill(H0, B * H, -1, 1);
    nd_test_fill(W, N, -1, 1);
    nd_ode_opts_default(&opts);
    opts.rtol = 1e-10;
    opts.atol = 1e-12;
    opts.max_steps = 200;
}

static void check_solver(int solver, int64_t steps)
{
    solver_under_test = solver;
    steps_under_test = steps;
    size_t bytes;
    CHECK(nd_ltc_scan_workspace_bytes(solver, H, opts.max_steps, 1, &bytes) == ND_OK && bytes <= sizeof work);
    /* forward equals frame-by-frame solve_ltc (dopri5 there treats the frame of one sample as
     * one system, as the scan does) */
    double h[N], x[H], out[H], lw[64];
    CHECK(nd_ltc_scan_forward_f64(solver, B, T, H, A, TAU, H0, steps, &opts, h, work, NULL) == ND_OK);
    for (int b = 0; b < B; ++b) {
        memcpy(x, H0 + b * H, sizeof x);
        for (int t = 0; t < T; ++t) {
            int off = (b * T + t) * H;
            CHECK(nd_solve_ltc_f64(solver, H, x, A + off, TAU + off, steps, &opts, out, lw, NULL) == ND_OK);
            for (int i = 0; i < H; ++i)
                CHECK_CLOSE(h[off + i], out[i], 1e-14);
            memcpy(x, out, sizeof x);
        }
    }
    double da[N], dtau[N], dh0[B * H];
    CHECK(nd_ltc_scan_backward_f64(solver, B, T, H, A, TAU, H0, h, steps, &opts, W, da, dtau, dh0, work) == ND_OK);
    double ea = nd_test_fd_error(scan_loss, A, da, N, 1e-6, 1e-3);
    double et = nd_test_fd_error(scan_loss, TAU, dtau, N, 1e-6, 1e-3);
    double eh = nd_test_fd_error(scan_loss, H0, dh0, B * H, 1e-6, 1e-3);
    /* dopri5's steps are frozen in its backward: finite differences also move them, by about
     * the tolerance */
    double tol = solver == ND_ODE_DOPRI5 ? 1e-5 : 1e-6;
    if (ea >= tol || et >= tol || eh >= tol)
        fprintf(stderr, "scan solver %d steps %lld: da %g dtau %g dh0 %g\n", solver, (long long)steps, ea, et, eh);
    CHECK(ea < tol && et < tol && eh < tol);
}

static void test_scan_every_solver(void)
{
    setup();
    check_solver(ND_LTC_EXACT, 1);
    check_solver(ND_ODE_EULER, 1);
    check_solver(ND_ODE_EULER, 3);
    check_solver(ND_ODE_MIDPOINT, 2);
    check_solver(ND_ODE_RK4, 1);
    check_solver(ND_ODE_RK4, 40);
    check_solver(ND_ODE_DOPRI5, 1);
}

static void test_scan_zero_start_and_golden(void)
{
    /* h0 = NULL starts from zeros; one frame of a = 0.5, tau = 1 from 0 gives 0.5 (1 - e^-1). */
    double a[1] = {0.5}, tau[1] = {1.0}, h[1];
    CHECK(nd_ltc_scan_forward_f64(ND_LTC_EXACT, 1, 1, 1, a, tau, NULL, 1, NULL, h, NULL, NULL) == ND_OK);
    CHECK_CLOSE(h[0], 0.5 * (1 - exp(-1.0)), 1e-15);
    CHECK(nd_ltc_scan_forward_f64(ND_ODE_RK4, 1, 1, 1, a, tau, NULL, 0, NULL, h, NULL, NULL) == ND_ERR_ARG);
    size_t bytes;
    CHECK(nd_ltc_scan_workspace_bytes(ND_ODE_DOPRI5, INT64_MAX / 2, 10, 1, &bytes) != ND_OK);
}

/* The rule a kernel broke is named with the user's argument: arg and rule of nd_last_error. */
static int broke(int status, const char *arg)
{
    return status == ND_ERR_ARG && strcmp(nd_last_error()->arg, arg) == 0;
}

static void test_rules_name_the_argument(void)
{
    int solver;
    int64_t steps;
    nd_ode_opts o;
    nd_ltc_defaults(&solver, &steps, &o);
    CHECK(solver == ND_LTC_EXACT && steps == 1 && o.rtol == 1e-2 && o.atol == 1e-4 && o.max_steps == 100);
    CHECK(strcmp(nd_ltc_solver_names[ND_ODE_RK4 - ND_LTC_EXACT], "rk4") == 0 &&
          strcmp(nd_ltc_solver_names[0], "exact") == 0 && !nd_ltc_solver_names[ND_ODE_DOPRI5 - ND_LTC_EXACT + 1]);
    CHECK(nd_ltc_check_opts(ND_LTC_EXACT, 1, &o) == ND_OK && nd_ltc_check_opts(ND_ODE_RK4, 1, NULL) == ND_OK);
    CHECK(broke(nd_ltc_check_opts(ND_ODE_DOPRI5 + 1, 1, &o), "solver"));
    CHECK(broke(nd_ltc_check_opts(ND_ODE_EULER, 0, &o), "steps"));
    CHECK(broke(nd_ltc_check_opts(ND_ODE_DOPRI5, 1, NULL), "options"));
    o.rtol = o.atol = 0; /* odeint's rule: both 0 only refused where they are read */
    CHECK(nd_ltc_check_opts(ND_LTC_EXACT, 1, &o) == ND_OK && nd_ltc_check_opts(ND_ODE_RK4, 1, &o) == ND_OK);
    CHECK(broke(nd_ltc_check_opts(ND_ODE_DOPRI5, 1, &o), "rtol and atol"));
    o.rtol = -1;
    CHECK(broke(nd_ltc_check_opts(ND_LTC_EXACT, 1, &o), "rtol"));
    o.rtol = 1e-3;
    o.max_steps = 0;
    CHECK(broke(nd_ltc_check_opts(ND_ODE_MIDPOINT, 1, &o), "max_steps"));
    nd_clear_error();

    /* tau: positive and finite, the first offender reported */
    double x[3] = {1, 1, 1}, a[3] = {0, 0, 0}, tau[3] = {1, -2, 0}, out[3];
    nd_ltc_defaults(&solver, &steps, &o);
    CHECK(broke(nd_solve_ltc_f64(ND_LTC_EXACT, 3, x, a, tau, 1, &o, out, NULL, NULL), "tau") &&
          nd_last_error()->value == -2 && strcmp(nd_last_error()->rule, "must be positive and finite") == 0);
    tau[1] = NAN;
    tau[2] = 1;
    CHECK(broke(nd_ltc_scan_forward_f64(ND_ODE_RK4, 1, 3, 1, a, tau, NULL, 4, &o, out, NULL, NULL), "tau"));
    tau[1] = INFINITY;
    CHECK(broke(nd_liquid_check_positive_f64(3, tau, "timespans"), "timespans"));
    float t32[2] = {1e-30f, 0};
    CHECK(broke(nd_liquid_check_positive_f32(2, t32, "tau"), "tau") && nd_last_error()->value == 0);
    CHECK(nd_liquid_check_positive_f32(1, t32, "tau") == ND_OK);
    nd_clear_error();
}

ND_TEST_MAIN(test_scan_every_solver, test_scan_zero_start_and_golden, test_rules_name_the_argument)

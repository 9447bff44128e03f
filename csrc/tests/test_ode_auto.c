/* The automatic method of nd_ode_auto.h and the discrete adjoint of Radau's steps
 * (nd_ode_stiff.h): a non-stiff sample keeps dopri5's bits while its stiff batch mate switches
 * to Radau at a fraction of dopri5's cost; the adjoint of a stiff linear problem against the
 * exact one; the resumption and switching options' argument checks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nd_ode_auto.h"
#include "nd_status.h"
#include "nd_test.h"

/* y' = -k (y - cos t), k held in the state (y, k), k' = 0: stiff for large k. */
static int relax_rhs(void *ctx, int64_t m, int64_t d, const double *t, const double *y, double *dy)
{
    for (int64_t i = 0; i < m; ++i) {
        dy[2 * i] = -y[2 * i + 1] * (y[2 * i] - cos(t[i]));
        dy[2 * i + 1] = 0;
    }
    return ND_OK;
}

static int relax_jac(void *ctx, int64_t m, int64_t d, const double *t, const double *y, double *J)
{
    for (int64_t i = 0; i < m; ++i) {
        J[4 * i] = -y[2 * i + 1];
        J[4 * i + 1] = -(y[2 * i] - cos(t[i]));
        J[4 * i + 2] = J[4 * i + 3] = 0;
    }
    return ND_OK;
}

static int auto_solve(int64_t B, const double *y0, int64_t nt, const double *t, double *ys, int64_t *nfev,
                      int64_t *sw, int *status)
{
    nd_ode_stiff_opts o;
    nd_ode_stiff_opts_default(&o);
    o.rtol = 1e-6, o.atol = 1e-9, o.max_steps = 100000;
    size_t bytes;
    CHECK(nd_ode_auto_workspace_size(B, 2, nt, sizeof(double), &bytes) == ND_OK);
    void *work = malloc(bytes);
    nd_ode_auto_stats st = {0};
    st.nfev = nfev, st.switches = sw, st.status = status;
    int r = nd_odeint_auto_f64(relax_rhs, NULL, relax_jac, NULL, B, 2, y0, nt, t, &o, ys, NULL, work, &st);
    free(work);
    return r;
}

static void test_switches_only_the_stiff_sample(void)
{
    const double t[5] = {0, 0.5, 2, 5, 10};
    const double y0[4] = {2.0, 1.0, 2.0, 1e6}; /* k = 1, k = 1e6 */
    double ys[20], ex[20];
    int64_t nfev[2], sw[2];
    int status[2];
    CHECK(auto_solve(2, y0, 5, t, ys, nfev, sw, status) == ND_OK);
    CHECK(sw[0] == 0 && sw[1] >= 1 && status[0] == ND_OK && status[1] == ND_OK);
    /* the stiff sample follows cos t: y = cos t + sin t / k + O(k^-2) after the transient; at
     * the end time (a step's end) to the tolerance, inside Radau's long steps to what its
     * cubic collocation polynomial gives (SciPy's Radau: 3e-3 at these times) */
    CHECK_CLOSE(ys[(4 * 2 + 1) * 2], cos(t[4]) + sin(t[4]) / 1e6, 1e-5);
    for (int j = 2; j < 4; ++j)
        CHECK_CLOSE(ys[(j * 2 + 1) * 2], cos(t[j]) + sin(t[j]) / 1e6, 0.1);
    /* the non-stiff sample: dopri5's bits */
    nd_ode_samples_opts o;
    nd_ode_samples_opts_default(&o);
    o.rtol = 1e-6, o.atol = 1e-9, o.max_steps = 100000;
    size_t bytes;
    CHECK(nd_ode_samples_workspace_size(ND_ODE_DOPRI5, 2, 2, 0, sizeof(double), &bytes) == ND_OK);
    void *work = malloc(bytes);
    int64_t n2[2], acc[2], rej[2], nout[2];
    double tr[2];
    int stt[2];
    nd_ode_samples_stats st = {n2, acc, rej, nout, tr, stt, 0, 0, 0, 0, NULL};
    o.max_steps = 10000000;
    CHECK(nd_odeint_samples_f64(relax_rhs, NULL, NULL, NULL, 2, 2, y0, 5, t, &o, ex, NULL, work, &st) == ND_OK);
    free(work);
    for (int j = 0; j < 5; ++j)
        CHECK(memcmp(ys + j * 4, ex + j * 4, 2 * sizeof(double)) == 0);
    CHECK(nfev[0] == n2[0]);
    CHECK(nfev[1] * 50 < n2[1]); /* dopri5 at its stability limit all along */
    /* alone: the same bits */
    double one[10];
    int64_t n1[1], s1[1];
    int st1[1];
    CHECK(auto_solve(1, y0 + 2, 5, t, one, n1, s1, st1) == ND_OK);
    for (int j = 0; j < 5; ++j)
        CHECK(memcmp(one + j * 2, ys + j * 4 + 2, 2 * sizeof(double)) == 0);
    CHECK(n1[0] == nfev[1] && s1[0] == sw[1]);
}

typedef struct {
    double steps[3 * 4096], y[2 * 4096], z[6 * 4096];
    int64_t outs[2 * 4096], n;
} tape_rec;

static void record(void *ctx, int64_t s, double t0, double t1, const void *y, const void *z, int64_t lo, int64_t hi)
{
    tape_rec *r = ctx;
    if (r->n >= 4096)
        return;
    r->steps[3 * r->n] = (double)s, r->steps[3 * r->n + 1] = t0, r->steps[3 * r->n + 2] = t1;
    r->outs[2 * r->n] = lo, r->outs[2 * r->n + 1] = hi;
    memcpy(r->y + 2 * r->n, y, 2 * sizeof(double));
    memcpy(r->z + 6 * r->n, z, 6 * sizeof(double));
    r->n++;
}

static void test_radau_adjoint_of_a_stiff_linear_problem(void)
{
    /* y' = -k (y - cos t), k = 1e4: dy(t)/dy0 = e^{-k t}, so y0's cotangent from the outputs'
     * cotangents (y components only) is sum_j ybar_j e^{-k t_j}. The output at the end time
     * is a step's end, where the discrete map has Radau's accuracy (inside a step the
     * derivative is the cubic collocation polynomial's). */
    const double t[2] = {0, 1e-3}, y0[2] = {2.0, 1e4}; /* a transient the steps resolve */
    double ys[4], ybar[4] = {0.3, 0, 0.5, 0};
    static tape_rec rec;
    rec.n = 0;
    nd_ode_stiff_opts o;
    nd_ode_stiff_opts_default(&o);
    o.rtol = 1e-10, o.atol = 1e-12, o.max_steps = 4000;
    o.on_step = record, o.step_ctx = &rec;
    size_t bytes, gb;
    CHECK(nd_ode_stiff_workspace_size(ND_STIFF_RADAU, 1, 2, sizeof(double), &bytes) == ND_OK);
    void *work = malloc(bytes);
    nd_ode_stiff_stats st = {0};
    CHECK(nd_odeint_stiff_f64(relax_rhs, NULL, relax_jac, NULL, 1, 2, y0, 2, t, &o, ys, NULL, work, &st) == ND_OK);
    free(work);
    CHECK(rec.n > 3 && rec.n < 4096);
    CHECK(nd_ode_stiff_backprop_workspace_size(1, 2, rec.n, sizeof(double), &gb) == ND_OK);
    work = malloc(gb);
    const nd_ode_stiff_tape tape = {rec.n, rec.steps, rec.outs, rec.y, rec.z};
    nd_ode_stiff_grad_fns_f64 fns = {relax_jac, NULL, NULL};
    double y0bar[2];
    CHECK(nd_ode_stiff_backprop_f64(&fns, 1, 2, 0, 2, t, &tape, ybar, y0bar, NULL, work) == ND_OK);
    free(work);
    double ex = 0;
    for (int j = 0; j < 2; ++j)
        ex += ybar[2 * j] * exp(-1e4 * t[j]);
    CHECK_CLOSE(y0bar[0], ex, 1e-9);
}

static void test_arguments(void)
{
    const double t[3] = {0, 1, 2}, y0[2] = {1, 1};
    double ys[6];
    size_t bytes;
    CHECK(nd_ode_auto_workspace_size(1, 2, 3, sizeof(double), &bytes) == ND_OK);
    CHECK(nd_ode_auto_workspace_size(-1, 2, 3, sizeof(double), &bytes) == ND_ERR_ARG);
    void *work = malloc(bytes);
    nd_ode_stiff_opts o;
    nd_ode_stiff_opts_default(&o);
    o.max_step = 0.5;
    nd_ode_auto_stats st = {0};
    CHECK(nd_odeint_auto_f64(relax_rhs, NULL, NULL, NULL, 1, 2, y0, 3, t, &o, ys, NULL, work, &st) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "max_step") == 0);
    free(work);
    /* the explicit driver's resumption options */
    nd_ode_samples_opts so;
    nd_ode_samples_opts_default(&so);
    const double ts[1] = {0.5}, hs[1] = {0.0};
    so.t_start = ts, so.h_start = hs;
    CHECK(nd_ode_samples_workspace_size(ND_ODE_DOPRI5, 1, 2, 0, sizeof(double), &bytes) == ND_OK);
    work = malloc(bytes);
    int64_t a[4];
    double tr[1];
    int stt[1];
    nd_ode_samples_stats sst = {a, a + 1, a + 2, a + 3, tr, stt, 0, 0, 0, 0, NULL};
    CHECK(nd_odeint_samples_f64(relax_rhs, NULL, NULL, NULL, 1, 2, y0, 3, t, &so, ys, NULL, work, &sst) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "h_start") == 0);
    so.t_start = NULL, so.h_start = NULL, so.method = ND_ODE_DOP853, so.stiff_detect = 15;
    CHECK(nd_odeint_samples_f64(relax_rhs, NULL, NULL, NULL, 1, 2, y0, 3, t, &so, ys, NULL, work, &sst) == ND_ERR_ARG);
    free(work);
}

ND_TEST_MAIN(test_switches_only_the_stiff_sample, test_radau_adjoint_of_a_stiff_linear_problem, test_arguments)

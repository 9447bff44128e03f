/* The chaos family's kernels: every flow of the catalogue (nd_flows.h) through the field API,
 * its Jacobian against central differences, float32 against float64, the forced flow's per-row
 * times; Lyapunov spectra (nd_chaos.h) of Lorenz, the Henon and logistic maps against published
 * values and the sum rule, the two QR methods against each other, and the argument rules. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nd_chaos.h"
#include "nd_fields.h"
#include "nd_flows.h"
#include "nd_status.h"
#include "nd_test.h"

#define NB 3
#define MAXN 6

static const double flow_params[ND_FLOW_COUNT][5] = {
    {0.2, 0.2, 5.7}, {35, 3, 28}, {15.6, 28, -8.0 / 7.0, -5.0 / 7.0}, {0.208186}, {1, 1, 1}, {8}, {1},
    {1, 1, 1, 1, 9.81}, {0.3, -1, 1, 0.5, 1.2}};

static nd_field flow_field(int sys, double *work)
{
    nd_field f;
    memset(&f, 0, sizeof f);
    f.kind = ND_FIELD_FLOW;
    f.flow = sys;
    f.batch = NB;
    f.dim = nd_flow_dim(sys) ? nd_flow_dim(sys) : MAXN;
    for (int k = 0; k < nd_flow_param_count(sys); ++k)
        f.flow_params[k] = flow_params[sys][k];
    f.work = work;
    return f;
}

static void test_flows_jacobians(void)
{
    double work[MAXN * MAXN], y[NB * MAXN], yp[NB * MAXN], ym[NB * MAXN], fp[NB * MAXN], fm[NB * MAXN];
    double J[NB * MAXN * MAXN], a[NB * MAXN], a_out[NB * MAXN];
    for (int sys = 0; sys < ND_FLOW_COUNT; ++sys) {
        nd_field f = flow_field(sys, work);
        const int64_t n = f.dim;
        size_t len = 0;
        CHECK(nd_field_check(&f) == ND_OK);
        CHECK(nd_field_workspace_len(&f, &len) == ND_OK && len == (size_t)(n * n));
        nd_test_fill(y, (int)(NB * n), -1.5, 1.5);
        if (sys == ND_FLOW_CHUA) /* off the diode's kinks */
            for (int i = 0; i < NB; ++i)
                y[i * n] = 0.5 + 0.1 * i;
        CHECK(nd_field_jac_f64(&f, 0.3, y, J) == ND_OK);
        double worst = 0;
        for (int64_t c = 0; c < n; ++c) {
            const double h = 1e-6;
            memcpy(yp, y, sizeof(double) * (size_t)(NB * n));
            memcpy(ym, y, sizeof(double) * (size_t)(NB * n));
            for (int i = 0; i < NB; ++i)
                yp[i * n + c] += h, ym[i * n + c] -= h;
            nd_field_eval_f64(&f, 0.3, yp, fp);
            nd_field_eval_f64(&f, 0.3, ym, fm);
            for (int i = 0; i < NB; ++i)
                for (int64_t r = 0; r < n; ++r) {
                    const double fd = (fp[i * n + r] - fm[i * n + r]) / (2 * h), an = J[i * n * n + r * n + c];
                    const double err = fabs(fd - an) / fmax(1.0, fabs(an));
                    worst = err > worst ? err : worst;
                }
        }
        CHECK(worst < 1e-6);
        /* the VJP is a^T J */
        nd_test_fill(a, (int)(NB * n), -1, 1);
        CHECK(nd_field_vjp_f64(&f, 0.3, y, a, a_out, NULL, 0) == ND_OK);
        for (int i = 0; i < NB; ++i)
            for (int64_t c = 0; c < n; ++c) {
                double want = 0;
                for (int64_t r = 0; r < n; ++r)
                    want += a[i * n + r] * J[i * n * n + r * n + c];
                CHECK_CLOSE(a_out[i * n + c], want, 1e-12 * fmax(1.0, fabs(want)));
            }
        /* float32 follows float64 */
        float y32[NB * MAXN], d32[NB * MAXN], w32[MAXN * MAXN];
        double d64[NB * MAXN];
        for (int i = 0; i < NB * n; ++i)
            y32[i] = (float)y[i], y[i] = (double)y32[i];
        nd_field f32 = f;
        f32.work = w32;
        CHECK(nd_field_eval_f32(&f32, 0.3, y32, d32) == ND_OK);
        CHECK(nd_field_eval_f64(&f, 0.3, y, d64) == ND_OK);
        for (int i = 0; i < NB * n; ++i)
            CHECK_CLOSE(d32[i], d64[i], 1e-4 * fmax(1.0, fabs(d64[i])));
    }
}

static void test_flow_rows_times(void)
{
    /* Duffing through the per-sample form: each row at its own time */
    double work[4], y[4] = {0.5, 0.1, 0.5, 0.1}, dy[4], one[2];
    const double t[2] = {0.0, 1.0};
    nd_field f = flow_field(ND_FLOW_DUFFING, work);
    f.batch = 2;
    CHECK(nd_field_eval_rows_f64(&f, 2, 2, t, y, dy) == ND_OK);
    nd_field g = f;
    g.batch = 1;
    for (int i = 0; i < 2; ++i) {
        CHECK(nd_field_eval_f64(&g, t[i], y + 2 * i, one) == ND_OK);
        CHECK_CLOSE(dy[2 * i + 1], one[1], 1e-15);
    }
    CHECK(fabs(dy[1] - dy[3]) > 0.1); /* the forcing differs between the two times */
}

static void test_flow_rules(void)
{
    double p[8] = {8};
    nd_clear_error();
    CHECK(nd_flow_check(ND_FLOW_LORENZ96, 3, p) == ND_ERR_ARG && strcmp(nd_last_error()->arg, "N") == 0);
    CHECK(nd_flow_check(ND_FLOW_ROSSLER, 4, p) == ND_ERR_ARG);
    CHECK(nd_flow_check(ND_FLOW_COUNT, 3, p) == ND_ERR_ARG);
    double q[5] = {1, 1, 1, -1, 9.81};
    CHECK(nd_flow_check(ND_FLOW_DOUBLE_PENDULUM, 4, q) == ND_ERR_ARG && strcmp(nd_last_error()->arg, "l2") == 0);
    q[3] = NAN;
    CHECK(nd_flow_check(ND_FLOW_DOUBLE_PENDULUM, 4, q) == ND_ERR_ARG);
}

/* ---- Lyapunov spectra ---------------------------------------------------------------------- */

static double *alloc_work(int64_t B, int64_t n, int64_t k, size_t *len)
{
    CHECK(nd_lyapunov_workspace_len(B, n, k, len) == ND_OK);
    return malloc(*len * sizeof(double) + 8);
}

static void test_lorenz_spectrum(void)
{
    nd_field f;
    memset(&f, 0, sizeof f);
    f.kind = ND_FIELD_LORENZ, f.batch = 2, f.dim = 3, f.sigma = 10, f.rho = 28, f.beta = 8.0 / 3.0;
    nd_lyap_system_f64 sys = {0, nd_field_eval_f64, nd_field_jac_f64, &f};
    nd_lyap_opts o;
    nd_lyap_opts_default(&o);
    o.t_transient = 10, o.t_total = 400;
    size_t len;
    double *work = alloc_work(2, 3, 3, &len), y0[6] = {1, 1, 1, -2, 3, 25}, exps[6], div[2], y_end[6];
    nd_lyap_info info;
    CHECK(nd_lyapunov_f64(&sys, &o, 2, 3, 3, y0, exps, div, y_end, &info, work, len) == ND_OK);
    const double ref[3] = {0.9056, 0.0, -14.5723};
    for (int b = 0; b < 2; ++b) {
        for (int i = 0; i < 3; ++i)
            CHECK_CLOSE(exps[3 * b + i], ref[i], 0.05);
        /* log det of the RK4 tangent map against the trace: equal to the method's O(dt^4) */
        CHECK_CLOSE(exps[3 * b] + exps[3 * b + 1] + exps[3 * b + 2], div[b], 1e-4 * fabs(div[b]));
        CHECK_CLOSE(div[b], -(10 + 1 + 8.0 / 3.0), 1e-9);
    }
    CHECK(info.steps == 40000 && fabs(info.t_accum - 400) < 1e-9 && !info.converged && isfinite(info.change));
    CHECK(info.nfev == 4 * 41000);
    /* Householder and modified Gram-Schmidt agree */
    double other[6];
    o.t_total = 20, o.qr = ND_QR_HOUSEHOLDER;
    CHECK(nd_lyapunov_f64(&sys, &o, 2, 3, 3, y0, exps, NULL, NULL, &info, work, len) == ND_OK);
    o.qr = ND_QR_GRAM_SCHMIDT;
    CHECK(nd_lyapunov_f64(&sys, &o, 2, 3, 3, y0, other, NULL, NULL, &info, work, len) == ND_OK);
    for (int i = 0; i < 6; ++i)
        CHECK_CLOSE(exps[i], other[i], 1e-9);
    /* early stop */
    o.t_total = 5000, o.tol = 0.05, o.check_every = 100;
    CHECK(nd_lyapunov_f64(&sys, &o, 2, 3, 3, y0, exps, NULL, NULL, &info, work, len) == ND_OK);
    CHECK(info.converged && info.t_accum < 5000 && info.change < 0.05);
    free(work);
}

static void test_maps(void)
{
    nd_map g = {ND_MAP_HENON, 1, 2, {1.4, 0.3}};
    nd_lyap_system_f64 sys = {1, nd_map_eval_f64, nd_map_jac_f64, &g};
    nd_lyap_opts o;
    nd_lyap_opts_default(&o);
    o.t_transient = 1000, o.t_total = 100000;
    size_t len;
    double *work = alloc_work(1, 2, 2, &len), x0[2] = {0.1, 0.1}, exps[2], div[1];
    nd_lyap_info info;
    CHECK(nd_lyapunov_f64(&sys, &o, 1, 2, 2, x0, exps, div, NULL, &info, work, len) == ND_OK);
    CHECK_CLOSE(exps[0], 0.4192, 0.005);
    CHECK_CLOSE(exps[1], -1.6232, 0.005);
    CHECK_CLOSE(exps[0] + exps[1], log(0.3), 1e-10);
    CHECK_CLOSE(div[0], log(0.3), 1e-12);
    free(work);
    /* the logistic map at r = 4: log 2, in float32 too */
    nd_map lg = {ND_MAP_LOGISTIC, 1, 1, {4.0, 0}};
    nd_lyap_system_f32 s32 = {1, nd_map_eval_f32, nd_map_jac_f32, &lg};
    float *w32 = (float *)alloc_work(1, 1, 1, &len), x32[1] = {0.3f};
    CHECK(nd_lyapunov_f32(&s32, &o, 1, 1, 1, x32, exps, NULL, NULL, &info, w32, len) == ND_OK);
    CHECK_CLOSE(exps[0], log(2.0), 0.02);
    free(w32);
}

static void test_lyapunov_rules(void)
{
    nd_map g = {ND_MAP_HENON, 1, 2, {1.4, 0.3}};
    nd_lyap_system_f64 sys = {1, nd_map_eval_f64, nd_map_jac_f64, &g};
    nd_lyap_opts o;
    nd_lyap_opts_default(&o);
    size_t len;
    double *work = alloc_work(1, 2, 2, &len), x0[2] = {0.1, 0.1}, exps[2];
    nd_lyap_info info;
    nd_clear_error();
    CHECK(nd_lyapunov_workspace_len(1, 2, 3, &len) == ND_ERR_ARG && strcmp(nd_last_error()->arg, "n_exponents") == 0);
    CHECK(nd_lyapunov_workspace_len(1, 2, 2, &len) == ND_OK);
    o.t_total = 10.5;
    CHECK(nd_lyapunov_f64(&sys, &o, 1, 2, 2, x0, exps, NULL, NULL, &info, work, len) == ND_ERR_ARG &&
          strcmp(nd_last_error()->arg, "n_iter") == 0);
    o.t_total = 10;
    CHECK(nd_lyapunov_f64(&sys, &o, 1, 2, 2, x0, exps, NULL, NULL, &info, work, len - 1) == ND_ERR_ARG);
    o.orth_every = 0;
    CHECK(nd_lyapunov_f64(&sys, &o, 1, 2, 2, x0, exps, NULL, NULL, &info, work, len) == ND_ERR_ARG &&
          strcmp(nd_last_error()->arg, "orth_every") == 0);
    o.orth_every = 1;
    sys.map = 0, o.dt = -1;
    CHECK(nd_lyapunov_f64(&sys, &o, 1, 2, 2, x0, exps, NULL, NULL, &info, work, len) == ND_ERR_ARG &&
          strcmp(nd_last_error()->arg, "dt") == 0);
    o.dt = 0.01;
    x0[0] = NAN;
    CHECK(nd_lyapunov_f64(&sys, &o, 1, 2, 2, x0, exps, NULL, NULL, &info, work, len) == ND_ERR_ARG);
    /* an orbit that escapes: the Henon map from far away overflows */
    sys.map = 1, x0[0] = 1e3, o.t_total = 100;
    CHECK(nd_lyapunov_f64(&sys, &o, 1, 2, 2, x0, exps, NULL, NULL, &info, work, len) == ND_ERR_NONFINITE);
    free(work);
}

ND_TEST_MAIN(test_flows_jacobians, test_flow_rows_times, test_flow_rules, test_lorenz_spectrum, test_maps,
             test_lyapunov_rules)

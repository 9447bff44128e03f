/* Jacobians of the built-in fields (nd_field_jac_*) against central differences of
 * nd_field_eval_f64, float32 against float64, and the row-wise callbacks of the implicit
 * solvers (nd_field_eval_rows_* / nd_field_jac_rows_*). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nd_fields.h"
#include "nd_nn.h"
#include "nd_status.h"
#include "nd_test.h"

#define B 3
#define MAXD 5

/* Largest |J - central difference| over the batch, relative to max(1, |J|). */
static double jac_fd_error(nd_field *f, const double *y)
{
    const int64_t n = f->dim, nn = n * n;
    double J[B * MAXD * MAXD], yp[B * MAXD], ym[B * MAXD], fp[B * MAXD], fm[B * MAXD], worst = 0;
    CHECK(nd_field_jac_f64(f, 0.0, y, J) == ND_OK);
    for (int64_t c = 0; c < n; ++c) {
        const double h = 1e-6;
        memcpy(yp, y, sizeof(double) * (size_t)(B * n));
        memcpy(ym, y, sizeof(double) * (size_t)(B * n));
        for (int i = 0; i < B; ++i) {
            yp[i * n + c] += h;
            ym[i * n + c] -= h;
        }
        nd_field_eval_f64(f, 0.0, yp, fp);
        nd_field_eval_f64(f, 0.0, ym, fm);
        for (int i = 0; i < B; ++i)
            for (int64_t r = 0; r < n; ++r) {
                double fd = (fp[i * n + r] - fm[i * n + r]) / (2 * h), an = J[i * nn + r * n + c];
                double err = fabs(fd - an) / fmax(1.0, fabs(an));
                worst = err > worst ? err : worst;
            }
    }
    return worst;
}

static void *alloc_work(nd_field *f)
{
    size_t len = 0;
    CHECK(nd_field_jac_workspace_len(f, &len) == ND_OK);
    void *w = malloc((len ? len : 1) * sizeof(double));
    f->work = w;
    return w;
}

static void test_linear_lorenz_relax(void)
{
    double A[16], b[4], y[B * 4], a[B * 4], tau[B * 4];
    nd_test_fill(A, 16, -2, 2);
    nd_test_fill(b, 4, -1, 1);
    nd_test_fill(y, B * 4, -3, 3);
    nd_test_fill(a, B * 4, -1, 1);
    nd_test_fill(tau, B * 4, 0.5, 2);
    nd_field lin = {.kind = ND_FIELD_LINEAR, .batch = B, .dim = 4, .A = A, .b = b};
    CHECK(jac_fd_error(&lin, y) < 1e-8);
    nd_field lz = {.kind = ND_FIELD_LORENZ, .batch = B, .dim = 3, .sigma = 10, .rho = 28, .beta = 8.0 / 3};
    CHECK(jac_fd_error(&lz, y) < 1e-8);
    nd_field rx = {.kind = ND_FIELD_RELAX, .batch = B, .dim = 4, .a = a, .tau = tau};
    CHECK(jac_fd_error(&rx, y) < 1e-8);
}

static void test_mlp(void)
{
    /* 4 -> 5 -> 3 -> 4, every activation in turn (a ReLU kink is not met by these draws at
     * the 1e-6 difference step: checked by the tolerance holding) */
    double w0[20], w1[15], w2[12], b0[5], b2[4], y[B * 4];
    nd_test_fill(w0, 20, -1, 1);
    nd_test_fill(w1, 15, -1, 1);
    nd_test_fill(w2, 12, -1, 1);
    nd_test_fill(b0, 5, -0.5, 0.5);
    nd_test_fill(b2, 4, -0.5, 0.5);
    nd_test_fill(y, B * 4, -2, 2);
    for (int act = 0; act < ND_ACT_COUNT; ++act) {
        nd_field f = {.kind = ND_FIELD_MLP, .batch = B, .dim = 4, .n_layers = 3, .widths = {4, 5, 3, 4},
                      .weights = {w0, w1, w2}, .biases = {b0, NULL, b2}, .acts = {act, act, ND_ACT_TANH}};
        CHECK(nd_field_check(&f) == ND_OK);
        void *w = alloc_work(&f);
        double err = jac_fd_error(&f, y);
        if (!(err < 1e-7))
            fprintf(stderr, "activation %d: %g\n", act, err);
        CHECK(err < 1e-7);
        free(w);
    }
    /* the VJP on the transposed kernels (nd_field_prepare) is the VJP */
    nd_field f = {.kind = ND_FIELD_MLP, .batch = B, .dim = 4, .n_layers = 3, .widths = {4, 5, 3, 4},
                  .weights = {w0, w1, w2}, .biases = {b0, NULL, b2}, .acts = {ND_ACT_SILU, ND_ACT_TANH, ND_ACT_TANH}};
    void *fw = alloc_work(&f);
    double a[B * 4], a1[B * 4], a2[B * 4], p1[56], p2[56], wt[47];
    nd_test_fill(a, B * 4, -1, 1);
    CHECK(nd_field_param_count(&f) == 56 && nd_field_prepared_len(&f) == 47);
    CHECK(nd_field_vjp_f64(&f, 0.0, y, a, a1, p1, 0) == ND_OK);
    nd_field_prepare_f64(&f, wt);
    CHECK(f.weights_t[0] == wt && wt[1] == w0[5] && f.weights_t[2] == wt + 35);
    CHECK(nd_field_vjp_f64(&f, 0.0, y, a, a2, p2, 0) == ND_OK);
    for (int i = 0; i < B * 4; ++i)
        CHECK_CLOSE(a2[i], a1[i], 1e-13);
    for (int i = 0; i < 56; ++i)
        CHECK_CLOSE(p2[i], p1[i], 1e-13);
    free(fw);
    /* a single layer: J = diag(act'(z)) W^T */
    nd_field one = {.kind = ND_FIELD_MLP, .batch = B, .dim = 4, .n_layers = 1, .widths = {4, 4},
                    .weights = {w2}, .acts = {ND_ACT_SILU}};
    double w_sq[16];
    nd_test_fill(w_sq, 16, -1, 1);
    one.weights[0] = w_sq;
    void *w = alloc_work(&one);
    CHECK(jac_fd_error(&one, y) < 1e-7);
    free(w);
}

/* float32 Jacobians agree with float64 ones to float32 rounding. */
static void test_f32(void)
{
    double w0[12], w1[12], y[B * 4], J[B * 16];
    float w0f[12], w1f[12], yf[B * 4], Jf[B * 16];
    nd_test_fill(w0, 12, -1, 1);
    nd_test_fill(w1, 12, -1, 1);
    nd_test_fill(y, B * 4, -2, 2);
    for (int i = 0; i < 12; ++i)
        w0f[i] = (float)w0[i], w1f[i] = (float)w1[i];
    for (int i = 0; i < B * 4; ++i)
        yf[i] = (float)y[i];
    nd_field f = {.kind = ND_FIELD_MLP, .batch = B, .dim = 4, .n_layers = 2, .widths = {4, 3, 4},
                  .weights = {w0, w1}, .acts = {ND_ACT_TANH, ND_ACT_IDENTITY}};
    nd_field g = f;
    g.weights[0] = w0f;
    g.weights[1] = w1f;
    void *w = alloc_work(&f);
    float *wf = malloc(4096);
    g.work = wf;
    CHECK(nd_field_jac_f64(&f, 0.0, y, J) == ND_OK);
    CHECK(nd_field_jac_f32(&g, 0.0, yf, Jf) == ND_OK);
    for (int i = 0; i < B * 16; ++i)
        CHECK_CLOSE(Jf[i], J[i], 1e-5);
    free(w);
    free(wf);
}

/* The row callbacks: fewer rows than the batch, each its own sample; bad shapes refused. */
static void test_rows(void)
{
    double A[9], y[B * 3], dy[B * 3], dyr[B * 3], J[B * 9], Jr[B * 9], t[B] = {0, 1, 2};
    nd_test_fill(A, 9, -1, 1);
    nd_test_fill(y, B * 3, -1, 1);
    nd_field lin = {.kind = ND_FIELD_LINEAR, .batch = B, .dim = 3, .A = A};
    nd_field_eval_f64(&lin, 0.0, y, dy);
    nd_field_jac_f64(&lin, 0.0, y, J);
    CHECK(nd_field_eval_rows_f64(&lin, 2, 3, t, y, dyr) == ND_OK);
    CHECK(nd_field_jac_rows_f64(&lin, 2, 3, t, y, Jr) == ND_OK);
    for (int i = 0; i < 6; ++i)
        CHECK_CLOSE(dyr[i], dy[i], 1e-15);
    for (int i = 0; i < 18; ++i)
        CHECK(Jr[i] == J[i]);
    nd_clear_error();
    CHECK(nd_field_jac_rows_f64(&lin, B + 1, 3, t, y, Jr) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "m") == 0);
    CHECK(nd_field_jac_rows_f64(&lin, 1, 2, t, y, Jr) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "d") == 0);
    nd_field rx = {.kind = ND_FIELD_RELAX, .batch = B, .dim = 3, .a = y, .tau = y};
    CHECK(nd_field_jac_rows_f64(&rx, 1, 3, t, y, Jr) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "field") == 0);
}

/* Robertson's kinetics and a cubic term as a polynomial field: values, Jacobian, VJP. */
static void test_polynomial(void)
{
    /* y0' = -0.04 y0 + 1e4 y1 y2; y1' = 0.04 y0 - 1e4 y1 y2 - 3e7 y1^2; y2' = 3e7 y1^2 + 0.5 y0^3 y2^2 + 2 */
    const double coef[8] = {-0.04, 1e4, 0.04, -1e4, -3e7, 3e7, 0.5, 2.0};
    const int64_t target[8] = {0, 0, 1, 1, 1, 2, 2, 2};
    const int64_t powers[24] = {1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 2, 0, 0, 2, 0, 3, 0, 2, 0, 0, 0};
    nd_field f = {.kind = ND_FIELD_POLY, .batch = B, .dim = 3, .n_terms = 8, .coef = coef, .target = target,
                  .powers = powers};
    CHECK(nd_field_check(&f) == ND_OK && nd_field_param_count(&f) == 8);
    double y[B * 3], dy[B * 3];
    nd_test_fill(y, B * 3, 0.1, 1.0);
    CHECK(nd_field_eval_f64(&f, 0.0, y, dy) == ND_OK);
    for (int i = 0; i < B; ++i) {
        const double *v = y + 3 * i;
        CHECK_CLOSE(dy[3 * i], -0.04 * v[0] + 1e4 * v[1] * v[2], 1e-9);
        CHECK_CLOSE(dy[3 * i + 1], 0.04 * v[0] - 1e4 * v[1] * v[2] - 3e7 * v[1] * v[1], 1e-6);
        CHECK_CLOSE(dy[3 * i + 2], 3e7 * v[1] * v[1] + 0.5 * v[0] * v[0] * v[0] * v[2] * v[2] + 2, 1e-6);
    }
    /* scaled states keep the differences well conditioned against 3e7 */
    for (int i = 0; i < B * 3; ++i)
        y[i] *= 1e-3;
    CHECK(jac_fd_error(&f, y) < 1e-6);
    /* VJP: a_out = a^T J, d coef[k] = sum_rows a[target[k]] monomial_k */
    double a[B * 3], a_out[B * 3], J[B * 9], dp[8];
    nd_test_fill(a, B * 3, -1, 1);
    CHECK(nd_field_vjp_f64(&f, 0.0, y, a, a_out, dp, 0) == ND_OK);
    CHECK(nd_field_jac_f64(&f, 0.0, y, J) == ND_OK);
    for (int i = 0; i < B; ++i)
        for (int c = 0; c < 3; ++c) {
            double want = 0;
            for (int r = 0; r < 3; ++r)
                want += a[3 * i + r] * J[9 * i + 3 * r + c];
            CHECK_CLOSE(a_out[3 * i + c], want, 1e-9 * fmax(1.0, fabs(want)));
        }
    double mono_sum = 0; /* term 4: -3e7 y1^2 into component 1 */
    for (int i = 0; i < B; ++i)
        mono_sum += a[3 * i + 1] * y[3 * i + 1] * y[3 * i + 1];
    CHECK_CLOSE(dp[4], mono_sum, 1e-15);
    /* bad structure */
    int64_t bad_target[8] = {0, 0, 1, 1, 1, 2, 2, 3};
    f.target = bad_target;
    nd_clear_error();
    CHECK(nd_field_check(&f) == ND_ERR_ARG && strcmp(nd_last_error()->arg, "target") == 0);
    f.target = target;
    int64_t bad_powers[24];
    memcpy(bad_powers, powers, sizeof bad_powers);
    bad_powers[5] = -1;
    f.powers = bad_powers;
    CHECK(nd_field_check(&f) == ND_ERR_ARG && strcmp(nd_last_error()->arg, "powers") == 0);
}

ND_TEST_MAIN(test_linear_lorenz_relax, test_mlp, test_f32, test_rows, test_polynomial)

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
    CHECK(nd_field_eval_rows_f64(&lin, B + 1, 3, t, y, dyr) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "m") == 0);
    CHECK(nd_field_jac_rows_f64(&lin, 1, 2, t, y, Jr) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "d") == 0);
    nd_field rx = {.kind = ND_FIELD_RELAX, .batch = B, .dim = 3, .a = y, .tau = y};
    CHECK(nd_field_eval_rows_f64(&rx, 1, 3, t, y, dyr) == ND_ERR_ARG);
}

ND_TEST_MAIN(test_linear_lorenz_relax, test_mlp, test_f32, test_rows)

/* Forward kernels of nd_nn against hand loops, and every backward kernel against central
 * finite differences in double precision. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nd_nn.h"
#include "nd_status.h"
#include "nd_test.h"

static double dot(const double *a, const double *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; ++i)
        s += a[i] * b[i];
    return s;
}

static double fd_error(double (*loss)(void), double *p, const double *grad, int n)
{
    return nd_test_fd_error(loss, p, grad, n, 1e-6, 1e-3);
}

enum { R = 5, I = 4, O = 3 };
static double X[R * I], W[I * O], B[O], WY[R * O];

static double dense_loss(void)
{
    double y[R * O];
    nd_dense_forward_f64(R, I, O, X, W, B, y);
    return dot(y, WY, R * O);
}

static void test_dense(void)
{
    nd_test_fill(X, R * I, -1, 1);
    nd_test_fill(W, I * O, -1, 1);
    nd_test_fill(B, O, -1, 1);
    nd_test_fill(WY, R * O, -1, 1);
    double y[R * O];
    CHECK(nd_dense_forward_f64(R, I, O, X, W, B, y) == ND_OK);
    for (int r = 0; r < R; ++r)
        for (int o = 0; o < O; ++o) {
            double want = B[o];
            for (int i = 0; i < I; ++i)
                want += X[r * I + i] * W[i * O + o];
            CHECK_CLOSE(y[r * O + o], want, 1e-14);
        }
    double dx[R * I], dw[I * O], db[O];
    CHECK(nd_dense_backward_f64(R, I, O, X, W, WY, dx, dw, db, 0) == ND_OK);
    CHECK(fd_error(dense_loss, X, dx, R * I) < 1e-6);
    CHECK(fd_error(dense_loss, W, dw, I * O) < 1e-6);
    CHECK(fd_error(dense_loss, B, db, O) < 1e-6);
    /* accumulate adds onto what is there */
    double dw2[I * O], db2[O];
    memcpy(dw2, dw, sizeof dw);
    memcpy(db2, db, sizeof db);
    CHECK(nd_dense_backward_f64(R, I, O, X, W, WY, dx, dw2, db2, 1) == ND_OK);
    for (int i = 0; i < I * O; ++i)
        CHECK_CLOSE(dw2[i], 2 * dw[i], 1e-14);
    for (int i = 0; i < O; ++i)
        CHECK_CLOSE(db2[i], 2 * db[i], 1e-14);
}

static int act_under_test;
static double AX[16], AW[16];

static double act_loss(void)
{
    double y[16];
    nd_act_forward_f64(act_under_test, 16, AX, y);
    return dot(y, AW, 16);
}

static void test_activation_backward(void)
{
    nd_test_fill(AX, 16, -3, 3);
    AX[0] = 0.25; /* keep relu away from its kink */
    for (int i = 0; i < 16; ++i)
        if (fabs(AX[i]) < 1e-3)
            AX[i] = 0.5;
    nd_test_fill(AW, 16, -1, 1);
    for (int act = 0; act < ND_ACT_COUNT; ++act) {
        double y[16], dx[16];
        act_under_test = act;
        nd_act_forward_f64(act, 16, AX, y);
        CHECK(nd_act_backward_f64(act, 16, AX, y, AW, dx) == ND_OK);
        double err = fd_error(act_loss, AX, dx, 16);
        if (err >= 1e-6)
            fprintf(stderr, "activation %s: fd error %g\n", nd_act_name(act), err);
        CHECK(err < 1e-6);
    }
}

enum { LR = 3, LN = 6 };
static double LX[LR * LN], LG[LN], LB[LN], LW[LR * LN];

static double ln_loss(void)
{
    double y[LR * LN];
    nd_layernorm_forward_f64(LR, LN, LX, LG, LB, 1e-5, y, NULL, NULL);
    return dot(y, LW, LR * LN);
}

static void test_layernorm(void)
{
    nd_test_fill(LX, LR * LN, -2, 2);
    nd_test_fill(LG, LN, 0.5, 1.5);
    nd_test_fill(LB, LN, -0.5, 0.5);
    nd_test_fill(LW, LR * LN, -1, 1);
    double y[LR * LN], mean[LR], rstd[LR], dx[LR * LN], dg[LN], db[LN];
    CHECK(nd_layernorm_forward_f64(LR, LN, LX, NULL, NULL, 0.0, y, mean, rstd) == ND_OK);
    for (int r = 0; r < LR; ++r) {
        double m = 0, v = 0;
        for (int j = 0; j < LN; ++j)
            m += y[r * LN + j];
        for (int j = 0; j < LN; ++j)
            v += y[r * LN + j] * y[r * LN + j];
        CHECK_CLOSE(m / LN, 0.0, 1e-14);
        CHECK_CLOSE(v / LN, 1.0, 1e-12);
    }
    nd_layernorm_forward_f64(LR, LN, LX, LG, LB, 1e-5, y, mean, rstd);
    CHECK(nd_layernorm_backward_f64(LR, LN, LX, LG, mean, rstd, LW, dx, dg, db, 0) == ND_OK);
    CHECK(fd_error(ln_loss, LX, dx, LR * LN) < 1e-6);
    CHECK(fd_error(ln_loss, LG, dg, LN) < 1e-6);
    CHECK(fd_error(ln_loss, LB, db, LN) < 1e-6);
}

static double SG[8], SU[8], SW[8];

static double swiglu_loss(void)
{
    double y[8];
    nd_swiglu_forward_f64(8, SG, SU, y);
    return dot(y, SW, 8);
}

static void test_swiglu(void)
{
    nd_test_fill(SG, 8, -3, 3);
    nd_test_fill(SU, 8, -2, 2);
    nd_test_fill(SW, 8, -1, 1);
    double y[8], dg[8], du[8];
    nd_swiglu_forward_f64(8, SG, SU, y);
    for (int i = 0; i < 8; ++i)
        CHECK_CLOSE(y[i], SG[i] / (1 + exp(-SG[i])) * SU[i], 1e-15);
    CHECK(nd_swiglu_backward_f64(8, SG, SU, SW, dg, du) == ND_OK);
    CHECK(fd_error(swiglu_loss, SG, dg, 8) < 1e-6);
    CHECK(fd_error(swiglu_loss, SU, du, 8) < 1e-6);
}

static double ZL[4 * 5], PT[12], PP[12];
static const int64_t LABELS[4] = {0, 4, 2, 2};

static double xent_loss(void)
{
    double l;
    nd_softmax_xent_f64(4, 5, ZL, LABELS, &l, NULL);
    return l;
}

static double mse_loss(void)
{
    double l;
    nd_mse_f64(12, PP, PT, &l, NULL);
    return l;
}

static void test_losses(void)
{
    nd_test_fill(ZL, 20, -4, 4);
    double loss, dz[20];
    CHECK(nd_softmax_xent_f64(4, 5, ZL, LABELS, &loss, dz) == ND_OK);
    double want = 0;
    for (int r = 0; r < 4; ++r) {
        double s = 0;
        for (int c = 0; c < 5; ++c)
            s += exp(ZL[r * 5 + c]);
        want += log(s) - ZL[r * 5 + LABELS[r]];
    }
    CHECK_CLOSE(loss, want / 4, 1e-14);
    CHECK(fd_error(xent_loss, ZL, dz, 20) < 1e-6);
    /* huge logits do not overflow */
    double big[2] = {1000.0, 0.0};
    int64_t lab = 1;
    CHECK(nd_softmax_xent_f64(1, 2, big, &lab, &loss, NULL) == ND_OK);
    CHECK_CLOSE(loss, 1000.0, 1e-12);
    lab = 2;
    CHECK(nd_softmax_xent_f64(1, 2, big, &lab, &loss, NULL) == ND_ERR_ARG);

    nd_test_fill(PP, 12, -1, 1);
    nd_test_fill(PT, 12, -1, 1);
    double dp[12];
    CHECK(nd_mse_f64(12, PP, PT, &loss, dp) == ND_OK);
    CHECK(fd_error(mse_loss, PP, dp, 12) < 1e-6);
}

/* The event-driven kernels against the hand product: forward, dX, dW written and accumulated
 * (70 output columns: two full dW blocks and a partial one), and values other than 0 and 1
 * refused. */
static void test_spike_dense(void)
{
    enum { R = 37, I = 23, O = 70 };
    static double x[R * I], w[I * O], b[O], dy[R * O], y[R * O], dx[R * I], dw[I * O], db[O], dw0[I * O];
    for (int k = 0; k < R * I; ++k)
        x[k] = nd_test_uniform(0, 1) < 0.1;
    for (int k = 0; k < I * O; ++k) {
        w[k] = nd_test_uniform(-1, 1);
        dw0[k] = nd_test_uniform(-1, 1);
    }
    for (int k = 0; k < O; ++k)
        b[k] = nd_test_uniform(-1, 1);
    for (int k = 0; k < R * O; ++k)
        dy[k] = nd_test_uniform(-1, 1);
    CHECK(nd_spike_dense_forward_f64(R, I, O, x, w, b, y) == ND_OK);
    for (int r = 0; r < R; ++r)
        for (int o = 0; o < O; ++o) {
            double want = b[o];
            for (int i = 0; i < I; ++i)
                want += x[r * I + i] * w[i * O + o];
            CHECK_CLOSE(y[r * O + o], want, 1e-12);
        }
    for (int pass = 0; pass < 2; ++pass) { /* pass 1 accumulates onto dw0 */
        memcpy(dw, dw0, sizeof dw);
        CHECK(nd_spike_dense_backward_f64(R, I, O, x, w, dy, dx, dw, db, pass) == ND_OK);
        for (int i = 0; i < I; ++i)
            for (int o = 0; o < O; ++o) {
                double want = pass ? dw0[i * O + o] : 0;
                for (int r = 0; r < R; ++r)
                    want += x[r * I + i] * dy[r * O + o];
                CHECK_CLOSE(dw[i * O + o], want, 1e-12);
            }
        for (int r = 0; r < R; ++r)
            for (int i = 0; i < I; ++i) {
                double want = 0;
                for (int o = 0; o < O; ++o)
                    want += dy[r * O + o] * w[i * O + o];
                CHECK_CLOSE(dx[r * I + i], want, 1e-12);
            }
    }
    x[5] = 0.5;
    CHECK(nd_spike_dense_forward_f64(R, I, O, x, w, b, y) == ND_ERR_ARG);
    CHECK(nd_spike_dense_backward_f64(R, I, O, x, w, dy, dx, dw, db, 0) == ND_ERR_ARG);
}

/* A refused argument is named in the detail, with the offending value. */
static int detail_is(const char *arg, double value, const char *rule_start)
{
    const nd_error *e = nd_last_error();
    int ok = strcmp(e->arg, arg) == 0 && e->has_value && (e->value == value || (isnan(value) && isnan(e->value))) &&
             strncmp(e->rule, rule_start, strlen(rule_start)) == 0;
    if (!ok)
        fprintf(stderr, "detail: %s %s, got %g\n", e->arg, e->rule, e->value);
    nd_clear_error();
    return ok;
}

static void test_argument_details(void)
{
    double x[4] = {0, 1, NAN, 0.5}, w[4] = {1, 2, 3, 4}, y[4], loss;
    float xf[4] = {0, 1, 1, 2}, yf[4];
    CHECK(nd_act_forward_f64(ND_ACT_COUNT, 4, x, y) == ND_ERR_ARG);
    CHECK(detail_is("activation", ND_ACT_COUNT, "is not a known activation"));
    CHECK(nd_act_backward_f32(-1, 4, xf, xf, xf, yf) == ND_ERR_ARG);
    CHECK(detail_is("activation", -1, "is not a known activation"));
    CHECK(nd_spike_dense_forward_f64(1, 4, 1, x, w, NULL, y) == ND_ERR_ARG); /* the first bad value: NaN */
    CHECK(detail_is("x", NAN, "must hold spikes"));
    CHECK(nd_spike_dense_forward_f32(2, 2, 1, xf, (const float *)xf, NULL, yf) == ND_ERR_ARG);
    CHECK(detail_is("x", 2, "must hold spikes"));
    CHECK(nd_layernorm_forward_f64(1, 4, w, NULL, NULL, -1e-5, y, NULL, NULL) == ND_ERR_ARG);
    CHECK(detail_is("eps", -1e-5, "must be >= 0"));
    CHECK(nd_layernorm_forward_f64(1, 0, w, NULL, NULL, 1e-5, y, NULL, NULL) == ND_ERR_ARG);
    CHECK(detail_is("x", 0, "must have at least one feature"));
    CHECK(nd_layernorm_backward_f64(1, 0, w, NULL, w, w, w, y, NULL, NULL, 0) == ND_ERR_ARG);
    CHECK(detail_is("x", 0, "must have at least one feature"));
    const int64_t labels[3] = {0, 2, 5};
    CHECK(nd_softmax_xent_f64(1, 0, w, labels, &loss, NULL) == ND_ERR_ARG);
    CHECK(detail_is("logits", 0, "must have at least one class"));
    CHECK(nd_softmax_xent_f64(3, 1, w, labels, &loss, NULL) == ND_ERR_ARG);
    CHECK(detail_is("labels", 2, "must lie in [0, 1)"));
    CHECK(nd_check_labels(3, 5, labels) == ND_ERR_ARG);
    CHECK(detail_is("labels", 5, "must lie in [0, 5)"));
    CHECK(nd_check_labels(3, 6, labels) == ND_OK);
    CHECK(nd_dense_forward_f64(1, (int64_t)1 << 31, 1, x, w, NULL, y) == ND_ERR_OVERFLOW);
    CHECK(strcmp(nd_last_error()->arg, "x") == 0);
    nd_clear_error();
    /* the one table of names, in code order */
    CHECK(strcmp(nd_act_names[ND_ACT_TANH], "tanh") == 0 && strcmp(nd_act_name(ND_ACT_LECUN_TANH), "lecun_tanh") == 0);
    CHECK(nd_act_names[ND_ACT_COUNT] == NULL && nd_act_name(ND_ACT_COUNT) == NULL);
}

/* z += b on each row, y = act(z): for every activation, at widths that take the one-pass blocks
 * (a multiple of the block) and the chunked path, against the bias added by hand and
 * nd_act_forward; the same rows alone give the same bits as in the batch. */
static void test_activation_with_bias(void)
{
    enum { ROWS = 7, MAXC = 48 };
    static double z0[ROWS * MAXC], z[ROWS * MAXC], y[ROWS * MAXC], zr[ROWS * MAXC], yr[ROWS * MAXC], b[MAXC];
    const int widths[3] = {32, 48, 5};
    nd_test_fill(z0, ROWS * MAXC, -3, 3);
    nd_test_fill(b, MAXC, -1, 1);
    for (int act = 0; act < ND_ACT_COUNT; ++act)
        for (int w = 0; w < 3; ++w) {
            const int c = widths[w], n = ROWS * c;
            memcpy(z, z0, sizeof z);
            CHECK(nd_act_forward_bias_f64(act, ROWS, c, b, z, y) == ND_OK);
            for (int i = 0; i < n; ++i)
                zr[i] = z0[i] + b[i % c];
            CHECK(nd_act_forward_f64(act, n, zr, yr) == ND_OK);
            for (int i = 0; i < n; ++i) {
                CHECK(z[i] == zr[i]);
                CHECK_CLOSE(y[i], yr[i], 1e-15 * (1 + fabs(yr[i])));
            }
            double one_z[MAXC], one_y[MAXC]; /* row 3 alone */
            memcpy(one_z, z0 + 3 * c, (size_t)c * sizeof(double));
            CHECK(nd_act_forward_bias_f64(act, 1, c, b, one_z, one_y) == ND_OK);
            CHECK(memcmp(one_y, y + 3 * c, (size_t)c * sizeof(double)) == 0);
        }
    memcpy(z, z0, sizeof z); /* refused before z is touched */
    CHECK(nd_act_forward_bias_f64(ND_ACT_COUNT, ROWS, 32, b, z, y) == ND_ERR_ARG);
    CHECK(nd_act_forward_bias_f64(ND_ACT_TANH, -2, -16, b, z, y) == ND_ERR_ARG);
    CHECK(memcmp(z, z0, sizeof z) == 0);
}

ND_TEST_MAIN(test_dense, test_activation_backward, test_layernorm, test_swiglu, test_losses, test_spike_dense,
             test_argument_details, test_activation_with_bias)

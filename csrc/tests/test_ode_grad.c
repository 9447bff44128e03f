/* Gradients of odeint through an MLP vector field: discrete backprop (every method, outputs
 * at several times, so the dense outputs are differentiated too) and the continuous adjoint,
 * coupled and per sample, against central finite differences of the forward solve in double
 * precision. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nd_fields.h"
#include "nd_ode.h"
#include "nd_ode_samples.h"
#include "nd_status.h"
#include "nd_test.h"

enum { B = 2, D = 3, H = 4, NT = 4, N = B * D, MAXS = 4096 };
static double W1[D * H], B1[H], W2[H * D], B2[D], Y0[N], WOUT[NT * N];
/* the VJP's layers and cotangents, then ND_FIELD_MAX_SLOTS kept linearisations */
static double work_field[B * (2 * (H + D) + 2 * H) + ND_FIELD_MAX_SLOTS * B * 2 * (H + D)];
static const double T[NT] = {0.0, 0.3, 0.75, 1.0};
static nd_field field;
static nd_ode_opts opts;

/* the tape: sample, round, t, h per step; its output rows; its start state */
static double tape_steps[4 * MAXS], tape_y[MAXS * N];
static int64_t tape_outs[2 * MAXS], tape_n;

static void record_step(int64_t sample, double t, double h, const void *y, int64_t n, int64_t lo, int64_t hi)
{
    if (tape_n >= MAXS)
        return;
    double *st = tape_steps + 4 * tape_n;
    st[0] = (double)sample, st[1] = (double)tape_n, st[2] = t, st[3] = h;
    tape_outs[2 * tape_n] = lo;
    tape_outs[2 * tape_n + 1] = hi;
    memcpy(tape_y + tape_n * n, y, sizeof(double) * (size_t)n);
    tape_n++;
}

static void record(void *ctx, double t, double h, const void *y, int64_t lo, int64_t hi)
{
    record_step(0, t, h, y, N, lo, hi);
}

static void setup(void)
{
    for (int i = 0; i < D * H; ++i) {
        W1[i] = nd_test_uniform(-1, 1);
        W2[i] = nd_test_uniform(-1, 1);
    }
    for (int i = 0; i < H; ++i)
        B1[i] = nd_test_uniform(-0.5, 0.5);
    for (int i = 0; i < D; ++i)
        B2[i] = nd_test_uniform(-0.5, 0.5);
    for (int i = 0; i < N; ++i)
        Y0[i] = nd_test_uniform(-1, 1);
    for (int i = 0; i < NT * N; ++i)
        WOUT[i] = nd_test_uniform(-1, 1);
    nd_field f = {.kind = ND_FIELD_MLP, .batch = B, .dim = D, .n_layers = 2, .widths = {D, H, D},
                  .weights = {W1, W2}, .biases = {B1, B2}, .acts = {2 /* silu */, 1 /* tanh */}, .keep_slots = ND_FIELD_MAX_SLOTS,
                  .work = work_field};
    field = f;
}

/* L = sum over outputs of WOUT . ys */
static double loss(void)
{
    double ys[NT * N], work[10 * N];
    nd_ode_opts o = opts;
    o.on_step = NULL;
    int st = nd_odeint_f64(nd_field_eval_f64, &field, N, Y0, NT, T, &o, ys, NULL, work, NULL);
    CHECK(st == ND_OK);
    double l = 0;
    for (int i = 0; i < NT * N; ++i)
        l += WOUT[i] * ys[i];
    return l;
}

static double fd_error(double *p, const double *grad, int n, double h)
{
    return nd_test_fd_error(loss, p, grad, n, h, 1e-2);
}

/* The field's functions, with or without the kept linearisations (both must give the same bits). */
static nd_ode_grad_fns_f64 grad_fns(int kept)
{
    nd_ode_grad_fns_f64 fns = {nd_field_eval_f64, nd_field_vjp_f64, NULL, NULL, &field};
    if (kept) {
        fns.keep = nd_field_eval_keep_f64;
        fns.vjp_kept = nd_field_vjp_kept_f64;
    }
    return fns;
}

/* Parameter gradients in the field's flat layout: W1, B1, W2, B2. */
static double check_params(const double *dp, double h)
{
    double e = fd_error(W1, dp, D * H, h);
    e = fmax(e, fd_error(B1, dp + D * H, H, h));
    e = fmax(e, fd_error(W2, dp + D * H + H, H * D, h));
    return fmax(e, fd_error(B2, dp + 2 * D * H + H, D, h));
}

/* Budgets of the kept stages: none (every step replayed), two steps' buffers (the first two steps
 * kept, the others replayed), and the default (every step kept): the same outputs and gradient
 * bits as the replay each time, the buffers within the budget. */
static void check_kept_budget(int method, const nd_ode_tape *tape, const double *ys, const double *y0bar,
                              const double *dp, int64_t P, size_t keep_len, nd_ode_kept *kept)
{
    nd_ode_opts o = opts;
    o.on_step = NULL;
    const nd_ode_grad_fns_f64 fns = grad_fns(1);
    const int stages = nd_ode_method_stages(method);
    const int64_t buf = (int64_t)((N + keep_len) * sizeof(double));
    /* dopri5's steps share a stage with the step before (FSAL) */
    const int64_t two = (method == ND_ODE_DOPRI5 ? 2 * stages - 1 : 2 * stages) * buf;
    const int64_t budgets[3] = {0, two, (int64_t)nd_ode_kept_default_budget()};
    CHECK(tape->n_steps > 2); /* some steps beyond two */
    const int64_t want[3] = {0, 2, tape->n_steps};
    double ys_kept[NT * N], work[10 * N], y0bar_kept[N], dp_kept[64], bwork[24 * N];
    CHECK(nd_ode_kept_set_budget(kept, -1) == ND_ERR_ARG);
    for (int b = 0; b < 3; ++b) {
        CHECK(nd_ode_kept_set_budget(kept, budgets[b]) == ND_OK);
        CHECK(nd_odeint_keep_f64(nd_field_eval_keep_at_f64, &field, keep_len, N, Y0, NT, T, &o, ys_kept, NULL, work,
                                 kept, NULL) == ND_OK);
        CHECK(memcmp(ys, ys_kept, sizeof ys_kept) == 0);
        CHECK(nd_ode_kept_steps(kept) == want[b] && nd_ode_kept_complete(kept) == (want[b] == tape->n_steps));
        CHECK(nd_ode_kept_bytes(kept) <= (size_t)budgets[b]);
        if (!nd_ode_kept_complete(kept)) /* the steps not kept need the replay's functions */
            CHECK(nd_ode_backprop_kept_f64(method, NULL, nd_field_vjp_kept_at_f64, &field, N, P, NT, T, tape, kept,
                                           WOUT, y0bar_kept, dp_kept, bwork) == ND_ERR_ARG);
        memset(y0bar_kept, 0, sizeof y0bar_kept);
        CHECK(nd_ode_backprop_kept_f64(method, &fns, nd_field_vjp_kept_at_f64, &field, N, P, NT, T, tape, kept, WOUT,
                                       y0bar_kept, dp_kept, bwork) == ND_OK);
        CHECK(memcmp(y0bar, y0bar_kept, sizeof y0bar_kept) == 0 && memcmp(dp, dp_kept, (size_t)P * sizeof(double)) == 0);
    }
}

/* The same solve keeping its stages: the same outputs and the same gradient bits as the replay
 * (y0bar, dp); then the object refused for a tape it does not hold. */
static void check_kept_stages(int method, nd_ode_tape *tape, const double *ys, const double *y0bar, const double *dp,
                              int64_t P)
{
    nd_ode_opts o = opts;
    o.on_step = NULL;
    size_t keep_len;
    CHECK(nd_field_keep_len(&field, &keep_len) == ND_OK && keep_len == (size_t)(B * 2 * (H + D)));
    nd_ode_kept *kept = nd_ode_kept_new();
    CHECK(kept != NULL);
    double ys_kept[NT * N], work[10 * N], y0bar_kept[N], dp_kept[64], bwork[24 * N];
    for (int round = 0; round < 2; ++round) { /* the second solve reuses the first one's memory */
        const size_t bytes = nd_ode_kept_bytes(kept);
        CHECK(nd_odeint_keep_f64(nd_field_eval_keep_at_f64, &field, keep_len, N, Y0, NT, T, &o, ys_kept, NULL, work,
                                 kept, NULL) == ND_OK);
        CHECK(round == 0 || nd_ode_kept_bytes(kept) == bytes);
        CHECK(nd_ode_kept_steps(kept) == tape->n_steps);
        CHECK(memcmp(ys, ys_kept, sizeof ys_kept) == 0);
        CHECK(nd_ode_backprop_kept_f64(method, NULL, nd_field_vjp_kept_at_f64, &field, N, P, NT, T, tape, kept, WOUT,
                                       y0bar_kept, dp_kept, bwork) == ND_OK);
        CHECK(memcmp(y0bar, y0bar_kept, sizeof y0bar_kept) == 0 && memcmp(dp, dp_kept, (size_t)P * sizeof(double)) == 0);
    }
    check_kept_budget(method, tape, ys, y0bar, dp, P, keep_len, kept);
    /* another tape: one step fewer, a step of another size, another initial state */
    tape->n_steps--;
    CHECK(nd_ode_backprop_kept_f64(method, NULL, nd_field_vjp_kept_at_f64, &field, N, P, NT, T, tape, kept, WOUT, y0bar_kept,
                                   dp_kept, bwork) == ND_ERR_ARG);
    tape->n_steps++;
    double *h0 = (double *)tape->steps + 3, saved = *h0;
    *h0 *= 1.5;
    CHECK(nd_ode_backprop_kept_f64(method, NULL, nd_field_vjp_kept_at_f64, &field, N, P, NT, T, tape, kept, WOUT, y0bar_kept,
                                   dp_kept, bwork) == ND_ERR_ARG);
    *h0 = saved;
    double *y00 = (double *)tape->y;
    *y00 += 1;
    CHECK(nd_ode_backprop_kept_f64(method, NULL, nd_field_vjp_kept_at_f64, &field, N, P, NT, T, tape, kept, WOUT, y0bar_kept,
                                   dp_kept, bwork) == ND_ERR_ARG);
    *y00 -= 1;
    CHECK(nd_ode_backprop_kept_f64((method + 1) % ND_ODE_COUPLED_METHOD_COUNT, NULL, nd_field_vjp_kept_at_f64, &field, N, P,
                                   NT, T, tape, kept, WOUT, y0bar_kept, dp_kept, bwork) == ND_ERR_ARG);
    CHECK(nd_ode_backprop_kept_f64(method, NULL, nd_field_vjp_kept_at_f64, &field, N, P, NT, T, tape, NULL, WOUT, y0bar_kept,
                                   dp_kept, bwork) == ND_ERR_ARG);
    /* a field that keeps nothing outside its scratch cannot keep the stages */
    nd_field lin = {.kind = ND_FIELD_LINEAR, .batch = B, .dim = D, .A = W1};
    CHECK(nd_field_keep_len(&lin, &keep_len) == ND_ERR_ARG);
    CHECK(nd_odeint_keep_f64(nd_field_eval_keep_at_f64, &lin, 0, N, Y0, NT, T, &o, ys_kept, NULL, work, kept, NULL) ==
          ND_ERR_ARG);
    CHECK(nd_ode_kept_steps(kept) == 0);
    nd_ode_kept_free(kept);
}

static void run_backprop(int method, double dt, double rtol, double tol)
{
    nd_ode_opts_default(&opts);
    opts.method = method;
    opts.dt = dt;
    opts.rtol = opts.atol = rtol;
    opts.on_step = record;
    tape_n = 0;
    double ys[NT * N], work[10 * N];
    CHECK(nd_odeint_f64(nd_field_eval_f64, &field, N, Y0, NT, T, &opts, ys, NULL, work, NULL) == ND_OK);
    CHECK(tape_n > 0 && tape_n < MAXS);
    nd_ode_tape tape = {tape_n, tape_steps, tape_outs, tape_y};
    const int64_t P = nd_field_param_count(&field);
    CHECK(P == 2 * D * H + H + D);
    double y0bar[N], dp[64], bwork[24 * N], y0bar_kept[N], dp_kept[64];
    nd_ode_grad_fns_f64 plain = grad_fns(0), kept = grad_fns(1);
    CHECK(nd_ode_backprop_f64(method, &plain, N, P, NT, T, &tape, WOUT, y0bar, dp, bwork) == ND_OK);
    CHECK(nd_ode_backprop_f64(method, &kept, N, P, NT, T, &tape, WOUT, y0bar_kept, dp_kept, bwork) == ND_OK);
    CHECK(memcmp(y0bar, y0bar_kept, sizeof y0bar) == 0 && memcmp(dp, dp_kept, (size_t)P * sizeof(double)) == 0);
    check_kept_stages(method, &tape, ys, y0bar, dp, P);
    double ey = fd_error(Y0, y0bar, N, 1e-6), ep = check_params(dp, 1e-6);
    if (ey >= tol || ep >= tol)
        fprintf(stderr, "backprop %s: y0 error %g, params error %g\n", nd_ode_method_name(method), ey, ep);
    CHECK(ey < tol);
    CHECK(ep < tol);
}

static void test_backprop_fixed_step(void)
{
    setup();
    run_backprop(ND_ODE_EULER, 0.1, 1e-3, 1e-6);
    run_backprop(ND_ODE_MIDPOINT, 0.1, 1e-3, 1e-6);
    run_backprop(ND_ODE_RK4, 0.05, 1e-3, 1e-6);
}

static void test_backprop_dopri5_dense_output(void)
{
    setup();
    /* The step sizes are constants of the discrete map; finite differences also move them,
     * by an amount of the order of the tolerance. */
    run_backprop(ND_ODE_DOPRI5, 0.0, 1e-11, 1e-6);
}

static void test_adjoint(void)
{
    setup();
    for (int method = 0; method < ND_ODE_COUPLED_METHOD_COUNT; ++method) {
        nd_ode_opts_default(&opts);
        opts.method = method;
        opts.dt = method == ND_ODE_EULER ? 1e-3 : 0.01;
        opts.rtol = opts.atol = 1e-10;
        opts.max_steps = 100000;
        if (method == ND_ODE_DOPRI5)
            opts.dt = 0;
        double ys[NT * N], work[10 * N];
        CHECK(nd_odeint_f64(nd_field_eval_f64, &field, N, Y0, NT, T, &opts, ys, NULL, work, NULL) == ND_OK);
        const int64_t P = nd_field_param_count(&field);
        size_t len;
        CHECK(nd_ode_adjoint_workspace_len(method, N, P, &len) == ND_OK);
        double awork[2048], y0bar[N], dp[64], y0bar_kept[N], dp_kept[64];
        CHECK(len <= 2048);
        nd_ode_stats st;
        nd_ode_grad_fns_f64 plain = grad_fns(0), kept = grad_fns(1);
        CHECK(nd_ode_adjoint_f64(&plain, N, P, NT, T, ys + (NT - 1) * N, WOUT, &opts, y0bar, dp, awork, &st) == ND_OK);
        CHECK(nd_ode_adjoint_f64(&kept, N, P, NT, T, ys + (NT - 1) * N, WOUT, &opts, y0bar_kept, dp_kept, awork,
                                 NULL) == ND_OK);
        CHECK(memcmp(y0bar, y0bar_kept, sizeof y0bar) == 0 && memcmp(dp, dp_kept, (size_t)P * sizeof(double)) == 0);
        /* The adjoint solves the continuous problem: it matches the discrete gradient to the
         * accuracy of the method (dopri5 at 1e-10; first-order euler only to O(dt)). */
        double tol = method == ND_ODE_EULER ? 5e-2 : method == ND_ODE_MIDPOINT ? 1e-3 : 1e-5;
        double ey = fd_error(Y0, y0bar, N, 1e-6), ep = check_params(dp, 1e-6);
        if (ey >= tol || ep >= tol)
            fprintf(stderr, "adjoint %s: y0 error %g, params error %g\n", nd_ode_method_name(method), ey, ep);
        CHECK(ey < tol);
        CHECK(ep < tol);
        CHECK(st.accepted > 0);
    }
}

static void test_lorenz_and_linear_vjp(void)
{
    /* VJPs of the other fields against finite differences of their evaluation. */
    double y[6] = {1.0, -2.0, 20.0, 0.5, 0.3, 10.0}, a[6] = {0.3, -0.7, 0.2, 1.1, 0.4, -0.9};
    double A[4] = {0.5, -1.0, 2.0, 0.25}, b[2] = {0.1, -0.2};
    nd_field fl[2] = {{.kind = ND_FIELD_LORENZ, .batch = 2, .dim = 3, .sigma = 10, .rho = 28, .beta = 8.0 / 3},
                      {.kind = ND_FIELD_LINEAR, .batch = 3, .dim = 2, .A = A, .b = b}};
    for (int k = 0; k < 2; ++k) {
        nd_field *f = &fl[k];
        double aout[6], dp[8], dy_p[6], dy_m[6];
        CHECK(nd_field_vjp_f64(f, 0.0, y, a, aout, dp, 0) == ND_OK);
        for (int i = 0; i < 6; ++i) {
            double keep = y[i], fd = 0;
            y[i] = keep + 1e-6;
            nd_field_eval_f64(f, 0.0, y, dy_p);
            y[i] = keep - 1e-6;
            nd_field_eval_f64(f, 0.0, y, dy_m);
            y[i] = keep;
            for (int j = 0; j < 6; ++j)
                fd += a[j] * (dy_p[j] - dy_m[j]) / 2e-6;
            CHECK_CLOSE(aout[i], fd, 1e-6 * fmax(1, fabs(fd)));
        }
        /* parameters */
        double *params[6];
        int np = 0;
        double sig = f->sigma, rho = f->rho, bet = f->beta;
        if (k == 0) {
            params[0] = &f->sigma;
            params[1] = &f->rho;
            params[2] = &f->beta;
            np = 3;
        } else {
            for (int i = 0; i < 4; ++i)
                params[i] = &A[i];
            params[4] = &b[0];
            params[5] = &b[1];
            np = 6;
        }
        for (int p = 0; p < np; ++p) {
            double keep = *params[p], fd = 0;
            *params[p] = keep + 1e-6;
            nd_field_eval_f64(f, 0.0, y, dy_p);
            *params[p] = keep - 1e-6;
            nd_field_eval_f64(f, 0.0, y, dy_m);
            *params[p] = keep;
            for (int j = 0; j < 6; ++j)
                fd += a[j] * (dy_p[j] - dy_m[j]) / 2e-6;
            CHECK_CLOSE(dp[p], fd, 1e-6 * fmax(1, fabs(fd)));
        }
        (void)sig, (void)rho, (void)bet;
        CHECK(nd_field_param_count(f) == np);
    }
}

static void test_keep_slots_checked(void)
{
    setup();
    double y[N], dy[N], a[N] = {0};
    CHECK(nd_field_eval_keep_f64(&field, ND_FIELD_MAX_SLOTS, 0.0, y, dy) == ND_ERR_ARG);
    CHECK(nd_field_vjp_kept_f64(&field, -1, 0.0, y, a, dy, NULL, 0) == ND_ERR_ARG);
    nd_field bad = field;
    bad.keep_slots = ND_FIELD_MAX_SLOTS + 1;
    size_t len;
    CHECK(nd_field_workspace_len(&bad, &len) == ND_ERR_ARG);
    nd_ode_grad_fns_f64 half = {nd_field_eval_f64, nd_field_vjp_f64, nd_field_eval_keep_f64, NULL, &field};
    double y0bar[N], dp[64], bwork[24 * N];
    nd_ode_tape tape = {0, NULL, NULL, NULL};
    CHECK(nd_ode_backprop_f64(ND_ODE_RK4, &half, N, 1, NT, T, &tape, WOUT, y0bar, dp, bwork) == ND_ERR_ARG);
}

/* ---- per sample ------------------------------------------------------------------------ */

static int samples_method;
static double samples_tol;
/* the per-sample driver's steps go to the same tape, rounds as recorded */
static void record_sample(void *ctx, int64_t round, int64_t sample, double t, double h, const void *y,
                          const void *dense, int64_t lo, int64_t hi)
{
    record_step(sample, t, h, y, D, lo, hi);
    if (tape_n <= MAXS)
        tape_steps[4 * (tape_n - 1) + 1] = (double)round;
}

static int solve_samples(const double *y0, double *ys, double *ylast, int record)
{
    nd_ode_samples_opts o;
    nd_ode_samples_opts_default(&o);
    o.method = samples_method;
    o.rtol = o.atol = samples_tol;
    o.max_steps = 100000;
    if (record) {
        o.on_step = record_sample;
        tape_n = 0;
    }
    static int64_t cnt[5 * B];
    static double tr[B];
    static int status[B];
    nd_ode_samples_stats st = {cnt, cnt + B, cnt + 2 * B, cnt + 3 * B, tr, status, 0, 0, 0, 0, NULL};
    size_t bytes;
    CHECK(nd_ode_samples_workspace_size(o.method, B, D, 0, sizeof(double), &bytes) == ND_OK);
    static double work[8192];
    CHECK(bytes <= sizeof work);
    return nd_odeint_samples_f64(nd_field_eval_rows_f64, &field, NULL, NULL, B, D, y0, NT, T, &o, ys, ylast, work, &st);
}

static double loss_samples(void)
{
    double ys[NT * N];
    CHECK(solve_samples(Y0, ys, NULL, 0) == ND_OK);
    double l = 0;
    for (int i = 0; i < NT * N; ++i)
        l += WOUT[i] * ys[i];
    return l;
}

static nd_ode_samples_grad_fns_f64 samples_fns(int kept)
{
    nd_ode_samples_grad_fns_f64 fns = {nd_field_eval_rows_f64, nd_field_vjp_rows_f64, NULL, NULL, &field};
    if (kept) {
        fns.keep = nd_field_eval_rows_keep_f64;
        fns.vjp_kept = nd_field_vjp_rows_kept_f64;
    }
    return fns;
}

static double samples_fd(const double *y0bar, const double *dp)
{
    double e = nd_test_fd_error(loss_samples, Y0, y0bar, N, 1e-6, 1e-2);
    const int sizes[4] = {D * H, H, H * D, D};
    double *params[4] = {W1, B1, W2, B2};
    for (int k = 0, off = 0; k < 4; off += sizes[k++])
        e = fmax(e, nd_test_fd_error(loss_samples, params[k], dp + off, sizes[k], 1e-6, 1e-2));
    return e;
}

/* Every sample's own steps: backprop (with and without kept linearisations, the same bits)
 * and the adjoint against finite differences; outputs inside steps go through each method's
 * dense output. */
static void test_samples_gradients(void)
{
    const int methods[3] = {ND_ODE_DOPRI5, ND_ODE_TSIT5, ND_ODE_DOP853};
    for (int mi = 0; mi < 3; ++mi) {
        setup();
        samples_method = methods[mi];
        samples_tol = 1e-11;
        double ys[NT * N], ylast[N];
        CHECK(solve_samples(Y0, ys, ylast, 1) == ND_OK);
        CHECK(tape_n > NT && tape_n < MAXS);
        nd_ode_samples_tape tape = {tape_n, tape_steps, tape_outs, tape_y};
        const int64_t P = nd_field_param_count(&field);
        CHECK(nd_ode_samples_backprop_slots(samples_method) <= ND_FIELD_MAX_SLOTS);
        size_t bytes;
        CHECK(nd_ode_samples_backprop_workspace_size(samples_method, B, D, sizeof(double), &bytes) == ND_OK);
        static double bwork[4096];
        CHECK(bytes <= sizeof bwork);
        double y0bar[N], dp[64], y0bar_kept[N], dp_kept[64];
        nd_ode_samples_grad_fns_f64 plain = samples_fns(0), kept = samples_fns(1);
        CHECK(nd_ode_samples_backprop_f64(samples_method, &plain, B, D, P, NT, T, &tape, WOUT, y0bar, dp, bwork) == ND_OK);
        CHECK(nd_ode_samples_backprop_f64(samples_method, &kept, B, D, P, NT, T, &tape, WOUT, y0bar_kept, dp_kept,
                                          bwork) == ND_OK);
        CHECK(memcmp(y0bar, y0bar_kept, sizeof y0bar) == 0 && memcmp(dp, dp_kept, (size_t)P * sizeof(double)) == 0);
        double e = samples_fd(y0bar, dp);
        if (e >= 1e-6)
            fprintf(stderr, "per-sample backprop %s: error %g\n", nd_ode_method_name(samples_method), e);
        CHECK(e < 1e-6);

        nd_ode_samples_opts o;
        nd_ode_samples_opts_default(&o);
        o.method = samples_method;
        o.rtol = o.atol = 1e-11;
        o.max_steps = 100000;
        CHECK(nd_ode_samples_adjoint_workspace_size(samples_method, B, D, sizeof(double), &bytes) == ND_OK);
        static double awork[32768];
        CHECK(bytes <= sizeof awork);
        static int64_t cnt[5 * B];
        static double tr[B];
        static int status[B];
        nd_ode_samples_stats st = {cnt, cnt + B, cnt + 2 * B, cnt + 3 * B, tr, status, 0, 0, 0, 0, NULL};
        CHECK(nd_ode_samples_adjoint_f64(&plain, B, D, P, NT, T, ylast, WOUT, &o, y0bar, dp, awork, &st) == ND_OK);
        CHECK(nd_ode_samples_adjoint_f64(&kept, B, D, P, NT, T, ylast, WOUT, &o, y0bar_kept, dp_kept, awork, NULL) ==
              ND_OK);
        CHECK(memcmp(y0bar, y0bar_kept, sizeof y0bar) == 0 && memcmp(dp, dp_kept, (size_t)P * sizeof(double)) == 0);
        CHECK(st.accepted[0] > 0 && st.accepted[1] > 0 && st.n_out[0] == NT && st.t[1] == T[0]);
        e = samples_fd(y0bar, dp);
        if (e >= 1e-6)
            fprintf(stderr, "per-sample adjoint %s: error %g\n", nd_ode_method_name(samples_method), e);
        CHECK(e < 1e-6);
    }
}

/* ---- per sample, kept stages ------------------------------------------------------------ */

enum { KB = 4000, KMAX = 200000 }; /* rows enough for the driver to run its stages in blocks */
typedef struct {
    double *steps, *y;
    int64_t *outs, n;
} big_tape;

static void record_big(void *ctx, int64_t round, int64_t sample, double t, double h, const void *y, const void *dense,
                       int64_t lo, int64_t hi)
{
    big_tape *tp = ctx;
    if (tp->n >= KMAX)
        return;
    double *st = tp->steps + 4 * tp->n;
    st[0] = (double)sample, st[1] = (double)round, st[2] = t, st[3] = h;
    tp->outs[2 * tp->n] = lo, tp->outs[2 * tp->n + 1] = hi;
    memcpy(tp->y + tp->n * D, y, D * sizeof(double));
    tp->n++;
}

/* The per-sample driver keeping its stages, on rows in several blocks, with rejected attempts
 * among the accepted ones of a round: the replay's outputs and gradient bits; the object refused
 * for another method, another tape and a field that keeps nothing outside its scratch. */
static void test_samples_kept_stages(void)
{
    setup();
    double *wf = calloc((size_t)KB * (2 * (H + D) + 2 * H + ND_FIELD_MAX_SLOTS * 2 * (H + D)), sizeof(double));
    double *y0 = malloc(KB * D * sizeof(double)), *ys = malloc(3 * KB * D * sizeof(double));
    double *ys_kept = malloc(3 * KB * D * sizeof(double)), *ybar = malloc(3 * KB * D * sizeof(double));
    double *y0bar = malloc(KB * D * sizeof(double)), *y0bar_kept = malloc(KB * D * sizeof(double));
    big_tape tp = {malloc(4 * KMAX * sizeof(double)), malloc(KMAX * D * sizeof(double)),
                   malloc(2 * KMAX * sizeof(int64_t)), 0};
    int64_t *cnt = malloc(5 * KB * sizeof(int64_t));
    double *tr = malloc(KB * sizeof(double));
    int *status = malloc(KB * sizeof(int));
    CHECK(wf && y0 && ys && ys_kept && ybar && y0bar && y0bar_kept && tp.steps && tp.y && tp.outs && cnt && tr && status);
    nd_field f = field;
    f.batch = KB;
    f.work = wf;
    for (int i = 0; i < KB * D; ++i) /* rows of three scales, rejected at different rounds */
        y0[i] = nd_test_uniform(-1, 1) * (double)(1 + 4 * ((i / D) % 3));
    for (int i = 0; i < 3 * KB * D; ++i)
        ybar[i] = nd_test_uniform(-1, 1);
    const double t2[3] = {0.0, 1.3, 3.0}; /* an output inside some steps: rounds keeping every slope */
    const int methods[3] = {ND_ODE_DOPRI5, ND_ODE_TSIT5, ND_ODE_DOP853};
    nd_ode_samples_kept *kept = nd_ode_samples_kept_new();
    CHECK(kept != NULL);
    for (int mi = 0; mi < 3; ++mi) {
        nd_ode_samples_opts o;
        nd_ode_samples_opts_default(&o);
        o.method = methods[mi];
        o.rtol = o.atol = 1e-9;
        o.dt = 6.0; /* far too long: first attempts rejected */
        o.row_blocks = 1;
        o.on_step = record_big;
        o.step_ctx = &tp;
        nd_ode_samples_stats st = {cnt, cnt + KB, cnt + 2 * KB, cnt + 3 * KB, tr, status, 0, 0, 0, 0, NULL};
        size_t bytes;
        CHECK(nd_ode_samples_workspace_size(o.method, KB, D, 0, sizeof(double), &bytes) == ND_OK);
        /* room for the backward pass of every method: one is called with another method's */
        for (int j = 0; j < 3; ++j) {
            size_t b;
            CHECK(nd_ode_samples_backprop_workspace_size(methods[j], KB, D, sizeof(double), &b) == ND_OK);
            bytes = b > bytes ? b : bytes;
        }
        void *work = malloc(bytes);
        CHECK(work != NULL);
        tp.n = 0;
        CHECK(nd_odeint_samples_f64(nd_field_eval_rows_f64, &f, NULL, NULL, KB, D, y0, 3, t2, &o, ys, NULL, work, &st) ==
              ND_OK);
        const int64_t n_steps = tp.n, calls = st.rhs_calls, rounds = st.rounds;
        CHECK(n_steps > KB && n_steps < KMAX);
        int64_t rejected = 0;
        for (int s = 0; s < KB; ++s)
            rejected += st.rejected[s];
        CHECK(rejected > 0 && rejected < n_steps);
        /* some round accepted some rows and rejected others: a sample missing from a round with
         * steps, between its own rounds */
        int64_t *last = cnt + 4 * KB, partial = 0;
        for (int s = 0; s < KB; ++s)
            last[s] = -1;
        for (int64_t k = 0; k < n_steps; ++k) {
            const int64_t s = (int64_t)tp.steps[4 * k], r = (int64_t)tp.steps[4 * k + 1];
            partial += r > last[s] + 1 && last[s] >= 0;
            last[s] = r;
        }
        CHECK(partial > 0);
        const int stages = nd_ode_samples_backprop_slots(o.method) - (o.method == ND_ODE_DOP853 ? 3 : 0);
        CHECK(calls > rounds * (stages - 1) + 2); /* the stages ran block by block */
        o.on_step = NULL;
        int64_t widths[ND_FIELD_KEEP_ARRAYS];
        int n_widths;
        CHECK(nd_field_keep_row_widths(&f, D, widths, &n_widths) == ND_OK && n_widths == 4);
        CHECK(nd_odeint_samples_keep_f64(nd_field_eval_rows_f64, nd_field_eval_rows_keep_at_f64, &f, n_widths, widths,
                                         NULL, NULL, KB, D, y0, 3, t2, &o, ys_kept, NULL, work, kept, &st) == ND_OK);
        CHECK(memcmp(ys, ys_kept, 3 * KB * D * sizeof(double)) == 0 && st.rhs_calls == calls);
        CHECK(nd_ode_samples_kept_steps(kept) == n_steps && nd_ode_samples_kept_bytes(kept) > 0);
        nd_ode_samples_tape tape = {n_steps, tp.steps, tp.outs, tp.y};
        nd_ode_samples_grad_fns_f64 fns = {nd_field_eval_rows_f64, nd_field_vjp_rows_f64, nd_field_eval_rows_keep_f64,
                                           nd_field_vjp_rows_kept_f64, &f};
        const int64_t P = nd_field_param_count(&f);
        double dp[64], dp_kept[64];
        CHECK(nd_ode_samples_backprop_f64(o.method, &fns, KB, D, P, 3, t2, &tape, ybar, y0bar, dp, work) == ND_OK);
        CHECK(nd_ode_samples_backprop_kept_f64(o.method, &fns, nd_field_vjp_rows_kept_at_f64, KB, D, P, 3, t2, &tape,
                                               kept, ybar, y0bar_kept, dp_kept, work) == ND_OK);
        CHECK(memcmp(y0bar, y0bar_kept, KB * D * sizeof(double)) == 0 &&
              memcmp(dp, dp_kept, (size_t)P * sizeof(double)) == 0);
        /* budgets of none and half the buffers: the first rounds kept (none, some), the others
         * replayed, the same outputs and bits */
        const int64_t half = (int64_t)nd_ode_samples_kept_bytes(kept) / 2;
        CHECK(nd_ode_samples_kept_set_budget(kept, -1) == ND_ERR_ARG);
        for (int64_t budget = 0; budget <= half; budget += half) {
            CHECK(nd_ode_samples_kept_set_budget(kept, budget) == ND_OK);
            CHECK(nd_odeint_samples_keep_f64(nd_field_eval_rows_f64, nd_field_eval_rows_keep_at_f64, &f, n_widths,
                                             widths, NULL, NULL, KB, D, y0, 3, t2, &o, ys_kept, NULL, work, kept,
                                             &st) == ND_OK);
            CHECK(memcmp(ys, ys_kept, 3 * KB * D * sizeof(double)) == 0);
            const int64_t held = nd_ode_samples_kept_steps(kept);
            CHECK(budget ? held > 0 && held < n_steps : held == 0);
            CHECK(!nd_ode_samples_kept_complete(kept) && nd_ode_samples_kept_bytes(kept) <= (size_t)budget);
            memset(y0bar_kept, 0, KB * D * sizeof(double));
            CHECK(nd_ode_samples_backprop_kept_f64(o.method, &fns, nd_field_vjp_rows_kept_at_f64, KB, D, P, 3, t2,
                                                   &tape, kept, ybar, y0bar_kept, dp_kept, work) == ND_OK);
            CHECK(memcmp(y0bar, y0bar_kept, KB * D * sizeof(double)) == 0 &&
                  memcmp(dp, dp_kept, (size_t)P * sizeof(double)) == 0);
            if (!half)
                break;
        }
        CHECK(nd_ode_samples_kept_set_budget(kept, (int64_t)nd_ode_kept_default_budget()) == ND_OK);
        /* another method's, another tape's (one step fewer, a step's size changed) */
        CHECK(nd_ode_samples_backprop_kept_f64(methods[(mi + 1) % 3], &fns, nd_field_vjp_rows_kept_at_f64, KB, D, P, 3,
                                               t2, &tape, kept, ybar, y0bar_kept, dp_kept, work) == ND_ERR_ARG);
        tape.n_steps--;
        CHECK(nd_ode_samples_backprop_kept_f64(o.method, &fns, nd_field_vjp_rows_kept_at_f64, KB, D, P, 3, t2, &tape,
                                               kept, ybar, y0bar_kept, dp_kept, work) == ND_ERR_ARG);
        tape.n_steps++;
        tp.steps[4 * 7 + 3] *= 1 + 1e-15;
        CHECK(nd_ode_samples_backprop_kept_f64(o.method, &fns, nd_field_vjp_rows_kept_at_f64, KB, D, P, 3, t2, &tape,
                                               kept, ybar, y0bar_kept, dp_kept, work) == ND_ERR_ARG);
        CHECK(nd_ode_samples_backprop_kept_f64(o.method, &fns, nd_field_vjp_rows_kept_at_f64, KB, D, P, 3, t2, &tape,
                                               NULL, ybar, y0bar_kept, dp_kept, work) == ND_ERR_ARG);
        free(work);
    }
    /* a field that keeps nothing outside its scratch: the solve is refused and keeps no steps */
    nd_field lin = {.kind = ND_FIELD_LINEAR, .batch = KB, .dim = D, .A = W1};
    int64_t w0[1] = {0};
    nd_ode_samples_opts o;
    nd_ode_samples_opts_default(&o);
    size_t bytes;
    CHECK(nd_ode_samples_workspace_size(o.method, KB, D, 0, sizeof(double), &bytes) == ND_OK);
    void *work = malloc(bytes);
    nd_ode_samples_stats st = {cnt, cnt + KB, cnt + 2 * KB, cnt + 3 * KB, tr, status, 0, 0, 0, 0, NULL};
    CHECK(nd_odeint_samples_keep_f64(nd_field_eval_rows_f64, nd_field_eval_rows_keep_at_f64, &lin, 0, w0, NULL, NULL,
                                     KB, D, y0, 3, t2, &o, ys_kept, NULL, work, kept, &st) == ND_ERR_ARG);
    CHECK(nd_ode_samples_kept_steps(kept) == 0);
    free(work);
    nd_ode_samples_kept_free(kept);
    free(wf), free(y0), free(ys), free(ys_kept), free(ybar), free(y0bar), free(y0bar_kept);
    free(tp.steps), free(tp.y), free(tp.outs), free(cnt), free(tr), free(status);
}

ND_TEST_MAIN(test_samples_kept_stages, test_samples_gradients, test_backprop_fixed_step, test_keep_slots_checked, test_backprop_dopri5_dense_output, test_adjoint, test_lorenz_and_linear_vjp)

/* C unit tests of the independent-sample driver (nd_ode_samples.h): orders of the pairs,
 * bit-identical samples alone and in shuffled batches, events, per-sample failures. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nd_ode_samples.h"
#include "nd_parallel.h"
#include "nd_status.h"
#include "nd_test.h"

static const int METHODS[3] = {ND_ODE_DOPRI5, ND_ODE_TSIT5, ND_ODE_DOP853};

/* Lorenz rows, each at its own time (unused: autonomous). */
static int lorenz_rows(void *ctx, int64_t m, int64_t d, const double *t, const double *y, double *dy)
{
    for (int64_t i = 0; i < m; ++i) {
        const double *x = y + 3 * i;
        double *f = dy + 3 * i;
        f[0] = 10.0 * (x[1] - x[0]);
        f[1] = x[0] * (28.0 - x[2]) - x[1];
        f[2] = x[0] * x[1] - (8.0 / 3.0) * x[2];
    }
    return ND_OK;
}

/* y' = cos(t) y: y = y0 exp(sin t); non-autonomous, so each row's time matters. */
static int cos_rows(void *ctx, int64_t m, int64_t d, const double *t, const double *y, double *dy)
{
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < d; ++j)
            dy[i * d + j] = cos(t[i]) * y[i * d + j];
    return ND_OK;
}

/* Harmonic oscillator y = (cos t, -sin t). */
static int osc_rows(void *ctx, int64_t m, int64_t d, const double *t, const double *y, double *dy)
{
    for (int64_t i = 0; i < m; ++i) {
        dy[2 * i] = y[2 * i + 1];
        dy[2 * i + 1] = -y[2 * i];
    }
    return ND_OK;
}

/* Decay rates per sample through the row's first value: row i holds (y, -rate). */
static int decay_rows(void *ctx, int64_t m, int64_t d, const double *t, const double *y, double *dy)
{
    for (int64_t i = 0; i < m; ++i) {
        dy[2 * i] = y[2 * i + 1] * y[2 * i];
        dy[2 * i + 1] = 0;
    }
    return ND_OK;
}

typedef struct {
    int64_t *nfev, *acc, *rej, *nout;
    double *t;
    int *status;
    nd_ode_samples_stats st;
    void *work;
} run_buf;

static void buf_init(run_buf *b, int method, int64_t B, int64_t d, int64_t ne)
{
    b->nfev = calloc((size_t)B + 1, sizeof(int64_t));
    b->acc = calloc((size_t)B + 1, sizeof(int64_t));
    b->rej = calloc((size_t)B + 1, sizeof(int64_t));
    b->nout = calloc((size_t)B + 1, sizeof(int64_t));
    b->t = calloc((size_t)B + 1, sizeof(double));
    b->status = calloc((size_t)B + 1, sizeof(int));
    b->st = (nd_ode_samples_stats){b->nfev, b->acc, b->rej, b->nout, b->t, b->status, 0, 0, 0, 0, NULL};
    size_t bytes = 0;
    CHECK(nd_ode_samples_workspace_size(method, B, d, ne, sizeof(double), &bytes) == ND_OK);
    b->work = malloc(bytes + 64);
}

static void buf_free(run_buf *b)
{
    free(b->nfev);
    free(b->acc);
    free(b->rej);
    free(b->nout);
    free(b->t);
    free(b->status);
    free(b->work);
}

static int solve(nd_batch_rhs_f64 rhs, const nd_ode_samples_opts *o, int64_t B, int64_t d, const double *y0,
                 int64_t nt, const double *t, double *ys, double *ylast, run_buf *b)
{
    buf_init(b, o->method, B, d, o->n_events);
    return nd_odeint_samples_f64(rhs, NULL, NULL, NULL, B, d, y0, nt, t, o, ys, ylast, b->work, &b->st);
}

/* One step of size h of y' = cos(t) y from t = 0.3: the local error is C h^(p+1). */
static double local_error(int method, double h)
{
    nd_ode_samples_opts o;
    nd_ode_samples_opts_default(&o);
    o.method = method;
    o.rtol = 1e6; /* every step accepted */
    o.atol = 1e6;
    o.dt = h * 1.000001; /* the step then lands exactly on t[1] */
    const double t[2] = {0.3, 0.3 + h}, y0 = 1.0;
    double ys[2];
    run_buf b;
    CHECK(solve(cos_rows, &o, 1, 1, &y0, 2, t, ys, NULL, &b) == ND_OK);
    if (!(b.acc[0] == 1 && b.rej[0] == 0))
        fprintf(stderr, "acc %lld rej %lld status %d\n", (long long)b.acc[0], (long long)b.rej[0], b.status[0]);
    CHECK(b.acc[0] == 1 && b.rej[0] == 0);
    buf_free(&b);
    return fabs(ys[1] - exp(sin(t[1]) - sin(t[0])));
}

static void test_orders(void)
{
    const int expect[3] = {5, 5, 8};
    for (int mi = 0; mi < 3; ++mi) {
        const double h1 = mi == 2 ? 0.25 : 0.1, h2 = h1 / 2;
        const double e1 = local_error(METHODS[mi], h1), e2 = local_error(METHODS[mi], h2);
        const double order = log(e1 / e2) / log(2.0) - 1.0;
        if (fabs(order - expect[mi]) > 0.3)
            fprintf(stderr, "%s: measured order %.3f (errors %.3g, %.3g)\n", nd_ode_method_name(METHODS[mi]), order, e1,
                    e2);
        CHECK(fabs(order - expect[mi]) <= 0.3);
    }
}

/* Lorenz samples solved alone, then shuffled in one batch (and at 2 threads): same bits. */
static void test_alone_vs_batch(void)
{
    enum { B = 40, NT = 5 };
    double y0[B * 3], t[NT] = {0.0, 0.2, 0.45, 0.7, 1.0};
    for (int i = 0; i < B * 3; ++i)
        y0[i] = nd_test_uniform(-15, 15) + (i % 3 == 2 ? 25 : 0);
    int perm[B];
    for (int i = 0; i < B; ++i)
        perm[i] = i;
    for (int i = B - 1; i > 0; --i) {
        int j = (int)nd_test_uniform(0, i + 1), tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    for (int mi = 0; mi < 3; ++mi) {
        nd_ode_samples_opts o;
        nd_ode_samples_opts_default(&o);
        o.method = METHODS[mi];
        o.rtol = 1e-7;
        o.atol = 1e-9;
        double alone[B][NT * 3], alone_last[B][3];
        int64_t alone_nfev[B], alone_acc[B];
        for (int s = 0; s < B; ++s) {
            run_buf b;
            CHECK(solve(lorenz_rows, &o, 1, 3, y0 + 3 * s, NT, t, alone[s], alone_last[s], &b) == ND_OK);
            alone_nfev[s] = b.nfev[0];
            alone_acc[s] = b.acc[0];
            buf_free(&b);
        }
        for (int threads = 1; threads <= 2; ++threads) {
            nd_set_threads(threads);
            double yb[B * 3], ys[NT * B * 3], last[B * 3];
            for (int q = 0; q < B; ++q)
                memcpy(yb + 3 * q, y0 + 3 * perm[q], sizeof(double) * 3);
            run_buf b;
            CHECK(solve(lorenz_rows, &o, B, 3, yb, NT, t, ys, last, &b) == ND_OK);
            int same = 1;
            int64_t total = 0;
            for (int q = 0; q < B; ++q) {
                const int s = perm[q];
                for (int j = 0; j < NT; ++j)
                    same &= memcmp(ys + (j * B + q) * 3, alone[s] + j * 3, sizeof(double) * 3) == 0;
                same &= memcmp(last + 3 * q, alone_last[s], sizeof(double) * 3) == 0;
                same &= b.nfev[q] == alone_nfev[s] && b.acc[q] == alone_acc[s];
                total += b.nfev[q];
            }
            CHECK(same);
            CHECK(b.st.nfev_total == total);
            buf_free(&b);
        }
        nd_set_threads(1);
    }
}

/* Samples of different stiffness: each pays for its own steps only. */
static void test_work_follows_samples(void)
{
    double y0[6] = {1, -1, 1, -1000, 1, -2}, t[2] = {0, 1}, ys[2 * 6];
    nd_ode_samples_opts o;
    nd_ode_samples_opts_default(&o);
    run_buf b, one;
    CHECK(solve(decay_rows, &o, 3, 2, y0, 2, t, ys, NULL, &b) == ND_OK);
    int64_t sum = 0;
    for (int s = 0; s < 3; ++s) {
        double y1[4];
        CHECK(solve(decay_rows, &o, 1, 2, y0 + 2 * s, 2, t, y1, NULL, &one) == ND_OK);
        CHECK(one.nfev[0] == b.nfev[s]);
        sum += one.nfev[0];
        buf_free(&one);
    }
    CHECK(b.st.nfev_total == sum);
    CHECK(b.nfev[1] > 5 * b.nfev[0]);
    buf_free(&b);
}

/* A sample out of budget fails alone; the others finish. */
static void test_per_sample_failure(void)
{
    double y0[6] = {1, -1, 1, -1e5, 1, -2}, t[3] = {0, 0.5, 1}, ys[3 * 6], last[6];
    nd_ode_samples_opts o;
    nd_ode_samples_opts_default(&o);
    o.max_steps = 60;
    run_buf b;
    CHECK(solve(decay_rows, &o, 3, 2, y0, 3, t, ys, last, &b) == ND_ERR_MAX_STEPS);
    CHECK(b.status[0] == ND_OK && b.status[1] == ND_ERR_MAX_STEPS && b.status[2] == ND_OK);
    CHECK(b.st.n_failed == 1);
    CHECK(b.acc[1] + b.rej[1] == 60);
    CHECK(isnan(ys[(2 * 3 + 1) * 2]) && isnan(ys[(1 * 3 + 1) * 2 + 1]));
    CHECK_CLOSE(ys[(2 * 3 + 2) * 2], exp(-2.0), 1e-3);
    CHECK(b.t[1] < 1.0 && b.t[1] > 0.0);
    buf_free(&b);
}

typedef struct {
    int n;
    double t[64];
    int64_t sample[64], k[64];
    double y[64][2];
} ev_log;

static void log_event(void *ctx, int64_t sample, int64_t k, double t, const void *y)
{
    ev_log *l = ctx;
    if (l->n < 64) {
        l->t[l->n] = t;
        l->sample[l->n] = sample;
        l->k[l->n] = k;
        memcpy(l->y[l->n], y, sizeof(double) * 2);
        l->n++;
    }
}

/* g = (y0, y1) through the callback, for the same events as the linear specs. */
static int osc_events(void *ctx, int64_t m, int64_t ne, const double *t, const double *y, double *g)
{
    for (int64_t i = 0; i < m; ++i) {
        g[i * ne] = y[2 * i];
        if (ne > 1)
            g[i * ne + 1] = y[2 * i + 1];
    }
    return ND_OK;
}

/* Zero crossings of cos t at pi/2 + k pi, located to 1e-10; direction filters them. */
static void test_oscillator_events(void)
{
    for (int mi = 0; mi < 3; ++mi)
        for (int use_cb = 0; use_cb < 2; ++use_cb) {
            double y0[4] = {1, 0, 1, 0}, t[2] = {0, 10}, ys[8];
            const double c[2] = {1, 0}, dd[1] = {0};
            const int dir[2] = {0, -1};
            nd_ode_samples_opts o;
            nd_ode_samples_opts_default(&o);
            o.method = METHODS[mi];
            o.rtol = 1e-12;
            o.atol = 1e-12;
            o.n_events = 1;
            o.direction = dir;
            ev_log log = {0};
            o.on_event = log_event;
            o.event_ctx = &log;
            if (!use_cb) {
                o.ev_c = c;
                o.ev_d = dd;
            }
            run_buf b;
            buf_init(&b, o.method, 2, 2, 1);
            CHECK(nd_odeint_samples_f64(osc_rows, NULL, use_cb ? osc_events : NULL, NULL, 2, 2, y0, 2, t, &o, ys, NULL,
                                        b.work, &b.st) == ND_OK);
            /* both samples: crossings at pi/2 + k pi < 10, k = 0..2 */
            int count[2] = {0, 0};
            for (int e = 0; e < log.n; ++e) {
                const int64_t s = log.sample[e];
                const double expect = M_PI / 2 + count[s] * M_PI;
                CHECK(fabs(log.t[e] - expect) < 1e-10);
                CHECK(fabs(log.y[e][0]) < 1e-10);
                count[s]++;
            }
            CHECK(count[0] == 3 && count[1] == 3);
            buf_free(&b);

            /* falling only, terminal at the second: t = 5 pi / 2 */
            o.direction = dir + 1;
            const int64_t term[1] = {2};
            o.terminal = term;
            log.n = 0;
            double t3[3] = {0, 7.0, 10.0}, ys3[12], last[4];
            buf_init(&b, o.method, 2, 2, 1);
            CHECK(nd_odeint_samples_f64(osc_rows, NULL, use_cb ? osc_events : NULL, NULL, 2, 2, y0, 3, t3, &o, ys3, last,
                                        b.work, &b.st) == ND_OK);
            CHECK(log.n == 4);
            CHECK(b.status[0] == ND_ODE_SAMPLE_EVENT && b.status[1] == ND_ODE_SAMPLE_EVENT);
            CHECK(fabs(b.t[0] - 5 * M_PI / 2) < 1e-10);
            CHECK(b.nout[0] == 2 && isnan(ys3[8]) && fabs(ys3[4] - cos(7.0)) < 1e-9);
            CHECK(fabs(last[0]) < 1e-10 && fabs(last[1] + 1) < 1e-9);
            buf_free(&b);
        }
}

/* The dense coefficients reproduce the step's ends. */
static int64_t dense_seen;
static double dense_err;
static int dense_method;

static void check_dense(void *ctx, int64_t round, int64_t sample, double t, double h, const void *y, const void *dense,
                        int64_t lo, int64_t hi)
{
    const double *c = dense;
    double th[2] = {0.0, 1.0}, out[4];
    double coef2[2 * 8 * 2];
    const int nv = nd_ode_dense_vectors(dense_method);
    memcpy(coef2, c, sizeof(double) * (size_t)nv * 2);
    memcpy(coef2 + nv * 2, c, sizeof(double) * (size_t)nv * 2);
    nd_ode_dense_eval_f64(dense_method, 2, 2, th, coef2, out);
    const double *y0 = y;
    dense_err = fmax(dense_err, fabs(out[0] - y0[0]));
    dense_err = fmax(dense_err, fabs(out[2] - cos(t + h)));
    dense_seen++;
}

static void test_dense_coefficients(void)
{
    for (int mi = 0; mi < 3; ++mi) {
        double y0[2] = {1, 0}, t[2] = {0, 3}, ys[4];
        nd_ode_samples_opts o;
        nd_ode_samples_opts_default(&o);
        o.method = dense_method = METHODS[mi];
        o.rtol = o.atol = 1e-10;
        o.dense = 1;
        o.on_step = check_dense;
        dense_seen = 0;
        dense_err = 0;
        run_buf b;
        CHECK(solve(osc_rows, &o, 1, 2, y0, 2, t, ys, NULL, &b) == ND_OK);
        CHECK(dense_seen == b.acc[0]);
        CHECK(dense_err < 1e-8);
        buf_free(&b);
    }
}

static void test_bad_arguments(void)
{
    nd_ode_samples_opts o;
    nd_ode_samples_opts_default(&o);
    double y0 = 1, t[2] = {0, 1}, ys[2];
    run_buf b;
    o.rtol = -1;
    CHECK(solve(cos_rows, &o, 1, 1, &y0, 2, t, ys, NULL, &b) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "rtol") == 0);
    buf_free(&b);
    nd_ode_samples_opts_default(&o);
    o.method = ND_ODE_RK4;
    size_t bytes;
    CHECK(nd_ode_samples_workspace_size(ND_ODE_RK4, 1, 1, 0, 8, &bytes) == ND_ERR_ARG);
    CHECK(nd_ode_samples_workspace_size(ND_ODE_DOP853, INT64_MAX / 2, 1000, 0, 8, &bytes) == ND_ERR_OVERFLOW);
}

ND_TEST_MAIN(test_orders, test_alone_vs_batch, test_work_follows_samples, test_per_sample_failure,
             test_oscillator_events, test_dense_coefficients, test_bad_arguments)

/* C unit tests of the SDE solvers (nd_sde.h): strong orders on geometric Brownian motion and
 * on a linear additive-noise problem with exactly sampled path functionals, moments of an
 * Ornstein-Uhlenbeck process, per-sample determinism, failures and argument errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nd_fields.h"
#include "nd_nn.h"
#include "nd_parallel.h"
#include "nd_rng.h"
#include "nd_sde.h"
#include "nd_status.h"
#include "nd_test.h"

/* Least-squares slope of log(err) against log(h). */
static double fit_order(const double *h, const double *err, int n)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < n; ++i) {
        const double x = log(h[i]), y = log(err[i]);
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

/* dy = (a y + bias) dt + g dW on a scalar state, g = s (CONSTANT) or s y (LINEAR). The field and
 * the diffusion point into the struct: it stays where it was set up. */
typedef struct {
    double A[1], b[1], s[1];
    nd_field f;
    nd_diffusion g;
    nd_sde_problem_f64 p;
    nd_sde_opts o;
} scalar_sde;

static void scalar_sde_init(scalar_sde *q, double a, double bias, int kind, double s, int method, int noise, double dt)
{
    q->A[0] = a;
    q->b[0] = bias;
    q->s[0] = s;
    q->f = (nd_field){.kind = ND_FIELD_LINEAR, .dim = 1, .A = q->A, .b = bias != 0 ? q->b : NULL};
    q->g = (nd_diffusion){.kind = kind, .dim = 1, .m = 1, .sigma = kind == ND_DIFFUSION_CONSTANT ? q->s : NULL,
                          .scale = kind == ND_DIFFUSION_LINEAR ? q->s : NULL};
    q->p = (nd_sde_problem_f64){.field = &q->f, .diffusion = &q->g};
    nd_sde_opts_default(&q->o);
    q->o.method = method;
    q->o.noise = noise;
    q->o.dt = dt;
}

/* dX = mu X dt + sigma X dW on [0, 1]: X(1) = X0 exp((mu - sigma^2 / 2) + sigma W(1)). */
static double gbm_error(int method, double dt, int64_t B)
{
    const double mu = 1.5, sigma = 1.0;
    scalar_sde q;
    scalar_sde_init(&q, mu, 0, ND_DIFFUSION_LINEAR, sigma, method, ND_SDE_DIAGONAL, dt);
    q.o.seed = 7;
    double t[2] = {0.0, 1.0};
    int64_t steps = 0;
    CHECK(nd_sde_steps(2, t, dt, &steps) == ND_OK);
    double *y0 = malloc(B * sizeof(double)), *ys = malloc(2 * B * sizeof(double));
    double *dW = malloc((size_t)(steps * B) * sizeof(double));
    for (int64_t b = 0; b < B; ++b)
        y0[b] = 1.0;
    q.o.dW_out = dW;
    CHECK(nd_sdeint_f64(&q.p, B, 1, y0, 2, t, &q.o, ys, NULL, NULL, NULL) == ND_OK);
    double err = 0;
    for (int64_t b = 0; b < B; ++b) {
        double w = 0;
        for (int64_t k = 0; k < steps; ++k)
            w += dW[k * B + b];
        err += fabs(ys[B + b] - exp(mu - 0.5 * sigma * sigma + sigma * w));
    }
    free(y0);
    free(ys);
    free(dW);
    return err / (double)B;
}

static void test_gbm_strong_orders(void)
{
    const int methods[2] = {ND_SDE_EULER_MARUYAMA, ND_SDE_MILSTEIN};
    const double orders[2] = {0.5, 1.0};
    for (int q = 0; q < 2; ++q) {
        double h[5], err[5];
        for (int i = 0; i < 5; ++i) {
            h[i] = ldexp(1.0, -4 - i);
            err[i] = gbm_error(methods[q], h[i], 2000);
        }
        CHECK_CLOSE(fit_order(h, err, 5), orders[q], 0.15);
    }
}

/* dX = a X dt + sigma dW: per step, (dW, I_(1,0), J = int_0^h e^(a (h - u)) dW(u)) are jointly
 * Gaussian with the covariances of the integrands 1, h - u, e^(a (h - u)); sampling them by a
 * Cholesky factor gives the exact solution X' = e^(a h) X + sigma J on the path sra sees. */
static double sra_linear_error(double h, int64_t B)
{
    const double a = -1.0, sigma = 1.0, e = exp(a * h);
    const double C[3][3] = {{h, h * h / 2, (e - 1) / a},
                            {h * h / 2, h * h * h / 3, e * (h / a - 1 / (a * a)) + 1 / (a * a)},
                            {(e - 1) / a, e * (h / a - 1 / (a * a)) + 1 / (a * a), (e * e - 1) / (2 * a)}};
    double L[3][3] = {{0}};
    for (int i = 0; i < 3; ++i)
        for (int k = 0; k <= i; ++k) {
            double s = C[i][k];
            for (int q = 0; q < k; ++q)
                s -= L[i][q] * L[k][q];
            L[i][k] = i == k ? sqrt(s) : s / L[k][k];
        }
    const int64_t steps = (int64_t)llround(1.0 / h);
    double *dW = malloc((size_t)(steps * B) * sizeof(double)), *dZ = malloc((size_t)(steps * B) * sizeof(double));
    double *x = malloc(B * sizeof(double)), *y0 = malloc(B * sizeof(double)), *ys = malloc(2 * B * sizeof(double));
    double z[3];
    for (int64_t b = 0; b < B; ++b)
        x[b] = y0[b] = 1.0;
    for (int64_t k = 0; k < steps; ++k)
        for (int64_t b = 0; b < B; ++b) {
            nd_rng_normal_fill(99, (uint64_t)b, 3 * (uint64_t)k, 3, z);
            dW[k * B + b] = L[0][0] * z[0];
            dZ[k * B + b] = L[1][0] * z[0] + L[1][1] * z[1];
            x[b] = e * x[b] + sigma * (L[2][0] * z[0] + L[2][1] * z[1] + L[2][2] * z[2]);
        }
    scalar_sde q;
    scalar_sde_init(&q, a, 0, ND_DIFFUSION_CONSTANT, sigma, ND_SDE_SRA, ND_SDE_ADDITIVE, h);
    q.o.dW_in = dW;
    q.o.dZ_in = dZ;
    double t[2] = {0.0, 1.0};
    CHECK(nd_sdeint_f64(&q.p, B, 1, y0, 2, t, &q.o, ys, NULL, NULL, NULL) == ND_OK);
    double err = 0;
    for (int64_t b = 0; b < B; ++b)
        err += fabs(ys[B + b] - x[b]);
    free(dW);
    free(dZ);
    free(x);
    free(y0);
    free(ys);
    return err / (double)B;
}

static void test_sra_linear_exact_path(void)
{
    /* a linear drift leaves only the order-2 terms of the scheme: at least 1.5 */
    double h[4], err[4];
    for (int i = 0; i < 4; ++i) {
        h[i] = ldexp(1.0, -2 - i);
        err[i] = sra_linear_error(h[i], 1000);
    }
    CHECK(fit_order(h, err, 4) > 1.4);
    CHECK(err[3] < 1e-3);
}

/* Ornstein-Uhlenbeck dX = theta (mu - X) dt + sigma dW with Euler-Maruyama: the sample moments
 * match those of the scheme's own recursion, X' = (1 - theta h) X + theta mu h + sigma dW. */
static void test_ou_moments(void)
{
    const double theta = 2.0, mu = 0.5, sigma = 0.8, h = 0.05;
    const int64_t B = 20000;
    scalar_sde q;
    scalar_sde_init(&q, -theta, theta * mu, ND_DIFFUSION_CONSTANT, sigma, ND_SDE_EULER_MARUYAMA, ND_SDE_ADDITIVE, h);
    q.o.seed = 3;
    double t[3] = {0.0, 0.5, 1.0};
    double *y0 = malloc(B * sizeof(double)), *ys = malloc(3 * B * sizeof(double));
    for (int64_t b = 0; b < B; ++b)
        y0[b] = 2.0;
    nd_sde_stats st;
    CHECK(nd_sdeint_f64(&q.p, B, 1, y0, 3, t, &q.o, ys, NULL, NULL, &st) == ND_OK);
    CHECK(st.steps == 20 && st.nfev == 20 && st.ngev == 0);
    double mean = 0, var = 0;
    for (int64_t b = 0; b < B; ++b)
        mean += ys[2 * B + b];
    mean /= (double)B;
    for (int64_t b = 0; b < B; ++b)
        var += (ys[2 * B + b] - mean) * (ys[2 * B + b] - mean);
    var /= (double)(B - 1);
    const double r = 1 - theta * h;
    const double m_exact = mu + (2.0 - mu) * pow(r, 20), v_exact = sigma * sigma * h * (1 - pow(r, 40)) / (1 - r * r);
    CHECK_CLOSE(mean, m_exact, 4 * sqrt(v_exact / (double)B));
    CHECK_CLOSE(var, v_exact, 4 * v_exact * sqrt(2.0 / (double)B));
    free(y0);
    free(ys);
}

/* An MLP drift (GEMM per block) with geometric noise on 150 samples with shuffled ids: each
 * sample's path is the same bits alone and in the batch, at one and two threads. */
static void test_sample_independence(void)
{
    enum { B = 150, D = 3, H = 16 };
    static double W1[D * H], W2[H * D], b1[H], y0[B * D], ys[2 * 2 * B * D], one[2 * 2 * D], scale[D];
    static uint64_t ids[B];
    nd_test_fill(W1, D * H, -0.5, 0.5);
    nd_test_fill(W2, H * D, -0.5, 0.5);
    nd_test_fill(b1, H, -0.1, 0.1);
    nd_test_fill(y0, B * D, -1, 1);
    nd_test_fill(scale, D, 0.1, 0.4);
    for (int b = 0; b < B; ++b)
        ids[b] = (uint64_t)((b * 37 + 11) % B) + 1000;
    nd_field f = {.kind = ND_FIELD_MLP, .dim = D, .n_layers = 2, .widths = {D, H, D}, .weights = {W1, W2},
                  .biases = {b1, NULL}, .acts = {2, 0}};
    nd_diffusion g = {.kind = ND_DIFFUSION_LINEAR, .dim = D, .m = D, .scale = scale};
    nd_sde_problem_f64 p = {.field = &f, .diffusion = &g};
    nd_sde_opts o;
    nd_sde_opts_default(&o);
    o.dt = 0.01;
    o.seed = 12345;
    o.method = ND_SDE_MILSTEIN;
    double t[3] = {0.0, 0.3, 0.5};
    for (int threads = 1; threads <= 2; ++threads) {
        nd_set_threads(threads);
        o.ids = ids;
        CHECK(nd_sdeint_f64(&p, B, D, y0, 3, t, &o, ys, NULL, NULL, NULL) == ND_OK);
        int same = 1;
        for (int b = 0; b < B; b += 7) {
            o.ids = ids + b;
            CHECK(nd_sdeint_f64(&p, 1, D, y0 + b * D, 3, t, &o, one, NULL, NULL, NULL) == ND_OK);
            for (int r = 0; r < 3; ++r)
                same &= memcmp(one + r * D, ys + (r * B + b) * D, D * sizeof(double)) == 0;
        }
        CHECK(same);
    }
    nd_set_threads(1);
}

static void test_float32_and_recorded_path(void)
{
    /* The same problem in float with the increments recorded, then replayed: the same bits. */
    enum { B = 70 };
    float A[1] = {-1.0f}, s[1] = {0.5f}, y0[B], ys[2 * B], ys2[2 * B], dW[100 * B];
    for (int b = 0; b < B; ++b)
        y0[b] = (float)b / B;
    nd_field f = {.kind = ND_FIELD_LINEAR, .dim = 1, .A = A};
    nd_diffusion g = {.kind = ND_DIFFUSION_LINEAR, .dim = 1, .m = 1, .scale = s};
    nd_sde_problem_f32 p = {.field = &f, .diffusion = &g};
    nd_sde_opts o;
    nd_sde_opts_default(&o);
    o.dt = 0.01;
    o.seed = 5;
    o.dW_out = dW;
    double t[2] = {0.0, 1.0};
    CHECK(nd_sdeint_f32(&p, B, 1, y0, 2, t, &o, ys, NULL, NULL, NULL) == ND_OK);
    o.dW_out = NULL;
    o.dW_in = dW;
    o.seed = 6; /* ignored: the path is given */
    CHECK(nd_sdeint_f32(&p, B, 1, y0, 2, t, &o, ys2, NULL, NULL, NULL) == ND_OK);
    CHECK(memcmp(ys, ys2, sizeof ys) == 0);
    /* increments of a path have the variance of dt */
    double v = 0;
    for (int i = 0; i < 100 * B; ++i)
        v += (double)dW[i] * dW[i];
    CHECK_CLOSE(v / (100 * B), 0.01, 0.01 * 5 * sqrt(2.0 / (100 * B)));
}

/* Callbacks: dX = X^2 dt + 0.1 dW blows up before t = 1 from X0 = 2 but not from X0 = -1. */
static int square_drift(void *ctx, double t, int64_t rows, const double *y, double *dy)
{
    int *calls = ctx;
    ++*calls;
    for (int64_t r = 0; r < rows; ++r)
        dy[r] = y[r] * y[r];
    return ND_OK;
}

static int small_noise(void *ctx, double t, int64_t rows, const double *y, double *g)
{
    for (int64_t r = 0; r < rows; ++r)
        g[r] = 0.1;
    return ND_OK;
}

static void test_failed_sample_leaves_others(void)
{
    int calls = 0;
    nd_sde_problem_f64 p = {.drift = square_drift, .drift_ctx = &calls, .diffusion_fn = small_noise};
    nd_sde_opts o;
    nd_sde_opts_default(&o);
    o.dt = 0.01;
    double t[3] = {0.0, 0.5, 1.0}, y0[3] = {-1.0, 2.0, -0.5}, ys[9], ts[3];
    int32_t status[3];
    nd_sde_stats st;
    CHECK(nd_sdeint_f64(&p, 3, 1, y0, 3, t, &o, ys, status, ts, &st) == ND_ERR_NONFINITE);
    CHECK(st.failed == 1 && calls == 100);
    CHECK(status[0] == ND_OK && status[1] == ND_ERR_NONFINITE && status[2] == ND_OK);
    CHECK(isfinite(ys[6]) && isnan(ys[7]) && isfinite(ys[8]));
    CHECK(ts[1] > 0.4 && ts[1] < 0.8 && ts[0] == 1.0);
    /* the others are what they are without the failing sample */
    double y1[2] = {-1.0, -0.5}, ys1[6];
    uint64_t ids[2] = {0, 2};
    o.ids = ids;
    CHECK(nd_sdeint_f64(&p, 2, 1, y1, 3, t, &o, ys1, NULL, NULL, NULL) == ND_OK);
    CHECK(ys1[4] == ys[6] && ys1[5] == ys[8]);
}

/* Derivative-free Milstein (callback g) against the analytic one (built-in) on the same path. */
static int geometric_noise(void *ctx, double t, int64_t rows, const double *y, double *g)
{
    for (int64_t r = 0; r < rows; ++r)
        g[r] = 0.7 * y[r];
    return ND_OK;
}

static void test_milstein_forms_agree(void)
{
    enum { B = 500 };
    double y0[B], ys[2 * B], ys2[2 * B];
    for (int b = 0; b < B; ++b)
        y0[b] = 1.0;
    scalar_sde q;
    scalar_sde_init(&q, 0.3, 0, ND_DIFFUSION_LINEAR, 0.7, ND_SDE_MILSTEIN, ND_SDE_DIAGONAL, 1e-3);
    nd_sde_problem_f64 free_form = {.field = &q.f, .diffusion_fn = geometric_noise};
    double t[2] = {0.0, 1.0};
    CHECK(nd_sdeint_f64(&q.p, B, 1, y0, 2, t, &q.o, ys, NULL, NULL, NULL) == ND_OK);
    nd_sde_stats st;
    CHECK(nd_sdeint_f64(&free_form, B, 1, y0, 2, t, &q.o, ys2, NULL, NULL, &st) == ND_OK);
    CHECK(st.ngev == 2000);
    /* for linear g the two forms agree up to O(h^1.5) per step */
    double worst = 0;
    for (int b = 0; b < B; ++b)
        worst = fmax(worst, fabs(ys[B + b] - ys2[B + b]) / fabs(ys[B + b]));
    CHECK(worst < 0.05);
}

/* General noise with a constant [d, m] matrix: the increments of y are sigma dW. */
static void test_general_noise(void)
{
    enum { B = 3, D = 2, M = 3 };
    double A[D * D] = {0}, sigma[D * M] = {1, 2, 3, -1, 0, 0.5}, y0[B * D] = {0}, ys[2 * B * D], dW[B * M];
    nd_field f = {.kind = ND_FIELD_LINEAR, .dim = D, .A = A};
    nd_diffusion g = {.kind = ND_DIFFUSION_CONSTANT, .dim = D, .m = M, .sigma = sigma};
    nd_sde_problem_f64 p = {.field = &f, .diffusion = &g};
    nd_sde_opts o;
    nd_sde_opts_default(&o);
    o.dt = 0.1;
    o.noise = ND_SDE_GENERAL;
    o.m = M;
    o.dW_out = dW;
    double t[2] = {0.0, 0.1};
    CHECK(nd_sdeint_f64(&p, B, D, y0, 2, t, &o, ys, NULL, NULL, NULL) == ND_OK);
    for (int b = 0; b < B; ++b)
        for (int i = 0; i < D; ++i) {
            double s = 0;
            for (int k = 0; k < M; ++k)
                s += sigma[i * M + k] * dW[b * M + k];
            CHECK_CLOSE(ys[B * D + b * D + i], s, 1e-15);
        }
}

/* The scattered generators: a block's pair is nd_rng_normal_fill's normals 2k and 2k + 1; both precisions
 * give standard normals (moments of 2^18 and 2^19 draws) and the float ones stay below their bound. */
static void test_normal_generators(void)
{
    enum { N = 1 << 17, ROWS = 8, BLOCKS = N / ROWS };
    static uint64_t streams[ROWS];
    static double pairs[2 * N], fill[128];
    static float quads[4 * N];
    for (int r = 0; r < ROWS; ++r)
        streams[r] = (uint64_t)r + ((uint64_t)1 << 40);
    nd_rng_normal_pairs_rows(42, ROWS, streams, BLOCKS, 3, pairs);
    nd_rng_normal_fill(42, ((uint64_t)1 << 40) + 5, 6, 128, fill);
    int same = 1;
    for (int q = 0; q < 64; ++q)
        same &= pairs[q * ROWS + 5] == fill[2 * q] && pairs[(BLOCKS + q) * ROWS + 5] == fill[2 * q + 1];
    CHECK(same);
    nd_rng_normal_quads_rows(42, ROWS, streams, BLOCKS, 3, quads);
    const int64_t count[2] = {2 * N, 4 * N};
    double biggest = 0;
    for (int w = 0; w < 2; ++w) {
        double m = 0, v = 0, k = 0;
        for (int64_t i = 0; i < count[w]; ++i) {
            const double x = w ? (double)quads[i] : pairs[i];
            m += x;
            v += x * x;
            k += x * x * x * x;
            if (w)
                biggest = fmax(biggest, fabs(x));
        }
        const double n = (double)count[w];
        CHECK_CLOSE(m / n, 0.0, 5 / sqrt(n));
        CHECK_CLOSE(v / n, 1.0, 5 * sqrt(2 / n));
        CHECK_CLOSE(k / n, 3.0, 5 * sqrt(96 / n));
    }
    CHECK(biggest < 5.77 && biggest > 4.0);
}

/* Backpropagation through Euler-Maruyama on a fixed path against central differences of the
 * loss sum_j <c_j, ys[j]>: an MLP drift with a linear diffusion, and a Linear drift with a
 * general constant diffusion. */
enum { GB = 3, GD = 2, GH = 4, GNT = 3 };
static double g_params[GD * GH + GH + GH * GD], g_scale[2 * GD], g_sigma[GD * 3], g_y0[GB * GD], g_c[GNT * GB * GD];
static double g_dW[16 * GB * 3], g_t[GNT] = {0.0, 0.3, 0.5};
static int g_general;

static void grad_problem(nd_field *f, nd_diffusion *g, nd_sde_opts *o)
{
    nd_sde_opts_default(o);
    o->dt = 0.05;
    o->dW_in = g_dW;
    if (!g_general) {
        *f = (nd_field){.kind = ND_FIELD_MLP, .dim = GD, .n_layers = 2, .widths = {GD, GH, GD},
                        .weights = {g_params, g_params + GD * GH + GH}, .biases = {g_params + GD * GH, NULL},
                        .acts = {ND_ACT_TANH, ND_ACT_IDENTITY}};
        *g = (nd_diffusion){.kind = ND_DIFFUSION_LINEAR, .dim = GD, .m = GD, .scale = g_scale, .offset = g_scale + GD};
    } else {
        *f = (nd_field){.kind = ND_FIELD_LINEAR, .dim = GD, .A = g_params, .b = g_params + GD * GD};
        *g = (nd_diffusion){.kind = ND_DIFFUSION_CONSTANT, .dim = GD, .m = 3, .sigma = g_sigma};
        o->noise = ND_SDE_GENERAL;
        o->m = 3;
    }
}

static double grad_loss(void)
{
    nd_field f;
    nd_diffusion g;
    nd_sde_opts o;
    grad_problem(&f, &g, &o);
    nd_sde_problem_f64 p = {.field = &f, .diffusion = &g};
    double ys[GNT * GB * GD], loss = 0;
    if (nd_sdeint_f64(&p, GB, GD, g_y0, GNT, g_t, &o, ys, NULL, NULL, NULL) != ND_OK)
        return NAN;
    for (int i = 0; i < GNT * GB * GD; ++i)
        loss += g_c[i] * ys[i];
    return loss;
}

static void test_backprop_finite_differences(void)
{
    for (g_general = 0; g_general <= 1; ++g_general) {
        nd_test_fill(g_params, (int)(sizeof g_params / sizeof g_params[0]), -0.6, 0.6);
        nd_test_fill(g_scale, 2 * GD, 0.1, 0.5);
        nd_test_fill(g_sigma, GD * 3, -0.5, 0.5);
        nd_test_fill(g_y0, GB * GD, -1, 1);
        nd_test_fill(g_c, GNT * GB * GD, -1, 1);
        nd_test_fill(g_dW, 16 * GB * 3, -0.3, 0.3);
        nd_field f;
        nd_diffusion g;
        nd_sde_opts o;
        grad_problem(&f, &g, &o);
        size_t len;
        CHECK(nd_sde_backprop_workspace_len(&f, GB, GD, GNT, g_t, o.dt, &len) == ND_OK);
        double *work = malloc(len * sizeof(double)), y0bar[GB * GD], dfield[64], dg[16];
        CHECK(nd_sde_backprop_f64(&f, &g, o.noise, GB, GD, g_y0, GNT, g_t, o.dt, g_dW, g_c, y0bar, dfield, dg, work) ==
              ND_OK);
        const int P = (int)nd_field_param_count(&f);
        CHECK(nd_test_fd_error(grad_loss, g_y0, y0bar, GB * GD, 1e-6, 1e-3) < 1e-6);
        CHECK(nd_test_fd_error(grad_loss, g_params, dfield, P, 1e-6, 1e-3) < 1e-6);
        if (g_general)
            CHECK(nd_test_fd_error(grad_loss, g_sigma, dg, GD * 3, 1e-6, 1e-3) < 1e-6);
        else
            CHECK(nd_test_fd_error(grad_loss, g_scale, dg, 2 * GD, 1e-6, 1e-3) < 1e-6);
        free(work);
    }
}

static void test_argument_errors(void)
{
    double y0[1] = {0}, ys[2], t[2] = {0, 1};
    scalar_sde q;
    scalar_sde_init(&q, -1, 0, ND_DIFFUSION_LINEAR, 1, ND_SDE_EULER_MARUYAMA, ND_SDE_DIAGONAL, -0.1);
    nd_sde_problem_f64 *p = &q.p;
    nd_sde_opts *o = &q.o;
    CHECK(nd_sdeint_f64(p, 1, 1, y0, 2, t, o, ys, NULL, NULL, NULL) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "dt") == 0 && nd_last_error()->value == -0.1);
    o->dt = 0.1;
    o->method = ND_SDE_SRA;
    CHECK(nd_sdeint_f64(p, 1, 1, y0, 2, t, o, ys, NULL, NULL, NULL) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "method") == 0);
    o->noise = ND_SDE_ADDITIVE; /* sra applies, but a Linear diffusion is not additive */
    CHECK(nd_sdeint_f64(p, 1, 1, y0, 2, t, o, ys, NULL, NULL, NULL) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "g") == 0);
    o->method = ND_SDE_EULER_MARUYAMA;
    o->noise = ND_SDE_DIAGONAL;
    double tb[3] = {0, 1, 1};
    CHECK(nd_sdeint_f64(p, 1, 1, y0, 3, tb, o, ys, NULL, NULL, NULL) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "t") == 0);
    q.s[0] = NAN;
    CHECK(nd_sdeint_f64(p, 1, 1, y0, 2, t, o, ys, NULL, NULL, NULL) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "g") == 0);
    q.s[0] = 1;
    o->noise = 7;
    CHECK(nd_sdeint_f64(p, 1, 1, y0, 2, t, o, ys, NULL, NULL, NULL) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "noise") == 0);
    o->noise = ND_SDE_DIAGONAL;
    CHECK(nd_sdeint_f64(p, 1, 2, y0, 2, t, o, ys, NULL, NULL, NULL) == ND_ERR_ARG); /* field of size 1 */
    CHECK(strcmp(nd_last_error()->arg, "y0") == 0);
    /* round-half-away step counts: 0.25 / 0.1 = 2.5 -> 3 */
    int64_t steps;
    double tq[3] = {0, 0.25, 0.5};
    CHECK(nd_sde_steps(3, tq, 0.1, &steps) == ND_OK && steps == 6);
    CHECK(nd_sde_method_supports(ND_SDE_MILSTEIN, ND_SDE_ADDITIVE) && !nd_sde_method_supports(ND_SDE_SRA, ND_SDE_DIAGONAL));
}

ND_TEST_MAIN(test_gbm_strong_orders, test_sra_linear_exact_path, test_ou_moments, test_sample_independence,
             test_float32_and_recorded_path, test_failed_sample_leaves_others, test_milstein_forms_agree,
             test_general_noise, test_normal_generators, test_backprop_finite_differences, test_argument_errors)

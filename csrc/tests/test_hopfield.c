/* The fused Hopfield kernel: forward against a direct softmax over several tiles and row
 * blocks (large beta included), and the backward against central finite differences. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nd_hopfield.h"
#include "nd_status.h"
#include "nd_test.h"

static void direct(int64_t B, int64_t N, int64_t d, int64_t dv, double beta, const double *q, const double *k,
                   const double *v, double *out, double *lse)
{
    double *s = malloc(sizeof(double) * N);
    for (int64_t b = 0; b < B; ++b) {
        double m = -INFINITY;
        for (int64_t j = 0; j < N; ++j) {
            double x = 0;
            for (int64_t c = 0; c < d; ++c)
                x += q[b * d + c] * k[j * d + c];
            s[j] = beta * x;
            m = s[j] > m ? s[j] : m;
        }
        double z = 0;
        for (int64_t j = 0; j < N; ++j)
            z += exp(s[j] - m);
        lse[b] = m + log(z);
        for (int64_t c = 0; c < dv; ++c) {
            double acc = 0;
            for (int64_t j = 0; j < N; ++j)
                acc += exp(s[j] - lse[b]) * v[j * dv + c];
            out[b * dv + c] = acc;
        }
    }
    free(s);
}

static void check_forward(int64_t B, int64_t N, int64_t d, int64_t dv, double beta, int own_values)
{
    double *q = malloc(sizeof(double) * B * d), *k = malloc(sizeof(double) * N * d);
    double *v = malloc(sizeof(double) * N * (own_values ? dv : d));
    double *o1 = malloc(sizeof(double) * B * dv), *o2 = malloc(sizeof(double) * B * dv);
    double *l1 = malloc(sizeof(double) * B), *l2 = malloc(sizeof(double) * B);
    nd_test_fill(q, (int)(B * d), -1, 1);
    nd_test_fill(k, (int)(N * d), -1, 1);
    nd_test_fill(v, (int)(N * dv), -1, 1);
    size_t len;
    CHECK(nd_hopfield_workspace_len(B, d, dv, 0, &len) == ND_OK);
    double *work = malloc(sizeof(double) * len);
    CHECK(nd_hopfield_forward_f64(B, N, d, dv, beta, q, k, own_values ? v : NULL, o1, l1, work) == ND_OK);
    direct(B, N, d, dv, beta, q, k, own_values ? v : k, o2, l2);
    double worst = 0;
    for (int64_t i = 0; i < B * dv; ++i)
        worst = fmax(worst, fabs(o1[i] - o2[i]));
    for (int64_t i = 0; i < B; ++i)
        worst = fmax(worst, fabs(l1[i] - l2[i]) / fmax(1, fabs(l2[i])));
    if (worst > 1e-12)
        fprintf(stderr, "hopfield forward B %lld N %lld beta %g: %g\n", (long long)B, (long long)N, beta, worst);
    CHECK(worst <= 1e-12);
    free(q), free(k), free(v), free(o1), free(o2), free(l1), free(l2), free(work);
}

static void test_forward(void)
{
    check_forward(3, 7, 4, 4, 1.0, 0);
    check_forward(300, 1300, 16, 16, 1.0, 0); /* three tiles, two row blocks */
    check_forward(5, 1100, 8, 3, 0.01, 1);
    check_forward(4, 600, 8, 8, 100.0, 0);    /* large beta: no overflow */
    check_forward(2, 1, 3, 3, 2.0, 0);        /* one pattern: out = that pattern */
}

enum { GB = 3, GN = 9, GD = 4, GV = 2 };
static double Q[GB * GD], K[GN * GD], V[GN * GV], WO[GB * GV], WL[GB], BETA = 1.7;
static int SHARED;

static double loss(void)
{
    double out[GB * GD], lse[GB], work[4096];
    const int64_t dv = SHARED ? GD : GV;
    CHECK(nd_hopfield_forward_f64(GB, GN, GD, dv, BETA, Q, K, SHARED ? NULL : V, out, lse, work) == ND_OK);
    double l = 0;
    for (int i = 0; i < GB * dv; ++i)
        l += WO[i % (GB * GV)] * out[i] * (1 + 0.1 * i);
    for (int i = 0; i < GB; ++i)
        l += WL[i] * lse[i];
    return l;
}

static void test_backward(void)
{
    for (SHARED = 0; SHARED < 2; ++SHARED) {
        nd_test_fill(Q, GB * GD, -1, 1);
        nd_test_fill(K, GN * GD, -1, 1);
        nd_test_fill(V, GN * GV, -1, 1);
        nd_test_fill(WO, GB * GV, -1, 1);
        nd_test_fill(WL, GB, -1, 1);
        const int64_t dv = SHARED ? GD : GV;
        double out[GB * GD], lse[GB], work[1 << 16], dout[GB * GD];
        for (int i = 0; i < GB * dv; ++i)
            dout[i] = WO[i % (GB * GV)] * (1 + 0.1 * i);
        CHECK(nd_hopfield_forward_f64(GB, GN, GD, dv, BETA, Q, K, SHARED ? NULL : V, out, lse, work) == ND_OK);
        double dq[GB * GD], dk[GN * GD], dvv[GN * GV], dbeta;
        CHECK(nd_hopfield_backward_f64(GB, GN, GD, dv, BETA, Q, K, SHARED ? NULL : V, out, lse, dout, WL, dq, dk,
                                       SHARED ? NULL : dvv, &dbeta, work) == ND_OK);
        double e = nd_test_fd_error(loss, Q, dq, GB * GD, 1e-6, 1e-3);
        e = fmax(e, nd_test_fd_error(loss, K, dk, GN * GD, 1e-6, 1e-3));
        if (!SHARED)
            e = fmax(e, nd_test_fd_error(loss, V, dvv, GN * GV, 1e-6, 1e-3));
        e = fmax(e, nd_test_fd_error(loss, &BETA, &dbeta, 1, 1e-6, 1e-3));
        if (e >= 1e-6)
            fprintf(stderr, "hopfield backward shared %d: fd error %g\n", SHARED, e);
        CHECK(e < 1e-6);
    }
    double x = 0;
    CHECK(nd_hopfield_forward_f64(1, 0, 1, 1, 1.0, &x, &x, NULL, &x, &x, &x) == ND_ERR_ARG); /* no patterns */
    CHECK(nd_hopfield_forward_f64(1, 1, 1, 1, 0.0, &x, &x, NULL, &x, &x, &x) == ND_ERR_ARG); /* beta 0 */
    CHECK(strcmp(nd_last_error()->arg, "beta") == 0);
    CHECK(nd_hopfield_check_beta(INFINITY) == ND_ERR_ARG && nd_hopfield_check_beta(NAN) == ND_ERR_ARG);
    CHECK(nd_hopfield_check_beta(1e-300) == ND_OK);
}

ND_TEST_MAIN(test_forward, test_backward)

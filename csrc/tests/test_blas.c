/* LAPACK LU wrappers of nd_blas.h (getrf/getrs, real and complex, both precisions): solves of
 * row-major systems against the products that built them, several right-hand sides, singular
 * matrices, empty and invalid sizes. */
#include <math.h>
#include <string.h>

#include "nd_blas.h"
#include "nd_status.h"
#include "nd_test.h"

#define N 7

/* A well-conditioned random row-major matrix (diagonal boosted) and b = A x for known x. */
static void make_system(double *a, double *x, double *b, int nrhs)
{
    nd_test_fill(a, N * N, -1, 1);
    for (int i = 0; i < N; ++i)
        a[i * N + i] += 3.0;
    nd_test_fill(x, N * nrhs, -2, 2);
    for (int k = 0; k < nrhs; ++k)
        for (int r = 0; r < N; ++r) {
            double s = 0;
            for (int c = 0; c < N; ++c)
                s += a[r * N + c] * x[k * N + c];
            b[k * N + r] = s;
        }
}

static void test_real_solve_f64(void)
{
    double a[N * N], x[2 * N], b[2 * N];
    int ipiv[N];
    make_system(a, x, b, 2);
    CHECK(nd_getrf_f64(N, a, ipiv) == ND_OK);
    CHECK(nd_getrs_f64(N, 2, a, ipiv, b) == ND_OK);
    for (int i = 0; i < 2 * N; ++i)
        CHECK_CLOSE(b[i], x[i], 1e-13);
}

static void test_real_solve_f32(void)
{
    double a[N * N], x[N], b[N];
    float af[N * N], bf[N];
    int ipiv[N];
    make_system(a, x, b, 1);
    for (int i = 0; i < N * N; ++i)
        af[i] = (float)a[i];
    for (int i = 0; i < N; ++i)
        bf[i] = (float)b[i];
    CHECK(nd_getrf_f32(N, af, ipiv) == ND_OK);
    CHECK(nd_getrs_f32(N, 1, af, ipiv, bf) == ND_OK);
    for (int i = 0; i < N; ++i)
        CHECK_CLOSE(bf[i], x[i], 2e-5);
}

/* (A + iB) z = w with z known, as interleaved pairs; the same system checked in float. */
static void test_complex_solve(void)
{
    double a[2 * N * N], z[2 * N], w[2 * N];
    nd_test_fill(a, 2 * N * N, -1, 1);
    for (int i = 0; i < N; ++i)
        a[2 * (i * N + i)] += 3.0;
    nd_test_fill(z, 2 * N, -2, 2);
    for (int r = 0; r < N; ++r) {
        double re = 0, im = 0;
        for (int c = 0; c < N; ++c) {
            double ar = a[2 * (r * N + c)], ai = a[2 * (r * N + c) + 1];
            re += ar * z[2 * c] - ai * z[2 * c + 1];
            im += ar * z[2 * c + 1] + ai * z[2 * c];
        }
        w[2 * r] = re;
        w[2 * r + 1] = im;
    }
    float af[2 * N * N], wf[2 * N];
    for (int i = 0; i < 2 * N * N; ++i)
        af[i] = (float)a[i];
    for (int i = 0; i < 2 * N; ++i)
        wf[i] = (float)w[i];
    int ipiv[N];
    CHECK(nd_getrf_complex_f64(N, a, ipiv) == ND_OK);
    CHECK(nd_getrs_complex_f64(N, 1, a, ipiv, w) == ND_OK);
    for (int i = 0; i < 2 * N; ++i)
        CHECK_CLOSE(w[i], z[i], 1e-13);
    CHECK(nd_getrf_complex_f32(N, af, ipiv) == ND_OK);
    CHECK(nd_getrs_complex_f32(N, 1, af, ipiv, wf) == ND_OK);
    for (int i = 0; i < 2 * N; ++i)
        CHECK_CLOSE(wf[i], z[i], 2e-5);
}

/* A non-symmetric matrix: the row-major convention is the one solved, not its transpose. */
static void test_row_major_orientation(void)
{
    double a[4] = {1, 2, 0, 1}, b[2] = {5, 1}; /* x + 2y = 5, y = 1 -> x = 3 */
    int ipiv[2];
    CHECK(nd_getrf_f64(2, a, ipiv) == ND_OK);
    CHECK(nd_getrs_f64(2, 1, a, ipiv, b) == ND_OK);
    CHECK_CLOSE(b[0], 3.0, 1e-15);
    CHECK_CLOSE(b[1], 1.0, 1e-15);
}

static void test_singular_and_sizes(void)
{
    double a[9] = {1, 2, 3, 2, 4, 6, 0, 1, 1}, c[2] = {0, 0};
    float af[4] = {0, 0, 0, 0};
    int ipiv[3];
    CHECK(nd_getrf_f64(3, a, ipiv) == ND_ERR_SINGULAR);
    CHECK(nd_getrf_f32(2, af, ipiv) == ND_ERR_SINGULAR);
    CHECK(nd_getrf_complex_f64(1, c, ipiv) == ND_ERR_SINGULAR);
    CHECK(nd_getrf_f64(0, a, ipiv) == ND_OK);
    CHECK(nd_getrs_f64(0, 3, a, ipiv, a) == ND_OK);
    nd_clear_error();
    CHECK(nd_getrf_f64(-1, a, ipiv) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "n") == 0);
    CHECK(nd_getrs_f64(2, -1, a, ipiv, a) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "nrhs") == 0);
    CHECK(nd_getrf_f64((int64_t)INT_MAX + 1, a, ipiv) == ND_ERR_OVERFLOW);
}

ND_TEST_MAIN(test_real_solve_f64, test_real_solve_f32, test_complex_solve, test_row_major_orientation,
             test_singular_and_sizes)

/* CBLAS from OpenBLAS, whichever build provides it.
 *
 * The scipy-openblas32 wheel exports every symbol with a scipy_ prefix; when the build
 * uses it (ND_BLAS_SCIPY_PREFIX) the plain names used in neurodyn are mapped here, so
 * the kernels are written once against standard CBLAS. */
#ifndef ND_BLAS_H
#define ND_BLAS_H

#include <stdint.h>
#include <limits.h>

#ifdef ND_BLAS_SCIPY_PREFIX
#define cblas_sgemm scipy_cblas_sgemm
#define cblas_dgemm scipy_cblas_dgemm
#define cblas_sgemv scipy_cblas_sgemv
#define cblas_dgemv scipy_cblas_dgemv
#define cblas_saxpy scipy_cblas_saxpy
#define cblas_daxpy scipy_cblas_daxpy
#define cblas_sdot scipy_cblas_sdot
#define cblas_ddot scipy_cblas_ddot
#define openblas_set_num_threads scipy_openblas_set_num_threads
#define openblas_get_num_threads scipy_openblas_get_num_threads
#define openblas_get_config scipy_openblas_get_config
#define openblas_get_corename scipy_openblas_get_corename
#endif

#include <cblas.h>

/* BLAS takes 32-bit sizes: kernels check their dimensions with this before any call. */
static inline int nd_blas_dims_ok(int64_t a, int64_t b, int64_t c)
{
    return a >= 0 && b >= 0 && c >= 0 && a <= INT_MAX && b <= INT_MAX && c <= INT_MAX;
}

/* Type-generic GEMM on row-major matrices: C = alpha * op(A) op(B) + beta * C.
 *
 * A large product is cut into fixed blocks of C's rows (or columns), chosen from the shapes
 * (and whether OpenBLAS's kernels for this CPU have a small-matrix path, nd_blas.c), never from
 * the thread count, each a one-thread BLAS call; the kernel threads share the blocks. Every element is
 * then computed by the same call whatever the thread count, so results keep their bits,
 * which OpenBLAS's own threading does not promise (its threaded GEMM rounded an SNN's weight
 * gradient differently, and it rounds a row differently in calls of different sizes).
 * OpenBLAS itself stays at one thread. */
void nd_gemm_f32(int transa, int transb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
void nd_gemm_f64(int transa, int transb, int64_t m, int64_t n, int64_t k, double alpha, const double *a,
                 int64_t lda, const double *b, int64_t ldb, double beta, double *c, int64_t ldc);

/* at [cols, rows] = a^T for a [rows, cols] of row stride lda. */
void nd_transpose_f32(int64_t rows, int64_t cols, const float *a, int64_t lda, float *at);
void nd_transpose_f64(int64_t rows, int64_t cols, const double *a, int64_t lda, double *at);

/* C = op(A) op(B) + bias, bias [n] added to every row: each block of C is seeded with the bias
 * just before its product accumulates onto it (beta = 1), so the seeded rows are still in cache
 * (the seeding pass over a whole C cost 8% of a Liquid forward); the same blocks and calls as
 * nd_gemm_*, so the same bits as seeding C first. */
void nd_gemm_seeded_f32(int transa, int transb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                        const float *b, int64_t ldb, const float *bias, float *c, int64_t ldc);
void nd_gemm_seeded_f64(int transa, int transb, int64_t m, int64_t n, int64_t k, const double *a, int64_t lda,
                        const double *b, int64_t ldb, const double *bias, double *c, int64_t ldc);

/* ---- LU factorisation and solves: LAPACK's getrf/getrs from the same OpenBLAS ----------- *
 *
 * a is a row-major n x n matrix, factorised in place with partial pivoting (ipiv: n pivots).
 * LAPACK works on columns, so it factorises a's transpose, P A^T = L U; nd_getrs_* then
 * solves the system of the row-major a itself, a x = b, by the transposed solve. b holds nrhs
 * right-hand sides one after another (n values each) and is overwritten by the solutions.
 * The _complex variants take n x n complex numbers stored as interleaved (real, imaginary)
 * pairs of the real type, as C99 complex and Fortran COMPLEX lay them out.
 *
 * getrf returns ND_OK, ND_ERR_SINGULAR when a pivot is exactly zero (the factors are
 * complete but U is singular: no solve with them), or ND_ERR_ARG/ND_ERR_OVERFLOW (with a
 * detail) for n < 0 or sizes beyond LAPACK's 32-bit integers. getrs never fails on factors
 * that getrf accepted. One call factorises or solves one matrix, on the calling thread. */
int nd_getrf_f32(int64_t n, float *a, int *ipiv);
int nd_getrf_f64(int64_t n, double *a, int *ipiv);
int nd_getrf_complex_f32(int64_t n, float *a, int *ipiv);
int nd_getrf_complex_f64(int64_t n, double *a, int *ipiv);
int nd_getrs_f32(int64_t n, int64_t nrhs, const float *lu, const int *ipiv, float *b);
int nd_getrs_f64(int64_t n, int64_t nrhs, const double *lu, const int *ipiv, double *b);
int nd_getrs_complex_f32(int64_t n, int64_t nrhs, const float *lu, const int *ipiv, float *b);
int nd_getrs_complex_f64(int64_t n, int64_t nrhs, const double *lu, const int *ipiv, double *b);

/* OpenBLAS's buffers. OpenBLAS takes a 32 MiB buffer for every thread that is inside a BLAS
 * call at the same time as others (kept for reuse), mapped at that thread's first such call,
 * and exits the process when the mapping fails ("Memory allocation still failed after 10
 * retries"). So that never happens inside a kernel, the address space is reserved ahead:
 * nd_blas_prepare maps the first buffer (at import: a failure is a MemoryError there), and
 * every kernel thread reserves room for its own when it is created (nd_blas_reserve: a thread
 * that cannot is not created); a BLAS call that raises the number of concurrent callers to a
 * new high releases one reservation just before OpenBLAS maps the buffer. ND_ERR_NOMEM or
 * ND_OK. */
int nd_blas_prepare(void);
int nd_blas_reserve(void);

/* OpenBLAS's own (global) thread count; n < 1 leaves it as is. The binding keeps it at 1:
 * parallel products go through nd_gemm_* blocks on the kernel threads instead. */
void nd_blas_set_num_threads(int n);
int nd_blas_get_num_threads(void);
const char *nd_blas_config(void);

#endif

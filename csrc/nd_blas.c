#include "nd_blas.h"
#include "nd_parallel.h"
#include "nd_poll.h"

void nd_blas_set_num_threads(int n)
{
    if (n > 0)
        openblas_set_num_threads(n);
}

int nd_blas_get_num_threads(void) { return openblas_get_num_threads(); }

const char *nd_blas_config(void) { return openblas_get_config(); }

/* ---- GEMM split over the kernel threads ----------------------------------------------- */

/* A product of at least this many multiply-adds (~50 us of work) is cut into blocks of
 * ND_GEMM_BLOCK rows (or columns) of C, each one BLAS call. The cut depends on the shapes
 * only, never on the thread count: OpenBLAS rounds a row differently depending on the size
 * of the call it is in, so blocks that moved with the count would change the bits. */
#define ND_GEMM_SPLIT_FLOPS (1 << 21)
#define ND_GEMM_BLOCK 256

/* A call's inner dimension is summed in slices of about this many multiply-adds (beta = 1
 * after the first slice), so that a product over a huge inner dimension (a weight gradient over
 * millions of rows) polls for Ctrl-C between slices (nd_poll.h). Slices depend on the shapes
 * only, like the blocks. */
#define ND_GEMM_SLICE_FLOPS ((int64_t)1 << 28)
#define ND_GEMM_MIN_SLICE 4096

static int64_t nd_gemm_slice(int64_t m, int64_t n, int64_t k)
{
    const int64_t mn = m * n > 0 ? m * n : 1, ks = ND_GEMM_SLICE_FLOPS / mn;
    return ks >= k ? k : (ks < ND_GEMM_MIN_SLICE ? ND_GEMM_MIN_SLICE : ks);
}

#define ND_GEMM_DEFINE(T, SFX, CBLAS)                                                                      \
    typedef struct {                                                                                     \
        int ta, tb, by_rows;                                                                             \
        int64_t m, n, k, lda, ldb, ldc;                                                                  \
        T alpha, beta;                                                                                   \
        const T *a, *b;                                                                                  \
        T *c;                                                                                            \
    } nd_gemm_job_##SFX;                                                                                 \
                                                                                                         \
    static void nd_gemm_call_##SFX(const nd_gemm_job_##SFX *j, int64_t m, int64_t n, const T *a, const T *b, \
                                   T *c)                                                                 \
    {                                                                                                    \
        const int64_t ks = nd_gemm_slice(m, n, j->k);                                                    \
        for (int64_t k0 = 0; k0 < j->k; k0 += ks) {                                                      \
            const int64_t kk = j->k - k0 < ks ? j->k - k0 : ks;                                          \
            if (k0 && nd_poll_work(m * n * ks))                                                          \
                return; /* stopped: the caller sees nd_poll_status() */                                  \
            CBLAS(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans,    \
                  (int)m, (int)n, (int)kk, j->alpha, a + (j->ta ? k0 * j->lda : k0), (int)j->lda,        \
                  b + (j->tb ? k0 : k0 * j->ldb), (int)j->ldb, k0 ? (T)1 : j->beta, c, (int)j->ldc);      \
        }                                                                                                \
        if (j->k == 0)                                                                                   \
            CBLAS(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans,    \
                  (int)m, (int)n, 0, j->alpha, a, (int)j->lda, b, (int)j->ldb, j->beta, c, (int)j->ldc); \
    }                                                                                                    \
                                                                                                         \
    /* Blocks [b0, b1): rows of C take rows of op(A); columns take columns of op(B). */                   \
    static void nd_gemm_range_##SFX(void *ctx, int64_t b0, int64_t b1)                                   \
    {                                                                                                    \
        const nd_gemm_job_##SFX *j = ctx;                                                                \
        const int64_t span = j->by_rows ? j->m : j->n;                                                   \
        for (int64_t blk = b0; blk < b1; ++blk) {                                                        \
            const int64_t lo = blk * ND_GEMM_BLOCK, hi = lo + ND_GEMM_BLOCK < span ? lo + ND_GEMM_BLOCK : span; \
            if (nd_poll_work((hi - lo) * (j->by_rows ? j->n : j->m) * j->k))                             \
                return;                                                                                  \
            if (j->by_rows)                                                                              \
                nd_gemm_call_##SFX(j, hi - lo, j->n, j->a + (j->ta ? lo : lo * j->lda), j->b,            \
                                   j->c + lo * j->ldc);                                                  \
            else                                                                                         \
                nd_gemm_call_##SFX(j, j->m, hi - lo, j->a, j->b + (j->tb ? lo * j->ldb : lo), j->c + lo); \
        }                                                                                                \
    }                                                                                                    \
                                                                                                         \
    void nd_gemm_##SFX(int transa, int transb, int64_t m, int64_t n, int64_t k, T alpha, const T *a,     \
                       int64_t lda, const T *b, int64_t ldb, T beta, T *c, int64_t ldc)                  \
    {                                                                                                    \
        nd_gemm_job_##SFX j = {transa, transb, m >= n, m, n, k, lda, ldb, ldc, alpha, beta, a, b, c};    \
        const double flops = (double)m * (double)n * (double)k;                                          \
        const int64_t span = j.by_rows ? m : n;                                                          \
        if (flops < ND_GEMM_SPLIT_FLOPS || span <= ND_GEMM_BLOCK) {                                      \
            nd_gemm_call_##SFX(&j, m, n, a, b, c);                                                       \
            return;                                                                                      \
        }                                                                                                \
        nd_parallel_for((span + ND_GEMM_BLOCK - 1) / ND_GEMM_BLOCK, 1, 1, nd_gemm_range_##SFX, &j);      \
    }

ND_GEMM_DEFINE(float, f32, cblas_sgemm)
ND_GEMM_DEFINE(double, f64, cblas_dgemm)

#include "nd_blas.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "nd_parallel.h"
#include "nd_poll.h"
#include "nd_status.h"

#include <stddef.h>
#include <stdlib.h>
#include <strings.h>

void nd_blas_set_num_threads(int n)
{
    if (n > 0)
        openblas_set_num_threads(n);
}

int nd_blas_get_num_threads(void) { return openblas_get_num_threads(); }

const char *nd_blas_config(void) { return openblas_get_config(); }

/* ---- OpenBLAS's buffers (see nd_blas.h) ------------------------------------------------ */

/* OpenBLAS 0.3's BUFFER_SIZE on x86-64 is 32 MiB (measured: the first call maps 32 MiB); a
 * reservation keeps a little more, so that releasing one always makes room for a buffer. */
#define ND_BLAS_BUFFER_BYTES ((size_t)33 << 20)
#define ND_BLAS_RESERVED_MAX 4096

static pthread_mutex_t nd_reserve_mu = PTHREAD_MUTEX_INITIALIZER;
static void *nd_reserved[ND_BLAS_RESERVED_MAX];
static int nd_nreserved;
static atomic_int nd_blas_inside;  /* threads inside a BLAS call now */
static atomic_int nd_blas_buffers; /* the most that ever were: OpenBLAS's buffers */

int nd_blas_reserve(void)
{
    /* PROT_NONE and no swap: address space only, which is what RLIMIT_AS counts */
    void *p = mmap(NULL, ND_BLAS_BUFFER_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return ND_ERR_NOMEM;
    pthread_mutex_lock(&nd_reserve_mu);
    const int kept = nd_nreserved < ND_BLAS_RESERVED_MAX;
    if (kept)
        nd_reserved[nd_nreserved++] = p;
    pthread_mutex_unlock(&nd_reserve_mu);
    if (!kept)
        munmap(p, ND_BLAS_BUFFER_BYTES);
    return ND_OK;
}

static void nd_blas_release(int count)
{
    pthread_mutex_lock(&nd_reserve_mu);
    for (; count > 0 && nd_nreserved > 0; --count)
        munmap(nd_reserved[--nd_nreserved], ND_BLAS_BUFFER_BYTES);
    pthread_mutex_unlock(&nd_reserve_mu);
}

/* Around every BLAS call: a new high of concurrent callers is a buffer OpenBLAS is about to map. */
static void nd_blas_enter(void)
{
    const int now = atomic_fetch_add(&nd_blas_inside, 1) + 1;
    int have = atomic_load(&nd_blas_buffers);
    while (now > have && !atomic_compare_exchange_weak(&nd_blas_buffers, &have, now))
        ;
    if (now > have)
        nd_blas_release(now - have);
}

static void nd_blas_leave(void) { atomic_fetch_sub(&nd_blas_inside, 1); }

int nd_blas_prepare(void)
{
    if (atomic_load(&nd_blas_buffers) > 0)
        return ND_OK;
    /* A product that maps the first buffer: OpenBLAS's SkylakeX kernels do products of up to
     * 100^3 multiply-adds without one (measured: a 100^3 product maps nothing, 101^3 maps
     * 32 MiB), so a small product left the buffer to the first real one. */
    enum { N = 128 };
    float *m = calloc(3 * N * N, sizeof *m);
    if (!m || nd_blas_reserve() != ND_OK) {
        free(m);
        return ND_ERR_NOMEM;
    }
    nd_blas_enter();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, m, N, m + N * N, N, 0.0f, m + 2 * N * N, N);
    nd_blas_leave();
    free(m);
    return ND_OK;
}

/* ---- GEMM split over the kernel threads ----------------------------------------------- */

/* A product of at least this many multiply-adds (~50 us of work) is cut into blocks of
 * nd_gemm_block rows (or columns) of C, each one BLAS call. The cut depends on the shapes
 * only, never on the thread count: OpenBLAS rounds a row differently depending on the size
 * of the call it is in, so blocks that moved with the count would change the bits. */
#define ND_GEMM_SPLIT_FLOPS (1 << 21)
#define ND_GEMM_BLOCK_MIN 256
#define ND_GEMM_BLOCK_MAX 1024

/* Products of up to this many multiply-adds run on OpenBLAS's small-matrix kernels where it has
 * them (the cores below, float and double: no packing, C written once). On those cores a product
 * of up to ND_GEMM_SMALL_MAX_MACS whose operands the path takes (not B transposed: its
 * column-major TN form is refused above 1200 elements of C) is cut into blocks that stay below
 * it, of at least ND_GEMM_SMALL_MIN_ROWS rows or ND_GEMM_SMALL_MIN_COLS columns (but the last). Measured on
 * SkylakeX kernels (float32 GFLOP/s, one call -> blocks): 256 x 64 x 64 79 -> 100, 128 x 128 x 256
 * 101 -> 117 in 16-row blocks, 1024 x 64 x 256 100 -> 117, 8192 x 64 x 64 95 -> 110, 128 x 256 x 64
 * 98 -> 110 in 96-column blocks; float64 gains 20-30%. Thinner column blocks read B's columns
 * strided and lose (64 x 1024 x 256 in 48-column blocks: 84 -> 58), and beyond 2^26 (6400 rows x
 * 128 x 256) the gain is gone. Elsewhere (Haswell's kernels have no such path) a cut would only
 * pack the other operand again. */
#define ND_GEMM_SMALL_MACS 1000000.0
#define ND_GEMM_SMALL_MAX_MACS 67108864.0
#define ND_GEMM_SMALL_MIN_ROWS 16
#define ND_GEMM_SMALL_MIN_COLS 64

/* Whether the kernels OpenBLAS runs (its own choice for this CPU, or OPENBLAS_CORETYPE's) have
 * the small-matrix path; asked once. */
static int nd_gemm_small_path(void)
{
    static atomic_int known = -1;
    int v = atomic_load(&known);
    if (v < 0) {
        static const char *const cores[] = {"skylakex", "cooperlake", "sapphirerapids"};
        const char *name = openblas_get_corename();
        v = 0;
        for (size_t i = 0; name && i < sizeof cores / sizeof cores[0]; ++i)
            v |= strcasecmp(name, cores[i]) == 0;
        atomic_store(&known, v);
    }
    return v;
}

/* The size of each of `count` even parts of `span`, rounded up to a multiple of 16 (the last
 * part takes the rest): the blocks' and the slices' sizes. */
static int64_t nd_gemm_even(int64_t span, int64_t count)
{
    return ((span + count - 1) / count + 15) / 16 * 16;
}

/* The blocks of the small-matrix path's cut (above) of a product spanning `span` rows (by_rows)
 * or columns of C, or 0 when such blocks would be thinner than the path's minimum. */
static int64_t nd_gemm_small_block(int64_t span, double macs, int by_rows)
{
    const double per = macs / (double)span; /* multiply-adds of one row (column) of C */
    int64_t blk = (int64_t)(ND_GEMM_SMALL_MACS / per) / 16 * 16;
    if (blk < (by_rows ? ND_GEMM_SMALL_MIN_ROWS : ND_GEMM_SMALL_MIN_COLS))
        return 0;
    blk = nd_gemm_even(span, (span + blk - 1) / blk);
    return blk < span ? blk : span;
}

/* Rows (by_rows) or columns of C in each block of a product spanning `span` of them (span
 * itself: one call). With `small` (the product is one the small-matrix path takes), blocks under
 * its limit (above). From ND_GEMM_SPLIT_FLOPS on: blocks of at most ND_GEMM_BLOCK_MAX, their count
 * rounded up to a multiple of 8 (so that 2, 4 or 8 threads share them evenly) while they keep
 * ND_GEMM_BLOCK_MIN. Blocks are sized evenly to a multiple of 16. Each block is one BLAS call,
 * which packs the whole of the other operand again: fewer, larger blocks pack a weight matrix
 * fewer times (the 4096-wide layer's 8000 x 4096 x 4096 product repacked its weight 32 times in
 * 256-row blocks). */
static int64_t nd_gemm_block(int64_t span, double macs, int by_rows, int small)
{
    if (macs <= ND_GEMM_SMALL_MACS)
        return span;
    if (small && macs <= ND_GEMM_SMALL_MAX_MACS) {
        const int64_t blk = nd_gemm_small_block(span, macs, by_rows);
        if (blk)
            return blk;
    }
    if (macs < ND_GEMM_SPLIT_FLOPS || span <= ND_GEMM_BLOCK_MIN)
        return span;
    int64_t nb = (span + ND_GEMM_BLOCK_MAX - 1) / ND_GEMM_BLOCK_MAX;
    const int64_t most = (span + ND_GEMM_BLOCK_MIN - 1) / ND_GEMM_BLOCK_MIN;
    nb = (nb + 7) / 8 * 8;
    return nd_gemm_even(span, nb < most ? nb : most);
}

/* A call's inner dimension is summed in slices of about this many multiply-adds (beta = 1
 * after the first slice), so that a product over a huge inner dimension (a weight gradient over
 * millions of rows) polls for Ctrl-C between slices (nd_poll.h). Slices depend on the shapes
 * only, like the blocks. */
#define ND_GEMM_SLICE_FLOPS ((int64_t)1 << 28)
#define ND_GEMM_MIN_SLICE 4096

/* OpenBLAS takes a product whose A is transposed (X^T dY, a weight gradient: its column-major
 * NT form) on the small-matrix path only up to ND_GEMM_SMALL_MACS, so on the cores that have it
 * a longer inner dimension is summed in slices under that limit, sized evenly to a multiple of
 * 16, when that leaves them at least ND_GEMM_SMALL_SLICE_MIN deep (the last may be thinner). Measured on SkylakeX kernels in
 * float32: 64 x 64 over 256-8192 rows 81-93 -> 113-116 GFLOP/s, 128 x 128 over 2048 rows 99 ->
 * 106, 64 x 2 over 8192 rows 15 -> 84; in float64 41-47 -> 51-57. */
#define ND_GEMM_SMALL_SLICE_MIN 32

static int64_t nd_gemm_slice(int64_t m, int64_t n, int64_t k, int small)
{
    const int64_t mn = m * n > 0 ? m * n : 1;
    int64_t ks = ND_GEMM_SLICE_FLOPS / mn;
    ks = ks < ND_GEMM_MIN_SLICE ? ND_GEMM_MIN_SLICE : ks;
    if (small && (double)mn * (double)k > ND_GEMM_SMALL_MACS) {
        const int64_t most = (int64_t)(ND_GEMM_SMALL_MACS / (double)mn) / 16 * 16;
        if (most >= ND_GEMM_SMALL_SLICE_MIN) {
            const int64_t even = nd_gemm_even(k, (k + most - 1) / most);
            ks = even < ks ? even : ks;
        }
    }
    return ks >= k ? k : ks;
}

/* OpenBLAS takes a product whose B is transposed (dY W^T, an input gradient: its column-major TN
 * form) on the small-matrix path only while C has at most 1200 elements, so on the cores that
 * have it, a larger such product of at most ND_GEMM_SMALL_MAX_MACS whose B fits in
 * ND_GEMM_TRANSPOSE_BYTES is computed as A B' with B' = B^T copied first, which nd_gemm_block
 * then cuts like any other. Measured on SkylakeX kernels, 64-1024 rows x 64 x 64 in float32
 * 86-97 -> 92-114 GFLOP/s with the copy, in float64 42-46 -> 42-56. A larger B costs more to
 * copy than the path gains (128 x 256 x 64: 95 -> 71). */
#define ND_GEMM_TRANSPOSE_BYTES 32768
#define ND_GEMM_TRANSPOSE_MIN_C 1200

#define ND_GEMM_DEFINE(T, SFX, CBLAS)                                                                      \
    void nd_transpose_##SFX(int64_t rows, int64_t cols, const T *a, int64_t lda, T *at)                 \
    {                                                                                                    \
        for (int64_t q = 0; q < rows; ++q) {                                                             \
            const T *restrict aq = a + q * lda;                                                          \
            for (int64_t p = 0; p < cols; ++p)                                                           \
                at[p * rows + q] = aq[p];                                                                \
        }                                                                                                \
    }                                                                                                    \
                                                                                                         \
    typedef struct {                                                                                     \
        int ta, tb, by_rows;                                                                             \
        int64_t m, n, k, lda, ldb, ldc;                                                                  \
        T alpha, beta;                                                                                   \
        const T *a, *b;                                                                                  \
        T *c;                                                                                            \
        const T *bias; /* nd_gemm_seeded: C's block is set to it (every row) before its product */     \
        int64_t span, size; /* rows (by_rows) or columns of C, and those of a block (nd_gemm_block) */  \
        int small_tn;       /* A transposed on the small-matrix path's kernels: nd_gemm_slice's slices */ \
    } nd_gemm_job_##SFX;                                                                                 \
                                                                                                         \
    /* Rows [0, m) of C's columns [n0, n0 + n) set to bias[n0 + j]: plain copies, as gcc would       \
     * otherwise call memcpy for each row, which costs more than a row of a few hundred bytes. */        \
    __attribute__((optimize("no-tree-loop-distribute-patterns"))) static void nd_gemm_seed_##SFX(          \
        const nd_gemm_job_##SFX *j, int64_t m, int64_t n0, int64_t n, T *c)                              \
    {                                                                                                    \
        const T *restrict bias = j->bias + n0;                                                           \
        for (int64_t r = 0; r < m; ++r) {                                                                \
            T *restrict cr = c + r * j->ldc;                                                             \
            for (int64_t q = 0; q < n; ++q)                                                              \
                cr[q] = bias[q];                                                                         \
        }                                                                                                \
    }                                                                                                    \
                                                                                                         \
    static void nd_gemm_call_##SFX(const nd_gemm_job_##SFX *j, int64_t m, int64_t n, const T *a, const T *b, \
                                   T *c)                                                                 \
    {                                                                                                    \
        const int64_t ks = nd_gemm_slice(m, n, j->k, j->small_tn);                                       \
        for (int64_t k0 = 0; k0 < j->k; k0 += ks) {                                                      \
            const int64_t kk = j->k - k0 < ks ? j->k - k0 : ks;                                          \
            if (k0 && nd_poll_work(m * n * ks))                                                          \
                return; /* stopped: the caller sees nd_poll_status() */                                  \
            nd_blas_enter();                                                                             \
            CBLAS(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans,    \
                  (int)m, (int)n, (int)kk, j->alpha, a + (j->ta ? k0 * j->lda : k0), (int)j->lda,        \
                  b + (j->tb ? k0 : k0 * j->ldb), (int)j->ldb, k0 ? (T)1 : j->beta, c, (int)j->ldc);      \
            nd_blas_leave();                                                                             \
        }                                                                                                \
        if (j->k == 0) {                                                                                 \
            nd_blas_enter();                                                                             \
            CBLAS(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans,    \
                  (int)m, (int)n, 0, j->alpha, a, (int)j->lda, b, (int)j->ldb, j->beta, c, (int)j->ldc); \
            nd_blas_leave();                                                                             \
        }                                                                                                \
    }                                                                                                    \
                                                                                                         \
    /* Blocks [b0, b1): rows of C take rows of op(A); columns take columns of op(B). */                   \
    static void nd_gemm_range_##SFX(void *ctx, int64_t b0, int64_t b1)                                   \
    {                                                                                                    \
        const nd_gemm_job_##SFX *j = ctx;                                                                \
        const int64_t span = j->span, size = j->size;                                                    \
        for (int64_t blk = b0; blk < b1; ++blk) {                                                        \
            const int64_t lo = blk * size, hi = lo + size < span ? lo + size : span;                     \
            if (nd_poll_work((hi - lo) * (j->by_rows ? j->n : j->m) * j->k))                             \
                return;                                                                                  \
            if (j->bias)                                                                                 \
                nd_gemm_seed_##SFX(j, j->by_rows ? hi - lo : j->m, j->by_rows ? 0 : lo,                   \
                                   j->by_rows ? j->n : hi - lo, j->c + (j->by_rows ? lo * j->ldc : lo));   \
            if (j->by_rows)                                                                              \
                nd_gemm_call_##SFX(j, hi - lo, j->n, j->a + (j->ta ? lo : lo * j->lda), j->b,            \
                                   j->c + lo * j->ldc);                                                  \
            else                                                                                         \
                nd_gemm_call_##SFX(j, j->m, hi - lo, j->a, j->b + (j->tb ? lo * j->ldb : lo), j->c + lo); \
        }                                                                                                \
    }                                                                                                    \
                                                                                                         \
    static void nd_gemm_blocks_##SFX(nd_gemm_job_##SFX *j)                                               \
    {                                                                                                    \
        const double macs = (double)j->m * (double)j->n * (double)j->k;                                 \
        const int small = !j->tb && nd_gemm_small_path();                                               \
        j->by_rows = j->m >= j->n;                                                                       \
        /* the other way when only it gives the small-matrix path blocks that are not too thin      \
         * (Langevin's 128 x 256 x 128 input product: 48-column blocks, or 16-row ones) */          \
        if (small && macs > ND_GEMM_SMALL_MACS && macs <= ND_GEMM_SMALL_MAX_MACS &&                      \
            !nd_gemm_small_block(j->by_rows ? j->m : j->n, macs, j->by_rows) &&                          \
            nd_gemm_small_block(j->by_rows ? j->n : j->m, macs, !j->by_rows))                            \
            j->by_rows = !j->by_rows;                                                                    \
        j->span = j->by_rows ? j->m : j->n;                                                              \
        j->size = nd_gemm_block(j->span, macs, j->by_rows, small);                                       \
        j->small_tn = j->ta && small;                                                                    \
        if (j->size >= j->span) {                                                                        \
            if (j->bias)                                                                                 \
                nd_gemm_seed_##SFX(j, j->m, 0, j->n, j->c);                                              \
            nd_gemm_call_##SFX(j, j->m, j->n, j->a, j->b, j->c);                                         \
            return;                                                                                      \
        }                                                                                                \
        nd_parallel_for((j->span + j->size - 1) / j->size, 1, 1, nd_gemm_range_##SFX, j);               \
    }                                                                                                    \
                                                                                                         \
    /* The product with B^T copied into bt (the rule above ND_GEMM_TRANSPOSE_BYTES). */                  \
    __attribute__((noinline)) static void nd_gemm_transposed_##SFX(nd_gemm_job_##SFX *j)                 \
    {                                                                                                    \
        T bt[ND_GEMM_TRANSPOSE_BYTES / sizeof(T)];                                                       \
        nd_transpose_##SFX(j->n, j->k, j->b, j->ldb, bt);                                               \
        j->b = bt, j->tb = 0, j->ldb = j->n;                                                             \
        nd_gemm_blocks_##SFX(j);                                                                         \
    }                                                                                                    \
                                                                                                         \
    static void nd_gemm_run_##SFX(nd_gemm_job_##SFX *j)                                                  \
    {                                                                                                    \
        const double macs = (double)j->m * (double)j->n * (double)j->k;                                 \
        if (!j->ta && j->tb && j->k > 0 && j->m * j->n > ND_GEMM_TRANSPOSE_MIN_C && macs <= ND_GEMM_SMALL_MAX_MACS && \
            (size_t)(j->n * j->k) * sizeof(T) <= ND_GEMM_TRANSPOSE_BYTES && nd_gemm_small_path())        \
            nd_gemm_transposed_##SFX(j);                                                                 \
        else                                                                                             \
            nd_gemm_blocks_##SFX(j);                                                                     \
    }                                                                                                    \
                                                                                                         \
    void nd_gemm_##SFX(int transa, int transb, int64_t m, int64_t n, int64_t k, T alpha, const T *a,     \
                       int64_t lda, const T *b, int64_t ldb, T beta, T *c, int64_t ldc)                  \
    {                                                                                                    \
        nd_gemm_job_##SFX j = {transa, transb, 0, m, n, k, lda, ldb, ldc, alpha, beta, a, b, c, NULL, 0, 0, 0}; \
        nd_gemm_run_##SFX(&j);                                                                           \
    }                                                                                                    \
                                                                                                         \
    void nd_gemm_seeded_##SFX(int transa, int transb, int64_t m, int64_t n, int64_t k, const T *a,       \
                              int64_t lda, const T *b, int64_t ldb, const T *bias, T *c, int64_t ldc)    \
    {                                                                                                    \
        nd_gemm_job_##SFX j = {transa, transb, 0, m, n, k, lda, ldb, ldc, 1, 1, a, b, c, bias, 0, 0, 0}; \
        nd_gemm_run_##SFX(&j);                                                                           \
    }

ND_GEMM_DEFINE(float, f32, cblas_sgemm)
ND_GEMM_DEFINE(double, f64, cblas_dgemm)

/* ---- LAPACK LU ---------------------------------------------------------------------------- */

/* The Fortran symbols: the wheel's carry its scipy_ prefix; a system OpenBLAS has the plain
 * names. Integers are 32-bit, as CBLAS's in this build. The trailing length is gfortran's
 * hidden argument for a CHARACTER dummy (OpenBLAS's C implementations ignore it). */
#ifdef ND_BLAS_SCIPY_PREFIX
#define ND_LAPACK(name) scipy_##name##_
#else
#define ND_LAPACK(name) name##_
#endif

#define ND_LU_DEFINE(T, NAME, GETRF, GETRS)                                                              \
    void GETRF(const int *m, const int *n, T *a, const int *lda, int *ipiv, int *info);                 \
    void GETRS(const char *trans, const int *n, const int *nrhs, const T *a, const int *lda, const int *ipiv, \
               T *b, const int *ldb, int *info, size_t trans_len);                                      \
                                                                                                         \
    int nd_getrf_##NAME(int64_t n, T *a, int *ipiv)                                                      \
    {                                                                                                    \
        ND_REQUIRE(n >= 0, "n", n, "must be >= 0");                                                      \
        if (n > INT_MAX)                                                                                 \
            return nd_size_error("n");                                                                   \
        if (n == 0)                                                                                      \
            return ND_OK;                                                                                \
        int ni = (int)n, info = 0;                                                                       \
        GETRF(&ni, &ni, a, &ni, ipiv, &info);                                                            \
        return info == 0 ? ND_OK : info > 0 ? ND_ERR_SINGULAR : nd_arg_error("getrf argument", -info, "is invalid"); \
    }                                                                                                    \
                                                                                                         \
    int nd_getrs_##NAME(int64_t n, int64_t nrhs, const T *lu, const int *ipiv, T *b)                     \
    {                                                                                                    \
        ND_REQUIRE(n >= 0, "n", n, "must be >= 0");                                                      \
        ND_REQUIRE(nrhs >= 0, "nrhs", nrhs, "must be >= 0");                                             \
        if (n > INT_MAX || nrhs > INT_MAX)                                                               \
            return nd_size_error("n");                                                                   \
        if (n == 0 || nrhs == 0)                                                                         \
            return ND_OK;                                                                                \
        /* 'T': the factors are those of the transpose of the row-major matrix (no conjugate). */        \
        int ni = (int)n, nr = (int)nrhs, info = 0;                                                       \
        GETRS("T", &ni, &nr, lu, &ni, ipiv, b, &ni, &info, 1);                                           \
        return info == 0 ? ND_OK : nd_arg_error("getrs argument", -info, "is invalid");                  \
    }

ND_LU_DEFINE(float, f32, ND_LAPACK(sgetrf), ND_LAPACK(sgetrs))
ND_LU_DEFINE(double, f64, ND_LAPACK(dgetrf), ND_LAPACK(dgetrs))
ND_LU_DEFINE(float, complex_f32, ND_LAPACK(cgetrf), ND_LAPACK(cgetrs))
ND_LU_DEFINE(double, complex_f64, ND_LAPACK(zgetrf), ND_LAPACK(zgetrs))

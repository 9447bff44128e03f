/* nd_parallel_for over an OpenMP team, or inline without OpenMP. */
#include "nd_parallel.h"

#include "nd_poll.h"

#include <stdatomic.h>
#include <stddef.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static atomic_int nd_threads = 1;

void nd_set_threads(int n)
{
    if (n >= 1)
        atomic_store(&nd_threads, n);
}

int nd_get_threads(void) { return atomic_load(&nd_threads); }

int nd_parallel_available(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* Start of part k of m over [0, n), rounded down to a multiple of align. */
static int64_t nd_part_start(int64_t n, int64_t align, int k, int m)
{
    if (k >= m)
        return n;
    const int64_t units = (n + align - 1) / align;
    const int64_t start = units / m * k + (units % m < k ? units % m : k);
    return start * align < n ? start * align : n;
}

void nd_parallel_for(int64_t n, int64_t grain, int64_t align, nd_range_fn fn, void *ctx)
{
    if (n <= 0)
        return;
    if (align < 1)
        align = 1;
    int64_t team = atomic_load(&nd_threads);
    const int64_t most = grain > 0 ? n / grain : n;
    if (team > most)
        team = most;
#ifdef _OPENMP
    if (team > 1 && !omp_in_parallel()) { /* inside a parallel range (a blocked GEMM): inline */
        nd_poll_scope *scope = nd_poll_current(); /* the caller's: its threads stop with it */
#pragma omp parallel num_threads((int)team)
        {
            const int k = omp_get_thread_num(), m = omp_get_num_threads();
            const int64_t lo = nd_part_start(n, align, k, m), hi = nd_part_start(n, align, k + 1, m);
            if (k > 0)
                nd_poll_adopt(scope);
            if (lo < hi)
                fn(ctx, lo, hi);
            if (k > 0)
                nd_poll_adopt(NULL);
        }
        return;
    }
#endif
    fn(ctx, 0, n);
}

/* Threads of the C kernels (a POSIX thread pool, nd_parallel.c), counted apart from OpenBLAS's.
 *
 * A kernel hands elementwise or row-independent work to nd_parallel_for as a function of a
 * range [lo, hi). Ranges never depend on the thread count in a way that changes results:
 * they cover independent elements, so one thread or many give the same bits. No range
 * function calls BLAS: a threaded GEMM is never started inside a parallel region. */
#ifndef ND_PARALLEL_H
#define ND_PARALLEL_H

#include <stdint.h>

typedef void (*nd_range_fn)(void *ctx, int64_t lo, int64_t hi);

/* Calls fn over [0, n) split into contiguous ranges, one per thread, each at least `grain`
 * elements long (so small problems stay on the calling thread, where a call costs nothing
 * extra) and starting at a multiple of `align` (>= 1) elements. */
void nd_parallel_for(int64_t n, int64_t grain, int64_t align, nd_range_fn fn, void *ctx);

/* The kernels' thread count (>= 1; 1 at start). Values < 1 are ignored. */
void nd_set_threads(int n);
int nd_get_threads(void);

/* 1 when the pool can run work on other threads, else 0 (nd_parallel_for then always runs on the
 * caller). */
int nd_parallel_available(void);

#endif

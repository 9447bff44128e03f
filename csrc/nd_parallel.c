/* nd_parallel_for over the kernels' own pool of POSIX threads.
 *
 * An own pool rather than an OpenMP team: a team whose threads cannot be created (the address
 * space limited, too many threads) makes libgomp print "Thread creation failed" and exit the
 * process. Here a worker that cannot be created, or cannot reserve the address space its
 * OpenBLAS buffer will need (nd_blas_reserve), is simply not there: the work is split among
 * the threads that are, which gives the same bits (ranges are independent), and a kernel never
 * fails for want of a thread. */
#include "nd_parallel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "nd_blas.h"
#include "nd_poll.h"

#define ND_POOL_MAX 4096     /* workers at most (set_num_threads' bound) */
/* Polls of a flag, each after a pause (nd_cpu_relax), before sleeping on a condition: about half a
 * millisecond on x86 (a pause is ~25 ns on Zen 4). A worker woken from sleep starts its part
 * ~100 us late on a virtual machine (measured: a 184 us product took 210 us at two threads after
 * a 2 ms gap, 104 us back to back), which is more than most kernels' parts: the pool stays awake
 * across the gaps between the parallel loops of a model's step. */
#define ND_SPIN 20000
#define ND_STACK (1 << 20)   /* a worker's stack: the ranges keep a few KiB of locals, nd_gemm's copy of B^T 32 */

/* Tells the core that this is a spin loop (x86 PAUSE, ARM YIELD): it saves power and leaves the
 * core's other hardware thread the pipeline. */
static inline void nd_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static atomic_int nd_threads = 1;
static atomic_int nd_pool_failed; /* a worker could not be created: until the count is set again */

void nd_set_threads(int n)
{
    if (n >= 1) {
        atomic_store(&nd_threads, n);
        atomic_store(&nd_pool_failed, 0); /* memory may have been freed since: try again */
    }
}


int nd_get_threads(void) { return atomic_load(&nd_threads); }

int nd_parallel_available(void) { return 1; }

/* Start of part k of m over [0, n), rounded down to a multiple of align. */
static int64_t nd_part_start(int64_t n, int64_t align, int k, int m)
{
    if (k >= m)
        return n;
    const int64_t units = (n + align - 1) / align;
    const int64_t start = units / m * k + (units % m < k ? units % m : k);
    return start * align < n ? start * align : n;
}

/* One job at a time: a caller that finds the pool busy (another Python thread's kernel, or a
 * range that calls a parallel kernel itself) runs its work on its own thread. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    int workers;              /* created so far; worker w runs part w of a job */
    atomic_int busy;
    atomic_uint_fast64_t gen; /* bumped for every job */
    atomic_int pending;       /* workers of the current job still running */
    uint_fast64_t birth_gen;  /* gen when the workers being created were made: not a job for them */
    /* the job */
    nd_range_fn fn;
    void *ctx;
    int64_t n, align;
    int m;
    nd_poll_scope *scope;
} nd_pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static _Thread_local int nd_in_job; /* this thread runs a part of a job: nested calls run inline */

static void *nd_worker(void *arg)
{
    const int w = (int)(intptr_t)arg;
    uint_fast64_t seen = nd_pool.birth_gen; /* not gen: the caller may have posted the job already */
    nd_in_job = 1;
    for (;;) {
        for (int i = 0; i < ND_SPIN && atomic_load_explicit(&nd_pool.gen, memory_order_acquire) == seen; ++i)
            nd_cpu_relax();
        if (atomic_load_explicit(&nd_pool.gen, memory_order_acquire) == seen) {
            pthread_mutex_lock(&nd_pool.mu);
            while (atomic_load(&nd_pool.gen) == seen)
                pthread_cond_wait(&nd_pool.wake, &nd_pool.mu);
            pthread_mutex_unlock(&nd_pool.mu);
        }
        seen = atomic_load(&nd_pool.gen);
        if (w < nd_pool.m) { /* in this job's team; every worker acknowledges every job, so the
                                next one is posted only when all have read this one */
            const int64_t lo = nd_part_start(nd_pool.n, nd_pool.align, w, nd_pool.m);
            const int64_t hi = nd_part_start(nd_pool.n, nd_pool.align, w + 1, nd_pool.m);
            nd_poll_adopt(nd_pool.scope);
            if (lo < hi)
                nd_pool.fn(nd_pool.ctx, lo, hi);
            nd_poll_adopt(NULL);
        }
        if (atomic_fetch_sub_explicit(&nd_pool.pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&nd_pool.mu);
            pthread_cond_signal(&nd_pool.done);
            pthread_mutex_unlock(&nd_pool.mu);
        }
    }
    return NULL;
}

/* Grows the pool to `want` workers as far as threads and address space allow (pool busy). */
static void nd_pool_grow(int want)
{
    if (want > ND_POOL_MAX)
        want = ND_POOL_MAX;
    if (atomic_load(&nd_pool_failed))
        return;
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0)
        return;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, ND_STACK);
    nd_pool.birth_gen = atomic_load(&nd_pool.gen);
    while (nd_pool.workers < want) {
        pthread_t t;
        /* worker w is part w + 1: part 0 is the caller's */
        if (nd_blas_reserve() != 0 ||
            pthread_create(&t, &attr, nd_worker, (void *)(intptr_t)(nd_pool.workers + 1)) != 0) {
            atomic_store(&nd_pool_failed, 1);
            break;
        }
        nd_pool.workers++;
    }
    pthread_attr_destroy(&attr);
}

/* A child of fork() has none of the parent's workers. */
static void nd_pool_after_fork(void)
{
    nd_pool.workers = 0;
    atomic_store(&nd_pool_failed, 0);
    atomic_store(&nd_pool.busy, 0);
    pthread_mutex_init(&nd_pool.mu, NULL);
    pthread_cond_init(&nd_pool.wake, NULL);
    pthread_cond_init(&nd_pool.done, NULL);
}

static pthread_once_t nd_pool_once = PTHREAD_ONCE_INIT;
static void nd_pool_init(void) { pthread_atfork(NULL, NULL, nd_pool_after_fork); }

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
    int idle = 0;
    if (team <= 1 || nd_in_job || !atomic_compare_exchange_strong(&nd_pool.busy, &idle, 1)) {
        fn(ctx, 0, n);
        return;
    }
    pthread_once(&nd_pool_once, nd_pool_init);
    if (nd_pool.workers < team - 1)
        nd_pool_grow((int)team - 1);
    const int m = nd_pool.workers + 1 < team ? nd_pool.workers + 1 : (int)team;
    if (m <= 1) {
        atomic_store(&nd_pool.busy, 0);
        fn(ctx, 0, n);
        return;
    }
    nd_pool.fn = fn;
    nd_pool.ctx = ctx;
    nd_pool.n = n;
    nd_pool.align = align;
    nd_pool.m = m;
    nd_pool.scope = nd_poll_current(); /* the caller's: its workers stop with it */
    atomic_store(&nd_pool.pending, nd_pool.workers);
    pthread_mutex_lock(&nd_pool.mu);
    atomic_fetch_add_explicit(&nd_pool.gen, 1, memory_order_release);
    pthread_cond_broadcast(&nd_pool.wake);
    pthread_mutex_unlock(&nd_pool.mu);
    nd_in_job = 1;
    const int64_t hi = nd_part_start(n, align, 1, m);
    if (hi > 0)
        fn(ctx, 0, hi);
    nd_in_job = 0;
    for (int i = 0; i < ND_SPIN && atomic_load_explicit(&nd_pool.pending, memory_order_acquire); ++i)
        nd_cpu_relax();
    if (atomic_load_explicit(&nd_pool.pending, memory_order_acquire)) {
        pthread_mutex_lock(&nd_pool.mu);
        while (atomic_load(&nd_pool.pending))
            pthread_cond_wait(&nd_pool.done, &nd_pool.mu);
        pthread_mutex_unlock(&nd_pool.mu);
    }
    atomic_store(&nd_pool.busy, 0);
}

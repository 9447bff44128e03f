#include "nd_blas.h"

/* The one-thread sections of concurrent callers share OpenBLAS's global count: the first
 * section to open saves the count and sets 1, the last to close restores it, and a count
 * asked for meanwhile is kept until then. A per-caller save and restore would let one
 * caller's end give the BLAS its threads back while another caller's section still runs. */
#ifdef _WIN32
#include <windows.h>
static SRWLOCK nd_blas_lock = SRWLOCK_INIT;
#define ND_BLAS_LOCK() AcquireSRWLockExclusive(&nd_blas_lock)
#define ND_BLAS_UNLOCK() ReleaseSRWLockExclusive(&nd_blas_lock)
#else
#include <pthread.h>
static pthread_mutex_t nd_blas_lock = PTHREAD_MUTEX_INITIALIZER;
#define ND_BLAS_LOCK() pthread_mutex_lock(&nd_blas_lock)
#define ND_BLAS_UNLOCK() pthread_mutex_unlock(&nd_blas_lock)
#endif

static int nd_blas_sections; /* open one-thread sections (guarded by nd_blas_lock) */
static int nd_blas_saved;    /* the count to restore when the last section closes */

void nd_blas_set_num_threads(int n)
{
    if (n <= 0)
        return;
    ND_BLAS_LOCK();
    if (nd_blas_sections > 0)
        nd_blas_saved = n;
    else
        openblas_set_num_threads(n);
    ND_BLAS_UNLOCK();
}

int nd_blas_get_num_threads(void)
{
    ND_BLAS_LOCK();
    int n = nd_blas_sections > 0 ? nd_blas_saved : openblas_get_num_threads();
    ND_BLAS_UNLOCK();
    return n;
}

const char *nd_blas_config(void) { return openblas_get_config(); }

int nd_blas_single_thread_begin(void)
{
    ND_BLAS_LOCK();
    if (nd_blas_sections++ == 0) {
        nd_blas_saved = openblas_get_num_threads();
        if (nd_blas_saved != 1)
            openblas_set_num_threads(1);
    }
    int saved = nd_blas_saved;
    ND_BLAS_UNLOCK();
    return saved;
}

void nd_blas_single_thread_end(int previous)
{
    (void)previous; /* the count is restored from the shared save, by the last section */
    ND_BLAS_LOCK();
    if (--nd_blas_sections == 0 && nd_blas_saved != 1)
        openblas_set_num_threads(nd_blas_saved);
    ND_BLAS_UNLOCK();
}

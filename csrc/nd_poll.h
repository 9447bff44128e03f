/* Stopping long kernels early: one poll hook per calling thread, reached from every kernel
 * through one helper.
 *
 * The caller of a kernel (the binding) opens a scope with the hook it wants called while the
 * kernel runs (Ctrl-C, a progress bar). Long loops report the work they did to nd_poll_work;
 * about every ND_POLL_UNITS units of work the hook runs on the scope's own thread, and once it
 * has asked to stop, every later poll under the scope, on the calling thread or on any kernel
 * thread working for it (nd_parallel_for hands the scope on), returns ND_ERR_INTERRUPTED, so
 * each loop unwinds at its next check. Without a scope a poll costs a thread-local read and
 * never stops anything (the C tests, other C callers). */
#ifndef ND_POLL_H
#define ND_POLL_H

#include <stdatomic.h>
#include <stdint.h>

/* The hook: non-zero asks the kernel to stop. done is the fraction of the work done, in
 * [0, 1], or negative when the polling loop does not know it. */
typedef int (*nd_poll_fn)(void *ctx, double done);

typedef struct nd_poll_scope {
    nd_poll_fn fn;
    void *ctx;
    atomic_int stop;             /* set once the hook asked to stop; read by every thread */
    struct nd_poll_scope *outer; /* the scope this one is nested in (restored at its end) */
} nd_poll_scope;

/* Units of work between two calls of the hook: about a millisecond at one unit per
 * nanosecond (an element updated, or a multiply-add). */
#define ND_POLL_UNITS ((int64_t)1 << 20)

/* Opens s on the calling thread with hook fn (may be NULL: never stops) until nd_poll_end. */
void nd_poll_begin(nd_poll_scope *s, nd_poll_fn fn, void *ctx);
void nd_poll_end(nd_poll_scope *s);

/* After `units` of work: ND_OK, or ND_ERR_INTERRUPTED once the scope was asked to stop. Calls
 * the hook when the units since its last call reach ND_POLL_UNITS; cheap otherwise. */
int nd_poll_work(int64_t units);

/* The hook now (on the scope's thread; elsewhere only the stop flag is read), with the
 * fraction done for a progress bar: once per step of a loop whose steps are long enough. */
int nd_poll(double done);

/* ND_ERR_INTERRUPTED when the scope was asked to stop, else ND_OK (for a kernel whose
 * parallel ranges or inner products stopped early without a status of their own). */
int nd_poll_status(void);

/* For nd_parallel_for: the calling thread's scope, and a kernel thread working for it taking
 * it on (its polls then read the stop flag only) or dropping it (NULL). */
nd_poll_scope *nd_poll_current(void);
void nd_poll_adopt(nd_poll_scope *s);

#endif

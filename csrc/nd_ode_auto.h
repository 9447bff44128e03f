/* Automatic switching between an explicit and an implicit method, per sample (docs/models.md
 * §8, method "auto").
 *
 * Every sample starts with dopri5 (nd_ode_samples.h) under Hairer's stiffness test: h |lambda|
 * estimated on each accepted step from its last two stages, ||k7 - k6|| / ||y7 - y6||, against
 * dopri5's stability boundary (ND_ODE_STIFF_BOUND), 15 stiff steps counted (six non-stiff ones
 * in a row clear the count), as Hairer's DOPRI5 does. A stiff sample goes on with Radau IIA 5
 * (nd_ode_stiff.h) from its time, state and next step; it comes back to dopri5 when its next
 * Radau step h satisfies h ||J||_inf <= the same boundary for 15 accepted steps in a row, so
 * that dopri5 is stable at the step Radau takes (the switch back of LSODA, Petzold 1983, which
 * compares the non-stiff method's stability-bounded step with the current one).
 *
 * Radau rather than BDF: it is a one-step method of dopri5's order, so a switch costs one
 * Jacobian and its factors and the step carries over, where BDF would restart at order 1
 * from a single point and rebuild its differences over several short steps on every switch.
 *
 * The switches are phases: each phase runs the per-sample driver of one method over the
 * samples currently using it (each from its own time, state, step, output row and remaining
 * budget) until each of them ends or switches. A sample's arithmetic never reads another's,
 * so its result is bit-identical alone, in any batch and in any order; a sample that never
 * switches gets dopri5's result bit for bit. */
#ifndef ND_ODE_AUTO_H
#define ND_ODE_AUTO_H

#include <stddef.h>
#include <stdint.h>

#include "nd_ode_samples.h"
#include "nd_ode_stiff.h"

/* Stiff (or non-stiff) steps counted before a switch (Hairer's DOPRI5 counts 15). */
#define ND_ODE_AUTO_COUNT 15

/* The method a sample uses, by code ({"dopri5", "radau", NULL}). */
enum { ND_AUTO_EXPLICIT = 0, ND_AUTO_IMPLICIT = 1 };
extern const char *const nd_ode_auto_method_names[];

/* Per-sample counters (arrays of B owned by the caller; any may be NULL) and the totals. nfev,
 * njev, nlu, accepted and rejected sum over both methods; accepted_implicit and nfev_implicit
 * are Radau's shares; switches counts the changes of method; method is the one in use at the
 * end. */
typedef struct {
    int64_t *nfev, *njev, *nlu, *accepted, *rejected, *accepted_implicit, *nfev_implicit, *switches, *n_out;
    double *t;
    int *status, *method;
    int64_t nfev_total, njev_total, nlu_total, rhs_calls, jac_calls, rounds, n_failed, phases;
} nd_ode_auto_stats;

/* Bytes of workspace nd_odeint_auto_* needs for B samples of d values, nt output times. */
int nd_ode_auto_workspace_size(int64_t B, int64_t d, int64_t nt, size_t elem_size, size_t *bytes);

/* As nd_odeint_stiff_* (the same callbacks, arguments and returns) with opts.method ignored;
 * opts.max_steps is each sample's budget over both methods. */
int nd_odeint_auto_f32(nd_batch_rhs_f32 rhs, void *rhs_ctx, nd_batch_jac_f32 jac, void *jac_ctx, int64_t B, int64_t d,
                       const float *y0, int64_t nt, const double *t, const nd_ode_stiff_opts *opts, float *ys,
                       float *y_last, void *work, nd_ode_auto_stats *stats);
int nd_odeint_auto_f64(nd_batch_rhs_f64 rhs, void *rhs_ctx, nd_batch_jac_f64 jac, void *jac_ctx, int64_t B, int64_t d,
                       const double *y0, int64_t nt, const double *t, const nd_ode_stiff_opts *opts, double *ys,
                       double *y_last, void *work, nd_ode_auto_stats *stats);

#endif

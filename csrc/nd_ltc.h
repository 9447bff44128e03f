/* Liquid time-constant relaxation: dx/ds = (a - x) / tau over one frame s in [0, 1],
 * with a and tau held fixed, elementwise. */
#ifndef ND_LTC_H
#define ND_LTC_H

#include <stddef.h>
#include <stdint.h>

#include "nd_ode.h"

/* Solvers of solve_ltc: the closed form, or one of the nd_ode methods. */
#define ND_LTC_EXACT (-1)

/* Workspace elements for nd_solve_ltc_* on n elements with this solver, in *len. */
int nd_solve_ltc_workspace_len(int solver, int64_t n, size_t *len);

/* out[i] = x(1) for x(0) = x[i], given a[i], tau[i] > 0.
 * solver ND_LTC_EXACT: out = a + (x - a) exp(-1 / tau).
 * ND_ODE_EULER/MIDPOINT/RK4: `steps` equal substeps of 1/steps.
 * ND_ODE_DOPRI5: rtol, atol and max_steps of opts, first step 0.25 (opts->dt ignored).
 * out may alias x. Failures of the adaptive solver are returned as their nd_status, with
 * stats->t the frame time reached. */
#define ND_LTC_DECLARE(T, SFX)                                                                   \
    int nd_solve_ltc_##SFX(int solver, int64_t n, const T *x, const T *a, const T *tau,          \
                           int64_t steps, const nd_ode_opts *opts, T *out, T *work,              \
                           nd_ode_stats *stats);

ND_LTC_DECLARE(float, f32)
ND_LTC_DECLARE(double, f64)

#endif

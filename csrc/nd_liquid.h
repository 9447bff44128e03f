/* Liquid time-constant relaxation: dx/ds = (a - x) / tau over one frame s in [0, 1],
 * with a and tau held fixed, elementwise. */
#ifndef ND_LIQUID_H
#define ND_LIQUID_H

#include <stddef.h>
#include <stdint.h>

#include "nd_ode.h"

/* Solvers of solve_ltc and the scan: the closed form ND_LTC_EXACT, or one of the nd_ode methods
 * euler, midpoint, rk4 and dopri5 under their nd_ode codes. */
#define ND_LTC_EXACT (-1)

/* The solvers' names in code order: nd_ltc_solver_names[s - ND_LTC_EXACT] names solver s.
 * NULL-terminated; the binding exports it and parses solver names through it. */
extern const char *const nd_ltc_solver_names[];

/* The defaults of every LTC entry point: the closed form, 1 substep, and dopri5's rtol 1e-2,
 * atol 1e-4 and max_steps 100 (per frame). opts gets nd_ode_opts_default's other fields. */
void nd_ltc_defaults(int *solver, int64_t *steps, nd_ode_opts *opts);

/* The rules of the LTC options, with the detail of nd_arg_error: a known solver, steps >= 1,
 * and nd_ode_check_opts on rtol, atol and max_steps (both tolerances 0 refused for dopri5
 * only). opts may be NULL unless the solver is dopri5. The one place they are written, for
 * solve_ltc, the scan and the Liquid model. */
int nd_ltc_check_opts(int solver, int64_t steps, const nd_ode_opts *opts);

/* The rule of time constants and elapsed times (tau of the relaxation, the cells'
 * timespans): every value positive and finite. `name` is the argument reported. */
int nd_liquid_check_positive_f32(int64_t n, const float *v, const char *name);
int nd_liquid_check_positive_f64(int64_t n, const double *v, const char *name);

/* The Liquid layer's time constants from their pre-activation z (docs/models.md §3):
 * tau = softplus(min(z, clamp)) + tau_min, and its backward dz = dtau sigmoid(z) where z < clamp
 * (0 above; tiny cotangents flushed as nd_flush_tiny). One pass each. clamp finite, tau_min
 * positive and finite: ND_LIQUID_TAU_CLAMP and ND_LIQUID_TAU_MIN are the model's values. */
#define ND_LIQUID_TAU_CLAMP 20.0
#define ND_LIQUID_TAU_MIN 0.1
int nd_liquid_tau_check(double clamp, double tau_min);
#define ND_LIQUID_TAU_DECLARE(T, SFX)                                                                \
    int nd_liquid_tau_forward_##SFX(int64_t n, const T *z, double clamp, double tau_min, T *tau);    \
    int nd_liquid_tau_backward_##SFX(int64_t n, const T *z, const T *dtau, double clamp, T *dz);
ND_LIQUID_TAU_DECLARE(float, f32)
ND_LIQUID_TAU_DECLARE(double, f64)

/* Workspace elements for nd_solve_ltc_* on n elements with this solver, in *len. */
int nd_solve_ltc_workspace_len(int solver, int64_t n, size_t *len);

/* out[i] = x(1) for x(0) = x[i], given a[i], tau[i] > 0 (checked, as are the options).
 * solver ND_LTC_EXACT: out = a + (x - a) exp(-1 / tau).
 * ND_ODE_EULER/MIDPOINT/RK4: `steps` equal substeps of 1/steps (computed as the decay factor
 * the steps amount to, see the scan below).
 * ND_ODE_DOPRI5: the whole array as one system; rtol, atol and max_steps of opts, first step
 * 0.25 (opts->dt ignored); work holds nd_solve_ltc_workspace_len elements. Failures of the
 * adaptive solver are returned as their nd_status, with stats->t the frame time reached. */
#define ND_LTC_DECLARE(T, SFX)                                                                   \
    int nd_solve_ltc_##SFX(int solver, int64_t n, const T *x, const T *a, const T *tau,          \
                           int64_t steps, const nd_ode_opts *opts, T *out, T *work,              \
                           nd_ode_stats *stats);

ND_LTC_DECLARE(float, f32)
ND_LTC_DECLARE(double, f64)

/* ---- the Liquid layer scan ------------------------------------------------------------- *
 *
 * Over a sequence of frames t = 0..T-1 for each of B samples of H units:
 *     h_t = solve(h_{t-1}, a_t, tau_t),  h_{-1} = h0 (zeros when h0 is NULL),
 * with a, tau, h of shape [B, T, H] (row-major) and solve one frame of dx/ds = (a - x)/tau.
 *
 * The closed form and every fixed-step method reduce, on this linear equation, to
 * h_t = a + d(tau) (h_{t-1} - a): d = exp(-1/tau) for ND_LTC_EXACT, and R(-1/(k tau))^k for k
 * substeps of a method with stability polynomial R (euler 1 + z, midpoint 1 + z + z^2/2,
 * rk4 up to z^4/24). So these solvers cost one decay factor per element, forward and
 * backward, and give what stepping gives. A factor outside [-1, 1] (too few substeps for a
 * small tau: euler needs k tau > 1/2, rk4 k tau > 0.359) stops the scan with ND_ERR_UNSTABLE. ND_ODE_DOPRI5 integrates each sample's frame as one
 * system of H units with odeint's error control (opts: rtol, atol, max_steps; first step 0.25)
 * and is differentiated by exact backprop through the steps it took.
 *
 * Both passes check the options (nd_ltc_check_opts) and tau (positive and finite).
 *
 * Backward: given dh [B, T, H] (the cotangent of every output), writes da, dtau [B, T, H] and
 * dh0 [B, H] (may be NULL). The forward outputs h must be passed back in.
 *
 * The workspace in bytes; max_steps is that of the options (sized as 1 when below, a value the
 * kernels refuse). */
int nd_ltc_scan_workspace_bytes(int solver, int64_t H, int64_t max_steps, int backward, size_t *bytes);

#define ND_LTC_SCAN_DECLARE(T_, SFX)                                                                 \
    int nd_ltc_scan_forward_##SFX(int solver, int64_t B, int64_t T, int64_t H, const T_ *a,            \
                                  const T_ *tau, const T_ *h0, int64_t steps, const nd_ode_opts *opts, \
                                  T_ *h, void *work, nd_ode_stats *stats);                            \
    int nd_ltc_scan_backward_##SFX(int solver, int64_t B, int64_t T, int64_t H, const T_ *a,           \
                                   const T_ *tau, const T_ *h0, const T_ *h, int64_t steps,           \
                                   const nd_ode_opts *opts, const T_ *dh, T_ *da, T_ *dtau, T_ *dh0,  \
                                   void *work);

ND_LTC_SCAN_DECLARE(float, f32)
ND_LTC_SCAN_DECLARE(double, f64)

#endif

/* Implicit integration of independent samples: Radau IIA order 5 and variable-order BDF 1-5
 * (docs/models.md §8, docs/design.md "Integration").
 *
 * The state is B samples of d values, row-major [B, d]; each row is its own stiff
 * initial-value problem y' = f(t, y) with its own step size (and BDF order), its own Jacobian
 * and LU factors, its own Newton iterations, error norm (RMS over its own d values), counters
 * and status. The driver runs rounds: in each round every live sample advances until it needs
 * right-hand-side values (Radau's three stages, a BDF corrector, the rows of a difference
 * Jacobian) or an analytic Jacobian, and each kind of request is ONE batched callback over the
 * rows of every sample that asked, each row at its own time. Samples that finish or fail leave
 * the working set. Nothing in a sample's arithmetic reads another sample, so its result is
 * bit-identical alone, in any batch and in any order (given callbacks that treat rows
 * independently).
 *
 * radau  Radau IIA of order 5 as in Hairer & Wanner, Solving ODEs II, IV.8 (RADAU5) and SciPy's
 *        Radau: simplified Newton on the transformed collocation system (one real d x d and one
 *        complex d x d LU per factorisation, LAPACK getrf/getrs), Newton convergence estimated
 *        from the contraction rate, whose last value lets the next step stop after one
 *        iteration (Hairer's FACCON); the embedded error estimate filtered through the real LU,
 *        with the extra solve on the first step and after a rejection (IV.8, (8.20));
 *        Gustafsson's predictive step control; the Jacobian recomputed only when Newton
 *        converged slowly, the LU kept while the step does not change; output times from the
 *        collocation polynomial.
 * bdf    Variable-order BDF 1-5 in the NDF form of Shampine & Reichelt (1997) as SciPy's BDF:
 *        modified divided differences at a constant step, rescaled on every step change, the
 *        order chosen after order + 1 equal steps among order - 1, order, order + 1, the
 *        Jacobian recomputed only when Newton fails, the LU recomputed when the step changes
 *        the Newton matrix by more than 30% (CVODE's rule); output times from the
 *        interpolating polynomial of the differences.
 *
 * Tolerances, first step, norms and the limits of step changes are SciPy's (rtol, scalar atol,
 * RMS norm of err / (atol + rtol |y|), factors in [0.2, 10]). A Newton failure with a current
 * Jacobian halves the step; a Newton matrix that is singular five times in a row (the step
 * halved each time) fails the sample with ND_ERR_SINGULAR. */
#ifndef ND_ODE_STIFF_H
#define ND_ODE_STIFF_H

#include <stddef.h>
#include <stdint.h>

#include "nd_ode_samples.h"

typedef enum { ND_STIFF_RADAU = 0, ND_STIFF_BDF = 1, ND_STIFF_AUTO = 2 } nd_stiff_method;

/* The implicit methods of this driver (radau, bdf); ND_STIFF_AUTO is nd_ode_auto.h's switching
 * between dopri5 and radau, named in the same table. */
#define ND_STIFF_METHOD_COUNT 2

/* A sample stopped by the non-stiffness test (opts.nonstiff_detect; not a failure): its state
 * is at stats.t, its next step in stats.h_next. */
#define ND_STIFF_SAMPLE_NONSTIFF 2

/* {"radau", "bdf", "auto", NULL}: the method names by code. */
extern const char *const nd_stiff_method_names[];

typedef struct {
    int method;        /* nd_stiff_method */
    double rtol, atol; /* >= 0, not both 0; rtol below 100 eps of the state's type counts as 100 eps */
    double dt;         /* first step of every sample; 0: chosen per sample (Hairer's algorithm) */
    double max_step;   /* largest |h|; 0 for no limit */
    int64_t max_steps; /* attempted steps (accepted + rejected) per sample, >= 1 */
    /* Called once per round with the smallest fraction of [t[0], t[nt-1]] covered by a live
     * sample; non-zero stops every sample with ND_ERR_INTERRUPTED. */
    int (*poll)(void *poll_ctx, double done);
    void *poll_ctx;
    /* Resumption of samples stopped in an earlier call (nd_ode_samples.h's fields of the same
     * names; each NULL for a plain call): per sample its start time (of its row of y0), first
     * step (> 0, required with t_start), first output row in [1, nt] and attempt budget. */
    const double *t_start, *h_start;
    const int64_t *out_start, *budget;
    /* Radau only: 0 off; else a sample whose next step h satisfies h ||J||_inf <= the explicit
     * bound ND_ODE_STIFF_BOUND after this many accepted steps in a row stops with
     * ND_STIFF_SAMPLE_NONSTIFF. ||J||_inf bounds the spectral radius (Gershgorin), so the
     * explicit method is stable at that step whatever the eigenvalues (LSODA's switch back to
     * the non-stiff method compares the step it could take, bounded the same way, with the
     * current one; Petzold 1983). */
    int nonstiff_detect;
    /* Radau only: each accepted step of each sample, in time order per sample: the sample, the
     * step's start and end times, its start state [d] and its stage increments Z [3, d] (the
     * collocation solution, y_stage_i = y_old + Z_i; pointers of the state's type, valid
     * during the call) and the output rows [out_lo, out_hi) it filled. NULL: none. */
    void (*on_step)(void *step_ctx, int64_t sample, double t_old, double t_new, const void *y_old, const void *z,
                    int64_t out_lo, int64_t out_hi);
    void *step_ctx;
} nd_ode_stiff_opts;

/* radau, the explicit solvers' rtol, atol and max_steps (1e-3, 1e-6, 10000), dt 0, max_step 0,
 * no poll. */
void nd_ode_stiff_opts_default(nd_ode_stiff_opts *opts);

/* Per-sample counters (arrays of B, owned by the caller; any may be NULL) and the totals. nfev
 * counts every row of f evaluated for the sample, difference-Jacobian rows included; njev the
 * Jacobians (analytic or by differences); nlu the LU factorisations (a Radau factorisation is
 * two: the real and the complex matrix). */
typedef struct {
    int64_t *nfev, *njev, *nlu, *accepted, *rejected; /* [B] */
    int64_t *n_out;                                   /* [B] output rows filled */
    double *t;                                        /* [B] time reached */
    int *status;                                      /* [B] ND_OK or the sample's failure */
    int64_t nfev_total, njev_total, nlu_total, rhs_calls, jac_calls, rounds, n_failed;
    double *h_next; /* [B] or NULL: the step a sample stopped by the non-stiffness test would take next */
} nd_ode_stiff_stats;

/* The right-hand side is nd_ode_samples.h's nd_batch_rhs_*: rows i < m of y [m, d] (contiguous)
 * are independent samples, row i at time t[i]. The Jacobian callback has the same shape and
 * writes J [m, d, d] with J[i, r, c] = d f_r / d y_c. Each returns an nd_status; non-zero stops
 * the call. */
typedef int (*nd_batch_jac_f32)(void *ctx, int64_t m, int64_t d, const double *t, const float *y, float *J);
typedef int (*nd_batch_jac_f64)(void *ctx, int64_t m, int64_t d, const double *t, const double *y, double *J);

/* Bytes of workspace nd_odeint_stiff_* needs for B samples of d values of elem_size bytes
 * (4 or 8), in *bytes. Returns an nd_status (ND_ERR_OVERFLOW for absurd sizes). */
int nd_ode_stiff_workspace_size(int method, int64_t B, int64_t d, size_t elem_size, size_t *bytes);

/* The most rows of f one sample asks for in one round (so one call gets at most B times this). */
int64_t nd_ode_stiff_max_rows(int64_t d);

/* y0 [B, d]; t: nt >= 1 output times, strictly monotonic, finite; ys [nt, B, d]: row j of
 * sample s is its state at t[j]; rows a sample did not reach are NaN. y_last [B, d] (may be
 * NULL): each sample's state at stats.t[s]. jac NULL: forward-difference Jacobians, whose d
 * rows per Jacobian go through rhs in the same rounds as the other rows.
 * Returns ND_OK when every sample succeeded; the first failing sample's status when some
 * failed (the others ran to the end); ND_ERR_CALLBACK or ND_ERR_INTERRUPTED (or a callback's
 * own status) when a callback or the poll stopped the whole call; ND_ERR_ARG with a detail
 * (nd_last_error) for bad arguments. */
int nd_odeint_stiff_f32(nd_batch_rhs_f32 rhs, void *rhs_ctx, nd_batch_jac_f32 jac, void *jac_ctx, int64_t B, int64_t d,
                        const float *y0, int64_t nt, const double *t, const nd_ode_stiff_opts *opts, float *ys,
                        float *y_last, void *work, nd_ode_stiff_stats *stats);
int nd_odeint_stiff_f64(nd_batch_rhs_f64 rhs, void *rhs_ctx, nd_batch_jac_f64 jac, void *jac_ctx, int64_t B, int64_t d,
                        const double *y0, int64_t nt, const double *t, const nd_ode_stiff_opts *opts, double *ys,
                        double *y_last, void *work, nd_ode_stiff_stats *stats);

/* Radau's dense output of one recorded step (on_step's y_old and z) in the power form of
 * nd_ode_samples.h's dopri5 coefficients, for nd_ode_dense_eval_* with ND_ODE_DOPRI5: coef [5, d]
 * = y_old, Q_0, Q_1, Q_2, 0 with y(t_old + u h) = y_old + sum_j Q_j u^(j+1) (the collocation
 * polynomial, of degree 3). */
void nd_radau_dense_coef_f32(int64_t d, const float *y_old, const float *z, float *coef);
void nd_radau_dense_coef_f64(int64_t d, const double *y_old, const double *z, double *coef);

/* ---- gradients: the discrete adjoint of Radau's accepted steps (docs/models.md §2) ------------ *
 *
 * The tape of a forward pass through on_step: steps [n_steps, 3] (sample, t_old, t_new), outs
 * [n_steps, 2] (output rows [lo, hi)), y [n_steps, d] (start states) and z [n_steps, 3, d] (stage
 * increments), each sample's steps in time order. */
typedef struct {
    int64_t n_steps;
    const double *steps;
    const int64_t *outs;
    const void *y, *z;
} nd_ode_stiff_tape;

/* Bytes of workspace of nd_ode_stiff_backprop_* (B samples of d values, n_steps steps). */
int nd_ode_stiff_backprop_workspace_size(int64_t B, int64_t d, int64_t n_steps, size_t elem_size, size_t *bytes);

/* Backpropagation through each sample's accepted Radau steps: the step's collocation equations
 * G(Z) = Z_i - h sum_j A_ij f(t + c_j h, y + Z_j) = 0 are differentiated as solved exactly (the
 * Newton iterate the forward pass accepted, within its tolerance of the solution), so with
 * Zbar the cotangent of the stages (from y_new = y + Z_3 and the outputs on the collocation
 * polynomial), lambda solves the 3d x 3d system lambda_k - h J_k^T sum_i A_ik lambda_i =
 * Zbar_k with the Jacobians J_k at the three stages, mu_k = h sum_i A_ik lambda_i, and
 *   ybar_old = ybar_new(direct) + sum_k (lambda_k - Zbar_k)   (= sum_k J_k^T mu_k),
 *   thetabar += sum_k mu_k^T df/dtheta (stage k).
 * No second derivatives and nothing integrated backwards in time (a stiff state integrated
 * backwards grows as fast as it decays forwards). The steps' sizes are taken as given, as in
 * every backpropagation through an adaptive solver. Each round takes the i-th last step of
 * every sample that has one: one Jacobian call and one VJP call over their 3 stages each.
 *
 * jac as nd_batch_jac_*; vjp as nd_ode_samples.h's nd_batch_vjp_* (called with a_out NULL,
 * accumulating dparams; not called when n_params is 0). ybar [nt, B, d]: the cotangents of the
 * outputs; y0bar [B, d] the cotangents of y0; dparams [P] the sum of the samples' parameter
 * gradients (written). */
#define ND_ODE_STIFF_GRAD_DECLARE(T, SFX)                                                                  \
    typedef struct {                                                                                      \
        nd_batch_jac_##SFX jac;                                                                           \
        nd_batch_vjp_##SFX vjp;                                                                           \
        void *ctx;                                                                                        \
    } nd_ode_stiff_grad_fns_##SFX;                                                                        \
    int nd_ode_stiff_backprop_##SFX(const nd_ode_stiff_grad_fns_##SFX *fns, int64_t B, int64_t d, int64_t n_params, \
                                    int64_t nt, const double *t, const nd_ode_stiff_tape *tape, const T *ybar,  \
                                    T *y0bar, T *dparams, void *work);

ND_ODE_STIFF_GRAD_DECLARE(float, f32)
ND_ODE_STIFF_GRAD_DECLARE(double, f64)

#endif

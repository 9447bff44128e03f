/* ODE integration: y' = f(t, y) from t[0] through the output times t[1..nt-1].
 *
 * Fixed-step methods (euler, midpoint, rk4) take n = max(1, round-half-away(|t1 - t0| / dt))
 * equal steps between consecutive output times, so every output time is hit exactly.
 * dopri5 is Dormand-Prince 5(4) with FSAL (6 evaluations per step), Hairer's initial step,
 * RMS error control, and output times filled by the 4th-order dense-output interpolant.
 * Time is always double; the state is float or double. */
#ifndef ND_ODE_H
#define ND_ODE_H

#include <stddef.h>
#include <stdint.h>

/* tsit5 and dop853 run under the independent-sample driver of nd_ode_samples.h only; the
 * coupled solver below takes the fixed-step methods and dopri5. */
typedef enum {
    ND_ODE_EULER = 0,
    ND_ODE_MIDPOINT = 1,
    ND_ODE_RK4 = 2,
    ND_ODE_DOPRI5 = 3,
    ND_ODE_TSIT5 = 4,
    ND_ODE_DOP853 = 5
} nd_ode_method;

#define ND_ODE_METHOD_COUNT 6
/* Methods of the coupled solver nd_odeint_* and its gradients: codes below this. */
#define ND_ODE_COUPLED_METHOD_COUNT 4

/* The methods' names by code, NULL-terminated; the adaptive ones among them. */
extern const char *const nd_ode_method_names[ND_ODE_METHOD_COUNT + 1];
extern const char *const nd_ode_adaptive_method_names[4];

/* The method's name ("rk4"), or NULL for an unknown code. */
const char *nd_ode_method_name(int method);
/* 1 for the adaptive methods (dopri5, tsit5, dop853). */
int nd_ode_method_adaptive(int method);
/* Stages of one step of a method of the coupled solver (dopri5: 7, counting the slope at the
 * new state); 0 for other codes. */
int nd_ode_method_stages(int method);

typedef struct {
    int method;        /* nd_ode_method */
    double rtol, atol; /* dopri5 tolerances, >= 0 and not both 0 */
    double dt;         /* fixed-step: the step to aim for (0: one step per output interval);
                          dopri5: the first step (0: chosen by Hairer's algorithm) */
    int64_t max_steps; /* attempted steps (accepted + rejected) over the whole call, >= 1 */
    /* Called once per attempted step with the fraction of [t[0], t[nt-1]] covered so far;
     * a non-zero return stops with ND_ERR_INTERRUPTED. */
    int (*poll)(void *poll_ctx, double done);
    void *poll_ctx;
    /* Called for every accepted step with its start time t, signed size h, the state y at t
     * (a pointer of the state's type, valid during the call), and the output rows it filled,
     * [out_lo, out_hi). Enough to replay the step: the tape of nd_ode_backprop_*. */
    void (*on_step)(void *step_ctx, double t, double h, const void *y, int64_t out_lo, int64_t out_hi);
    void *step_ctx;
} nd_ode_opts;

/* rtol 1e-3, atol 1e-6, dopri5, dt 0, max_steps 10000, no callbacks. */
void nd_ode_opts_default(nd_ode_opts *opts);

/* The rules of the options every solver call shares (tolerances of adaptive methods, dt,
 * max_steps, the method code), with the detail of nd_arg_error: the one place they are
 * written, for odeint, the LTC relaxation and scan, and the models built on them. */
int nd_ode_check_opts(const nd_ode_opts *opts);
/* The rules of output times every solver shares: nt >= 1 finite times, strictly monotonic. */
int nd_ode_check_times(int64_t nt, const double *t);

typedef struct {
    int64_t nfev;     /* right-hand side evaluations */
    int64_t accepted; /* accepted steps (all steps of fixed-step methods) */
    int64_t rejected; /* rejected steps (dopri5) */
    int64_t n_out;    /* rows of the output filled (t[0..n_out-1]) */
    double t;         /* time the state reached (the end time on success) */
    int status;       /* nd_status of the call */
} nd_ode_stats;

/* Elements of the state's type that nd_odeint_* needs as workspace for a state of n
 * elements, in *len. Returns an nd_status (ND_ERR_OVERFLOW for absurd n). */
int nd_odeint_workspace_len(int method, int64_t n, size_t *len);

/* rhs(ctx, t, y, dy) writes dy = f(t, y) for the whole state and returns an nd_status;
 * any non-zero return stops the solver with that status.
 *
 * t: nt >= 1 output times, strictly monotonic (either direction), finite.
 * ys: [nt, n] output, ys[0] = y0. On failure rows [0, stats.n_out) are filled and y_last
 * (n elements, may be NULL) holds the state at stats.t. Returns stats.status. */
#define ND_ODE_DECLARE(T, SFX)                                                                     \
    typedef int (*nd_rhs_##SFX)(void *ctx, double t, const T *y, T *dy);                           \
    int nd_odeint_##SFX(nd_rhs_##SFX rhs, void *ctx, int64_t n, const T *y0, int64_t nt,           \
                        const double *t, const nd_ode_opts *opts, T *ys, T *y_last, T *work,        \
                        nd_ode_stats *stats);

ND_ODE_DECLARE(float, f32)
ND_ODE_DECLARE(double, f64)

/* ---- gradients ------------------------------------------------------------------------ *
 *
 * Both backward modes take a vector-Jacobian product of the right-hand side:
 *   vjp(ctx, t, y, a, a_out, dparams, accumulate) writes a_out = a^T df/dy (if non-NULL) and
 *   writes or adds (accumulate) dparams = a^T df/dtheta for the P parameters of f.
 * ybar [nt, n] holds the cotangents of every output ys[i]; the results are y0bar [n], the
 * cotangent of y0, and dparams [P], the gradient of the parameters (written, not added). */

/* The accepted steps of a forward pass, as recorded through on_step, in the layout the
 * independent-sample driver's records share (nd_ode_samples.h): per step its sample, round,
 * start time t and signed size h (steps [n_steps, 4]; the coupled solver's steps are of sample
 * 0, one per round), the output rows it filled (outs [n_steps, 2]: [lo, hi)) and the state at
 * its start (y [n_steps, n], of the state's type). */
typedef struct {
    int64_t n_steps;
    const double *steps;
    const int64_t *outs;
    const void *y;
} nd_ode_tape;

/* Workspace elements of nd_ode_backprop_* and nd_ode_adjoint_*, in *len. */
int nd_ode_backprop_workspace_len(int method, int64_t n, size_t *len);
int nd_ode_adjoint_workspace_len(int method, int64_t n, int64_t n_params, size_t *len);

/* Exact discrete backpropagation through the recorded steps (stages recomputed from the
 * stored step-start states, each argument formed as the forward pass formed it; dopri5 outputs
 * inside a step go back through its dense output). Memory O(steps * n) for the tape, held by
 * the caller. nd_ode_backprop_kept_* below reads the stages a forward solve kept instead.
 *
 * Continuous adjoint (Chen et al. 2018): integrates [y, a, g]' = [f, -a^T f_y, -a^T f_theta]
 * from t[nt-1] back to t[0] with the method and options of the forward pass, starting from
 * the forward final state y_end, adding ybar[i] to a at each output time. Memory independent
 * of the number of steps; stats report the backward solve.
 *
 * fns holds the right-hand side, its VJP and their context. With keep and vjp_kept (both or
 * neither), a VJP reuses what the evaluation at the same point kept instead of evaluating the
 * field again: backprop evaluates stage i into slot i (nd_ode_method_stages() slots), the
 * adjoint's augmented right-hand side uses slot 0. */
#define ND_ODE_GRAD_DECLARE(T, SFX)                                                                 \
    typedef int (*nd_vjp_##SFX)(void *ctx, double t, const T *y, const T *a, T *a_out, T *dparams,  \
                                int accumulate);                                                    \
    typedef int (*nd_rhs_keep_##SFX)(void *ctx, int slot, double t, const T *y, T *dy);              \
    typedef int (*nd_vjp_kept_##SFX)(void *ctx, int slot, double t, const T *y, const T *a, T *a_out, \
                                     T *dparams, int accumulate);                                   \
    typedef struct {                                                                                \
        nd_rhs_##SFX rhs;                                                                           \
        nd_vjp_##SFX vjp;                                                                           \
        nd_rhs_keep_##SFX keep;          /* optional, with vjp_kept */                              \
        nd_vjp_kept_##SFX vjp_kept;                                                                 \
        void *ctx;                                                                                  \
    } nd_ode_grad_fns_##SFX;                                                                        \
    int nd_ode_backprop_##SFX(int method, const nd_ode_grad_fns_##SFX *fns, int64_t n, int64_t n_params, \
                              int64_t nt, const double *t, const nd_ode_tape *tape, const T *ybar,   \
                              T *y0bar, T *dparams, T *work);                                       \
    int nd_ode_adjoint_##SFX(const nd_ode_grad_fns_##SFX *fns, int64_t n, int64_t n_params, int64_t nt, \
                             const double *t, const T *y_end, const T *ybar, const nd_ode_opts *opts, \
                             T *y0bar, T *dparams, T *work, nd_ode_stats *stats);

ND_ODE_GRAD_DECLARE(float, f32)
ND_ODE_GRAD_DECLARE(double, f64)

/* ---- kept stages ------------------------------------------------------------------------ *
 *
 * The stage evaluations of a coupled forward solve's accepted steps, kept so that
 * nd_ode_backprop_kept_* reads what the forward pass computed instead of evaluating every stage
 * again (the replay of nd_ode_backprop_*, whose gradients it reproduces bit for bit: the replay
 * forms each stage's argument with the forward pass's operations). Per (step, stage) the stage's
 * argument (n elements; stage 0's is the tape's state) and what the right-hand side's VJP reads
 * (keep_len elements, nd_field_keep_len() for a field: an MLP field's pre-activations and
 * outputs): memory O(steps * stages * (n + keep_len)), for an MLP field on a batch
 * O(steps * stages * batch * the sum of its widths). dopri5's first stage of a step is the last
 * stage of the step before (FSAL), held once; a rejected step's stages are overwritten by the next
 * attempt. The object keeps its buffers from one solve to the next: a solve starts by forgetting
 * the steps it held and reuses the memory.
 *
 * A byte budget bounds the stage buffers (docs/models.md §2): when keeping the next step would
 * take them past it, the solve keeps no more steps (those steps' stages are evaluated through
 * one scratch buffer of the object's), and the backward pass replays the steps it did not keep
 * from the tape, the same bits either way. Buffers of an earlier solve beyond the budget are freed
 * when a solve starts. */
typedef struct nd_ode_kept nd_ode_kept;

/* The budget a new object gets: the smaller of 1 GiB and an eighth of the machine's physical
 * memory (1 GiB where that is unknown). A kept step of an MLP field costs stages * batch *
 * (state + 2 * the layer widths) values; a training step that fits in the budget reads them
 * back from memory in about the time the replay would spend on its products. */
size_t nd_ode_kept_default_budget(void);

/* A new, empty object with the default budget (NULL when out of memory); nd_ode_kept_free(NULL)
 * does nothing. */
nd_ode_kept *nd_ode_kept_new(void);
void nd_ode_kept_free(nd_ode_kept *kept);
/* The byte budget of the stage buffers from the next solve on: ND_ERR_ARG, with a detail, for a
 * negative one; 0 keeps nothing (the backward pass replays every step). */
int nd_ode_kept_set_budget(nd_ode_kept *kept, int64_t bytes);
/* The rule of a budget of either kind of kept stages (kept not NULL, bytes >= 0), its size in
 * *budget. */
int nd_ode_kept_budget_of(const void *kept, int64_t bytes, size_t *budget);
/* Accepted steps whose stages are held (the solve's first ones; 0 before a solve or after one
 * that failed), whether they are all of the solve's steps, and bytes of the stage buffers. */
int64_t nd_ode_kept_steps(const nd_ode_kept *kept);
int nd_ode_kept_complete(const nd_ode_kept *kept);
size_t nd_ode_kept_bytes(const nd_ode_kept *kept);

/* keep(ctx, kept, t, y, dy) writes dy = f(t, y) and keeps what vjp_kept needs at the memory
 * `kept` (keep_len elements); vjp_kept(ctx, kept, t, y, a, a_out, dparams, accumulate) is the
 * VJP of nd_ode.h's gradients at that evaluation (y is the same argument). */
#define ND_ODE_KEPT_DECLARE(T, SFX)                                                                 \
    typedef int (*nd_rhs_keep_at_##SFX)(void *ctx, void *kept, double t, const T *y, T *dy);          \
    typedef int (*nd_vjp_kept_at_##SFX)(void *ctx, const void *kept, double t, const T *y, const T *a, \
                                        T *a_out, T *dparams, int accumulate);                       \
    /* nd_odeint_* (fixed-step methods and dopri5) keeping every accepted step's stages in kept. */    \
    int nd_odeint_keep_##SFX(nd_rhs_keep_at_##SFX keep, void *ctx, size_t keep_len, int64_t n, const T *y0, \
                             int64_t nt, const double *t, const nd_ode_opts *opts, T *ys, T *y_last, T *work, \
                             nd_ode_kept *kept, nd_ode_stats *stats);                                 \
    /* nd_ode_backprop_* through the stages kept by the solve that recorded the tape, replaying    \
     * with fns the steps beyond its budget (fns may be NULL when the object holds every step's     \
     * stages): ND_ERR_ARG, with a detail, for an object that holds                                 \
     * another solve (its method, size, steps, output rows or initial state differ from the call's) \
     * or none. */                                                                                   \
    int nd_ode_backprop_kept_##SFX(int method, const nd_ode_grad_fns_##SFX *fns,                       \
                                   nd_vjp_kept_at_##SFX vjp_kept, void *ctx, int64_t n,                \
                                   int64_t n_params, int64_t nt, const double *t, const nd_ode_tape *tape, \
                                   const nd_ode_kept *kept, const T *ybar, T *y0bar, T *dparams, T *work);

ND_ODE_KEPT_DECLARE(float, f32)
ND_ODE_KEPT_DECLARE(double, f64)

#endif

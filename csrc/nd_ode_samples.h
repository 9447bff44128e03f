/* Independent-sample adaptive integration (docs/models.md §8, docs/design.md "Integration").
 *
 * The state is B samples of d values, row-major [B, d]; each row is its own initial-value
 * problem y' = f(t, y) with its own step size, accept/reject decisions, error norm (RMS over
 * its own d values), counters and status. A driver runs rounds: every live sample attempts
 * one step per round, and each stage of the round is ONE batched right-hand-side call over the
 * live rows, each at its own time. Samples that finish or fail leave the working set (the
 * rows are compacted), so the work follows each sample's own needs. With opts.row_blocks the
 * stages run block of rows by block of rows instead (each stage one call per block), so that a
 * block's stage vectors stay in cache from one stage to the next.
 *
 * Nothing in a sample's arithmetic reads another row: its result is bit-identical alone, in
 * any batch, in any order and at any thread count (given a right-hand side that treats rows
 * independently, as the built-in fields and NumPy elementwise code do).
 *
 * Driver and steppers: the driver owns step-size control, output times, dense output, events
 * and the working set; a stepper is the coefficient set of one explicit Runge-Kutta pair
 * (its tableau, its error estimator and its continuous extension):
 *   dopri5  Dormand & Prince 5(4), FSAL, Shampine's 4th-order dense output.
 *   tsit5   Tsitouras 5(4) (2011), FSAL, its own 4th-order dense output.
 *   dop853  Dormand & Prince 8(5,3) with Hairer's combined 5th/3rd-order error estimator and
 *           the 7th-order dense output of three extra stages (Hairer's DOP853).
 *
 * Step control (docs/models.md §1): dopri5 and tsit5 accept when the error norm is <= 1 and
 * scale the step by clamp(0.9 err^(-1/5), 0.2, 10) (10 when err = 0), or by
 * max(0.2, 0.9 err^(-1/4)) on rejection. dop853 uses the exponent -1/8 both ways and, as
 * SciPy's DOP853 does, does not grow the step right after a rejection. The first step is
 * Hairer's (Solving ODEs I, II.4) with the estimator's order, unless opts.dt gives it. */
#ifndef ND_ODE_SAMPLES_H
#define ND_ODE_SAMPLES_H

#include <stddef.h>
#include <stdint.h>

#include "nd_ode.h"

/* A sample stopped by a terminal event (a success: its outputs end at the event). Failures
 * use the negative nd_status codes; 0 is success. */
#define ND_ODE_SAMPLE_EVENT 1
/* A sample stopped by the stiffness test (opts.stiff_detect; not a failure): its state is at
 * stats.t, its next step in stats.h_next. */
#define ND_ODE_SAMPLE_STIFF 2
/* Hairer's DOPRI5 stiffness test (Hairer & Wanner, Solving ODEs II, IV.2): an accepted step
 * whose h |lambda| ~ |h| ||k7 - k6|| / ||y7 - y6|| (both stages at t + h) passes this bound, a
 * little under dopri5's stability boundary on the negative axis (about 3.3), is a stiff one. */
#define ND_ODE_STIFF_BOUND 3.25

/* Vectors of the dense output of one step of one sample (y(t + theta h) from these alone). */
int nd_ode_dense_vectors(int method);
/* 1 for the methods of this driver (dopri5, tsit5, dop853). */
int nd_ode_samples_method(int method);

typedef struct {
    int method;        /* ND_ODE_DOPRI5, ND_ODE_TSIT5 or ND_ODE_DOP853 */
    double rtol, atol; /* >= 0, not both 0 */
    double dt;         /* first step of every sample; 0: Hairer's algorithm per sample */
    int64_t max_steps; /* attempted steps (accepted + rejected) per sample, >= 1 */
    /* Called once per round with the smallest fraction of [t[0], t[nt-1]] covered by a live
     * sample; non-zero stops every sample with ND_ERR_INTERRUPTED. */
    int (*poll)(void *poll_ctx, double done);
    void *poll_ctx;

    /* Events (as SciPy's solve_ivp): n_events functions g_k(t, y) per sample. A sign change
     * of g_k over an accepted step (from < 0 to >= 0 is rising, from > 0 to <= 0 falling)
     * counts when direction[k] is 0 or has its sign; its time is located on the step's dense
     * output by the Illinois method to 4 ulps of t. terminal[k] > 0 stops the sample at its
     * terminal[k]-th event of function k. With ev_c non-NULL the functions are the built-in
     * linear ones g_k(y) = ev_c[k, :] . y - ev_d[k] ([n_events, d] and [n_events]), else the
     * event callback of nd_odeint_samples_*. direction and terminal may be NULL (0). */
    int64_t n_events;
    const int *direction;
    const int64_t *terminal;
    const double *ev_c, *ev_d;
    /* Each located event in time order per sample: the sample, the function k, its time and
     * the state there (a pointer of the state's type, valid during the call). */
    void (*on_event)(void *event_ctx, int64_t sample, int64_t k, double t, const void *y);
    void *event_ctx;

    /* Each accepted step of each sample, in rounds: the round, the sample, the step's start
     * time t and signed size h, the state at t, the output rows [out_lo, out_hi) it filled,
     * and (with dense non-zero, else NULL) its nd_ode_dense_vectors() x d dense coefficients
     * for nd_ode_dense_eval_*. */
    int dense;
    void (*on_step)(void *step_ctx, int64_t round, int64_t sample, double t, double h, const void *y,
                    const void *dense, int64_t out_lo, int64_t out_hi);
    void *step_ctx;

    /* Quadrature along each sample's accepted steps (the continuous adjoint's parameter
     * gradient, docs/models.md §2): after the decisions of a round, for every stage i with a
     * non-zero solution weight b_i, quad(quad_ctx, m, d, t, z, w) receives the stage states z
     * [m, d] of the m steps accepted in that round (the values their right-hand-side calls
     * saw; a pointer of the state's type), their times t [m] and weights w = h b_i [m]. A
     * quantity g' = q(t, y) integrated beside y by the same method, left out of the error
     * norm, advances by sum w q(t, z): the callback accumulates it. */
    int (*quad)(void *quad_ctx, int64_t m, int64_t d, const double *t, const void *z, const double *w);
    void *quad_ctx;

    /* Resumption of samples stopped in an earlier call (the automatic method's phases); each
     * NULL for a plain call. Per sample: t_start[s] the time of its row of y0 (each between
     * t[0] and t[nt-1]), h_start[s] > 0 its first step, out_start[s] in [1, nt] the first
     * output row it fills (the rows before are left as they are, except row 0, y0 as always),
     * budget[s] the attempts it may still make (in place of max_steps). */
    const double *t_start, *h_start;
    const int64_t *out_start, *budget;
    /* Stiffness detection (dopri5 and tsit5, whose last two stages are both at t + h): 0 off;
     * else, testing every accepted step against ND_ODE_STIFF_BOUND, a sample whose count of
     * stiff steps reaches stiff_detect (six non-stiff steps in a row clear it, as in Hairer's
     * DOPRI5) stops with ND_ODE_SAMPLE_STIFF at the end of that step. */
    int stiff_detect;
    /* 1 when a call of rhs on a few rows costs those rows' share of a call on many (a field
     * evaluated row by row, nd_field_row_wise), so the stages may run on blocks of rows small
     * enough for their stage vectors to stay in cache (nd_ode_samples_block_rows); 0: every
     * stage is one call over the whole working set. The results are the same bits either way. */
    int row_blocks;
} nd_ode_samples_opts;

/* Rows per block of the stages with opts.row_blocks: as many as keep a block's stage vectors
 * (the method's slopes and the driver's own per-element arrays) within about a core's L2
 * cache, but at least enough for every kernel thread to take a share of each elementwise pass. */
int64_t nd_ode_samples_block_rows(int method, int64_t d, size_t elem_size, int threads);

/* rtol 1e-3, atol 1e-6, dopri5, dt 0, max_steps 10000, no events, no callbacks. */
void nd_ode_samples_opts_default(nd_ode_samples_opts *opts);

/* Per-sample counters (arrays of B, owned by the caller) and the whole call's totals. */
typedef struct {
    int64_t *nfev, *accepted, *rejected; /* [B] */
    int64_t *n_out;                      /* [B] output rows filled */
    double *t;                           /* [B] time reached (the event time after a terminal event) */
    int *status;                         /* [B] ND_OK, ND_ODE_SAMPLE_EVENT or a failure's nd_status */
    int64_t nfev_total, rhs_calls, rounds, n_failed;
    double *h_next; /* [B] or NULL: the step a sample stopped by the stiffness test would take next */
} nd_ode_samples_stats;

/* Bytes of workspace nd_odeint_samples_* needs, in *bytes. */
int nd_ode_samples_workspace_size(int method, int64_t B, int64_t d, int64_t n_events, size_t elem_size,
                                  size_t *bytes);

/* rhs(ctx, m, d, t, y, dy): rows i < m of y and dy ([m, d], contiguous) are independent
 * samples at time t[i]; returns an nd_status (non-zero stops the call).
 * ev(ctx, m, n_events, t, y, g): g [m, n_events] at the rows of y [m, d] and times t[m].
 *
 * y0 [B, d]; t: nt >= 1 output times, strictly monotonic, finite; ys [nt, B, d]: row j of
 * sample s is its state at t[j]; rows a sample did not reach (failure, terminal event) are
 * NaN. y_last [B, d] (may be NULL): each sample's state at stats.t[s].
 * Returns ND_OK when every sample succeeded or stopped at a terminal event; the first failing
 * sample's status when some failed (the others ran to the end); ND_ERR_CALLBACK or
 * ND_ERR_INTERRUPTED when a callback or the poll stopped the whole call; ND_ERR_ARG with a
 * detail (nd_last_error) for bad arguments. */
#define ND_ODE_SAMPLES_DECLARE(T, SFX)                                                                  \
    typedef int (*nd_batch_rhs_##SFX)(void *ctx, int64_t m, int64_t d, const double *t, const T *y, T *dy); \
    typedef int (*nd_batch_event_##SFX)(void *ctx, int64_t m, int64_t n_events, const double *t, const T *y, \
                                        T *g);                                                         \
    int nd_odeint_samples_##SFX(nd_batch_rhs_##SFX rhs, void *ctx, nd_batch_event_##SFX ev, void *ev_ctx,     \
                                int64_t B, int64_t d, const T *y0, int64_t nt, const double *t,               \
                                const nd_ode_samples_opts *opts, T *ys, T *y_last, void *work,                \
                                nd_ode_samples_stats *stats);                                                 \
    /* out[i] = the dense output of row i at theta[i] (0 at the step's start, 1 at its end) from    \
     * coef [m, nd_ode_dense_vectors(method), d]. */                                                 \
    int nd_ode_dense_eval_##SFX(int method, int64_t m, int64_t d, const double *theta, const T *coef, T *out);

ND_ODE_SAMPLES_DECLARE(float, f32)
ND_ODE_SAMPLES_DECLARE(double, f64)

/* ---- gradients (docs/models.md §2) ----------------------------------------------------- *
 *
 * The tape of a forward pass is nd_ode.h's nd_ode_tape: per accepted step its sample, round,
 * start time and signed size, output rows and start state, in the order on_step reported them
 * (rounds ascending). */
typedef nd_ode_tape nd_ode_samples_tape;

/* Bytes of workspace of nd_ode_samples_backprop_* and nd_ode_samples_adjoint_*, in *bytes. */
int nd_ode_samples_backprop_workspace_size(int method, int64_t B, int64_t d, size_t elem_size, size_t *bytes);
int nd_ode_samples_adjoint_workspace_size(int method, int64_t B, int64_t d, size_t elem_size, size_t *bytes);
/* Slots of kept linearisations the backward pass uses (stage i of a step in slot i). */
int nd_ode_samples_backprop_slots(int method);

/* Both take the right-hand side on rows (nd_batch_rhs_*) and its vector-Jacobian product on
 * rows: vjp(ctx, m, d, t, y, a, a_out, dparams, accumulate) writes a_out [m, d] = a^T df/dy
 * row by row (if non-NULL) and writes or adds dparams [P] = sum over the rows of a^T df/dtheta
 * (if non-NULL). With keep and vjp_kept (both or neither) a VJP at the rows of the last
 * evaluation into the same slot reuses what that evaluation kept. ybar [nt, B, d] holds the
 * cotangents of every output; y0bar [B, d] gets the cotangent of y0 and dparams [P] the sum
 * over the samples of their parameter gradients.
 *
 * Backprop: exact discrete backpropagation through each sample's own accepted steps. The
 * rounds are replayed last to first; each round's steps are one batch: their stages
 * recomputed from the recorded start states (bit for bit the forward's), or read from the
 * stages the forward pass kept (nd_ode_samples_backprop_kept_* below), outputs inside a step
 * taken back through its dense output.
 *
 * Adjoint (Chen et al. 2018): every sample integrates its own [y, a]' = [f, -a^T f_y] from
 * t[nt-1] back to t[0] with its own step control (the error norm over its 2d values), starting
 * from y_end [B, d] and adding ybar[j] to a at each output time t[j] (one driver call per
 * output interval; opts.max_steps is per sample and interval, opts' events and callbacks are
 * not used). The parameter gradient g' = -a^T f_theta goes along as a quadrature over each
 * sample's accepted steps (opts.quad), outside the error norm. stats [B] (may be NULL) sums the
 * counters over the intervals; t is the time reached and status the sample's status. */
#define ND_ODE_SAMPLES_GRAD_DECLARE(T, SFX)                                                              \
    typedef int (*nd_batch_vjp_##SFX)(void *ctx, int64_t m, int64_t d, const double *t, const T *y, const T *a, \
                                      T *a_out, T *dparams, int accumulate);                              \
    typedef int (*nd_batch_rhs_keep_##SFX)(void *ctx, int slot, int64_t m, int64_t d, const double *t, const T *y, \
                                           T *dy);                                                        \
    typedef int (*nd_batch_vjp_kept_##SFX)(void *ctx, int slot, int64_t m, int64_t d, const double *t,     \
                                           const T *y, const T *a, T *a_out, T *dparams, int accumulate); \
    typedef struct {                                                                                      \
        nd_batch_rhs_##SFX rhs;                                                                           \
        nd_batch_vjp_##SFX vjp;                                                                           \
        nd_batch_rhs_keep_##SFX keep; /* optional, with vjp_kept */                                        \
        nd_batch_vjp_kept_##SFX vjp_kept;                                                                 \
        void *ctx;                                                                                        \
    } nd_ode_samples_grad_fns_##SFX;                                                                      \
    int nd_ode_samples_backprop_##SFX(int method, const nd_ode_samples_grad_fns_##SFX *fns, int64_t B,        \
                                      int64_t d, int64_t n_params, int64_t nt, const double *t,             \
                                      const nd_ode_samples_tape *tape, const T *ybar, T *y0bar, T *dparams, \
                                      void *work);                                                        \
    int nd_ode_samples_adjoint_##SFX(const nd_ode_samples_grad_fns_##SFX *fns, int64_t B, int64_t d,          \
                                     int64_t n_params, int64_t nt, const double *t, const T *y_end,         \
                                     const T *ybar, const nd_ode_samples_opts *opts, T *y0bar, T *dparams,   \
                                     void *work, nd_ode_samples_stats *stats);

ND_ODE_SAMPLES_GRAD_DECLARE(float, f32)
ND_ODE_SAMPLES_GRAD_DECLARE(double, f64)

/* ---- kept stages (docs/models.md §2) --------------------------------------------------- *
 *
 * The stage evaluations of a per-sample forward solve's accepted steps, kept so that
 * nd_ode_samples_backprop_kept_* reads what the forward pass computed instead of evaluating the
 * stages again (nd_ode.h's kept stages, for the coupled solver, do the same). The driver runs
 * each round's stages on the live rows into one buffer per round (blocks of rows fill their
 * rows of it), and after the step control moves the accepted rows' stages down over the
 * rejected ones, so that a round's steps, in the tape's order, hold every kept stage as one
 * evaluation of their m rows: the stage's argument [m, d] and the right-hand side's kept arrays
 * [m, widths[j]] one after another. A step keeps its stages 1 to stages-2: the first is the
 * slope at the step's start (evaluated a round or more before, by the step that ended there, or
 * at the start), which the backward pass evaluates again from the tape's state, and the last
 * feeds only the dense output, kept in the rounds where a live row has an output inside its
 * step (dop853's such rounds, whose dense output also reads extra stages, are replayed whole).
 * Memory O(accepted steps * (stages - 1) * (d + sum widths)). The object keeps its buffers
 * from one solve to the next.
 *
 * A byte budget bounds the round buffers (nd_ode.h's kept stages have one too, and the same
 * default, nd_ode_kept_default_budget()): when keeping the next round would take them past it,
 * the solve keeps no more rounds, and the backward pass replays the rounds it did not keep (the
 * same bits). Buffers of an earlier solve beyond the budget are freed when a solve starts. */
#define ND_SAMPLES_KEEP_ARRAYS 32
typedef struct nd_ode_samples_kept nd_ode_samples_kept;

nd_ode_samples_kept *nd_ode_samples_kept_new(void); /* NULL when out of memory */
void nd_ode_samples_kept_free(nd_ode_samples_kept *kept);
/* The byte budget of the round buffers from the next solve on (ND_ERR_ARG, with a detail, for a
 * negative one; 0 keeps nothing). */
int nd_ode_samples_kept_set_budget(nd_ode_samples_kept *kept, int64_t bytes);
/* Accepted steps whose stages are held (those of the solve's first rounds; 0 when the last solve
 * stopped early), whether they are all of the solve's steps, and bytes of the round buffers. */
int64_t nd_ode_samples_kept_steps(const nd_ode_samples_kept *kept);
int nd_ode_samples_kept_complete(const nd_ode_samples_kept *kept);
size_t nd_ode_samples_kept_bytes(const nd_ode_samples_kept *kept);

/* keep_at(ctx, kept, rows, lo, m, d, t, y, dy): the right-hand side on m rows (y, dy [m, d]),
 * keeping what vjp_kept_at needs as rows [lo, lo + m) of an evaluation of `rows` rows at `kept`
 * (arrays [rows, widths[j]]); vjp_kept_at(ctx, kept, m, d, t, y, a, a_out, dparams, accumulate)
 * is nd_batch_vjp_* at the evaluation of m rows kept at `kept` (nd_field_eval_rows_keep_at_*,
 * nd_field_vjp_rows_kept_at_*). */
#define ND_ODE_SAMPLES_KEEP_DECLARE(T, SFX)                                                                 \
    typedef int (*nd_batch_rhs_keep_at_##SFX)(void *ctx, void *kept, int64_t rows, int64_t lo, int64_t m,     \
                                              int64_t d, const double *t, const T *y, T *dy);                 \
    typedef int (*nd_batch_vjp_kept_at_##SFX)(void *ctx, const void *kept, int64_t m, int64_t d,              \
                                              const double *t, const T *y, const T *a, T *a_out, T *dparams,  \
                                              int accumulate);                                               \
    /* nd_odeint_samples_* keeping every accepted step's stages in kept: rhs for the stages not   \
     * kept, keep_at for the others; opts.quad is not available. kept holds the solve's stages   \
     * when it returns ND_OK (or a failure of some samples), else none. */                        \
    int nd_odeint_samples_keep_##SFX(nd_batch_rhs_##SFX rhs, nd_batch_rhs_keep_at_##SFX keep_at, void *ctx,  \
                                     int n_widths, const int64_t *widths, nd_batch_event_##SFX ev,           \
                                     void *ev_ctx, int64_t B, int64_t d, const T *y0, int64_t nt,            \
                                     const double *t, const nd_ode_samples_opts *opts, T *ys, T *y_last,      \
                                     void *work, nd_ode_samples_kept *kept, nd_ode_samples_stats *stats);   \
    /* nd_ode_samples_backprop_* through the stages kept by the solve that recorded the tape      \
     * (the same bits): fns for the first stage of each step and the rounds replayed whole;        \
     * ND_ERR_ARG, with a detail, for the stages of another solve. */                             \
    int nd_ode_samples_backprop_kept_##SFX(int method, const nd_ode_samples_grad_fns_##SFX *fns,             \
                                           nd_batch_vjp_kept_at_##SFX vjp_kept_at, int64_t B, int64_t d,     \
                                           int64_t n_params, int64_t nt, const double *t,                    \
                                           const nd_ode_samples_tape *tape, const nd_ode_samples_kept *kept,  \
                                           const T *ybar, T *y0bar, T *dparams, void *work);

ND_ODE_SAMPLES_KEEP_DECLARE(float, f32)
ND_ODE_SAMPLES_KEEP_DECLARE(double, f64)

#endif

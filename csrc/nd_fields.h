/* Built-in vector fields dy/dt = f(t, y), evaluated entirely in C.
 *
 * A field acts on a batch: the state is `batch` rows of `dim` features, row-major. An
 * nd_field describes the field and points at its parameters (arrays of the state's type,
 * owned by the caller) and at its scratch memory. */
#ifndef ND_FIELDS_H
#define ND_FIELDS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    ND_FIELD_LINEAR = 0, /* dy = A y + b:  A [dim, dim], b [dim] or NULL */
    ND_FIELD_LORENZ = 1, /* dim 3: sigma (y1 - y0), y0 (rho - y2) - y1, y0 y1 - beta y2 */
    ND_FIELD_MLP = 2,    /* dy = act_L(... act_1(y W_1 + b_1) ...) W_L + b_L) */
    ND_FIELD_RELAX = 3,  /* dy = (a - y) / tau, elementwise; a, tau [batch, dim] */
    ND_FIELD_POLY = 4,   /* dy_r = sum over terms k with target[k] = r of coef[k] prod_j y_j^powers[k, j] */
    ND_FIELD_MEMORY = 5, /* a memory network of nd_memories.h (docs/models.md §9, §10) */
    ND_FIELD_HYBRID = 6, /* a hybrid energy model's field or a target system (nd_hybrid.h) */
    ND_FIELD_FLOW = 7,   /* a chaotic flow of the catalogue (nd_flows.h, docs/models.md §12) */
    ND_FIELD_KIND_COUNT = 8
} nd_field_kind;

/* The kinds' names by code ("linear", "lorenz", "mlp", "relax", "polynomial", "memory",
 * "hybrid", "flow"), NULL-terminated. */
extern const char *const nd_field_kind_names[ND_FIELD_KIND_COUNT + 1];

#define ND_FIELD_MAX_POWER 64
#define ND_FIELD_FLOW_PARAMS 8 /* parameters of a flow of the catalogue, at most */

#define ND_FIELD_MAX_LAYERS 16
#define ND_FIELD_MAX_SLOTS 16 /* dop853's stages with its dense output's */

typedef struct {
    int kind;
    int64_t batch, dim;
    /* LINEAR */
    const void *A, *b;
    /* LORENZ */
    double sigma, rho, beta;
    /* MLP: n_layers dense layers; widths[0] = widths[n_layers] = dim */
    int n_layers;
    int64_t widths[ND_FIELD_MAX_LAYERS + 1];
    const void *weights[ND_FIELD_MAX_LAYERS]; /* [widths[l], widths[l+1]] */
    const void *biases[ND_FIELD_MAX_LAYERS];  /* [widths[l+1]] or NULL */
    int acts[ND_FIELD_MAX_LAYERS];            /* nd_act codes */
    /* [widths[l+1], widths[l]]: weights[l] transposed (nd_field_prepare), for the VJPs' input
     * products; NULL: they read weights[l] transposed */
    const void *weights_t[ND_FIELD_MAX_LAYERS];
    /* RELAX */
    const void *a, *tau;
    /* POLY: n_terms monomials; coef [n_terms] of the state's type, target [n_terms] in
     * [0, dim), powers [n_terms, dim] in [0, ND_FIELD_MAX_POWER] (mass-action kinetics, Van
     * der Pol, HIRES, OREGO: the stiff test problems of docs/models.md §8 are polynomial) */
    int64_t n_terms;
    const void *coef;
    const int64_t *target, *powers;
    /* MEMORY: an nd_memory_field */
    const void *memory;
    /* HYBRID: an nd_hybrid_field */
    const void *hybrid;
    /* FLOW: the system (nd_flow_system) and its parameters, constants of the field */
    int flow;
    double flow_params[ND_FIELD_FLOW_PARAMS];
    /* Linearisation slots (0 to ND_FIELD_MAX_SLOTS) for nd_field_eval_keep_* and
     * nd_field_vjp_kept_*; set before sizing the scratch. */
    int keep_slots;
    /* scratch of nd_field_workspace_len() elements of the state's type */
    void *work;
    /* The scratch whose head holds the tables that do not depend on the state (a memory
     * network's codes, nd_memories.c), built by the first evaluation in it and read by the
     * next ones; NULL (as a zeroed field starts) until then. Set it back to NULL before the
     * scratch at `work` holds anything else. */
    const void *tables_for;
} nd_field;

/* Check the description (kind, sizes, layer widths, activation codes). Returns an nd_status. */
int nd_field_check(const nd_field *f);

/* Scratch elements the field needs for one evaluation or one VJP, and for its keep_slots
 * linearisation slots, in *len. */
int nd_field_workspace_len(const nd_field *f, size_t *len);
/* The same, large enough for nd_field_jac_* as well (at least nd_field_workspace_len). */
int nd_field_jac_workspace_len(const nd_field *f, size_t *len);

/* Number of parameters P of the field, in the flat layout of nd_field_vjp_*:
 * LINEAR: A (row-major) then b if present; LORENZ: sigma, rho, beta;
 * MLP: for each layer its weights (row-major) then its bias if present;
 * RELAX: a then tau (batch * dim each); POLY: coef (its targets and powers are structure). */
int64_t nd_field_param_count(const nd_field *f);

/* 1 when the field is evaluated row by row at a cost that does not depend on the batch it is
 * given (memory networks, flows, Lorenz, polynomials), so a solver may evaluate it on a few rows
 * at a time (nd_ode_samples_opts.row_blocks) at no extra cost; 0 for fields whose batch goes
 * through matrix products (linear, MLP, hybrid) or that have per-row parameters (relax). */
int nd_field_row_wise(const nd_field *f);

/* Elements of an MLP field's transposed kernels (0 for other kinds), and nd_field_prepare_*,
 * which writes them to buf (owned by the caller, unchanged while the field is used) and points
 * weights_t at them: each VJP's input products are then plain ones, without a copy of W^T
 * each (OpenBLAS's small-matrix path takes a plain product, not a transposed W). */
size_t nd_field_prepared_len(const nd_field *f);
void nd_field_prepare_f32(nd_field *f, void *buf);
void nd_field_prepare_f64(nd_field *f, void *buf);

/* Evaluate dy = f(t, y) on the whole batch; `field` is an nd_field*. The signature is the
 * ODE right-hand side of nd_ode.h, so a field plugs straight into the solvers. */
int nd_field_eval_f32(void *field, double t, const float *y, float *dy);
int nd_field_eval_f64(void *field, double t, const double *y, double *dy);

/* The same as an independent-sample right-hand side (nd_ode_samples.h's nd_batch_rhs_*):
 * rows of y [m, d] hold d / dim field states each (d = dim for one field state per sample,
 * a multiple for a whole batch treated as one sample); the built-in fields are autonomous, so
 * the rows' times are not read. The per-row parameters of RELAX cannot follow a compacted
 * working set: ND_ERR_ARG. The scratch must be sized for the largest m * d / dim. */
int nd_field_eval_rows_f32(void *field, int64_t m, int64_t d, const double *t, const float *y, float *dy);
int nd_field_eval_rows_f64(void *field, int64_t m, int64_t d, const double *t, const double *y, double *dy);
/* The VJP and the kept evaluation and VJP below on such rows (nd_ode_samples.h's
 * nd_batch_vjp_*, nd_batch_rhs_keep_*, nd_batch_vjp_kept_*): a kept VJP reuses the kept
 * evaluation of the same slot with the same m. */
int nd_field_vjp_rows_f32(void *field, int64_t m, int64_t d, const double *t, const float *y, const float *a,
                          float *a_out, float *dparams, int accumulate);
int nd_field_vjp_rows_f64(void *field, int64_t m, int64_t d, const double *t, const double *y, const double *a,
                          double *a_out, double *dparams, int accumulate);
int nd_field_eval_rows_keep_f32(void *field, int slot, int64_t m, int64_t d, const double *t, const float *y,
                                float *dy);
int nd_field_eval_rows_keep_f64(void *field, int slot, int64_t m, int64_t d, const double *t, const double *y,
                                double *dy);
int nd_field_vjp_rows_kept_f32(void *field, int slot, int64_t m, int64_t d, const double *t, const float *y,
                               const float *a, float *a_out, float *dparams, int accumulate);
int nd_field_vjp_rows_kept_f64(void *field, int slot, int64_t m, int64_t d, const double *t, const double *y,
                               const double *a, double *a_out, double *dparams, int accumulate);

/* Vector-Jacobian products at (t, y) for a cotangent a [batch, dim]: a_out = a^T df/dy
 * (may be NULL) and dparams = a^T df/dtheta in the flat layout above (may be NULL), written
 * or, with accumulate, added. The signature is nd_ode.h's nd_vjp_*. */
int nd_field_vjp_f32(void *field, double t, const float *y, const float *a, float *a_out, float *dparams,
                     int accumulate);
int nd_field_vjp_f64(void *field, double t, const double *y, const double *a, double *a_out, double *dparams,
                     int accumulate);

/* Jacobians J = df/dy at (t, y), one per batch row: J [batch, dim, dim] with
 * J[i, r, c] = d f_r / d y_c at row i (an MLP field evaluates itself once to get every
 * layer's pre-activation). The scratch must hold nd_field_jac_workspace_len() elements.
 * Used by the implicit solvers (docs/models.md §8). */
int nd_field_jac_f32(void *field, double t, const float *y, float *J);
int nd_field_jac_f64(void *field, double t, const double *y, double *J);

/* The Jacobian as an independent-sample callback (nd_ode_stiff.h's nd_batch_jac_*): J [m, d, d]
 * for the rows i < m of y [m, d], d the field's dim and m <= its batch (for which the scratch
 * is sized); the times are not read. RELAX's per-row parameters cannot follow a compacted
 * working set: ND_ERR_ARG, with a detail. */
int nd_field_jac_rows_f32(void *field, int64_t m, int64_t d, const double *t, const float *y, float *J);
int nd_field_jac_rows_f64(void *field, int64_t m, int64_t d, const double *t, const double *y, double *J);

/* dy = f(t, y) as nd_field_eval_*, keeping in slot `slot` (below keep_slots) what a VJP at
 * (t, y) needs, so that nd_field_vjp_kept_* with the same slot and the same y does not evaluate
 * the field again (for an MLP field, every layer's pre-activation and output: the VJP's
 * forward pass was a third of its matrix products; for a hybrid model's field, its energy's
 * primal sweeps: the VJP then runs the tangent sweep alone). The signatures are nd_ode.h's
 * nd_rhs_keep_* and nd_vjp_kept_*. Fields without intermediate values ignore the slot. */
int nd_field_eval_keep_f32(void *field, int slot, double t, const float *y, float *dy);
int nd_field_eval_keep_f64(void *field, int slot, double t, const double *y, double *dy);
int nd_field_vjp_kept_f32(void *field, int slot, double t, const float *y, const float *a, float *a_out,
                          float *dparams, int accumulate);
int nd_field_vjp_kept_f64(void *field, int slot, double t, const double *y, const double *a, double *a_out,
                          double *dparams, int accumulate);

/* The same with the kept values at `kept`, memory of the caller's (nd_field_keep_len() elements
 * of the state's type) instead of a slot of the scratch, so that a solver may keep as many
 * evaluations as it takes steps (nd_odeint_keep_*). An MLP field and a hybrid energy model's
 * field (for the whole batch; not a target system's) keep their evaluations this way: for every
 * other kind the three functions return ND_ERR_ARG, with a detail. */
int nd_field_keep_len(const nd_field *f, size_t *len);

/* A fingerprint of an MLP or hybrid field: its layers, activations and every parameter's bits (itemsize
 * bytes per parameter). Kept stages carry the fingerprint of the field that computed them, so
 * that a gradient through another field, or other parameters, is refused. */
uint64_t nd_field_fingerprint(const nd_field *f, size_t itemsize);
int nd_field_eval_keep_at_f32(void *field, void *kept, double t, const float *y, float *dy);
int nd_field_eval_keep_at_f64(void *field, void *kept, double t, const double *y, double *dy);
int nd_field_vjp_kept_at_f32(void *field, const void *kept, double t, const float *y, const float *a, float *a_out,
                             float *dparams, int accumulate);
int nd_field_vjp_kept_at_f64(void *field, const void *kept, double t, const double *y, const double *a,
                             double *a_out, double *dparams, int accumulate);

/* The same on rows (nd_ode_samples.h's nd_batch_rhs_keep_at_* and nd_batch_vjp_kept_at_*): an
 * evaluation of `rows` rows of y [., d] kept at `kept` is nd_field_keep_row_widths()'s arrays,
 * each [rows, width], one after another (2 * n_layers of them for an MLP field, at most
 * ND_FIELD_KEEP_ARRAYS); eval_rows_keep_at evaluates rows [lo, lo + m) of it (y and dy hold
 * those m rows), so that blocks of rows fill one evaluation of all of them; vjp_rows_kept_at
 * reads an evaluation of m rows. Only an MLP field: ND_ERR_ARG otherwise. */
#define ND_FIELD_KEEP_ARRAYS (2 * ND_FIELD_MAX_LAYERS)
int nd_field_keep_row_widths(const nd_field *f, int64_t d, int64_t *widths, int *count);
int nd_field_eval_rows_keep_at_f32(void *field, void *kept, int64_t rows, int64_t lo, int64_t m, int64_t d,
                                   const double *t, const float *y, float *dy);
int nd_field_eval_rows_keep_at_f64(void *field, void *kept, int64_t rows, int64_t lo, int64_t m, int64_t d,
                                   const double *t, const double *y, double *dy);
int nd_field_vjp_rows_kept_at_f32(void *field, const void *kept, int64_t m, int64_t d, const double *t, const float *y,
                                  const float *a, float *a_out, float *dparams, int accumulate);
int nd_field_vjp_rows_kept_at_f64(void *field, const void *kept, int64_t m, int64_t d, const double *t,
                                  const double *y, const double *a, double *a_out, double *dparams, int accumulate);

#endif

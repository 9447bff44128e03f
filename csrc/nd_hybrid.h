/* Hybrid energy-based models for stable system identification (docs/models.md §11).
 *
 * The visible state z [d] evolves; hidden layers are static maps of it. With Dense kernels
 * K_l [n_l, n_{l+1}] (the row form of W_{l+2,l+1}: g = a K), a_0 = z and layer by layer
 *   g_l = a_{l-1} K_l,  a_l = psi_l(g_l) = grad F_l(g_l),
 * the energy is
 *   H(z) = 1/2 |z|^2 - z.b_1 - sum_l [F_l(g_l) + g_l.b_l]
 * and its gradient, by the recursion e_last = a_last + b_last,
 *   e_l = a_l + b_l + D_l (e_{l+1} K_{l+1}^T),   D_l = d psi_l / d g_l (symmetric),
 * is grad H = z - b_1 - e_0 K_0^T. Hessian-vector products run the same recursion in
 * tangent form (forward: gdot_l, adot_l = D_l gdot_l; backward: edot_l with the third
 * derivative of F_l), and the parameter gradients of v.grad H are the reverse sweep of
 * phi = sum_l (a_l + b_l).gdot_l, whose adjoints are e_l (of gdot_l) and edot_l (of g_l):
 *   d phi / d K_l = adot_{l-1}^T e_l + a_{l-1}^T edot_l,  d phi / d b_l = gdot_l,
 * with a_{-1} = z, adot_{-1} = v; and v.grad H = v.z - v.b_1 - phi.
 *
 * Fields (rows of a batch):
 *   gradient:          dz = -grad H(z)
 *   port_hamiltonian:  dz = (J - R) grad H(z) + G u(t),   y = G^T grad H(z)
 * with J = A - A^T (A strictly upper triangular) and R = L L^T (L lower triangular, its
 * diagonal exp of the stored values), so dH/dt = -grad H^T R grad H + y.u.
 *
 * Every function checks its arguments (nd_arg_error detail) and returns an nd_status. */
#ifndef ND_HYBRID_H
#define ND_HYBRID_H

#include <stddef.h>
#include <stdint.h>

/* Potential / activation pairs (docs/models.md §11); the names are their table, in code order. */
enum {
    ND_HACT_SOFTMAX = 0,    /* F = log sum exp(beta g) / beta,   psi = softmax(beta g) */
    ND_HACT_TANH = 1,       /* F = sum log cosh(beta g) / beta,  psi = tanh(beta g) */
    ND_HACT_SIGMOID = 2,    /* F = sum softplus(beta g) / beta,  psi = sigmoid(beta g) */
    ND_HACT_POLYNOMIAL = 3, /* F = sum softplus(g)^p / p,        psi = softplus^(p-1) sigmoid */
    ND_HACT_RELU_POWER = 4, /* F = sum relu(g)^p / p,            psi = relu^(p-1) */
    ND_HACT_QUADRATIC = 5,  /* F = |g|^2 / 2,                    psi = g */
    ND_HACT_HARDTANH = 6,   /* F = g^2/2 on |g| <= 1, |g| - 1/2 outside; psi = clip(g, -1, 1) */
    ND_HACT_RELU = 7        /* F = relu(g)^2 / 2,                psi = relu */
};
extern const char *const nd_hybrid_act_names[];
/* 1 for the bounded activations (softmax, tanh, sigmoid, hardtanh), whose model carries the
 * boundedness guarantee when one of them comes first. */
int nd_hybrid_act_bounded(int act);

enum { ND_HYBRID_GRADIENT = 0, ND_HYBRID_PORT_HAMILTONIAN = 1 };
extern const char *const nd_hybrid_form_names[];

#define ND_HYBRID_MAX_LAYERS 8

typedef struct {
    int64_t dim;                                 /* d */
    int n_layers;                                /* hidden layers (L - 1 of §11) */
    int64_t widths[ND_HYBRID_MAX_LAYERS + 1];    /* widths[0] = d, widths[l + 1] = layer l */
    int acts[ND_HYBRID_MAX_LAYERS];
    double beta;                                 /* softmax, tanh, sigmoid */
    double power;                                /* polynomial, relu_power */
    int guarantee;                               /* refuse an unbounded first activation */
    int form;
    int64_t inputs;                              /* m, port_hamiltonian only */
    /* Parameters of the evaluation's float type (NULL when only the configuration is checked),
     * in the flat order of nd_hybrid_param_count: b1, then (K_l, b_l) per layer, then A, L, G. */
    const void *b1;                              /* [d] */
    const void *kernels[ND_HYBRID_MAX_LAYERS];   /* [widths[l], widths[l + 1]] */
    const void *biases[ND_HYBRID_MAX_LAYERS];    /* [widths[l + 1]] */
    const void *A;                               /* [d (d - 1) / 2]: A's strict upper part, row by row */
    const void *L;                               /* [d (d + 1) / 2]: L's lower part, row by row; log diagonal */
    const void *G;                               /* [d, m] */
    /* The input u(t) of a port-Hamiltonian field with m > 0: values [n_knots, u_rows, m] at the
     * increasing times u_t [n_knots], linear in between and constant outside; u_rows is 1 (one
     * signal for every row) or the batch. No knots: u = 0. */
    int64_t n_knots, u_rows;
    const double *u_t;
    const void *u;
} nd_hybrid;

/* Defaults: beta 1, power 3, gradient form, no inputs, guarantee on. */
void nd_hybrid_default(nd_hybrid *h);

/* The configuration's rules (and the parameters' presence when `params`), with the detail of
 * nd_arg_error: "activations[0] must be bounded ..." for guarantee with an unbounded first
 * activation, "inputs must be 0 for the gradient form", "beta must be > 0", ... */
int nd_hybrid_check(const nd_hybrid *h, int params);

/* Number of parameters in the flat layout above. */
int64_t nd_hybrid_param_count(const nd_hybrid *h);

/* Scratch elements for a batch of B rows with k tangent directions per row. */
int nd_hybrid_workspace_len(const nd_hybrid *h, int64_t B, int64_t k, size_t *len);
/* Elements of what an evaluation of B rows keeps for a VJP at the same point (the primal
 * values of every layer: g, psi, psi', psi'', e, s, and grad H). */
int nd_hybrid_slot_len(const nd_hybrid *h, int64_t B, size_t *len);

/* ---- the target systems ------------------------------------------------------------------ */

enum { ND_HSYS_MULTIWELL = 0, ND_HSYS_RING = 1, ND_HSYS_DUFFING = 2 };
extern const char *const nd_hybrid_system_names[];

typedef struct {
    int kind;
    int64_t dim;
    /* MULTIWELL: dz = -M(z) grad V, V = |z|^2/2 - sum_k depth_k exp(-|z - c_k|^2 / (2 width^2)),
     * M(z) = I + gamma s s^T with s = sin(omega z): n_wells centres [n_wells, d], depths [n_wells] */
    int64_t n_wells;
    const double *centres, *depths;
    double width, gamma, omega;
    /* RING: dz = -(|z|^2 - radius^2) z + rotation (-z_1, z_0, 0, ...) */
    double radius, rotation;
    /* DUFFING (d = 2, z = (q, p)): dq = p, dp = -delta p - alpha q - cubic q^3 */
    double alpha, cubic, delta;
} nd_hybrid_system;

int nd_hybrid_system_check(const nd_hybrid_system *s);

/* ---- the built-in field of neurodyn.fields (nd_fields.h kind ND_FIELD_HYBRID) ------------- */

typedef struct {
    int is_system;       /* 0: the model's field; 1: a target system */
    nd_hybrid model;
    nd_hybrid_system system;
} nd_hybrid_field;

int nd_hybrid_field_check(const nd_hybrid_field *f, int64_t dim);
/* Scratch elements of the field for B rows, followed by `slots` slots of nd_hybrid_slot_len
 * (the keep_slots of nd_fields.h: evaluations kept for the VJPs at the same points). */
int nd_hybrid_field_workspace_len(const nd_hybrid_field *f, int64_t B, int slots, size_t *len);
int64_t nd_hybrid_field_param_count(const nd_hybrid_field *f);

/* ---- typed kernels ------------------------------------------------------------------------ */

#define ND_HYBRID_DECLARE(T, SFX)                                                                    \
    /* H [B] (may be NULL) and grad H [B, d] (may be NULL) at z [B, d]. */                            \
    int nd_hybrid_energy_##SFX(const nd_hybrid *h, int64_t B, const T *z, T *H, T *grad, void *work);  \
    /* Hv [B, d]: the Hessian of H at each row of z times that row of v. */                           \
    int nd_hybrid_hvp_##SFX(const nd_hybrid *h, int64_t B, const T *z, const T *v, T *Hv, void *work); \
    /* Hessians [B, d, d]. */                                                                         \
    int nd_hybrid_hessian_##SFX(const nd_hybrid *h, int64_t B, const T *z, T *hess, void *work);      \
    /* dz [B, d]; rows at time t, or each at t_rows[i] when t_rows is not NULL. */                    \
    int nd_hybrid_field_eval_##SFX(const nd_hybrid *h, int64_t B, double t, const double *t_rows,      \
                                   const T *z, T *dz, void *work);                                    \
    /* The field evaluation and VJP above, with the evaluation's primal values kept in `kept`     \
     * [nd_hybrid_slot_len(h, B)] for a VJP at the same z (which then skips the forward pass). */     \
    int nd_hybrid_field_eval_keep_##SFX(const nd_hybrid *h, int64_t B, double t, const double *t_rows, \
                                        const T *z, T *dz, T *kept, void *work);                      \
    int nd_hybrid_field_vjp_kept_##SFX(const nd_hybrid *h, int64_t B, double t, const double *t_rows,  \
                                       const T *z, const T *a, T *a_out, T *dparams, int accumulate,  \
                                       T *kept, void *work);                                          \
    /* Output y = G^T grad H [B, m] (port-Hamiltonian form). */                                       \
    int nd_hybrid_output_##SFX(const nd_hybrid *h, int64_t B, const T *z, T *y, void *work);          \
    /* Field Jacobians J [B, d, d], J[i, r, c] = d dz_r / d z_c: -Hess H, or (J - R) Hess H. */       \
    int nd_hybrid_field_jac_##SFX(const nd_hybrid *h, int64_t B, const T *z, T *J, void *work);        \
    /* a_out = a^T d dz / dz (may be NULL), dparams = a^T d dz / d theta in the flat layout (may be  \
     * NULL), written or, with accumulate, added. */                                                  \
    int nd_hybrid_field_vjp_##SFX(const nd_hybrid *h, int64_t B, double t, const double *t_rows,       \
                                  const T *z, const T *a, T *a_out, T *dparams, int accumulate,       \
                                  void *work);                                                        \
    /* The target systems: dz [B, d], Jacobians [B, d, d], a_out = a^T J (no parameters). */          \
    int nd_hybrid_system_eval_##SFX(const nd_hybrid_system *s, int64_t B, const T *z, T *dz);        \
    int nd_hybrid_system_jac_##SFX(const nd_hybrid_system *s, int64_t B, const T *z, T *J);          \
    int nd_hybrid_system_vjp_##SFX(const nd_hybrid_system *s, int64_t B, const T *z, const T *a,      \
                                   T *a_out);                                                         \
    /* The built-in field (nd_fields.h): the model's or a system's. */                                \
    int nd_hybrid_field_run_##SFX(const nd_hybrid_field *f, int64_t B, double t, const double *t_rows, \
                                  const T *z, T *dz, void *work);                                     \
    int nd_hybrid_field_run_vjp_##SFX(const nd_hybrid_field *f, int64_t B, double t, const double *t_rows, \
                                      const T *z, const T *a, T *a_out, T *dparams, int accumulate,   \
                                      void *work);                                                    \
    int nd_hybrid_field_run_jac_##SFX(const nd_hybrid_field *f, int64_t B, const T *z, T *J, void *work); \
    /* With slot `slot` of `slots` after the scratch (a target system has nothing to keep). */       \
    int nd_hybrid_field_run_keep_##SFX(const nd_hybrid_field *f, int slot, int slots, int64_t B, double t, \
                                       const double *t_rows, const T *z, T *dz, void *work);          \
    int nd_hybrid_field_run_vjp_kept_##SFX(const nd_hybrid_field *f, int slot, int slots, int64_t B,  \
                                           double t, const double *t_rows, const T *z, const T *a,    \
                                           T *a_out, T *dparams, int accumulate, void *work);

ND_HYBRID_DECLARE(float, f32)
ND_HYBRID_DECLARE(double, f64)
#undef ND_HYBRID_DECLARE

/* ---- the guarantee (docs/models.md §11), in float64 ---------------------------------------- */

typedef struct {
    int bounded;          /* the first activation is bounded */
    double M2;            /* sup |psi_2| */
    double c1, c0;        /* H(z) >= |z|^2/2 - c1 |z| - c0 */
    double eq_radius;     /* every equilibrium (grad H = 0) has |z| <= eq_radius */
    double level;         /* H <= level on the ball of radius eq_radius */
    double radius;        /* {H <= level} lies in the ball of this radius */
} nd_hybrid_cert;

/* Scratch doubles for nd_hybrid_certificate. */
int nd_hybrid_certificate_workspace_len(const nd_hybrid *h, size_t *len);
/* The bounds of a model with float64 parameters. An unbounded first activation gives
 * bounded = 0 and the other fields NaN. */
int nd_hybrid_certificate(const nd_hybrid *h, nd_hybrid_cert *out, double *work);

/* Local stability test at points z [B, d] (float64 parameters): lam_first [B] =
 * lambda_min(I - W_21^T Q W_21) with Q the (Clarke, worst case at kinks) derivative of the
 * first activation at W_21 z, and lam_hess [B] = lambda_min of the full Hessian of H. */
int nd_hybrid_stability_workspace_len(const nd_hybrid *h, int64_t B, size_t *len);
int nd_hybrid_stability(const nd_hybrid *h, int64_t B, const double *z, double *lam_first, double *lam_hess,
                        double *work);

#endif

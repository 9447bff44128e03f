/* A catalogue of chaotic flows, the built-in field kind "flow" (nd_fields.h): each system's
 * right-hand side and analytic Jacobian, written once for float32 and float64. The equations,
 * standard parameters and reference exponents are in docs/models.md §12.
 *
 * One field kind with a sub-table of systems, rather than a field kind per system: the systems
 * share every rule of a field kind (no parameter gradients, a dense Jacobian, the time read
 * only by the forced ones), so the field code switches on the kind once and the catalogue grows
 * here without touching the field table. */
#ifndef ND_FLOWS_H
#define ND_FLOWS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    ND_FLOW_ROSSLER = 0,         /* a, b, c */
    ND_FLOW_CHEN = 1,            /* a, b, c */
    ND_FLOW_CHUA = 2,            /* alpha, beta, m0, m1: the piecewise-linear diode */
    ND_FLOW_THOMAS = 3,          /* b */
    ND_FLOW_SPROTT_B = 4,        /* a, b, c */
    ND_FLOW_LORENZ96 = 5,        /* F; any dimension N >= 4 */
    ND_FLOW_HENON_HEILES = 6,    /* lam */
    ND_FLOW_DOUBLE_PENDULUM = 7, /* m1, m2, l1, l2, g */
    ND_FLOW_DUFFING = 8,         /* delta, alpha, beta, gamma, omega: forced, reads t */
    ND_FLOW_COUNT = 9
} nd_flow_system;

/* The systems' names by code ("rossler", "chen", ...), NULL-terminated. */
extern const char *const nd_flow_names[ND_FLOW_COUNT + 1];

/* Parameters each system reads from the field's flow_params (at most ND_FIELD_FLOW_PARAMS). */
int nd_flow_param_count(int system);

/* The state size a system needs (0: any size >= 4, Lorenz-96). */
int64_t nd_flow_dim(int system);

/* The system code, its dimension and its parameters (finite; positive masses, lengths and
 * gravity for the pendulum). Returns an nd_status with the detail of nd_arg_error. */
int nd_flow_check(int system, int64_t dim, const double *params);

/* dy = f(t, y) on `batch` states of `dim` values; state i is at time t_rows[i / per] when
 * t_rows is given (per states to a row of the per-sample drivers), else at t. */
int nd_flow_eval_f32(int system, const double *params, int64_t batch, int64_t dim, double t, const double *t_rows,
                     int64_t per, const float *y, float *dy);
int nd_flow_eval_f64(int system, const double *params, int64_t batch, int64_t dim, double t, const double *t_rows,
                     int64_t per, const double *y, double *dy);
/* J [batch, dim, dim], J[i, r, c] = d f_r / d y_c at state i (times as nd_flow_eval_*). */
int nd_flow_jac_f32(int system, const double *params, int64_t batch, int64_t dim, double t, const double *t_rows,
                    int64_t per, const float *y, float *J);
int nd_flow_jac_f64(int system, const double *params, int64_t batch, int64_t dim, double t, const double *t_rows,
                    int64_t per, const double *y, double *J);
/* a_out = a^T J per state, through one state's Jacobian in `work` (dim * dim elements). */
int nd_flow_vjp_f32(int system, const double *params, int64_t batch, int64_t dim, double t, const double *t_rows,
                    int64_t per, const float *y, const float *a, float *a_out, float *work);
int nd_flow_vjp_f64(int system, const double *params, int64_t batch, int64_t dim, double t, const double *t_rows,
                    int64_t per, const double *y, const double *a, double *a_out, double *work);

#endif

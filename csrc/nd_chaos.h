/* Lyapunov spectra of flows and maps by the QR method of Benettin et al. (1980) and Shimada &
 * Nagashima (1979): the state and k tangent vectors advance together on the variational
 * equations dV/dt = J(t, y) V (flows, classical RK4 on the augmented system) or V <- Dg(y) V
 * (maps); every orth_every steps the tangent vectors are re-orthonormalised by a QR
 * factorisation and log |R_ii| is accumulated after the transient. lambda_i = sum log |R_ii| /
 * (the accumulation's time), in decreasing order (sorted: the QR method orders them only in the
 * limit). docs/models.md §12.
 *
 * A system is a batched right-hand side (or map) and its Jacobian over B states of n values:
 * nd_field_eval_* / nd_field_jac_* of a built-in field, a built-in map below, or the binding's
 * Python callbacks. Time is double; the state is float or double; the logarithms accumulate in
 * double. */
#ifndef ND_CHAOS_H
#define ND_CHAOS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { ND_QR_AUTO = 0, ND_QR_HOUSEHOLDER = 1, ND_QR_GRAM_SCHMIDT = 2, ND_QR_COUNT = 3 } nd_qr_method;
/* "auto", "householder" (LAPACK geqrf + orgqr), "gram_schmidt" (modified), NULL-terminated. */
extern const char *const nd_qr_names[ND_QR_COUNT + 1];
/* auto takes modified Gram-Schmidt up to this many tangent values (n * k), Householder above:
 * LAPACK's call overhead dominates small factorisations (measured on Lorenz-96: Gram-Schmidt 30x
 * faster at n k = 9, 2x at 400, even near 1100, Householder ahead from about 1500). */
#define ND_QR_GS_MAX 1024

typedef struct {
    double t0;          /* start time (maps: the first iterate's index) */
    double dt;          /* flows: the RK4 step, > 0; maps: 1 */
    double t_transient; /* time before the accumulation (maps: iterations), >= 0 */
    double t_total;     /* time of the accumulation (maps: iterations), > 0 */
    int64_t orth_every; /* steps between two re-orthonormalisations, >= 1 */
    int qr;             /* nd_qr_method */
    double tol;         /* >= 0; > 0: stop at the first check at which no exponent of any sample
                           moved by tol or more since the previous check */
    int64_t check_every; /* re-orthonormalisations between two checks, >= 0 (0: about 100 checks) */
} nd_lyap_opts;

/* t0 0, dt 0.01, t_transient 0, t_total 100, orth_every 1, auto, tol 0, check_every 0. */
void nd_lyap_opts_default(nd_lyap_opts *o);
/* The rules of the options (with the detail of nd_arg_error); map selects the maps' rules. */
int nd_lyap_check_opts(const nd_lyap_opts *o, int map);

typedef struct {
    int64_t steps;   /* accumulation steps taken */
    double t_accum;  /* the accumulation's time (maps: iterations) */
    double change;   /* largest move of an exponent between the last two checks (NaN before two) */
    int converged;   /* 1 when tol stopped the run early */
    int64_t nfev;    /* evaluations of f (batched calls) */
    int64_t njev;    /* evaluations of the Jacobian (batched calls) */
} nd_lyap_info;

/* The built-in maps x_{n+1} = g(x_n). */
typedef enum { ND_MAP_HENON = 0, ND_MAP_LOGISTIC = 1, ND_MAP_COUNT = 2 } nd_map_kind;
extern const char *const nd_map_names[ND_MAP_COUNT + 1]; /* "henon", "logistic" */

typedef struct {
    int kind;
    int64_t batch, dim;
    double params[2]; /* Henon (a, b): (1 - a x^2 + y, b x); logistic (r): r x (1 - x) */
} nd_map;

/* Checks the kind, its dimension (Henon 2, logistic 1) and finite parameters; sets nothing. */
int nd_map_check(const nd_map *g);
/* The state size of a map kind (-1 for an unknown kind). */
int64_t nd_map_dim(int kind);
/* The parameters a map kind takes: Henon (a, b), logistic (r) (-1 for an unknown kind). */
int nd_map_param_count(int kind);

/* Elements of the state's type for nd_lyapunov_* on B states of n values and k exponents. */
int nd_lyapunov_workspace_len(int64_t B, int64_t n, int64_t k, size_t *len);

#define ND_CHAOS_DECLARE(T, SFX)                                                                          \
    typedef struct {                                                                                      \
        int map; /* 0: the flow y' = f(t, y); 1: the map y_{j+1} = f(t_j, y_j), t_j = t0 + j */         \
        int (*f)(void *ctx, double t, const T *y, T *out); /* y, out [B, n] */                          \
        int (*jac)(void *ctx, double t, const T *y, T *J); /* J [B, n, n], J[b, r, c] = d f_r / d y_c */ \
        void *ctx;                                                                                        \
    } nd_lyap_system_##SFX;                                                                               \
    /* The k leading exponents exps [B, k] (sorted, largest first), with div [B] (may be NULL) the time average   \
     * over the same accumulation of the field's divergence tr J (flows, by the same RK4 weights) or   \
     * of log |det Dg| (maps), so that with k = n the exponents sum to div; y_end [B, n] (may be NULL) \
     * the final state. Returns an nd_status: ND_ERR_NONFINITE when the state or a tangent vector     \
     * overflows, ND_ERR_SINGULAR when the tangent vectors lose their rank (a zero |R_ii|). */         \
    int nd_lyapunov_##SFX(const nd_lyap_system_##SFX *sys, const nd_lyap_opts *o, int64_t B, int64_t n,   \
                          int64_t k, const T *y0, double *exps, double *div, T *y_end, nd_lyap_info *info, \
                          T *work, size_t work_len);                                                       \
    /* A built-in map as a system's f and jac (ctx an nd_map with batch B and its dim). */               \
    int nd_map_eval_##SFX(void *map, double t, const T *y, T *out);                                      \
    int nd_map_jac_##SFX(void *map, double t, const T *y, T *J);

ND_CHAOS_DECLARE(float, f32)
ND_CHAOS_DECLARE(double, f64)
#undef ND_CHAOS_DECLARE

#endif

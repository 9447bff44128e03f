/* Associative memories as dynamical systems (docs/models.md §9 and §10).
 *
 * Firing-rate memories with designed stability (Betteti, Baggio, Bullo, Zampieri, Neural
 * Computation 2025) and input-driven (IDP) Hopfield networks with sequential retrieval
 * (Betteti, Baggio, Bullo, Zampieri, Science Advances 2025; Betteti, Baggio, Zampieri 2026).
 *
 * Every network here has a synaptic matrix of rank at most P + 1 built from P memories of N
 * units, W = (1/N) U^T G U with U = [Xi^T; 1^T] ((P+1) x N). It is never formed as N x N in
 * the dynamics: W v costs two products with the [P, N] pattern matrix, O(NP).
 *
 * The fields plug into the ODE solvers as the built-in field kind ND_FIELD_MEMORY of
 * nd_fields.h (whose `memory` member points at an nd_memory_field). */
#ifndef ND_MEMORIES_H
#define ND_MEMORIES_H

#include <stddef.h>
#include <stdint.h>

/* Dynamics (the field's `form`). With v the state of N units:
 *   RATE      tau dr/dt = -r + phi(W r + u)                  (§9, rates r in [0, 1])
 *   CURRENT   tau dx/dt = -x + W phi(x) + u                  (§9, currents; r = phi(x))
 *   IDP       tau dx/dt = -x + W(alpha) psi(x),  W(alpha) = (1/N) Xi diag(alpha) Xi^T   (§10)
 *   ADDITIVE  tau dx/dt = -x + W psi(x) + u,     W = (1/N) Xi Xi^T      (§10's classical baseline) */
typedef enum { ND_MEM_RATE = 0, ND_MEM_CURRENT = 1, ND_MEM_IDP = 2, ND_MEM_ADDITIVE = 3 } nd_mem_form;
extern const char *const nd_mem_form_names[]; /* "rate", "current", "idp", "additive", NULL */

/* Activations. RATE and CURRENT take the firing-rate ones, IDP and ADDITIVE the others:
 *   SIGMOID          phi(x) = 1 / (1 + exp(-4 gain (x - threshold - 1/(2 gain))))  (slope gain at its centre)
 *   RECTIFIED_TANH   phi(x) = tanh(gain (x - threshold)) for x >= threshold, else 0
 *   TANH             psi(x) = tanh(gain x)              (§10's delta is the gain)
 *   HARDTANH         psi(x) = clip(x, -1, 1)            (the gain is not used) */
typedef enum { ND_MEM_SIGMOID = 0, ND_MEM_RECTIFIED_TANH = 1, ND_MEM_TANH = 2, ND_MEM_HARDTANH = 3 } nd_mem_act;
extern const char *const nd_mem_act_names[]; /* "sigmoid", "rectified_tanh", "tanh", "hardtanh", NULL */

/* The slow law of the saliencies (IDP with saliencies in the state), tau_s = tau / eps:
 *   NONE      dalpha/dt = 0: the saliencies are a held input
 *   SEQUENCE  tau_s dalpha_v/dt = -|m_v| alpha_v^2 + kappa |m_prev(v)| - leak o_v alpha_v
 * with m_v = xi^v . psi(x) / N the overlaps (a state near -xi^v retrieves v as well: the
 * dynamics are odd), prev(v) the memory whose `next` is v, and o_v = sum |m_u| over the
 * memories u other than v and prev(v). The retrieved memory's saliency decays (1/alpha grows
 * linearly), the next one's grows at rate kappa, and the others leak to 0 while an unrelated
 * memory is held (so a transition, when the overlaps of the two memories in play are both
 * partial, does not drain the incoming one). With hard-tanh, orthogonal memories and
 * eps -> 0 a retrieval lasts until its saliency falls to 1 (x* = alpha xi is an equilibrium
 * iff alpha >= 1), so the next memory starts at Z_{k+1} = kappa (1 - 1/Z_k) (three or more
 * memories in the cycle, each drained before it is excited again): docs/models.md §10's map,
 * self-sustained iff kappa >= 4. */
typedef enum { ND_MEM_SLOW_NONE = 0, ND_MEM_SLOW_SEQUENCE = 1 } nd_mem_slow;
extern const char *const nd_mem_slow_names[]; /* "none", "sequence", NULL */

/* A memory network's field. Arrays are of the state's type (float or double) and owned by
 * the caller (the memories as int8 bytes or, 0/1 ones, as index lists). The state of one
 * sample is its N units, followed, with input_in_state, by its
 * own input: u [N] (RATE, CURRENT, ADDITIVE) or saliencies alpha [P] (IDP), held constant by
 * the field unless a slow law moves the saliencies. Per-sample inputs ride in the state so
 * that any solver, any batch order and any compaction of the working set carry them. */
typedef struct {
    int form, act;
    int64_t n, p;           /* units, memories */
    const void *patterns;   /* int8 [p, n]: {0, 1} for RATE and CURRENT, {-1, +1} for IDP and ADDITIVE */
    /* RATE and CURRENT, instead of `patterns`: the active units of each memory, memory mu's
     * in active[active_start[mu] .. active_start[mu + 1]), increasing. With activity q the
     * products then touch q N P units instead of N P (the memories are sparse). */
    const int64_t *active_start; /* [p + 1] */
    const int32_t *active;
    double gain, threshold; /* the activation's */
    double tau;             /* time constant (> 0) */
    double alpha, beta, gamma; /* RATE and CURRENT: W = (alpha/N)(Xi - beta)(Xi - beta)^T + (gamma/N) 1 1^T */
    int zero_diagonal;      /* IDP and ADDITIVE: W with its diagonal removed */
    const void *input;      /* shared input: u [n] or, for IDP, alpha [p]; NULL: zero input */
    int input_in_state;     /* 1: each state carries its own input after its n units */
    int slow;               /* nd_mem_slow (IDP with input_in_state only) */
    double kappa, eps, leak;
    const int64_t *next;    /* SEQUENCE: [p], the memory after each one, -1 for none */
} nd_memory_field;

/* The size of one sample's state: n, plus n or p with input_in_state. */
int64_t nd_memory_field_dim(const nd_memory_field *m);

/* Checks the description (form and activation, sizes P < N, gain, tau, the slow law's
 * constants and `next`) and that `dim` is its state size, in O(P^2): it runs every time the
 * field is bound (nd_field_check). ND_OK or ND_ERR_ARG with a detail. */
int nd_memory_field_check(const nd_memory_field *m, int64_t dim);
/* Checks the memories themselves, in O(NP): bytes of 0/1 (RATE, CURRENT) or -1/+1, index lists
 * increasing within each memory and in [0, N), with active_start non-decreasing (its last
 * entry is the lists' length, which the caller allocated). A field built from data that was
 * not made by nd_memory_patterns / nd_memory_active_units must pass it once before any
 * evaluation (the binding does, when it reads a field spec). */
int nd_memory_field_check_contents(const nd_memory_field *m);

/* Scratch elements (of the state's type) for one evaluation of `batch` samples, and for one
 * Jacobian (at least as many). */
int nd_memory_field_workspace_len(const nd_memory_field *m, int64_t batch, size_t *len);
int nd_memory_field_jac_workspace_len(const nd_memory_field *m, int64_t batch, size_t *len);

/* dy = f(y) for y [batch, dim] (dim = nd_memory_field_dim). The scratch's head holds tables
 * that depend on the memories only: with tables_ready non-zero they are read as an earlier
 * call in the same scratch left them (nd_memory_field_eval_f* builds them every time), and
 * the Jacobians below do not touch them. */
int nd_memory_field_eval_f32(const nd_memory_field *m, int64_t batch, const float *y, float *dy, float *work);
int nd_memory_field_eval_f64(const nd_memory_field *m, int64_t batch, const double *y, double *dy, double *work);
int nd_memory_field_eval_tables_f32(const nd_memory_field *m, int64_t batch, const float *y, float *dy, float *work,
                                    int tables_ready);
int nd_memory_field_eval_tables_f64(const nd_memory_field *m, int64_t batch, const double *y, double *dy,
                                    double *work, int tables_ready);

/* Jacobians J [batch, dim, dim], J[i, r, c] = d f_r / d y_c at row i (the interface of the
 * implicit solvers, docs/models.md §8). O(N^2 P) for the first sample, O(N^2) per further one
 * when the matrix is shared (no per-sample saliencies). Where an activation has a kink
 * (rectified tanh at its threshold, hard-tanh at +-1) the derivative outside the linear
 * part, 0, is used. */
int nd_memory_field_jac_f32(const nd_memory_field *m, int64_t batch, const float *y, float *J, float *work);
int nd_memory_field_jac_f64(const nd_memory_field *m, int64_t batch, const double *y, double *J, double *work);

/* Energies E [batch] of states y [batch, dim] (the state's input, or the shared one, enters):
 *   RATE      E(r) = -1/2 r^T W r - u^T r + sum_i int_0^{r_i} phi^{-1}(s) ds      (rates in [0, 1])
 *   CURRENT   the same at r = phi(x)
 *   IDP       E(x; alpha) = -1/2 psi^T W(alpha) psi + x^T psi - sum_i int_0^{x_i} psi
 *   ADDITIVE  E(x) = -1/2 psi^T W psi + x^T psi - sum_i int_0^{x_i} psi - u^T psi
 * Each is non-increasing along its dynamics (symmetric W, monotone activation). A rate
 * outside [0, 1] is ND_ERR_ARG. Scratch: nd_memory_field_workspace_len. */
int nd_memory_energy_f32(const nd_memory_field *m, int64_t batch, const float *y, float *E, float *work);
int nd_memory_energy_f64(const nd_memory_field *m, int64_t batch, const double *y, double *E, double *work);

/* Overlaps O [batch, p] = scale * xi^mu . s(y), s the rates (RATE: the state; CURRENT: phi(x))
 * or psi(x) (IDP, ADDITIVE). §9 uses scale = 1/(N q), §10 scale = 1/N. Scratch: as eval. */
int nd_memory_overlaps_f32(const nd_memory_field *m, int64_t batch, const float *y, double scale, float *O,
                           float *work);
int nd_memory_overlaps_f64(const nd_memory_field *m, int64_t batch, const double *y, double scale, double *O,
                           double *work);

/* The activation, its derivative, inverse (on the rates' range) and integral, elementwise:
 * what = 0 phi, 1 phi', 2 phi^{-1}, 3 int phi (from phi's zero level: -inf for the sigmoid,
 * threshold for the rectified tanh, 0 for tanh and hard-tanh), 4 int_0^r phi^{-1}. */
int nd_memory_act_f32(int act, double gain, double threshold, int what, int64_t n, const float *x, float *out);
int nd_memory_act_f64(int act, double gain, double threshold, int what, int64_t n, const double *x, double *out);

/* ---- the firing-rate design (§9) -------------------------------------------------------- */

typedef struct {
    double alpha, beta, gamma;    /* W = (alpha/N)(Xi - beta)(Xi - beta)^T + (gamma/N) 1 1^T */
    double phi_a, phi_b, dphi_a, dphi_b;
    double alpha_prime;           /* (b - a) / (phi(b) - phi(a)) */
    double sufficient;            /* max(phi'(a), phi'(b)) max(alpha', gamma): every memory stable if < 1 */
    double unstable1, unstable2;  /* q phi'(b)((1-q) alpha' + q gamma) - 1, and
                                     q (gamma - alpha')(phi'(b) - phi'(a)) - (1 - phi'(b) alpha')(1 - phi'(a) gamma):
                                     unstable if either is > 0 */
} nd_rate_design;

/* The synaptic design from field levels a < b, activity q in (0, 1), overlap fraction r in
 * [0, 1) (r = q for independent memories), the activation (SIGMOID or RECTIFIED_TANH) with
 * gain > 0 and a finite threshold; phi(b) must exceed phi(a). ND_ERR_ARG names the argument. */
int nd_rate_design_compute(double a, double b, double q, double r, int act, double gain, double threshold,
                           nd_rate_design *out);

/* The (P+1) x (P+1) Gram matrices of the stability analysis, from patterns [p, n] of 0/1:
 * T [p + 1, p + 1, p + 1] with T[0] = U U^T / N and T[1 + mu] = U diag(xi^mu) U^T / N,
 * U = [Xi^T; 1^T]. With D = phi'(a) + (phi'(b) - phi'(a)) diag(xi^mu) (the slopes at memory
 * mu's target currents), U D U^T / N = phi'(a) T[0] + (phi'(b) - phi'(a)) T[1 + mu].
 * Scratch: nd_rate_grams_workspace_len doubles. */
int nd_rate_grams_workspace_len(int64_t n, int64_t p, size_t *len);
int nd_rate_grams(int64_t n, int64_t p, const double *patterns, double *T, double *work);

/* lambda_max(D^1/2 W D^1/2) - 1 for each memory (the largest eigenvalue of -I + D^1/2 W D^1/2,
 * memory mu locally stable iff < 0), computed in the (P+1)-dimensional range of W: the nonzero
 * eigenvalues of D^1/2 W D^1/2 = (1/N)(U D^1/2)^T G (U D^1/2) are those of K^1/2 G K^1/2 with
 * K = U D U^T / N, and the rest are 0 (N > P + 1). G = alpha E E^T + gamma e e^T with
 * E = [I_P; -beta 1^T] and e = e_{P+1}. Symmetric eigenproblems through LAPACK's dsyev.
 * lam [p]; scratch: nd_rate_lambda_workspace_len doubles. */
int nd_rate_lambda_workspace_len(int64_t p, size_t *len);
int nd_rate_lambda_max(int64_t p, const double *T, const nd_rate_design *d, double *lam, double *work);

/* ---- pattern generators and checks ------------------------------------------------------- */

typedef enum {
    ND_MEM_BERNOULLI = 0,  /* xi ~ Bernoulli(q) i.i.d. */
    ND_MEM_CORRELATED = 1, /* Bernoulli(q) marginals, overlap fraction r in [q, 1): a unit shared by all
                              memories with probability q0, else active in each with probability p1 */
    ND_MEM_BALANCED = 2,   /* the exactly balanced deterministic set (§9) */
    ND_MEM_RADEMACHER = 3, /* +-1 with probability 1/2 */
    ND_MEM_HADAMARD = 4    /* p distinct rows of the Sylvester-Hadamard matrix of order n (not the all-ones row) */
} nd_mem_patterns_kind;
extern const char *const nd_mem_patterns_names[];

/* The number of memories the balanced set has for n and q: floor(1 + 1/q), fewer when the
 * rounded block sizes do not fit in n. ND_ERR_ARG for q outside (0, 1) or sets that do not fit. */
int nd_memory_balanced_count(int64_t n, double q, int64_t *p);

/* Patterns [p, n] of the kind into out (0/1 or -1/+1). seed keys the counter-based generator
 * (Philox): memory mu's units are stream mu + 1, so a pattern does not depend on p. */
int nd_memory_patterns(int kind, int64_t p, int64_t n, double q, double r, uint64_t seed, int8_t *out);

/* Patterns [p, n] checked to hold only 0 and 1 (binary = 1) or only -1 and +1 (binary = 0),
 * with fewer memories than units. */
int nd_memory_check_patterns(int binary, int64_t p, int64_t n, const double *patterns);

/* The active units of 0/1 patterns [p, n] as index lists (nd_memory_field's active_start
 * [p + 1] and active [count]): *count is the number of ones; with active NULL only the count
 * is computed (to size active). */
int nd_memory_active_units(int64_t p, int64_t n, const int8_t *patterns, int64_t *active_start, int32_t *active,
                           int64_t *count);

#endif

/* Energy functions and Langevin sampling.
 *
 * An energy maps a batch x [B, d] to E [B] and its gradient dE/dx [B, d]. Built in: an MLP
 * energy (Dense + activation layers, then Dense(1)), a quadratic 0.5 (x - m)^T P (x - m), a
 * Gaussian mixture -log sum_k exp(c_k - 0.5 (x - m_k)^T P_k (x - m_k)) and a double well
 * sum_i barrier (x_i^2 - 1)^2 + tilt x_i.
 *
 * The sampler runs every step in C: x <- x - (eta / 2) g + sqrt(eta) s eps, eps ~ N(0, I)
 * (g the gradient, clipped elementwise to [-c, c] when asked), then clamped to [lo, hi]
 * when asked. With MALA the move is a Metropolis-Hastings proposal accepted with the exact
 * ratio for the density exp(-E / s^2) (proposals outside the clamp box are rejected), so the
 * chain's stationary distribution is exact. Normals come from Philox (Box-Muller on two
 * uniforms, both normals of a block) indexed by (step, element): the same seed gives the same chains
 * for any threads, and float32 follows the float64 path to rounding. */
#ifndef ND_EBM_H
#define ND_EBM_H

#include <stddef.h>
#include <stdint.h>

enum { ND_ENERGY_MLP = 0, ND_ENERGY_QUADRATIC = 1, ND_ENERGY_GMM = 2, ND_ENERGY_DOUBLE_WELL = 3 };

/* The kinds' names, indexed by kind, NULL-terminated: "mlp", "quadratic", "gmm", "double_well". */
extern const char *const nd_energy_kind_names[];

#define ND_ENERGY_MAX_LAYERS 16

typedef struct {
    int kind;
    int64_t dim;
    /* MLP: n_layers hidden layers widths[1..n_layers], then the output Dense to 1 */
    int n_layers;
    int64_t widths[ND_ENERGY_MAX_LAYERS + 1]; /* widths[0] = dim */
    const void *weights[ND_ENERGY_MAX_LAYERS + 1], *biases[ND_ENERGY_MAX_LAYERS + 1];
    int act;
    /* QUADRATIC: mean [d], precision [d, d]; GMM: K components, means [K, d], precisions
     * [K, d, d], logc [K] (log weight + 0.5 log det P - 0.5 d log 2 pi) */
    int64_t components;
    const void *mean, *precision, *logc;
    /* DOUBLE_WELL */
    double barrier, tilt;
    void *work; /* nd_energy_workspace_len elements for batch_cap rows */
    int64_t batch_cap;
    /* MLP: each hidden layer's kernel transposed, [widths[l], widths[l - 1]] for l = 1..n_layers,
     * in the workspace after the rows' part (nd_energy_prepare); NULL: not prepared, the
     * gradient's products read the kernels transposed */
    const void *weights_t[ND_ENERGY_MAX_LAYERS + 1];
} nd_energy;

int nd_energy_check(const nd_energy *e);
/* Elements of the workspace for B = batch_cap rows: the rows' scratch, then (MLP) room for the
 * transposed kernels. */
int nd_energy_workspace_len(const nd_energy *e, int64_t B, size_t *len);

typedef struct {
    int64_t steps;
    double step_size, noise_scale;
    int clamp;
    double clamp_lo, clamp_hi;
    int clip;         /* clip every gradient entry to [-grad_clip, grad_clip] */
    double grad_clip;
    int mala;
    uint64_t seed, stream;
    /* The batch is chains [chain0, chain0 + B) of a run of `chains` chains (0: B): the noise of
     * a chain depends on its index in the run, so a run split into parts gives the same bits. */
    int64_t chain0, chains;
} nd_langevin_opts; /* every step polls the caller's scope (nd_poll.h) with the fraction done */

/* 60 steps of size 10 with noise 0.005 (Edifice's cold, fast descent), no clamp, no clipping,
 * plain Langevin, seed 0. */
void nd_langevin_opts_default(nd_langevin_opts *o);
/* The options' rules for a batch of B chains, with the detail of nd_arg_error. */
int nd_langevin_check(const nd_langevin_opts *o, int64_t B);

/* Scratch elements of nd_langevin_* for a batch [B, d]. */
int nd_langevin_workspace_len(int64_t B, int64_t d, size_t *len);

/* energy(ctx, B, x, E, grad): E [B] and grad [B, d]; returns an nd_status. */
#define ND_LANGEVIN_DECLARE(T_, SFX)                                                                   \
    typedef int (*nd_energy_fn_##SFX)(void *ctx, int64_t B, const T_ *x, T_ *E, T_ *grad);             \
    int nd_energy_eval_##SFX(void *energy, int64_t B, const T_ *x, T_ *E, T_ *grad);                   \
    /* With e->work set: an MLP energy's kernels transposed into the workspace (weights_t), so that  \
     * each gradient's input products are plain ones (OpenBLAS's small-matrix path takes those, not   \
     * a transposed kernel of more than 32 KiB); again after the kernels change. */                 \
    void nd_energy_prepare_##SFX(nd_energy *e);                                                      \
    /* x [B, d] is advanced in place; accepted [B] (may be NULL) counts MALA acceptances. */       \
    int nd_langevin_##SFX(nd_energy_fn_##SFX energy, void *ctx, const nd_langevin_opts *o, int64_t B,     \
                          int64_t d, T_ *x, int64_t *accepted, T_ *work);

ND_LANGEVIN_DECLARE(float, f32)
ND_LANGEVIN_DECLARE(double, f64)

#endif

/* Stochastic differential equations (Itô): dy = f(t, y) dt + g(t, y) dW, docs/models.md §8.
 *
 * Every row of the state [B, d] is an independent sample. Steps are fixed: between
 * consecutive output times n = max(1, round-half-away((t1 - t0) / dt)) steps of h = (t1 - t0) / n
 * (as odeint's fixed-step methods, docs/models.md §1), so every output time is hit exactly.
 *
 * Noise: "diagonal" (g [d], component i driven by its own dW_i), "additive" (the same shape,
 * g independent of y), "general" (g [d, m] driving m Brownian motions).
 *
 * Methods (Kloeden & Platen, Numerical Solution of SDEs, 1992; Rößler, SIAM J. Numer. Anal.
 * 48(3), 2010):
 *   euler_maruyama  y' = y + h f + g dW (every noise; strong order 0.5, 1 without y in g)
 *   milstein        y' = y + h f + g dW + 1/2 g g_y (dW^2 - h), g_y = dg_i/dy_i (diagonal or
 *                   additive noise; strong order 1). g_y comes from the built-in diffusion, a
 *                   derivative callback, or else Platen's derivative-free form (K&P §11.1):
 *                   (g(ybar) - g(y)) (dW^2 - h) / (2 sqrt h), ybar = y + h f + g sqrt h
 *   sra             Rößler's SRA1 (additive noise; strong order 1.5): with
 *                   chi = I_(1,0) / h, I_(1,0) = int_t^(t+h) (W(s) - W(t)) ds,
 *                   Y2 = y + 3/4 h f(t, y) + 3/2 chi g(t + h),
 *                   y' = y + h (f(t, y) / 3 + 2/3 f(t + 3h/4, Y2)) + g(t + h) dW + chi (g(t) - g(t + h)).
 *
 * Brownian increments: step k of sample b takes normals xi1 = N(m k + c) of lane 0 and
 * xi2 = N(m k + c) of lane 1 for component c, drawn from Philox (nd_rng.h) under key `seed` and
 * stream ids[b] (b when ids is NULL): in double, N(2q), N(2q + 1) are the two Box-Muller normals
 * (cosine, sine) of block q; in float, N(4q) .. N(4q + 3) the two Box-Muller pairs of block q's four
 * words (so the two precisions draw different paths); lane 1 is block q + 2^62. dW = sqrt(h) xi1,
 * I_(1,0) = h^(3/2) (xi1 + xi2 / sqrt 3) / 2 (covariances h, h^2 / 2, h^3 / 3), in the state's
 * type. A sample's
 * path is a function of (seed, its id, the step grid) only: the batch, its order, the chunking
 * and the thread count never change a bit, and every method sees the same dW. */
#ifndef ND_SDE_H
#define ND_SDE_H

#include <stddef.h>
#include <stdint.h>

#include "nd_fields.h"

typedef enum { ND_SDE_EULER_MARUYAMA = 0, ND_SDE_MILSTEIN = 1, ND_SDE_SRA = 2 } nd_sde_method;
#define ND_SDE_METHOD_COUNT 3

typedef enum { ND_SDE_DIAGONAL = 0, ND_SDE_ADDITIVE = 1, ND_SDE_GENERAL = 2 } nd_sde_noise;
#define ND_SDE_NOISE_COUNT 3

/* The names by code, NULL-terminated (the binding's option tables). */
extern const char *const nd_sde_method_names[ND_SDE_METHOD_COUNT + 1];
extern const char *const nd_sde_noise_names[ND_SDE_NOISE_COUNT + 1];

/* "euler_maruyama", "milstein", "sra" / "diagonal", "additive", "general"; NULL if unknown. */
const char *nd_sde_method_name(int method);
const char *nd_sde_noise_name(int noise);
/* 1 when the method applies to the noise type. */
int nd_sde_method_supports(int method, int noise);

/* Built-in diffusions, evaluated in C. */
typedef enum {
    ND_DIFFUSION_CONSTANT = 1, /* g = sigma: [dim] for diagonal or additive noise, [dim, m] for general */
    ND_DIFFUSION_LINEAR = 2    /* diagonal g_i = scale_i y_i + offset_i (offset may be NULL) */
} nd_diffusion_kind;

typedef struct {
    int kind;
    int64_t dim, m;                  /* state size; Brownian motions (dim unless general) */
    const void *sigma;               /* CONSTANT */
    const void *scale, *offset;      /* LINEAR */
} nd_diffusion;

typedef struct {
    int method;           /* nd_sde_method */
    int noise;            /* nd_sde_noise */
    double dt;            /* the step to aim for, > 0 */
    int64_t m;            /* general noise: Brownian motions per sample (>= 1); else ignored (d) */
    uint64_t seed;
    const uint64_t *ids;  /* [B] each sample's stream, or NULL: 0 .. B-1 */
    /* Given increments [steps, B, m] of the state's type replace the drawn ones (dZ_in:
     * I_(1,0), used by sra); the drawn ones are written to dW_out / dZ_out when non-NULL. */
    const void *dW_in, *dZ_in;
    void *dW_out, *dZ_out;
    /* Called about once per step with the fraction of the steps done (from the calling thread
     * only); non-zero stops with ND_ERR_INTERRUPTED. */
    int (*poll)(void *poll_ctx, double done);
    void *poll_ctx;
} nd_sde_opts;

/* euler_maruyama, diagonal, dt 0 (must be set), seed 0, nothing given or recorded. */
void nd_sde_opts_default(nd_sde_opts *o);

/* Steps of the grid over t[0..nt-1] with step dt, in *steps (checks t and dt). */
int nd_sde_steps(int64_t nt, const double *t, double dt, int64_t *steps);

typedef struct {
    int64_t steps;  /* steps of every sample's grid */
    int64_t nfev;   /* drift evaluations per sample */
    int64_t ngev;   /* diffusion evaluations per sample (a constant diffusion: 0) */
    int64_t failed; /* samples whose state became NaN or inf */
    int status;
} nd_sde_stats;

/* The right-hand sides: a built-in field (nd_fields.h; its batch and work are set per block of
 * rows by the kernel) or a callback drift(ctx, t, rows, y, dy) writing dy [rows, d]; a built-in
 * diffusion or a callback diffusion(ctx, t, rows, y, g) writing g [rows, d] ([rows, d, m] for
 * general noise), with an optional diffusion_dy(ctx, t, rows, y, gy) writing dg_i/dy_i [rows, d]
 * for milstein. Callbacks see the whole batch [B, d] at once (with samples that failed frozen at
 * their last finite state) and are called from the calling thread only; with built-in drift and
 * diffusion the samples are shared among the kernel threads (nd_parallel.h) in blocks.
 *
 * ys [nt, B, d]: ys[0] = y0. A sample whose state becomes NaN or inf stops there: its later rows
 * are NaN, sample_status[b] = ND_ERR_NONFINITE (else ND_OK) and sample_t[b] the time of its last
 * finite state (both optional); the others run to the end, and the call returns ND_ERR_NONFINITE. */
#define ND_SDE_DECLARE(T, SFX)                                                                      \
    typedef int (*nd_sde_fn_##SFX)(void *ctx, double t, int64_t rows, const T *y, T *out);           \
    typedef struct {                                                                                \
        const nd_field *field;                                                                      \
        nd_sde_fn_##SFX drift;                                                                      \
        void *drift_ctx;                                                                            \
        const nd_diffusion *diffusion;                                                              \
        nd_sde_fn_##SFX diffusion_fn;                                                               \
        void *diffusion_ctx;                                                                        \
        nd_sde_fn_##SFX diffusion_dy;                                                               \
        void *diffusion_dy_ctx;                                                                     \
    } nd_sde_problem_##SFX;                                                                         \
    int nd_sdeint_##SFX(const nd_sde_problem_##SFX *p, int64_t B, int64_t d, const T *y0, int64_t nt, \
                        const double *t, const nd_sde_opts *o, T *ys, int32_t *sample_status,        \
                        double *sample_t, nd_sde_stats *stats);

ND_SDE_DECLARE(float, f32)
ND_SDE_DECLARE(double, f64)

/* ---- gradients ------------------------------------------------------------------------ *
 *
 * Exact backpropagation through the Euler-Maruyama steps of a given Brownian path (the
 * increments dW [steps, B, m] of a forward pass) with a built-in drift field and diffusion:
 *   y_(k+1) = y_k + h f(t_k, y_k) + g(y_k) dW_k,
 *   a_k = a_(k+1) + h f_y^T a_(k+1) + g_y^T (a_(k+1) dW_k),
 * the parameter gradients summed over the steps and the samples. The states are recomputed
 * forward one output interval at a time (the outputs and one interval's states are kept), then
 * walked back. ybar [nt, B, d]: cotangents of every output. Results, written: y0bar [B, d];
 * dfield [P], the field's flat layout (nd_field_param_count, nd_fields.h); dg: CONSTANT [d]
 * ([d, m] for general noise), LINEAR [2 d] (scale, then offset). */
int nd_sde_backprop_workspace_len(const nd_field *field, int64_t B, int64_t d, int64_t nt, const double *t,
                                  double dt, size_t *len);

#define ND_SDE_GRAD_DECLARE(T, SFX)                                                                  \
    int nd_sde_backprop_##SFX(const nd_field *field, const nd_diffusion *g, int noise, int64_t B, int64_t d, \
                              const T *y0, int64_t nt, const double *t, double dt, const T *dW, const T *ybar, \
                              T *y0bar, T *dfield, T *dg, T *work);

ND_SDE_GRAD_DECLARE(float, f32)
ND_SDE_GRAD_DECLARE(double, f64)

#endif

/* Dense layers and activations: the building blocks of every neural model in neurodyn.
 *
 * Conventions: row-major, a batch of `rows` samples; Dense computes Y = X W + b with
 * W of shape [in, out] and b of shape [out] (b may be NULL). */
#ifndef ND_NN_H
#define ND_NN_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    ND_ACT_IDENTITY = 0,
    ND_ACT_TANH = 1,
    ND_ACT_SILU = 2,
    ND_ACT_RELU = 3,
    ND_ACT_SIGMOID = 4,
    ND_ACT_SOFTPLUS = 5,
    ND_ACT_LECUN_TANH = 6 /* 1.7159 tanh(0.666 x) (LeCun 1998), the CfC backbone's default */
} nd_act;

#define ND_ACT_COUNT 7

/* The activations' names in code order, NULL-terminated: the one table of activation names
 * (exported to Python as _core.TABLES["activations"]). */
extern const char *const nd_act_names[ND_ACT_COUNT + 1];

/* The activation's name ("tanh"), or NULL for an unknown code. */
const char *nd_act_name(int act);

/* Layer norm's epsilon when the caller gives none (docs/models.md: "LN ... eps 1e-5"). */
#define ND_LAYERNORM_EPS 1e-5

/* ND_OK when every labels[r] (r < rows) lies in [0, classes), else ND_ERR_ARG with the first
 * offending label as the detail; the rule of the cross-entropy kernels, for callers that
 * check targets before computing anything. */
int nd_check_labels(int64_t rows, int64_t classes, const int64_t *labels);

/* Elements of the transposed kernels of n layers of the given widths (nd_dense_transpose_kernels). */
size_t nd_dense_kernels_len(int n, const int64_t *widths);

/* Every function returns an nd_status; a bad argument is reported through nd_arg_error
 * (nd_status.h) under its user-facing name ("x", "activation", "eps", "logits", "labels").
 * Gradients named d* are written, or added to when `accumulate` is non-zero (so a layer used
 * at many time steps sums its gradient in place); any gradient pointer may be NULL to skip it. */
#define ND_NN_DECLARE(T, SFX)                                                                   \
    /* Y[rows, out] = X[rows, in] W[in, out] (+ b[out]). */                                      \
    int nd_dense_forward_##SFX(int64_t rows, int64_t in, int64_t out, const T *x, const T *w,    \
                               const T *b, T *y);                                                \
    /* dX = dY W^T (always written), dW = X^T dY, db = sum over rows of dY. */                   \
    int nd_dense_backward_##SFX(int64_t rows, int64_t in, int64_t out, const T *x, const T *w,   \
                                const T *dy, T *dx, T *dw, T *db, int accumulate);               \
    /* Its dX = dY W^T alone: from wt = W^T [out, in] when given, a plain product (no copy of    \
     * W^T for OpenBLAS's small-matrix path, which refuses W transposed), else W read transposed. */ \
    int nd_dense_input_grad_##SFX(int64_t rows, int64_t in, int64_t out, const T *w, const T *wt,  \
                                  const T *dy, T *dx);                                           \
    /* The kernels of n layers, weights[l] of [widths[l], widths[l + 1]], transposed into buf     \
     * (nd_dense_kernels_len elements) for nd_dense_input_grad, weights_t[l] pointing at each. */  \
    void nd_dense_transpose_kernels_##SFX(int n, const int64_t *widths, const void *const *weights, \
                                          T *buf, const void **weights_t);                        \
    /* The same two for X of spikes (every entry 0 or 1, else ND_ERR_ARG), event-driven: a row  \
     * of Y adds the rows of W its spikes select, dW adds rows of dY, so the work scales with    \
     * the spike count. Above a quarter of entries on, the dense kernels are used instead.      \
     * Allocates O(spikes) index memory (ND_ERR_NOMEM). */                                      \
    int nd_spike_dense_forward_##SFX(int64_t rows, int64_t in, int64_t out, const T *x,         \
                                     const T *w, const T *b, T *y);                              \
    int nd_spike_dense_backward_##SFX(int64_t rows, int64_t in, int64_t out, const T *x,        \
                                      const T *w, const T *dy, T *dx, T *dw, T *db,             \
                                      int accumulate);                                           \
    /* y[i] = act(x[i]) for i < n; y may equal x. */                                             \
    int nd_act_forward_##SFX(int act, int64_t n, const T *x, T *y);                              \
    /* z [rows, cols] += b on each row, then y = act(z) (y may equal z); b NULL: nd_act_forward. */ \
    int nd_act_forward_bias_##SFX(int act, int64_t rows, int64_t cols, const T *b, T *z, T *y);  \
    /* dx[i] = dy[i] act'(x[i]) given x and y = act(x); dx may equal dy. */                      \
    int nd_act_backward_##SFX(int act, int64_t n, const T *x, const T *y, const T *dy, T *dx);  \
    /* Layer norm over the last axis: y = (x - mean) rstd gamma + beta, rstd = 1/sqrt(var+eps); \
     * n >= 1 and eps >= 0; gamma and beta may be NULL (ones and zeros); mean and rstd [rows]  \
     * are saved for the backward pass (may be NULL in forward only). */                        \
    int nd_layernorm_forward_##SFX(int64_t rows, int64_t n, const T *x, const T *gamma,          \
                                   const T *beta, double eps, T *y, T *mean, T *rstd);           \
    int nd_layernorm_backward_##SFX(int64_t rows, int64_t n, const T *x, const T *gamma,         \
                                    const T *mean, const T *rstd, const T *dy, T *dx, T *dgamma, \
                                    T *dbeta, int accumulate);                                   \
    /* SwiGLU gate: out = silu(g) * u, and its backward. */                                      \
    int nd_swiglu_forward_##SFX(int64_t n, const T *g, const T *u, T *out);                      \
    int nd_swiglu_backward_##SFX(int64_t n, const T *g, const T *u, const T *dout, T *dg, T *du); \
    /* Mean softmax cross-entropy over rows with integer labels in [0, classes); dlogits (may be \
     * NULL) receives the gradient of the mean. ND_ERR_ARG for a label out of range. */           \
    int nd_softmax_xent_##SFX(int64_t rows, int64_t classes, const T *logits, const int64_t *labels, \
                              double *loss, T *dlogits);                                         \
    /* Mean squared error over n elements and its gradient (dpred may be NULL). */               \
    int nd_mse_##SFX(int64_t n, const T *pred, const T *target, double *loss, T *dpred);

ND_NN_DECLARE(float, f32)
ND_NN_DECLARE(double, f64)

#endif

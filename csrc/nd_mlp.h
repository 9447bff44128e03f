/* Dense layers and activations: the building blocks of every neural model in neurodyn.
 *
 * Conventions: row-major, a batch of `rows` samples; Dense computes Y = X W + b with
 * W of shape [in, out] and b of shape [out] (b may be NULL). */
#ifndef ND_MLP_H
#define ND_MLP_H

#include <stdint.h>

typedef enum {
    ND_ACT_IDENTITY = 0,
    ND_ACT_TANH = 1,
    ND_ACT_SILU = 2,
    ND_ACT_RELU = 3,
    ND_ACT_SIGMOID = 4,
    ND_ACT_SOFTPLUS = 5
} nd_act;

#define ND_ACT_COUNT 6

/* The activation's name ("tanh"), or NULL for an unknown code. */
const char *nd_act_name(int act);

#define ND_MLP_DECLARE(T, SFX)                                                                 \
    /* Y[rows, out] = X[rows, in] W[in, out] (+ b[out]). Returns an nd_status. */              \
    int nd_dense_forward_##SFX(int64_t rows, int64_t in, int64_t out, const T *x, const T *w,  \
                               const T *b, T *y);                                              \
    /* y[i] = act(x[i]) for i < n; y may equal x. Returns an nd_status. */                     \
    int nd_act_forward_##SFX(int act, int64_t n, const T *x, T *y);

ND_MLP_DECLARE(float, f32)
ND_MLP_DECLARE(double, f64)

#endif

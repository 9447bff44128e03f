/* Closed-form continuous-time (CfC) cell (Hasani et al. 2022), run over whole sequences.
 *
 * Per time step, with z = [x_t, h_{t-1}] and b = backbone(z) (layers of Dense + activation):
 *     f1 = tanh(b W_ff1 + c_ff1),  f2 = tanh(b W_ff2 + c_ff2),
 *     g  = sigmoid((b W_ta + c_ta) * dt + (b W_tb + c_tb)),      dt = the step's elapsed time,
 *     h_t = f1 (1 - g) + g f2      (mode ND_CFC_GATED)
 *     h_t = f1 + g f2              (mode ND_CFC_NO_GATE)
 * or, in mode ND_CFC_PURE (the closed-form solution of Hasani et al. 2022, eq. 3, as ncps
 * computes it), with the one head f = b W_ff1 + c_ff1 (no tanh) and per-unit w_tau, A:
 *     h_t = A - A exp(-dt (|w_tau| + |f|)) f.
 * Every product is one GEMM over the batch. Dense weights are [in, out] row-major. */
#ifndef ND_LIQUID_CFC_H
#define ND_LIQUID_CFC_H

#include <stddef.h>
#include <stdint.h>

#define ND_CFC_MAX_LAYERS 8

enum { ND_CFC_GATED = 0, ND_CFC_NO_GATE = 1, ND_CFC_PURE = 2 };
/* The modes' names in code order ("default" is the gated mode); NULL-terminated. */
extern const char *const nd_cfc_mode_names[];

typedef struct {
    int64_t input_size, hidden_size, units; /* >= 0, >= 1; units: width of the backbone layers, >= 1 */
    int64_t layers;                         /* backbone layers, 0..ND_CFC_MAX_LAYERS */
    int act;                                /* backbone activation (nd_act) */
    int mode;
    const void *bw[ND_CFC_MAX_LAYERS], *bb[ND_CFC_MAX_LAYERS]; /* [in_l, units], [units] */
    const void *hw[4], *hb[4];                                 /* heads ff1, ff2, ta, tb: [width, H], [H] */
    const void *w_tau, *A; /* mode ND_CFC_PURE: [H] each, and only the head ff1 (hw[0], hb[0]) */
} nd_cfc;

/* The rules of the cell's configuration (sizes, layers, activation, mode) under the model's
 * argument names, with the detail of nd_arg_error; the parameter pointers are not looked at.
 * The one place they are written, for the kernels and the model's construction. */
int nd_cfc_check(const nd_cfc *c);

/* Parameters in the flat gradient layout: each backbone layer's W then b, then each head's
 * W then b (ff1, ff2, ta, tb); in mode ND_CFC_PURE ff1's W and b, then w_tau, then A. */
int64_t nd_cfc_param_count(const nd_cfc *c);

/* Elements of the state's type per time step kept by the forward pass for the backward pass
 * (cache: T times this), and of scratch for either pass (work), for a batch of B. */
int nd_cfc_sizes(const nd_cfc *c, int64_t B, size_t *cache_per_step, size_t *work);

/* x [B, T, I]; dt [B, T] elapsed times, positive and finite (NULL: all 1); h0 [B, H] (NULL: zeros) -> h [B, T, H].
 * cache (NULL when no backward pass follows) receives T * cache_per_step elements.
 * Backward: dh [B, T, H] -> dx [B, T, I] (may be NULL), dh0 [B, H] (may be NULL) and the
 * parameter gradients dparams (written). */
#define ND_CFC_DECLARE(T_, SFX)                                                                       \
    int nd_cfc_forward_##SFX(const nd_cfc *c, int64_t B, int64_t T, const T_ *x, const T_ *dt,          \
                             const T_ *h0, T_ *h, T_ *cache, T_ *work);                                 \
    int nd_cfc_backward_##SFX(const nd_cfc *c, int64_t B, int64_t T, const T_ *dt, const T_ *cache,     \
                              const T_ *dh, T_ *dx, T_ *dh0, T_ *dparams, T_ *work);

ND_CFC_DECLARE(float, f32)
ND_CFC_DECLARE(double, f64)

#endif

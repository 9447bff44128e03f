/* Modern Hopfield retrieval (Ramsauer et al., 2020), fused: out = softmax(beta Q K^T) V with
 * the row log-sum-exp, computed tile by tile over the stored patterns with a running maximum
 * and sum (an online softmax), so memory is O(rows x tile) whatever the number of patterns.
 * Each tile's two products go through CBLAS; rows are processed in blocks as well.
 *
 * Shapes: Q [B, d], K [N, d], V [N, dv] (K itself when V is NULL), out [B, dv], lse [B]. */
#ifndef ND_HOPFIELD_H
#define ND_HOPFIELD_H

#include <stddef.h>
#include <stdint.h>

/* Pattern tile and row block of the kernels. */
#define ND_HOPFIELD_TILE 512
#define ND_HOPFIELD_ROWS 128 /* a 128 x 512 score tile stays in L2 */

/* The retrieval kernels' rule for the inverse temperature: ND_OK for beta > 0 and finite, else
 * ND_ERR_ARG with the detail; for models that check beta when they are built. */
int nd_hopfield_check_beta(double beta);

/* Scratch elements for forward (backward = 0) or backward, in *len. */
int nd_hopfield_workspace_len(int64_t B, int64_t d, int64_t dv, int backward, size_t *len);

#define ND_HOPFIELD_DECLARE(T_, SFX)                                                                   \
    int nd_hopfield_forward_##SFX(int64_t B, int64_t N, int64_t d, int64_t dv, double beta, const T_ *q,  \
                                  const T_ *k, const T_ *v, T_ *out, T_ *lse, T_ *work);                 \
    /* Given dout [B, dv] (and dlse [B], may be NULL), the forward's out and lse: dq [B, d], dk    \
     * [N, d], dv_ [N, dv] (NULL when V is K: its gradient is added into dk), dbeta (may be NULL). \
     * All gradients are written. */                                                             \
    int nd_hopfield_backward_##SFX(int64_t B, int64_t N, int64_t d, int64_t dv, double beta, const T_ *q, \
                                   const T_ *k, const T_ *v, const T_ *out, const T_ *lse, const T_ *dout, \
                                   const T_ *dlse, T_ *dq, T_ *dk, T_ *dvv, double *dbeta, T_ *work);

ND_HOPFIELD_DECLARE(float, f32)
ND_HOPFIELD_DECLARE(double, f64)

/* Classical Hopfield network, asynchronous updates: for every sample of x [B, n] (values +1 /
 * -1, updated in place), `sweeps` passes over the neurons in the orders given by order
 * [sweeps, n]; neuron i takes the sign of its field h_i = sum_j W_ij x_j, and keeps its state
 * when h_i is exactly 0 (the tie-break). Returns the number of flips in the last sweep summed
 * over the batch, or a negative nd_status. */
int64_t nd_hopfield_classical_async(int64_t B, int64_t n, const double *W, int64_t sweeps, const int64_t *order,
                                    double *x);

#endif

/* Leaky integrate-and-fire neurons over T time steps, forward and backward.
 *
 * Per step, for currents I_t [B, n] (row-major [T, B, n]):
 *     V <- beta V + I_t;  S_t = [V > theta];  V <- V - S_t theta   (reset "subtract")
 *                                              V <- V (1 - S_t)      (reset "zero")
 * With reset_delay the reset of a spike applies at the next step (snntorch's Leaky):
 *     R = [V_prev > theta];  V <- beta V_prev + I_t - R theta  (subtract) or
 *     V <- beta V_prev (1 - R) + I_t (zero);  S_t = [V > theta].
 * beta = 1 with reset "subtract" is the integrate-and-fire neuron of ANN-to-SNN conversion.
 *
 * The backward pass replaces dS/dV by a surrogate derivative of (V - theta):
 *     sigmoid:       k s(k x) (1 - s(k x))          (k = slope, default 10)
 *     fast_sigmoid:  1 / (1 + k |x|)^2
 *     atan:          (k / 2) / (1 + (pi k x / 2)^2)
 * and, by default (detach_reset), treats the reset as a constant. With `smooth` the forward
 * pass also uses the smooth spike whose derivative the surrogate is (sigmoid s(k x);
 * fast_sigmoid 1/2 + x / (1 + k |x|); atan 1/2 + atan(pi k x / 2) / pi), making the backward
 * pass that model's exact gradient (checked by finite differences). It recomputes the membrane
 * from the currents instead of storing it, so training keeps only the spikes (as bits). */
#ifndef ND_SNN_H
#define ND_SNN_H

#include <stddef.h>
#include <stdint.h>

#include "nd_rng.h"

/* Code tables: the enums and their user-facing names (NULL-terminated, in code order), which
 * the binding exports so that Python passes names and never restates a code. */
enum { ND_RESET_SUBTRACT = 0, ND_RESET_ZERO = 1 };
extern const char *const nd_lif_reset_names[];
enum { ND_SURROGATE_SIGMOID = 0, ND_SURROGATE_FAST_SIGMOID = 1, ND_SURROGATE_ATAN = 2 };
extern const char *const nd_lif_surrogate_names[];

typedef struct {
    /* The decay per step is beta = exp(-1/tau) (docs/models.md §5), or beta itself when
     * beta_given: tau > 0 and finite, beta in [0, 1] (1 is the integrate-and-fire neuron).
     * tau_given and beta_given record which one the caller chose; at most one may be set. */
    double tau, beta;
    int tau_given, beta_given;
    double threshold; /* > 0 and finite */
    int reset;        /* ND_RESET_* */
    int reset_delay;  /* snntorch's order */
    int surrogate;    /* ND_SURROGATE_* */
    double slope;     /* > 0 and finite */
    int detach_reset;
    int smooth;       /* spikes are the surrogate's antiderivative in the forward pass too: the
                         smooth model whose exact gradient the backward pass computes */
} nd_lif_params;

/* tau 2 (beta exp(-1/2)), threshold 1, subtract, no delay, sigmoid surrogate with slope 10,
 * detached reset, hard spikes. */
void nd_lif_params_default(nd_lif_params *p);

/* The rules of the parameters (every LIF kernel checks them first): ND_OK, or ND_ERR_ARG with
 * the argument and its rule recorded (nd_last_error). */
int nd_lif_params_check(const nd_lif_params *p);

/* The decay per step the parameters give: beta when beta_given, else exp(-1/tau). */
double nd_lif_decay(const nd_lif_params *p);

/* Bytes of a spike raster [T, B, n] packed one bit per spike. */
int nd_spike_bits_size(int64_t T, int64_t B, int64_t n, size_t *bytes);

/* Spike encoders: analog inputs x [n] to spike trains [T, n] (docs/models.md §5).
 *   constant: x itself at every step;
 *   poisson:  Bernoulli spikes with probability clip(x, 0, 1): element (t, i) fires when
 *             uniform(seed, stream, t n + i) < x_i, so any slice is reproducible;
 *   latency:  one spike at step round((1 - x_i)(T - 1)) for x_i in (0, 1] (clipped), none for
 *             x_i <= 0: stronger inputs fire earlier. */
enum { ND_ENCODE_CONSTANT = 0, ND_ENCODE_POISSON = 1, ND_ENCODE_LATENCY = 2 };
extern const char *const nd_encoding_names[];

/* Elements of an encoder's output, T n, after checking its arguments (T >= 1). */
int nd_encode_len(int encoding, int64_t T, int64_t n, size_t *len);

#define ND_LIF_DECLARE(T_, SFX)                                                                        \
    /* currents [T, B, n], v0 [B, n] (NULL: zeros) -> spikes [T, B, n] (may be NULL), membrane     \
     * [T, B, n] after each step's reset (may be NULL), bits (may be NULL), rate [B, n], the mean   \
     * of the spikes over the T >= 1 steps (may be NULL; no raster needed), v_end [B, n].           \
     * cur_tstride: elements between the currents of consecutive steps, B n, or 0 for one [B, n]  \
     * current every step shares. Returns an nd_status. */                                          \
    int nd_lif_forward_##SFX(const nd_lif_params *p, int64_t T, int64_t B, int64_t n, const T_ *currents, \
                             int64_t cur_tstride, const T_ *v0, T_ *spikes, T_ *membrane, uint8_t *bits, \
                             T_ *rate, T_ *v_end);                                                      \
    /* Cotangents of the spikes (dspikes, may be NULL) and of the post-reset membrane (dmem, may    \
     * be NULL) -> dcurrents and dv0 [B, n] (may be NULL). Each *_tstride is B n for a [T, B, n]    \
     * array or 0 for one [B, n] row shared by every step: currents as in the forward pass,         \
     * dspikes the cotangent of a mean rate, and dcurrents the gradient of a shared current, the    \
     * sum over steps. dcurrents may be currents itself (same layout): each chunk of neurons reads  \
     * all its currents before it writes its gradients. Scratch: T * 256 elements per thread. */    \
    int nd_lif_backward_##SFX(const nd_lif_params *p, int64_t T, int64_t B, int64_t n, const T_ *currents, \
                              int64_t cur_tstride, const T_ *v0, const T_ *dspikes, int64_t dspikes_tstride, \
                              const T_ *dmem, T_ *dcurrents, int64_t dcur_tstride, T_ *dv0);           \
    /* Unpacks the nbytes of bits written by nd_lif_forward for a [T, B, n] raster into 0/1 values. */ \
    int nd_spike_bits_unpack_##SFX(int64_t T, int64_t B, int64_t n, const uint8_t *bits, size_t nbytes, T_ *out); \
    /* out [T, n] = the encoding of x [n] (see above); seed and stream are read by poisson only. */   \
    int nd_encode_##SFX(int encoding, int64_t T, int64_t n, const T_ *x, uint64_t seed, uint64_t stream, T_ *out);

ND_LIF_DECLARE(float, f32)
ND_LIF_DECLARE(double, f64)

#endif

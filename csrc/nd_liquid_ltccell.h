/* The liquid time-constant cell of Hasani et al. (2021), run over whole sequences.
 *
 * N units driven by S sensory inputs through sigmoid synapses. With the membrane potential v,
 *     C dv/dt = g_leak (v_leak - v) + sum_i w_ij s(sigma_ij (v_i - mu_ij)) (E_ij - v_j)
 *               + sum_i w~_ij s(sigma~_ij (x_i - mu~_ij)) (E~_ij - v_j),
 * i.e. dv/dt = -[1/tau + f(v, x)] v + f(v, x) A in the paper's notation. Each time step of
 * elapsed time dt takes K = `unfolds` fused semi-implicit Euler steps of dt/K:
 *     v <- (c v + g_leak v_leak + sum a E) / (c + g_leak + sum a + eps),  c = C K / dt,
 * with a the synaptic activations at the current v (the sensory ones fixed within the step).
 * Parameters are effective values (w, w~, g_leak, C positive); arrays [i, j] are [pre, post]. */
#ifndef ND_LIQUID_LTCCELL_H
#define ND_LIQUID_LTCCELL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t sensory, units; /* S >= 0 ("input_size"), N >= 1 ("units") */
    int64_t unfolds;        /* K in [1, 100000] ("ode_unfolds") */
    double eps;             /* >= 0 and finite ("epsilon"): keeps the denominator away from 0 */
    const void *gleak, *vleak, *cm;            /* [N] */
    const void *w, *sigma, *mu, *erev;         /* [N, N] */
    const void *sw, *ssigma, *smu, *serev;     /* [S, N] */
} nd_ltccell;

/* The rules of the cell's configuration (the sizes, unfolds and eps above), with the detail of
 * nd_arg_error; the parameter pointers are not looked at. The one place they are written, for
 * the kernels and the model's construction. */
int nd_ltccell_check(const nd_ltccell *c);

/* 3 N + 4 N^2 + 4 S N, in the gradient order gleak, vleak, cm, w, sigma, mu, erev, sw,
 * ssigma, smu, serev. */
int64_t nd_ltccell_param_count(const nd_ltccell *c);

/* cache: B T K N elements (every unfold's starting potential) for the backward pass;
 * work: elements of scratch for either pass. */
int nd_ltccell_sizes(const nd_ltccell *c, int64_t B, int64_t T, size_t *cache, size_t *work);

/* x [B, T, S] (already through the input map); dt [B, T] elapsed times, positive and finite
 * (NULL: all 1);
 * h0 [B, N] (NULL: zeros) -> h [B, T, N]. Backward: dh [B, T, N] -> dx [B, T, S] (may be
 * NULL), dh0 [B, N] (may be NULL), dparams (written, layout above). */
#define ND_LTCCELL_DECLARE(T_, SFX)                                                                   \
    int nd_ltccell_forward_##SFX(const nd_ltccell *c, int64_t B, int64_t T, const T_ *x, const T_ *dt,  \
                                 const T_ *h0, T_ *h, T_ *cache, T_ *work);                             \
    int nd_ltccell_backward_##SFX(const nd_ltccell *c, int64_t B, int64_t T, const T_ *x, const T_ *dt, \
                                  const T_ *h0, const T_ *cache, const T_ *dh, T_ *dx, T_ *dh0,          \
                                  T_ *dparams, T_ *work);

ND_LTCCELL_DECLARE(float, f32)
ND_LTCCELL_DECLARE(double, f64)

#endif

#include "nd_hopfield.h"

#include <math.h>

#include "nd_blas.h"
#include "nd_generic.h"
#include "nd_parallel.h"
#include "nd_poll.h"
#include "nd_status.h"
#include "nd_vmath.h"

int nd_hopfield_check_beta(double beta)
{
    ND_REQUIRE(beta > 0 && isfinite(beta), "beta", beta, "must be positive and finite");
    return ND_OK;
}

int nd_hopfield_workspace_len(int64_t B, int64_t d, int64_t dv, int backward, size_t *len)
{
    if (B < 0 || d < 0 || dv < 0)
        return ND_ERR_ARG;
    const size_t R = (size_t)(B < ND_HOPFIELD_ROWS ? B : ND_HOPFIELD_ROWS), t = ND_HOPFIELD_TILE;
    /* forward: a score tile, the running max and sum, and the accumulator (R x dv)
     * backward: score and probability tiles, dP, the row terms D */
    size_t acc;
    if (!nd_mul_size(R, (size_t)dv, &acc) || acc > SIZE_MAX - R * t - 2 * R)
        return ND_ERR_OVERFLOW;
    (void)d;
    *len = backward ? 3 * R * t + R : R * t + 2 * R + acc;
    return ND_OK;
}

int64_t nd_hopfield_classical_async(int64_t B, int64_t n, const double *W, int64_t sweeps, const int64_t *order,
                                    double *x)
{
    if (B < 0 || n < 0 || sweeps < 0 || (B > 0 && n > 0 && (!W || !x || (sweeps > 0 && !order))))
        return nd_arg_error_novalue("sizes", "must be >= 0 with every array given");
    if (n == 0) /* no neurons: no loop over the samples or sweeps */
        return 0;
    for (int64_t s = 0; s < sweeps; ++s)
        for (int64_t i = 0; i < n; ++i)
            ND_REQUIRE(order[s * n + i] >= 0 && order[s * n + i] < n, "order", order[s * n + i],
                       "must hold neuron indices in [0, n)");
    if (B == 0 || sweeps == 0)
        return 0;
    int64_t flips = 0;
    for (int64_t b = 0; b < B; ++b) {
        double *xb = x + b * n;
        for (int64_t s = 0; s < sweeps; ++s) {
            int st = nd_poll_work(n * n);
            if (st != ND_OK)
                return st;
            for (int64_t k = 0; k < n; ++k) {
                const int64_t i = order[s * n + k];
                const double *wi = W + i * n;
                double h = 0;
                for (int64_t j = 0; j < n; ++j)
                    h += wi[j] * xb[j];
                const double next = h > 0 ? 1.0 : (h < 0 ? -1.0 : xb[i]);
                if (s == sweeps - 1 && next != xb[i])
                    flips++;
                xb[i] = next;
            }
        }
    }
    return flips;
}

#define ND_IMPL "nd_hopfield_impl.inc"
#include "nd_instantiate.h"

#include "nd_hopfield.h"

#include <math.h>

#include "nd_blas.h"
#include "nd_generic.h"
#include "nd_status.h"
#include "nd_vmath.h"

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

#define ND_IMPL "nd_hopfield_impl.inc"
#include "nd_instantiate.h"

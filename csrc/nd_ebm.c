#include "nd_ebm.h"

#include <math.h>

#include "nd_blas.h"
#include "nd_generic.h"
#include "nd_nn.h"
#include "nd_parallel.h"
#include "nd_rng.h"
#include "nd_status.h"
#include "nd_vmath.h"

int nd_energy_check(const nd_energy *e)
{
    if (!e || e->dim < 1)
        return ND_ERR_ARG;
    switch (e->kind) {
    case ND_ENERGY_MLP:
        if (e->n_layers < 0 || e->n_layers > ND_ENERGY_MAX_LAYERS || e->widths[0] != e->dim || !nd_act_name(e->act))
            return ND_ERR_ARG;
        for (int l = 0; l <= e->n_layers; ++l)
            if (!e->weights[l] || (l < e->n_layers && e->widths[l + 1] < 1))
                return ND_ERR_ARG;
        return ND_OK;
    case ND_ENERGY_QUADRATIC:
        return e->mean && e->precision ? ND_OK : ND_ERR_ARG;
    case ND_ENERGY_GMM:
        return e->components >= 1 && e->mean && e->precision && e->logc ? ND_OK : ND_ERR_ARG;
    case ND_ENERGY_DOUBLE_WELL:
        return isfinite(e->barrier) && isfinite(e->tilt) ? ND_OK : ND_ERR_ARG;
    default:
        return ND_ERR_ARG;
    }
}

int nd_energy_workspace_len(const nd_energy *e, int64_t B, size_t *len)
{
    int st = nd_energy_check(e);
    if (st != ND_OK)
        return st;
    if (B < 0)
        return ND_ERR_ARG;
    size_t per_row = 0;
    if (e->kind == ND_ENERGY_MLP) {
        /* pre- and post-activations of every hidden layer, and two cotangent rows */
        int64_t widest = e->dim;
        for (int l = 1; l <= e->n_layers; ++l) {
            per_row += 2 * (size_t)e->widths[l];
            widest = e->widths[l] > widest ? e->widths[l] : widest;
        }
        per_row += 2 * (size_t)widest + 1;
    } else if (e->kind == ND_ENERGY_QUADRATIC) {
        per_row = 2 * (size_t)e->dim;
    } else if (e->kind == ND_ENERGY_GMM) {
        per_row = (size_t)(e->components * (e->dim + 1)); /* log terms and P_k (x - m_k) */
    }
    return nd_mul_size(per_row, (size_t)B, len) ? ND_OK : ND_ERR_OVERFLOW;
}

int nd_langevin_workspace_len(int64_t B, int64_t d, size_t *len)
{
    size_t bd;
    if (B < 0 || d < 0 || !nd_mul_size((size_t)B, (size_t)d, &bd) || bd > SIZE_MAX / 8)
        return ND_ERR_OVERFLOW;
    *len = 3 * bd + 2 * (size_t)B; /* proposal, two gradients, two energies */
    return ND_OK;
}

#define ND_IMPL "nd_ebm_impl.inc"
#include "nd_instantiate.h"

#include "nd_ebm.h"

#include <math.h>

#include "nd_blas.h"
#include "nd_generic.h"
#include "nd_nn.h"
#include "nd_parallel.h"
#include "nd_poll.h"
#include "nd_rng.h"
#include "nd_status.h"
#include "nd_vmath.h"

const char *const nd_energy_kind_names[] = {"mlp", "quadratic", "gmm", "double_well", NULL};

int nd_energy_check(const nd_energy *e)
{
    if (!e)
        return nd_arg_error_novalue("energy", "must be given");
    ND_REQUIRE(e->dim >= 1, "x", e->dim, "must have a state dimension >= 1");
    switch (e->kind) {
    case ND_ENERGY_MLP:
        ND_REQUIRE(e->n_layers >= 0 && e->n_layers <= ND_ENERGY_MAX_LAYERS, "hidden_sizes", e->n_layers,
                   "must have at most 16 layers");
        ND_REQUIRE(e->widths[0] == e->dim, "x", e->dim, "must have the energy's input size");
        ND_REQUIRE(nd_act_name(e->act), "activation", e->act, "is not a known activation code");
        for (int l = 0; l <= e->n_layers; ++l) {
            ND_REQUIRE(e->weights[l], "weights", l, "must be given for every layer");
            ND_REQUIRE(l == e->n_layers || e->widths[l + 1] >= 1, "hidden_sizes", e->widths[l + 1], "must be >= 1");
        }
        return ND_OK;
    case ND_ENERGY_QUADRATIC:
        ND_REQUIRE(e->mean && e->precision, "mean and precision", 0, "must be given");
        return ND_OK;
    case ND_ENERGY_GMM:
        ND_REQUIRE(e->components >= 1, "means", e->components, "must hold at least one component");
        ND_REQUIRE(e->mean && e->precision && e->logc, "means, precisions and weights", 0, "must be given");
        return ND_OK;
    case ND_ENERGY_DOUBLE_WELL:
        ND_REQUIRE(isfinite(e->barrier), "barrier", e->barrier, "must be finite");
        ND_REQUIRE(isfinite(e->tilt), "tilt", e->tilt, "must be finite");
        return ND_OK;
    default:
        return nd_arg_error("energy kind", e->kind, "is not a known energy");
    }
}

void nd_langevin_opts_default(nd_langevin_opts *o)
{
    *o = (nd_langevin_opts){.steps = 60, .step_size = 10.0, .noise_scale = 0.005};
}

int nd_langevin_check(const nd_langevin_opts *o, int64_t B)
{
    if (!o)
        return nd_arg_error_novalue("options", "must be given");
    ND_REQUIRE(o->steps >= 0, "steps", o->steps, "must be >= 0");
    ND_REQUIRE(o->step_size > 0 && isfinite(o->step_size), "step_size", o->step_size, "must be > 0 and finite");
    ND_REQUIRE(o->noise_scale >= 0 && isfinite(o->noise_scale), "noise_scale", o->noise_scale,
               "must be >= 0 and finite");
    ND_REQUIRE(!o->clip || (o->grad_clip > 0 && isfinite(o->grad_clip)), "grad_clip", o->grad_clip,
               "must be > 0 and finite");
    ND_REQUIRE(!o->clamp || isfinite(o->clamp_lo), "clamp[0]", o->clamp_lo, "must be finite");
    ND_REQUIRE(!o->clamp || isfinite(o->clamp_hi), "clamp[1]", o->clamp_hi, "must be finite");
    ND_REQUIRE(!o->clamp || o->clamp_lo < o->clamp_hi, "clamp", o->clamp_hi, "must have min < max");
    /* MALA targets exp(-E / s^2): s must be positive */
    ND_REQUIRE(!o->mala || o->noise_scale > 0, "noise_scale", o->noise_scale,
               "must be > 0 with mala=True (it samples exp(-E / noise_scale^2))");
    const int64_t total = o->chains > 0 ? o->chains : B;
    ND_REQUIRE(o->chain0 >= 0 && o->chain0 <= total - B && o->chains >= 0, "chains", o->chain0,
               "must start a range of the batch's size inside the run");
    return ND_OK;
}

/* Elements of an energy's scratch per row: an MLP's pre- and post-activations of every hidden
 * layer, two cotangent rows and its output. */
static size_t nd_energy_row_len(const nd_energy *e)
{
    if (e->kind == ND_ENERGY_QUADRATIC)
        return 2 * (size_t)e->dim;
    if (e->kind == ND_ENERGY_GMM)
        return (size_t)(e->components * (e->dim + 1)); /* log terms and P_k (x - m_k) */
    if (e->kind != ND_ENERGY_MLP)
        return 0;
    size_t per_row = 0;
    int64_t widest = e->dim;
    for (int l = 1; l <= e->n_layers; ++l) {
        per_row += 2 * (size_t)e->widths[l];
        widest = e->widths[l] > widest ? e->widths[l] : widest;
    }
    return per_row + 2 * (size_t)widest + 1;
}

int nd_energy_workspace_len(const nd_energy *e, int64_t B, size_t *len)
{
    int st = nd_energy_check(e);
    if (st != ND_OK)
        return st;
    ND_REQUIRE(B >= 0, "x", B, "must have a batch size >= 0");
    size_t rows;
    /* an MLP's transposed kernels (nd_energy_prepare) after the rows' part */
    const size_t kernels = e->kind == ND_ENERGY_MLP ? nd_dense_kernels_len(e->n_layers, e->widths) : 0;
    if (!nd_mul_size(nd_energy_row_len(e), (size_t)B, &rows) || rows > SIZE_MAX - kernels)
        return ND_ERR_OVERFLOW;
    *len = rows + kernels;
    return ND_OK;
}

int nd_langevin_workspace_len(int64_t B, int64_t d, size_t *len)
{
    size_t bd;
    if (B < 0 || d < 0 || !nd_mul_size((size_t)B, (size_t)d, &bd) || bd > SIZE_MAX / 8)
        return nd_size_error("x0");
    *len = 3 * bd + 2 * (size_t)B; /* proposal, two gradients, two energies */
    return ND_OK;
}

#define ND_IMPL "nd_ebm_impl.inc"
#include "nd_instantiate.h"

#include "nd_liquid_cfc.h"

#include "nd_blas.h"
#include "nd_generic.h"
#include "nd_liquid.h" /* nd_liquid_check_positive */
#include "nd_nn.h"
#include "nd_poll.h"
#include "nd_status.h"
#include "nd_vmath.h"

static int64_t nd_cfc_width(const nd_cfc *c) { return c->layers ? c->units : c->input_size + c->hidden_size; }

/* The dense heads on the backbone: ff1, ff2, ta, tb, or ff1 alone in the pure mode. */
static int nd_cfc_heads(const nd_cfc *c) { return c->mode == ND_CFC_PURE ? 1 : 4; }

#define ND_CFC_STR(x) #x
#define ND_CFC_XSTR(x) ND_CFC_STR(x)

const char *const nd_cfc_mode_names[] = {"default", "no_gate", "pure", NULL};

int nd_cfc_check(const nd_cfc *c)
{
    if (!c)
        return nd_arg_error_novalue("cell", "must be given");
    ND_REQUIRE(c->input_size >= 0, "input_size", c->input_size, "must be >= 0");
    ND_REQUIRE(c->hidden_size >= 1, "hidden_size", c->hidden_size, "must be >= 1");
    ND_REQUIRE(c->layers >= 0, "backbone_layers", c->layers, "must be >= 0");
    ND_REQUIRE(c->layers <= ND_CFC_MAX_LAYERS, "backbone_layers", c->layers, "must be at most " ND_CFC_XSTR(ND_CFC_MAX_LAYERS));
    ND_REQUIRE(c->units >= 1 || !c->layers, "backbone_units", c->units, "must be >= 1");
    ND_REQUIRE(nd_act_name(c->act), "backbone_activation", c->act, "is not a known activation code");
    ND_REQUIRE(c->mode == ND_CFC_GATED || c->mode == ND_CFC_NO_GATE || c->mode == ND_CFC_PURE, "mode", c->mode,
               "is not a known mode code");
    return ND_OK;
}

/* The configuration and every parameter the kernels read. */
static int nd_cfc_check_params(const nd_cfc *c)
{
    int st = nd_cfc_check(c);
    if (st != ND_OK)
        return st;
    for (int64_t l = 0; l < c->layers; ++l)
        if (!c->bw[l] || !c->bb[l])
            return nd_arg_error_novalue("backbone parameters", "must all be given");
    for (int k = 0; k < nd_cfc_heads(c); ++k)
        if (!c->hw[k] || !c->hb[k])
            return nd_arg_error_novalue("head parameters", "must all be given");
    if (c->mode == ND_CFC_PURE && (!c->w_tau || !c->A))
        return nd_arg_error_novalue("w_tau and A", "must be given in mode pure");
    return ND_OK;
}

int64_t nd_cfc_param_count(const nd_cfc *c)
{
    int64_t p = 0, in = c->input_size + c->hidden_size;
    for (int l = 0; l < c->layers; ++l) {
        p += in * c->units + c->units;
        in = c->units;
    }
    return p + nd_cfc_heads(c) * (in * c->hidden_size + c->hidden_size) + (c->mode == ND_CFC_PURE ? 2 * c->hidden_size : 0);
}

int nd_cfc_sizes(const nd_cfc *c, int64_t B, size_t *cache_per_step, size_t *work)
{
    int st = nd_cfc_check_params(c);
    if (st != ND_OK)
        return st;
    ND_REQUIRE(B >= 0, "x", B, "must have a batch size >= 0");
    const size_t z = (size_t)(c->input_size + c->hidden_size), U = (size_t)c->units, H = (size_t)c->hidden_size;
    const size_t wide = z > U ? z : U;
    /* per step: z, each layer's pre- and post-activation, f1, f2, g (pure mode: f, the
     * exponential, and a row not used) */
    size_t per_row = z + 2 * (size_t)c->layers * U + 3 * H;
    /* scratch: two rows of the widest layer, the four heads' pre-activations and a cotangent
     * per sample, and three single rows for the heads' outputs when nothing is cached */
    size_t work_row = 2 * wide + 5 * H;
    if (!nd_mul_size((size_t)B, per_row, cache_per_step) || !nd_mul_size((size_t)B, work_row, work) ||
        *work > SIZE_MAX - 3 * H)
        return nd_size_error("x");
    *work += 3 * H;
    return ND_OK;
}

#define ND_IMPL "nd_liquid_cfc_impl.inc"
#include "nd_instantiate.h"

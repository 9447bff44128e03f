#include "nd_fields.h"

#include "nd_blas.h"
#include "nd_generic.h"
#include "nd_hybrid.h"
#include "nd_nn.h"
#include "nd_status.h"

int nd_field_check(const nd_field *f)
{
    if (!f || f->batch < 0 || f->dim < 0 || f->keep_slots < 0 || f->keep_slots > ND_FIELD_MAX_SLOTS)
        return ND_ERR_ARG;
    switch (f->kind) {
    case ND_FIELD_LINEAR:
        return f->A ? ND_OK : ND_ERR_ARG;
    case ND_FIELD_LORENZ:
        return f->dim == 3 ? ND_OK : ND_ERR_ARG;
    case ND_FIELD_RELAX:
        return (f->a && f->tau) ? ND_OK : ND_ERR_ARG;
    case ND_FIELD_HYBRID:
        return nd_hybrid_field_check(f->hybrid, f->dim);
    case ND_FIELD_MLP:
        if (f->n_layers < 1 || f->n_layers > ND_FIELD_MAX_LAYERS)
            return ND_ERR_ARG;
        if (f->widths[0] != f->dim || f->widths[f->n_layers] != f->dim)
            return ND_ERR_ARG;
        for (int l = 0; l < f->n_layers; ++l) {
            if (f->widths[l + 1] < 1 || !f->weights[l] || !nd_act_name(f->acts[l]))
                return ND_ERR_ARG;
            if (!nd_blas_dims_ok(f->batch, f->widths[l], f->widths[l + 1]))
                return ND_ERR_OVERFLOW;
        }
        return ND_OK;
    default:
        return ND_ERR_ARG;
    }
}

/* Widest hidden layer of an MLP field (0 for a single layer). */
static int64_t nd_field_widest_hidden(const nd_field *f)
{
    int64_t widest = 0;
    for (int l = 1; l < f->n_layers; ++l)
        if (f->widths[l] > widest)
            widest = f->widths[l];
    return widest;
}

/* Per batch row: every layer's pre-activation and output (one VJP's forward pass, or a slot). */
static size_t nd_field_mlp_layers_row(const nd_field *f)
{
    size_t n = 0;
    for (int l = 0; l < f->n_layers; ++l)
        n += 2 * (size_t)f->widths[l + 1];
    return n;
}

/* Per batch row: the VJP's layers and its two cotangent buffers; the slots follow. */
static size_t nd_field_mlp_vjp_row(const nd_field *f)
{
    int64_t widest = nd_field_widest_hidden(f), all = widest > f->dim ? widest : f->dim;
    return nd_field_mlp_layers_row(f) + 2 * (size_t)all;
}

int nd_field_workspace_len(const nd_field *f, size_t *len)
{
    int st = nd_field_check(f);
    if (st != ND_OK)
        return st;
    *len = 0;
    if (f->kind == ND_FIELD_HYBRID)
        return nd_hybrid_field_workspace_len(f->hybrid, f->batch, f->keep_slots, len);
    if (f->kind != ND_FIELD_MLP)
        return ND_OK;
    /* Evaluation ping-pongs between two buffers of the widest hidden layer. The VJP keeps
     * every layer's pre- and post-activation and two cotangent buffers of the widest layer;
     * each slot keeps another set of pre- and post-activations. */
    size_t per_row = nd_field_mlp_vjp_row(f) + (size_t)f->keep_slots * nd_field_mlp_layers_row(f);
    return nd_mul_size((size_t)f->batch, per_row, len) ? ND_OK : ND_ERR_OVERFLOW;
}

int64_t nd_field_param_count(const nd_field *f)
{
    switch (f->kind) {
    case ND_FIELD_LINEAR: return f->dim * f->dim + (f->b ? f->dim : 0);
    case ND_FIELD_LORENZ: return 3;
    case ND_FIELD_MLP: {
        int64_t p = 0;
        for (int l = 0; l < f->n_layers; ++l)
            p += f->widths[l] * f->widths[l + 1] + (f->biases[l] ? f->widths[l + 1] : 0);
        return p;
    }
    case ND_FIELD_RELAX: return 2 * f->batch * f->dim;
    case ND_FIELD_HYBRID: return nd_hybrid_field_param_count(f->hybrid);
    default: return 0;
    }
}

#define ND_IMPL "nd_fields_impl.inc"
#include "nd_instantiate.h"

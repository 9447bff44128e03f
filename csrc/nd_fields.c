#include "nd_fields.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nd_blas.h"
#include "nd_generic.h"
#include "nd_memories.h"
#include "nd_hybrid.h"
#include "nd_flows.h"
#include "nd_poll.h"
#include "nd_nn.h"
#include "nd_status.h"

const char *const nd_field_kind_names[ND_FIELD_KIND_COUNT + 1] = {"linear", "lorenz", "mlp", "relax", "polynomial",
                                                                  "memory", "hybrid", "flow", NULL};

int nd_field_check(const nd_field *f)
{
    if (!f)
        return nd_arg_error_novalue("field", "must not be NULL");
    ND_REQUIRE(f->kind >= 0 && f->kind < ND_FIELD_KIND_COUNT, "the field kind", f->kind, "is not a known kind");
    ND_REQUIRE(f->batch >= 0, "the number of field states", f->batch, "must be >= 0");
    ND_REQUIRE(f->dim >= 0, "the state size", f->dim, "must be >= 0");
    ND_REQUIRE(f->keep_slots >= 0 && f->keep_slots <= ND_FIELD_MAX_SLOTS, "keep_slots", f->keep_slots,
               "must be between 0 and 16");
    switch (f->kind) {
    case ND_FIELD_LINEAR:
        return f->A ? ND_OK : nd_arg_error_novalue("A", "must be given");
    case ND_FIELD_LORENZ:
        ND_REQUIRE(f->dim == 3, "the state size", f->dim, "must be 3 for the Lorenz system");
        ND_REQUIRE(isfinite(f->sigma), "sigma", f->sigma, "must be finite");
        ND_REQUIRE(isfinite(f->rho), "rho", f->rho, "must be finite");
        ND_REQUIRE(isfinite(f->beta), "beta", f->beta, "must be finite");
        return ND_OK;
    case ND_FIELD_POLY:
        ND_REQUIRE(f->n_terms >= 0, "coef", f->n_terms, "must hold >= 0 terms");
        ND_REQUIRE(f->n_terms == 0 || (f->coef && f->target && f->powers), "coef", 0,
                   "target and powers must be given");
        for (int64_t k = 0; k < f->n_terms; ++k) {
            ND_REQUIRE(f->target[k] >= 0 && f->target[k] < f->dim, "target", f->target[k],
                       "must index the state (0 <= target < dim)");
            for (int64_t j = 0; j < f->dim; ++j)
                ND_REQUIRE(f->powers[k * f->dim + j] >= 0 && f->powers[k * f->dim + j] <= ND_FIELD_MAX_POWER,
                           "powers", f->powers[k * f->dim + j], "must be integers in [0, 64]");
        }
        return ND_OK;
    case ND_FIELD_RELAX:
        return (f->a && f->tau) ? ND_OK : nd_arg_error_novalue("a and tau", "must be given");
    case ND_FIELD_MEMORY:
        return nd_memory_field_check(f->memory, f->dim);
    case ND_FIELD_HYBRID:
        return nd_hybrid_field_check(f->hybrid, f->dim);
    case ND_FIELD_FLOW:
        return nd_flow_check(f->flow, f->dim, f->flow_params);
    default: /* ND_FIELD_MLP */
        break;
    }
    ND_REQUIRE(f->n_layers >= 1 && f->n_layers <= ND_FIELD_MAX_LAYERS, "the number of layers", f->n_layers,
               "must be between 1 and 16 for an MLP field");
    char name[32], rule[120];
    for (int l = 0; l < f->n_layers; ++l) {
        snprintf(name, sizeof name, "weights[%d]", l);
        ND_REQUIRE(f->widths[l + 1] >= 1, name, f->widths[l + 1], "must have at least one output: every layer needs a unit");
        if (!f->weights[l])
            return nd_arg_error_novalue(name, "must be given");
        if (!nd_act_name(f->acts[l]))
            return nd_arg_error("activation", f->acts[l], "is not a known activation code");
        if (!nd_blas_dims_ok(f->batch, f->widths[l], f->widths[l + 1]))
            return nd_size_error(name);
    }
    if (f->widths[0] != f->dim || f->widths[f->n_layers] != f->dim) {
        snprintf(rule, sizeof rule, "has %lld outputs; a vector field needs %lld (its input size)",
                 (long long)f->widths[f->n_layers], (long long)f->widths[0]);
        return nd_arg_error_novalue("the last layer", rule);
    }
    return ND_OK;
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

/* The Jacobian's own scratch (not per row): 2 [dim, widest] chains and 2 [widest] rows. */
static int nd_field_mlp_jac_len(const nd_field *f, size_t *len)
{
    int64_t widest = nd_field_widest_hidden(f), all = widest > f->dim ? widest : f->dim;
    size_t chain;
    if (!nd_mul_size((size_t)f->dim + 1, (size_t)all, &chain) || !nd_mul_size(chain, 2, len))
        return 0;
    return 1;
}

/* Where the Jacobian's scratch starts: after the rows' scratch and the slots. */
static size_t nd_field_mlp_jac_offset(const nd_field *f)
{
    return (size_t)f->batch * (nd_field_mlp_vjp_row(f) + (size_t)f->keep_slots * nd_field_mlp_layers_row(f));
}

int nd_field_workspace_len(const nd_field *f, size_t *len)
{
    int st = nd_field_check(f);
    if (st != ND_OK)
        return st;
    *len = 0;
    if (f->kind == ND_FIELD_MEMORY)
        return nd_memory_field_workspace_len(f->memory, f->batch, len);
    if (f->kind == ND_FIELD_HYBRID)
        return nd_hybrid_field_workspace_len(f->hybrid, f->batch, f->keep_slots, len);
    if (f->kind == ND_FIELD_FLOW) /* one state's Jacobian for a VJP */
        return nd_mul_size((size_t)f->dim, (size_t)f->dim, len) ? ND_OK : ND_ERR_OVERFLOW;
    if (f->kind != ND_FIELD_MLP)
        return ND_OK;
    /* The VJP keeps every layer's pre- and post-activation (an evaluation writes its layers
     * there too) and two cotangent buffers of the widest layer; each slot keeps another set of
     * pre- and post-activations. */
    size_t per_row = nd_field_mlp_vjp_row(f) + (size_t)f->keep_slots * nd_field_mlp_layers_row(f);
    return nd_mul_size((size_t)f->batch, per_row, len) ? ND_OK : ND_ERR_OVERFLOW;
}

/* A hybrid energy model's field (not a target system's) keeps its primal sweeps (nd_hybrid.h). */
static int nd_field_keeps_hybrid(const nd_field *f)
{
    return f->kind == ND_FIELD_HYBRID && !((const nd_hybrid_field *)f->hybrid)->is_system;
}

/* Kept values outside the scratch: an MLP field's, and a hybrid model's for the whole batch
 * (nd_fields.h). */
static int nd_field_keep_at_kind(const nd_field *f)
{
    return f->kind == ND_FIELD_MLP || nd_field_keeps_hybrid(f)
               ? ND_OK
               : nd_arg_error_novalue("f", "keeps its evaluations outside its scratch only as an MLP field or a "
                                           "hybrid energy model's field");
}

/* Kept values of blocks of rows (the per-sample driver): an MLP field's alone. */
static int nd_field_keep_rows_kind(const nd_field *f)
{
    return f->kind == ND_FIELD_MLP
               ? ND_OK
               : nd_arg_error_novalue("f", "keeps its evaluations per sample only as an MLP field");
}

int nd_field_keep_len(const nd_field *f, size_t *len)
{
    int st = nd_field_check(f);
    if (st != ND_OK)
        return st;
    if ((st = nd_field_keep_at_kind(f)) != ND_OK)
        return st;
    if (f->kind == ND_FIELD_HYBRID)
        return nd_hybrid_slot_len(&((const nd_hybrid_field *)f->hybrid)->model, f->batch, len);
    return nd_mul_size((size_t)f->batch, nd_field_mlp_layers_row(f), len) ? ND_OK : ND_ERR_OVERFLOW;
}

int nd_field_keep_row_widths(const nd_field *f, int64_t d, int64_t *widths, int *count)
{
    int st = nd_field_check(f);
    if (st == ND_OK)
        st = nd_field_keep_rows_kind(f);
    if (st != ND_OK)
        return st;
    ND_REQUIRE(f->dim > 0 && d > 0 && d % f->dim == 0, "d", d, "must be a multiple of the field's dimension");
    for (int l = 0; l < f->n_layers; ++l)
        widths[2 * l] = widths[2 * l + 1] = (d / f->dim) * f->widths[l + 1];
    *count = 2 * f->n_layers;
    return ND_OK;
}

int nd_field_jac_workspace_len(const nd_field *f, size_t *len)
{
    int st = nd_field_workspace_len(f, len);
    if (st == ND_OK && f->kind == ND_FIELD_MEMORY) {
        /* the memory Jacobians' scratch does not grow with the batch: the larger of the two */
        size_t jac;
        if ((st = nd_memory_field_jac_workspace_len(f->memory, f->batch, &jac)) == ND_OK && jac > *len)
            *len = jac;
        return st;
    }
    if (st != ND_OK || f->kind != ND_FIELD_MLP)
        return st;
    /* A Jacobian also chains one sample's [dim, width] sensitivities through the layers in two
     * buffers, next to one layer's activation derivatives and a row of ones. */
    size_t jac;
    if (!nd_field_mlp_jac_len(f, &jac) || *len > SIZE_MAX - jac)
        return ND_ERR_OVERFLOW;
    *len += jac;
    return ND_OK;
}

size_t nd_field_prepared_len(const nd_field *f)
{
    return f->kind == ND_FIELD_MLP ? nd_dense_kernels_len(f->n_layers, f->widths) : 0;
}

int nd_field_row_wise(const nd_field *f)
{
    return f && (f->kind == ND_FIELD_MEMORY || f->kind == ND_FIELD_FLOW || f->kind == ND_FIELD_LORENZ ||
                 f->kind == ND_FIELD_POLY);
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
    case ND_FIELD_POLY: return f->n_terms;
    case ND_FIELD_HYBRID: return nd_hybrid_field_param_count(f->hybrid);
    default: return 0;
    }
}

/* The field on m rows of d values (d / dim field states each), for the row functions; a RELAX
 * field's parameters belong to its own rows and cannot follow other rows. */
static int nd_field_rows(const nd_field *f, int64_t m, int64_t d, nd_field *g)
{
    ND_REQUIRE(f->dim > 0 && d > 0 && d % f->dim == 0, "d", d, "must be a multiple of the field's dimension");
    ND_REQUIRE(m >= 0 && m <= f->batch / (d / f->dim), "m", m, "must be in [0, the field's batch]");
    ND_REQUIRE(f->kind != ND_FIELD_RELAX, "field", f->kind, "must not have per-row parameters");
    *g = *f;
    g->batch = m * (d / f->dim);
    return ND_OK;
}

/* A hybrid field's share of the per-sample forms: rows of y [m, d] with d = dim are m field
 * states each at its own time (t_rows = t); with d a multiple of dim, one sample (m <= 1) holds
 * d / dim field states, all at t[0]. */
static int nd_field_hybrid_rows(const nd_field *f, int64_t m, int64_t d, const double *t, int64_t *B, double *t0,
                                const double **t_rows)
{
    ND_REQUIRE(f->dim > 0 && d > 0 && d % f->dim == 0, "d", d, "must be a multiple of the field's dimension");
    ND_REQUIRE(d == f->dim || m <= 1, "m", m, "must be 1 when a sample holds several rows of a hybrid field");
    *B = d == f->dim ? m : (m ? d / f->dim : 0);
    ND_REQUIRE(m >= 0 && *B <= f->batch, "m", m, "must be in [0, the field's batch]");
    *t0 = d == f->dim || !m ? 0.0 : t[0];
    *t_rows = d == f->dim ? t : NULL;
    return ND_OK;
}

/* A flow's share of the per-sample forms: rows of y [m, d] hold per = d / dim states each,
 * all at the row's time (the forced flows read it). */
static int nd_field_flow_rows(const nd_field *f, int64_t m, int64_t d, int64_t *states, int64_t *per)
{
    ND_REQUIRE(f->dim > 0 && d > 0 && d % f->dim == 0, "d", d, "must be a multiple of the field's dimension");
    *per = d / f->dim;
    ND_REQUIRE(m >= 0 && m <= f->batch / *per, "m", m, "must be in [0, the field's batch]");
    *states = m * *per;
    return ND_OK;
}

#define ND_IMPL "nd_fields_impl.inc"
#include "nd_instantiate.h"

/* FNV-1a over 64-bit words, the tail byte by byte (nd_field_fingerprint). */
static uint64_t nd_hash_bytes(uint64_t h, const void *p, size_t bytes)
{
    const unsigned char *c = p;
    size_t i = 0;
    for (; i + 8 <= bytes; i += 8) {
        uint64_t w;
        memcpy(&w, c + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
    }
    for (; i < bytes; ++i)
        h = (h ^ c[i]) * 0x100000001b3ULL;
    return h;
}

/* A hybrid model's configuration and parameters (the flat layout of nd_hybrid_param_count). */
static uint64_t nd_hybrid_fingerprint(uint64_t h, const nd_hybrid *m, size_t item)
{
    const int64_t d = m->dim;
    h = nd_hash_bytes(h, &m->dim, sizeof m->dim);
    h = nd_hash_bytes(h, &m->n_layers, sizeof m->n_layers);
    h = nd_hash_bytes(h, m->widths, (size_t)(m->n_layers + 1) * sizeof m->widths[0]);
    h = nd_hash_bytes(h, m->acts, (size_t)m->n_layers * sizeof m->acts[0]);
    const double knobs[2] = {m->beta, m->power};
    const int64_t form[2] = {m->form, m->inputs};
    h = nd_hash_bytes(nd_hash_bytes(h, knobs, sizeof knobs), form, sizeof form);
    h = nd_hash_bytes(h, m->b1, (size_t)d * item);
    for (int l = 0; l < m->n_layers; ++l) {
        h = nd_hash_bytes(h, m->kernels[l], (size_t)(m->widths[l] * m->widths[l + 1]) * item);
        h = nd_hash_bytes(h, m->biases[l], (size_t)m->widths[l + 1] * item);
    }
    if (m->form == ND_HYBRID_PORT_HAMILTONIAN) {
        h = nd_hash_bytes(h, m->A, (size_t)(d * (d - 1) / 2) * item);
        h = nd_hash_bytes(h, m->L, (size_t)(d * (d + 1) / 2) * item);
        if (m->inputs > 0)
            h = nd_hash_bytes(h, m->G, (size_t)(d * m->inputs) * item);
    }
    return h;
}

uint64_t nd_field_fingerprint(const nd_field *f, size_t item)
{
    if (nd_field_keeps_hybrid(f))
        return nd_hybrid_fingerprint(0xcbf29ce484222325ULL, &((const nd_hybrid_field *)f->hybrid)->model, item);
    uint64_t h = nd_hash_bytes(0xcbf29ce484222325ULL, &f->n_layers, sizeof f->n_layers);
    h = nd_hash_bytes(h, f->widths, (size_t)(f->n_layers + 1) * sizeof f->widths[0]);
    h = nd_hash_bytes(h, f->acts, (size_t)f->n_layers * sizeof f->acts[0]);
    for (int l = 0; l < f->n_layers; ++l) {
        const size_t w = (size_t)f->widths[l + 1];
        h = nd_hash_bytes(h, f->weights[l], (size_t)f->widths[l] * w * item);
        if (f->biases[l])
            h = nd_hash_bytes(h, f->biases[l], w * item);
    }
    return h;
}

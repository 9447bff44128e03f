#include "nd_sde.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nd_generic.h"
#include "nd_parallel.h"
#include "nd_rng.h"
#include "nd_status.h"
#include "nd_vmath.h" /* nd_vall_finite */

const char *const nd_sde_method_names[ND_SDE_METHOD_COUNT + 1] = {"euler_maruyama", "milstein", "sra", NULL};
const char *const nd_sde_noise_names[ND_SDE_NOISE_COUNT + 1] = {"diagonal", "additive", "general", NULL};

const char *nd_sde_method_name(int method)
{
    return (method >= 0 && method < ND_SDE_METHOD_COUNT) ? nd_sde_method_names[method] : NULL;
}

const char *nd_sde_noise_name(int noise)
{
    return (noise >= 0 && noise < ND_SDE_NOISE_COUNT) ? nd_sde_noise_names[noise] : NULL;
}

int nd_sde_method_supports(int method, int noise)
{
    if (!nd_sde_method_name(method) || !nd_sde_noise_name(noise))
        return 0;
    switch (method) {
    case ND_SDE_MILSTEIN: return noise != ND_SDE_GENERAL; /* additive noise: g_y = 0, Euler-Maruyama */
    case ND_SDE_SRA: return noise == ND_SDE_ADDITIVE;
    default: return 1;
    }
}

void nd_sde_opts_default(nd_sde_opts *o)
{
    memset(o, 0, sizeof *o);
    o->method = ND_SDE_EULER_MARUYAMA;
    o->noise = ND_SDE_DIAGONAL;
}

/* Steps between two output times: round-half-away(span / dt), at least one (nd_ode.c's rule);
 * -1 when the count does not fit. */
static int64_t nd_sde_substeps(double span, double dt)
{
    const double q = round(span / dt); /* round() rounds half away from zero */
    if (!(q < 9.0e18))
        return -1;
    return q < 1 ? 1 : (int64_t)q;
}

int nd_sde_steps(int64_t nt, const double *t, double dt, int64_t *steps)
{
    ND_REQUIRE(dt > 0 && isfinite(dt), "dt", dt, "must be a finite number > 0");
    ND_REQUIRE(nt >= 1 && t, "t", nt, "must hold at least one time");
    for (int64_t i = 0; i < nt; ++i)
        ND_REQUIRE(isfinite(t[i]), "t", t[i], "must hold finite times");
    int64_t total = 0;
    for (int64_t i = 1; i < nt; ++i) {
        if (!(t[i] > t[i - 1])) {
            char rule[160];
            snprintf(rule, sizeof rule, "must be strictly increasing (t[%lld] does not follow t[%lld] = %.17g)",
                     (long long)i, (long long)(i - 1), t[i - 1]);
            return nd_arg_error("t", t[i], rule);
        }
        const int64_t n = nd_sde_substeps(t[i] - t[i - 1], dt);
        if (n < 0 || total > INT64_MAX / 4 - n)
            return nd_arg_error("dt", dt, "gives more steps than a 64-bit count holds");
        total += n;
    }
    *steps = total;
    return ND_OK;
}

/* Rows every built-in drift field is evaluated on (the last group of a block padded with zero
 * rows). A field evaluated on the same number of rows gives each row the same bits wherever it
 * sits (OpenBLAS rounds a row differently in products of different heights, nd_blas.h), so a
 * sample's path does not depend on the batch it is in. A multiple of every GEMM micro-kernel's
 * height. */
#define ND_SDE_BLOCK 64

/* Samples of a block, the unit the kernel threads share with built-in right-hand sides: each
 * step's fixed costs (calls, the noise refill) are spread over this many rows. A multiple of
 * ND_SDE_BLOCK. */
#define ND_SDE_WORK_ROWS 256

/* Normals per sample drawn at once: a chunk of 4 ceil(8 / m) steps, so that the Philox blocks
 * (two or four normals each) of one sample fill a few vectors of the generator's loop. */
#define ND_SDE_CHUNK_NORMALS 32

/* Philox block offset of lane 1 (the second normal of sra): beyond any lane-0 index. */
#define ND_SDE_LANE ((uint64_t)1 << 62)

/* Arguments shared by both precisions; *m the Brownian motions per sample, *steps the grid's. */
static int nd_sde_check(const nd_field *field, int has_drift_fn, const nd_diffusion *g, int has_g_fn, int64_t B,
                        int64_t d, int64_t nt, const double *t, const nd_sde_opts *o, int64_t *m, int64_t *steps,
                        size_t *field_len)
{
    char rule[160];
    if (!o)
        return nd_arg_error_novalue("opts", "must not be NULL");
    ND_REQUIRE(nd_sde_method_name(o->method), "method", o->method, "must be an nd_sde_method code");
    ND_REQUIRE(nd_sde_noise_name(o->noise), "noise", o->noise, "must be an nd_sde_noise code");
    if (!nd_sde_method_supports(o->method, o->noise)) {
        snprintf(rule, sizeof rule, "'%s' does not apply to %s noise (%s)", nd_sde_method_name(o->method),
                 nd_sde_noise_name(o->noise),
                 o->method == ND_SDE_SRA ? "sra needs noise='additive'"
                                         : "milstein needs noise='diagonal' or 'additive'");
        return nd_arg_error_novalue("method", rule);
    }
    ND_REQUIRE(B >= 0, "y0", B, "must have a batch size >= 0");
    ND_REQUIRE(d >= 1, "y0", d, "must have a last axis (the state) of size >= 1");
    if (!field == !has_drift_fn)
        return nd_arg_error_novalue("f", "must be one of a built-in field and a drift callback");
    if (!g == !has_g_fn)
        return nd_arg_error_novalue("g", "must be one of a built-in diffusion and a diffusion callback");
    *m = d;
    if (o->noise == ND_SDE_GENERAL) {
        ND_REQUIRE(o->m >= 1 && o->m <= INT32_MAX, "m", o->m, "(the Brownian motions of general noise) must be >= 1");
        *m = o->m;
    }
    *field_len = 0;
    if (field) {
        nd_field f = *field;
        f.batch = ND_SDE_BLOCK;
        f.keep_slots = 0;
        int st = nd_field_workspace_len(&f, field_len);
        if (st != ND_OK)
            return st == ND_ERR_ARG ? nd_arg_error_novalue("f", "is not a valid built-in field") : nd_size_error("f");
        if (f.dim != d) {
            snprintf(rule, sizeof rule, "must have a last axis of the drift field's size %lld", (long long)f.dim);
            return nd_arg_error("y0", (double)d, rule);
        }
    }
    if (g) {
        ND_REQUIRE(g->dim == d, "g", g->dim, "must act on states of y0's last axis");
        if (g->kind == ND_DIFFUSION_CONSTANT) {
            if (!g->sigma)
                return nd_arg_error_novalue("g", "needs sigma");
            if (o->noise == ND_SDE_GENERAL && g->m != *m) {
                snprintf(rule, sizeof rule, "has %lld Brownian motions but m is %lld", (long long)g->m, (long long)*m);
                return nd_arg_error_novalue("g", rule);
            }
        } else if (g->kind == ND_DIFFUSION_LINEAR) {
            if (!g->scale)
                return nd_arg_error_novalue("g", "needs a scale");
            if (o->noise != ND_SDE_DIAGONAL)
                return nd_arg_error_novalue("g", "depends on the state (Linear): it needs noise='diagonal'");
        } else {
            return nd_arg_error("g", g->kind, "must be an nd_diffusion_kind code");
        }
    }
    if (o->method == ND_SDE_SRA && !o->dW_in != !o->dZ_in)
        return nd_arg_error_novalue("brownian", "must give both dW and dZ (I_(1,0)) for sra");
    int st = nd_sde_steps(nt, t, o->dt, steps);
    if (st != ND_OK)
        return st;
    /* lane-0 Philox blocks (m k + c) / 2 must stay below the lane-1 offset, chunks included */
    ND_REQUIRE(*steps <= INT64_MAX / 4 / *m - 64, "dt", o->dt, "gives more random numbers than a 64-bit index holds");
    return ND_OK;
}

/* Bytes laid out one after another at 64-byte boundaries, with overflow checks. */
typedef struct {
    size_t used;
    int overflow;
    char *base; /* NULL while sizing */
} nd_sde_arena;

static void *nd_sde_take(nd_sde_arena *a, size_t count, size_t size)
{
    size_t bytes;
    if (!nd_mul_size(count, size, &bytes) || bytes > SIZE_MAX - 64 - a->used) {
        a->overflow = 1;
        return NULL;
    }
    void *p = a->base ? a->base + a->used : NULL;
    a->used += (bytes + 63) & ~(size_t)63;
    return p;
}

/* The longest output interval of the grid, in steps. */
static int64_t nd_sde_longest_interval(int64_t nt, const double *t, double dt)
{
    int64_t most = 0;
    for (int64_t i = 1; i < nt; ++i) {
        const int64_t n = nd_sde_substeps(t[i] - t[i - 1], dt);
        most = n > most ? n : most;
    }
    return most;
}

/* Backprop's workspace: the outputs [nt, B, d], one interval's states [n + 1, B, d], three
 * vectors [B, d] (a scaled cotangent, a VJP, a drift) and the field's scratch for B rows. */
int nd_sde_backprop_workspace_len(const nd_field *field, int64_t B, int64_t d, int64_t nt, const double *t,
                                  double dt, size_t *len)
{
    int64_t steps;
    int st = nd_sde_steps(nt, t, dt, &steps);
    if (st != ND_OK)
        return st;
    ND_REQUIRE(B >= 0, "y0", B, "must have a batch size >= 0");
    ND_REQUIRE(d >= 1, "y0", d, "must have a last axis (the state) of size >= 1");
    if (!field)
        return nd_arg_error_novalue("f", "must be a built-in field");
    nd_field f = *field;
    f.batch = B;
    f.keep_slots = 0;
    size_t fl, bd, vectors;
    if ((st = nd_field_workspace_len(&f, &fl)) != ND_OK)
        return st == ND_ERR_ARG ? nd_arg_error_novalue("f", "is not a valid built-in field") : nd_size_error("f");
    const size_t rows = (size_t)nt + (size_t)nd_sde_longest_interval(nt, t, dt) + 1 + 3;
    if (!nd_mul_size((size_t)B, (size_t)d, &bd) || !nd_mul_size(rows, bd, &vectors) || vectors > SIZE_MAX - fl)
        return nd_size_error("y0");
    *len = vectors + fl;
    return ND_OK;
}

#define ND_IMPL "nd_sde_impl.inc"
#include "nd_instantiate.h"

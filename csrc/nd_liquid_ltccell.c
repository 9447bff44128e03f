#include "nd_liquid_ltccell.h"

#include <math.h>

#include "nd_generic.h"
#include "nd_liquid.h" /* nd_liquid_check_positive */
#include "nd_parallel.h"
#include "nd_poll.h"
#include "nd_status.h"
#include "nd_vmath.h"

int nd_ltccell_check(const nd_ltccell *c)
{
    if (!c)
        return nd_arg_error_novalue("cell", "must be given");
    ND_REQUIRE(c->sensory >= 0, "input_size", c->sensory, "must be >= 0");
    ND_REQUIRE(c->units >= 1, "units", c->units, "must be >= 1");
    ND_REQUIRE(c->unfolds >= 1, "ode_unfolds", c->unfolds, "must be >= 1");
    /* the cache holds every unfold's potentials: beyond this the sizes stop being sensible */
    ND_REQUIRE(c->unfolds <= 100000, "ode_unfolds", c->unfolds, "must be at most 100000");
    ND_REQUIRE(isfinite(c->eps), "epsilon", c->eps, "must be finite");
    ND_REQUIRE(c->eps >= 0, "epsilon", c->eps, "must be >= 0");
    return ND_OK;
}

/* The configuration and every parameter the sizes need. */
static int nd_ltccell_check_params(const nd_ltccell *c)
{
    int st = nd_ltccell_check(c);
    if (st != ND_OK)
        return st;
    const void *p[] = {c->gleak, c->vleak, c->cm, c->w, c->sigma, c->mu, c->erev};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; ++i)
        if (!p[i])
            return nd_arg_error_novalue("parameters", "must all be given");
    if (c->sensory && (!c->sw || !c->ssigma || !c->smu || !c->serev))
        return nd_arg_error_novalue("sensory parameters", "must be given when input_size > 0");
    return ND_OK;
}

int64_t nd_ltccell_param_count(const nd_ltccell *c)
{
    return 3 * c->units + 4 * c->units * c->units + 4 * c->sensory * c->units;
}

/* The backward runs its samples in blocks of this many: their synapse gradients are summed in
 * registers before they are added to a group's sums. */
#define ND_LTC_BLOCK 8

/* The samples are split into groups of whole blocks, fixed by the sizes whatever the thread
 * count: the groups are what the threads share out (nd_parallel_for), and each group's parameter
 * gradients are summed in its own part of the work and the groups' sums added in order, so the
 * gradients have the same bits on any number of threads. At most ND_LTC_GROUPS groups, and no
 * more than keep the work within ND_LTC_WORK_BUDGET elements (one group may exceed it). */
#define ND_LTC_GROUPS 64
#define ND_LTC_WORK_BUDGET ((int64_t)1 << 22)

/* Elements of the work that one sample of a block uses: ND_LTC_SLOT_ROWS rows of N (potentials,
 * sums, cotangents) and one of S, then the sigmoids of one unfold's synapses [N, N] and of one
 * step's sensory synapses [S, N]. nd_ltccell_sizes checks that the work's size fits. */
#define ND_LTC_SLOT_ROWS 13
static int64_t nd_ltc_slot(const nd_ltccell *c)
{
    return ND_LTC_SLOT_ROWS * c->units + c->sensory + (c->units + c->sensory) * c->units;
}

/* A group's part of the work: its parameter gradients, then a slot per sample of a block. */
static int64_t nd_ltc_group_stride(const nd_ltccell *c)
{
    return nd_ltccell_param_count(c) + ND_LTC_BLOCK * nd_ltc_slot(c);
}

/* Samples per group (B >= 1): whole blocks, in as many groups as ND_LTC_GROUPS and
 * ND_LTC_WORK_BUDGET allow. Only called once nd_ltccell_sizes has checked the stride. */
static int64_t nd_ltc_group(const nd_ltccell *c, int64_t B)
{
    const int64_t blocks = (B + ND_LTC_BLOCK - 1) / ND_LTC_BLOCK, fit = ND_LTC_WORK_BUDGET / nd_ltc_group_stride(c);
    const int64_t most = fit < 1 ? 1 : (fit < ND_LTC_GROUPS ? fit : ND_LTC_GROUPS);
    return (blocks + most - 1) / most * ND_LTC_BLOCK;
}

int nd_ltccell_sizes(const nd_ltccell *c, int64_t B, int64_t T, size_t *cache, size_t *work)
{
    int st = nd_ltccell_check_params(c);
    if (st != ND_OK)
        return st;
    ND_REQUIRE(B >= 0 && T >= 0, "x", B < 0 ? B : T, "must have sizes >= 0");
    size_t per_sample;
    if (B > INT32_MAX || T > INT32_MAX || !nd_mul_size((size_t)c->unfolds, (size_t)c->units, &per_sample) ||
        !nd_mul_size((size_t)B * (size_t)T, per_sample, cache))
        return nd_size_error("x");
    /* per group (nd_ltc_group_stride): its gradients, and a slot per sample of a block; every
     * part below 2^60 elements, so that the sums and the int64 arithmetic of the kernels hold */
    const size_t N = (size_t)c->units, S = (size_t)c->sensory, big = (size_t)1 << 60;
    size_t syn, slots, groups;
    if (N > big || S > big || !nd_mul_size(N + S, N, &syn) || syn > big || ND_LTC_SLOT_ROWS * N + S + syn > big ||
        !nd_mul_size(ND_LTC_SLOT_ROWS * N + S + syn, ND_LTC_BLOCK, &slots) || slots > big || 4 * syn + 3 * N > big)
        return nd_size_error("units");
    const size_t stride = (size_t)nd_ltc_group_stride(c); /* its parts each checked below 2^60 */
    groups = B > 0 ? (size_t)((B + nd_ltc_group(c, B) - 1) / nd_ltc_group(c, B)) : 1;
    if (!nd_mul_size(stride, groups, work))
        return nd_size_error("units");
    return ND_OK;
}

#define ND_IMPL "nd_liquid_ltccell_impl.inc"
#include "nd_instantiate.h"

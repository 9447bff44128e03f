#include "nd_liquid_ltccell.h"

#include "nd_generic.h"
#include "nd_status.h"
#include "nd_vmath.h"

static int nd_ltccell_check(const nd_ltccell *c)
{
    if (!c || c->sensory < 0 || c->units < 1 || c->unfolds < 1 || !(c->eps >= 0))
        return ND_ERR_ARG;
    const void *p[] = {c->gleak, c->vleak, c->cm, c->w, c->sigma, c->mu, c->erev};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; ++i)
        if (!p[i])
            return ND_ERR_ARG;
    if (c->sensory && (!c->sw || !c->ssigma || !c->smu || !c->serev))
        return ND_ERR_ARG;
    return ND_OK;
}

int64_t nd_ltccell_param_count(const nd_ltccell *c)
{
    return 3 * c->units + 4 * c->units * c->units + 4 * c->sensory * c->units;
}

int nd_ltccell_sizes(const nd_ltccell *c, int64_t B, int64_t T, size_t *cache, size_t *work)
{
    int st = nd_ltccell_check(c);
    if (st != ND_OK)
        return st;
    if (B < 0 || T < 0)
        return ND_ERR_ARG;
    if (!nd_mul_size((size_t)B * (size_t)T, (size_t)c->unfolds * (size_t)c->units, cache) || B > INT32_MAX ||
        T > INT32_MAX)
        return ND_ERR_OVERFLOW;
    /* per sample, reused: 16 rows of N (potentials, sums, cotangents) and one of S */
    *work = 16 * (size_t)c->units + (size_t)c->sensory;
    return ND_OK;
}

#define ND_IMPL "nd_liquid_ltccell_impl.inc"
#include "nd_instantiate.h"

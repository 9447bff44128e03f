/* The automatic method's phases (nd_ode_auto.h); the typed driver is in nd_ode_auto_impl.inc. */
#include "nd_ode_auto.h"

#include <math.h>
#include <string.h>

#include "nd_generic.h"
#include "nd_status.h"

const char *const nd_ode_auto_method_names[] = {"dopri5", "radau", NULL};

/* Byte offsets of the workspace's parts: the drivers' shared workspace, then per sample its
 * current state and the phase's gathered rows and outputs (state type), times and steps
 * (double), indices and counters (int64), modes and statuses (int). */
typedef struct {
    size_t drv, cur_y, sub_y0, sub_yl, sub_ys;
    size_t cur_t, cur_h, t_start, h_start, sub_t, sub_h;
    size_t idx, out_pos, used, out_start, budget, sub_nfev, sub_njev, sub_nlu, sub_acc, sub_rej, sub_nout;
    size_t mode, done, sub_status;
    size_t total;
} nd_auto_plan;

static int nd_auto_make_plan(int64_t B, int64_t d, int64_t nt, size_t es, nd_auto_plan *p)
{
    size_t ex, im, bd, ntbd, at = 0;
    if (B < 0 || d < 0 || nt < 1 || nd_ode_samples_workspace_size(ND_ODE_DOPRI5, B, d, 0, es, &ex) != ND_OK ||
        nd_ode_stiff_workspace_size(ND_STIFF_RADAU, B, d, es, &im) != ND_OK ||
        !nd_mul_size((size_t)B, (size_t)d, &bd) || !nd_mul_size(bd, (size_t)nt, &ntbd))
        return 0;
    const size_t ub = (size_t)B, D = sizeof(double), I8 = sizeof(int64_t), N = sizeof(int);
    size_t *vecs[] = {&p->cur_y, &p->sub_y0, &p->sub_yl};
    size_t *dbl[] = {&p->cur_t, &p->cur_h, &p->t_start, &p->h_start, &p->sub_t, &p->sub_h};
    size_t *i64[] = {&p->idx, &p->out_pos, &p->used, &p->out_start, &p->budget, &p->sub_nfev,
                     &p->sub_njev, &p->sub_nlu, &p->sub_acc, &p->sub_rej, &p->sub_nout};
    size_t *ints[] = {&p->mode, &p->done, &p->sub_status};
    int ok = nd_work_part(&at, &p->drv, ex > im ? ex : im, 1) && nd_work_part(&at, &p->sub_ys, ntbd, es);
    for (size_t i = 0; ok && i < sizeof vecs / sizeof vecs[0]; ++i)
        ok = nd_work_part(&at, vecs[i], bd, es);
    for (size_t i = 0; ok && i < sizeof dbl / sizeof dbl[0]; ++i)
        ok = nd_work_part(&at, dbl[i], ub, D);
    for (size_t i = 0; ok && i < sizeof i64 / sizeof i64[0]; ++i)
        ok = nd_work_part(&at, i64[i], ub, I8);
    for (size_t i = 0; ok && i < sizeof ints / sizeof ints[0]; ++i)
        ok = nd_work_part(&at, ints[i], ub, N);
    p->total = at + 64;
    return ok;
}

int nd_ode_auto_workspace_size(int64_t B, int64_t d, int64_t nt, size_t elem_size, size_t *bytes)
{
    if (!bytes)
        return nd_arg_error_novalue("bytes", "must not be NULL");
    const int st = nd_ode_stiff_workspace_size(ND_STIFF_RADAU, B, d, elem_size, bytes); /* B, d, elem_size */
    if (st != ND_OK)
        return st;
    ND_REQUIRE(nt >= 1, "t", nt, "must hold at least one time");
    nd_auto_plan p;
    if (!nd_auto_make_plan(B, d, nt, elem_size, &p))
        return nd_size_error("y0");
    *bytes = p.total;
    return ND_OK;
}

/* A status that belongs to one sample (it failed, the others go on) rather than to the call. */
static int nd_auto_sample_failure(int st)
{
    return st == ND_ERR_MAX_STEPS || st == ND_ERR_STEP_UNDERFLOW || st == ND_ERR_NONFINITE || st == ND_ERR_SINGULAR;
}

#define ND_IMPL "nd_ode_auto_impl.inc"
#include "nd_instantiate.h"

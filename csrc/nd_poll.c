#include "nd_poll.h"

#include <stddef.h>

#include "nd_status.h"

static _Thread_local nd_poll_scope *nd_scope; /* the scope polls on this thread answer to */
static _Thread_local int nd_scope_owner;      /* this thread opened it: it calls the hook */
static _Thread_local int64_t nd_budget;       /* units of work left before the next hook call */

void nd_poll_begin(nd_poll_scope *s, nd_poll_fn fn, void *ctx)
{
    s->fn = fn;
    s->ctx = ctx;
    atomic_init(&s->stop, 0);
    s->outer = nd_scope_owner ? nd_scope : NULL;
    nd_scope = s;
    nd_scope_owner = 1;
    nd_budget = ND_POLL_UNITS;
}

void nd_poll_end(nd_poll_scope *s)
{
    nd_scope = s->outer;
    nd_scope_owner = s->outer != NULL;
    nd_budget = ND_POLL_UNITS;
}

static int nd_poll_stopped(const nd_poll_scope *s)
{
    return atomic_load_explicit(&s->stop, memory_order_relaxed) ? ND_ERR_INTERRUPTED : ND_OK;
}

int nd_poll(double done)
{
    nd_poll_scope *s = nd_scope;
    if (!s)
        return ND_OK;
    if (nd_poll_stopped(s))
        return ND_ERR_INTERRUPTED;
    nd_budget = ND_POLL_UNITS;
    if (!nd_scope_owner || !s->fn || !s->fn(s->ctx, done))
        return ND_OK;
    atomic_store_explicit(&s->stop, 1, memory_order_relaxed);
    return ND_ERR_INTERRUPTED;
}

int nd_poll_work(int64_t units)
{
    nd_poll_scope *s = nd_scope;
    if (!s)
        return ND_OK;
    if (nd_poll_stopped(s))
        return ND_ERR_INTERRUPTED;
    nd_budget -= units;
    return nd_budget > 0 ? ND_OK : nd_poll(-1.0);
}

int nd_poll_status(void) { return nd_scope ? nd_poll_stopped(nd_scope) : ND_OK; }

nd_poll_scope *nd_poll_current(void) { return nd_scope; }

void nd_poll_adopt(nd_poll_scope *s)
{
    nd_scope = s;
    nd_scope_owner = 0;
    nd_budget = ND_POLL_UNITS;
}

#include "nd_ltc.h"

#include "nd_fields.h"
#include "nd_generic.h"
#include "nd_status.h"
#include "nd_vmath.h"

int nd_solve_ltc_workspace_len(int solver, int64_t n, size_t *len)
{
    if (n < 0)
        return ND_ERR_ARG;
    if (solver == ND_LTC_EXACT) {
        *len = 0;
        return ND_OK;
    }
    size_t ode;
    int st = nd_odeint_workspace_len(solver, n, &ode);
    if (st != ND_OK)
        return st;
    /* The ODE workspace plus the two output rows (s = 0 and s = 1). */
    if (ode > SIZE_MAX - 2 * (size_t)n)
        return ND_ERR_OVERFLOW;
    *len = ode + 2 * (size_t)n;
    return ND_OK;
}

#define ND_IMPL "nd_ltc_impl.inc"
#include "nd_instantiate.h"

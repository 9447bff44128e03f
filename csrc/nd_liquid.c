#include "nd_liquid.h"

#include "nd_fields.h"
#include "nd_generic.h"
#include "nd_status.h"
#include "nd_vmath.h"

int nd_solve_ltc_workspace_len(int solver, int64_t n, size_t *len)
{
    if (n < 0)
        return ND_ERR_ARG;
    if (solver != ND_ODE_DOPRI5) {
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

int nd_ltc_scan_workspace_bytes(int solver, int64_t H, int64_t max_steps, int backward, size_t *bytes)
{
    if (H < 0 || H > INT64_MAX / 64 || (solver != ND_LTC_EXACT && !nd_ode_method_name(solver)))
        return ND_ERR_ARG;
    /* In elements of double (enough for either type):
     * forward  - closed forms: none; dopri5: the frame solver (12 H) and a zero state (H);
     * backward - carry, cotangent and a zero state (3 H); dopri5 adds the frame's cotangents,
     *            solver and backprop workspaces (43 H) and a tape of max_steps states plus four
     *            scalars per step. */
    size_t elems = 0;
    if (!backward) {
        elems = solver == ND_ODE_DOPRI5 ? 13 * (size_t)H : 0;
    } else {
        elems = 3 * (size_t)H;
        if (solver == ND_ODE_DOPRI5) {
            size_t tape;
            if (max_steps < 1)
                return ND_ERR_ARG;
            if (!nd_mul_size((size_t)max_steps, (size_t)H + 4, &tape) || tape > SIZE_MAX / 8 - 47 * (size_t)H - 1)
                return ND_ERR_OVERFLOW;
            elems += 43 * (size_t)H + tape + 1; /* + 1: alignment of the step scalars */
        }
    }
    return nd_mul_size(elems, sizeof(double), bytes) ? ND_OK : ND_ERR_OVERFLOW;
}

enum { ND_LTC_BLOCK = 256 }; /* units whose decay factors a frame computes at a time */

#define ND_IMPL "nd_liquid_impl.inc"
#include "nd_instantiate.h"

#include "nd_liquid.h"

#include "nd_fields.h"
#include "nd_generic.h"
#include "nd_poll.h"
#include "nd_status.h"
#include "nd_vmath.h"

/* In code order: the closed form, then the nd_ode methods from euler (code 0) to dopri5. */
const char *const nd_ltc_solver_names[] = {"exact", "euler", "midpoint", "rk4", "dopri5", NULL};
_Static_assert(ND_ODE_EULER == ND_LTC_EXACT + 1 && ND_ODE_MIDPOINT == ND_ODE_EULER + 1 &&
                   ND_ODE_RK4 == ND_ODE_MIDPOINT + 1 && ND_ODE_DOPRI5 == ND_ODE_RK4 + 1,
               "nd_ltc_solver_names follows the solver codes");

static int nd_ltc_check_solver(int solver)
{
    ND_REQUIRE(solver >= ND_LTC_EXACT && solver <= ND_ODE_DOPRI5, "solver", solver, "is not a known LTC solver code");
    return ND_OK;
}

void nd_ltc_defaults(int *solver, int64_t *steps, nd_ode_opts *opts)
{
    *solver = ND_LTC_EXACT;
    *steps = 1;
    nd_ode_opts_default(opts);
    /* a frame is one unit of time and the state is a layer's activations: looser than
     * odeint's defaults, and a budget that bounds the cost of each frame */
    opts->rtol = 1e-2;
    opts->atol = 1e-4;
    opts->max_steps = 100;
}

int nd_liquid_tau_check(double clamp, double tau_min)
{
    ND_REQUIRE(isfinite(clamp), "clamp", clamp, "must be finite");
    ND_REQUIRE(tau_min > 0 && isfinite(tau_min), "tau_min", tau_min, "must be positive and finite");
    return ND_OK;
}

int nd_ltc_check_opts(int solver, int64_t steps, const nd_ode_opts *opts)
{
    int st = nd_ltc_check_solver(solver);
    if (st != ND_OK)
        return st;
    ND_REQUIRE(steps >= 1, "steps", steps, "must be >= 1");
    if (!opts)
        return solver == ND_ODE_DOPRI5 ? nd_arg_error_novalue("options", "must be given for dopri5") : ND_OK;
    /* the tolerances obey odeint's rules; the closed form is checked as a fixed-step method
     * (which never reads them), and the frame's first step is the solver's own (dt unused) */
    nd_ode_opts o = *opts;
    o.method = solver == ND_LTC_EXACT ? ND_ODE_EULER : solver;
    o.dt = 0;
    return nd_ode_check_opts(&o);
}

int nd_solve_ltc_workspace_len(int solver, int64_t n, size_t *len)
{
    int st = nd_ltc_check_solver(solver);
    if (st != ND_OK)
        return st;
    ND_REQUIRE(n >= 0, "x", n, "must have a size >= 0");
    if (solver != ND_ODE_DOPRI5) {
        *len = 0;
        return ND_OK;
    }
    size_t ode;
    st = nd_odeint_workspace_len(solver, n, &ode);
    if (st != ND_OK)
        return st;
    /* The ODE workspace plus the two output rows (s = 0 and s = 1). */
    if (ode > SIZE_MAX - 2 * (size_t)n)
        return nd_size_error("x");
    *len = ode + 2 * (size_t)n;
    return ND_OK;
}

int nd_ltc_scan_workspace_bytes(int solver, int64_t H, int64_t max_steps, int backward, size_t *bytes)
{
    int st = nd_ltc_check_solver(solver);
    if (st != ND_OK)
        return st;
    ND_REQUIRE(H >= 0, "a", H, "must have a hidden size >= 0");
    if (H > INT64_MAX / 64)
        return nd_size_error("a");
    /* In elements of double (enough for either type):
     * forward  - closed forms: none; dopri5: the frame solver (12 H) and a zero state (H);
     * backward - carry, cotangent and a zero state (3 H); dopri5 adds the frame's cotangents,
     *            solver and backprop workspaces (43 H) and a tape of max_steps states plus six
     *            scalars per step (nd_ode_tape's sample, round, t, h and output rows). */
    size_t elems = 0;
    if (!backward) {
        elems = solver == ND_ODE_DOPRI5 ? 13 * (size_t)H : 0;
    } else {
        elems = 3 * (size_t)H;
        if (solver == ND_ODE_DOPRI5) {
            size_t tape;
            if (!nd_mul_size(max_steps < 1 ? 1 : (size_t)max_steps, (size_t)H + 6, &tape) ||
                tape > SIZE_MAX / 8 - 47 * (size_t)H - 1)
                return nd_size_error("max_steps");
            elems += 43 * (size_t)H + tape + 1; /* + 1: alignment of the step scalars */
        }
    }
    return nd_mul_size(elems, sizeof(double), bytes) ? ND_OK : nd_size_error("a");
}

enum { ND_LTC_BLOCK = 256 }; /* units whose decay factors a frame computes at a time */

#define ND_IMPL "nd_liquid_impl.inc"
#include "nd_instantiate.h"

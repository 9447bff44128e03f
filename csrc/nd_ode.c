#include "nd_ode.h"
#include "nd_rk.h"

#include <math.h>

#include "nd_generic.h"
#include "nd_poll.h"
#include "nd_status.h"
#include "nd_vmath.h" /* ND_VECTOR_CLONES */

const char *const nd_ode_method_names[ND_ODE_METHOD_COUNT + 1] = {"euler",  "midpoint", "rk4",
                                                                  "dopri5", "tsit5",    "dop853", NULL};

const char *const nd_ode_adaptive_method_names[4] = {"dopri5", "tsit5", "dop853", NULL};

const char *nd_ode_method_name(int method)
{
    return (method >= 0 && method < ND_ODE_METHOD_COUNT) ? nd_ode_method_names[method] : NULL;
}

int nd_ode_method_adaptive(int method)
{
    return method == ND_ODE_DOPRI5 || method == ND_ODE_TSIT5 || method == ND_ODE_DOP853;
}

/* A method of the coupled solver (and of its gradients). */
static int nd_ode_coupled_method(int method)
{
    return method >= 0 && method < ND_ODE_COUPLED_METHOD_COUNT;
}

void nd_ode_opts_default(nd_ode_opts *opts)
{
    opts->method = ND_ODE_DOPRI5;
    opts->rtol = 1e-3;
    opts->atol = 1e-6;
    opts->dt = 0.0;
    opts->max_steps = 10000;
    opts->poll = NULL;
    opts->poll_ctx = NULL;
    opts->on_step = NULL;
    opts->step_ctx = NULL;
}

/* Ten vectors: the state, the candidate, a stage argument and the seven stage slopes. */
#define ND_ODE_WORK_VECTORS 10

int nd_odeint_workspace_len(int method, int64_t n, size_t *len)
{
    if (!nd_ode_coupled_method(method) || n < 0)
        return ND_ERR_ARG;
    return nd_mul_size(ND_ODE_WORK_VECTORS, (size_t)n, len) ? ND_OK : ND_ERR_OVERFLOW;
}

int nd_ode_check_opts(const nd_ode_opts *o)
{
    if (!o)
        return nd_arg_error_novalue("options", "must be given");
    ND_REQUIRE(nd_ode_method_name(o->method), "method", o->method, "is not a known method code");
    ND_REQUIRE(o->max_steps >= 1, "max_steps", o->max_steps, "must be >= 1");
    ND_REQUIRE(o->dt >= 0 && isfinite(o->dt), "dt", o->dt, "must be >= 0 and finite (0: chosen by the solver)");
    ND_REQUIRE(o->rtol >= 0 && isfinite(o->rtol), "rtol", o->rtol, "must be >= 0 and finite");
    ND_REQUIRE(o->atol >= 0 && isfinite(o->atol), "atol", o->atol, "must be >= 0 and finite");
    /* fixed-step methods never read the tolerances */
    if (nd_ode_method_adaptive(o->method) && !(o->rtol > 0 || o->atol > 0))
        return nd_arg_error_novalue("rtol and atol", "cannot both be 0");
    return ND_OK;
}

int nd_ode_check_times(int64_t nt, const double *t)
{
    ND_REQUIRE(nt >= 1 && t, "t", nt, "must hold at least one time");
    for (int64_t i = 0; i < nt; ++i)
        ND_REQUIRE(isfinite(t[i]), "t", t[i], "must be finite");
    if (nt > 1) {
        double dir = t[1] > t[0] ? 1.0 : -1.0;
        for (int64_t i = 1; i < nt; ++i)
            ND_REQUIRE((t[i] - t[i - 1]) * dir > 0, "t", t[i], "must be strictly increasing or strictly decreasing");
    }
    return ND_OK;
}

/* Validation shared by both precisions. */
static int nd_ode_check_args(int64_t n, int64_t nt, const double *t, const nd_ode_opts *o)
{
    int st = nd_ode_check_opts(o);
    if (st != ND_OK)
        return st;
    if (!nd_ode_coupled_method(o->method))
        return nd_arg_error("method", o->method, "must be euler, midpoint, rk4 or dopri5 for the coupled solver");
    ND_REQUIRE(n >= 0, "y0", n, "must have a size >= 0");
    return nd_ode_check_times(nt, t);
}

/* Substeps between two output times for a fixed-step method: round-half-away(|span| / dt),
 * at least one. Returns -1 if the count does not fit (the caller reports max_steps). */
static int64_t nd_ode_substeps(double span, double dt)
{
    if (dt <= 0)
        return 1;
    double q = round(fabs(span) / dt); /* round() rounds half away from zero */
    if (!(q < 9.0e18))
        return -1;
    return q < 1 ? 1 : (int64_t)q;
}

/* Butcher tableaux of every method, for the backward pass (the forward pass spells its own
 * stages out). dopri5's are nd_rk.h's pair: 7 stages, the 7th (f at the new state, whose row
 * of a is b) serving dense output. */
typedef struct {
    int stages;
    const double *c, *b;
    const double (*a)[ND_RK_MAX];
} nd_tableau;

static const double nd_fixed_c[3][4] = {{0}, {0, 0.5}, {0, 0.5, 0.5, 1}};
static const double nd_fixed_b[3][4] = {{1}, {0, 1}, {1.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 6}};
static const double nd_fixed_a[3][4][ND_RK_MAX] = {{{0}}, {{0}, {0.5}}, {{0}, {0.5}, {0, 0.5}, {0, 0, 1}}};

static const nd_tableau nd_tableaux[ND_ODE_COUPLED_METHOD_COUNT] = {
    [ND_ODE_EULER] = {1, nd_fixed_c[0], nd_fixed_b[0], nd_fixed_a[0]},
    [ND_ODE_MIDPOINT] = {2, nd_fixed_c[1], nd_fixed_b[1], nd_fixed_a[1]},
    [ND_ODE_RK4] = {4, nd_fixed_c[2], nd_fixed_b[2], nd_fixed_a[2]},
    [ND_ODE_DOPRI5] = {7, nd_rk_dopri5.c, nd_rk_dopri5.a[6], nd_rk_dopri5.a},
};

int nd_ode_method_stages(int method)
{
    return nd_ode_coupled_method(method) ? nd_tableaux[method].stages : 0;
}

/* Stage values Y, slopes K and their cotangents for 7 stages, and three state vectors. */
#define ND_BACKPROP_WORK_VECTORS 24

int nd_ode_backprop_workspace_len(int method, int64_t n, size_t *len)
{
    if (!nd_ode_coupled_method(method) || n < 0)
        return ND_ERR_ARG;
    return nd_mul_size(ND_BACKPROP_WORK_VECTORS, (size_t)n, len) ? ND_OK : ND_ERR_OVERFLOW;
}

int nd_ode_adjoint_workspace_len(int method, int64_t n, int64_t n_params, size_t *len)
{
    if (!nd_ode_coupled_method(method) || n < 0 || n_params < 0 || n > INT64_MAX / 4 ||
        n_params > INT64_MAX / 4)
        return ND_ERR_ARG;
    /* The augmented state z = [y, a, g], its two outputs, and the solver's workspace. */
    size_t m = 2 * (size_t)n + (size_t)n_params, ode;
    int st = nd_odeint_workspace_len(method, (int64_t)m, &ode);
    if (st != ND_OK)
        return st;
    size_t extra;
    if (!nd_mul_size(3, m, &extra) || ode > SIZE_MAX - extra)
        return ND_ERR_OVERFLOW;
    *len = ode + extra;
    return ND_OK;
}

#define ND_IMPL "nd_ode_impl.inc"
#include "nd_instantiate.h"

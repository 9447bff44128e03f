/* Binding of the Liquid family: the LTC relaxation (solve_ltc), the layer scan (ltc_scan,
 * forward and backward), the CfC and LTC cells over whole sequences, and the checks the models
 * run at construction. The rules are the kernels' (nd_ltc_check_opts, nd_liquid_check_positive,
 * nd_cfc_check, nd_ltccell_check). */
#include "nd_bind.h"

#include "nd_liquid.h"
#include "nd_liquid_cfc.h"
#include "nd_liquid_ltccell.h"
#include "nd_nn.h"
#include "nd_status.h"

/* ---- the LTC relaxation and scan -------------------------------------------------------- */

typedef struct {
    PyArrayObject *x, *a, *tau, *h0, *h, *dh;
    int solver; /* index in nd_ltc_solver_names: the code is solver + ND_LTC_EXACT */
    int64_t steps, B, T, H;
    nd_ode_opts o; /* rtol, atol, max_steps */
    nd_ode_stats stats;
    int backward;
    void *work;
    PyObject *res[3];
} nd_ltc_args;
#define D ND_DATA

static void nd_ltc_args_default(nd_ltc_args *a)
{
    nd_ltc_defaults(&a->solver, &a->steps, &a->o);
    a->solver -= ND_LTC_EXACT;
}
static void nd_ltc_backward_default(nd_ltc_args *a)
{
    nd_ltc_args_default(a);
    a->backward = 1;
}

/* The kernel's solver code, and the kernels' rules on the options. */
#define ND_LTC_SOLVER(a) ((a)->solver + ND_LTC_EXACT)
static int nd_ltc_check(const nd_ltc_args *a) { return nd_ltc_check_opts(ND_LTC_SOLVER(a), a->steps, &a->o); }

#define ND_LTC_OPTIONS                                                                             \
    ND_CHOICE(nd_ltc_args, solver, "solver", ND_OPTIONAL, nd_ltc_solver_names),                    \
        ND_SCALAR(nd_ltc_args, steps, "steps", ND_ARG_INT, ND_OPTIONAL),                           \
        ND_TOLERANCES(nd_ltc_args, o.rtol, o.atol),                                                \
        ND_SCALAR(nd_ltc_args, o.max_steps, "max_steps", ND_ARG_INT, ND_OPTIONAL), ND_CHECK(nd_ltc_check)

/* A solver that could not finish raises IntegrationError with the frame time reached, the
 * status (odeint's keys, nd_status_key) and counters.
 * Returns st, with the exception set. */
static int nd_ltc_failure(PyObject *module, int st, const char *what, const nd_ode_stats *s)
{
    if (st == ND_OK)
        return st;
    if (st != ND_ERR_MAX_STEPS && st != ND_ERR_STEP_UNDERFLOW && st != ND_ERR_NONFINITE && st != ND_ERR_UNSTABLE)
        return nd_raise_status(st, what), st;
    const char *key = nd_status_key(st);
    PyObject *attrs = Py_BuildValue("{s:d,s:s,s:{s:L,s:L,s:L,s:s}}", "t", s->t, "status", key, "info", "nfev",
                                    (long long)s->nfev, "accepted", (long long)s->accepted, "rejected",
                                    (long long)s->rejected, "status", key);
    PyObject *t = PyFloat_FromDouble(s->t), *msg = NULL;
    if (t && st == ND_ERR_UNSTABLE)
        msg = PyUnicode_FromFormat("%s is unstable: with this many substeps the method amplifies instead of relaxing "
                                   "for some tau (euler needs steps * tau > 0.5, midpoint > 0.5, rk4 > 0.359); use "
                                   "more substeps, or the exact solver", what);
    else if (t)
        msg = PyUnicode_FromFormat("%s (dopri5) stopped at s=%R of a frame before s=1: %s", what, t, nd_status_str(st));
    Py_XDECREF(t);
    nd_raise_integration(module, msg, attrs);
    return st;
}

/* x, a and tau broadcast together, each C-contiguous (a copy only where its shape differs). */
static int nd_ltc_broadcast(nd_ltc_args *a)
{
    PyArrayObject **arr[3] = {&a->x, &a->a, &a->tau};
    PyArrayMultiIterObject *it = (PyArrayMultiIterObject *)PyArray_MultiIterNew(3, a->x, a->a, a->tau);
    if (!it) {
        PyObject *s[3];
        for (int k = 0; k < 3; ++k)
            s[k] = PyArray_IntTupleFromIntp(PyArray_NDIM(*arr[k]), PyArray_DIMS(*arr[k]));
        if (s[0] && s[1] && s[2])
            PyErr_Format(PyExc_ValueError, "x, a and tau do not broadcast together: x %S, a %S, tau %S", s[0], s[1],
                         s[2]);
        for (int k = 0; k < 3; ++k)
            Py_XDECREF(s[k]);
        return -1;
    }
    const int nd = PyArray_MultiIter_NDIM(it);
    npy_intp *dims = PyArray_MultiIter_DIMS(it);
    int ok = 1;
    for (int k = 0; ok && k < 3; ++k) {
        if (PyArray_NDIM(*arr[k]) == nd && PyArray_CompareLists(PyArray_DIMS(*arr[k]), dims, nd))
            continue;
        PyArrayObject *full = (PyArrayObject *)PyArray_SimpleNew(nd, dims, PyArray_TYPE(*arr[k]));
        ok = full && PyArray_CopyInto(full, *arr[k]) == 0;
        if (full)
            Py_SETREF(*arr[k], full);
    }
    Py_DECREF(it);
    return ok ? 0 : -1;
}

static int nd_solve_ltc_work(nd_ltc_args *a)
{
    size_t len;
    a->work = nd_workspace(nd_solve_ltc_workspace_len(ND_LTC_SOLVER(a), PyArray_SIZE(a->x), &len), &len,
                           PyArray_ITEMSIZE(a->x), "solve_ltc");
    return a->work ? ND_OK : -1;
}

/* tau's rule (positive and finite) is the kernel's, so NaN and inf reach it. */
static const nd_arg solve_ltc_args[] = {
    ND_IN(nd_ltc_args, x, "x", ND_TYPE | ND_FINITE, NULL), ND_IN(nd_ltc_args, a, "a", ND_TYPE | ND_FINITE, NULL),
    ND_IN(nd_ltc_args, tau, "tau", ND_TYPE, NULL), ND_LTC_OPTIONS, ND_CHECK(nd_ltc_broadcast),
    ND_CHECK(nd_solve_ltc_work), ND_WORK(nd_ltc_args, work), ND_OUT(nd_ltc_args, res[0], "x", 0, "(*x)"), {NULL}};

static int solve_ltc_run(PyObject *module, void *args, int tn)
{
    nd_ltc_args *a = args;
    int st = ND_OK;
    ND_NOGIL(st, ND_DISPATCH(tn, nd_solve_ltc, ND_LTC_SOLVER(a), PyArray_SIZE(a->x), D(a->x), D(a->a), D(a->tau),
                             a->steps, &a->o, D(a->res[0]), a->work, &a->stats));
    return nd_ltc_failure(module, st, "solve_ltc", &a->stats);
}
ND_RUN_ENTRY(solve_ltc, nd_ltc_args, nd_ltc_args_default,
             "solve_ltc(x, a, tau, solver, steps, rtol, atol, max_steps) -> x(1) of dx/ds = (a - x) / tau, broadcast")

static int nd_ltc_scan_work(nd_ltc_args *a)
{
    size_t bytes;
    a->work = nd_workspace(nd_ltc_scan_workspace_bytes(ND_LTC_SOLVER(a), a->H, a->o.max_steps, a->backward, &bytes),
                           &bytes, 1, "ltc_scan");
    return a->work ? ND_OK : -1;
}

/* Forward -> h [B, T, H]; backward -> (da, dtau [B, T, H], dh0 [B, H]). */
static int nd_ltc_scan_run(PyObject *module, void *args, int tn)
{
    nd_ltc_args *a = args;
    int st = ND_OK;
    const int solver = ND_LTC_SOLVER(a);
    void *ad = D(a->a), *td = D(a->tau), *h0 = D(a->h0), *o0 = D(a->res[0]);
    ND_NOGIL(st, a->backward ? ND_DISPATCH(tn, nd_ltc_scan_backward, solver, a->B, a->T, a->H, ad, td, h0, D(a->h),
                                           a->steps, &a->o, D(a->dh), o0, D(a->res[1]), D(a->res[2]), a->work)
                             : ND_DISPATCH(tn, nd_ltc_scan_forward, solver, a->B, a->T, a->H, ad, td, h0, a->steps,
                                           &a->o, o0, a->work, &a->stats));
    return nd_ltc_failure(module, st, "ltc_scan", &a->stats);
}

#define ND_LTC_SCAN_INPUTS(h0_flags)                                                                    \
    ND_IN(nd_ltc_args, a, "a", ND_TYPE | ND_FINITE, "(batch, time, hidden)"),                           \
        ND_IN(nd_ltc_args, tau, "tau", ND_TYPE, "(*a)"),                                                \
        ND_IN(nd_ltc_args, h0, "h0", ND_FINITE | ND_NONE | (h0_flags), "(batch, hidden)")
#define ND_LTC_SCAN_ROWS                                                                                \
    ND_LTC_OPTIONS, ND_DIM(nd_ltc_args, B, "batch"), ND_DIM(nd_ltc_args, T, "time"),                    \
        ND_DIM(nd_ltc_args, H, "hidden"), ND_CHECK(nd_ltc_scan_work), ND_WORK(nd_ltc_args, work)

static const nd_arg ltc_scan_args[] = {ND_LTC_SCAN_INPUTS(ND_OPTIONAL), ND_LTC_SCAN_ROWS,
                                       ND_OUT(nd_ltc_args, res[0], "h", 0, "(batch, time, hidden)"), {NULL}};
ND_ENTRY_WITH(ltc_scan, nd_ltc_args, nd_ltc_args_default, NULL, nd_ltc_scan_run,
              "ltc_scan(a, tau, h0=None, solver, steps, rtol, atol, max_steps) -> h [B, T, H]")

static const nd_arg ltc_scan_backward_args[] = {
    ND_LTC_SCAN_INPUTS(0), ND_IN(nd_ltc_args, h, "h", ND_FINITE, "(*a)"), ND_IN(nd_ltc_args, dh, "dh", ND_FINITE, "(*a)"),
    ND_LTC_SCAN_ROWS, ND_OUT(nd_ltc_args, res[0], "da", 0, "(*a)"), ND_OUT(nd_ltc_args, res[1], "dtau", 0, "(*a)"),
    ND_OUT(nd_ltc_args, res[2], "dh0", 0, "(batch, hidden)"), {NULL}};
ND_ENTRY_WITH(ltc_scan_backward, nd_ltc_args, nd_ltc_backward_default, NULL, nd_ltc_scan_run,
              "ltc_scan_backward(a, tau, h0|None, h, dh, solver, steps, rtol, atol, max_steps) -> (da, dtau, dh0)")

static const nd_arg ltc_check_options_args[] = {ND_LTC_OPTIONS, {NULL}};
ND_CHECK_ENTRY(ltc_check_options, nd_ltc_args, nd_ltc_args_default,
               "ltc_check_options(solver, steps, rtol, atol, max_steps): the kernels' rules on these options")

/* ---- the recurrent cells ---------------------------------------------------------------- */

typedef struct {
    PyArrayObject *x, *dt, *h0, *cache, *dh;
    PyArrayObject *p[11]; /* the LTC cell's parameters, in nd_ltccell's order */
    PyObject *params;     /* the CfC's: (W, b) of each backbone layer, then of each head */
    int64_t input_size, hidden_size, units, layers, unfolds;
    int act, mode, keep;
    double eps;
    /* the run: the cell (nd_ltccell or nd_cfc), its sizes, workspace and outputs */
    int cfc;
    nd_ltccell ltc;
    nd_cfc cf;
    PyObject *kept; /* the CfC's converted parameters */
    int64_t B, T, H, NI, P, clen;
    void *work;
    PyObject *res[3];
} nd_cell_args;
#define C nd_cell_args /* in the tables */

/* The cell's sizes: the cache the forward pass keeps (checked against a given one), the parameter
 * count, and the workspace of wlen elements. */
static int nd_cell_sizes(C *a, size_t clen, size_t wlen, int64_t params)
{
    const npy_intp cd[1] = {(npy_intp)clen};
    if (a->cache && nd_check_shape(a->cache, "cache", 1, cd, "from the forward pass of these inputs") < 0)
        return -1;
    a->clen = (int64_t)clen, a->P = params;
    a->work = nd_work_alloc(wlen, PyArray_ITEMSIZE(a->x ? a->x : a->dh));
    return a->work ? ND_OK : -1;
}

/* Forward -> (h [B, T, H], cache | None); backward -> (dx [B, T, NI], dh0 [B, H], dparams [P]). */
static int nd_cell_run(PyObject *m, void *args, int tn)
{
    C *a = args;
    const void *x = D(a->x), *dt = D(a->dt), *h0 = D(a->h0), *c = D(a->cache), *dh = D(a->dh);
    void *o0 = D(a->res[0]), *o1 = D(a->res[1]), *o2 = D(a->res[2]), *w = a->work;
    const int64_t B = a->B, T = a->T;
    int st = ND_OK;
    if (a->cfc && dh) /* the cache holds what CfC's backward pass reads of x */
        ND_NOGIL(st, ND_DISPATCH(tn, nd_cfc_backward, &a->cf, B, T, dt, c, dh, o0, o1, o2, w));
    else if (a->cfc)
        ND_NOGIL(st, ND_DISPATCH(tn, nd_cfc_forward, &a->cf, B, T, x, dt, h0, o0, o1, w));
    else if (dh)
        ND_NOGIL(st, ND_DISPATCH(tn, nd_ltccell_backward, &a->ltc, B, T, x, dt, NULL, c, dh, o0, o1, o2, w));
    else
        ND_NOGIL(st, ND_DISPATCH(tn, nd_ltccell_forward, &a->ltc, B, T, x, dt, h0, o0, o1, w));
    return st;
}

/* The sequence (x or dh) sets the call's type; the timespans' rule is the kernels'. */
#define ND_CELL_SEQ(field, name, rule) ND_IN(C, field, name, ND_TYPE | ND_FINITE, rule)
#define ND_CELL_X ND_CELL_SEQ(x, "x", "(batch, time, features)")
#define ND_CELL_TIMESPANS ND_IN(C, dt, "timespans", ND_NONE, "(batch, time)")
#define ND_CELL_H0 ND_IN(C, h0, "h0", ND_FINITE | ND_NONE, "(batch, state size)")
#define ND_CELL_CACHE ND_IN(C, cache, "cache", 0, "(cache size,) from the forward pass")
#define ND_CELL_DH ND_IN(C, dh, "dh", ND_FINITE, "(batch, time, state size)")
#define ND_CELL_KEEP ND_SCALAR(C, keep, "keep_cache", ND_ARG_BOOL, ND_OPTIONAL)
/* after the cell's check (nd_cell_sizes) */
#define ND_CELL_DIMS                                                                                    \
    ND_DIM(C, B, "batch"), ND_DIM(C, T, "time"), ND_DIM(C, H, "state size"), ND_DIM(C, NI, "features"),  \
        ND_DIM(C, P, "params"), ND_DIM(C, clen, "cache size"), ND_WORK(C, work)
#define ND_CELL_FORWARD_OUTS                                                                            \
    ND_OUT(C, res[0], "h", 0, "(batch, time, state size)"), ND_OUT(C, res[1], "cache", ND_WHEN(C, keep), "(cache size,)")
#define ND_CELL_BACKWARD_OUTS                                                                           \
    ND_OUT(C, res[0], "dx", 0, "(batch, time, features)"), ND_OUT(C, res[1], "dh0", 0, "(batch, state size)"),  \
        ND_OUT(C, res[2], "dparams", 0, "(params,)")

/* ---- the LTC cell ----------------------------------------------------------------------- */

/* The parameters, in nd_ltccell's order: gleak, vleak, cm [N]; w, sigma, mu, erev [N, N]; the
 * sensory four [S, N]. */
#define ND_LTCCELL_LIST(X)                                                                         \
    X(0, "gleak", ND_N) X(1, "vleak", ND_N) X(2, "cm", ND_N) X(3, "w", ND_NN) X(4, "sigma", ND_NN)            \
        X(5, "mu", ND_NN) X(6, "erev", ND_NN) X(7, "sensory_w", ND_SN) X(8, "sensory_sigma", ND_SN)           \
            X(9, "sensory_mu", ND_SN) X(10, "sensory_erev", ND_SN)
#define ND_N "(state size,)"
#define ND_NN "(state size, state size)"
#define ND_SN "(features, state size)"
#define ND_LTC_ROW(k, name, rule) ND_IN(C, p[k], name, ND_FINITE, rule),

static int nd_ltccell_prepare(C *a)
{
    nd_ltccell *c = &a->ltc;
    *c = (nd_ltccell){.sensory = PyArray_DIM(a->x, 2), .units = PyArray_DIM(a->p[0], 0), .unfolds = a->unfolds,
                      .eps = a->eps};
    const void **dst[11] = {&c->gleak, &c->vleak, &c->cm, &c->w, &c->sigma, &c->mu, &c->erev, &c->sw, &c->ssigma,
                            &c->smu, &c->serev};
    for (int k = 0; k < 11; ++k)
        *dst[k] = PyArray_DATA(a->p[k]);
    size_t clen, wlen;
    int st = nd_ltccell_sizes(c, PyArray_DIM(a->x, 0), PyArray_DIM(a->x, 1), &clen, &wlen);
    return st != ND_OK ? st : nd_cell_sizes(a, clen, wlen, nd_ltccell_param_count(c));
}

#define ND_LTCCELL_PARAMS                                                                               \
    ND_LTCCELL_LIST(ND_LTC_ROW) ND_SCALAR(C, unfolds, "ode_unfolds", ND_ARG_INT, 0),                   \
        ND_SCALAR(C, eps, "epsilon", ND_ARG_DOUBLE, 0), ND_CHECK(nd_ltccell_prepare), ND_CELL_DIMS

static const nd_arg ltccell_forward_args[] = {
    ND_CELL_X, ND_CELL_TIMESPANS, ND_CELL_H0, ND_LTCCELL_PARAMS, ND_CELL_KEEP, ND_CELL_FORWARD_OUTS, {NULL}};
ND_ENTRY_WITH(ltccell_forward, C, NULL, NULL, nd_cell_run,
              "ltccell_forward(x, timespans|None, h0|None, gleak, ..., sensory_erev, ode_unfolds, epsilon, "
              "keep_cache=False) -> (h, cache|None)")

static const nd_arg ltccell_backward_args[] = {
    ND_CELL_X, ND_CELL_TIMESPANS, ND_CELL_CACHE, ND_CELL_DH, ND_LTCCELL_PARAMS, ND_CELL_BACKWARD_OUTS, {NULL}};
ND_ENTRY_WITH(ltccell_backward, C, NULL, NULL, nd_cell_run,
              "ltccell_backward(x, timespans|None, cache, dh, gleak, ..., sensory_erev, ode_unfolds, epsilon) -> "
              "(dx, dh0, dparams)")

static int nd_ltccell_rules(const C *a)
{
    const nd_ltccell c = {.sensory = a->input_size, .units = a->units, .unfolds = a->unfolds, .eps = a->eps};
    return nd_ltccell_check(&c);
}
static const nd_arg ltccell_check_args[] = {ND_SCALAR(C, input_size, "input_size", ND_ARG_INT, 0),
                                            ND_SCALAR(C, units, "units", ND_ARG_INT, 0),
                                            ND_SCALAR(C, unfolds, "ode_unfolds", ND_ARG_INT, 0),
                                            ND_SCALAR(C, eps, "epsilon", ND_ARG_DOUBLE, 0),
                                            ND_CHECK(nd_ltccell_rules), {NULL}};
ND_CHECK_ENTRY(ltccell_check, C, NULL,
               "ltccell_check(input_size, units, ode_unfolds, epsilon): the kernels' rules")

/* ---- CfC -------------------------------------------------------------------------------- */

/* params: (W, b) of each backbone layer, the first from the input and the state (in = input_size
 * + hidden_size), then of the heads ff1, ff2, ta, tb from the backbone's output; in the pure mode
 * (W, b) of ff1 then w_tau and A. */
#define P(field, flags, rule) ND_ITEM(nd_cfc, field, "params[%zd]", flags, rule)
static const nd_item nd_cfc_first[] = {P(bw, 0, "(in, backbone_units)"), P(bb, 0, "(backbone_units,)"), {NULL}};
static const nd_item nd_cfc_backbone[] = {P(bw[1], ND_REPEAT, "(backbone_units, backbone_units)"),
                                          P(bb[1], ND_REPEAT, "(backbone_units,)"), {NULL}};
static const nd_item nd_cfc_heads[] = {P(hw, ND_REPEAT, "(heads_in, hidden_size)"), P(hb, ND_REPEAT, "(hidden_size,)"),
                                       {NULL}};
static const nd_item nd_cfc_pure[] = {P(w_tau, 0, "(hidden_size,)"), P(A, 0, "(hidden_size,)"), {NULL}};
#undef P

/* The parameters converted to the sequence's type and kept in a->kept. */
static int nd_cfc_prepare(C *a)
{
    const Py_ssize_t n = PyTuple_GET_SIZE(a->params), tail = a->mode == ND_CFC_PURE ? 4 : 8;
    if (n < tail || n % 2 || n > tail + 2 * ND_CFC_MAX_LAYERS)
        return PyErr_Format(PyExc_ValueError, "params must hold %zd to %zd arrays in mode '%s' (backbone (W, b) pairs, "
                            "then %s), got %zd", tail, tail + 2 * ND_CFC_MAX_LAYERS, nd_cfc_mode_names[a->mode],
                            a->mode == ND_CFC_PURE ? "ff1's (W, b), w_tau and A" : "the heads' (W, b) pairs", n), -1;
    PyArrayObject *seq = a->dh ? a->dh : a->x;
    /* the sizes are checked before any shape is read from them; the backbone's width comes
     * from its first weights (1 stands in for it until then) */
    nd_cfc *c = &a->cf;
    *c = (nd_cfc){.input_size = a->dh ? a->input_size : PyArray_DIM(a->x, 2),
                  .hidden_size = a->dh ? PyArray_DIM(a->dh, 2) : a->hidden_size, .units = 1,
                  .layers = (n - tail) / 2, .act = a->act, .mode = a->mode};
    int st = nd_cfc_check(c);
    nd_spec s;
    if (st != ND_OK || !(a->kept = PyList_New(0)))
        return st != ND_OK ? st : -1;
    const int64_t in = c->input_size + c->hidden_size, heads = a->mode == ND_CFC_PURE ? 1 : 4;
    if (nd_spec_init(&s, a->params, PyArray_TYPE(seq), a->kept, "CfC") < 0 ||
        nd_spec_bind(&s, "in", in, "input_size + hidden_size") < 0 ||
        nd_spec_bind(&s, "hidden_size", c->hidden_size, a->dh ? "dh" : "hidden_size") < 0 ||
        (c->layers && nd_spec_walk(&s, nd_cfc_first, 0, c) < 0) ||
        nd_spec_walk(&s, nd_cfc_backbone, (int)c->layers - 1, c) < 0)
        return -1;
    c->units = c->layers ? nd_spec_size(&s, "backbone_units") : 1;
    if (nd_spec_bind(&s, "heads_in", c->layers ? c->units : in, c->layers ? "params[0]" : "input_size + hidden_size") < 0 ||
        nd_spec_walk(&s, nd_cfc_heads, (int)heads, c) < 0 || (heads == 1 && nd_spec_walk(&s, nd_cfc_pure, 0, c) < 0))
        return -1;
    size_t per_step, wlen;
    if ((st = nd_cfc_sizes(c, PyArray_DIM(seq, 0), &per_step, &wlen)) != ND_OK)
        return st;
    a->cfc = 1;
    return nd_cell_sizes(a, per_step * (size_t)PyArray_DIM(seq, 1), wlen, nd_cfc_param_count(c));
}

#define ND_CFC_CODES                                                                               \
    ND_CHOICE(C, act, "backbone_activation", 0, nd_act_names), ND_CHOICE(C, mode, "mode", 0, nd_cfc_mode_names)
#define ND_CFC_PARAMS ND_OBJ(C, params, "params", ND_ARG_TUPLE, 0)
#define ND_CFC_ROWS ND_CHECK(nd_cfc_prepare), ND_KEEP(C, kept), ND_CELL_DIMS

static const nd_arg cfc_forward_args[] = {
    ND_CELL_X, ND_CELL_TIMESPANS, ND_CELL_H0, ND_CFC_PARAMS, ND_SIZE(C, hidden_size, "hidden_size", "state size", 0),
    ND_CFC_CODES, ND_CELL_KEEP, ND_CFC_ROWS, ND_CELL_FORWARD_OUTS, {NULL}};
ND_ENTRY_WITH(cfc_forward, C, NULL, NULL, nd_cell_run,
              "cfc_forward(x, timespans|None, h0|None, params, hidden_size, backbone_activation, mode, "
              "keep_cache=False) -> (h, cache|None)")

static const nd_arg cfc_backward_args[] = {
    ND_CELL_TIMESPANS, ND_CELL_CACHE, ND_CELL_SEQ(dh, "dh", "(batch, time, state size)"), ND_CFC_PARAMS,
    ND_SIZE(C, input_size, "input_size", "features", 0), ND_CFC_CODES, ND_CFC_ROWS, ND_CELL_BACKWARD_OUTS, {NULL}};
ND_ENTRY_WITH(cfc_backward, C, NULL, NULL, nd_cell_run,
              "cfc_backward(timespans|None, cache, dh, params, input_size, backbone_activation, mode) -> (dx, dh0, "
              "dparams)")

static int nd_cfc_rules(const C *a)
{
    const nd_cfc c = {.input_size = a->input_size, .hidden_size = a->hidden_size, .units = a->units,
                      .layers = a->layers, .act = a->act, .mode = a->mode};
    return nd_cfc_check(&c);
}
static const nd_arg cfc_check_args[] = {ND_SCALAR(C, input_size, "input_size", ND_ARG_INT, 0),
                                        ND_SCALAR(C, hidden_size, "hidden_size", ND_ARG_INT, 0),
                                        ND_SCALAR(C, units, "backbone_units", ND_ARG_INT, 0),
                                        ND_SCALAR(C, layers, "backbone_layers", ND_ARG_INT, 0),
                                        ND_CFC_CODES, ND_CHECK(nd_cfc_rules), {NULL}};
ND_CHECK_ENTRY(cfc_check, C, NULL,
               "cfc_check(input_size, hidden_size, backbone_units, backbone_layers, backbone_activation, mode)")

/* ---- the Liquid layer's time constants ----------------------------------------------------- */

typedef struct {
    PyArrayObject *z, *dtau;
    double clamp, tau_min;
    PyObject *o[1];
} nd_tau_args;

static void nd_tau_defaults(nd_tau_args *a)
{
    a->clamp = ND_LIQUID_TAU_CLAMP;
    a->tau_min = ND_LIQUID_TAU_MIN;
}

#define ND_TAU_Z ND_IN(nd_tau_args, z, "z", ND_TYPE, NULL)
#define ND_TAU_CLAMP_ARG ND_SCALAR(nd_tau_args, clamp, "clamp", ND_ARG_DOUBLE, ND_OPTIONAL)

static const nd_arg liquid_tau_forward_args[] = {
    ND_TAU_Z, ND_TAU_CLAMP_ARG, ND_SCALAR(nd_tau_args, tau_min, "tau_min", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_OUT(nd_tau_args, o[0], "tau", 0, "(*z)"), {NULL}};
ND_KERNEL_ENTRY(liquid_tau_forward, nd_tau_args, nd_tau_defaults,
                ND_DISPATCH(tn, nd_liquid_tau_forward, PyArray_SIZE(a->z), D(a->z), a->clamp, a->tau_min,
                            D(a->o[0])),
                "liquid_tau_forward(z, clamp=20.0, tau_min=0.1) -> softplus(min(z, clamp)) + tau_min")

static const nd_arg liquid_tau_backward_args[] = {ND_TAU_Z, ND_IN(nd_tau_args, dtau, "dtau", 0, "(*z)"),
                                                  ND_TAU_CLAMP_ARG, ND_OUT(nd_tau_args, o[0], "dz", 0, "(*z)"),
                                                  {NULL}};
ND_KERNEL_ENTRY(liquid_tau_backward, nd_tau_args, nd_tau_defaults,
                ND_DISPATCH(tn, nd_liquid_tau_backward, PyArray_SIZE(a->z), D(a->z), D(a->dtau), a->clamp,
                            D(a->o[0])),
                "liquid_tau_backward(z, dtau, clamp=20.0) -> dz of liquid_tau_forward")

static const nd_table nd_liquid_tables[] = {
    {"ltc_solvers", nd_ltc_solver_names}, {"cfc_modes", nd_cfc_mode_names}, {NULL, NULL}};
ND_FAMILY(nd_liquid_family, nd_liquid_tables, &solve_ltc_entry, &ltc_scan_entry, &ltc_scan_backward_entry,
          &ltc_check_options_entry, &ltccell_forward_entry, &ltccell_backward_entry, &ltccell_check_entry,
          &cfc_forward_entry, &cfc_backward_entry, &cfc_check_entry, &liquid_tau_forward_entry,
          &liquid_tau_backward_entry);

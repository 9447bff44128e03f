/* Binding of the Liquid family: the LTC relaxation (solve_ltc), the layer scan (ltc_scan,
 * forward and backward), the CfC and LTC cells over whole sequences, and the checks the models
 * run at construction. The rules are the kernels' (nd_ltc_check_opts, nd_liquid_check_positive,
 * nd_cfc_check, nd_ltccell_check). */
#include "nd_bind.h"

#include <ctype.h>

#include "nd_liquid.h"
#include "nd_liquid_cfc.h"
#include "nd_liquid_ltccell.h"
#include "nd_nn.h"
#include "nd_status.h"

/* An entry that runs a kernel's rules on its arguments and returns None. */
#define ND_CHECK_ENTRY(name, type, init, rules, doc)                                               \
    static PyObject *name##_body(PyObject *m, void *args, int tn)                                   \
    {                                                                                              \
        int st = rules((const type *)args);                                                        \
        return st == ND_OK ? Py_NewRef(Py_None) : nd_raise_status(st, #name);                      \
    }                                                                                              \
    ND_ENTRY(name, type, init, doc)

/* ---- the LTC relaxation and scan -------------------------------------------------------- */

typedef struct {
    PyArrayObject *x, *a, *tau, *h0, *h, *dh;
    int solver; /* index in nd_ltc_solver_names: the code is solver + ND_LTC_EXACT */
    int64_t steps;
    nd_ode_opts o; /* rtol, atol, max_steps */
} nd_ltc_args;

static void nd_ltc_args_default(nd_ltc_args *a)
{
    nd_ltc_defaults(&a->solver, &a->steps, &a->o);
    a->solver -= ND_LTC_EXACT;
}

/* The kernel's solver code, and the kernels' rules on the options. */
#define ND_LTC_SOLVER(a) ((a)->solver + ND_LTC_EXACT)
static int nd_ltc_check(const nd_ltc_args *a) { return nd_ltc_check_opts(ND_LTC_SOLVER(a), a->steps, &a->o); }

#define ND_LTC_OPTIONS                                                                             \
    ND_CHOICE(nd_ltc_args, solver, "solver", ND_OPTIONAL, nd_ltc_solver_names),                    \
        ND_SCALAR(nd_ltc_args, steps, "steps", ND_ARG_INT, ND_OPTIONAL),                           \
        ND_TOLERANCES(nd_ltc_args, o.rtol, o.atol),                                                \
        ND_SCALAR(nd_ltc_args, o.max_steps, "max_steps", ND_ARG_INT, ND_OPTIONAL)

/* A solver that could not finish raises IntegrationError with the frame time reached, the
 * status (odeint's keys: the status's enum name after ND_ERR_, in lower case) and counters. */
static PyObject *nd_ltc_failure(PyObject *module, int st, const char *what, const nd_ode_stats *s)
{
    if (st != ND_ERR_MAX_STEPS && st != ND_ERR_STEP_UNDERFLOW && st != ND_ERR_NONFINITE && st != ND_ERR_UNSTABLE)
        return nd_raise_status(st, what);
    char key[32] = {0};
    const char *name = nd_status_name(st) + sizeof "ND_ERR_" - 1;
    for (size_t i = 0; name[i] && i < sizeof key - 1; ++i)
        key[i] = (char)tolower((unsigned char)name[i]);
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
    return nd_raise_integration(module, msg, attrs);
}

/* x, a and tau broadcast together, each C-contiguous (a copy only where its shape differs). */
static int nd_ltc_broadcast(nd_ltc_args *a)
{
    PyArrayObject **arr[3] = {&a->x, &a->a, &a->tau};
    PyArrayMultiIterObject *it = (PyArrayMultiIterObject *)PyArray_MultiIterNew(3, a->x, a->a, a->tau);
    if (!it) {
        PyObject *s[3];
        for (int k = 0; k < 3; ++k)
            s[k] = nd_shape_str(PyArray_NDIM(*arr[k]), PyArray_DIMS(*arr[k]));
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

/* tau's rule (positive and finite) is the kernel's, so NaN and inf reach it. */
static const nd_arg solve_ltc_args[] = {ND_IN(nd_ltc_args, x, "x", ND_TYPE | ND_FINITE, -1, NULL),
                                        ND_IN(nd_ltc_args, a, "a", ND_TYPE | ND_FINITE, -1, NULL),
                                        ND_IN(nd_ltc_args, tau, "tau", ND_TYPE, -1, NULL), ND_LTC_OPTIONS, {NULL}};

static PyObject *solve_ltc_body(PyObject *module, void *args, int tn)
{
    nd_ltc_args *a = args;
    const int solver = ND_LTC_SOLVER(a);
    int st = nd_ltc_check(a);
    if (st != ND_OK || nd_ltc_broadcast(a) < 0)
        return st != ND_OK ? nd_raise_status(st, "solve_ltc") : NULL;
    const int64_t n = (int64_t)PyArray_SIZE(a->x);
    size_t len;
    void *work = nd_workspace(nd_solve_ltc_workspace_len(solver, n, &len), &len, PyArray_ITEMSIZE(a->x), "solve_ltc");
    PyObject *out = work ? PyArray_SimpleNew(PyArray_NDIM(a->x), PyArray_DIMS(a->x), tn) : NULL;
    nd_ode_stats stats = {0};
    ND_NOGIL(st, ND_DISPATCH(tn, nd_solve_ltc, solver, n, ND_DATA(a->x), ND_DATA(a->a), ND_DATA(a->tau), a->steps,
                             &a->o, ND_DATA(out), work, &stats));
    PyMem_RawFree(work);
    if (!PyErr_Occurred() && st != ND_OK) {
        Py_CLEAR(out);
        nd_ltc_failure(module, st, "solve_ltc", &stats);
    }
    return nd_finish(ND_OK, "solve_ltc", 1, &out);
}
ND_ENTRY(solve_ltc, nd_ltc_args, nd_ltc_args_default,
         "solve_ltc(x, a, tau, solver, steps, rtol, atol, max_steps) -> x(1) of dx/ds = (a - x) / tau, broadcast")

/* Forward -> h [B, T, H]; backward -> (da, dtau [B, T, H], dh0 [B, H]). */
static PyObject *nd_ltc_scan_run(PyObject *module, void *args, int tn, int backward)
{
    nd_ltc_args *a = args;
    const int solver = ND_LTC_SOLVER(a);
    int st = nd_ltc_check(a);
    if (st != ND_OK)
        return nd_raise_status(st, "ltc_scan");
    const npy_intp *d = PyArray_DIMS(a->a), B = d[0], T = d[1], H = d[2], d0[2] = {B, H};
    if (nd_check_shape(a->tau, "tau", 3, d, "the shape of a") < 0 ||
        (a->h0 && nd_check_shape(a->h0, "h0", 2, d0, "(batch, hidden) of a") < 0) ||
        (a->h && nd_check_shape(a->h, "h", 3, d, "the shape of a") < 0) ||
        (a->dh && nd_check_shape(a->dh, "dh", 3, d, "the shape of a") < 0))
        return NULL;
    size_t bytes;
    void *work = nd_workspace(nd_ltc_scan_workspace_bytes(solver, H, a->o.max_steps, backward, &bytes), &bytes, 1,
                              "ltc_scan");
    PyObject *o[3] = {work ? nd_empty(tn, 3, B, T, H) : NULL, NULL, NULL};
    if (o[0] && backward)
        o[1] = nd_empty(tn, 3, B, T, H), o[2] = nd_empty(tn, 2, B, H);
    nd_ode_stats stats = {0};
    void *ad = ND_DATA(a->a), *td = ND_DATA(a->tau), *h0 = ND_DATA(a->h0), *o0 = ND_DATA(o[0]);
    ND_NOGIL(st, backward ? ND_DISPATCH(tn, nd_ltc_scan_backward, solver, B, T, H, ad, td, h0, ND_DATA(a->h),
                                        a->steps, &a->o, ND_DATA(a->dh), o0, ND_DATA(o[1]), ND_DATA(o[2]), work)
                          : ND_DISPATCH(tn, nd_ltc_scan_forward, solver, B, T, H, ad, td, h0, a->steps, &a->o, o0,
                                        work, &stats));
    PyMem_RawFree(work);
    if (!PyErr_Occurred() && st != ND_OK) {
        for (int k = 0; k < 3; ++k)
            Py_CLEAR(o[k]);
        nd_ltc_failure(module, st, "ltc_scan", &stats);
    }
    return nd_finish(ND_OK, "ltc_scan", backward ? 3 : 1, o);
}

#define ND_LTC_SCAN_INPUTS(h0_flags)                                                               \
    ND_IN(nd_ltc_args, a, "a", ND_TYPE | ND_FINITE, 3, "(batch, time, hidden)"),                   \
        ND_IN(nd_ltc_args, tau, "tau", ND_TYPE, -1, NULL),                                         \
        ND_IN(nd_ltc_args, h0, "h0", ND_FINITE | ND_NONE | (h0_flags), -1, NULL)

static const nd_arg ltc_scan_args[] = {ND_LTC_SCAN_INPUTS(ND_OPTIONAL), ND_LTC_OPTIONS, {NULL}};
ND_ENTRY_OF(ltc_scan, nd_ltc_args, nd_ltc_args_default, nd_ltc_scan_run, 0,
            "ltc_scan(a, tau, h0=None, solver, steps, rtol, atol, max_steps) -> h [B, T, H]")

static const nd_arg ltc_scan_backward_args[] = {ND_LTC_SCAN_INPUTS(0), ND_IN(nd_ltc_args, h, "h", ND_FINITE, -1, NULL),
                                                ND_IN(nd_ltc_args, dh, "dh", ND_FINITE, -1, NULL), ND_LTC_OPTIONS,
                                                {NULL}};
ND_ENTRY_OF(ltc_scan_backward, nd_ltc_args, nd_ltc_args_default, nd_ltc_scan_run, 1,
            "ltc_scan_backward(a, tau, h0|None, h, dh, solver, steps, rtol, atol, max_steps) -> (da, dtau, dh0)")

static const nd_arg ltc_check_options_args[] = {ND_LTC_OPTIONS, {NULL}};
ND_CHECK_ENTRY(ltc_check_options, nd_ltc_args, nd_ltc_args_default, nd_ltc_check,
               "ltc_check_options(solver, steps, rtol, atol, max_steps): the kernels' rules on these options")

/* ---- the recurrent cells ---------------------------------------------------------------- */

typedef struct {
    PyArrayObject *x, *dt, *h0, *cache, *dh;
    PyArrayObject *p[11]; /* the LTC cell's parameters, in nd_ltccell's order */
    PyObject *params;     /* the CfC's: (W, b) of each backbone layer, then of each head */
    int64_t input_size, hidden_size, units, layers, unfolds;
    int act, mode, keep;
    double eps;
} nd_cell_args;



/* dims: B, T, state size H, input size NI, parameter count P. Forward -> (h [B, T, H],
 * cache | None); backward -> (dx [B, T, NI], dh0 [B, H], dparams [P]). */
static PyObject *nd_cell_run(const char *name, int cfc, const void *cell, const nd_cell_args *a, int tn, int backward,
                             const npy_intp dims[5], size_t clen, size_t wlen)
{
    const npy_intp B = dims[0], T = dims[1], H = dims[2], bh[2] = {B, H}, bth[3] = {B, T, H}, cd[1] = {(npy_intp)clen};
    if ((a->dt && nd_check_shape(a->dt, "timespans", 2, dims, "(batch, time)") < 0) ||
        (a->h0 && nd_check_shape(a->h0, "h0", 2, bh, "(batch, state size)") < 0) ||
        (a->dh && nd_check_shape(a->dh, "dh", 3, bth, "(batch, time, state size)") < 0) ||
        (a->cache && nd_check_shape(a->cache, "cache", 1, cd, "from the forward pass of these inputs") < 0))
        return NULL;
    void *work = nd_work_alloc(wlen, tn == NPY_FLOAT ? sizeof(float) : sizeof(double));
    PyObject *o[3] = {NULL, NULL, NULL};
    if (work && !backward && (o[0] = nd_empty(tn, 3, B, T, H)) && a->keep)
        o[1] = nd_empty(tn, 1, (npy_intp)clen);
    if (work && backward)
        o[0] = nd_empty(tn, 3, B, T, dims[3]), o[1] = nd_empty(tn, 2, B, H), o[2] = nd_empty(tn, 1, dims[4]);
    const void *x = ND_DATA(a->x), *dt = ND_DATA(a->dt), *h0 = ND_DATA(a->h0), *c = ND_DATA(a->cache);
    const void *dh = ND_DATA(a->dh);
    void *o0 = ND_DATA(o[0]), *o1 = ND_DATA(o[1]), *o2 = ND_DATA(o[2]);
    int st = ND_OK;
    if (cfc && backward) /* the cache holds what CfC's backward pass reads of x */
        ND_NOGIL(st, ND_DISPATCH(tn, nd_cfc_backward, cell, B, T, dt, c, dh, o0, o1, o2, work));
    else if (cfc)
        ND_NOGIL(st, ND_DISPATCH(tn, nd_cfc_forward, cell, B, T, x, dt, h0, o0, o1, work));
    else if (backward)
        ND_NOGIL(st, ND_DISPATCH(tn, nd_ltccell_backward, cell, B, T, x, dt, NULL, c, dh, o0, o1, o2, work));
    else
        ND_NOGIL(st, ND_DISPATCH(tn, nd_ltccell_forward, cell, B, T, x, dt, h0, o0, o1, work));
    PyMem_RawFree(work);
    return nd_finish(st, name, backward ? 3 : 2, o);
}

/* The sequence (x or dh) sets the call's type; the timespans' rule is the kernels'. */
#define ND_CELL_SEQ(field, name) ND_IN(nd_cell_args, field, name, ND_TYPE | ND_FINITE, 3, "(batch, time, features)")
#define ND_CELL_TIMESPANS ND_IN(nd_cell_args, dt, "timespans", ND_NONE, 2, "(batch, time)")
#define ND_CELL_H0 ND_IN(nd_cell_args, h0, "h0", ND_FINITE | ND_NONE, 2, "(batch, state size)")
#define ND_CELL_CACHE ND_IN(nd_cell_args, cache, "cache", 0, 1, "(size,) from the forward pass")
#define ND_CELL_DH ND_IN(nd_cell_args, dh, "dh", ND_FINITE, 3, "(batch, time, state size)")
#define ND_CELL_KEEP ND_SCALAR(nd_cell_args, keep, "keep_cache", ND_ARG_BOOL, ND_OPTIONAL)

/* ---- the LTC cell ----------------------------------------------------------------------- */

/* The parameters, in nd_ltccell's order: gleak, vleak, cm [N]; w, sigma, mu, erev [N, N]; the
 * sensory four [S, N]. */
#define ND_LTCCELL_LIST(X)                                                                         \
    X(0, "gleak", 1) X(1, "vleak", 1) X(2, "cm", 1) X(3, "w", 2) X(4, "sigma", 2) X(5, "mu", 2)       \
        X(6, "erev", 2) X(7, "sensory_w", 2) X(8, "sensory_sigma", 2) X(9, "sensory_mu", 2)         \
            X(10, "sensory_erev", 2)
#define ND_LTC_ROW(k, name, nd) ND_IN(nd_cell_args, p[k], name, ND_FINITE, nd, NULL),
#define ND_LTC_NAME(k, name, nd) name,
static const char *const nd_ltccell_params[11] = {ND_LTCCELL_LIST(ND_LTC_NAME)};
#define ND_LTCCELL_PARAMS                                                                          \
    ND_LTCCELL_LIST(ND_LTC_ROW) ND_SCALAR(nd_cell_args, unfolds, "ode_unfolds", ND_ARG_INT, 0),    \
        ND_SCALAR(nd_cell_args, eps, "epsilon", ND_ARG_DOUBLE, 0)

static PyObject *nd_ltccell_body(PyObject *m, void *args, int tn, int backward)
{
    nd_cell_args *a = args;
    const npy_intp B = PyArray_DIM(a->x, 0), T = PyArray_DIM(a->x, 1), S = PyArray_DIM(a->x, 2);
    const npy_intp N = PyArray_DIM(a->p[0], 0), sq[2] = {N, N}, sn[2] = {S, N};
    nd_ltccell c = {.sensory = S, .units = N, .unfolds = a->unfolds, .eps = a->eps};
    const void **dst[11] = {&c.gleak, &c.vleak, &c.cm, &c.w, &c.sigma, &c.mu, &c.erev, &c.sw, &c.ssigma, &c.smu,
                            &c.serev};
    for (int k = 0; k < 11; ++k) {
        if (nd_check_shape(a->p[k], nd_ltccell_params[k], k < 3 ? 1 : 2, k < 7 ? sq : sn, NULL) < 0)
            return NULL;
        *dst[k] = PyArray_DATA(a->p[k]);
    }
    size_t clen, wlen;
    int st = nd_ltccell_sizes(&c, B, T, &clen, &wlen);
    if (st != ND_OK)
        return nd_raise_status(st, "ltccell");
    const npy_intp dims[5] = {B, T, N, S, (npy_intp)nd_ltccell_param_count(&c)};
    return nd_cell_run("ltccell", 0, &c, a, tn, backward, dims, clen, wlen);
}

static const nd_arg ltccell_forward_args[] = {
    ND_CELL_SEQ(x, "x"), ND_CELL_TIMESPANS, ND_CELL_H0, ND_LTCCELL_PARAMS, ND_CELL_KEEP, {NULL}};
ND_ENTRY_OF(ltccell_forward, nd_cell_args, NULL, nd_ltccell_body, 0,
            "ltccell_forward(x, timespans|None, h0|None, gleak, ..., sensory_erev, ode_unfolds, epsilon, "
            "keep_cache=False) -> (h, cache|None)")

static const nd_arg ltccell_backward_args[] = {
    ND_CELL_SEQ(x, "x"), ND_CELL_TIMESPANS, ND_CELL_CACHE, ND_CELL_DH, ND_LTCCELL_PARAMS, {NULL}};
ND_ENTRY_OF(ltccell_backward, nd_cell_args, NULL, nd_ltccell_body, 1,
            "ltccell_backward(x, timespans|None, cache, dh, gleak, ..., sensory_erev, ode_unfolds, epsilon) -> "
            "(dx, dh0, dparams)")

static const nd_arg ltccell_check_args[] = {ND_SCALAR(nd_cell_args, input_size, "input_size", ND_ARG_INT, 0),
                                            ND_SCALAR(nd_cell_args, units, "units", ND_ARG_INT, 0),
                                            ND_SCALAR(nd_cell_args, unfolds, "ode_unfolds", ND_ARG_INT, 0),
                                            ND_SCALAR(nd_cell_args, eps, "epsilon", ND_ARG_DOUBLE, 0), {NULL}};
static int nd_ltccell_rules(const nd_cell_args *a)
{
    const nd_ltccell c = {.sensory = a->input_size, .units = a->units, .unfolds = a->unfolds, .eps = a->eps};
    return nd_ltccell_check(&c);
}
ND_CHECK_ENTRY(ltccell_check, nd_cell_args, NULL, nd_ltccell_rules,
               "ltccell_check(input_size, units, ode_unfolds, epsilon): the kernels' rules")

/* ---- CfC -------------------------------------------------------------------------------- */

/* params[k] with ndim axes (d0, d1; -1: any), kept alive in `keep`; NULL with an exception. */
static const void *nd_cfc_param(PyObject *params, Py_ssize_t k, int tn, int ndim, npy_intp d0, npy_intp d1,
                                const char *axes, PyObject *keep)
{
    char name[32];
    snprintf(name, sizeof name, "params[%zd]", k);
    const npy_intp dims[2] = {d0, d1};
    PyArrayObject *p = nd_keep_param(keep, PyTuple_GET_ITEM(params, k), tn, ndim, dims, name, axes);
    return p ? PyArray_DATA(p) : NULL;
}

/* params: (W, b) of each backbone layer, then of the heads ff1, ff2, ta, tb; in the pure mode
 * (W, b) of ff1 then w_tau and A. */
static PyObject *nd_cfc_body(PyObject *m, void *args, int tn, int backward)
{
    nd_cell_args *a = args;
    const Py_ssize_t n = PyTuple_GET_SIZE(a->params), tail = a->mode == ND_CFC_PURE ? 4 : 8;
    if (n < tail || n % 2 || n > tail + 2 * ND_CFC_MAX_LAYERS)
        return PyErr_Format(PyExc_ValueError, "params must hold %zd to %zd arrays in mode '%s' (backbone (W, b) pairs, "
                            "then %s), got %zd", tail, tail + 2 * ND_CFC_MAX_LAYERS, nd_cfc_mode_names[a->mode],
                            a->mode == ND_CFC_PURE ? "ff1's (W, b), w_tau and A" : "the heads' (W, b) pairs", n);
    PyArrayObject *seq = backward ? a->dh : a->x;
    const npy_intp B = PyArray_DIM(seq, 0), T = PyArray_DIM(seq, 1);
    /* the sizes are checked before any shape is read from them; the backbone's width comes
     * from its first weights (1 stands in for it until then) */
    nd_cfc c = {.input_size = backward ? a->input_size : PyArray_DIM(a->x, 2),
                .hidden_size = backward ? PyArray_DIM(a->dh, 2) : a->hidden_size, .units = 1,
                .layers = (n - tail) / 2, .act = a->act, .mode = a->mode};
    int st = nd_cfc_check(&c);
    if (st != ND_OK)
        return nd_raise_status(st, "cfc");
    PyObject *keep = PyList_New(0), *res = NULL;
    npy_intp in = c.input_size + c.hidden_size;
    int ok = keep != NULL;
    for (int64_t l = 0; ok && l < c.layers; ++l, in = c.units) {
        ok = (c.bw[l] = nd_cfc_param(a->params, 2 * l, tn, 2, in, l ? c.units : -1, "(width, backbone_units)", keep)) != NULL;
        if (ok && l == 0)
            c.units = PyArray_DIM((PyArrayObject *)PyList_GET_ITEM(keep, 0), 1);
        ok = ok && (c.bb[l] = nd_cfc_param(a->params, 2 * l + 1, tn, 1, c.units, -1, "(backbone_units,)", keep));
    }
    const int heads = a->mode == ND_CFC_PURE ? 1 : 4;
    Py_ssize_t i = 2 * c.layers;
    for (int k = 0; ok && k < heads; ++k, i += 2)
        ok = (c.hw[k] = nd_cfc_param(a->params, i, tn, 2, in, c.hidden_size, "(width, hidden_size)", keep)) &&
             (c.hb[k] = nd_cfc_param(a->params, i + 1, tn, 1, c.hidden_size, -1, "(hidden_size,)", keep));
    if (ok && heads == 1)
        ok = (c.w_tau = nd_cfc_param(a->params, i, tn, 1, c.hidden_size, -1, "(hidden_size,)", keep)) &&
             (c.A = nd_cfc_param(a->params, i + 1, tn, 1, c.hidden_size, -1, "(hidden_size,)", keep));
    size_t per_step, wlen;
    if (ok && (st = nd_cfc_sizes(&c, B, &per_step, &wlen)) != ND_OK)
        nd_raise_status(st, "cfc");
    else if (ok) {
        const npy_intp dims[5] = {B, T, c.hidden_size, c.input_size, (npy_intp)nd_cfc_param_count(&c)};
        res = nd_cell_run("cfc", 1, &c, a, tn, backward, dims, per_step * (size_t)T, wlen);
    }
    Py_XDECREF(keep);
    return res;
}

#define ND_CFC_CODES                                                                               \
    ND_CHOICE(nd_cell_args, act, "backbone_activation", 0, nd_act_names),                          \
        ND_CHOICE(nd_cell_args, mode, "mode", 0, nd_cfc_mode_names)
#define ND_CFC_PARAMS ND_OBJ(nd_cell_args, params, "params", ND_ARG_TUPLE, 0)

static const nd_arg cfc_forward_args[] = {
    ND_CELL_SEQ(x, "x"), ND_CELL_TIMESPANS, ND_CELL_H0, ND_CFC_PARAMS,
    ND_SCALAR(nd_cell_args, hidden_size, "hidden_size", ND_ARG_INT, 0), ND_CFC_CODES, ND_CELL_KEEP, {NULL}};
ND_ENTRY_OF(cfc_forward, nd_cell_args, NULL, nd_cfc_body, 0,
         "cfc_forward(x, timespans|None, h0|None, params, hidden_size, backbone_activation, mode, keep_cache=False) "
         "-> (h, cache|None)")

static const nd_arg cfc_backward_args[] = {
    ND_CELL_TIMESPANS, ND_CELL_CACHE, ND_CELL_SEQ(dh, "dh"), ND_CFC_PARAMS,
    ND_SCALAR(nd_cell_args, input_size, "input_size", ND_ARG_INT, 0), ND_CFC_CODES, {NULL}};
ND_ENTRY_OF(cfc_backward, nd_cell_args, NULL, nd_cfc_body, 1,
         "cfc_backward(timespans|None, cache, dh, params, input_size, backbone_activation, mode) -> (dx, dh0, dparams)")

static const nd_arg cfc_check_args[] = {ND_SCALAR(nd_cell_args, input_size, "input_size", ND_ARG_INT, 0),
                                        ND_SCALAR(nd_cell_args, hidden_size, "hidden_size", ND_ARG_INT, 0),
                                        ND_SCALAR(nd_cell_args, units, "backbone_units", ND_ARG_INT, 0),
                                        ND_SCALAR(nd_cell_args, layers, "backbone_layers", ND_ARG_INT, 0),
                                        ND_CFC_CODES, {NULL}};
static int nd_cfc_rules(const nd_cell_args *a)
{
    const nd_cfc c = {.input_size = a->input_size, .hidden_size = a->hidden_size, .units = a->units,
                      .layers = a->layers, .act = a->act, .mode = a->mode};
    return nd_cfc_check(&c);
}
ND_CHECK_ENTRY(cfc_check, nd_cell_args, NULL, nd_cfc_rules,
               "cfc_check(input_size, hidden_size, backbone_units, backbone_layers, backbone_activation, mode)")

static const nd_table nd_liquid_tables[] = {
    {"ltc_solvers", nd_ltc_solver_names}, {"cfc_modes", nd_cfc_mode_names}, {NULL, NULL}};
ND_FAMILY(nd_liquid_family, nd_liquid_tables, &solve_ltc_entry, &ltc_scan_entry, &ltc_scan_backward_entry,
          &ltc_check_options_entry, &ltccell_forward_entry, &ltccell_backward_entry, &ltccell_check_entry,
          &cfc_forward_entry, &cfc_backward_entry, &cfc_check_entry);

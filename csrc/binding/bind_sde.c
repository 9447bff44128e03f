/* Binding of the SDE family: sdeint with a built-in or Python drift and diffusion. Option
 * names and defaults are the kernel's (nd_sde.h); the kernel checks its rules, this file what
 * memory safety needs and the shapes of the arrays it hands over. */
#include "nd_bind.h"

#include <string.h>

#include "nd_generic.h"
#include "nd_sde.h"
#include "nd_status.h"

/* The options go straight into the kernel's struct: its defaults are _core.DEFAULTS. */
typedef struct {
    PyObject *f, *g, *args, *dg, *progress;
    PyArrayObject *y0, *t, *ids, *dW, *dZ, *ybar;
    int record;
    nd_sde_opts o;
    /* sde_backprop's run: the drift and diffusion, their sizes, workspace and outputs */
    PyObject *keep, *res[3];
    nd_field field;
    nd_diffusion diff;
    int64_t B, d, P, n_dg;
    PyObject *out[3]; /* sdeint's ys, status, t_reached */
    void *work;
} nd_sde_args;

static void nd_sde_defaults(nd_sde_args *a) { nd_sde_opts_default(&a->o); }

/* ---- Python callbacks -------------------------------------------------------------------- */

/* f, g and dg see y of y0's shape (nd_pyfn). */
static int nd_sde_call_f32(void *c, double t, int64_t rows, const float *y, float *out) { return nd_pyfn_call(c, t, y, out); }
static int nd_sde_call_f64(void *c, double t, int64_t rows, const double *y, double *out) { return nd_pyfn_call(c, t, y, out); }

/* ---- built-in diffusions ---------------------------------------------------------------- */

/* spec = (kind, params) as neurodyn.sde builds it for a state y0 [..., d]: CONSTANT (sigma,) with
 * sigma [d] or [d, m] (general noise); LINEAR (scale [d], offset [d] or None). */
#define G nd_diffusion
static const nd_item nd_sigma_items[] = {ND_ITEM(G, sigma, "sigma", ND_NONE, "(d,)"), {NULL}};
static const nd_item nd_sigma_general_items[] = {ND_ITEM(G, sigma, "sigma", ND_NONE, "(d, m) for general noise"), {NULL}};
static const nd_item nd_linear_items[] = {ND_ITEM(G, scale, "scale", ND_NONE, "(d,)"),
                                          ND_ITEM(G, offset, "offset", ND_NONE, "(d,)"), {NULL}};
#undef G

static int nd_parse_diffusion(PyObject *spec, int typenum, int64_t d, int general, nd_diffusion *g, PyObject *keep)
{
    int kind;
    PyObject *params;
    nd_spec s;
    if (!PyArg_ParseTuple(spec, "iO!;diffusion spec", &kind, &PyTuple_Type, &params))
        return -1;
    memset(g, 0, sizeof *g);
    g->kind = kind;
    g->dim = g->m = d;
    const Py_ssize_t n = PyTuple_GET_SIZE(params);
    if (!((kind == ND_DIFFUSION_CONSTANT && n == 1) || (kind == ND_DIFFUSION_LINEAR && n == 2))) {
        PyErr_SetString(PyExc_ValueError, "malformed diffusion spec");
        return -1;
    }
    const nd_item *rows = kind == ND_DIFFUSION_LINEAR ? nd_linear_items : general ? nd_sigma_general_items : nd_sigma_items;
    if (nd_spec_init(&s, params, typenum, keep, "diffusion") < 0 || nd_spec_bind(&s, "d", d, "y0") < 0 ||
        nd_spec_walk(&s, rows, 0, g) < 0)
        return -1;
    g->m = g->sigma && rows == nd_sigma_general_items ? nd_spec_size(&s, "m") : d;
    return 0;
}

/* The shape of the increments of a grid of `steps` steps for y0: (steps,) + batch + (m,). */
static void nd_sde_increment_dims(PyArrayObject *y0, int64_t steps, int64_t m, npy_intp *dims)
{
    const int nd = PyArray_NDIM(y0);
    dims[0] = (npy_intp)steps;
    memcpy(dims + 1, PyArray_DIMS(y0), (size_t)(nd - 1) * sizeof(npy_intp));
    dims[nd] = (npy_intp)(m > 0 ? m : 0);
}

/* ---- sdeint -------------------------------------------------------------------------------- */

/* The samples: the batch of y0's leading axes. */
static int nd_sde_samples(nd_sde_args *a)
{
    a->d = PyArray_DIM(a->y0, PyArray_NDIM(a->y0) - 1);
    a->B = a->d ? (int64_t)(PyArray_SIZE(a->y0) / a->d) : 0;
    return ND_OK;
}

static const nd_arg sdeint_args[] = {
    ND_OBJ(nd_sde_args, f, "f", ND_ARG_OBJECT, 0),
    ND_OBJ(nd_sde_args, g, "g", ND_ARG_OBJECT, 0),
    ND_IN(nd_sde_args, y0, "y0", ND_TYPE | ND_FINITE, "(*batch, d)"),
    ND_F64IN(nd_sde_args, t, "t", 0, "(times,)"),
    ND_CHOICE(nd_sde_args, o.method, "method", ND_OPTIONAL, nd_sde_method_names),
    ND_CHOICE(nd_sde_args, o.noise, "noise", ND_OPTIONAL, nd_sde_noise_names),
    ND_SCALAR(nd_sde_args, o.dt, "dt", ND_ARG_DOUBLE, 0),
    ND_SCALAR(nd_sde_args, o.seed, "seed", ND_ARG_SEED, ND_OPTIONAL | ND_NONE),
    ND_SCALAR(nd_sde_args, o.m, "m", ND_ARG_INT, ND_OPTIONAL),
    ND_I64IN(nd_sde_args, ids, "sample_ids", ND_OPTIONAL | ND_NONE, "(*batch) the batch shape y0.shape[:-1]"),
    ND_IN(nd_sde_args, dW, "dW", ND_FINITE | ND_NONE | ND_OPTIONAL, NULL),
    ND_IN(nd_sde_args, dZ, "dZ", ND_FINITE | ND_NONE | ND_OPTIONAL, NULL),
    ND_SCALAR(nd_sde_args, record, "record", ND_ARG_BOOL, ND_OPTIONAL),
    ND_OBJ(nd_sde_args, args, "args", ND_ARG_TUPLE, ND_OPTIONAL | ND_NONE),
    ND_OBJ(nd_sde_args, dg, "dg", ND_ARG_CALLABLE, ND_OPTIONAL | ND_NONE),
    ND_PROGRESS(nd_sde_args, progress),
    ND_CHECK(nd_sde_samples), ND_DIM(nd_sde_args, B, "samples"),
    ND_OUT(nd_sde_args, out[0], "ys", 0, "(times, *y0)"),
    ND_OUT_T(nd_sde_args, out[1], "status", 0, "(samples,)", NPY_INT32),
    ND_OUT_T(nd_sde_args, out[2], "t_reached", 0, "(samples,)", NPY_DOUBLE),
    {NULL}};

/* The failure of samples that became NaN or inf, with every sample's result attached. */
static void nd_sde_raise_nonfinite(PyObject *module, PyArrayObject *y0, PyArrayObject *ta, PyObject *ys,
                                   PyObject *status, PyObject *t_reached, PyObject *dW, PyObject *dZ, PyObject *info,
                                   int64_t failed)
{
    const int nb = PyArray_NDIM(y0) - 1;
    const npy_intp B = PyArray_SIZE((PyArrayObject *)status);
    const int32_t *sd = PyArray_DATA((PyArrayObject *)status);
    const double *td = PyArray_DATA((PyArrayObject *)t_reached);
    npy_intp first = 0;
    while (first < B && sd[first] == ND_OK)
        ++first;
    PyObject *mask = PyArray_SimpleNew(nb, PyArray_DIMS(y0), NPY_BOOL);
    if (!mask)
        return;
    for (npy_intp i = 0; i < B; ++i)
        ((npy_bool *)PyArray_DATA((PyArrayObject *)mask))[i] = sd[i] != ND_OK;
    npy_intp bdims[NPY_MAXDIMS];
    memcpy(bdims, PyArray_DIMS(y0), (size_t)nb * sizeof(npy_intp));
    PyArray_Dims newshape = {bdims, nb};
    PyObject *tb = PyArray_Newshape((PyArrayObject *)t_reached, &newshape, NPY_CORDER);
    const double t_end = ((const double *)PyArray_DATA(ta))[PyArray_DIM(ta, 0) - 1];
    PyObject *tf = PyFloat_FromDouble(first < B ? td[first] : t_end), *te = PyFloat_FromDouble(t_end);
    PyObject *attrs = (tb && tf && te) ? Py_BuildValue("{s:O,s:O,s:O,s:s,s:O,s:O,s:O}", "ys", ys, "t", tb, "failed", mask,
                                                       "status", "nonfinite", "dW", dW ? dW : Py_None, "dZ",
                                                       dZ ? dZ : Py_None, "info", info)
                                       : NULL;
    nd_raise_integration(module,
                         attrs ? PyUnicode_FromFormat(
                                     "sdeint: %lld of %lld samples became NaN or inf (the first, flat index %lld, "
                                     "after t=%R); the others reached t=%R. The exception's ys holds every sample (NaN "
                                     "after its failure), failed marks the samples that stopped and t the time each "
                                     "reached",
                                     (long long)failed, (long long)B, (long long)first, tf, te)
                               : NULL,
                         attrs);
    Py_XDECREF(tf);
    Py_XDECREF(te);
    Py_XDECREF(tb);
    Py_DECREF(mask);
}

/* -> (ys [nt] + y0.shape, dW | None, dZ | None, info) */
static PyObject *sdeint_body(PyObject *module, void *args, int tn)
{
    nd_sde_args *a = args;
    PyArrayObject *y0 = a->y0;
    const int nd = PyArray_NDIM(y0);
    const int64_t d = a->d, B = a->B;
    const npy_intp nt = PyArray_DIM(a->t, 0);
    const double *t = PyArray_DATA(a->t);
    nd_sde_opts o = a->o;
    const int general = o.noise == ND_SDE_GENERAL;
    int64_t steps;
    int st = nd_sde_steps(nt, t, o.dt, &steps);
    if (st != ND_OK)
        return nd_raise_status(st, "sdeint");

    nd_field field;
    nd_diffusion diffusion;
    nd_pyfn fcb, gcb, dgcb;
    nd_pyargs pa = {0};
    PyObject *keep = PyList_New(0), *dW = NULL, *dZ = NULL, *info = NULL, *res = NULL;
    PyObject *ys = a->out[0], *status = a->out[1], *t_reached = a->out[2];
    if (!keep || nd_pyargs_init(&pa, a->args, tn, a->progress) < 0)
        goto done;

    /* typed problem: the pointers are the same for both precisions */
    nd_sde_problem_f64 p64 = {0};
    nd_sde_problem_f32 p32 = {0};
    if (PyCallable_Check(a->f)) {
        nd_pyfn_init(&fcb, a->f, "f(t, y)", "the shape of y0", &pa, y0, 0, 0);
        p64.drift = nd_sde_call_f64;
        p32.drift = nd_sde_call_f32;
        p64.drift_ctx = p32.drift_ctx = &fcb;
    } else if (PyTuple_Check(a->f)) {
        if (nd_parse_field(a->f, tn, &field, keep) < 0)
            goto done;
        p64.field = p32.field = &field;
    } else {
        PyErr_Format(PyExc_TypeError, "f must be callable or a neurodyn.fields vector field, got %s",
                     Py_TYPE(a->f)->tp_name);
        goto done;
    }
    if (PyCallable_Check(a->g)) {
        if (general && o.m < 1) {
            PyErr_SetString(PyExc_ValueError, "general noise with a callable g needs m, the number of Brownian motions");
            goto done;
        }
        nd_pyfn_init(&gcb, a->g, "g(t, y)", general ? "y.shape + (m,) for general noise" : "the shape of y0", &pa,
                       y0, general, (npy_intp)o.m);
        p64.diffusion_fn = nd_sde_call_f64;
        p32.diffusion_fn = nd_sde_call_f32;
        p64.diffusion_ctx = p32.diffusion_ctx = &gcb;
        if (a->dg) {
            nd_pyfn_init(&dgcb, a->dg, "dg(t, y)", "the shape of y0", &pa, y0, 0, 0);
            p64.diffusion_dy = nd_sde_call_f64;
            p32.diffusion_dy = nd_sde_call_f32;
            p64.diffusion_dy_ctx = p32.diffusion_dy_ctx = &dgcb;
        }
    } else if (PyTuple_Check(a->g)) {
        if (nd_parse_diffusion(a->g, tn, d, general, &diffusion, keep) < 0)
            goto done;
        if (general && o.m < 1)
            o.m = diffusion.m;
        p64.diffusion = p32.diffusion = &diffusion;
    } else {
        PyErr_Format(PyExc_TypeError, "g must be callable or a neurodyn.sde diffusion, got %s", Py_TYPE(a->g)->tp_name);
        goto done;
    }
    const int64_t m = general ? o.m : d;

    /* increments: (steps,) + batch + (m,) */
    npy_intp wdims[NPY_MAXDIMS];
    nd_sde_increment_dims(y0, steps, m, wdims);
    size_t wcount;
    if (m > 0 && !nd_mul3_size((size_t)steps, (size_t)B, (size_t)m, &wcount)) {
        PyErr_SetString(PyExc_MemoryError, "the Brownian increments of this grid do not fit in memory");
        goto done;
    }
    const int want_dz = o.method == ND_SDE_SRA;
    if (a->dW && nd_check_shape(a->dW, "dW", nd + 1, wdims, "(steps,) + batch + (m,) of this grid") < 0)
        goto done;
    if (a->dZ && nd_check_shape(a->dZ, "dZ", nd + 1, wdims, "(steps,) + batch + (m,) of this grid") < 0)
        goto done;
    o.dW_in = a->dW ? PyArray_DATA(a->dW) : NULL;
    o.dZ_in = a->dZ && want_dz ? PyArray_DATA(a->dZ) : NULL;
    if (a->ids) {
        const int64_t *ids = PyArray_DATA(a->ids);
        for (int64_t i = 0; i < B; ++i)
            if (ids[i] < 0) {
                PyErr_Format(PyExc_ValueError, "sample_ids must be >= 0, got %lld", (long long)ids[i]);
                goto done;
            }
        o.ids = (const uint64_t *)ids; /* the same bits for values >= 0 */
    }
    if (a->record && m > 0) {
        if (!(dW = PyArray_SimpleNew(nd + 1, wdims, tn)) || (want_dz && !(dZ = PyArray_SimpleNew(nd + 1, wdims, tn))))
            goto done;
        o.dW_out = PyArray_DATA((PyArrayObject *)dW);
        o.dZ_out = dZ ? PyArray_DATA((PyArrayObject *)dZ) : NULL;
    }
    o.poll = nd_watch_poll;
    o.poll_ctx = &pa.watch;
    nd_sde_stats stats;
    void *yd = PyArray_DATA(y0), *ysd = PyArray_DATA((PyArrayObject *)ys);
    int32_t *sd = PyArray_DATA((PyArrayObject *)status);
    double *td = PyArray_DATA((PyArrayObject *)t_reached);
    Py_BEGIN_ALLOW_THREADS
    if (tn == NPY_FLOAT)
        st = nd_sdeint_f32(&p32, B, d, yd, nt, t, &o, ysd, sd, td, &stats);
    else
        st = nd_sdeint_f64(&p64, B, d, yd, nt, t, &o, ysd, sd, td, &stats);
    Py_END_ALLOW_THREADS
    if (nd_pyargs_raise(&pa, st, "sdeint"))
        goto done;
    if (st != ND_OK && st != ND_ERR_NONFINITE) { /* ND_ERR_INTERRUPTED among them */
        nd_raise_status(st, "sdeint");
        goto done;
    }
    if (!(info = Py_BuildValue("{s:L,s:L,s:L,s:L}", "steps", (long long)stats.steps, "nfev", (long long)stats.nfev,
                               "ngev", (long long)stats.ngev, "failed", (long long)stats.failed)))
        goto done;
    if (st == ND_ERR_NONFINITE) {
        nd_sde_raise_nonfinite(module, y0, a->t, ys, status, t_reached, dW, dZ, info, stats.failed);
        goto done;
    }
    res = PyTuple_Pack(4, ys, dW ? dW : Py_None, dZ ? dZ : Py_None, info);
done:
    nd_pyargs_free(&pa);
    nd_xdecref(4, keep, dW, dZ, info);
    return res;
}
ND_ENTRY(sdeint, nd_sde_args, nd_sde_defaults,
         "sdeint(f, g, y0, t, method='euler_maruyama', noise='diagonal', dt, seed=None, m=0, sample_ids=None, dW=None, "
         "dZ=None, record=False, args=None, dg=None, progress=None) -> (ys, dW | None, dZ | None, info)")

/* ---- gradients ------------------------------------------------------------------------------ */

/* The drift and diffusion, the increments' shape on this grid, the sizes of the gradients and the
 * workspace. */
static int nd_sde_backprop_setup(nd_sde_args *a)
{
    PyArrayObject *y0 = a->y0;
    const int nd = PyArray_NDIM(y0), tn = PyArray_TYPE(y0), general = a->o.noise == ND_SDE_GENERAL;
    const int64_t d = a->d = PyArray_DIM(y0, nd - 1), nt = PyArray_DIM(a->t, 0);
    const double *t = PyArray_DATA(a->t);
    int64_t steps;
    size_t len;
    int st = nd_sde_steps(nt, t, a->o.dt, &steps);
    if (st != ND_OK)
        return st;
    a->B = d ? (int64_t)(PyArray_SIZE(y0) / d) : 0;
    if (!(a->keep = PyList_New(0)) || nd_parse_field(a->f, tn, &a->field, a->keep) < 0 ||
        nd_parse_diffusion(a->g, tn, d, general, &a->diff, a->keep) < 0)
        return -1;
    npy_intp wdims[NPY_MAXDIMS];
    nd_sde_increment_dims(y0, steps, a->diff.m, wdims);
    if (nd_check_shape(a->dW, "dW", nd + 1, wdims, "(steps,) + batch + (m,) of this grid") < 0)
        return -1;
    nd_field sized = a->field;
    sized.batch = a->B;
    a->P = nd_field_param_count(&sized);
    a->n_dg = a->diff.kind == ND_DIFFUSION_LINEAR ? 2 * d : d * (general ? a->diff.m : 1);
    a->work = nd_workspace(nd_sde_backprop_workspace_len(&a->field, a->B, d, nt, t, a->o.dt, &len), &len,
                           PyArray_ITEMSIZE(y0), "sde_backprop");
    return a->work ? ND_OK : -1;
}

static const nd_arg sde_backprop_args[] = {
    ND_OBJ(nd_sde_args, f, "f", ND_ARG_TUPLE, 0), ND_OBJ(nd_sde_args, g, "g", ND_ARG_TUPLE, 0),
    ND_IN(nd_sde_args, y0, "y0", ND_TYPE | ND_FINITE, "(*batch, d)"), ND_F64IN(nd_sde_args, t, "t", 0, "(times,)"),
    ND_SCALAR(nd_sde_args, o.dt, "dt", ND_ARG_DOUBLE, 0), ND_IN(nd_sde_args, dW, "dW", ND_FINITE, NULL),
    ND_IN(nd_sde_args, ybar, "ybar", ND_FINITE, "(times, *y0)"),
    ND_CHOICE(nd_sde_args, o.noise, "noise", ND_OPTIONAL, nd_sde_noise_names), ND_CHECK(nd_sde_backprop_setup),
    ND_KEEP(nd_sde_args, keep), ND_WORK(nd_sde_args, work), ND_DIM(nd_sde_args, P, "params"),
    ND_DIM(nd_sde_args, n_dg, "dg"), ND_OUT(nd_sde_args, res[0], "y0bar", 0, "(*y0)"),
    ND_OUT(nd_sde_args, res[1], "dfield", 0, "(params,)"), ND_OUT(nd_sde_args, res[2], "dg", 0, "(dg,)"), {NULL}};

/* -> (y0bar, dfield [P], dg): Euler-Maruyama backpropagated on the path dW */
static int sde_backprop_run(PyObject *module, void *args, int tn)
{
    nd_sde_args *a = args;
    int st = ND_OK;
    ND_NOGIL(st, ND_DISPATCH(tn, nd_sde_backprop, &a->field, &a->diff, a->o.noise, a->B, a->d, ND_DATA(a->y0),
                             PyArray_DIM(a->t, 0), ND_DATA(a->t), a->o.dt, ND_DATA(a->dW), ND_DATA(a->ybar),
                             ND_DATA(a->res[0]), ND_DATA(a->res[1]), ND_DATA(a->res[2]), a->work));
    if (st == ND_ERR_NONFINITE)
        PyErr_SetString(PyExc_FloatingPointError, "sde_backprop: the replayed states became NaN or inf");
    return st;
}
ND_RUN_ENTRY(sde_backprop, nd_sde_args, nd_sde_defaults,
             "sde_backprop(f, g, y0, t, dt, dW, ybar, noise='diagonal') -> (y0bar, dfield, dg): gradients through "
             "Euler-Maruyama on the path dW")

static const nd_table nd_sde_tables[] = {{"sde_methods", nd_sde_method_names}, {"sde_noises", nd_sde_noise_names}, {NULL}};
ND_FAMILY(nd_sde_family, nd_sde_tables, &sdeint_entry, &sde_backprop_entry);

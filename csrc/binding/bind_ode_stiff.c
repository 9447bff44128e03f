/* Binding of the implicit solvers (nd_ode_stiff.h): odeint_stiff over a Python right-hand side
 * (with an optional Python Jacobian) or a built-in field (with its C Jacobian).
 *
 * The state y0 has shape S + (d,): every index of S is a sample. A Python f sees the rows of
 * the samples that need an evaluation: with S empty, one call per row, f(t: float, y: (d,));
 * otherwise one call per round, f(t: (m, 1), y: (m, d)) for the m rows of that round, each
 * row at its own time. jac(t, y) returns y.shape + (d,). */
#include "nd_bind.h"

#include <string.h>

#include "nd_fields.h"
#include "nd_generic.h"
#include "nd_ode_stiff.h"
#include "nd_status.h"

/* ---- Python callbacks ------------------------------------------------------------------------- */

typedef struct {
    PyObject *f, *jac;
    PyObject **argv; /* [t, y, *args]: slots 0 and 1 are filled per call */
    Py_ssize_t nargs;
    int typenum, single, state_ndim; /* single: y0 has no batch axes; f gets rows one at a time */
    npy_intp state_shape[NPY_MAXDIMS]; /* of one row as f sees it when single: y0.shape */
    int64_t d;
    nd_watch watch;
} nd_stiff_call;

/* Calls fn(t, y, *args) and copies the result, of shape `want` (ndim axes), into out. */
static int nd_stiff_call_one(nd_stiff_call *c, PyObject *fn, const char *what, PyObject *t, PyObject *y, int ndim,
                             const npy_intp *want, void *out)
{
    nd_pyargs pa = {c->argv, c->nargs};
    return nd_pycall_into(fn, &pa, t, y, c->typenum, what, ndim, want,
                          fn == c->jac ? "y.shape + (d,)" : "the shape of y", out);
}

/* m rows through f (per = d values out per row) or jac (per = d * d). */
static int nd_stiff_py_rows(nd_stiff_call *c, int is_jac, int64_t m, const double *t, const void *y, void *out)
{
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *fn = is_jac ? c->jac : c->f;
    const char *what = is_jac ? "jac(t, y)" : "f(t, y)";
    const size_t item = c->typenum == NPY_FLOAT ? sizeof(float) : sizeof(double);
    const size_t row_in = (size_t)c->d * item, row_out = row_in * (is_jac ? (size_t)c->d : 1);
    int ok = 1;
    if (c->single) {
        npy_intp want[NPY_MAXDIMS + 1];
        memcpy(want, c->state_shape, (size_t)c->state_ndim * sizeof(npy_intp));
        int ndim = c->state_ndim;
        if (is_jac) /* (d, d), or (1, 1)... of a scalar state: y.shape + (d,) */
            want[ndim++] = c->d;
        for (int64_t i = 0; ok && i < m; ++i) {
            PyObject *ti = PyFloat_FromDouble(t[i]);
            PyObject *yi = ti ? PyArray_SimpleNew(c->state_ndim, c->state_shape, c->typenum) : NULL;
            if (yi) /* a fresh array per call: f may keep or modify what it is given */
                memcpy(PyArray_DATA((PyArrayObject *)yi), (const char *)y + (size_t)i * row_in, row_in);
            ok = yi && nd_stiff_call_one(c, fn, what, ti, yi, ndim, want, (char *)out + (size_t)i * row_out) == 0;
            Py_XDECREF(ti);
            Py_XDECREF(yi);
        }
    } else {
        npy_intp tdims[2] = {(npy_intp)m, 1}, ydims[2] = {(npy_intp)m, (npy_intp)c->d};
        npy_intp want[3] = {(npy_intp)m, (npy_intp)c->d, (npy_intp)c->d};
        PyObject *ta = PyArray_SimpleNew(2, tdims, NPY_DOUBLE);
        PyObject *ya = ta ? PyArray_SimpleNew(2, ydims, c->typenum) : NULL;
        if (ya) {
            memcpy(PyArray_DATA((PyArrayObject *)ta), t, (size_t)m * sizeof(double));
            memcpy(PyArray_DATA((PyArrayObject *)ya), y, (size_t)m * row_in);
        }
        ok = ya && nd_stiff_call_one(c, fn, what, ta, ya, is_jac ? 3 : 2, want, out) == 0;
        Py_XDECREF(ta);
        Py_XDECREF(ya);
    }
    return nd_watch_callback_done(&c->watch, ok, gil);
}

static int nd_stiff_py_rhs_f32(void *c, int64_t m, int64_t d, const double *t, const float *y, float *dy)
{
    return nd_stiff_py_rows(c, 0, m, t, y, dy);
}
static int nd_stiff_py_rhs_f64(void *c, int64_t m, int64_t d, const double *t, const double *y, double *dy)
{
    return nd_stiff_py_rows(c, 0, m, t, y, dy);
}
static int nd_stiff_py_jac_f32(void *c, int64_t m, int64_t d, const double *t, const float *y, float *J)
{
    return nd_stiff_py_rows(c, 1, m, t, y, J);
}
static int nd_stiff_py_jac_f64(void *c, int64_t m, int64_t d, const double *t, const double *y, double *J)
{
    return nd_stiff_py_rows(c, 1, m, t, y, J);
}

/* ---- odeint_stiff -------------------------------------------------------------------------------- */

typedef struct {
    PyObject *f, *jac, *args, *progress;
    PyArrayObject *y0, *t;
    int method;
    double rtol, atol, dt, max_step;
    int64_t max_steps;
} nd_stiff_args;

static void nd_stiff_defaults(nd_stiff_args *a)
{
    nd_ode_stiff_opts o;
    nd_ode_stiff_opts_default(&o);
    a->method = o.method, a->rtol = o.rtol, a->atol = o.atol, a->dt = o.dt, a->max_step = o.max_step;
    a->max_steps = o.max_steps;
}

static const nd_arg odeint_stiff_args[] = {
    {"f", ND_ARG_OBJECT, 0, offsetof(nd_stiff_args, f), -1, NULL, NULL},
    ND_IN(nd_stiff_args, y0, "y0", ND_TYPE, -1, "(..., d)"),
    {"t", ND_ARG_F64ARRAY, 0, offsetof(nd_stiff_args, t), 1, "(T,)", NULL},
    ND_CHOICE(nd_stiff_args, method, "method", ND_OPTIONAL, nd_stiff_method_names),
    ND_SCALAR(nd_stiff_args, rtol, "rtol", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(nd_stiff_args, atol, "atol", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(nd_stiff_args, dt, "dt", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(nd_stiff_args, max_step, "max_step", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(nd_stiff_args, max_steps, "max_steps", ND_ARG_INT, ND_OPTIONAL),
    {"jac", ND_ARG_OBJECT, ND_OPTIONAL | ND_NONE, offsetof(nd_stiff_args, jac), -1, NULL, NULL},
    ND_OBJ(nd_stiff_args, args, "args", ND_ARG_TUPLE, ND_OPTIONAL),
    ND_PROGRESS(nd_stiff_args, progress),
    {NULL}};

/* The status of one sample as the info dict and IntegrationError name it. */
static const char *nd_stiff_status_key(int status)
{
    switch (status) {
    case ND_OK: return "success";
    case ND_ERR_MAX_STEPS: return "max_steps";
    case ND_ERR_STEP_UNDERFLOW: return "step_underflow";
    case ND_ERR_NONFINITE: return "nonfinite";
    case ND_ERR_SINGULAR: return "singular";
    case ND_ERR_INTERRUPTED: return "interrupted";
    case ND_ERR_CALLBACK: return "callback";
    default: return "error";
    }
}

/* Per-sample counters of the call, B of each. */
typedef struct {
    int64_t *nfev, *njev, *nlu, *accepted, *rejected, *n_out;
    double *t;
    int *status;
} nd_stiff_counts;

/* The raw record neurodyn.ode turns into the user's info dict (the keys of the explicit
 * solvers' record, and the Jacobian and LU counters): per-sample arrays of B values, the status
 * names, and the call's totals. */
static PyObject *nd_stiff_raw(const nd_ode_stiff_stats *st, const nd_stiff_counts *k, npy_intp B)
{
    PyObject *status = PyTuple_New(B), *raw = status ? PyDict_New() : NULL;
    if (!raw) {
        Py_XDECREF(status);
        return NULL;
    }
    for (npy_intp s = 0; s < B; ++s)
        PyTuple_SET_ITEM(status, s, PyUnicode_FromString(nd_stiff_status_key(k->status[s])));
    const int64_t *ints[] = {k->nfev, k->njev, k->nlu, k->accepted, k->rejected, k->n_out};
    const char *int_keys[] = {"nfev", "njev", "nlu", "accepted", "rejected", "n_out"};
    PyObject *items[16];
    int n = 0;
    for (int i = 0; i < 6; ++i)
        items[n++] = PyArray_SimpleNew(1, &B, NPY_INT64);
    items[n++] = PyArray_SimpleNew(1, &B, NPY_DOUBLE);
    items[n++] = PyArray_SimpleNew(1, &B, NPY_INT);
    items[n++] = status;
    const int64_t totals[] = {st->nfev_total, st->njev_total, st->nlu_total, st->rhs_calls, st->jac_calls, st->rounds,
                              st->n_failed};
    for (int i = 0; i < 7; ++i)
        items[n++] = PyLong_FromLongLong((long long)totals[i]);
    const char *keys[] = {"nfev", "njev", "nlu", "accepted", "rejected", "n_out", "t", "status_code", "status",
                          "nfev_total", "njev_total", "nlu_total", "rhs_calls", "jac_calls", "rounds", "n_failed"};
    int ok = 1;
    for (int i = 0; i < n; ++i) {
        ok = ok && items[i];
        if (ok && i < 6 && B)
            memcpy(PyArray_DATA((PyArrayObject *)items[i]), ints[i], (size_t)B * sizeof(int64_t));
        if (ok && i == 6 && B)
            memcpy(PyArray_DATA((PyArrayObject *)items[i]), k->t, (size_t)B * sizeof(double));
        if (ok && i == 7 && B)
            memcpy(PyArray_DATA((PyArrayObject *)items[i]), k->status, (size_t)B * sizeof(int));
        ok = ok && PyDict_SetItemString(raw, i < 6 ? int_keys[i] : keys[i], items[i]) == 0;
    }
    for (int i = 0; i < n; ++i)
        Py_XDECREF(items[i]);
    if (!ok)
        Py_CLEAR(raw);
    return raw;
}

/* -> (ys [T] + y0.shape, y_last (y0.shape), raw record); a sample's failure is in the record */
static PyObject *odeint_stiff_body(PyObject *module, void *args, int tn)
{
    nd_stiff_args *a = args;
    const int ndim = PyArray_NDIM(a->y0);
    if (ndim >= NPY_MAXDIMS)
        return PyErr_Format(PyExc_ValueError, "y0 has too many axes");
    const int is_field = !PyCallable_Check(a->f);
    if (is_field && a->jac)
        return PyErr_Format(PyExc_TypeError, "jac is for a callable f: a built-in field has its own Jacobian");
    if (a->jac && !PyCallable_Check(a->jac))
        return PyErr_Format(PyExc_TypeError, "jac must be callable or None, got %s", Py_TYPE(a->jac)->tp_name);
    /* samples: the leading axes of y0; a 0-d or 1-d y0 is one sample */
    const int nb = ndim > 1 ? ndim - 1 : 0;
    const int64_t d = ndim == 0 ? 1 : PyArray_DIM(a->y0, ndim - 1);
    const int64_t B = d ? (int64_t)(PyArray_SIZE(a->y0) / d) : (nb ? (int64_t)PyArray_MultiplyList(PyArray_DIMS(a->y0), nb) : 1);
    const int64_t nt = PyArray_DIM(a->t, 0);
    const size_t item = (size_t)PyArray_ITEMSIZE(a->y0);

    nd_stiff_call c = {0};
    nd_field field;
    PyObject *keep = NULL, *ys = NULL, *y_last = NULL, *info = NULL, *res = NULL;
    void *work = NULL, *fwork = NULL;
    nd_stiff_counts k = {0};
    size_t bytes, flen = 0;
    int st = nd_ode_stiff_workspace_size(a->method, B, d, item, &bytes);
    if (st != ND_OK) {
        nd_raise_status(st, "odeint");
        goto done;
    }
    if (is_field) {
        if (!(keep = PyList_New(0)) || nd_parse_field(a->f, tn, &field, keep) < 0 ||
            nd_bind_field_rows(&field, a->y0, "y0", B * nd_ode_stiff_max_rows(d)) < 0)
            goto done;
        if ((st = nd_field_jac_workspace_len(&field, &flen)) != ND_OK) {
            nd_raise_status(st, "vector field");
            goto done;
        }
        if (!(fwork = nd_work_alloc(flen, item)))
            goto done;
        field.work = fwork;
    } else {
        c.f = a->f;
        c.jac = a->jac;
        c.nargs = a->args ? PyTuple_GET_SIZE(a->args) : 0;
        if (!(c.argv = PyMem_Calloc((size_t)(2 + c.nargs), sizeof(PyObject *)))) {
            PyErr_NoMemory();
            goto done;
        }
        for (Py_ssize_t i = 0; i < c.nargs; ++i)
            c.argv[2 + i] = PyTuple_GET_ITEM(a->args, i);
        c.typenum = tn;
        c.d = d;
        c.single = nb == 0;
        c.state_ndim = ndim;
        if (ndim)
            memcpy(c.state_shape, PyArray_DIMS(a->y0), (size_t)ndim * sizeof(npy_intp));
    }
    c.watch.progress = a->progress;
    const size_t ub = (size_t)(B ? B : 1);
    k.nfev = PyMem_RawCalloc(6 * ub, sizeof(int64_t));
    k.t = PyMem_RawCalloc(ub, sizeof(double));
    k.status = PyMem_RawCalloc(ub, sizeof(int));
    if (!(work = nd_work_alloc(bytes, 1)) || !k.nfev || !k.t || !k.status) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto done;
    }
    k.njev = k.nfev + ub, k.nlu = k.njev + ub, k.accepted = k.nlu + ub, k.rejected = k.accepted + ub;
    k.n_out = k.rejected + ub;
    npy_intp dims[NPY_MAXDIMS];
    dims[0] = (npy_intp)nt;
    if (ndim)
        memcpy(dims + 1, PyArray_DIMS(a->y0), (size_t)ndim * sizeof(npy_intp));
    if (!(ys = PyArray_SimpleNew(ndim + 1, dims, tn)) || !(y_last = PyArray_SimpleNew(ndim, dims + 1, tn)))
        goto done;

    nd_ode_stiff_opts o;
    nd_ode_stiff_opts_default(&o);
    o.method = a->method, o.rtol = a->rtol, o.atol = a->atol, o.dt = a->dt, o.max_step = a->max_step;
    o.max_steps = a->max_steps;
    o.poll = nd_watch_poll;
    o.poll_ctx = &c.watch;
    nd_ode_stiff_stats stats = {k.nfev, k.njev, k.nlu, k.accepted, k.rejected, k.n_out, k.t, k.status, 0, 0, 0, 0, 0, 0, 0};
    const double *t = PyArray_DATA(a->t);
    void *y0 = PyArray_DATA(a->y0), *ysd = PyArray_DATA((PyArrayObject *)ys);
    void *yl = PyArray_DATA((PyArrayObject *)y_last);
    Py_BEGIN_ALLOW_THREADS
    if (tn == NPY_FLOAT)
        st = is_field ? nd_odeint_stiff_f32(nd_field_eval_rows_f32, &field, nd_field_jac_rows_f32, &field, B, d, y0, nt,
                                            t, &o, ysd, yl, work, &stats)
                      : nd_odeint_stiff_f32(nd_stiff_py_rhs_f32, &c, c.jac ? nd_stiff_py_jac_f32 : NULL, &c, B, d, y0,
                                            nt, t, &o, ysd, yl, work, &stats);
    else
        st = is_field ? nd_odeint_stiff_f64(nd_field_eval_rows_f64, &field, nd_field_jac_rows_f64, &field, B, d, y0, nt,
                                            t, &o, ysd, yl, work, &stats)
                      : nd_odeint_stiff_f64(nd_stiff_py_rhs_f64, &c, c.jac ? nd_stiff_py_jac_f64 : NULL, &c, B, d, y0,
                                            nt, t, &o, ysd, yl, work, &stats);
    Py_END_ALLOW_THREADS
    if (nd_watch_reraise(&c.watch)) /* the callback's own exception, or KeyboardInterrupt */
        goto done;
    if (st == ND_ERR_ARG || st == ND_ERR_OVERFLOW || st == ND_ERR_NOMEM || st == ND_ERR_CALLBACK) {
        nd_raise_status(st, "odeint");
        goto done;
    }
    if ((info = nd_stiff_raw(&stats, &k, (npy_intp)B)))
        res = PyTuple_Pack(3, ys, y_last, info);
done:
    nd_watch_clear(&c.watch);
    PyMem_Free(c.argv);
    PyMem_RawFree(work);
    PyMem_RawFree(fwork);
    PyMem_RawFree(k.nfev);
    PyMem_RawFree(k.t);
    PyMem_RawFree(k.status);
    nd_xdecref(4, keep, ys, y_last, info);
    return res;
}
ND_ENTRY(odeint_stiff, nd_stiff_args, nd_stiff_defaults,
         "odeint_stiff(f, y0, t, method='radau', rtol, atol, dt, max_step, max_steps, jac=None, args=(), "
         "progress=None) -> (ys, y_last, raw): implicit integration of every sample of y0 (its leading axes) on "
         "its own")

static const nd_table nd_ode_stiff_tables[] = {{"stiff_methods", nd_stiff_method_names}, {NULL, NULL}};
static const nd_entry *const nd_ode_stiff_entries[] = {&odeint_stiff_entry, NULL};
const nd_family nd_ode_stiff_family = {nd_ode_stiff_entries, nd_ode_stiff_tables, NULL};

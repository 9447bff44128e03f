/* Binding of the ODE family: odeint (Python or built-in right-hand side), field_eval,
 * solve_ltc. Arguments of meaning (method names, tolerance ranges) are checked in
 * neurodyn/ode.py; this file checks what memory safety needs and runs the kernels with the
 * GIL released. */
#include "nd_bind.h"

#include <math.h>
#include <string.h>

#include "nd_fields.h"
#include "nd_generic.h"
#include "nd_ode.h"
#include "nd_ode_samples.h"
#include "nd_status.h"

/* ---- the state of one call, shared with the callbacks -------------------------------- */

typedef struct {
    /* Python right-hand side: f(t, y, *args) */
    PyObject *f;
    PyObject **argv; /* [t, y, *args]: slots 0 and 1 are filled per call */
    Py_ssize_t nargs;
    int typenum, ndim;
    npy_intp shape[NPY_MAXDIMS];
    size_t nbytes;
    /* Ctrl-C, progress, and the first exception of f, re-raised by the calling thread */
    nd_watch watch;
    /* accepted steps as (t, h) pairs, when recorded; with a tape also the output rows each
     * step filled and the state at its start (the replay data of the backward pass) */
    double *steps;
    int64_t *outs;
    char *states;
    size_t n_steps, cap_steps, state_bytes;
    int steps_nomem, record_tape;
    int state_typenum, state_ndim;
    npy_intp state_shape[NPY_MAXDIMS];
} nd_call;

static void nd_call_free(nd_call *c)
{
    nd_watch_clear(&c->watch);
    PyMem_Free(c->argv);
    PyMem_RawFree(c->steps);
    PyMem_RawFree(c->outs);
    PyMem_RawFree(c->states);
    c->argv = NULL;
    c->steps = NULL;
    c->outs = NULL;
    c->states = NULL;
}

/* Copies f's return value into dy after checking its kind and shape. */
static int nd_copy_derivative(nd_call *c, PyObject *res, void *dy)
{
    PyArrayObject *a = nd_float_array(res, c->typenum, "the value returned by f");
    if (!a)
        return -1;
    int same = PyArray_NDIM(a) == c->ndim;
    for (int i = 0; same && i < c->ndim; ++i)
        same = PyArray_DIM(a, i) == c->shape[i];
    if (!same) {
        PyObject *got = nd_shape_str(PyArray_NDIM(a), PyArray_DIMS(a));
        PyObject *want = nd_shape_str(c->ndim, c->shape);
        if (got && want)
            PyErr_Format(PyExc_ValueError, "f(t, y) returned an array of shape %S; expected %S, the shape of y0",
                         got, want);
        Py_XDECREF(got);
        Py_XDECREF(want);
        Py_DECREF(a);
        return -1;
    }
    memcpy(dy, PyArray_DATA(a), c->nbytes);
    Py_DECREF(a);
    return 0;
}

/* The solver runs without the GIL; each evaluation of a Python f takes it for the call. */
static int nd_py_rhs(nd_call *c, double t, const void *y, void *dy)
{
    PyGILState_STATE gil = PyGILState_Ensure();
    int ok = 0;
    PyObject *ty = PyFloat_FromDouble(t);
    PyObject *arr = ty ? PyArray_SimpleNew(c->ndim, c->shape, c->typenum) : NULL;
    if (arr) {
        /* A fresh array per call: f may keep or modify what it is given. */
        memcpy(PyArray_DATA((PyArrayObject *)arr), y, c->nbytes);
        c->argv[0] = ty;
        c->argv[1] = arr;
        PyObject *res = PyObject_Vectorcall(c->f, c->argv, (size_t)(2 + c->nargs), NULL);
        if (res) {
            ok = nd_copy_derivative(c, res, dy) == 0;
            Py_DECREF(res);
        }
        c->argv[0] = c->argv[1] = NULL;
    }
    Py_XDECREF(arr);
    Py_XDECREF(ty);
    return nd_watch_callback_done(&c->watch, ok, gil);
}

static int nd_py_rhs_f32(void *c, double t, const float *y, float *dy) { return nd_py_rhs(c, t, y, dy); }
static int nd_py_rhs_f64(void *c, double t, const double *y, double *dy) { return nd_py_rhs(c, t, y, dy); }

/* Grows *buf to hold `cap` records of `size` bytes; 0 on overflow or allocation failure. */
static int nd_grow(void **buf, size_t cap, size_t size)
{
    size_t bytes;
    if (!nd_mul_size(cap, size, &bytes))
        return 0;
    void *p = PyMem_RawRealloc(*buf, bytes ? bytes : 1);
    if (!p)
        return 0;
    *buf = p;
    return 1;
}

static void nd_record_step(void *ctx, double t, double h, const void *y, int64_t out_lo, int64_t out_hi)
{
    nd_call *c = ctx;
    if (c->steps_nomem)
        return;
    if (c->n_steps == c->cap_steps) {
        size_t cap = c->cap_steps ? 2 * c->cap_steps : 256;
        if (!nd_grow((void **)&c->steps, cap, 2 * sizeof(double)) ||
            (c->record_tape && (!nd_grow((void **)&c->outs, cap, 2 * sizeof(int64_t)) ||
                                !nd_grow((void **)&c->states, cap, c->state_bytes)))) {
            c->steps_nomem = 1;
            return;
        }
        c->cap_steps = cap;
    }
    c->steps[2 * c->n_steps] = t;
    c->steps[2 * c->n_steps + 1] = h;
    if (c->record_tape) {
        c->outs[2 * c->n_steps] = out_lo;
        c->outs[2 * c->n_steps + 1] = out_hi;
        memcpy(c->states + c->n_steps * c->state_bytes, y, c->state_bytes);
    }
    c->n_steps++;
}

/* ---- built-in fields ------------------------------------------------------------------- */

/* Converts one parameter to the state's dtype, checks its shape, and keeps it alive in `keep`.
 * ndim 1 checks d0 only; ndim 2 checks d0 (if >= 0) and d1 (if >= 0). */
static const void *nd_field_param(PyObject *obj, int typenum, int ndim, npy_intp d0, npy_intp d1,
                                  const char *name, PyObject *keep)
{
    PyArrayObject *a = nd_float_array(obj, typenum, name);
    if (!a)
        return NULL;
    int ok = PyArray_NDIM(a) == ndim && (d0 < 0 || PyArray_DIM(a, 0) == d0) &&
             (ndim < 2 || d1 < 0 || PyArray_DIM(a, 1) == d1);
    if (!ok) {
        PyObject *got = nd_shape_str(PyArray_NDIM(a), PyArray_DIMS(a));
        if (got)
            PyErr_Format(PyExc_ValueError, "%s has shape %S, which does not fit the field", name, got);
        Py_XDECREF(got);
        Py_DECREF(a);
        return NULL;
    }
    if (nd_check_finite(a, name) < 0 || PyList_Append(keep, (PyObject *)a) < 0) {
        Py_DECREF(a);
        return NULL;
    }
    Py_DECREF(a); /* `keep` holds it */
    return PyArray_DATA(a);
}

/* spec = (kind, params, acts, consts) as built by neurodyn.fields. */
int nd_parse_field(PyObject *spec, int typenum, nd_field *f, PyObject *keep)
{
    int kind;
    PyObject *params, *acts, *consts;
    if (!PyArg_ParseTuple(spec, "iO!O!O!;field spec", &kind, &PyTuple_Type, &params, &PyTuple_Type, &acts,
                          &PyTuple_Type, &consts))
        return -1;
    memset(f, 0, sizeof *f);
    f->kind = kind;
    Py_ssize_t np_ = PyTuple_GET_SIZE(params);
    if (kind == ND_FIELD_LINEAR) {
        if (np_ != 2)
            goto bad;
        PyArrayObject *A = nd_float_array(PyTuple_GET_ITEM(params, 0), typenum, "A");
        if (!A)
            return -1;
        npy_intp n = PyArray_NDIM(A) == 2 ? PyArray_DIM(A, 0) : -1;
        Py_DECREF(A);
        if (n < 0) {
            PyErr_SetString(PyExc_ValueError, "A must be a square matrix");
            return -1;
        }
        if (!(f->A = nd_field_param(PyTuple_GET_ITEM(params, 0), typenum, 2, n, n, "A", keep)))
            return -1;
        PyObject *b = PyTuple_GET_ITEM(params, 1);
        if (b != Py_None && !(f->b = nd_field_param(b, typenum, 1, n, 0, "b", keep)))
            return -1;
        f->dim = n;
    } else if (kind == ND_FIELD_LORENZ) {
        if (!PyArg_ParseTuple(consts, "ddd;Lorenz constants", &f->sigma, &f->rho, &f->beta))
            return -1;
        f->dim = 3;
    } else if (kind == ND_FIELD_MLP) {
        Py_ssize_t L = PyTuple_GET_SIZE(acts);
        if (L < 1 || L > ND_FIELD_MAX_LAYERS || np_ != 2 * L)
            goto bad;
        f->n_layers = (int)L;
        for (Py_ssize_t l = 0; l < L; ++l) {
            char wname[32], bname[32];
            snprintf(wname, sizeof wname, "weights[%zd]", l);
            snprintf(bname, sizeof bname, "biases[%zd]", l);
            npy_intp in = l == 0 ? -1 : f->widths[l];
            if (!(f->weights[l] = nd_field_param(PyTuple_GET_ITEM(params, 2 * l), typenum, 2, in, -1, wname, keep)))
                return -1;
            PyArrayObject *w = (PyArrayObject *)PyList_GET_ITEM(keep, PyList_GET_SIZE(keep) - 1);
            if (l == 0)
                f->widths[0] = PyArray_DIM(w, 0);
            f->widths[l + 1] = PyArray_DIM(w, 1);
            PyObject *b = PyTuple_GET_ITEM(params, 2 * l + 1);
            if (b != Py_None && !(f->biases[l] = nd_field_param(b, typenum, 1, f->widths[l + 1], 0, bname, keep)))
                return -1;
            f->acts[l] = (int)PyLong_AsLong(PyTuple_GET_ITEM(acts, l));
            if (f->acts[l] == -1 && PyErr_Occurred())
                return -1;
        }
        f->dim = f->widths[0];
        if (f->widths[L] != f->dim) {
            PyErr_Format(PyExc_ValueError, "the last layer has %lld outputs; a vector field needs %lld (its input size)",
                         (long long)f->widths[L], (long long)f->dim);
            return -1;
        }
    } else if (kind == ND_FIELD_HYBRID) {
        return nd_hybrid_parse_field(params, acts, consts, typenum, f, keep);
    } else {
        goto bad;
    }
    return 0;
bad:
    PyErr_SetString(PyExc_ValueError, "malformed field spec");
    return -1;
}

/* Sets f->batch from the state's shape; the last axis must be the field's dimension. */
static int nd_field_bind_state(nd_field *f, PyArrayObject *y, const char *name)
{
    if (PyArray_NDIM(y) < 1 || PyArray_DIM(y, PyArray_NDIM(y) - 1) != f->dim) {
        PyObject *got = nd_shape_str(PyArray_NDIM(y), PyArray_DIMS(y));
        if (got)
            PyErr_Format(PyExc_ValueError, "%s has shape %S; this field needs its last axis of size %lld",
                         name, got, (long long)f->dim);
        Py_XDECREF(got);
        return -1;
    }
    f->batch = f->dim ? (int64_t)(PyArray_SIZE(y) / f->dim) : 0;
    int st = nd_field_check(f);
    if (st != ND_OK) {
        nd_raise_status(st, "vector field");
        return -1;
    }
    return 0;
}

/* ---- odeint ----------------------------------------------------------------------------- */

static const char *nd_ode_status_key(int status)
{
    switch (status) {
    case ND_OK: return "success";
    case ND_ERR_MAX_STEPS: return "max_steps";
    case ND_ERR_STEP_UNDERFLOW: return "step_underflow";
    case ND_ERR_NONFINITE: return "nonfinite";
    case ND_ERR_INTERRUPTED: return "interrupted";
    default: return "error";
    }
}

static PyObject *nd_ode_info(const nd_ode_stats *st, nd_call *c, int record)
{
    PyObject *info = Py_BuildValue("{s:L,s:L,s:L,s:s}", "nfev", (long long)st->nfev, "accepted",
                                   (long long)st->accepted, "rejected", (long long)st->rejected, "status",
                                   nd_ode_status_key(st->status));
    if (!info || !record)
        return info;
    npy_intp dims[2] = {(npy_intp)c->n_steps, 2};
    PyObject *steps = PyArray_SimpleNew(2, dims, NPY_DOUBLE);
    if (!steps || PyDict_SetItemString(info, "steps", steps) < 0) {
        Py_XDECREF(steps);
        Py_DECREF(info);
        return NULL;
    }
    if (c->n_steps)
        memcpy(PyArray_DATA((PyArrayObject *)steps), c->steps, c->n_steps * 2 * sizeof(double));
    Py_DECREF(steps);
    if (c->record_tape) {
        /* "tape": (out rows [steps, 2] int64, states [steps] + y0.shape). The states can be
         * large (steps x state), so their buffer becomes the array's memory instead of being
         * copied. */
        PyObject *outs = PyArray_SimpleNew(2, dims, NPY_INT64);
        if (c->n_steps && c->n_steps < c->cap_steps) {
            /* give back the unused capacity of the growth strategy */
            void *fit = PyMem_RawRealloc(c->states, c->n_steps * c->state_bytes);
            if (fit)
                c->states = fit;
        }
        npy_intp sdims[NPY_MAXDIMS];
        sdims[0] = (npy_intp)c->n_steps;
        memcpy(sdims + 1, c->state_shape, (size_t)c->state_ndim * sizeof(npy_intp));
        PyObject *states = outs ? nd_array_adopt((void **)&c->states, c->state_ndim + 1, sdims, c->state_typenum)
                                : NULL;
        PyObject *tape = states ? PyTuple_Pack(2, outs, states) : NULL;
        if (tape && c->n_steps)
            memcpy(PyArray_DATA((PyArrayObject *)outs), c->outs, c->n_steps * 2 * sizeof(int64_t));
        int bad = !tape || PyDict_SetItemString(info, "tape", tape) < 0;
        Py_XDECREF(outs);
        Py_XDECREF(states);
        Py_XDECREF(tape);
        if (bad) {
            Py_DECREF(info);
            return NULL;
        }
    }
    return info;
}

/* The failure of odeint, carrying the time reached and the solution so far. */
static void nd_raise_integration_error(PyObject *module, const nd_ode_stats *st, const nd_ode_opts *o,
                                       PyArrayObject *ta, PyArrayObject *ys, PyObject *y_last, PyObject *info)
{
    const double t_end = ((const double *)PyArray_DATA(ta))[PyArray_DIM(ta, 0) - 1];
    char reason[96];
    if (st->status == ND_ERR_MAX_STEPS)
        snprintf(reason, sizeof reason, "max_steps=%lld steps were used", (long long)o->max_steps);
    else
        snprintf(reason, sizeof reason, "%s", nd_status_str(st->status));
    PyObject *filled = PySequence_GetSlice((PyObject *)ys, 0, st->n_out);
    PyObject *ts = PySequence_GetSlice((PyObject *)ta, 0, st->n_out);
    PyObject *attrs = (filled && ts) ? Py_BuildValue("{s:d,s:O,s:O,s:O,s:O,s:O}", "t", st->t, "y", y_last, "ts", ts,
                                                     "ys", filled, "status", PyDict_GetItemString(info, "status"),
                                                     "info", info)
                                     : NULL;
    PyObject *tr = PyFloat_FromDouble(st->t), *te = PyFloat_FromDouble(t_end);
    PyObject *msg = (attrs && tr && te) ? PyUnicode_FromFormat("%s stopped at t=%R before reaching t=%R: %s",
                                                              nd_ode_method_name(o->method), tr, te, reason)
                                        : NULL;
    if (msg)
        nd_set_integration_error(module, msg, attrs);
    Py_XDECREF(msg);
    Py_XDECREF(tr);
    Py_XDECREF(te);
    Py_XDECREF(attrs);
    Py_XDECREF(filled);
    Py_XDECREF(ts);
}

static PyObject *odeint(PyObject *module, PyObject *a, PyObject *kw)
{
    static char *kwlist[] = {"rhs",       "y0",   "t",     "method",       "rtol",     "atol", "dt",
                             "max_steps", "args", "record_steps", "progress", NULL};
    PyObject *rhs, *y0obj, *tobj, *args = NULL, *progress = Py_None;
    nd_ode_opts o;
    nd_ode_opts_default(&o);
    long long max_steps = o.max_steps;
    int record = 0;
    if (!PyArg_ParseTupleAndKeywords(a, kw, "OOO|idddLO!iO:odeint", kwlist, &rhs, &y0obj, &tobj, &o.method, &o.rtol,
                                     &o.atol, &o.dt, &max_steps, &PyTuple_Type, &args, &record, &progress))
        return NULL;
    if (progress != Py_None && !PyCallable_Check(progress))
        return PyErr_Format(PyExc_TypeError, "progress must be callable or None");
    o.max_steps = max_steps;
    if (!nd_ode_method_name(o.method))
        return PyErr_Format(PyExc_ValueError, "unknown ODE method code %d", o.method);

    nd_call c = {0};
    nd_field field;
    PyArrayObject *y0 = NULL, *ta = NULL, *ys = NULL;
    PyObject *keep = NULL, *y_last = NULL, *info = NULL, *result = NULL;
    void *work = NULL;

    int typenum = nd_resolve_float_type(y0obj, "y0");
    if (typenum < 0 || !(y0 = nd_float_array(y0obj, typenum, "y0")) || nd_check_finite(y0, "y0") < 0)
        goto done;
    if (!(ta = (PyArrayObject *)PyArray_FROMANY(tobj, NPY_DOUBLE, 1, 1, NPY_ARRAY_IN_ARRAY)))
        goto done;
    const npy_intp nt = PyArray_DIM(ta, 0);
    if (nt < 1) {
        PyErr_SetString(PyExc_ValueError, "t must hold at least one time");
        goto done;
    }
    if (PyArray_NDIM(y0) >= NPY_MAXDIMS) {
        PyErr_SetString(PyExc_ValueError, "y0 has too many dimensions");
        goto done;
    }
    const int64_t n = (int64_t)PyArray_SIZE(y0);
    const size_t itemsize = (size_t)PyArray_ITEMSIZE(y0);

    size_t work_len, field_len = 0;
    int st = nd_odeint_workspace_len(o.method, n, &work_len);
    int is_field = !PyCallable_Check(rhs);
    if (is_field) {
        if (!PyTuple_Check(rhs)) {
            PyErr_SetString(PyExc_TypeError, "f must be callable or a neurodyn.fields vector field");
            goto done;
        }
        if (!(keep = PyList_New(0)) || nd_parse_field(rhs, typenum, &field, keep) < 0 ||
            nd_field_bind_state(&field, y0, "y0") < 0)
            goto done;
        if (st == ND_OK)
            st = nd_field_workspace_len(&field, &field_len);
        if (st == ND_OK && work_len > SIZE_MAX - field_len)
            st = ND_ERR_OVERFLOW;
    } else {
        c.f = rhs;
        c.nargs = args ? PyTuple_GET_SIZE(args) : 0;
        if (!(c.argv = PyMem_Calloc((size_t)(2 + c.nargs), sizeof(PyObject *)))) {
            PyErr_NoMemory();
            goto done;
        }
        for (Py_ssize_t i = 0; i < c.nargs; ++i)
            c.argv[2 + i] = PyTuple_GET_ITEM(args, i);
        c.typenum = typenum;
        c.ndim = PyArray_NDIM(y0);
        if (c.ndim > 0) /* a 0-d array's dims pointer may be NULL: not for memcpy */
            memcpy(c.shape, PyArray_DIMS(y0), (size_t)c.ndim * sizeof(npy_intp));
        c.nbytes = (size_t)n * itemsize;
    }
    size_t bytes;
    if (st != ND_OK || !nd_mul_size(work_len + field_len, itemsize, &bytes)) {
        nd_raise_status(st != ND_OK ? st : ND_ERR_OVERFLOW, "odeint workspace");
        goto done;
    }
    if (!(work = PyMem_RawMalloc(bytes ? bytes : 1))) {
        PyErr_NoMemory();
        goto done;
    }
    if (is_field)
        field.work = (char *)work + work_len * itemsize;

    npy_intp dims[NPY_MAXDIMS];
    dims[0] = nt;
    if (PyArray_NDIM(y0) > 0)
        memcpy(dims + 1, PyArray_DIMS(y0), (size_t)PyArray_NDIM(y0) * sizeof(npy_intp));
    if (!(ys = (PyArrayObject *)PyArray_SimpleNew(PyArray_NDIM(y0) + 1, dims, typenum)) ||
        !(y_last = PyArray_SimpleNew(PyArray_NDIM(y0), PyArray_DIMS(y0), typenum)))
        goto done;
    if (record) {
        o.on_step = nd_record_step;
        o.step_ctx = &c;
        c.record_tape = record > 1;
        c.state_bytes = (size_t)n * itemsize;
        c.state_typenum = typenum;
        c.state_ndim = PyArray_NDIM(y0);
        if (c.state_ndim > 0)
            memcpy(c.state_shape, PyArray_DIMS(y0), (size_t)c.state_ndim * sizeof(npy_intp));
    }

    c.watch.progress = progress == Py_None ? NULL : progress;
    o.poll = nd_watch_poll;
    o.poll_ctx = &c.watch;
    nd_ode_stats stats;
    const double *t = PyArray_DATA(ta);
    void *yd = PyArray_DATA(y0), *ysd = PyArray_DATA(ys), *yl = PyArray_DATA((PyArrayObject *)y_last);
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT)
        st = nd_odeint_f32(is_field ? nd_field_eval_f32 : nd_py_rhs_f32, is_field ? (void *)&field : (void *)&c, n,
                           yd, nt, t, &o, ysd, yl, work, &stats);
    else
        st = nd_odeint_f64(is_field ? nd_field_eval_f64 : nd_py_rhs_f64, is_field ? (void *)&field : (void *)&c, n,
                           yd, nt, t, &o, ysd, yl, work, &stats);
    Py_END_ALLOW_THREADS

    if (nd_watch_reraise(&c.watch)) /* the user's own exception (or KeyboardInterrupt), with its traceback */
        goto done;
    if (c.steps_nomem) {
        PyErr_NoMemory();
        goto done;
    }
    if (st == ND_ERR_ARG || st == ND_ERR_OVERFLOW || st == ND_ERR_NOMEM || st == ND_ERR_CALLBACK) {
        nd_raise_status(st, "odeint");
        goto done;
    }
    if (!(info = nd_ode_info(&stats, &c, record)))
        goto done;
    if (st != ND_OK) {
        nd_raise_integration_error(module, &stats, &o, ta, ys, y_last, info);
        goto done;
    }
    result = PyTuple_Pack(2, (PyObject *)ys, info);

done:
    nd_call_free(&c);
    PyMem_RawFree(work);
    Py_XDECREF(y0);
    Py_XDECREF(ta);
    Py_XDECREF(ys);
    Py_XDECREF(y_last);
    Py_XDECREF(info);
    Py_XDECREF(keep);
    return result;
}

/* ---- field_eval ------------------------------------------------------------------------- */

static PyObject *field_eval(PyObject *module, PyObject *a, PyObject *kw)
{
    static char *kwlist[] = {"spec", "t", "y", NULL};
    PyObject *spec, *yobj;
    double t;
    if (!PyArg_ParseTupleAndKeywords(a, kw, "O!dO:field_eval", kwlist, &PyTuple_Type, &spec, &t, &yobj))
        return NULL;
    nd_field field;
    PyArrayObject *y = NULL;
    PyObject *keep = NULL, *dy = NULL;
    void *work = NULL;
    size_t len = 0, bytes;
    if (!isfinite(t)) {
        PyErr_SetString(PyExc_ValueError, "t must be finite");
        return NULL;
    }
    int typenum = nd_resolve_float_type(yobj, "y");
    if (typenum < 0 || !(y = nd_float_array(yobj, typenum, "y")) || nd_check_finite(y, "y") < 0 ||
        !(keep = PyList_New(0)) || nd_parse_field(spec, typenum, &field, keep) < 0 ||
        nd_field_bind_state(&field, y, "y") < 0)
        goto fail;
    int st = nd_field_workspace_len(&field, &len);
    if (st != ND_OK || !nd_mul_size(len, (size_t)PyArray_ITEMSIZE(y), &bytes)) {
        nd_raise_status(st != ND_OK ? st : ND_ERR_OVERFLOW, "field workspace");
        goto fail;
    }
    if (!(work = PyMem_RawMalloc(bytes ? bytes : 1))) {
        PyErr_NoMemory();
        goto fail;
    }
    field.work = work;
    if (!(dy = PyArray_SimpleNew(PyArray_NDIM(y), PyArray_DIMS(y), typenum)))
        goto fail;
    void *yd = PyArray_DATA(y), *dyd = PyArray_DATA((PyArrayObject *)dy);
    Py_BEGIN_ALLOW_THREADS
    st = typenum == NPY_FLOAT ? nd_field_eval_f32(&field, t, yd, dyd) : nd_field_eval_f64(&field, t, yd, dyd);
    Py_END_ALLOW_THREADS
    if (st != ND_OK) {
        nd_raise_status(st, "field_eval");
        goto fail;
    }
    PyMem_RawFree(work);
    Py_DECREF(y);
    Py_DECREF(keep);
    return dy;
fail:
    PyMem_RawFree(work);
    Py_XDECREF(y);
    Py_XDECREF(keep);
    Py_XDECREF(dy);
    return NULL;
}

/* ---- gradients of odeint through a built-in field -------------------------------------- */

/* Parses the field and the cotangents ybar [nt] + state shape; allocates the field's workspace
 * and the outputs y0bar (state shape) and dparams [P]. */
static int nd_grad_setup(PyObject *spec, PyObject *ybar_obj, npy_intp nt, int keep_slots, nd_field *field,
                         PyObject *keep, PyArrayObject **ybar, void **fwork, PyObject **y0bar, PyObject **dparams)
{
    int typenum = nd_resolve_float_type(ybar_obj, "ybar");
    if (typenum < 0 || !(*ybar = nd_float_array(ybar_obj, typenum, "ybar")) || nd_check_finite(*ybar, "ybar") < 0)
        return -1;
    if (PyArray_NDIM(*ybar) < 2 || PyArray_DIM(*ybar, 0) != nt) {
        PyErr_SetString(PyExc_ValueError, "ybar must have shape (len(t),) + state shape");
        return -1;
    }
    /* The state is one row of ybar. */
    PyArrayObject *row = (PyArrayObject *)PySequence_GetItem((PyObject *)*ybar, 0);
    if (!row)
        return -1;
    int bad = nd_parse_field(spec, typenum, field, keep) < 0 || nd_field_bind_state(field, row, "the state") < 0;
    if (!bad)
        *y0bar = PyArray_SimpleNew(PyArray_NDIM(row), PyArray_DIMS(row), typenum);
    Py_DECREF(row);
    if (bad || !*y0bar)
        return -1;
    field->keep_slots = keep_slots;
    size_t len, bytes;
    int st = nd_field_workspace_len(field, &len);
    if (st != ND_OK || !nd_mul_size(len, (size_t)PyArray_ITEMSIZE(*ybar), &bytes)) {
        nd_raise_status(st != ND_OK ? st : ND_ERR_OVERFLOW, "field workspace");
        return -1;
    }
    if (!(*fwork = PyMem_RawMalloc(bytes ? bytes : 1))) {
        PyErr_NoMemory();
        return -1;
    }
    field->work = *fwork;
    npy_intp P = (npy_intp)nd_field_param_count(field);
    *dparams = PyArray_SimpleNew(1, &P, typenum);
    return *dparams ? typenum : -1;
}

static PyObject *ode_backprop(PyObject *module, PyObject *a, PyObject *kw)
{
    static char *kwlist[] = {"spec", "t", "steps", "outs", "states", "ybar", "method", NULL};
    PyObject *spec, *tobj, *steps_obj, *outs_obj, *states_obj, *ybar_obj;
    int method;
    if (!PyArg_ParseTupleAndKeywords(a, kw, "O!OOOOOi:ode_backprop", kwlist, &PyTuple_Type, &spec, &tobj, &steps_obj,
                                     &outs_obj, &states_obj, &ybar_obj, &method))
        return NULL;
    if (!nd_ode_method_name(method))
        return PyErr_Format(PyExc_ValueError, "unknown ODE method code %d", method);
    PyArrayObject *ta = NULL, *steps = NULL, *outs = NULL, *states = NULL, *ybar = NULL;
    PyObject *keep = PyList_New(0), *y0bar = NULL, *dparams = NULL, *res = NULL;
    void *fwork = NULL, *work = NULL;
    nd_field field;
    int typenum;
    if (!keep || !(ta = (PyArrayObject *)PyArray_FROMANY(tobj, NPY_DOUBLE, 1, 1, NPY_ARRAY_IN_ARRAY)) ||
        (typenum = nd_grad_setup(spec, ybar_obj, PyArray_DIM(ta, 0), nd_ode_method_stages(method), &field, keep, &ybar,
                                 &fwork, &y0bar, &dparams)) < 0)
        goto done;
    const int64_t n = (int64_t)PyArray_SIZE((PyArrayObject *)y0bar);
    if (!(steps = (PyArrayObject *)PyArray_FROMANY(steps_obj, NPY_DOUBLE, 2, 2, NPY_ARRAY_IN_ARRAY)) ||
        !(outs = (PyArrayObject *)PyArray_FROMANY(outs_obj, NPY_INT64, 2, 2, NPY_ARRAY_IN_ARRAY)) ||
        !(states = nd_float_array(states_obj, typenum, "tape states")))
        goto done;
    const npy_intp S = PyArray_DIM(steps, 0);
    if (PyArray_DIM(steps, 1) != 2 || PyArray_DIM(outs, 0) != S || PyArray_DIM(outs, 1) != 2 ||
        PyArray_NDIM(states) < 1 || PyArray_DIM(states, 0) != S || (int64_t)PyArray_SIZE(states) != (int64_t)S * n) {
        PyErr_SetString(PyExc_ValueError, "the tape does not match the state or itself");
        goto done;
    }
    /* Split the interleaved (t, h) and (lo, hi) pairs into the columns the kernel reads. */
    size_t len, bytes;
    int st = nd_ode_backprop_workspace_len(method, n, &len);
    size_t cols = 2 * (size_t)S * (sizeof(double) + sizeof(int64_t));
    if (st != ND_OK || !nd_mul_size(len, (size_t)PyArray_ITEMSIZE(ybar), &bytes) || bytes > SIZE_MAX - cols) {
        nd_raise_status(st != ND_OK ? st : ND_ERR_OVERFLOW, "backprop workspace");
        goto done;
    }
    if (!(work = PyMem_RawMalloc(bytes + cols + 1))) {
        PyErr_NoMemory();
        goto done;
    }
    double *tt = (double *)((char *)work + bytes), *hh = tt + S;
    int64_t *lo = (int64_t *)(hh + S), *hi = lo + S;
    const double *sp = PyArray_DATA(steps);
    const int64_t *op = PyArray_DATA(outs);
    for (npy_intp i = 0; i < S; ++i) {
        tt[i] = sp[2 * i];
        hh[i] = sp[2 * i + 1];
        lo[i] = op[2 * i];
        hi[i] = op[2 * i + 1];
    }
    nd_ode_tape tape = {S, tt, hh, lo, hi, PyArray_DATA(states)};
    const int64_t P = (int64_t)PyArray_SIZE((PyArrayObject *)dparams), nt = PyArray_DIM(ta, 0);
    const double *t = PyArray_DATA(ta);
    void *yb = PyArray_DATA(ybar), *y0b = PyArray_DATA((PyArrayObject *)y0bar), *dp = PyArray_DATA((PyArrayObject *)dparams);
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT) {
        nd_ode_grad_fns_f32 fns = {nd_field_eval_f32, nd_field_vjp_f32, nd_field_eval_keep_f32, nd_field_vjp_kept_f32,
                                   &field};
        st = nd_ode_backprop_f32(method, &fns, n, P, nt, t, &tape, yb, y0b, dp, work);
    } else {
        nd_ode_grad_fns_f64 fns = {nd_field_eval_f64, nd_field_vjp_f64, nd_field_eval_keep_f64, nd_field_vjp_kept_f64,
                                   &field};
        st = nd_ode_backprop_f64(method, &fns, n, P, nt, t, &tape, yb, y0b, dp, work);
    }
    Py_END_ALLOW_THREADS
    res = st == ND_OK ? PyTuple_Pack(2, y0bar, dparams) : nd_raise_status(st, "ode_backprop");
done:
    PyMem_RawFree(work);
    PyMem_RawFree(fwork);
    Py_XDECREF(ta);
    Py_XDECREF(steps);
    Py_XDECREF(outs);
    Py_XDECREF(states);
    Py_XDECREF(ybar);
    Py_XDECREF(y0bar);
    Py_XDECREF(dparams);
    Py_XDECREF(keep);
    return res;
}

static PyObject *ode_adjoint(PyObject *module, PyObject *a, PyObject *kw)
{
    static char *kwlist[] = {"spec", "t", "y_end", "ybar", "method", "rtol", "atol", "dt", "max_steps", NULL};
    PyObject *spec, *tobj, *yend_obj, *ybar_obj;
    nd_ode_opts o;
    nd_ode_opts_default(&o);
    long long max_steps = o.max_steps;
    if (!PyArg_ParseTupleAndKeywords(a, kw, "O!OOOidddL:ode_adjoint", kwlist, &PyTuple_Type, &spec, &tobj, &yend_obj,
                                     &ybar_obj, &o.method, &o.rtol, &o.atol, &o.dt, &max_steps))
        return NULL;
    o.max_steps = max_steps;
    if (!nd_ode_method_name(o.method))
        return PyErr_Format(PyExc_ValueError, "unknown ODE method code %d", o.method);
    PyArrayObject *ta = NULL, *yend = NULL, *ybar = NULL;
    PyObject *keep = PyList_New(0), *y0bar = NULL, *dparams = NULL, *info = NULL, *res = NULL;
    void *fwork = NULL, *work = NULL;
    nd_field field;
    nd_call c = {0};
    int typenum;
    if (!keep || !(ta = (PyArrayObject *)PyArray_FROMANY(tobj, NPY_DOUBLE, 1, 1, NPY_ARRAY_IN_ARRAY)) ||
        (typenum = nd_grad_setup(spec, ybar_obj, PyArray_DIM(ta, 0), 1, &field, keep, &ybar, &fwork, &y0bar,
                                 &dparams)) < 0 ||
        !(yend = nd_float_array(yend_obj, typenum, "y_end")))
        goto done;
    if (!PyArray_SAMESHAPE(yend, (PyArrayObject *)y0bar)) {
        PyErr_SetString(PyExc_ValueError, "y_end must have the state's shape");
        goto done;
    }
    const int64_t n = (int64_t)PyArray_SIZE(yend), P = (int64_t)PyArray_SIZE((PyArrayObject *)dparams);
    size_t len, bytes;
    int st = nd_ode_adjoint_workspace_len(o.method, n, P, &len);
    if (st != ND_OK || !nd_mul_size(len, (size_t)PyArray_ITEMSIZE(ybar), &bytes)) {
        nd_raise_status(st != ND_OK ? st : ND_ERR_OVERFLOW, "adjoint workspace");
        goto done;
    }
    if (!(work = PyMem_RawMalloc(bytes ? bytes : 1))) {
        PyErr_NoMemory();
        goto done;
    }
    o.poll = nd_watch_poll;
    o.poll_ctx = &c.watch;
    nd_ode_stats stats;
    const int64_t nt = PyArray_DIM(ta, 0);
    const double *t = PyArray_DATA(ta);
    void *ye = PyArray_DATA(yend), *yb = PyArray_DATA(ybar), *y0b = PyArray_DATA((PyArrayObject *)y0bar);
    void *dp = PyArray_DATA((PyArrayObject *)dparams);
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT) {
        nd_ode_grad_fns_f32 fns = {nd_field_eval_f32, nd_field_vjp_f32, nd_field_eval_keep_f32, nd_field_vjp_kept_f32,
                                   &field};
        st = nd_ode_adjoint_f32(&fns, n, P, nt, t, ye, yb, &o, y0b, dp, work, &stats);
    } else {
        nd_ode_grad_fns_f64 fns = {nd_field_eval_f64, nd_field_vjp_f64, nd_field_eval_keep_f64, nd_field_vjp_kept_f64,
                                   &field};
        st = nd_ode_adjoint_f64(&fns, n, P, nt, t, ye, yb, &o, y0b, dp, work, &stats);
    }
    Py_END_ALLOW_THREADS
    if (nd_watch_reraise(&c.watch)) {
        goto done;
    }
    if (!(info = nd_ode_info(&stats, &c, 0)))
        goto done;
    if (st == ND_OK) {
        res = PyTuple_Pack(3, y0bar, dparams, info);
    } else if (st == ND_ERR_MAX_STEPS || st == ND_ERR_STEP_UNDERFLOW || st == ND_ERR_NONFINITE) {
        PyObject *attrs = Py_BuildValue("{s:d,s:O,s:O}", "t", stats.t, "status", PyDict_GetItemString(info, "status"),
                                        "info", info);
        PyObject *tr = PyFloat_FromDouble(stats.t);
        PyObject *msg = (attrs && tr) ? PyUnicode_FromFormat("the adjoint solve (%s) stopped at t=%R: %s",
                                                             nd_ode_method_name(o.method), tr, nd_status_str(st))
                                      : NULL;
        if (msg)
            nd_set_integration_error(module, msg, attrs);
        Py_XDECREF(msg);
        Py_XDECREF(tr);
        Py_XDECREF(attrs);
    } else {
        nd_raise_status(st, "ode_adjoint");
    }
done:
    nd_call_free(&c);
    PyMem_RawFree(work);
    PyMem_RawFree(fwork);
    Py_XDECREF(ta);
    Py_XDECREF(yend);
    Py_XDECREF(ybar);
    Py_XDECREF(y0bar);
    Py_XDECREF(dparams);
    Py_XDECREF(info);
    Py_XDECREF(keep);
    return res;
}

static PyMethodDef nd_ode_methods[] = {
    {"odeint", (PyCFunction)(void (*)(void))odeint, METH_VARARGS | METH_KEYWORDS,
     "odeint(rhs, y0, t, method, rtol, atol, dt, max_steps, args=(), record_steps=0) -> (ys, info); record_steps 1: info['steps'], 2: also info['tape']"},
    {"field_eval", (PyCFunction)(void (*)(void))field_eval, METH_VARARGS | METH_KEYWORDS,
     "field_eval(spec, t, y) -> dy"},
    {"ode_backprop", (PyCFunction)(void (*)(void))ode_backprop, METH_VARARGS | METH_KEYWORDS,
     "ode_backprop(spec, t, steps, outs, states, ybar, method) -> (y0bar, dparams)"},
    {"ode_adjoint", (PyCFunction)(void (*)(void))ode_adjoint, METH_VARARGS | METH_KEYWORDS,
     "ode_adjoint(spec, t, y_end, ybar, method, rtol, atol, dt, max_steps) -> (y0bar, dparams, info)"},
    {NULL, NULL, 0, NULL}};

/* ---- odeint_samples: every sample its own initial-value problem ------------------------- */

static const char *const nd_ode_method_names[] = {"euler", "midpoint", "rk4", "dopri5", "tsit5", "dop853", NULL};

typedef struct {
    PyObject *rhs, *args, *sample_shape, *events, *progress;
    PyArrayObject *y0, *t, *ev_c, *ev_d, *direction, *terminal;
    int method;
    double rtol, atol, dt;
    int64_t max_steps, record; /* ND_ARG_INT fields are int64_t */
} nd_samples_args;

static void nd_samples_defaults(nd_samples_args *a)
{
    nd_ode_samples_opts o;
    nd_ode_samples_opts_default(&o);
    a->method = o.method;
    a->rtol = o.rtol;
    a->atol = o.atol;
    a->dt = o.dt;
    a->max_steps = o.max_steps;
}

/* A growable array of fixed-size records (PyMem_Raw). */
typedef struct {
    char *data;
    size_t n, cap, size;
} nd_records;

static void *nd_records_add(nd_records *r)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 256;
        if (!nd_grow((void **)&r->data, cap, r->size))
            return NULL;
        r->cap = cap;
    }
    return r->data + r->n++ * r->size;
}

/* The callbacks' state: Python right-hand side and events, and the records of the call. */
typedef struct {
    PyObject *f, *ev;
    PyObject **argv;
    Py_ssize_t nargs;
    int typenum, single, sample_ndim;
    npy_intp sample_shape[NPY_MAXDIMS];
    int64_t d;
    size_t itemsize;
    nd_watch watch;
    nd_records steps, dense, events;
    int nomem;
} nd_scall;

/* f(t, y, *args) or g(t, y, *args) on m rows: (t [m, 1], y [m, d]) -> [m, width], or for a
 * single sample (float t, y of its own shape) -> its shape (f) or [width] (events). */
static int nd_py_rows(nd_scall *c, PyObject *fn, const char *what, int64_t m, int64_t width, int is_f,
                      const double *t, const void *y, void *out)
{
    PyGILState_STATE gil = PyGILState_Ensure();
    int ok = 0;
    PyObject *targ = NULL, *yarr = NULL, *res = NULL;
    PyArrayObject *a = NULL;
    if (c->single) {
        targ = PyFloat_FromDouble(t[0]);
        yarr = PyArray_SimpleNew(c->sample_ndim, c->sample_shape, c->typenum);
    } else {
        npy_intp td[2] = {(npy_intp)m, 1}, yd[2] = {(npy_intp)m, (npy_intp)c->d};
        targ = PyArray_SimpleNew(2, td, NPY_DOUBLE);
        yarr = PyArray_SimpleNew(2, yd, c->typenum);
        if (targ)
            memcpy(PyArray_DATA((PyArrayObject *)targ), t, (size_t)m * sizeof(double));
    }
    if (targ && yarr) {
        /* Fresh arrays per call: fn may keep or modify what it is given. */
        memcpy(PyArray_DATA((PyArrayObject *)yarr), y, (size_t)m * (size_t)c->d * c->itemsize);
        c->argv[0] = targ;
        c->argv[1] = yarr;
        res = PyObject_Vectorcall(fn, c->argv, (size_t)(2 + c->nargs), NULL);
        c->argv[0] = c->argv[1] = NULL;
    }
    if (res && (a = nd_float_array(res, c->typenum, is_f ? "the value returned by f" : "the value returned by events"))) {
        int same;
        if (is_f && c->single) {
            same = PyArray_NDIM(a) == c->sample_ndim;
            for (int i = 0; same && i < c->sample_ndim; ++i)
                same = PyArray_DIM(a, i) == c->sample_shape[i];
        } else if (c->single) {
            same = PyArray_NDIM(a) == 1 && PyArray_DIM(a, 0) == width;
        } else {
            same = PyArray_NDIM(a) == 2 && PyArray_DIM(a, 0) == m && PyArray_DIM(a, 1) == width;
        }
        if (same) {
            memcpy(out, PyArray_DATA(a), (size_t)m * (size_t)width * c->itemsize);
            ok = 1;
        } else {
            PyObject *got = nd_shape_str(PyArray_NDIM(a), PyArray_DIMS(a));
            npy_intp rows[2] = {(npy_intp)m, (npy_intp)width};
            PyObject *want = c->single && is_f ? nd_shape_str(c->sample_ndim, c->sample_shape)
                                               : c->single ? nd_shape_str(1, rows + 1) : nd_shape_str(2, rows);
            if (got && want)
                PyErr_Format(PyExc_ValueError, "%s returned an array of shape %S; expected %S%s", what, got, want,
                             is_f ? (c->single ? ", the shape of y0" : ", the shape of y") : "");
            Py_XDECREF(got);
            Py_XDECREF(want);
        }
    }
    Py_XDECREF(a);
    Py_XDECREF(res);
    Py_XDECREF(yarr);
    Py_XDECREF(targ);
    return nd_watch_callback_done(&c->watch, ok, gil);
}

static int nd_py_rows_f32(void *c, int64_t m, int64_t d, const double *t, const float *y, float *dy)
{
    return nd_py_rows(c, ((nd_scall *)c)->f, "f(t, y)", m, d, 1, t, y, dy);
}
static int nd_py_rows_f64(void *c, int64_t m, int64_t d, const double *t, const double *y, double *dy)
{
    return nd_py_rows(c, ((nd_scall *)c)->f, "f(t, y)", m, d, 1, t, y, dy);
}
static int nd_py_events_f32(void *c, int64_t m, int64_t ne, const double *t, const float *y, float *g)
{
    return nd_py_rows(c, ((nd_scall *)c)->ev, "the events", m, ne, 0, t, y, g);
}
static int nd_py_events_f64(void *c, int64_t m, int64_t ne, const double *t, const double *y, double *g)
{
    return nd_py_rows(c, ((nd_scall *)c)->ev, "the events", m, ne, 0, t, y, g);
}

/* Step records: (sample, round, t, h) and, with dense output, the step's coefficients. */
static void nd_samples_record_step(void *ctx, int64_t round, int64_t sample, double t, double h, const void *y,
                                   const void *dense, int64_t lo, int64_t hi)
{
    nd_scall *c = ctx;
    if (c->nomem)
        return;
    double *rec = nd_records_add(&c->steps);
    void *coef = (rec && dense) ? nd_records_add(&c->dense) : NULL;
    if (!rec || (dense && !coef)) {
        c->nomem = 1;
        return;
    }
    rec[0] = (double)sample;
    rec[1] = (double)round;
    rec[2] = t;
    rec[3] = h;
    if (dense)
        memcpy(coef, dense, c->dense.size);
}

/* Event records: (sample, k, t) and the state there. */
static void nd_samples_record_event(void *ctx, int64_t sample, int64_t k, double t, const void *y)
{
    nd_scall *c = ctx;
    if (c->nomem)
        return;
    double *rec = nd_records_add(&c->events);
    if (!rec) {
        c->nomem = 1;
        return;
    }
    rec[0] = (double)sample;
    rec[1] = (double)k;
    rec[2] = t;
    memcpy(rec + 3, y, (size_t)c->d * c->itemsize);
}

static const nd_arg odeint_samples_args[] = {
    ND_SCALAR(nd_samples_args, rhs, "f", ND_ARG_OBJECT, 0),
    ND_IN(nd_samples_args, y0, "y0", ND_TYPE | ND_FINITE, 2, "(batch, d)"),
    {"t", ND_ARG_F64ARRAY, ND_FINITE, offsetof(nd_samples_args, t), 1, "(len(t),)", NULL},
    ND_CHOICE(nd_samples_args, method, "method", ND_OPTIONAL, nd_ode_method_names),
    ND_SCALAR(nd_samples_args, rtol, "rtol", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(nd_samples_args, atol, "atol", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(nd_samples_args, dt, "dt", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(nd_samples_args, max_steps, "max_steps", ND_ARG_INT, ND_OPTIONAL),
    ND_SCALAR(nd_samples_args, args, "args", ND_ARG_OBJECT, ND_OPTIONAL | ND_NONE),
    ND_SCALAR(nd_samples_args, sample_shape, "sample_shape", ND_ARG_OBJECT, ND_OPTIONAL | ND_NONE),
    ND_SCALAR(nd_samples_args, events, "events", ND_ARG_OBJECT, ND_OPTIONAL | ND_NONE),
    {"event_c", ND_ARG_F64ARRAY, ND_FINITE | ND_OPTIONAL | ND_NONE, offsetof(nd_samples_args, ev_c), 2,
     "(n_events, d)", NULL},
    {"event_d", ND_ARG_F64ARRAY, ND_FINITE | ND_OPTIONAL | ND_NONE, offsetof(nd_samples_args, ev_d), 1,
     "(n_events,)", NULL},
    {"direction", ND_ARG_I64ARRAY, ND_OPTIONAL | ND_NONE, offsetof(nd_samples_args, direction), 1, "(n_events,)",
     NULL},
    {"terminal", ND_ARG_I64ARRAY, ND_OPTIONAL | ND_NONE, offsetof(nd_samples_args, terminal), 1, "(n_events,)",
     NULL},
    ND_SCALAR(nd_samples_args, record, "record", ND_ARG_INT, ND_OPTIONAL),
    ND_SCALAR(nd_samples_args, progress, "progress", ND_ARG_OBJECT, ND_OPTIONAL | ND_NONE),
    {NULL}};

/* A new 1-D array of n elements of typenum holding src (or empty). */
static PyObject *nd_array_from(int typenum, npy_intp n, const void *src, size_t itemsize)
{
    PyObject *a = PyArray_SimpleNew(1, &n, typenum);
    if (a && n)
        memcpy(PyArray_DATA((PyArrayObject *)a), src, (size_t)n * itemsize);
    return a;
}

/* info: per-sample counters, status names, totals, and the records asked for. */
static PyObject *nd_samples_info(const nd_ode_samples_stats *st, npy_intp B, nd_scall *c, int tn, int64_t record,
                                 int nv, int64_t ne)
{
    PyObject *status = PyTuple_New(B);
    PyObject *info = status ? PyDict_New() : NULL;
    if (!info) {
        Py_XDECREF(status);
        return NULL;
    }
    for (npy_intp s = 0; s < B; ++s)
        PyTuple_SET_ITEM(status, s, PyUnicode_FromString(st->status[s] == ND_ODE_SAMPLE_EVENT ? "event"
                                                                                            : nd_ode_status_key(st->status[s])));
    PyObject *items[] = {
        nd_array_from(NPY_INT64, B, st->nfev, sizeof(int64_t)), nd_array_from(NPY_INT64, B, st->accepted, sizeof(int64_t)),
        nd_array_from(NPY_INT64, B, st->rejected, sizeof(int64_t)), nd_array_from(NPY_INT64, B, st->n_out, sizeof(int64_t)),
        nd_array_from(NPY_DOUBLE, B, st->t, sizeof(double)), nd_array_from(NPY_INT, B, st->status, sizeof(int)), status,
        PyLong_FromLongLong(st->nfev_total), PyLong_FromLongLong(st->rhs_calls), PyLong_FromLongLong(st->rounds),
        PyLong_FromLongLong(st->n_failed)};
    const char *keys[] = {"nfev", "accepted", "rejected", "n_out", "t", "status_code", "status",
                          "nfev_total", "rhs_calls", "rounds", "n_failed"};
    int ok = 1;
    for (size_t i = 0; i < sizeof items / sizeof *items; ++i) {
        ok = ok && items[i] && PyDict_SetItemString(info, keys[i], items[i]) == 0;
        Py_XDECREF(items[i]);
    }
    if (ok && record) {
        /* steps [S, 4]: sample, round, t, h; dense [S, nv, d] */
        npy_intp sd[2] = {(npy_intp)c->steps.n, 4};
        PyObject *steps = PyArray_SimpleNew(2, sd, NPY_DOUBLE);
        ok = steps && PyDict_SetItemString(info, "steps", steps) == 0;
        if (ok && c->steps.n)
            memcpy(PyArray_DATA((PyArrayObject *)steps), c->steps.data, c->steps.n * c->steps.size);
        Py_XDECREF(steps);
        if (ok && record > 1) {
            npy_intp dd[3] = {(npy_intp)c->dense.n, nv, (npy_intp)c->d};
            PyObject *dense = nd_array_adopt((void **)&c->dense.data, 3, dd, tn);
            ok = dense && PyDict_SetItemString(info, "dense", dense) == 0;
            Py_XDECREF(dense);
        }
    }
    if (ok && ne) {
        /* events: (sample, k, t) [E, 3] and the states [E, d] */
        const npy_intp E = (npy_intp)c->events.n;
        npy_intp ed[2] = {E, 3}, yd[2] = {E, (npy_intp)c->d};
        PyObject *ev = PyArray_SimpleNew(2, ed, NPY_DOUBLE), *ey = PyArray_SimpleNew(2, yd, tn);
        PyObject *pair = (ev && ey) ? PyTuple_Pack(2, ev, ey) : NULL;
        for (npy_intp e = 0; pair && e < E; ++e) {
            const double *rec = (const double *)(c->events.data + (size_t)e * c->events.size);
            memcpy((double *)PyArray_DATA((PyArrayObject *)ev) + 3 * e, rec, 3 * sizeof(double));
            memcpy((char *)PyArray_DATA((PyArrayObject *)ey) + (size_t)e * (size_t)c->d * c->itemsize, rec + 3,
                   (size_t)c->d * c->itemsize);
        }
        ok = pair && PyDict_SetItemString(info, "events", pair) == 0;
        Py_XDECREF(ev);
        Py_XDECREF(ey);
        Py_XDECREF(pair);
    }
    if (!ok)
        Py_CLEAR(info);
    return info;
}

/* -> (ys [nt, B, d], y_last [B, d], info) */
static PyObject *odeint_samples_body(PyObject *module, void *args, int tn)
{
    nd_samples_args *a = args;
    const npy_intp B = PyArray_DIM(a->y0, 0), d = PyArray_DIM(a->y0, 1), nt = PyArray_DIM(a->t, 0);
    const size_t itemsize = (size_t)PyArray_ITEMSIZE(a->y0);
    nd_scall c = {0};
    nd_field field;
    PyObject *keep = NULL, *ys = NULL, *y_last = NULL, *info = NULL, *res = NULL;
    void *work = NULL, *fwork = NULL, *counters = NULL;
    int *dirs = NULL;
    nd_ode_samples_opts o;
    nd_ode_samples_opts_default(&o);
    o.method = a->method;
    o.rtol = a->rtol;
    o.atol = a->atol;
    o.dt = a->dt;
    o.max_steps = a->max_steps;
    if (a->progress && !PyCallable_Check(a->progress))
        return PyErr_Format(PyExc_TypeError, "progress must be callable or None");
    if (a->args && !PyTuple_Check(a->args))
        return PyErr_Format(PyExc_TypeError, "args must be a tuple");
    c.typenum = tn;
    c.d = d;
    c.itemsize = itemsize;
    c.nargs = a->args ? PyTuple_GET_SIZE(a->args) : 0;
    if (!(c.argv = PyMem_Calloc((size_t)(2 + c.nargs), sizeof(PyObject *))))
        return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < c.nargs; ++i)
        c.argv[2 + i] = PyTuple_GET_ITEM(a->args, i);
    if (a->sample_shape) {
        PyObject *shape = PySequence_Tuple(a->sample_shape);
        if (!shape)
            goto done;
        c.single = 1;
        c.sample_ndim = (int)PyTuple_GET_SIZE(shape);
        for (int i = 0; i < c.sample_ndim && i < NPY_MAXDIMS; ++i)
            c.sample_shape[i] = (npy_intp)PyLong_AsSsize_t(PyTuple_GET_ITEM(shape, i));
        Py_DECREF(shape);
        if (PyErr_Occurred())
            goto done;
        if (B != 1) {
            PyErr_SetString(PyExc_ValueError, "sample_shape is for a single sample (batch 1)");
            goto done;
        }
    }
    /* events: a Python callable or the built-in linear specs */
    int64_t ne = 0;
    if (a->ev_c) {
        ne = PyArray_DIM(a->ev_c, 0);
        npy_intp cd[2] = {(npy_intp)ne, d}, dd[1] = {(npy_intp)ne};
        if (nd_check_shape(a->ev_c, "event_c", 2, cd, "(n_events, d)") < 0 || !a->ev_d ||
            nd_check_shape(a->ev_d, "event_d", 1, dd, "(n_events,)") < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "event_d must be given with event_c");
            goto done;
        }
        o.ev_c = PyArray_DATA(a->ev_c);
        o.ev_d = PyArray_DATA(a->ev_d);
    } else if (a->events) {
        if (!PyCallable_Check(a->events)) {
            PyErr_SetString(PyExc_TypeError, "events must be callable");
            goto done;
        }
        c.ev = a->events;
        ne = a->direction ? PyArray_DIM(a->direction, 0) : 0;
    }
    o.n_events = ne;
    if (ne) {
        npy_intp dd[1] = {(npy_intp)ne};
        if (!a->direction || !a->terminal || nd_check_shape(a->direction, "direction", 1, dd, "(n_events,)") < 0 ||
            nd_check_shape(a->terminal, "terminal", 1, dd, "(n_events,)") < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "events need direction and terminal");
            goto done;
        }
        if (!(dirs = PyMem_Malloc((size_t)ne * sizeof(int)))) {
            PyErr_NoMemory();
            goto done;
        }
        for (int64_t k = 0; k < ne; ++k) {
            int64_t v = ((const int64_t *)PyArray_DATA(a->direction))[k];
            dirs[k] = v < -1 ? -2 : v > 1 ? 2 : (int)v; /* the kernel reports the rule */
        }
        o.direction = dirs;
        o.terminal = PyArray_DATA(a->terminal);
        o.on_event = nd_samples_record_event;
        o.event_ctx = &c;
        c.events.size = 3 * sizeof(double) + (size_t)d * itemsize;
    }
    if (a->record) {
        o.on_step = nd_samples_record_step;
        o.step_ctx = &c;
        o.dense = a->record > 1;
        c.steps.size = 4 * sizeof(double);
        c.dense.size = (size_t)(nd_ode_dense_vectors(a->method) > 0 ? nd_ode_dense_vectors(a->method) : 1) *
                       (size_t)d * itemsize;
    }
    /* the right-hand side: a Python callable or a built-in field */
    int is_field = !PyCallable_Check(a->rhs);
    if (is_field) {
        if (!PyTuple_Check(a->rhs)) {
            PyErr_SetString(PyExc_TypeError, "f must be callable or a neurodyn.fields vector field");
            goto done;
        }
        if (!(keep = PyList_New(0)) || nd_parse_field(a->rhs, tn, &field, keep) < 0 ||
            nd_field_bind_state(&field, a->y0, "y0") < 0)
            goto done;
        size_t flen;
        int st = nd_field_workspace_len(&field, &flen);
        if (st != ND_OK) {
            nd_raise_status(st, "field workspace");
            goto done;
        }
        if (!(fwork = nd_work_alloc(flen, itemsize)))
            goto done;
        field.work = fwork;
    } else {
        c.f = a->rhs;
    }
    size_t bytes;
    int st = nd_ode_samples_workspace_size(a->method, B, d, ne, itemsize, &bytes);
    if (st != ND_OK) {
        nd_raise_status(st, "odeint");
        goto done;
    }
    if (!(work = nd_work_alloc(bytes, 1)) || !(counters = nd_work_alloc((size_t)B, 5 * sizeof(int64_t) + sizeof(int))))
        goto done;
    nd_ode_samples_stats stats = {(int64_t *)counters, (int64_t *)counters + B, (int64_t *)counters + 2 * B,
                                  (int64_t *)counters + 3 * B, (double *)((int64_t *)counters + 4 * B),
                                  (int *)((int64_t *)counters + 5 * B), 0, 0, 0, 0};
    if (!(ys = nd_empty(tn, 3, nt, B, d)) || !(y_last = nd_empty(tn, 2, B, d)))
        goto done;
    c.watch.progress = a->progress;
    o.poll = nd_watch_poll;
    o.poll_ctx = &c.watch;
    const double *t = PyArray_DATA(a->t);
    void *yd = PyArray_DATA(a->y0), *ysd = PyArray_DATA((PyArrayObject *)ys), *yl = PyArray_DATA((PyArrayObject *)y_last);
    void *rctx = is_field ? (void *)&field : (void *)&c;
    Py_BEGIN_ALLOW_THREADS
    if (tn == NPY_FLOAT)
        st = nd_odeint_samples_f32(is_field ? nd_field_eval_rows_f32 : nd_py_rows_f32, rctx,
                                   c.ev ? nd_py_events_f32 : NULL, &c, B, d, yd, nt, t, &o, ysd, yl, work, &stats);
    else
        st = nd_odeint_samples_f64(is_field ? nd_field_eval_rows_f64 : nd_py_rows_f64, rctx,
                                   c.ev ? nd_py_events_f64 : NULL, &c, B, d, yd, nt, t, &o, ysd, yl, work, &stats);
    Py_END_ALLOW_THREADS
    if (nd_watch_reraise(&c.watch))
        goto done;
    if (c.nomem) {
        PyErr_NoMemory();
        goto done;
    }
    if (st == ND_ERR_ARG || st == ND_ERR_OVERFLOW || st == ND_ERR_NOMEM || st == ND_ERR_CALLBACK) {
        nd_raise_status(st, "odeint");
        goto done;
    }
    if (!(info = nd_samples_info(&stats, B, &c, tn, a->record, nd_ode_dense_vectors(a->method), ne)))
        goto done;
    res = PyTuple_Pack(3, ys, y_last, info);
done:
    nd_watch_clear(&c.watch);
    PyMem_Free(c.argv);
    PyMem_RawFree(c.steps.data);
    PyMem_RawFree(c.dense.data);
    PyMem_RawFree(c.events.data);
    PyMem_Free(dirs);
    PyMem_RawFree(work);
    PyMem_RawFree(fwork);
    PyMem_RawFree(counters);
    Py_XDECREF(keep);
    Py_XDECREF(ys);
    Py_XDECREF(y_last);
    Py_XDECREF(info);
    return res;
}
ND_ENTRY(odeint_samples, nd_samples_args, nd_samples_defaults,
         "odeint_samples(f, y0, t, method, rtol, atol, dt, max_steps, args=None, sample_shape=None, events=None, "
         "event_c=None, event_d=None, direction=None, terminal=None, record=0, progress=None) -> (ys [nt, B, d], "
         "y_last [B, d], info): every row of y0 its own initial-value problem")

typedef struct {
    PyArrayObject *theta, *coef;
    int method;
} nd_dense_args;

static const nd_arg ode_dense_eval_args[] = {
    {"theta", ND_ARG_F64ARRAY, ND_FINITE, offsetof(nd_dense_args, theta), 1, "(m,)", NULL},
    ND_IN(nd_dense_args, coef, "coef", ND_TYPE, 3, "(m, vectors, d)"),
    ND_CHOICE(nd_dense_args, method, "method", 0, nd_ode_method_names),
    {NULL}};

/* -> y [m, d]: row i's dense output at theta[i]. */
static PyObject *ode_dense_eval_body(PyObject *module, void *args, int tn)
{
    nd_dense_args *a = args;
    const npy_intp m = PyArray_DIM(a->coef, 0), d = PyArray_DIM(a->coef, 2);
    npy_intp cd[3] = {PyArray_DIM(a->theta, 0), nd_ode_dense_vectors(a->method), -1};
    if (nd_check_shape(a->coef, "coef", 3, cd, "(m, vectors of the method, d) with the m of theta") < 0)
        return NULL;
    PyObject *out = nd_empty(tn, 2, m, d);
    if (!out)
        return NULL;
    const double *th = PyArray_DATA(a->theta);
    void *cf = PyArray_DATA(a->coef), *od = PyArray_DATA((PyArrayObject *)out);
    int st = ND_DISPATCH(tn, nd_ode_dense_eval, a->method, m, d, th, cf, od);
    if (st != ND_OK) {
        Py_DECREF(out);
        return nd_raise_status(st, "ode_dense_eval");
    }
    return out;
}
ND_ENTRY(ode_dense_eval, nd_dense_args, NULL,
         "ode_dense_eval(theta, coef, method) -> y [m, d]: the dense output of each row's step at theta")

/* ---- the solver options' rules, for models that check them at construction ------------- */

typedef struct {
    nd_ode_opts o;
} nd_check_args;

static const nd_arg ode_check_options_args[] = {
    ND_CHOICE(nd_check_args, o.method, "method", ND_OPTIONAL, nd_ode_method_names),
    ND_SCALAR(nd_check_args, o.rtol, "rtol", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(nd_check_args, o.atol, "atol", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(nd_check_args, o.dt, "dt", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(nd_check_args, o.max_steps, "max_steps", ND_ARG_INT, ND_OPTIONAL),
    {NULL}};

static void nd_check_defaults(nd_check_args *a) { nd_ode_opts_default(&a->o); }

static PyObject *ode_check_options_body(PyObject *module, void *args, int tn)
{
    int st = nd_ode_check_opts(&((nd_check_args *)args)->o);
    return st == ND_OK ? Py_NewRef(Py_None) : nd_raise_status(st, "ode_check_options");
}
ND_ENTRY(ode_check_options, nd_check_args, nd_check_defaults,
         "ode_check_options(method, rtol, atol, dt, max_steps): raises as a solver would for bad options")

static const nd_entry *const nd_ode_entries[] = {&odeint_samples_entry, &ode_dense_eval_entry,
                                                 &ode_check_options_entry, NULL};
static const nd_table nd_ode_tables[] = {{"ode_methods", nd_ode_method_names}, {NULL, NULL}};
const nd_family nd_ode_family = {nd_ode_entries, nd_ode_tables, nd_ode_methods};

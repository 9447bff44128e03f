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
#include "nd_ode_auto.h"
#include "nd_ode_stiff.h"
#include "nd_status.h"

/* ---- Python callbacks ------------------------------------------------------------------------- */

typedef struct {
    nd_pyfn f, jac; /* on one row as f sees it when single (jac: y.shape + (d,)) */
    nd_pyargs py;
    int single; /* single: y0 has no batch axes; f gets rows one at a time */
    int64_t d;
} nd_stiff_call;

/* m rows through f (d values out per row) or jac (d * d). */
static int nd_stiff_py_rows(nd_stiff_call *c, int is_jac, int64_t m, const double *t, const void *y, void *out)
{
    const nd_pyfn *fn = is_jac ? &c->jac : &c->f;
    if (!c->single) {
        const npy_intp want[3] = {(npy_intp)m, (npy_intp)c->d, (npy_intp)c->d};
        return nd_pycall(&c->py, fn->fn, m, t, 2, want, y, fn->what, is_jac ? 3 : 2, want, fn->expect, out);
    }
    const size_t row_in = (size_t)c->d * (c->py.typenum == NPY_FLOAT ? sizeof(float) : sizeof(double));
    const size_t row_out = row_in * (is_jac ? (size_t)c->d : 1);
    int st = ND_OK;
    for (int64_t i = 0; st == ND_OK && i < m; ++i)
        st = nd_pyfn_call(fn, t[i], (const char *)y + (size_t)i * row_in, (char *)out + (size_t)i * row_out);
    return st;
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

/* ---- the tape of Radau's steps (the discrete adjoint's input) ------------------------------------ */

/* One growable buffer of step records: (sample, t_old, t_new) as doubles, (lo, hi), the start
 * state [d] and the stage increments [3, d]. */
typedef struct {
    char *data;
    size_t n, cap, size, item;
    int64_t d;
    int nomem;
} nd_stiff_tape_buf;

static void nd_stiff_on_step(void *ctx, int64_t sample, double t_old, double t_new, const void *y, const void *z,
                             int64_t lo, int64_t hi)
{
    nd_stiff_tape_buf *b = ctx;
    if (b->nomem)
        return;
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256, bytes;
        char *p = nd_mul_size(cap, b->size, &bytes) ? PyMem_RawRealloc(b->data, bytes) : NULL;
        if (!p) {
            b->nomem = 1;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    char *rec = b->data + b->n++ * b->size;
    const double head[3] = {(double)sample, t_old, t_new};
    const int64_t outs[2] = {lo, hi};
    const size_t row = (size_t)b->d * b->item;
    memcpy(rec, head, sizeof head);
    memcpy(rec + sizeof head, outs, sizeof outs);
    memcpy(rec + sizeof head + sizeof outs, y, row);
    memcpy(rec + sizeof head + sizeof outs + row, z, 3 * row);
}

/* The tape as (steps [S, 3], outs [S, 2], states [S, d], stages [S, 3, d]). */
static PyObject *nd_stiff_tape_arrays(const nd_stiff_tape_buf *b, int tn)
{
    const npy_intp S = (npy_intp)b->n, d = (npy_intp)b->d;
    const npy_intp sd[2] = {S, 3}, od[2] = {S, 2}, yd[2] = {S, d}, zd[3] = {S, 3, d};
    PyObject *a[4] = {PyArray_SimpleNew(2, sd, NPY_DOUBLE), PyArray_SimpleNew(2, od, NPY_INT64),
                      PyArray_SimpleNew(2, yd, tn), PyArray_SimpleNew(3, zd, tn)};
    PyObject *res = (a[0] && a[1] && a[2] && a[3]) ? PyTuple_Pack(4, a[0], a[1], a[2], a[3]) : NULL;
    const size_t row = (size_t)b->d * b->item, off[4] = {0, 3 * sizeof(double), 3 * sizeof(double) + 16,
                                                         3 * sizeof(double) + 16 + row};
    const size_t len[4] = {3 * sizeof(double), 16, row, 3 * row};
    for (int i = 0; res && i < 4; ++i)
        for (size_t k = 0; k < b->n; ++k)
            memcpy((char *)PyArray_DATA((PyArrayObject *)a[i]) + k * len[i], b->data + k * b->size + off[i], len[i]);
    for (int i = 0; i < 4; ++i)
        Py_XDECREF(a[i]);
    return res;
}

/* Radau's dense output from the tape, as the explicit solvers record it: raw["steps"] [S, 4]
 * (sample, step index, t_old, h) and raw["dense"] [S, 5, d] (nd_radau_dense_coef_*). */
static int nd_stiff_dense_arrays(PyObject *raw, const nd_stiff_tape_buf *b, int tn)
{
    const npy_intp S = (npy_intp)b->n, d = (npy_intp)b->d, sd[2] = {S, 4}, cd[3] = {S, 5, d};
    PyObject *steps = PyArray_SimpleNew(2, sd, NPY_DOUBLE), *coef = steps ? PyArray_SimpleNew(3, cd, tn) : NULL;
    const size_t row = (size_t)b->d * b->item, head = 3 * sizeof(double) + 2 * sizeof(int64_t);
    for (size_t k = 0; coef && k < b->n; ++k) {
        const char *rec = b->data + k * b->size;
        double h3[3], *out = (double *)PyArray_DATA((PyArrayObject *)steps) + 4 * k;
        memcpy(h3, rec, sizeof h3);
        out[0] = h3[0], out[1] = (double)k, out[2] = h3[1], out[3] = h3[2] - h3[1];
        char *c = (char *)PyArray_DATA((PyArrayObject *)coef) + k * 5 * row;
        if (tn == NPY_FLOAT)
            nd_radau_dense_coef_f32(b->d, (const float *)(rec + head), (const float *)(rec + head + row), (float *)c);
        else
            nd_radau_dense_coef_f64(b->d, (const double *)(rec + head), (const double *)(rec + head + row), (double *)c);
    }
    int rc = coef && PyDict_SetItemString(raw, "steps", steps) == 0 && PyDict_SetItemString(raw, "dense", coef) == 0
                 ? 0 : -1;
    Py_XDECREF(steps);
    Py_XDECREF(coef);
    return rc;
}

/* ---- odeint_stiff -------------------------------------------------------------------------------- */

typedef struct {
    PyObject *f, *jac, *args, *progress, *o[2]; /* o: ys, y_last */
    PyArrayObject *y0, *t;
    int method;
    double rtol, atol, dt, max_step;
    int64_t max_steps;
    int record; /* the tape of radau's steps, for ode_stiff_backprop */
    int dense;  /* radau's dense output: raw["steps"] and raw["dense"] as odeint(record=2)'s */
} nd_stiff_args;

static void nd_stiff_defaults(nd_stiff_args *a)
{
    nd_ode_stiff_opts o;
    nd_ode_stiff_opts_default(&o);
    a->method = o.method, a->rtol = o.rtol, a->atol = o.atol, a->dt = o.dt, a->max_step = o.max_step;
    a->max_steps = o.max_steps;
}

static const nd_arg odeint_stiff_args[] = {
    ND_OBJ(nd_stiff_args, f, "f", ND_ARG_OBJECT, 0),
    ND_IN(nd_stiff_args, y0, "y0", ND_TYPE, NULL),
    ND_F64IN(nd_stiff_args, t, "t", 0, "(times,)"),
    ND_CHOICE(nd_stiff_args, method, "method", ND_OPTIONAL, nd_stiff_method_names),
    ND_TOLERANCES(nd_stiff_args, rtol, atol),
    ND_SCALAR(nd_stiff_args, dt, "dt", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(nd_stiff_args, max_step, "max_step", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(nd_stiff_args, max_steps, "max_steps", ND_ARG_INT, ND_OPTIONAL),
    ND_OBJ(nd_stiff_args, jac, "jac", ND_ARG_CALLABLE, ND_OPTIONAL | ND_NONE),
    ND_OBJ(nd_stiff_args, args, "args", ND_ARG_TUPLE, ND_OPTIONAL),
    ND_PROGRESS(nd_stiff_args, progress),
    ND_SCALAR(nd_stiff_args, record, "record", ND_ARG_BOOL, ND_OPTIONAL),
    ND_SCALAR(nd_stiff_args, dense, "dense", ND_ARG_BOOL, ND_OPTIONAL),
    ND_OUT(nd_stiff_args, o[0], "ys", 0, "(times, *y0)"),
    ND_OUT(nd_stiff_args, o[1], "y_last", 0, "(*y0)"),
    {NULL}};

/* Per-sample counters of the call, B of each (the last three and method: the automatic method's). */
typedef struct {
    int64_t *nfev, *njev, *nlu, *accepted, *rejected, *n_out, *accepted_implicit, *nfev_implicit, *switches;
    double *t;
    int *status, *method;
} nd_stiff_counts;

static const char *nd_auto_method_name(int code) { return nd_ode_auto_method_names[code]; }

/* The automatic method's own entries of the raw record: its per-sample counters, the method
 * each sample ends with, and the number of phases. */
static int nd_auto_raw(PyObject *raw, const nd_ode_auto_stats *st, const nd_stiff_counts *k, npy_intp B)
{
    return nd_dict_array(raw, "accepted_implicit", NPY_INT64, 1, &B, k->accepted_implicit) < 0 ||
                   nd_dict_array(raw, "nfev_implicit", NPY_INT64, 1, &B, k->nfev_implicit) < 0 ||
                   nd_dict_array(raw, "switches", NPY_INT64, 1, &B, k->switches) < 0 ||
                   nd_dict_names(raw, "method", B, k->method, nd_auto_method_name) < 0 ||
                   nd_dict_put(raw, "phases", PyLong_FromLongLong((long long)st->phases)) < 0
               ? -1 : 0;
}

/* The raw record neurodyn.ode turns into the user's info dict (the keys of the explicit
 * solvers' record, and the Jacobian and LU counters): per-sample arrays of B values, the status
 * names, and the call's totals. */
static PyObject *nd_stiff_raw(const nd_ode_stiff_stats *st, const nd_stiff_counts *k, npy_intp B)
{
    const int64_t *ints[] = {k->nfev, k->njev, k->nlu, k->accepted, k->rejected, k->n_out};
    const int64_t totals[] = {st->nfev_total, st->njev_total, st->nlu_total, st->rhs_calls, st->jac_calls, st->rounds,
                              st->n_failed};
    const char *keys[] = {"nfev", "njev", "nlu", "accepted", "rejected", "n_out", "nfev_total", "njev_total",
                          "nlu_total", "rhs_calls", "jac_calls", "rounds", "n_failed"};
    PyObject *raw = PyDict_New();
    int ok = raw && nd_dict_array(raw, "t", NPY_DOUBLE, 1, &B, k->t) == 0 &&
             nd_dict_array(raw, "status_code", NPY_INT, 1, &B, k->status) == 0 &&
             nd_dict_names(raw, "status", B, k->status, nd_status_key) == 0;
    for (int i = 0; ok && i < 13; ++i)
        ok = (i < 6 ? nd_dict_array(raw, keys[i], NPY_INT64, 1, &B, ints[i])
                    : nd_dict_put(raw, keys[i], PyLong_FromLongLong((long long)totals[i - 6]))) == 0;
    if (!ok)
        Py_CLEAR(raw);
    return raw;
}

/* -> (ys [T] + y0.shape, y_last (y0.shape), raw record); a sample's failure is in the record */
static PyObject *odeint_stiff_body(PyObject *module, void *args, int tn)
{
    nd_stiff_args *a = args;
    const int ndim = PyArray_NDIM(a->y0);
    const int is_field = !PyCallable_Check(a->f);
    if (is_field && a->jac)
        return PyErr_Format(PyExc_TypeError, "jac is for a callable f: a built-in field has its own Jacobian");
    /* samples: the leading axes of y0; a 0-d or 1-d y0 is one sample */
    const int nb = ndim > 1 ? ndim - 1 : 0;
    const int64_t d = ndim == 0 ? 1 : PyArray_DIM(a->y0, ndim - 1);
    const int64_t B = d ? (int64_t)(PyArray_SIZE(a->y0) / d) : (nb ? (int64_t)PyArray_MultiplyList(PyArray_DIMS(a->y0), nb) : 1);
    const int64_t nt = PyArray_DIM(a->t, 0);
    const size_t item = (size_t)PyArray_ITEMSIZE(a->y0);

    nd_stiff_call c = {0};
    nd_field field;
    PyObject *keep = NULL, *info = NULL, *res = NULL;
    void *work = NULL, *fwork = NULL;
    nd_stiff_counts k = {0};
    size_t bytes;
    const int autom = a->method == ND_STIFF_AUTO;
    nd_stiff_tape_buf tape = {0};
    if ((a->record || a->dense) && a->method != ND_STIFF_RADAU)
        return PyErr_Format(PyExc_ValueError, "%s is available with method='radau' only, got method='%s'",
                            a->record ? "record (the tape of the gradient)" : "dense output",
                            nd_stiff_method_names[a->method]);
    int st = autom ? nd_ode_auto_workspace_size(B, d, nt, item, &bytes)
                   : nd_ode_stiff_workspace_size(a->method, B, d, item, &bytes);
    if (st != ND_OK) {
        nd_raise_status(st, "odeint");
        goto done;
    }
    if (is_field) {
        if (!(keep = PyList_New(0)) ||
            nd_parse_field_for_jac(a->f, tn, a->y0, "y0", B * nd_ode_stiff_max_rows(d), &field, keep, &fwork) < 0)
            goto done;
    } else {
        nd_pyfn_init(&c.f, a->f, "f(t, y)", "the shape of y", &c.py, a->y0, 0, 0);
        nd_pyfn_init(&c.jac, a->jac, "jac(t, y)", "y.shape + (d,)", &c.py, a->y0, 1, d);
        c.d = d;
        c.single = nb == 0;
    }
    if (nd_pyargs_init(&c.py, a->args, tn, a->progress) < 0)
        goto done;
    const size_t ub = (size_t)(B ? B : 1);
    k.nfev = PyMem_RawCalloc(9 * ub, sizeof(int64_t));
    k.t = PyMem_RawCalloc(ub, sizeof(double));
    k.status = PyMem_RawCalloc(2 * ub, sizeof(int));
    if (!(work = nd_work_alloc(bytes, 1)) || !k.nfev || !k.t || !k.status) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto done;
    }
    k.njev = k.nfev + ub, k.nlu = k.njev + ub, k.accepted = k.nlu + ub, k.rejected = k.accepted + ub;
    k.n_out = k.rejected + ub, k.accepted_implicit = k.n_out + ub, k.nfev_implicit = k.accepted_implicit + ub;
    k.switches = k.nfev_implicit + ub, k.method = k.status + ub;

    nd_ode_stiff_opts o;
    nd_ode_stiff_opts_default(&o);
    o.method = a->method, o.rtol = a->rtol, o.atol = a->atol, o.dt = a->dt, o.max_step = a->max_step;
    o.max_steps = a->max_steps;
    o.poll = nd_watch_poll;
    o.poll_ctx = &c.py.watch;
    if (a->record || a->dense) {
        tape.d = d, tape.item = item, tape.size = 3 * sizeof(double) + 2 * sizeof(int64_t) + 4 * (size_t)d * item;
        o.on_step = nd_stiff_on_step;
        o.step_ctx = &tape;
    }
    nd_ode_stiff_stats stats = {k.nfev, k.njev, k.nlu, k.accepted, k.rejected, k.n_out, k.t, k.status, 0, 0, 0, 0, 0, 0, 0, NULL};
    nd_ode_auto_stats astats = {k.nfev, k.njev, k.nlu, k.accepted, k.rejected, k.accepted_implicit, k.nfev_implicit,
                                k.switches, k.n_out, k.t, k.status, k.method, 0, 0, 0, 0, 0, 0, 0, 0};
    nd_batch_rhs_f32 rhs32 = is_field ? nd_field_eval_rows_f32 : nd_stiff_py_rhs_f32;
    nd_batch_rhs_f64 rhs64 = is_field ? nd_field_eval_rows_f64 : nd_stiff_py_rhs_f64;
    nd_batch_jac_f32 jac32 = is_field ? nd_field_jac_rows_f32 : (c.jac.fn ? nd_stiff_py_jac_f32 : NULL);
    nd_batch_jac_f64 jac64 = is_field ? nd_field_jac_rows_f64 : (c.jac.fn ? nd_stiff_py_jac_f64 : NULL);
    void *ctx = is_field ? (void *)&field : (void *)&c;
    const double *t = PyArray_DATA(a->t);
    void *y0 = PyArray_DATA(a->y0), *ysd = ND_DATA(a->o[0]), *yl = ND_DATA(a->o[1]);
    Py_BEGIN_ALLOW_THREADS
    if (autom && tn == NPY_FLOAT)
        st = nd_odeint_auto_f32(rhs32, ctx, jac32, ctx, B, d, y0, nt, t, &o, ysd, yl, work, &astats);
    else if (autom)
        st = nd_odeint_auto_f64(rhs64, ctx, jac64, ctx, B, d, y0, nt, t, &o, ysd, yl, work, &astats);
    else if (tn == NPY_FLOAT)
        st = nd_odeint_stiff_f32(rhs32, ctx, jac32, ctx, B, d, y0, nt, t, &o, ysd, yl, work, &stats);
    else
        st = nd_odeint_stiff_f64(rhs64, ctx, jac64, ctx, B, d, y0, nt, t, &o, ysd, yl, work, &stats);
    Py_END_ALLOW_THREADS
    if (autom) { /* the totals where the record reads them */
        stats.nfev_total = astats.nfev_total, stats.njev_total = astats.njev_total, stats.nlu_total = astats.nlu_total;
        stats.rhs_calls = astats.rhs_calls, stats.jac_calls = astats.jac_calls, stats.rounds = astats.rounds;
        stats.n_failed = astats.n_failed;
    }
    if (nd_pyargs_raise(&c.py, st, "odeint") || (tape.nomem && !PyErr_NoMemory()))
        goto done;
    if ((info = nd_stiff_raw(&stats, &k, (npy_intp)B)) && (!autom || nd_auto_raw(info, &astats, &k, (npy_intp)B) == 0)) {
        PyObject *arrays = a->record ? nd_stiff_tape_arrays(&tape, tn) : NULL;
        if ((!a->record || (arrays && PyDict_SetItemString(info, "tape", arrays) == 0)) &&
            (!a->dense || nd_stiff_dense_arrays(info, &tape, tn) == 0))
            res = PyTuple_Pack(3, a->o[0], a->o[1], info);
        Py_XDECREF(arrays);
    }
done:
    PyMem_RawFree(tape.data);
    nd_pyargs_free(&c.py);
    PyMem_RawFree(work);
    PyMem_RawFree(fwork);
    PyMem_RawFree(k.nfev);
    PyMem_RawFree(k.t);
    PyMem_RawFree(k.status);
    nd_xdecref(2, keep, info);
    return res;
}
ND_ENTRY(odeint_stiff, nd_stiff_args, nd_stiff_defaults,
         "odeint_stiff(f, y0, t, method='radau', rtol, atol, dt, max_step, max_steps, jac=None, args=(), "
         "progress=None, record=False, dense=False) -> (ys, y_last, raw): implicit integration of every sample of y0 "
         "(its leading axes) on its own; method='auto' switches each sample between dopri5 and radau; record: "
         "radau's tape (raw['tape']), dense: its dense output (raw['steps'], raw['dense'])")

/* ---- ode_stiff_backprop ------------------------------------------------------------------------------ */

typedef struct {
    PyObject *field, *o[2];
    PyArrayObject *t, *ybar, *steps, *outs, *states, *stages;
    nd_bound_field bf;
    nd_ode_stiff_tape tape;
    int64_t B, d, P, nt;
    void *work;
} nd_stiff_grad_args;
#define G nd_stiff_grad_args

#define ND_STIFF_FIELD_GRAD(T, SFX)                                                                          \
    static int nd_stiff_field_backprop_##SFX(nd_field *f, int64_t B, int64_t d, int64_t P, int64_t nt,           \
                                             const double *t, const nd_ode_stiff_tape *tape, const T *ybar,      \
                                             T *y0bar, T *dp, void *work)                                      \
    {                                                                                                        \
        nd_ode_stiff_grad_fns_##SFX fns = {nd_field_jac_rows_##SFX, nd_field_vjp_rows_##SFX, f};                \
        return nd_ode_stiff_backprop_##SFX(&fns, B, d, P, nt, t, tape, ybar, y0bar, dp, work);                  \
    }
ND_STIFF_FIELD_GRAD(float, f32)
ND_STIFF_FIELD_GRAD(double, f64)

/* The field bound to the samples of ybar (3 rows a step), the tape and the workspaces. */
static int nd_stiff_grad_setup(G *a)
{
    size_t len, flen;
    const size_t item = (size_t)PyArray_ITEMSIZE(a->ybar);
    a->nt = PyArray_DIM(a->t, 0), a->d = PyArray_DIM(a->ybar, PyArray_NDIM(a->ybar) - 1);
    a->B = a->d ? (int64_t)(PyArray_SIZE(a->ybar) / a->nt / a->d) : 0;
    a->tape = (nd_ode_stiff_tape){PyArray_DIM(a->steps, 0), PyArray_DATA(a->steps), PyArray_DATA(a->outs),
                                  PyArray_DATA(a->states), PyArray_DATA(a->stages)};
    if (nd_field_parse(&a->bf, a->field, PyArray_TYPE(a->ybar)) < 0 ||
        nd_bind_field_rows(&a->bf.f, a->ybar, "ybar", 3 * a->B) < 0)
        return -1;
    a->P = nd_field_param_count(&a->bf.f);
    int st = nd_field_jac_workspace_len(&a->bf.f, &flen);
    if (st == ND_OK)
        st = nd_ode_stiff_backprop_workspace_size(a->B, a->d, a->tape.n_steps, item, &len);
    if (st != ND_OK || !(a->bf.work = a->bf.f.work = nd_work_alloc(flen, item)) || !(a->work = nd_work_alloc(len, 1)))
        return st != ND_OK ? st : -1;
    return ND_OK;
}

/* -> (y0bar, dparams): backpropagation through the Radau steps recorded by odeint_stiff(record=True). */
static const nd_arg ode_stiff_backprop_args[] = {
    ND_SCALAR(G, field, "field", ND_ARG_OBJECT, 0), ND_F64IN(G, t, "t", ND_FINITE, "(times,)"),
    ND_IN(G, ybar, "ybar", ND_TYPE | ND_FINITE, "(times, *batch, d)"), ND_F64IN(G, steps, "steps", 0, "(steps, 3)"),
    ND_I64IN(G, outs, "outs", 0, "(steps, 2)"), ND_IN(G, states, "states", 0, "(steps, d)"),
    ND_IN(G, stages, "stages", 0, "(steps, 3, d)"), ND_CHECK(nd_stiff_grad_setup), ND_KEEP(G, bf.keep),
    ND_WORK(G, bf.work), ND_WORK(G, work), ND_DIM(G, P, "params"), ND_OUT(G, o[0], "y0bar", 0, "(*batch, d)"),
    ND_OUT(G, o[1], "dparams", 0, "(params,)"), {NULL}};
ND_KERNEL_ENTRY(ode_stiff_backprop, G, NULL,
                ND_DISPATCH(tn, nd_stiff_field_backprop, &a->bf.f, a->B, a->d, a->P, a->nt, ND_DATA(a->t), &a->tape,
                            ND_DATA(a->ybar), ND_DATA(a->o[0]), ND_DATA(a->o[1]), a->work),
                "ode_stiff_backprop(field, t, ybar, steps, outs, states, stages) -> (y0bar, dparams): the discrete "
                "adjoint of the Radau steps recorded by odeint_stiff(record=True), through a built-in field")
#undef G

static const nd_table nd_ode_stiff_tables[] = {
    {"stiff_methods", nd_stiff_method_names}, {"ode_auto_methods", nd_ode_auto_method_names}, {NULL, NULL}};
ND_FAMILY(nd_ode_stiff_family, nd_ode_stiff_tables, &odeint_stiff_entry, &ode_stiff_backprop_entry);

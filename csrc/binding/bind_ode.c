/* Binding of the ODE family: odeint (per sample or as one coupled system, a Python callable or
 * a built-in field, events, dense output and tapes), the gradients through a built-in field
 * (ode_backprop, ode_adjoint), the dense output's evaluation and the solver options' rules. The
 * fields themselves are bind_fields.c's. */
#include "nd_bind.h"

#include <math.h>
#include <string.h>

#include "nd_generic.h"
#include "nd_ode.h"
#include "nd_ode_samples.h"
#include "nd_status.h"

/* The coupled solver (nd_odeint_*) takes the fixed-step methods and, when asked, dopri5; the
 * independent-sample driver every other adaptive call (a single sample for coupled tsit5/dop853). */
static int nd_use_coupled(int method, int coupled)
{
    return nd_ode_method_stages(method) > 0 && (coupled || !nd_ode_method_adaptive(method));
}

/* ---- kept stages ---------------------------------------------------------------------------- */

/* The object odeint(record=8) returns as info["kept"] and ode_backprop(kept=) reads: the stages
 * of one solve, the coupled solver's (nd_ode_kept) or the per-sample driver's
 * (nd_ode_samples_kept, made at its first such solve), `coupled` saying which solve wrote last,
 * and a fingerprint of the field that computed them, so that a gradient through other
 * parameters is refused. `busy` (read and written with the GIL held) refuses a second call
 * using the object while one runs without the GIL. */
typedef struct {
    nd_ode_kept *k;
    nd_ode_samples_kept *ks;
    uint64_t field_print;
    int typenum, busy, coupled;
} nd_kept_box;

static const char nd_kept_name[] = "neurodyn._core.ode_kept";

static void nd_kept_box_free(PyObject *capsule)
{
    nd_kept_box *box = PyCapsule_GetPointer(capsule, nd_kept_name);
    if (box) {
        nd_ode_kept_free(box->k);
        nd_ode_samples_kept_free(box->ks);
    }
    PyMem_Free(box);
}

static PyObject *nd_kept_box_new(void)
{
    nd_kept_box *box = PyMem_Calloc(1, sizeof *box);
    if (box && !(box->k = nd_ode_kept_new())) {
        PyMem_Free(box);
        box = NULL;
    }
    if (!box)
        return PyErr_NoMemory();
    PyObject *capsule = PyCapsule_New(box, nd_kept_name, nd_kept_box_free);
    if (!capsule) {
        nd_ode_kept_free(box->k);
        PyMem_Free(box);
    }
    return capsule;
}

/* The box of `kept`; NULL for another object (or none), with a TypeError naming the call `what`
 * unless `what` is NULL. */
static nd_kept_box *nd_kept_get(PyObject *kept, const char *what)
{
    nd_kept_box *box = kept && PyCapsule_IsValid(kept, nd_kept_name) ? PyCapsule_GetPointer(kept, nd_kept_name) : NULL;
    if (!box && what)
        PyErr_Format(PyExc_TypeError, "%s: kept must be the info['kept'] of odeint(record=8), not %.200s", what,
                     kept ? Py_TYPE(kept)->tp_name : "nothing");
    return box;
}

/* The box of `kept` for a call (`what`), marked busy; NULL with TypeError for another object,
 * ValueError while another call uses it. */
static nd_kept_box *nd_kept_take(PyObject *kept, const char *what)
{
    nd_kept_box *box = nd_kept_get(kept, what);
    if (!box)
        return NULL;
    if (box->busy)
        return PyErr_Format(PyExc_ValueError, "%s: kept is in use by another call", what), NULL;
    box->busy = 1;
    return box;
}

/* ---- the records of a call and its Python callbacks ---------------------------------------- */

/* A growable array of fixed-size records (PyMem_Raw). */
typedef struct {
    char *data;
    size_t n, cap, size;
} nd_records;

static void *nd_records_add(nd_records *r)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 256, bytes;
        void *p = nd_mul_size(cap, r->size, &bytes) ? PyMem_RawRealloc(r->data, bytes ? bytes : 1) : NULL;
        if (!p)
            return NULL;
        r->data = p;
        r->cap = cap;
    }
    return r->data + r->n++ * r->size;
}

/* What a call's callbacks share: the Python right-hand side and events, the records asked for. */
typedef struct {
    PyObject *f, *ev;
    nd_pyargs py;       /* f's and the events' arguments, the arrays' type, the watch */
    int single, ndim; /* single: f sees one state of `shape` and a float t */
    npy_intp shape[NPY_MAXDIMS];
    int64_t d; /* values per row */
    size_t itemsize;
    /* steps: (sample, round, t, h); with a tape, outs (lo, hi) and states; dense coefficients */
    nd_records steps, outs, states, dense, events;
    int tape, nomem;
} nd_call;

static void nd_call_free(nd_call *c)
{
    nd_pyargs_free(&c->py);
    nd_records *r[] = {&c->steps, &c->outs, &c->states, &c->dense, &c->events};
    for (size_t i = 0; i < sizeof r / sizeof *r; ++i)
        PyMem_RawFree(r[i]->data);
}

/* fn(t, y, *args) on m rows: (t [m, 1], y [m, d]) -> [m, width], or for a single state (float t,
 * y of its shape) -> its shape (f) or [width] (events). */
static int nd_py_rows(nd_call *c, PyObject *fn, const char *what, int64_t m, int64_t width, int is_f,
                      const double *t, const void *y, void *out)
{
    const npy_intp rows[2] = {(npy_intp)m, (npy_intp)width}, yd[2] = {(npy_intp)m, (npy_intp)c->d};
    if (c->single)
        return nd_pycall(&c->py, fn, -1, t, c->ndim, c->shape, y, what, is_f ? c->ndim : 1, is_f ? c->shape : rows + 1,
                         is_f ? "the shape of y0" : NULL, out);
    return nd_pycall(&c->py, fn, m, t, 2, yd, y, what, 2, rows, is_f ? "the shape of y" : NULL, out);
}

#define ND_PY_CALLBACKS(T, SFX)                                                                      \
    static int nd_py_f_##SFX(void *c, int64_t m, int64_t d, const double *t, const T *y, T *dy)        \
    {                                                                                                \
        return nd_py_rows(c, ((nd_call *)c)->f, "f(t, y)", m, d, 1, t, y, dy);                       \
    }                                                                                                \
    static int nd_py_events_##SFX(void *c, int64_t m, int64_t ne, const double *t, const T *y, T *g)   \
    {                                                                                                \
        return nd_py_rows(c, ((nd_call *)c)->ev, "the events", m, ne, 0, t, y, g);                   \
    }                                                                                                \
    static int nd_py_coupled_##SFX(void *c, double t, const T *y, T *dy)                               \
    {                                                                                                \
        return nd_py_rows(c, ((nd_call *)c)->f, "f(t, y)", 1, ((nd_call *)c)->d, 1, &t, y, dy);      \
    }                                                                                                \
    /* The solvers with a built-in field (ctx an nd_field) or the Python callbacks (ctx the call). */  \
    static int nd_run_coupled_##SFX(int field, void *ctx, int64_t n, const T *y0, int64_t nt, const double *t, \
                                    const nd_ode_opts *o, T *ys, T *yl, void *work, nd_ode_stats *st)    \
    {                                                                                                \
        return nd_odeint_##SFX(field ? nd_field_eval_##SFX : nd_py_coupled_##SFX, ctx, n, y0, nt, t, o, ys, yl, \
                               work, st);                                                            \
    }                                                                                                \
    static int nd_run_rows_##SFX(int field, void *ctx, nd_call *c, int64_t B, int64_t d, const T *y0, int64_t nt, \
                                 const double *t, const nd_ode_samples_opts *o, T *ys, T *yl, void *work,  \
                                 nd_ode_samples_stats *st)                                           \
    {                                                                                                \
        return nd_odeint_samples_##SFX(field ? nd_field_eval_rows_##SFX : nd_py_f_##SFX, ctx,            \
                                       c->ev ? nd_py_events_##SFX : NULL, c, B, d, y0, nt, t, o, ys, yl, work, st); \
    }
ND_PY_CALLBACKS(float, f32)
ND_PY_CALLBACKS(double, f64)

/* The coupled solver through a built-in field keeping its stages (odeint(record=8)). */
#define ND_RUN_KEEP(T, SFX)                                                                           \
    static int nd_run_keep_##SFX(nd_field *f, size_t keep_len, nd_ode_kept *kept, int64_t n, const T *y0,   \
                                 int64_t nt, const double *t, const nd_ode_opts *o, T *ys, T *yl, void *work, \
                                 nd_ode_stats *st)                                                    \
    {                                                                                                 \
        return nd_odeint_keep_##SFX(nd_field_eval_keep_at_##SFX, f, keep_len, n, y0, nt, t, o, ys, yl, work, kept, \
                                    st);                                                              \
    }
ND_RUN_KEEP(float, f32)
ND_RUN_KEEP(double, f64)

/* The per-sample driver through a built-in field keeping its stages (odeint(record=8)). */
#define ND_RUN_ROWS_KEEP(T, SFX)                                                                      \
    static int nd_run_rows_keep_##SFX(nd_field *f, int n_widths, const int64_t *widths, nd_ode_samples_kept *kept, \
                                      nd_call *c, int64_t B, int64_t d, const T *y0, int64_t nt, const double *t, \
                                      const nd_ode_samples_opts *o, T *ys, T *yl, void *work,           \
                                      nd_ode_samples_stats *st)                                       \
    {                                                                                                 \
        return nd_odeint_samples_keep_##SFX(nd_field_eval_rows_##SFX, nd_field_eval_rows_keep_at_##SFX, f, n_widths, \
                                            widths, c->ev ? nd_py_events_##SFX : NULL, c, B, d, y0, nt, t, o, ys, \
                                            yl, work, kept, st);                                      \
    }
ND_RUN_ROWS_KEEP(float, f32)
ND_RUN_ROWS_KEEP(double, f64)

/* One accepted step: (sample, round, t, h); with a tape its output rows and start state; with a
 * dense output its coefficients. */
static void nd_record(nd_call *c, int64_t sample, int64_t round, double t, double h, const void *y,
                      const void *dense, int64_t lo, int64_t hi)
{
    if (c->nomem)
        return;
    double *rec = nd_records_add(&c->steps);
    int64_t *out = (rec && c->tape) ? nd_records_add(&c->outs) : NULL;
    void *state = out ? nd_records_add(&c->states) : NULL;
    void *coef = (rec && dense) ? nd_records_add(&c->dense) : NULL;
    if (!rec || (c->tape && !state) || (dense && !coef)) {
        c->nomem = 1;
        return;
    }
    rec[0] = (double)sample, rec[1] = (double)round, rec[2] = t, rec[3] = h;
    if (c->tape) {
        out[0] = lo, out[1] = hi;
        memcpy(state, y, c->states.size);
    }
    if (dense)
        memcpy(coef, dense, c->dense.size);
}

static void nd_record_sample(void *ctx, int64_t round, int64_t sample, double t, double h, const void *y,
                             const void *dense, int64_t lo, int64_t hi)
{
    nd_record(ctx, sample, round, t, h, y, dense, lo, hi);
}

static void nd_record_coupled(void *ctx, double t, double h, const void *y, int64_t lo, int64_t hi)
{
    nd_record(ctx, 0, (int64_t)((nd_call *)ctx)->steps.n, t, h, y, NULL, lo, hi);
}

/* Event records: (sample, k, t) and the state there. */
static void nd_record_event(void *ctx, int64_t sample, int64_t k, double t, const void *y)
{
    nd_call *c = ctx;
    double *rec = c->nomem ? NULL : nd_records_add(&c->events);
    if (!rec) {
        c->nomem = 1;
        return;
    }
    rec[0] = (double)sample, rec[1] = (double)k, rec[2] = t;
    memcpy(rec + 3, y, (size_t)c->d * c->itemsize);
}

/* ---- counters and info ------------------------------------------------------------------ */

/* Per-sample counters of B samples in one PyMem_Raw block (*buf). */
static int nd_stats_alloc(npy_intp B, nd_ode_samples_stats *st, void **buf)
{
    int64_t *p = *buf = nd_work_alloc((size_t)B, 5 * sizeof(int64_t) + sizeof(int));
    if (!p)
        return -1;
    *st = (nd_ode_samples_stats){p, p + B, p + 2 * B, p + 3 * B, (double *)(p + 4 * B), (int *)(p + 5 * B), 0, 0, 0, 0, NULL};
    return 0;
}

/* The coupled solver's counters as those of one sample. */
static void nd_stats_from_coupled(const nd_ode_stats *c, nd_ode_samples_stats *st)
{
    st->nfev[0] = st->nfev_total = st->rhs_calls = c->nfev;
    st->accepted[0] = c->accepted;
    st->rejected[0] = c->rejected;
    st->rounds = c->accepted + c->rejected;
    st->n_out[0] = c->n_out;
    st->t[0] = c->t;
    st->status[0] = c->status;
    st->n_failed = c->status < 0;
}

/* A sample's status as info["status"] names it: a terminal event, or the kernels' key. */
static const char *nd_sample_status_key(int status)
{
    return status == ND_ODE_SAMPLE_EVENT ? "event" : nd_status_key(status);
}

/* The samples' shape: the state's leading axes (none for a single state). */
typedef struct {
    int ndim;
    npy_intp dims[NPY_MAXDIMS];
} nd_batch_shape;

static nd_batch_shape nd_batch_of(PyArrayObject *y, int single)
{
    nd_batch_shape b;
    b.ndim = single || PyArray_NDIM(y) <= 1 ? 0 : PyArray_NDIM(y) - 1;
    if (b.ndim)
        memcpy(b.dims, PyArray_DIMS(y), (size_t)b.ndim * sizeof(npy_intp));
    return b;
}

/* A record buffer as an array [n] + dims that takes its memory. */
static PyObject *nd_records_array(nd_records *r, int ndim, const npy_intp *dims, int typenum)
{
    npy_intp all[NPY_MAXDIMS] = {(npy_intp)r->n};
    memcpy(all + 1, dims, (size_t)ndim * sizeof(npy_intp));
    if (r->n && r->n < r->cap) {
        /* give back the unused capacity of the growth strategy */
        void *fit = PyMem_RawRealloc(r->data, r->n * r->size);
        if (fit)
            r->data = fit;
    }
    return nd_array_adopt((void **)&r->data, ndim + 1, all, typenum);
}

/* info: per-sample counters (arrays of the samples' shape) and status names, the totals, and the
 * records of the call (steps [S, 4]; dense [S, vectors, d]; tape (outs [S, 2], states
 * [S] + state_dims); events). */
static PyObject *nd_info(const nd_ode_samples_stats *st, const nd_batch_shape *bs, nd_call *c, int nv, int64_t ne,
                         int sdim, const npy_intp *state_dims)
{
    npy_intp B = 1;
    for (int i = 0; i < bs->ndim; ++i)
        B *= bs->dims[i];
    PyObject *info = PyDict_New();
    const int tn = c->py.typenum, nb = bs->ndim;
    const npy_intp four[1] = {4}, two[1] = {2}, dense[2] = {nv, (npy_intp)c->d}, *bd = bs->dims;
    int ok = info && nd_dict_array(info, "nfev", NPY_INT64, nb, bd, st->nfev) == 0 &&
             nd_dict_array(info, "accepted", NPY_INT64, nb, bd, st->accepted) == 0 &&
             nd_dict_array(info, "rejected", NPY_INT64, nb, bd, st->rejected) == 0 &&
             nd_dict_array(info, "n_out", NPY_INT64, nb, bd, st->n_out) == 0 &&
             nd_dict_array(info, "t", NPY_DOUBLE, nb, bd, st->t) == 0 &&
             nd_dict_array(info, "status_code", NPY_INT, nb, bd, st->status) == 0 &&
             nd_dict_names(info, "status", B, st->status, nd_sample_status_key) == 0 &&
             nd_dict_put(info, "nfev_total", PyLong_FromLongLong(st->nfev_total)) == 0 &&
             nd_dict_put(info, "rhs_calls", PyLong_FromLongLong(st->rhs_calls)) == 0 &&
             nd_dict_put(info, "rounds", PyLong_FromLongLong(st->rounds)) == 0 &&
             nd_dict_put(info, "n_failed", PyLong_FromLongLong(st->n_failed)) == 0;
    if (ok && c->steps.size)
        ok = nd_dict_put(info, "steps", nd_records_array(&c->steps, 1, four, NPY_DOUBLE)) == 0;
    if (ok && c->dense.size)
        ok = nd_dict_put(info, "dense", nd_records_array(&c->dense, 2, dense, tn)) == 0;
    if (ok && c->tape) {
        PyObject *outs = nd_records_array(&c->outs, 1, two, NPY_INT64);
        PyObject *states = outs ? nd_records_array(&c->states, sdim, state_dims, tn) : NULL;
        ok = nd_dict_put(info, "tape", states ? PyTuple_Pack(2, outs, states) : NULL) == 0;
        Py_XDECREF(outs);
        Py_XDECREF(states);
    }
    if (ok && ne) {
        /* events: (sample, k, t) [E, 3] and the states [E, d] */
        const npy_intp E = (npy_intp)c->events.n, ed[2] = {E, 3}, yd[2] = {E, (npy_intp)c->d};
        PyObject *ev = PyArray_SimpleNew(2, (npy_intp *)ed, NPY_DOUBLE), *ey = PyArray_SimpleNew(2, (npy_intp *)yd, tn);
        for (npy_intp e = 0; ev && ey && e < E; ++e) {
            const double *rec = (const double *)(c->events.data + (size_t)e * c->events.size);
            memcpy((double *)PyArray_DATA((PyArrayObject *)ev) + 3 * e, rec, 3 * sizeof(double));
            memcpy((char *)PyArray_DATA((PyArrayObject *)ey) + (size_t)e * (size_t)c->d * c->itemsize, rec + 3,
                   (size_t)c->d * c->itemsize);
        }
        ok = nd_dict_put(info, "events", (ev && ey) ? PyTuple_Pack(2, ev, ey) : NULL) == 0;
        Py_XDECREF(ev);
        Py_XDECREF(ey);
    }
    if (!ok)
        Py_CLEAR(info);
    return info;
}

/* ---- odeint ------------------------------------------------------------------------------- */

typedef struct {
    PyObject *rhs, *args, *events, *progress, *o[2]; /* o: ys, y_last */
    PyArrayObject *y0, *t, *ev_c, *ev_d, *direction, *terminal;
    int method, coupled;
    double rtol, atol, dt;
    int64_t max_steps, record; /* record: 1 steps, 2 dense output, 4 tape, 8 kept stages, 16 kept where they can be */
    int64_t kept_budget;       /* bytes the kept stages may take (nd_ode_kept_default_budget) */
    PyObject *kept;            /* an earlier info["kept"] whose memory the kept stages reuse */
    nd_kept_box *box;          /* the kept stages' box while the call runs */
} nd_odeint_args;

/* The kernel's default solver options into an entry's fields (odeint's and the gradients'). */
#define ND_ODE_DEFAULTS(a)                                                                         \
    do {                                                                                           \
        nd_ode_samples_opts o_;                                                                    \
        nd_ode_samples_opts_default(&o_);                                                          \
        (a)->method = o_.method, (a)->rtol = o_.rtol, (a)->atol = o_.atol, (a)->dt = o_.dt;        \
        (a)->max_steps = o_.max_steps;                                                             \
    } while (0)
static void nd_odeint_defaults(nd_odeint_args *a)
{
    ND_ODE_DEFAULTS(a);
    const size_t budget = nd_ode_kept_default_budget();
    a->kept_budget = budget > (size_t)INT64_MAX ? INT64_MAX : (int64_t)budget;
}

static const nd_arg odeint_args[] = {
    ND_SCALAR(nd_odeint_args, rhs, "f", ND_ARG_OBJECT, 0),
    ND_IN(nd_odeint_args, y0, "y0", ND_TYPE | ND_FINITE, NULL),
    ND_F64IN(nd_odeint_args, t, "t", ND_FINITE, "(times,), a 1-D array of times"),
    ND_CHOICE(nd_odeint_args, method, "method", ND_OPTIONAL, nd_ode_method_names),
    ND_TOLERANCES(nd_odeint_args, rtol, atol),
    ND_SCALAR(nd_odeint_args, dt, "dt", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(nd_odeint_args, max_steps, "max_steps", ND_ARG_INT, ND_OPTIONAL),
    ND_OBJ(nd_odeint_args, args, "args", ND_ARG_TUPLE, ND_OPTIONAL | ND_NONE),
    ND_SCALAR(nd_odeint_args, coupled, "coupled", ND_ARG_BOOL, ND_OPTIONAL),
    ND_OBJ(nd_odeint_args, events, "events", ND_ARG_CALLABLE, ND_OPTIONAL | ND_NONE),
    ND_F64IN(nd_odeint_args, ev_c, "event_c", ND_FINITE | ND_OPTIONAL | ND_NONE, "(n_events, d)"),
    ND_F64IN(nd_odeint_args, ev_d, "event_d", ND_FINITE | ND_OPTIONAL | ND_NONE, "(n_events,)"),
    ND_I64IN(nd_odeint_args, direction, "direction", ND_OPTIONAL | ND_NONE, "(n_events,)"),
    ND_I64IN(nd_odeint_args, terminal, "terminal", ND_OPTIONAL | ND_NONE, "(n_events,)"),
    ND_SCALAR(nd_odeint_args, record, "record", ND_ARG_INT, ND_OPTIONAL),
    ND_OBJ(nd_odeint_args, kept, "kept", ND_ARG_OBJECT, ND_OPTIONAL | ND_NONE),
    ND_SCALAR(nd_odeint_args, kept_budget, "kept_budget", ND_ARG_INT, ND_OPTIONAL),
    ND_PROGRESS(nd_odeint_args, progress),
    ND_OUT(nd_odeint_args, o[0], "ys", 0, "(times, *y0)"),
    ND_OUT(nd_odeint_args, o[1], "y_last", 0, "(*y0)"),
    {NULL}};

/* The events of a per-sample call: a Python callable or the built-in linear ones. *dirs holds
 * the directions as ints (freed by the caller). Returns the number of events, or -1. */
static int64_t nd_odeint_events(const nd_odeint_args *a, nd_call *c, nd_ode_samples_opts *o, int **dirs)
{
    int64_t ne = 0;
    const npy_intp d = (npy_intp)c->d;
    if (a->ev_c) {
        ne = PyArray_DIM(a->ev_c, 0);
        npy_intp cd[2] = {(npy_intp)ne, d};
        if (nd_check_shape(a->ev_c, "event_c", 2, cd, "(n_events, d) with the d of y0") < 0)
            return -1;
        o->ev_c = PyArray_DATA(a->ev_c);
        o->ev_d = a->ev_d ? PyArray_DATA(a->ev_d) : NULL; /* the kernel requires them */
    } else if (a->events) {
        c->ev = a->events;
        ne = a->direction ? PyArray_DIM(a->direction, 0) : 0;
    }
    if (!ne)
        return 0;
    if (!a->direction || !a->terminal) {
        PyErr_SetString(PyExc_ValueError, "events need direction and terminal");
        return -1;
    }
    if (!(*dirs = PyMem_Malloc((size_t)ne * sizeof(int))))
        return PyErr_Occurred() ? -1 : (PyErr_NoMemory(), -1);
    for (int64_t k = 0; k < ne; ++k) {
        const int64_t v = ((const int64_t *)PyArray_DATA(a->direction))[k];
        (*dirs)[k] = v < -1 ? -2 : v > 1 ? 2 : (int)v; /* the kernel reports the rule */
    }
    o->n_events = ne;
    o->direction = *dirs;
    o->terminal = PyArray_DATA(a->terminal);
    o->on_event = nd_record_event;
    o->event_ctx = c;
    c->events.size = 3 * sizeof(double) + (size_t)c->d * c->itemsize;
    return ne;
}

/* The whole state as one system (nd_odeint_*): status, counters as one sample's. */
static int nd_odeint_coupled(const nd_odeint_args *a, int tn, nd_call *c, nd_bound_field *bf, void *ys, void *yl,
                             nd_ode_samples_stats *st)
{
    nd_ode_opts o;
    nd_ode_opts_default(&o);
    o.method = a->method, o.rtol = a->rtol, o.atol = a->atol, o.dt = a->dt, o.max_steps = a->max_steps;
    o.poll = nd_watch_poll, o.poll_ctx = &c->py.watch;
    if (a->record) {
        o.on_step = nd_record_coupled;
        o.step_ctx = c;
    }
    const int64_t n = (int64_t)PyArray_SIZE(a->y0), nt = PyArray_DIM(a->t, 0);
    size_t len;
    int status = nd_odeint_workspace_len(a->method, n, &len);
    if (status != ND_OK) {
        nd_raise_status(status, "odeint");
        return ND_ERR_ARG;
    }
    void *work = nd_work_alloc(len, c->itemsize);
    if (!work)
        return ND_ERR_NOMEM;
    nd_ode_stats stats;
    const double *t = PyArray_DATA(a->t);
    const void *y0 = PyArray_DATA(a->y0);
    void *ctx = bf->keep ? (void *)&bf->f : (void *)c;
    nd_ode_kept *kept = a->box ? a->box->k : NULL;
    size_t keep_len = 0;
    if (kept)
        nd_field_keep_len(&bf->f, &keep_len); /* checked by nd_odeint_kept_setup */
    Py_BEGIN_ALLOW_THREADS
    status = kept ? ND_DISPATCH(tn, nd_run_keep, &bf->f, keep_len, kept, n, y0, nt, t, &o, ys, yl, work, &stats)
                  : ND_DISPATCH(tn, nd_run_coupled, bf->keep != NULL, ctx, n, y0, nt, t, &o, ys, yl, work, &stats);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(work);
    nd_stats_from_coupled(&stats, st);
    return status;
}

/* Every row its own problem (nd_odeint_samples_*). */
static int nd_odeint_rows(const nd_odeint_args *a, int tn, nd_call *c, nd_bound_field *bf, npy_intp B, void *ys,
                          void *yl, nd_ode_samples_stats *st, int64_t *ne)
{
    nd_ode_samples_opts o;
    nd_ode_samples_opts_default(&o);
    o.method = a->method, o.rtol = a->rtol, o.atol = a->atol, o.dt = a->dt, o.max_steps = a->max_steps;
    o.poll = nd_watch_poll, o.poll_ctx = &c->py.watch;
    o.row_blocks = bf->keep != NULL && nd_field_row_wise(&bf->f);
    int *dirs = NULL;
    if ((*ne = nd_odeint_events(a, c, &o, &dirs)) < 0)
        return ND_ERR_ARG;
    if (a->record) {
        o.on_step = nd_record_sample;
        o.step_ctx = c;
        o.dense = (a->record & 2) != 0;
    }
    size_t bytes;
    int status = nd_ode_samples_workspace_size(a->method, B, c->d, *ne, c->itemsize, &bytes);
    void *work = status == ND_OK ? nd_work_alloc(bytes, 1) : NULL;
    if (status != ND_OK || !work) {
        if (status != ND_OK)
            nd_raise_status(status, "odeint");
        PyMem_Free(dirs);
        return status != ND_OK ? status : ND_ERR_NOMEM;
    }
    const double *t = PyArray_DATA(a->t);
    const void *y0 = PyArray_DATA(a->y0);
    const int64_t nt = PyArray_DIM(a->t, 0), d = c->d;
    void *ctx = bf->keep ? (void *)&bf->f : (void *)c;
    nd_ode_samples_kept *kept = a->box ? a->box->ks : NULL;
    int64_t widths[ND_SAMPLES_KEEP_ARRAYS];
    int n_widths = 0;
    if (kept && (status = nd_field_keep_row_widths(&bf->f, d, widths, &n_widths)) != ND_OK) {
        PyMem_RawFree(work);
        PyMem_Free(dirs);
        nd_raise_status(status, "odeint");
        return ND_ERR_ARG;
    }
    Py_BEGIN_ALLOW_THREADS
    status = kept ? ND_DISPATCH(tn, nd_run_rows_keep, &bf->f, n_widths, widths, kept, c, B, d, y0, nt, t, &o, ys, yl,
                                work, st)
                  : ND_DISPATCH(tn, nd_run_rows, bf->keep != NULL, ctx, c, B, d, y0, nt, t, &o, ys, yl, work, st);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(work);
    PyMem_Free(dirs);
    if (status == ND_ERR_ARG && !PyErr_Occurred())
        nd_raise_status(status, "odeint");
    return status;
}

/* A state as rows: B rows of its last axis's d values, or (single, or at most one axis) one row
 * of all its values. */
static void nd_state_rows(PyArrayObject *y, int single, npy_intp *B, npy_intp *d)
{
    const int ndim = PyArray_NDIM(y);
    *B = 1;
    *d = PyArray_SIZE(y);
    if (single || ndim <= 1)
        return;
    for (int i = 0; i < ndim - 1; ++i)
        *B *= PyArray_DIM(y, i);
    *d = PyArray_DIM(y, ndim - 1);
}

/* Sets up the callbacks' view of the state: rows of d values (B of them), or a single state. */
static int nd_call_setup(nd_call *c, PyArrayObject *y0, int tn, int single, PyObject *args, PyObject *progress,
                         npy_intp *B)
{
    const int ndim = PyArray_NDIM(y0);
    npy_intp d;
    c->itemsize = (size_t)PyArray_ITEMSIZE(y0);
    c->single = single || ndim <= 1;
    c->ndim = ndim;
    if (ndim > 0) /* a 0-d array's dims pointer may be NULL: not for memcpy */
        memcpy(c->shape, PyArray_DIMS(y0), (size_t)ndim * sizeof(npy_intp));
    nd_state_rows(y0, single, B, &d);
    c->d = d;
    return nd_pyargs_init(&c->py, args, tn, progress);
}

/* Whether the solve can keep its stages for the field: the coupled solver those of an MLP or
 * hybrid field, the per-sample driver those of an MLP field (record=16 asks for them there). */
static int nd_odeint_can_keep(int coupled, const nd_call *c, const nd_bound_field *bf)
{
    size_t len;
    int64_t widths[ND_SAMPLES_KEEP_ARRAYS];
    int n;
    if (c->f)
        return 0;
    if ((coupled ? nd_field_keep_len(&bf->f, &len) : nd_field_keep_row_widths(&bf->f, c->d, widths, &n)) == ND_OK)
        return 1;
    nd_clear_error(); /* the rule's detail is no error here: it must not name a later failure */
    return 0;
}

/* record=8: the object that keeps the solve's stages (a->kept reused, else a new one), its box
 * taken in a->box with the field's fingerprint; NULL without record=8; Py_None (borrowed) with
 * an exception set. record=16 (without 8) is record=8 where the solve can keep them
 * (nd_odeint_can_keep), else nothing kept and a->kept left unused. */
static PyObject *nd_odeint_kept_setup(nd_odeint_args *a, int coupled, const nd_call *c, const nd_bound_field *bf,
                                      int tn)
{
    size_t keep_len = 0;
    if ((a->record & 16) && !(a->record & 8)) { /* with 8 too, record=8's rules hold */
        a->record = nd_odeint_can_keep(coupled, c, bf) ? a->record | 8 : a->record & ~(int64_t)8;
        if (!(a->record & 8))
            return NULL;
    }
    if (!(a->record & 8)) {
        if (a->kept)
            return PyErr_SetString(PyExc_ValueError, "kept is reused by odeint(record=8) only"), Py_None;
        return NULL;
    }
    if (c->f)
        return PyErr_SetString(PyExc_ValueError, "record=8 (kept stages) needs a built-in MLP or hybrid field, not a callable f"),
               Py_None;
    int st = nd_field_keep_len(&bf->f, &keep_len);
    if (st != ND_OK)
        return nd_raise_status(st, "odeint"), Py_None;
    PyObject *kept = a->kept ? Py_NewRef(a->kept) : nd_kept_box_new();
    if (kept && (a->box = nd_kept_take(kept, "odeint"))) {
        a->box->field_print = nd_field_fingerprint(&bf->f, c->itemsize);
        a->box->typenum = tn;
        a->box->coupled = coupled;
        if (coupled || a->box->ks || (a->box->ks = nd_ode_samples_kept_new())) {
            st = coupled ? nd_ode_kept_set_budget(a->box->k, a->kept_budget)
                         : nd_ode_samples_kept_set_budget(a->box->ks, a->kept_budget);
            if (st == ND_OK)
                return kept;
            nd_raise_status(st, "odeint");
        } else {
            PyErr_NoMemory();
        }
        a->box->busy = 0; /* the object may go below */
        a->box = NULL;
    }
    Py_XDECREF(kept);
    return Py_None;
}

/* -> (ys [len(t)] + y0.shape, y_last [y0.shape], info) */
static PyObject *odeint_body(PyObject *module, void *args, int tn)
{
    nd_odeint_args *a = args;
    const int coupled = nd_use_coupled(a->method, a->coupled);
    npy_intp B;
    nd_call c = {0};
    nd_bound_field bf = {0};
    PyObject *info = NULL, *res = NULL, *kept = NULL;
    void *counters = NULL;
    nd_ode_samples_stats st;
    int64_t ne = 0;
    if (coupled && (a->events || a->ev_c || (a->record & 2))) {
        PyErr_Format(PyExc_ValueError, "events and dense_output need an adaptive method solved per sample; "
                     "method='%s'%s has neither", nd_ode_method_name(a->method), a->coupled ? " with coupled=True" : "");
        return NULL;
    }
    if (nd_call_setup(&c, a->y0, tn, coupled || a->coupled, a->args, a->progress, &B) < 0)
        goto done;
    if (!PyCallable_Check(a->rhs)) {
        if (a->args && PyTuple_GET_SIZE(a->args)) {
            PyErr_SetString(PyExc_TypeError, "args are passed to a callable f only; a built-in field takes none");
            goto done;
        }
        if (nd_field_parse(&bf, a->rhs, tn) < 0 || nd_field_bind(&bf, a->y0, "y0", 0, 0) < 0)
            goto done;
    } else {
        c.f = a->rhs;
    }
    if ((kept = nd_odeint_kept_setup(a, coupled, &c, &bf, tn)) == Py_None)
        goto done;
    c.tape = (a->record & 4) != 0;
    if (a->record) {
        c.steps.size = 4 * sizeof(double);
        c.outs.size = 2 * sizeof(int64_t);
        c.states.size = (size_t)c.d * c.itemsize;
        const int nv = nd_ode_dense_vectors(a->method);
        c.dense.size = (a->record & 2) && nv > 0 ? (size_t)nv * (size_t)c.d * c.itemsize : 0;
    }
    if (nd_stats_alloc(coupled ? 1 : B, &st, &counters) < 0)
        goto done;
    void *ysd = ND_DATA(a->o[0]), *yld = ND_DATA(a->o[1]);
    int status = coupled ? nd_odeint_coupled(a, tn, &c, &bf, ysd, yld, &st)
                         : nd_odeint_rows(a, tn, &c, &bf, B, ysd, yld, &st, &ne);
    /* the user's exception first, with its traceback, then what the call raised or its status */
    if (nd_watch_reraise(&c.py.watch) || PyErr_Occurred() || nd_pyargs_raise(&c.py, status, "odeint") ||
        (c.nomem && !PyErr_NoMemory()))
        goto done;
    /* A failure is a status of the info: neurodyn.ode raises with the whole picture. */
    const npy_intp state[1] = {(npy_intp)c.d};
    const nd_batch_shape bs = nd_batch_of(a->y0, c.single);
    if ((info = nd_info(&st, &bs, &c, nd_ode_dense_vectors(a->method), ne, coupled ? PyArray_NDIM(a->y0) : 1,
                        coupled ? PyArray_DIMS(a->y0) : state)) &&
        (!kept || (nd_dict_put(info, "kept", Py_NewRef(kept)) == 0 &&
                   nd_dict_put(info, "kept_steps", PyLong_FromLongLong(coupled ? nd_ode_kept_steps(a->box->k)
                                                                               : nd_ode_samples_kept_steps(a->box->ks))) == 0)))
        res = PyTuple_Pack(3, a->o[0], a->o[1], info);
done:
    if (a->box)
        a->box->busy = 0;
    if (kept != Py_None)
        Py_XDECREF(kept);
    nd_call_free(&c);
    nd_field_release(&bf);
    PyMem_RawFree(counters);
    Py_XDECREF(info);
    return res;
}
ND_ENTRY(odeint, nd_odeint_args, nd_odeint_defaults,
         "odeint(f, y0, t, method, rtol, atol, dt, max_steps, args=None, coupled=False, events=None, event_c=None, "
         "event_d=None, direction=None, terminal=None, record=0, kept=None, progress=None) -> (ys, y_last, info): "
         "every row of y0 (its last axis) its own initial-value problem, or with coupled the whole array one system; "
         "record: 1 steps, 2 dense output, 4 tape, 8 kept stages (info['kept'], for ode_backprop; kept= an earlier "
         "one whose memory is reused; kept_budget= the bytes they may take, beyond which steps are not kept and "
         "ode_backprop replays them; info['kept_steps'] the steps kept), 16 the stages kept where the solve can "
         "keep them for the field (the coupled solver: an MLP or hybrid field; per sample: an MLP field), else "
         "none and no info['kept'])")

/* ---- gradients through a built-in field ------------------------------------------------ */

typedef struct {
    PyObject *field, *progress, *kept, *o[2]; /* o: y0bar, dparams; kept: odeint(record=8)'s */
    PyArrayObject *t, *steps, *outs, *states, *ybar, *y_end;
    int method, coupled;
    double rtol, atol, dt;
    int64_t max_steps, P;
    npy_intp B, d; /* the state as rows */
    nd_bound_field bf;
    void *work;
} nd_grad_args;

static void nd_grad_defaults(nd_grad_args *a) { ND_ODE_DEFAULTS(a); }

#define ND_GRAD_FIELD_ROWS(T)                                                                      \
    ND_SCALAR(T, field, "field", ND_ARG_OBJECT, 0),                                                \
        ND_F64IN(T, t, "t", ND_FINITE, "(times,)"),                   \
        ND_IN(T, ybar, "ybar", ND_TYPE | ND_FINITE, "(times, *state)")
#define ND_GRAD_METHOD_ROWS(T)                                                                     \
    ND_CHOICE(T, method, "method", ND_OPTIONAL, nd_ode_method_names),                              \
        ND_SCALAR(T, coupled, "coupled", ND_ARG_BOOL, ND_OPTIONAL)

/* What both gradients share: the field bound to the state (ybar[0]'s shape) with `slots` kept
 * linearisations, the state as B rows of d, the parameter count. */
static int nd_grad_setup(nd_grad_args *a, int slots)
{
    if (PyArray_NDIM(a->ybar) < 2)
        return PyErr_SetString(PyExc_ValueError, "ybar needs a state of at least one axis after its time axis"), -1;
    PyObject *state = PySequence_GetItem((PyObject *)a->ybar, 0);
    const int ok = state && nd_field_parse(&a->bf, a->field, PyArray_TYPE(a->ybar)) == 0 &&
                   nd_field_bind(&a->bf, (PyArrayObject *)state, "the state", slots, 0) == 0;
    if (ok)
        nd_state_rows((PyArrayObject *)state, nd_use_coupled(a->method, a->coupled) || a->coupled, &a->B, &a->d);
    Py_XDECREF(state);
    a->P = nd_field_param_count(&a->bf.f);
    return ok ? ND_OK : -1;
}

/* The gradient kernels through a built-in field: the coupled solver's on the whole state (B = 1,
 * d = its size), through the forward pass's kept stages when there are some, or the per-sample
 * driver's on rows, with the field's kept linearisations. */
#define ND_FIELD_GRADS(T, SFX)                                                                            \
    static int nd_field_backprop_##SFX(int coupled, int method, nd_field *f, int64_t B, int64_t d, int64_t P,   \
                                       int64_t nt, const double *t, const nd_ode_tape *tape,                  \
                                       const nd_ode_kept *kept, const nd_ode_samples_kept *kept_rows,         \
                                       const T *ybar, T *y0bar, T *dp, void *work)                            \
    {                                                                                                     \
        if (coupled) {                                                                                    \
            nd_ode_grad_fns_##SFX fns = {nd_field_eval_##SFX, nd_field_vjp_##SFX, nd_field_eval_keep_##SFX,  \
                                         nd_field_vjp_kept_##SFX, f};                                     \
            if (kept) /* the steps beyond the budget replayed through the slots (nd_backprop_setup) */    \
                return nd_ode_backprop_kept_##SFX(method, nd_ode_kept_complete(kept) ? NULL : &fns,         \
                                                  nd_field_vjp_kept_at_##SFX, f, B * d, P, nt, t, tape, kept, \
                                                  ybar, y0bar, dp, work);                                 \
            return nd_ode_backprop_##SFX(method, &fns, B * d, P, nt, t, tape, ybar, y0bar, dp, work);        \
        }                                                                                                 \
        nd_ode_samples_grad_fns_##SFX fns = {nd_field_eval_rows_##SFX, nd_field_vjp_rows_##SFX,            \
                                             nd_field_eval_rows_keep_##SFX, nd_field_vjp_rows_kept_##SFX, f}; \
        if (kept_rows)                                                                                    \
            return nd_ode_samples_backprop_kept_##SFX(method, &fns, nd_field_vjp_rows_kept_at_##SFX, B, d, P, nt, t, \
                                                      tape, kept_rows, ybar, y0bar, dp, work);            \
        return nd_ode_samples_backprop_##SFX(method, &fns, B, d, P, nt, t, tape, ybar, y0bar, dp, work);     \
    }                                                                                                     \
    static int nd_field_adjoint_##SFX(int coupled, const nd_ode_opts *o, const nd_ode_samples_opts *so,      \
                                      nd_field *f, int64_t B, int64_t d, int64_t P, int64_t nt, const double *t, \
                                      const T *y_end, const T *ybar, T *y0bar, T *dp, void *work,           \
                                      nd_ode_samples_stats *st)                                           \
    {                                                                                                     \
        if (coupled) {                                                                                    \
            nd_ode_grad_fns_##SFX fns = {nd_field_eval_##SFX, nd_field_vjp_##SFX, nd_field_eval_keep_##SFX,  \
                                         nd_field_vjp_kept_##SFX, f};                                     \
            nd_ode_stats cst;                                                                             \
            const int status = nd_ode_adjoint_##SFX(&fns, B * d, P, nt, t, y_end, ybar, o, y0bar, dp, work, &cst); \
            nd_stats_from_coupled(&cst, st);                                                              \
            return status;                                                                                \
        }                                                                                                 \
        nd_ode_samples_grad_fns_##SFX fns = {nd_field_eval_rows_##SFX, nd_field_vjp_rows_##SFX,            \
                                             nd_field_eval_rows_keep_##SFX, nd_field_vjp_rows_kept_##SFX, f}; \
        return nd_ode_samples_adjoint_##SFX(&fns, B, d, P, nt, t, y_end, ybar, so, y0bar, dp, work, st);     \
    }
ND_FIELD_GRADS(float, f32)
ND_FIELD_GRADS(double, f64)

#define ND_GRAD_ROWS(check)                                                                         \
    ND_CHECK(check), ND_KEEP(nd_grad_args, bf.keep), ND_WORK(nd_grad_args, bf.work), ND_WORK(nd_grad_args, work), \
        ND_DIM(nd_grad_args, P, "params"), ND_OUT(nd_grad_args, o[0], "y0bar", 0, "(*state)"),           \
        ND_OUT(nd_grad_args, o[1], "dparams", 0, "(params,)")

/* kept (odeint(record=8)'s) goes with the solver (coupled or per sample) and the field that made it. */
static int nd_backprop_kept_rule(const nd_grad_args *a, int coupled)
{
    const nd_kept_box *box = nd_kept_get(a->kept, "ode_backprop");
    if (!box)
        return -1;
    if (box->coupled != coupled)
        return PyErr_Format(PyExc_ValueError, "ode_backprop: kept holds the stages of a %s solve, and this gradient "
                            "goes through the %s", box->coupled ? "coupled" : "per-sample",
                            coupled ? "coupled solver" : "per-sample driver"), -1;
    if (box->typenum != PyArray_TYPE(a->ybar) ||
        box->field_print != nd_field_fingerprint(&a->bf.f, (size_t)PyArray_ITEMSIZE(a->ybar)))
        return PyErr_SetString(PyExc_ValueError, "ode_backprop: kept holds the stages of another field (its "
                               "parameters, layers or dtype differ from field's)"), -1;
    return 0;
}

static int nd_backprop_setup(nd_grad_args *a)
{
    const int coupled = nd_use_coupled(a->method, a->coupled);
    const size_t item = (size_t)PyArray_ITEMSIZE(a->ybar);
    size_t len;
    /* the coupled solver's kept stages need no slots of the field's scratch when they hold every
     * step's (the replay of the steps beyond their budget does; the per-sample backward pass
     * evaluates each step's first stage and some rounds again) */
    const nd_kept_box *box = nd_kept_get(a->kept, NULL); /* another object is refused below */
    const int slots = coupled ? (box && nd_ode_kept_complete(box->k) ? 0 : nd_ode_method_stages(a->method))
                              : nd_ode_samples_backprop_slots(a->method);
    if (nd_grad_setup(a, slots) < 0 || (a->kept && nd_backprop_kept_rule(a, coupled) < 0))
        return -1;
    if ((int64_t)PyArray_SIZE(a->states) != PyArray_DIM(a->steps, 0) * a->d)
        return PyErr_SetString(PyExc_ValueError, "states must hold one state per step of the tape"), -1;
    const int st = coupled ? nd_ode_backprop_workspace_len(a->method, a->B * a->d, &len)
                           : nd_ode_samples_backprop_workspace_size(a->method, a->B, a->d, item, &len);
    return (a->work = nd_workspace(st, &len, coupled ? item : 1, "ode_backprop")) ? ND_OK : -1;
}

static const nd_arg ode_backprop_args[] = {
    ND_GRAD_FIELD_ROWS(nd_grad_args),
    ND_F64IN(nd_grad_args, steps, "steps", 0, "(steps, 4)"),
    ND_I64IN(nd_grad_args, outs, "outs", 0, "(steps, 2)"),
    ND_IN(nd_grad_args, states, "states", 0, "(steps, ...)"),
    ND_GRAD_METHOD_ROWS(nd_grad_args),
    ND_OBJ(nd_grad_args, kept, "kept", ND_ARG_OBJECT, ND_OPTIONAL | ND_NONE), ND_GRAD_ROWS(nd_backprop_setup),
    {NULL}};

/* -> (y0bar, dparams): exact backpropagation through the recorded steps of odeint(record=4). */
static int ode_backprop_run(PyObject *module, void *args, int tn)
{
    nd_grad_args *a = args;
    const nd_ode_tape tape = {PyArray_DIM(a->steps, 0), PyArray_DATA(a->steps), PyArray_DATA(a->outs),
                              PyArray_DATA(a->states)};
    nd_kept_box *box = a->kept ? nd_kept_take(a->kept, "ode_backprop") : NULL;
    if (a->kept && !box)
        return ND_ERR_ARG;
    int st = ND_OK;
    ND_NOGIL(st, ND_DISPATCH(tn, nd_field_backprop, nd_use_coupled(a->method, a->coupled), a->method, &a->bf.f, a->B,
                             a->d, a->P, PyArray_DIM(a->t, 0), PyArray_DATA(a->t), &tape, box ? box->k : NULL,
                             box ? box->ks : NULL, ND_DATA(a->ybar), ND_DATA(a->o[0]), ND_DATA(a->o[1]), a->work));
    if (box)
        box->busy = 0;
    return st;
}
ND_RUN_ENTRY(ode_backprop, nd_grad_args, nd_grad_defaults,
             "ode_backprop(field, t, ybar, steps, outs, states, method, coupled=False, kept=None) -> (y0bar, dparams): "
             "exact backpropagation through the steps recorded by odeint(record=4), reading the stages odeint(record=12) "
             "kept in info['kept'] instead of evaluating them again when kept is given (the steps beyond its "
             "kept_budget evaluated again)")

static int nd_adjoint_setup(nd_grad_args *a)
{
    const int coupled = nd_use_coupled(a->method, a->coupled);
    const size_t item = (size_t)PyArray_ITEMSIZE(a->ybar);
    size_t len;
    if (nd_grad_setup(a, 1) < 0)
        return -1;
    const int st = coupled ? nd_ode_adjoint_workspace_len(a->method, a->B * a->d, a->P, &len)
                           : nd_ode_samples_adjoint_workspace_size(a->method, a->B, a->d, item, &len);
    return (a->work = nd_workspace(st, &len, coupled ? item : 1, "ode_adjoint")) ? ND_OK : -1;
}

static const nd_arg ode_adjoint_args[] = {
    ND_GRAD_FIELD_ROWS(nd_grad_args),
    ND_IN(nd_grad_args, y_end, "y_end", ND_FINITE, "(*state)"),
    ND_GRAD_METHOD_ROWS(nd_grad_args),
    ND_TOLERANCES(nd_grad_args, rtol, atol),
    ND_SCALAR(nd_grad_args, dt, "dt", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(nd_grad_args, max_steps, "max_steps", ND_ARG_INT, ND_OPTIONAL),
    ND_PROGRESS(nd_grad_args, progress), ND_GRAD_ROWS(nd_adjoint_setup),
    {NULL}};

/* -> (y0bar, dparams, info): the continuous adjoint from y_end back to t[0]. */
static PyObject *ode_adjoint_body(PyObject *module, void *args, int tn)
{
    nd_grad_args *a = args;
    const int coupled = nd_use_coupled(a->method, a->coupled);
    nd_call c = {0};
    PyObject *info = NULL, *res = NULL;
    void *counters = NULL;
    npy_intp B;
    nd_ode_samples_stats st;
    if (nd_call_setup(&c, a->y_end, tn, coupled || a->coupled, NULL, a->progress, &B) < 0 ||
        nd_stats_alloc(B, &st, &counters) < 0)
        goto done;
    nd_ode_opts o;
    nd_ode_opts_default(&o);
    nd_ode_samples_opts so;
    nd_ode_samples_opts_default(&so);
    o.method = so.method = a->method, o.rtol = so.rtol = a->rtol, o.atol = so.atol = a->atol;
    o.dt = so.dt = a->dt, o.max_steps = so.max_steps = a->max_steps;
    o.poll = so.poll = nd_watch_poll, o.poll_ctx = so.poll_ctx = &c.py.watch;
    int status = ND_OK;
    ND_NOGIL(status, ND_DISPATCH(tn, nd_field_adjoint, coupled, &o, &so, &a->bf.f, B, c.d, a->P, PyArray_DIM(a->t, 0),
                                 PyArray_DATA(a->t), ND_DATA(a->y_end), ND_DATA(a->ybar), ND_DATA(a->o[0]),
                                 ND_DATA(a->o[1]), a->work, &st));
    if (nd_pyargs_raise(&c.py, status, "ode_adjoint"))
        goto done;
    const nd_batch_shape bs = nd_batch_of(a->y_end, c.single);
    if ((info = nd_info(&st, &bs, &c, 0, 0, 0, NULL)))
        res = PyTuple_Pack(3, a->o[0], a->o[1], info);
done:
    nd_call_free(&c);
    PyMem_RawFree(counters);
    Py_XDECREF(info);
    return res;
}
ND_ENTRY(ode_adjoint, nd_grad_args, nd_grad_defaults,
         "ode_adjoint(field, t, ybar, y_end, method, coupled, rtol, atol, dt, max_steps, progress=None) -> (y0bar, "
         "dparams, info): the continuous adjoint, per sample unless coupled; a failure is info's status")

/* ---- dense output and the solver options' rules ----------------------------------------- */

typedef struct {
    PyArrayObject *theta, *coef;
    int method;
    int64_t m, d;
    PyObject *out;
} nd_dense_args;

/* The method's number of dense-output vectors. */
static int nd_dense_vectors_rule(const nd_dense_args *a)
{
    const npy_intp cd[3] = {a->m, nd_ode_dense_vectors(a->method), a->d};
    return nd_check_shape(a->coef, "coef", 3, cd, "(m, vectors of the method, d)") < 0 ? -1 : ND_OK;
}

/* -> y [m, d]: row i's dense output at theta[i]. */
static const nd_arg ode_dense_eval_args[] = {
    ND_F64IN(nd_dense_args, theta, "theta", ND_FINITE, "(m,)"), ND_IN(nd_dense_args, coef, "coef", ND_TYPE, "(m, vectors, d)"),
    ND_CHOICE(nd_dense_args, method, "method", 0, nd_ode_method_names), ND_DIM(nd_dense_args, m, "m"),
    ND_DIM(nd_dense_args, d, "d"), ND_CHECK(nd_dense_vectors_rule), ND_OUT(nd_dense_args, out, "y", 0, "(m, d)"), {NULL}};
ND_KERNEL_ENTRY(ode_dense_eval, nd_dense_args, NULL,
                ND_DISPATCH(tn, nd_ode_dense_eval, a->method, a->m, a->d, ND_DATA(a->theta), ND_DATA(a->coef),
                            ND_DATA(a->out)),
                "ode_dense_eval(theta, coef, method) -> y [m, d]: the dense output of each row's step at theta")

typedef struct {
    nd_ode_opts o;
} nd_check_args;

static void nd_check_defaults(nd_check_args *a) { nd_ode_opts_default(&a->o); }
static int nd_ode_options_rule(const nd_check_args *a) { return nd_ode_check_opts(&a->o); }

static const nd_arg ode_check_options_args[] = {
    ND_CHOICE(nd_check_args, o.method, "method", ND_OPTIONAL, nd_ode_method_names),
    ND_TOLERANCES(nd_check_args, o.rtol, o.atol),
    ND_SCALAR(nd_check_args, o.dt, "dt", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(nd_check_args, o.max_steps, "max_steps", ND_ARG_INT, ND_OPTIONAL), ND_CHECK(nd_ode_options_rule), {NULL}};
ND_CHECK_ENTRY(ode_check_options, nd_check_args, nd_check_defaults,
               "ode_check_options(method, rtol, atol, dt, max_steps): raises as a solver would for bad options")

static const nd_table nd_ode_tables[] = {{"ode_methods", nd_ode_method_names},
                                         {"ode_adaptive_methods", nd_ode_adaptive_method_names},
                                         {NULL, NULL}};
ND_FAMILY(nd_ode_family, nd_ode_tables, &odeint_entry, &ode_backprop_entry, &ode_adjoint_entry, &ode_dense_eval_entry,
          &ode_check_options_entry);

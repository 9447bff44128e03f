/* Binding of the energy-based family: energies and the Langevin / MALA sampler. */
#include "nd_bind.h"

#include "nd_poll.h"

#include <string.h>

#include "nd_ebm.h"
#include "nd_nn.h" /* nd_act_name: the activations' table */
#include "nd_status.h"

/* ---- built-in energies ------------------------------------------------------------------ */

/* Parameter i of an energy, of the state's dtype and the given axes (-1: any), kept alive in
 * `keep`; its size along axis `axis` goes to *size when size is not NULL. */
static const void *nd_eparam(PyObject *params, Py_ssize_t i, int tn, int ndim, const npy_intp *dims, PyObject *keep,
                             int axis, int64_t *size)
{
    char name[48];
    snprintf(name, sizeof name, "energy parameter %zd", i);
    if (i >= PyTuple_GET_SIZE(params)) {
        PyErr_SetString(PyExc_ValueError, "malformed energy spec");
        return NULL;
    }
    PyArrayObject *a = nd_keep_param(keep, PyTuple_GET_ITEM(params, i), tn, ndim, dims, name, "the energy's shape");
    if (a && size)
        *size = PyArray_DIM(a, axis);
    return a ? PyArray_DATA(a) : NULL;
}

/* spec = (kind name, params, activation name, (barrier, tilt)) as built by neurodyn.energies
 * and neurodyn.EBM; d is the state's dimension and B the batch the workspace must hold. */
static int nd_parse_energy(PyObject *spec, int tn, npy_intp d, npy_intp B, nd_energy *e, PyObject *keep)
{
    PyObject *kind, *params, *act;
    memset(e, 0, sizeof *e);
    if (!PyTuple_Check(spec)) { /* PyArg_ParseTuple takes a tuple only (SystemError otherwise) */
        PyErr_Format(PyExc_TypeError, "energy spec must be a tuple, got %R", spec);
        return -1;
    }
    if (!PyArg_ParseTuple(spec, "OO!O(dd);energy spec", &kind, &PyTuple_Type, &params, &act, &e->barrier, &e->tilt) ||
        (e->kind = nd_choice_index(kind, "energy kind", nd_energy_kind_names)) < 0 ||
        (e->act = nd_choice_index(act, "activation", nd_act_names)) < 0)
        return -1;
    e->dim = d;
    e->batch_cap = B;
    const Py_ssize_t np_ = PyTuple_GET_SIZE(params);
    if (e->kind == ND_ENERGY_MLP) {
        e->n_layers = (int)(np_ / 2 - 1);
        if (np_ < 2 || np_ % 2 || e->n_layers > ND_ENERGY_MAX_LAYERS) {
            PyErr_SetString(PyExc_ValueError, "malformed energy spec");
            return -1;
        }
        e->widths[0] = d;
        for (int l = 0; l <= e->n_layers; ++l) {
            int64_t out = 1;
            const npy_intp wd[2] = {e->widths[l], l == e->n_layers ? 1 : -1};
            if (!(e->weights[l] = nd_eparam(params, 2 * l, tn, 2, wd, keep, 1, &out)))
                return -1;
            if (l < e->n_layers)
                e->widths[l + 1] = out;
            const npy_intp bd[1] = {out};
            if (!(e->biases[l] = nd_eparam(params, 2 * l + 1, tn, 1, bd, keep, 0, NULL)))
                return -1;
        }
    } else if (e->kind == ND_ENERGY_QUADRATIC) {
        const npy_intp md[1] = {d}, pd[2] = {d, d};
        if (!(e->mean = nd_eparam(params, 0, tn, 1, md, keep, 0, NULL)) ||
            !(e->precision = nd_eparam(params, 1, tn, 2, pd, keep, 0, NULL)))
            return -1;
    } else if (e->kind == ND_ENERGY_GMM) {
        const npy_intp md[2] = {-1, d};
        if (!(e->mean = nd_eparam(params, 0, tn, 2, md, keep, 0, &e->components)))
            return -1;
        const npy_intp pd[3] = {e->components, d, d}, cd[1] = {e->components};
        if (!(e->precision = nd_eparam(params, 1, tn, 3, pd, keep, 0, NULL)) ||
            !(e->logc = nd_eparam(params, 2, tn, 1, cd, keep, 0, NULL)))
            return -1;
    }
    int st = nd_energy_check(e);
    return st == ND_OK ? 0 : (nd_raise_status(st, "energy"), -1);
}

/* Parses the energy for x [B, d] and gives it its workspace (freed by the caller). */
static void *nd_energy_setup(PyObject *spec, PyArrayObject *x, int tn, nd_energy *e, PyObject *keep)
{
    size_t len;
    const npy_intp B = PyArray_DIM(x, 0), d = PyArray_DIM(x, 1);
    if (nd_parse_energy(spec, tn, d, B, e, keep) < 0)
        return NULL;
    return e->work = nd_workspace(nd_energy_workspace_len(e, B, &len), &len, PyArray_ITEMSIZE(x), "energy workspace");
}

typedef struct {
    PyObject *spec;
    PyArrayObject *x;
} nd_energy_args;

static const nd_arg energy_eval_args[] = {
    ND_SCALAR(nd_energy_args, spec, "spec", ND_ARG_OBJECT, 0),
    ND_IN(nd_energy_args, x, "x", ND_TYPE | ND_FINITE, "(batch, dim)"),
    {NULL}};

/* -> (E [B], grad [B, d]) */
static PyObject *energy_eval_body(PyObject *module, void *args, int tn)
{
    nd_energy_args *a = args;
    nd_energy e;
    PyObject *keep = PyList_New(0), *o[2] = {NULL, NULL};
    void *work = keep ? nd_energy_setup(a->spec, a->x, tn, &e, keep) : NULL;
    const npy_intp B = PyArray_DIM(a->x, 0), d = PyArray_DIM(a->x, 1);
    if (work)
        o[0] = nd_empty(tn, 1, B), o[1] = nd_empty(tn, 2, B, d);
    int st = ND_OK;
    ND_NOGIL(st, ND_DISPATCH(tn, nd_energy_eval, &e, B, ND_DATA(a->x), ND_DATA(o[0]), ND_DATA(o[1])));
    PyMem_RawFree(work);
    Py_XDECREF(keep);
    return nd_finish(st, "energy_eval", 2, o);
}
ND_ENTRY(energy_eval, nd_energy_args, NULL, "energy_eval(spec, x) -> (E, grad)")

/* ---- a Python energy -------------------------------------------------------------------- */

/* f(x) -> (E [B], grad [B, d]), called with the GIL for each evaluation. */
typedef struct {
    PyObject *f, *module;
    int typenum;
    npy_intp d;
    int64_t evaluations;
    nd_watch watch; /* Ctrl-C, progress and the first exception of f */
} nd_py_energy;

/* Copies a returned array of the expected shape into dst: -1 with an exception for a wrong
 * kind or shape, 1 for NaN or inf, else 0. */
static int nd_copy_result(PyObject *obj, int tn, int ndim, const npy_intp *dims, void *dst, const char *name)
{
    PyArrayObject *a = nd_float_array(obj, tn, name);
    if (!a)
        return -1;
    int bad = nd_check_shape(a, name, ndim, dims, ndim == 1 ? "(chains,)" : "(chains, dim), that of x") < 0;
    int nonfinite = !bad && nd_check_finite(a, name) < 0;
    if (nonfinite)
        PyErr_Clear();
    if (!bad)
        memcpy(dst, PyArray_DATA(a), (size_t)PyArray_NBYTES(a));
    Py_DECREF(a);
    return bad ? -1 : nonfinite;
}

/* NaN or inf returned by a Python energy stops the chains at that evaluation, as a non-finite
 * right-hand side stops odeint, instead of moving them by it (or, with MALA, rejecting every
 * move in silence). With the GIL. */
static void nd_raise_energy_nonfinite(nd_py_energy *c, const char *what)
{
    nd_raise_integration(c->module,
                         PyUnicode_FromFormat("the energy callable returned NaN or inf in its %s at evaluation %lld; "
                                              "the chains stop there", what, (long long)c->evaluations),
                         Py_BuildValue("{s:s,s:L}", "status", "nonfinite", "evaluation", (long long)c->evaluations));
}

static int nd_py_energy_call(nd_py_energy *c, int64_t B, const void *x, void *E, void *grad)
{
    PyGILState_STATE gil = PyGILState_Ensure();
    int ok = 0;
    c->evaluations++;
    const npy_intp dims[2] = {(npy_intp)B, c->d};
    PyObject *arr = nd_empty(c->typenum, 2, dims[0], dims[1]);
    if (arr) {
        memcpy(PyArray_DATA((PyArrayObject *)arr), x, (size_t)PyArray_NBYTES((PyArrayObject *)arr));
        PyObject *res = PyObject_CallOneArg(c->f, arr);
        if (res) {
            if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 2)
                PyErr_SetString(PyExc_TypeError, "the energy callable must return a tuple (E, grad)");
            else {
                int e = nd_copy_result(PyTuple_GET_ITEM(res, 0), c->typenum, 1, dims, E, "the returned energy");
                int g = e < 0 ? -1 : nd_copy_result(PyTuple_GET_ITEM(res, 1), c->typenum, 2, dims, grad,
                                                     "the returned gradient");
                ok = e == 0 && g == 0;
                if (e > 0 || g > 0)
                    nd_raise_energy_nonfinite(c, e > 0 ? "energy" : "gradient");
            }
            Py_DECREF(res);
        }
        Py_DECREF(arr);
    }
    return nd_watch_callback_done(&c->watch, ok, gil);
}

static int nd_py_energy_f32(void *c, int64_t B, const float *x, float *E, float *g) { return nd_py_energy_call(c, B, x, E, g); }
static int nd_py_energy_f64(void *c, int64_t B, const double *x, double *E, double *g) { return nd_py_energy_call(c, B, x, E, g); }

/* ---- langevin --------------------------------------------------------------------------- */

typedef struct {
    PyObject *energy, *clamp, *grad_clip, *progress;
    PyArrayObject *x0;
    nd_langevin_opts o;
} nd_langevin_args;

static const nd_arg langevin_args[] = {
    ND_SCALAR(nd_langevin_args, energy, "energy", ND_ARG_OBJECT, 0),
    ND_IN(nd_langevin_args, x0, "x0", ND_TYPE | ND_FINITE, "(chains, dim)"),
    ND_SCALAR(nd_langevin_args, o.steps, "steps", ND_ARG_INT, ND_OPTIONAL),
    ND_SCALAR(nd_langevin_args, o.step_size, "step_size", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(nd_langevin_args, o.noise_scale, "noise_scale", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(nd_langevin_args, clamp, "clamp", ND_ARG_OBJECT, ND_OPTIONAL | ND_NONE),
    ND_SCALAR(nd_langevin_args, grad_clip, "grad_clip", ND_ARG_OBJECT, ND_OPTIONAL | ND_NONE),
    ND_SCALAR(nd_langevin_args, o.mala, "mala", ND_ARG_BOOL, ND_OPTIONAL),
    ND_SCALAR(nd_langevin_args, o.seed, "seed", ND_ARG_SEED, ND_OPTIONAL),
    ND_SCALAR(nd_langevin_args, o.stream, "stream", ND_ARG_SEED, ND_OPTIONAL),
    ND_SCALAR(nd_langevin_args, o.chain0, "chain0", ND_ARG_INT, ND_OPTIONAL),
    ND_SCALAR(nd_langevin_args, o.chains, "chains", ND_ARG_INT, ND_OPTIONAL),
    ND_PROGRESS(nd_langevin_args, progress),
    {NULL}};

static void nd_langevin_args_default(nd_langevin_args *a) { nd_langevin_opts_default(&a->o); }

static void nd_raise_langevin_nonfinite(PyObject *module)
{
    nd_raise_integration(module,
                         PyUnicode_FromString("Langevin sampling produced NaN or inf: the step size is too large for "
                                              "this energy (or its gradient overflows); lower step_size or set "
                                              "grad_clip"),
                         Py_BuildValue("{s:s}", "status", "nonfinite"));
}

/* -> (x, accepted | None); x0 holds chains [chain0, chain0 + B) of a run of `chains` (0: B). */
static PyObject *langevin_body(PyObject *module, void *args, int tn)
{
    nd_langevin_args *a = args;
    if (a->clamp && (!PySequence_Check(a->clamp) || PyUnicode_Check(a->clamp)))
        return PyErr_Format(PyExc_TypeError, "clamp must be a pair (min, max), got %R", a->clamp);
    if (a->clamp) {
        static const nd_arg lo = {.name = "clamp[0]", .kind = ND_ARG_DOUBLE}, hi = {.name = "clamp[1]", .kind = ND_ARG_DOUBLE};
        PyObject *pair = PySequence_Tuple(a->clamp);
        if (pair && PyTuple_GET_SIZE(pair) != 2)
            PyErr_Format(PyExc_ValueError, "clamp must be (min, max), got %R", a->clamp);
        int ok = pair && PyTuple_GET_SIZE(pair) == 2 &&
                 nd_parse_double(&lo, PyTuple_GET_ITEM(pair, 0), &a->o.clamp_lo) == 0 &&
                 nd_parse_double(&hi, PyTuple_GET_ITEM(pair, 1), &a->o.clamp_hi) == 0;
        Py_XDECREF(pair);
        if (!ok)
            return NULL;
        a->o.clamp = 1;
    }
    if (a->grad_clip) {
        static const nd_arg clip = {.name = "grad_clip", .kind = ND_ARG_DOUBLE};
        if (nd_parse_double(&clip, a->grad_clip, &a->o.grad_clip) < 0)
            return NULL;
        a->o.clip = 1;
    }
    const npy_intp B = PyArray_DIM(a->x0, 0), d = PyArray_DIM(a->x0, 1);
    int st = nd_langevin_check(&a->o, B);
    if (st != ND_OK)
        return nd_raise_status(st, "langevin");
    const int builtin = PyTuple_Check(a->energy);
    if (!builtin && !PyCallable_Check(a->energy))
        return PyErr_Format(PyExc_TypeError, "energy must be an EBM, a neurodyn.energies energy, or a callable");
    nd_energy e;
    nd_py_energy pc = {a->energy, module, tn, d, 0, {0}};
    PyObject *keep = PyList_New(0), *o[2] = {NULL, NULL}; /* x, accepted */
    void *ework = NULL, *work = NULL;
    size_t len;
    if (keep && (!builtin || (ework = nd_energy_setup(a->energy, a->x0, tn, &e, keep))) &&
        (work = nd_workspace(nd_langevin_workspace_len(B, d, &len), &len, PyArray_ITEMSIZE(a->x0), "langevin")) &&
        (o[0] = PyArray_NewCopy(a->x0, NPY_CORDER)) && a->o.mala)
        o[1] = nd_empty(NPY_INT64, 1, B);
    if (!PyErr_Occurred()) {
        pc.watch.progress = a->progress;
        nd_poll_scope scope; /* the steps and the energies' kernels poll Ctrl-C and progress */
        nd_poll_begin(&scope, nd_watch_poll, &pc.watch);
        void *x = ND_DATA(o[0]), *ctx = builtin ? (void *)&e : (void *)&pc;
        int64_t *acc = ND_DATA(o[1]);
        ND_NOGIL(st, tn == NPY_FLOAT
                         ? nd_langevin_f32(builtin ? nd_energy_eval_f32 : nd_py_energy_f32, ctx, &a->o, B, d, x, acc, work)
                         : nd_langevin_f64(builtin ? nd_energy_eval_f64 : nd_py_energy_f64, ctx, &a->o, B, d, x, acc,
                                           work));
        nd_poll_end(&scope);
        if (!nd_watch_reraise(&pc.watch) && st == ND_ERR_NONFINITE)
            nd_raise_langevin_nonfinite(module);
    }
    nd_watch_clear(&pc.watch);
    PyMem_RawFree(ework);
    PyMem_RawFree(work);
    Py_XDECREF(keep);
    return nd_finish(st, "langevin", 2, o);
}
ND_ENTRY(langevin, nd_langevin_args, nd_langevin_args_default,
         "langevin(energy, x0, steps, step_size, noise_scale, clamp=None, grad_clip=0, mala=False, seed=0, stream=0, "
         "chain0=0, chains=0, progress=None) -> (x, accepted | None)")

static const nd_table nd_ebm_tables[] = {{"energy_kinds", nd_energy_kind_names}, {NULL}};
ND_FAMILY(nd_ebm_family, nd_ebm_tables, &energy_eval_entry, &langevin_entry);

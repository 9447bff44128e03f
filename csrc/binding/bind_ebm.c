/* Binding of the energy-based family: energies and the Langevin / MALA sampler. */
#include "nd_bind.h"

#include "nd_poll.h"

#include <string.h>

#include "nd_ebm.h"
#include "nd_nn.h" /* nd_act_name: the activations' table */
#include "nd_status.h"

/* ---- built-in energies ------------------------------------------------------------------ */

/* The parameters of each kind, for a state x [batch, dim]: an MLP's layers (the last one's
 * output is the energy, width 1), a quadratic's mean and precision, a mixture's components. */
#define E nd_energy
static const nd_item nd_energy_mlp[] = {
    ND_ITEM(E, weights, "energy parameter %zd", ND_REPEAT, "(width[l], width[l+1])"),
    ND_ITEM(E, biases, "energy parameter %zd", ND_REPEAT, "(width[l+1],)"), {NULL}};
static const nd_item nd_energy_quadratic[] = {ND_ITEM(E, mean, "energy parameter %zd", 0, "(dim,)"),
                                              ND_ITEM(E, precision, "energy parameter %zd", 0, "(dim, dim)"), {NULL}};
static const nd_item nd_energy_gmm[] = {ND_ITEM(E, mean, "energy parameter %zd", 0, "(components, dim)"),
                                        ND_ITEM(E, precision, "energy parameter %zd", 0, "(components, dim, dim)"),
                                        ND_ITEM(E, logc, "energy parameter %zd", 0, "(components,)"), {NULL}};
static const nd_item nd_energy_none[] = {{NULL}};
#undef E

/* spec = (kind name, params, activation name, (barrier, tilt)) as built by neurodyn.energies
 * and neurodyn.EBM; d is the state's dimension and B the batch the workspace must hold. */
static int nd_parse_energy(PyObject *spec, int tn, npy_intp d, npy_intp B, nd_energy *e, PyObject *keep)
{
    static const nd_item *const kinds[] = {[ND_ENERGY_MLP] = nd_energy_mlp, [ND_ENERGY_QUADRATIC] = nd_energy_quadratic,
                                           [ND_ENERGY_GMM] = nd_energy_gmm, [ND_ENERGY_DOUBLE_WELL] = nd_energy_none};
    PyObject *kind, *params, *act;
    nd_spec s;
    memset(e, 0, sizeof *e);
    if (!PyTuple_Check(spec)) { /* PyArg_ParseTuple takes a tuple only (SystemError otherwise) */
        PyErr_Format(PyExc_TypeError, "energy spec must be a tuple, got %R", spec);
        return -1;
    }
    if (!PyArg_ParseTuple(spec, "OO!O(dd);energy spec", &kind, &PyTuple_Type, &params, &act, &e->barrier, &e->tilt) ||
        (e->kind = nd_choice_index(kind, "energy kind", nd_energy_kind_names)) < 0 ||
        (e->act = nd_choice_index(act, "activation", nd_act_names)) < 0 || nd_spec_init(&s, params, tn, keep, "energy") < 0)
        return -1;
    e->dim = d;
    e->batch_cap = B;
    /* the MLP: n_layers hidden layers of (W, b), then the output layer's */
    const Py_ssize_t np_ = PyTuple_GET_SIZE(params);
    e->n_layers = e->kind == ND_ENERGY_MLP ? (int)(np_ / 2 - 1) : 0;
    char last[32];
    snprintf(last, sizeof last, "width[%d]", e->n_layers + 1);
    if (e->kind == ND_ENERGY_MLP && (np_ < 2 || np_ % 2 || e->n_layers > ND_ENERGY_MAX_LAYERS))
        return PyErr_SetString(PyExc_ValueError, "malformed energy spec"), -1;
    if (nd_spec_bind(&s, "dim", d, "x") < 0 || nd_spec_bind(&s, "width[0]", d, "x") < 0 ||
        nd_spec_bind(&s, last, 1, "the energy (a scalar)") < 0 || nd_spec_walk(&s, kinds[e->kind], e->n_layers + 1, e) < 0)
        return -1;
    nd_spec_widths(&s, e->n_layers + 1, e->widths);
    e->components = e->kind == ND_ENERGY_GMM ? nd_spec_size(&s, "components") : 0;
    return nd_status_check(nd_energy_check(e), "energy");
}

/* Parses the energy for x [B, d] and gives it its workspace (e->work, freed by the caller). */
static int nd_energy_setup(PyObject *spec, PyArrayObject *x, nd_energy *e, PyObject **keep)
{
    size_t len;
    const npy_intp B = PyArray_DIM(x, 0), d = PyArray_DIM(x, 1);
    if (!(*keep = PyList_New(0)) || nd_parse_energy(spec, PyArray_TYPE(x), d, B, e, *keep) < 0)
        return -1;
    e->work = nd_workspace(nd_energy_workspace_len(e, B, &len), &len, PyArray_ITEMSIZE(x), "energy workspace");
    if (!e->work)
        return -1;
    ND_DISPATCH(PyArray_TYPE(x), nd_energy_prepare, e);
    return ND_OK;
}

typedef struct {
    PyObject *spec, *keep, *o[2];
    PyArrayObject *x;
    nd_energy e;
    int64_t B, d;
} nd_energy_args;
#define T nd_energy_args

static int nd_energy_eval_setup(T *a) { return nd_energy_setup(a->spec, a->x, &a->e, &a->keep); }

static const nd_arg energy_eval_args[] = {
    ND_SCALAR(T, spec, "spec", ND_ARG_OBJECT, 0), ND_IN(T, x, "x", ND_TYPE | ND_FINITE, "(batch, dim)"),
    ND_CHECK(nd_energy_eval_setup), ND_KEEP(T, keep), ND_WORK(T, e.work), ND_DIM(T, B, "batch"),
    ND_OUT(T, o[0], "E", 0, "(batch,)"), ND_OUT(T, o[1], "grad", 0, "(batch, dim)"), {NULL}};
ND_KERNEL_ENTRY(energy_eval, T, NULL, ND_DISPATCH(tn, nd_energy_eval, &a->e, a->B, ND_DATA(a->x), ND_DATA(a->o[0]),
                                                  ND_DATA(a->o[1])),
                "energy_eval(spec, x) -> (E, grad)")
#undef T

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
    PyObject *arr = nd_array_copy(c->typenum, 2, dims, x); /* fresh: f may keep or modify it */
    if (arr) {
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
    PyObject *energy, *clamp, *grad_clip, *progress, *keep, *res[2];
    PyArrayObject *x0;
    nd_langevin_opts o;
    nd_energy e;
    int64_t B, d;
} nd_langevin_args;
#define T nd_langevin_args

/* clamp (min, max) and grad_clip into the options, the options' rules, and a built-in energy. */
static int nd_langevin_setup(T *a)
{
    if (a->clamp && (!PySequence_Check(a->clamp) || PyUnicode_Check(a->clamp)))
        return PyErr_Format(PyExc_TypeError, "clamp must be a pair (min, max), got %R", a->clamp), -1;
    if (a->clamp) {
        PyObject *pair = PySequence_Tuple(a->clamp);
        if (pair && PyTuple_GET_SIZE(pair) != 2)
            PyErr_Format(PyExc_ValueError, "clamp must be (min, max), got %R", a->clamp);
        int ok = pair && PyTuple_GET_SIZE(pair) == 2 &&
                 nd_parse_double("clamp[0]", PyTuple_GET_ITEM(pair, 0), &a->o.clamp_lo) == 0 &&
                 nd_parse_double("clamp[1]", PyTuple_GET_ITEM(pair, 1), &a->o.clamp_hi) == 0;
        Py_XDECREF(pair);
        if (!ok)
            return -1;
        a->o.clamp = 1;
    }
    if (a->grad_clip) {
        if (nd_parse_double("grad_clip", a->grad_clip, &a->o.grad_clip) < 0)
            return -1;
        a->o.clip = 1;
    }
    int st = nd_langevin_check(&a->o, PyArray_DIM(a->x0, 0));
    if (st != ND_OK)
        return st;
    if (!PyTuple_Check(a->energy) && !PyCallable_Check(a->energy))
        return PyErr_Format(PyExc_TypeError, "energy must be an EBM, a neurodyn.energies energy, or a callable"), -1;
    return PyTuple_Check(a->energy) ? nd_energy_setup(a->energy, a->x0, &a->e, &a->keep) : ND_OK;
}

static const nd_arg langevin_args[] = {
    ND_SCALAR(T, energy, "energy", ND_ARG_OBJECT, 0), ND_IN(T, x0, "x0", ND_TYPE | ND_FINITE, "(chains, dim)"),
    ND_SCALAR(T, o.steps, "steps", ND_ARG_INT, ND_OPTIONAL),
    ND_SCALAR(T, o.step_size, "step_size", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(T, o.noise_scale, "noise_scale", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(T, clamp, "clamp", ND_ARG_OBJECT, ND_OPTIONAL | ND_NONE),
    ND_SCALAR(T, grad_clip, "grad_clip", ND_ARG_OBJECT, ND_OPTIONAL | ND_NONE),
    ND_SCALAR(T, o.mala, "mala", ND_ARG_BOOL, ND_OPTIONAL), ND_SCALAR(T, o.seed, "seed", ND_ARG_SEED, ND_OPTIONAL),
    ND_SCALAR(T, o.stream, "stream", ND_ARG_SEED, ND_OPTIONAL),
    ND_SCALAR(T, o.chain0, "chain0", ND_ARG_INT, ND_OPTIONAL), ND_SCALAR(T, o.chains, "chains", ND_ARG_INT, ND_OPTIONAL),
    ND_PROGRESS(T, progress), ND_CHECK(nd_langevin_setup), ND_KEEP(T, keep), ND_WORK(T, e.work),
    ND_DIM(T, B, "chains"), ND_DIM(T, d, "dim"), ND_OUT(T, res[0], "x", ND_COPY, "(*x0)"),
    ND_OUT_T(T, res[1], "accepted", ND_WHEN(T, o.mala), "(chains,)", NPY_INT64), {NULL}};

static void nd_langevin_args_default(T *a) { nd_langevin_opts_default(&a->o); }

static void nd_raise_langevin_nonfinite(PyObject *module)
{
    nd_raise_integration(module,
                         PyUnicode_FromString("Langevin sampling produced NaN or inf: the step size is too large for "
                                              "this energy (or its gradient overflows); lower step_size or set "
                                              "grad_clip"),
                         Py_BuildValue("{s:s}", "status", "nonfinite"));
}

/* -> (x, accepted | None); x0 holds chains [chain0, chain0 + B) of a run of `chains` (0: B). */
static int langevin_run(PyObject *module, void *args, int tn)
{
    T *a = args;
    const int builtin = PyTuple_Check(a->energy);
    nd_py_energy pc = {a->energy, module, tn, a->d, 0, {.progress = a->progress}};
    size_t len;
    void *work = nd_workspace(nd_langevin_workspace_len(a->B, a->d, &len), &len, PyArray_ITEMSIZE(a->x0), "langevin");
    int st = ND_OK;
    if (work) {
        nd_poll_scope scope; /* the steps and the energies' kernels poll Ctrl-C and progress */
        nd_poll_begin(&scope, nd_watch_poll, &pc.watch);
        void *x = ND_DATA(a->res[0]), *ctx = builtin ? (void *)&a->e : (void *)&pc;
        int64_t *acc = ND_DATA(a->res[1]);
        ND_NOGIL(st, tn == NPY_FLOAT
                         ? nd_langevin_f32(builtin ? nd_energy_eval_f32 : nd_py_energy_f32, ctx, &a->o, a->B, a->d, x,
                                           acc, work)
                         : nd_langevin_f64(builtin ? nd_energy_eval_f64 : nd_py_energy_f64, ctx, &a->o, a->B, a->d, x,
                                           acc, work));
        nd_poll_end(&scope);
        if (!nd_watch_reraise(&pc.watch) && st == ND_ERR_NONFINITE)
            nd_raise_langevin_nonfinite(module);
    }
    nd_watch_clear(&pc.watch);
    PyMem_RawFree(work);
    return st;
}
ND_RUN_ENTRY(langevin, T, nd_langevin_args_default,
             "langevin(energy, x0, steps, step_size, noise_scale, clamp=None, grad_clip=0, mala=False, seed=0, "
             "stream=0, chain0=0, chains=0, progress=None) -> (x, accepted | None)")
#undef T

static const nd_table nd_ebm_tables[] = {{"energy_kinds", nd_energy_kind_names}, {NULL}};
ND_FAMILY(nd_ebm_family, nd_ebm_tables, &energy_eval_entry, &langevin_entry);

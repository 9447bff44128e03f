/* Binding of the energy-based family: energies and the Langevin / MALA sampler. */
#include "nd_bind.h"

#include <math.h>
#include <string.h>

#include "nd_generic.h"
#include "nd_ebm.h"
#include "nd_status.h"

/* An energy's parameter array, of the state's dtype and an expected shape, kept alive. */
static const void *nd_eparam(PyObject *t, Py_ssize_t i, int typenum, int ndim, const npy_intp *dims, PyObject *keep)
{
    char name[48];
    snprintf(name, sizeof name, "energy parameter %zd", i);
    PyArrayObject *a = nd_float_array(PyTuple_GET_ITEM(t, i), typenum, name);
    if (!a)
        return NULL;
    int ok = PyArray_NDIM(a) == ndim;
    for (int k = 0; ok && k < ndim; ++k)
        ok = dims[k] < 0 || PyArray_DIM(a, k) == dims[k];
    if (!ok || nd_check_finite(a, name) < 0 || PyList_Append(keep, (PyObject *)a) < 0) {
        if (!ok)
            PyErr_Format(PyExc_ValueError, "%s has the wrong shape for this energy", name);
        Py_DECREF(a);
        return NULL;
    }
    Py_DECREF(a);
    return PyArray_DATA(a);
}

/* spec = (kind, params, act, (barrier, tilt)); d = the state's dimension */
static int nd_parse_energy(PyObject *spec, int typenum, npy_intp d, npy_intp B, nd_energy *e, PyObject *keep)
{
    int kind, act;
    PyObject *params;
    double barrier, tilt;
    if (!PyArg_ParseTuple(spec, "iO!i(dd);energy spec", &kind, &PyTuple_Type, &params, &act, &barrier, &tilt))
        return -1;
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->dim = d;
    e->act = act;
    e->barrier = barrier;
    e->tilt = tilt;
    e->batch_cap = B;
    Py_ssize_t np_ = PyTuple_GET_SIZE(params);
    if (kind == ND_ENERGY_MLP) {
        if (np_ < 2 || np_ % 2 || np_ / 2 - 1 > ND_ENERGY_MAX_LAYERS)
            goto bad;
        e->n_layers = (int)(np_ / 2 - 1);
        e->widths[0] = d;
        for (int l = 0; l <= e->n_layers; ++l) {
            npy_intp wd[2] = {e->widths[l], l == e->n_layers ? 1 : -1};
            if (!(e->weights[l] = nd_eparam(params, 2 * l, typenum, 2, wd, keep)))
                return -1;
            npy_intp out = PyArray_DIM((PyArrayObject *)PyList_GET_ITEM(keep, PyList_GET_SIZE(keep) - 1), 1);
            if (l < e->n_layers)
                e->widths[l + 1] = out;
            npy_intp bd[1] = {out};
            if (!(e->biases[l] = nd_eparam(params, 2 * l + 1, typenum, 1, bd, keep)))
                return -1;
        }
    } else if (kind == ND_ENERGY_QUADRATIC) {
        npy_intp md[1] = {d}, pd[2] = {d, d};
        if (np_ != 2 || !(e->mean = nd_eparam(params, 0, typenum, 1, md, keep)) ||
            !(e->precision = nd_eparam(params, 1, typenum, 2, pd, keep)))
            return np_ != 2 ? (PyErr_SetString(PyExc_ValueError, "malformed energy spec"), -1) : -1;
    } else if (kind == ND_ENERGY_GMM) {
        if (np_ != 3)
            goto bad;
        npy_intp md[2] = {-1, d};
        if (!(e->mean = nd_eparam(params, 0, typenum, 2, md, keep)))
            return -1;
        e->components = PyArray_DIM((PyArrayObject *)PyList_GET_ITEM(keep, PyList_GET_SIZE(keep) - 1), 0);
        npy_intp pd[3] = {e->components, d, d}, cd[1] = {e->components};
        if (!(e->precision = nd_eparam(params, 1, typenum, 3, pd, keep)) || !(e->logc = nd_eparam(params, 2, typenum, 1, cd, keep)))
            return -1;
    } else if (kind != ND_ENERGY_DOUBLE_WELL) {
        goto bad;
    }
    if (nd_energy_check(e) != ND_OK)
        goto bad;
    return 0;
bad:
    PyErr_SetString(PyExc_ValueError, "malformed energy spec");
    return -1;
}

static void *nd_energy_scratch(nd_energy *e, npy_intp B, size_t itemsize)
{
    size_t len, bytes;
    if (nd_energy_workspace_len(e, B, &len) != ND_OK || !nd_mul_size(len + 1, itemsize, &bytes)) {
        PyErr_SetString(PyExc_ValueError, "energy workspace size overflows");
        return NULL;
    }
    void *p = PyMem_RawMalloc(bytes);
    if (!p)
        PyErr_NoMemory();
    e->work = p;
    return p;
}

/* energy_eval(spec, x [B, d]) -> (E [B], grad [B, d]) */
static PyObject *energy_eval(PyObject *module, PyObject *args)
{
    PyObject *spec, *xo;
    if (!PyArg_ParseTuple(args, "O!O:energy_eval", &PyTuple_Type, &spec, &xo))
        return NULL;
    int tn = nd_resolve_float_type(xo, "x");
    PyArrayObject *x = tn < 0 ? NULL : nd_float_array(xo, tn, "x");
    PyObject *keep = PyList_New(0), *E = NULL, *g = NULL, *res = NULL;
    void *work = NULL;
    nd_energy e;
    if (x && keep && nd_check_finite(x, "x") == 0) {
        if (PyArray_NDIM(x) != 2 || PyArray_DIM(x, 1) < 1)
            PyErr_SetString(PyExc_ValueError, "x must have shape (batch, dim)");
        else if (nd_parse_energy(spec, tn, PyArray_DIM(x, 1), PyArray_DIM(x, 0), &e, keep) == 0 &&
                 (work = nd_energy_scratch(&e, PyArray_DIM(x, 0), PyArray_ITEMSIZE(x))) &&
                 (E = PyArray_SimpleNew(1, PyArray_DIMS(x), tn)) && (g = PyArray_SimpleNew(2, PyArray_DIMS(x), tn))) {
            int st;
            const npy_intp B = PyArray_DIM(x, 0);
            void *xd = PyArray_DATA(x), *Ed = PyArray_DATA((PyArrayObject *)E), *gd = PyArray_DATA((PyArrayObject *)g);
            Py_BEGIN_ALLOW_THREADS
            st = tn == NPY_FLOAT ? nd_energy_eval_f32(&e, B, xd, Ed, gd) : nd_energy_eval_f64(&e, B, xd, Ed, gd);
            Py_END_ALLOW_THREADS
            res = st == ND_OK ? PyTuple_Pack(2, E, g) : nd_raise_status(st, "energy_eval");
        }
    }
    PyMem_RawFree(work);
    Py_XDECREF(x);
    Py_XDECREF(keep);
    Py_XDECREF(E);
    Py_XDECREF(g);
    return res;
}

/* A Python energy f(x) -> (E [B], grad [B, d]), called with the GIL for each evaluation. */
typedef struct {
    PyObject *f;
    int typenum;
    npy_intp B, d;
    nd_watch watch; /* Ctrl-C, progress and the first exception of f */
} nd_py_energy;

static int nd_copy_result(PyObject *obj, int typenum, int ndim, const npy_intp *dims, void *dst, const char *name)
{
    PyArrayObject *a = nd_float_array(obj, typenum, name);
    if (!a)
        return -1;
    int ok = PyArray_NDIM(a) == ndim;
    for (int k = 0; ok && k < ndim; ++k)
        ok = PyArray_DIM(a, k) == dims[k];
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "%s has the wrong shape (expected %s)", name,
                     ndim == 1 ? "(batch,)" : "(batch, dim), that of x");
        Py_DECREF(a);
        return -1;
    }
    memcpy(dst, PyArray_DATA(a), (size_t)PyArray_NBYTES(a));
    Py_DECREF(a);
    return 0;
}

static int nd_py_energy_call(nd_py_energy *c, int64_t B, const void *x, void *E, void *grad)
{
    PyGILState_STATE gil = PyGILState_Ensure();
    int ok = 0;
    npy_intp dims[2] = {(npy_intp)B, c->d};
    PyObject *arr = PyArray_SimpleNew(2, dims, c->typenum);
    if (arr) {
        memcpy(PyArray_DATA((PyArrayObject *)arr), x, (size_t)PyArray_NBYTES((PyArrayObject *)arr));
        PyObject *res = PyObject_CallOneArg(c->f, arr);
        if (res) {
            if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 2)
                PyErr_SetString(PyExc_TypeError, "the energy callable must return a tuple (E, grad)");
            else
                ok = nd_copy_result(PyTuple_GET_ITEM(res, 0), c->typenum, 1, dims, E, "the returned energy") == 0 &&
                     nd_copy_result(PyTuple_GET_ITEM(res, 1), c->typenum, 2, dims, grad, "the returned gradient") == 0;
            Py_DECREF(res);
        }
        Py_DECREF(arr);
    }
    return nd_watch_callback_done(&c->watch, ok, gil);
}

static int nd_py_energy_f32(void *c, int64_t B, const float *x, float *E, float *g) { return nd_py_energy_call(c, B, x, E, g); }
static int nd_py_energy_f64(void *c, int64_t B, const double *x, double *E, double *g) { return nd_py_energy_call(c, B, x, E, g); }

/* langevin(energy: spec tuple or callable, x0 [B, d], steps, step_size, noise_scale,
 *          clamp (lo, hi) | None, grad_clip, mala, seed, stream[, chain0, chains, progress])
 *   -> (x, accepted | None); x0 holds chains [chain0, chain0 + B) of a run of `chains` (0: B);
 *   progress(done) is called about 20 times a second when not None */
static PyObject *langevin(PyObject *module, PyObject *args)
{
    PyObject *eo, *xo, *clampo, *progress = Py_None;
    nd_langevin_opts o = {0};
    long long steps;
    int mala;
    unsigned long long seed, stream;
    long long chain0 = 0, chains = 0;
    if (!PyArg_ParseTuple(args, "OOLddOdpKK|LLO:langevin", &eo, &xo, &steps, &o.step_size, &o.noise_scale, &clampo,
                          &o.grad_clip, &mala, &seed, &stream, &chain0, &chains, &progress))
        return NULL;
    if (progress != Py_None && !PyCallable_Check(progress))
        return PyErr_Format(PyExc_TypeError, "progress must be callable or None");
    o.chain0 = chain0;
    o.chains = chains;
    o.steps = steps;
    o.mala = mala;
    o.seed = seed;
    o.stream = stream;
    if (clampo != Py_None) {
        if (!PyArg_ParseTuple(clampo, "dd;clamp must be (min, max)", &o.clamp_lo, &o.clamp_hi))
            return NULL;
        o.clamp = 1;
    }
    int tn = nd_resolve_float_type(xo, "x0");
    PyArrayObject *x0 = tn < 0 ? NULL : nd_float_array(xo, tn, "x0");
    PyObject *keep = PyList_New(0), *x = NULL, *acc = NULL, *res = NULL;
    void *ework = NULL, *work = NULL;
    nd_energy e;
    nd_py_energy pc = {0};
    if (!x0 || !keep || nd_check_finite(x0, "x0") < 0)
        goto done;
    if (PyArray_NDIM(x0) != 2 || PyArray_DIM(x0, 1) < 1) {
        PyErr_SetString(PyExc_ValueError, "x0 must have shape (chains, dim)");
        goto done;
    }
    const npy_intp B = PyArray_DIM(x0, 0), d = PyArray_DIM(x0, 1);
    if (chain0 < 0 || chains < 0 || chain0 > (chains > 0 ? chains : B) - B) {
        PyErr_Format(PyExc_ValueError, "chains [%lld, %lld) do not lie in a run of %lld", chain0,
                     chain0 + (long long)B, chains > 0 ? chains : (long long)B);
        goto done;
    }
    int builtin = PyTuple_Check(eo);
    if (builtin) {
        if (nd_parse_energy(eo, tn, d, B, &e, keep) < 0 || !(ework = nd_energy_scratch(&e, B, PyArray_ITEMSIZE(x0))))
            goto done;
    } else if (PyCallable_Check(eo)) {
        pc.f = eo;
        pc.typenum = tn;
        pc.B = B;
        pc.d = d;
    } else {
        PyErr_SetString(PyExc_TypeError, "energy must be an EBM, a neurodyn.energies energy, or a callable");
        goto done;
    }
    size_t len, bytes;
    if (nd_langevin_workspace_len(B, d, &len) != ND_OK || !nd_mul_size(len + 1, PyArray_ITEMSIZE(x0), &bytes)) {
        PyErr_SetString(PyExc_ValueError, "the chains are too large");
        goto done;
    }
    if (!(work = PyMem_RawMalloc(bytes))) {
        PyErr_NoMemory();
        goto done;
    }
    if (!(x = PyArray_NewCopy(x0, NPY_CORDER)) || (mala && !(acc = PyArray_SimpleNew(1, &PyArray_DIMS(x0)[0], NPY_INT64))))
        goto done;
    pc.watch.progress = progress == Py_None ? NULL : progress;
    o.poll = nd_watch_poll;
    o.poll_ctx = &pc.watch;
    int st;
    void *xd = PyArray_DATA((PyArrayObject *)x);
    int64_t *ad = acc ? PyArray_DATA((PyArrayObject *)acc) : NULL;
    Py_BEGIN_ALLOW_THREADS
    if (tn == NPY_FLOAT)
        st = nd_langevin_f32(builtin ? nd_energy_eval_f32 : nd_py_energy_f32, builtin ? (void *)&e : (void *)&pc, &o, B,
                             d, xd, ad, work);
    else
        st = nd_langevin_f64(builtin ? nd_energy_eval_f64 : nd_py_energy_f64, builtin ? (void *)&e : (void *)&pc, &o, B,
                             d, xd, ad, work);
    Py_END_ALLOW_THREADS
    if (nd_watch_reraise(&pc.watch)) {
    } else if (st == ND_ERR_NONFINITE) {
        PyObject *attrs = Py_BuildValue("{s:s}", "status", "nonfinite");
        PyObject *msg = PyUnicode_FromString("Langevin sampling produced NaN or inf: the step size is too large for "
                                             "this energy (or its gradient overflows); lower step_size or set grad_clip");
        if (attrs && msg)
            nd_set_integration_error(module, msg, attrs);
        Py_XDECREF(attrs);
        Py_XDECREF(msg);
    } else if (st != ND_OK) {
        nd_raise_status(st, "langevin");
    } else {
        res = PyTuple_Pack(2, x, acc ? acc : Py_None);
    }
done:
    nd_watch_clear(&pc.watch);
    PyMem_RawFree(ework);
    PyMem_RawFree(work);
    Py_XDECREF(x0);
    Py_XDECREF(keep);
    Py_XDECREF(x);
    Py_XDECREF(acc);
    return res;
}

static PyMethodDef nd_ebm_methods[] = {
    {"energy_eval", energy_eval, METH_VARARGS, "energy_eval(spec, x) -> (E, grad)"},
    {"langevin", langevin, METH_VARARGS,
     "langevin(energy, x0, steps, step_size, noise_scale, clamp, grad_clip, mala, seed, stream) -> (x, accepted)"},
    {NULL, NULL, 0, NULL}};

static const nd_entry *const nd_ebm_entries[] = {NULL};
const nd_family nd_ebm_family = {nd_ebm_entries, NULL, nd_ebm_methods};

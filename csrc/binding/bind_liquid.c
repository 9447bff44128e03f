/* Binding of the Liquid family: the LTC layer scan, the CfC cell and the LTC cell, each
 * forward and backward over whole sequences. */
#include "nd_bind.h"

#include <string.h>

#include "nd_liquid_cfc.h"
#include "nd_generic.h"
#include "nd_liquid.h"
#include "nd_liquid_ltccell.h"
#include "nd_status.h"

/* ---- the Liquid layer scan -------------------------------------------------------------- */

/* Converts a, tau (and h0, h, dh when given) to one dtype and checks their shapes: a, tau, h
 * and dh [B, T, H], h0 [B, H] or None. */
static int nd_scan_arrays(PyObject **objs, const char **names, int count, PyArrayObject **arr)
{
    for (int i = 0; i < count; ++i)
        arr[i] = NULL;
    int typenum = nd_resolve_float_type(objs[0], names[0]);
    if (typenum < 0)
        return -1;
    for (int i = 0; i < count; ++i) {
        if (objs[i] == Py_None)
            continue;
        if (!(arr[i] = nd_float_array(objs[i], typenum, names[i])) || nd_check_finite(arr[i], names[i]) < 0)
            return -1;
        const int want = i == 2 ? 2 : 3; /* h0 is [B, H] */
        int ok = PyArray_NDIM(arr[i]) == want;
        if (ok && i > 0) {
            ok = PyArray_DIM(arr[i], 0) == PyArray_DIM(arr[0], 0) &&
                 PyArray_DIM(arr[i], want - 1) == PyArray_DIM(arr[0], 2) &&
                 (want == 2 || PyArray_DIM(arr[i], 1) == PyArray_DIM(arr[0], 1));
        }
        if (!ok) {
            PyObject *got = nd_shape_str(PyArray_NDIM(arr[i]), PyArray_DIMS(arr[i]));
            if (got)
                PyErr_Format(PyExc_ValueError, "%s has shape %S; expected %s", names[i], got,
                             want == 2 ? "(batch, hidden) matching a" : "(batch, time, hidden) matching a");
            Py_XDECREF(got);
            return -1;
        }
    }
    return typenum;
}

static PyObject *nd_scan_failure(PyObject *module, int st, const nd_ode_stats *stats)
{
    if (st == ND_ERR_MAX_STEPS || st == ND_ERR_STEP_UNDERFLOW || st == ND_ERR_NONFINITE || st == ND_ERR_UNSTABLE) {
        PyObject *attrs = Py_BuildValue("{s:d,s:s}", "t", stats ? stats->t : 0.0, "status",
                                        st == ND_ERR_MAX_STEPS   ? "max_steps"
                                        : st == ND_ERR_NONFINITE ? "nonfinite"
                                        : st == ND_ERR_UNSTABLE  ? "unstable"
                                                                 : "step_underflow");
        PyObject *msg = st == ND_ERR_UNSTABLE
                            ? PyUnicode_FromString("the LTC scan is unstable: with this many substeps the method "
                                                   "amplifies instead of relaxing for some tau (euler needs "
                                                   "steps * tau > 0.5, midpoint > 0.5, rk4 > 0.359); use more "
                                                   "substeps, or the exact solver")
                            : PyUnicode_FromFormat("the LTC scan (dopri5) could not finish a frame: %s",
                                                   nd_status_str(st));
        if (attrs && msg)
            nd_set_integration_error(module, msg, attrs);
        Py_XDECREF(attrs);
        Py_XDECREF(msg);
        return NULL;
    }
    return nd_raise_status(st, "ltc_scan");
}

/* ltc_scan(a, tau, h0|None, solver, steps, rtol, atol, max_steps) -> h [B, T, H] */
static PyObject *ltc_scan(PyObject *module, PyObject *args)
{
    PyObject *objs[3];
    int solver;
    long long steps, max_steps;
    nd_ode_opts o;
    nd_ode_opts_default(&o);
    if (!PyArg_ParseTuple(args, "OOOiLddL:ltc_scan", &objs[0], &objs[1], &objs[2], &solver, &steps, &o.rtol, &o.atol,
                          &max_steps))
        return NULL;
    o.max_steps = max_steps;
    const char *names[3] = {"a", "tau", "h0"};
    PyArrayObject *arr[3];
    PyObject *h = NULL;
    void *work = NULL;
    int typenum = nd_scan_arrays(objs, names, 3, arr);
    if (typenum >= 0) {
        npy_intp B = PyArray_DIM(arr[0], 0), T = PyArray_DIM(arr[0], 1), H = PyArray_DIM(arr[0], 2);
        size_t bytes;
        int st = nd_ltc_scan_workspace_bytes(solver, H, o.max_steps, 0, &bytes);
        if (st != ND_OK)
            nd_raise_status(st, "ltc_scan workspace");
        else if (!(work = PyMem_RawMalloc(bytes ? bytes : 1)))
            PyErr_NoMemory();
        else if ((h = PyArray_SimpleNew(3, PyArray_DIMS(arr[0]), typenum))) {
            nd_ode_stats stats;
            void *a = PyArray_DATA(arr[0]), *tau = PyArray_DATA(arr[1]);
            void *h0 = arr[2] ? PyArray_DATA(arr[2]) : NULL, *hd = PyArray_DATA((PyArrayObject *)h);
            Py_BEGIN_ALLOW_THREADS
            st = typenum == NPY_FLOAT
                     ? nd_ltc_scan_forward_f32(solver, B, T, H, a, tau, h0, steps, &o, hd, work, &stats)
                     : nd_ltc_scan_forward_f64(solver, B, T, H, a, tau, h0, steps, &o, hd, work, &stats);
            Py_END_ALLOW_THREADS
            if (st != ND_OK) {
                Py_CLEAR(h);
                nd_scan_failure(module, st, &stats);
            }
        }
    }
    PyMem_RawFree(work);
    for (int i = 0; i < 3; ++i)
        Py_XDECREF(arr[i]);
    return h;
}

/* ltc_scan_backward(a, tau, h0|None, h, dh, solver, steps, rtol, atol, max_steps)
 *   -> (da, dtau, dh0) */
static PyObject *ltc_scan_backward(PyObject *module, PyObject *args)
{
    PyObject *objs[5];
    int solver;
    long long steps, max_steps;
    nd_ode_opts o;
    nd_ode_opts_default(&o);
    if (!PyArg_ParseTuple(args, "OOOOOiLddL:ltc_scan_backward", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4],
                          &solver, &steps, &o.rtol, &o.atol, &max_steps))
        return NULL;
    o.max_steps = max_steps;
    const char *names[5] = {"a", "tau", "h0", "h", "dh"};
    PyArrayObject *arr[5];
    PyObject *da = NULL, *dtau = NULL, *dh0 = NULL, *res = NULL;
    void *work = NULL;
    int typenum = nd_scan_arrays(objs, names, 5, arr);
    if (typenum >= 0 && (!arr[3] || !arr[4])) {
        PyErr_SetString(PyExc_ValueError, "h and dh are required");
        typenum = -1;
    }
    if (typenum >= 0) {
        npy_intp B = PyArray_DIM(arr[0], 0), T = PyArray_DIM(arr[0], 1), H = PyArray_DIM(arr[0], 2);
        npy_intp d0[2] = {B, H};
        size_t bytes;
        int st = nd_ltc_scan_workspace_bytes(solver, H, o.max_steps, 1, &bytes);
        if (st != ND_OK)
            nd_raise_status(st, "ltc_scan workspace");
        else if (!(work = PyMem_RawMalloc(bytes ? bytes : 1)))
            PyErr_NoMemory();
        else if ((da = PyArray_SimpleNew(3, PyArray_DIMS(arr[0]), typenum)) &&
                 (dtau = PyArray_SimpleNew(3, PyArray_DIMS(arr[0]), typenum)) &&
                 (dh0 = PyArray_SimpleNew(2, d0, typenum))) {
            void *a = PyArray_DATA(arr[0]), *tau = PyArray_DATA(arr[1]), *h0 = arr[2] ? PyArray_DATA(arr[2]) : NULL;
            void *h = PyArray_DATA(arr[3]), *dh = PyArray_DATA(arr[4]);
            void *dad = PyArray_DATA((PyArrayObject *)da), *dtd = PyArray_DATA((PyArrayObject *)dtau);
            void *d0d = PyArray_DATA((PyArrayObject *)dh0);
            Py_BEGIN_ALLOW_THREADS
            st = typenum == NPY_FLOAT
                     ? nd_ltc_scan_backward_f32(solver, B, T, H, a, tau, h0, h, steps, &o, dh, dad, dtd, d0d, work)
                     : nd_ltc_scan_backward_f64(solver, B, T, H, a, tau, h0, h, steps, &o, dh, dad, dtd, d0d, work);
            Py_END_ALLOW_THREADS
            if (st == ND_OK)
                res = PyTuple_Pack(3, da, dtau, dh0);
            else
                nd_scan_failure(module, st, NULL);
        }
    }
    PyMem_RawFree(work);
    Py_XDECREF(da);
    Py_XDECREF(dtau);
    Py_XDECREF(dh0);
    for (int i = 0; i < 5; ++i)
        Py_XDECREF(arr[i]);
    return res;
}

/* ---- shared by the cells ------------------------------------------------------------------ */

/* Checks a parameter array's shape (ndim 1 or 2; -1 skips a size) and keeps it alive in keep. */
static const void *nd_param(PyObject *tuple, Py_ssize_t k, int typenum, int ndim, npy_intp d0, npy_intp d1,
                            const char *what, PyObject *keep)
{
    char name[64];
    snprintf(name, sizeof name, "%s[%zd]", what, k);
    PyArrayObject *a = nd_float_array(PyTuple_GET_ITEM(tuple, k), typenum, name);
    if (!a)
        return NULL;
    if (PyArray_NDIM(a) != ndim || (d0 >= 0 && PyArray_DIM(a, 0) != d0) || (ndim == 2 && d1 >= 0 && PyArray_DIM(a, 1) != d1)) {
        PyObject *got = nd_shape_str(PyArray_NDIM(a), PyArray_DIMS(a));
        if (got)
            PyErr_Format(PyExc_ValueError, "%s has shape %S, which does not fit the cell", name, got);
        Py_XDECREF(got);
        Py_DECREF(a);
        return NULL;
    }
    int bad = nd_check_finite(a, name) < 0 || PyList_Append(keep, (PyObject *)a) < 0;
    Py_DECREF(a);
    return bad ? NULL : PyArray_DATA(a);
}

/* A sequence input [B, T, F] (F = -1: any) as an array of typenum; None stays NULL. */
static int nd_sequence(PyObject *obj, int typenum, npy_intp B, npy_intp T, npy_intp F, const char *name,
                       PyArrayObject **out)
{
    *out = NULL;
    if (obj == Py_None)
        return 0;
    if (!(*out = nd_float_array(obj, typenum, name)) || nd_check_finite(*out, name) < 0)
        return -1;
    int ndim = F == -2 ? 2 : 3;
    PyArrayObject *a = *out;
    if (PyArray_NDIM(a) != ndim || (B >= 0 && PyArray_DIM(a, 0) != B) || (T >= 0 && PyArray_DIM(a, 1) != T) ||
        (ndim == 3 && F >= 0 && PyArray_DIM(a, 2) != F)) {
        PyObject *got = nd_shape_str(PyArray_NDIM(a), PyArray_DIMS(a));
        if (got)
            PyErr_Format(PyExc_ValueError, "%s has shape %S, which does not fit", name, got);
        Py_XDECREF(got);
        return -1;
    }
    return 0;
}

static void *nd_scratch(size_t elems, size_t itemsize)
{
    size_t bytes;
    if (!nd_mul_size(elems ? elems : 1, itemsize, &bytes)) {
        PyErr_SetString(PyExc_ValueError, "workspace size overflows");
        return NULL;
    }
    void *p = PyMem_RawMalloc(bytes);
    if (!p)
        PyErr_NoMemory();
    return p;
}

/* ---- CfC -------------------------------------------------------------------------------------- */

/* params: (bw_1, bb_1, ..., bw_L, bb_L, hw_ff1, hb_ff1, hw_ff2, hb_ff2, hw_ta, hb_ta, hw_tb, hb_tb) */
static int nd_parse_cfc(nd_cfc *c, PyObject *params, int typenum, npy_intp NI, npy_intp H, PyObject *keep)
{
    Py_ssize_t n = PyTuple_GET_SIZE(params);
    if (n < 8 || n % 2 || (n - 8) / 2 > ND_CFC_MAX_LAYERS) {
        PyErr_SetString(PyExc_ValueError, "malformed CfC parameters");
        return -1;
    }
    c->layers = (int)((n - 8) / 2);
    c->input_size = NI;
    c->hidden_size = H;
    npy_intp in = NI + H;
    for (int l = 0; l < c->layers; ++l) {
        if (!(c->bw[l] = nd_param(params, 2 * l, typenum, 2, in, l ? c->units : -1, "cfc params", keep)))
            return -1;
        if (l == 0)
            c->units = PyArray_DIM((PyArrayObject *)PyList_GET_ITEM(keep, PyList_GET_SIZE(keep) - 1), 1);
        if (!(c->bb[l] = nd_param(params, 2 * l + 1, typenum, 1, c->units, -1, "cfc params", keep)))
            return -1;
        in = c->units;
    }
    for (int k = 0; k < 4; ++k) {
        Py_ssize_t p = 2 * c->layers + 2 * k;
        if (!(c->hw[k] = nd_param(params, p, typenum, 2, in, H, "cfc params", keep)) ||
            !(c->hb[k] = nd_param(params, p + 1, typenum, 1, H, -1, "cfc params", keep)))
            return -1;
    }
    return 0;
}

/* ---- the recurrent cells' shared binding ------------------------------------------------ */

/* What differs between CfC and the LTC cell for the binding: the kernels, typed by typenum. */
typedef struct {
    const char *name;
    const void *cell;
    int (*forward)(const void *cell, int typenum, int64_t B, int64_t T, const void *x, const void *dt, const void *h0,
                   void *h, void *cache, void *work);
    int (*backward)(const void *cell, int typenum, int64_t B, int64_t T, const void *x, const void *dt,
                    const void *cache, const void *dh, void *dx, void *dh0, void *dparams, void *work);
} nd_cell_ops;

/* Runs a cell over x [B, T, NI] into h [B, T, H]; returns (h, cache | None). */
static PyObject *nd_cell_forward(const nd_cell_ops *ops, int typenum, PyArrayObject *x, PyArrayObject *dt,
                                 PyArrayObject *h0, npy_intp H, size_t cache_len, size_t wlen, int want_cache)
{
    const npy_intp B = PyArray_DIM(x, 0), T = PyArray_DIM(x, 1);
    npy_intp hd[3] = {B, T, H}, cd = (npy_intp)cache_len;
    PyObject *h = NULL, *cache = NULL, *res = NULL;
    void *work = nd_scratch(wlen, (size_t)PyArray_ITEMSIZE(x));
    if (work && (h = PyArray_SimpleNew(3, hd, typenum)) && (!want_cache || (cache = PyArray_SimpleNew(1, &cd, typenum)))) {
        const void *xd = PyArray_DATA(x), *dtd = dt ? PyArray_DATA(dt) : NULL, *h0d = h0 ? PyArray_DATA(h0) : NULL;
        void *hdd = PyArray_DATA((PyArrayObject *)h), *cdd = cache ? PyArray_DATA((PyArrayObject *)cache) : NULL;
        int st;
        Py_BEGIN_ALLOW_THREADS
        st = ops->forward(ops->cell, typenum, B, T, xd, dtd, h0d, hdd, cdd, work);
        Py_END_ALLOW_THREADS
        res = st == ND_OK ? PyTuple_Pack(2, h, cache ? cache : Py_None) : nd_raise_status(st, ops->name);
    }
    PyMem_RawFree(work);
    Py_XDECREF(h);
    Py_XDECREF(cache);
    return res;
}

/* The backward pass from dh [B, T, H] and the forward's cache; x may be NULL when the cell's
 * backward does not read it. Returns (dx [B, T, NI], dh0 [B, H], dparams [P]). */
static PyObject *nd_cell_backward(const nd_cell_ops *ops, int typenum, PyArrayObject *x, PyArrayObject *dt,
                                  PyObject *cacheo, PyArrayObject *dh, npy_intp NI, size_t cache_len, size_t wlen,
                                  size_t nparams)
{
    const npy_intp B = PyArray_DIM(dh, 0), T = PyArray_DIM(dh, 1), H = PyArray_DIM(dh, 2);
    PyArrayObject *cache = (PyArrayObject *)PyArray_FROMANY(cacheo, typenum, 1, 1, NPY_ARRAY_IN_ARRAY);
    PyObject *dx = NULL, *dh0 = NULL, *dp = NULL, *res = NULL;
    void *work = NULL;
    if (!cache)
        return NULL;
    if ((size_t)PyArray_SIZE(cache) != cache_len) {
        PyErr_SetString(PyExc_ValueError, "the cache does not come from this forward pass");
        goto done;
    }
    npy_intp xd[3] = {B, T, NI}, hd[2] = {B, H}, pd = (npy_intp)nparams;
    if (!(work = nd_scratch(wlen, (size_t)PyArray_ITEMSIZE(dh))) || !(dx = PyArray_SimpleNew(3, xd, typenum)) ||
        !(dh0 = PyArray_SimpleNew(2, hd, typenum)) || !(dp = PyArray_SimpleNew(1, &pd, typenum)))
        goto done;
    const void *xdd = x ? PyArray_DATA(x) : NULL, *dtd = dt ? PyArray_DATA(dt) : NULL, *cd = PyArray_DATA(cache);
    const void *dhd = PyArray_DATA(dh);
    void *dxd = PyArray_DATA((PyArrayObject *)dx), *d0 = PyArray_DATA((PyArrayObject *)dh0);
    void *dpd = PyArray_DATA((PyArrayObject *)dp);
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = ops->backward(ops->cell, typenum, B, T, xdd, dtd, cd, dhd, dxd, d0, dpd, work);
    Py_END_ALLOW_THREADS
    res = st == ND_OK ? PyTuple_Pack(3, dx, dh0, dp) : nd_raise_status(st, ops->name);
done:
    PyMem_RawFree(work);
    Py_DECREF(cache);
    Py_XDECREF(dx);
    Py_XDECREF(dh0);
    Py_XDECREF(dp);
    return res;
}

/* ---- CfC ---------------------------------------------------------------------------------- */

static int nd_cfc_run_forward(const void *c, int tn, int64_t B, int64_t T, const void *x, const void *dt,
                              const void *h0, void *h, void *cache, void *work)
{
    return tn == NPY_FLOAT ? nd_cfc_forward_f32(c, B, T, x, dt, h0, h, cache, work)
                           : nd_cfc_forward_f64(c, B, T, x, dt, h0, h, cache, work);
}

static int nd_cfc_run_backward(const void *c, int tn, int64_t B, int64_t T, const void *x, const void *dt,
                               const void *cache, const void *dh, void *dx, void *dh0, void *dp, void *work)
{
    (void)x; /* the cache holds what CfC's backward needs */
    return tn == NPY_FLOAT ? nd_cfc_backward_f32(c, B, T, dt, cache, dh, dx, dh0, dp, work)
                           : nd_cfc_backward_f64(c, B, T, dt, cache, dh, dx, dh0, dp, work);
}

/* cfc_forward(x [B,T,NI], dt|None, h0|None, params, hidden_size, act, mode, keep_cache) -> (h, cache|None) */
static PyObject *cfc_forward(PyObject *module, PyObject *args)
{
    PyObject *xo, *dto, *h0o, *params;
    long long H;
    int act, mode, want_cache;
    if (!PyArg_ParseTuple(args, "OOOO!Liip:cfc_forward", &xo, &dto, &h0o, &PyTuple_Type, &params, &H, &act, &mode,
                          &want_cache))
        return NULL;
    PyArrayObject *x = NULL, *dt = NULL, *h0 = NULL;
    PyObject *keep = PyList_New(0), *res = NULL;
    nd_cfc c = {0};
    c.act = act;
    c.mode = mode;
    int typenum = nd_resolve_float_type(xo, "x");
    if (!keep || typenum < 0 || H < 1 || nd_sequence(xo, typenum, -1, -1, -1, "x", &x) < 0)
        goto done;
    const npy_intp B = PyArray_DIM(x, 0), T = PyArray_DIM(x, 1), NI = PyArray_DIM(x, 2);
    if (nd_sequence(dto, typenum, B, T, -2, "timespans", &dt) < 0 || nd_sequence(h0o, typenum, B, H, -2, "h0", &h0) < 0 ||
        nd_parse_cfc(&c, params, typenum, NI, H, keep) < 0)
        goto done;
    size_t per_step, wlen;
    int st = nd_cfc_sizes(&c, B, &per_step, &wlen);
    if (st != ND_OK) {
        nd_raise_status(st, "cfc");
        goto done;
    }
    const nd_cell_ops ops = {"cfc_forward", &c, nd_cfc_run_forward, nd_cfc_run_backward};
    res = nd_cell_forward(&ops, typenum, x, dt, h0, (npy_intp)H, per_step * (size_t)T, wlen, want_cache);
done:
    Py_XDECREF(x);
    Py_XDECREF(dt);
    Py_XDECREF(h0);
    Py_XDECREF(keep);
    return res;
}

/* cfc_backward(dt|None, cache, dh [B,T,H], params, input_size, act, mode) -> (dx, dh0, dparams) */
static PyObject *cfc_backward(PyObject *module, PyObject *args)
{
    PyObject *dto, *cacheo, *dho, *params;
    long long NI;
    int act, mode;
    if (!PyArg_ParseTuple(args, "OOOO!Lii:cfc_backward", &dto, &cacheo, &dho, &PyTuple_Type, &params, &NI, &act, &mode))
        return NULL;
    PyArrayObject *dh = NULL, *dt = NULL;
    PyObject *keep = PyList_New(0), *res = NULL;
    nd_cfc c = {0};
    c.act = act;
    c.mode = mode;
    int typenum = nd_resolve_float_type(dho, "dh");
    if (!keep || typenum < 0 || NI < 0 || nd_sequence(dho, typenum, -1, -1, -1, "dh", &dh) < 0)
        goto done;
    const npy_intp B = PyArray_DIM(dh, 0), T = PyArray_DIM(dh, 1), H = PyArray_DIM(dh, 2);
    if (H < 1 || nd_sequence(dto, typenum, B, T, -2, "timespans", &dt) < 0 || nd_parse_cfc(&c, params, typenum, NI, H, keep) < 0)
        goto done;
    size_t per_step, wlen;
    int st = nd_cfc_sizes(&c, B, &per_step, &wlen);
    if (st != ND_OK) {
        nd_raise_status(st, "cfc");
        goto done;
    }
    const nd_cell_ops ops = {"cfc_backward", &c, nd_cfc_run_forward, nd_cfc_run_backward};
    res = nd_cell_backward(&ops, typenum, NULL, dt, cacheo, dh, (npy_intp)NI, per_step * (size_t)T, wlen,
                           (size_t)nd_cfc_param_count(&c));
done:
    Py_XDECREF(dh);
    Py_XDECREF(dt);
    Py_XDECREF(keep);
    return res;
}

/* ---- LTC cell --------------------------------------------------------------------------------- */

/* params: (gleak, vleak, cm, w, sigma, mu, erev, sw, ssigma, smu, serev), effective values */
static int nd_parse_ltccell(nd_ltccell *c, PyObject *params, int typenum, npy_intp S, PyObject *keep)
{
    if (PyTuple_GET_SIZE(params) != 11) {
        PyErr_SetString(PyExc_ValueError, "malformed LTC cell parameters");
        return -1;
    }
    if (!(c->gleak = nd_param(params, 0, typenum, 1, -1, -1, "ltc params", keep)))
        return -1;
    npy_intp N = PyArray_DIM((PyArrayObject *)PyList_GET_ITEM(keep, PyList_GET_SIZE(keep) - 1), 0);
    c->units = N;
    c->sensory = S;
    const void **dst[10] = {&c->vleak, &c->cm, &c->w, &c->sigma, &c->mu, &c->erev, &c->sw, &c->ssigma, &c->smu, &c->serev};
    for (int k = 0; k < 10; ++k) {
        int ndim = k < 2 ? 1 : 2;
        npy_intp d0 = k < 2 ? N : (k < 6 ? N : S);
        if (!(*dst[k] = nd_param(params, k + 1, typenum, ndim, d0, N, "ltc params", keep)))
            return -1;
    }
    return 0;
}

static int nd_ltccell_run_forward(const void *c, int tn, int64_t B, int64_t T, const void *x, const void *dt,
                                  const void *h0, void *h, void *cache, void *work)
{
    return tn == NPY_FLOAT ? nd_ltccell_forward_f32(c, B, T, x, dt, h0, h, cache, work)
                           : nd_ltccell_forward_f64(c, B, T, x, dt, h0, h, cache, work);
}

static int nd_ltccell_run_backward(const void *c, int tn, int64_t B, int64_t T, const void *x, const void *dt,
                                   const void *cache, const void *dh, void *dx, void *dh0, void *dp, void *work)
{
    return tn == NPY_FLOAT ? nd_ltccell_backward_f32(c, B, T, x, dt, NULL, cache, dh, dx, dh0, dp, work)
                           : nd_ltccell_backward_f64(c, B, T, x, dt, NULL, cache, dh, dx, dh0, dp, work);
}

/* ltccell_forward(x, dt|None, h0|None, params, unfolds, eps, keep_cache) -> (h, cache|None) */
static PyObject *ltccell_forward(PyObject *module, PyObject *args)
{
    PyObject *xo, *dto, *h0o, *params;
    int unfolds, want_cache;
    double eps;
    if (!PyArg_ParseTuple(args, "OOOO!idp:ltccell_forward", &xo, &dto, &h0o, &PyTuple_Type, &params, &unfolds, &eps,
                          &want_cache))
        return NULL;
    PyArrayObject *x = NULL, *dt = NULL, *h0 = NULL;
    PyObject *keep = PyList_New(0), *res = NULL;
    nd_ltccell c = {0};
    c.unfolds = unfolds;
    c.eps = eps;
    int typenum = nd_resolve_float_type(xo, "x");
    if (!keep || typenum < 0 || nd_sequence(xo, typenum, -1, -1, -1, "x", &x) < 0)
        goto done;
    const npy_intp B = PyArray_DIM(x, 0), T = PyArray_DIM(x, 1), S = PyArray_DIM(x, 2);
    if (nd_parse_ltccell(&c, params, typenum, S, keep) < 0 || nd_sequence(dto, typenum, B, T, -2, "timespans", &dt) < 0 ||
        nd_sequence(h0o, typenum, B, c.units, -2, "h0", &h0) < 0)
        goto done;
    size_t clen, wlen;
    int st = nd_ltccell_sizes(&c, B, T, &clen, &wlen);
    if (st != ND_OK) {
        nd_raise_status(st, "ltc cell");
        goto done;
    }
    const nd_cell_ops ops = {"ltccell_forward", &c, nd_ltccell_run_forward, nd_ltccell_run_backward};
    res = nd_cell_forward(&ops, typenum, x, dt, h0, c.units, clen, wlen, want_cache);
done:
    Py_XDECREF(x);
    Py_XDECREF(dt);
    Py_XDECREF(h0);
    Py_XDECREF(keep);
    return res;
}

/* ltccell_backward(x, dt|None, cache, dh, params, unfolds, eps) -> (dx, dh0, dparams) */
static PyObject *ltccell_backward(PyObject *module, PyObject *args)
{
    PyObject *xo, *dto, *cacheo, *dho, *params;
    int unfolds;
    double eps;
    if (!PyArg_ParseTuple(args, "OOOOO!id:ltccell_backward", &xo, &dto, &cacheo, &dho, &PyTuple_Type, &params, &unfolds,
                          &eps))
        return NULL;
    PyArrayObject *x = NULL, *dt = NULL, *dh = NULL;
    PyObject *keep = PyList_New(0), *res = NULL;
    nd_ltccell c = {0};
    c.unfolds = unfolds;
    c.eps = eps;
    int typenum = nd_resolve_float_type(xo, "x");
    if (!keep || typenum < 0 || nd_sequence(xo, typenum, -1, -1, -1, "x", &x) < 0)
        goto done;
    const npy_intp B = PyArray_DIM(x, 0), T = PyArray_DIM(x, 1), S = PyArray_DIM(x, 2);
    if (nd_parse_ltccell(&c, params, typenum, S, keep) < 0 || nd_sequence(dto, typenum, B, T, -2, "timespans", &dt) < 0 ||
        nd_sequence(dho, typenum, B, T, c.units, "dh", &dh) < 0)
        goto done;
    size_t clen, wlen;
    int st = nd_ltccell_sizes(&c, B, T, &clen, &wlen);
    if (st != ND_OK) {
        nd_raise_status(st, "ltc cell");
        goto done;
    }
    const nd_cell_ops ops = {"ltccell_backward", &c, nd_ltccell_run_forward, nd_ltccell_run_backward};
    res = nd_cell_backward(&ops, typenum, x, dt, cacheo, dh, S, clen, wlen, (size_t)nd_ltccell_param_count(&c));
done:
    Py_XDECREF(x);
    Py_XDECREF(dt);
    Py_XDECREF(dh);
    Py_XDECREF(keep);
    return res;
}

static PyMethodDef nd_liquid_methods[] = {
    {"ltc_scan", ltc_scan, METH_VARARGS, "ltc_scan(a, tau, h0, solver, steps, rtol, atol, max_steps) -> h"},
    {"ltc_scan_backward", ltc_scan_backward, METH_VARARGS,
     "ltc_scan_backward(a, tau, h0, h, dh, solver, steps, rtol, atol, max_steps) -> (da, dtau, dh0)"},
    {"cfc_forward", cfc_forward, METH_VARARGS,
     "cfc_forward(x, dt, h0, params, hidden_size, act, mode, keep_cache) -> (h, cache)"},
    {"cfc_backward", cfc_backward, METH_VARARGS, "cfc_backward(dt, cache, dh, params, input_size, act, mode) -> (dx, dh0, dparams)"},
    {"ltccell_forward", ltccell_forward, METH_VARARGS,
     "ltccell_forward(x, dt, h0, params, unfolds, eps, keep_cache) -> (h, cache)"},
    {"ltccell_backward", ltccell_backward, METH_VARARGS,
     "ltccell_backward(x, dt, cache, dh, params, unfolds, eps) -> (dx, dh0, dparams)"},
    {NULL, NULL, 0, NULL}};

static const nd_entry *const nd_liquid_entries[] = {NULL};
const nd_family nd_liquid_family = {nd_liquid_entries, NULL, nd_liquid_methods};

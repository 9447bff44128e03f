/* Binding of the neural-network kernels of nd_mlp: dense, activations, layer norm, SwiGLU
 * and losses, forward and backward. Each entry point takes arrays of one float dtype (that
 * of its first argument), checks their shapes, and runs the kernel without the GIL. */
#include "nd_bind.h"

#include "nd_nn.h"
#include "nd_status.h"

/* Converts `count` objects to C-contiguous arrays of the dtype of the first; a None stays
 * NULL where `optional` allows it. Returns the typenum, or -1 with an exception set. */
static int nd_arrays(PyObject **objs, const char **names, int count, unsigned optional, PyArrayObject **out)
{
    for (int i = 0; i < count; ++i)
        out[i] = NULL;
    int typenum = nd_resolve_float_type(objs[0], names[0]);
    if (typenum < 0)
        return -1;
    for (int i = 0; i < count; ++i) {
        if (objs[i] == Py_None && (optional & (1u << i)))
            continue;
        if (!(out[i] = nd_float_array(objs[i], typenum, names[i]))) {
            for (int k = 0; k < i; ++k)
                Py_XDECREF(out[k]);
            return -1;
        }
    }
    return typenum;
}

static void nd_release(PyArrayObject **a, int count)
{
    for (int i = 0; i < count; ++i)
        Py_XDECREF(a[i]);
}

static int nd_expect(PyArrayObject *a, const char *name, int ndim, npy_intp d0, npy_intp d1)
{
    if (!a)
        return 0;
    if (PyArray_NDIM(a) != ndim || (d0 >= 0 && PyArray_DIM(a, 0) != d0) || (ndim > 1 && d1 >= 0 && PyArray_DIM(a, 1) != d1)) {
        PyObject *got = nd_shape_str(PyArray_NDIM(a), PyArray_DIMS(a));
        if (got)
            PyErr_Format(PyExc_ValueError, "%s has shape %S, which does not fit (expected %d axes%s)", name, got, ndim,
                         d0 >= 0 || d1 >= 0 ? " of matching sizes" : "");
        Py_XDECREF(got);
        return -1;
    }
    return 0;
}

static void *nd_data(PyArrayObject *a) { return a ? PyArray_DATA(a) : NULL; }

static PyObject *nd_new(int ndim, npy_intp d0, npy_intp d1, int typenum)
{
    npy_intp dims[2] = {d0, d1};
    return PyArray_SimpleNew(ndim, dims, typenum);
}

static PyObject *nd_status_result(int st, PyObject *result, const char *what)
{
    if (st != ND_OK) {
        Py_XDECREF(result);
        return nd_raise_status(st, what);
    }
    return result;
}

/* dense_forward(x [rows, in], w [in, out], b [out] | None) -> y [rows, out] */
static PyObject *dense_forward(PyObject *m, PyObject *args)
{
    PyObject *o[3];
    PyArrayObject *a[3];
    int spikes = 0;
    const char *names[3] = {"x", "kernel", "bias"};
    if (!PyArg_ParseTuple(args, "OOO|p:dense_forward", &o[0], &o[1], &o[2], &spikes))
        return NULL;
    int tn = nd_arrays(o, names, 3, 4u, a);
    if (tn < 0)
        return NULL;
    PyObject *y = NULL;
    int st = ND_OK;
    if (nd_expect(a[0], "x", 2, -1, -1) == 0 && nd_expect(a[1], "kernel", 2, PyArray_DIM(a[0], 1), -1) == 0 &&
        nd_expect(a[2], "bias", 1, PyArray_DIM(a[1], 1), -1) == 0) {
        npy_intp rows = PyArray_DIM(a[0], 0), in = PyArray_DIM(a[1], 0), out = PyArray_DIM(a[1], 1);
        if ((y = nd_new(2, rows, out, tn))) {
            void *x = nd_data(a[0]), *w = nd_data(a[1]), *b = nd_data(a[2]), *yd = PyArray_DATA((PyArrayObject *)y);
            Py_BEGIN_ALLOW_THREADS
            if (spikes) /* x holds 0/1 spikes: the event-driven kernel */
                st = tn == NPY_FLOAT ? nd_spike_dense_forward_f32(rows, in, out, x, w, b, yd)
                                     : nd_spike_dense_forward_f64(rows, in, out, x, w, b, yd);
            else
                st = tn == NPY_FLOAT ? nd_dense_forward_f32(rows, in, out, x, w, b, yd)
                                     : nd_dense_forward_f64(rows, in, out, x, w, b, yd);
            Py_END_ALLOW_THREADS
        }
    }
    nd_release(a, 3);
    if (y && spikes && st == ND_ERR_ARG) {
        Py_DECREF(y);
        PyErr_SetString(PyExc_ValueError, "x must hold spikes: every value 0 or 1 (spikes=True)");
        return NULL;
    }
    return y ? nd_status_result(st, y, "dense_forward") : NULL;
}

/* dense_backward(x, w, dy, has_bias) -> (dx, dw, db | None) */
static PyObject *dense_backward(PyObject *m, PyObject *args)
{
    PyObject *o[3];
    PyArrayObject *a[3];
    int has_bias, want_dx = 1, spikes = 0;
    const char *names[3] = {"x", "kernel", "dy"};
    if (!PyArg_ParseTuple(args, "OOOp|pp:dense_backward", &o[0], &o[1], &o[2], &has_bias, &want_dx, &spikes))
        return NULL;
    int tn = nd_arrays(o, names, 3, 0u, a);
    if (tn < 0)
        return NULL;
    PyObject *dx = NULL, *dw = NULL, *db = NULL, *res = NULL;
    if (nd_expect(a[0], "x", 2, -1, -1) == 0 && nd_expect(a[1], "kernel", 2, PyArray_DIM(a[0], 1), -1) == 0 &&
        nd_expect(a[2], "dy", 2, PyArray_DIM(a[0], 0), PyArray_DIM(a[1], 1)) == 0) {
        npy_intp rows = PyArray_DIM(a[0], 0), in = PyArray_DIM(a[1], 0), out = PyArray_DIM(a[1], 1);
        dx = want_dx ? nd_new(2, rows, in, tn) : Py_NewRef(Py_None); /* a first layer needs no dx */
        dw = nd_new(2, in, out, tn);
        db = has_bias ? nd_new(1, out, 0, tn) : Py_NewRef(Py_None);
        if (dx && dw && db) {
            int st;
            void *x = nd_data(a[0]), *w = nd_data(a[1]), *dy = nd_data(a[2]);
            void *dxd = want_dx ? PyArray_DATA((PyArrayObject *)dx) : NULL, *dwd = PyArray_DATA((PyArrayObject *)dw);
            void *dbd = has_bias ? PyArray_DATA((PyArrayObject *)db) : NULL;
            Py_BEGIN_ALLOW_THREADS
            if (spikes)
                st = tn == NPY_FLOAT ? nd_spike_dense_backward_f32(rows, in, out, x, w, dy, dxd, dwd, dbd, 0)
                                     : nd_spike_dense_backward_f64(rows, in, out, x, w, dy, dxd, dwd, dbd, 0);
            else
                st = tn == NPY_FLOAT ? nd_dense_backward_f32(rows, in, out, x, w, dy, dxd, dwd, dbd, 0)
                                     : nd_dense_backward_f64(rows, in, out, x, w, dy, dxd, dwd, dbd, 0);
            Py_END_ALLOW_THREADS
            if (spikes && st == ND_ERR_ARG)
                PyErr_SetString(PyExc_ValueError, "x must hold spikes: every value 0 or 1 (spikes=True)");
            else
                res = st == ND_OK ? PyTuple_Pack(3, dx, dw, db) : nd_raise_status(st, "dense_backward");
        }
    }
    Py_XDECREF(dx);
    Py_XDECREF(dw);
    Py_XDECREF(db);
    nd_release(a, 3);
    return res;
}

/* act_forward(act, x) -> y ; act_backward(act, x, y, dy) -> dx ; any shape */
static PyObject *act_forward(PyObject *m, PyObject *args)
{
    int act;
    PyObject *o[1];
    PyArrayObject *a[1];
    const char *names[1] = {"x"};
    if (!PyArg_ParseTuple(args, "iO:act_forward", &act, &o[0]))
        return NULL;
    if (!nd_act_name(act))
        return PyErr_Format(PyExc_ValueError, "unknown activation code %d", act);
    int tn = nd_arrays(o, names, 1, 0u, a);
    if (tn < 0)
        return NULL;
    PyObject *y = PyArray_SimpleNew(PyArray_NDIM(a[0]), PyArray_DIMS(a[0]), tn);
    int st = ND_OK;
    if (y) {
        npy_intp n = PyArray_SIZE(a[0]);
        void *x = nd_data(a[0]), *yd = PyArray_DATA((PyArrayObject *)y);
        Py_BEGIN_ALLOW_THREADS
        st = tn == NPY_FLOAT ? nd_act_forward_f32(act, n, x, yd) : nd_act_forward_f64(act, n, x, yd);
        Py_END_ALLOW_THREADS
    }
    nd_release(a, 1);
    return y ? nd_status_result(st, y, "act_forward") : NULL;
}

static PyObject *act_backward(PyObject *m, PyObject *args)
{
    int act;
    PyObject *o[3];
    PyArrayObject *a[3];
    const char *names[3] = {"x", "y", "dy"};
    if (!PyArg_ParseTuple(args, "iOOO:act_backward", &act, &o[0], &o[1], &o[2]))
        return NULL;
    if (!nd_act_name(act))
        return PyErr_Format(PyExc_ValueError, "unknown activation code %d", act);
    int tn = nd_arrays(o, names, 3, 0u, a);
    if (tn < 0)
        return NULL;
    PyObject *dx = NULL;
    int st = ND_OK;
    if (!PyArray_SAMESHAPE(a[0], a[1]) || !PyArray_SAMESHAPE(a[0], a[2])) {
        PyErr_SetString(PyExc_ValueError, "x, y and dy must have the same shape");
    } else if ((dx = PyArray_SimpleNew(PyArray_NDIM(a[0]), PyArray_DIMS(a[0]), tn))) {
        npy_intp n = PyArray_SIZE(a[0]);
        void *x = nd_data(a[0]), *y = nd_data(a[1]), *dy = nd_data(a[2]), *dxd = PyArray_DATA((PyArrayObject *)dx);
        Py_BEGIN_ALLOW_THREADS
        st = tn == NPY_FLOAT ? nd_act_backward_f32(act, n, x, y, dy, dxd) : nd_act_backward_f64(act, n, x, y, dy, dxd);
        Py_END_ALLOW_THREADS
    }
    nd_release(a, 3);
    return dx ? nd_status_result(st, dx, "act_backward") : NULL;
}

/* layernorm_forward(x [rows, n], gamma, beta, eps) -> (y, mean, rstd) */
static PyObject *layernorm_forward(PyObject *m, PyObject *args)
{
    PyObject *o[3];
    PyArrayObject *a[3];
    double eps;
    const char *names[3] = {"x", "gamma", "beta"};
    if (!PyArg_ParseTuple(args, "OOOd:layernorm_forward", &o[0], &o[1], &o[2], &eps))
        return NULL;
    int tn = nd_arrays(o, names, 3, 6u, a);
    if (tn < 0)
        return NULL;
    PyObject *y = NULL, *mean = NULL, *rstd = NULL, *res = NULL;
    if (nd_expect(a[0], "x", 2, -1, -1) == 0 && PyArray_DIM(a[0], 1) >= 1 &&
        nd_expect(a[1], "gamma", 1, PyArray_DIM(a[0], 1), -1) == 0 &&
        nd_expect(a[2], "beta", 1, PyArray_DIM(a[0], 1), -1) == 0) {
        npy_intp rows = PyArray_DIM(a[0], 0), n = PyArray_DIM(a[0], 1);
        y = nd_new(2, rows, n, tn);
        mean = nd_new(1, rows, 0, tn);
        rstd = nd_new(1, rows, 0, tn);
        if (y && mean && rstd) {
            int st;
            void *x = nd_data(a[0]), *g = nd_data(a[1]), *b = nd_data(a[2]);
            void *yd = PyArray_DATA((PyArrayObject *)y), *md = PyArray_DATA((PyArrayObject *)mean);
            void *rd = PyArray_DATA((PyArrayObject *)rstd);
            Py_BEGIN_ALLOW_THREADS
            st = tn == NPY_FLOAT ? nd_layernorm_forward_f32(rows, n, x, g, b, eps, yd, md, rd)
                                 : nd_layernorm_forward_f64(rows, n, x, g, b, eps, yd, md, rd);
            Py_END_ALLOW_THREADS
            res = st == ND_OK ? PyTuple_Pack(3, y, mean, rstd) : nd_raise_status(st, "layernorm_forward");
        }
    } else if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "layer norm needs at least one feature");
    }
    Py_XDECREF(y);
    Py_XDECREF(mean);
    Py_XDECREF(rstd);
    nd_release(a, 3);
    return res;
}

/* layernorm_backward(x, gamma, mean, rstd, dy) -> (dx, dgamma, dbeta) */
static PyObject *layernorm_backward(PyObject *m, PyObject *args)
{
    PyObject *o[5];
    PyArrayObject *a[5];
    const char *names[5] = {"x", "gamma", "mean", "rstd", "dy"};
    if (!PyArg_ParseTuple(args, "OOOOO:layernorm_backward", &o[0], &o[1], &o[2], &o[3], &o[4]))
        return NULL;
    int tn = nd_arrays(o, names, 5, 2u, a);
    if (tn < 0)
        return NULL;
    PyObject *dx = NULL, *dg = NULL, *dbt = NULL, *res = NULL;
    if (nd_expect(a[0], "x", 2, -1, -1) == 0 && PyArray_DIM(a[0], 1) >= 1 &&
        nd_expect(a[1], "gamma", 1, PyArray_DIM(a[0], 1), -1) == 0 &&
        nd_expect(a[2], "mean", 1, PyArray_DIM(a[0], 0), -1) == 0 &&
        nd_expect(a[3], "rstd", 1, PyArray_DIM(a[0], 0), -1) == 0 &&
        nd_expect(a[4], "dy", 2, PyArray_DIM(a[0], 0), PyArray_DIM(a[0], 1)) == 0) {
        npy_intp rows = PyArray_DIM(a[0], 0), n = PyArray_DIM(a[0], 1);
        dx = nd_new(2, rows, n, tn);
        dg = nd_new(1, n, 0, tn);
        dbt = nd_new(1, n, 0, tn);
        if (dx && dg && dbt) {
            int st;
            void *x = nd_data(a[0]), *g = nd_data(a[1]), *mu = nd_data(a[2]), *rs = nd_data(a[3]), *dy = nd_data(a[4]);
            void *dxd = PyArray_DATA((PyArrayObject *)dx), *dgd = PyArray_DATA((PyArrayObject *)dg);
            void *dbd = PyArray_DATA((PyArrayObject *)dbt);
            Py_BEGIN_ALLOW_THREADS
            st = tn == NPY_FLOAT ? nd_layernorm_backward_f32(rows, n, x, g, mu, rs, dy, dxd, dgd, dbd, 0)
                                 : nd_layernorm_backward_f64(rows, n, x, g, mu, rs, dy, dxd, dgd, dbd, 0);
            Py_END_ALLOW_THREADS
            res = st == ND_OK ? PyTuple_Pack(3, dx, dg, dbt) : nd_raise_status(st, "layernorm_backward");
        }
    } else if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "layer norm needs at least one feature");
    }
    Py_XDECREF(dx);
    Py_XDECREF(dg);
    Py_XDECREF(dbt);
    nd_release(a, 5);
    return res;
}

/* swiglu_forward(g, u) -> out ; swiglu_backward(g, u, dout) -> (dg, du) */
static PyObject *swiglu_forward(PyObject *m, PyObject *args)
{
    PyObject *o[2];
    PyArrayObject *a[2];
    const char *names[2] = {"gate", "up"};
    if (!PyArg_ParseTuple(args, "OO:swiglu_forward", &o[0], &o[1]))
        return NULL;
    int tn = nd_arrays(o, names, 2, 0u, a);
    if (tn < 0)
        return NULL;
    PyObject *out = NULL;
    if (!PyArray_SAMESHAPE(a[0], a[1]))
        PyErr_SetString(PyExc_ValueError, "gate and up must have the same shape");
    else if ((out = PyArray_SimpleNew(PyArray_NDIM(a[0]), PyArray_DIMS(a[0]), tn))) {
        npy_intp n = PyArray_SIZE(a[0]);
        void *g = nd_data(a[0]), *u = nd_data(a[1]), *od = PyArray_DATA((PyArrayObject *)out);
        Py_BEGIN_ALLOW_THREADS
        if (tn == NPY_FLOAT)
            nd_swiglu_forward_f32(n, g, u, od);
        else
            nd_swiglu_forward_f64(n, g, u, od);
        Py_END_ALLOW_THREADS
    }
    nd_release(a, 2);
    return out;
}

static PyObject *swiglu_backward(PyObject *m, PyObject *args)
{
    PyObject *o[3];
    PyArrayObject *a[3];
    const char *names[3] = {"gate", "up", "dout"};
    if (!PyArg_ParseTuple(args, "OOO:swiglu_backward", &o[0], &o[1], &o[2]))
        return NULL;
    int tn = nd_arrays(o, names, 3, 0u, a);
    if (tn < 0)
        return NULL;
    PyObject *dg = NULL, *du = NULL, *res = NULL;
    if (!PyArray_SAMESHAPE(a[0], a[1]) || !PyArray_SAMESHAPE(a[0], a[2]))
        PyErr_SetString(PyExc_ValueError, "gate, up and dout must have the same shape");
    else {
        dg = PyArray_SimpleNew(PyArray_NDIM(a[0]), PyArray_DIMS(a[0]), tn);
        du = PyArray_SimpleNew(PyArray_NDIM(a[0]), PyArray_DIMS(a[0]), tn);
        if (dg && du) {
            npy_intp n = PyArray_SIZE(a[0]);
            void *g = nd_data(a[0]), *u = nd_data(a[1]), *d = nd_data(a[2]);
            void *dgd = PyArray_DATA((PyArrayObject *)dg), *dud = PyArray_DATA((PyArrayObject *)du);
            Py_BEGIN_ALLOW_THREADS
            if (tn == NPY_FLOAT)
                nd_swiglu_backward_f32(n, g, u, d, dgd, dud);
            else
                nd_swiglu_backward_f64(n, g, u, d, dgd, dud);
            Py_END_ALLOW_THREADS
            res = PyTuple_Pack(2, dg, du);
        }
    }
    Py_XDECREF(dg);
    Py_XDECREF(du);
    nd_release(a, 3);
    return res;
}

/* softmax_xent(logits [rows, classes], labels int64 [rows]) -> (loss, dlogits) */
static PyObject *softmax_xent(PyObject *m, PyObject *args)
{
    PyObject *o[1], *labobj;
    PyArrayObject *a[1];
    const char *names[1] = {"logits"};
    if (!PyArg_ParseTuple(args, "OO:softmax_xent", &o[0], &labobj))
        return NULL;
    int tn = nd_arrays(o, names, 1, 0u, a);
    if (tn < 0)
        return NULL;
    PyArrayObject *lab = (PyArrayObject *)PyArray_FROMANY(labobj, NPY_INT64, 1, 1, NPY_ARRAY_IN_ARRAY);
    PyObject *d = NULL, *res = NULL;
    if (lab && nd_expect(a[0], "logits", 2, PyArray_DIM(lab, 0), -1) == 0) {
        npy_intp rows = PyArray_DIM(a[0], 0), classes = PyArray_DIM(a[0], 1);
        if (classes < 1)
            PyErr_SetString(PyExc_ValueError, "logits need at least one class");
        else if ((d = nd_new(2, rows, classes, tn))) {
            double loss = 0;
            int st;
            void *z = nd_data(a[0]), *dd = PyArray_DATA((PyArrayObject *)d);
            const int64_t *l = PyArray_DATA(lab);
            Py_BEGIN_ALLOW_THREADS
            st = tn == NPY_FLOAT ? nd_softmax_xent_f32(rows, classes, z, l, &loss, dd)
                                 : nd_softmax_xent_f64(rows, classes, z, l, &loss, dd);
            Py_END_ALLOW_THREADS
            if (st == ND_ERR_ARG)
                PyErr_Format(PyExc_ValueError, "labels must lie in [0, %zd)", (Py_ssize_t)classes);
            else
                res = Py_BuildValue("(dO)", loss, d);
        }
    }
    Py_XDECREF(lab);
    Py_XDECREF(d);
    nd_release(a, 1);
    return res;
}

/* mse(pred, target) -> (loss, dpred) */
static PyObject *mse(PyObject *m, PyObject *args)
{
    PyObject *o[2];
    PyArrayObject *a[2];
    const char *names[2] = {"pred", "target"};
    if (!PyArg_ParseTuple(args, "OO:mse", &o[0], &o[1]))
        return NULL;
    int tn = nd_arrays(o, names, 2, 0u, a);
    if (tn < 0)
        return NULL;
    PyObject *d = NULL, *res = NULL;
    if (!PyArray_SAMESHAPE(a[0], a[1]))
        PyErr_SetString(PyExc_ValueError, "pred and target must have the same shape");
    else if ((d = PyArray_SimpleNew(PyArray_NDIM(a[0]), PyArray_DIMS(a[0]), tn))) {
        double loss = 0;
        npy_intp n = PyArray_SIZE(a[0]);
        void *p = nd_data(a[0]), *t = nd_data(a[1]), *dd = PyArray_DATA((PyArrayObject *)d);
        Py_BEGIN_ALLOW_THREADS
        if (tn == NPY_FLOAT)
            nd_mse_f32(n, p, t, &loss, dd);
        else
            nd_mse_f64(n, p, t, &loss, dd);
        Py_END_ALLOW_THREADS
        res = Py_BuildValue("(dO)", loss, d);
    }
    Py_XDECREF(d);
    nd_release(a, 2);
    return res;
}

static PyMethodDef nd_nn_methods[] = {
    {"dense_forward", dense_forward, METH_VARARGS, "dense_forward(x, kernel, bias|None) -> y"},
    {"dense_backward", dense_backward, METH_VARARGS, "dense_backward(x, kernel, dy, has_bias) -> (dx, dkernel, dbias)"},
    {"act_forward", act_forward, METH_VARARGS, "act_forward(code, x) -> y"},
    {"act_backward", act_backward, METH_VARARGS, "act_backward(code, x, y, dy) -> dx"},
    {"layernorm_forward", layernorm_forward, METH_VARARGS, "layernorm_forward(x, gamma, beta, eps) -> (y, mean, rstd)"},
    {"layernorm_backward", layernorm_backward, METH_VARARGS,
     "layernorm_backward(x, gamma, mean, rstd, dy) -> (dx, dgamma, dbeta)"},
    {"swiglu_forward", swiglu_forward, METH_VARARGS, "swiglu_forward(gate, up) -> silu(gate) * up"},
    {"swiglu_backward", swiglu_backward, METH_VARARGS, "swiglu_backward(gate, up, dout) -> (dgate, dup)"},
    {"softmax_xent", softmax_xent, METH_VARARGS, "softmax_xent(logits, labels) -> (mean loss, dlogits)"},
    {"mse", mse, METH_VARARGS, "mse(pred, target) -> (mean loss, dpred)"},
    {NULL, NULL, 0, NULL}};

static const nd_entry *const nd_nn_entries[] = {NULL};
const nd_family nd_nn_family = {nd_nn_entries, NULL, nd_nn_methods};

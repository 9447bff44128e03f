/* Binding of the fused Hopfield retrieval kernel, forward and backward. */
#include "nd_bind.h"

#include <math.h>

#include "nd_generic.h"
#include "nd_hopfield.h"
#include "nd_status.h"

/* q [B, d], k [N, d], v [N, dv] or None -> arrays of one dtype with matching shapes. */
static int nd_hop_arrays(PyObject *qo, PyObject *ko, PyObject *vo, PyArrayObject **q, PyArrayObject **k,
                         PyArrayObject **v)
{
    *q = *k = *v = NULL;
    int tn = nd_resolve_float_type(qo, "queries");
    if (tn < 0 || !(*q = nd_float_array(qo, tn, "queries")) || !(*k = nd_float_array(ko, tn, "patterns")) ||
        (vo != Py_None && !(*v = nd_float_array(vo, tn, "values"))))
        return -1;
    if (nd_check_finite(*q, "queries") < 0 || nd_check_finite(*k, "patterns") < 0 ||
        (*v && nd_check_finite(*v, "values") < 0))
        return -1;
    if (PyArray_NDIM(*q) != 2 || PyArray_NDIM(*k) != 2 || PyArray_DIM(*q, 1) != PyArray_DIM(*k, 1)) {
        PyErr_SetString(PyExc_ValueError, "queries (batch, d) and patterns (N, d) must share their last axis");
        return -1;
    }
    if (PyArray_DIM(*k, 0) < 1) {
        PyErr_SetString(PyExc_ValueError, "patterns is empty: a memory needs at least one pattern");
        return -1;
    }
    if (*v && (PyArray_NDIM(*v) != 2 || PyArray_DIM(*v, 0) != PyArray_DIM(*k, 0))) {
        PyErr_SetString(PyExc_ValueError, "values must have shape (N, dv) with the N of patterns");
        return -1;
    }
    return tn;
}

static void *nd_hop_work(int64_t B, int64_t d, int64_t dv, int backward, size_t itemsize)
{
    size_t len, bytes;
    if (nd_hopfield_workspace_len(B, d, dv, backward, &len) != ND_OK || !nd_mul_size(len + 1, itemsize, &bytes)) {
        PyErr_SetString(PyExc_ValueError, "workspace size overflows");
        return NULL;
    }
    void *p = PyMem_RawMalloc(bytes);
    if (!p)
        PyErr_NoMemory();
    return p;
}

/* hopfield_forward(queries, patterns, values|None, beta) -> (out, lse) */
static PyObject *hopfield_forward(PyObject *module, PyObject *args)
{
    PyObject *qo, *ko, *vo;
    double beta;
    if (!PyArg_ParseTuple(args, "OOOd:hopfield_forward", &qo, &ko, &vo, &beta))
        return NULL;
    if (!(beta > 0) || !isfinite(beta))
        return PyErr_Format(PyExc_ValueError, "beta must be positive and finite, got %R", PyTuple_GET_ITEM(args, 3));
    PyArrayObject *q, *k, *v;
    PyObject *out = NULL, *lse = NULL, *res = NULL;
    void *work = NULL;
    int tn = nd_hop_arrays(qo, ko, vo, &q, &k, &v);
    if (tn >= 0) {
        const npy_intp B = PyArray_DIM(q, 0), N = PyArray_DIM(k, 0), d = PyArray_DIM(q, 1);
        const npy_intp dv = v ? PyArray_DIM(v, 1) : d;
        npy_intp od[2] = {B, dv};
        if ((work = nd_hop_work(B, d, dv, 0, PyArray_ITEMSIZE(q))) && (out = PyArray_SimpleNew(2, od, tn)) &&
            (lse = PyArray_SimpleNew(1, &od[0], tn))) {
            int st;
            void *qd = PyArray_DATA(q), *kd = PyArray_DATA(k), *vd = v ? PyArray_DATA(v) : NULL;
            void *outd = PyArray_DATA((PyArrayObject *)out), *ld = PyArray_DATA((PyArrayObject *)lse);
            Py_BEGIN_ALLOW_THREADS
            st = tn == NPY_FLOAT ? nd_hopfield_forward_f32(B, N, d, dv, beta, qd, kd, vd, outd, ld, work)
                                 : nd_hopfield_forward_f64(B, N, d, dv, beta, qd, kd, vd, outd, ld, work);
            Py_END_ALLOW_THREADS
            res = st == ND_OK ? PyTuple_Pack(2, out, lse) : nd_raise_status(st, "hopfield_forward");
        }
    }
    PyMem_RawFree(work);
    Py_XDECREF(q);
    Py_XDECREF(k);
    Py_XDECREF(v);
    Py_XDECREF(out);
    Py_XDECREF(lse);
    return res;
}

/* hopfield_backward(queries, patterns, values|None, beta, out, lse, dout, dlse|None)
 *   -> (dq, dk, dv|None, dbeta) */
static PyObject *hopfield_backward(PyObject *module, PyObject *args)
{
    PyObject *qo, *ko, *vo, *oo, *lo, *doo, *dlo;
    double beta;
    if (!PyArg_ParseTuple(args, "OOOdOOOO:hopfield_backward", &qo, &ko, &vo, &beta, &oo, &lo, &doo, &dlo))
        return NULL;
    if (!(beta > 0) || !isfinite(beta))
        return PyErr_Format(PyExc_ValueError, "beta must be positive and finite");
    PyArrayObject *q, *k, *v, *o = NULL, *l = NULL, *dout = NULL, *dlse = NULL;
    PyObject *dq = NULL, *dk = NULL, *dvv = NULL, *res = NULL;
    void *work = NULL;
    int tn = nd_hop_arrays(qo, ko, vo, &q, &k, &v);
    if (tn >= 0) {
        const npy_intp B = PyArray_DIM(q, 0), N = PyArray_DIM(k, 0), d = PyArray_DIM(q, 1);
        const npy_intp dv = v ? PyArray_DIM(v, 1) : d;
        if ((o = nd_float_array(oo, tn, "out")) && (l = nd_float_array(lo, tn, "lse")) &&
            (dout = nd_float_array(doo, tn, "dout")) && (dlo == Py_None || (dlse = nd_float_array(dlo, tn, "dlse")))) {
            int ok = PyArray_NDIM(o) == 2 && PyArray_DIM(o, 0) == B && PyArray_DIM(o, 1) == dv && PyArray_SAMESHAPE(o, dout) &&
                     PyArray_NDIM(l) == 1 && PyArray_DIM(l, 0) == B && (!dlse || PyArray_SAMESHAPE(l, dlse));
            npy_intp qd2[2] = {B, d}, kd2[2] = {N, d}, vd2[2] = {N, dv};
            if (!ok)
                PyErr_SetString(PyExc_ValueError, "out, lse, dout and dlse do not match the forward pass");
            else if ((work = nd_hop_work(B, d, dv, 1, PyArray_ITEMSIZE(q))) && (dq = PyArray_SimpleNew(2, qd2, tn)) &&
                     (dk = PyArray_SimpleNew(2, kd2, tn)) && (!v || (dvv = PyArray_SimpleNew(2, vd2, tn)))) {
                int st;
                double dbeta = 0;
                void *qd = PyArray_DATA(q), *kd = PyArray_DATA(k), *vd = v ? PyArray_DATA(v) : NULL;
                void *od = PyArray_DATA(o), *ld = PyArray_DATA(l), *dod = PyArray_DATA(dout);
                void *dld = dlse ? PyArray_DATA(dlse) : NULL, *dqd = PyArray_DATA((PyArrayObject *)dq);
                void *dkd = PyArray_DATA((PyArrayObject *)dk), *dvd = dvv ? PyArray_DATA((PyArrayObject *)dvv) : NULL;
                Py_BEGIN_ALLOW_THREADS
                st = tn == NPY_FLOAT
                         ? nd_hopfield_backward_f32(B, N, d, dv, beta, qd, kd, vd, od, ld, dod, dld, dqd, dkd, dvd, &dbeta, work)
                         : nd_hopfield_backward_f64(B, N, d, dv, beta, qd, kd, vd, od, ld, dod, dld, dqd, dkd, dvd, &dbeta, work);
                Py_END_ALLOW_THREADS
                res = st == ND_OK ? Py_BuildValue("(OOOd)", dq, dk, dvv ? dvv : Py_None, dbeta)
                                  : nd_raise_status(st, "hopfield_backward");
            }
        }
    }
    PyMem_RawFree(work);
    Py_XDECREF(q);
    Py_XDECREF(k);
    Py_XDECREF(v);
    Py_XDECREF(o);
    Py_XDECREF(l);
    Py_XDECREF(dout);
    Py_XDECREF(dlse);
    Py_XDECREF(dq);
    Py_XDECREF(dk);
    Py_XDECREF(dvv);
    return res;
}

/* hopfield_classical_async(W [n,n] f64, x [B,n] f64 (copied), order [sweeps, n] int64) -> (x, flips) */
static PyObject *hopfield_classical_async(PyObject *module, PyObject *args)
{
    PyObject *wo, *xo, *oo;
    if (!PyArg_ParseTuple(args, "OOO:hopfield_classical_async", &wo, &xo, &oo))
        return NULL;
    PyArrayObject *W = (PyArrayObject *)PyArray_FROMANY(wo, NPY_DOUBLE, 2, 2, NPY_ARRAY_IN_ARRAY);
    PyArrayObject *x = W ? (PyArrayObject *)PyArray_FROMANY(xo, NPY_DOUBLE, 2, 2, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_ENSURECOPY) : NULL;
    PyArrayObject *order = x ? (PyArrayObject *)PyArray_FROMANY(oo, NPY_INT64, 2, 2, NPY_ARRAY_IN_ARRAY) : NULL;
    PyObject *res = NULL;
    if (order) {
        const npy_intp n = PyArray_DIM(W, 0);
        if (PyArray_DIM(W, 1) != n || PyArray_DIM(x, 1) != n || PyArray_DIM(order, 1) != n)
            PyErr_SetString(PyExc_ValueError, "W (n, n), x (batch, n) and order (sweeps, n) do not match");
        else {
            int64_t flips;
            const double *wd = PyArray_DATA(W);
            double *xd = PyArray_DATA(x);
            const int64_t *od = PyArray_DATA(order);
            npy_intp B = PyArray_DIM(x, 0), S = PyArray_DIM(order, 0);
            Py_BEGIN_ALLOW_THREADS
            flips = nd_hopfield_classical_async(B, n, wd, S, od, xd);
            Py_END_ALLOW_THREADS
            res = flips < 0 ? nd_raise_status((int)flips, "hopfield_classical_async")
                            : Py_BuildValue("(OL)", (PyObject *)x, (long long)flips);
        }
    }
    Py_XDECREF(W);
    Py_XDECREF(x);
    Py_XDECREF(order);
    return res;
}

PyMethodDef nd_hopfield_methods[] = {
    {"hopfield_classical_async", hopfield_classical_async, METH_VARARGS,
     "hopfield_classical_async(W, x, order) -> (x, flips in the last sweep)"},
    {"hopfield_forward", hopfield_forward, METH_VARARGS, "hopfield_forward(q, k, v|None, beta) -> (out, lse)"},
    {"hopfield_backward", hopfield_backward, METH_VARARGS,
     "hopfield_backward(q, k, v|None, beta, out, lse, dout, dlse|None) -> (dq, dk, dv|None, dbeta)"},
    {NULL, NULL, 0, NULL}};

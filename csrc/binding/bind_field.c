/* Field specs from neurodyn.fields to nd_field descriptions: the parameters converted to the
 * state's type and checked, the rest of the rules left to nd_field_check. */
#include "bind_field.h"

#include <string.h>

#include "nd_nn.h"
#include "nd_status.h"

/* One parameter of typenum with ndim axes matching dims (-1: any), finite, kept alive in
 * bf->keep; NULL with an exception set. */
static PyArrayObject *nd_field_param(nd_bound_field *bf, PyObject *obj, int typenum, int ndim, const npy_intp *dims,
                                     const char *name, const char *axes)
{
    PyArrayObject *a = nd_float_array(obj, typenum, name);
    if (!a)
        return NULL;
    /* the number of axes first: "expected 2 axes" says more than a shape with free sizes */
    if (nd_check_shape(a, name, ndim, NULL, axes) < 0 || nd_check_shape(a, name, ndim, dims, axes) < 0 ||
        nd_check_finite(a, name) < 0 || PyList_Append(bf->keep, (PyObject *)a) < 0) {
        Py_DECREF(a);
        return NULL;
    }
    Py_DECREF(a); /* bf->keep holds it */
    return a;
}

static int nd_field_parse_linear(nd_bound_field *bf, PyObject *params, int typenum)
{
    nd_field *f = &bf->f;
    if (PyTuple_GET_SIZE(params) != 2)
        return -1;
    npy_intp sq[2] = {-1, -1};
    PyArrayObject *A = nd_field_param(bf, PyTuple_GET_ITEM(params, 0), typenum, 2, sq, "A", "(n, n)");
    if (!A)
        return -1;
    sq[0] = sq[1] = PyArray_DIM(A, 0);
    if (nd_check_shape(A, "A", 2, sq, "(n, n), a square matrix") < 0)
        return -1;
    f->A = PyArray_DATA(A);
    f->dim = sq[0];
    PyObject *b = PyTuple_GET_ITEM(params, 1);
    PyArrayObject *ba = b == Py_None ? NULL : nd_field_param(bf, b, typenum, 1, sq, "b", "(n,) with the n of A");
    if (b != Py_None && !ba)
        return -1;
    f->b = ba ? PyArray_DATA(ba) : NULL;
    return 0;
}

static int nd_field_parse_lorenz(nd_bound_field *bf, PyObject *consts)
{
    static const nd_arg rows[3] = {ND_SCALAR(nd_field, sigma, "sigma", ND_ARG_DOUBLE, 0),
                                   ND_SCALAR(nd_field, rho, "rho", ND_ARG_DOUBLE, 0),
                                   ND_SCALAR(nd_field, beta, "beta", ND_ARG_DOUBLE, 0)};
    double *out[3] = {&bf->f.sigma, &bf->f.rho, &bf->f.beta};
    if (PyTuple_GET_SIZE(consts) != 3)
        return -1;
    for (int i = 0; i < 3; ++i)
        if (nd_parse_double(&rows[i], PyTuple_GET_ITEM(consts, i), out[i]) < 0)
            return -1;
    bf->f.dim = 3;
    return 0;
}

static int nd_field_parse_mlp(nd_bound_field *bf, PyObject *params, PyObject *acts, int typenum)
{
    static const nd_arg act_rows[2] = {ND_CHOICE(nd_field, acts, "activation", 0, nd_act_names),
                                       ND_CHOICE(nd_field, acts, "final_activation", 0, nd_act_names)};
    nd_field *f = &bf->f;
    const Py_ssize_t L = PyTuple_GET_SIZE(params) / 2;
    int act[2];
    if (PyTuple_GET_SIZE(params) % 2 || PyTuple_GET_SIZE(acts) != 2)
        return -1;
    for (int i = 0; i < 2; ++i)
        if (nd_parse_choice(&act_rows[i], PyTuple_GET_ITEM(acts, i), &act[i]) < 0)
            return -1;
    f->n_layers = L > (1 << 30) ? 1 << 30 : (int)L;
    if (L < 1 || L > ND_FIELD_MAX_LAYERS) { /* the kernel's rule on the layer count */
        nd_raise_status(nd_field_check(f), "field");
        return -1;
    }
    for (Py_ssize_t l = 0; l < L; ++l) {
        char wname[32], bname[32], axes[64];
        snprintf(wname, sizeof wname, "weights[%zd]", l);
        snprintf(bname, sizeof bname, "biases[%zd]", l);
        if (l == 0)
            snprintf(axes, sizeof axes, "(d, width)");
        else
            snprintf(axes, sizeof axes, "(%lld, width): the outputs of weights[%zd]", (long long)f->widths[l], l - 1);
        npy_intp wd[2] = {l == 0 ? -1 : (npy_intp)f->widths[l], -1};
        PyArrayObject *w = nd_field_param(bf, PyTuple_GET_ITEM(params, 2 * l), typenum, 2, wd, wname, axes);
        if (!w)
            return -1;
        f->weights[l] = PyArray_DATA(w);
        f->widths[l] = PyArray_DIM(w, 0);
        f->widths[l + 1] = PyArray_DIM(w, 1);
        PyObject *b = PyTuple_GET_ITEM(params, 2 * l + 1);
        npy_intp bd[1] = {(npy_intp)f->widths[l + 1]};
        PyArrayObject *ba = b == Py_None ? NULL : nd_field_param(bf, b, typenum, 1, bd, bname, "(width,)");
        if (b != Py_None && !ba)
            return -1;
        f->biases[l] = ba ? PyArray_DATA(ba) : NULL;
        f->acts[l] = act[l == L - 1];
    }
    f->dim = f->widths[0];
    return 0;
}

int nd_field_parse(nd_bound_field *bf, PyObject *spec, int typenum)
{
    static const nd_arg kind_row = ND_CHOICE(nd_field, kind, "field kind", 0, nd_field_kind_names);
    memset(bf, 0, sizeof *bf);
    PyObject *kind, *params, *acts, *consts;
    if (!PyTuple_Check(spec) || !PyArg_ParseTuple(spec, "OO!O!O!;a field spec is (kind, params, activations, constants)",
                                                  &kind, &PyTuple_Type, &params, &PyTuple_Type, &acts, &PyTuple_Type,
                                                  &consts)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "f must be callable or a neurodyn.fields vector field");
        return -1;
    }
    if (nd_parse_choice(&kind_row, kind, &bf->f.kind) < 0 || !(bf->keep = PyList_New(0)))
        return -1;
    int rc = -1;
    switch (bf->f.kind) {
    case ND_FIELD_LINEAR: rc = nd_field_parse_linear(bf, params, typenum); break;
    case ND_FIELD_LORENZ: rc = nd_field_parse_lorenz(bf, consts); break;
    case ND_FIELD_MLP: rc = nd_field_parse_mlp(bf, params, acts, typenum); break;
    default: break; /* RELAX holds per-state parameters: not a field of neurodyn.fields */
    }
    int st;
    if (rc == 0 && (st = nd_field_check(&bf->f)) != ND_OK) {
        nd_raise_status(st, "field");
        rc = -1;
    }
    if (rc < 0 && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "malformed field spec");
    if (rc < 0)
        nd_field_release(bf);
    return rc;
}

int nd_field_bind(nd_bound_field *bf, PyArrayObject *state, const char *name, int keep_slots)
{
    nd_field *f = &bf->f;
    if (PyArray_NDIM(state) < 1 || PyArray_DIM(state, PyArray_NDIM(state) - 1) != f->dim) {
        PyObject *got = nd_shape_str(PyArray_NDIM(state), PyArray_DIMS(state));
        if (got)
            PyErr_Format(PyExc_ValueError, "%s has shape %S; this field needs its last axis of size %lld", name, got,
                         (long long)f->dim);
        Py_XDECREF(got);
        return -1;
    }
    f->batch = f->dim ? (int64_t)(PyArray_SIZE(state) / f->dim) : 0;
    f->keep_slots = keep_slots;
    size_t len;
    int st = nd_field_workspace_len(f, &len);
    if (st != ND_OK) {
        nd_raise_status(st, "field");
        return -1;
    }
    PyMem_RawFree(bf->work);
    f->work = bf->work = nd_work_alloc(len, (size_t)PyArray_ITEMSIZE(state));
    return bf->work ? 0 : -1;
}

void nd_field_release(nd_bound_field *bf)
{
    Py_CLEAR(bf->keep);
    PyMem_RawFree(bf->work);
    bf->work = bf->f.work = NULL;
}

int nd_parse_field(PyObject *spec, int typenum, nd_field *f, PyObject *keep)
{
    nd_bound_field bf;
    if (nd_field_parse(&bf, spec, typenum) < 0)
        return -1;
    /* the parameter arrays join the caller's list, which keeps them alive from here on */
    const int rc = PyList_SetSlice(keep, PY_SSIZE_T_MAX, PY_SSIZE_T_MAX, bf.keep);
    *f = bf.f;
    nd_field_release(&bf);
    return rc;
}

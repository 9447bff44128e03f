/* Binding of the built-in vector fields: the field description neurodyn.fields builds, turned
 * into an nd_field, and their Jacobians (field_jac). */
#include "nd_bind.h"

#include <string.h>

#include "nd_fields.h"
#include "nd_status.h"

/* One parameter array of the field, of the state's type (finite) or NPY_INT64 (indices), with
 * `ndim` axes (and the sizes of `dims` that are >= 0); `keep` holds it for the field's lifetime. */
static const void *nd_field_array(PyObject *obj, int typenum, int ndim, const npy_intp *dims, const char *name,
                                  const char *axes, PyObject *keep)
{
    const int ints = typenum == NPY_INT64;
    PyArrayObject *a = ints ? (PyArrayObject *)PyArray_FROMANY(obj, NPY_INT64, 0, 0, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST)
                            : nd_float_array(obj, typenum, name);
    if (!a)
        return NULL;
    if (nd_check_shape(a, name, ndim, dims, axes) < 0 || (!ints && nd_check_finite(a, name) < 0) ||
        PyList_Append(keep, (PyObject *)a) < 0) {
        Py_DECREF(a);
        return NULL;
    }
    Py_DECREF(a); /* `keep` holds it */
    return PyArray_DATA(a);
}

int nd_parse_field(PyObject *spec, int typenum, nd_field *f, PyObject *keep)
{
    int kind;
    PyObject *params, *acts, *consts;
    if (!PyTuple_Check(spec)) {
        PyErr_Format(PyExc_TypeError, "a field is described by a tuple (kind, params, acts, consts), got %R", spec);
        return -1;
    }
    if (!PyArg_ParseTuple(spec, "iO!O!O!;a field is described by (kind, params, acts, consts)", &kind, &PyTuple_Type,
                          &params, &PyTuple_Type, &acts, &PyTuple_Type, &consts))
        return -1;
    memset(f, 0, sizeof *f);
    f->kind = kind;
    const Py_ssize_t n_params = PyTuple_GET_SIZE(params);
    switch (kind) {
    case ND_FIELD_LINEAR: {
        if (n_params != 2)
            break;
        const npy_intp sq[2] = {-1, -1};
        if (!(f->A = nd_field_array(PyTuple_GET_ITEM(params, 0), typenum, 2, sq, "A", "(n, n)", keep)))
            return -1;
        PyArrayObject *A = (PyArrayObject *)PyList_GET_ITEM(keep, PyList_GET_SIZE(keep) - 1);
        f->dim = PyArray_DIM(A, 0);
        const npy_intp square[2] = {f->dim, f->dim}, vec[1] = {f->dim};
        if (nd_check_shape(A, "A", 2, square, "(n, n)") < 0)
            return -1;
        PyObject *b = PyTuple_GET_ITEM(params, 1);
        if (b != Py_None && !(f->b = nd_field_array(b, typenum, 1, vec, "b", "(n,)", keep)))
            return -1;
        return 0;
    }
    case ND_FIELD_LORENZ:
        f->dim = 3;
        return PyArg_ParseTuple(consts, "ddd;the Lorenz constants are (sigma, rho, beta)", &f->sigma, &f->rho,
                                &f->beta)
                   ? 0
                   : -1;
    case ND_FIELD_MLP: {
        const Py_ssize_t L = PyTuple_GET_SIZE(acts);
        if (L < 1 || L > ND_FIELD_MAX_LAYERS || n_params != 2 * L)
            break;
        f->n_layers = (int)L;
        for (Py_ssize_t l = 0; l < L; ++l) {
            char wname[32], bname[32];
            snprintf(wname, sizeof wname, "weights[%zd]", l);
            snprintf(bname, sizeof bname, "biases[%zd]", l);
            const npy_intp wd[2] = {l ? f->widths[l] : -1, -1};
            if (!(f->weights[l] = nd_field_array(PyTuple_GET_ITEM(params, 2 * l), typenum, 2, wd, wname,
                                                 "(inputs, outputs) chaining the layers", keep)))
                return -1;
            PyArrayObject *w = (PyArrayObject *)PyList_GET_ITEM(keep, PyList_GET_SIZE(keep) - 1);
            f->widths[l] = PyArray_DIM(w, 0);
            f->widths[l + 1] = PyArray_DIM(w, 1);
            const npy_intp bd[1] = {f->widths[l + 1]};
            PyObject *b = PyTuple_GET_ITEM(params, 2 * l + 1);
            if (b != Py_None && !(f->biases[l] = nd_field_array(b, typenum, 1, bd, bname, "(outputs,)", keep)))
                return -1;
            const long act = PyLong_AsLong(PyTuple_GET_ITEM(acts, l));
            if (act == -1 && PyErr_Occurred())
                return -1;
            f->acts[l] = (int)act;
        }
        f->dim = f->widths[0];
        return 0;
    }
    case ND_FIELD_POLY: {
        if (n_params != 3)
            break;
        const npy_intp any2[2] = {-1, -1};
        if (!(f->powers = nd_field_array(PyTuple_GET_ITEM(params, 2), NPY_INT64, 2, any2, "powers", "(terms, dim)", keep)))
            return -1;
        PyArrayObject *pw = (PyArrayObject *)PyList_GET_ITEM(keep, PyList_GET_SIZE(keep) - 1);
        const npy_intp K = PyArray_DIM(pw, 0), kd[1] = {K};
        f->n_terms = K;
        f->dim = PyArray_DIM(pw, 1);
        if (!(f->target = nd_field_array(PyTuple_GET_ITEM(params, 1), NPY_INT64, 1, kd, "target", "(terms,)", keep)))
            return -1;
        if (!(f->coef = nd_field_array(PyTuple_GET_ITEM(params, 0), typenum, 1, kd, "coef", "(terms,)", keep)))
            return -1;
        return 0;
    }
    default: break;
    }
    PyErr_SetString(PyExc_ValueError, "malformed field description");
    return -1;
}

int nd_bind_field_rows(nd_field *f, PyArrayObject *y, const char *name, int64_t rows)
{
    if (PyArray_NDIM(y) < 1 || PyArray_DIM(y, PyArray_NDIM(y) - 1) != f->dim) {
        PyObject *got = nd_shape_str(PyArray_NDIM(y), PyArray_DIMS(y));
        if (got)
            PyErr_Format(PyExc_ValueError, "%s has shape %S; this field needs its last axis of size %lld", name, got,
                         (long long)f->dim);
        Py_XDECREF(got);
        return -1;
    }
    f->batch = rows;
    int st = nd_field_check(f);
    return st == ND_OK ? 0 : (nd_raise_status(st, "vector field"), -1);
}

/* ---- field_jac ------------------------------------------------------------------------------- */

typedef struct {
    PyObject *spec;
    double t;
    PyArrayObject *y;
} nd_field_jac_args;

static const nd_arg field_jac_args[] = {
    {"spec", ND_ARG_OBJECT, 0, offsetof(nd_field_jac_args, spec), -1, NULL, NULL},
    ND_SCALAR(nd_field_jac_args, t, "t", ND_ARG_DOUBLE, 0),
    ND_IN(nd_field_jac_args, y, "y", ND_TYPE | ND_FINITE, -1, "(..., dim)"),
    {NULL}};

/* -> J of shape y.shape + (dim,): J[..., r, c] = d f_r / d y_c */
static PyObject *field_jac_body(PyObject *module, void *args, int tn)
{
    nd_field_jac_args *a = args;
    nd_field f;
    PyObject *keep = PyList_New(0), *J = NULL;
    void *work = NULL;
    if (!keep || nd_parse_field(a->spec, tn, &f, keep) < 0)
        goto done;
    const int64_t rows = PyArray_NDIM(a->y) && f.dim ? (int64_t)(PyArray_SIZE(a->y) / f.dim) : 0;
    if (nd_bind_field_rows(&f, a->y, "y", rows) < 0)
        goto done;
    size_t len;
    int st = nd_field_jac_workspace_len(&f, &len);
    if (st != ND_OK) {
        nd_raise_status(st, "field_jac");
        goto done;
    }
    if (!(work = nd_work_alloc(len, PyArray_ITEMSIZE(a->y))))
        goto done;
    f.work = work;
    npy_intp dims[NPY_MAXDIMS];
    const int nd = PyArray_NDIM(a->y);
    if (nd >= NPY_MAXDIMS) {
        PyErr_SetString(PyExc_ValueError, "y has too many axes");
        goto done;
    }
    memcpy(dims, PyArray_DIMS(a->y), (size_t)nd * sizeof(npy_intp));
    dims[nd] = f.dim;
    if (!(J = PyArray_SimpleNew(nd + 1, dims, tn)))
        goto done;
    void *yd = PyArray_DATA(a->y), *Jd = PyArray_DATA((PyArrayObject *)J);
    Py_BEGIN_ALLOW_THREADS
    st = ND_DISPATCH(tn, nd_field_jac, &f, a->t, yd, Jd);
    Py_END_ALLOW_THREADS
    if (st != ND_OK) {
        nd_raise_status(st, "field_jac");
        Py_CLEAR(J);
    }
done:
    PyMem_RawFree(work);
    Py_XDECREF(keep);
    return J;
}
ND_ENTRY(field_jac, nd_field_jac_args, NULL,
         "field_jac(spec, t, y) -> J, y.shape + (dim,): the Jacobian df/dy of a built-in field at each row of y")

static const nd_entry *const nd_fields_entries[] = {&field_jac_entry, NULL};
const nd_family nd_fields_family = {nd_fields_entries, NULL, NULL};

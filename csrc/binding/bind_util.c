/* Array conversion and error mapping shared by every binding. */
#include "nd_bind.h"

#include <limits.h>
#include <math.h>
#ifdef __GLIBC__
#include <malloc.h> /* mallopt */
#endif
#include <time.h>

#include "nd_blas.h"
#include "nd_parallel.h"
#include "nd_status.h"
#include "nd_vmath.h" /* nd_all_finite, ND_VECTOR_CLONES */

int nd_resolve_float_type(PyObject *obj, const char *name)
{
    PyArray_Descr *descr = NULL;
    if (PyArray_Check(obj)) {
        descr = PyArray_DESCR((PyArrayObject *)obj);
        Py_INCREF(descr);
    } else {
        PyArrayObject *tmp = (PyArrayObject *)PyArray_FROM_O(obj);
        if (!tmp)
            return -1;
        descr = PyArray_DESCR(tmp);
        Py_INCREF(descr);
        Py_DECREF(tmp);
    }
    int typenum = -1;
    char kind = descr->kind;
    if (kind == 'f' && PyDataType_ELSIZE(descr) <= 4)
        typenum = NPY_FLOAT;
    else if (kind == 'f' && PyDataType_ELSIZE(descr) == 8)
        typenum = NPY_DOUBLE;
    else if (kind == 'i' || kind == 'u' || kind == 'b')
        typenum = NPY_DOUBLE;
    if (typenum < 0) {
        PyObject *dname = PyObject_Str((PyObject *)descr);
        PyErr_Format(PyExc_TypeError, "%s has dtype %S; neurodyn computes in float32 or float64 "
                     "(real floats, integers and bools are accepted)", name, dname ? dname : Py_None);
        Py_XDECREF(dname);
    }
    Py_DECREF(descr);
    return typenum;
}

PyArrayObject *nd_float_array(PyObject *obj, int typenum, const char *name)
{
    if (nd_resolve_float_type(obj, name) < 0)
        return NULL;
    /* FORCECAST: a float64 parameter feeding a float32 state is cast to the state's type. */
    return (PyArrayObject *)PyArray_FROMANY(obj, typenum, 0, 0, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
}

/* Every input array passes through here: compiled for the machine's widest vectors. */
ND_VECTOR_CLONES
static int nd_all_finite_any(npy_intp n, int is_float, const void *p)
{
    return is_float ? nd_all_finitef(n, p) : nd_all_finite(n, p);
}

int nd_check_finite(PyArrayObject *a, const char *name)
{
    const npy_intp n = PyArray_SIZE(a);
    const int ok = nd_all_finite_any(n, PyArray_TYPE(a) == NPY_FLOAT, PyArray_DATA(a));
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "%s contains NaN or inf", name);
        return -1;
    }
    return 0;
}

PyObject *nd_raise_status(int status, const char *what)
{
    PyObject *type = PyExc_RuntimeError;
    if (status == ND_ERR_ARG)
        type = PyExc_ValueError;
    else if (status == ND_ERR_OVERFLOW)
        type = PyExc_ValueError;
    else if (status == ND_ERR_NOMEM)
        type = PyExc_MemoryError;
    PyErr_Format(type, "%s: %s", what, nd_status_str(status));
    return NULL;
}

static void nd_free_capsule(PyObject *capsule)
{
    PyMem_RawFree(PyCapsule_GetPointer(capsule, "neurodyn.buffer"));
}

PyObject *nd_array_adopt(void **buf, int ndim, const npy_intp *dims, int typenum)
{
    npy_intp size = 1;
    for (int i = 0; i < ndim; ++i)
        size *= dims[i];
    if (size == 0 || !*buf)
        return PyArray_SimpleNew(ndim, (npy_intp *)dims, typenum);
    PyObject *arr = PyArray_SimpleNewFromData(ndim, (npy_intp *)dims, typenum, *buf);
    PyObject *owner = arr ? PyCapsule_New(*buf, "neurodyn.buffer", nd_free_capsule) : NULL;
    if (!owner) {
        Py_XDECREF(arr);
        return NULL;
    }
    *buf = NULL; /* from here the capsule owns it, even if the next call fails */
    if (PyArray_SetBaseObject((PyArrayObject *)arr, owner) < 0) { /* steals owner */
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

PyObject *nd_shape_str(int ndim, const npy_intp *shape)
{
    PyObject *tuple = PyArray_IntTupleFromIntp(ndim, (npy_intp *)shape);
    if (!tuple)
        return NULL;
    PyObject *s = PyObject_Str(tuple);
    Py_DECREF(tuple);
    return s;
}

/* Raises neurodyn.IntegrationError(message) with the items of `attrs` set as attributes. */
void nd_set_integration_error(PyObject *module, PyObject *message, PyObject *attrs)
{
    PyObject *exc = PyObject_CallOneArg(nd_state(module)->integration_error, message);
    if (!exc)
        return;
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(attrs, &pos, &key, &value))
        if (PyObject_SetAttr(exc, key, value) < 0) {
            Py_DECREF(exc);
            return;
        }
    PyErr_SetObject(nd_state(module)->integration_error, exc);
    Py_DECREF(exc);
}

static double nd_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* With the GIL: keeps the raised exception unless one is already kept (then clears it). */
static void nd_watch_save_error(nd_watch *w)
{
    if (!w->exc_type)
        PyErr_Fetch(&w->exc_type, &w->exc_value, &w->exc_tb);
    else
        PyErr_Clear();
}

int nd_watch_poll(void *ctx, double done)
{
    nd_watch *w = ctx;
    /* Taking the GIL every step would serialise concurrent kernels; 20 times a second is
     * enough for Ctrl-C to stop within a second and for a progress bar to move. */
    double now = nd_monotonic();
    if (now < w->next_poll)
        return 0;
    w->next_poll = now + 0.05;
    PyGILState_STATE gil = PyGILState_Ensure();
    int ok = PyErr_CheckSignals() >= 0;
    if (ok && w->progress) {
        PyObject *frac = PyFloat_FromDouble(done < 0 ? 0 : (done > 1 ? 1 : done));
        PyObject *r = frac ? PyObject_CallOneArg(w->progress, frac) : NULL;
        ok = r != NULL;
        Py_XDECREF(r);
        Py_XDECREF(frac);
    }
    return nd_watch_callback_done(w, ok, gil) != ND_OK;
}

int nd_watch_callback_done(nd_watch *w, int ok, PyGILState_STATE gil)
{
    if (ok && PyErr_CheckSignals() < 0)
        ok = 0;
    if (!ok)
        nd_watch_save_error(w);
    PyGILState_Release(gil);
    return ok ? ND_OK : ND_ERR_CALLBACK;
}

int nd_watch_reraise(nd_watch *w)
{
    if (!w->exc_type)
        return 0;
    PyErr_Restore(w->exc_type, w->exc_value, w->exc_tb);
    w->exc_type = w->exc_value = w->exc_tb = NULL;
    return 1;
}

void nd_watch_clear(nd_watch *w)
{
    Py_CLEAR(w->exc_type);
    Py_CLEAR(w->exc_value);
    Py_CLEAR(w->exc_tb);
}

static PyObject *thread_info(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("{s:s,s:i,s:i,s:O}", "blas_config", nd_blas_config(), "blas_threads",
                         nd_blas_get_num_threads(), "kernel_threads", nd_get_threads(), "openmp",
                         nd_parallel_available() ? Py_True : Py_False);
}

/* The kernels' OpenMP team. OpenBLAS stays at one thread: large products are split over the
 * team instead, one one-thread BLAS call per block (nd_gemm_*), which keeps every result's
 * bits whatever the count and never nests two thread pools. */
static PyObject *set_num_threads(PyObject *module, PyObject *arg)
{
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 1 || n > 4096) {
        PyErr_Format(PyExc_ValueError, "num_threads must be between 1 and 4096, got %ld", n);
        return NULL;
    }
    nd_set_threads((int)n);
    nd_blas_set_num_threads(1);
    Py_RETURN_NONE;
}

/* glibc returns freed heap memory above 128 KiB to the system at once and serves blocks above its
 * mmap threshold with fresh pages, so a kernel called in a loop page-faults through every output
 * array on every call (half the time of a small SNN forward pass was spent there). Raising both
 * thresholds lets arrays up to mmap_threshold bytes reuse heap pages between calls. */
static PyObject *tune_malloc(PyObject *module, PyObject *args)
{
    long long mmap_threshold, trim_threshold;
    if (!PyArg_ParseTuple(args, "LL", &mmap_threshold, &trim_threshold))
        return NULL;
    if (mmap_threshold < 0 || mmap_threshold > INT_MAX || trim_threshold < 0 || trim_threshold > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "malloc thresholds must be between 0 and %d bytes", INT_MAX);
        return NULL;
    }
#ifdef __GLIBC__
    if (mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, (int)trim_threshold) == 1)
        Py_RETURN_TRUE;
#endif
    Py_RETURN_FALSE;
}

PyMethodDef nd_util_methods[] = {
    {"tune_malloc", tune_malloc, METH_VARARGS,
     "tune_malloc(mmap_threshold, trim_threshold) -> bool: set glibc's thresholds (False without glibc)."},
    {"thread_info", thread_info, METH_NOARGS,
     "thread_info() -> dict: OpenBLAS build string and threads, the kernels' threads, OpenMP present."},
    {"set_num_threads", set_num_threads, METH_O, "set_num_threads(n): the kernels' and OpenBLAS's threads."},
    {NULL, NULL, 0, NULL}};

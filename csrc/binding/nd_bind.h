/* Shared helpers of the neurodyn._core binding: array conversion, status mapping,
 * and the module state. Every helper that fails returns NULL or -1 with an exception set. */
#ifndef ND_BIND_H
#define ND_BIND_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifndef ND_BIND_MODULE
#define NO_IMPORT_ARRAY
#endif
#define PY_ARRAY_UNIQUE_SYMBOL nd_ARRAY_API
#include <numpy/arrayobject.h>

typedef struct {
    PyObject *integration_error; /* neurodyn.IntegrationError */
} nd_module_state;

nd_module_state *nd_state(PyObject *module);

/* The kernel dtype for an input: float32 stays float32 (float16 widens to it), float64
 * stays, integers and bools become float64 as in NumPy arithmetic; anything else (complex,
 * object, long double, strings) is a TypeError naming `name`. Returns NPY_FLOAT, NPY_DOUBLE
 * or -1. */
int nd_resolve_float_type(PyObject *obj, const char *name);

/* A C-contiguous, aligned array of `typenum` holding obj's values (a copy only when
 * needed; never written to). Values are checked to be of a real numeric kind first. */
PyArrayObject *nd_float_array(PyObject *obj, int typenum, const char *name);

/* -1 with ValueError "<name> contains NaN or inf" when any element is not finite. */
int nd_check_finite(PyArrayObject *a, const char *name);

/* Sets the exception for a non-solver kernel status, prefixed with `what`; returns NULL. */
PyObject *nd_raise_status(int status, const char *what);

/* An array that takes ownership of *buf (a PyMem_Raw allocation, freed with the array) and
 * sets *buf to NULL; with no elements a fresh empty array. NULL with an exception set on
 * failure, in which case *buf is left to its owner. */
PyObject *nd_array_adopt(void **buf, int ndim, const npy_intp *dims, int typenum);

/* Raises neurodyn.IntegrationError(message) with the items of `attrs` set as attributes. */
void nd_set_integration_error(PyObject *module, PyObject *message, PyObject *attrs);

/* "(2, 3)" for error messages; returns a new str or NULL. */
PyObject *nd_shape_str(int ndim, const npy_intp *shape);

/* What a long kernel call watches while it runs without the GIL: Ctrl-C, an optional
 * progress callable, and the first Python exception raised by any callback of the call
 * (kept here to be re-raised, with its traceback, by the calling thread). */
typedef struct {
    PyObject *progress; /* progress(done: float in [0, 1]) or NULL; borrowed */
    PyObject *exc_type, *exc_value, *exc_tb;
    double next_poll;   /* monotonic seconds; polls closer together are skipped */
} nd_watch;

/* The kernels' poll hook (ctx: an nd_watch). At most every 50 ms it takes the GIL, runs the
 * signal handlers and calls progress(done); non-zero when either raised, which stops the kernel. */
int nd_watch_poll(void *ctx, double done);

/* The end of a Python callback that took the GIL with `gil`: a pending Ctrl-C fails it too,
 * a failure's exception is kept in w, and the GIL is released. ND_OK or ND_ERR_CALLBACK. */
int nd_watch_callback_done(nd_watch *w, int ok, PyGILState_STATE gil);

/* With the GIL: 1 and the kept exception set again, or 0 when nothing was kept. */
int nd_watch_reraise(nd_watch *w);

/* With the GIL: drops a kept exception. */
void nd_watch_clear(nd_watch *w);

/* Method tables of each binding file, concatenated by the module. */
extern PyMethodDef nd_ode_methods[];
extern PyMethodDef nd_util_methods[];
extern PyMethodDef nd_nn_methods[];
extern PyMethodDef nd_liquid_methods[];
extern PyMethodDef nd_snn_methods[];
extern PyMethodDef nd_hopfield_methods[];
extern PyMethodDef nd_ebm_methods[];

#endif

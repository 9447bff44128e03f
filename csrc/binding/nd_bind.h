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

#include "nd_fields.h"

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

/* Sets the exception for a kernel status; returns NULL. With the kernel's detail
 * (nd_last_error) the message is "<arg> <rule>, got <value>", the same from every entry point
 * that passes that argument; otherwise "<what>: <status>". */
PyObject *nd_raise_status(int status, const char *what);
/* 0 for ND_OK, else -1 with nd_raise_status's exception (a kernel's rule checked by a binding). */
int nd_status_check(int status, const char *what);

/* An array that takes ownership of *buf (a PyMem_Raw allocation, freed with the array) and
 * sets *buf to NULL; with no elements a fresh empty array. NULL with an exception set on
 * failure, in which case *buf is left to its owner. */
PyObject *nd_array_adopt(void **buf, int ndim, const npy_intp *dims, int typenum);

/* A built-in vector field from its spec (kind, params, acts, consts) as neurodyn.fields builds
 * it, parameters converted to typenum, checked, and kept alive in the list `keep`
 * (bind_fields.c). 0, or -1 with an exception. */
int nd_parse_field(PyObject *spec, int typenum, nd_field *f, PyObject *keep);

/* A zeroed block of size bytes (a description the kernels read), freed with the list `keep`.
 * NULL with an exception. */
void *nd_keep_block(PyObject *keep, size_t size);

/* nd_parse_field of the argument `spec`, which must be a field of `kind` ("spec must be <what>'s"). */
int nd_parse_field_of(PyObject *spec, int typenum, int kind, const char *what, nd_field *f, PyObject *keep);

/* What a long kernel call watches while it runs without the GIL: Ctrl-C, an optional
 * progress callable, and the first Python exception raised by any callback of the call
 * (kept here to be re-raised, with its traceback, by the calling thread). */
typedef struct {
    PyObject *progress; /* progress(done: float in [0, 1]) or NULL; borrowed */
    PyObject *exc_type, *exc_value, *exc_tb;
    double next_poll;   /* monotonic seconds; polls closer together are skipped */
} nd_watch;

/* The kernels' poll hook (ctx: an nd_watch). At most every 50 ms it takes the GIL, runs the
 * signal handlers and calls progress(done) (done >= 0 only); non-zero when either raised,
 * which stops the kernel. */
int nd_watch_poll(void *ctx, double done);

/* nd_run runs every body under a watch of its own, polled from every kernel the body calls
 * (nd_poll.h): after the body it re-raises what the watch kept (Ctrl-C) in place of the
 * body's own result or exception. A body with a progress callable or Python callbacks opens
 * a scope of its own with its watch (nd_poll_begin(&scope, nd_watch_poll, &watch)). */

/* The end of a Python callback that took the GIL with `gil`: a pending Ctrl-C fails it too,
 * a failure's exception is kept in w, and the GIL is released. ND_OK or ND_ERR_CALLBACK. */
int nd_watch_callback_done(nd_watch *w, int ok, PyGILState_STATE gil);

/* With the GIL: 1 and the kept exception set again, or 0 when nothing was kept. */
int nd_watch_reraise(nd_watch *w);

/* With the GIL: drops a kept exception. */
void nd_watch_clear(nd_watch *w);

/* ---- table-driven entry points -------------------------------------------------------- *
 *
 * An entry point is an argument struct, a table describing its fields, a defaults initialiser
 * (usually the kernel's own *_default function) and a body. nd_run parses positional and
 * keyword arguments by the table into the struct (arrays converted to the call's float type,
 * C-contiguous, checked for finiteness when asked), runs the body, and releases the arrays.
 * The defaults of every optional scalar are read from the initialised struct into
 * _core.DEFAULTS, so Python never writes a kernel's default again. */

typedef enum {
    ND_ARG_ARRAY,    /* array of the call's float type (float32 or float64) */
    ND_ARG_F64ARRAY, /* float64 array whatever the call's type (times) */
    ND_ARG_I64ARRAY, /* int64 array (indices, counts) */
    ND_ARG_DOUBLE,   /* double: a real number, not a bool */
    ND_ARG_INT,      /* int64_t: an integer, not a bool; with a shape, it binds the dimension of that name */
    ND_ARG_SEED,     /* uint64_t: an integer in [0, 2^64), not a bool (generator keys) */
    ND_ARG_BOOL,     /* int: a truth value */
    ND_ARG_CHOICE,   /* int: the index of a name in `choices` */
    ND_ARG_OBJECT,   /* PyObject *, borrowed */
    ND_ARG_CALLABLE, /* PyObject *, borrowed: a callable (TypeError otherwise) */
    ND_ARG_TUPLE,    /* PyObject *, borrowed: a tuple (TypeError otherwise) */
    /* rows that are not Python arguments, handled in table order after all the arguments */
    ND_ARG_DIM,        /* int64_t: the size of the dimension `name`, or, still unbound, binds it */
    ND_ARG_CHECK,      /* runs check(args) */
    ND_ARG_OUT,        /* PyObject *: an output array allocated by its shape, an item of the result */
    ND_ARG_OUT_DOUBLE, /* double: an item of the result, as a float */
    ND_ARG_OUT_INT,    /* int64_t: an item of the result, as an int */
    ND_ARG_WORK,       /* void *: a workspace a check allocated with nd_work_alloc, freed with the call */
    ND_ARG_KEEP,       /* PyObject *: a reference a check took (parameter arrays), released with the call */
} nd_arg_kind;

enum {
    ND_OPTIONAL = 1 << 0, /* may be omitted: the field keeps the initialiser's value */
    ND_NONE = 1 << 1,     /* None is accepted: an array or object field stays NULL */
    ND_FINITE = 1 << 2,   /* arrays: NaN and inf are refused */
    ND_TYPE = 1 << 3,     /* arrays: its dtype takes part in choosing the call's float type (Python scalars do not) */
    ND_INTEGER = 1 << 4,  /* int64 arrays: values of another kind (floats, bools) are a TypeError, not cast */
    ND_COPY = 1 << 5,     /* outputs of shape "(*x)": start as a copy of the argument x */
};
/* An int field of the argument struct named in a row's flags (bits from 16 up, as 1 + its
 * offset). ND_GIVEN on an argument: set to 1 when it is passed (not omitted, not None), for two
 * ways of giving one quantity. ND_WHEN on an output: allocated only when the field is non-zero
 * (an output not asked for is None in the result). */
#define ND_GIVEN(type, given) ((int)(offsetof(type, given) + 1) << 16)
#define ND_WHEN(type, cond) ND_GIVEN(type, cond)

/* Shape rules. An array's row holds its shape as "(rows, in)", optionally followed by a note
 * for messages ("(size,) from the forward pass"); NULL is any shape. Each item is
 * - a number: that size;
 * - a name: a dimension, bound by the first row (in table order) that has it, and checked on
 *   every later one: "kernel has shape (4, 5); expected (3, out) for (in, out), with in = 3 from x";
 * - "*name": any number of axes; a group bound like a name; "*x" for the name of an earlier
 *   argument x is x's whole shape, so "(*x)" reads "the shape of x" and "(T, *y0)" prepends T;
 * - "...": any number of axes, not bound.
 * The arguments that may be None (ND_NONE) are checked after the others, so that the required
 * ones bind the dimensions; an argument omitted or None binds nothing. An ND_ARG_INT row with a
 * shape binds the dimension of that name to its value. The rows that are not arguments come
 * after all the arguments' rules, in table order: an ND_ARG_DIM row receives a dimension's size
 * (or binds it to the field's value, as the initialiser or a check before it set it), and
 * outputs have rules of bound names only. */

typedef struct {
    const char *name;           /* the keyword, also the name in messages */
    nd_arg_kind kind;
    int flags;
    size_t offset;              /* of the field in the entry's argument struct */
    const char *shape;          /* arrays and outputs: the shape rule (NULL: any); ND_ARG_INT: a dimension */
    const char *const *choices; /* ND_ARG_CHOICE: NULL-terminated names, the kernel's table */
    int dtype;                  /* ND_ARG_OUT: its NumPy type, 0 for the call's float type */
    int (*check)(void *args); /* ND_ARG_CHECK: ND_OK, a kernel status, or -1 with an exception set */
} nd_arg;

typedef struct nd_entry {
    const char *name, *doc;
    const nd_arg *args; /* ends with a {NULL} row */
    size_t size;        /* of the argument struct */
    void (*init)(void *args);
    /* Runs with the parsed struct; typenum is NPY_FLOAT or NPY_DOUBLE (the ND_TYPE arrays'
     * common type: float32 when all are float32, else float64; float64 when there are none).
     * Either body builds the result, or run returns a kernel status and the result is the
     * table's outputs (one: itself; several: a tuple; none: None); with neither, None. */
    PyObject *(*body)(PyObject *module, void *args, int typenum);
    int (*run)(PyObject *module, void *args, int typenum);
    PyCFunction py; /* the METH_VARARGS | METH_KEYWORDS function that calls nd_run */
} nd_entry;

PyObject *nd_run(PyObject *module, PyObject *args, PyObject *kw, const nd_entry *e);
/* {arg: default} of the entry's optional scalars (for _core.DEFAULTS). */
PyObject *nd_entry_defaults(const nd_entry *e);

#define ND_ENTRY_WITH(name, type, init, body, run, doc)                                                  \
    static PyObject *name##_py(PyObject *m, PyObject *a, PyObject *k);                                  \
    static const nd_entry name##_entry = {#name, doc, name##_args, sizeof(type), (void (*)(void *))(init), \
                                          body, run, (PyCFunction)(void (*)(void))name##_py};           \
    static PyObject *name##_py(PyObject *m, PyObject *a, PyObject *k) { return nd_run(m, a, k, &name##_entry); }

/* Declares the entry `name` of struct `type`: its table name##_args, its initialiser (or NULL)
 * and its body name##_body (ND_ENTRY) or name##_run (ND_RUN_ENTRY) must be defined before;
 * ND_CHECK_ENTRY has neither (its table's checks are the call). Entries that share one run
 * function name it in ND_ENTRY_WITH(name, type, init, NULL, run, doc). */
#define ND_ENTRY(name, type, init, doc) ND_ENTRY_WITH(name, type, init, name##_body, NULL, doc)
#define ND_RUN_ENTRY(name, type, init, doc) ND_ENTRY_WITH(name, type, init, NULL, name##_run, doc)
#define ND_CHECK_ENTRY(name, type, init, doc) ND_ENTRY_WITH(name, type, init, NULL, NULL, doc)

/* An entry whose run is the shared fn(module, args, typenum, flag) of several entries. */
#define ND_RUN_ENTRY_OF(name, type, init, fn, flag, doc)                                              \
    static int name##_run(PyObject *m, void *args, int tn) { return fn(m, args, tn, flag); }          \
    ND_RUN_ENTRY(name, type, init, doc)

/* An entry that is one kernel call without the GIL: `call` sees the struct as `a` and the
 * call's type as `tn`; its status is the result's, its outputs the table's. */
#define ND_KERNEL_ENTRY(name, type, init, call, doc)                                                    \
    static int name##_run(PyObject *m, void *args, int tn)                                             \
    {                                                                                                  \
        type *a = args;                                                                                \
        int st = ND_OK;                                                                                \
        ND_NOGIL(st, call);                                                                            \
        return st;                                                                                     \
    }                                                                                                  \
    ND_RUN_ENTRY(name, type, init, doc)

/* Table rows. */
#define ND_ROW(name_, kind_, flags_, type, field, ...) \
    {.name = name_, .kind = kind_, .flags = flags_, .offset = offsetof(type, field), __VA_ARGS__}
#define ND_IN(type, field, name, flags, rule_) ND_ROW(name, ND_ARG_ARRAY, flags, type, field, .shape = rule_)
#define ND_F64IN(type, field, name, flags, rule_) ND_ROW(name, ND_ARG_F64ARRAY, flags, type, field, .shape = rule_)
#define ND_I64IN(type, field, name, flags, rule_) ND_ROW(name, ND_ARG_I64ARRAY, flags, type, field, .shape = rule_)
#define ND_SCALAR(type, field, name, kind, flags) ND_ROW(name, kind, flags, type, field, .shape = NULL)
/* An integer argument that is also the size of the dimension `dim`. */
#define ND_SIZE(type, field, name, dim, flags) ND_ROW(name, ND_ARG_INT, flags, type, field, .shape = dim)
#define ND_CHOICE(type, field, name, flags, names) ND_ROW(name, ND_ARG_CHOICE, flags, type, field, .choices = names)
#define ND_OBJ(type, field, name, kind, flags) ND_SCALAR(type, field, name, kind, flags)
#define ND_DIM(type, field, name_) ND_ROW(name_, ND_ARG_DIM, 0, type, field, .shape = NULL)
/* fn(type *args), run after the arguments' rules and the rows before it: a kernel's rules, sizes
 * for the ND_DIM rows after it, a workspace. */
#define ND_CHECK(fn) {.name = "(check)", .kind = ND_ARG_CHECK, .check = (int (*)(void *))(void (*)(void))(fn)}
#define ND_WORK(type, field) ND_ROW("(work)", ND_ARG_WORK, 0, type, field, .shape = NULL)
#define ND_KEEP(type, field) ND_ROW("(keep)", ND_ARG_KEEP, 0, type, field, .shape = NULL)
/* An output of the call's float type (ND_OUT), of NumPy type dtype (ND_OUT_T), or a number. An
 * output with a NULL rule is made by a check before it. */
#define ND_OUT(type, field, name, flags, rule_) ND_ROW(name, ND_ARG_OUT, flags, type, field, .shape = rule_)
#define ND_OUT_T(type, field, name, flags, rule_, type_) \
    ND_ROW(name, ND_ARG_OUT, flags, type, field, .shape = rule_, .dtype = type_)
#define ND_OUT_DOUBLE(type, field, name) ND_ROW(name, ND_ARG_OUT_DOUBLE, 0, type, field, .shape = NULL)
#define ND_OUT_INT(type, field, name) ND_ROW(name, ND_ARG_OUT_INT, 0, type, field, .shape = NULL)
/* An optional scalar kept in the kernel's option struct `s` of the argument struct, under the
 * keyword of its field's name. */
#define ND_OPTION(type, s, field, kind) ND_SCALAR(type, s.field, #field, kind, ND_OPTIONAL)
/* An optional callable or None that reports progress, and the solvers' tolerances. */
#define ND_PROGRESS(type, field) ND_OBJ(type, field, "progress", ND_ARG_CALLABLE, ND_OPTIONAL | ND_NONE)
#define ND_TOLERANCES(type, rtol, atol)                                                               \
    ND_SCALAR(type, rtol, "rtol", ND_ARG_DOUBLE, ND_OPTIONAL), ND_SCALAR(type, atol, "atol", ND_ARG_DOUBLE, ND_OPTIONAL)

/* Declares a family: its entries (each name##_entry) and its tables (or NULL). */
#define ND_FAMILY(family, tables, ...)                                                               \
    static const nd_entry *const family##_entries[] = {__VA_ARGS__, NULL};                          \
    const nd_family family = {family##_entries, tables, NULL}

/* ---- the steps every body shares ------------------------------------------------------ */

/* st = call, run without the GIL, unless an exception is already set (an output's allocation
 * failed): then st keeps its value. */
#define ND_NOGIL(st, call)                                                                           \
    do {                                                                                           \
        if (!PyErr_Occurred()) {                                                                   \
            Py_BEGIN_ALLOW_THREADS(st) = (call);                                                   \
            Py_END_ALLOW_THREADS                                                                   \
        }                                                                                          \
    } while (0)

/* An array's data, NULL for NULL (an absent input, an output not asked for, or None). */
#define ND_DATA(a) ((a) && (PyObject *)(a) != Py_None ? PyArray_DATA((PyArrayObject *)(a)) : NULL)

/* A kernel's workspace: st is the status of its *_workspace_len query (raised with `what`
 * unless ND_OK), *len the elements of itemsize it asked for. NULL with an exception set. */
void *nd_workspace(int st, const size_t *len, size_t itemsize, const char *what);

/* ---- spec tuples ---------------------------------------------------------------------- *
 *
 * The tuples of parameter arrays Python passes for a field, an energy or a model are read by
 * tables too, with the entry tables' shape rules: a dimension is bound by the first item that
 * has it and checked on every later one, and a caller binds the sizes it already knows (the
 * state's `dim` from x, a count from the spec's codes) before the walk. */

#define ND_MAX_DIMS 64

/* A bound item of the rules: a dimension (n = 1, its size v) or a "*group" of n sizes, with the
 * argument that bound it (NULL: the entry). */
typedef struct {
    const char *s;
    int len, n;
    const npy_intp *dims;
    npy_intp v;
    const char *from;
} nd_dim;

/* The rules' bindings; `text` holds the names and rules a spec walk formats (the bindings point
 * into them). */
typedef struct {
    int n;
    nd_dim d[ND_MAX_DIMS];
    const nd_arg *table;
    void *target;
    size_t used;
    char text[4096];
} nd_env;

/* An item of a spec: its name in messages ("%zd": its index in the tuple), the offset of the
 * data pointer it sets in the target struct, its shape rule and its type (0: the call's float
 * type, finite values; NPY_DOUBLE: float64, finite; NPY_INT8, NPY_INT32, NPY_INT64: integers,
 * never truncated). Flags: ND_NONE, None leaves the pointer NULL (else "<name> must be given");
 * ND_REPEAT, the rows so marked are a group read `count` times in a row, its pointers an array
 * (the l-th at offset + l pointers), "[l]" and "[l+1]" in its names and rules standing for the
 * repetition and the next ("(width[l], width[l+1])" chains the layers of a network). */
enum { ND_REPEAT = 1 << 6 };
typedef struct {
    const char *name;
    size_t offset;
    const char *shape;
    int type, flags;
} nd_item;
#define ND_ITEM(type_, field, name, flags, rule) {name, offsetof(type_, field), rule, 0, flags}
#define ND_ITEM_T(type_, field, name, flags, rule, dtype) {name, offsetof(type_, field), rule, dtype, flags}

typedef struct {
    nd_env env;
    PyObject *items, *keep; /* the tuple, and the list that keeps the converted arrays alive */
    Py_ssize_t pos;         /* the next item a walk reads */
    int typenum;
    const char *what;       /* "energy": "malformed energy spec" */
} nd_spec;

/* A walk over the tuple items (TypeError "<what> parameters must be a tuple" otherwise). 0 or -1. */
int nd_spec_init(nd_spec *s, PyObject *items, int typenum, PyObject *keep, const char *what);
/* Binds the dimension `name` to size, bound "from" the text `from` in messages. 0 or -1. */
int nd_spec_bind(nd_spec *s, const char *name, int64_t size, const char *from);
/* The size of a bound dimension, -1 when unbound. */
int64_t nd_spec_size(nd_spec *s, const char *name);
/* widths[l] = the size of "width[l]" for l < n. */
void nd_spec_widths(nd_spec *s, int n, int64_t *widths);
/* Reads the rows (ending with {NULL}) from item s->pos on, into target; the ND_REPEAT group
 * `count` times. An item past the tuple's end is ValueError "malformed <what> spec". 0 or -1. */
int nd_spec_walk(nd_spec *s, const nd_item *rows, int count, void *target);

/* The index of the str o in the NULL-terminated names: -1 with ValueError
 * "<name>='x' is not one of 'a', 'b'" (the message of a choice row). */
int nd_choice_index(PyObject *o, const char *name, const char *const *names);

/* Py_XDECREF of each of the n objects that follow. */
void nd_xdecref(int n, ...);

/* d[key] = v, stealing v (NULL: an exception already set). 0 or -1. */
int nd_dict_put(PyObject *d, const char *key, PyObject *v);
/* A new array of NumPy type `type` and the given axes holding a copy of src; NULL with an exception. */
PyObject *nd_array_copy(int type, int ndim, const npy_intp *dims, const void *src);
/* d[key] = nd_array_copy(type, ndim, dims, src). 0 or -1. */
int nd_dict_array(PyObject *d, const char *key, int type, int ndim, const npy_intp *dims, const void *src);
/* d[key] = the tuple of the n names key_of(codes[i]). 0 or -1. */
int nd_dict_names(PyObject *d, const char *key, npy_intp n, const int *codes, const char *(*key_of)(int));

/* Raises neurodyn.IntegrationError(msg) with attrs as attributes, stealing both; with a NULL
 * one (its creation failed, an exception set) it only releases the other. Returns NULL. */
PyObject *nd_raise_integration(PyObject *module, PyObject *msg, PyObject *attrs);

/* The Python callbacks of a solver call, fn(t, y, *args): argv holds [t, y, *args] (slots 0 and 1
 * are filled per call), typenum is the arrays' type, and watch keeps the first failure. */
typedef struct {
    PyObject **argv;
    Py_ssize_t nargs;
    int typenum;
    nd_watch watch;
} nd_pyargs;

/* argv for the tuple args (NULL: none), arrays of typenum, the progress callable (or NULL)
 * watched. 0, or -1 with MemoryError. */
int nd_pyargs_init(nd_pyargs *p, PyObject *args, int typenum, PyObject *progress);
/* Frees argv and drops a kept exception (with the GIL). */
void nd_pyargs_free(nd_pyargs *p);
/* After the solver call: the callbacks' kept exception (with its traceback) set again, or the
 * exception of a status that is no sample's failure (ND_ERR_ARG, _OVERFLOW, _NOMEM, _CALLBACK),
 * raised by nd_raise_status with `what`. 1 when an exception is set, else 0. */
int nd_pyargs_raise(nd_pyargs *p, int status, const char *what);
/* fn(t, y, *args) from a kernel thread without the GIL: takes it; t is the float t[0] (m < 0)
 * or the column [m, 1] of m times, y a fresh array (fn may keep or modify it) of the axes ydims
 * holding a copy of y; the result, converted to typenum, is copied into out when it has the
 * ndim axes want, else ValueError "<what> returned an array of shape (..); expected (..),
 * <expect>". A failure or Ctrl-C is kept in p->watch; the GIL is released. ND_OK or
 * ND_ERR_CALLBACK. */
int nd_pycall(nd_pyargs *p, PyObject *fn, int64_t m, const double *t, int yndim, const npy_intp *ydims, const void *y,
              const char *what, int ndim, const npy_intp *want, const char *expect, void *out);

/* A callback fn(t: float, y, *args) on states of fixed axes: y has ndim axes shape[:ndim], its
 * result those and `extra` (0 or 1) more of size shape[ndim]. */
typedef struct {
    PyObject *fn;              /* borrowed; NULL: none */
    const char *what, *expect; /* "f(t, y)" and what the result's shape is, for messages */
    nd_pyargs *py;
    int ndim, extra;
    npy_intp shape[NPY_MAXDIMS + 1];
} nd_pyfn;

/* c for fn with y of y0's shape; with extra, results have one more axis of size extra_dim. */
void nd_pyfn_init(nd_pyfn *c, PyObject *fn, const char *what, const char *expect, nd_pyargs *py, PyArrayObject *y0,
                  int extra, npy_intp extra_dim);
/* nd_pycall of c at the time t. */
int nd_pyfn_call(const nd_pyfn *c, double t, const void *y, void *out);

/* The typed kernel for the call's type: ND_DISPATCH(tn, nd_foo, args...) calls nd_foo_f32 or
 * nd_foo_f64 (pointer arguments pass as void *). */
#define ND_DISPATCH(typenum, fn, ...) ((typenum) == NPY_FLOAT ? fn##_f32(__VA_ARGS__) : fn##_f64(__VA_ARGS__))

/* A real number (not a bool) named `name` in messages, as a double row reads it (for values a
 * body or a spec walk converts itself): -1 with TypeError. */
int nd_parse_double(const char *name, PyObject *o, double *out);
/* The parameters of the `what` (a flow, a map) called `name`, which takes `want` of them: the items
 * of tuple t from `from` on, into out. 0, or -1 with a ValueError naming it. */
int nd_parse_params(const char *what, const char *name, int want, PyObject *t, Py_ssize_t from, double *out);

/* PyMem_RawMalloc of n elements of itemsize (+1 so that 0 is valid), with the overflow
 * check; NULL with MemoryError or ValueError set. */
void *nd_work_alloc(size_t n, size_t itemsize);
/* -1 with ValueError "<name> has shape (..); expected <axes>" unless a has ndim axes and
 * each dims[i] >= 0 matches (dims may be NULL). */
int nd_check_shape(PyArrayObject *a, const char *name, int ndim, const npy_intp *dims, const char *axes);
/* -1 with ValueError "<name> has shape (..); this <what> needs its last axis of size <size>". */
int nd_check_last_axis(PyArrayObject *y, const char *name, int64_t size, const char *what);

/* A family: its entry points and the code tables Python reads (_core.TABLES[name]). */
typedef struct {
    const char *name;
    const char *const *names; /* NULL-terminated */
} nd_table;

typedef struct {
    const nd_entry *const *entries; /* NULL-terminated */
    const nd_table *tables;         /* ends with {NULL}; may be NULL */
    PyMethodDef *methods;           /* hand-written functions; may be NULL */
} nd_family;

/* The families, concatenated by the module. */
extern const nd_family nd_ode_family, nd_util_family, nd_nn_family, nd_liquid_family, nd_snn_family,
    nd_hopfield_family, nd_ebm_family, nd_hybrid_family, nd_sde_family;
extern const nd_family nd_fields_family, nd_ode_stiff_family, nd_memories_family;
extern const nd_family nd_chaos_family;

/* ---- built-in vector fields (bind_fields.c) ------------------------------------------------ */

/* Checks that the last axis of the state y (named `name` in messages) is the field's dim and
 * sets the field's batch to `rows` (the most rows one evaluation will get). 0 or -1. */
int nd_bind_field_rows(nd_field *f, PyArrayObject *y, const char *name, int64_t rows);

/* nd_parse_field, then nd_bind_field_rows for `rows` rows of y, then scratch for the field's
 * evaluations and Jacobians in *work (the caller frees it with PyMem_RawFree; f->work points at
 * it). 0, or -1 with an exception set. */
int nd_parse_field_for_jac(PyObject *spec, int typenum, PyArrayObject *y, const char *name, int64_t rows,
                           nd_field *f, PyObject *keep, void **work);

/* A field read from its spec: the description, the converted parameter arrays it points at, and
 * its scratch once bound to a state. */
typedef struct {
    nd_field f;
    PyObject *keep; /* list of the parameter arrays */
    void *work;
} nd_bound_field;

/* spec = (kind, params, activations, constants) as neurodyn.fields builds it: kind a name of
 * nd_field_kind_names; Linear (A, b or None); Lorenz constants (sigma, rho, beta); MLP
 * (W1, b1, ..., WL, bL) with (activation, final_activation) names; Polynomial (coef, target,
 * powers); memory networks as bind_memories.c reads them; Hybrid (see nd_hybrid_parse_field). The
 * parameters are converted to typenum and checked (shapes, finiteness, the
 * kernel's nd_field_check). 0, or -1 with an exception set (bf is then released). */
int nd_field_parse(nd_bound_field *bf, PyObject *spec, int typenum);
/* Sizes the field for a state whose last axis is its dim (the state's other values are the
 * batch of field states) with keep_slots kept linearisations, and allocates its scratch (for
 * Jacobians too with jac). 0 or -1. */
int nd_field_bind(nd_bound_field *bf, PyArrayObject *state, const char *name, int keep_slots, int jac);
void nd_field_release(nd_bound_field *bf);

/* A memory network's spec parts (bind_memories.c) into the field f: its dim and its
 * nd_memory_field, with the arrays it points at kept alive by `keep`, the memories' contents
 * (bytes, index lists) checked. 0, or -1 with an exception set. */
int nd_memories_parse_field(PyObject *params, PyObject *acts, PyObject *consts, int typenum, nd_field *f,
                            PyObject *keep);
/* The "hybrid" field of a field spec (bind_hybrid.c): a hybrid energy model's field or a target
 * system, from the spec's params, names and constants, into f->hybrid (its memory and the
 * parameter arrays kept alive by `keep`); sets f->dim. -1 with an exception. */
int nd_hybrid_parse_field(PyObject *params, PyObject *names, PyObject *consts, int typenum, nd_field *f,
                          PyObject *keep);
/* The "flow" field of a field spec (bind_chaos.c): names (system,), constants (dim, *params)
 * into f->flow, f->dim and f->flow_params. -1 with an exception. */
int nd_flows_parse_field(PyObject *acts, PyObject *consts, nd_field *f);

#endif

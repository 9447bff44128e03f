/* Array conversion and error mapping shared by every binding. */
#include "nd_bind.h"

#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <math.h>
#ifdef __GLIBC__
#include <malloc.h> /* mallopt */
#endif
#include <time.h>

#include "nd_blas.h"
#include "nd_generic.h"
#include "nd_parallel.h"
#include "nd_poll.h"
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
    if (status == ND_ERR_ARG || status == ND_ERR_OVERFLOW)
        type = PyExc_ValueError;
    else if (status == ND_ERR_NOMEM)
        type = PyExc_MemoryError;
    const nd_error *e = nd_last_error();
    if ((status == ND_ERR_ARG || status == ND_ERR_OVERFLOW) && e->arg[0]) {
        if (e->has_value) {
            PyObject *v = PyFloat_FromDouble(e->value);
            if (v && e->value == floor(e->value) && fabs(e->value) < 9.0e15) { /* 3, not 3.0 */
                Py_SETREF(v, PyLong_FromDouble(e->value));
            }
            if (v)
                PyErr_Format(type, "%s %s, got %R", e->arg, e->rule, v);
            Py_XDECREF(v);
        } else {
            PyErr_Format(type, "%s %s", e->arg, e->rule);
        }
    } else {
        PyErr_Format(type, "%s: %s", what, nd_status_str(status));
    }
    nd_clear_error();
    return NULL;
}

int nd_status_check(int status, const char *what)
{
    return status == ND_OK ? 0 : (nd_raise_status(status, what), -1);
}

/* ---- table-driven entry points ---------------------------------------------------------- */

#define ND_FIELD(base, arg) ((char *)(base) + (arg)->offset)

static int nd_is_array_kind(nd_arg_kind k) { return k == ND_ARG_ARRAY || k == ND_ARG_F64ARRAY || k == ND_ARG_I64ARRAY; }

/* Whether a row is a Python argument (the others are the table's checks, dimensions and outputs). */
static int nd_is_param(nd_arg_kind k) { return k < ND_ARG_DIM; }

/* Collects the objects passed for each argument row (borrowed; NULL when omitted or not an
 * argument); positional arguments fill the argument rows in order. */
static int nd_collect(const char *fn, const nd_arg *spec, PyObject *args, PyObject *kw, PyObject **objs, int n)
{
    const Py_ssize_t npos = args ? PyTuple_GET_SIZE(args) : 0;
    Py_ssize_t k = 0;
    for (int i = 0; i < n; ++i)
        objs[i] = nd_is_param(spec[i].kind) && k < npos ? PyTuple_GET_ITEM(args, k++) : NULL;
    if (k < npos) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %zd arguments (%zd given)", fn, k, npos);
        return -1;
    }
    if (kw) {
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        while (PyDict_Next(kw, &pos, &key, &value)) {
            int found = -1;
            for (int i = 0; i < n && found < 0; ++i)
                if (nd_is_param(spec[i].kind) && PyUnicode_Check(key) &&
                    PyUnicode_CompareWithASCIIString(key, spec[i].name) == 0)
                    found = i;
            if (found < 0) {
                PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", fn, key);
                return -1;
            }
            if (objs[found]) {
                PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fn, spec[found].name);
                return -1;
            }
            objs[found] = value;
        }
    }
    for (int i = 0; i < n; ++i)
        if (!objs[i] && nd_is_param(spec[i].kind) && !(spec[i].flags & ND_OPTIONAL)) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fn, spec[i].name);
            return -1;
        }
    return 0;
}

/* float32 when every ND_TYPE array is float32 (or narrower), float64 otherwise. Python's own
 * bool, int and float do not widen (NumPy's weak scalars): solve_ltc(x32, 0.5, 1.0) stays float32. */
static int nd_call_type(const nd_arg *spec, PyObject **objs, int n)
{
    int any = 0, all32 = 1;
    for (int i = 0; i < n; ++i) {
        if (!(spec[i].flags & ND_TYPE) || !objs[i] || objs[i] == Py_None || PyBool_Check(objs[i]) ||
            PyLong_CheckExact(objs[i]) || PyFloat_CheckExact(objs[i]))
            continue;
        int tn = nd_resolve_float_type(objs[i], spec[i].name);
        if (tn < 0)
            return -1;
        any = 1;
        all32 &= tn == NPY_FLOAT;
    }
    return any && all32 ? NPY_FLOAT : NPY_DOUBLE;
}

int nd_parse_double(const char *name, PyObject *o, double *out)
{
    if (PyBool_Check(o) || !PyNumber_Check(o) || PyComplex_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be a real number, got %R", name, o);
        return -1;
    }
    double v = PyFloat_AsDouble(o);
    if (v == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be a real number, got %R", name, o);
        return -1;
    }
    *out = v;
    return 0;
}

int nd_parse_params(const char *what, const char *name, int want, PyObject *t, Py_ssize_t from, double *out)
{
    const Py_ssize_t n = PyTuple_GET_SIZE(t) - from;
    char item[32];
    if (n != want)
        return PyErr_Format(PyExc_ValueError, "the %s '%s' takes %d parameters, got %zd", what, name, want, n), -1;
    snprintf(item, sizeof item, "%s parameter", what);
    for (Py_ssize_t i = 0; i < n; ++i)
        if (nd_parse_double(item, PyTuple_GET_ITEM(t, from + i), &out[i]) < 0)
            return -1;
    return 0;
}

/* o as a Python int (its __index__; not a bool): a new reference, or NULL with TypeError. */
static PyObject *nd_index(const nd_arg *a, PyObject *o)
{
    PyObject *idx = PyBool_Check(o) ? NULL : PyNumber_Index(o);
    if (!idx) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be an integer, got %R", a->name, o);
    }
    return idx;
}

static int nd_parse_int(const nd_arg *a, PyObject *o, int64_t *out)
{
    PyObject *idx = nd_index(a, o);
    if (!idx)
        return -1;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(idx, &overflow);
    Py_DECREF(idx);
    if (overflow || v > ((long long)1 << 62) || v < -((long long)1 << 62)) {
        PyErr_Format(PyExc_ValueError, "%s=%R is too large", a->name, o);
        return -1;
    }
    if (v == -1 && PyErr_Occurred())
        return -1;
    *out = (int64_t)v;
    return 0;
}

static int nd_parse_seed(const nd_arg *a, PyObject *o, uint64_t *out)
{
    PyObject *idx = nd_index(a, o);
    if (!idx)
        return -1;
    unsigned long long v = PyLong_AsUnsignedLongLong(idx);
    Py_DECREF(idx);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s must be an integer in [0, 2**64), got %R", a->name, o);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

int nd_choice_index(PyObject *o, const char *name, const char *const *names)
{
    for (int i = 0; names[i]; ++i)
        if (PyUnicode_Check(o) && PyUnicode_CompareWithASCIIString(o, names[i]) == 0)
            return i;
    PyObject *all = PyUnicode_FromString("");
    for (int i = 0; all && names[i]; ++i)
        Py_SETREF(all, PyUnicode_FromFormat("%U%s'%s'", all, i ? ", " : "", names[i]));
    if (all)
        PyErr_Format(PyExc_ValueError, "%s=%R is not one of %U", name, o, all);
    Py_XDECREF(all);
    return -1;
}

/* obj as integers of typenum: values of another kind are a TypeError, never truncated (labels,
 * indices); `cast` NPY_ARRAY_FORCECAST, or 0 for a safe cast only (a value that does not fit is
 * refused, not wrapped). A new reference, or NULL. */
static PyArrayObject *nd_int_array(PyObject *obj, int typenum, const char *name, int cast)
{
    PyArrayObject *raw = (PyArrayObject *)PyArray_FROM_O(obj), *a = NULL;
    const char kind = raw ? PyArray_DESCR(raw)->kind : 'i';
    if (raw && PyArray_SIZE(raw) && kind != 'i' && kind != 'u')
        PyErr_Format(PyExc_TypeError, "%s must hold integers, got dtype %S", name, (PyObject *)PyArray_DESCR(raw));
    else if (raw)
        a = (PyArrayObject *)PyArray_FROMANY((PyObject *)raw, typenum, 0, 0, NPY_ARRAY_IN_ARRAY | cast);
    Py_XDECREF(raw);
    return a;
}

/* The shape rule and finiteness are checked next (nd_prepare_param). */
static int nd_parse_array(const nd_arg *a, PyObject *o, int typenum, PyArrayObject **out)
{
    if (a->kind == ND_ARG_ARRAY)
        *out = nd_float_array(o, typenum, a->name);
    else if (a->flags & ND_INTEGER)
        *out = nd_int_array(o, NPY_INT64, a->name, NPY_ARRAY_FORCECAST);
    else if (nd_resolve_float_type(o, a->name) >= 0)
        *out = (PyArrayObject *)PyArray_FROMANY(o, a->kind == ND_ARG_F64ARRAY ? NPY_DOUBLE : NPY_INT64, 0, 0,
                                                NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
    return *out ? 0 : -1;
}

static int nd_parse_one(const nd_arg *a, PyObject *o, int typenum, void *target)
{
    void *field = ND_FIELD(target, a);
    if (o == Py_None && (a->flags & ND_NONE))
        return 0; /* arrays and objects stay NULL */
    switch (a->kind) {
    case ND_ARG_ARRAY:
    case ND_ARG_F64ARRAY:
    case ND_ARG_I64ARRAY: return nd_parse_array(a, o, typenum, (PyArrayObject **)field);
    case ND_ARG_DOUBLE: return nd_parse_double(a->name, o, (double *)field);
    case ND_ARG_INT: return nd_parse_int(a, o, (int64_t *)field);
    case ND_ARG_SEED: return nd_parse_seed(a, o, (uint64_t *)field);
    case ND_ARG_BOOL: {
        int v = PyObject_IsTrue(o);
        if (v < 0)
            return -1;
        *(int *)field = v;
        return 0;
    }
    case ND_ARG_CHOICE: return (*(int *)field = nd_choice_index(o, a->name, a->choices)) < 0 ? -1 : 0;
    case ND_ARG_CALLABLE:
    case ND_ARG_TUPLE:
        if (a->kind == ND_ARG_CALLABLE ? !PyCallable_Check(o) : !PyTuple_Check(o)) {
            PyErr_Format(PyExc_TypeError, "%s must be %s%s, got %s", a->name,
                         a->kind == ND_ARG_CALLABLE ? "callable" : "a tuple", (a->flags & ND_NONE) ? " or None" : "",
                         Py_TYPE(o)->tp_name);
            return -1;
        }
        /* fall through */
    case ND_ARG_OBJECT: *(PyObject **)field = o; return 0;
    default: return 0; /* not an argument */
    }
}

/* ---- shape rules ------------------------------------------------------------------------- */

#define ND_MAX_ARGS 64
/* The items of a rule "(a, *b, 3) note": starts and lengths, the index of the "*name" or "..."
 * item (-1 without), the length of the "(...)" part and the note (or NULL). */
typedef struct {
    int k, group, head;
    const char *s[NPY_MAXDIMS + 1];
    int len[NPY_MAXDIMS + 1];
    const char *note;
} nd_rule;

/* 0, or -1 with SystemError for a malformed rule (a table is wrong). */
static int nd_rule_parse(const char *r, nd_rule *out)
{
    const char *p = r + 1, *close = strchr(r, ')');
    out->k = 0, out->group = -1;
    while (*r == '(' && close && p < close && out->k <= NPY_MAXDIMS) {
        const char *end = p;
        while (end < close && *end != ',')
            ++end;
        int len = (int)(end - p);
        while (len && p[len - 1] == ' ')
            --len;
        if (len && (*p == '*' || !strncmp(p, "...", 3)))
            out->group = out->group < 0 ? out->k : NPY_MAXDIMS + 1; /* one group at most */
        if (len)
            out->s[out->k] = p, out->len[out->k++] = len;
        for (p = end + 1; p < close && *p == ' '; ++p)
            ;
    }
    if (*r != '(' || !close || p < close || out->group > NPY_MAXDIMS)
        return PyErr_Format(PyExc_SystemError, "malformed shape rule '%s'", r), -1;
    out->head = (int)(close + 1 - r);
    for (p = close + 1; *p == ' ' || *p == ','; ++p)
        ;
    out->note = *p ? p : NULL;
    return 0;
}

static int nd_is_number(const char *s, int len)
{
    int i = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        ++i;
    return len > 0 && i == len;
}

static nd_dim *nd_bind(nd_env *env, const char *s, int len, const char *from, int n, const npy_intp *dims)
{
    if (env->n >= ND_MAX_DIMS)
        return PyErr_SetString(PyExc_SystemError, "too many dimensions in a table"), NULL;
    nd_dim *d = &env->d[env->n++];
    *d = (nd_dim){s, len, n, dims, n == 1 && dims ? dims[0] : 0, from};
    if (*s != '*')
        d->dims = &d->v; /* a dimension's size lives in its binding */
    return d;
}

/* The binding of a name or "*group", NULL when unbound; "*x" naming an array argument x that
 * was passed is x's shape. */
static nd_dim *nd_lookup(nd_env *env, const char *s, int len)
{
    for (int i = 0; i < env->n; ++i)
        if (env->d[i].len == len && !strncmp(env->d[i].s, s, (size_t)len))
            return &env->d[i];
    for (const nd_arg *a = env->table; *s == '*' && a && a->name; ++a) {
        PyArrayObject *arr = nd_is_array_kind(a->kind) ? *(PyArrayObject **)ND_FIELD(env->target, a) : NULL;
        if (arr && (int)strlen(a->name) == len - 1 && !strncmp(a->name, s + 1, (size_t)len - 1))
            return nd_bind(env, s, len, a->name, PyArray_NDIM(arr), PyArray_DIMS(arr));
    }
    return NULL;
}

/* A message under construction. */
typedef struct {
    char s[1024];
    size_t n;
} nd_buf;

static void nd_put(nd_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (b->n < sizeof b->s)
        b->n += (size_t)vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
    va_end(ap);
}

/* The sizes as items of a list after *count others, or (count NULL) as a shape: "(2, 3)", "(2,)", "()". */
static void nd_put_sizes(nd_buf *b, int n, const npy_intp *dims, int *count)
{
    int own = 0, *c = count ? count : &own;
    nd_put(b, count ? "" : "(");
    for (int i = 0; i < n; ++i)
        nd_put(b, "%s%zd", (*c)++ ? ", " : "", (Py_ssize_t)dims[i]);
    nd_put(b, count ? "" : n == 1 ? ",)" : ")");
}

/* "<name> has shape (4, 5); expected (3, out) for (in, out), with in = 3 from x[, note]", the
 * rule's bound items replaced by their sizes ("expected (3, 4), the same shape as x" for "(*x)");
 * or "expected 2 axes (in, out)" when the number of axes differs. */
static int nd_shape_error(nd_env *env, const nd_rule *r, const char *rule, PyArrayObject *a, const char *name,
                          int axes)
{
    nd_buf msg = {.n = 0}, want = {.n = 0}, with = {.n = 0};
    int count = 0, bound = 0;
    for (int i = 0; i < r->k; ++i) {
        nd_dim *d = nd_is_number(r->s[i], r->len[i]) ? NULL : nd_lookup(env, r->s[i], r->len[i]);
        if (!d)
            nd_put(&want, "%s%.*s", count++ ? ", " : "", r->len[i], r->s[i]);
        else
            nd_put_sizes(&want, d->n, d->dims, &count);
        bound |= d != NULL;
        int again = 0; /* "(dim, dim)": one "with" */
        for (int j = 0; j < i; ++j)
            again |= r->len[j] == r->len[i] && !strncmp(r->s[j], r->s[i], (size_t)r->len[i]);
        if (d && d->from && strcmp(d->from, name) && !again) { /* bound by another argument */
            nd_put(&with, "%s%.*s = ", with.n ? ", " : ", with ", r->len[i], r->s[i]);
            if (*d->s == '*')
                nd_put_sizes(&with, d->n, d->dims, NULL);
            else
                nd_put(&with, "%zd", (Py_ssize_t)d->v);
            nd_put(&with, " from %s", d->from);
        }
    }
    nd_put(&msg, "%s has shape ", name);
    nd_put_sizes(&msg, PyArray_NDIM(a), PyArray_DIMS(a), NULL);
    const nd_dim *only = r->k == 1 && r->group == 0 ? nd_lookup(env, r->s[0], r->len[0]) : NULL;
    if (axes)
        nd_put(&msg, "; expected %s%d ax%s %s", r->group >= 0 ? "at least " : "", r->k - (r->group >= 0),
               r->k - (r->group >= 0) == 1 ? "is" : "es", rule);
    else if (only && only->from && !strncmp(only->from, r->s[0] + 1, (size_t)r->len[0] - 1))
        nd_put(&msg, "; expected (%s%s), the same shape as %s", want.s, count == 1 ? "," : "", only->from);
    else if (bound)
        nd_put(&msg, "; expected (%s%s) for %.*s%s", want.s, count == 1 ? "," : "", r->head, rule, with.s);
    else
        nd_put(&msg, "; expected %.*s", r->head, rule);
    if (!axes && r->note)
        nd_put(&msg, ", %s", r->note);
    PyErr_SetString(PyExc_ValueError, msg.s);
    return -1;
}

/* Checks the array a (the argument `name`) against its rule, binding the rule's unbound items. */
static int nd_shape_check(nd_env *env, const char *rule, PyArrayObject *a, const char *name)
{
    nd_rule r;
    if (nd_rule_parse(rule, &r) < 0)
        return -1;
    const int nd = PyArray_NDIM(a), fixed = r.k - (r.group >= 0);
    if (r.group < 0 ? nd != r.k : nd < fixed)
        return nd_shape_error(env, &r, rule, a, name, 1);
    const npy_intp *dims = PyArray_DIMS(a);
    for (int i = 0, ax = 0; i < r.k; ax += i++ == r.group ? nd - fixed : 1) {
        const int n = i == r.group ? nd - fixed : 1;
        if (nd_is_number(r.s[i], r.len[i]) ? dims[ax] != (npy_intp)strtoll(r.s[i], NULL, 10) : 0)
            return nd_shape_error(env, &r, rule, a, name, 0);
        nd_dim *d = nd_is_number(r.s[i], r.len[i]) || *r.s[i] == '.' ? NULL : nd_lookup(env, r.s[i], r.len[i]);
        if (d && (d->n != n || (n && memcmp(d->dims, dims + ax, (size_t)n * sizeof(npy_intp)))))
            return nd_shape_error(env, &r, rule, a, name, 0);
        if (!d && !nd_is_number(r.s[i], r.len[i]) && *r.s[i] != '.' && !nd_bind(env, r.s[i], r.len[i], name, n, dims + ax))
            return -1;
    }
    return 0;
}

/* The sizes of an output's rule, all bound. */
static int nd_shape_resolve(nd_env *env, const char *rule, const char *name, int *nd, npy_intp *dims)
{
    nd_rule r;
    if (nd_rule_parse(rule, &r) < 0)
        return -1;
    *nd = 0;
    for (int i = 0; i < r.k; ++i) {
        const int num = nd_is_number(r.s[i], r.len[i]);
        const npy_intp v = num ? (npy_intp)strtoll(r.s[i], NULL, 10) : 0;
        nd_dim *d = num ? NULL : nd_lookup(env, r.s[i], r.len[i]);
        if (!num && !d)
            return PyErr_Format(PyExc_SystemError, "output %s: %.*s is not bound", name, r.len[i], r.s[i]), -1;
        for (int j = 0; j < (d ? d->n : 1); ++j)
            if (*nd == NPY_MAXDIMS)
                return PyErr_Format(PyExc_ValueError, "%s would have more than %d axes", name, NPY_MAXDIMS), -1;
            else
                dims[(*nd)++] = d ? d->dims[j] : v;
    }
    return 0;
}

/* ---- the rows in table order -------------------------------------------------------------- */

static int nd_field_flag(const nd_arg *a, void *target) { return *(int *)((char *)target + (a->flags >> 16) - 1); }

/* An argument after its parse: its shape rule, its finiteness, the dimension it binds. */
static int nd_prepare_param(nd_env *env, const nd_arg *a, PyObject *o, void *target)
{
    if (!o || o == Py_None)
        return 0;
    if (nd_is_array_kind(a->kind)) {
        PyArrayObject *arr = *(PyArrayObject **)ND_FIELD(target, a);
        return (a->shape && nd_shape_check(env, a->shape, arr, a->name) < 0) ||
                       ((a->flags & ND_FINITE) && a->kind != ND_ARG_I64ARRAY && nd_check_finite(arr, a->name) < 0)
                   ? -1 : 0;
    }
    if (a->kind != ND_ARG_INT || !a->shape)
        return 0;
    const npy_intp v = (npy_intp) * (int64_t *)ND_FIELD(target, a);
    nd_dim *d = nd_lookup(env, a->shape, (int)strlen(a->shape));
    if (d && d->v != v) {
        PyErr_Format(PyExc_ValueError, "%s=%zd does not match %s = %zd from %s", a->name, (Py_ssize_t)v, a->shape,
                     (Py_ssize_t)d->v, d->from);
        return -1;
    }
    if (!d && !(d = nd_bind(env, a->shape, (int)strlen(a->shape), a->name, 1, NULL)))
        return -1;
    d->v = v;
    return 0;
}

/* A row that is not an argument: a check, a dimension's size, an output. */
static int nd_prepare_row(nd_env *env, const nd_arg *a, void *target, int typenum, const char *what)
{
    void *field = ND_FIELD(target, a);
    if (a->kind == ND_ARG_CHECK) {
        const int st = a->check(target);
        if (st != ND_OK && !PyErr_Occurred())
            nd_raise_status(st, what);
        return st == ND_OK ? 0 : -1;
    }
    if (a->kind == ND_ARG_DIM) {
        nd_dim *d = nd_lookup(env, a->name, (int)strlen(a->name));
        if (d)
            *(int64_t *)field = (int64_t)d->v;
        else if ((d = nd_bind(env, a->name, (int)strlen(a->name), NULL, 1, NULL)))
            d->v = (npy_intp) * (int64_t *)field; /* set by the initialiser or a check before */
        return d ? 0 : -1;
    }
    if (a->kind != ND_ARG_OUT || !a->shape || ((a->flags >> 16) && !nd_field_flag(a, target)))
        return 0; /* an output without a rule is a check's */
    int nd;
    npy_intp dims[NPY_MAXDIMS];
    if (nd_shape_resolve(env, a->shape, a->name, &nd, dims) < 0)
        return -1;
    PyObject *out = PyArray_SimpleNew(nd, dims, a->dtype ? a->dtype : typenum);
    if (out && (a->flags & ND_COPY)) {
        nd_dim *src = nd_lookup(env, a->shape + 1, (int)(strchr(a->shape, ')') - a->shape - 1));
        PyArrayObject *from = NULL;
        for (const nd_arg *r = env->table; src && r->name; ++r)
            if (nd_is_array_kind(r->kind) && !strcmp(r->name, src->from))
                from = *(PyArrayObject **)ND_FIELD(target, r);
        if (!from || PyArray_CopyInto((PyArrayObject *)out, from) < 0)
            Py_CLEAR(out);
    }
    *(PyObject **)field = out;
    return out ? 0 : -1;
}

/* The result of a run entry: its outputs (one: itself; several: a tuple; none: None). */
static PyObject *nd_outputs(const nd_arg *spec, void *target)
{
    int n = 0;
    for (const nd_arg *a = spec; a->name; ++a)
        n += a->kind >= ND_ARG_OUT && a->kind <= ND_ARG_OUT_INT;
    PyObject *res = n == 1 ? NULL : n ? PyTuple_New(n) : Py_NewRef(Py_None);
    int i = 0;
    for (const nd_arg *a = spec; a->name && (res || n == 1); ++a) {
        void *field = ND_FIELD(target, a);
        PyObject *v = a->kind == ND_ARG_OUT ? Py_NewRef(*(PyObject **)field ? *(PyObject **)field : Py_None)
                      : a->kind == ND_ARG_OUT_DOUBLE ? PyFloat_FromDouble(*(double *)field)
                      : a->kind == ND_ARG_OUT_INT    ? PyLong_FromLongLong((long long)*(int64_t *)field)
                                                     : NULL;
        if (a->kind < ND_ARG_OUT || a->kind > ND_ARG_OUT_INT)
            continue;
        if (n == 1)
            return v;
        if (!v)
            Py_CLEAR(res);
        else
            PyTuple_SET_ITEM(res, i++, v);
    }
    return res;
}

static void nd_release(const nd_arg *spec, void *target)
{
    for (const nd_arg *a = spec; a->name; ++a)
        if (nd_is_array_kind(a->kind) || a->kind == ND_ARG_OUT || a->kind == ND_ARG_KEEP)
            Py_CLEAR(*(PyObject **)ND_FIELD(target, a));
        else if (a->kind == ND_ARG_WORK) {
            PyMem_RawFree(*(void **)ND_FIELD(target, a));
            *(void **)ND_FIELD(target, a) = NULL;
        }
}

/* The body (or run) under a watch polled by its kernels (Ctrl-C stops any of them within a second). */
static PyObject *nd_run_watched(PyObject *module, const nd_entry *e, void *target, int typenum)
{
    nd_watch w = {0};
    nd_poll_scope scope;
    nd_poll_begin(&scope, nd_watch_poll, &w);
    PyObject *res = NULL;
    if (e->body)
        res = e->body(module, target, typenum);
    else {
        const int st = e->run ? e->run(module, target, typenum) : ND_OK;
        if (!PyErr_Occurred())
            res = st == ND_OK ? nd_outputs(e->args, target) : nd_raise_status(st, e->name);
    }
    nd_poll_end(&scope);
    if (nd_watch_reraise(&w)) /* the interrupt, not the kernel's status it caused */
        Py_CLEAR(res);
    return res;
}

PyObject *nd_run(PyObject *module, PyObject *args, PyObject *kw, const nd_entry *e)
{
    int n = 0;
    while (e->args[n].name)
        ++n;
    if (n > ND_MAX_ARGS)
        return PyErr_Format(PyExc_SystemError, "%s: too many rows in its table", e->name);
    PyObject *objs[ND_MAX_ARGS];
    void *target = PyMem_Calloc(1, e->size ? e->size : 1);
    nd_env *env = target ? PyMem_Malloc(sizeof *env) : NULL;
    if (!env) {
        PyMem_Free(target);
        return PyErr_NoMemory();
    }
    env->n = 0, env->table = e->args, env->target = target, env->used = 0;
    if (e->init)
        e->init(target);
    PyObject *res = NULL;
    int typenum = -1;
    if (nd_collect(e->name, e->args, args, kw, objs, n) == 0 && (typenum = nd_call_type(e->args, objs, n)) >= 0) {
        int ok = 1;
        nd_clear_error();
        /* the arguments; their shape rules, those that may be None last (the others bind the
         * dimensions they are checked against); then the table's other rows */
        for (int i = 0; ok && i < n; ++i) {
            const nd_arg *a = &e->args[i];
            ok = !objs[i] || nd_parse_one(a, objs[i], typenum, target) == 0;
            if (ok && objs[i] && objs[i] != Py_None && (a->flags >> 16))
                *(int *)((char *)target + (a->flags >> 16) - 1) = 1;
        }
        for (int pass = 0; pass < 2; ++pass)
            for (int i = 0; ok && i < n; ++i)
                if (!(e->args[i].flags & ND_NONE) == !pass)
                    ok = nd_prepare_param(env, &e->args[i], objs[i], target) == 0;
        for (int i = 0; ok && i < n; ++i)
            ok = nd_is_param(e->args[i].kind) || nd_prepare_row(env, &e->args[i], target, typenum, e->name) == 0;
        if (ok) {
            nd_clear_error();
            res = nd_run_watched(module, e, target, typenum);
        }
    }
    nd_release(e->args, target);
    PyMem_Free(env);
    PyMem_Free(target);
    return res;
}

/* {arg: default} of an entry's optional scalars, read from its initialised struct. */
PyObject *nd_entry_defaults(const nd_entry *e)
{
    PyObject *d = PyDict_New();
    void *target = d ? PyMem_Calloc(1, e->size ? e->size : 1) : NULL;
    if (!target) {
        Py_XDECREF(d);
        return d ? PyErr_NoMemory() : NULL;
    }
    if (e->init)
        e->init(target);
    for (const nd_arg *a = e->args; d && a->name; ++a) {
        if (!(a->flags & ND_OPTIONAL))
            continue;
        void *field = ND_FIELD(target, a);
        PyObject *v = NULL;
        switch (a->kind) {
        case ND_ARG_DOUBLE: v = PyFloat_FromDouble(*(double *)field); break;
        case ND_ARG_INT: v = PyLong_FromLongLong((long long)*(int64_t *)field); break;
        case ND_ARG_SEED: v = PyLong_FromUnsignedLongLong((unsigned long long)*(uint64_t *)field); break;
        case ND_ARG_BOOL: v = PyBool_FromLong(*(int *)field); break;
        case ND_ARG_CHOICE: v = PyUnicode_FromString(a->choices[*(int *)field]); break;
        default: continue; /* arrays and objects default to None */
        }
        if (!v || PyDict_SetItemString(d, a->name, v) < 0)
            Py_CLEAR(d);
        Py_XDECREF(v);
    }
    PyMem_Free(target);
    return d;
}

void *nd_work_alloc(size_t n, size_t itemsize)
{
    size_t bytes;
    if (n == SIZE_MAX || !nd_mul_size(n + 1, itemsize, &bytes)) {
        PyErr_SetString(PyExc_ValueError, "the workspace's size overflows");
        return NULL;
    }
    void *p = PyMem_RawMalloc(bytes);
    if (!p)
        PyErr_NoMemory();
    return p;
}

int nd_check_shape(PyArrayObject *a, const char *name, int ndim, const npy_intp *dims, const char *axes)
{
    int ok = PyArray_NDIM(a) == ndim, any_free = 0;
    for (int i = 0; dims && i < ndim; ++i) {
        ok = ok && (dims[i] < 0 || PyArray_DIM(a, i) == dims[i]);
        any_free |= dims[i] < 0;
    }
    if (ok)
        return 0;
    nd_buf m = {.n = 0};
    nd_put(&m, "%s has shape ", name);
    nd_put_sizes(&m, PyArray_NDIM(a), PyArray_DIMS(a), NULL);
    if (!dims)
        nd_put(&m, "; expected %d axes%s%s", ndim, axes ? " " : "", axes ? axes : "");
    else if (any_free)
        nd_put(&m, "; expected %s", axes ? axes : "another shape");
    else {
        nd_put(&m, "; expected ");
        nd_put_sizes(&m, ndim, dims, NULL);
        nd_put(&m, "%s%s", axes ? ", " : "", axes ? axes : "");
    }
    PyErr_SetString(PyExc_ValueError, m.s);
    return -1;
}

int nd_check_last_axis(PyArrayObject *y, const char *name, int64_t size, const char *what)
{
    const int nd = PyArray_NDIM(y);
    if (nd >= 1 && PyArray_DIM(y, nd - 1) == size)
        return 0;
    nd_buf m = {.n = 0};
    nd_put(&m, "%s has shape ", name);
    nd_put_sizes(&m, nd, PyArray_DIMS(y), NULL);
    nd_put(&m, "; this %s needs its last axis of size %lld", what, (long long)size);
    PyErr_SetString(PyExc_ValueError, m.s);
    return -1;
}

void *nd_workspace(int st, const size_t *len, size_t itemsize, const char *what)
{
    if (st != ND_OK)
        return nd_raise_status(st, what);
    return nd_work_alloc(*len, itemsize);
}

/* ---- spec tuples ------------------------------------------------------------------------- */

int nd_spec_init(nd_spec *s, PyObject *items, int typenum, PyObject *keep, const char *what)
{
    s->env.n = 0, s->env.table = NULL, s->env.target = NULL, s->env.used = 0;
    s->items = items, s->keep = keep, s->pos = 0, s->typenum = typenum, s->what = what;
    if (!PyTuple_Check(items))
        return PyErr_Format(PyExc_TypeError, "%s parameters must be a tuple, got %s", what, Py_TYPE(items)->tp_name), -1;
    return 0;
}

/* A copy of str in the env's text, "[l]" and "[l+1]" replaced by l and l + 1 (the bindings
 * point at names and rules for as long as the walk lasts); NULL with SystemError when full. */
static const char *nd_env_text(nd_env *env, const char *str, int l)
{
    char *out = env->text + env->used, *end = env->text + sizeof env->text;
    for (char *o = out; o < end; ++str) {
        if (!strncmp(str, "[l]", 3) || !strncmp(str, "[l+1]", 5)) {
            const int next = str[2] == '+';
            o += snprintf(o, (size_t)(end - o), "[%d]", l + next);
            str += next ? 4 : 2;
        } else if (!(*o++ = *str)) {
            env->used = (size_t)(o - env->text);
            return out;
        }
    }
    return PyErr_SetString(PyExc_SystemError, "a spec's names overflow its table's text"), NULL;
}

int nd_spec_bind(nd_spec *s, const char *name, int64_t size, const char *from)
{
    const char *n = nd_env_text(&s->env, name, 0), *f = n ? nd_env_text(&s->env, from, 0) : NULL;
    nd_dim *d = f ? nd_bind(&s->env, n, (int)strlen(n), f, 1, NULL) : NULL;
    if (d)
        d->v = (npy_intp)size;
    return d ? 0 : -1;
}

int64_t nd_spec_size(nd_spec *s, const char *name)
{
    const nd_dim *d = nd_lookup(&s->env, name, (int)strlen(name));
    return d ? (int64_t)d->v : -1;
}

void nd_spec_widths(nd_spec *s, int n, int64_t *widths)
{
    char name[32];
    for (int l = 0; l < n; ++l) {
        snprintf(name, sizeof name, "width[%d]", l);
        widths[l] = nd_spec_size(s, name);
    }
}

/* The item at s->pos by its row (the l-th repetition of its group): its shape rule, finiteness
 * for floats, kept alive by s->keep, its data pointer into the target. */
static int nd_spec_item(nd_spec *s, const nd_item *row, int l, void *target)
{
    char label[64];
    const Py_ssize_t i = s->pos++;
    snprintf(label, sizeof label, row->name, i);
    const char *name = nd_env_text(&s->env, label, l), *rule = name ? nd_env_text(&s->env, row->shape, l) : NULL;
    const void *data = NULL;
    if (!rule)
        return -1;
    if (i >= PyTuple_GET_SIZE(s->items))
        return PyErr_Format(PyExc_ValueError, "malformed %s spec: %s is missing", s->what, name), -1;
    PyObject *obj = PyTuple_GET_ITEM(s->items, i);
    if (obj == Py_None && !(row->flags & ND_NONE))
        return PyErr_Format(PyExc_ValueError, "%s must be given", name), -1;
    if (obj != Py_None) {
        const int type = row->type ? row->type : s->typenum;
        const int ints = type == NPY_INT8 || type == NPY_INT32 || type == NPY_INT64;
        PyArrayObject *a = ints ? nd_int_array(obj, type, name, 0) : nd_float_array(obj, type, name);
        const int ok = a && nd_shape_check(&s->env, rule, a, name) == 0 &&
                       (ints || nd_check_finite(a, name) == 0) &&
                       PyList_Append(s->keep, (PyObject *)a) == 0;
        data = ok ? PyArray_DATA(a) : NULL;
        Py_XDECREF(a); /* `keep` holds it */
        if (!ok)
            return -1;
    }
    memcpy((char *)target + row->offset + (size_t)l * sizeof(void *), &data, sizeof data);
    return 0;
}

int nd_spec_walk(nd_spec *s, const nd_item *rows, int count, void *target)
{
    for (const nd_item *r = rows; r->name;) {
        const nd_item *end = r + 1;
        while ((r->flags & ND_REPEAT) && end->name && (end->flags & ND_REPEAT))
            ++end;
        for (int l = 0; l < ((r->flags & ND_REPEAT) ? count : 1); ++l)
            for (const nd_item *g = r; g < end; ++g)
                if (nd_spec_item(s, g, l, target) < 0)
                    return -1;
        r = end;
    }
    return 0;
}

void nd_xdecref(int n, ...)
{
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; ++i)
        Py_XDECREF(va_arg(ap, PyObject *));
    va_end(ap);
}

int nd_dict_put(PyObject *d, const char *key, PyObject *v)
{
    const int rc = v ? PyDict_SetItemString(d, key, v) : -1;
    Py_XDECREF(v);
    return rc;
}

PyObject *nd_array_copy(int type, int ndim, const npy_intp *dims, const void *src)
{
    PyObject *a = PyArray_SimpleNew(ndim, (npy_intp *)dims, type);
    if (a && PyArray_NBYTES((PyArrayObject *)a) > 0)
        memcpy(PyArray_DATA((PyArrayObject *)a), src, (size_t)PyArray_NBYTES((PyArrayObject *)a));
    return a;
}

int nd_dict_array(PyObject *d, const char *key, int type, int ndim, const npy_intp *dims, const void *src)
{
    return nd_dict_put(d, key, nd_array_copy(type, ndim, dims, src));
}

int nd_dict_names(PyObject *d, const char *key, npy_intp n, const int *codes, const char *(*key_of)(int))
{
    PyObject *t = PyTuple_New(n);
    for (npy_intp i = 0; t && i < n; ++i) {
        PyObject *s = PyUnicode_FromString(key_of(codes[i]));
        if (!s)
            Py_CLEAR(t);
        else
            PyTuple_SET_ITEM(t, i, s);
    }
    return nd_dict_put(d, key, t);
}

PyObject *nd_raise_integration(PyObject *module, PyObject *msg, PyObject *attrs)
{
    PyObject *exc = msg && attrs ? PyObject_CallOneArg(nd_state(module)->integration_error, msg) : NULL, *key, *value;
    Py_ssize_t pos = 0;
    int ok = exc != NULL;
    while (ok && PyDict_Next(attrs, &pos, &key, &value))
        ok = PyObject_SetAttr(exc, key, value) == 0;
    if (ok)
        PyErr_SetObject(nd_state(module)->integration_error, exc);
    nd_xdecref(3, exc, msg, attrs);
    return NULL;
}

int nd_pyargs_init(nd_pyargs *p, PyObject *args, int typenum, PyObject *progress)
{
    *p = (nd_pyargs){.nargs = args ? PyTuple_GET_SIZE(args) : 0, .typenum = typenum, .watch = {.progress = progress}};
    if (!(p->argv = PyMem_Calloc((size_t)(2 + p->nargs), sizeof(PyObject *)))) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < p->nargs; ++i)
        p->argv[2 + i] = PyTuple_GET_ITEM(args, i);
    return 0;
}

void nd_pyargs_free(nd_pyargs *p)
{
    nd_watch_clear(&p->watch);
    PyMem_Free(p->argv);
    p->argv = NULL;
}

int nd_pyargs_raise(nd_pyargs *p, int status, const char *what)
{
    if (nd_watch_reraise(&p->watch))
        return 1;
    if (status != ND_ERR_ARG && status != ND_ERR_OVERFLOW && status != ND_ERR_NOMEM && status != ND_ERR_CALLBACK)
        return 0;
    nd_raise_status(status, what);
    return 1;
}

/* fn(*argv) with the GIL, its result into out by nd_pycall's rules. 0, or -1 with an exception. */
static int nd_pycall_into(PyObject *fn, nd_pyargs *p, const char *what, int ndim, const npy_intp *want,
                          const char *expect, void *out)
{
    PyObject *res = PyObject_Vectorcall(fn, p->argv, (size_t)(2 + p->nargs), NULL);
    if (!res)
        return -1;
    char name[80];
    snprintf(name, sizeof name, "the value returned by %s", what);
    PyArrayObject *a = nd_float_array(res, p->typenum, name);
    Py_DECREF(res);
    if (!a)
        return -1;
    int same = PyArray_NDIM(a) == ndim;
    for (int i = 0; same && i < ndim; ++i)
        same = PyArray_DIM(a, i) == want[i];
    nd_buf m = {.n = 0};
    if (same)
        memcpy(out, PyArray_DATA(a), (size_t)PyArray_NBYTES(a));
    else {
        nd_put(&m, "%s returned an array of shape ", what);
        nd_put_sizes(&m, PyArray_NDIM(a), PyArray_DIMS(a), NULL);
        nd_put(&m, "; expected ");
        nd_put_sizes(&m, ndim, want, NULL);
        nd_put(&m, "%s%s", expect ? ", " : "", expect ? expect : "");
        PyErr_SetString(PyExc_ValueError, m.s);
    }
    Py_DECREF(a);
    return same ? 0 : -1;
}

int nd_pycall(nd_pyargs *p, PyObject *fn, int64_t m, const double *t, int yndim, const npy_intp *ydims, const void *y,
              const char *what, int ndim, const npy_intp *want, const char *expect, void *out)
{
    PyGILState_STATE gil = PyGILState_Ensure();
    const npy_intp td[2] = {(npy_intp)m, 1};
    PyObject *ta = m < 0 ? PyFloat_FromDouble(t[0]) : nd_array_copy(NPY_DOUBLE, 2, td, t);
    PyObject *ya = ta ? nd_array_copy(p->typenum, yndim, ydims, y) : NULL;
    p->argv[0] = ta, p->argv[1] = ya;
    const int ok = ya && nd_pycall_into(fn, p, what, ndim, want, expect, out) == 0;
    p->argv[0] = p->argv[1] = NULL;
    nd_xdecref(2, ta, ya);
    return nd_watch_callback_done(&p->watch, ok, gil);
}

void nd_pyfn_init(nd_pyfn *c, PyObject *fn, const char *what, const char *expect, nd_pyargs *py, PyArrayObject *y0,
                  int extra, npy_intp extra_dim)
{
    const int nd = PyArray_NDIM(y0);
    *c = (nd_pyfn){fn, what, expect, py, nd, extra};
    if (nd) /* a 0-d array's dims pointer may be NULL: not for memcpy */
        memcpy(c->shape, PyArray_DIMS(y0), (size_t)nd * sizeof(npy_intp));
    c->shape[nd] = extra_dim;
}

int nd_pyfn_call(const nd_pyfn *c, double t, const void *y, void *out)
{
    return nd_pycall(c->py, c->fn, -1, &t, c->ndim, c->shape, y, c->what, c->ndim + c->extra, c->shape, c->expect, out);
}

static void nd_free_capsule(PyObject *capsule)
{
    PyMem_RawFree(PyCapsule_GetPointer(capsule, "neurodyn.buffer"));
}

void *nd_keep_block(PyObject *keep, size_t size)
{
    void *p = PyMem_RawCalloc(1, size);
    PyObject *cap = p ? PyCapsule_New(p, "neurodyn.buffer", nd_free_capsule) : NULL;
    if (!cap) {
        PyMem_RawFree(p);
        return p ? NULL : PyErr_NoMemory();
    }
    const int bad = PyList_Append(keep, cap);
    Py_DECREF(cap); /* with `keep` from here */
    return bad ? NULL : p;
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
    if (ok && w->progress && done >= 0) {
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
    return Py_BuildValue("{s:s,s:i,s:i,s:s}", "blas_config", nd_blas_config(), "blas_threads",
                         nd_blas_get_num_threads(), "kernel_threads", nd_get_threads(), "thread_pool",
                         nd_parallel_available() ? "POSIX threads" : "none");
}

/* The kernels' thread pool. OpenBLAS stays at one thread: large products are split over the
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

static PyMethodDef nd_util_methods[] = {
    {"tune_malloc", tune_malloc, METH_VARARGS,
     "tune_malloc(mmap_threshold, trim_threshold) -> bool: set glibc's thresholds (False without glibc)."},
    {"thread_info", thread_info, METH_NOARGS,
     "thread_info() -> dict: OpenBLAS build string and threads, the kernels' threads and their pool."},
    {"set_num_threads", set_num_threads, METH_O, "set_num_threads(n): the kernels' and OpenBLAS's threads."},
    {NULL, NULL, 0, NULL}};

static const nd_entry *const nd_util_entries[] = {NULL};
const nd_family nd_util_family = {nd_util_entries, NULL, nd_util_methods};

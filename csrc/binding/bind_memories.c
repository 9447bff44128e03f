/* Binding of the memories family (docs/models.md §9, §10): the memory networks as built-in
 * fields (parsed here for odeint's field parser too), their energies, overlaps and Jacobians,
 * the firing-rate design and its stability analysis, and pattern generators. */
#include "nd_bind.h"

#include <math.h>
#include <string.h>

#include "nd_fields.h"
#include "nd_memories.h"
#include "nd_status.h"

/* ---- the field spec ----------------------------------------------------------------------- *
 *
 * ("memory", params, acts, consts) as built by neurodyn.memories:
 *   params = (patterns int8 [p, n] or None, input [n] or [p] or None, next int64 [p] or None,
 *             active_start int64 [p + 1] or None, active int32 [count] or None)
 *   acts   = (form, activation, zero_diagonal, input_in_state, slow, n, p)
 *   consts = (gain, threshold, tau, alpha, beta, gamma, kappa, eps, leak) */

static void nd_mem_capsule_free(PyObject *cap) { PyMem_Free(PyCapsule_GetPointer(cap, "nd_memory_field")); }

/* obj as a C-contiguous array of typenum with `ndim` axes, kept alive by `keep`; NULL with an
 * exception set. Integer patterns convert only safely (no float is truncated to a byte). */
static PyArrayObject *nd_mem_keep(PyObject *obj, int typenum, int ndim, const char *name, PyObject *keep)
{
    const int integer = typenum == NPY_INT8 || typenum == NPY_INT32 || typenum == NPY_INT64;
    PyArrayObject *a = integer ? (PyArrayObject *)PyArray_FROMANY(obj, typenum, 0, 0, NPY_ARRAY_IN_ARRAY)
                               : nd_float_array(obj, typenum, name);
    if (!a) {
        if (PyErr_ExceptionMatches(PyExc_TypeError))
            PyErr_Format(PyExc_TypeError, "%s must be an array of %s", name,
                         typenum == NPY_INT8 ? "int8 memories" : "integer indices");
        return NULL;
    }
    if (PyArray_NDIM(a) != ndim) {
        PyErr_Format(PyExc_ValueError, "%s must have %d axes, got %d", name, ndim, PyArray_NDIM(a));
        Py_DECREF(a);
        return NULL;
    }
    if ((typenum == NPY_FLOAT || typenum == NPY_DOUBLE) && nd_check_finite(a, name) < 0) {
        Py_DECREF(a);
        return NULL;
    }
    int bad = PyList_Append(keep, (PyObject *)a);
    Py_DECREF(a); /* `keep` holds it */
    return bad ? NULL : a;
}

int nd_memories_parse_field(PyObject *params, PyObject *acts, PyObject *consts, int typenum, nd_field *f, PyObject *keep)
{
    PyObject *pat, *input, *next, *start, *units;
    nd_memory_field *m = PyMem_Calloc(1, sizeof *m);
    if (!m)
        return PyErr_NoMemory(), -1;
    PyObject *cap = PyCapsule_New(m, "nd_memory_field", nd_mem_capsule_free);
    if (!cap) {
        PyMem_Free(m);
        return -1;
    }
    int bad = PyList_Append(keep, cap);
    Py_DECREF(cap);
    if (bad)
        return -1;
    long long n, p;
    if (!PyArg_ParseTuple(params, "OOOOO;memory field arrays", &pat, &input, &next, &start, &units) ||
        !PyArg_ParseTuple(acts, "iiiiiLL;memory field codes", &m->form, &m->act, &m->zero_diagonal,
                          &m->input_in_state, &m->slow, &n, &p) ||
        !PyArg_ParseTuple(consts, "ddddddddd;memory field constants", &m->gain, &m->threshold, &m->tau,
                          &m->alpha, &m->beta, &m->gamma, &m->kappa, &m->eps, &m->leak))
        return -1;
    m->n = (int64_t)n;
    m->p = (int64_t)p;
    if (pat != Py_None) {
        PyArrayObject *xi = nd_mem_keep(pat, NPY_INT8, 2, "patterns", keep);
        if (!xi)
            return -1;
        if (PyArray_DIM(xi, 0) != m->p || PyArray_DIM(xi, 1) != m->n) {
            PyErr_Format(PyExc_ValueError, "patterns must have shape (%lld, %lld)", p, n);
            return -1;
        }
        m->patterns = PyArray_DATA(xi);
    }
    if (start != Py_None || units != Py_None) {
        PyArrayObject *st = nd_mem_keep(start, NPY_INT64, 1, "active_start", keep);
        PyArrayObject *un = st ? nd_mem_keep(units, NPY_INT32, 1, "active", keep) : NULL;
        if (!un)
            return -1;
        if (m->p < 0 || PyArray_DIM(st, 0) != m->p + 1 ||
            ((const int64_t *)PyArray_DATA(st))[m->p] != (int64_t)PyArray_DIM(un, 0)) {
            PyErr_SetString(PyExc_ValueError, "active_start must have P + 1 entries ending at the length of active");
            return -1;
        }
        m->active_start = PyArray_DATA(st);
        m->active = PyArray_DATA(un);
    }
    if (input != Py_None) {
        PyArrayObject *u = nd_mem_keep(input, typenum, 1, "input", keep);
        if (!u)
            return -1;
        const npy_intp want = m->form == ND_MEM_IDP ? m->p : m->n;
        if (PyArray_DIM(u, 0) != want) {
            PyErr_Format(PyExc_ValueError, "%s has %zd entries; this network needs %zd (one per %s)",
                         m->form == ND_MEM_IDP ? "saliencies" : "input", (Py_ssize_t)PyArray_DIM(u, 0),
                         (Py_ssize_t)want, m->form == ND_MEM_IDP ? "memory" : "unit");
            return -1;
        }
        m->input = PyArray_DATA(u);
    }
    if (next != Py_None) {
        PyArrayObject *nx = nd_mem_keep(next, NPY_INT64, 1, "sequence", keep);
        if (!nx)
            return -1;
        if (PyArray_DIM(nx, 0) != m->p) {
            PyErr_Format(PyExc_ValueError, "sequence successors have %zd entries; one per memory (%zd) expected",
                         (Py_ssize_t)PyArray_DIM(nx, 0), (Py_ssize_t)m->p);
            return -1;
        }
        m->next = PyArray_DATA(nx);
    }
    f->memory = m;
    f->dim = nd_memory_field_dim(m);
    /* the memories' contents once, here; the description again wherever the field is bound */
    int st = nd_memory_field_check(m, f->dim);
    if (st == ND_OK)
        st = nd_memory_field_check_contents(m);
    if (st != ND_OK) {
        nd_raise_status(st, "memory field");
        return -1;
    }
    return 0;
}

/* A whole spec, which must be a memory network's, into f (checked, not bound to states). */
static int nd_mem_parse_spec(PyObject *spec, int typenum, nd_field *f, PyObject *keep)
{
    if (nd_parse_field(spec, typenum, f, keep) < 0)
        return -1;
    if (f->kind != ND_FIELD_MEMORY) {
        PyErr_SetString(PyExc_ValueError, "field must be a memory network's field");
        return -1;
    }
    return 0;
}

/* A whole spec, which must be a memory network's, bound to states y [batch, dim]. */
static int nd_mem_spec(PyObject *spec, int typenum, PyArrayObject *y, nd_field *f, PyObject *keep)
{
    if (nd_mem_parse_spec(spec, typenum, f, keep) < 0)
        return -1;
    if (PyArray_DIM(y, 1) != f->dim) {
        PyObject *got = nd_shape_str(PyArray_NDIM(y), PyArray_DIMS(y));
        if (got)
            PyErr_Format(PyExc_ValueError, "the states have shape %S; this network needs (batch, %lld)", got,
                         (long long)f->dim);
        Py_XDECREF(got);
        return -1;
    }
    f->batch = PyArray_DIM(y, 0);
    return 0;
}

/* ---- energies, overlaps, Jacobians of states ------------------------------------------------ */

typedef struct {
    PyObject *spec;
    PyArrayObject *y;
    double scale;
    int64_t what; /* 0 energy, 1 overlaps */
} nd_mem_state_args;

static const nd_arg memories_states_args[] = {
    ND_SCALAR(nd_mem_state_args, spec, "spec", ND_ARG_OBJECT, 0),
    ND_IN(nd_mem_state_args, y, "y", ND_TYPE | ND_FINITE, 2, "(batch, d)"),
    ND_SCALAR(nd_mem_state_args, what, "what", ND_ARG_INT, 0),
    ND_SCALAR(nd_mem_state_args, scale, "scale", ND_ARG_DOUBLE, ND_OPTIONAL),
    {NULL}};

static void nd_mem_state_defaults(nd_mem_state_args *a) { a->scale = 1.0; }

/* -> E [batch], overlaps [batch, p] or J [batch, d, d] */
static PyObject *memories_states_body(PyObject *module, void *args, int tn)
{
    nd_mem_state_args *a = args;
    nd_field f;
    PyObject *keep = PyList_New(0), *out = NULL;
    void *work = NULL;
    if (!keep || nd_mem_spec(a->spec, tn, a->y, &f, keep) < 0)
        goto done;
    if (a->what < 0 || a->what > 1) {
        PyErr_Format(PyExc_ValueError, "what must be 0 or 1, got %lld", (long long)a->what);
        goto done;
    }
    const nd_memory_field *m = f.memory;
    const npy_intp B = f.batch;
    size_t len;
    int st = nd_memory_field_workspace_len(m, B, &len);
    if (st != ND_OK) {
        nd_raise_status(st, "memories");
        goto done;
    }
    if (!(work = nd_work_alloc(len, PyArray_ITEMSIZE(a->y))))
        goto done;
    out = a->what == 0 ? nd_empty(tn, 1, B) : nd_empty(tn, 2, B, (npy_intp)m->p);
    if (!out)
        goto done;
    void *yd = PyArray_DATA(a->y), *od = PyArray_DATA((PyArrayObject *)out);
    Py_BEGIN_ALLOW_THREADS
    if (a->what == 0)
        st = ND_DISPATCH(tn, nd_memory_energy, m, B, yd, od, work);
    else
        st = ND_DISPATCH(tn, nd_memory_overlaps, m, B, yd, a->scale, od, work);
    Py_END_ALLOW_THREADS
    if (st != ND_OK) {
        Py_CLEAR(out);
        nd_raise_status(st, "memories");
    }
done:
    PyMem_RawFree(work);
    Py_XDECREF(keep);
    return out;
}
ND_ENTRY(memories_states, nd_mem_state_args, nd_mem_state_defaults,
         "memories_states(spec, y, what, scale=1) -> energies [batch] (what 0) or overlaps [batch, P] times scale "
         "(what 1) of a memory network's states")

/* ---- activations ---------------------------------------------------------------------------- */

typedef struct {
    int act;
    double gain, threshold;
    int64_t what;
    PyArrayObject *x;
} nd_mem_act_args;

static const nd_arg memories_activation_args[] = {
    ND_CHOICE(nd_mem_act_args, act, "activation", 0, nd_mem_act_names),
    ND_SCALAR(nd_mem_act_args, gain, "gain", ND_ARG_DOUBLE, 0),
    ND_SCALAR(nd_mem_act_args, threshold, "threshold", ND_ARG_DOUBLE, 0),
    ND_SCALAR(nd_mem_act_args, what, "what", ND_ARG_INT, 0),
    ND_IN(nd_mem_act_args, x, "x", ND_TYPE, -1, "(...)"),
    {NULL}};

/* -> the activation (what 0), its derivative (1), inverse (2), integral (3) or the integral of
 * its inverse (4), elementwise, of x's shape */
static PyObject *memories_activation_body(PyObject *module, void *args, int tn)
{
    nd_mem_act_args *a = args;
    PyObject *out = PyArray_NewLikeArray(a->x, NPY_CORDER, PyArray_DescrFromType(tn), 0);
    if (!out)
        return NULL;
    int st = ND_DISPATCH(tn, nd_memory_act, a->act, a->gain, a->threshold, (int)a->what, PyArray_SIZE(a->x),
                         PyArray_DATA(a->x), PyArray_DATA((PyArrayObject *)out));
    if (st != ND_OK) {
        Py_DECREF(out);
        return nd_raise_status(st, "memories_activation");
    }
    return out;
}
ND_ENTRY(memories_activation, nd_mem_act_args, NULL,
         "memories_activation(activation, gain, threshold, what, x) -> phi (0), phi' (1), phi^-1 (2), int phi (3) "
         "or int_0 phi^-1 (4) at x")

/* ---- the firing-rate design ------------------------------------------------------------------ */

typedef struct {
    PyArrayObject *patterns;
    double a, b, overlap, gain, threshold;
    int act, overlap_given;
} nd_mem_design_args;

static const nd_arg memories_rate_design_args[] = {
    {"patterns", ND_ARG_F64ARRAY, ND_FINITE, offsetof(nd_mem_design_args, patterns), 2, "(P, N)", NULL},
    ND_SCALAR(nd_mem_design_args, a, "a", ND_ARG_DOUBLE, 0),
    ND_SCALAR(nd_mem_design_args, b, "b", ND_ARG_DOUBLE, 0),
    ND_CHOICE(nd_mem_design_args, act, "activation", 0, nd_mem_act_names),
    ND_SCALAR(nd_mem_design_args, gain, "gain", ND_ARG_DOUBLE, 0),
    ND_SCALAR(nd_mem_design_args, threshold, "threshold", ND_ARG_DOUBLE, 0),
    ND_SCALAR(nd_mem_design_args, overlap, "overlap", ND_ARG_DOUBLE,
              ND_OPTIONAL | ND_NONE | ND_GIVEN(nd_mem_design_args, overlap_given)),
    {NULL}};

static int nd_mem_put(PyObject *d, const char *key, double v)
{
    PyObject *o = PyFloat_FromDouble(v);
    int bad = !o || PyDict_SetItemString(d, key, o) < 0;
    Py_XDECREF(o);
    return bad ? -1 : 0;
}

static PyObject *nd_mem_design_dict(const nd_rate_design *d)
{
    PyObject *out = PyDict_New();
    if (!out || nd_mem_put(out, "alpha", d->alpha) || nd_mem_put(out, "beta", d->beta) ||
        nd_mem_put(out, "gamma", d->gamma) || nd_mem_put(out, "phi_a", d->phi_a) || nd_mem_put(out, "phi_b", d->phi_b) ||
        nd_mem_put(out, "dphi_a", d->dphi_a) || nd_mem_put(out, "dphi_b", d->dphi_b) ||
        nd_mem_put(out, "alpha_prime", d->alpha_prime) || nd_mem_put(out, "sufficient", d->sufficient) ||
        nd_mem_put(out, "unstable1", d->unstable1) || nd_mem_put(out, "unstable2", d->unstable2))
        Py_CLEAR(out);
    return out;
}

/* -> {q, r, alpha, beta, gamma, ...}: patterns checked (0/1, P < N), q their mean activity, r
 * the overlap fraction (q unless given) */
static PyObject *memories_rate_design_body(PyObject *module, void *args, int tn)
{
    nd_mem_design_args *a = args;
    const npy_intp p = PyArray_DIM(a->patterns, 0), n = PyArray_DIM(a->patterns, 1);
    const double *xi = PyArray_DATA(a->patterns);
    int st = nd_memory_check_patterns(1, p, n, xi);
    if (st != ND_OK)
        return nd_raise_status(st, "patterns");
    double active = 0;
    for (npy_intp k = 0; k < p * n; ++k)
        active += xi[k];
    const double q = active / ((double)p * (double)n), r = a->overlap_given ? a->overlap : q;
    nd_rate_design d;
    if ((st = nd_rate_design_compute(a->a, a->b, q, r, a->act, a->gain, a->threshold, &d)) != ND_OK)
        return nd_raise_status(st, "memories_rate_design");
    PyObject *out = nd_mem_design_dict(&d);
    if (out && (nd_mem_put(out, "q", q) || nd_mem_put(out, "r", r)))
        Py_CLEAR(out);
    return out;
}
ND_ENTRY(memories_rate_design, nd_mem_design_args, NULL,
         "memories_rate_design(patterns, a, b, activation, gain, threshold, overlap=None) -> the synaptic design "
         "(docs/models.md §9) and the closed-form stability quantities")

typedef struct {
    PyArrayObject *patterns;
    int binary;
} nd_mem_check_args;

static const nd_arg memories_check_patterns_args[] = {
    {"patterns", ND_ARG_F64ARRAY, ND_FINITE, offsetof(nd_mem_check_args, patterns), 2, "(P, N)", NULL},
    ND_SCALAR(nd_mem_check_args, binary, "binary", ND_ARG_BOOL, 0),
    {NULL}};

static PyObject *memories_check_patterns_body(PyObject *module, void *args, int tn)
{
    nd_mem_check_args *a = args;
    int st = nd_memory_check_patterns(a->binary, PyArray_DIM(a->patterns, 0), PyArray_DIM(a->patterns, 1),
                                      PyArray_DATA(a->patterns));
    return st == ND_OK ? Py_NewRef(Py_None) : nd_raise_status(st, "patterns");
}
ND_ENTRY(memories_check_patterns, nd_mem_check_args, NULL,
         "memories_check_patterns(patterns, binary) -> None; raises unless the patterns hold only 0/1 (binary) or "
         "-1/+1, with fewer memories than units")

/* ---- stability in the (P+1)-dimensional range ------------------------------------------------ */

typedef struct {
    PyArrayObject *patterns;
} nd_mem_grams_args;

static const nd_arg memories_grams_args[] = {
    {"patterns", ND_ARG_F64ARRAY, ND_FINITE, offsetof(nd_mem_grams_args, patterns), 2, "(P, N)", NULL}, {NULL}};

static PyObject *memories_grams_body(PyObject *module, void *args, int tn)
{
    nd_mem_grams_args *a = args;
    const npy_intp p = PyArray_DIM(a->patterns, 0), n = PyArray_DIM(a->patterns, 1), k = p + 1;
    int st = nd_memory_check_patterns(1, p, n, PyArray_DATA(a->patterns));
    size_t len;
    if (st != ND_OK || (st = nd_rate_grams_workspace_len(n, p, &len)) != ND_OK)
        return nd_raise_status(st, "patterns");
    void *work = nd_work_alloc(len, sizeof(double));
    PyObject *T = work ? nd_empty(NPY_DOUBLE, 3, k, k, k) : NULL;
    if (T) {
        const double *xi = PyArray_DATA(a->patterns);
        double *td = PyArray_DATA((PyArrayObject *)T);
        Py_BEGIN_ALLOW_THREADS
        st = nd_rate_grams(n, p, xi, td, work);
        Py_END_ALLOW_THREADS
        if (st != ND_OK) {
            Py_CLEAR(T);
            nd_raise_status(st, "memories_grams");
        }
    }
    PyMem_RawFree(work);
    return T;
}
ND_ENTRY(memories_grams, nd_mem_grams_args, NULL,
         "memories_grams(patterns) -> T [P+1, P+1, P+1]: U U^T / N and U diag(xi^mu) U^T / N, U = [Xi^T; 1^T]")

typedef struct {
    PyArrayObject *grams, *gains, *thresholds;
    double a, b, q, r;
    int act;
} nd_mem_lambda_args;

static const nd_arg memories_stability_args[] = {
    {"grams", ND_ARG_F64ARRAY, ND_FINITE, offsetof(nd_mem_lambda_args, grams), 3, "(P+1, P+1, P+1)", NULL},
    ND_SCALAR(nd_mem_lambda_args, a, "a", ND_ARG_DOUBLE, 0),
    ND_SCALAR(nd_mem_lambda_args, b, "b", ND_ARG_DOUBLE, 0),
    ND_SCALAR(nd_mem_lambda_args, q, "q", ND_ARG_DOUBLE, 0),
    ND_SCALAR(nd_mem_lambda_args, r, "overlap", ND_ARG_DOUBLE, 0),
    ND_CHOICE(nd_mem_lambda_args, act, "activation", 0, nd_mem_act_names),
    {"gains", ND_ARG_F64ARRAY, ND_FINITE, offsetof(nd_mem_lambda_args, gains), 1, "(G,)", NULL},
    {"thresholds", ND_ARG_F64ARRAY, ND_FINITE, offsetof(nd_mem_lambda_args, thresholds), 1, "(H,)", NULL},
    {NULL}};

/* -> {lambda_max [G, H, P], sufficient, unstable1, unstable2 [G, H]}: the design at every
 * (gain, threshold); a point where the design does not exist (phi(b) <= phi(a)) is NaN, unless
 * the grid is a single point, which raises the design's error */
static PyObject *memories_stability_body(PyObject *module, void *args, int tn)
{
    nd_mem_lambda_args *a = args;
    const npy_intp k = PyArray_DIM(a->grams, 0), p = k - 1, G = PyArray_DIM(a->gains, 0),
                   H = PyArray_DIM(a->thresholds, 0);
    const npy_intp gd[3] = {k, k, k};
    if (nd_check_shape(a->grams, "grams", 3, gd, "(P+1, P+1, P+1)") < 0)
        return NULL;
    if (p < 1)
        return PyErr_Format(PyExc_ValueError, "grams must come from at least one memory");
    size_t len;
    int st = nd_rate_lambda_workspace_len(p, &len);
    if (st != ND_OK)
        return nd_raise_status(st, "memories_stability");
    void *work = nd_work_alloc(len, sizeof(double));
    PyObject *lam = work ? nd_empty(NPY_DOUBLE, 3, G, H, p) : NULL, *suf = lam ? nd_empty(NPY_DOUBLE, 2, G, H) : NULL;
    PyObject *u1 = suf ? nd_empty(NPY_DOUBLE, 2, G, H) : NULL, *u2 = u1 ? nd_empty(NPY_DOUBLE, 2, G, H) : NULL;
    PyObject *res = NULL;
    if (!u2)
        goto done;
    const double *T = PyArray_DATA(a->grams), *gains = PyArray_DATA(a->gains), *ths = PyArray_DATA(a->thresholds);
    double *ld = PyArray_DATA((PyArrayObject *)lam), *sd = PyArray_DATA((PyArrayObject *)suf);
    double *u1d = PyArray_DATA((PyArrayObject *)u1), *u2d = PyArray_DATA((PyArrayObject *)u2);
    int failed = ND_OK;
    Py_BEGIN_ALLOW_THREADS
    for (npy_intp i = 0; i < G && failed == ND_OK; ++i)
        for (npy_intp j = 0; j < H && failed == ND_OK; ++j) {
            nd_rate_design d;
            const npy_intp ij = i * H + j;
            int s = nd_rate_design_compute(a->a, a->b, a->q, a->r, a->act, gains[i], ths[j], &d);
            if (s == ND_OK)
                s = nd_rate_lambda_max(p, T, &d, ld + ij * p, work);
            if (s == ND_OK) {
                sd[ij] = d.sufficient;
                u1d[ij] = d.unstable1;
                u2d[ij] = d.unstable2;
            } else if (G * H == 1 || s != ND_ERR_ARG || strcmp(nd_last_error()->arg, "b") != 0) {
                failed = s;
            } else {
                for (npy_intp mu = 0; mu < p; ++mu)
                    ld[ij * p + mu] = NAN;
                sd[ij] = u1d[ij] = u2d[ij] = NAN;
            }
        }
    Py_END_ALLOW_THREADS
    if (failed != ND_OK) {
        nd_raise_status(failed, "memories_stability");
        goto done;
    }
    res = Py_BuildValue("{sOsOsOsO}", "lambda_max", lam, "sufficient", suf, "unstable1", u1, "unstable2", u2);
done:
    PyMem_RawFree(work);
    Py_XDECREF(lam);
    Py_XDECREF(suf);
    Py_XDECREF(u1);
    Py_XDECREF(u2);
    return res;
}
ND_ENTRY(memories_stability, nd_mem_lambda_args, NULL,
         "memories_stability(grams, a, b, q, overlap, activation, gains, thresholds) -> lambda_max of -I + D^1/2 W "
         "D^1/2 for every memory at every (gain, threshold), and the closed-form conditions")

/* ---- pattern generators --------------------------------------------------------------------- */

typedef struct {
    int kind;
    int64_t p, n;
    double q, r;
    uint64_t seed;
} nd_mem_patterns_args;

static const nd_arg memories_patterns_args[] = {
    ND_CHOICE(nd_mem_patterns_args, kind, "kind", 0, nd_mem_patterns_names),
    ND_SCALAR(nd_mem_patterns_args, p, "P", ND_ARG_INT, 0),
    ND_SCALAR(nd_mem_patterns_args, n, "N", ND_ARG_INT, 0),
    ND_SCALAR(nd_mem_patterns_args, q, "q", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(nd_mem_patterns_args, r, "r", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(nd_mem_patterns_args, seed, "seed", ND_ARG_SEED, ND_OPTIONAL),
    {NULL}};

static void nd_mem_patterns_defaults(nd_mem_patterns_args *a) { a->q = 0.5; }

static PyObject *memories_patterns_body(PyObject *module, void *args, int tn)
{
    nd_mem_patterns_args *a = args;
    if (a->kind == ND_MEM_BALANCED && a->p == 0) {
        int st = nd_memory_balanced_count(a->n, a->q, &a->p);
        if (st != ND_OK)
            return nd_raise_status(st, "memories_patterns");
    }
    if (a->p < 1 || a->n < 1)
        return nd_raise_status(nd_arg_error(a->p < 1 ? "P" : "N", (double)(a->p < 1 ? a->p : a->n), "must be >= 1"),
                               "memories_patterns");
    PyObject *out = nd_empty(NPY_INT8, 2, (npy_intp)a->p, (npy_intp)a->n);
    if (!out)
        return NULL;
    int8_t *od = PyArray_DATA((PyArrayObject *)out);
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = nd_memory_patterns(a->kind, a->p, a->n, a->q, a->r, a->seed, od);
    Py_END_ALLOW_THREADS
    if (st != ND_OK) {
        Py_DECREF(out);
        return nd_raise_status(st, "memories_patterns");
    }
    return out;
}
ND_ENTRY(memories_patterns, nd_mem_patterns_args, nd_mem_patterns_defaults,
         "memories_patterns(kind, P, N, q=0.5, r=0, seed=0) -> int8 [P, N] memories (P=0 with kind='balanced': its "
         "own count)")

static const nd_entry *const nd_memories_entries[] = {
    &memories_states_entry, &memories_activation_entry, &memories_rate_design_entry, &memories_check_patterns_entry,
    &memories_grams_entry, &memories_stability_entry, &memories_patterns_entry, NULL};
static const nd_table nd_memories_tables[] = {{"memory_forms", nd_mem_form_names},
                                              {"memory_activations", nd_mem_act_names},
                                              {"memory_slow_laws", nd_mem_slow_names},
                                              {"memory_patterns", nd_mem_patterns_names},
                                              {NULL, NULL}};
const nd_family nd_memories_family = {nd_memories_entries, nd_memories_tables, NULL};

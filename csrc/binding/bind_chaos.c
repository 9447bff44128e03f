/* Binding of the chaos family (csrc/nd_chaos.h, csrc/nd_flows.h): Lyapunov spectra of a built-in
 * field, a built-in map or Python callables f and jac; the flows' part of a field spec; the
 * built-in maps alone (map_eval, map_jac, map_check); the tables of flow systems, map kinds and
 * QR methods.
 *
 * A Python f and jac see the whole batch at once, all of it at one time: f(t: float, y) with y
 * of y0's shape ((n,) or (B, n)) returns that shape, jac(t, y) returns y.shape + (n,). */
#include "nd_bind.h"

#include <math.h>
#include <string.h>

#include "nd_chaos.h"
#include "nd_flows.h"
#include "nd_status.h"

/* ---- the flows' part of a field spec ---------------------------------------------------------- */

int nd_flows_parse_field(PyObject *acts, PyObject *consts, nd_field *f)
{
    if (PyTuple_GET_SIZE(acts) != 1 || PyTuple_GET_SIZE(consts) < 1)
        return -1;
    if ((f->flow = nd_choice_index(PyTuple_GET_ITEM(acts, 0), "flow", nd_flow_names)) < 0)
        return -1;
    long long dim = PyLong_AsLongLong(PyTuple_GET_ITEM(consts, 0));
    if (dim == -1 && PyErr_Occurred())
        return -1;
    f->dim = (int64_t)dim;
    return nd_parse_params("flow", nd_flow_names[f->flow], nd_flow_param_count(f->flow), consts, 1, f->flow_params);
}

/* ---- built-in maps ---------------------------------------------------------------------------- */

/* ("henon", (a, b)) or ("logistic", (r,)) into g (batch 0). 0, or -1 with an exception. */
static int nd_map_parse(PyObject *spec, nd_map *g)
{
    PyObject *kind, *params;
    memset(g, 0, sizeof *g);
    if (!PyTuple_Check(spec)) {
        PyErr_Format(PyExc_TypeError, "the map must be a neurodyn.chaos map, got %s", Py_TYPE(spec)->tp_name);
        return -1;
    }
    if (!PyArg_ParseTuple(spec, "OO!;a map spec is (kind, params)", &kind, &PyTuple_Type, &params))
        return -1;
    if ((g->kind = nd_choice_index(kind, "map", nd_map_names)) < 0)
        return -1;
    if (nd_parse_params("map", nd_map_names[g->kind], nd_map_param_count(g->kind), params, 0, g->params) < 0)
        return -1;
    g->dim = nd_map_dim(g->kind);
    return nd_status_check(nd_map_check(g), "map");
}

/* The states of y as a batch of the map's states: its last axis must be the map's dim. */
static int nd_map_bind(nd_map *g, PyArrayObject *y, const char *name)
{
    if (nd_check_last_axis(y, name, g->dim, "map") < 0)
        return -1;
    g->batch = (int64_t)(PyArray_SIZE(y) / g->dim);
    return 0;
}

typedef struct {
    PyObject *map, *out;
    PyArrayObject *y;
    int jac;
    int64_t dim;
    nd_map g;
} nd_map_args;
#define A nd_map_args

static void nd_map_jac_default(A *a) { a->jac = 1; }

/* The map, for the states y when given, and its state size. */
static int nd_map_setup(A *a)
{
    if (nd_map_parse(a->map, &a->g) < 0 || (a->y && nd_map_bind(&a->g, a->y, "y") < 0))
        return -1;
    a->dim = a->g.dim;
    return ND_OK;
}
#define ND_MAP_ROWS ND_OBJ(A, map, "map", ND_ARG_OBJECT, 0), ND_IN(A, y, "y", ND_TYPE | ND_FINITE, NULL), \
    ND_CHECK(nd_map_setup), ND_DIM(A, dim, "dim")

/* g(y) (jac 0) or its Jacobian y.shape + (dim,) (jac 1) at every state of y. */
#define ND_MAP_AT(a)                                                                                   \
    ((a)->jac ? ND_DISPATCH(tn, nd_map_jac, &(a)->g, 0.0, ND_DATA((a)->y), ND_DATA((a)->out))           \
              : ND_DISPATCH(tn, nd_map_eval, &(a)->g, 0.0, ND_DATA((a)->y), ND_DATA((a)->out)))

static const nd_arg map_eval_args[] = {ND_MAP_ROWS, ND_OUT(A, out, "y", 0, "(*y)"), {NULL}};
ND_KERNEL_ENTRY(map_eval, A, NULL, ND_MAP_AT(a), "map_eval(map, y) -> the built-in map's image of every state of y")

static const nd_arg map_jac_args[] = {ND_MAP_ROWS, ND_OUT(A, out, "J", 0, "(*y, dim)"), {NULL}};
ND_KERNEL_ENTRY(map_jac, A, nd_map_jac_default, ND_MAP_AT(a),
                "map_jac(map, y) -> J, y.shape + (dim,): the built-in map's Jacobian")

static const nd_arg map_check_args[] = {ND_OBJ(A, map, "map", ND_ARG_OBJECT, 0), ND_CHECK(nd_map_setup),
                                        ND_OUT_INT(A, dim, "dim"), {NULL}};
ND_CHECK_ENTRY(map_check, A, NULL, "map_check(map) -> the state size: raises for a malformed map")
#undef A

/* ---- Python callbacks --------------------------------------------------------------------------- */

/* f and jac (the result + (n,)) see the whole batch y, of y0's shape, at one time. */
typedef struct {
    nd_pyfn f, jac;
    nd_pyargs py; /* no extra arguments: argv holds t and y */
} nd_chaos_call;

#define ND_CHAOS_PY(T, SFX)                                                                            \
    static int nd_chaos_py_f_##SFX(void *c, double t, const T *y, T *out)                               \
    {                                                                                                  \
        return nd_pyfn_call(&((nd_chaos_call *)c)->f, t, y, out);                                      \
    }                                                                                                  \
    static int nd_chaos_py_jac_##SFX(void *c, double t, const T *y, T *J)                               \
    {                                                                                                  \
        return nd_pyfn_call(&((nd_chaos_call *)c)->jac, t, y, J);                                      \
    }
ND_CHAOS_PY(float, f32)
ND_CHAOS_PY(double, f64)

/* ---- lyapunov ------------------------------------------------------------------------------------ */

typedef struct {
    PyObject *f, *jac, *res[3]; /* exps, div, y_end */
    PyArrayObject *y0;
    int map;
    int64_t n_exponents, B, n, k;
    int k_given;
    nd_lyap_opts o; /* the kernel's options: its defaults are the keywords' */
} nd_lyap_args;

static void nd_lyap_defaults(nd_lyap_args *a)
{
    nd_lyap_opts_default(&a->o);
    a->map = 0, a->n_exponents = 0, a->k_given = 0;
}

/* A 1-d y0 is one sample (B = 1); k exponents of n (None: all of them). */
static int nd_lyap_sizes(nd_lyap_args *a)
{
    const int ndim = PyArray_NDIM(a->y0);
    if (ndim < 1 || ndim > 2)
        return PyErr_Format(PyExc_ValueError, "y0 must have shape (n,) or (B, n), got %d axes", ndim), -1;
    a->B = ndim == 2 ? PyArray_DIM(a->y0, 0) : 1;
    a->k = a->k_given ? a->n_exponents : a->n;
    size_t len; /* the kernel's rule on k, before the outputs are sized by it */
    return nd_lyapunov_workspace_len(a->B, a->n, a->k, &len);
}

static const nd_arg lyapunov_args[] = {
    ND_OBJ(nd_lyap_args, f, "f", ND_ARG_OBJECT, 0),
    ND_IN(nd_lyap_args, y0, "y0", ND_TYPE | ND_FINITE, "(..., n)"),
    ND_OBJ(nd_lyap_args, jac, "jac", ND_ARG_CALLABLE, ND_OPTIONAL | ND_NONE),
    ND_SCALAR(nd_lyap_args, map, "map", ND_ARG_BOOL, ND_OPTIONAL),
    ND_SCALAR(nd_lyap_args, n_exponents, "n_exponents", ND_ARG_INT,
              ND_OPTIONAL | ND_NONE | ND_GIVEN(nd_lyap_args, k_given)),
    ND_OPTION(nd_lyap_args, o, t0, ND_ARG_DOUBLE), ND_OPTION(nd_lyap_args, o, dt, ND_ARG_DOUBLE),
    ND_OPTION(nd_lyap_args, o, t_transient, ND_ARG_DOUBLE), ND_OPTION(nd_lyap_args, o, t_total, ND_ARG_DOUBLE),
    ND_OPTION(nd_lyap_args, o, orth_every, ND_ARG_INT), ND_CHOICE(nd_lyap_args, o.qr, "qr", ND_OPTIONAL, nd_qr_names),
    ND_OPTION(nd_lyap_args, o, tol, ND_ARG_DOUBLE), ND_OPTION(nd_lyap_args, o, check_every, ND_ARG_INT),
    ND_DIM(nd_lyap_args, n, "n"), ND_CHECK(nd_lyap_sizes), ND_DIM(nd_lyap_args, B, "B"), ND_DIM(nd_lyap_args, k, "k"),
    ND_OUT_T(nd_lyap_args, res[0], "exps", 0, "(B, k)", NPY_DOUBLE), ND_OUT_T(nd_lyap_args, res[1], "div", 0, "(B,)", NPY_DOUBLE),
    ND_OUT(nd_lyap_args, res[2], "y_end", 0, "(B, n)"), {NULL}};

/* -> (exps [B, k], div [B], y_end [B, n], info dict); a 1-d y0 is one sample (B = 1). */
static PyObject *lyapunov_body(PyObject *module, void *args, int tn)
{
    nd_lyap_args *a = args;
    const int is_py = PyCallable_Check(a->f) && !PyTuple_Check(a->f);
    if (!is_py && a->jac)
        return PyErr_Format(PyExc_TypeError, "jac is for a callable f: a built-in field or map has its own Jacobian");
    if (is_py && !a->jac)
        return PyErr_Format(PyExc_TypeError, "a callable f needs jac=, its Jacobian jac(t, y) -> y.shape + (n,)");
    const int64_t n = a->n, B = a->B, k = a->k;
    const size_t item = (size_t)PyArray_ITEMSIZE(a->y0);
    nd_lyap_opts o = a->o;
    if (a->map)
        o.dt = 1.0; /* one iterate per step */

    nd_chaos_call c = {0};
    nd_field field;
    nd_map g;
    void *ctx = NULL, *work = NULL, *fwork = NULL;
    PyObject *keep = NULL, *info = NULL, *res = NULL;
    size_t len = 0;
    int st;
    if (is_py) {
        nd_pyfn_init(&c.f, a->f, "f(t, y)", "the shape of y", &c.py, a->y0, 0, 0);
        nd_pyfn_init(&c.jac, a->jac, "jac(t, y)", "y.shape + (n,)", &c.py, a->y0, 1, n);
        if (nd_pyargs_init(&c.py, NULL, tn, NULL) < 0)
            goto done;
        ctx = &c;
    } else if (a->map) {
        if (nd_map_parse(a->f, &g) < 0 || nd_map_bind(&g, a->y0, "y0") < 0)
            goto done;
        ctx = &g;
    } else {
        if (!(keep = PyList_New(0)) || nd_parse_field_for_jac(a->f, tn, a->y0, "y0", B, &field, keep, &fwork) < 0)
            goto done;
        ctx = &field;
    }
    if ((st = nd_lyap_check_opts(&o, a->map)) != ND_OK || (st = nd_lyapunov_workspace_len(B, n, k, &len)) != ND_OK) {
        nd_raise_status(st, "lyapunov_spectrum");
        goto done;
    }
    if (!(work = nd_work_alloc(len, item)))
        goto done;
    nd_lyap_info inf;
    void *y0 = PyArray_DATA(a->y0), *ye = ND_DATA(a->res[2]);
    double *ex = ND_DATA(a->res[0]), *dv = ND_DATA(a->res[1]);
    Py_BEGIN_ALLOW_THREADS
    if (tn == NPY_FLOAT) {
        nd_lyap_system_f32 sys = {a->map, is_py ? nd_chaos_py_f_f32 : a->map ? nd_map_eval_f32 : nd_field_eval_f32,
                                  is_py ? nd_chaos_py_jac_f32 : a->map ? nd_map_jac_f32 : nd_field_jac_f32, ctx};
        st = nd_lyapunov_f32(&sys, &o, B, n, k, y0, ex, dv, ye, &inf, work, len);
    } else {
        nd_lyap_system_f64 sys = {a->map, is_py ? nd_chaos_py_f_f64 : a->map ? nd_map_eval_f64 : nd_field_eval_f64,
                                  is_py ? nd_chaos_py_jac_f64 : a->map ? nd_map_jac_f64 : nd_field_jac_f64, ctx};
        st = nd_lyapunov_f64(&sys, &o, B, n, k, y0, ex, dv, ye, &inf, work, len);
    }
    Py_END_ALLOW_THREADS
    if (nd_pyargs_raise(&c.py, st, "lyapunov_spectrum"))
        goto done;
    if (st == ND_ERR_NONFINITE || st == ND_ERR_SINGULAR) {
        PyObject *msg = PyUnicode_FromString(st == ND_ERR_NONFINITE
                                                 ? "lyapunov_spectrum: the state or a tangent vector became NaN or inf "
                                                   "(the orbit escapes, or dt is too large for RK4)"
                                                 : "lyapunov_spectrum: the tangent vectors lost their rank (a Jacobian "
                                                   "is singular along the orbit; ask for fewer exponents)");
        nd_raise_integration(module, msg, Py_BuildValue("{s:s}", "status", st == ND_ERR_NONFINITE ? "nonfinite" : "singular"));
        goto done;
    }
    if (st != ND_OK) {
        nd_raise_status(st, "lyapunov_spectrum");
        goto done;
    }
    info = Py_BuildValue("{s:L,s:d,s:d,s:O,s:L,s:L}", "steps", (long long)inf.steps, "t_accum", inf.t_accum, "change",
                         inf.change, "converged", inf.converged ? Py_True : Py_False, "nfev", (long long)inf.nfev,
                         "njev", (long long)inf.njev);
    if (info)
        res = PyTuple_Pack(4, a->res[0], a->res[1], a->res[2], info);
done:
    nd_pyargs_free(&c.py);
    PyMem_RawFree(work);
    PyMem_RawFree(fwork);
    nd_xdecref(2, keep, info);
    return res;
}
ND_ENTRY(lyapunov, nd_lyap_args, nd_lyap_defaults,
         "lyapunov(f, y0, jac=None, map=False, n_exponents=None, t0, dt, t_transient, t_total, orth_every, qr, tol, "
         "check_every) -> (exps [B, k], div [B], y_end [B, n], info): the QR method on a built-in field, a built-in "
         "map or Python callables f and jac")

static const nd_table nd_chaos_tables[] = {{"flow_systems", nd_flow_names},
                                           {"map_kinds", nd_map_names},
                                           {"qr_methods", nd_qr_names},
                                           {NULL, NULL}};
ND_FAMILY(nd_chaos_family, nd_chaos_tables, &lyapunov_entry, &map_eval_entry, &map_jac_entry, &map_check_entry);

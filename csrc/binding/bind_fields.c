/* Binding of the built-in vector fields (csrc/nd_fields.h): the spec neurodyn.fields builds,
 * turned into an nd_field with its parameters converted to the state's type and checked (the
 * rest of the rules are nd_field_check's), and the entry points of a field alone: field_eval,
 * field_jac and field_check; the kinds' names as _core.TABLES["field_kinds"]. */
#include "nd_bind.h"

#include <math.h>
#include <string.h>

#include "nd_nn.h"
#include "nd_status.h"

static int nd_field_parse_linear(nd_bound_field *bf, PyObject *params, int typenum)
{
    nd_field *f = &bf->f;
    npy_intp sq[2] = {-1, -1};
    PyArrayObject *A = nd_keep_param(bf->keep, PyTuple_GET_ITEM(params, 0), typenum, 2, sq, "A", "(n, n)");
    if (!A)
        return -1;
    sq[0] = sq[1] = PyArray_DIM(A, 0);
    if (nd_check_shape(A, "A", 2, sq, "(n, n), a square matrix") < 0)
        return -1;
    f->A = PyArray_DATA(A);
    f->dim = sq[0];
    PyArrayObject *ba = nd_keep_item(bf->keep, params, 1, typenum, 1, sq, "b", "(n,) with the n of A", 1, "field");
    if (!ba && PyErr_Occurred())
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
        PyArrayObject *w = nd_keep_param(bf->keep, PyTuple_GET_ITEM(params, 2 * l), typenum, 2, wd, wname, axes);
        if (!w)
            return -1;
        f->weights[l] = PyArray_DATA(w);
        f->widths[l] = PyArray_DIM(w, 0);
        f->widths[l + 1] = PyArray_DIM(w, 1);
        npy_intp bd[1] = {(npy_intp)f->widths[l + 1]};
        PyArrayObject *ba = nd_keep_item(bf->keep, params, 2 * l + 1, typenum, 1, bd, bname, "(width,)", 1, "field");
        if (!ba && PyErr_Occurred())
            return -1;
        f->biases[l] = ba ? PyArray_DATA(ba) : NULL;
        f->acts[l] = act[l == L - 1];
    }
    f->dim = f->widths[0];
    return 0;
}

static int nd_field_parse_poly(nd_bound_field *bf, PyObject *params, int typenum)
{
    nd_field *f = &bf->f;
    PyArrayObject *pw = nd_keep_param(bf->keep, PyTuple_GET_ITEM(params, 2), NPY_INT64, 2, NULL, "powers", "(terms, dim)");
    if (!pw)
        return -1;
    const npy_intp kd[1] = {PyArray_DIM(pw, 0)};
    PyArrayObject *tg = nd_keep_param(bf->keep, PyTuple_GET_ITEM(params, 1), NPY_INT64, 1, kd, "target", "(terms,)");
    PyArrayObject *cf = tg ? nd_keep_param(bf->keep, PyTuple_GET_ITEM(params, 0), typenum, 1, kd, "coef", "(terms,)") : NULL;
    if (!cf)
        return -1;
    f->powers = PyArray_DATA(pw);
    f->target = PyArray_DATA(tg);
    f->coef = PyArray_DATA(cf);
    f->n_terms = kd[0];
    f->dim = PyArray_DIM(pw, 1);
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
    case ND_FIELD_LINEAR: rc = PyTuple_GET_SIZE(params) == 2 ? nd_field_parse_linear(bf, params, typenum) : -1; break;
    case ND_FIELD_LORENZ: rc = nd_field_parse_lorenz(bf, consts); break;
    case ND_FIELD_MLP: rc = nd_field_parse_mlp(bf, params, acts, typenum); break;
    case ND_FIELD_POLY: rc = PyTuple_GET_SIZE(params) == 3 ? nd_field_parse_poly(bf, params, typenum) : -1; break;
    case ND_FIELD_MEMORY: rc = nd_memories_parse_field(params, acts, consts, typenum, &bf->f, bf->keep); break;
    case ND_FIELD_HYBRID: rc = nd_hybrid_parse_field(params, acts, consts, typenum, &bf->f, bf->keep); break;
    case ND_FIELD_FLOW: rc = nd_flows_parse_field(acts, consts, &bf->f); break;
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

int nd_bind_field_rows(nd_field *f, PyArrayObject *y, const char *name, int64_t rows)
{
    if (nd_check_last_axis(y, name, f->dim, "field") < 0)
        return -1;
    f->batch = rows;
    const int st = nd_field_check(f);
    return st == ND_OK ? 0 : (nd_raise_status(st, "field"), -1);
}

int nd_field_bind(nd_bound_field *bf, PyArrayObject *state, const char *name, int keep_slots, int jac)
{
    nd_field *f = &bf->f;
    f->keep_slots = keep_slots;
    if (nd_bind_field_rows(f, state, name, f->dim ? (int64_t)(PyArray_SIZE(state) / f->dim) : 0) < 0)
        return -1;
    size_t len;
    const int st = jac ? nd_field_jac_workspace_len(f, &len) : nd_field_workspace_len(f, &len);
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

int nd_parse_field_for_jac(PyObject *spec, int typenum, PyArrayObject *y, const char *name, int64_t rows,
                           nd_field *f, PyObject *keep, void **work)
{
    size_t len;
    int st;
    if (nd_parse_field(spec, typenum, f, keep) < 0 || nd_bind_field_rows(f, y, name, rows) < 0)
        return -1;
    if ((st = nd_field_jac_workspace_len(f, &len)) != ND_OK)
        return nd_raise_status(st, "vector field"), -1;
    if (!(*work = nd_work_alloc(len, (size_t)PyArray_ITEMSIZE(y))))
        return -1;
    f->work = *work;
    return 0;
}

/* ---- a field alone ---------------------------------------------------------------------- */

typedef struct {
    PyObject *field, *out;
    double t;
    PyArrayObject *y;
    int jac;
    int64_t dim;
    nd_bound_field bf;
} nd_field_args;
#define F nd_field_args

static void nd_field_jac_default(F *a) { a->jac = 1; }

/* The field for the states y (float64 without them), and the state size. */
static int nd_field_setup(F *a)
{
    if (!isfinite(a->t))
        return PyErr_Format(PyExc_ValueError, "t must be finite, got %s", isnan(a->t) ? "nan" : a->t > 0 ? "inf" : "-inf"), -1;
    if (nd_field_parse(&a->bf, a->field, a->y ? PyArray_TYPE(a->y) : NPY_DOUBLE) < 0 ||
        (a->y && nd_field_bind(&a->bf, a->y, "y", 0, a->jac) < 0))
        return -1;
    a->dim = a->bf.f.dim;
    return ND_OK;
}
#define ND_FIELD_ROWS ND_CHECK(nd_field_setup), ND_KEEP(F, bf.keep), ND_WORK(F, bf.work), ND_DIM(F, dim, "dim")

/* dy = f(t, y) (jac 0) or J = df/dy of shape y.shape + (dim,) (jac 1) at every state of y. */
#define ND_FIELD_AT(a)                                                                                          \
    ((a)->jac ? ND_DISPATCH(tn, nd_field_jac, &(a)->bf.f, (a)->t, ND_DATA((a)->y), ND_DATA((a)->out))           \
              : ND_DISPATCH(tn, nd_field_eval, &(a)->bf.f, (a)->t, ND_DATA((a)->y), ND_DATA((a)->out)))
#define ND_FIELD_ARGS                                                                                           \
    ND_SCALAR(F, field, "field", ND_ARG_OBJECT, 0), ND_SCALAR(F, t, "t", ND_ARG_DOUBLE, 0),                    \
        ND_IN(F, y, "y", ND_TYPE | ND_FINITE, NULL), ND_FIELD_ROWS

static const nd_arg field_eval_args[] = {ND_FIELD_ARGS, ND_OUT(F, out, "dy", 0, "(*y)"), {NULL}};
ND_KERNEL_ENTRY(field_eval, F, NULL, ND_FIELD_AT(a), "field_eval(field, t, y) -> dy: the built-in field at (t, y)")

static const nd_arg field_jac_args[] = {ND_FIELD_ARGS, ND_OUT(F, out, "J", 0, "(*y, dim)"), {NULL}};
ND_KERNEL_ENTRY(field_jac, F, nd_field_jac_default, ND_FIELD_AT(a),
                "field_jac(field, t, y) -> J, y.shape + (dim,): the Jacobian df/dy of a built-in field at each row "
                "of y")

static const nd_arg field_check_args[] = {ND_SCALAR(F, field, "field", ND_ARG_OBJECT, 0), ND_FIELD_ROWS,
                                          ND_OUT_INT(F, dim, "dim"), {NULL}};
ND_CHECK_ENTRY(field_check, F, NULL, "field_check(field) -> the state size: raises as the solvers would for a malformed "
               "field")
#undef F

static const nd_entry *const nd_fields_entries[] = {&field_eval_entry, &field_jac_entry, &field_check_entry, NULL};
static const nd_table nd_fields_tables[] = {{"field_kinds", nd_field_kind_names}, {NULL, NULL}};
const nd_family nd_fields_family = {nd_fields_entries, nd_fields_tables, NULL};

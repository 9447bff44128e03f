/* Binding of the built-in vector fields (csrc/nd_fields.h): the spec neurodyn.fields builds,
 * turned into an nd_field with its parameters converted to the state's type and checked (the
 * rest of the rules are nd_field_check's), and the entry points of a field alone: field_eval,
 * field_jac and field_check; the kinds' names as _core.TABLES["field_kinds"]. */
#include "nd_bind.h"

#include <math.h>
#include <string.h>

#include "nd_nn.h"
#include "nd_status.h"

/* The parameters of each kind: Linear (A, b or None); an MLP's (weights, biases or None) per
 * layer, chained from width[0] = dim; Polynomial (coef, target, powers) with one term a row. */
#define F nd_field
static const nd_item nd_linear_items[] = {ND_ITEM(F, A, "A", 0, "(n, n) a square matrix"),
                                          ND_ITEM(F, b, "b", ND_NONE, "(n,)"), {NULL}};
static const nd_item nd_mlp_items[] = {ND_ITEM(F, weights, "weights[l]", ND_REPEAT, "(width[l], width[l+1])"),
                                       ND_ITEM(F, biases, "biases[l]", ND_REPEAT | ND_NONE, "(width[l+1],)"), {NULL}};
static const nd_item nd_poly_items[] = {ND_ITEM(F, coef, "coef", 0, "(terms,)"),
                                        ND_ITEM_T(F, target, "target", 0, "(terms,)", NPY_INT64),
                                        ND_ITEM_T(F, powers, "powers", 0, "(terms, dim)", NPY_INT64), {NULL}};
#undef F

/* The n parameter arrays of params by the rows (an MLP's `count` layers); f->dim is the size of
 * the dimension dim, and the layers' widths and terms those the kernel reads. */
static int nd_field_walk(nd_bound_field *bf, PyObject *params, int typenum, const nd_item *rows, int count, Py_ssize_t n,
                         const char *dim)
{
    nd_spec s;
    nd_field *f = &bf->f;
    if (PyTuple_GET_SIZE(params) != n || nd_spec_init(&s, params, typenum, bf->keep, "field") < 0 ||
        nd_spec_walk(&s, rows, count, f) < 0)
        return -1;
    if (count)
        nd_spec_widths(&s, count + 1, f->widths);
    f->dim = nd_spec_size(&s, dim);
    f->n_terms = rows == nd_poly_items ? nd_spec_size(&s, "terms") : 0;
    return 0;
}

static int nd_field_parse_lorenz(nd_bound_field *bf, PyObject *consts)
{
    static const char *const names[3] = {"sigma", "rho", "beta"};
    double *out[3] = {&bf->f.sigma, &bf->f.rho, &bf->f.beta};
    if (PyTuple_GET_SIZE(consts) != 3)
        return -1;
    for (int i = 0; i < 3; ++i)
        if (nd_parse_double(names[i], PyTuple_GET_ITEM(consts, i), out[i]) < 0)
            return -1;
    bf->f.dim = 3;
    return 0;
}

static int nd_field_parse_mlp(nd_bound_field *bf, PyObject *params, PyObject *acts, int typenum)
{
    nd_field *f = &bf->f;
    const Py_ssize_t L = PyTuple_GET_SIZE(params) / 2;
    int act[2];
    if (PyTuple_GET_SIZE(acts) != 2)
        return -1;
    for (int i = 0; i < 2; ++i)
        if ((act[i] = nd_choice_index(PyTuple_GET_ITEM(acts, i), i ? "final_activation" : "activation",
                                      nd_act_names)) < 0)
            return -1;
    f->n_layers = L > (1 << 30) ? 1 << 30 : (int)L;
    if (L < 1 || L > ND_FIELD_MAX_LAYERS) { /* the kernel's rule on the layer count */
        nd_raise_status(nd_field_check(f), "field");
        return -1;
    }
    for (Py_ssize_t l = 0; l < L; ++l)
        f->acts[l] = act[l == L - 1];
    if (nd_field_walk(bf, params, typenum, nd_mlp_items, (int)L, 2 * L, "width[0]") < 0)
        return -1;
    /* the transposed kernels, kept with the parameters */
    void *wt = nd_keep_block(bf->keep, nd_field_prepared_len(f) * (typenum == NPY_FLOAT ? 4 : 8));
    if (!wt)
        return -1;
    ND_DISPATCH(typenum, nd_field_prepare, f, wt);
    return 0;
}

int nd_field_parse(nd_bound_field *bf, PyObject *spec, int typenum)
{
    memset(bf, 0, sizeof *bf);
    PyObject *kind, *params, *acts, *consts;
    if (!PyTuple_Check(spec) || !PyArg_ParseTuple(spec, "OO!O!O!;a field spec is (kind, params, activations, constants)",
                                                  &kind, &PyTuple_Type, &params, &PyTuple_Type, &acts, &PyTuple_Type,
                                                  &consts)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "f must be callable or a neurodyn.fields vector field");
        return -1;
    }
    if ((bf->f.kind = nd_choice_index(kind, "field kind", nd_field_kind_names)) < 0 || !(bf->keep = PyList_New(0)))
        return -1;
    int rc = -1;
    switch (bf->f.kind) {
    case ND_FIELD_LINEAR: rc = nd_field_walk(bf, params, typenum, nd_linear_items, 0, 2, "n"); break;
    case ND_FIELD_LORENZ: rc = nd_field_parse_lorenz(bf, consts); break;
    case ND_FIELD_MLP: rc = nd_field_parse_mlp(bf, params, acts, typenum); break;
    case ND_FIELD_POLY: rc = nd_field_walk(bf, params, typenum, nd_poly_items, 0, 3, "dim"); break;
    case ND_FIELD_MEMORY: rc = nd_memories_parse_field(params, acts, consts, typenum, &bf->f, bf->keep); break;
    case ND_FIELD_HYBRID: rc = nd_hybrid_parse_field(params, acts, consts, typenum, &bf->f, bf->keep); break;
    case ND_FIELD_FLOW: rc = nd_flows_parse_field(acts, consts, &bf->f); break;
    default: break; /* RELAX holds per-state parameters: not a field of neurodyn.fields */
    }
    if (rc == 0)
        rc = nd_status_check(nd_field_check(&bf->f), "field");
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
    return nd_status_check(nd_field_check(f), "field");
}

int nd_field_bind(nd_bound_field *bf, PyArrayObject *state, const char *name, int keep_slots, int jac)
{
    nd_field *f = &bf->f;
    f->keep_slots = keep_slots;
    if (nd_bind_field_rows(f, state, name, f->dim ? (int64_t)(PyArray_SIZE(state) / f->dim) : 0) < 0)
        return -1;
    size_t len;
    PyMem_RawFree(bf->work);
    f->work = bf->work = nd_workspace(jac ? nd_field_jac_workspace_len(f, &len) : nd_field_workspace_len(f, &len), &len,
                                      PyArray_ITEMSIZE(state), "field");
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

int nd_parse_field_of(PyObject *spec, int typenum, int kind, const char *what, nd_field *f, PyObject *keep)
{
    if (!PyTuple_Check(spec))
        return PyErr_Format(PyExc_TypeError, "spec must be %s's spec tuple, got %s", what, Py_TYPE(spec)->tp_name), -1;
    if (nd_parse_field(spec, typenum, f, keep) < 0)
        return -1;
    if (f->kind != kind)
        return PyErr_Format(PyExc_ValueError, "spec must be %s's, not a '%s' field", what, nd_field_kind_names[f->kind]), -1;
    return 0;
}

int nd_parse_field_for_jac(PyObject *spec, int typenum, PyArrayObject *y, const char *name, int64_t rows,
                           nd_field *f, PyObject *keep, void **work)
{
    size_t len;
    if (nd_parse_field(spec, typenum, f, keep) < 0 || nd_bind_field_rows(f, y, name, rows) < 0 ||
        !(*work = nd_workspace(nd_field_jac_workspace_len(f, &len), &len, PyArray_ITEMSIZE(y), "vector field")))
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

static const nd_table nd_fields_tables[] = {{"field_kinds", nd_field_kind_names}, {NULL, NULL}};
ND_FAMILY(nd_fields_family, nd_fields_tables, &field_eval_entry, &field_jac_entry, &field_check_entry);

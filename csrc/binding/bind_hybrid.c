/* Binding of the hybrid energy family (docs/models.md §11): energies, gradients, Hessians, the
 * fields' Jacobians and VJPs, the certificate and the stability test, and the parser of the
 * ND_FIELD_HYBRID built-in field that odeint and field_eval read.
 *
 * A hybrid spec is the field spec of neurodyn.hybrid: (kind, params, names, consts) with
 *   model:  names = ("model", form, act_0, act_1, ...), consts = (beta, power, guarantee, inputs),
 *           params = (b1, kernel_0, bias_0, ..., A, L, G, u_t, u) (None where absent);
 *   system: names = ("system", kind), consts = (d, width, gamma, omega, radius, rotation, alpha,
 *           cubic, delta), params = (centres, depths) (None for the systems without wells). */
#include "nd_bind.h"

#include <string.h>

#include "nd_fields.h"
#include "nd_hybrid.h"
#include "nd_status.h"

/* The family's code tables, as Python reads them (_core.TABLES). */
static const nd_table nd_hybrid_tables[] = {{"hybrid_activations", nd_hybrid_act_names},
                                            {"hybrid_forms", nd_hybrid_form_names},
                                            {"hybrid_systems", nd_hybrid_system_names},
                                            {NULL}};

/* A model's parameters: b1, the layers' (kernel, bias), then the port-Hamiltonian parts A, L
 * and G and the input signal u(t) (times as float64, values of the state's type), None where
 * absent. The layers chain from width[0] = d; pairs and triangle are the lengths of A's strict
 * upper and L's lower part. */
#define H nd_hybrid
static const nd_item nd_hybrid_b1[] = {ND_ITEM(H, b1, "b1", 0, "(d,)"), {NULL}};
static const nd_item nd_hybrid_layers[] = {ND_ITEM(H, kernels, "kernels[l]", ND_REPEAT, "(width[l], width[l+1])"),
                                           ND_ITEM(H, biases, "biases[l]", ND_REPEAT, "(width[l+1],)"), {NULL}};
static const nd_item nd_hybrid_port[] = {
    ND_ITEM(H, A, "A", ND_NONE, "(pairs,) d (d - 1) / 2 entries"),
    ND_ITEM(H, L, "L", ND_NONE, "(triangle,) d (d + 1) / 2 entries"), ND_ITEM(H, G, "G", ND_NONE, "(d, inputs)"),
    ND_ITEM_T(H, u_t, "u_t", ND_NONE, "(knots,)", NPY_DOUBLE), ND_ITEM(H, u, "u", ND_NONE, "(knots, rows, inputs)"),
    {NULL}};
#undef H

/* acts[l] for the names of the L layers, items first.. of the list or tuple seq. 0 or -1. */
static int nd_hybrid_acts(PyObject *seq, Py_ssize_t first, Py_ssize_t L, int *acts)
{
    char name[48];
    for (Py_ssize_t l = 0; l < L; ++l) {
        snprintf(name, sizeof name, "activations[%zd]", l);
        if ((acts[l] = nd_choice_index(PySequence_Fast_GET_ITEM(seq, first + l), name, nd_hybrid_act_names)) < 0)
            return -1;
    }
    return 0;
}

/* "<name> must be given" when need and not p. */
static int nd_hybrid_need(int need, const void *p, const char *name)
{
    return need && !p ? (PyErr_Format(PyExc_ValueError, "%s must be given", name), -1) : 0;
}

static int nd_hybrid_parse_model(PyObject *params, PyObject *names, PyObject *consts, int tn, nd_hybrid *h,
                                 PyObject *keep)
{
    nd_hybrid_default(h);
    const Py_ssize_t L = PyTuple_GET_SIZE(names) - 2;
    long long inputs;
    nd_spec s;
    if (L < 1 || L > ND_HYBRID_MAX_LAYERS || PyTuple_GET_SIZE(params) != 2 * L + 6 ||
        !PyArg_ParseTuple(consts, "ddpL;hybrid constants", &h->beta, &h->power, &h->guarantee, &inputs)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "malformed hybrid spec");
        return -1;
    }
    h->inputs = inputs;
    h->n_layers = (int)L;
    if ((h->form = nd_choice_index(PyTuple_GET_ITEM(names, 1), "form", nd_hybrid_form_names)) < 0 ||
        nd_hybrid_acts(names, 2, L, h->acts) < 0 || nd_spec_init(&s, params, tn, keep, "hybrid") < 0 ||
        nd_spec_walk(&s, nd_hybrid_b1, 0, h) < 0)
        return -1;
    const int64_t d = h->dim = nd_spec_size(&s, "d");
    if (nd_spec_bind(&s, "width[0]", d, "b1") < 0 || nd_spec_walk(&s, nd_hybrid_layers, (int)L, h) < 0 ||
        nd_spec_bind(&s, "pairs", d * (d - 1) / 2, "b1") < 0 || nd_spec_bind(&s, "triangle", d * (d + 1) / 2, "b1") < 0 ||
        nd_spec_bind(&s, "inputs", h->inputs, "the constants") < 0 || nd_spec_walk(&s, nd_hybrid_port, 0, h) < 0)
        return -1;
    nd_spec_widths(&s, (int)L + 1, h->widths);
    const int port = h->form == ND_HYBRID_PORT_HAMILTONIAN;
    if (nd_hybrid_need(port, h->A, "A") < 0 || nd_hybrid_need(port, h->L, "L") < 0 ||
        nd_hybrid_need(port && h->inputs > 0, h->G, "G") < 0)
        return -1;
    if (!h->u_t != !h->u)
        return PyErr_SetString(PyExc_ValueError, "u and u_t must be given together"), -1;
    h->n_knots = h->u ? nd_spec_size(&s, "knots") : 0;
    h->u_rows = h->u ? nd_spec_size(&s, "rows") : 0;
    return nd_status_check(nd_hybrid_check(h, 1), "hybrid model");
}

/* A target system's wells: centres [wells, d] and their depths, or None for the systems without. */
static const nd_item nd_hybrid_wells[] = {
    ND_ITEM_T(nd_hybrid_system, centres, "centres", ND_NONE, "(wells, d)", NPY_DOUBLE),
    ND_ITEM_T(nd_hybrid_system, depths, "depths", ND_NONE, "(wells,)", NPY_DOUBLE), {NULL}};

static int nd_hybrid_parse_system(PyObject *params, PyObject *names, PyObject *consts, nd_hybrid_system *s,
                                  PyObject *keep)
{
    memset(s, 0, sizeof *s);
    long long d;
    nd_spec sp;
    if (PyTuple_GET_SIZE(names) != 2 || PyTuple_GET_SIZE(params) != 2 ||
        !PyArg_ParseTuple(consts, "Ldddddddd;system constants", &d, &s->width, &s->gamma, &s->omega, &s->radius,
                          &s->rotation, &s->alpha, &s->cubic, &s->delta)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "malformed hybrid system spec");
        return -1;
    }
    s->dim = d;
    if ((s->kind = nd_choice_index(PyTuple_GET_ITEM(names, 1), "system", nd_hybrid_system_names)) < 0 ||
        nd_spec_init(&sp, params, NPY_DOUBLE, keep, "hybrid system") < 0 ||
        nd_spec_bind(&sp, "d", d, "the system's constants") < 0 || nd_spec_walk(&sp, nd_hybrid_wells, 0, s) < 0 ||
        nd_hybrid_need(s->centres != NULL, s->depths, "depths") < 0)
        return -1;
    s->n_wells = s->centres ? nd_spec_size(&sp, "wells") : 0;
    s->depths = s->centres ? s->depths : NULL;
    return nd_status_check(nd_hybrid_system_check(s), "hybrid system");
}

int nd_hybrid_parse_field(PyObject *params, PyObject *names, PyObject *consts, int typenum, nd_field *f,
                          PyObject *keep)
{
    if (PyTuple_GET_SIZE(names) < 2) {
        PyErr_SetString(PyExc_ValueError, "malformed hybrid spec");
        return -1;
    }
    nd_hybrid_field *hf = nd_keep_block(keep, sizeof *hf); /* `keep` frees it with the parameters */
    if (!hf)
        return -1;
    PyObject *which = PyTuple_GET_ITEM(names, 0);
    hf->is_system = PyUnicode_Check(which) && PyUnicode_CompareWithASCIIString(which, "system") == 0;
    if (hf->is_system ? nd_hybrid_parse_system(params, names, consts, &hf->system, keep)
                      : nd_hybrid_parse_model(params, names, consts, typenum, &hf->model, keep))
        return -1;
    f->hybrid = hf;
    f->dim = hf->is_system ? hf->system.dim : hf->model.dim;
    return 0;
}

#define ND_HYBRID_SPEC(spec, tn, f, keep) nd_parse_field_of(spec, tn, ND_FIELD_HYBRID, "a hybrid model or system", f, keep)

/* The spec parsed for a batch z [B, d] with its scratch (freed by the caller). */
static void *nd_hybrid_setup(PyObject *spec, PyArrayObject *z, int tn, int model_only, const nd_hybrid_field **out,
                             PyObject *keep)
{
    nd_field f;
    if (ND_HYBRID_SPEC(spec, tn, &f, keep) < 0)
        return NULL;
    const nd_hybrid_field *hf = f.hybrid;
    if (model_only && hf->is_system)
        return PyErr_Format(PyExc_ValueError, "this call needs a hybrid model, not a target system");
    if (nd_check_last_axis(z, "z", f.dim, hf->is_system ? "hybrid system" : "hybrid model") < 0)
        return NULL;
    size_t len;
    *out = hf;
    return nd_workspace(nd_hybrid_field_workspace_len(hf, PyArray_DIM(z, 0), 0, &len), &len, PyArray_ITEMSIZE(z),
                        "hybrid workspace");
}

/* ---- entry points ---------------------------------------------------------------------------- */

typedef struct {
    PyObject *spec, *keep, *o[2];
    PyArrayObject *z, *v;
    double t;
    int grad;
    const nd_hybrid_field *hf;
    int64_t B, inputs, P;
    void *work;
} nd_hyb_args;
#define H nd_hyb_args /* in the tables */

static void nd_hyb_default(H *a) { a->grad = 1; }

/* The spec parsed for z [B, d] (a model's, or for the field's VJP a target system too), its
 * scratch, and the sizes of the outputs. */
static int nd_hyb_setup(H *a, int model_only)
{
    if (!(a->keep = PyList_New(0)) ||
        !(a->work = nd_hybrid_setup(a->spec, a->z, PyArray_TYPE(a->z), model_only, &a->hf, a->keep)))
        return -1;
    a->inputs = a->hf->model.inputs, a->P = nd_hybrid_field_param_count(a->hf);
    return ND_OK;
}
static int nd_hyb_model(H *a) { return nd_hyb_setup(a, 1); }
static int nd_hyb_field(H *a) { return nd_hyb_setup(a, 0); }

enum { ND_HYB_ENERGY, ND_HYB_HVP, ND_HYB_HESSIAN, ND_HYB_VJP, ND_HYB_OUTPUT };

/* The kernel of `op` on the rows of z: energy -> (H [B], grad [B, d] or None); hvp [B, d]; hessian
 * [B, d, d]; field VJP -> (a^T df/dz [B, d], a^T df/dtheta [P]); output [B, inputs]. */
static int nd_hyb_run(PyObject *m, void *args, int tn, int op)
{
    H *a = args;
    const nd_hybrid *h = &a->hf->model;
    void *z = ND_DATA(a->z), *v = ND_DATA(a->v), *o0 = ND_DATA(a->o[0]), *o1 = ND_DATA(a->o[1]), *w = a->work;
    int st = ND_OK;
    if (op == ND_HYB_ENERGY)
        ND_NOGIL(st, ND_DISPATCH(tn, nd_hybrid_energy, h, a->B, z, o0, o1, w));
    else if (op == ND_HYB_HVP)
        ND_NOGIL(st, ND_DISPATCH(tn, nd_hybrid_hvp, h, a->B, z, v, o0, w));
    else if (op == ND_HYB_HESSIAN)
        ND_NOGIL(st, ND_DISPATCH(tn, nd_hybrid_hessian, h, a->B, z, o0, w));
    else if (op == ND_HYB_VJP)
        ND_NOGIL(st, ND_DISPATCH(tn, nd_hybrid_field_run_vjp, a->hf, a->B, a->t, NULL, z, v, o0, o1, 0, w));
    else
        ND_NOGIL(st, ND_DISPATCH(tn, nd_hybrid_output, h, a->B, z, o0, w));
    return st;
}

#define ND_HYB_SPEC_Z ND_SCALAR(H, spec, "spec", ND_ARG_OBJECT, 0), ND_IN(H, z, "z", ND_TYPE | ND_FINITE, "(batch, d)")
#define ND_HYB_ROWS(check) ND_CHECK(check), ND_KEEP(H, keep), ND_WORK(H, work), ND_DIM(H, B, "batch"), \
    ND_DIM(H, inputs, "inputs"), ND_DIM(H, P, "params")

static const nd_arg hybrid_energy_args[] = {
    ND_HYB_SPEC_Z, ND_SCALAR(H, grad, "grad", ND_ARG_BOOL, ND_OPTIONAL), ND_HYB_ROWS(nd_hyb_model),
    ND_OUT(H, o[0], "H", 0, "(batch,)"), ND_OUT(H, o[1], "grad", ND_WHEN(H, grad), "(batch, d)"), {NULL}};
ND_RUN_ENTRY_OF(hybrid_energy, H, nd_hyb_default, nd_hyb_run, ND_HYB_ENERGY,
                "hybrid_energy(spec, z, grad=True) -> (H, grad H or None)")

static const nd_arg hybrid_hvp_args[] = {ND_HYB_SPEC_Z, ND_IN(H, v, "v", ND_FINITE, "(*z)"), ND_HYB_ROWS(nd_hyb_model),
                                         ND_OUT(H, o[0], "hvp", 0, "(batch, d)"), {NULL}};
ND_RUN_ENTRY_OF(hybrid_hvp, H, NULL, nd_hyb_run, ND_HYB_HVP, "hybrid_hvp(spec, z, v) -> Hess H(z) v, row by row")

static const nd_arg hybrid_hessian_args[] = {ND_HYB_SPEC_Z, ND_HYB_ROWS(nd_hyb_model),
                                             ND_OUT(H, o[0], "hessian", 0, "(batch, d, d)"), {NULL}};
ND_RUN_ENTRY_OF(hybrid_hessian, H, NULL, nd_hyb_run, ND_HYB_HESSIAN,
                "hybrid_hessian(spec, z) -> Hessians of H [batch, d, d]")

static const nd_arg hybrid_field_vjp_args[] = {
    ND_HYB_SPEC_Z, ND_IN(H, v, "a", ND_FINITE, "(*z)"), ND_SCALAR(H, t, "t", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_HYB_ROWS(nd_hyb_field), ND_OUT(H, o[0], "dz", 0, "(batch, d)"), ND_OUT(H, o[1], "dtheta", 0, "(params,)"),
    {NULL}};
ND_RUN_ENTRY_OF(hybrid_field_vjp, H, NULL, nd_hyb_run, ND_HYB_VJP,
                "hybrid_field_vjp(spec, z, a, t=0) -> (a^T df/dz, a^T df/dtheta in the flat parameter layout)")

static const nd_arg hybrid_output_args[] = {ND_HYB_SPEC_Z, ND_HYB_ROWS(nd_hyb_model),
                                            ND_OUT(H, o[0], "y", 0, "(batch, inputs)"), {NULL}};
ND_RUN_ENTRY_OF(hybrid_output, H, NULL, nd_hyb_run, ND_HYB_OUTPUT,
                "hybrid_output(spec, z) -> y = G^T grad H(z) [batch, inputs]")

/* ---- the guarantee (float64) ------------------------------------------------------------------ */

/* -> dict: bounded, M2, c1, c0, eq_radius, level, radius (None when not bounded) */
static int nd_hyb_cert_setup(H *a)
{
    nd_field f;
    size_t len;
    if (!(a->keep = PyList_New(0)) || ND_HYBRID_SPEC(a->spec, NPY_DOUBLE, &f, a->keep) < 0)
        return -1;
    if ((a->hf = f.hybrid)->is_system)
        return PyErr_SetString(PyExc_ValueError, "a certificate needs a hybrid model, not a target system"), -1;
    a->work = nd_workspace(nd_hybrid_certificate_workspace_len(&a->hf->model, &len), &len, sizeof(double),
                           "hybrid_certificate");
    return a->work ? ND_OK : -1;
}
static const nd_arg hybrid_certificate_args[] = {ND_SCALAR(H, spec, "spec", ND_ARG_OBJECT, 0),
                                                 ND_CHECK(nd_hyb_cert_setup), ND_KEEP(H, keep), ND_WORK(H, work), {NULL}};

static PyObject *hybrid_certificate_body(PyObject *module, void *args, int tn)
{
    H *a = args;
    nd_hybrid_cert c;
    int st = ND_OK;
    ND_NOGIL(st, nd_hybrid_certificate(&a->hf->model, &c, a->work));
    if (st != ND_OK)
        return nd_raise_status(st, "hybrid_certificate");
    if (c.bounded)
        return Py_BuildValue("{s:O,s:d,s:d,s:d,s:d,s:d,s:d}", "bounded", Py_True, "M2", c.M2, "c1", c.c1, "c0", c.c0,
                             "equilibrium_radius", c.eq_radius, "level", c.level, "radius", c.radius);
    return Py_BuildValue("{s:O,s:O,s:O,s:O,s:O,s:O,s:O}", "bounded", Py_False, "M2", Py_None, "c1", Py_None, "c0",
                         Py_None, "equilibrium_radius", Py_None, "level", Py_None, "radius", Py_None);
}
ND_ENTRY(hybrid_certificate, H, NULL,
         "hybrid_certificate(spec) -> {bounded, M2, c1, c0, equilibrium_radius, level, radius}")

/* The model's checks for the points z, and the stability kernel's workspace. */
static int nd_hyb_stability_setup(H *a)
{
    size_t len;
    if (nd_hyb_model(a) != ND_OK)
        return -1;
    PyMem_RawFree(a->work); /* the checks only */
    a->work = nd_workspace(nd_hybrid_stability_workspace_len(&a->hf->model, a->B, &len), &len, sizeof(double),
                           "hybrid_stability");
    return a->work ? ND_OK : -1;
}

/* -> (lambda_min(I - W21^T Q W21) [B], lambda_min(Hess H) [B]) */
static const nd_arg hybrid_stability_args[] = {
    ND_SCALAR(H, spec, "spec", ND_ARG_OBJECT, 0), ND_F64IN(H, z, "z", ND_FINITE, "(points, d)"),
    ND_DIM(H, B, "points"), ND_CHECK(nd_hyb_stability_setup), ND_KEEP(H, keep), ND_WORK(H, work),
    ND_OUT_T(H, o[0], "lambda_w", 0, "(points,)", NPY_DOUBLE), ND_OUT_T(H, o[1], "lambda_h", 0, "(points,)", NPY_DOUBLE),
    {NULL}};
ND_KERNEL_ENTRY(hybrid_stability, H, NULL,
                nd_hybrid_stability(&a->hf->model, a->B, ND_DATA(a->z), ND_DATA(a->o[0]), ND_DATA(a->o[1]), a->work),
                "hybrid_stability(spec, z) -> (lambda_min(I - W21^T Q W21), lambda_min(Hess H)) at each row of z")
#undef H

/* ---- the configuration's rules, at construction ---------------------------------------------- */

/* The model's options go straight into the kernel's struct: its defaults are _core.DEFAULTS. */
typedef struct {
    int64_t d;
    PyObject *hidden_sizes, *activations;
    nd_hybrid h;
} nd_hyb_check_args;

static void nd_hyb_check_default(nd_hyb_check_args *a) { nd_hybrid_default(&a->h); }


static int nd_hyb_check_rules(const nd_hyb_check_args *a)
{
    nd_hybrid h = a->h;
    PyObject *sizes = PySequence_Fast(a->hidden_sizes, "hidden_sizes must be a sequence of ints");
    PyObject *acts = sizes ? PySequence_Fast(a->activations, "activations must be a sequence of names") : NULL;
    int st = -1;
    if (!acts)
        goto done;
    const Py_ssize_t L = PySequence_Fast_GET_SIZE(sizes);
    if (PySequence_Fast_GET_SIZE(acts) != L) {
        PyErr_Format(PyExc_ValueError, "activations has %zd entries for %zd hidden layers (hidden_sizes)",
                     PySequence_Fast_GET_SIZE(acts), L);
        goto done;
    }
    h.dim = a->d;
    h.n_layers = L > ND_HYBRID_MAX_LAYERS ? ND_HYBRID_MAX_LAYERS + 1 : (int)L;
    h.widths[0] = a->d;
    char name[48];
    for (Py_ssize_t l = 0; l < L && l < ND_HYBRID_MAX_LAYERS; ++l) {
        PyObject *w = PySequence_Fast_GET_ITEM(sizes, l);
        snprintf(name, sizeof name, "hidden_sizes[%zd]", l);
        if (!PyLong_Check(w) || PyBool_Check(w)) {
            PyErr_Format(PyExc_TypeError, "%s must be an int, got %R", name, w);
            goto done;
        }
        h.widths[l + 1] = PyLong_AsLongLong(w);
        if (h.widths[l + 1] == -1 && PyErr_Occurred())
            goto done;
    }
    if (nd_hybrid_acts(acts, 0, L < ND_HYBRID_MAX_LAYERS ? L : ND_HYBRID_MAX_LAYERS, h.acts) == 0)
        st = nd_hybrid_check(&h, 0);
done:
    nd_xdecref(2, sizes, acts);
    return st;
}
static const nd_arg hybrid_check_args[] = {
    ND_SCALAR(nd_hyb_check_args, d, "d", ND_ARG_INT, 0),
    ND_SCALAR(nd_hyb_check_args, hidden_sizes, "hidden_sizes", ND_ARG_OBJECT, 0),
    ND_SCALAR(nd_hyb_check_args, activations, "activations", ND_ARG_OBJECT, 0),
    ND_CHOICE(nd_hyb_check_args, h.form, "form", ND_OPTIONAL, nd_hybrid_form_names),
    ND_OPTION(nd_hyb_check_args, h, inputs, ND_ARG_INT), ND_OPTION(nd_hyb_check_args, h, guarantee, ND_ARG_BOOL),
    ND_OPTION(nd_hyb_check_args, h, beta, ND_ARG_DOUBLE), ND_OPTION(nd_hyb_check_args, h, power, ND_ARG_DOUBLE),
    ND_CHECK(nd_hyb_check_rules), {NULL}};
ND_CHECK_ENTRY(hybrid_check, nd_hyb_check_args, nd_hyb_check_default,
         "hybrid_check(d, hidden_sizes, activations, form='gradient', inputs=0, guarantee=True, beta=1, power=3): "
         "the model's rules")

ND_FAMILY(nd_hybrid_family, nd_hybrid_tables, &hybrid_energy_entry, &hybrid_hvp_entry, &hybrid_hessian_entry,
          &hybrid_field_vjp_entry, &hybrid_output_entry, &hybrid_certificate_entry, &hybrid_stability_entry,
          &hybrid_check_entry);

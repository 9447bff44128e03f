/* Binding of the memories family (docs/models.md §9, §10): the memory networks as built-in
 * fields (parsed here for odeint's field parser too), their energies, overlaps and Jacobians,
 * the firing-rate design and its stability analysis, and pattern generators. */
#include "nd_bind.h"

#include <math.h>
#include <string.h>

#include "nd_fields.h"
#include "nd_memories.h"
#include "nd_status.h"

/* The family's code tables, as Python reads them (_core.TABLES). */
static const nd_table nd_memories_tables[] = {{"memory_forms", nd_mem_form_names},
                                              {"memory_activations", nd_mem_act_names},
                                              {"memory_slow_laws", nd_mem_slow_names},
                                              {"memory_patterns", nd_mem_patterns_names},
                                              {NULL, NULL}};

/* ---- the field spec ----------------------------------------------------------------------- *
 *
 * ("memory", params, acts, consts) as built by neurodyn.memories:
 *   params = (patterns int8 [p, n] or None, input [n] or [p] or None, next int64 [p] or None,
 *             active_start int64 [p + 1] or None, active int32 [count] or None)
 *   acts   = (form, activation, zero_diagonal, input_in_state, slow, n, p)
 *   consts = (gain, threshold, tau, alpha, beta, gamma, kappa, eps, leak) */

/* The arrays, None where absent; an IDP network's input is its saliencies, one per memory. */
#define M nd_memory_field
static const nd_item nd_mem_items[] = {
    ND_ITEM_T(M, patterns, "patterns", ND_NONE, "(p, n)", NPY_INT8), ND_ITEM(M, input, "input", ND_NONE, "(n,) one per unit"),
    ND_ITEM_T(M, next, "sequence", ND_NONE, "(p,) one successor per memory", NPY_INT64),
    ND_ITEM_T(M, active_start, "active_start", ND_NONE, "(p+1,)", NPY_INT64),
    ND_ITEM_T(M, active, "active", ND_NONE, "(count,)", NPY_INT32), {NULL}};
static const nd_item nd_mem_saliencies = ND_ITEM(M, input, "saliencies", ND_NONE, "(p,) one per memory");
#undef M

int nd_memories_parse_field(PyObject *params, PyObject *acts, PyObject *consts, int typenum, nd_field *f, PyObject *keep)
{
    nd_memory_field *m = nd_keep_block(keep, sizeof *m);
    long long n, p;
    nd_spec s;
    nd_item rows[sizeof nd_mem_items / sizeof *nd_mem_items];
    memcpy(rows, nd_mem_items, sizeof rows);
    if (!m || !PyArg_ParseTuple(acts, "iiiiiLL;memory field codes", &m->form, &m->act, &m->zero_diagonal,
                          &m->input_in_state, &m->slow, &n, &p) ||
        !PyArg_ParseTuple(consts, "ddddddddd;memory field constants", &m->gain, &m->threshold, &m->tau,
                          &m->alpha, &m->beta, &m->gamma, &m->kappa, &m->eps, &m->leak))
        return -1;
    m->n = (int64_t)n;
    m->p = (int64_t)p;
    if (m->form == ND_MEM_IDP)
        rows[1] = nd_mem_saliencies;
    if (nd_spec_init(&s, params, typenum, keep, "memory field") < 0 || nd_spec_bind(&s, "p", p, "the network") < 0 ||
        nd_spec_bind(&s, "n", n, "the network") < 0 || nd_spec_bind(&s, "p+1", p + 1, "the network") < 0 ||
        nd_spec_walk(&s, rows, 0, m) < 0)
        return -1;
    if (!m->active_start != !m->active || (m->active && (m->p < 0 || m->active_start[m->p] != nd_spec_size(&s, "count"))))
        return PyErr_SetString(PyExc_ValueError, "active_start and active must be given together, active_start ending "
                               "at the length of active"), -1;
    f->memory = m;
    f->dim = nd_memory_field_dim(m);
    /* the memories' contents once, here; the description again wherever the field is bound */
    int st = nd_memory_field_check(m, f->dim);
    return nd_status_check(st == ND_OK ? nd_memory_field_check_contents(m) : st, "memory field");
}

/* A whole spec, which must be a memory network's, bound to states y [batch, dim]. */
static int nd_mem_spec(PyObject *spec, int typenum, PyArrayObject *y, nd_field *f, PyObject *keep)
{
    if (nd_parse_field_of(spec, typenum, ND_FIELD_MEMORY, "a memory network", f, keep) < 0 ||
        nd_check_last_axis(y, "y", f->dim, "memory network") < 0)
        return -1;
    f->batch = PyArray_DIM(y, 0);
    return 0;
}

/* ---- energies, overlaps, Jacobians of states ------------------------------------------------ */

typedef struct {
    PyObject *spec, *keep, *out;
    PyArrayObject *y;
    double scale;
    int64_t what; /* 0 energy, 1 overlaps */
    nd_field f;
    void *work;
} nd_mem_state_args;
#define M nd_mem_state_args

static void nd_mem_state_defaults(M *a) { a->scale = 1.0; }

/* The memory field for the states y, its workspace, and the output: E [batch] or overlaps [batch, P]. */
static int nd_mem_state_setup(M *a)
{
    size_t len;
    const int tn = PyArray_TYPE(a->y);
    if (a->what < 0 || a->what > 1)
        return PyErr_Format(PyExc_ValueError, "what must be 0 or 1, got %lld", (long long)a->what), -1;
    if (!(a->keep = PyList_New(0)) || nd_mem_spec(a->spec, tn, a->y, &a->f, a->keep) < 0 ||
        !(a->work = nd_workspace(nd_memory_field_workspace_len(a->f.memory, a->f.batch, &len), &len,
                                 PyArray_ITEMSIZE(a->y), "memories")))
        return -1;
    const npy_intp dims[2] = {a->f.batch, (npy_intp)((const nd_memory_field *)a->f.memory)->p};
    a->out = PyArray_SimpleNew((int)a->what + 1, dims, tn);
    return a->out ? ND_OK : -1;
}

static const nd_arg memories_states_args[] = {
    ND_SCALAR(M, spec, "spec", ND_ARG_OBJECT, 0), ND_IN(M, y, "y", ND_TYPE | ND_FINITE, "(batch, d)"),
    ND_SCALAR(M, what, "what", ND_ARG_INT, 0), ND_SCALAR(M, scale, "scale", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_CHECK(nd_mem_state_setup), ND_KEEP(M, keep), ND_WORK(M, work), ND_OUT(M, out, "out", 0, NULL), {NULL}};
ND_KERNEL_ENTRY(memories_states, M, nd_mem_state_defaults,
                a->what == 0 ? ND_DISPATCH(tn, nd_memory_energy, a->f.memory, a->f.batch, ND_DATA(a->y),
                                           ND_DATA(a->out), a->work)
                             : ND_DISPATCH(tn, nd_memory_overlaps, a->f.memory, a->f.batch, ND_DATA(a->y), a->scale,
                                           ND_DATA(a->out), a->work),
                "memories_states(spec, y, what, scale=1) -> energies [batch] (what 0) or overlaps [batch, P] times "
                "scale (what 1) of a memory network's states")
#undef M

/* ---- activations ---------------------------------------------------------------------------- */

typedef struct {
    int act;
    double gain, threshold;
    int64_t what;
    PyArrayObject *x;
    PyObject *out;
} nd_mem_act_args;
#define M nd_mem_act_args

/* -> the activation (what 0), its derivative (1), inverse (2), integral (3) or the integral of
 * its inverse (4), elementwise, of x's shape */
static const nd_arg memories_activation_args[] = {
    ND_CHOICE(M, act, "activation", 0, nd_mem_act_names), ND_SCALAR(M, gain, "gain", ND_ARG_DOUBLE, 0),
    ND_SCALAR(M, threshold, "threshold", ND_ARG_DOUBLE, 0), ND_SCALAR(M, what, "what", ND_ARG_INT, 0),
    ND_IN(M, x, "x", ND_TYPE, NULL), ND_OUT(M, out, "y", 0, "(*x)"), {NULL}};
ND_KERNEL_ENTRY(memories_activation, M, NULL,
                ND_DISPATCH(tn, nd_memory_act, a->act, a->gain, a->threshold, (int)a->what, PyArray_SIZE(a->x),
                            ND_DATA(a->x), ND_DATA(a->out)),
                "memories_activation(activation, gain, threshold, what, x) -> phi (0), phi' (1), phi^-1 (2), int phi "
                "(3) or int_0 phi^-1 (4) at x")
#undef M

/* ---- the firing-rate design ------------------------------------------------------------------ */

typedef struct {
    PyArrayObject *patterns;
    double a, b, overlap, gain, threshold;
    int act, overlap_given;
} nd_mem_design_args;

static const nd_arg memories_rate_design_args[] = {
    ND_F64IN(nd_mem_design_args, patterns, "patterns", ND_FINITE, "(P, N)"),
    ND_SCALAR(nd_mem_design_args, a, "a", ND_ARG_DOUBLE, 0),
    ND_SCALAR(nd_mem_design_args, b, "b", ND_ARG_DOUBLE, 0),
    ND_CHOICE(nd_mem_design_args, act, "activation", 0, nd_mem_act_names),
    ND_SCALAR(nd_mem_design_args, gain, "gain", ND_ARG_DOUBLE, 0),
    ND_SCALAR(nd_mem_design_args, threshold, "threshold", ND_ARG_DOUBLE, 0),
    ND_SCALAR(nd_mem_design_args, overlap, "overlap", ND_ARG_DOUBLE,
              ND_OPTIONAL | ND_NONE | ND_GIVEN(nd_mem_design_args, overlap_given)),
    {NULL}};

/* The design's quantities, and q and r, as a dict. */
static PyObject *nd_mem_design_dict(const nd_rate_design *d, double q, double r)
{
    const char *keys[] = {"alpha", "beta", "gamma", "phi_a", "phi_b", "dphi_a", "dphi_b", "alpha_prime",
                          "sufficient", "unstable1", "unstable2", "q", "r"};
    const double v[] = {d->alpha, d->beta, d->gamma, d->phi_a, d->phi_b, d->dphi_a, d->dphi_b, d->alpha_prime,
                        d->sufficient, d->unstable1, d->unstable2, q, r};
    PyObject *out = PyDict_New();
    for (size_t i = 0; out && i < sizeof v / sizeof v[0]; ++i)
        if (nd_dict_put(out, keys[i], PyFloat_FromDouble(v[i])) < 0)
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
    return nd_mem_design_dict(&d, q, r);
}
ND_ENTRY(memories_rate_design, nd_mem_design_args, NULL,
         "memories_rate_design(patterns, a, b, activation, gain, threshold, overlap=None) -> the synaptic design "
         "(docs/models.md §9) and the closed-form stability quantities")

typedef struct {
    PyArrayObject *patterns, *grams, *gains, *thresholds;
    int binary, act;
    double a, b, q, r;
    int64_t k, p, G, H;
    void *work;
    PyObject *o[4];
} nd_mem_check_args;
#define M nd_mem_check_args

static int nd_mem_patterns_rule(const M *a)
{
    return nd_memory_check_patterns(a->binary, PyArray_DIM(a->patterns, 0), PyArray_DIM(a->patterns, 1),
                                    PyArray_DATA(a->patterns));
}
static void nd_mem_binary(M *a) { a->binary = 1; }

static const nd_arg memories_check_patterns_args[] = {
    ND_F64IN(M, patterns, "patterns", ND_FINITE, "(P, N)"), ND_SCALAR(M, binary, "binary", ND_ARG_BOOL, 0),
    ND_CHECK(nd_mem_patterns_rule), {NULL}};
ND_CHECK_ENTRY(memories_check_patterns, M, NULL,
               "memories_check_patterns(patterns, binary) -> None; raises unless the patterns hold only 0/1 (binary) "
               "or -1/+1, with fewer memories than units")

/* ---- stability in the (P+1)-dimensional range ------------------------------------------------ */

static int nd_mem_grams_work(M *a)
{
    size_t len;
    a->k = PyArray_DIM(a->patterns, 0) + 1;
    const int st = nd_rate_grams_workspace_len(PyArray_DIM(a->patterns, 1), a->k - 1, &len);
    if (st == ND_OK)
        a->work = nd_work_alloc(len, sizeof(double));
    return st != ND_OK ? st : a->work ? ND_OK : -1;
}

static const nd_arg memories_grams_args[] = {
    ND_F64IN(M, patterns, "patterns", ND_FINITE, "(P, N)"), ND_CHECK(nd_mem_patterns_rule), ND_CHECK(nd_mem_grams_work),
    ND_WORK(M, work), ND_DIM(M, k, "P+1"), ND_OUT_T(M, o[0], "T", 0, "(P+1, P+1, P+1)", NPY_DOUBLE), {NULL}};
ND_KERNEL_ENTRY(memories_grams, M, nd_mem_binary,
                nd_rate_grams(PyArray_DIM(a->patterns, 1), a->k - 1, ND_DATA(a->patterns), ND_DATA(a->o[0]), a->work),
                "memories_grams(patterns) -> T [P+1, P+1, P+1]: U U^T / N and U diag(xi^mu) U^T / N, U = [Xi^T; 1^T]")

/* The design and lambda_max at every (gain, threshold) of the grid into out: lambda_max [G, H, P],
 * then sufficient, unstable1 and unstable2 [G, H]. A point where the design does not exist
 * (phi(b) <= phi(a)) is NaN, unless the grid is a single point, whose error is returned. */
static int nd_mem_stability_grid(const M *a, npy_intp p, npy_intp G, npy_intp H, double *const out[4], void *work)
{
    const double *T = PyArray_DATA(a->grams), *gains = PyArray_DATA(a->gains), *ths = PyArray_DATA(a->thresholds);
    for (npy_intp i = 0; i < G; ++i)
        for (npy_intp j = 0; j < H; ++j) {
            nd_rate_design d;
            const npy_intp ij = i * H + j;
            int s = nd_rate_design_compute(a->a, a->b, a->q, a->r, a->act, gains[i], ths[j], &d);
            if (s == ND_OK)
                s = nd_rate_lambda_max(p, T, &d, out[0] + ij * p, work);
            if (s != ND_OK && (G * H == 1 || s != ND_ERR_ARG || strcmp(nd_last_error()->arg, "b") != 0))
                return s;
            for (npy_intp mu = 0; s != ND_OK && mu < p; ++mu)
                out[0][ij * p + mu] = NAN;
            out[1][ij] = s == ND_OK ? d.sufficient : NAN;
            out[2][ij] = s == ND_OK ? d.unstable1 : NAN;
            out[3][ij] = s == ND_OK ? d.unstable2 : NAN;
        }
    return ND_OK;
}

static int nd_mem_stability_work(M *a)
{
    size_t len;
    if ((a->p = PyArray_DIM(a->grams, 0) - 1) < 1)
        return PyErr_Format(PyExc_ValueError, "grams must come from at least one memory"), -1;
    a->work = nd_workspace(nd_rate_lambda_workspace_len(a->p, &len), &len, sizeof(double), "memories_stability");
    return a->work ? ND_OK : -1;
}

static const nd_arg memories_stability_args[] = {
    ND_F64IN(M, grams, "grams", ND_FINITE, "(P+1, P+1, P+1)"), ND_SCALAR(M, a, "a", ND_ARG_DOUBLE, 0),
    ND_SCALAR(M, b, "b", ND_ARG_DOUBLE, 0), ND_SCALAR(M, q, "q", ND_ARG_DOUBLE, 0),
    ND_SCALAR(M, r, "overlap", ND_ARG_DOUBLE, 0), ND_CHOICE(M, act, "activation", 0, nd_mem_act_names),
    ND_F64IN(M, gains, "gains", ND_FINITE, "(G,)"), ND_F64IN(M, thresholds, "thresholds", ND_FINITE, "(H,)"),
    ND_CHECK(nd_mem_stability_work), ND_WORK(M, work), ND_DIM(M, p, "P"), ND_DIM(M, G, "G"), ND_DIM(M, H, "H"),
    ND_OUT_T(M, o[0], "lambda_max", 0, "(G, H, P)", NPY_DOUBLE), ND_OUT_T(M, o[1], "sufficient", 0, "(G, H)", NPY_DOUBLE),
    ND_OUT_T(M, o[2], "unstable1", 0, "(G, H)", NPY_DOUBLE), ND_OUT_T(M, o[3], "unstable2", 0, "(G, H)", NPY_DOUBLE),
    {NULL}};

/* -> {lambda_max [G, H, P], sufficient, unstable1, unstable2 [G, H]} */
static PyObject *memories_stability_body(PyObject *module, void *args, int tn)
{
    M *a = args;
    double *const out[4] = {ND_DATA(a->o[0]), ND_DATA(a->o[1]), ND_DATA(a->o[2]), ND_DATA(a->o[3])};
    int st = ND_OK;
    ND_NOGIL(st, nd_mem_stability_grid(a, a->p, a->G, a->H, out, a->work));
    return st != ND_OK ? nd_raise_status(st, "memories_stability")
                       : Py_BuildValue("{sOsOsOsO}", "lambda_max", a->o[0], "sufficient", a->o[1], "unstable1", a->o[2],
                                       "unstable2", a->o[3]);
}
ND_ENTRY(memories_stability, M, NULL,
         "memories_stability(grams, a, b, q, overlap, activation, gains, thresholds) -> lambda_max of -I + D^1/2 W "
         "D^1/2 for every memory at every (gain, threshold), and the closed-form conditions")
#undef M

/* ---- pattern generators --------------------------------------------------------------------- */

typedef struct {
    int kind;
    int64_t p, n;
    double q, r;
    uint64_t seed;
    PyObject *out;
} nd_mem_patterns_args;
#define M nd_mem_patterns_args

static void nd_mem_patterns_defaults(M *a) { a->q = 0.5; }

/* P=0 with kind='balanced': its own count. */
static int nd_mem_patterns_count(M *a)
{
    int st = a->kind == ND_MEM_BALANCED && a->p == 0 ? nd_memory_balanced_count(a->n, a->q, &a->p) : ND_OK;
    if (st == ND_OK && (a->p < 1 || a->n < 1))
        st = nd_arg_error(a->p < 1 ? "P" : "N", (double)(a->p < 1 ? a->p : a->n), "must be >= 1");
    return st;
}

static const nd_arg memories_patterns_args[] = {
    ND_CHOICE(M, kind, "kind", 0, nd_mem_patterns_names), ND_SCALAR(M, p, "P", ND_ARG_INT, 0),
    ND_SCALAR(M, n, "N", ND_ARG_INT, 0), ND_SCALAR(M, q, "q", ND_ARG_DOUBLE, ND_OPTIONAL),
    ND_SCALAR(M, r, "r", ND_ARG_DOUBLE, ND_OPTIONAL), ND_SCALAR(M, seed, "seed", ND_ARG_SEED, ND_OPTIONAL),
    ND_CHECK(nd_mem_patterns_count), ND_DIM(M, p, "P"), ND_DIM(M, n, "N"),
    ND_OUT_T(M, out, "patterns", 0, "(P, N)", NPY_INT8), {NULL}};
ND_KERNEL_ENTRY(memories_patterns, M, nd_mem_patterns_defaults,
                nd_memory_patterns(a->kind, a->p, a->n, a->q, a->r, a->seed, ND_DATA(a->out)),
                "memories_patterns(kind, P, N, q=0.5, r=0, seed=0) -> int8 [P, N] memories (P=0 with kind='balanced': "
                "its own count)")
#undef M

ND_FAMILY(nd_memories_family, nd_memories_tables, &memories_states_entry, &memories_activation_entry,
          &memories_rate_design_entry, &memories_check_patterns_entry, &memories_grams_entry,
          &memories_stability_entry, &memories_patterns_entry);

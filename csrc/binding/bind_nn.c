/* Binding of the nn family (csrc/nd_nn.h): dense layers (GEMM, or event-driven on spikes),
 * activations, layer norm, SwiGLU and losses, forward and backward. The first array of each
 * entry sets the call's float type; the kernels check their own values (activation codes,
 * spikes, eps, labels) and the binding checks how the arrays' shapes fit together. */
#include "nd_bind.h"

#include <stddef.h> /* offsetof, in the tables */

#include "nd_nn.h"
#include "nd_status.h"

typedef struct {
    PyArrayObject *x, *kernel, *bias, *y, *dy, *gamma, *beta, *mean, *rstd, *gate, *up, *dout, *logits, *labels,
        *pred, *target;
    int activation, spikes, has_bias, need_dx;
    double eps;
    int64_t classes;
} nd_nn_args;
#define T nd_nn_args /* in the tables */

static void nd_nn_defaults(T *a)
{
    a->need_dx = 1;
    a->eps = ND_LAYERNORM_EPS;
}

static PyObject *nd_like(PyArrayObject *a, int tn) { return PyArray_SimpleNew(PyArray_NDIM(a), PyArray_DIMS(a), tn); }
#define D ND_DATA

/* Runs a kernel call without the GIL into `int st`, unless an output's allocation failed. */
#define ND_RUN(call)                                                                                   \
    int st = ND_OK;                                                                                    \
    ND_NOGIL(st, call)

/* -1 with "<names> must have the same shape, got (..) and (..)" unless b (and c) match a. */
static int nd_same_shape(const char *names, PyArrayObject *a, PyArrayObject *b, PyArrayObject *c)
{
    PyArrayObject *other = !PyArray_SAMESHAPE(a, b) ? b : (c && !PyArray_SAMESHAPE(a, c) ? c : NULL);
    if (!other)
        return 0;
    PyObject *sa = nd_shape_str(PyArray_NDIM(a), PyArray_DIMS(a));
    PyObject *so = sa ? nd_shape_str(PyArray_NDIM(other), PyArray_DIMS(other)) : NULL;
    if (so)
        PyErr_Format(PyExc_ValueError, "%s must have the same shape, got %S and %S", names, sa, so);
    Py_XDECREF(sa);
    Py_XDECREF(so);
    return -1;
}

/* nd_finish's result, with a loss as (loss, out[0]). */
static PyObject *nd_nn_result(int st, const char *what, const double *loss, int n, PyObject **out)
{
    PyObject *res = nd_finish(st, what, n, out);
    return loss && res ? Py_BuildValue("(dN)", *loss, res) : res;
}

/* ---- dense ---------------------------------------------------------------------------------- */

/* The GEMM kernel, or the event-driven one when x holds spikes. */
#define ND_DENSE(tn, spikes, fn, ...) \
    ((spikes) ? ND_DISPATCH(tn, nd_spike_##fn, __VA_ARGS__) : ND_DISPATCH(tn, nd_##fn, __VA_ARGS__))
#define ND_DENSE_ARGS                                                                                  \
    ND_IN(T, x, "x", ND_TYPE, 2, "(rows, in)"), ND_IN(T, kernel, "kernel", 0, 2, "(in, out)")
#define ND_SPIKES ND_SCALAR(T, spikes, "spikes", ND_ARG_BOOL, ND_OPTIONAL)

/* rows, in, out from x and the kernel, whose in axes must agree. */
static int nd_dense_sizes(const T *a, npy_intp *rows, npy_intp *in, npy_intp *out)
{
    *rows = PyArray_DIM(a->x, 0), *in = PyArray_DIM(a->x, 1), *out = PyArray_DIM(a->kernel, 1);
    const npy_intp kd[2] = {*in, *out};
    return nd_check_shape(a->kernel, "kernel", 2, kd, "(in, out) with the in of x (rows, in)");
}

static const nd_arg dense_forward_args[] = {ND_DENSE_ARGS, ND_IN(T, bias, "bias", ND_NONE | ND_OPTIONAL, 1, "(out,)"),
                                            ND_SPIKES, {NULL}};

static PyObject *dense_forward_body(PyObject *m, void *args, int tn)
{
    T *a = args;
    npy_intp rows, in, out;
    if (nd_dense_sizes(a, &rows, &in, &out) < 0 ||
        (a->bias && nd_check_shape(a->bias, "bias", 1, &out, "(out,) of the kernel") < 0))
        return NULL;
    PyObject *y[1] = {nd_empty(tn, 2, rows, out)};
    ND_RUN(ND_DENSE(tn, a->spikes, dense_forward, rows, in, out, D(a->x), D(a->kernel), D(a->bias), D(y[0])));
    return nd_nn_result(st, "dense_forward", NULL, 1, y);
}
ND_ENTRY(dense_forward, T, nd_nn_defaults,
         "dense_forward(x, kernel, bias=None, spikes=False) -> x kernel + bias (event-driven on 0/1 spikes)")

static const nd_arg dense_backward_args[] = {
    ND_DENSE_ARGS, ND_IN(T, dy, "dy", 0, 2, "(rows, out)"), ND_SCALAR(T, has_bias, "has_bias", ND_ARG_BOOL, 0),
    ND_SCALAR(T, need_dx, "need_dx", ND_ARG_BOOL, ND_OPTIONAL), ND_SPIKES, {NULL}};

static PyObject *dense_backward_body(PyObject *m, void *args, int tn)
{
    T *a = args;
    npy_intp rows, in, out;
    if (nd_dense_sizes(a, &rows, &in, &out) < 0 ||
        nd_check_shape(a->dy, "dy", 2, (npy_intp[]){rows, out}, "(rows, out) of x and the kernel") < 0)
        return NULL;
    /* a first layer needs no dx */
    PyObject *g[3] = {a->need_dx ? nd_empty(tn, 2, rows, in) : NULL, nd_empty(tn, 2, in, out),
                      a->has_bias ? nd_empty(tn, 1, out) : NULL};
    ND_RUN(ND_DENSE(tn, a->spikes, dense_backward, rows, in, out, D(a->x), D(a->kernel), D(a->dy), D(g[0]), D(g[1]),
                    D(g[2]), 0));
    return nd_nn_result(st, "dense_backward", NULL, 3, g);
}
ND_ENTRY(dense_backward, T, nd_nn_defaults,
         "dense_backward(x, kernel, dy, has_bias, need_dx=True, spikes=False) -> (dx | None, dkernel, dbias | None)")

/* ---- activations and SwiGLU: elementwise, any shape ------------------------------------------ */

#define ND_ACTIVATION_X ND_CHOICE(T, activation, "activation", 0, nd_act_names), ND_IN(T, x, "x", ND_TYPE, -1, NULL)

static const nd_arg act_forward_args[] = {ND_ACTIVATION_X, {NULL}};

static PyObject *act_forward_body(PyObject *m, void *args, int tn)
{
    T *a = args;
    PyObject *y[1] = {nd_like(a->x, tn)};
    ND_RUN(ND_DISPATCH(tn, nd_act_forward, a->activation, PyArray_SIZE(a->x), D(a->x), D(y[0])));
    return nd_nn_result(st, "act_forward", NULL, 1, y);
}
ND_ENTRY(act_forward, T, nd_nn_defaults, "act_forward(activation, x) -> the activation of x, elementwise")

static const nd_arg act_backward_args[] = {ND_ACTIVATION_X, ND_IN(T, y, "y", 0, -1, NULL),
                                           ND_IN(T, dy, "dy", 0, -1, NULL), {NULL}};

static PyObject *act_backward_body(PyObject *m, void *args, int tn)
{
    T *a = args;
    if (nd_same_shape("x, y and dy", a->x, a->y, a->dy) < 0)
        return NULL;
    PyObject *dx[1] = {nd_like(a->x, tn)};
    ND_RUN(ND_DISPATCH(tn, nd_act_backward, a->activation, PyArray_SIZE(a->x), D(a->x), D(a->y), D(a->dy), D(dx[0])));
    return nd_nn_result(st, "act_backward", NULL, 1, dx);
}
ND_ENTRY(act_backward, T, nd_nn_defaults, "act_backward(activation, x, y, dy) -> dx given y = activation(x)")

#define ND_GATE_UP ND_IN(T, gate, "gate", ND_TYPE, -1, NULL), ND_IN(T, up, "up", 0, -1, NULL)

static const nd_arg swiglu_forward_args[] = {ND_GATE_UP, {NULL}};

static PyObject *swiglu_forward_body(PyObject *m, void *args, int tn)
{
    T *a = args;
    if (nd_same_shape("gate and up", a->gate, a->up, NULL) < 0)
        return NULL;
    PyObject *o[1] = {nd_like(a->gate, tn)};
    ND_RUN(ND_DISPATCH(tn, nd_swiglu_forward, PyArray_SIZE(a->gate), D(a->gate), D(a->up), D(o[0])));
    return nd_nn_result(st, "swiglu_forward", NULL, 1, o);
}
ND_ENTRY(swiglu_forward, T, nd_nn_defaults, "swiglu_forward(gate, up) -> silu(gate) * up")

static const nd_arg swiglu_backward_args[] = {ND_GATE_UP, ND_IN(T, dout, "dout", 0, -1, NULL), {NULL}};

static PyObject *swiglu_backward_body(PyObject *m, void *args, int tn)
{
    T *a = args;
    if (nd_same_shape("gate, up and dout", a->gate, a->up, a->dout) < 0)
        return NULL;
    PyObject *g[2] = {nd_like(a->gate, tn), nd_like(a->gate, tn)};
    ND_RUN(ND_DISPATCH(tn, nd_swiglu_backward, PyArray_SIZE(a->gate), D(a->gate), D(a->up), D(a->dout), D(g[0]),
                       D(g[1])));
    return nd_nn_result(st, "swiglu_backward", NULL, 2, g);
}
ND_ENTRY(swiglu_backward, T, nd_nn_defaults, "swiglu_backward(gate, up, dout) -> (dgate, dup)")

/* ---- layer norm over the last axis of x (rows, n) ------------------------------------------- */

/* gamma and beta (when given), and for the backward pass mean, rstd and dy, against x. */
static int nd_layernorm_shapes(const T *a, int backward)
{
    npy_intp *xd = PyArray_DIMS(a->x);
    return (a->gamma && nd_check_shape(a->gamma, "gamma", 1, xd + 1, "(n,) of x (rows, n)") < 0) ||
                   (a->beta && nd_check_shape(a->beta, "beta", 1, xd + 1, "(n,) of x (rows, n)") < 0) ||
                   (backward && (nd_check_shape(a->mean, "mean", 1, xd, "(rows,) of x (rows, n)") < 0 ||
                                 nd_check_shape(a->rstd, "rstd", 1, xd, "(rows,) of x (rows, n)") < 0 ||
                                 nd_check_shape(a->dy, "dy", 2, xd, "(rows, n) of x") < 0))
               ? -1
               : 0;
}

#define ND_LN_X_GAMMA(flags) ND_IN(T, x, "x", ND_TYPE, 2, "(rows, n)"), ND_IN(T, gamma, "gamma", flags, 1, "(n,)")

static const nd_arg layernorm_forward_args[] = {
    ND_LN_X_GAMMA(ND_NONE | ND_OPTIONAL), ND_IN(T, beta, "beta", ND_NONE | ND_OPTIONAL, 1, "(n,)"),
    ND_SCALAR(T, eps, "eps", ND_ARG_DOUBLE, ND_OPTIONAL), {NULL}};
static const nd_arg layernorm_backward_args[] = {ND_LN_X_GAMMA(ND_NONE), ND_IN(T, mean, "mean", 0, 1, "(rows,)"),
                                                 ND_IN(T, rstd, "rstd", 0, 1, "(rows,)"),
                                                 ND_IN(T, dy, "dy", 0, 2, "(rows, n)"), {NULL}};

/* forward -> (y, mean, rstd); backward -> (dx, dgamma, dbeta). */
static PyObject *nd_layernorm_body(PyObject *m, void *args, int tn, int backward)
{
    T *a = args;
    if (nd_layernorm_shapes(a, backward) < 0)
        return NULL;
    const npy_intp rows = PyArray_DIM(a->x, 0), n = PyArray_DIM(a->x, 1), k = backward ? n : rows;
    PyObject *o[3] = {nd_like(a->x, tn), nd_empty(tn, 1, k), nd_empty(tn, 1, k)};
    ND_RUN(backward ? ND_DISPATCH(tn, nd_layernorm_backward, rows, n, D(a->x), D(a->gamma), D(a->mean), D(a->rstd),
                                  D(a->dy), D(o[0]), D(o[1]), D(o[2]), 0)
                    : ND_DISPATCH(tn, nd_layernorm_forward, rows, n, D(a->x), D(a->gamma), D(a->beta), a->eps, D(o[0]),
                                  D(o[1]), D(o[2])));
    return nd_nn_result(st, backward ? "layernorm_backward" : "layernorm_forward", NULL, 3, o);
}

ND_ENTRY_OF(layernorm_forward, T, nd_nn_defaults, nd_layernorm_body, 0,
            "layernorm_forward(x, gamma=None, beta=None, eps=1e-5) -> (y, mean, rstd) over the last axis")
ND_ENTRY_OF(layernorm_backward, T, nd_nn_defaults, nd_layernorm_body, 1,
            "layernorm_backward(x, gamma, mean, rstd, dy) -> (dx, dgamma, dbeta)")

/* ---- losses --------------------------------------------------------------------------------- */

#define ND_LABELS ND_I64IN(T, labels, "labels", ND_INTEGER, 1, "(rows,)")

static const nd_arg softmax_xent_args[] = {ND_IN(T, logits, "logits", ND_TYPE, 2, "(rows, classes)"), ND_LABELS,
                                           {NULL}};

static PyObject *softmax_xent_body(PyObject *m, void *args, int tn)
{
    T *a = args;
    const npy_intp rows = PyArray_DIM(a->labels, 0), classes = PyArray_DIM(a->logits, 1);
    if (nd_check_shape(a->logits, "logits", 2, (npy_intp[]){rows, classes}, "(rows, classes), a row per label") < 0)
        return NULL;
    PyObject *d[1] = {nd_like(a->logits, tn)};
    double loss = 0;
    ND_RUN(ND_DISPATCH(tn, nd_softmax_xent, rows, classes, D(a->logits), D(a->labels), &loss, D(d[0])));
    return nd_nn_result(st, "softmax_xent", &loss, 1, d);
}
ND_ENTRY(softmax_xent, T, nd_nn_defaults, "softmax_xent(logits, labels) -> (mean loss, dlogits)")

static const nd_arg check_labels_args[] = {ND_LABELS, ND_SCALAR(T, classes, "classes", ND_ARG_INT, 0), {NULL}};

/* The cross-entropy kernels' rule for labels, for targets checked before a forward pass. */
static PyObject *check_labels_body(PyObject *m, void *args, int tn)
{
    T *a = args;
    const int st = nd_check_labels(PyArray_SIZE(a->labels), a->classes, D(a->labels));
    return st == ND_OK ? Py_NewRef(Py_None) : nd_raise_status(st, "check_labels");
}
ND_ENTRY(check_labels, T, nd_nn_defaults, "check_labels(labels, classes): ValueError unless all lie in [0, classes)")

static const nd_arg mse_args[] = {ND_IN(T, pred, "pred", ND_TYPE, -1, NULL), ND_IN(T, target, "target", 0, -1, NULL),
                                  {NULL}};

static PyObject *mse_body(PyObject *m, void *args, int tn)
{
    T *a = args;
    if (nd_same_shape("pred and target", a->pred, a->target, NULL) < 0)
        return NULL;
    PyObject *d[1] = {nd_like(a->pred, tn)};
    double loss = 0;
    ND_RUN(ND_DISPATCH(tn, nd_mse, PyArray_SIZE(a->pred), D(a->pred), D(a->target), &loss, D(d[0])));
    return nd_nn_result(st, "mse", &loss, 1, d);
}
ND_ENTRY(mse, T, nd_nn_defaults, "mse(pred, target) -> (mean loss, dpred)")

#undef T

static const nd_table nd_nn_tables[] = {{"activations", nd_act_names}, {NULL, NULL}};
ND_FAMILY(nd_nn_family, nd_nn_tables, &dense_forward_entry, &dense_backward_entry, &act_forward_entry,
          &act_backward_entry, &swiglu_forward_entry, &swiglu_backward_entry, &layernorm_forward_entry,
          &layernorm_backward_entry, &softmax_xent_entry, &check_labels_entry, &mse_entry);

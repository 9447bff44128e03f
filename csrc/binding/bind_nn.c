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
    double eps, loss;
    int64_t classes, rows, in, out, n;
    PyObject *o[3]; /* the outputs */
} nd_nn_args;
#define T nd_nn_args /* in the tables */

static void nd_nn_defaults(T *a)
{
    a->need_dx = 1;
    a->eps = ND_LAYERNORM_EPS;
}

#define D ND_DATA
#define SIZE(arr) PyArray_SIZE(a->arr)
#define OUT(i, name, shape) ND_OUT(T, o[i], name, 0, shape)

/* ---- dense ---------------------------------------------------------------------------------- */

/* The GEMM kernel, or the event-driven one when x holds spikes. */
#define ND_DENSE(fn, ...) \
    (a->spikes ? ND_DISPATCH(tn, nd_spike_##fn, __VA_ARGS__) : ND_DISPATCH(tn, nd_##fn, __VA_ARGS__))
#define ND_DENSE_ARGS                                                                                  \
    ND_IN(T, x, "x", ND_TYPE, "(rows, in)"), ND_IN(T, kernel, "kernel", 0, "(in, out)")
#define ND_SPIKES ND_SCALAR(T, spikes, "spikes", ND_ARG_BOOL, ND_OPTIONAL)
#define ND_DENSE_DIMS ND_DIM(T, rows, "rows"), ND_DIM(T, in, "in"), ND_DIM(T, out, "out")

static const nd_arg dense_forward_args[] = {ND_DENSE_ARGS, ND_IN(T, bias, "bias", ND_NONE | ND_OPTIONAL, "(out,)"),
                                            ND_SPIKES, ND_DENSE_DIMS, OUT(0, "y", "(rows, out)"), {NULL}};
ND_KERNEL_ENTRY(dense_forward, T, nd_nn_defaults,
                ND_DENSE(dense_forward, a->rows, a->in, a->out, D(a->x), D(a->kernel), D(a->bias), D(a->o[0])),
                "dense_forward(x, kernel, bias=None, spikes=False) -> x kernel + bias (event-driven on 0/1 spikes)")

/* a first layer needs no dx */
static const nd_arg dense_backward_args[] = {
    ND_DENSE_ARGS, ND_IN(T, dy, "dy", 0, "(rows, out)"), ND_SCALAR(T, has_bias, "has_bias", ND_ARG_BOOL, 0),
    ND_SCALAR(T, need_dx, "need_dx", ND_ARG_BOOL, ND_OPTIONAL), ND_SPIKES, ND_DENSE_DIMS,
    ND_OUT(T, o[0], "dx", ND_WHEN(T, need_dx), "(rows, in)"), OUT(1, "dkernel", "(in, out)"),
    ND_OUT(T, o[2], "dbias", ND_WHEN(T, has_bias), "(out,)"), {NULL}};
ND_KERNEL_ENTRY(dense_backward, T, nd_nn_defaults,
                ND_DENSE(dense_backward, a->rows, a->in, a->out, D(a->x), D(a->kernel), D(a->dy), D(a->o[0]),
                         D(a->o[1]), D(a->o[2]), 0),
                "dense_backward(x, kernel, dy, has_bias, need_dx=True, spikes=False) -> (dx | None, dkernel, dbias | "
                "None)")

/* ---- activations and SwiGLU: elementwise, any shape ------------------------------------------ */

#define ND_ACTIVATION_X ND_CHOICE(T, activation, "activation", 0, nd_act_names), ND_IN(T, x, "x", ND_TYPE, NULL)

static const nd_arg act_forward_args[] = {ND_ACTIVATION_X, OUT(0, "y", "(*x)"), {NULL}};
ND_KERNEL_ENTRY(act_forward, T, nd_nn_defaults,
                ND_DISPATCH(tn, nd_act_forward, a->activation, SIZE(x), D(a->x), D(a->o[0])),
                "act_forward(activation, x) -> the activation of x, elementwise")

static const nd_arg act_backward_args[] = {ND_ACTIVATION_X, ND_IN(T, y, "y", 0, "(*x)"), ND_IN(T, dy, "dy", 0, "(*x)"),
                                           OUT(0, "dx", "(*x)"), {NULL}};
ND_KERNEL_ENTRY(act_backward, T, nd_nn_defaults,
                ND_DISPATCH(tn, nd_act_backward, a->activation, SIZE(x), D(a->x), D(a->y), D(a->dy), D(a->o[0])),
                "act_backward(activation, x, y, dy) -> dx given y = activation(x)")

#define ND_GATE_UP ND_IN(T, gate, "gate", ND_TYPE, NULL), ND_IN(T, up, "up", 0, "(*gate)")

static const nd_arg swiglu_forward_args[] = {ND_GATE_UP, OUT(0, "out", "(*gate)"), {NULL}};
ND_KERNEL_ENTRY(swiglu_forward, T, nd_nn_defaults,
                ND_DISPATCH(tn, nd_swiglu_forward, SIZE(gate), D(a->gate), D(a->up), D(a->o[0])),
                "swiglu_forward(gate, up) -> silu(gate) * up")

static const nd_arg swiglu_backward_args[] = {ND_GATE_UP, ND_IN(T, dout, "dout", 0, "(*gate)"),
                                              OUT(0, "dgate", "(*gate)"), OUT(1, "dup", "(*gate)"), {NULL}};
ND_KERNEL_ENTRY(swiglu_backward, T, nd_nn_defaults,
                ND_DISPATCH(tn, nd_swiglu_backward, SIZE(gate), D(a->gate), D(a->up), D(a->dout), D(a->o[0]),
                            D(a->o[1])),
                "swiglu_backward(gate, up, dout) -> (dgate, dup)")

/* ---- layer norm over the last axis of x (rows, n) ------------------------------------------- */

#define ND_LN_X_GAMMA(flags) ND_IN(T, x, "x", ND_TYPE, "(rows, n)"), ND_IN(T, gamma, "gamma", flags, "(n,)")
#define ND_LN_DIMS ND_DIM(T, rows, "rows"), ND_DIM(T, n, "n")

static const nd_arg layernorm_forward_args[] = {
    ND_LN_X_GAMMA(ND_NONE | ND_OPTIONAL), ND_IN(T, beta, "beta", ND_NONE | ND_OPTIONAL, "(n,)"),
    ND_SCALAR(T, eps, "eps", ND_ARG_DOUBLE, ND_OPTIONAL), ND_LN_DIMS, OUT(0, "y", "(rows, n)"),
    OUT(1, "mean", "(rows,)"), OUT(2, "rstd", "(rows,)"), {NULL}};
ND_KERNEL_ENTRY(layernorm_forward, T, nd_nn_defaults,
                ND_DISPATCH(tn, nd_layernorm_forward, a->rows, a->n, D(a->x), D(a->gamma), D(a->beta), a->eps,
                            D(a->o[0]), D(a->o[1]), D(a->o[2])),
                "layernorm_forward(x, gamma=None, beta=None, eps=1e-5) -> (y, mean, rstd) over the last axis")

static const nd_arg layernorm_backward_args[] = {
    ND_LN_X_GAMMA(ND_NONE), ND_IN(T, mean, "mean", 0, "(rows,)"), ND_IN(T, rstd, "rstd", 0, "(rows,)"),
    ND_IN(T, dy, "dy", 0, "(rows, n)"), ND_LN_DIMS, OUT(0, "dx", "(rows, n)"), OUT(1, "dgamma", "(n,)"),
    OUT(2, "dbeta", "(n,)"), {NULL}};
ND_KERNEL_ENTRY(layernorm_backward, T, nd_nn_defaults,
                ND_DISPATCH(tn, nd_layernorm_backward, a->rows, a->n, D(a->x), D(a->gamma), D(a->mean), D(a->rstd),
                            D(a->dy), D(a->o[0]), D(a->o[1]), D(a->o[2]), 0),
                "layernorm_backward(x, gamma, mean, rstd, dy) -> (dx, dgamma, dbeta)")

/* ---- losses: (mean loss, its gradient) ------------------------------------------------------ */

#define ND_LABELS ND_I64IN(T, labels, "labels", ND_INTEGER, "(rows,)")
#define ND_LOSS ND_OUT_DOUBLE(T, loss, "loss")

static const nd_arg softmax_xent_args[] = {ND_IN(T, logits, "logits", ND_TYPE, "(rows, classes)"), ND_LABELS,
                                           ND_DIM(T, rows, "rows"), ND_DIM(T, classes, "classes"), ND_LOSS,
                                           OUT(0, "dlogits", "(rows, classes)"), {NULL}};
ND_KERNEL_ENTRY(softmax_xent, T, nd_nn_defaults,
                ND_DISPATCH(tn, nd_softmax_xent, a->rows, a->classes, D(a->logits), D(a->labels), &a->loss,
                            D(a->o[0])),
                "softmax_xent(logits, labels) -> (mean loss, dlogits)")

/* The cross-entropy kernels' rule for labels, for targets checked before a forward pass. */
static int nd_labels_rule(const T *a) { return nd_check_labels(PyArray_SIZE(a->labels), a->classes, D(a->labels)); }
static const nd_arg check_labels_args[] = {ND_LABELS, ND_SCALAR(T, classes, "classes", ND_ARG_INT, 0),
                                           ND_CHECK(nd_labels_rule), {NULL}};
ND_CHECK_ENTRY(check_labels, T, nd_nn_defaults, "check_labels(labels, classes): ValueError unless all lie in [0, classes)")

static const nd_arg mse_args[] = {ND_IN(T, pred, "pred", ND_TYPE, NULL), ND_IN(T, target, "target", 0, "(*pred)"),
                                  ND_LOSS, OUT(0, "dpred", "(*pred)"), {NULL}};
ND_KERNEL_ENTRY(mse, T, nd_nn_defaults,
                ND_DISPATCH(tn, nd_mse, SIZE(pred), D(a->pred), D(a->target), &a->loss, D(a->o[0])),
                "mse(pred, target) -> (mean loss, dpred)")

#undef T

static const nd_table nd_nn_tables[] = {{"activations", nd_act_names}, {NULL, NULL}};
ND_FAMILY(nd_nn_family, nd_nn_tables, &dense_forward_entry, &dense_backward_entry, &act_forward_entry,
          &act_backward_entry, &swiglu_forward_entry, &swiglu_backward_entry, &layernorm_forward_entry,
          &layernorm_backward_entry, &softmax_xent_entry, &check_labels_entry, &mse_entry);

/* Binding of the Hopfield family: the fused retrieval kernel, forward and backward, and the
 * classical network's asynchronous updates. */
#include "nd_bind.h"

#include "nd_hopfield.h"
#include "nd_status.h"

/* ---- fused retrieval -------------------------------------------------------------------- */

typedef struct {
    PyArrayObject *q, *k, *v;               /* queries [B, d], patterns [N, d], values [N, dv] or NULL */
    PyArrayObject *out, *lse, *dout, *dlse; /* backward only; dlse may be NULL */
    double beta, dbeta;
    int64_t B, N, d, dv;
    int backward, has_v;
    void *work;
    PyObject *o[3];
} nd_hop_args;
#define T nd_hop_args /* in the tables */
#define D ND_DATA

static void nd_hop_defaults(T *a) { a->beta = 1.0; }
static void nd_hop_backward_defaults(T *a) { a->beta = 1.0, a->backward = 1; }

/* Without values the patterns are the values (dv = d); the kernels' workspace. */
static int nd_hop_work(T *a)
{
    size_t len;
    const npy_intp od[2] = {(npy_intp)a->B, (npy_intp)a->d};
    if (!a->v && a->out && nd_check_shape(a->out, "out", 2, od, "(batch, d): without values dv = d") < 0)
        return -1;
    a->dv = a->v ? PyArray_DIM(a->v, 1) : a->d;
    a->work = nd_workspace(nd_hopfield_workspace_len(a->B, a->d, a->dv, a->backward, &len), &len,
                           PyArray_ITEMSIZE(a->q), a->backward ? "hopfield_backward" : "hopfield_forward");
    return a->work ? ND_OK : -1;
}

/* The queries set the call's dtype; patterns and values are cast to it. */
#define ND_HOP_INPUTS                                                                                   \
    ND_IN(T, q, "queries", ND_TYPE | ND_FINITE, "(batch, d)"), ND_IN(T, k, "patterns", ND_FINITE, "(N, d)"),  \
        ND_IN(T, v, "values", ND_FINITE | ND_NONE | ND_OPTIONAL | ND_GIVEN(T, has_v), "(N, dv)"),            \
        ND_SCALAR(T, beta, "beta", ND_ARG_DOUBLE, ND_OPTIONAL), ND_DIM(T, B, "batch"), ND_DIM(T, N, "N"),        \
        ND_DIM(T, d, "d"), ND_CHECK(nd_hop_work), ND_DIM(T, dv, "dv"), ND_WORK(T, work)

static const nd_arg hopfield_forward_args[] = {ND_HOP_INPUTS, ND_OUT(T, o[0], "out", 0, "(batch, dv)"),
                                               ND_OUT(T, o[1], "lse", 0, "(batch,)"), {NULL}};
ND_KERNEL_ENTRY(hopfield_forward, T, nd_hop_defaults,
                ND_DISPATCH(tn, nd_hopfield_forward, a->B, a->N, a->d, a->dv, a->beta, D(a->q), D(a->k), D(a->v),
                            D(a->o[0]), D(a->o[1]), a->work),
                "hopfield_forward(queries, patterns, values=None, beta=1) -> (out, lse): softmax(beta q Y^T) V and "
                "the row log-sum-exp")

static const nd_arg hopfield_backward_args[] = {
    ND_HOP_INPUTS, ND_IN(T, out, "out", ND_FINITE, "(batch, dv) of the forward pass"),
    ND_IN(T, lse, "lse", ND_FINITE, "(batch,) of the forward pass"),
    ND_IN(T, dout, "dout", ND_FINITE, "(batch, dv) of the forward pass"),
    ND_IN(T, dlse, "dlse", ND_FINITE | ND_NONE | ND_OPTIONAL, "(batch,) of the forward pass"),
    ND_OUT(T, o[0], "dq", 0, "(batch, d)"), ND_OUT(T, o[1], "dk", 0, "(N, d)"),
    ND_OUT(T, o[2], "dv", ND_WHEN(T, has_v), "(N, dv)"), ND_OUT_DOUBLE(T, dbeta, "dbeta"), {NULL}};
ND_KERNEL_ENTRY(hopfield_backward, T, nd_hop_backward_defaults,
                ND_DISPATCH(tn, nd_hopfield_backward, a->B, a->N, a->d, a->dv, a->beta, D(a->q), D(a->k), D(a->v),
                            D(a->out), D(a->lse), D(a->dout), D(a->dlse), D(a->o[0]), D(a->o[1]), D(a->o[2]),
                            &a->dbeta, a->work),
                "hopfield_backward(queries, patterns, values, beta, out, lse, dout, dlse=None) -> (dq, dk, dv|None, "
                "dbeta)")

/* -> beta as a float, checked by the kernels' rule (for models built with a beta). */
static int nd_hop_beta_rule(const T *a) { return nd_hopfield_check_beta(a->beta); }
static const nd_arg hopfield_check_args[] = {ND_SCALAR(T, beta, "beta", ND_ARG_DOUBLE, 0), ND_CHECK(nd_hop_beta_rule),
                                             ND_OUT_DOUBLE(T, beta, "beta"), {NULL}};
ND_CHECK_ENTRY(hopfield_check, T, NULL, "hopfield_check(beta) -> beta as a float, if the retrieval kernels accept it")
#undef T

/* ---- the classical network -------------------------------------------------------------- */

typedef struct {
    PyArrayObject *W, *x, *order;
    int64_t n, B, S, flips;
    PyObject *xo;
} nd_classical_args;
#define T nd_classical_args

/* -> (x after the sweeps, flips in the last sweep); x is updated in a copy. */
static const nd_arg hopfield_classical_async_args[] = {
    ND_F64IN(T, W, "W", ND_FINITE, "(n, n)"), ND_F64IN(T, x, "x", ND_FINITE, "(batch, n)"),
    ND_I64IN(T, order, "order", 0, "(sweeps, n)"), ND_DIM(T, n, "n"), ND_DIM(T, B, "batch"), ND_DIM(T, S, "sweeps"),
    ND_OUT_T(T, xo, "x", ND_COPY, "(*x)", NPY_DOUBLE), ND_OUT_INT(T, flips, "flips"), {NULL}};
ND_KERNEL_ENTRY(hopfield_classical_async, T, NULL,
                (a->flips = nd_hopfield_classical_async(a->B, a->n, D(a->W), a->S, D(a->order), D(a->xo))) < 0
                    ? (int)a->flips : ND_OK,
                "hopfield_classical_async(W, x, order) -> (x, flips in the last sweep)")
#undef T

ND_FAMILY(nd_hopfield_family, NULL, &hopfield_forward_entry, &hopfield_backward_entry, &hopfield_check_entry,
          &hopfield_classical_async_entry);

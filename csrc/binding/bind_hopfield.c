/* Binding of the Hopfield family: the fused retrieval kernel, forward and backward, and the
 * classical network's asynchronous updates. */
#include "nd_bind.h"

#include "nd_hopfield.h"
#include "nd_status.h"

/* ---- fused retrieval -------------------------------------------------------------------- */

typedef struct {
    PyArrayObject *q, *k, *v;            /* queries [B, d], patterns [N, d], values [N, dv] or NULL */
    double beta;
    PyArrayObject *out, *lse, *dout, *dlse; /* backward only; dlse may be NULL */
} nd_hop_args;

/* The shapes the retrieval kernels share: B, N, d, dv from queries, patterns and values. */
static int nd_hop_sizes(const nd_hop_args *a, npy_intp *B, npy_intp *N, npy_intp *d, npy_intp *dv)
{
    *B = PyArray_DIM(a->q, 0);
    *d = PyArray_DIM(a->q, 1);
    if (PyArray_DIM(a->k, 1) != *d) {
        PyErr_Format(PyExc_ValueError, "queries (batch, d) and patterns (N, d) must share their last axis, got d = %zd "
                     "and %zd", (Py_ssize_t)*d, (Py_ssize_t)PyArray_DIM(a->k, 1));
        return -1;
    }
    *N = PyArray_DIM(a->k, 0);
    npy_intp vd[2] = {*N, -1};
    if (a->v && nd_check_shape(a->v, "values", 2, vd, "(N, dv) with the N of patterns") < 0)
        return -1;
    *dv = a->v ? PyArray_DIM(a->v, 1) : *d;
    return 0;
}

/* The queries set the call's dtype; patterns and values are cast to it. */
#define ND_HOP_INPUTS(T)                                                                           \
    ND_IN(T, q, "queries", ND_TYPE | ND_FINITE, 2, "(batch, d)"),                                  \
        ND_IN(T, k, "patterns", ND_FINITE, 2, "(N, d)"),                                 \
        ND_IN(T, v, "values", ND_FINITE | ND_NONE | ND_OPTIONAL, 2, "(N, dv)"),            \
        ND_SCALAR(T, beta, "beta", ND_ARG_DOUBLE, ND_OPTIONAL)

static void nd_hop_defaults(nd_hop_args *a) { a->beta = 1.0; }

static const nd_arg hopfield_forward_args[] = {ND_HOP_INPUTS(nd_hop_args), {NULL}};

static const nd_arg hopfield_backward_args[] = {
    ND_HOP_INPUTS(nd_hop_args),
    ND_IN(nd_hop_args, out, "out", ND_FINITE, 2, "(batch, dv)"),
    ND_IN(nd_hop_args, lse, "lse", ND_FINITE, 1, "(batch,)"),
    ND_IN(nd_hop_args, dout, "dout", ND_FINITE, 2, "(batch, dv)"),
    ND_IN(nd_hop_args, dlse, "dlse", ND_FINITE | ND_NONE | ND_OPTIONAL, 1, "(batch,)"),
    {NULL}};

/* forward -> (out [B, dv], lse [B]); backward -> (dq, dk, dv|None, dbeta) */
static PyObject *nd_hop_body(PyObject *module, void *args, int tn, int backward)
{
    nd_hop_args *a = args;
    const char *what = backward ? "hopfield_backward" : "hopfield_forward";
    npy_intp B, N, d, dv;
    if (nd_hop_sizes(a, &B, &N, &d, &dv) < 0)
        return NULL;
    const npy_intp od[2] = {B, dv};
    if (backward && (nd_check_shape(a->out, "out", 2, od, "(batch, dv) of the forward pass") < 0 ||
                     nd_check_shape(a->dout, "dout", 2, od, "(batch, dv) of the forward pass") < 0 ||
                     nd_check_shape(a->lse, "lse", 1, od, "(batch,) of the forward pass") < 0 ||
                     (a->dlse && nd_check_shape(a->dlse, "dlse", 1, od, "(batch,) of the forward pass") < 0)))
        return NULL;
    size_t len;
    void *work = nd_workspace(nd_hopfield_workspace_len(B, d, dv, backward, &len), &len, PyArray_ITEMSIZE(a->q), what);
    PyObject *o[4] = {NULL, NULL, NULL, NULL};
    if (work && backward)
        o[0] = nd_empty(tn, 2, B, d), o[1] = nd_empty(tn, 2, N, d), o[2] = a->v ? nd_empty(tn, 2, N, dv) : NULL;
    else if (work)
        o[0] = nd_empty(tn, 2, B, dv), o[1] = nd_empty(tn, 1, B);
    void *q = ND_DATA(a->q), *k = ND_DATA(a->k), *v = ND_DATA(a->v);
    double dbeta = 0;
    int st = ND_OK;
    ND_NOGIL(st, backward ? ND_DISPATCH(tn, nd_hopfield_backward, B, N, d, dv, a->beta, q, k, v, ND_DATA(a->out),
                                        ND_DATA(a->lse), ND_DATA(a->dout), ND_DATA(a->dlse), ND_DATA(o[0]),
                                        ND_DATA(o[1]), ND_DATA(o[2]), &dbeta, work)
                          : ND_DISPATCH(tn, nd_hopfield_forward, B, N, d, dv, a->beta, q, k, v, ND_DATA(o[0]),
                                        ND_DATA(o[1]), work));
    PyMem_RawFree(work);
    if (backward && st == ND_OK && !PyErr_Occurred())
        o[3] = PyFloat_FromDouble(dbeta);
    return nd_finish(st, what, backward ? 4 : 2, o);
}
ND_ENTRY_OF(hopfield_forward, nd_hop_args, nd_hop_defaults, nd_hop_body, 0,
            "hopfield_forward(queries, patterns, values=None, beta=1) -> (out, lse): softmax(beta q Y^T) V and the "
            "row log-sum-exp")
ND_ENTRY_OF(hopfield_backward, nd_hop_args, nd_hop_defaults, nd_hop_body, 1,
            "hopfield_backward(queries, patterns, values, beta, out, lse, dout, dlse=None) -> (dq, dk, dv|None, "
            "dbeta)")

static const nd_arg hopfield_check_args[] = {ND_SCALAR(nd_hop_args, beta, "beta", ND_ARG_DOUBLE, 0), {NULL}};

/* -> beta as a float, checked by the kernels' rule (for models built with a beta). */
static PyObject *hopfield_check_body(PyObject *module, void *args, int tn)
{
    const double beta = ((nd_hop_args *)args)->beta;
    const int st = nd_hopfield_check_beta(beta);
    return st == ND_OK ? PyFloat_FromDouble(beta) : nd_raise_status(st, "hopfield_check");
}
ND_ENTRY(hopfield_check, nd_hop_args, NULL, "hopfield_check(beta) -> beta as a float, if the retrieval kernels accept it")

/* ---- the classical network -------------------------------------------------------------- */

typedef struct {
    PyArrayObject *W, *x, *order;
} nd_classical_args;

static const nd_arg hopfield_classical_async_args[] = {
    ND_F64IN(nd_classical_args, W, "W", ND_FINITE, 2, "(n, n)"),
    ND_F64IN(nd_classical_args, x, "x", ND_FINITE, 2, "(batch, n)"),
    ND_I64IN(nd_classical_args, order, "order", 0, 2, "(sweeps, n)"),
    {NULL}};

/* -> (x after the sweeps, flips in the last sweep); x is updated in a copy. */
static PyObject *hopfield_classical_async_body(PyObject *module, void *args, int tn)
{
    nd_classical_args *a = args;
    const npy_intp n = PyArray_DIM(a->W, 0), sq[2] = {n, n}, row[2] = {-1, n};
    if (nd_check_shape(a->W, "W", 2, sq, "(n, n)") < 0 || nd_check_shape(a->x, "x", 2, row, "(batch, n)") < 0 ||
        nd_check_shape(a->order, "order", 2, row, "(sweeps, n)") < 0)
        return NULL;
    PyObject *x = PyArray_NewCopy(a->x, NPY_CORDER);
    if (!x)
        return NULL;
    int64_t flips;
    const double *wd = PyArray_DATA(a->W);
    double *xd = PyArray_DATA((PyArrayObject *)x);
    const int64_t *od = PyArray_DATA(a->order);
    const npy_intp B = PyArray_DIM(a->x, 0), S = PyArray_DIM(a->order, 0);
    Py_BEGIN_ALLOW_THREADS
    flips = nd_hopfield_classical_async(B, n, wd, S, od, xd);
    Py_END_ALLOW_THREADS
    PyObject *res = flips < 0 ? nd_raise_status((int)flips, "hopfield_classical_async")
                              : Py_BuildValue("(OL)", x, (long long)flips);
    Py_DECREF(x);
    return res;
}
ND_ENTRY(hopfield_classical_async, nd_classical_args, NULL,
         "hopfield_classical_async(W, x, order) -> (x, flips in the last sweep)")

ND_FAMILY(nd_hopfield_family, NULL, &hopfield_forward_entry, &hopfield_backward_entry, &hopfield_check_entry,
          &hopfield_classical_async_entry);

/* Binding of the spiking family: LIF forward and backward over [T, B, n], their parameter
 * check, spike bits, and the spike encoders. */
#include "nd_bind.h"

#include <string.h>
#include <unistd.h>

#include "nd_generic.h"
#include "nd_snn.h"
#include "nd_status.h"



typedef struct {
    PyObject *currents, *out; /* currents: (T, B, n), or one (B, n) current broadcast along time */
    PyArrayObject *v0, *dspikes, *dmem;
    nd_lif_params p;
    int backward, spikes, membrane, bits, rate, sum_time; /* the outputs asked for */
    /* the run: the currents read, their sizes and time stride, the outputs */
    PyObject *cur, *res[5];
    int64_t T, B, n, tstride, nbytes;
} nd_lif_args;
#define L nd_lif_args /* in the tables */

static void nd_lif_forward_default(L *a)
{
    nd_lif_params_default(&a->p);
    a->spikes = 1;
}

static void nd_lif_backward_default(L *a)
{
    nd_lif_params_default(&a->p);
    a->backward = 1;
}

/* The neuron's parameters go straight into the kernel's struct: its defaults are _core.DEFAULTS
 * and nd_lif_params_check states its rules. The currents set the call's dtype. */
#define ND_LIF_ARGS                                                                                                \
    ND_SCALAR(L, currents, "currents", ND_ARG_OBJECT, ND_TYPE),                                                    \
        ND_IN(L, v0, "v0", ND_FINITE | ND_NONE | ND_OPTIONAL, "(batch, neurons)")
#define ND_LIF_PARAMS                                                                                              \
    ND_SCALAR(L, p.tau, "tau", ND_ARG_DOUBLE, ND_OPTIONAL | ND_GIVEN(L, p.tau_given)),                             \
        ND_SCALAR(L, p.beta, "beta", ND_ARG_DOUBLE, ND_OPTIONAL | ND_GIVEN(L, p.beta_given)),                      \
        ND_SCALAR(L, p.threshold, "threshold", ND_ARG_DOUBLE, ND_OPTIONAL),                                        \
        ND_CHOICE(L, p.reset, "reset", ND_OPTIONAL, nd_lif_reset_names),                                           \
        ND_SCALAR(L, p.reset_delay, "reset_delay", ND_ARG_BOOL, ND_OPTIONAL),                                      \
        ND_CHOICE(L, p.surrogate, "surrogate", ND_OPTIONAL, nd_lif_surrogate_names),                               \
        ND_SCALAR(L, p.slope, "slope", ND_ARG_DOUBLE, ND_OPTIONAL),                                                \
        ND_SCALAR(L, p.detach_reset, "detach_reset", ND_ARG_BOOL, ND_OPTIONAL),                                    \
        ND_SCALAR(L, p.smooth, "smooth", ND_ARG_BOOL, ND_OPTIONAL)

/* The parameters checked before anything is allocated, then the currents and the run's sizes:
 * a (T, B, n) array (tstride B n), or one that repeats a single (B, n) current along time (a
 * time stride of 0, as np.broadcast_to makes), read once without a T-fold copy (tstride 0). A
 * broadcast run still takes T B n neuron-steps: one whose raster would not fit in this
 * machine's memory is refused as its copy would be (a 2^49-step view would run for days). */
static int nd_lif_currents(L *a)
{
    int st = nd_lif_params_check(&a->p);
    if (st != ND_OK)
        return st;
    PyArrayObject *whole = PyArray_Check(a->currents) ? (PyArrayObject *)a->currents : NULL, *cur;
    const int broadcast = whole && PyArray_NDIM(whole) == 3 && PyArray_DIM(whole, 0) > 1 && !PyArray_STRIDE(whole, 0);
    PyObject *first = broadcast ? PySequence_GetItem(a->currents, 0) : Py_NewRef(a->currents); /* what is read */
    const int tn = nd_resolve_float_type(a->currents, "currents");
    a->cur = (PyObject *)(cur = first && tn >= 0 ? nd_float_array(first, tn, "currents") : NULL);
    Py_XDECREF(first);
    if (!cur || (!broadcast && nd_check_shape(cur, "currents", 3, NULL, "(time, batch, neurons)") < 0) ||
        nd_check_finite(cur, "currents") < 0)
        return -1;
    const npy_intp *d = PyArray_DIMS(broadcast ? whole : cur);
    a->T = d[0], a->B = d[1], a->n = d[2];
    a->tstride = broadcast ? 0 : (int64_t)d[1] * d[2];
    size_t bytes, limit = SIZE_MAX;
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
    const long pages = broadcast ? sysconf(_SC_PHYS_PAGES) : 0, page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0 && (size_t)pages <= SIZE_MAX / (size_t)page)
        limit = (size_t)pages * (size_t)page;
#endif
    if (broadcast && !(nd_mul3_size((size_t)d[0], (size_t)d[1], (size_t)d[2], &bytes) &&
                       nd_mul_size(bytes, (size_t)PyArray_ITEMSIZE(cur), &bytes) && bytes <= limit))
        return PyErr_Format(PyExc_MemoryError, "currents of shape (%zd, %zd, %zd) describe a raster larger than this "
                            "machine's memory", (Py_ssize_t)d[0], (Py_ssize_t)d[1], (Py_ssize_t)d[2]), -1;
    if (a->v0 && nd_check_shape(a->v0, "v0", 2, d + 1, "(batch, neurons) of the currents") < 0)
        return -1;
    size_t nb = 0;
    st = a->bits && !a->backward ? nd_spike_bits_size(a->T, a->B, a->n, &nb) : ND_OK;
    a->nbytes = (int64_t)nb;
    return st;
}

/* Whether the bytes of a (NULL: no) and of the array b overlap. */
static int nd_overlap(PyArrayObject *a, PyObject *b)
{
    const char *pa = a ? PyArray_BYTES(a) : NULL, *pb = PyArray_BYTES((PyArrayObject *)b);
    return a && pa < pb + PyArray_NBYTES((PyArrayObject *)b) && pb < pa + PyArray_NBYTES(a) && PyArray_NBYTES(a);
}

/* lif_backward's gradient of the currents: a new array ((B, n) summed over steps with
 * sum_time), or out when it is the currents array itself, read in place (the kernel may write
 * over the currents it reads). Any other out is refused, and so are an out the currents were
 * copied from (the copy would be written) and one sharing memory with another input. */
static PyObject *nd_lif_dcurrents(const nd_lif_args *a, PyArrayObject *cur, const npy_intp d[3], int tn)
{
    if (!a->out)
        return PyArray_SimpleNew(3 - a->sum_time, (npy_intp *)d + a->sum_time, tn); /* (B, n) or (T, B, n) */
    if (a->sum_time)
        return PyErr_Format(PyExc_ValueError, "out cannot take a gradient summed over time");
    if (a->out != a->currents || (PyObject *)cur != a->currents || !PyArray_ISCARRAY(cur))
        return PyErr_Format(PyExc_ValueError,
                            "out must be the currents array itself (C-contiguous, writeable, of the result's dtype)");
    if (nd_overlap(a->dspikes, a->out) || nd_overlap(a->dmem, a->out) || nd_overlap(a->v0, a->out))
        return PyErr_Format(PyExc_ValueError, "out shares memory with dspikes, dmembrane or v0");
    return Py_NewRef(a->out);
}

/* lif_backward's dcurrents and the cotangents' shapes: dspikes is (T, B, n) or one (B, n) row every
 * step shares (the cotangent of a mean rate). */
static int nd_lif_cotangents(L *a)
{
    const npy_intp d[3] = {a->T, a->B, a->n};
    const int shared = a->dspikes && PyArray_NDIM(a->dspikes) == 2;
    const char *raster = "(time, batch, neurons) of the currents", *row = "(batch, neurons) shared by every step";
    return (a->dspikes && nd_check_shape(a->dspikes, "dspikes", 3 - shared, d + shared, shared ? row : raster)) ||
                   (a->dmem && nd_check_shape(a->dmem, "dmembrane", 3, d, raster) < 0) ||
                   !(a->res[0] = nd_lif_dcurrents(a, (PyArrayObject *)a->cur, d, PyArray_TYPE((PyArrayObject *)a->cur)))
               ? -1 : ND_OK;
}

/* lif_forward -> (spikes, membrane, bits, v_end, rate), None for an output not asked for;
 * lif_backward -> (dcurrents ((B, n) summed over steps with sum_time), dv0). */
static int nd_lif_run(PyObject *module, void *args, int tn)
{
    L *a = args;
    void *cd = ND_DATA(a->cur), *v0d = ND_DATA(a->v0), *dsd = ND_DATA(a->dspikes), *dmd = ND_DATA(a->dmem);
    void *o0 = ND_DATA(a->res[0]), *o1 = ND_DATA(a->res[1]), *o2 = ND_DATA(a->res[2]), *o3 = ND_DATA(a->res[3]);
    const int64_t row = a->B * a->n, ds_ts = a->dspikes && PyArray_NDIM(a->dspikes) == 2 ? 0 : row;
    int st = ND_OK;
    ND_NOGIL(st, a->backward ? ND_DISPATCH(tn, nd_lif_backward, &a->p, a->T, a->B, a->n, cd, a->tstride, v0d, dsd,
                                           ds_ts, dmd, o0, a->sum_time ? 0 : row, o1)
                             : ND_DISPATCH(tn, nd_lif_forward, &a->p, a->T, a->B, a->n, cd, a->tstride, v0d, o0, o1,
                                           o2, ND_DATA(a->res[4]), o3));
    return st;
}
#define ND_LIF_ROWS(...)                                                                                           \
    ND_CHECK(nd_lif_currents), ND_KEEP(L, cur), ND_DIM(L, T, "time"), ND_DIM(L, B, "batch"), ND_DIM(L, n, "neurons"), \
        __VA_ARGS__, {NULL}

static const nd_arg lif_forward_args[] = {
    ND_LIF_ARGS, ND_LIF_PARAMS, ND_SCALAR(L, spikes, "spikes", ND_ARG_BOOL, ND_OPTIONAL),
    ND_SCALAR(L, membrane, "membrane", ND_ARG_BOOL, ND_OPTIONAL), ND_SCALAR(L, bits, "bits", ND_ARG_BOOL, ND_OPTIONAL),
    ND_SCALAR(L, rate, "rate", ND_ARG_BOOL, ND_OPTIONAL),
    ND_LIF_ROWS(ND_DIM(L, nbytes, "bytes"), ND_OUT(L, res[0], "spikes", ND_WHEN(L, spikes), "(time, batch, neurons)")
               , ND_OUT(L, res[1], "membrane", ND_WHEN(L, membrane), "(time, batch, neurons)")
               , ND_OUT_T(L, res[2], "bits", ND_WHEN(L, bits), "(bytes,)", NPY_UINT8)
               , ND_OUT(L, res[3], "v_end", 0, "(batch, neurons)")
               , ND_OUT(L, res[4], "rate", ND_WHEN(L, rate), "(batch, neurons)"))};
ND_ENTRY_WITH(lif_forward, L, nd_lif_forward_default, NULL, nd_lif_run,
              "lif_forward(currents, v0=None, *, tau or beta, threshold, reset, reset_delay, surrogate, slope, "
              "detach_reset, smooth, spikes=True, membrane=False, bits=False, rate=False) -> (spikes, membrane, bits, "
              "v_end, rate)")

static const nd_arg lif_backward_args[] = {
    ND_LIF_ARGS, ND_IN(L, dspikes, "dspikes", ND_FINITE | ND_NONE | ND_OPTIONAL, NULL),
    ND_IN(L, dmem, "dmembrane", ND_FINITE | ND_NONE | ND_OPTIONAL, "(time, batch, neurons)"), ND_LIF_PARAMS,
    ND_SCALAR(L, sum_time, "sum_time", ND_ARG_BOOL, ND_OPTIONAL),
    ND_SCALAR(L, out, "out", ND_ARG_OBJECT, ND_NONE | ND_OPTIONAL),
    ND_LIF_ROWS(ND_CHECK(nd_lif_cotangents), ND_OUT(L, res[0], "dcurrents", 0, NULL)
               , ND_OUT(L, res[1], "dv0", 0, "(batch, neurons)"))};
ND_ENTRY_WITH(lif_backward, L, nd_lif_backward_default, NULL, nd_lif_run,
              "lif_backward(currents, v0=None, dspikes=None, dmembrane=None, *, the parameters of lif_forward, "
              "sum_time=False, out=None) -> (dcurrents, dv0)")

static int nd_lif_rules(const L *a) { return nd_lif_params_check(&a->p); }
static const nd_arg lif_check_args[] = {ND_LIF_PARAMS, ND_CHECK(nd_lif_rules), {NULL}};
ND_CHECK_ENTRY(lif_check, L, nd_lif_forward_default,
               "lif_check(*, the parameters of lif_forward): raises what a LIF kernel would for them")
#undef L

/* ---- spike bits and encoders -------------------------------------------------------------- */

typedef struct {
    PyObject *bits, *like, *packed, *out;
    PyArrayObject *x;
    int64_t T, B, n;
    uint64_t seed, stream;
    int encoding;
} nd_spike_args;
#define S nd_spike_args

/* The packed bits as a uint8 vector, their size checked by the kernel's rule. */
static int nd_bits_array(S *a)
{
    size_t nbytes;
    int st = nd_spike_bits_size(a->T, a->B, a->n, &nbytes);
    if (st == ND_OK && !(a->packed = PyArray_FROMANY(a->bits, NPY_UINT8, 1, 1, NPY_ARRAY_IN_ARRAY)))
        return -1;
    return st;
}

static const nd_arg spike_bits_unpack_args[] = {
    ND_SCALAR(S, bits, "bits", ND_ARG_OBJECT, 0), ND_SIZE(S, T, "T", "T", 0), ND_SIZE(S, B, "B", "B", 0),
    ND_SIZE(S, n, "n", "n", 0), ND_SCALAR(S, like, "like", ND_ARG_OBJECT, ND_TYPE), ND_CHECK(nd_bits_array),
    ND_KEEP(S, packed), ND_OUT(S, out, "spikes", 0, "(T, B, n)"), {NULL}};
ND_KERNEL_ENTRY(spike_bits_unpack, S, NULL,
                ND_DISPATCH(tn, nd_spike_bits_unpack, a->T, a->B, a->n, ND_DATA(a->packed),
                            (size_t)PyArray_SIZE((PyArrayObject *)a->packed), ND_DATA(a->out)),
                "spike_bits_unpack(bits, T, B, n, like) -> the (T, B, n) spikes packed in bits, of like's dtype")

/* The train's length by the kernel's rule, and its axes within NumPy's limit. */
static int nd_encode_rules(const S *a)
{
    size_t len;
    const int nd = PyArray_NDIM(a->x), st = nd_encode_len(a->encoding, a->T, PyArray_SIZE(a->x), &len);
    if (st == ND_OK && nd + 1 > NPY_MAXDIMS)
        return PyErr_Format(PyExc_ValueError, "x has %d axes; a spike train adds one to at most %d", nd, NPY_MAXDIMS), -1;
    return st;
}

static const nd_arg encode_args[] = {
    ND_IN(S, x, "x", ND_TYPE | ND_FINITE, NULL), ND_SIZE(S, T, "num_timesteps", "T", 0),
    ND_CHOICE(S, encoding, "encoding", 0, nd_encoding_names), ND_SCALAR(S, seed, "seed", ND_ARG_SEED, ND_OPTIONAL),
    ND_SCALAR(S, stream, "stream", ND_ARG_SEED, ND_OPTIONAL), ND_CHECK(nd_encode_rules),
    ND_OUT(S, out, "train", 0, "(T, *x)"), {NULL}};
ND_KERNEL_ENTRY(encode, S, NULL,
                ND_DISPATCH(tn, nd_encode, a->encoding, a->T, PyArray_SIZE(a->x), ND_DATA(a->x), a->seed, a->stream,
                            ND_DATA(a->out)),
                "encode(x, num_timesteps, encoding, seed=0, stream=0) -> the (num_timesteps,) + x.shape spike train")
#undef S

static const nd_table nd_snn_tables[] = {{"lif_resets", nd_lif_reset_names},
                                         {"lif_surrogates", nd_lif_surrogate_names},
                                         {"spike_encodings", nd_encoding_names},
                                         {NULL, NULL}};
ND_FAMILY(nd_snn_family, nd_snn_tables, &lif_forward_entry, &lif_backward_entry, &lif_check_entry,
          &spike_bits_unpack_entry, &encode_entry);

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
} nd_lif_args;

static void nd_lif_forward_default(nd_lif_args *a)
{
    nd_lif_params_default(&a->p);
    a->spikes = 1;
}

static void nd_lif_backward_default(nd_lif_args *a)
{
    nd_lif_params_default(&a->p);
    a->backward = 1;
}

/* The neuron's parameters go straight into the kernel's struct: its defaults are _core.DEFAULTS
 * and nd_lif_params_check states its rules. The currents set the call's dtype. */
#define ND_LIF_ARGS                                                                                                \
    ND_SCALAR(nd_lif_args, currents, "currents", ND_ARG_OBJECT, ND_TYPE),                                          \
        ND_IN(nd_lif_args, v0, "v0", ND_FINITE | ND_NONE | ND_OPTIONAL, "(batch, neurons)")
#define ND_LIF_PARAMS                                                                                              \
    ND_SCALAR(nd_lif_args, p.tau, "tau", ND_ARG_DOUBLE, ND_OPTIONAL | ND_GIVEN(nd_lif_args, p.tau_given)),         \
        ND_SCALAR(nd_lif_args, p.beta, "beta", ND_ARG_DOUBLE, ND_OPTIONAL | ND_GIVEN(nd_lif_args, p.beta_given)),  \
        ND_SCALAR(nd_lif_args, p.threshold, "threshold", ND_ARG_DOUBLE, ND_OPTIONAL),                              \
        ND_CHOICE(nd_lif_args, p.reset, "reset", ND_OPTIONAL, nd_lif_reset_names),                                 \
        ND_SCALAR(nd_lif_args, p.reset_delay, "reset_delay", ND_ARG_BOOL, ND_OPTIONAL),                            \
        ND_CHOICE(nd_lif_args, p.surrogate, "surrogate", ND_OPTIONAL, nd_lif_surrogate_names),                     \
        ND_SCALAR(nd_lif_args, p.slope, "slope", ND_ARG_DOUBLE, ND_OPTIONAL),                                      \
        ND_SCALAR(nd_lif_args, p.detach_reset, "detach_reset", ND_ARG_BOOL, ND_OPTIONAL),                          \
        ND_SCALAR(nd_lif_args, p.smooth, "smooth", ND_ARG_BOOL, ND_OPTIONAL)

/* The parameters checked before anything is allocated, then the currents and the run's sizes:
 * a (T, B, n) array (*tstride B n), or one that repeats a single (B, n) current along time (a
 * time stride of 0, as np.broadcast_to makes), read once without a T-fold copy (*tstride 0). A
 * broadcast run still takes T B n neuron-steps: one whose raster would not fit in this
 * machine's memory is refused as its copy would be (a 2^49-step view would run for days). */
static PyArrayObject *nd_lif_currents(const nd_lif_args *a, int tn, npy_intp d[3], int64_t *tstride, const char *what)
{
    int st = nd_lif_params_check(&a->p);
    if (st != ND_OK)
        return (PyArrayObject *)nd_raise_status(st, what);
    PyArrayObject *whole = PyArray_Check(a->currents) ? (PyArrayObject *)a->currents : NULL, *cur;
    const int broadcast = whole && PyArray_NDIM(whole) == 3 && PyArray_DIM(whole, 0) > 1 && !PyArray_STRIDE(whole, 0);
    PyObject *first = broadcast ? PySequence_GetItem(a->currents, 0) : Py_NewRef(a->currents); /* what is read */
    cur = first ? nd_float_array(first, tn, "currents") : NULL;
    Py_XDECREF(first);
    if (!cur || (!broadcast && nd_check_shape(cur, "currents", 3, NULL, "(time, batch, neurons)") < 0) ||
        nd_check_finite(cur, "currents") < 0) {
        Py_XDECREF(cur);
        return NULL;
    }
    memcpy(d, PyArray_DIMS(broadcast ? whole : cur), 3 * sizeof(npy_intp));
    *tstride = broadcast ? 0 : (int64_t)d[1] * d[2];
    size_t bytes, limit = SIZE_MAX;
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
    const long pages = broadcast ? sysconf(_SC_PHYS_PAGES) : 0, page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0 && (size_t)pages <= SIZE_MAX / (size_t)page)
        limit = (size_t)pages * (size_t)page;
#endif
    if (broadcast && !(nd_mul3_size((size_t)d[0], (size_t)d[1], (size_t)d[2], &bytes) &&
                       nd_mul_size(bytes, (size_t)PyArray_ITEMSIZE(cur), &bytes) && bytes <= limit))
        PyErr_Format(PyExc_MemoryError, "currents of shape (%zd, %zd, %zd) describe a raster larger than this "
                     "machine's memory", (Py_ssize_t)d[0], (Py_ssize_t)d[1], (Py_ssize_t)d[2]);
    else if (!a->v0 || nd_check_shape(a->v0, "v0", 2, d + 1, "(batch, neurons) of the currents") == 0)
        return cur;
    Py_DECREF(cur);
    return NULL;
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
        return a->sum_time ? nd_empty(tn, 2, d[1], d[2]) : nd_empty(tn, 3, d[0], d[1], d[2]);
    if (a->sum_time)
        return PyErr_Format(PyExc_ValueError, "out cannot take a gradient summed over time");
    if (a->out != a->currents || (PyObject *)cur != a->currents || !PyArray_ISCARRAY(cur))
        return PyErr_Format(PyExc_ValueError,
                            "out must be the currents array itself (C-contiguous, writeable, of the result's dtype)");
    if (nd_overlap(a->dspikes, a->out) || nd_overlap(a->dmem, a->out) || nd_overlap(a->v0, a->out))
        return PyErr_Format(PyExc_ValueError, "out shares memory with dspikes, dmembrane or v0");
    return Py_NewRef(a->out);
}

/* The call's outputs, allocated after checking the cotangents' shapes: lif_forward's
 * (spikes, membrane, bits, v_end, rate), NULL where not asked for, or lif_backward's
 * (dcurrents, dv0). dspikes is (T, B, n) or one (B, n) row every step shares (the cotangent of
 * a mean rate). -1 with an exception set on failure. */
static int nd_lif_outputs(const nd_lif_args *a, PyArrayObject *cur, const npy_intp d[3], int tn, PyObject **o)
{
    const int shared = a->dspikes && PyArray_NDIM(a->dspikes) == 2;
    const char *raster = "(time, batch, neurons) of the currents", *row = "(batch, neurons) shared by every step";
    if (a->backward)
        return (a->dspikes && nd_check_shape(a->dspikes, "dspikes", 3 - shared, d + shared, shared ? row : raster)) ||
                       (a->dmem && nd_check_shape(a->dmem, "dmembrane", 3, d, raster) < 0) ||
                       !(o[0] = nd_lif_dcurrents(a, cur, d, tn)) || !(o[1] = nd_empty(tn, 2, d[1], d[2]))
                   ? -1 : 0;
    size_t nb = 0;
    int st = a->bits ? nd_spike_bits_size(d[0], d[1], d[2], &nb) : ND_OK;
    if (st != ND_OK)
        return nd_raise_status(st, "lif_forward"), -1;
    return (a->spikes && !(o[0] = nd_empty(tn, 3, d[0], d[1], d[2]))) ||
                   (a->membrane && !(o[1] = nd_empty(tn, 3, d[0], d[1], d[2]))) ||
                   (a->bits && !(o[2] = nd_empty(NPY_UINT8, 1, (npy_intp)nb))) ||
                   !(o[3] = nd_empty(tn, 2, d[1], d[2])) || (a->rate && !(o[4] = nd_empty(tn, 2, d[1], d[2])))
               ? -1 : 0;
}

/* lif_forward -> (spikes, membrane, bits, v_end, rate), None for an output not asked for;
 * lif_backward -> (dcurrents ((B, n) summed over steps with sum_time), dv0). */
static PyObject *nd_lif_body(PyObject *module, void *args, int tn)
{
    nd_lif_args *a = args;
    const char *what = a->backward ? "lif_backward" : "lif_forward";
    npy_intp d[3];
    int64_t ts = 0;
    PyArrayObject *cur = nd_lif_currents(a, tn, d, &ts, what);
    PyObject *o[5] = {NULL, NULL, NULL, NULL, NULL};
    int st = ND_OK;
    if (cur && nd_lif_outputs(a, cur, d, tn, o) == 0) {
        void *cd = PyArray_DATA(cur), *v0d = ND_DATA(a->v0), *dsd = ND_DATA(a->dspikes), *dmd = ND_DATA(a->dmem);
        void *o0 = ND_DATA(o[0]), *o1 = ND_DATA(o[1]), *o2 = ND_DATA(o[2]), *o3 = ND_DATA(o[3]), *o4 = ND_DATA(o[4]);
        const int64_t row = (int64_t)d[1] * d[2], ds_ts = a->dspikes && PyArray_NDIM(a->dspikes) == 2 ? 0 : row;
        ND_NOGIL(st, a->backward ? ND_DISPATCH(tn, nd_lif_backward, &a->p, d[0], d[1], d[2], cd, ts, v0d, dsd, ds_ts,
                                               dmd, o0, a->sum_time ? 0 : row, o1)
                                 : ND_DISPATCH(tn, nd_lif_forward, &a->p, d[0], d[1], d[2], cd, ts, v0d, o0, o1, o2, o4,
                                               o3));
    }
    Py_XDECREF(cur);
    return nd_finish(st, what, a->backward ? 2 : 5, o);
}
#define lif_forward_body nd_lif_body
#define lif_backward_body nd_lif_body

static const nd_arg lif_forward_args[] = {
    ND_LIF_ARGS, ND_LIF_PARAMS, ND_SCALAR(nd_lif_args, spikes, "spikes", ND_ARG_BOOL, ND_OPTIONAL),
    ND_SCALAR(nd_lif_args, membrane, "membrane", ND_ARG_BOOL, ND_OPTIONAL),
    ND_SCALAR(nd_lif_args, bits, "bits", ND_ARG_BOOL, ND_OPTIONAL),
    ND_SCALAR(nd_lif_args, rate, "rate", ND_ARG_BOOL, ND_OPTIONAL), {NULL}};
ND_ENTRY(lif_forward, nd_lif_args, nd_lif_forward_default,
         "lif_forward(currents, v0=None, *, tau or beta, threshold, reset, reset_delay, surrogate, slope, "
         "detach_reset, smooth, spikes=True, membrane=False, bits=False, rate=False) -> (spikes, membrane, bits, "
         "v_end, rate)")

static const nd_arg lif_backward_args[] = {
    ND_LIF_ARGS,
    ND_IN(nd_lif_args, dspikes, "dspikes", ND_FINITE | ND_NONE | ND_OPTIONAL, NULL),
    ND_IN(nd_lif_args, dmem, "dmembrane", ND_FINITE | ND_NONE | ND_OPTIONAL, "(time, batch, neurons)"),
    ND_LIF_PARAMS, ND_SCALAR(nd_lif_args, sum_time, "sum_time", ND_ARG_BOOL, ND_OPTIONAL),
    ND_SCALAR(nd_lif_args, out, "out", ND_ARG_OBJECT, ND_NONE | ND_OPTIONAL), {NULL}};
ND_ENTRY(lif_backward, nd_lif_args, nd_lif_backward_default,
         "lif_backward(currents, v0=None, dspikes=None, dmembrane=None, *, the parameters of lif_forward, "
         "sum_time=False, out=None) -> (dcurrents, dv0)")

static const nd_arg lif_check_args[] = {ND_LIF_PARAMS, {NULL}};
static PyObject *lif_check_body(PyObject *module, void *args, int tn)
{
    int st = nd_lif_params_check(&((nd_lif_args *)args)->p);
    return st != ND_OK ? nd_raise_status(st, "lif_check") : Py_NewRef(Py_None);
}
ND_ENTRY(lif_check, nd_lif_args, nd_lif_forward_default,
         "lif_check(*, the parameters of lif_forward): raises what a LIF kernel would for them")

/* ---- spike bits and encoders -------------------------------------------------------------- */

typedef struct {
    PyObject *bits, *like;
    PyArrayObject *x;
    int64_t T, B, n;
    uint64_t seed, stream;
    int encoding;
} nd_spike_args;

static const nd_arg spike_bits_unpack_args[] = {
    ND_SCALAR(nd_spike_args, bits, "bits", ND_ARG_OBJECT, 0), ND_SCALAR(nd_spike_args, T, "T", ND_ARG_INT, 0),
    ND_SCALAR(nd_spike_args, B, "B", ND_ARG_INT, 0), ND_SCALAR(nd_spike_args, n, "n", ND_ARG_INT, 0),
    ND_SCALAR(nd_spike_args, like, "like", ND_ARG_OBJECT, ND_TYPE), {NULL}};

static PyObject *spike_bits_unpack_body(PyObject *module, void *args, int tn)
{
    nd_spike_args *a = args;
    size_t nbytes;
    int st = nd_spike_bits_size(a->T, a->B, a->n, &nbytes);
    PyArrayObject *bits =
        st == ND_OK ? (PyArrayObject *)PyArray_FROMANY(a->bits, NPY_UINT8, 1, 1, NPY_ARRAY_IN_ARRAY) : NULL;
    PyObject *out = bits ? nd_empty(tn, 3, (npy_intp)a->T, (npy_intp)a->B, (npy_intp)a->n) : NULL;
    if (out)
        ND_NOGIL(st, ND_DISPATCH(tn, nd_spike_bits_unpack, a->T, a->B, a->n, ND_DATA(bits), (size_t)PyArray_SIZE(bits),
                                 ND_DATA(out)));
    Py_XDECREF(bits);
    return nd_finish(st, "spike_bits_unpack", 1, &out);
}
ND_ENTRY(spike_bits_unpack, nd_spike_args, NULL,
         "spike_bits_unpack(bits, T, B, n, like) -> the (T, B, n) spikes packed in bits, of like's dtype")

static const nd_arg encode_args[] = {
    ND_IN(nd_spike_args, x, "x", ND_TYPE | ND_FINITE, NULL),
    ND_SCALAR(nd_spike_args, T, "num_timesteps", ND_ARG_INT, 0),
    ND_CHOICE(nd_spike_args, encoding, "encoding", 0, nd_encoding_names),
    ND_SCALAR(nd_spike_args, seed, "seed", ND_ARG_SEED, ND_OPTIONAL),
    ND_SCALAR(nd_spike_args, stream, "stream", ND_ARG_SEED, ND_OPTIONAL),
    {NULL}};

static PyObject *encode_body(PyObject *module, void *args, int tn)
{
    nd_spike_args *a = args;
    const int nd = PyArray_NDIM(a->x);
    const int64_t n = (int64_t)PyArray_SIZE(a->x);
    size_t len;
    int st = nd_encode_len(a->encoding, a->T, n, &len);
    if (st != ND_OK)
        return nd_raise_status(st, "encode");
    if (nd + 1 > NPY_MAXDIMS)
        return PyErr_Format(PyExc_ValueError, "x has %d axes; a spike train adds one to at most %d", nd, NPY_MAXDIMS);
    npy_intp dims[NPY_MAXDIMS] = {(npy_intp)a->T};
    if (nd > 0) /* a 0-d array's dims pointer may be NULL */
        memcpy(dims + 1, PyArray_DIMS(a->x), (size_t)nd * sizeof(npy_intp));
    PyObject *out = PyArray_SimpleNew(nd + 1, dims, tn);
    ND_NOGIL(st, ND_DISPATCH(tn, nd_encode, a->encoding, a->T, n, ND_DATA(a->x), a->seed, a->stream, ND_DATA(out)));
    return nd_finish(st, "encode", 1, &out);
}
ND_ENTRY(encode, nd_spike_args, NULL,
         "encode(x, num_timesteps, encoding, seed=0, stream=0) -> the (num_timesteps,) + x.shape spike train")

static const nd_table nd_snn_tables[] = {{"lif_resets", nd_lif_reset_names},
                                         {"lif_surrogates", nd_lif_surrogate_names},
                                         {"spike_encodings", nd_encoding_names},
                                         {NULL, NULL}};
ND_FAMILY(nd_snn_family, nd_snn_tables, &lif_forward_entry, &lif_backward_entry, &lif_check_entry,
          &spike_bits_unpack_entry, &encode_entry);

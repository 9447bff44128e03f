/* Binding of the spiking family: LIF forward and backward over [T, B, n] and their parameter
 * check, spike bits, and the spike encoders. */
#include "nd_bind.h"

#include <string.h>
#include <unistd.h>

#include "nd_generic.h"
#include "nd_snn.h"
#include "nd_status.h"

/* ---- LIF neurons ------------------------------------------------------------------------- */

typedef struct {
    PyObject *currents; /* (T, B, n), or one (B, n) current broadcast along time (read in place) */
    PyArrayObject *v0, *dspikes, *dmem;
    nd_lif_params p;
    int spikes, membrane, bits, rate; /* lif_forward: the outputs asked for */
    int sum_time;                     /* lif_backward: the gradient of a current every step shares */
    PyObject *out;                    /* lif_backward: the currents array, to write the gradient over */
} nd_lif_args;

static void nd_lif_args_default(nd_lif_args *a)
{
    nd_lif_params_default(&a->p);
    a->spikes = 1;
}

/* The neuron's parameters go straight into the kernel's struct, whose defaults are
 * _core.DEFAULTS and whose rules nd_lif_params_check states. */
#define ND_LIF_PARAMS                                                                                      \
    ND_SCALAR(nd_lif_args, p.tau, "tau", ND_ARG_DOUBLE, ND_OPTIONAL | ND_GIVEN(nd_lif_args, p.tau_given)),  \
        ND_SCALAR(nd_lif_args, p.beta, "beta", ND_ARG_DOUBLE, ND_OPTIONAL | ND_GIVEN(nd_lif_args, p.beta_given)), \
        ND_SCALAR(nd_lif_args, p.threshold, "threshold", ND_ARG_DOUBLE, ND_OPTIONAL),                      \
        ND_CHOICE(nd_lif_args, p.reset, "reset", ND_OPTIONAL, nd_lif_reset_names),                         \
        ND_SCALAR(nd_lif_args, p.reset_delay, "reset_delay", ND_ARG_BOOL, ND_OPTIONAL),                    \
        ND_CHOICE(nd_lif_args, p.surrogate, "surrogate", ND_OPTIONAL, nd_lif_surrogate_names),             \
        ND_SCALAR(nd_lif_args, p.slope, "slope", ND_ARG_DOUBLE, ND_OPTIONAL),                              \
        ND_SCALAR(nd_lif_args, p.detach_reset, "detach_reset", ND_ARG_BOOL, ND_OPTIONAL),                  \
        ND_SCALAR(nd_lif_args, p.smooth, "smooth", ND_ARG_BOOL, ND_OPTIONAL)

/* The currents set the call's dtype; the other arrays are cast to it. */
#define ND_LIF_INPUTS                                                                                      \
    {"currents", ND_ARG_OBJECT, ND_TYPE, offsetof(nd_lif_args, currents), -1, NULL, NULL},              \
        ND_IN(nd_lif_args, v0, "v0", ND_FINITE | ND_NONE | ND_OPTIONAL, 2, "(batch, neurons)")

/* A time-broadcast current is read in place, but the run still takes T B n neuron-steps: one
 * whose (T, B, n) raster would not fit in this machine's memory is refused as its copy would
 * be (a 2^49-step view would otherwise run for days, not fail). */
static int nd_raster_fits(PyArrayObject *whole, npy_intp itemsize)
{
    size_t elems, bytes;
    size_t limit = SIZE_MAX;
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0 && (size_t)pages <= SIZE_MAX / (size_t)page)
        limit = (size_t)pages * (size_t)page;
#endif
    const npy_intp *d = PyArray_DIMS(whole);
    if (!nd_mul3_size((size_t)d[0], (size_t)d[1], (size_t)d[2], &elems) || !nd_mul_size(elems, (size_t)itemsize, &bytes) ||
        bytes > limit) {
        PyErr_Format(PyExc_MemoryError,
                     "currents of shape (%zd, %zd, %zd) describe a raster larger than this machine's memory",
                     (Py_ssize_t)d[0], (Py_ssize_t)d[1], (Py_ssize_t)d[2]);
        return -1;
    }
    return 0;
}

/* The run's sizes and its currents: a (T, B, n) array, or one that repeats a single (B, n)
 * current along time (a time stride of 0, as np.broadcast_to makes), which is read once
 * without a T-fold copy (*tstride 0, else B n). The v0 given must be (B, n). NULL with an
 * exception set on failure. */
static PyArrayObject *nd_lif_currents(const nd_lif_args *a, int tn, npy_intp dims[3], int64_t *tstride)
{
    PyObject *obj = a->currents;
    PyArrayObject *cur;
    if (PyArray_Check(obj) && PyArray_NDIM((PyArrayObject *)obj) == 3 && PyArray_DIM((PyArrayObject *)obj, 0) > 1 &&
        PyArray_STRIDE((PyArrayObject *)obj, 0) == 0) {
        PyObject *first = PySequence_GetItem(obj, 0); /* the (B, n) current every step reads */
        cur = first ? nd_float_array(first, tn, "currents") : NULL;
        Py_XDECREF(first);
        if (cur && (nd_check_finite(cur, "currents") < 0 || nd_raster_fits((PyArrayObject *)obj, PyArray_ITEMSIZE(cur)) < 0))
            Py_CLEAR(cur);
        if (!cur)
            return NULL;
        memcpy(dims, PyArray_DIMS((PyArrayObject *)obj), 3 * sizeof(npy_intp));
        *tstride = 0;
    } else {
        cur = nd_float_array(obj, tn, "currents");
        if (!cur)
            return NULL;
        if (nd_check_shape(cur, "currents", 3, NULL, "(time, batch, neurons)") < 0 || nd_check_finite(cur, "currents") < 0) {
            Py_DECREF(cur);
            return NULL;
        }
        memcpy(dims, PyArray_DIMS(cur), 3 * sizeof(npy_intp));
        *tstride = (int64_t)dims[1] * dims[2];
    }
    if (a->v0 && nd_check_shape(a->v0, "v0", 2, dims + 1, "(batch, neurons) of the currents") < 0)
        Py_CLEAR(cur);
    return cur;
}

#define ND_DATA(a) ((a) ? PyArray_DATA((PyArrayObject *)(a)) : NULL)

static const nd_arg lif_forward_args[] = {
    ND_LIF_INPUTS,
    ND_LIF_PARAMS,
    ND_SCALAR(nd_lif_args, spikes, "spikes", ND_ARG_BOOL, ND_OPTIONAL),
    ND_SCALAR(nd_lif_args, membrane, "membrane", ND_ARG_BOOL, ND_OPTIONAL),
    ND_SCALAR(nd_lif_args, bits, "bits", ND_ARG_BOOL, ND_OPTIONAL),
    ND_SCALAR(nd_lif_args, rate, "rate", ND_ARG_BOOL, ND_OPTIONAL),
    {NULL}};

/* -> (spikes|None, membrane|None, bits|None, v_end, rate|None) */
static PyObject *lif_forward_body(PyObject *module, void *args, int tn)
{
    nd_lif_args *a = args;
    int st = nd_lif_params_check(&a->p); /* before anything is allocated */
    if (st != ND_OK)
        return nd_raise_status(st, "lif_forward");
    npy_intp d[3];
    int64_t tstride;
    PyArrayObject *cur = nd_lif_currents(a, tn, d, &tstride);
    if (!cur)
        return NULL;
    PyObject *s = NULL, *m = NULL, *bits = NULL, *vend = NULL, *rate = NULL, *res = NULL;
    size_t nbytes = 0;
    if (a->bits && (st = nd_spike_bits_size(d[0], d[1], d[2], &nbytes)) != ND_OK) {
        nd_raise_status(st, "lif_forward");
        goto done;
    }
    npy_intp nb = (npy_intp)nbytes;
    if ((a->spikes && !(s = nd_empty(tn, 3, d[0], d[1], d[2]))) ||
        (a->membrane && !(m = nd_empty(tn, 3, d[0], d[1], d[2]))) ||
        (a->bits && !(bits = PyArray_SimpleNew(1, &nb, NPY_UINT8))) || !(vend = nd_empty(tn, 2, d[1], d[2])) ||
        (a->rate && !(rate = nd_empty(tn, 2, d[1], d[2]))))
        goto done;
    void *cd = PyArray_DATA(cur), *v0d = ND_DATA(a->v0), *sd = ND_DATA(s), *md = ND_DATA(m), *bd = ND_DATA(bits);
    void *rd = ND_DATA(rate), *ved = ND_DATA(vend);
    Py_BEGIN_ALLOW_THREADS
    st = ND_DISPATCH(tn, nd_lif_forward, &a->p, d[0], d[1], d[2], cd, tstride, v0d, sd, md, bd, rd, ved);
    Py_END_ALLOW_THREADS
    res = st != ND_OK ? nd_raise_status(st, "lif_forward")
                      : PyTuple_Pack(5, s ? s : Py_None, m ? m : Py_None, bits ? bits : Py_None, vend,
                                     rate ? rate : Py_None);
done:
    Py_DECREF(cur);
    Py_XDECREF(s);
    Py_XDECREF(m);
    Py_XDECREF(bits);
    Py_XDECREF(vend);
    Py_XDECREF(rate);
    return res;
}
ND_ENTRY(lif_forward, nd_lif_args, nd_lif_args_default,
         "lif_forward(currents, v0=None, *, tau, beta, threshold, reset, reset_delay, surrogate, slope, "
         "detach_reset, smooth, spikes=True, membrane=False, bits=False, rate=False) -> (spikes, membrane, bits, "
         "v_end, rate), None for an output not asked for; tau and beta: one or neither")

static const nd_arg lif_backward_args[] = {
    ND_LIF_INPUTS,
    ND_IN(nd_lif_args, dspikes, "dspikes", ND_FINITE | ND_NONE | ND_OPTIONAL, -1, "(time, batch, neurons)"),
    ND_IN(nd_lif_args, dmem, "dmembrane", ND_FINITE | ND_NONE | ND_OPTIONAL, 3, "(time, batch, neurons)"),
    ND_LIF_PARAMS,
    ND_SCALAR(nd_lif_args, sum_time, "sum_time", ND_ARG_BOOL, ND_OPTIONAL),
    {"out", ND_ARG_OBJECT, ND_NONE | ND_OPTIONAL, offsetof(nd_lif_args, out), -1, NULL, NULL},
    {NULL}};

/* Whether two contiguous arrays' bytes overlap. */
static int nd_bytes_overlap(PyArrayObject *a, PyObject *b)
{
    if (!a)
        return 0;
    const char *pa = PyArray_BYTES(a), *pb = PyArray_BYTES((PyArrayObject *)b);
    const npy_intp na = PyArray_NBYTES(a), nb = PyArray_NBYTES((PyArrayObject *)b);
    return pa < pb + nb && pb < pa + na && na && nb;
}

/* The gradient of the currents: a new array ((B, n) with sum_time), or out when it is the
 * currents array itself, read in place (the kernel may overwrite the currents it reads; any
 * other out is refused, and so is an out that the currents were copied from, since the copy
 * would be written, and one sharing memory with another input). */
static PyObject *nd_lif_dcurrents(const nd_lif_args *a, PyArrayObject *cur, const npy_intp d[3], int tn)
{
    if (!a->out)
        return a->sum_time ? nd_empty(tn, 2, d[1], d[2]) : nd_empty(tn, 3, d[0], d[1], d[2]);
    if (a->sum_time)
        return PyErr_Format(PyExc_ValueError, "out cannot take a gradient summed over time");
    if (!PyArray_Check(a->out) || a->out != a->currents || (PyObject *)cur != a->currents ||
        !PyArray_ISCARRAY((PyArrayObject *)a->out))
        return PyErr_Format(PyExc_ValueError,
                            "out must be the currents array itself (C-contiguous, writeable, of the result's dtype)");
    if (nd_bytes_overlap(a->dspikes, a->out) || nd_bytes_overlap(a->dmem, a->out) || nd_bytes_overlap(a->v0, a->out))
        return PyErr_Format(PyExc_ValueError, "out shares memory with dspikes, dmembrane or v0");
    Py_INCREF(a->out);
    return a->out;
}

/* -> (dcurrents (T, B, n), or (B, n) summed over steps with sum_time, dv0 (B, n)) */
static PyObject *lif_backward_body(PyObject *module, void *args, int tn)
{
    nd_lif_args *a = args;
    int st = nd_lif_params_check(&a->p);
    if (st != ND_OK)
        return nd_raise_status(st, "lif_backward");
    npy_intp d[3];
    int64_t tstride;
    PyArrayObject *cur = nd_lif_currents(a, tn, d, &tstride);
    if (!cur)
        return NULL;
    PyObject *dc = NULL, *dv0 = NULL, *res = NULL;
    /* dspikes: (T, B, n), or one (B, n) row every step shares (the cotangent of a mean rate) */
    const int shared = a->dspikes && PyArray_NDIM(a->dspikes) == 2;
    if ((a->dspikes && (shared ? nd_check_shape(a->dspikes, "dspikes", 2, d + 1, "(batch, neurons) shared by every step")
                               : nd_check_shape(a->dspikes, "dspikes", 3, d, "(time, batch, neurons) of the currents"))) ||
        (a->dmem && nd_check_shape(a->dmem, "dmembrane", 3, d, "(time, batch, neurons) of the currents") < 0) ||
        !(dc = nd_lif_dcurrents(a, cur, d, tn)) || !(dv0 = nd_empty(tn, 2, d[1], d[2])))
        goto done;
    const int64_t row = (int64_t)d[1] * d[2];
    void *cd = PyArray_DATA(cur), *v0d = ND_DATA(a->v0), *dsd = ND_DATA(a->dspikes), *dmd = ND_DATA(a->dmem);
    void *dcd = ND_DATA(dc), *dvd = ND_DATA(dv0);
    Py_BEGIN_ALLOW_THREADS
    st = ND_DISPATCH(tn, nd_lif_backward, &a->p, d[0], d[1], d[2], cd, tstride, v0d, dsd, shared ? 0 : row, dmd, dcd,
                     a->sum_time ? 0 : row, dvd);
    Py_END_ALLOW_THREADS
    res = st != ND_OK ? nd_raise_status(st, "lif_backward") : PyTuple_Pack(2, dc, dv0);
done:
    Py_DECREF(cur);
    Py_XDECREF(dc);
    Py_XDECREF(dv0);
    return res;
}
ND_ENTRY(lif_backward, nd_lif_args, nd_lif_args_default,
         "lif_backward(currents, v0=None, dspikes=None, dmembrane=None, *, the parameters of lif_forward, "
         "sum_time=False, out=None) -> (dcurrents, dv0)")

static const nd_arg lif_check_args[] = {ND_LIF_PARAMS, {NULL}};

static PyObject *lif_check_body(PyObject *module, void *args, int tn)
{
    int st = nd_lif_params_check(&((nd_lif_args *)args)->p);
    return st != ND_OK ? nd_raise_status(st, "lif_check") : Py_NewRef(Py_None);
}
ND_ENTRY(lif_check, nd_lif_args, nd_lif_args_default,
         "lif_check(*, the parameters of lif_forward) -> None: raises what a LIF kernel would for them")

/* ---- spike bits --------------------------------------------------------------------------- */

typedef struct {
    PyObject *bits, *like;
    int64_t T, B, n;
} nd_bits_args;

static const nd_arg spike_bits_unpack_args[] = {
    {"bits", ND_ARG_OBJECT, 0, offsetof(nd_bits_args, bits), -1, NULL, NULL},
    ND_SCALAR(nd_bits_args, T, "T", ND_ARG_INT, 0),
    ND_SCALAR(nd_bits_args, B, "B", ND_ARG_INT, 0),
    ND_SCALAR(nd_bits_args, n, "n", ND_ARG_INT, 0),
    {"like", ND_ARG_OBJECT, ND_TYPE, offsetof(nd_bits_args, like), -1, NULL, NULL},
    {NULL}};

/* -> (T, B, n) 0/1 array of like's dtype */
static PyObject *spike_bits_unpack_body(PyObject *module, void *args, int tn)
{
    nd_bits_args *a = args;
    size_t nbytes;
    int st = nd_spike_bits_size(a->T, a->B, a->n, &nbytes);
    if (st != ND_OK)
        return nd_raise_status(st, "spike_bits_unpack");
    PyArrayObject *bits = (PyArrayObject *)PyArray_FROMANY(a->bits, NPY_UINT8, 1, 1, NPY_ARRAY_IN_ARRAY);
    PyObject *out = bits ? nd_empty(tn, 3, (npy_intp)a->T, (npy_intp)a->B, (npy_intp)a->n) : NULL, *res = NULL;
    if (out) {
        const uint8_t *bd = PyArray_DATA(bits);
        void *od = ND_DATA(out);
        Py_BEGIN_ALLOW_THREADS
        st = ND_DISPATCH(tn, nd_spike_bits_unpack, a->T, a->B, a->n, bd, (size_t)PyArray_SIZE(bits), od);
        Py_END_ALLOW_THREADS
        res = st != ND_OK ? nd_raise_status(st, "spike_bits_unpack") : Py_NewRef(out);
    }
    Py_XDECREF(bits);
    Py_XDECREF(out);
    return res;
}
ND_ENTRY(spike_bits_unpack, nd_bits_args, NULL,
         "spike_bits_unpack(bits, T, B, n, like) -> the (T, B, n) spikes packed in bits, of like's dtype")

/* ---- encoders ----------------------------------------------------------------------------- */

typedef struct {
    PyArrayObject *x;
    int64_t T, stream;
    int encoding;
    PyObject *seed; /* an int in [0, 2^64) */
} nd_encode_args;

static const nd_arg encode_args[] = {
    ND_IN(nd_encode_args, x, "x", ND_TYPE | ND_FINITE, -1, NULL),
    ND_SCALAR(nd_encode_args, T, "num_timesteps", ND_ARG_INT, 0),
    ND_CHOICE(nd_encode_args, encoding, "encoding", 0, nd_encoding_names),
    {"seed", ND_ARG_OBJECT, ND_OPTIONAL, offsetof(nd_encode_args, seed), -1, NULL, NULL},
    ND_SCALAR(nd_encode_args, stream, "stream", ND_ARG_INT, ND_OPTIONAL),
    {NULL}};

/* -> (num_timesteps,) + x.shape */
static PyObject *encode_body(PyObject *module, void *args, int tn)
{
    nd_encode_args *a = args;
    const int64_t n = (int64_t)PyArray_SIZE(a->x);
    uint64_t seed = a->seed ? PyLong_AsUnsignedLongLong(a->seed) : 0;
    if (seed == (uint64_t)-1 && PyErr_Occurred())
        return NULL;
    size_t len;
    int st = nd_encode_len(a->encoding, a->T, n, &len);
    if (st != ND_OK)
        return nd_raise_status(st, "encode");
    const int nd = PyArray_NDIM(a->x);
    if (nd + 1 > NPY_MAXDIMS)
        return PyErr_Format(PyExc_ValueError, "x has %d axes; a spike train adds one to at most %d", nd, NPY_MAXDIMS);
    npy_intp dims[NPY_MAXDIMS];
    dims[0] = (npy_intp)a->T;
    if (nd > 0) /* a 0-d array's dims pointer may be NULL */
        memcpy(dims + 1, PyArray_DIMS(a->x), (size_t)nd * sizeof(npy_intp));
    PyObject *out = PyArray_SimpleNew(nd + 1, dims, tn);
    if (!out)
        return NULL;
    void *xd = PyArray_DATA(a->x), *od = ND_DATA(out);
    Py_BEGIN_ALLOW_THREADS
    st = ND_DISPATCH(tn, nd_encode, a->encoding, a->T, n, xd, seed, (uint64_t)a->stream, od);
    Py_END_ALLOW_THREADS
    if (st != ND_OK)
        Py_SETREF(out, nd_raise_status(st, "encode"));
    return out;
}
ND_ENTRY(encode, nd_encode_args, NULL,
         "encode(x, num_timesteps, encoding, seed=0, stream=0) -> (num_timesteps,) + x.shape spike train")

static const nd_entry *const nd_snn_entries[] = {&lif_forward_entry, &lif_backward_entry, &lif_check_entry,
                                                 &spike_bits_unpack_entry, &encode_entry, NULL};
static const nd_table nd_snn_tables[] = {{"lif_resets", nd_lif_reset_names},
                                         {"lif_surrogates", nd_lif_surrogate_names},
                                         {"spike_encodings", nd_encoding_names},
                                         {NULL, NULL}};
const nd_family nd_snn_family = {nd_snn_entries, nd_snn_tables, NULL};

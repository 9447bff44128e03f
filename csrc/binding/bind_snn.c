/* Binding of the spiking family: LIF forward and backward over [T, B, n], spike bits, and the
 * Poisson and latency encoders. */
#include "nd_bind.h"

#include <string.h>
#include <unistd.h>

#include "nd_generic.h"
#include "nd_snn.h"
#include "nd_status.h"

/* (beta, threshold, reset, reset_delay, surrogate, slope, detach_reset, smooth) */
static int nd_parse_lif(PyObject *t, nd_lif_params *p)
{
    nd_lif_params_default(p);
    if (!PyArg_ParseTuple(t, "ddiiidii;LIF parameters", &p->beta, &p->threshold, &p->reset, &p->reset_delay,
                          &p->surrogate, &p->slope, &p->detach_reset, &p->smooth))
        return -1;
    if (!(p->beta >= 0) || !(p->threshold > 0) || !(p->slope > 0) || p->reset < 0 || p->reset > 1 ||
        p->surrogate < 0 || p->surrogate > ND_SURROGATE_ATAN) {
        PyErr_SetString(PyExc_ValueError, "invalid LIF parameters");
        return -1;
    }
    return 0;
}

/* A [T, B, n] array of typenum (None stays NULL), of shape `expect` when given. */
static int nd_raster(PyObject *obj, int typenum, const npy_intp *expect, const char *name, PyArrayObject **out)
{
    *out = NULL;
    if (obj == Py_None)
        return 0;
    if (!(*out = nd_float_array(obj, typenum, name)) || nd_check_finite(*out, name) < 0)
        return -1;
    if (PyArray_NDIM(*out) != 3 || (expect && !PyArray_CompareLists(PyArray_DIMS(*out), expect, 3))) {
        PyObject *got = nd_shape_str(PyArray_NDIM(*out), PyArray_DIMS(*out));
        if (got)
            PyErr_Format(PyExc_ValueError, "%s has shape %S; expected (time, batch, neurons)%s", name, got,
                         expect ? " matching the currents" : "");
        Py_XDECREF(got);
        return -1;
    }
    return 0;
}

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
    if (!nd_mul3_size((size_t)PyArray_DIM(whole, 0), (size_t)PyArray_DIM(whole, 1), (size_t)PyArray_DIM(whole, 2),
                      &elems) ||
        !nd_mul_size(elems, (size_t)itemsize, &bytes) || bytes > limit) {
        PyErr_Format(PyExc_MemoryError,
                     "currents of shape (%zd, %zd, %zd) describe a raster larger than this machine's memory",
                     (Py_ssize_t)PyArray_DIM(whole, 0), (Py_ssize_t)PyArray_DIM(whole, 1),
                     (Py_ssize_t)PyArray_DIM(whole, 2));
        return -1;
    }
    return 0;
}

/* The currents of a LIF run: a [T, B, n] array, or one that repeats a single [B, n] current
 * along time (a time stride of 0, as np.broadcast_to makes), which is read once without a
 * T-fold copy; *tstride is then 0, else B n. *T_out gets the number of steps. */
static int nd_lif_currents(PyObject *obj, int typenum, PyArrayObject **out, npy_intp *T_out, int64_t *tstride)
{
    *out = NULL;
    if (PyArray_Check(obj) && PyArray_NDIM((PyArrayObject *)obj) == 3 && PyArray_DIM((PyArrayObject *)obj, 0) > 1 &&
        PyArray_STRIDE((PyArrayObject *)obj, 0) == 0) {
        PyArrayObject *whole = (PyArrayObject *)obj;
        PyObject *first = PySequence_GetItem(obj, 0); /* the [B, n] current every step reads */
        if (!first)
            return -1;
        *out = nd_float_array(first, typenum, "currents");
        Py_DECREF(first);
        if (!*out || nd_check_finite(*out, "currents") < 0 || nd_raster_fits(whole, PyArray_ITEMSIZE(*out)) < 0)
            return -1;
        *T_out = PyArray_DIM(whole, 0);
        *tstride = 0;
        return 0;
    }
    if (nd_raster(obj, typenum, NULL, "currents", out) < 0)
        return -1;
    *T_out = PyArray_DIM(*out, 0);
    *tstride = (int64_t)PyArray_DIM(*out, 1) * PyArray_DIM(*out, 2);
    return 0;
}

static int nd_state_row(PyObject *obj, int typenum, npy_intp B, npy_intp n, const char *name, PyArrayObject **out)
{
    *out = NULL;
    if (obj == Py_None)
        return 0;
    if (!(*out = nd_float_array(obj, typenum, name)) || nd_check_finite(*out, name) < 0)
        return -1;
    if (PyArray_NDIM(*out) != 2 || PyArray_DIM(*out, 0) != B || PyArray_DIM(*out, 1) != n) {
        PyErr_Format(PyExc_ValueError, "%s must have shape (%zd, %zd), the (batch, neurons) of the currents", name,
                     (Py_ssize_t)B, (Py_ssize_t)n);
        return -1;
    }
    return 0;
}

/* lif_forward(currents [T,B,n], v0|None, params, want_spikes, want_membrane, want_bits, want_rate)
 *   -> (spikes|None, membrane|None, bits|None, v_end, rate|None) */
static PyObject *lif_forward(PyObject *module, PyObject *args)
{
    PyObject *co, *v0o, *pt;
    int want_s, want_m, want_b, want_r;
    if (!PyArg_ParseTuple(args, "OOO!pppp:lif_forward", &co, &v0o, &PyTuple_Type, &pt, &want_s, &want_m, &want_b,
                          &want_r))
        return NULL;
    nd_lif_params p;
    if (nd_parse_lif(pt, &p) < 0)
        return NULL;
    PyArrayObject *cur = NULL, *v0 = NULL;
    PyObject *s = NULL, *m = NULL, *bits = NULL, *vend = NULL, *rate = NULL, *res = NULL;
    npy_intp T;
    int64_t cur_tstride;
    int typenum = nd_resolve_float_type(co, "currents");
    if (typenum < 0 || nd_lif_currents(co, typenum, &cur, &T, &cur_tstride) < 0)
        goto done;
    const int nd0 = PyArray_NDIM(cur) - 2; /* the (B, n) axes of cur */
    const npy_intp B = PyArray_DIM(cur, nd0), n = PyArray_DIM(cur, nd0 + 1), dims[3] = {T, B, n};
    if (nd_state_row(v0o, typenum, B, n, "v0", &v0) < 0)
        goto done;
    size_t nbytes;
    if (nd_spike_bits_size(T, B, n, &nbytes) != ND_OK) {
        PyErr_SetString(PyExc_ValueError, "the spike raster is too large");
        goto done;
    }
    npy_intp rd[2] = {B, n}, nb = (npy_intp)nbytes;
    if ((want_s && !(s = PyArray_SimpleNew(3, dims, typenum))) || (want_m && !(m = PyArray_SimpleNew(3, dims, typenum))) ||
        (want_b && !(bits = PyArray_SimpleNew(1, &nb, NPY_UINT8))) || !(vend = PyArray_SimpleNew(2, rd, typenum)) ||
        (want_r && !(rate = PyArray_SimpleNew(2, rd, typenum))))
        goto done;
    if (want_r && T < 1) {
        PyErr_SetString(PyExc_ValueError, "a firing rate needs at least one time step");
        goto done;
    }
    int st;
    void *cd = PyArray_DATA(cur), *v0d = v0 ? PyArray_DATA(v0) : NULL, *sd = s ? PyArray_DATA((PyArrayObject *)s) : NULL;
    void *md = m ? PyArray_DATA((PyArrayObject *)m) : NULL, *ved = PyArray_DATA((PyArrayObject *)vend);
    uint8_t *bd = bits ? PyArray_DATA((PyArrayObject *)bits) : NULL;
    void *rtd = rate ? PyArray_DATA((PyArrayObject *)rate) : NULL;
    Py_BEGIN_ALLOW_THREADS
    st = typenum == NPY_FLOAT ? nd_lif_forward_f32(&p, T, B, n, cd, cur_tstride, v0d, sd, md, bd, rtd, ved)
                              : nd_lif_forward_f64(&p, T, B, n, cd, cur_tstride, v0d, sd, md, bd, rtd, ved);
    Py_END_ALLOW_THREADS
    if (st != ND_OK)
        nd_raise_status(st, "lif_forward");
    else
        res = PyTuple_Pack(5, s ? s : Py_None, m ? m : Py_None, bits ? bits : Py_None, vend, rate ? rate : Py_None);
done:
    Py_XDECREF(cur);
    Py_XDECREF(v0);
    Py_XDECREF(s);
    Py_XDECREF(m);
    Py_XDECREF(bits);
    Py_XDECREF(vend);
    Py_XDECREF(rate);
    return res;
}

/* Whether two contiguous arrays' bytes overlap. */
static int nd_bytes_overlap(PyArrayObject *a, PyArrayObject *b)
{
    const char *pa = PyArray_BYTES(a), *pb = PyArray_BYTES(b);
    return pa < pb + PyArray_NBYTES(b) && pb < pa + PyArray_NBYTES(a) && PyArray_NBYTES(a) && PyArray_NBYTES(b);
}

/* The gradient array of lif_backward: a new one, or `out` when it is the currents array itself
 * (the kernel may overwrite the currents it reads; any other overlap with an input is refused,
 * and so is an out that the currents were copied from, since the copy would be written). */
static int nd_lif_out(PyObject *outo, PyObject *co, PyArrayObject *cur, const npy_intp *dims, int typenum,
                      PyObject **out)
{
    if (outo == Py_None)
        return (*out = PyArray_SimpleNew(3, dims, typenum)) ? 0 : -1;
    if (!PyArray_Check(outo) || outo != co || (PyObject *)cur != co || !PyArray_ISCARRAY((PyArrayObject *)outo)) {
        PyErr_SetString(PyExc_ValueError,
                        "out must be the currents array itself (C-contiguous, writeable, of the result's dtype)");
        return -1;
    }
    Py_INCREF(outo);
    *out = outo;
    return 0;
}

/* lif_backward(currents, v0|None, dspikes|None, dmem|None, params, sum_time, out|None) -> (dcurrents, dv0):
 * dcurrents (T, B, n), or with sum_time its sum over steps (B, n), the gradient of a current
 * that every step shares; out=currents writes the gradient over the currents. */
static PyObject *lif_backward(PyObject *module, PyObject *args)
{
    PyObject *co, *v0o, *dso, *dmo, *pt, *outo;
    int sum_time;
    if (!PyArg_ParseTuple(args, "OOOOO!pO:lif_backward", &co, &v0o, &dso, &dmo, &PyTuple_Type, &pt, &sum_time,
                          &outo))
        return NULL;
    nd_lif_params p;
    if (nd_parse_lif(pt, &p) < 0)
        return NULL;
    PyArrayObject *cur = NULL, *v0 = NULL, *ds = NULL, *dm = NULL;
    PyObject *dc = NULL, *dv0 = NULL, *res = NULL;
    npy_intp T;
    int64_t cur_tstride;
    int typenum = nd_resolve_float_type(co, "currents");
    if (typenum < 0 || nd_lif_currents(co, typenum, &cur, &T, &cur_tstride) < 0)
        goto done;
    const int nd0 = PyArray_NDIM(cur) - 2;
    const npy_intp B = PyArray_DIM(cur, nd0), n = PyArray_DIM(cur, nd0 + 1), dims[3] = {T, B, n};
    const int64_t rowlen = (int64_t)B * (int64_t)n;
    if (nd_raster(dmo, typenum, dims, "dmembrane", &dm) < 0)
        goto done;
    /* dspikes: (T, B, n), or one (B, n) row shared by every step (no T-fold copy) */
    int64_t ds_tstride = rowlen;
    if (dso != Py_None && PyArray_Check(dso) && PyArray_NDIM((PyArrayObject *)dso) == 2) {
        if (nd_state_row(dso, typenum, B, n, "dspikes", &ds) < 0)
            goto done;
        ds_tstride = 0;
    } else if (nd_raster(dso, typenum, dims, "dspikes", &ds) < 0) {
        goto done;
    }
    if (nd_state_row(v0o, typenum, B, n, "v0", &v0) < 0)
        goto done;
    if (sum_time && outo != Py_None) {
        PyErr_SetString(PyExc_ValueError, "out cannot take a gradient summed over time");
        goto done;
    }
    if ((sum_time ? !(dc = PyArray_SimpleNew(2, dims + 1, typenum)) : nd_lif_out(outo, co, cur, dims, typenum, &dc) < 0) ||
        !(dv0 = PyArray_SimpleNew(2, dims + 1, typenum)))
        goto done;
    if ((ds && nd_bytes_overlap(ds, (PyArrayObject *)dc)) || (dm && nd_bytes_overlap(dm, (PyArrayObject *)dc)) ||
        (v0 && nd_bytes_overlap(v0, (PyArrayObject *)dc))) {
        PyErr_SetString(PyExc_ValueError, "out shares memory with dspikes, dmembrane or v0");
        goto done;
    }
    int st;
    const int64_t dc_tstride = sum_time ? 0 : rowlen;
    void *cd = PyArray_DATA(cur), *v0d = v0 ? PyArray_DATA(v0) : NULL, *dsd = ds ? PyArray_DATA(ds) : NULL;
    void *dmd = dm ? PyArray_DATA(dm) : NULL, *dcd = PyArray_DATA((PyArrayObject *)dc);
    void *dvd = PyArray_DATA((PyArrayObject *)dv0);
    Py_BEGIN_ALLOW_THREADS
    st = typenum == NPY_FLOAT
             ? nd_lif_backward_f32(&p, T, B, n, cd, cur_tstride, v0d, dsd, ds_tstride, dmd, dcd, dc_tstride, dvd)
             : nd_lif_backward_f64(&p, T, B, n, cd, cur_tstride, v0d, dsd, ds_tstride, dmd, dcd, dc_tstride, dvd);
    Py_END_ALLOW_THREADS
    if (st != ND_OK)
        nd_raise_status(st, "lif_backward");
    else
        res = PyTuple_Pack(2, dc, dv0);
done:
    Py_XDECREF(cur);
    Py_XDECREF(v0);
    Py_XDECREF(ds);
    Py_XDECREF(dm);
    Py_XDECREF(dc);
    Py_XDECREF(dv0);
    return res;
}

/* spike_bits_unpack(bits uint8, shape (T, B, n), like_dtype_array) -> 0/1 array */
static PyObject *spike_bits_unpack(PyObject *module, PyObject *args)
{
    PyObject *bo, *like;
    Py_ssize_t T, B, n;
    if (!PyArg_ParseTuple(args, "O(nnn)O:spike_bits_unpack", &bo, &T, &B, &n, &like))
        return NULL;
    int typenum = nd_resolve_float_type(like, "dtype");
    if (typenum < 0)
        return NULL;
    PyArrayObject *bits = (PyArrayObject *)PyArray_FROMANY(bo, NPY_UINT8, 1, 1, NPY_ARRAY_IN_ARRAY);
    if (!bits)
        return NULL;
    size_t nbytes;
    if (nd_spike_bits_size(T, B, n, &nbytes) != ND_OK || (size_t)PyArray_SIZE(bits) != nbytes) {
        Py_DECREF(bits);
        PyErr_SetString(PyExc_ValueError, "the bits do not hold a raster of that shape");
        return NULL;
    }
    npy_intp dims[3] = {T, B, n};
    PyObject *out = PyArray_SimpleNew(3, dims, typenum);
    if (out) {
        const uint8_t *bd = PyArray_DATA(bits);
        void *od = PyArray_DATA((PyArrayObject *)out);
        int64_t count = (int64_t)T * B * n;
        Py_BEGIN_ALLOW_THREADS
        if (typenum == NPY_FLOAT)
            nd_spike_bits_unpack_f32(count, bd, od);
        else
            nd_spike_bits_unpack_f64(count, bd, od);
        Py_END_ALLOW_THREADS
    }
    Py_DECREF(bits);
    return out;
}

/* encode_poisson(x [n-flat], T, seed, stream) -> [T] + x.shape ; encode_latency(x, T) */
static PyObject *nd_encode(PyObject *args, int poisson)
{
    PyObject *xo;
    long long T;
    unsigned long long seed = 0, stream = 0;
    if (poisson ? !PyArg_ParseTuple(args, "OLKK:encode_poisson", &xo, &T, &seed, &stream)
                : !PyArg_ParseTuple(args, "OL:encode_latency", &xo, &T))
        return NULL;
    int typenum = nd_resolve_float_type(xo, "x");
    if (typenum < 0)
        return NULL;
    PyArrayObject *x = nd_float_array(xo, typenum, "x");
    if (!x || nd_check_finite(x, "x") < 0) {
        Py_XDECREF(x);
        return NULL;
    }
    if (T < 0 || PyArray_NDIM(x) + 1 > NPY_MAXDIMS) {
        Py_DECREF(x);
        PyErr_SetString(PyExc_ValueError, "bad number of time steps or dimensions");
        return NULL;
    }
    npy_intp dims[NPY_MAXDIMS];
    dims[0] = (npy_intp)T;
    if (PyArray_NDIM(x) > 0) /* a 0-d array's dims pointer may be NULL */
        memcpy(dims + 1, PyArray_DIMS(x), (size_t)PyArray_NDIM(x) * sizeof(npy_intp));
    size_t total;
    if (!nd_mul_size((size_t)T, (size_t)PyArray_SIZE(x), &total)) {
        Py_DECREF(x);
        PyErr_SetString(PyExc_ValueError, "the spike raster is too large");
        return NULL;
    }
    PyObject *out = PyArray_SimpleNew(PyArray_NDIM(x) + 1, dims, typenum);
    if (out) {
        const int64_t n = (int64_t)PyArray_SIZE(x);
        void *xd = PyArray_DATA(x), *od = PyArray_DATA((PyArrayObject *)out);
        Py_BEGIN_ALLOW_THREADS
        if (poisson && typenum == NPY_FLOAT)
            nd_encode_poisson_f32(T, n, xd, seed, stream, od);
        else if (poisson)
            nd_encode_poisson_f64(T, n, xd, seed, stream, od);
        else if (typenum == NPY_FLOAT)
            nd_encode_latency_f32(T, n, xd, od);
        else
            nd_encode_latency_f64(T, n, xd, od);
        Py_END_ALLOW_THREADS
    }
    Py_DECREF(x);
    return out;
}

static PyObject *encode_poisson(PyObject *m, PyObject *a) { return nd_encode(a, 1); }
static PyObject *encode_latency(PyObject *m, PyObject *a) { return nd_encode(a, 0); }

static PyMethodDef nd_snn_methods[] = {
    {"lif_forward", lif_forward, METH_VARARGS,
     "lif_forward(currents, v0, params, want_spikes, want_membrane, want_bits, want_rate) -> (spikes, membrane, bits, "
     "v_end, rate)"},
    {"lif_backward", lif_backward, METH_VARARGS,
     "lif_backward(currents, v0, dspikes, dmembrane, params, sum_time, out) -> (dcurrents, dv0)"},
    {"spike_bits_unpack", spike_bits_unpack, METH_VARARGS, "spike_bits_unpack(bits, (T, B, n), like) -> spikes"},
    {"encode_poisson", encode_poisson, METH_VARARGS, "encode_poisson(x, T, seed, stream) -> [T] + x.shape"},
    {"encode_latency", encode_latency, METH_VARARGS, "encode_latency(x, T) -> [T] + x.shape"},
    {NULL, NULL, 0, NULL}};

static const nd_entry *const nd_snn_entries[] = {NULL};
const nd_family nd_snn_family = {nd_snn_entries, NULL, nd_snn_methods};

#include "nd_hybrid.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nd_blas.h"
#include "nd_generic.h"
#include "nd_status.h"
#include "nd_vmath.h"

const char *const nd_hybrid_act_names[] = {"softmax",   "tanh",      "sigmoid",  "polynomial", "relu_power",
                                           "quadratic", "hardtanh", "relu",     NULL};
const char *const nd_hybrid_form_names[] = {"gradient", "port_hamiltonian", NULL};
const char *const nd_hybrid_system_names[] = {"multiwell", "ring", "duffing", NULL};

#define ND_HACT_COUNT 8

int nd_hybrid_act_bounded(int act)
{
    return act == ND_HACT_SOFTMAX || act == ND_HACT_TANH || act == ND_HACT_SIGMOID || act == ND_HACT_HARDTANH;
}

void nd_hybrid_default(nd_hybrid *h)
{
    memset(h, 0, sizeof *h);
    h->beta = 1.0;
    h->power = 3.0;
    h->guarantee = 1;
    h->form = ND_HYBRID_GRADIENT;
}

int nd_hybrid_check(const nd_hybrid *h, int params)
{
    if (!h)
        return nd_arg_error_novalue("model", "must not be NULL");
    ND_REQUIRE(h->dim >= 1, "d", h->dim, "must be >= 1");
    ND_REQUIRE(h->n_layers >= 1 && h->n_layers <= ND_HYBRID_MAX_LAYERS, "hidden_sizes", h->n_layers,
               "must hold 1 to 8 layer widths");
    ND_REQUIRE(h->widths[0] == h->dim, "widths[0]", h->widths[0], "must be d");
    char name[48], rule[160];
    for (int l = 0; l < h->n_layers; ++l) {
        snprintf(name, sizeof name, "hidden_sizes[%d]", l);
        ND_REQUIRE(h->widths[l + 1] >= 1, name, h->widths[l + 1], "must be >= 1");
        /* each width a BLAS int, and a layer's kernel (widths[l] x widths[l+1]) within one too;
         * the widths are checked before their product so that it cannot overflow */
        if (!nd_blas_dims_ok(h->widths[l], h->widths[l + 1], 0) ||
            !nd_blas_dims_ok(h->widths[l] * h->widths[l + 1], 0, 0))
            return nd_size_error(l == 0 && h->widths[0] > INT_MAX ? "d" : name);
        snprintf(name, sizeof name, "activations[%d]", l);
        ND_REQUIRE(h->acts[l] >= 0 && h->acts[l] < ND_HACT_COUNT, name, h->acts[l], "must be a known activation code");
    }
    if (h->guarantee && !nd_hybrid_act_bounded(h->acts[0])) {
        /* §11: the guarantee rests on a bounded first activation; an unbounded one (ReLU,
         * polynomial, ...) lets -F_2 outgrow |z|^2 / 2. */
        snprintf(rule, sizeof rule,
                 "must be bounded (softmax, tanh, sigmoid or hardtanh) for a model with guarantee=True; '%s' is not",
                 nd_hybrid_act_names[h->acts[0]]);
        return nd_arg_error_novalue("activations[0]", rule);
    }
    ND_REQUIRE(isfinite(h->beta) && h->beta > 0, "beta", h->beta, "must be > 0 and finite");
    ND_REQUIRE(isfinite(h->power) && h->power >= 2 && h->power <= 16, "power", h->power, "must be in [2, 16]");
    ND_REQUIRE(h->form == ND_HYBRID_GRADIENT || h->form == ND_HYBRID_PORT_HAMILTONIAN, "form", h->form,
               "must be a known form code");
    ND_REQUIRE(h->inputs >= 0, "inputs", h->inputs, "must be >= 0");
    ND_REQUIRE(h->form == ND_HYBRID_PORT_HAMILTONIAN || h->inputs == 0, "inputs", h->inputs,
               "must be 0 for form='gradient' (only the port-Hamiltonian form has inputs)");
    if (!nd_blas_dims_ok(h->dim, h->dim, h->inputs))
        return nd_size_error("inputs");
    ND_REQUIRE(h->n_knots >= 0, "u_t", h->n_knots, "must hold >= 0 times");
    if (h->n_knots > 0) {
        ND_REQUIRE(h->inputs > 0, "u", h->inputs, "needs a model with inputs > 0");
        ND_REQUIRE(h->u_t && h->u, "u", 0, "must be given with its times");
        ND_REQUIRE(h->u_rows >= 1, "u", h->u_rows, "must have >= 1 rows");
        for (int64_t i = 0; i < h->n_knots; ++i) {
            ND_REQUIRE(isfinite(h->u_t[i]), "u_t", h->u_t[i], "must be finite");
            ND_REQUIRE(i == 0 || h->u_t[i] > h->u_t[i - 1], "u_t", h->u_t[i], "must be strictly increasing");
        }
    }
    if (params) {
        ND_REQUIRE(h->b1, "b1", 0, "must be given");
        for (int l = 0; l < h->n_layers; ++l) {
            snprintf(name, sizeof name, "kernels[%d]", l);
            ND_REQUIRE(h->kernels[l] && h->biases[l], name, l, "must be given with its bias");
        }
        if (h->form == ND_HYBRID_PORT_HAMILTONIAN) {
            ND_REQUIRE(h->A && h->L, "A", 0, "and L must be given for the port-Hamiltonian form");
            ND_REQUIRE(h->inputs == 0 || h->G, "G", 0, "must be given when inputs > 0");
        }
    }
    return ND_OK;
}

int64_t nd_hybrid_param_count(const nd_hybrid *h)
{
    const int64_t d = h->dim;
    int64_t p = d;
    for (int l = 0; l < h->n_layers; ++l)
        p += h->widths[l] * h->widths[l + 1] + h->widths[l + 1];
    if (h->form == ND_HYBRID_PORT_HAMILTONIAN)
        p += d * (d - 1) / 2 + d * (d + 1) / 2 + d * h->inputs;
    return p;
}

/* Total width of the hidden layers. */
static size_t nd_hybrid_hidden(const nd_hybrid *h)
{
    size_t hidden = 0;
    for (int l = 0; l < h->n_layers; ++l)
        hidden += (size_t)h->widths[l + 1];
    return hidden;
}

/* The primal values of B rows (g, a, psi', psi'', e and s of every layer, and grad H): one
 * evaluation's, and what a kept evaluation stores in its slot. */
int nd_hybrid_slot_len(const nd_hybrid *h, int64_t B, size_t *len)
{
    int st = nd_hybrid_check(h, 0);
    if (st != ND_OK)
        return st;
    ND_REQUIRE(B >= 0, "batch", B, "must be >= 0");
    return nd_mul_size((size_t)B, 6 * nd_hybrid_hidden(h) + (size_t)h->dim, len) ? ND_OK : nd_size_error("batch");
}

/* Scratch layout (elements), shared by both types: the primal values of B rows
 * (nd_hybrid_slot_len); per tangent row gdot, adot, edot, sdot and two [d] rows; then
 * M = J - R, its cotangent and the full L [d, d] each, and one input row [m]. */
int nd_hybrid_workspace_len(const nd_hybrid *h, int64_t B, int64_t k, size_t *len)
{
    size_t a, b, trows;
    int st = nd_hybrid_slot_len(h, B, &a);
    if (st != ND_OK)
        return st;
    ND_REQUIRE(k >= 1, "directions", k, "must be >= 1");
    const size_t d = (size_t)h->dim, per_trow = 4 * nd_hybrid_hidden(h) + 2 * d;
    if (!nd_mul_size((size_t)B, (size_t)k, &trows) || !nd_mul_size(trows, per_trow, &b) || a > SIZE_MAX - b)
        return nd_size_error("batch");
    size_t rows = a + b, extra = 3 * d * d + (size_t)h->inputs + 16;
    if (rows > SIZE_MAX - extra)
        return nd_size_error("batch");
    *len = rows + extra;
    return ND_OK;
}

/* ---- target systems ------------------------------------------------------------------------ */

int nd_hybrid_system_check(const nd_hybrid_system *s)
{
    if (!s)
        return nd_arg_error_novalue("system", "must not be NULL");
    /* a row's scratch lives on the stack: the target systems are low-dimensional */
    ND_REQUIRE(s->dim >= 1 && s->dim <= 64, "d", s->dim, "must be in [1, 64] for a target system");
    switch (s->kind) {
    case ND_HSYS_MULTIWELL:
        ND_REQUIRE(s->n_wells >= 0, "centres", s->n_wells, "must hold >= 0 wells");
        ND_REQUIRE(s->n_wells == 0 || (s->centres && s->depths), "centres", 0, "must be given with depths");
        ND_REQUIRE(isfinite(s->width) && s->width > 0, "width", s->width, "must be > 0 and finite");
        ND_REQUIRE(isfinite(s->gamma) && s->gamma >= 0, "gamma", s->gamma, "must be >= 0 and finite");
        ND_REQUIRE(isfinite(s->omega), "omega", s->omega, "must be finite");
        for (int64_t i = 0; i < s->n_wells * s->dim; ++i)
            ND_REQUIRE(isfinite(s->centres[i]), "centres", s->centres[i], "must be finite");
        for (int64_t i = 0; i < s->n_wells; ++i)
            ND_REQUIRE(isfinite(s->depths[i]), "depths", s->depths[i], "must be finite");
        return ND_OK;
    case ND_HSYS_RING:
        ND_REQUIRE(s->dim >= 2, "d", s->dim, "must be >= 2 for the ring system");
        ND_REQUIRE(isfinite(s->radius) && s->radius > 0, "radius", s->radius, "must be > 0 and finite");
        ND_REQUIRE(isfinite(s->rotation), "rotation", s->rotation, "must be finite");
        return ND_OK;
    case ND_HSYS_DUFFING:
        ND_REQUIRE(s->dim == 2, "d", s->dim, "must be 2 for the Duffing system");
        ND_REQUIRE(isfinite(s->alpha), "alpha", s->alpha, "must be finite");
        ND_REQUIRE(isfinite(s->cubic) && s->cubic >= 0, "cubic", s->cubic, "must be >= 0 and finite");
        ND_REQUIRE(isfinite(s->delta) && s->delta >= 0, "delta", s->delta, "must be >= 0 and finite");
        return ND_OK;
    default:
        return nd_arg_error("system", s->kind, "must be a known system code");
    }
}

/* ---- the built-in field ------------------------------------------------------------------- */

/* The Jacobian works on chunks of this many rows, each with d tangent directions. */
#define ND_HYBRID_JAC_CHUNK 64

int nd_hybrid_field_check(const nd_hybrid_field *f, int64_t dim)
{
    if (!f)
        return nd_arg_error_novalue("field", "must not be NULL");
    int st = f->is_system ? nd_hybrid_system_check(&f->system) : nd_hybrid_check(&f->model, 1);
    if (st != ND_OK)
        return st;
    const int64_t d = f->is_system ? f->system.dim : f->model.dim;
    ND_REQUIRE(d == dim, "dim", dim, "must be the hybrid field's d");
    return ND_OK;
}

int nd_hybrid_field_workspace_len(const nd_hybrid_field *f, int64_t B, int slots, size_t *len)
{
    if (f->is_system) {
        *len = 0;
        return nd_hybrid_system_check(&f->system);
    }
    ND_REQUIRE(slots >= 0, "keep_slots", slots, "must be >= 0");
    size_t one, jac, slot, kept;
    const int64_t chunk = B < ND_HYBRID_JAC_CHUNK ? B : ND_HYBRID_JAC_CHUNK;
    int st = nd_hybrid_workspace_len(&f->model, B, 1, &one);
    if (st == ND_OK)
        st = nd_hybrid_workspace_len(&f->model, chunk, f->model.dim, &jac);
    if (st == ND_OK)
        st = nd_hybrid_slot_len(&f->model, B, &slot);
    if (st != ND_OK)
        return st;
    /* the scratch of one call, then the slots */
    const size_t base = one > jac ? one : jac;
    if (!nd_mul_size(slot, (size_t)slots, &kept) || kept > SIZE_MAX - base)
        return nd_size_error("batch");
    *len = base + kept;
    return ND_OK;
}

int64_t nd_hybrid_field_param_count(const nd_hybrid_field *f)
{
    return f->is_system ? 0 : nd_hybrid_param_count(&f->model);
}

#define ND_IMPL "nd_hybrid_impl.inc"
#include "nd_instantiate.h"

/* ---- the guarantee, in float64 ------------------------------------------------------------ */

#ifdef ND_BLAS_SCIPY_PREFIX
#define ND_DSYEV scipy_dsyev_
#else
#define ND_DSYEV dsyev_
#endif
/* LAPACK's symmetric eigensolver from the linked OpenBLAS (32-bit integers, as its CBLAS);
 * the trailing lengths are gfortran's hidden CHARACTER arguments. */
void ND_DSYEV(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
              const int *lwork, int *info, size_t jobz_len, size_t uplo_len);

/* Scratch of nd_sym_eig_min for an n x n matrix: the matrix, its eigenvalues and LAPACK's. */
static size_t nd_sym_eig_len(int64_t n) { return (size_t)(n * n + n + 66 * n + 1); }

/* The smallest (or, with largest, the largest) eigenvalue of the symmetric n x n matrix a,
 * which is overwritten; NaN when LAPACK fails. */
static double nd_sym_eig(int64_t n, double *a, int largest, double *work)
{
    if (n == 0)
        return 0.0;
    int ni = (int)n, lwork = (int)(66 * n), info = 0;
    double *w = work, *lw = work + n;
    ND_DSYEV("N", "U", &ni, a, &ni, w, lw, &lwork, &info, 1, 1);
    if (info != 0)
        return NAN;
    return largest ? w[n - 1] : w[0]; /* ascending */
}

/* |W|_2 of a rows x cols matrix from the larger eigenvalue of its smaller Gram matrix. */
static double nd_spectral_norm(const double *W, int64_t rows, int64_t cols, double *work)
{
    const int64_t n = rows < cols ? rows : cols;
    double *gram = work;
    if (rows <= cols)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)cols, 1.0, W, (int)cols, W,
                    (int)cols, 0.0, gram, (int)n);
    else
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)n, (int)rows, 1.0, W, (int)cols, W,
                    (int)cols, 0.0, gram, (int)n);
    double lam = nd_sym_eig(n, gram, 1, work + n * n);
    return sqrt(lam > 0 ? lam : 0.0);
}

static double nd_norm2(const double *v, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; ++i)
        s += v[i] * v[i];
    return sqrt(s);
}

/* Norm of the largest vector of a box [lo, hi]. */
static double nd_box_norm(const double *lo, const double *hi, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; ++i) {
        double m = fmax(fabs(lo[i]), fabs(hi[i]));
        s += m * m;
    }
    return sqrt(s);
}

/* Interval product: the box of a K over a in [alo, ahi] (K [n_in, n_out]). */
static void nd_box_matvec(const double *K, int64_t n_in, int64_t n_out, const double *alo, const double *ahi,
                          double *lo, double *hi)
{
    for (int64_t j = 0; j < n_out; ++j) {
        lo[j] = hi[j] = 0;
    }
    for (int64_t i = 0; i < n_in; ++i)
        for (int64_t j = 0; j < n_out; ++j) {
            const double w = K[i * n_out + j], p = w * alo[i], q = w * ahi[i];
            lo[j] += fmin(p, q);
            hi[j] += fmax(p, q);
        }
}

/* The same for a K^T over s in [slo, shi] (the backward product). */
static void nd_box_matvec_t(const double *K, int64_t n_in, int64_t n_out, const double *slo, const double *shi,
                            double *lo, double *hi)
{
    for (int64_t i = 0; i < n_in; ++i) {
        double l = 0, h = 0;
        for (int64_t j = 0; j < n_out; ++j) {
            const double w = K[i * n_out + j], p = w * slo[j], q = w * shi[j];
            l += fmin(p, q);
            h += fmax(p, q);
        }
        lo[i] = l;
        hi[i] = h;
    }
}

int nd_hybrid_certificate_workspace_len(const nd_hybrid *h, size_t *len)
{
    int st = nd_hybrid_check(h, 0);
    if (st != ND_OK)
        return st;
    int64_t widest = h->dim, total = 0;
    for (int l = 1; l <= h->n_layers; ++l) {
        widest = h->widths[l] > widest ? h->widths[l] : widest;
        total += h->widths[l];
    }
    /* eight working boxes of the widest layer, every layer's (a + b) box, LAPACK's scratch */
    size_t boxes, eig = nd_sym_eig_len(widest);
    if (!nd_mul_size((size_t)widest, 8, &boxes) || boxes > SIZE_MAX - eig - 2 * (size_t)total)
        return nd_size_error("hidden_sizes");
    *len = boxes + 2 * (size_t)total + eig;
    return ND_OK;
}

/* Bounds of a layer over a box [lo, hi] of its pre-activations (h >= 3 of §11): the box of
 * psi [alo, ahi], the largest psi' (dmax), and lower and upper bounds of F over the box. */
static void nd_layer_bounds(const nd_hybrid *h, int act, int64_t n, const double *lo, const double *hi, double *alo,
                            double *ahi, double *dmax, double *Fmin, double *Fmax)
{
    const double beta = h->beta, p = h->power;
    if (act == ND_HACT_SOFTMAX) {
        /* max_i g_i <= lse <= max_i g_i + log(n) / beta; psi in [0, 1]; |D| <= beta */
        double mlo = -INFINITY, mhi = -INFINITY;
        for (int64_t i = 0; i < n; ++i) {
            mlo = fmax(mlo, lo[i]);
            mhi = fmax(mhi, hi[i]);
            alo[i] = 0;
            ahi[i] = 1;
        }
        *Fmin = mlo;
        *Fmax = mhi + log((double)n) / beta;
        *dmax = beta;
        return;
    }
    double sum_min = 0, sum_max = 0, dm = 0;
    for (int64_t i = 0; i < n; ++i) {
        double psi_lo, psi_hi, d_lo, d_hi, F_lo, F_hi, psi0, d0, F0;
        const double x0 = fmin(fmax(0.0, lo[i]), hi[i]);
        nd_hact_scalar_f64(act, beta, p, lo[i], &psi_lo, &d_lo, &F_lo);
        nd_hact_scalar_f64(act, beta, p, hi[i], &psi_hi, &d_hi, &F_hi);
        nd_hact_scalar_f64(act, beta, p, x0, &psi0, &d0, &F0);
        alo[i] = psi_lo; /* every separable psi is non-decreasing */
        ahi[i] = psi_hi;
        /* F is convex: its maximum over an interval is at an end; its minimum at the clamp of
         * its minimiser (0 for the even potentials; -inf, the lower end, for the increasing). */
        sum_max += fmax(F_lo, F_hi);
        sum_min += (act == ND_HACT_TANH || act == ND_HACT_QUADRATIC || act == ND_HACT_HARDTANH) ? F0 : F_lo;
        /* psi' peaks at 0 for tanh and sigmoid; is at most 1 for the piecewise linear ones; the
         * power ones are bounded through their upper end (sigma (1 - sigma) <= 1/4). */
        double dd = 1.0;
        if (act == ND_HACT_TANH || act == ND_HACT_SIGMOID)
            dd = d0;
        else if (act == ND_HACT_RELU_POWER)
            dd = d_hi;
        else if (act == ND_HACT_POLYNOMIAL) {
            const double s = nd_hsoftplus_f64(hi[i]);
            dd = (p - 1) * pow(s, p - 2) + pow(s, p - 1) / 4;
        }
        dm = fmax(dm, dd);
    }
    *Fmin = sum_min;
    *Fmax = sum_max;
    *dmax = dm;
}

int nd_hybrid_certificate(const nd_hybrid *h, nd_hybrid_cert *out, double *work)
{
    int st = nd_hybrid_check(h, 1);
    if (st != ND_OK)
        return st;
    const int64_t d = h->dim, n2 = h->widths[1];
    const int Ln = h->n_layers, a0 = h->acts[0];
    const double *K0 = h->kernels[0], *b1 = h->b1, *b2 = h->biases[0];
    int64_t widest = d;
    for (int l = 1; l <= Ln; ++l)
        widest = h->widths[l] > widest ? h->widths[l] : widest;
    double *alo = work, *ahi = alo + widest, *glo = ahi + widest, *ghi = glo + widest;
    double *elo = ghi + widest, *ehi = elo + widest, *slo = ehi + widest, *shi = slo + widest;
    double *ab_lo[ND_HYBRID_MAX_LAYERS], *ab_hi[ND_HYBRID_MAX_LAYERS], *p = shi + widest;
    for (int l = 0; l < Ln; ++l) {
        ab_lo[l] = p;
        ab_hi[l] = p + h->widths[l + 1];
        p += 2 * h->widths[l + 1];
    }
    double *eig = p;
    out->bounded = nd_hybrid_act_bounded(a0);
    out->M2 = out->c1 = out->c0 = out->eq_radius = out->level = out->radius = NAN;
    if (!out->bounded)
        return ND_OK;
    const double W21 = nd_spectral_norm(K0, d, n2, eig), nb1 = nd_norm2(b1, d), nb2 = nd_norm2(b2, n2);
    /* sup |psi_2|: softmax probabilities have |p| <= 1; the others are in [-1, 1] per unit. */
    const double M2 = a0 == ND_HACT_SOFTMAX ? 1.0 : sqrt((double)n2);
    out->M2 = M2;
    out->c1 = W21 * (M2 + nb2) + nb1;
    /* F_2(g) <= F_2(0) + M2 |g| (convex, |grad F_2| <= M2) and F_2(g) >= F_2(0) + psi_2(0).g. */
    double F20, psi20n;
    if (a0 == ND_HACT_SOFTMAX) {
        F20 = log((double)n2) / h->beta;
        psi20n = 1.0 / sqrt((double)n2);
    } else {
        double psi, dpsi, F;
        nd_hact_scalar_f64(a0, h->beta, h->power, 0.0, &psi, &dpsi, &F);
        F20 = (double)n2 * F;
        psi20n = fabs(psi) * sqrt((double)n2);
    }
    /* Forward: the boxes of g_h and psi_h for h >= 3 from the first activation's range, the
     * bounds of sum_{h>=3} [F_h + g_h.b_h] over them, and every layer's (a + b) box. */
    double Lder[ND_HYBRID_MAX_LAYERS], deep_max = 0, deep_min = 0;
    for (int64_t i = 0; i < n2; ++i) {
        alo[i] = (a0 == ND_HACT_SOFTMAX || a0 == ND_HACT_SIGMOID) ? 0.0 : -1.0;
        ahi[i] = 1.0;
    }
    Lder[0] = a0 == ND_HACT_SIGMOID ? h->beta / 4 : a0 == ND_HACT_HARDTANH ? 1.0 : h->beta;
    for (int l = 0; l < Ln; ++l) {
        const int64_t n = h->widths[l + 1];
        const double *b = h->biases[l];
        if (l > 0) {
            double Fmin, Fmax, gbmax = 0, gbmin = 0;
            nd_box_matvec(h->kernels[l], h->widths[l], n, alo, ahi, glo, ghi);
            nd_layer_bounds(h, h->acts[l], n, glo, ghi, alo, ahi, &Lder[l], &Fmin, &Fmax);
            for (int64_t i = 0; i < n; ++i) {
                gbmax += fmax(glo[i] * b[i], ghi[i] * b[i]);
                gbmin += fmin(glo[i] * b[i], ghi[i] * b[i]);
            }
            deep_max += Fmax + gbmax;
            deep_min += Fmin + gbmin;
        }
        for (int64_t i = 0; i < n; ++i) {
            ab_lo[l][i] = alo[i] + b[i];
            ab_hi[l][i] = ahi[i] + b[i];
        }
    }
    out->c0 = F20 + deep_max;
    /* Backward: e_last = a + b, e_l = a_l + b_l + D_l (e_{l+1} K_{l+1}^T) with D_l diagonal in
     * [0, Lder] (softmax: only |D| <= beta, so a ball of that radius). */
    const int64_t nL = h->widths[Ln];
    memcpy(elo, ab_lo[Ln - 1], (size_t)nL * sizeof(double));
    memcpy(ehi, ab_hi[Ln - 1], (size_t)nL * sizeof(double));
    for (int l = Ln - 2; l >= 0; --l) {
        const int64_t n = h->widths[l + 1];
        nd_box_matvec_t(h->kernels[l + 1], n, h->widths[l + 2], elo, ehi, slo, shi);
        const double sn = nd_box_norm(slo, shi, n);
        for (int64_t i = 0; i < n; ++i) {
            const int soft = h->acts[l] == ND_HACT_SOFTMAX;
            elo[i] = ab_lo[l][i] + (soft ? -Lder[l] * sn : Lder[l] * fmin(0.0, slo[i]));
            ehi[i] = ab_hi[l][i] + (soft ? Lder[l] * sn : Lder[l] * fmax(0.0, shi[i]));
        }
    }
    /* grad H = z - r(z) with |r| <= K: every equilibrium has |z| <= K. */
    const double K = nb1 + W21 * nd_box_norm(elo, ehi, n2);
    out->eq_radius = K;
    /* On that ball H <= K^2/2 + |b1| K - F_2(0) + (|psi_2(0)| + |b2|) |W_21| K - inf(deep). */
    const double level = 0.5 * K * K + (nb1 + W21 * (psi20n + nb2)) * K - F20 - deep_min;
    out->level = level;
    /* |z|^2/2 - c1 |z| - c0 <= H <= level  =>  |z| <= c1 + sqrt(c1^2 + 2 (c0 + level)). */
    const double c1 = out->c1, disc = c1 * c1 + 2 * (out->c0 + level);
    out->radius = c1 + sqrt(disc > 0 ? disc : 0);
    return ND_OK;
}

int nd_hybrid_stability_workspace_len(const nd_hybrid *h, int64_t B, size_t *len)
{
    nd_hybrid_field f = {0};
    f.model = *h;
    size_t field;
    int st = nd_hybrid_field_workspace_len(&f, B, 0, &field);
    if (st != ND_OK)
        return st;
    const size_t d = (size_t)h->dim, extra = (size_t)B * d * d + 2 * d * d + (size_t)h->widths[1] * (d + 1) +
                                                 nd_sym_eig_len(h->dim);
    if (field > SIZE_MAX - extra)
        return nd_size_error("batch");
    *len = field + extra;
    return ND_OK;
}

int nd_hybrid_stability(const nd_hybrid *h, int64_t B, const double *z, double *lam_first, double *lam_hess,
                        double *work)
{
    int st = nd_hybrid_check(h, 1);
    if (st != ND_OK)
        return st;
    ND_REQUIRE(B >= 0, "batch", B, "must be >= 0");
    nd_hybrid_field f = {0};
    f.model = *h;
    size_t field;
    if ((st = nd_hybrid_field_workspace_len(&f, B, 0, &field)) != ND_OK)
        return st;
    const int64_t d = h->dim, n2 = h->widths[1];
    double *hess = work + field, *mat = hess + B * d * d, *WQ = mat + d * d, *g = WQ + n2 * d, *eig = g + n2 + d * d;
    if ((st = nd_hybrid_hessian_f64(h, B, z, hess, work)) != ND_OK)
        return st;
    const double *K0 = h->kernels[0];
    for (int64_t r = 0; r < B; ++r) {
        memcpy(mat, hess + r * d * d, (size_t)(d * d) * sizeof(double));
        lam_hess[r] = nd_sym_eig(d, mat, 0, eig);
        /* g = W_21 z (= z K0), Q its first activation's derivative; the ReLU / hard-tanh kink
         * takes the worst case 1 of the Clarke derivative [0, 1]. */
        for (int64_t j = 0; j < n2; ++j) {
            double s = 0;
            for (int64_t i = 0; i < d; ++i)
                s += z[r * d + i] * K0[i * n2 + j];
            g[j] = s;
        }
        /* mat = I - K0 Q K0^T (d x d) */
        const int act = h->acts[0];
        if (act == ND_HACT_SOFTMAX) {
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < n2; ++j)
                mx = fmax(mx, h->beta * g[j]);
            for (int64_t j = 0; j < n2; ++j)
                sum += (g[j] = exp(h->beta * g[j] - mx));
            for (int64_t j = 0; j < n2; ++j)
                g[j] /= sum; /* p */
            /* Q = beta (diag p - p p^T): K0 Q K0^T = beta (K0 diag p K0^T - (K0 p)(K0 p)^T) */
            double *Kp = WQ; /* [d] */
            for (int64_t i = 0; i < d; ++i) {
                double s = 0;
                for (int64_t j = 0; j < n2; ++j)
                    s += K0[i * n2 + j] * g[j];
                Kp[i] = s;
            }
        } else {
            for (int64_t j = 0; j < n2; ++j) {
                double psi, dpsi, F;
                nd_hact_scalar_f64(act, h->beta, h->power, g[j], &psi, &dpsi, &F);
                if ((act == ND_HACT_RELU && g[j] == 0) || (act == ND_HACT_HARDTANH && fabs(g[j]) == 1))
                    dpsi = 1.0;
                g[j] = dpsi;
            }
        }
        /* K0 diag(g) K0^T, with the softmax's rank-one term */
        for (int64_t i = 0; i < d; ++i)
            for (int64_t c = 0; c < d; ++c) {
                double s = 0;
                for (int64_t j = 0; j < n2; ++j)
                    s += K0[i * n2 + j] * g[j] * K0[c * n2 + j];
                mat[i * d + c] = (i == c) - (act == ND_HACT_SOFTMAX ? h->beta * (s - WQ[i] * WQ[c]) : s);
            }
        lam_first[r] = nd_sym_eig(d, mat, 0, eig);
    }
    return ND_OK;
}

#include "nd_ode_stiff.h"

#include <math.h>
#include <string.h>

#include "nd_blas.h"
#include "nd_generic.h"
#include "nd_status.h"

const char *const nd_stiff_method_names[] = {"radau", "bdf", "auto", NULL};

void nd_ode_stiff_opts_default(nd_ode_stiff_opts *o)
{
    /* odeint's tolerances and step budget, whichever method (docs/models.md §1) */
    nd_ode_samples_opts explicit_opts;
    nd_ode_samples_opts_default(&explicit_opts);
    memset(o, 0, sizeof *o);
    o->method = ND_STIFF_RADAU;
    o->rtol = explicit_opts.rtol;
    o->atol = explicit_opts.atol;
    o->max_steps = explicit_opts.max_steps;
}

/* ---- constants ------------------------------------------------------------------------------ */

/* Radau IIA order 5 (Hairer & Wanner II, IV.5 and IV.8). A = T diag(MU_REAL, [[a, b], [-b, a]])^-1
 * T^-1 with MU_COMPLEX = a - ib the eigenvalues of A^-1; C the nodes; E the error estimator's
 * weights of the stage increments (IV.8, (8.19)-(8.20)); P the collocation polynomial in
 * powers of the step fraction, y(t + x h) = y + Z^T P (x, x^2, x^3). The transformation T and
 * its inverse TI are those of SciPy's Radau (its last row of T normalised to (1, 1, 0)). */
#define ND_S6 2.449489742783178098197284
static const double nd_radau_c[3] = {(4.0 - ND_S6) / 10.0, (4.0 + ND_S6) / 10.0, 1.0};
static const double nd_radau_e[3] = {(-13.0 - 7.0 * ND_S6) / 3.0, (-13.0 + 7.0 * ND_S6) / 3.0, -1.0 / 3.0};
static const double nd_radau_T[3][3] = {{0.09443876248897524, -0.14125529502095421, 0.03002919410514742},
                                        {0.25021312296533332, 0.20412935229379994, -0.38294211275726192},
                                        {1.0, 1.0, 0.0}};
static const double nd_radau_TI[3][3] = {{4.17871859155190428, 0.32768282076106237, 0.52337644549944951},
                                         {-4.17871859155190428, -0.32768282076106237, 0.47662355450055044},
                                         {0.50287263494578682, -2.57192694985560522, 0.59603920482822492}};
static const double nd_radau_P[3][3] = {
    {13.0 / 3.0 + 7.0 * ND_S6 / 3.0, -23.0 / 3.0 - 22.0 * ND_S6 / 3.0, 10.0 / 3.0 + 5.0 * ND_S6},
    {13.0 / 3.0 - 7.0 * ND_S6 / 3.0, -23.0 / 3.0 + 22.0 * ND_S6 / 3.0, 10.0 / 3.0 - 5.0 * ND_S6},
    {1.0 / 3.0, -8.0 / 3.0, 10.0 / 3.0}};
/* 3 + 3^(2/3) - 3^(1/3); a = 3 + (3^(1/3) - 3^(2/3)) / 2; b = (3^(5/6) + 3^(7/6)) / 2 */
#define ND_RADAU_MU_REAL 3.637834252744495732
#define ND_RADAU_MU_RE 2.681082873627752134
#define ND_RADAU_MU_IM 3.050430199247410570
#define ND_RADAU_NEWTON_MAXITER 6

/* NDF/BDF (Shampine & Reichelt 1997, Table 1; SciPy's BDF): kappa per order, gamma_k = sum 1/j,
 * alpha_k = (1 - kappa_k) gamma_k, error constants kappa_k gamma_k + 1/(k + 1). */
#define ND_BDF_MAX_ORDER 5
#define ND_BDF_NEWTON_MAXITER 4
static const double nd_bdf_kappa[ND_BDF_MAX_ORDER + 1] = {0, -0.1850, -1.0 / 9.0, -0.0823, -0.0415, 0};

static double nd_bdf_gamma(int k)
{
    double g = 0;
    for (int j = 1; j <= k; ++j)
        g += 1.0 / j;
    return g;
}

static double nd_bdf_alpha(int k) { return (1 - nd_bdf_kappa[k]) * nd_bdf_gamma(k); }

static double nd_bdf_error_const(int k) { return nd_bdf_kappa[k] * nd_bdf_gamma(k) + 1.0 / (k + 1); }

/* R(factor) of SciPy's compute_R: R[i][j] = prod_{m=1..i} (m - 1 - factor j) / m, the change of
 * the differences to the step h * factor (Shampine & Reichelt 1997, (2.5)). */
static void nd_bdf_R(int order, double factor, double R[ND_BDF_MAX_ORDER + 1][ND_BDF_MAX_ORDER + 1])
{
    for (int j = 0; j <= order; ++j) {
        R[0][j] = 1;
        for (int i = 1; i <= order; ++i)
            R[i][j] = j == 0 ? 0 : R[i - 1][j] * (i - 1 - factor * j) / i;
    }
}

/* Step factors (SciPy's and Hairer's bounds). */
#define ND_STIFF_MIN_FACTOR 0.2
#define ND_STIFF_MAX_FACTOR 10.0
/* A Newton matrix singular this many times in a row (the step halved each time) fails. */
#define ND_STIFF_MAX_SINGULAR 5

/* ---- per-sample state ------------------------------------------------------------------------ */

enum {
    ND_PH_START,      /* request f(t0, y0) */
    ND_PH_INIT_F,     /* f(t0, y0) arrived: first step, maybe one more row */
    ND_PH_INIT_H,     /* the first-step probe arrived */
    ND_PH_JAC,        /* a Jacobian (analytic, or its difference rows) arrived; go on at after_jac */
    ND_PH_STEP,       /* a new step: limits on h */
    ND_PH_ATTEMPT,    /* one attempt at the current h */
    ND_PH_FACTOR,     /* LU factors (if stale) and the Newton start */
    ND_PH_NEWTON,     /* the rows of one Newton iteration arrived */
    ND_PH_ERR_EXTRA,  /* Radau: the error estimate's extra evaluation arrived */
    ND_PH_ACCEPT_F,   /* Radau: the Jacobian at the accepted point arrived */
    ND_PH_BDF_INIT    /* BDF: the differences from y0, f0 and the first step */
};

typedef struct {
    double t, t_old, t_new, h, h_abs, h_abs_old, err_old, err_norm, min_step;
    double faccon, rate, dn_old, lu_h, lu_c, h0, jnorm;
    int64_t budget, calm, attempts, accepted, rejected, nfev, njev, nlu, next_out, req_off, jac_off;
    int phase, after_jac, status, done, order, n_equal, k, n_iter, current_jac, lu_ok, rejected_now, first,
        have_dense, singular, recompute_jac, fd_base_row, has_fpred, f_exact;
} nd_stiff_sample;

/* Offsets (in elements of the state's type) of each sample's vectors in its block. */
typedef struct {
    size_t y, f, ynew, yold, scale, err, ze, tmp, fd_delta, fd_base, f3; /* d each */
    size_t z0, z, w, dw, q, cx;                                      /* 3d each, cx 2d (Radau) */
    size_t D, ypred, psi, dsum, fpred;                               /* BDF: D 8d, others d */
    size_t J, lu, luc;                                               /* d^2, d^2, 2 d^2 (Radau) */
    size_t per_sample;                                               /* elements */
    size_t piv, pivc, per_piv;                                       /* ints */
} nd_stiff_layout;

/* Each sample's block of vectors and matrices. Returns 0 on overflow. */
static int nd_stiff_layout_of(int method, int64_t d, nd_stiff_layout *L)
{
    memset(L, 0, sizeof *L);
    size_t dd, n = 0;
    const size_t ud = (size_t)d;
    if (!nd_mul_size(ud, ud, &dd) || dd > SIZE_MAX / 8 || ud > SIZE_MAX / 64)
        return 0;
    size_t *vec[] = {&L->y,   &L->f,        &L->ynew,    &L->yold, &L->scale, &L->err,
                     &L->ze, &L->tmp, &L->fd_delta, &L->fd_base, &L->f3};
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; ++i, n += ud)
        *vec[i] = n;
    L->J = n;
    n += dd;
    L->lu = n;
    n += dd;
    L->piv = 0;
    L->per_piv = ud;
    if (method == ND_STIFF_RADAU) {
        size_t *v3[] = {&L->z0, &L->z, &L->w, &L->dw, &L->q};
        for (size_t i = 0; i < sizeof v3 / sizeof v3[0]; ++i, n += 3 * ud)
            *v3[i] = n;
        L->cx = n; /* a complex vector, interleaved */
        n += 2 * ud;
        L->luc = n;
        n += 2 * dd;
        L->pivc = ud;
        L->per_piv = 2 * ud;
    } else {
        L->D = n;
        n += (ND_BDF_MAX_ORDER + 3) * ud;
        size_t *v1[] = {&L->ypred, &L->psi, &L->dsum, &L->fpred};
        for (size_t i = 0; i < sizeof v1 / sizeof v1[0]; ++i, n += ud)
            *v1[i] = n;
    }
    L->per_sample = n;
    return 1;
}

/* Radau's 3 stages, or a difference Jacobian's d rows and its base point. */
int64_t nd_ode_stiff_max_rows(int64_t d) { return d + 1 > 3 ? d + 1 : 3; }

/* The workspace, in this order: samples, double rows, int64 lists, state-type arrays, ints. */
typedef struct {
    size_t samples, tq, jt, live, jlist, arr, yq, fq, jy, jJ, piv, total;
} nd_stiff_parts;

static int nd_stiff_parts_of(int method, int64_t B, int64_t d, size_t elem, nd_stiff_parts *P,
                             nd_stiff_layout *L)
{
    if (!nd_stiff_layout_of(method, d, L))
        return 0;
    const size_t ub = (size_t)B, ud = (size_t)d;
    size_t rows, sizes[11], dd;
    if (!nd_mul_size(ub, (size_t)nd_ode_stiff_max_rows(d), &rows) || !nd_mul_size(ud, ud, &dd))
        return 0;
    /* bytes of each part */
    if (!nd_mul_size(ub, sizeof(nd_stiff_sample), &sizes[0]) || !nd_mul_size(rows, sizeof(double), &sizes[1]) ||
        !nd_mul_size(ub, sizeof(double), &sizes[2]) || !nd_mul_size(ub, sizeof(int64_t), &sizes[3]) ||
        !nd_mul_size(ub, sizeof(int64_t), &sizes[4]) || !nd_mul3_size(ub, L->per_sample, elem, &sizes[5]) ||
        !nd_mul3_size(rows, ud, elem, &sizes[6]) || !nd_mul3_size(rows, ud, elem, &sizes[7]) ||
        !nd_mul3_size(ub, ud, elem, &sizes[8]) || !nd_mul3_size(ub, dd, elem, &sizes[9]) ||
        !nd_mul3_size(ub, L->per_piv, sizeof(int), &sizes[10]))
        return 0;
    size_t *at[] = {&P->samples, &P->tq, &P->jt, &P->live, &P->jlist, &P->arr, &P->yq, &P->fq, &P->jy, &P->jJ, &P->piv};
    size_t off = 0;
    for (int i = 0; i < 11; ++i) {
        /* every part starts 8-aligned (the float parts may end on 4) */
        off = (off + 7) & ~(size_t)7;
        *at[i] = off;
        if (sizes[i] > SIZE_MAX - off - 8)
            return 0;
        off += sizes[i];
    }
    P->total = off;
    return 1;
}

int nd_ode_stiff_workspace_size(int method, int64_t B, int64_t d, size_t elem_size, size_t *bytes)
{
    ND_REQUIRE(method >= 0 && method < ND_STIFF_METHOD_COUNT, "method", method, "must be 0 (radau) or 1 (bdf)");
    ND_REQUIRE(B >= 0, "B", B, "must be >= 0");
    ND_REQUIRE(d >= 0, "d", d, "must be >= 0");
    ND_REQUIRE(elem_size == 4 || elem_size == 8, "elem_size", (double)elem_size, "must be 4 or 8");
    if (!nd_blas_dims_ok(d, d, 1))
        return nd_size_error("d");
    nd_stiff_parts P;
    nd_stiff_layout L;
    if (!nd_stiff_parts_of(method, B, d, elem_size, &P, &L))
        return nd_size_error("y0");
    *bytes = P.total;
    return ND_OK;
}

/* Results of one advance of a sample. */
enum { ND_ADV_GO = 0, ND_ADV_WAIT = 1, ND_ADV_DONE = 2 };

/* The smallest step at t (SciPy's 10 ulps of t in the direction of integration). */
static double nd_stiff_min_step(double t, double dir) { return 10 * fabs(nextafter(t, dir * INFINITY) - t); }

/* Gustafsson's predictive factor (SciPy's predict_factor); the caller applies the safety factor. */
static double nd_stiff_predict_factor(double h_abs, double h_abs_old, double err, double err_old)
{
    double multiplier = 1;
    if (h_abs_old > 0 && err > 0)
        multiplier = h_abs / h_abs_old * pow(err_old / err, 0.25);
    return err > 0 ? fmin(1.0, multiplier) * pow(err, -0.25) : INFINITY;
}

/* Radau IIA 5's Butcher matrix (Hairer & Wanner II, IV.5, Table 5.6), for the discrete adjoint:
 * the collocation equations Z_i = h sum_j A_ij f(t + c_j h, y + Z_j) the transformed Newton
 * iteration solves. */
static const double nd_radau_A[3][3] = {
    {(88.0 - 7.0 * ND_S6) / 360.0, (296.0 - 169.0 * ND_S6) / 1800.0, (-2.0 + 3.0 * ND_S6) / 225.0},
    {(296.0 + 169.0 * ND_S6) / 1800.0, (88.0 + 7.0 * ND_S6) / 360.0, (-2.0 - 3.0 * ND_S6) / 225.0},
    {(16.0 - ND_S6) / 36.0, (16.0 + ND_S6) / 36.0, 1.0 / 9.0}};

/* The backward pass's arrays: per sample its cotangent, step count and first step; per round
 * (at most B samples) their stage states, times, Jacobians, stage cotangents and mu; one
 * 3d x 3d system and its pivots. */
typedef struct {
    size_t a, Y, Jk, Zb, mu, M; /* state type */
    size_t ts;                  /* double */
    size_t cnt, first, order, batch; /* int64 */
    size_t piv;                      /* int */
    size_t total;
} nd_stiff_grad_plan;

static int nd_stiff_grad_make_plan(int64_t B, int64_t d, int64_t S, size_t es, nd_stiff_grad_plan *p)
{
    size_t bd, rows, rdd, dd3, at = 0;
    const size_t ub = (size_t)B, ud = (size_t)d;
    if (B < 0 || d < 0 || S < 0 || ud > SIZE_MAX / 8 || !nd_mul_size(ub, ud, &bd) || !nd_mul_size(3, bd, &rows) ||
        !nd_mul_size(rows, ud, &rdd) || !nd_mul_size(3 * ud, 3 * ud, &dd3))
        return 0;
    const size_t D = sizeof(double), I8 = sizeof(int64_t);
    int ok = nd_work_part(&at, &p->a, bd, es) && nd_work_part(&at, &p->Y, rows, es) &&
             nd_work_part(&at, &p->Jk, rdd, es) && nd_work_part(&at, &p->Zb, rows, es) &&
             nd_work_part(&at, &p->mu, rows, es) && nd_work_part(&at, &p->M, dd3, es) &&
             nd_work_part(&at, &p->ts, 3 * ub, D) && nd_work_part(&at, &p->cnt, ub, I8) &&
             nd_work_part(&at, &p->first, ub + 1, I8) && nd_work_part(&at, &p->order, (size_t)S, I8) &&
             nd_work_part(&at, &p->batch, ub, I8) && nd_work_part(&at, &p->piv, 3 * ud, sizeof(int));
    p->total = at + 64;
    return ok;
}

int nd_ode_stiff_backprop_workspace_size(int64_t B, int64_t d, int64_t n_steps, size_t elem_size, size_t *bytes)
{
    if (!bytes)
        return nd_arg_error_novalue("bytes", "must not be NULL");
    const int st = nd_ode_stiff_workspace_size(ND_STIFF_RADAU, B, d, elem_size, bytes); /* B, d, elem_size */
    if (st != ND_OK)
        return st;
    ND_REQUIRE(n_steps >= 0, "n_steps", n_steps, "must be >= 0");
    if (!nd_blas_dims_ok(3 * d, 3 * d, 1))
        return nd_size_error("d");
    nd_stiff_grad_plan p;
    if (!nd_stiff_grad_make_plan(B, d, n_steps, elem_size, &p))
        return nd_size_error("the backprop workspace");
    *bytes = p.total;
    return ND_OK;
}

#define ND_IMPL "nd_ode_stiff_impl.inc"
#include "nd_instantiate.h"

#define ND_IMPL "nd_ode_stiff_grad_impl.inc"
#include "nd_instantiate.h"

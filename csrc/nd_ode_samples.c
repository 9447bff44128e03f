/* The independent-sample driver's coefficient sets and memory plan; the typed driver is in
 * nd_ode_samples_impl.inc. */
#if defined(__GNUC__) && !defined(__clang__)
/* A sample's bits must not depend on where its row sits in the batch: a contracted
 * multiply-add in a vectorised loop body but not in its scalar remainder would make them
 * depend on the row's offset (docs/models.md §8). */
#pragma GCC optimize("fp-contract=off")
#endif

#include "nd_ode_samples.h"
#include "nd_rk.h"

#include <float.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "nd_generic.h"
#include "nd_parallel.h"
#include "nd_status.h"
#include "nd_vmath.h"

/* ---- coefficient sets ---------------------------------------------------------------- */

static const nd_rk_pair *nd_rk_pair_of(int method)
{
    switch (method) {
    case ND_ODE_DOPRI5: return &nd_rk_dopri5;
    case ND_ODE_TSIT5: return &nd_rk_tsit5;
    case ND_ODE_DOP853: return &nd_rk_dop853;
    default: return NULL;
    }
}

int nd_ode_samples_method(int method) { return nd_rk_pair_of(method) != NULL; }

int nd_ode_dense_vectors(int method)
{
    const nd_rk_pair *p = nd_rk_pair_of(method);
    return p ? p->dense_vectors : 0;
}

void nd_ode_samples_opts_default(nd_ode_samples_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->method = ND_ODE_DOPRI5;
    opts->rtol = 1e-3;
    opts->atol = 1e-6;
    opts->max_steps = 10000;
}

/* ---- memory plan ----------------------------------------------------------------------- */

/* Byte offsets of every array of one call in its workspace. Per-row arrays (compacted as
 * samples leave) and per-sample arrays have B entries; root problems have B * n_events. */
typedef struct {
    size_t Y, YN, YT, YC, HE, K, DN, PY, PG;             /* state type */
    size_t Q;                                            /* double: 2 B d scaled squares */
    size_t tt, hs, err, tnew, hh, t0r, tnext, fac, G0, G1; /* double */
    size_t pa, pb, pfa, pfb, proot, pg;                  /* double, per root problem */
    size_t live, rows, orows, jrows, evcount, prow, pk, pq, accr, rejr, nfevr; /* int64 */
    size_t rflag, sflag, pside, nstiff, ncalm;           /* int (the last two per sample) */
    size_t total;
} nd_samples_plan;

/* Reserves count * size bytes at *at (64-byte aligned); 0 on overflow. */
static int nd_reserve(size_t *at, size_t *off, int64_t count, size_t size)
{
    size_t bytes;
    if (count < 0 || !nd_mul_size((size_t)count, size, &bytes) || bytes > SIZE_MAX - 128 - *at)
        return 0;
    *off = *at;
    *at += (bytes + 63) & ~(size_t)63;
    return 1;
}

static int nd_samples_make_plan(const nd_rk_pair *rk, int64_t B, int64_t d, int64_t ne, size_t es,
                                nd_samples_plan *p)
{
    size_t at = 0, bd, P, Pd, Pne, Bne, slopes, dense;
    if (B < 0 || d < 0 || ne < 0 || !nd_mul_size((size_t)B, (size_t)d, &bd) || !nd_mul_size((size_t)B, (size_t)ne, &Bne) ||
        !nd_mul_size((size_t)(rk->stages + rk->extra), bd, &slopes) ||
        !nd_mul_size((size_t)rk->dense_vectors, bd, &dense) || bd > INT64_MAX || Bne > INT64_MAX)
        return 0;
    P = Bne;
    if (!nd_mul_size(P, (size_t)d, &Pd) || !nd_mul_size(P, (size_t)ne, &Pne) || Pd > INT64_MAX || Pne > INT64_MAX ||
        slopes > INT64_MAX || dense > INT64_MAX)
        return 0;
    const size_t D = sizeof(double), I = sizeof(int64_t), N = sizeof(int);
    return nd_reserve(&at, &p->Y, (int64_t)bd, es) && nd_reserve(&at, &p->YN, (int64_t)bd, es) &&
           nd_reserve(&at, &p->YT, (int64_t)bd, es) && nd_reserve(&at, &p->YC, (int64_t)bd, es) &&
           nd_reserve(&at, &p->HE, (int64_t)bd, es) &&
           nd_reserve(&at, &p->K, (int64_t)slopes, es) && nd_reserve(&at, &p->DN, (int64_t)dense, es) &&
           nd_reserve(&at, &p->PY, (int64_t)Pd, es) && nd_reserve(&at, &p->PG, (int64_t)Pne, es) &&
           bd <= INT64_MAX / 2 && nd_reserve(&at, &p->Q, 2 * (int64_t)bd, D) &&
           nd_reserve(&at, &p->tt, B, D) && nd_reserve(&at, &p->hs, B, D) && nd_reserve(&at, &p->err, B, D) &&
           nd_reserve(&at, &p->tnew, B, D) && nd_reserve(&at, &p->tnext, B, D) && nd_reserve(&at, &p->hh, B, D) &&
           nd_reserve(&at, &p->t0r, B, D) && nd_reserve(&at, &p->fac, B, D) && nd_reserve(&at, &p->accr, B, I) &&
           nd_reserve(&at, &p->rejr, B, I) && nd_reserve(&at, &p->nfevr, B, I) &&
           nd_reserve(&at, &p->G0, (int64_t)Bne, D) && nd_reserve(&at, &p->G1, (int64_t)Bne, D) &&
           nd_reserve(&at, &p->pa, (int64_t)P, D) && nd_reserve(&at, &p->pb, (int64_t)P, D) &&
           nd_reserve(&at, &p->pfa, (int64_t)P, D) && nd_reserve(&at, &p->pfb, (int64_t)P, D) &&
           nd_reserve(&at, &p->proot, (int64_t)P, D) && nd_reserve(&at, &p->pg, (int64_t)Pne, D) &&
           nd_reserve(&at, &p->live, B, I) &&
           nd_reserve(&at, &p->rows, B, I) && nd_reserve(&at, &p->orows, B, I) && nd_reserve(&at, &p->jrows, B, I) &&
           nd_reserve(&at, &p->evcount, (int64_t)Bne, I) &&
           nd_reserve(&at, &p->prow, (int64_t)P, I) && nd_reserve(&at, &p->pk, (int64_t)P, I) &&
           nd_reserve(&at, &p->pq, (int64_t)P, I) && nd_reserve(&at, &p->rflag, B, N) &&
           nd_reserve(&at, &p->sflag, B, N) && nd_reserve(&at, &p->pside, (int64_t)P, N) &&
           nd_reserve(&at, &p->nstiff, B, N) && nd_reserve(&at, &p->ncalm, B, N) &&
           ((p->total = at + 64), 1);
}

int nd_ode_samples_workspace_size(int method, int64_t B, int64_t d, int64_t n_events, size_t elem_size,
                                  size_t *bytes)
{
    const nd_rk_pair *rk = nd_rk_pair_of(method);
    if (!rk)
        return nd_arg_error("method", method, "must be dopri5, tsit5 or dop853");
    ND_REQUIRE(B >= 0, "the number of samples", B, "must be >= 0");
    ND_REQUIRE(d >= 0, "the state size", d, "must be >= 0");
    ND_REQUIRE(n_events >= 0, "n_events", n_events, "must be >= 0");
    ND_REQUIRE(elem_size == sizeof(float) || elem_size == sizeof(double), "elem_size", elem_size, "must be 4 or 8");
    nd_samples_plan p;
    if (!bytes)
        return nd_arg_error_novalue("bytes", "must not be NULL");
    if (!nd_samples_make_plan(rk, B, d, n_events, elem_size, &p))
        return nd_size_error("the samples workspace");
    *bytes = p.total;
    return ND_OK;
}

/* Argument rules shared by both precisions: the solver options' and output times' rules of
 * every solver (nd_ode_check_opts, nd_ode_check_times), then this driver's own. */
static int nd_samples_check(const nd_ode_samples_opts *o, int64_t B, int64_t d, int64_t nt, const double *t)
{
    if (!o)
        return nd_arg_error_novalue("opts", "must not be NULL");
    nd_ode_opts shared;
    nd_ode_opts_default(&shared);
    shared.method = o->method, shared.rtol = o->rtol, shared.atol = o->atol, shared.dt = o->dt;
    shared.max_steps = o->max_steps;
    int st = nd_ode_check_opts(&shared);
    if (st != ND_OK)
        return st;
    if (!nd_rk_pair_of(o->method))
        return nd_arg_error("method", o->method, "must be dopri5, tsit5 or dop853 for the per-sample driver");
    ND_REQUIRE(o->n_events >= 0, "n_events", o->n_events, "must be >= 0");
    ND_REQUIRE(B >= 0, "the number of samples", B, "must be >= 0");
    ND_REQUIRE(d >= 0, "the state size", d, "must be >= 0");
    if ((st = nd_ode_check_times(nt, t)) != ND_OK)
        return st;
    ND_REQUIRE(o->stiff_detect >= 0, "stiff_detect", o->stiff_detect, "must be >= 0");
    if (o->stiff_detect && o->method != ND_ODE_DOPRI5 && o->method != ND_ODE_TSIT5)
        return nd_arg_error("method", o->method, "must be dopri5 or tsit5 with stiffness detection");
    if (o->t_start && !o->h_start)
        return nd_arg_error_novalue("h_start", "must be given with t_start");
    const double lo = fmin(t[0], t[nt - 1]), hi = fmax(t[0], t[nt - 1]);
    for (int64_t s = 0; s < B; ++s) {
        if (o->t_start)
            ND_REQUIRE(o->t_start[s] >= lo && o->t_start[s] <= hi, "t_start", o->t_start[s],
                       "must lie between t[0] and t[-1]");
        if (o->h_start)
            ND_REQUIRE(o->h_start[s] > 0 && isfinite(o->h_start[s]), "h_start", o->h_start[s], "must be finite and > 0");
        if (o->out_start)
            ND_REQUIRE(o->out_start[s] >= 1 && o->out_start[s] <= nt, "out_start", o->out_start[s],
                       "must lie in [1, nt]");
        if (o->budget)
            ND_REQUIRE(o->budget[s] >= 0, "budget", o->budget[s], "must be >= 0");
    }
    for (int64_t k = 0; k < o->n_events; ++k) {
        if (o->direction)
            ND_REQUIRE(o->direction[k] >= -1 && o->direction[k] <= 1, "direction", o->direction[k],
                       "must be -1, 0 or 1");
        if (o->terminal)
            ND_REQUIRE(o->terminal[k] >= 0, "terminal", o->terminal[k], "must be >= 0");
        if (o->ev_c) {
            if (!o->ev_d)
                return nd_arg_error_novalue("the linear events' offsets", "must be given with their coefficients");
            ND_REQUIRE(isfinite(o->ev_d[k]), "the linear event offset", o->ev_d[k], "must be finite");
            for (int64_t i = 0; i < d; ++i)
                ND_REQUIRE(isfinite(o->ev_c[k * d + i]), "the linear event coefficient", o->ev_c[k * d + i],
                           "must be finite");
        }
    }
    return ND_OK;
}

/* Row flags of one round: accepted, the step lands on t_end, the step's extra dense stages are
 * needed (an output inside it, events or a recorded dense output), its dense coefficients too
 * (events or recorded), the sample left, an output time lies in the step. */
enum { ND_ROW_ACCEPT = 1, ND_ROW_LAST = 2, ND_ROW_DENSE = 4, ND_ROW_DONE = 8, ND_ROW_COEF = 16, ND_ROW_OUT = 32,
       ND_ROW_CHECK = 64, /* out of budget, or a step near ten ulps of its time: look closer */
       ND_ROW_STIFF = 128 /* the stiffness test stops the sample after this step */ };
/* Sample flags kept between rounds. */
enum { ND_SAMPLE_REJECTED = 1, ND_SAMPLE_NAN = 2 };

/* x^p for x in [1e-10, 1e10] and p in [-1/4, -1/8], to about 1e-8 relative (a step-size
 * heuristic needs no more, and this is a third of a full-precision power): x = 2^k m with m in
 * [sqrt(1/2), sqrt(2)) from the bits (as nd_log_pos), log m by five terms of
 * 2 atanh((m - 1) / (m + 1)), then e^z = 2^j e^r with |r| <= ln2 / 2 by eight terms. */
static inline double nd_samples_pow(double x, double p)
{
    const double ln2 = 0.69314718055994530942;
    const uint64_t u = nd_double_to_bits(x), tmp = u - 0x3FE6A09E667F3BCDull;
    const double k = nd_bits_to_double(nd_double_to_bits(ND_VMATH_SHIFTER) + ((tmp + (1023ull << 52)) >> 52)) -
                     (ND_VMATH_SHIFTER + 1023.0);
    const double m = nd_bits_to_double(u - (tmp & 0xFFF0000000000000ull));
    const double s = (m - 1.0) / (m + 1.0), s2 = s * s;
    const double lm = 2.0 * s * (1.0 + s2 * (1.0 / 3 + s2 * (1.0 / 5 + s2 * (1.0 / 7 + s2 * (1.0 / 9)))));
    const double z = p * (k * ln2 + lm);
    const double j = (z * 1.4426950408889634074 + ND_VMATH_SHIFTER) - ND_VMATH_SHIFTER, r = z - j * ln2;
    const double e = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (1.0 / 720 +
                                                                                                  r * (1.0 / 5040)))))));
    return e * nd_pow2i(j);
}

/* The step-size factor of a step with error norm err (docs/models.md §1, §8): on acceptance
 * clamp(0.9 err^-acc_exp, 0.2, 10) (10 at err = 0), on rejection max(0.2, 0.9 err^-rej_exp)
 * (0.2 for NaN). err is clamped to [1e-10, 1e10], where the clamps have taken over already. */
static inline double nd_samples_factor(double err, double acc_exp, double rej_exp)
{
    const double x = err < 1e-10 ? 1e-10 : (err > 1e10 ? 1e10 : err);
    const int accept = err <= 1.0;
    const double pw = 0.9 * nd_samples_pow(x, accept ? -acc_exp : -rej_exp);
    double f = pw < 0.2 ? 0.2 : pw;
    f = accept && f > 10.0 ? 10.0 : f;
    f = err == 0 ? 10.0 : f;
    return err != err ? 0.2 : f;
}

/* The factors of n rows: one flat loop, compiled for the machine's widest vectors (each lane
 * computes what a scalar would, so a row's factor does not depend on its place). */
ND_VECTOR_CLONES
static void nd_samples_factors(int64_t n, const double *restrict err, double acc_exp, double rej_exp,
                               double *restrict fac)
{
    for (int64_t i = 0; i < n; ++i)
        fac[i] = nd_samples_factor(err[i], acc_exp, rej_exp);
}

/* The norms of n rows from their sums of scaled squares: s5 (in err, replaced by the norm), s3
 * and the finiteness sums c (0 for finite rows). One flat loop, compiled for the widest vectors. */
ND_VECTOR_CLONES
static void nd_samples_norms(int64_t n, int two, double d, const double *restrict hs, const double *restrict s3,
                             const double *restrict c, double *restrict err)
{
    for (int64_t r = 0; r < n; ++r) {
        const double s5 = err[r];
        /* Hairer's DOP853: |h| err5^2 / sqrt(d (err5^2 + 0.01 err3^2)), the 5th-order estimate
         * damped where the 3rd-order one says it is too optimistic. */
        const double e = two ? ((s5 == 0 && s3[r] == 0) ? 0.0 : fabs(hs[r]) * s5 / sqrt(d * (s5 + 0.01 * s3[r])))
                             : sqrt(s5 / d);
        /* An infinite candidate can make its own tolerance infinite and the estimate 0. */
        err[r] = (e <= 1.0 && c[r] != 0) ? NAN : e;
    }
}

/* Rows per thread range of the elementwise loops: enough elements to pay for a thread. */
static int64_t nd_samples_grain(int64_t d) { return d >= 4096 ? 1 : 4096 / (d > 0 ? d : 1); }

/* The bytes of a block's stage vectors: about a core's L2 cache (512 KiB to 2 MiB on current
 * x86 cores). With d = 1000 doubles (dopri5, about 100 KiB a row) blocks of 8 to 32 rows ran a
 * memory network's recall alike, 20% faster than the whole working set (whose stage vectors
 * stream from the last-level cache or memory on every pass); blocks of 2 to 4 rows lost that
 * to the right-hand side's per-call cost. */
#define ND_SAMPLES_BLOCK_BYTES ((size_t)1 << 20)

int64_t nd_ode_samples_block_rows(int method, int64_t d, size_t elem_size, int threads)
{
    const nd_rk_pair *rk = nd_rk_pair_of(method);
    if (!rk || d <= 0)
        return 1;
    /* per row: the slopes, Y, YN, YT and HE of the state's type, the scaled squares in double */
    const size_t row = (size_t)d * ((size_t)(rk->stages + 4) * elem_size + 2 * sizeof(double));
    const int64_t fit = (int64_t)(ND_SAMPLES_BLOCK_BYTES / row), least = (threads > 1 ? threads : 1) * nd_samples_grain(d);
    return fit > least ? fit : least;
}

/* ---- gradients ----------------------------------------------------------------------- */

/* The weights q_j of a step's dense output as one combination of its slopes,
 * y(t + th h) = y + h sum_j q_j(th) k_j (the map the forward pass evaluates through its dense
 * coefficients), for the backward pass. Returns the number of slopes. */
static int nd_rk_dense_weights(const nd_rk_pair *rk, double th, double q[ND_RK_MAX])
{
    if (rk->dense) {
        const double(*P)[4] = rk->dense;
        for (int j = 0; j < 7; ++j)
            q[j] = th * (P[j][0] + th * (P[j][1] + th * (P[j][2] + th * P[j][3])));
        return 7;
    }
    /* y(th) = y + sum_p w_p F_p with Hairer's F0 = h sum b k, F1 = h k0 - F0,
     * F2 = 2 F0 - h (k12 + k0), F(3+p) = h sum D[p] k and w = th, th s, th^2 s, th^2 s^2,
     * th^3 s^2, th^3 s^3, th^4 s^3 (s = 1 - th). */
    const double s = 1 - th, w0 = th, w1 = th * s, w2 = th * th * s, w3 = w2 * s, w4 = w3 * th, w5 = w4 * s,
                 w6 = w5 * th, wd[4] = {w3, w4, w5, w6};
    const double *b = rk->a[rk->stages - 1];
    for (int j = 0; j < ND_RK_MAX; ++j)
        q[j] = j < rk->stages - 1 ? (w0 - w1 + 2 * w2) * b[j] : 0.0;
    q[0] += w1 - w2;
    q[rk->stages - 1] -= w2;
    for (int p = 0; p < 4; ++p)
        for (int j = 0; j < ND_RK_MAX; ++j)
            q[j] += wd[p] * nd_dop853_dense[p][j];
    return rk->stages + rk->extra;
}

int nd_ode_samples_backprop_slots(int method)
{
    const nd_rk_pair *rk = nd_rk_pair_of(method);
    return rk ? rk->stages + rk->extra : 0;
}

/* Byte offsets of the backward pass's arrays: per replayed round, S stage states, slopes and
 * slope cotangents and two cotangent rows for at most B rows; the samples' cotangents. */
typedef struct {
    size_t Ys, K, Kb, C, tmp, ycur;          /* state type */
    size_t h, t0, tnew, tt;                  /* double */
    size_t sample, seen;                     /* int64 */
    size_t total;
} nd_backprop_plan;

static int nd_backprop_make_plan(const nd_rk_pair *rk, int64_t B, int64_t d, size_t es, nd_backprop_plan *p)
{
    size_t at = 0, bd, sbd;
    const int64_t S = rk->stages + rk->extra;
    if (B < 0 || d < 0 || !nd_mul_size((size_t)B, (size_t)d, &bd) || !nd_mul_size((size_t)S, bd, &sbd) ||
        sbd > INT64_MAX)
        return 0;
    const size_t D = sizeof(double), I = sizeof(int64_t);
    return nd_reserve(&at, &p->Ys, (int64_t)sbd, es) && nd_reserve(&at, &p->K, (int64_t)sbd, es) &&
           nd_reserve(&at, &p->Kb, (int64_t)sbd, es) && nd_reserve(&at, &p->C, (int64_t)bd, es) &&
           nd_reserve(&at, &p->tmp, (int64_t)bd, es) && nd_reserve(&at, &p->ycur, (int64_t)bd, es) &&
           nd_reserve(&at, &p->h, B, D) && nd_reserve(&at, &p->t0, B, D) && nd_reserve(&at, &p->tnew, B, D) &&
           nd_reserve(&at, &p->tt, B, D) && nd_reserve(&at, &p->sample, B, I) && nd_reserve(&at, &p->seen, B, I) &&
           ((p->total = at + 64), 1);
}

/* The adjoint's arrays: the driver's workspace for [y, a] rows of 2d, the state and the
 * interval's outputs, the split rows of the augmented right-hand side, the interval's counters. */
typedef struct {
    size_t drv, z, zs, zl, ys, as, f, ao; /* driver bytes, then state type */
    size_t nfev, acc, rej, nout, t, status;
    size_t total;
} nd_adjoint_plan;

static int nd_adjoint_make_plan(int method, int64_t B, int64_t d, size_t es, nd_adjoint_plan *p)
{
    size_t at = 0, bd, drv;
    if (B < 0 || d < 0 || d > INT64_MAX / 4 || !nd_mul_size((size_t)B, (size_t)d, &bd) || bd > INT64_MAX / 4 ||
        nd_ode_samples_workspace_size(method, B, 2 * d, 0, es, &drv) != ND_OK)
        return 0;
    const int64_t bd2 = 2 * (int64_t)bd;
    return nd_reserve(&at, &p->drv, (int64_t)drv, 1) && nd_reserve(&at, &p->z, bd2, es) &&
           nd_reserve(&at, &p->zs, 2 * bd2, es) && nd_reserve(&at, &p->zl, bd2, es) &&
           nd_reserve(&at, &p->ys, (int64_t)bd, es) && nd_reserve(&at, &p->as, (int64_t)bd, es) &&
           nd_reserve(&at, &p->f, (int64_t)bd, es) && nd_reserve(&at, &p->ao, (int64_t)bd, es) &&
           nd_reserve(&at, &p->nfev, B, sizeof(int64_t)) && nd_reserve(&at, &p->acc, B, sizeof(int64_t)) &&
           nd_reserve(&at, &p->rej, B, sizeof(int64_t)) && nd_reserve(&at, &p->nout, B, sizeof(int64_t)) &&
           nd_reserve(&at, &p->t, B, sizeof(double)) && nd_reserve(&at, &p->status, B, sizeof(int)) &&
           ((p->total = at + 64), 1);
}

int nd_ode_samples_backprop_workspace_size(int method, int64_t B, int64_t d, size_t elem_size, size_t *bytes)
{
    const nd_rk_pair *rk = nd_rk_pair_of(method);
    if (!rk)
        return nd_arg_error("method", method, "must be dopri5, tsit5 or dop853");
    ND_REQUIRE(B >= 0, "the number of samples", B, "must be >= 0");
    ND_REQUIRE(d >= 0, "the state size", d, "must be >= 0");
    ND_REQUIRE(elem_size == sizeof(float) || elem_size == sizeof(double), "elem_size", elem_size, "must be 4 or 8");
    if (!bytes)
        return nd_arg_error_novalue("bytes", "must not be NULL");
    nd_backprop_plan p;
    if (!nd_backprop_make_plan(rk, B, d, elem_size, &p))
        return nd_size_error("the backprop workspace");
    *bytes = p.total;
    return ND_OK;
}

int nd_ode_samples_adjoint_workspace_size(int method, int64_t B, int64_t d, size_t elem_size, size_t *bytes)
{
    int st = nd_ode_samples_workspace_size(method, B, d, 0, elem_size, bytes);
    if (st != ND_OK)
        return st;
    nd_adjoint_plan p;
    if (!nd_adjoint_make_plan(method, B, d, elem_size, &p))
        return nd_size_error("the adjoint workspace");
    *bytes = p.total;
    return ND_OK;
}

/* ---- kept stages ------------------------------------------------------------------------- */

/* One round's kept stages: stages 1 .. `stages` of its accepted steps, each m rows of the
 * stage's argument [m, d] and then the arrays of its kept values [m, width[j]]. */
typedef struct {
    void *buf;
    size_t cap;
    int64_t round, m;
    int stages;
} nd_kept_round;

struct nd_ode_samples_kept {
    int method, valid, n_widths;
    int stopped; /* the budget stopped keeping for the rest of the solve */
    int64_t B, d, row, widths[ND_SAMPLES_KEEP_ARRAYS]; /* row: elements per row and stage */
    size_t itemsize;
    size_t budget, alloc;  /* bytes the round buffers may take, and take */
    nd_kept_round *rounds; /* [n_rounds] this solve's; up to rounds_cap with buffers to reuse */
    int64_t n_rounds, rounds_cap;
    double *steps; /* [n_steps][4]: the accepted steps as the tape records them */
    int64_t n_steps, steps_cap;
    int64_t n_kept; /* the first n_kept steps (those of the kept rounds) hold their stages */
    void *y0;
    size_t y0_bytes;
};

nd_ode_samples_kept *nd_ode_samples_kept_new(void)
{
    nd_ode_samples_kept *k = calloc(1, sizeof(nd_ode_samples_kept));
    if (k)
        k->budget = nd_ode_kept_default_budget();
    return k;
}

int nd_ode_samples_kept_set_budget(nd_ode_samples_kept *k, int64_t bytes)
{
    return nd_ode_kept_budget_of(k, bytes, k ? &k->budget : NULL);
}

static void nd_samples_kept_free_rounds(nd_ode_samples_kept *k)
{
    for (int64_t i = 0; i < k->rounds_cap; ++i) {
        free(k->rounds[i].buf);
        k->rounds[i].buf = NULL;
        k->rounds[i].cap = 0;
    }
    k->alloc = 0;
}

void nd_ode_samples_kept_free(nd_ode_samples_kept *k)
{
    if (!k)
        return;
    nd_samples_kept_free_rounds(k);
    free(k->rounds);
    free(k->steps);
    free(k->y0);
    free(k);
}

int64_t nd_ode_samples_kept_steps(const nd_ode_samples_kept *k)
{
    return k && k->valid ? k->n_kept : 0;
}

int nd_ode_samples_kept_complete(const nd_ode_samples_kept *k)
{
    return k && k->valid && k->n_kept == k->n_steps;
}

size_t nd_ode_samples_kept_bytes(const nd_ode_samples_kept *k)
{
    return k ? k->alloc : 0;
}

/* Stages a round's steps keep: those after the first (the FSAL slope, evaluated again from the
 * tape's state), and the last (the slope at the new state) only when a step of the round may
 * have an output inside it (`dense`), whose dense output reads that slope; not for dop853,
 * whose dense output also reads three extra stages of the rows that need them. */
static int nd_kept_stages(const nd_rk_pair *rk, int dense)
{
    return rk->stages - 2 + (dense && !rk->extra);
}

/* Forget the solve held; set up for one of B samples of d from y0 with kept values of the given
 * widths per row. */
static int nd_samples_kept_start(nd_ode_samples_kept *k, int method, int64_t B, int64_t d, size_t itemsize,
                                 int n_widths, const int64_t *widths, const void *y0)
{
    size_t y0_bytes;
    if (n_widths < 0 || n_widths > ND_SAMPLES_KEEP_ARRAYS)
        return nd_arg_error("the kept arrays", n_widths, "must be at most ND_SAMPLES_KEEP_ARRAYS");
    int64_t row = d;
    for (int j = 0; j < n_widths; ++j) {
        if (widths[j] < 0 || widths[j] > INT64_MAX / 4 - row)
            return nd_size_error("the kept stages");
        row += widths[j];
    }
    if (!nd_mul_size((size_t)B, (size_t)d * itemsize, &y0_bytes))
        return nd_size_error("the kept stages");
    if (y0_bytes > k->y0_bytes || !k->y0) {
        void *p = realloc(k->y0, y0_bytes ? y0_bytes : 1);
        if (!p)
            return ND_ERR_NOMEM;
        k->y0 = p;
        k->y0_bytes = y0_bytes;
    }
    memcpy(k->y0, y0, y0_bytes);
    k->method = method, k->B = B, k->d = d, k->itemsize = itemsize, k->row = row, k->n_widths = n_widths;
    memcpy(k->widths, widths, (size_t)n_widths * sizeof(int64_t));
    k->n_rounds = k->n_steps = k->n_kept = 0;
    k->valid = k->stopped = 0;
    if (k->alloc > k->budget)
        nd_samples_kept_free_rounds(k);
    return ND_OK;
}

/* The memory of the next round's kept stages for n rows in *buf: NULL when keeping it would take
 * the round buffers past the budget, which stops keeping for the rest of the solve. Returns an
 * nd_status (ND_ERR_NOMEM). */
static int nd_samples_kept_round(nd_ode_samples_kept *k, int64_t n, int kstages, char **buf)
{
    size_t bytes;
    *buf = NULL;
    if (k->stopped)
        return ND_OK;
    if (!nd_mul_size((size_t)n * (size_t)kstages, (size_t)k->row * k->itemsize, &bytes))
        return nd_size_error("the kept stages");
    if (k->n_rounds == k->rounds_cap) {
        const int64_t cap = k->rounds_cap ? 2 * k->rounds_cap : 16;
        nd_kept_round *r = realloc(k->rounds, (size_t)cap * sizeof *r);
        if (!r)
            return ND_ERR_NOMEM;
        memset(r + k->rounds_cap, 0, (size_t)(cap - k->rounds_cap) * sizeof *r);
        k->rounds = r, k->rounds_cap = cap;
    }
    nd_kept_round *r = k->rounds + k->n_rounds; /* this solve's when the round keeps steps */
    const size_t grow = r->cap < bytes ? bytes - r->cap : 0;
    if (k->alloc + grow > k->budget || k->alloc + grow < k->alloc) {
        k->stopped = 1;
        return ND_OK;
    }
    r->stages = kstages;
    if (grow) {
        free(r->buf);
        k->alloc -= r->cap;
        r->cap = 0;
        if (!(r->buf = malloc(bytes ? bytes : 1)))
            return ND_ERR_NOMEM;
        r->cap = bytes;
        k->alloc += bytes;
    }
    *buf = r->buf;
    return ND_OK;
}

/* Row offset (in elements) of array j (0: the stage's argument, then the kept values) in the
 * layout of n rows of one stage. */
static size_t nd_kept_array_at(const nd_ode_samples_kept *k, int64_t n, int j)
{
    size_t at = 0;
    for (int i = 0; i < j; ++i)
        at += (size_t)n * (size_t)(i ? k->widths[i - 1] : k->d);
    return at;
}

/* The round's n rows were attempted and rows acc[0 .. m) (ascending) accepted: their steps are
 * recorded as the tape records them, (sample live[r], round, t0[r], h[r]), and when the round
 * kept its stages (`kept`, nd_samples_kept_round) these move down to the layout of m rows, in
 * place (every row moves towards the start). */
static int nd_samples_kept_accept(nd_ode_samples_kept *k, int64_t n, int64_t m, const int64_t *acc,
                                  const int64_t *live, const double *t0, const double *h, int64_t round, int kept)
{
    if (m == 0)
        return ND_OK;
    if (k->n_steps + m > k->steps_cap) {
        const int64_t cap = k->n_steps + m > 2 * k->steps_cap ? k->n_steps + m : 2 * k->steps_cap;
        double *p = realloc(k->steps, (size_t)cap * 4 * sizeof(double));
        if (!p)
            return ND_ERR_NOMEM;
        k->steps = p, k->steps_cap = cap;
    }
    for (int64_t q = 0; q < m; ++q) {
        double *st = k->steps + 4 * (k->n_steps + q);
        const int64_t r = acc[q];
        st[0] = (double)live[r], st[1] = (double)round, st[2] = t0[r], st[3] = h[r];
    }
    k->n_steps += m;
    if (!kept)
        return ND_OK;
    k->n_kept = k->n_steps;
    nd_kept_round *r = k->rounds + k->n_rounds++;
    r->round = round;
    r->m = m;
    int all = m == n;
    for (int64_t q = 0; all && q < m; ++q)
        all = acc[q] == q;
    if (all)
        return ND_OK;
    char *base = r->buf;
    const size_t es = k->itemsize;
    for (int s = 0; s < r->stages; ++s)
        for (int j = 0; j <= k->n_widths; ++j) {
            const size_t w = (size_t)(j ? k->widths[j - 1] : k->d) * es;
            char *src = base + ((size_t)s * (size_t)n * (size_t)k->row + nd_kept_array_at(k, n, j)) * es;
            char *dst = base + ((size_t)s * (size_t)m * (size_t)k->row + nd_kept_array_at(k, m, j)) * es;
            for (int64_t q = 0; q < m; ++q)
                memmove(dst + (size_t)q * w, src + (size_t)acc[q] * w, w);
        }
    return ND_OK;
}

/* The object holds the stages of the solve that recorded the tape, else the rule it breaks. */
static int nd_samples_kept_matches(const nd_ode_samples_kept *k, int method, int64_t B, int64_t d, size_t itemsize,
                                   const nd_ode_samples_tape *tape)
{
    if (!k || !k->valid)
        return nd_arg_error_novalue("kept", "must be the kept stages of a per-sample solve that ran to its end");
    if (k->method != method || k->B != B || k->d != d || k->itemsize != itemsize || k->n_steps != tape->n_steps)
        return nd_arg_error_novalue("kept", "holds the stages of another solve (its method, samples, state or "
                                            "number of steps differ from the tape's)");
    if (k->n_steps && memcmp(k->steps, tape->steps, (size_t)k->n_steps * 4 * sizeof(double)) != 0)
        return nd_arg_error_novalue("kept", "holds the stages of another solve (its steps differ from the tape's)");
    /* each sample's first step starts from its initial state */
    char *seen = calloc((size_t)B + 1, 1);
    if (!seen)
        return ND_ERR_NOMEM;
    const size_t row = (size_t)d * itemsize;
    int st = ND_OK;
    for (int64_t s = 0; s < k->n_steps && st == ND_OK; ++s) {
        const int64_t i = (int64_t)tape->steps[4 * s];
        if (seen[i])
            continue;
        seen[i] = 1;
        if (memcmp((const char *)tape->y + (size_t)s * row, (const char *)k->y0 + (size_t)i * row, row) != 0)
            st = nd_arg_error_novalue("kept", "holds the stages of another solve (its initial states differ from "
                                              "the tape's)");
    }
    free(seen);
    return st;
}

#define ND_IMPL "nd_ode_samples_impl.inc"
#include "nd_instantiate.h"

#define ND_IMPL "nd_ode_samples_grad_impl.inc"
#include "nd_instantiate.h"

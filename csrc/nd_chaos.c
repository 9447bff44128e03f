#include "nd_chaos.h"

#include <math.h>
#include <string.h>

#include "nd_blas.h"
#include "nd_generic.h"
#include "nd_poll.h"
#include "nd_status.h"

const char *const nd_qr_names[ND_QR_COUNT + 1] = {"auto", "householder", "gram_schmidt", NULL};
const char *const nd_map_names[ND_MAP_COUNT + 1] = {"henon", "logistic", NULL};

/* LAPACK's Householder QR and the explicit Q, from the OpenBLAS the project links (the wheel's
 * symbols carry a scipy_ prefix, as in nd_blas.c). */
#ifdef ND_BLAS_SCIPY_PREFIX
#define ND_QR_LAPACK(name) scipy_##name##_
#else
#define ND_QR_LAPACK(name) name##_
#endif
void ND_QR_LAPACK(sgeqrf)(const int *m, const int *n, float *a, const int *lda, float *tau, float *work,
                          const int *lwork, int *info);
void ND_QR_LAPACK(dgeqrf)(const int *m, const int *n, double *a, const int *lda, double *tau, double *work,
                          const int *lwork, int *info);
void ND_QR_LAPACK(sorgqr)(const int *m, const int *n, const int *k, float *a, const int *lda, const float *tau,
                          float *work, const int *lwork, int *info);
void ND_QR_LAPACK(dorgqr)(const int *m, const int *n, const int *k, double *a, const int *lda, const double *tau,
                          double *work, const int *lwork, int *info);
#define nd_geqrf_f32 ND_QR_LAPACK(sgeqrf)
#define nd_geqrf_f64 ND_QR_LAPACK(dgeqrf)
#define nd_orgqr_f32 ND_QR_LAPACK(sorgqr)
#define nd_orgqr_f64 ND_QR_LAPACK(dorgqr)

/* Columns of LAPACK's blocked QR scratch per tangent vector (its block size). */
#define ND_QR_LWORK_PER_COL 64

void nd_lyap_opts_default(nd_lyap_opts *o)
{
    o->t0 = 0.0;
    o->dt = 0.01;
    o->t_transient = 0.0;
    o->t_total = 100.0;
    o->orth_every = 1;
    o->qr = ND_QR_AUTO;
    o->tol = 0.0;
    o->check_every = 0;
}

int nd_lyap_check_opts(const nd_lyap_opts *o, int map)
{
    if (!o)
        return nd_arg_error_novalue("opts", "must not be NULL");
    ND_REQUIRE(isfinite(o->t0), "t0", o->t0, "must be finite");
    if (map) { /* a map counts iterations */
        ND_REQUIRE(isfinite(o->t_transient) && o->t_transient >= 0 && o->t_transient == floor(o->t_transient),
                   "n_transient", o->t_transient, "must be an integer >= 0");
        ND_REQUIRE(isfinite(o->t_total) && o->t_total >= 1 && o->t_total == floor(o->t_total), "n_iter", o->t_total,
                   "must be an integer >= 1");
        ND_REQUIRE(o->t_total + o->t_transient < 9e15, "n_iter", o->t_total, "must be below 9e15 iterations");
    } else {
        ND_REQUIRE(isfinite(o->dt) && o->dt > 0, "dt", o->dt, "must be finite and > 0");
        ND_REQUIRE(isfinite(o->t_transient) && o->t_transient >= 0, "t_transient", o->t_transient,
                   "must be finite and >= 0");
        ND_REQUIRE(isfinite(o->t_total) && o->t_total > 0, "t_total", o->t_total, "must be finite and > 0");
        ND_REQUIRE(o->t_total / o->dt + o->t_transient / o->dt < 9e15, "t_total", o->t_total,
                   "must be fewer than 9e15 steps of dt");
    }
    ND_REQUIRE(o->orth_every >= 1, "orth_every", o->orth_every, "must be >= 1");
    ND_REQUIRE(o->qr >= 0 && o->qr < ND_QR_COUNT, "qr", o->qr, "is not a known QR method");
    ND_REQUIRE(isfinite(o->tol) && o->tol >= 0, "tol", o->tol, "must be finite and >= 0");
    ND_REQUIRE(o->check_every >= 0, "check_every", o->check_every, "must be >= 0");
    return ND_OK;
}

int64_t nd_map_dim(int kind)
{
    return kind == ND_MAP_HENON ? 2 : kind == ND_MAP_LOGISTIC ? 1 : -1;
}

int nd_map_param_count(int kind)
{
    return kind == ND_MAP_HENON ? 2 : kind == ND_MAP_LOGISTIC ? 1 : -1;
}

int nd_map_check(const nd_map *g)
{
    if (!g)
        return nd_arg_error_novalue("map", "must not be NULL");
    ND_REQUIRE(g->kind >= 0 && g->kind < ND_MAP_COUNT, "the map kind", g->kind, "is not a known map");
    ND_REQUIRE(g->batch >= 0, "the number of map states", g->batch, "must be >= 0");
    ND_REQUIRE(g->dim == nd_map_dim(g->kind), "the state size", g->dim,
               g->kind == ND_MAP_HENON ? "must be 2 for the Henon map" : "must be 1 for the logistic map");
    ND_REQUIRE(isfinite(g->params[0]), g->kind == ND_MAP_HENON ? "a" : "r", g->params[0], "must be finite");
    if (g->kind == ND_MAP_HENON)
        ND_REQUIRE(isfinite(g->params[1]), "b", g->params[1], "must be finite");
    return ND_OK;
}

/* The workspace's layout, in elements of the state's type: the previous check's estimates
 * (B k doubles, 2 B k elements so that they fit a float workspace too, first for alignment),
 * LU pivots (n ints), the state, its stage, slope and sum (4 B n), the tangent vectors, their
 * stage, slope and sum (4 B k n), the Jacobians (B n n), and the QR's tau and scratch. */
int nd_lyapunov_workspace_len(int64_t B, int64_t n, int64_t k, size_t *len)
{
    ND_REQUIRE(B >= 0, "the number of initial states", B, "must be >= 0");
    ND_REQUIRE(n >= 1, "the state size", n, "must be >= 1");
    ND_REQUIRE(k >= 1 && k <= n, "n_exponents", k, "must be between 1 and the state size");
    size_t bk, bn, bkn, bnn, qr, total;
    if (!nd_mul_size((size_t)B, (size_t)k, &bk) || !nd_mul_size((size_t)B, (size_t)n, &bn) ||
        !nd_mul_size(bk, (size_t)n, &bkn) || !nd_mul_size(bn, (size_t)n, &bnn) ||
        !nd_mul_size((size_t)k, ND_QR_LWORK_PER_COL + 1, &qr))
        return nd_size_error("y0");
    const size_t parts[] = {bk, bk, (size_t)n + 1, bn, bn, bn, bn, bkn, bkn, bkn, bkn, bnn, bnn, qr};
    total = 0;
    for (size_t i = 0; i < sizeof parts / sizeof *parts; ++i) {
        if (total > SIZE_MAX - parts[i])
            return nd_size_error("y0");
        total += parts[i];
    }
    *len = total;
    return ND_OK;
}

#define ND_IMPL "nd_chaos_impl.inc"
#include "nd_instantiate.h"

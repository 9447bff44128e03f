#include "nd_memories.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#include "nd_blas.h"
#include "nd_generic.h"
#include "nd_parallel.h"
#include "nd_rng.h"
#include "nd_status.h"
#include "nd_vmath.h"

const char *const nd_mem_form_names[] = {"rate", "current", "idp", "additive", NULL};
const char *const nd_mem_act_names[] = {"sigmoid", "rectified_tanh", "tanh", "hardtanh", NULL};
const char *const nd_mem_slow_names[] = {"none", "sequence", NULL};
const char *const nd_mem_patterns_names[] = {"bernoulli", "correlated", "balanced", "rademacher", "hadamard", NULL};

/* The firing-rate forms hold 0/1 memories and firing-rate activations; the others +-1. */
static int nd_mem_is_rate(int form) { return form == ND_MEM_RATE || form == ND_MEM_CURRENT; }

/* Every byte 1 or lo: one pass that vectorises (an integer reduction), run on every field
 * check, so it must cost little next to an evaluation's two passes over the patterns. */
ND_VECTOR_CLONES
static int nd_mem_bytes_ok(const int8_t *restrict xi, int64_t count, int8_t lo)
{
    uint8_t bad = 0; /* bytes: no widening of the vector lanes */
    for (int64_t k = 0; k < count; ++k)
        bad |= (uint8_t)((xi[k] != 1) & (xi[k] != lo));
    return !bad;
}

/* Units u[0..len) increasing and in [0, n): the ends in range and every step up, one pass
 * that vectorises. */
ND_VECTOR_CLONES
static int nd_mem_units_ok(const int32_t *restrict u, int64_t len, int64_t n)
{
    int32_t bad = u[0] < 0 || u[len - 1] >= n;
    for (int64_t k = 1; k < len; ++k)
        bad |= u[k] <= u[k - 1];
    return !bad;
}

int64_t nd_memory_field_dim(const nd_memory_field *m)
{
    if (!m->input_in_state)
        return m->n;
    return m->n + (m->form == ND_MEM_IDP ? m->p : m->n);
}

int nd_memory_field_check(const nd_memory_field *m, int64_t dim)
{
    if (!m)
        return nd_arg_error_novalue("field", "must describe a memory network");
    ND_REQUIRE(m->form >= ND_MEM_RATE && m->form <= ND_MEM_ADDITIVE, "form", m->form, "must be a memory form code");
    if (nd_mem_is_rate(m->form))
        ND_REQUIRE(m->act == ND_MEM_SIGMOID || m->act == ND_MEM_RECTIFIED_TANH, "activation", m->act,
                   "must be sigmoid or rectified_tanh for a firing-rate network");
    else
        ND_REQUIRE(m->act == ND_MEM_TANH || m->act == ND_MEM_HARDTANH, "activation", m->act,
                   "must be tanh or hardtanh for a Hopfield network");
    ND_REQUIRE(m->p >= 1, "patterns", m->p, "must hold at least one memory");
    ND_REQUIRE(m->p < m->n, "patterns", m->p, "must have fewer memories (rows) than units (columns)");
    if (m->active && !nd_mem_is_rate(m->form))
        return nd_arg_error_novalue("active", "is for 0/1 memories (the rate and current forms)");
    const int sparse = m->active != NULL;
    if (!m->patterns && !sparse)
        return nd_arg_error_novalue("patterns", "must be given (or, for 0/1 memories, their active units)");
    ND_REQUIRE(isfinite(m->gain) && m->gain > 0, "gain", m->gain, "must be > 0 and finite");
    ND_REQUIRE(isfinite(m->threshold), "threshold", m->threshold, "must be finite");
    ND_REQUIRE(isfinite(m->tau) && m->tau > 0, "tau", m->tau, "must be > 0 and finite");
    ND_REQUIRE(isfinite(m->alpha) && isfinite(m->beta) && isfinite(m->gamma), "alpha", m->alpha,
               "must be finite (as beta and gamma)");
    ND_REQUIRE(m->slow == ND_MEM_SLOW_NONE || m->slow == ND_MEM_SLOW_SEQUENCE, "slow", m->slow, "must be a slow-law code");
    if (m->slow == ND_MEM_SLOW_SEQUENCE) {
        if (m->form != ND_MEM_IDP || !m->input_in_state)
            return nd_arg_error_novalue("slow", "needs an IDP network with its saliencies in the state");
        ND_REQUIRE(isfinite(m->kappa) && m->kappa >= 0, "kappa", m->kappa, "must be >= 0 and finite");
        ND_REQUIRE(isfinite(m->eps) && m->eps > 0, "eps", m->eps, "must be > 0 and finite");
        ND_REQUIRE(isfinite(m->leak) && m->leak >= 0, "leak", m->leak, "must be >= 0 and finite");
        if (!m->next)
            return nd_arg_error_novalue("sequence", "must be given with the sequence law");
        for (int64_t v = 0; v < m->p; ++v)
            ND_REQUIRE(m->next[v] >= -1 && m->next[v] < m->p && m->next[v] != v, "sequence", (double)m->next[v],
                       "must name other memories (indices in [0, P)), each at most once as a successor");
        /* prev() must be a function: no memory follows two others */
        for (int64_t v = 0; v < m->p; ++v)
            for (int64_t w = v + 1; w < m->p; ++w)
                ND_REQUIRE(m->next[v] < 0 || m->next[v] != m->next[w], "sequence", (double)m->next[v],
                           "must not give one memory two predecessors");
    }
    if (sparse && (!m->active_start || m->active_start[0] != 0))
        return nd_arg_error_novalue("active_start", "must start at 0");
    ND_REQUIRE(dim == nd_memory_field_dim(m), "dim", dim, "must be the memory network's state size");
    return ND_OK;
}

int nd_memory_field_check_contents(const nd_memory_field *m)
{
    const int sparse = m->active != NULL;
    if (sparse) {
        /* index lists: from 0, non-decreasing starts, increasing units below n in each memory */
        for (int64_t mu = 0; mu < m->p; ++mu) {
            const int64_t a = m->active_start[mu], b = m->active_start[mu + 1];
            ND_REQUIRE(b >= a, "active_start", (double)b, "must be non-decreasing");
            if (b > a && !nd_mem_units_ok(m->active + a, b - a, m->n))
                return nd_arg_error("active", m->active[a],
                                    "must list each memory's units in increasing order, in [0, N)");
        }
    }
    const int8_t lo = nd_mem_is_rate(m->form) ? 0 : -1;
    if (m->patterns && !nd_mem_bytes_ok((const int8_t *)m->patterns, m->n * m->p, lo)) {
        const int8_t *xi = (const int8_t *)m->patterns;
        for (int64_t k = 0;; ++k)
            if (xi[k] != 1 && xi[k] != lo)
                return nd_arg_error("patterns", xi[k],
                                    lo == 0 ? "must hold only 0 and 1" : "must hold only -1 and +1");
    }
    return ND_OK;
}

/* ---- the expansion by lookup tables ----------------------------------------------------------
 *
 * h = e + Xi d for 0/1 memories held as index lists costs q N P scattered updates (each a
 * load, an add and a store into h). Grouping the memories by ND_MEM_GROUP, unit i's
 * memberships in group g form one byte, codes[g n + i], and sum_mu d_mu xi^mu_i is the sum over
 * the groups of T_g[codes[g n + i]], T_g holding d summed over every subset of the group's
 * memories (2^8 entries, built in as many additions). That is ceil(P/8) loads from L1 per unit
 * and no stores but h's own; it is used when it reads fewer values than the lists hold
 * (activity q above about 1/8). The codes are built once per evaluation, for all its rows. */
#define ND_MEM_GROUP 8
/* Building the codes is one pass over the lists, about what the scattered updates of one row
 * cost; while they stay in the inner caches that is little next to a batch's rows, but larger
 * codes make a one-row evaluation slower than the lists (N = 100,000, P = 100: 6.6 ms against
 * 3.5 ms measured), so larger networks keep the lists. */
#define ND_MEM_CODES_MAX ((int64_t)1 << 16)

static int64_t nd_mem_groups(const nd_memory_field *m)
{
    if (!m->active || m->p <= 0 || m->n <= 0)
        return 0;
    const int64_t groups = (m->p + ND_MEM_GROUP - 1) / ND_MEM_GROUP;
    if (groups > ND_MEM_CODES_MAX / m->n)
        return 0;
    /* lookups and table entries against the index lists' length */
    const double lookups = (double)groups * ((double)m->n + (double)(1 << ND_MEM_GROUP));
    return lookups <= (double)m->active_start[m->p] ? groups : 0;
}

/* Entries of one row's tables: 2^(memories in the group), summed over the groups. */
static int64_t nd_mem_table_len(const nd_memory_field *m)
{
    const int64_t groups = nd_mem_groups(m);
    if (!groups)
        return 0;
    const int64_t last = m->p - (groups - 1) * ND_MEM_GROUP;
    return (groups - 1) * ((int64_t)1 << ND_MEM_GROUP) + ((int64_t)1 << last);
}

/* ---- units with the same memberships --------------------------------------------------------
 *
 * Units active in the same memories (the same codes) receive the same current h, so in the
 * rate form without an input (phi(h) depends on h alone) h and phi(h) are computed once per
 * class of such units and each unit reads its class's value: the same bits, for a fraction of
 * the work when the classes are few (N = 1000, P = 14, q = 0.2: 567 classes). Built with the
 * codes, for one or two groups (a 16-bit key per unit), kept when there are at most 3N/4
 * classes. Layout after the codes, in 4-byte elements: the class count (0: not used), the
 * unit's class [n] and each class's codes [n * groups bytes], then the open-addressing table
 * of the build [ND_MEM_HASH(n) entries]. */
static int nd_mem_classes_apply(const nd_memory_field *m)
{
    const int64_t groups = nd_mem_groups(m);
    return groups >= 1 && groups <= 2 && m->form == ND_MEM_RATE && !m->input && !m->input_in_state;
}

/* Entries of the build's table: a power of two at least 2n, so it is at most 3/8 full. */
static int64_t nd_mem_hash_len(int64_t n)
{
    int64_t t = 1;
    while (t < 2 * n)
        t *= 2;
    return t;
}

/* Workspace elements ahead of the rows' scratch that hold the codes and the classes (bytes
 * and int32, counted in 4-byte elements: enough for either state type). */
static int64_t nd_mem_code_elems(const nd_memory_field *m)
{
    const int64_t codes = (nd_mem_groups(m) * m->n + 3) / 4;
    return codes + (nd_mem_classes_apply(m) ? 1 + m->n + codes + nd_mem_hash_len(m->n) : 0);
}

/* Scratch elements of one row: the sources [n], the projections [p], the coefficients [p]
 * and the lookup tables. */
static int64_t nd_mem_row_work(const nd_memory_field *m) { return m->n + 2 * m->p + nd_mem_table_len(m); }

/* The classes of the units after the codes (nd_mem_classes_apply): classes numbered in the
 * order of their first unit. */
static void nd_mem_classes(const nd_memory_field *m, const uint8_t *codes, int32_t *cls)
{
    const int64_t n = m->n, groups = nd_mem_groups(m), T = nd_mem_hash_len(n), cb = (groups * n + 3) / 4;
    int32_t *unit = cls + 1, *hash = cls + 1 + n + cb;
    uint8_t *ccodes = (uint8_t *)(cls + 1 + n);
    for (int64_t j = 0; j < T; ++j)
        hash[j] = -1;
    int32_t count = 0;
    for (int64_t i = 0; i < n && count <= 3 * n / 4; ++i) {
        const uint32_t key = codes[i] | (groups > 1 ? (uint32_t)codes[n + i] << 8 : 0u);
        int64_t j = (int64_t)((key * 2654435761u) & (uint32_t)(T - 1));
        while (hash[j] >= 0 && (ccodes[hash[j] * groups] | (groups > 1 ? (uint32_t)ccodes[hash[j] * groups + 1] << 8 : 0u)) != key)
            j = (j + 1) & (T - 1);
        if (hash[j] < 0) {
            hash[j] = count;
            for (int64_t g = 0; g < groups; ++g)
                ccodes[count * groups + g] = codes[g * n + i];
            count++;
        }
        unit[i] = hash[j];
    }
    cls[0] = count <= 3 * n / 4 ? count : 0;
}

/* codes [groups, n] of the index lists (nd_mem_groups(m) > 0), and the classes after them. */
static void nd_mem_codes(const nd_memory_field *m, uint8_t *codes)
{
    const int64_t n = m->n;
    memset(codes, 0, (size_t)(nd_mem_groups(m) * n));
    for (int64_t mu = 0; mu < m->p; ++mu) {
        uint8_t *cg = codes + (mu / ND_MEM_GROUP) * n;
        const uint8_t bit = (uint8_t)(1u << (mu % ND_MEM_GROUP));
        for (int64_t k = m->active_start[mu]; k < m->active_start[mu + 1]; ++k)
            cg[m->active[k]] |= bit;
    }
    if (nd_mem_classes_apply(m))
        nd_mem_classes(m, codes, (int32_t *)codes + (nd_mem_groups(m) * n + 3) / 4);
}

int nd_memory_field_workspace_len(const nd_memory_field *m, int64_t batch, size_t *len)
{
    /* per row nd_mem_row_work, then the codes once */
    size_t rows;
    if (batch < 0 || !nd_mul_size((size_t)batch, (size_t)nd_mem_row_work(m), &rows) ||
        rows > SIZE_MAX - (size_t)nd_mem_code_elems(m))
        return nd_size_error("batch");
    *len = rows + (size_t)nd_mem_code_elems(m);
    return ND_OK;
}

int nd_memory_field_jac_workspace_len(const nd_memory_field *m, int64_t batch, size_t *len)
{
    /* the evaluation's scratch for one row, the patterns as numbers twice [p, n] (plain and
     * weighted, for the GEMM that forms W) and one row's slopes [n] */
    size_t one, pn2;
    if (nd_memory_field_workspace_len(m, 1, &one) != ND_OK || !nd_mul3_size(2, (size_t)m->p, (size_t)m->n, &pn2) ||
        pn2 > SIZE_MAX - one - (size_t)m->n)
        return nd_size_error("patterns");
    *len = one + pn2 + (size_t)m->n;
    (void)batch;
    return ND_OK;
}

/* ---- the firing-rate design ------------------------------------------------------------- */

/* phi and phi' of the firing-rate activations at one point (double). */
static double nd_rate_phi(int act, double g, double th, double x)
{
    if (act == ND_MEM_SIGMOID)
        return 1.0 / (1.0 + exp(-(4.0 * g * (x - th) - 2.0)));
    return x >= th ? tanh(g * (x - th)) : 0.0;
}

static double nd_rate_dphi(int act, double g, double th, double x)
{
    double f = nd_rate_phi(act, g, th, x);
    if (act == ND_MEM_SIGMOID)
        return 4.0 * g * f * (1.0 - f);
    return x > th ? g * (1.0 - f * f) : 0.0;
}

int nd_rate_design_compute(double a, double b, double q, double r, int act, double gain, double threshold,
                           nd_rate_design *d)
{
    ND_REQUIRE(isfinite(a), "a", a, "must be finite");
    ND_REQUIRE(isfinite(b), "b", b, "must be finite");
    ND_REQUIRE(a < b, "a", a, "must be < b");
    ND_REQUIRE(q > 0 && q < 1, "q", q, "(the memories' activity) must be in (0, 1)");
    ND_REQUIRE(r >= 0 && r < 1, "overlap", r, "must be in [0, 1)");
    ND_REQUIRE(act == ND_MEM_SIGMOID || act == ND_MEM_RECTIFIED_TANH, "activation", act,
               "must be sigmoid or rectified_tanh");
    ND_REQUIRE(isfinite(gain) && gain > 0, "gain", gain, "must be > 0 and finite");
    ND_REQUIRE(isfinite(threshold), "threshold", threshold, "must be finite");
    const double pa = nd_rate_phi(act, gain, threshold, a), pb = nd_rate_phi(act, gain, threshold, b);
    const double dphi = pb - pa;
    ND_REQUIRE(dphi > 0, "b", b, "must give phi(b) > phi(a) (above the threshold for the rectified tanh)");
    const double den = (1 - q) * pa + q * pb;
    /* docs/models.md §9: the currents W r*^mu equal x*^mu = a + (b - a) xi^mu */
    d->alpha = (b - a) / (q * (1 - r) * dphi);
    d->beta = q * ((1 - r) * pa + r * pb) / den;
    d->gamma = ((1 - d->beta) * a + d->beta * b) / den;
    d->phi_a = pa;
    d->phi_b = pb;
    d->dphi_a = nd_rate_dphi(act, gain, threshold, a);
    d->dphi_b = nd_rate_dphi(act, gain, threshold, b);
    d->alpha_prime = (b - a) / dphi;
    const double ap = d->alpha_prime, g = d->gamma, da = d->dphi_a, db = d->dphi_b;
    d->sufficient = fmax(da, db) * fmax(ap, g);
    d->unstable1 = q * db * ((1 - q) * ap + q * g) - 1;
    d->unstable2 = q * (g - ap) * (db - da) - (1 - db * ap) * (1 - da * g);
    return ND_OK;
}

/* ---- the stability analysis in the (P+1)-dimensional range ------------------------------- */

/* LAPACK's symmetric eigenvalues: the wheel's symbols carry its scipy_ prefix. */
#ifdef ND_BLAS_SCIPY_PREFIX
#define ND_MEM_DSYEV scipy_dsyev_
#else
#define ND_MEM_DSYEV dsyev_
#endif
void ND_MEM_DSYEV(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                  double *work, const int *lwork, int *info, size_t jobz_len, size_t uplo_len);

/* Eigenvalues (ascending) of the symmetric k x k matrix a (overwritten); scratch 3k doubles. */
static int nd_mem_eigvalsh(int64_t k, double *a, double *w, double *work, int with_vectors)
{
    int kk = (int)k, lwork = (int)(3 * k), info = 0;
    ND_MEM_DSYEV(with_vectors ? "V" : "N", "U", &kk, a, &kk, w, work, &lwork, &info, 1, 1);
    return info == 0 ? ND_OK : nd_arg_error("dsyev", info, "did not converge");
}

int nd_rate_grams_workspace_len(int64_t n, int64_t p, size_t *len)
{
    ND_REQUIRE(n >= 1 && p >= 1, "patterns", p, "must hold at least one memory of at least one unit");
    /* U [p + 1, n] and the columns of one memory's active units */
    if (!nd_blas_dims_ok(n, p + 1, p + 1) || !nd_mul3_size(2, (size_t)n, (size_t)p + 1, len))
        return nd_size_error("patterns");
    return ND_OK;
}

int nd_rate_grams(int64_t n, int64_t p, const double *xi, double *T, double *work)
{
    size_t len;
    int st = nd_rate_grams_workspace_len(n, p, &len);
    if (st != ND_OK)
        return st;
    const int64_t k = p + 1, kk = k * k;
    /* U = [Xi^T; 1^T] as k rows of n */
    double *U = work;
    memcpy(U, xi, (size_t)(p * n) * sizeof(double));
    for (int64_t i = 0; i < n; ++i)
        U[p * n + i] = 1.0;
    nd_gemm_f64(0, 1, k, k, n, 1.0 / (double)n, U, n, U, n, 0.0, T, k);
    /* T[1 + mu] = U diag(xi^mu) U^T / N = U_mu U_mu^T / N, U_mu the columns of U at memory mu's
     * active units (xi is 0/1), gathered after U */
    double *Um = U + k * n;
    for (int64_t mu = 0; mu < p; ++mu) {
        const double *row = xi + mu * n;
        int64_t m = 0;
        for (int64_t i = 0; i < n; ++i)
            m += row[i] != 0.0;
        for (int64_t r = 0, j; r < k; ++r) {
            j = 0;
            for (int64_t i = 0; i < n; ++i)
                if (row[i] != 0.0)
                    Um[r * m + j++] = U[r * n + i];
        }
        if (m)
            nd_gemm_f64(0, 1, k, k, m, 1.0 / (double)n, Um, m, Um, m, 0.0, T + (1 + mu) * kk, k);
        else
            memset(T + (1 + mu) * kk, 0, (size_t)kk * sizeof(double));
    }
    return ND_OK;
}

int nd_rate_lambda_workspace_len(int64_t p, size_t *len)
{
    ND_REQUIRE(p >= 1, "patterns", p, "must hold at least one memory");
    const size_t k = (size_t)p + 1;
    /* K, its eigenvectors, K^1/2, G, the product, eigenvalues and dsyev's scratch */
    *len = 5 * k * k + 4 * k;
    return ND_OK;
}

int nd_rate_lambda_max(int64_t p, const double *T, const nd_rate_design *d, double *lam, double *work)
{
    ND_REQUIRE(p >= 1, "patterns", p, "must hold at least one memory");
    if (p + 1 > 46340) /* k^2 must fit LAPACK's int */
        return nd_size_error("patterns");
    const int64_t k = p + 1, kk = k * k;
    double *K = work, *S = K + kk, *G = S + kk, *tmp = G + kk, *R = tmp + kk, *w = R + kk, *ework = w + k;
    /* G = alpha E E^T + gamma e e^T, E = [I_P; -beta 1^T] */
    for (int64_t r = 0; r < k; ++r)
        for (int64_t c = 0; c < k; ++c) {
            double er_ec;
            if (r < p && c < p)
                er_ec = r == c ? 1.0 : 0.0;
            else if (r < p || c < p)
                er_ec = -d->beta;
            else
                er_ec = d->beta * d->beta * (double)p;
            G[r * k + c] = d->alpha * er_ec + (r == p && c == p ? d->gamma : 0.0);
        }
    const double da = d->dphi_a, ddiff = d->dphi_b - d->dphi_a;
    for (int64_t mu = 0; mu < p; ++mu) {
        const double *T0 = T, *Tm = T + (1 + mu) * kk;
        for (int64_t j = 0; j < kk; ++j)
            K[j] = da * T0[j] + ddiff * Tm[j];
        /* K = V diag(w) V^T (PSD up to rounding); K^1/2 = V diag(sqrt(w+)) V^T */
        int st = nd_mem_eigvalsh(k, K, w, ework, 1);
        if (st != ND_OK)
            return st;
        /* dsyev leaves the eigenvectors in the columns of the column-major K: row-major rows */
        for (int64_t j = 0; j < k; ++j) {
            const double s = w[j] > 0 ? sqrt(sqrt(w[j])) : 0.0; /* split sqrt(w) over both factors */
            for (int64_t i = 0; i < k; ++i)
                tmp[j * k + i] = K[j * k + i] * s;
        }
        nd_gemm_f64(1, 0, k, k, k, 1.0, tmp, k, tmp, k, 0.0, S, k); /* K^1/2 */
        nd_gemm_f64(0, 0, k, k, k, 1.0, S, k, G, k, 0.0, R, k);
        nd_gemm_f64(0, 0, k, k, k, 1.0, R, k, S, k, 0.0, tmp, k); /* K^1/2 G K^1/2 */
        for (int64_t r = 0; r < k; ++r)
            for (int64_t c = r + 1; c < k; ++c)
                tmp[r * k + c] = tmp[c * k + r] = 0.5 * (tmp[r * k + c] + tmp[c * k + r]);
        if ((st = nd_mem_eigvalsh(k, tmp, w, ework, 0)) != ND_OK)
            return st;
        /* the other N - P - 1 eigenvalues of D^1/2 W D^1/2 are 0 */
        lam[mu] = fmax(w[k - 1], 0.0) - 1.0;
    }
    return ND_OK;
}

/* ---- patterns ---------------------------------------------------------------------------- */

int nd_memory_balanced_count(int64_t n, double q, int64_t *p)
{
    ND_REQUIRE(q > 0 && q < 1, "q", q, "must be in (0, 1)");
    ND_REQUIRE(n >= 1, "n", n, "must be >= 1");
    const int64_t active = (int64_t)llround(q * (double)n), common = (int64_t)llround(q * q * (double)n);
    ND_REQUIRE(active > common && common >= 0, "n", n, "is too small for blocks of q n and q^2 n units");
    /* floor(1 + 1/q) with a margin for 1/q that rounds just below an integer */
    int64_t count = (int64_t)floor(1.0 + 1.0 / q + 1e-9);
    while (count > 1 && count * (active - common) + common > n)
        --count;
    ND_REQUIRE(count >= 2, "n", n, "leaves room for fewer than two balanced memories");
    *p = count;
    return ND_OK;
}

/* A uniformly random integer in [0, m) from stream `stream`, index i (m << 2^53). */
static int64_t nd_mem_below(uint64_t seed, uint64_t stream, uint64_t i, int64_t m)
{
    return (int64_t)floor(nd_rng_uniform(seed, stream, i) * (double)m);
}

int nd_memory_patterns(int kind, int64_t p, int64_t n, double q, double r, uint64_t seed, int8_t *out)
{
    ND_REQUIRE(kind >= ND_MEM_BERNOULLI && kind <= ND_MEM_HADAMARD, "kind", kind, "must be a pattern kind code");
    ND_REQUIRE(p >= 1, "P", p, "must be >= 1");
    ND_REQUIRE(n >= 1, "N", n, "must be >= 1");
    size_t total;
    if (!nd_mul_size((size_t)p, (size_t)n, &total))
        return nd_size_error("P");
    switch (kind) {
    case ND_MEM_BERNOULLI:
        ND_REQUIRE(q > 0 && q < 1, "q", q, "must be in (0, 1)");
        for (int64_t mu = 0; mu < p; ++mu)
            for (int64_t i = 0; i < n; ++i)
                out[mu * n + i] = nd_rng_uniform(seed, (uint64_t)mu + 1, (uint64_t)i) < q;
        return ND_OK;
    case ND_MEM_CORRELATED: {
        ND_REQUIRE(q > 0 && q < 1, "q", q, "must be in (0, 1)");
        ND_REQUIRE(r >= q && r < 1, "r", r, "(the overlap fraction) must be in [q, 1)");
        /* A unit is shared by every memory with probability q0, else active in each memory on
         * its own with probability p1: marginal q0 + (1 - q0) p1 = q, and a unit active in one
         * memory is active in another with probability (q0 + (1 - q0) p1^2) / q = r. */
        const double p1 = q * (1 - r) / (1 - q), q0 = 1 - (1 - q) / (1 - p1);
        for (int64_t i = 0; i < n; ++i) {
            const int shared = nd_rng_uniform(seed, 0, (uint64_t)i) < q0;
            for (int64_t mu = 0; mu < p; ++mu)
                out[mu * n + i] = shared || nd_rng_uniform(seed, (uint64_t)mu + 1, (uint64_t)i) < p1;
        }
        return ND_OK;
    }
    case ND_MEM_BALANCED: {
        int64_t count;
        int st = nd_memory_balanced_count(n, q, &count);
        if (st != ND_OK)
            return st;
        ND_REQUIRE(p == count, "P", p, "must be the balanced set's count floor(1 + 1/q) (that fits in N)");
        /* q^2 N units common to all, then a private block of q N - q^2 N units per memory:
         * every memory has q N active units and every pair shares exactly q^2 N (§9). */
        const int64_t active = (int64_t)llround(q * (double)n), common = (int64_t)llround(q * q * (double)n);
        memset(out, 0, total);
        for (int64_t mu = 0; mu < p; ++mu) {
            for (int64_t i = 0; i < common; ++i)
                out[mu * n + i] = 1;
            const int64_t start = common + mu * (active - common);
            for (int64_t i = start; i < start + active - common; ++i)
                out[mu * n + i] = 1;
        }
        return ND_OK;
    }
    case ND_MEM_RADEMACHER:
        for (int64_t mu = 0; mu < p; ++mu)
            for (int64_t i = 0; i < n; ++i)
                out[mu * n + i] = nd_rng_uniform(seed, (uint64_t)mu + 1, (uint64_t)i) < 0.5 ? -1 : 1;
        return ND_OK;
    case ND_MEM_HADAMARD: {
        ND_REQUIRE((n & (n - 1)) == 0 && n >= 2, "N", n, "must be a power of 2 for Hadamard patterns");
        ND_REQUIRE(p <= n - 1, "P", p, "must be < N for Hadamard patterns (the all-ones row is not used)");
        /* p distinct rows of the Sylvester matrix H[j, i] = (-1)^popcount(j & i), j drawn from
         * 1..n-1 (stream 0) until it differs from the rows taken so far. Row j's entry in
         * column 2^b is -1 exactly when bit b of j is set, so a taken row is read back from its
         * pattern: no scratch. */
        for (int64_t mu = 0; mu < p; ++mu) {
            int64_t row = 0;
            for (uint64_t attempt = 0;; ++attempt) {
                row = 1 + nd_mem_below(seed, 0, ((uint64_t)mu << 32) + attempt, n - 1);
                int taken = 0;
                for (int64_t nu = 0; nu < mu && !taken; ++nu) {
                    int64_t prev = 0;
                    for (int64_t bit = 1; bit < n; bit <<= 1)
                        if (out[nu * n + bit] < 0)
                            prev |= bit;
                    taken = prev == row;
                }
                if (!taken)
                    break;
            }
            for (int64_t i = 0; i < n; ++i)
                out[mu * n + i] = (__builtin_popcountll((unsigned long long)(row & i)) & 1) ? -1 : 1;
        }
        return ND_OK;
    }
    }
    return ND_ERR_ARG;
}

int nd_memory_active_units(int64_t p, int64_t n, const int8_t *xi, int64_t *active_start, int32_t *active,
                           int64_t *count)
{
    ND_REQUIRE(p >= 0, "P", p, "must be >= 0");
    ND_REQUIRE(n >= 0 && n <= INT32_MAX, "N", n, "must be in [0, 2^31)");
    int64_t k = 0;
    for (int64_t mu = 0; mu < p; ++mu) {
        if (active_start)
            active_start[mu] = k;
        for (int64_t i = 0; i < n; ++i)
            if (xi[mu * n + i]) {
                if (active)
                    active[k] = (int32_t)i;
                ++k;
            }
    }
    if (active_start)
        active_start[p] = k;
    *count = k;
    return ND_OK;
}

int nd_memory_check_patterns(int binary, int64_t p, int64_t n, const double *xi)
{
    ND_REQUIRE(p >= 1, "patterns", p, "must hold at least one memory (row)");
    ND_REQUIRE(p < n, "patterns", p, "must have fewer memories (rows) than units (columns)");
    const double lo = binary ? 0.0 : -1.0;
    for (int64_t k = 0; k < p * n; ++k)
        if (xi[k] != 1.0 && xi[k] != lo)
            return nd_arg_error("patterns", xi[k], binary ? "must hold only 0 and 1" : "must hold only -1 and +1");
    return ND_OK;
}

#define ND_IMPL "nd_memories_impl.inc"
#include "nd_instantiate.h"

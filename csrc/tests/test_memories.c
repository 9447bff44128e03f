/* Memory networks (docs/models.md §9, §10): the design's check values by the (P+1)-dimensional
 * method, the equilibrium residual, the rank-structured field against a dense W, Jacobians
 * against central differences, the pattern generators and argument errors. */
#include <stdlib.h>
#include <string.h>

#include "nd_fields.h"
#include "nd_memories.h"
#include "nd_status.h"
#include "nd_test.h"

enum { N = 1000 };

/* The balanced set for N = 1000, q = 0.2 as bytes and doubles. */
static int8_t xi8[6 * N];
static double xid[6 * N];

static void balanced(void)
{
    CHECK(nd_memory_patterns(ND_MEM_BALANCED, 6, N, 0.2, 0.0, 0, xi8) == ND_OK);
    for (int k = 0; k < 6 * N; ++k)
        xid[k] = xi8[k];
}

/* A firing-rate field on the bytes xi [p, n] with the design d. */
static nd_memory_field design_field(int form, int act, int64_t n, int64_t p, const int8_t *xi, const nd_rate_design *d,
                                    double gain, double thr, double tau)
{
    nd_memory_field m;
    memset(&m, 0, sizeof m);
    m.form = form;
    m.act = act;
    m.n = n;
    m.p = p;
    m.patterns = xi;
    m.gain = gain;
    m.threshold = thr;
    m.tau = tau;
    m.alpha = d->alpha;
    m.beta = d->beta;
    m.gamma = d->gamma;
    return m;
}

static nd_memory_field rate_field(int form, int act, double thr, double a, double b, nd_rate_design *d)
{
    CHECK(nd_rate_design_compute(a, b, 0.2, 0.2, act, 4.8, thr, d) == ND_OK);
    return design_field(form, act, N, 6, xi8, d, 4.8, thr, 1.0);
}

static void test_check_values(void)
{
    /* docs/models.md §9: lambda_max of -I + D^1/2 W D^1/2 for the six settings */
    const struct { int act; double thr, a, want; } cases[] = {
        {ND_MEM_SIGMOID, 0.2, -0.3, -0.9998}, {ND_MEM_SIGMOID, 0.8, -0.3, 6.036},
        {ND_MEM_RECTIFIED_TANH, 0.2, -0.3, -0.9821}, {ND_MEM_RECTIFIED_TANH, 0.8, -0.3, 5.024},
        {ND_MEM_SIGMOID, 0.2, 0.1, -0.5695}, {ND_MEM_RECTIFIED_TANH, 0.2, 0.1, -0.9864}};
    size_t glen, llen;
    CHECK(nd_rate_grams_workspace_len(N, 6, &glen) == ND_OK);
    CHECK(nd_rate_lambda_workspace_len(6, &llen) == ND_OK);
    double *gw = malloc(glen * sizeof(double)), *lw = malloc(llen * sizeof(double)), T[7 * 7 * 7], lam[6];
    CHECK(nd_rate_grams(N, 6, xid, T, gw) == ND_OK);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
        nd_rate_design d;
        CHECK(nd_rate_design_compute(cases[c].a, 0.95, 0.2, 0.2, cases[c].act, 4.8, cases[c].thr, &d) == ND_OK);
        CHECK(nd_rate_lambda_max(6, T, &d, lam, lw) == ND_OK);
        for (int mu = 0; mu < 6; ++mu)
            CHECK_CLOSE(lam[mu], cases[c].want, 0.5e-4 * (fabs(cases[c].want) > 1 ? 10 : 1) + 1e-12);
    }
    free(gw);
    free(lw);
}

static void test_residual_and_dense(void)
{
    nd_rate_design d;
    nd_memory_field m = rate_field(ND_MEM_CURRENT, ND_MEM_SIGMOID, 0.2, -0.3, 0.95, &d);
    CHECK(nd_memory_field_check(&m, N) == ND_OK);
    size_t len;
    CHECK(nd_memory_field_workspace_len(&m, 6, &len) == ND_OK);
    double *work = malloc(len * sizeof(double)), *x = malloc(6 * N * sizeof(double)), *dx = malloc(6 * N * sizeof(double));
    for (int k = 0; k < 6 * N; ++k)
        x[k] = -0.3 + 1.25 * xid[k]; /* x*^mu = a + (b - a) xi^mu */
    CHECK(nd_memory_field_eval_f64(&m, 6, x, dx, work) == ND_OK);
    double worst = 0;
    for (int k = 0; k < 6 * N; ++k)
        worst = fmax(worst, fabs(dx[k]));
    CHECK(worst <= 1e-12);

    /* the rate form against W r with W formed densely */
    m.form = ND_MEM_RATE;
    double *r = malloc(2 * N * sizeof(double)), *dr = malloc(2 * N * sizeof(double)), *W = malloc((size_t)N * N * sizeof(double));
    nd_test_fill(r, 2 * N, 0.0, 1.0);
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) {
            double w = d.gamma / N;
            for (int mu = 0; mu < 6; ++mu)
                w += d.alpha / N * (xid[mu * N + i] - d.beta) * (xid[mu * N + j] - d.beta);
            W[(size_t)i * N + j] = w;
        }
    CHECK(nd_memory_field_eval_f64(&m, 2, r, dr, work) == ND_OK);
    worst = 0;
    for (int b = 0; b < 2; ++b)
        for (int i = 0; i < N; ++i) {
            double h = 0;
            for (int j = 0; j < N; ++j)
                h += W[(size_t)i * N + j] * r[b * N + j];
            const double want = -r[b * N + i] + 1.0 / (1.0 + exp(-(4 * 4.8 * (h - 0.2) - 2)));
            worst = fmax(worst, fabs(dr[b * N + i] - want));
        }
    CHECK(worst <= 1e-12);
    free(work);
    free(x);
    free(dx);
    free(r);
    free(dr);
    free(W);
}

/* Central differences of the field against its Jacobian, for a small network of each form. */
static void check_jacobian(nd_memory_field *m, int64_t batch, double *y)
{
    const int64_t dim = nd_memory_field_dim(m);
    CHECK(nd_memory_field_check(m, dim) == ND_OK);
    size_t len, jlen;
    CHECK(nd_memory_field_workspace_len(m, batch, &len) == ND_OK);
    CHECK(nd_memory_field_jac_workspace_len(m, batch, &jlen) == ND_OK);
    double *work = malloc((len > jlen ? len : jlen) * sizeof(double));
    double *J = malloc((size_t)(batch * dim * dim) * sizeof(double)), *fp = malloc(batch * dim * sizeof(double)),
           *fm = malloc(batch * dim * sizeof(double));
    CHECK(nd_memory_field_jac_f64(m, batch, y, J, work) == ND_OK);
    double worst = 0;
    const double h = 1e-6;
    for (int64_t c = 0; c < dim; ++c) {
        for (int64_t b = 0; b < batch; ++b)
            y[b * dim + c] += h;
        nd_memory_field_eval_f64(m, batch, y, fp, work);
        for (int64_t b = 0; b < batch; ++b)
            y[b * dim + c] -= 2 * h;
        nd_memory_field_eval_f64(m, batch, y, fm, work);
        for (int64_t b = 0; b < batch; ++b)
            y[b * dim + c] += h;
        for (int64_t b = 0; b < batch; ++b)
            for (int64_t r = 0; r < dim; ++r) {
                const double fd = (fp[b * dim + r] - fm[b * dim + r]) / (2 * h);
                worst = fmax(worst, fabs(fd - J[b * dim * dim + r * dim + c]));
            }
    }
    if (worst > 1e-7)
        fprintf(stderr, "form %d act %d: Jacobian off by %g\n", m->form, m->act, worst);
    CHECK(worst <= 1e-7);
    free(work);
    free(J);
    free(fp);
    free(fm);
}

static void test_jacobians(void)
{
    enum { n = 16, p = 3, B = 2 };
    int8_t bin[p * n], pm[p * n];
    CHECK(nd_memory_patterns(ND_MEM_BERNOULLI, p, n, 0.4, 0.0, 7, bin) == ND_OK);
    CHECK(nd_memory_patterns(ND_MEM_HADAMARD, p, n, 0.0, 0.0, 7, pm) == ND_OK);
    nd_rate_design d;
    CHECK(nd_rate_design_compute(-0.3, 0.95, 0.4, 0.4, ND_MEM_SIGMOID, 2.0, 0.2, &d) == ND_OK);
    double y[B * (n + n)], u[n], sal[p] = {1.5, 0.7, 2.0};
    int64_t next[p] = {1, 2, 0};
    nd_test_fill(u, n, -0.2, 0.2);
    for (int form = ND_MEM_RATE; form <= ND_MEM_ADDITIVE; ++form)
        for (int in_state = 0; in_state < 2; ++in_state)
            for (int slow = 0; slow < 2; ++slow) {
                if (slow && (form != ND_MEM_IDP || !in_state))
                    continue;
                nd_memory_field m;
                memset(&m, 0, sizeof m);
                m.form = form;
                const int rate = form <= ND_MEM_CURRENT;
                m.act = rate ? ND_MEM_SIGMOID : ND_MEM_TANH;
                m.n = n;
                m.p = p;
                m.patterns = rate ? bin : pm;
                m.gain = rate ? 2.0 : 1.5;
                m.threshold = rate ? 0.2 : 0.0;
                m.tau = 0.7;
                m.alpha = rate ? d.alpha : 0;
                m.beta = rate ? d.beta : 0;
                m.gamma = rate ? d.gamma : 0;
                m.zero_diagonal = !rate;
                m.input_in_state = in_state;
                m.input = in_state ? NULL : form == ND_MEM_IDP ? (const void *)sal : (const void *)u;
                m.slow = slow;
                m.kappa = 5.0;
                m.eps = 0.3;
                m.leak = 2.0;
                m.next = next;
                const int64_t dim = nd_memory_field_dim(&m);
                for (int b = 0; b < B; ++b) {
                    nd_test_fill(y + b * dim, n, rate && form == ND_MEM_RATE ? 0.05 : -1.2,
                                 rate && form == ND_MEM_RATE ? 0.95 : 1.2);
                    for (int64_t k = n; k < dim; ++k)
                        y[b * dim + k] = form == ND_MEM_IDP ? sal[k - n] + 0.1 * b : u[k - n];
                }
                if (slow)
                    /* put sample 0 near memory 0 so that the gates and overlaps are active */
                    for (int i = 0; i < n; ++i)
                        y[i] = 0.4 * pm[i] + 0.05 * y[i];
                check_jacobian(&m, B, y);
            }
}

/* Bernoulli memories xi [p, n] of activity q, their index lists (start [p + 1], the units
 * returned, to be freed) and the firing-rate design for them (sigmoid, gain 2, threshold 0.2). */
static int32_t *bernoulli_lists(int64_t p, int64_t n, double q, uint64_t seed, int8_t *xi, int64_t *start,
                                nd_rate_design *d)
{
    int64_t count;
    CHECK(nd_rate_design_compute(-0.3, 0.95, q, q, ND_MEM_SIGMOID, 2.0, 0.2, d) == ND_OK);
    CHECK(nd_memory_patterns(ND_MEM_BERNOULLI, p, n, q, 0.0, seed, xi) == ND_OK);
    CHECK(nd_memory_active_units(p, n, xi, NULL, NULL, &count) == ND_OK);
    int32_t *units = malloc((size_t)count * sizeof(int32_t));
    CHECK(nd_memory_active_units(p, n, xi, start, units, &count) == ND_OK && start[p] == count);
    return units;
}

/* The field m with its memories read from the index lists (start, units) instead of its patterns. */
static nd_memory_field as_index_lists(nd_memory_field m, const int64_t *start, const int32_t *units)
{
    m.patterns = NULL;
    m.active_start = start;
    m.active = units;
    return m;
}

/* The 0/1 memories as index lists give the bytes' derivatives and Jacobians. */
static void test_active_units(void)
{
    enum { n = 40, p = 5, B = 3 };
    int8_t xi[p * n];
    int64_t start[p + 1];
    nd_rate_design d;
    int32_t *units = bernoulli_lists(p, n, 0.3, 5, xi, start, &d);
    double y[B * n], u[n], dense[B * n], sparse[B * n], work[B * (n + 2 * p)];
    nd_test_fill(y, B * n, 0.05, 0.95);
    nd_test_fill(u, n, -0.1, 0.1);
    for (int form = ND_MEM_RATE; form <= ND_MEM_CURRENT; ++form) {
        nd_memory_field m = design_field(form, ND_MEM_SIGMOID, n, p, xi, &d, 2.0, 0.2, 1.5);
        m.input = u;
        CHECK(nd_memory_field_eval_f64(&m, B, y, dense, work) == ND_OK);
        nd_memory_field s = as_index_lists(m, start, units);
        CHECK(nd_memory_field_check(&s, n) == ND_OK && nd_memory_field_check_contents(&s) == ND_OK);
        CHECK(nd_memory_field_eval_f64(&s, B, y, sparse, work) == ND_OK);
        for (int k = 0; k < B * n; ++k)
            CHECK_CLOSE(sparse[k], dense[k], 1e-13);
        check_jacobian(&s, B, y);
    }
    /* a list out of order is refused */
    nd_memory_field bad = design_field(ND_MEM_RATE, ND_MEM_SIGMOID, n, p, NULL, &d, 1.0, 0.0, 1.0);
    bad.active_start = start;
    bad.active = units;
    int32_t keep = units[1];
    units[1] = units[0];
    CHECK(nd_memory_field_check(&bad, n) == ND_OK);
    CHECK(nd_memory_field_check_contents(&bad) == ND_ERR_ARG && strcmp(nd_last_error()->arg, "active") == 0);
    units[1] = keep;
    free(units);
}

/* Memories dense enough that the index lists' expansion goes through the subset-sum tables
 * (two groups of memories, the second partial): the bytes' derivatives again, in float64 and
 * float32, with or without a shared input. */
static void test_active_tables(void)
{
    enum { n = 300, p = 11, B = 4 };
    int8_t xi[p * n];
    int64_t start[p + 1];
    nd_rate_design d;
    int32_t *units = bernoulli_lists(p, n, 0.5, 7, xi, start, &d);
    double y[B * n], u[n], dense[B * n], sparse[B * n];
    float yf[B * n], sparsef[B * n];
    nd_test_fill(y, B * n, 0.05, 0.95);
    nd_test_fill(u, n, -0.1, 0.1);
    for (int k = 0; k < B * n; ++k)
        yf[k] = (float)y[k];
    for (int form = ND_MEM_RATE; form <= ND_MEM_CURRENT; ++form)
        for (int with_input = 0; with_input < 2; ++with_input) {
            nd_memory_field m = design_field(form, ND_MEM_SIGMOID, n, p, xi, &d, 2.0, 0.2, 1.5);
            m.input = with_input ? u : NULL;
            nd_memory_field s = as_index_lists(m, start, units);
            size_t len_dense, len_sparse;
            CHECK(nd_memory_field_workspace_len(&m, B, &len_dense) == ND_OK);
            CHECK(nd_memory_field_workspace_len(&s, B, &len_sparse) == ND_OK);
            CHECK(len_sparse > len_dense); /* the tables and the codes */
            double *work = malloc(len_sparse * sizeof(double));
            float *workf = malloc(len_sparse * sizeof(float));
            CHECK(nd_memory_field_eval_f64(&m, B, y, dense, work) == ND_OK);
            CHECK(nd_memory_field_eval_f64(&s, B, y, sparse, work) == ND_OK);
            for (int k = 0; k < B * n; ++k)
                CHECK_CLOSE(sparse[k], dense[k], 1e-13);
            /* a row alone gives the batch's result exactly */
            CHECK(nd_memory_field_eval_f64(&s, 1, y + 2 * n, dense, work) == ND_OK);
            for (int k = 0; k < n; ++k)
                CHECK(dense[k] == sparse[2 * n + k]);
            float uf[n];
            for (int k = 0; k < n; ++k)
                uf[k] = (float)u[k];
            s.input = with_input ? (const void *)uf : NULL;
            CHECK(nd_memory_field_eval_f32(&s, B, yf, sparsef, workf) == ND_OK);
            for (int k = 0; k < B * n; ++k)
                CHECK_CLOSE(sparsef[k], sparse[k], 2e-4);
            free(work);
            free(workf);
        }
    free(units);
}

static void test_patterns(void)
{
    /* balanced: every memory q N active, every pair q^2 N shared */
    for (int mu = 0; mu < 6; ++mu) {
        int act = 0;
        for (int i = 0; i < N; ++i)
            act += xi8[mu * N + i];
        CHECK(act == 200);
        for (int nu = mu + 1; nu < 6; ++nu) {
            int both = 0;
            for (int i = 0; i < N; ++i)
                both += xi8[mu * N + i] & xi8[nu * N + i];
            CHECK(both == 40);
        }
    }
    int64_t count;
    CHECK(nd_memory_balanced_count(1000, 0.2, &count) == ND_OK && count == 6);
    /* Hadamard rows: orthogonal, distinct, not the constant row */
    enum { n = 64, p = 20 };
    static int8_t h[p * n];
    CHECK(nd_memory_patterns(ND_MEM_HADAMARD, p, n, 0, 0, 3, h) == ND_OK);
    for (int mu = 0; mu < p; ++mu)
        for (int nu = mu; nu < p; ++nu) {
            int dot = 0;
            for (int i = 0; i < n; ++i)
                dot += h[mu * n + i] * h[nu * n + i];
            CHECK(dot == (mu == nu ? n : 0));
        }
    /* correlated: overlap fraction near r for a large sample */
    enum { nc = 20000 };
    static int8_t cor[2 * nc];
    CHECK(nd_memory_patterns(ND_MEM_CORRELATED, 2, nc, 0.2, 0.5, 11, cor) == ND_OK);
    int a0 = 0, both = 0;
    for (int i = 0; i < nc; ++i) {
        a0 += cor[i];
        both += cor[i] & cor[nc + i];
    }
    CHECK_CLOSE((double)a0 / nc, 0.2, 0.015);
    CHECK_CLOSE((double)both / a0, 0.5, 0.03);
}

static void test_errors(void)
{
    nd_rate_design d;
    nd_clear_error();
    CHECK(nd_rate_design_compute(0.95, -0.3, 0.2, 0.2, ND_MEM_SIGMOID, 4.8, 0.2, &d) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "a") == 0);
    CHECK(nd_rate_design_compute(-0.3, 0.95, 1.0, 0.2, ND_MEM_SIGMOID, 4.8, 0.2, &d) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "q") == 0);
    CHECK(nd_rate_design_compute(-0.3, 0.1, 0.2, 0.2, ND_MEM_RECTIFIED_TANH, 4.8, 0.2, &d) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "b") == 0);
    double bad[2 * 3] = {0, 1, 0.5, 1, 0, 0};
    CHECK(nd_memory_check_patterns(1, 2, 3, bad) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "patterns") == 0 && nd_last_error()->value == 0.5);
    CHECK(nd_memory_check_patterns(1, 3, 2, bad) == ND_ERR_ARG);
    int8_t out[8];
    CHECK(nd_memory_patterns(ND_MEM_BERNOULLI, 2, 4, 1.5, 0, 0, out) == ND_ERR_ARG);
    CHECK(nd_memory_patterns(ND_MEM_HADAMARD, 2, 6, 0, 0, 0, out) == ND_ERR_ARG);
    nd_memory_field m = rate_field(ND_MEM_RATE, ND_MEM_SIGMOID, 0.2, -0.3, 0.95, &d);
    CHECK(nd_memory_field_check(&m, N + 1) == ND_ERR_ARG);
    m.tau = 0;
    CHECK(nd_memory_field_check(&m, N) == ND_ERR_ARG && strcmp(nd_last_error()->arg, "tau") == 0);
}

static void test_field_kind(void)
{
    /* the memory network as a built-in field of nd_fields.h */
    nd_rate_design d;
    nd_memory_field m = rate_field(ND_MEM_RATE, ND_MEM_SIGMOID, 0.2, -0.3, 0.95, &d);
    nd_field f;
    memset(&f, 0, sizeof f);
    f.kind = ND_FIELD_MEMORY;
    f.memory = &m;
    f.dim = N;
    f.batch = 3;
    size_t len;
    CHECK(nd_field_check(&f) == ND_OK);
    CHECK(nd_field_workspace_len(&f, &len) == ND_OK);
    float *work = malloc(len * sizeof(float)), y[3 * N], dy[3 * N], dy1[N];
    f.work = work;
    for (int k = 0; k < 3 * N; ++k)
        y[k] = (float)nd_test_uniform(0, 1);
    CHECK(nd_field_eval_f32(&f, 0.0, y, dy) == ND_OK);
    /* a row's derivative does not depend on the batch it is evaluated in */
    CHECK(nd_field_eval_rows_f32(&f, 1, N, NULL, y + 2 * N, dy1) == ND_OK);
    CHECK(memcmp(dy1, dy + 2 * N, N * sizeof(float)) == 0);
    free(work);
}

static void test_setup(void) { balanced(); }

ND_TEST_MAIN(test_setup, test_check_values, test_residual_and_dense, test_jacobians, test_active_units, test_active_tables,
             test_patterns, test_errors, test_field_kind)

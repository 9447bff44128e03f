/* Hybrid energy models (docs/models.md §11): grad H against differences of H, Hessian-vector
 * products and Hessians against differences of grad H, every parameter gradient of both fields
 * against differences, for every activation pair; dH/dt of the port-Hamiltonian field; the
 * target systems' Jacobians; the certificate's bound; the argument rules. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nd_fields.h"
#include "nd_hybrid.h"
#include "nd_status.h"
#include "nd_test.h"

enum { D = 3, N1 = 5, N2 = 4, M = 2, B = 2, NK = 3 };
enum { NP = D + (D * N1 + N1) + (N1 * N2 + N2) + D * (D - 1) / 2 + D * (D + 1) / 2 + D * M };

static nd_hybrid H;
static double P[NP], Z[B * D], A_[B * D], UT[NK], U[NK * M], WORK[1 << 15];

/* Points H's parameter pointers into the flat vector P (its documented layout). */
static void bind_params(void)
{
    double *p = P;
    H.b1 = p, p += D;
    H.kernels[0] = p, p += D * N1;
    H.biases[0] = p, p += N1;
    H.kernels[1] = p, p += N1 * N2;
    H.biases[1] = p, p += N2;
    H.A = p, p += D * (D - 1) / 2;
    H.L = p, p += D * (D + 1) / 2;
    H.G = p;
}

static void setup(int a0, int a1, int form)
{
    nd_hybrid_default(&H);
    H.dim = D;
    H.n_layers = 2;
    H.widths[0] = D, H.widths[1] = N1, H.widths[2] = N2;
    H.acts[0] = a0, H.acts[1] = a1;
    H.beta = 1.3;
    H.power = 3.5;
    H.guarantee = 0;
    H.form = form;
    H.inputs = form == ND_HYBRID_PORT_HAMILTONIAN ? M : 0;
    nd_test_fill(P, NP, -0.8, 0.8);
    bind_params();
    if (form == ND_HYBRID_PORT_HAMILTONIAN) {
        UT[0] = 0.0, UT[1] = 0.5, UT[2] = 1.5;
        nd_test_fill(U, NK * M, -1, 1);
        H.n_knots = NK, H.u_rows = 1, H.u_t = UT, H.u = U;
    }
}

/* A point whose pre-activations stay away from every kink (0 for ReLU-like, +-1 for hard-tanh). */
static int is_kinked(int act, double g)
{
    if (act == ND_HACT_RELU || act == ND_HACT_RELU_POWER)
        return fabs(g) < 1e-3;
    if (act == ND_HACT_HARDTANH)
        return fabs(fabs(g) - 1) < 1e-3;
    return 0;
}

/* psi of one unit (the test's own; softmax per row below), to place points away from kinks. */
static double psi_ref(int act, double x)
{
    const double b = H.beta, p = H.power;
    switch (act) {
    case ND_HACT_TANH: return tanh(b * x);
    case ND_HACT_SIGMOID: return 1 / (1 + exp(-b * x));
    case ND_HACT_POLYNOMIAL: return pow(log1p(exp(x)), p - 1) / (1 + exp(-x));
    case ND_HACT_RELU_POWER: return x > 0 ? pow(x, p - 1) : 0;
    case ND_HACT_QUADRATIC: return x;
    case ND_HACT_HARDTANH: return fmax(-1, fmin(1, x));
    default: return x > 0 ? x : 0;
    }
}

static void draw_point(void)
{
    const double *K0 = H.kernels[0], *K1 = H.kernels[1];
    for (int tries = 0; tries < 1000; ++tries) {
        nd_test_fill(Z, B * D, -1.5, 1.5);
        int ok = 1;
        for (int r = 0; r < B; ++r) {
            double g1[N1], a1[N1], sum = 0;
            for (int j = 0; j < N1; ++j) {
                g1[j] = 0;
                for (int i = 0; i < D; ++i)
                    g1[j] += Z[r * D + i] * K0[i * N1 + j];
                ok &= !is_kinked(H.acts[0], g1[j]);
                a1[j] = H.acts[0] == ND_HACT_SOFTMAX ? exp(H.beta * g1[j]) : psi_ref(H.acts[0], g1[j]);
                sum += a1[j];
            }
            for (int j = 0; j < N1 && H.acts[0] == ND_HACT_SOFTMAX; ++j)
                a1[j] /= sum;
            for (int j = 0; j < N2; ++j) {
                double g2 = 0;
                for (int i = 0; i < N1; ++i)
                    g2 += a1[i] * K1[i * N2 + j];
                ok &= !is_kinked(H.acts[1], g2);
            }
        }
        if (ok)
            return;
    }
    CHECK(0); /* no point away from the kinks */
}

static double energy_sum(void)
{
    double e[B];
    CHECK(nd_hybrid_energy_f64(&H, B, Z, e, NULL, WORK) == ND_OK);
    return e[0] + e[1];
}

static double VDIR[B * D];
static double grad_dot(void)
{
    double g[B * D];
    CHECK(nd_hybrid_energy_f64(&H, B, Z, NULL, g, WORK) == ND_OK);
    double s = 0;
    for (int i = 0; i < B * D; ++i)
        s += VDIR[i] * g[i];
    return s;
}

static double field_dot(void)
{
    double dz[B * D];
    CHECK(nd_hybrid_field_eval_f64(&H, B, 0.7, NULL, Z, dz, WORK) == ND_OK);
    double s = 0;
    for (int i = 0; i < B * D; ++i)
        s += A_[i] * dz[i];
    return s;
}

static double worst_grad = 0, worst_hvp = 0, worst_param = 0, worst_ain = 0, worst_hess = 0;

static void check_pair(int a0, int a1, int form)
{
    setup(a0, a1, form);
    draw_point();
    /* grad H against central differences of H (the sum over rows separates) */
    double e[B], g[B * D];
    CHECK(nd_hybrid_energy_f64(&H, B, Z, e, g, WORK) == ND_OK);
    double err = nd_test_fd_error(energy_sum, Z, g, B * D, 1e-6, 1e-2);
    worst_grad = fmax(worst_grad, err);
    /* Hessian-vector product: v.Hess = d/dz (v.grad H) */
    nd_test_fill(VDIR, B * D, -1, 1);
    double hv[B * D];
    CHECK(nd_hybrid_hvp_f64(&H, B, Z, VDIR, hv, WORK) == ND_OK);
    err = nd_test_fd_error(grad_dot, Z, hv, B * D, 1e-6, 1e-2);
    worst_hvp = fmax(worst_hvp, err);
    /* the Hessians agree with the products and are symmetric */
    double hess[B * D * D];
    CHECK(nd_hybrid_hessian_f64(&H, B, Z, hess, WORK) == ND_OK);
    for (int r = 0; r < B; ++r)
        for (int i = 0; i < D; ++i) {
            double s = 0;
            for (int j = 0; j < D; ++j) {
                s += hess[r * D * D + i * D + j] * VDIR[r * D + j];
                worst_hess = fmax(worst_hess, fabs(hess[r * D * D + i * D + j] - hess[r * D * D + j * D + i]));
            }
            worst_hess = fmax(worst_hess, fabs(s - hv[r * D + i]) / fmax(1e-2, fabs(hv[r * D + i])));
        }
    /* the field's VJP: input cotangent and every parameter against differences of a.f */
    nd_test_fill(A_, B * D, -1, 1);
    double aout[B * D], dp[NP];
    CHECK(nd_hybrid_field_vjp_f64(&H, B, 0.7, NULL, Z, A_, aout, dp, 0, WORK) == ND_OK);
    err = nd_test_fd_error(field_dot, Z, aout, B * D, 1e-6, 1e-2);
    worst_ain = fmax(worst_ain, err);
    const int np = (int)nd_hybrid_param_count(&H);
    err = nd_test_fd_error(field_dot, P, dp, np, 1e-5, 1e-2); /* a larger step: a.f sums many terms */
    if (err > 1e-7)
        fprintf(stderr, "pair (%s, %s) form %d: parameter gradient error %g\n", nd_hybrid_act_names[a0],
                nd_hybrid_act_names[a1], form, err);
    worst_param = fmax(worst_param, err);
    /* the same VJP from a kept evaluation (nd_fields.h's slots): the same bits, whatever the
     * other slot holds */
    nd_hybrid_field hf = {0};
    hf.model = H;
    nd_field f;
    memset(&f, 0, sizeof f);
    f.kind = ND_FIELD_HYBRID;
    f.dim = D;
    f.batch = B;
    f.hybrid = &hf;
    f.keep_slots = 2;
    size_t flen;
    static double fw[1 << 15];
    CHECK(nd_field_workspace_len(&f, &flen) == ND_OK && flen <= sizeof fw / sizeof fw[0]);
    f.work = fw;
    double dzk[B * D], dz[B * D], other[B * D], aoutk[B * D], dpk[NP];
    for (int i = 0; i < B * D; ++i)
        other[i] = 0.5 - Z[i];
    CHECK(nd_field_eval_keep_f64(&f, 1, 0.7, Z, dzk) == ND_OK);
    CHECK(nd_field_eval_keep_f64(&f, 0, 0.7, other, dz) == ND_OK);
    CHECK(nd_field_eval_f64(&f, 0.7, Z, dz) == ND_OK);
    CHECK(nd_field_vjp_kept_f64(&f, 1, 0.7, Z, A_, aoutk, dpk, 0) == ND_OK);
    for (int i = 0; i < B * D; ++i)
        CHECK(dzk[i] == dz[i] && aoutk[i] == aout[i]);
    for (int i = 0; i < np; ++i)
        CHECK(dpk[i] == dp[i]);
    CHECK(nd_field_vjp_kept_f64(&f, 2, 0.7, Z, A_, aoutk, dpk, 0) == ND_ERR_ARG);
    nd_clear_error();
    /* accumulate adds */
    double dp2[NP];
    memcpy(dp2, dp, sizeof dp);
    CHECK(nd_hybrid_field_vjp_f64(&H, B, 0.7, NULL, Z, A_, NULL, dp2, 1, WORK) == ND_OK);
    for (int i = 0; i < np; ++i)
        CHECK_CLOSE(dp2[i], 2 * dp[i], 1e-12 * (1 + fabs(dp[i])));
    /* the field's Jacobian against its VJP: a^T J = a_out */
    double J[B * D * D];
    CHECK(nd_hybrid_field_jac_f64(&H, B, Z, J, WORK) == ND_OK);
    for (int r = 0; r < B; ++r)
        for (int c = 0; c < D; ++c) {
            double s = 0;
            for (int i = 0; i < D; ++i)
                s += A_[r * D + i] * J[r * D * D + i * D + c];
            CHECK_CLOSE(s, aout[r * D + c], 1e-10 * (1 + fabs(s)));
        }
}

static void test_derivatives_every_pair(void)
{
    size_t len;
    setup(0, 0, ND_HYBRID_PORT_HAMILTONIAN);
    nd_hybrid_field f = {0};
    f.model = H;
    CHECK(nd_hybrid_field_workspace_len(&f, B, 0, &len) == ND_OK);
    CHECK(len <= sizeof WORK / sizeof WORK[0]);
    for (int a0 = 0; a0 < 8; ++a0)
        for (int a1 = 0; a1 < 8; ++a1)
            for (int form = 0; form < 2; ++form)
                check_pair(a0, a1, form);
    fprintf(stderr, "worst relative errors: grad %.3g, hvp %.3g, hessian %.3g, a_out %.3g, params %.3g\n",
            worst_grad, worst_hvp, worst_hess, worst_ain, worst_param);
    CHECK(worst_grad < 1e-6);
    CHECK(worst_hvp < 1e-6);
    CHECK(worst_hess < 1e-9);
    CHECK(worst_ain < 1e-6);
    CHECK(worst_param < 1e-6);
}

/* dH/dt = grad H . f = -grad H^T R grad H + y.u for the port-Hamiltonian field. */
static void test_port_power_balance(void)
{
    setup(ND_HACT_TANH, ND_HACT_POLYNOMIAL, ND_HYBRID_PORT_HAMILTONIAN);
    draw_point();
    double g[B * D], dz[B * D], y[B * M];
    const double t = 0.9;
    CHECK(nd_hybrid_energy_f64(&H, B, Z, NULL, g, WORK) == ND_OK);
    CHECK(nd_hybrid_field_eval_f64(&H, B, t, NULL, Z, dz, WORK) == ND_OK);
    CHECK(nd_hybrid_output_f64(&H, B, Z, y, WORK) == ND_OK);
    /* R from the packed L; u(0.9) between the knots 0.5 and 1.5 */
    const double *Lp = H.L;
    double L[D][D] = {{0}}, u[M];
    for (int i = 0; i < D; ++i)
        for (int j = 0; j <= i; ++j)
            L[i][j] = i == j ? exp(Lp[i * (i + 1) / 2 + j]) : Lp[i * (i + 1) / 2 + j];
    for (int j = 0; j < M; ++j)
        u[j] = 0.6 * U[1 * M + j] + 0.4 * U[2 * M + j];
    for (int r = 0; r < B; ++r) {
        double dHdt = 0, diss = 0, supply = 0;
        for (int i = 0; i < D; ++i)
            dHdt += g[r * D + i] * dz[r * D + i];
        for (int k = 0; k < D; ++k) {
            double lg = 0; /* (L^T g)_k */
            for (int i = 0; i < D; ++i)
                lg += L[i][k] * g[r * D + i];
            diss += lg * lg;
        }
        for (int j = 0; j < M; ++j)
            supply += y[r * M + j] * u[j];
        CHECK_CLOSE(dHdt, -diss + supply, 1e-12 * (1 + fabs(dHdt)));
    }
}

static nd_hybrid_system SYS;
static double SZ[D], SA[D];
static double system_dot(void)
{
    double dz[D];
    CHECK(nd_hybrid_system_eval_f64(&SYS, 1, SZ, dz) == ND_OK);
    double s = 0;
    for (int i = 0; i < (int)SYS.dim; ++i)
        s += SA[i] * dz[i];
    return s;
}

static void test_systems(void)
{
    static const double centres[2 * D] = {1, 0, 0.5, -1, 0.5, 0}, depths[2] = {2.0, 1.5};
    for (int kind = 0; kind < 3; ++kind) {
        memset(&SYS, 0, sizeof SYS);
        SYS.kind = kind;
        SYS.dim = kind == ND_HSYS_DUFFING ? 2 : D;
        SYS.n_wells = 2, SYS.centres = centres, SYS.depths = depths;
        SYS.width = 0.7, SYS.gamma = 0.8, SYS.omega = 1.3;
        SYS.radius = 1.2, SYS.rotation = 0.9;
        SYS.alpha = -1, SYS.cubic = 1, SYS.delta = 0.3;
        CHECK(nd_hybrid_system_check(&SYS) == ND_OK);
        const int d = (int)SYS.dim;
        nd_test_fill(SZ, d, -1.5, 1.5);
        nd_test_fill(SA, d, -1, 1);
        double J[D * D], aout[D];
        CHECK(nd_hybrid_system_jac_f64(&SYS, 1, SZ, J) == ND_OK);
        CHECK(nd_hybrid_system_vjp_f64(&SYS, 1, SZ, SA, aout) == ND_OK);
        double err = nd_test_fd_error(system_dot, SZ, aout, d, 1e-6, 1e-2);
        if (err >= 1e-6)
            fprintf(stderr, "system %d: Jacobian fd error %g\n", kind, err);
        CHECK(err < 1e-6);
    }
    /* the multiwell field decreases V: V' = -grad V^T M grad V */
    SYS.kind = ND_HSYS_MULTIWELL;
    SYS.dim = D;
    double dz[D];
    nd_test_fill(SZ, D, -2, 2);
    CHECK(nd_hybrid_system_eval_f64(&SYS, 1, SZ, dz) == ND_OK);
    double gv[D] = {SZ[0], SZ[1], SZ[2]};
    for (int k = 0; k < 2; ++k) {
        double r2 = 0;
        for (int i = 0; i < D; ++i)
            r2 += (SZ[i] - centres[k * D + i]) * (SZ[i] - centres[k * D + i]);
        for (int i = 0; i < D; ++i)
            gv[i] += depths[k] * exp(-r2 / (2 * 0.49)) * (SZ[i] - centres[k * D + i]) / 0.49;
    }
    CHECK(gv[0] * dz[0] + gv[1] * dz[1] + gv[2] * dz[2] < 0);
}

/* The certificate's lower bound H >= |z|^2/2 - c1 |z| - c0 holds at random points far and near,
 * and every equilibrium lies in the ball of eq_radius (checked on random z: |grad H| > 0 outside). */
static void test_certificate(void)
{
    static const int firsts[4] = {ND_HACT_SOFTMAX, ND_HACT_TANH, ND_HACT_SIGMOID, ND_HACT_HARDTANH};
    for (int k = 0; k < 4; ++k) {
        setup(firsts[k], ND_HACT_POLYNOMIAL, ND_HYBRID_GRADIENT);
        for (int i = 0; i < NP; ++i)
            P[i] *= 3; /* large scales */
        H.guarantee = 1;
        nd_hybrid_cert c;
        size_t len;
        CHECK(nd_hybrid_certificate_workspace_len(&H, &len) == ND_OK);
        CHECK(len <= sizeof WORK / sizeof WORK[0]);
        CHECK(nd_hybrid_certificate(&H, &c, WORK) == ND_OK);
        CHECK(c.bounded == 1);
        CHECK(isfinite(c.c1) && isfinite(c.c0) && isfinite(c.radius) && c.radius >= c.eq_radius);
        static double work2[1 << 15];
        for (int trial = 0; trial < 200; ++trial) {
            const double scale = trial < 100 ? 3.0 : 300.0;
            nd_test_fill(Z, D, -scale, scale);
            double e, g[D];
            CHECK(nd_hybrid_energy_f64(&H, 1, Z, &e, g, work2) == ND_OK);
            const double nz = sqrt(Z[0] * Z[0] + Z[1] * Z[1] + Z[2] * Z[2]);
            CHECK(e >= 0.5 * nz * nz - c.c1 * nz - c.c0 - 1e-9 * (1 + fabs(e)));
            if (nz > c.eq_radius * 1.0000001) {
                /* grad H = z - r(z), |r| <= eq_radius: z.grad H >= |z| (|z| - eq_radius) > 0 */
                CHECK(Z[0] * g[0] + Z[1] * g[1] + Z[2] * g[2] >= nz * (nz - c.eq_radius) - 1e-9 * nz * nz);
            }
            if (nz <= c.eq_radius)
                CHECK(e <= c.level + 1e-9 * (1 + fabs(e)));
        }
    }
    setup(ND_HACT_RELU, ND_HACT_TANH, ND_HYBRID_GRADIENT);
    nd_hybrid_cert c;
    CHECK(nd_hybrid_certificate(&H, &c, WORK) == ND_OK);
    CHECK(c.bounded == 0 && isnan(c.radius));
}

static void test_rules(void)
{
    setup(ND_HACT_RELU, ND_HACT_TANH, ND_HYBRID_GRADIENT);
    H.guarantee = 1;
    CHECK(nd_hybrid_check(&H, 1) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "activations[0]") == 0);
    CHECK(strstr(nd_last_error()->rule, "'relu'") != NULL);
    setup(ND_HACT_TANH, ND_HACT_TANH, ND_HYBRID_GRADIENT);
    H.inputs = 2;
    CHECK(nd_hybrid_check(&H, 1) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "inputs") == 0);
    setup(ND_HACT_TANH, ND_HACT_TANH, ND_HYBRID_GRADIENT);
    H.beta = -1;
    CHECK(nd_hybrid_check(&H, 1) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "beta") == 0);
    setup(ND_HACT_TANH, ND_HACT_TANH, ND_HYBRID_PORT_HAMILTONIAN);
    UT[2] = 0.2; /* not increasing */
    CHECK(nd_hybrid_check(&H, 1) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "u_t") == 0);
    /* a per-row input cannot follow the compacted rows of a per-sample solve */
    setup(ND_HACT_TANH, ND_HACT_TANH, ND_HYBRID_PORT_HAMILTONIAN);
    H.u_rows = B;
    double dz[B * D], t[B] = {0, 0};
    draw_point();
    CHECK(nd_hybrid_field_eval_f64(&H, B, 0.0, NULL, Z, dz, WORK) == ND_OK);
    CHECK(nd_hybrid_field_eval_f64(&H, B, 0.0, t, Z, dz, WORK) == ND_ERR_ARG);
    nd_clear_error();
}

/* The field through nd_fields.h's interface: the same numbers as the family's own calls. */
static void test_through_fields(void)
{
    setup(ND_HACT_SOFTMAX, ND_HACT_SIGMOID, ND_HYBRID_PORT_HAMILTONIAN);
    draw_point();
    nd_hybrid_field hf = {0};
    hf.model = H;
    nd_field f;
    memset(&f, 0, sizeof f);
    f.kind = ND_FIELD_HYBRID;
    f.dim = D;
    f.batch = B;
    f.hybrid = &hf;
    CHECK(nd_field_check(&f) == ND_OK);
    size_t len;
    CHECK(nd_field_workspace_len(&f, &len) == ND_OK && len <= (1 << 14));
    static double fw[1 << 14];
    f.work = fw;
    CHECK(nd_field_param_count(&f) == nd_hybrid_param_count(&H));
    double dz1[B * D], dz2[B * D], a1[B * D], a2[B * D], p1[NP], p2[NP];
    CHECK(nd_field_eval_f64(&f, 0.3, Z, dz1) == ND_OK);
    CHECK(nd_hybrid_field_eval_f64(&H, B, 0.3, NULL, Z, dz2, WORK) == ND_OK);
    nd_test_fill(A_, B * D, -1, 1);
    CHECK(nd_field_vjp_f64(&f, 0.3, Z, A_, a1, p1, 0) == ND_OK);
    CHECK(nd_hybrid_field_vjp_f64(&H, B, 0.3, NULL, Z, A_, a2, p2, 0, WORK) == ND_OK);
    for (int i = 0; i < B * D; ++i) {
        CHECK(dz1[i] == dz2[i]);
        CHECK(a1[i] == a2[i]);
    }
    for (int i = 0; i < NP; ++i)
        CHECK(p1[i] == p2[i]);
    /* rows at their own times */
    double t[B] = {0.3, 0.3};
    CHECK(nd_field_eval_rows_f64(&f, B, D, t, Z, dz1) == ND_OK);
    for (int i = 0; i < B * D; ++i)
        CHECK(dz1[i] == dz2[i]);
    /* the per-sample forms at different times: the input u(t) of each row at its own time, and
     * a kept evaluation's VJP equal to the plain one */
    const double tr[B] = {0.2, 1.1};
    f.keep_slots = 2;
    CHECK(nd_field_workspace_len(&f, &len) == ND_OK && len <= (1 << 14));
    CHECK(nd_field_eval_rows_keep_f64(&f, 1, B, D, tr, Z, dz1) == ND_OK);
    CHECK(nd_hybrid_field_eval_f64(&H, B, 0.0, tr, Z, dz2, WORK) == ND_OK);
    CHECK(nd_field_vjp_rows_kept_f64(&f, 1, B, D, tr, Z, A_, a1, p1, 0) == ND_OK);
    CHECK(nd_hybrid_field_vjp_f64(&H, B, 0.0, tr, Z, A_, a2, p2, 0, WORK) == ND_OK);
    for (int i = 0; i < B * D; ++i)
        CHECK(dz1[i] == dz2[i] && a1[i] == a2[i]);
    for (int i = 0; i < NP; ++i)
        CHECK(p1[i] == p2[i]);
    CHECK(nd_field_vjp_rows_f64(&f, B, D, tr, Z, A_, a1, p1, 0) == ND_OK);
    for (int i = 0; i < NP; ++i)
        CHECK(p1[i] == p2[i]);
    /* the Jacobians of the field kind through nd_fields.h against the family's own */
    double J1[B * D * D], J2[B * D * D];
    CHECK(nd_field_jac_rows_f64(&f, B, D, tr, Z, J1) == ND_OK);
    CHECK(nd_hybrid_field_jac_f64(&H, B, Z, J2, WORK) == ND_OK);
    for (int i = 0; i < B * D * D; ++i)
        CHECK(J1[i] == J2[i]);
}

/* float32 follows float64. */
static void test_float32(void)
{
    setup(ND_HACT_TANH, ND_HACT_POLYNOMIAL, ND_HYBRID_PORT_HAMILTONIAN);
    draw_point();
    static float Pf[NP], Zf[B * D], Uf[NK * M];
    for (int i = 0; i < NP; ++i)
        Pf[i] = (float)P[i];
    for (int i = 0; i < B * D; ++i)
        Zf[i] = (float)Z[i];
    for (int i = 0; i < NK * M; ++i)
        Uf[i] = (float)U[i];
    nd_hybrid h32 = H;
    float *p = Pf;
    h32.b1 = p, p += D;
    h32.kernels[0] = p, p += D * N1;
    h32.biases[0] = p, p += N1;
    h32.kernels[1] = p, p += N1 * N2;
    h32.biases[1] = p, p += N2;
    h32.A = p, p += D * (D - 1) / 2;
    h32.L = p, p += D * (D + 1) / 2;
    h32.G = p;
    h32.u = Uf;
    double dz[B * D];
    float dzf[B * D];
    static float wf[1 << 15];
    CHECK(nd_hybrid_field_eval_f64(&H, B, 0.4, NULL, Z, dz, WORK) == ND_OK);
    CHECK(nd_hybrid_field_eval_f32(&h32, B, 0.4, NULL, Zf, dzf, wf) == ND_OK);
    for (int i = 0; i < B * D; ++i)
        CHECK_CLOSE(dzf[i], dz[i], 1e-5 * (1 + fabs(dz[i])));
}

ND_TEST_MAIN(test_derivatives_every_pair, test_port_power_balance, test_systems, test_certificate, test_rules,
             test_through_fields, test_float32)

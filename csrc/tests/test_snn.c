/* LIF kernels: trajectories computed by hand, integrate-and-fire golden counts, spike bits,
 * and the backward pass against finite differences of the smooth surrogate model. */
#include <math.h>
#include <string.h>

#include "nd_snn.h"
#include "nd_rng.h"
#include "nd_status.h"
#include "nd_test.h"

static void test_hand_trajectory(void)
{
    /* beta 0.5, theta 1, I = 0.75 every step (dyadic: rounding cannot move a spike).
     * subtract: u = 0.75 -> V 0.75; u = 1.125 > 1 spike, V 0.125; u = 0.8125 -> V 0.8125;
     * u = 1.15625 spike, V 0.15625 */
    nd_lif_params p;
    nd_lif_params_default(&p);
    CHECK(p.tau == 2.0 && !p.tau_given && !p.beta_given);
    CHECK_CLOSE(nd_lif_decay(&p), exp(-0.5), 1e-16); /* the default is tau = 2 */
    p.beta = 0.5;
    p.beta_given = 1;
    double I[4] = {0.75, 0.75, 0.75, 0.75}, s[4], m[4], v_end;
    CHECK(nd_lif_forward_f64(&p, 4, 1, 1, I, 1, NULL, s, m, NULL, NULL, &v_end) == ND_OK);
    const double ws[4] = {0, 1, 0, 1}, wm[4] = {0.75, 0.125, 0.8125, 0.15625};
    for (int t = 0; t < 4; ++t) {
        CHECK(s[t] == ws[t]);
        CHECK(m[t] == wm[t]);
    }
    /* reset to zero: 0.75; 1.125 spike -> 0; 0.75; 1.125 spike -> 0 */
    p.reset = ND_RESET_ZERO;
    CHECK(nd_lif_forward_f64(&p, 4, 1, 1, I, 1, NULL, s, m, NULL, NULL, &v_end) == ND_OK);
    const double zm[4] = {0.75, 0, 0.75, 0};
    for (int t = 0; t < 4; ++t)
        CHECK(m[t] == zm[t] && s[t] == ws[t]);
    /* snntorch's order: the reset of step 2's spike lands in step 3:
     * 0.75; 1.125 (spike); 0.5625 + 0.75 - 1 = 0.3125; 0.15625 + 0.75 = 0.90625 */
    p.reset = ND_RESET_SUBTRACT;
    p.reset_delay = 1;
    CHECK(nd_lif_forward_f64(&p, 4, 1, 1, I, 1, NULL, s, m, NULL, NULL, &v_end) == ND_OK);
    const double dm[4] = {0.75, 1.125, 0.3125, 0.90625}, ds[4] = {0, 1, 0, 0};
    for (int t = 0; t < 4; ++t)
        CHECK(m[t] == dm[t] && s[t] == ds[t]);
}

static int if_count(double current, int T)
{
    nd_lif_params p;
    nd_lif_params_default(&p);
    p.beta = 1.0;
    p.beta_given = 1;
    double cur[1000], s[1000], v;
    for (int t = 0; t < T; ++t)
        cur[t] = current;
    CHECK(nd_lif_forward_f64(&p, T, 1, 1, cur, 1, NULL, s, NULL, NULL, NULL, &v) == ND_OK);
    int c = 0;
    for (int t = 0; t < T; ++t)
        c += s[t] != 0;
    return c;
}

static void test_integrate_and_fire_golden(void)
{
    /* docs/models.md §6: ceil(T I / theta) - 1 spikes for 0 < I <= theta */
    CHECK(if_count(0.35, 10) == 3);
    CHECK(if_count(1.0, 100) == 99);
    CHECK(if_count(0.5, 16) == 7);
    CHECK(if_count(2.0, 10) == 10); /* saturates */
}

static void test_spike_bits(void)
{
    nd_lif_params p;
    nd_lif_params_default(&p);
    enum { T = 7, B = 3, N = 5, C = T * B * N };
    double cur[C], s[C], v[B * N], back[C];
    for (int i = 0; i < C; ++i)
        cur[i] = 2.0 * nd_rng_uniform(7, 0, (uint64_t)i);
    uint8_t bits[C / 8 + 1];
    size_t bytes;
    CHECK(nd_spike_bits_size(T, B, N, &bytes) == ND_OK && bytes == C / 8 + 1);
    CHECK(nd_lif_forward_f64(&p, T, B, N, cur, B * N, NULL, s, NULL, bits, NULL, v) == ND_OK);
    CHECK(nd_spike_bits_unpack_f64(T, B, N, bits, bytes, back) == ND_OK);
    CHECK(nd_spike_bits_unpack_f64(T, B, N, bits, bytes - 1, back) == ND_ERR_ARG);
    CHECK(memcmp(s, back, sizeof s) == 0);
}

/* the smooth model's loss for the finite differences */
enum { GT = 6, GB = 2, GN = 3, GC = GT * GB * GN };
static double G_CUR[GC], G_V0[GB * GN], G_WS[GC], G_WM[GC];
static nd_lif_params G_P;

static double smooth_loss(void)
{
    double s[GC], m[GC], v[GB * GN];
    CHECK(nd_lif_forward_f64(&G_P, GT, GB, GN, G_CUR, GB * GN, G_V0, s, m, NULL, NULL, v) == ND_OK);
    double l = 0;
    for (int i = 0; i < GC; ++i)
        l += G_WS[i] * s[i] + G_WM[i] * m[i];
    return l;
}

static void test_backward_matches_smooth_model(void)
{
    nd_test_fill(G_CUR, GC, -0.5, 1.5);
    nd_test_fill(G_V0, GB * GN, -0.5, 1.0);
    nd_test_fill(G_WS, GC, -1, 1);
    nd_test_fill(G_WM, GC, -1, 1);
    for (int reset = 0; reset < 2; ++reset)
        for (int delay = 0; delay < 2; ++delay)
                for (int sur = 0; sur < 3; ++sur) {
                    nd_lif_params_default(&G_P);
                    G_P.beta = 0.8;
                    G_P.beta_given = 1;
                    G_P.reset = reset;
                    G_P.reset_delay = delay;
                    G_P.surrogate = sur;
                    G_P.slope = sur == ND_SURROGATE_SIGMOID ? 4.0 : 2.0;
                    G_P.smooth = 1;
                    G_P.detach_reset = 0; /* the smooth model's exact gradient keeps the reset */
                    double dcur[GC], dv0[GB * GN];
                    CHECK(nd_lif_backward_f64(&G_P, GT, GB, GN, G_CUR, GB * GN, G_V0, G_WS, GB * GN, G_WM, dcur,
                                              GB * GN, dv0) == ND_OK);
                    double e = fmax(nd_test_fd_error(smooth_loss, G_CUR, dcur, GC, 1e-6, 1e-3),
                                    nd_test_fd_error(smooth_loss, G_V0, dv0, GB * GN, 1e-6, 1e-3));
                    if (e >= 1e-6)
                        fprintf(stderr, "lif reset %d delay %d surrogate %d: fd error %g\n", reset, delay, sur, e);
                    CHECK(e < 1e-6);
                }
}

static void test_detached_reset_drops_the_reset_path(void)
{
    /* With a detached subtract reset and no spike cotangent, dI_t = beta^(T-1-t) times the
     * cotangent of the last membrane: the membrane passes gradient straight through. */
    nd_lif_params p;
    nd_lif_params_default(&p);
    p.beta = 0.5;
    p.beta_given = 1;
    double cur[3] = {0.75, 0.75, 0.75}, dm[3] = {0, 0, 1}, dcur[3], dv0;
    CHECK(nd_lif_backward_f64(&p, 3, 1, 1, cur, 1, NULL, NULL, 1, dm, dcur, 1, &dv0) == ND_OK);
    CHECK(dcur[2] == 1.0 && dcur[1] == 0.5 && dcur[0] == 0.25 && dv0 == 0.125);
}

static void test_shared_current_matches_its_copies(void)
{
    /* One (B, n) current read every step (time stride 0) gives the spikes of its T copies, and
     * the backward pass's dcurrents summed over steps (dcur_tstride 0) equals the sum of the
     * per-step gradients, up to rounding (a different summation order and loop). */
    nd_lif_params p;
    nd_lif_params_default(&p);
    enum { T = 9, B = 2, N = 300, R = B * N, C = T * R }; /* N > 256: two chunks, a partial one */
    static double one[R], copies[C], s1[C], s2[C], ds[C], v1[R], v2[R], dfull[C], dsum[R], dv1[R], dv2[R];
    nd_test_fill(one, R, -0.2, 1.4);
    nd_test_fill(ds, C, -1, 1);
    for (int t = 0; t < T; ++t)
        memcpy(copies + t * R, one, sizeof one);
    CHECK(nd_lif_forward_f64(&p, T, B, N, one, 0, NULL, s1, NULL, NULL, NULL, v1) == ND_OK);
    CHECK(nd_lif_forward_f64(&p, T, B, N, copies, R, NULL, s2, NULL, NULL, NULL, v2) == ND_OK);
    CHECK(memcmp(s1, s2, sizeof s1) == 0 && memcmp(v1, v2, sizeof v1) == 0);
    CHECK(nd_lif_backward_f64(&p, T, B, N, copies, R, NULL, ds, R, NULL, dfull, R, dv1) == ND_OK);
    CHECK(nd_lif_backward_f64(&p, T, B, N, one, 0, NULL, ds, R, NULL, dsum, 0, dv2) == ND_OK);
    for (int i = 0; i < R; ++i) /* separately compiled loops: equal up to rounding */
        CHECK_CLOSE(dv2[i], dv1[i], 1e-14 * (1 + fabs(dv1[i])));
    for (int i = 0; i < R; ++i) {
        double want = 0;
        for (int t = 0; t < T; ++t)
            want += dfull[t * R + i];
        CHECK_CLOSE(dsum[i], want, 1e-13 * (1 + fabs(want)));
    }
    /* the rate output is the spike count over T, without the raster */
    static double rate[R], inplace[C];
    CHECK(nd_lif_forward_f64(&p, T, B, N, one, 0, NULL, NULL, NULL, NULL, rate, v1) == ND_OK);
    for (int i = 0; i < R; ++i) {
        double count = 0;
        for (int t = 0; t < T; ++t)
            count += s2[t * R + i];
        CHECK(rate[i] == count / T);
    }
    /* the gradient may overwrite the currents it is computed from */
    memcpy(inplace, copies, sizeof inplace);
    CHECK(nd_lif_backward_f64(&p, T, B, N, inplace, R, NULL, ds, R, NULL, inplace, R, dv2) == ND_OK);
    CHECK(memcmp(inplace, dfull, sizeof inplace) == 0);
    /* a stride that is neither 0 nor B n is refused */
    CHECK(nd_lif_forward_f64(&p, T, B, N, copies, 7, NULL, s1, NULL, NULL, NULL, v1) == ND_ERR_ARG);
    CHECK(nd_lif_backward_f64(&p, T, B, N, copies, R, NULL, ds, R, NULL, dfull, 5, dv1) == ND_ERR_ARG);
}

static void test_philox_known_answers(void)
{
    /* Random123's known-answer vectors for Philox4x32-10 */
    const uint32_t c0[4] = {0, 0, 0, 0}, k0[2] = {0, 0};
    const uint32_t c1[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, k1[2] = {0xffffffffu, 0xffffffffu};
    const uint32_t c2[4] = {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, k2[2] = {0xa4093822u, 0x299f31d0u};
    const uint32_t w0[4] = {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u};
    const uint32_t w1[4] = {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu};
    const uint32_t w2[4] = {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u};
    uint32_t out[4];
    nd_philox4x32(c0, k0, out);
    CHECK(memcmp(out, w0, sizeof out) == 0);
    nd_philox4x32(c1, k1, out);
    CHECK(memcmp(out, w1, sizeof out) == 0);
    nd_philox4x32(c2, k2, out);
    CHECK(memcmp(out, w2, sizeof out) == 0);
    /* uniform draws: any slice equals the element-wise draws */
    double a[9];
    nd_rng_uniform_fill(42, 3, 5, 9, a);
    for (int i = 0; i < 9; ++i)
        CHECK(a[i] == nd_rng_uniform(42, 3, 5 + (uint64_t)i) && a[i] >= 0 && a[i] < 1);
}

/* Each broken rule is refused with the argument's name recorded; tau gives beta = exp(-1/tau). */
static int lif_rule_broken(nd_lif_params p, const char *arg)
{
    double I = 0.5, s, v;
    nd_clear_error();
    int st = nd_lif_forward_f64(&p, 1, 1, 1, &I, 1, NULL, &s, NULL, NULL, NULL, &v);
    return st == ND_ERR_ARG && nd_lif_params_check(&p) == ND_ERR_ARG && strcmp(nd_last_error()->arg, arg) == 0;
}

static void test_parameter_rules(void)
{
    nd_lif_params d, p;
    nd_lif_params_default(&d);
    CHECK(nd_lif_params_check(&d) == ND_OK);
    p = d, p.tau = 0;
    CHECK(lif_rule_broken(p, "tau"));
    p = d, p.tau = NAN, p.tau_given = 1;
    CHECK(lif_rule_broken(p, "tau"));
    p = d, p.tau = INFINITY;
    CHECK(lif_rule_broken(p, "tau"));
    p = d, p.beta = 1.5, p.beta_given = 1;
    CHECK(lif_rule_broken(p, "beta"));
    p = d, p.beta = -0.25, p.beta_given = 1;
    CHECK(lif_rule_broken(p, "beta"));
    p = d, p.beta = NAN, p.beta_given = 1;
    CHECK(lif_rule_broken(p, "beta"));
    p = d, p.tau_given = p.beta_given = 1;
    CHECK(lif_rule_broken(p, "tau or beta"));
    p = d, p.threshold = 0;
    CHECK(lif_rule_broken(p, "threshold"));
    p = d, p.threshold = INFINITY;
    CHECK(lif_rule_broken(p, "threshold"));
    p = d, p.slope = -1;
    CHECK(lif_rule_broken(p, "slope"));
    p = d, p.reset = 2;
    CHECK(lif_rule_broken(p, "reset"));
    p = d, p.surrogate = -1;
    CHECK(lif_rule_broken(p, "surrogate"));
    /* the ends of beta's range are neurons: no memory, and no leak */
    p = d, p.beta = 0, p.beta_given = 1;
    CHECK(nd_lif_params_check(&p) == ND_OK && nd_lif_decay(&p) == 0);
    p.beta = 1;
    CHECK(nd_lif_params_check(&p) == ND_OK && nd_lif_decay(&p) == 1);
    /* tau = 1 / ln 2 halves the membrane each step: I = 1 then nothing gives 1, 1/2, 1/4 */
    p = d, p.tau = 1 / log(2.0), p.tau_given = 1, p.threshold = 10;
    double I[3] = {1, 0, 0}, s[3], m[3], v;
    CHECK(nd_lif_forward_f64(&p, 3, 1, 1, I, 1, NULL, s, m, NULL, NULL, &v) == ND_OK);
    CHECK_CLOSE(m[1], 0.5, 1e-15);
    CHECK_CLOSE(m[2], 0.25, 1e-15);
    /* a rate needs a step to average over */
    double rate;
    nd_clear_error();
    CHECK(nd_lif_forward_f64(&d, 0, 1, 1, I, 1, NULL, NULL, NULL, NULL, &rate, &v) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "currents") == 0);
}

static void test_encoders(void)
{
    const double x[4] = {1.0, 0.5, 0.0, 2.0};
    double out[5 * 4];
    size_t len;
    CHECK(nd_encode_len(ND_ENCODE_LATENCY, 5, 4, &len) == ND_OK && len == 20);
    nd_clear_error();
    CHECK(nd_encode_f64(ND_ENCODE_POISSON, 0, 4, x, 1, 0, out) == ND_ERR_ARG);
    CHECK(strcmp(nd_last_error()->arg, "num_timesteps") == 0);
    CHECK(nd_encode_f64(3, 5, 4, x, 1, 0, out) == ND_ERR_ARG);
    /* latency: x = 1 (and 2, clipped) fires at step 0, x = 0.5 at round(0.5 * 4) = 2, x = 0 never */
    CHECK(nd_encode_f64(ND_ENCODE_LATENCY, 5, 4, x, 0, 0, out) == ND_OK);
    for (int t = 0; t < 5; ++t) {
        CHECK(out[4 * t + 0] == (t == 0) && out[4 * t + 1] == (t == 2));
        CHECK(out[4 * t + 2] == 0 && out[4 * t + 3] == (t == 0));
    }
    /* constant: x at every step; poisson: probability clip(x, 0, 1), so 1 always and 0 never fire */
    CHECK(nd_encode_f64(ND_ENCODE_CONSTANT, 5, 4, x, 0, 0, out) == ND_OK);
    for (int t = 0; t < 5; ++t)
        CHECK(memcmp(out + 4 * t, x, sizeof x) == 0);
    CHECK(nd_encode_f64(ND_ENCODE_POISSON, 5, 4, x, 9, 0, out) == ND_OK);
    for (int t = 0; t < 5; ++t)
        CHECK(out[4 * t] == 1 && out[4 * t + 2] == 0 && out[4 * t + 3] == 1);
}

ND_TEST_MAIN(test_hand_trajectory, test_integrate_and_fire_golden, test_spike_bits, test_backward_matches_smooth_model,
             test_detached_reset_drops_the_reset_path, test_shared_current_matches_its_copies,
             test_philox_known_answers, test_parameter_rules, test_encoders)

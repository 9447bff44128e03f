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
    CHECK_CLOSE(p.beta, exp(-0.5), 1e-16); /* the default is tau = 2 */
    p.beta = 0.5;
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
    nd_spike_bits_unpack_f64(C, bits, back);
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

ND_TEST_MAIN(test_hand_trajectory, test_integrate_and_fire_golden, test_spike_bits, test_backward_matches_smooth_model,
             test_detached_reset_drops_the_reset_path, test_shared_current_matches_its_copies,
             test_philox_known_answers)

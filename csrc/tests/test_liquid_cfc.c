/* The CfC sequence kernels: one step against the equations written out, and the backward
 * pass (parameters, inputs, initial state) against central finite differences, both modes,
 * with and without a backbone; the pure mode's closed form by hand and its gradients. */
#include <math.h>
#include <string.h>

#include "nd_liquid_cfc.h"
#include "nd_nn.h"
#include "nd_status.h"
#include "nd_test.h"

enum { B = 2, T = 4, NI = 3, H = 2, U = 5, Z = NI + H };
static double X[B * T * NI], DT[B * T], H0[B * H], WOUT[B * T * H];
static double BW0[Z * U], BB0[U], BW1[U * U], BB1[U], HW[4][U * H], HB[4][H], WT[H], AA[H];
static nd_cfc cell;
static double work[4096];

static double loss(void)
{
    double h[B * T * H];
    CHECK(nd_cfc_forward_f64(&cell, B, T, X, DT, H0, h, NULL, work) == ND_OK);
    double l = 0;
    for (int i = 0; i < B * T * H; ++i)
        l += WOUT[i] * h[i];
    return l;
}

static void setup(int layers, int mode)
{
    nd_test_fill(X, B * T * NI, -1, 1);
    nd_test_fill(DT, B * T, 0.2, 2.0);
    nd_test_fill(H0, B * H, -1, 1);
    nd_test_fill(WOUT, B * T * H, -1, 1);
    nd_test_fill(BW0, Z * U, -0.8, 0.8);
    nd_test_fill(BB0, U, -0.3, 0.3);
    nd_test_fill(BW1, U * U, -0.8, 0.8);
    nd_test_fill(BB1, U, -0.3, 0.3);
    for (int k = 0; k < 4; ++k) {
        nd_test_fill(HW[k], U * H, -0.8, 0.8);
        nd_test_fill(HB[k], H, -0.3, 0.3);
    }
    nd_test_fill(WT, H, -1, 1);
    WT[0] = 0; /* |w_tau| at its kink: the gradient takes sign(0) = 0 */
    nd_test_fill(AA, H, 0.5, 1.5);
    nd_cfc c = {.input_size = NI, .hidden_size = H, .units = U, .layers = layers, .act = ND_ACT_LECUN_TANH,
                .mode = mode, .bw = {BW0, BW1}, .bb = {BB0, BB1}, .hw = {HW[0], HW[1], HW[2], HW[3]},
                .hb = {HB[0], HB[1], HB[2], HB[3]}, .w_tau = WT, .A = AA};
    cell = c;
}

static void test_one_step_by_hand(void)
{
    setup(1, ND_CFC_GATED);
    double h[B * T * H];
    CHECK(nd_cfc_forward_f64(&cell, B, T, X, DT, H0, h, NULL, work) == ND_OK);
    for (int b = 0; b < B; ++b) {
        double z[Z], bb[U];
        memcpy(z, X + b * T * NI, sizeof(double) * NI);
        memcpy(z + NI, H0 + b * H, sizeof(double) * H);
        for (int u = 0; u < U; ++u) {
            double s = BB0[u];
            for (int i = 0; i < Z; ++i)
                s += z[i] * BW0[i * U + u];
            bb[u] = 1.7159 * tanh(0.666 * s);
        }
        for (int j = 0; j < H; ++j) {
            double hd[4];
            for (int k = 0; k < 4; ++k) {
                hd[k] = HB[k][j];
                for (int u = 0; u < U; ++u)
                    hd[k] += bb[u] * HW[k][u * H + j];
            }
            double f1 = tanh(hd[0]), f2 = tanh(hd[1]), g = 1 / (1 + exp(-(hd[2] * DT[b * T] + hd[3])));
            CHECK_CLOSE(h[b * T * H + j], f1 * (1 - g) + g * f2, 1e-14);
        }
    }
}

static void test_pure_by_hand(void)
{
    setup(0, ND_CFC_PURE);
    double h[B * T * H];
    CHECK(nd_cfc_forward_f64(&cell, B, T, X, DT, H0, h, NULL, work) == ND_OK);
    for (int b = 0; b < B; ++b) {
        double z[Z];
        memcpy(z, X + b * T * NI, sizeof(double) * NI);
        memcpy(z + NI, H0 + b * H, sizeof(double) * H);
        for (int j = 0; j < H; ++j) {
            double f = HB[0][j];
            for (int i = 0; i < Z; ++i)
                f += z[i] * HW[0][i * H + j];
            CHECK_CLOSE(h[b * T * H + j], AA[j] - AA[j] * exp(-DT[b * T] * (fabs(WT[j]) + fabs(f))) * f, 1e-14);
        }
    }
}

static void check_grads(int layers, int mode)
{
    setup(layers, mode);
    size_t per_step, wlen;
    CHECK(nd_cfc_sizes(&cell, B, &per_step, &wlen) == ND_OK && wlen <= 4096);
    static double cache[B * T * 64], h[B * T * H], dx[B * T * NI], dh0[B * H], dp[512];
    CHECK(per_step * T <= sizeof cache / sizeof cache[0]);
    CHECK(nd_cfc_forward_f64(&cell, B, T, X, DT, H0, h, cache, work) == ND_OK);
    CHECK(nd_cfc_backward_f64(&cell, B, T, DT, cache, WOUT, dx, dh0, dp, work) == ND_OK);
    double e = nd_test_fd_error(loss, X, dx, B * T * NI, 1e-6, 1e-3);
    e = fmax(e, nd_test_fd_error(loss, H0, dh0, B * H, 1e-6, 1e-3));
    double *off = dp;
    for (int l = 0; l < layers; ++l) {
        double *w = l ? BW1 : BW0, *bb = l ? BB1 : BB0;
        int in = l ? U : Z;
        e = fmax(e, nd_test_fd_error(loss, w, off, in * U, 1e-6, 1e-3));
        e = fmax(e, nd_test_fd_error(loss, bb, off + in * U, U, 1e-6, 1e-3));
        off += in * U + U;
    }
    int width = layers ? U : Z;
    for (int k = 0; k < (mode == ND_CFC_PURE ? 1 : 4); ++k) {
        if (!layers)
            break; /* the heads are [U, H] arrays here; without a backbone they would need [Z, H] */
        e = fmax(e, nd_test_fd_error(loss, HW[k], off, width * H, 1e-6, 1e-3));
        e = fmax(e, nd_test_fd_error(loss, HB[k], off + width * H, H, 1e-6, 1e-3));
        off += width * H + H;
    }
    if (mode == ND_CFC_PURE && layers) {
        /* w_tau from 1 on: the first is at the kink of |w_tau|, where no difference applies */
        e = fmax(e, nd_test_fd_error(loss, WT + 1, off + 1, H - 1, 1e-6, 1e-3));
        CHECK(off[0] == 0.0);
        e = fmax(e, nd_test_fd_error(loss, AA, off + H, H, 1e-6, 1e-3));
        off += 2 * H;
    }
    if (e >= 1e-6)
        fprintf(stderr, "cfc layers %d mode %d: fd error %g\n", layers, mode, e);
    CHECK(e < 1e-6);
    CHECK(nd_cfc_param_count(&cell) == off - dp || !layers);
}

static void test_gradients(void)
{
    check_grads(1, ND_CFC_GATED);
    check_grads(2, ND_CFC_GATED);
    check_grads(1, ND_CFC_NO_GATE);
    check_grads(1, ND_CFC_PURE);
    check_grads(2, ND_CFC_PURE);
}

static void test_rules_name_the_argument(void)
{
    setup(1, ND_CFC_GATED);
    CHECK(nd_cfc_check(&cell) == ND_OK);
    nd_cfc c = cell;
    c.layers = ND_CFC_MAX_LAYERS + 1;
    CHECK(nd_cfc_check(&c) == ND_ERR_ARG && strcmp(nd_last_error()->arg, "backbone_layers") == 0);
    c = cell;
    c.hidden_size = 0;
    CHECK(nd_cfc_check(&c) == ND_ERR_ARG && strcmp(nd_last_error()->arg, "hidden_size") == 0);
    c = cell;
    c.units = 0;
    CHECK(nd_cfc_check(&c) == ND_ERR_ARG && strcmp(nd_last_error()->arg, "backbone_units") == 0);
    c.layers = 0; /* without a backbone its width is not used */
    CHECK(nd_cfc_check(&c) == ND_OK);
    c = cell;
    c.act = ND_ACT_COUNT;
    CHECK(nd_cfc_check(&c) == ND_ERR_ARG && strcmp(nd_last_error()->arg, "backbone_activation") == 0);
    CHECK(strcmp(nd_cfc_mode_names[ND_CFC_NO_GATE], "no_gate") == 0 && strcmp(nd_cfc_mode_names[ND_CFC_PURE], "pure") == 0 &&
          !nd_cfc_mode_names[3]);
    c = cell;
    c.mode = ND_CFC_PURE;
    c.w_tau = NULL;
    size_t per_step, wlen;
    CHECK(nd_cfc_sizes(&c, B, &per_step, &wlen) == ND_ERR_ARG && strcmp(nd_last_error()->arg, "w_tau and A") == 0);
    double dt[B * T], h[B * T * H];
    for (int i = 0; i < B * T; ++i)
        dt[i] = 1;
    dt[3] = -0.5;
    CHECK(nd_cfc_forward_f64(&cell, B, T, X, dt, H0, h, NULL, work) == ND_ERR_ARG &&
          strcmp(nd_last_error()->arg, "timespans") == 0 && nd_last_error()->value == -0.5);
    nd_clear_error();
}

ND_TEST_MAIN(test_one_step_by_hand, test_pure_by_hand, test_gradients, test_rules_name_the_argument)

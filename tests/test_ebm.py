"""The energy-based family (docs/models.md §7): contrastive-divergence loss, the analytic energies,
the EBM and its Langevin / MALA sampler.

How each claim is checked:

- The sampler's arithmetic is compared step by step with the float64 NumPy twin of
  tests/reference_ebm.py, which regenerates the library's noise from its own Philox4x32-10
  (verified first against Random123's known-answer vectors), so the comparison is exact to
  rounding (1e-12), not statistical.
- What the sampler is for (sampling exp(-E / s^2)) is checked statistically against
  closed forms and quadrature, with tolerances derived from the Monte-Carlo error of the
  stated number of independent chains (4.5 standard errors: a false alarm about once in
  150 000 runs per assertion, and every run is seeded, so the outcome is fixed anyway).
- Every gradient (energy input gradients, the EBM's parameter gradient) against central
  finite differences in float64 (docs/models.md §0).
- Training is judged by a measured sample quality (MMD) with the numbers stated.
"""
from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats

import neurodyn as nd

import reference_ebm as ref
from conftest import LAYOUTS, as_layout

Z = 4.5  # standard errors allowed in every Monte-Carlo comparison (see the module docstring)


def quad_problem():
    """A correlated 2-D Gaussian N(m, C) as a Quadratic energy with precision C^-1."""
    m = np.array([0.5, -1.0])
    C = np.array([[1.0, 0.6], [0.6, 0.8]])
    return m, C, np.linalg.inv(C)


def random_spd(rng, d, lo=0.5):
    A = rng.standard_normal((d, d))
    return A @ A.T / d + lo * np.eye(d)


# ---- the twin's own generator, before anything relies on it ---------------------------------

@pytest.mark.parametrize("ctr, key, expected", [
    # Random123 tests/kat_vectors, philox4x32 10
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
])
def test_twin_philox_known_answers(ctr, key, expected):
    assert tuple(int(w) for w in ref.philox4x32_10(ctr, key)) == expected


def test_twin_normals_are_standard_normal():
    # 200 000 draws: a KS test at p > 1e-3 and moments within 4.5 standard errors say the
    # twin's Box-Muller is a real N(0, 1), so agreeing with it means something.
    z = ref.normals(12345, 0, np.arange(200_000, dtype=np.uint64))
    n = z.size
    assert abs(z.mean()) < Z / math.sqrt(n)
    assert abs(z.var() - 1) < Z * math.sqrt(2 / n)
    assert scipy.stats.kstest(z, "norm").pvalue > 1e-3


# ---- contrastive-divergence loss -------------------------------------------------------------

def test_cd_loss_golden():
    # docs/models.md §7: 1.5 - 3.5 + 0.01 (2.5 + 12.5) = -1.85
    assert nd.contrastive_divergence_loss([1.0, 2.0], [3.0, 4.0]) == pytest.approx(-1.85, abs=1e-12)
    assert nd.contrastive_divergence_loss([1.0, 2.0], [3.0, 4.0], reg_alpha=0.0) == pytest.approx(-2.0, abs=1e-12)


def test_cd_loss_matches_twin(rng):
    for alpha in (0.0, 0.01, 0.7):
        a, b = rng.standard_normal(7), rng.standard_normal(5) * 3
        assert nd.contrastive_divergence_loss(a, b, alpha) == pytest.approx(ref.cd_loss(a, b, alpha), rel=1e-13)


# ---- the sampler against the twin, step by step ----------------------------------------------

def _quad_setup(rng, B=5, d=3):
    P = random_spd(rng, d)
    m = rng.standard_normal(d)
    return nd.energies.Quadratic(m, P), (lambda x: ref.quadratic(x, m, P)), rng.uniform(-2, 2, (B, d))


@pytest.mark.parametrize("seed", [0, 7, 2**40 + 3, 2**62])
def test_langevin_noise_is_the_documented_philox_stream(seed):
    # With a flat energy a step is pure noise: x1 - x0 = sqrt(eta) s eps. This pins the noise
    # itself (seed as the key, both key words, stream 0, index step*B*d + element).
    B, d = 4, 3
    flat = lambda x: (np.zeros(len(x)), np.zeros_like(x))
    x0 = np.zeros((B, d))
    eta, s = 0.25, 1.5
    x = nd.langevin_sample(flat, x0, steps=3, step_size=eta, noise_scale=s, seed=seed)
    expect = sum(math.sqrt(eta) * s * ref.step_noise(seed, t, B, d) for t in range(3))
    np.testing.assert_allclose(x, expect, rtol=0, atol=1e-13)


@pytest.mark.parametrize("kw", [{}, {"clamp": (-0.5, 0.7)}, {"grad_clip": 0.3},
                                {"clamp": (-0.5, 0.7), "grad_clip": 0.3}],
                         ids=["plain", "clamp", "grad_clip", "both"])
def test_langevin_matches_twin_each_step(rng, kw):
    energy, twin, x0 = _quad_setup(rng)
    eta, s, K = 0.3, 0.8, 6
    _, states = ref.langevin(twin, x0, K, eta, s, 11, trace=True, **kw)
    # steps=k replays the first k steps (the noise is indexed by step), so each call checks
    # the state after one more step of the same trajectory
    for k in range(1, K + 1):
        x = nd.langevin_sample(energy, x0, steps=k, step_size=eta, noise_scale=s, seed=11, **kw)
        np.testing.assert_allclose(x, states[k - 1], rtol=0, atol=1e-12, err_msg=f"after step {k}")
    if "clamp" in kw:
        lo, hi = kw["clamp"]
        assert x.min() >= lo and x.max() <= hi and (x == lo).any() and (x == hi).any()  # the clamp bites


@pytest.mark.parametrize("kw", [{}, {"clamp": (-1.0, 1.2)}, {"grad_clip": 0.3}], ids=["plain", "clamp", "grad_clip"])
def test_mala_matches_twin_accept_decisions(rng, kw):
    energy, twin, x0 = _quad_setup(rng, B=8)
    x0 = np.clip(x0, -0.9, 1.1)  # start inside the clamp box
    eta, s, K = 0.9, 0.8, 12  # a large step: acceptance near one half, so decisions vary
    _, acc_ref, decisions = ref.mala(twin, x0, K, eta, s, 5, trace=True, **kw)
    prev = x0
    for k in range(1, K + 1):
        x, info = nd.langevin_sample(energy, x0, steps=k, step_size=eta, noise_scale=s, mala=True, seed=5,
                                     return_info=True, **kw)
        # a chain moves exactly when its proposal is accepted (a proposal equal to x has probability 0)
        moved = np.any(x != prev, axis=1)
        np.testing.assert_array_equal(moved, decisions[k - 1], err_msg=f"accept decisions of step {k}")
        prev = x
    x_ref, acc_ref = ref.mala(twin, x0, K, eta, s, 5, **kw)
    np.testing.assert_allclose(x, x_ref, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.rint(info["acceptance"] * K).astype(int), acc_ref)
    assert info["acceptance_rate"] == pytest.approx(acc_ref.sum() / (K * len(x0)))
    n_acc = acc_ref.sum()
    assert 0 < n_acc < K * len(x0)  # both outcomes exercised


def test_ebm_sampler_matches_twin(rng):
    # the MLP energy runs inside the C loop; the twin evaluates the same network in NumPy
    ebm = nd.EBM(3, hidden_sizes=(8, 5), activation="silu", seed=4, dtype=np.float64)
    twin = lambda x: ref.mlp_energy(ebm.params, x, 2, "silu")
    x0 = rng.uniform(-1, 1, (6, 3))
    x = nd.langevin_sample(ebm, x0, steps=5, step_size=0.2, noise_scale=0.3, seed=9, grad_clip=0.5)
    np.testing.assert_allclose(x, ref.langevin(twin, x0, 5, 0.2, 0.3, 9, grad_clip=0.5), rtol=0, atol=1e-12)
    x, info = nd.langevin_sample(ebm, x0, steps=8, step_size=0.5, noise_scale=0.3, seed=9, mala=True, return_info=True)
    x_ref, acc = ref.mala(twin, x0, 8, 0.5, 0.3, 9)
    np.testing.assert_allclose(x, x_ref, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.rint(info["acceptance"] * 8).astype(int), acc)


def test_gmm_and_double_well_samplers_match_twin(rng):
    means = rng.standard_normal((3, 2))
    covs = np.stack([random_spd(rng, 2, 0.3) for _ in range(3)])
    w = np.array([0.2, 0.3, 0.5])
    cases = [(nd.energies.GaussianMixture(means, covs, w), lambda x: ref.gmm(x, means, covs, w), 2),
             (nd.energies.DoubleWell(1.5, 0.4, dim=2), lambda x: ref.double_well(x, 1.5, 0.4), 2)]
    for energy, twin, d in cases:
        x0 = rng.uniform(-1.5, 1.5, (5, d))
        x = nd.langevin_sample(energy, x0, steps=6, step_size=0.05, noise_scale=0.7, seed=3)
        np.testing.assert_allclose(x, ref.langevin(twin, x0, 6, 0.05, 0.7, 3), rtol=0, atol=1e-12)
        x = nd.langevin_sample(energy, x0, steps=6, step_size=0.3, noise_scale=0.7, seed=3, mala=True)
        np.testing.assert_allclose(x, ref.mala(twin, x0, 6, 0.3, 0.7, 3)[0], rtol=0, atol=1e-12)


def test_zero_noise_is_gradient_descent(rng):
    energy, twin, x0 = _quad_setup(rng)
    x = nd.langevin_sample(energy, x0, steps=400, step_size=0.5, noise_scale=0.0, seed=1)
    # noise 0: x <- x - (eta/2) P (x - m), a contraction to the mean
    np.testing.assert_allclose(x, np.broadcast_to(energy.mean, x.shape), atol=1e-10)
    np.testing.assert_allclose(nd.langevin_sample(energy, x0, steps=4, step_size=0.5, noise_scale=0.0),
                               ref.langevin(twin, x0, 4, 0.5, 0.0, 0), rtol=0, atol=1e-13)


def test_callable_energy_path_equals_builtin(rng):
    # the same energy through the Python-callback route gives the same bits
    energy, _, x0 = _quad_setup(rng)
    kw = dict(steps=7, step_size=0.4, noise_scale=0.9, seed=21)
    for mala in (False, True):
        a = nd.langevin_sample(energy, x0, mala=mala, **kw)
        b = nd.langevin_sample(lambda x: energy(x), x0, mala=mala, **kw)
        np.testing.assert_array_equal(a, b)


def test_float32_matches_twin(rng):
    energy, twin, x0 = _quad_setup(rng)
    x0 = x0.astype(np.float32)
    x = nd.langevin_sample(energy, x0, steps=5, step_size=0.3, noise_scale=0.8, seed=2)
    assert x.dtype == np.float32
    # float32 rounding of a few dozen O(1) operations
    np.testing.assert_allclose(x, ref.langevin(twin, x0, 5, 0.3, 0.8, 2), rtol=0, atol=2e-5)
    x = nd.langevin_sample(energy, x0.astype(np.float64), steps=5, step_size=0.3, noise_scale=0.8, seed=2,
                           dtype=np.float32)
    assert x.dtype == np.float32


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layouts_and_input_not_modified(rng, layout):
    energy, _, x0 = _quad_setup(rng)
    expect = nd.langevin_sample(energy, x0, steps=4, step_size=0.3, noise_scale=0.8, seed=2)
    xin = as_layout(x0, layout)
    before = np.array(xin, copy=True)
    got = nd.langevin_sample(energy, xin, steps=4, step_size=0.3, noise_scale=0.8, seed=2)
    np.testing.assert_array_equal(got, expect)
    np.testing.assert_array_equal(xin, before)


def test_x0_as_chain_count():
    dw = nd.energies.DoubleWell(dim=3)
    x = nd.langevin_sample(dw, 500, steps=0, seed=4)
    # steps=0 returns the start: U[-1, 1) of the energy's dimension, float64 for analytic energies
    assert x.shape == (500, 3) and x.dtype == np.float64
    assert x.min() >= -1 and x.max() < 1
    assert abs(x.mean()) < Z * math.sqrt(1 / 3 / x.size)
    np.testing.assert_array_equal(x, nd.langevin_sample(dw, 500, steps=0, seed=4))
    ebm = nd.EBM(2, hidden_sizes=(4,), seed=0)
    s = ebm.sample(7, steps=3, seed=1)
    assert s.shape == (7, 2) and s.dtype == np.float32
    np.testing.assert_array_equal(s, nd.langevin_sample(ebm, 7, steps=3, seed=1))


def test_zero_chains():
    q = nd.energies.Quadratic([0.0, 0.0], np.eye(2))
    assert nd.langevin_sample(q, np.zeros((0, 2)), steps=3, seed=1).shape == (0, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_property_random_shapes_match_twin(dtype):
    hyp = pytest.importorskip("hypothesis")
    st = hyp.strategies

    @hyp.given(B=st.integers(1, 9), d=st.integers(1, 5), steps=st.integers(0, 4), seed=st.integers(0, 2**62),
               layout=st.sampled_from(LAYOUTS), mala=st.booleans())
    def check(B, d, steps, seed, layout, mala):
        r = np.random.default_rng(seed % 1000)
        P, m = random_spd(r, d), r.standard_normal(d)
        x0 = r.uniform(-2, 2, (B, d)).astype(dtype)
        energy = nd.energies.Quadratic(m, P)
        twin = lambda x: ref.quadratic(x, m, P)
        kw = dict(steps=steps, step_size=0.2, noise_scale=0.7, seed=seed)
        x = nd.langevin_sample(energy, as_layout(x0, layout), mala=mala, **kw)
        assert x.dtype == dtype and x.shape == (B, d)
        want = ref.mala(twin, x0, steps, 0.2, 0.7, seed)[0] if mala else ref.langevin(twin, x0, steps, 0.2, 0.7, seed)
        # float32: a MALA decision on a knife edge could flip; the tolerance is for rounding only,
        # and at acceptance ~0.9 with 5 steps no knife edge occurs for these seeds
        np.testing.assert_allclose(x, want, rtol=0, atol=1e-12 if dtype == np.float64 else 3e-5)

    check()


# ---- statistics: the chains sample exp(-E / s^2) ---------------------------------------------

def _assert_moments(x, mean, cov, what):
    """Sample mean and covariance of N independent draws against the truth, within Z standard
    errors: se(mean_i) = sqrt(C_ii / N), se(cov_ij) = sqrt((C_ii C_jj + C_ij^2) / N) (Gaussian)."""
    n = len(x)
    se_m = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(x.mean(0) - mean) < Z * se_m), (what, x.mean(0), mean, se_m)
    se_c = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    S = np.cov(x.T)
    assert np.all(np.abs(S - cov) < Z * se_c), (what, S, cov, se_c)


def test_langevin_stationary_gaussian():
    # 4000 chains, noise 1, step 0.02, 1500 steps (the slowest mode relaxes by
    # (1 - eta/2 lambda_min)^1500 ~ e^-10). The unadjusted chain's stationary law is exactly
    # N(m, s^2 (P - (eta/4) P^2)^-1) for a Gaussian target, within 1 % of N(m, C) here:
    # checked against both, the exact one within Monte-Carlo error (se of a variance 2.2 %).
    m, C, P = quad_problem()
    eta = 0.02
    x = nd.langevin_sample(nd.energies.Quadratic(m, P), np.zeros((4000, 2)), steps=1500, step_size=eta,
                           noise_scale=1.0, seed=1)
    _assert_moments(x, m, np.linalg.inv(P - eta / 4 * P @ P), "ULA vs its discrete stationary law")
    _assert_moments(x, m, C, "ULA vs the target")


@pytest.mark.parametrize("s, grad_clip", [(1.0, None), (0.5, None), (1.0, 0.8)])
def test_mala_stationary_gaussian(s, grad_clip):
    # MALA is exact at any step: eta 0.5 (far too coarse for plain Langevin's bias to vanish),
    # 4000 chains, 300 steps. Target exp(-E/s^2) = N(m, s^2 C): the temperature must show.
    # A clipped drift is still an exact MH proposal, so the law is the same with grad_clip.
    m, C, P = quad_problem()
    x, info = nd.langevin_sample(nd.energies.Quadratic(m, P), np.zeros((4000, 2)), steps=300, step_size=0.5,
                                 noise_scale=s, grad_clip=grad_clip, mala=True, seed=1, return_info=True)
    _assert_moments(x, m, s * s * C, f"MALA s={s} clip={grad_clip}")
    # measured 0.82 without clipping; a Gaussian target at this step should neither reject
    # nearly everything nor accept everything (which would mean no MH test at all)
    assert 0.5 < info["acceptance_rate"] < 0.97
    assert info["acceptance"].shape == (4000,) and np.all((info["acceptance"] >= 0) & (info["acceptance"] <= 1))
    assert info["acceptance_rate"] == pytest.approx(info["acceptance"].mean())


def test_mala_acceptance_falls_with_step():
    m, C, P = quad_problem()
    q = nd.energies.Quadratic(m, P)
    rates = [nd.langevin_sample(q, np.zeros((500, 2)), steps=100, step_size=eta, noise_scale=1.0, mala=True,
                                seed=3, return_info=True)[1]["acceptance_rate"] for eta in (0.05, 0.5, 2.0, 4.0)]
    assert rates[0] > 0.97 and all(a > b for a, b in zip(rates, rates[1:])) and rates[-1] < 0.3, rates


def test_mala_double_well_occupancy_matches_quadrature():
    # Tilted well E = (x^2 - 1)^2 + 0.3 x at s = 0.7 (T = 0.49, barrier/T ~ 2). The Boltzmann
    # weight of x < 0 is 0.743 by quadrature; at T = 1 it would be 0.62 and from the U[-1, 1)
    # start it is 0.5, so neither a wrong temperature nor an unmixed chain passes.
    # 10 000 chains: se = sqrt(p (1 - p) / N) = 0.0044.
    tilt, s = 0.3, 0.7
    T = s * s
    w = lambda v: math.exp(-((v * v - 1) ** 2 + tilt * v) / T)
    neg = scipy.integrate.quad(w, -np.inf, 0)[0]
    pos = scipy.integrate.quad(w, 0, np.inf)[0]
    p = neg / (neg + pos)
    n = 10_000
    x0 = np.random.default_rng(0).uniform(-1, 1, (n, 1))
    x, info = nd.langevin_sample(nd.energies.DoubleWell(1.0, tilt), x0, steps=800, step_size=0.1, noise_scale=s,
                                 mala=True, seed=2, return_info=True)
    assert abs((x < 0).mean() - p) < Z * math.sqrt(p * (1 - p) / n), ((x < 0).mean(), p)
    # the mean of x as a second, independent check of the whole density (quadrature again)
    mean = scipy.integrate.quad(lambda v: v * w(v), -np.inf, np.inf)[0] / (neg + pos)
    var = scipy.integrate.quad(lambda v: (v - mean) ** 2 * w(v), -np.inf, np.inf)[0] / (neg + pos)
    assert abs(x.mean() - mean) < Z * math.sqrt(var / n)
    assert 0.5 < info["acceptance_rate"] < 1.0


def test_mala_gmm_component_occupancy_matches_weights():
    # Mean responsibility is an unbiased estimate of the weights: E_p[r_k(x)] = w_k exactly for
    # x from the mixture, and var r_k <= w_k (1 - w_k), so se <= sqrt(w (1 - w) / N).
    # Components 2.5 apart (sd 0.7) so that chains cross between them; 4000 chains, 800 steps.
    means = np.array([[0.0, 0.0], [2.5, 0.0], [0.0, 2.5]])
    covs = np.stack([0.5 * np.eye(2)] * 3)
    w = np.array([0.2, 0.3, 0.5])
    n = 4000
    x0 = np.random.default_rng(1).uniform(-1, 1, (n, 2))  # all near component 0: occupancy must move
    x = nd.langevin_sample(nd.energies.GaussianMixture(means, covs, w), x0, steps=800, step_size=0.3,
                           noise_scale=1.0, mala=True, seed=3)
    logs = np.stack([scipy.stats.multivariate_normal(means[k], covs[k]).logpdf(x) + math.log(w[k])
                     for k in range(3)], axis=1)
    resp = np.exp(logs - scipy.special.logsumexp(logs, axis=1, keepdims=True))
    assert np.all(np.abs(resp.mean(0) - w) < Z * np.sqrt(w * (1 - w) / n)), (resp.mean(0), w)


# ---- gradients against finite differences ---------------------------------------------------

def _fd_input_grad(f, x, h=1e-6):
    """Central differences of the energies f(x) (B,) in every input coordinate."""
    g = np.zeros_like(x)
    for j in range(x.shape[1]):
        e = np.zeros_like(x)
        e[:, j] = h
        g[:, j] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def _assert_grad(analytic, fd, floor):
    # relative error below 1e-6, with an absolute floor for entries near zero (central
    # differences at h = 1e-6 leave ~1e-10 of truncation and rounding)
    err = np.abs(analytic - fd) / np.maximum(np.abs(fd), floor)
    assert err.max() < 1e-6, err.max()


def _energies(rng):
    d = 3
    means = rng.standard_normal((3, d))
    covs = np.stack([random_spd(rng, d, 0.4) for _ in range(3)])
    return {
        "quadratic": nd.energies.Quadratic(rng.standard_normal(d), random_spd(rng, d)),
        "gmm": nd.energies.GaussianMixture(means, covs, [0.5, 0.2, 0.3]),
        "double_well": nd.energies.DoubleWell(barrier=1.7, tilt=-0.4, dim=d),
        "ebm_silu": nd.EBM(d, hidden_sizes=(7, 5), seed=3, dtype=np.float64),
        "ebm_tanh": nd.EBM(d, hidden_sizes=(6,), activation="tanh", seed=3, dtype=np.float64),
        "ebm_lecun": nd.EBM(d, hidden_sizes=(6, 6, 4), activation="lecun_tanh", seed=3, dtype=np.float64),
        "ebm_linear": nd.EBM(d, hidden_sizes=(), seed=3, dtype=np.float64),
    }


@pytest.mark.parametrize("name", ["quadratic", "gmm", "double_well", "ebm_silu", "ebm_tanh", "ebm_lecun",
                                  "ebm_linear"])
def test_input_gradient_finite_differences(rng, name):
    energy = _energies(rng)[name]
    x = rng.uniform(-1.5, 1.5, (6, 3))
    if isinstance(energy, nd.EBM):
        f, g = energy.energy, energy.energy_grad(x)
    else:
        f, g = (lambda v: energy(v)[0]), energy(x)[1]
    _assert_grad(g, _fd_input_grad(f, x), floor=1e-3)


def test_energies_match_twins(rng):
    e = _energies(rng)
    x = rng.uniform(-2, 2, (9, 3))
    q = e["quadratic"]
    for (E, g), (Er, gr) in [(q(x), ref.quadratic(x, q.mean, q.precision)),
                             (e["gmm"](x), ref.gmm(x, e["gmm"].means, e["gmm"].covs, e["gmm"].weights)),
                             (e["double_well"](x), ref.double_well(x, 1.7, -0.4))]:
        np.testing.assert_allclose(E, Er, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g, gr, rtol=1e-12, atol=1e-12)
    ebm = e["ebm_silu"]
    E, g = ref.mlp_energy(ebm.params, x, 2, "silu")
    np.testing.assert_allclose(ebm.energy(x), E, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ebm.energy_grad(x), g, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ebm(x), E, rtol=1e-12, atol=1e-12)
    # the documented closed forms at hand-checked points
    E, g = nd.energies.Quadratic([1.0, 0.0], np.eye(2))(np.array([[2.0, 0.0]]))
    assert E[0] == 0.5 and g.tolist() == [[1.0, 0.0]]
    E, g = nd.energies.DoubleWell(barrier=2.0, tilt=0.5)([[1.0], [0.0]])
    assert E.tolist() == [0.5, 2.0] and g.ravel().tolist() == [0.5, 0.5]


def test_gmm_far_from_every_component_is_finite(rng):
    # log-sum-exp must be shifted: at distance 40 every exp(-q/2) underflows to 0
    means = np.array([[0.0, 0.0], [1.0, 1.0]])
    covs = np.stack([0.1 * np.eye(2)] * 2)
    g = nd.energies.GaussianMixture(means, covs)
    x = np.array([[40.0, -30.0], [-25.0, 33.0]])
    E, G = g(x)
    Er, Gr = ref.gmm(x, means, covs)
    assert np.all(np.isfinite(E)) and np.all(np.isfinite(G))
    np.testing.assert_allclose(E, Er, rtol=1e-12)
    np.testing.assert_allclose(G, Gr, rtol=1e-10)


@pytest.mark.parametrize("activation, hidden", [("silu", (4, 3)), ("tanh", (5,)), ("softplus", (3, 3)),
                                                ("sigmoid", (4,)), ("lecun_tanh", (3, 4))])
def test_cd_param_gradient_finite_differences(rng, activation, hidden):
    ebm = nd.EBM(3, hidden_sizes=hidden, activation=activation, seed=1, dtype=np.float64)
    xr, xn = rng.standard_normal((6, 3)), rng.standard_normal((5, 3)) * 1.5
    alpha = 0.1  # large enough that the regulariser's share of the gradient is tested too
    loss, grads = ebm.cd_loss_and_grad(xr, xn, alpha)
    assert loss == pytest.approx(nd.contrastive_divergence_loss(ebm.energy(xr), ebm.energy(xn), alpha), rel=1e-13)
    assert set(grads) == set(ebm.params)
    worst = 0.0
    for name, p in ebm.params.items():
        assert grads[name].shape == p.shape
        for i in np.ndindex(p.shape):  # every entry
            v = p[i]
            h = 1e-5 * max(1.0, abs(v))
            p[i] = v + h
            up = nd.contrastive_divergence_loss(ebm.energy(xr), ebm.energy(xn), alpha)
            p[i] = v - h
            down = nd.contrastive_divergence_loss(ebm.energy(xr), ebm.energy(xn), alpha)
            p[i] = v
            fd = (up - down) / (2 * h)
            # floor 1e-3: entries that small are compared absolutely at 1e-9 (measured errors
            # are ~1e-9 relative on the O(0.1) entries)
            worst = max(worst, abs(grads[name][i] - fd) / max(abs(fd), 1e-3))
    assert worst < 1e-6, worst


# ---- training: eight Gaussians ----------------------------------------------------------------

def test_ebm_learns_eight_gaussians(set_threads):
    # A tanh (64, 64) EBM, 80 epochs of CD with a replay buffer on 2000 points (~5 s).
    # Sampler: step 0.05, noise 0.1 (temperature s^2 = 0.01; per-step noise 0.022, i.e. a
    # sixth of a mode's sd 0.14), clamp to the box [-3, 3]^2 that holds the ring of radius 2.
    # Sample quality: unbiased squared MMD, Gaussian kernel of bandwidth 0.5 (a third of the
    # 1.5 gap between neighbouring modes), 1000 samples against 1000 held-out points.
    # Measured (three model/fit seeds): 0.006-0.013 trained; untrained 0.25-0.32; two data
    # draws -0.001. Threshold 0.03 leaves >2x margin for another BLAS's float32 rounding.
    nd.set_num_threads(1)  # thread count does not change results (tested below); speed only
    X = ref.eight_gaussians(2000, np.random.default_rng(0)).astype(np.float32)
    held_out = ref.eight_gaussians(1000, np.random.default_rng(1))
    lv = dict(step_size=0.05, noise_scale=0.1, clamp=(-3.0, 3.0))
    ebm = nd.EBM(2, hidden_sizes=(64, 64), activation="tanh", seed=0)
    untrained = ebm.sample(1000, steps=120, seed=3, **lv)
    hist = ebm.fit(X, epochs=80, lr=3e-3, batch_size=128, reg_alpha=0.01, langevin=dict(steps=40, **lv), seed=1,
                   verbose=False).history_
    assert len(hist["loss"]) == 80 and np.all(np.isfinite(hist["loss"]))
    samples = ebm.sample(1000, steps=120, seed=3, **lv)
    mmd_trained, mmd_untrained = ref.mmd2(samples, held_out, 0.5), ref.mmd2(untrained, held_out, 0.5)
    assert mmd_trained < 0.03, mmd_trained
    assert mmd_trained < 0.1 * mmd_untrained, (mmd_trained, mmd_untrained)
    # and the modes, not just the ring: most samples within 0.3 (~2 sd) of a centre (data 0.89,
    # measured 0.88-0.91; a uniform ring of the same radius gives ~0.38), every mode populated
    centres = 2 * np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], axis=1)
    d2 = ((samples[:, None, :] - centres[None]) ** 2).sum(-1)
    assert (d2.min(1) < 0.3**2).mean() > 0.75
    assert np.bincount(d2.argmin(1), minlength=8).min() > 0.05 * len(samples)


def test_fit_changes_params_and_validates(rng):
    ebm = nd.EBM(2, hidden_sizes=(8,), seed=0)
    before = {k: v.copy() for k, v in ebm.params.items()}
    x = rng.standard_normal((64, 2)).astype(np.float32)
    hist = ebm.fit(x, epochs=2, batch_size=32, langevin=dict(steps=5, step_size=0.05, noise_scale=0.1), seed=0,
                   verbose=False).history_
    assert set(hist) >= {"loss", "batch_loss", "time"} and len(hist["loss"]) == 2 and len(hist["batch_loss"]) == 4
    assert all(not np.array_equal(before[k], ebm.params[k]) for k in before)
    # the same seed trains to the same bits
    again = nd.EBM(2, hidden_sizes=(8,), seed=0)
    again.fit(x, epochs=2, batch_size=32, langevin=dict(steps=5, step_size=0.05, noise_scale=0.1), seed=0,
              verbose=False)
    for k in before:
        np.testing.assert_array_equal(again.params[k], ebm.params[k])
    with pytest.raises(ValueError, match="reinit_prob"):
        ebm.fit(x, epochs=1, reinit_prob=1.5, verbose=False)
    with pytest.raises(ValueError, match="replay_buffer"):
        ebm.fit(x, epochs=1, replay_buffer=0, verbose=False)
    with pytest.raises(ValueError, match=r"\bx\b"):
        ebm.fit(np.zeros((5, 3)), epochs=1, verbose=False)


# ---- reproducibility ---------------------------------------------------------------------------

@pytest.mark.parametrize("mala", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_seed_same_bits_any_threads(set_threads, mala, dtype):
    # The noise is counter-based, so analytic energies and Python callables give the same
    # chains for 1 and 2 BLAS threads; every energy (the EBM too) gives the same chains on
    # repeated calls at a fixed thread count. (The EBM across thread counts: see below.)
    ebm = nd.EBM(2, hidden_sizes=(64, 64), seed=0, dtype=dtype)
    q = nd.energies.Quadratic([0.1, 0.2], [[2.0, 0.3], [0.3, 1.0]])
    gmm = nd.energies.GaussianMixture([[0.0, 0.0], [1.0, 0.5]], [np.eye(2), 0.5 * np.eye(2)])
    x0 = np.random.default_rng(0).uniform(-1, 1, (512, 2)).astype(dtype)
    kw = dict(steps=15, step_size=0.1, noise_scale=0.1, mala=mala, seed=5)
    runs = {}
    for n in (1, 2, 1, 2):
        nd.set_num_threads(n)
        assert nd.get_num_threads() == n
        for name, energy in (("quad", q), ("gmm", gmm), ("callable", lambda x: q(x)), ("ebm", ebm)):
            runs.setdefault((name, n), []).append(nd.langevin_sample(energy, x0, **kw))
    for (name, n), outs in runs.items():
        np.testing.assert_array_equal(outs[1], outs[0], err_msg=f"{name}, {n} threads, repeated call")
        if name != "ebm":
            np.testing.assert_array_equal(outs[0], runs[(name, 1)][0], err_msg=f"{name}, 1 vs {n} threads")
    other = nd.langevin_sample(ebm, x0, **dict(kw, seed=6))
    assert np.mean(other != runs[("ebm", 1)][0]) > 0.9


def test_ebm_same_bits_any_threads(set_threads):
    # measured: float32 at 512 chains, ~180 of 512 gradient rows differ; float64 at 129 chains,
    # rows 32 and 128 differ; sampled chains differ in ~50 of 512 rows after 15 steps
    diffs = []
    for dtype, B in ((np.float32, 512), (np.float64, 129), (np.float64, 512)):
        ebm = nd.EBM(2, hidden_sizes=(64, 64), seed=0, dtype=dtype)
        x0 = np.random.default_rng(0).uniform(-1, 1, (B, 2)).astype(dtype)
        out = {}
        for n in (1, 2):
            nd.set_num_threads(n)
            out[n] = (ebm.energy(x0), ebm.energy_grad(x0),
                      nd.langevin_sample(ebm, x0, steps=15, step_size=0.1, noise_scale=0.1, seed=5))
        diffs += [f"{np.dtype(dtype).name} B={B} {what}" for what, a, b in zip(("E", "grad", "chains"), out[1], out[2])
                  if not np.array_equal(a, b)]
    assert not diffs, diffs


def test_seed_forms():
    q = nd.energies.Quadratic([0.0, 0.0], np.eye(2))
    x0 = np.zeros((20, 2))
    a = nd.langevin_sample(q, x0, steps=3, seed=np.random.default_rng(8))
    b = nd.langevin_sample(q, x0, steps=3, seed=np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    g = np.random.default_rng(8)
    c, d = nd.langevin_sample(q, x0, steps=3, seed=g), nd.langevin_sample(q, x0, steps=3, seed=g)
    np.testing.assert_array_equal(c, a)
    assert not np.array_equal(c, d)  # a Generator moves on
    assert not np.array_equal(nd.langevin_sample(q, x0, steps=3, seed=np.int64(1)),
                              nd.langevin_sample(q, x0, steps=3, seed=2))
    e, f = nd.langevin_sample(q, x0, steps=3), nd.langevin_sample(q, x0, steps=3)
    assert not np.array_equal(e, f)  # seed=None draws fresh entropy


# ---- bad input ----------------------------------------------------------------------------------

Q2 = nd.energies.Quadratic([0.0, 0.0], np.eye(2))


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(x0=np.zeros((3, 3))), ValueError, r"x0 has dimension 3.*2"),
    (dict(x0=np.zeros(3)), ValueError, r"x0 must have shape"),
    (dict(x0=np.array([[0.0, np.nan]])), ValueError, r"x0 contains NaN"),
    (dict(x0=np.array([[np.inf, 0.0]])), ValueError, r"x0 contains NaN or inf"),
    (dict(x0=np.zeros((3, 2), complex)), TypeError, r"x0 has dtype complex"),
    (dict(x0=0), ValueError, r"x0 must be >= 1"),
    (dict(step_size=0.0), ValueError, r"step_size must be > 0"),
    (dict(step_size=-1.0), ValueError, r"step_size must be > 0.*-1"),
    (dict(step_size=float("nan")), ValueError, r"step_size must be > 0 and finite"),
    (dict(steps=-1), ValueError, r"steps must be >= 0"),
    (dict(noise_scale=-0.1), ValueError, r"noise_scale must be >= 0"),
    (dict(clamp=(1.0, 1.0)), ValueError, r"clamp must have min < max"),
    (dict(clamp=(2.0, -1.0)), ValueError, r"clamp must have min < max"),
    (dict(clamp=(0.0, 1.0, 2.0)), ValueError, r"clamp must be \(min, max\)"),
    (dict(clamp=(0.0, float("nan"))), ValueError, r"clamp\[1\] must be finite"),
    (dict(grad_clip=0.0), ValueError, r"grad_clip must be > 0"),
    (dict(mala=True, noise_scale=0.0), ValueError, r"noise_scale must be > 0 with mala=True"),
    (dict(seed=-1), ValueError, r"seed must be >= 0"),
    (dict(seed=1.5), TypeError, r"seed must be an integer"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_sampler_bad_arguments(kwargs, exc, match):
    kw = dict(x0=np.zeros((3, 2)), steps=2)
    kw.update(kwargs)
    x0 = kw.pop("x0")
    with pytest.raises(exc, match=match):
        nd.langevin_sample(Q2, x0, **kw)


def test_energy_argument_checked():
    with pytest.raises(TypeError, match="energy must be an EBM"):
        nd.langevin_sample("quadratic", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="x0 as a number of chains needs an energy"):
        nd.langevin_sample(lambda x: (x[:, 0], x), 3)
    ebm = nd.EBM(2, hidden_sizes=(4,), seed=0)
    with pytest.raises(ValueError, match=r"x0 has dimension 3, the energy 2"):
        ebm.sample(3, x0=np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"x has shape \(3, 3\)"):
        ebm.energy(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"x contains NaN"):
        ebm.energy_grad(np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match=r"x_real has shape"):
        ebm.cd_loss_and_grad(np.zeros((3, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"x_neg has shape"):
        ebm.cd_loss_and_grad(np.zeros((3, 2)), np.zeros((3, 1)))


@pytest.mark.parametrize("fn, exc, match", [
    (lambda x: (np.zeros(len(x) + 1), x), ValueError, r"returned energy has shape"),
    (lambda x: (np.zeros((len(x), 1)), x), ValueError, r"returned energy has shape"),
    (lambda x: (np.zeros(len(x)), x[:, :1]), ValueError, r"returned gradient has shape"),
    (lambda x: [np.zeros(len(x)), x], TypeError, r"must return a tuple \(E, grad\)"),
    (lambda x: np.zeros(len(x)), TypeError, r"must return a tuple"),
    (lambda x: (np.zeros(len(x)), x, x), TypeError, r"must return a tuple"),
    (lambda x: (np.zeros(len(x)), x.astype(str)), TypeError, r"returned gradient has dtype"),
], ids=["E too long", "E 2-D", "grad narrow", "list", "array", "triple", "strings"])
@pytest.mark.parametrize("mala", [False, True])
def test_callable_bad_returns(fn, exc, match, mala):
    with pytest.raises(exc, match=match):
        nd.langevin_sample(fn, np.zeros((3, 2)), steps=2, noise_scale=0.1, mala=mala)


@pytest.mark.parametrize("mala", [False, True])
def test_exception_in_callable_propagates_unchanged(mala):
    class Boom(RuntimeError):
        pass

    err = Boom("raised inside the energy")
    calls = []

    def energy(x):
        calls.append(1)
        if len(calls) == 3:  # mid-run, not just on the first evaluation
            raise err
        return np.zeros(len(x)), np.zeros_like(x)

    with pytest.raises(Boom) as info:
        nd.langevin_sample(energy, np.zeros((2, 2)), steps=10, noise_scale=0.1, mala=mala, seed=0)
    assert info.value is err
    assert len(calls) == 3  # the run stopped at the failing evaluation


def test_nonfinite_chain_raises():
    # x^4 energy from far away with a large step: the ULA iteration overflows
    with pytest.raises(nd.IntegrationError, match="NaN or inf.*step_size"):
        nd.langevin_sample(nd.energies.DoubleWell(), np.full((3, 1), 1e10), step_size=1.0, steps=5, seed=0)
    with pytest.raises(nd.IntegrationError, match="NaN or inf"):
        nd.langevin_sample(lambda x: (np.zeros(len(x)), np.full_like(x, np.nan)), np.zeros((3, 2)), steps=2)


@pytest.mark.parametrize("make, match", [
    (lambda: nd.energies.Quadratic([0.0, 0.0], [[1.0, 0.0], [0.0, -1.0]]), r"precision must be positive definite"),
    (lambda: nd.energies.Quadratic([0.0, 0.0], [[1.0, 0.0], [0.0, 0.0]]), r"precision must be positive definite"),
    (lambda: nd.energies.Quadratic([0.0, 0.0], [[1.0, 2.0], [0.0, 1.0]]), r"precision must be symmetric"),
    (lambda: nd.energies.Quadratic([0.0, 0.0], np.eye(3)), r"precision must have shape \(2, 2\)"),
    (lambda: nd.energies.Quadratic([0.0, np.nan], np.eye(2)), r"mean contains NaN"),
    (lambda: nd.energies.GaussianMixture([[0.0, 0.0], [1.0, 1.0]], [np.eye(2), -np.eye(2)]),
     r"covs\[1\] must be positive definite"),
    (lambda: nd.energies.GaussianMixture([[0.0, 0.0]], [[[1.0, 1.0], [1.0, 1.0]]]), r"covs\[0\] must be positive"),
    (lambda: nd.energies.GaussianMixture([[0.0, 0.0]], np.eye(2)), r"covs must have 3 axes"),
    (lambda: nd.energies.GaussianMixture([[0.0, 0.0], [1.0, 1.0]], [np.eye(2)] * 2, [1.0, -1.0]), r"weights"),
    (lambda: nd.energies.DoubleWell(barrier=0.0), r"barrier must be > 0"),
    (lambda: nd.energies.DoubleWell(dim=0), r"dim must be >= 1"),
    (lambda: nd.EBM(0), r"input_size must be >= 1"),
    (lambda: nd.EBM(2, hidden_sizes=(4, 0)), r"hidden_sizes\[1\] must be >= 1"),
    (lambda: nd.EBM(2, activation="gelu"), r"activation='gelu'"),
    (lambda: nd.EBM(2, dropout=0.1), r"dropout must be 0"),
])
def test_energy_constructors_bad_input(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_cd_loss_bad_input():
    with pytest.raises(ValueError, match="must not be empty"):
        nd.contrastive_divergence_loss([], [1.0])
    with pytest.raises(ValueError, match=r"reg_alpha must be >= 0"):
        nd.contrastive_divergence_loss([1.0], [1.0], -1.0)


@pytest.mark.parametrize("energy", [nd.energies.DoubleWell(dim=1), Q2,
                                    nd.energies.GaussianMixture([[0.0, 0.0]], [np.eye(2)])],
                         ids=["double_well", "quadratic", "gmm"])
def test_energy_call_wrong_dimension_names_x(energy):
    with pytest.raises(ValueError, match=r"\bx\b.*(dimension|shape)"):
        energy(np.zeros((2, 3)))


# ---- save / load / pickle -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_pickle_bit_for_bit(tmp_path, rng, dtype):
    ebm = nd.EBM(3, hidden_sizes=(6, 5), activation="tanh", seed=2, dtype=dtype)
    # move the parameters off their initial values so a re-initialisation cannot pass
    ebm.fit(rng.standard_normal((32, 3)).astype(dtype), epochs=1, batch_size=16,
            langevin=dict(steps=3, step_size=0.05, noise_scale=0.1), seed=0, verbose=False)
    path = tmp_path / "ebm.npz"
    ebm.save(path)
    x = rng.standard_normal((4, 3)).astype(dtype)
    for other in (nd.load(path), pickle.loads(pickle.dumps(ebm))):
        assert type(other) is nd.EBM and other.config == ebm.config and repr(other) == repr(ebm)
        assert list(other.params) == list(ebm.params)
        for k, v in ebm.params.items():
            assert other.params[k].dtype == v.dtype
            np.testing.assert_array_equal(other.params[k], v)
        np.testing.assert_array_equal(other.energy(x), ebm.energy(x))
        np.testing.assert_array_equal(other.sample(5, steps=4, seed=1), ebm.sample(5, steps=4, seed=1))


def test_params_names_and_shapes():
    ebm = nd.EBM(3, hidden_sizes=(6, 5), seed=0)
    assert {k: v.shape for k, v in ebm.params.items()} == {
        "energy_dense_0.kernel": (3, 6), "energy_dense_0.bias": (6,),
        "energy_dense_1.kernel": (6, 5), "energy_dense_1.bias": (5,),
        "energy_output.kernel": (5, 1), "energy_output.bias": (1,)}
    assert all(v.dtype == np.float32 for v in ebm.params.values())
    assert np.all(ebm.params["energy_dense_0.bias"] == 0)  # docs/models.md notation: zero bias init
    assert "EBM" in repr(ebm)


@pytest.mark.parametrize("mala", [False, True])
@pytest.mark.parametrize("where", ["energy", "gradient"])
def test_a_python_energy_returning_nan_is_refused_at_that_evaluation(mala, where):
    """As a non-finite right-hand side stops odeint: the chains stop at the evaluation that
    returned NaN (with MALA it would otherwise reject every move silently)."""
    calls = []

    def energy(x):
        calls.append(1)
        E, g = 0.5 * (x * x).sum(axis=1), x.copy()
        if len(calls) == 4:
            (E if where == "energy" else g)[0] = np.nan
        return E, g

    with pytest.raises(nd.IntegrationError, match=f"NaN or inf in its {where} at evaluation 4") as info:
        nd.langevin_sample(energy, np.zeros((3, 2)), steps=10, step_size=0.1, noise_scale=0.1, mala=mala, seed=0)
    assert info.value.status == "nonfinite" and info.value.evaluation == 4
    assert len(calls) == 4

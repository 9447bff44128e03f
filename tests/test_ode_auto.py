"""method="auto" of nd.odeint: dopri5 per sample, switched to radau when Hairer's stiffness
test finds the sample stiff and back when the Jacobian's norm allows (csrc/nd_ode_auto.h).

- Van der Pol (mu = 1e3) and Robertson: the tight reference within the tolerance, at a small
  fraction of dopri5's evaluations;
- a non-stiff problem (Lorenz) never switches and gives dopri5's bits;
- a batch mixing stiff and non-stiff samples switches only the stiff ones, and every sample
  has the bits it has alone, in another order or in chunks.
"""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import neurodyn as nd
from test_ode_stiff import PROBLEMS, field_of, rober_batch, rober_rates, rober_rates_jac, scaled_error

pytest.importorskip("scipy.integrate")  # test_ode_stiff's references

KW = dict(return_info=True, verbose=False)


@pytest.mark.parametrize("name", ["vdp1e3", "robertson"])
def test_stiff_problems_match_the_reference_and_switch(name):
    f, jac, _, y0, t, rtol, atol = PROBLEMS[name]
    ys, info = nd.odeint(field_of(name), np.array(y0), t, method="auto", rtol=rtol, atol=atol, **KW)
    assert info["status"] == "success"
    radau, rinfo = nd.odeint(field_of(name), np.array(y0), t, method="radau", rtol=rtol, atol=atol, **KW)
    # within the tolerance of the tight reference, as radau itself is
    assert scaled_error(name, ys) <= 2 * max(scaled_error(name, radau), 1.0)
    assert info["switches"] >= 1
    by = info["accepted_by_method"]
    assert by["radau"] > 0 and by["dopri5"] > 0 and by["radau"] + by["dopri5"] == info["accepted"]
    assert info["nfev_by_method"]["radau"] + info["nfev_by_method"]["dopri5"] == info["nfev"]
    # the same through a Python right-hand side with its Jacobian, and with difference Jacobians
    py, pinfo = nd.odeint(f, np.array(y0), t, method="auto", jac=jac, rtol=rtol, atol=atol, **KW)
    assert scaled_error(name, py) <= 2 * max(scaled_error(name, radau), 1.0)
    fd = nd.odeint(f, np.array(y0), t, method="auto", rtol=rtol, atol=atol, verbose=False)
    assert scaled_error(name, fd) <= 4 * max(scaled_error(name, radau), 1.0)


@pytest.mark.parametrize("name, t_end", [("vdp1e3", 300.0), ("robertson", 40.0)])
def test_far_fewer_evaluations_than_dopri5(name, t_end):
    """Over an interval dopri5 can still cover (Robertson's 40 and a tenth of Van der Pol's
    period), at the stability limit all along the slow parts."""
    _, _, _, y0, _, rtol, atol = PROBLEMS[name]
    t = np.linspace(0.0, t_end, 11)
    field = field_of(name)
    ys, info = nd.odeint(field, np.array(y0), t, method="auto", rtol=rtol, atol=atol, **KW)
    ex, einfo = nd.odeint(field, np.array(y0), t, method="dopri5", rtol=rtol, atol=atol, max_steps=10**7, **KW)
    assert info["nfev"] + info["njev"] < einfo["nfev"] / 20, (info["nfev"], info["njev"], einfo["nfev"])
    scale = atol + rtol * np.abs(ex)
    assert np.max(np.abs(ys - ex) / scale) < 20  # two solutions within their tolerances


def lorenz_batch():
    return np.array([[1.0, 1.0, 1.0], [-3.0, 2.0, 20.0], [5.0, -5.0, 25.0], [0.1, 0.2, 0.3]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_non_stiff_problem_never_switches_and_equals_dopri5(dtype):
    y0 = lorenz_batch().astype(dtype)
    t = np.linspace(0.0, 3.0, 31)
    field = nd.fields.Lorenz()
    tight = (1e-8, 1e-10) if dtype == np.float64 else (1e-4, 1e-7)
    for rtol, atol in ((1e-3, 1e-6), tight):
        ys, info = nd.odeint(field, y0, t, method="auto", rtol=rtol, atol=atol, **KW)
        ex, einfo = nd.odeint(field, y0, t, method="dopri5", rtol=rtol, atol=atol, **KW)
        assert ys.dtype == dtype
        assert_array_equal(ys, ex)
        assert np.all(info["switches"] == 0) and np.all(info["method"] == "dopri5")
        assert_array_equal(info["nfev"], einfo["nfev"])
        assert_array_equal(info["accepted_by_method"]["radau"], 0)
        assert np.all(info["njev"] == 0) and info["total"]["phases"] == 1


def vdp_mu(t, y):
    """Van der Pol with each sample's mu in the state, y = (x, v, mu), mu' = 0; vectorised."""
    x, v, mu = np.moveaxis(y, -1, 0)
    return np.stack([v, mu * (1 - x * x) * v - x, np.zeros_like(x)], axis=-1)


def test_mixed_batch_switches_only_the_stiff_samples():
    mus = np.array([1e3, 1.0, 3e3, 0.5, 1e3, 2.0])
    y0 = np.stack([np.full(6, 2.0), np.zeros(6), mus], axis=1)
    t = np.linspace(0.0, 200.0, 9)
    kw = dict(method="auto", rtol=1e-6, atol=1e-8, verbose=False)
    ys, info = nd.odeint(vdp_mu, y0, t, return_info=True, **kw)
    stiff = mus >= 1e3
    assert np.all(info["switches"][stiff] >= 1) and np.all(info["switches"][~stiff] == 0)
    assert np.all(info["accepted_by_method"]["radau"][~stiff] == 0)
    assert np.all(info["accepted_by_method"]["radau"][stiff] > 0)
    # the non-stiff samples are dopri5's, bit for bit, whatever their batch mates
    ex = nd.odeint(vdp_mu, y0[~stiff], t, method="dopri5", rtol=1e-6, atol=1e-8, verbose=False)
    assert_array_equal(ys[:, ~stiff], ex)
    # every sample alone, in another order, in chunks
    for s in range(6):
        alone, one = nd.odeint(vdp_mu, y0[s], t, return_info=True, **kw)
        assert_array_equal(alone, ys[:, s])
        assert one["switches"] == info["switches"][s] and one["nfev"] == info["nfev"][s]
    order = np.array([3, 0, 5, 2, 4, 1])
    assert_array_equal(nd.odeint(vdp_mu, y0[order], t, **kw), ys[:, order])
    chunks = [nd.odeint(vdp_mu, c, t, **kw) for c in np.array_split(y0, [1, 4])]
    assert_array_equal(np.concatenate(chunks, axis=1), ys)


def test_robertson_batch_bit_identical_alone():
    y0 = rober_batch(24, seed=5)
    t = np.concatenate([[0.0], np.logspace(-5, 6, 12)])
    kw = dict(method="auto", jac=rober_rates_jac, rtol=1e-6, atol=1e-10, verbose=False)
    ys, info = nd.odeint(rober_rates, y0, t, return_info=True, **kw)
    assert np.all(info["status"] == "success") and np.all(info["switches"] >= 1)
    assert info["total"]["nfev"] == info["nfev"].sum() and info["total"]["njev"] == info["njev"].sum()
    for s in (0, 11, 23):
        assert_array_equal(nd.odeint(rober_rates, y0[s], t, **kw), ys[:, s])
    order = np.random.default_rng(0).permutation(24)
    assert_array_equal(nd.odeint(rober_rates, y0[order], t, **kw), ys[:, order])


def test_budget_covers_both_methods_and_failures_stay_per_sample():
    # a stiff sample (37 dopri5 and 11 radau steps accepted over [0, 300]) and one at rest
    y0 = np.array([[2.0, 0.0, 1e3], [0.0, 0.0, 1.0]])
    t = np.linspace(0.0, 300.0, 4)
    kw = dict(method="auto", rtol=1e-6, atol=1e-8, max_steps=45, verbose=False)
    ys, info = nd.odeint(vdp_mu, y0, t, on_failure="status", **kw)
    assert info["status"][0] == "max_steps" and info["status"][1] == "success"
    assert info["accepted"][0] + info["rejected"][0] == 45 and info["switches"][0] >= 1
    assert info["accepted_by_method"]["radau"][0] > 0
    assert np.all(np.isnan(ys[-1, 0])) and np.all(np.isfinite(ys[:, 1]))
    # the other sample is untouched by its mate's failure
    assert_array_equal(ys[:, 1], nd.odeint(vdp_mu, y0[1], t, **kw))
    with pytest.raises(nd.IntegrationError, match="max_steps"):
        nd.odeint(vdp_mu, y0, t, **kw)


def test_auto_rejects_events_and_dense_output():
    with pytest.raises(ValueError, match="dense_output is not available with method='auto'"):
        nd.odeint(lambda t, y: -y, np.ones(2), [0.0, 1.0], method="auto", dense_output=True, verbose=False)
    with pytest.raises(ValueError, match="events are not available with method='auto'"):
        nd.odeint(lambda t, y: -y, np.ones(2), [0.0, 1.0], method="auto", events=lambda t, y: y[0], verbose=False)

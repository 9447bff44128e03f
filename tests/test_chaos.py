"""The chaos family: the catalogue of chaotic flows (kind "flow") against NumPy twins and finite
differences, Lyapunov spectra against published values and the QR method written in NumPy, the
sum rule (the exponents sum to the mean divergence), maps, the Kaplan-Yorke dimension, and the
rules on bad input."""
import numpy as np
import pytest

import neurodyn as nd
import reference_chaos as ref

CATALOGUE = {"rossler": nd.fields.Rossler, "chen": nd.fields.Chen, "chua": nd.fields.Chua,
             "thomas": nd.fields.Thomas, "sprott_b": nd.fields.SprottB, "lorenz96": nd.fields.Lorenz96,
             "henon_heiles": nd.fields.HenonHeiles, "double_pendulum": nd.fields.DoublePendulum,
             "duffing": nd.fields.Duffing}


def _states(name, n, rng, B=6):
    y = rng.uniform(-2.0, 2.0, size=(B, n))
    if name == "chua":  # off the diode's kinks at |x| = 1, where the slope jumps
        y[:, 0] = np.where(np.abs(np.abs(y[:, 0]) - 1) < 0.05, 0.5, y[:, 0])
    return y


def test_catalogue_is_the_kernels_table():
    assert set(CATALOGUE) == set(nd.fields.SYSTEMS)
    assert "flow" in nd.fields.KINDS


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_flow_matches_numpy_twin(name):
    rng = np.random.default_rng(1)
    fn, n = ref.FLOWS[name]
    field = CATALOGUE[name]()
    assert field.dim == n
    y = _states(name, n, rng)
    for t in (0.0, 1.3):
        np.testing.assert_allclose(field(t, y), fn(t, y), rtol=1e-12, atol=1e-12)
    # float32 follows the input
    out32 = field(0.7, y.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, fn(0.7, y), rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_flow_jacobian_matches_finite_differences(name):
    rng = np.random.default_rng(2)
    _, n = ref.FLOWS[name]
    field = CATALOGUE[name]()
    y = _states(name, n, rng)
    J = field.jacobian(0.4, y)
    assert J.shape == (6, n, n)
    np.testing.assert_allclose(J, ref.fd_jacobian(field, 0.4, y), rtol=1e-6, atol=1e-6)


def test_flow_parameters_reach_the_kernel():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(4, 3))
    np.testing.assert_allclose(nd.fields.Rossler(0.1, 0.3, 9.0)(0.0, y), ref.rossler(0, y, 0.1, 0.3, 9.0), rtol=1e-13)
    np.testing.assert_allclose(nd.fields.Chua(9.0, 14.0, -1.0, -0.5)(0.0, y), ref.chua(0, y, 9.0, 14.0, -1.0, -0.5),
                               rtol=1e-13)
    y7 = rng.normal(size=(2, 7))
    np.testing.assert_allclose(nd.fields.Lorenz96(N=7, F=3.5)(0.0, y7), ref.lorenz96(0, y7, 3.5), rtol=1e-13)
    yd = rng.normal(size=(3, 4))
    pend = nd.fields.DoublePendulum(m1=2.0, m2=0.5, l1=1.5, l2=0.7, g=3.0)
    np.testing.assert_allclose(pend(0.0, yd), ref.double_pendulum(0, yd, 2.0, 0.5, 1.5, 0.7, 3.0), rtol=1e-12)
    duff = nd.fields.Duffing(delta=0.1, alpha=1.0, beta=0.5, gamma=2.0, omega=0.8)
    np.testing.assert_allclose(duff(2.0, yd[:, :2]), ref.duffing(2.0, yd[:, :2], 0.1, 1.0, 0.5, 2.0, 0.8), rtol=1e-12)


def test_trajectories_match_scipy_on_the_twins():
    """odeint over a catalogue field against SciPy's solve_ivp over the NumPy right-hand side."""
    from scipy.integrate import solve_ivp

    t = np.linspace(0.0, 2.0, 5)
    for name in ("rossler", "double_pendulum", "duffing", "henon_heiles"):
        field = CATALOGUE[name]()
        y0 = np.array(field.y0_ref, dtype=np.float64)
        fn = ref.FLOWS[name][0]
        sol = solve_ivp(lambda s, y: fn(s, y), (0.0, 2.0), y0, t_eval=t, rtol=1e-11, atol=1e-11, method="DOP853")
        ys = nd.odeint(field, y0, t, method="dop853", rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(ys, sol.y.T, rtol=1e-7, atol=1e-7)


def test_forced_flow_reads_each_rows_time():
    """Under the per-sample driver each sample of the Duffing oscillator keeps its own clock."""
    field = nd.fields.Duffing()
    y0 = np.array([[1.0, 0.0], [0.5, 0.2]])
    t = np.linspace(0.0, 3.0, 4)
    ys = nd.odeint(field, y0, t, method="dopri5", rtol=1e-10, atol=1e-10)
    for b in range(2):
        one = nd.odeint(field, y0[b], t, method="rk4", dt=1e-3)
        np.testing.assert_allclose(ys[:, b], one, rtol=1e-6, atol=1e-6)


def test_implicit_solvers_take_a_flow():
    field = nd.fields.Lorenz96(N=6, F=4.0)
    y0 = field.reference_state()
    t = np.linspace(0.0, 1.0, 3)
    a = nd.odeint(field, y0, t, method="radau", rtol=1e-9, atol=1e-9)
    b = nd.odeint(field, y0, t, method="dop853", rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_conserved_quantities():
    hh = nd.fields.HenonHeiles()
    y0 = np.array(hh.y0_ref)
    assert hh.energy(y0) == pytest.approx(0.125, abs=1e-14)
    ys = nd.odeint(hh, y0, np.linspace(0, 20, 3), method="dop853", rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(hh.energy(ys), 0.125, atol=1e-8)
    dp = nd.fields.DoublePendulum()
    ys = nd.odeint(dp, np.array(dp.y0_ref), np.linspace(0, 5, 3), method="dop853", rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(dp.energy(ys), dp.energy(np.array(dp.y0_ref)), atol=1e-7)


# ---- Lyapunov spectra ----------------------------------------------------------------------


def test_lorenz_spectrum_published():
    f = nd.fields.Lorenz()
    lam, info = nd.lyapunov_spectrum(f, f.y0_ref, t_transient=20, t_total=2000, dt=0.01, return_info=True)
    np.testing.assert_allclose(lam, f.reference_exponents, atol=0.02)
    assert info["divergence"] == pytest.approx(-(10 + 1 + 8 / 3), rel=1e-9)
    assert lam.sum() == pytest.approx(info["divergence"], rel=1e-3)


def test_rossler_spectrum_published():
    f = nd.fields.Rossler()
    lam = nd.lyapunov_spectrum(f, f.y0_ref, t_transient=100, t_total=4000, dt=0.02)
    np.testing.assert_allclose(lam, f.reference_exponents, atol=0.01)


def test_henon_map_spectrum_published():
    g = nd.chaos.Henon()
    lam, info = nd.lyapunov_spectrum_map(g, g.y0_ref, n_transient=1000, n_iter=200000, return_info=True)
    np.testing.assert_allclose(lam, g.reference_exponents, atol=0.005)
    assert lam.sum() == pytest.approx(np.log(0.3), abs=1e-10)
    assert info["divergence"] == pytest.approx(np.log(0.3), abs=1e-12)


def test_logistic_map_is_log_two():
    lam = nd.lyapunov_spectrum_map(nd.chaos.Logistic(), [0.3], n_iter=100000)
    assert lam[0] == pytest.approx(np.log(2), abs=5e-3)


def test_lorenz96_leading_exponent():
    f = nd.fields.Lorenz96(N=40, F=8.0)
    lam = nd.lyapunov_spectrum(f, f.reference_state(), n_exponents=3, t_transient=20, t_total=300, dt=0.01)
    assert lam.shape == (3,)
    assert lam[0] == pytest.approx(f.reference_exponents[0], rel=0.05)
    assert lam[0] >= lam[1] >= lam[2]


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_sum_rule_every_flow(name):
    """With k = n, sum lambda = the orbit's mean divergence (both over the same accumulation)."""
    f = CATALOGUE[name]() if name != "lorenz96" else nd.fields.Lorenz96(N=8)
    y0 = np.array(f.y0_ref)
    dt = 0.002 if name == "chen" else 0.01
    lam, info = nd.lyapunov_spectrum(f, y0, t_transient=10, t_total=100, dt=dt, return_info=True)
    div = info["divergence"]
    assert np.isfinite(lam).all() and np.all(np.diff(lam) <= 1e-9)
    # relative to the divergence, or to the exponents' scale for the conservative flows (div ~ 0)
    scale = max(abs(div), np.abs(lam).max())
    assert abs(lam.sum() - div) <= 1e-3 * scale


def test_published_exponents_of_the_catalogue():
    """SprottB and Chen against their published spectra (longer runs converge to them)."""
    for cls, dt, T in ((nd.fields.SprottB, 0.02, 3000), (nd.fields.Chen, 0.002, 400)):
        f = cls()
        lam = nd.lyapunov_spectrum(f, f.y0_ref, t_transient=50, t_total=T, dt=dt)
        np.testing.assert_allclose(lam, f.reference_exponents, atol=0.05)


def test_matches_numpy_qr_method():
    """The C kernel against the NumPy QR method (same RK4, same QR schedule) on a batch."""
    rng = np.random.default_rng(4)
    y0 = np.array([1.0, 1.0, 1.0]) + rng.normal(size=(3, 3))
    lam, info = nd.lyapunov_spectrum(nd.fields.Lorenz(), y0, t_transient=1.0, t_total=5.0, dt=0.01,
                                     return_info=True)
    want, div = ref.qr_spectrum(ref.lorenz, ref.lorenz_jac, y0, 0.01, 100, 500)
    np.testing.assert_allclose(lam, -np.sort(-want, axis=1), rtol=1e-9, atol=1e-9)  # rows sorted, largest first
    np.testing.assert_allclose(info["divergence"], div, rtol=1e-12)


def test_batch_shapes_and_partial_spectra():
    f = nd.fields.Lorenz()
    y0 = np.array([[1.0, 1.0, 1.0], [-3.0, 2.0, 20.0]])
    full = nd.lyapunov_spectrum(f, y0, t_transient=5, t_total=50)
    assert full.shape == (2, 3) and full.dtype == np.float64
    one = nd.lyapunov_spectrum(f, y0[1], t_transient=5, t_total=50)
    np.testing.assert_allclose(one, full[1], rtol=1e-12)
    lead = nd.lyapunov_spectrum(f, y0, n_exponents=2, t_transient=5, t_total=50)
    np.testing.assert_allclose(lead, full[:, :2], rtol=1e-9, atol=1e-12)
    assert nd.lyapunov_spectrum(f, np.empty((0, 3)), t_total=1.0).shape == (0, 3)


def test_qr_methods_agree():
    f = nd.fields.Lorenz96(N=10)
    y0 = f.reference_state()
    a = nd.lyapunov_spectrum(f, y0, t_transient=5, t_total=20, qr="householder")
    b = nd.lyapunov_spectrum(f, y0, t_transient=5, t_total=20, qr="gram_schmidt")
    np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_float32_follows_input():
    f = nd.fields.Lorenz()
    lam = nd.lyapunov_spectrum(f, np.array(f.y0_ref, dtype=np.float32), t_transient=10, t_total=500)
    assert lam.dtype == np.float64
    np.testing.assert_allclose(lam, f.reference_exponents, atol=0.1)


def test_tolerance_stops_early_and_orth_every():
    f = nd.fields.Lorenz()
    lam, info = nd.lyapunov_spectrum(f, f.y0_ref, t_transient=10, t_total=10000, tol=0.05, check_every=100,
                                     return_info=True)
    assert info["converged"] and info["t_accum"] < 10000 and info["change"] < 0.05
    assert info["steps"] == round(info["t_accum"] / 0.01)
    lam2, info2 = nd.lyapunov_spectrum(f, f.y0_ref, t_transient=10, t_total=300, orth_every=5, return_info=True)
    assert not info2["converged"] and info2["t_accum"] == pytest.approx(300)
    np.testing.assert_allclose(lam2, f.reference_exponents, atol=0.1)
    assert info2["y_end"].shape == (3,) and np.isfinite(info2["change"])


def test_python_callable_matches_builtin():
    f = nd.fields.Lorenz()
    y0 = np.array([[1.0, 1.0, 1.0], [2.0, 0.0, 10.0]])
    seen = []

    def rhs(t, y):
        seen.append(y.shape)
        return ref.lorenz(t, y)

    a = nd.lyapunov_spectrum(rhs, y0, jac=ref.lorenz_jac, t_transient=2, t_total=10)
    b = nd.lyapunov_spectrum(f, y0, t_transient=2, t_total=10)
    np.testing.assert_allclose(a, b, rtol=1e-10)
    assert seen[0] == (2, 3)


def test_mlp_field_and_neural_ode():
    rng = np.random.default_rng(5)
    W1, W2 = 0.8 * rng.normal(size=(3, 16)), 0.8 * rng.normal(size=(16, 3))
    mlp = nd.fields.MLP([W1, W2], [np.zeros(16), np.zeros(3)], activation="tanh")
    y0 = rng.normal(size=(2, 3))
    a, info = nd.lyapunov_spectrum(mlp, y0, t_transient=2, t_total=20, return_info=True)
    b = nd.lyapunov_spectrum(lambda t, y: mlp(t, y), y0, jac=lambda t, y: mlp.jacobian(t, y), t_transient=2,
                             t_total=20)
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.sum(axis=1), info["divergence"], rtol=1e-6, atol=1e-9)
    model = nd.NeuralODE(3, hidden_size=3, seed=0, dtype=np.float64)  # its field: dh/dt = f(h)
    h0 = rng.normal(size=(model.dynamics().dim,))
    np.testing.assert_allclose(nd.lyapunov_spectrum(model, h0, t_total=5),
                               nd.lyapunov_spectrum(model.dynamics(), h0, t_total=5), rtol=1e-12)


def test_callable_map_matches_builtin():
    g = nd.chaos.Henon()
    x0 = np.array([[0.1, 0.1], [0.2, -0.1]])
    # a short run: over thousands of iterations the orbits part at the rounding of a x^2
    a = nd.lyapunov_spectrum_map(ref.henon, x0, jac=ref.henon_jac, n_transient=0, n_iter=20)
    b = nd.lyapunov_spectrum_map(g, x0, n_transient=0, n_iter=20)
    np.testing.assert_allclose(a, b, rtol=1e-9)
    np.testing.assert_allclose(g(x0), ref.henon(x0), rtol=1e-15)
    np.testing.assert_allclose(g.jacobian(x0), ref.henon_jac(x0), rtol=1e-15)
    assert g.iterate(x0[0], 3).shape == (4, 2)


def test_kaplan_yorke():
    assert nd.kaplan_yorke_dimension([0.9056, 0.0, -14.5723]) == pytest.approx(2 + 0.9056 / 14.5723)
    assert nd.kaplan_yorke_dimension([0.4192, -1.6232]) == pytest.approx(1 + 0.4192 / 1.6232)
    assert nd.kaplan_yorke_dimension([-0.1, -1.0]) == 0.0
    assert nd.kaplan_yorke_dimension([0.2, 0.1]) == 2.0
    assert nd.kaplan_yorke_dimension([0.0, -1.0, 0.5]) == pytest.approx(2 + 0.5 / 1.0)  # sorted first
    np.testing.assert_allclose(nd.kaplan_yorke_dimension([[0.9, 0.0, -14.5], [-1.0, -2.0, -3.0]]),
                               [2 + 0.9 / 14.5, 0.0])
    with pytest.raises(ValueError):
        nd.kaplan_yorke_dimension([])


# ---- bad input -----------------------------------------------------------------------------


def test_bad_input_raises_clearly():
    f = nd.fields.Lorenz()
    y0 = np.array([1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="n_exponents must be between 1 and the state size"):
        nd.lyapunov_spectrum(f, y0, n_exponents=4)
    with pytest.raises(ValueError, match="dt must be finite and > 0"):
        nd.lyapunov_spectrum(f, y0, dt=0.0)
    with pytest.raises(ValueError, match="t_total must be finite and > 0"):
        nd.lyapunov_spectrum(f, y0, t_total=-1.0)
    with pytest.raises(ValueError, match="t_transient"):
        nd.lyapunov_spectrum(f, y0, t_transient=np.inf)
    with pytest.raises(ValueError, match="orth_every must be >= 1"):
        nd.lyapunov_spectrum(f, y0, orth_every=0)
    with pytest.raises(ValueError, match="tol must be finite and >= 0"):
        nd.lyapunov_spectrum(f, y0, tol=-1.0)
    with pytest.raises(ValueError, match="qr"):
        nd.lyapunov_spectrum(f, y0, qr="givens")
    with pytest.raises(ValueError, match="NaN or inf"):
        nd.lyapunov_spectrum(f, [1.0, np.nan, 1.0])
    with pytest.raises(ValueError, match="last axis of size 3"):
        nd.lyapunov_spectrum(f, [1.0, 1.0])
    with pytest.raises(ValueError, match=r"\(n,\) or \(B, n\)"):
        nd.lyapunov_spectrum(f, np.ones((2, 2, 3)))
    with pytest.raises(TypeError, match="needs jac"):
        nd.lyapunov_spectrum(ref.lorenz, y0)
    with pytest.raises(TypeError, match="jac is for a callable"):
        nd.lyapunov_spectrum(f, y0, jac=ref.lorenz_jac)
    with pytest.raises(ValueError, match=r"jac\(t, y\) returned an array of shape \(3,\)"):
        nd.lyapunov_spectrum(ref.lorenz, y0, jac=lambda t, y: y, t_total=1.0)
    with pytest.raises(ZeroDivisionError):
        nd.lyapunov_spectrum(lambda t, y: 1 / 0, y0, jac=ref.lorenz_jac, t_total=1.0)
    with pytest.raises(TypeError, match="input-driven"):
        nd.lyapunov_spectrum(nd.LTCCell(2, 4, seed=0), np.zeros(4))
    with pytest.raises(TypeError, match="lyapunov_spectrum_map"):
        nd.lyapunov_spectrum(nd.chaos.Henon(), [0.1, 0.1])
    with pytest.raises(nd.IntegrationError, match="NaN or inf"):
        nd.lyapunov_spectrum(nd.fields.Linear([[50.0]]), [1.0], t_total=100.0, dt=0.1)
    with pytest.raises(ValueError, match="n_iter must be an integer >= 1, got 0"):
        nd.lyapunov_spectrum_map(nd.chaos.Henon(), [0.1, 0.1], n_iter=0)
    with pytest.raises(TypeError, match="n_iter must be an integer"):
        nd.lyapunov_spectrum_map(nd.chaos.Henon(), [0.1, 0.1], n_iter=10.5)
    with pytest.raises(TypeError, match="needs jac"):
        nd.lyapunov_spectrum_map(ref.henon, [0.1, 0.1])


@pytest.mark.parametrize("check, spec, error, match", [
    ("field_check", ("flow", (), ("rossler",), (3, 0.2, 0.2)), ValueError, "the flow 'rossler' takes 3 parameters, got 2"),
    ("field_check", ("flow", (), ("rossler",), (3, 0.2, "x", 5.7)), TypeError, "flow parameter must be a real number"),
    ("map_check", ("henon", (1.4,)), ValueError, "the map 'henon' takes 2 parameters, got 1"),
    ("map_check", ("logistic", (3.9, 1.0)), ValueError, "the map 'logistic' takes 1 parameters, got 2"),
    ("map_check", ("henon", (1.4, None)), TypeError, "map parameter must be a real number"),
])
def test_raw_specs_with_the_wrong_parameters_are_refused(check, spec, error, match):
    # the catalogue classes always build whole specs: these reach the binding's one count rule
    with pytest.raises(error, match=match):
        getattr(nd._core, check)(**{check.split("_")[0]: spec})


def test_bad_catalogue_parameters():
    with pytest.raises(ValueError, match="N must be >= 4 for Lorenz-96, got 3"):
        nd.fields.Lorenz96(N=3)
    with pytest.raises(ValueError, match="a must be finite"):
        nd.fields.Rossler(a=np.nan)
    with pytest.raises(ValueError, match="l2 must be > 0"):
        nd.fields.DoublePendulum(l2=0.0)
    with pytest.raises(ValueError, match="b must be finite"):
        nd.chaos.Henon(b=np.inf)
    with pytest.raises(ValueError, match="last axis of size 3"):
        nd.fields.Chen()(0.0, np.ones(4))


def test_inputs_not_modified():
    y0 = np.array([[1.0, 1.0, 1.0], [2.0, 1.0, 0.0]])
    keep = y0.copy()
    nd.lyapunov_spectrum(nd.fields.Lorenz(), y0, t_total=1.0)
    np.testing.assert_array_equal(y0, keep)


def test_dysts_definitions_agree():
    """Where the dysts catalogue is installed: its right-hand sides at its own parameters."""
    dysts = pytest.importorskip("dysts.flows")
    rng = np.random.default_rng(6)
    # name -> (our field at dysts' parameters, the factor dysts' time runs faster by)
    pairs = {"Rossler": lambda p: (nd.fields.Rossler(p["a"], p["b"], p["c"]), 1.0),
             "Chen": lambda p: (nd.fields.Chen(p["a"], p["b"], p["c"]), 1.0),
             "Chua": lambda p: (nd.fields.Chua(p["alpha"], p["beta"], p["m0"], p["m1"]), 1.0),
             "SprottB": lambda p: (nd.fields.SprottB(), 1.0),
             # dysts writes Thomas as x' = -a x + b sin y: ours with b = a / b, b times faster
             "Thomas": lambda p: (nd.fields.Thomas(p["a"] / p["b"]), p["b"]),
             "HenonHeiles": lambda p: (nd.fields.HenonHeiles(p["lam"]), 1.0)}
    checked = 0
    for name, make in pairs.items():
        model = getattr(dysts, name, None)
        if model is None:
            continue
        sys = model()
        ours, speed = make(sys.params)
        for y in rng.uniform(-1.5, 1.5, size=(4, ours.dim)):
            np.testing.assert_allclose(speed * ours(0.0, y), np.asarray(sys.rhs(y, 0.0)), rtol=1e-9, atol=1e-9)
        checked += 1
    assert checked
